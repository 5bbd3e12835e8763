//! Cashiers' shifts: sign-on and sign-off at a lane, and the end-of-shift report computed from the ledger.
//!
//! A lane makes the shift id when its cashier signs on and sends the opening
//! and the closing through its outbox, so both arrive once and in order even
//! after an outage. Sales carry their shift id from the Pay request, so a
//! shift's takings are exactly the paid sales rung up in it.

use std::collections::BTreeMap;

use checkout_storage::{
    Currency, LaneId, Money, Provider, SaleId, SettlementGap, ShiftId, ShiftRecord, ShiftSettlement, Store, UnixMillis,
};

use crate::error::CoordinatorError;

pub const SIGNED_OFF: &str = "signed off";
pub const NEXT_SHIFT_OPENED: &str = "the next shift on the lane opened";

/// A shift and what was taken in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftReport {
    pub shift: ShiftRecord,
    pub sales: u64,
    pub items: u64,
    pub sales_total: Money,
    pub payments_declined: u64,
    /// Paid sales and their total, per provider.
    pub by_provider: BTreeMap<Provider, (u64, Money)>,
    /// The lane's own count against the ledger's, once the lane closed the shift with it.
    pub settlement: Option<ShiftSettlement>,
    /// Member points the shift's sales earned, and took back since.
    pub points_granted: i64,
    pub points_taken_back: i64,
    /// What coupons took off the shift's sales.
    pub discounts_given: Money,
}

/// Most sales a lane may count in one shift (a busy lane sells some 40 an hour).
pub const MAX_COUNTED_SALES: usize = 10_000;

/// Settles a closed shift: `counted` (what the lane itself counted: each sale and its total) against the
/// sales the ledger holds for the shift; every sale that differs is named. Kept with the shift (the first
/// settlement stands: the outbox may deliver the closing twice).
pub async fn settle_shift(
    store: &Store,
    currency: Currency,
    shift: &ShiftRecord,
    counted: Vec<(SaleId, Money)>,
) -> Result<ShiftSettlement, CoordinatorError> {
    if let Some(settled) = store.shift_settlement(&shift.shift_id)? {
        return Ok(settled);
    }
    let ledger: BTreeMap<SaleId, Money> =
        store.sales_of_shift(shift)?.into_iter().map(|sale| (sale.sale_id, sale.total)).collect();
    let lane: BTreeMap<SaleId, Money> = counted.into_iter().collect();
    let mut gaps = Vec::new();
    for (sale_id, lane_total) in &lane {
        match ledger.get(sale_id) {
            None => gaps.push((SettlementGap::OnlyOnLane, sale_id.clone(), Some(*lane_total), None)),
            Some(ledger_total) if ledger_total != lane_total => {
                gaps.push((SettlementGap::TotalDiffers, sale_id.clone(), Some(*lane_total), Some(*ledger_total)))
            }
            Some(_) => {}
        }
    }
    for (sale_id, ledger_total) in &ledger {
        if !lane.contains_key(sale_id) {
            gaps.push((SettlementGap::OnlyInLedger, sale_id.clone(), None, Some(*ledger_total)));
        }
    }
    let sum = |sales: &BTreeMap<SaleId, Money>| {
        sales.values().try_fold(Money::zero(currency), |sum, total| sum.checked_add(*total))
    };
    let settlement = ShiftSettlement {
        shift_id: shift.shift_id.clone(),
        lane_sales: lane.len() as u64,
        lane_total: sum(&lane)?,
        ledger_sales: ledger.len() as u64,
        ledger_total: sum(&ledger)?,
        gaps,
        settled_at: UnixMillis::now(),
    };
    if !settlement.agrees() {
        tracing::warn!(
            lane_id = %shift.lane_id,
            shift_id = %shift.shift_id,
            lane_sales = settlement.lane_sales,
            ledger_sales = settlement.ledger_sales,
            differences = settlement.gaps.len(),
            "the lane's count of its shift differs from the ledger's"
        );
    }
    store.put_shift_settlement(&settlement)?;
    store.commit().await?;
    Ok(settlement)
}

/// Records a cashier signing on; a shift still open on the lane is closed by it. Idempotent by shift id.
pub async fn open_shift(store: &Store, shift: ShiftRecord) -> Result<ShiftRecord, CoordinatorError> {
    if let Some(existing) = store.shift(&shift.shift_id)? {
        if existing.lane_id != shift.lane_id || existing.cashier != shift.cashier {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "shift {} is already open for cashier {} at lane {}",
                existing.shift_id, existing.cashier, existing.lane_id
            )));
        }
        return Ok(existing);
    }
    for mut earlier in store.open_shifts(Some(&shift.lane_id))? {
        if earlier.shift_id != shift.shift_id {
            tracing::warn!(lane_id = %earlier.lane_id, shift_id = %earlier.shift_id, "shift never closed: the next one closes it");
            earlier.closed_at = Some(shift.opened_at.max(earlier.opened_at));
            earlier.closed_how = NEXT_SHIFT_OPENED.to_owned();
            store.put_shift(&earlier)?;
        }
    }
    let shift = ShiftRecord { closed_at: None, closed_how: String::new(), ..shift };
    store.put_shift(&shift)?;
    store.commit().await?;
    tracing::info!(lane_id = %shift.lane_id, shift_id = %shift.shift_id, cashier = %shift.cashier, "shift opened");
    Ok(shift)
}

/// Records a cashier signing off. Idempotent: a shift already closed stays as it closed.
pub async fn close_shift(
    store: &Store,
    lane_id: &LaneId,
    shift_id: &ShiftId,
    closed_at: UnixMillis,
) -> Result<ShiftRecord, CoordinatorError> {
    let mut shift = store.shift(shift_id)?.ok_or_else(|| CoordinatorError::NotFound(format!("no shift {shift_id}")))?;
    if &shift.lane_id != lane_id {
        return Err(CoordinatorError::invalid("shift_id", format!("shift {shift_id} is of lane {}", shift.lane_id)));
    }
    if shift.closed_at.is_some() {
        return Ok(shift);
    }
    shift.closed_at = Some(closed_at.max(shift.opened_at));
    shift.closed_how = SIGNED_OFF.to_owned();
    store.put_shift(&shift)?;
    store.commit().await?;
    tracing::info!(lane_id = %shift.lane_id, shift_id = %shift.shift_id, cashier = %shift.cashier, "shift closed");
    Ok(shift)
}

/// The report of `shift`, from the takings the ledger keeps per shift.
pub fn shift_report(store: &Store, currency: Currency, shift: ShiftRecord) -> Result<ShiftReport, CoordinatorError> {
    let tally = store.shift_tally(&shift.shift_id);
    let settlement = store.shift_settlement(&shift.shift_id)?;
    let (mut points_granted, mut points_taken_back, mut discounts) = (0i64, 0i64, 0i64);
    for sale in store.sales_of_shift(&shift)?.iter().filter(|s| s.shift_id.as_ref() == Some(&shift.shift_id)) {
        discounts += store.discount_of_sale(sale)?.map_or(0, |d| d.minor_units);
        let Some(member_id) = store.member_of_sale(&sale.sale_id)? else { continue };
        for entry in store.points_of_sale(&member_id, &sale.sale_id)? {
            if entry.points >= 0 {
                points_granted += entry.points;
            } else {
                points_taken_back -= entry.points;
            }
        }
    }
    Ok(ShiftReport {
        points_granted,
        points_taken_back,
        discounts_given: Money::new(discounts, currency),
        settlement,
        shift,
        sales: tally.sales,
        items: tally.items,
        sales_total: tally.sales_total.of(currency),
        payments_declined: tally.payments_declined,
        by_provider: tally
            .by_provider
            .into_iter()
            .map(|(provider, (count, total))| (provider, (count, total.of(currency))))
            .collect(),
    })
}

/// The report of the shift `shift_id`.
pub fn report_of(store: &Store, currency: Currency, shift_id: &ShiftId) -> Result<ShiftReport, CoordinatorError> {
    let shift = store.shift(shift_id)?.ok_or_else(|| CoordinatorError::NotFound(format!("no shift {shift_id}")))?;
    shift_report(store, currency, shift)
}

#[cfg(test)]
mod tests {
    use checkout_storage::{
        Attempt, CashierId, ChargeRecord, ChargeStatus, CodeFingerprint, MaskedCode, OutTradeNo, SaleId, SaleLine,
        SaleRecord, StoreId, sample_catalog,
    };

    use super::*;

    fn shift(id: &str, lane: &str, cashier: &str, opened_at: i64) -> ShiftRecord {
        ShiftRecord {
            shift_id: ShiftId::parse(id).unwrap(),
            lane_id: LaneId::parse(lane).unwrap(),
            cashier: CashierId::parse(cashier).unwrap(),
            opened_at: UnixMillis(opened_at),
            closed_at: None,
            closed_how: String::new(),
        }
    }

    /// A charge of `quantity` of the first catalog product in `shift`, with its sale when paid.
    fn ring_up(store: &Store, sale: &str, shift: &str, provider: Provider, quantity: u32, status: ChargeStatus) {
        let product = &sample_catalog()[0];
        let sale_id = SaleId::parse(sale).unwrap();
        let out_trade_no = OutTradeNo::derive(&StoreId::parse("S1").unwrap(), &sale_id, Attempt::new(1).unwrap());
        let amount = product.price.checked_mul(quantity).unwrap();
        let lines = vec![SaleLine { gtin: product.gtin.clone(), quantity, unit_price: product.price }];
        let shift_id = Some(ShiftId::parse(shift).unwrap());
        store
            .put_charge(&ChargeRecord {
                out_trade_no: out_trade_no.clone(),
                lane_id: LaneId::parse("L1").unwrap(),
                sale_id: sale_id.clone(),
                attempt: Attempt::new(1).unwrap(),
                provider,
                masked_code: MaskedCode::of("134567890123456789"),
                code_fingerprint: CodeFingerprint([1; 16]),
                amount,
                status,
                provider_code: String::new(),
                message: String::new(),
                provider_transaction_id: String::new(),
                created_at: UnixMillis(100),
                settled_at: Some(UnixMillis(101)),
                lines: lines.clone(),
                basket_sha256: checkout_storage::basket_digest(&[checkout_storage::OrderLine::catalog(
                    product.gtin.clone(),
                    quantity,
                )]),
                shift_id: shift_id.clone(),
                sale_started_at: UnixMillis(90),
                superseded_by: None,
                events: Vec::new(),
            })
            .unwrap();
        if status == ChargeStatus::Paid {
            let sale = SaleRecord {
                lane_id: LaneId::parse("L1").unwrap(),
                sale_id,
                shift_id,
                lines,
                total: amount,
                out_trade_no,
                started_at: UnixMillis(90),
                finished_at: UnixMillis(101),
            };
            assert!(store.insert_sale_if_absent(&sale).unwrap());
        }
    }

    #[tokio::test]
    async fn a_shift_report_counts_its_own_sales_by_provider() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let currency = sample_catalog()[0].price.currency;
        open_shift(&store, shift("L1-A", "L1", "anna", 10)).await.unwrap();
        ring_up(&store, "L1-S1", "L1-A", Provider::WeChatPay, 2, ChargeStatus::Paid);
        ring_up(&store, "L1-S2", "L1-A", Provider::Alipay, 1, ChargeStatus::Paid);
        ring_up(&store, "L1-S3", "L1-A", Provider::Alipay, 1, ChargeStatus::NewCodeNeeded);
        ring_up(&store, "L1-S4", "L1-OTHER", Provider::Alipay, 5, ChargeStatus::Paid);
        let closed =
            close_shift(&store, &LaneId::parse("L1").unwrap(), &ShiftId::parse("L1-A").unwrap(), UnixMillis(50))
                .await
                .unwrap();
        assert_eq!((closed.closed_at, closed.closed_how.as_str()), (Some(UnixMillis(50)), SIGNED_OFF));

        let report = &report_of(&store, currency, &ShiftId::parse("L1-A").unwrap()).unwrap();
        let price = sample_catalog()[0].price;
        assert_eq!((report.sales, report.items, report.payments_declined), (2, 3, 1));
        assert_eq!(report.sales_total, price.checked_mul(3).unwrap());
        assert_eq!(report.by_provider[&Provider::WeChatPay], (1, price.checked_mul(2).unwrap()));
        assert_eq!(report.by_provider[&Provider::Alipay], (1, price));
        assert!(!report.by_provider.contains_key(&Provider::UnionPay));
    }

    #[tokio::test]
    async fn opening_and_closing_are_idempotent_and_a_forgotten_shift_is_closed_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let lane = LaneId::parse("L1").unwrap();
        open_shift(&store, shift("L1-A", "L1", "anna", 10)).await.unwrap();
        assert_eq!(open_shift(&store, shift("L1-A", "L1", "anna", 10)).await.unwrap().closed_at, None);
        let err = open_shift(&store, shift("L1-A", "L1", "bo", 10)).await.unwrap_err();
        assert!(matches!(err, CoordinatorError::FailedPrecondition(_)), "{err}");
        // Another lane's shift is left alone.
        open_shift(&store, shift("L2-A", "L2", "cai", 15)).await.unwrap();
        // Anna's lane crashed and Bo signs on: Anna's shift closes when Bo's opens.
        open_shift(&store, shift("L1-B", "L1", "bo", 20)).await.unwrap();
        let anna = store.shift(&ShiftId::parse("L1-A").unwrap()).unwrap().unwrap();
        assert_eq!((anna.closed_at, anna.closed_how.as_str()), (Some(UnixMillis(20)), NEXT_SHIFT_OPENED));
        // Anna's lane delivers her sign-off late: the shift stays as it closed.
        let late = close_shift(&store, &lane, &anna.shift_id, UnixMillis(30)).await.unwrap();
        assert_eq!(late, anna);
        let open: Vec<_> = store.open_shifts(None).unwrap().into_iter().map(|s| s.shift_id).collect();
        assert_eq!(open, vec![ShiftId::parse("L1-B").unwrap(), ShiftId::parse("L2-A").unwrap()]);
        let unknown = close_shift(&store, &lane, &ShiftId::parse("L1-X").unwrap(), UnixMillis(40)).await.unwrap_err();
        assert!(matches!(unknown, CoordinatorError::NotFound(_)), "{unknown}");
        let (l2, l1_b) = (LaneId::parse("L2").unwrap(), ShiftId::parse("L1-B").unwrap());
        let wrong_lane = close_shift(&store, &l2, &l1_b, UnixMillis(40)).await.unwrap_err();
        assert!(matches!(wrong_lane, CoordinatorError::InvalidArgument { .. }), "{wrong_lane}");
    }
}
