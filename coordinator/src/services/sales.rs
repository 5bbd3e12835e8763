//! A lane's report of a finished sale: checked against the payment that settled it, priced from the catalog, recorded once.

use checkout_storage::{ChargeStatus, FinishedSale, SaleRecord, Store};

use super::members::{PointsRule, credit_paid_sale};
use crate::{engine::price_lines, error::CoordinatorError};

/// Records `sale` as its lane reports it, once by sale id; returns false when it was already recorded
/// (the coordinator records a sale itself the moment its payment is paid: this confirms it).
pub async fn record_finished_sale(
    store: &Store,
    rule: &PointsRule,
    sale: FinishedSale,
) -> Result<bool, CoordinatorError> {
    let FinishedSale { lane_id, sale_id, shift_id, lines, total, out_trade_no, started_at, finished_at } = sale;
    if let Some(existing) = store.sale(&sale_id)? {
        if existing.out_trade_no != out_trade_no || existing.lane_id != lane_id {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "sale {sale_id} is already recorded with payment {}",
                existing.out_trade_no
            )));
        }
        let Some(charge) = store.charge(&out_trade_no)? else { return Ok(false) };
        // A confirmation is of the basket that was paid, typed prices included.
        if checkout_storage::basket_digest(&lines) != charge.basket_sha256 {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "sale {sale_id} was paid for another basket than the lane reports (its items, quantities or typed prices differ)"
            )));
        }
        if total != existing.total {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "sale {sale_id} was paid {}, not the {total} the lane reports",
                existing.total
            )));
        }
        // Recorded when its payment was paid; the member's points were credited then, unless a crash came
        // between the two writes: credited now if so (never twice).
        if credit_paid_sale(store, rule, &sale_id, &out_trade_no, &existing.lines, existing.total, charge.provider)?
            .is_some()
        {
            store.commit().await?;
        }
        return Ok(false);
    }
    let charge = store
        .charge(&out_trade_no)?
        .ok_or_else(|| CoordinatorError::invalid("out_trade_no", format!("no payment {out_trade_no}")))?;
    if charge.sale_id != sale_id || charge.lane_id != lane_id {
        return Err(CoordinatorError::invalid("out_trade_no", format!("payment {out_trade_no} is of another sale")));
    }
    if charge.status != ChargeStatus::Paid {
        return Err(CoordinatorError::FailedPrecondition(format!(
            "payment {out_trade_no} is not paid ({:?})",
            charge.status
        )));
    }
    // The basket must be the one charged (promotions and a coupon took their part off it then).
    let (priced, priced_total) = price_lines(store, &lines)?;
    // Typed prices included: an open-price item reported at another price than it was paid at is refused.
    let digest = checkout_storage::basket_digest(&lines);
    if digest != charge.basket_sha256 || total != charge.amount || priced_total.minor_units < charge.amount.minor_units
    {
        return Err(CoordinatorError::FailedPrecondition(format!(
            "sale total {total} (priced {priced_total}) or its basket differs from the payment's {}",
            charge.amount
        )));
    }
    let sale = SaleRecord { lane_id, sale_id, shift_id, lines: priced, total, out_trade_no, started_at, finished_at };
    let newly_recorded = store.insert_sale_if_absent(&sale)?;
    credit_paid_sale(store, rule, &sale.sale_id, &sale.out_trade_no, &sale.lines, sale.total, charge.provider)?;
    store.commit().await?;
    tracing::info!(lane_id = %sale.lane_id, sale_id = %sale.sale_id, total = %sale.total, items = sale.items(), "sale recorded");
    Ok(newly_recorded)
}

#[cfg(test)]
mod tests {
    use checkout_storage::{
        Attempt, ChargeRecord, CodeFingerprint, Currency, LaneId, MaskedCode, Money, OrderLine, OutTradeNo, Provider,
        SaleId, SaleLine, StoreId, UnixMillis, basket_digest, sample_catalog,
    };

    use super::*;

    fn cny(fen: i64) -> Money {
        Money::new(fen, Currency::CNY)
    }

    #[tokio::test]
    async fn a_sale_reported_before_it_was_recorded_must_carry_the_typed_prices_it_was_paid_at() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.seed_catalog_if_empty(&sample_catalog()).unwrap();
        let milk = sample_catalog()[0].clone();
        let bakery = sample_catalog().into_iter().find(|p| p.is_open_price()).unwrap();
        let basket = vec![
            OrderLine::catalog(milk.gtin.clone(), 1),
            OrderLine::open_price(bakery.gtin.clone(), 1, cny(1250)),
            OrderLine::open_price(bakery.gtin.clone(), 2, cny(320)),
        ];
        let total = cny(milk.price.minor_units + 1250 + 640);
        let sale_id = SaleId::parse("L1-CAKES").unwrap();
        let out_trade_no = OutTradeNo::derive(&StoreId::parse("S1").unwrap(), &sale_id, Attempt::new(1).unwrap());
        // Paid, and its sale not recorded yet (as a ledger of a build that recorded sales only when reported).
        store
            .put_charge(&ChargeRecord {
                out_trade_no: out_trade_no.clone(),
                lane_id: LaneId::parse("L1").unwrap(),
                sale_id: sale_id.clone(),
                attempt: Attempt::new(1).unwrap(),
                provider: Provider::Alipay,
                masked_code: MaskedCode::of("2800000000000000"),
                code_fingerprint: CodeFingerprint([3; 16]),
                amount: total,
                status: ChargeStatus::Paid,
                provider_code: "10000".into(),
                message: String::new(),
                provider_transaction_id: "T1".into(),
                created_at: UnixMillis(100),
                settled_at: Some(UnixMillis(101)),
                lines: Vec::new(),
                basket_sha256: basket_digest(&basket),
                shift_id: None,
                sale_started_at: UnixMillis(90),
                superseded_by: None,
                events: Vec::new(),
            })
            .unwrap();
        let report = |lines: Vec<OrderLine>| FinishedSale {
            lane_id: LaneId::parse("L1").unwrap(),
            sale_id: sale_id.clone(),
            shift_id: None,
            lines,
            total,
            out_trade_no: out_trade_no.clone(),
            started_at: UnixMillis(90),
            finished_at: UnixMillis(102),
        };
        let rule = PointsRule::default();
        let mut other = basket.clone();
        // 12.60 + 2 x 3.15: the same total, at other typed prices.
        other[1].typed_price = Some(cny(1260));
        other[2].typed_price = Some(cny(315));
        let refused = record_finished_sale(&store, &rule, report(other)).await.unwrap_err();
        assert!(matches!(refused, CoordinatorError::FailedPrecondition(_)), "{refused:?}");
        assert!(store.sale(&sale_id).unwrap().is_none(), "nothing recorded");

        assert!(record_finished_sale(&store, &rule, report(basket.clone())).await.unwrap(), "newly recorded");
        let sale = store.sale(&sale_id).unwrap().unwrap();
        let expected = vec![
            SaleLine { gtin: milk.gtin.clone(), quantity: 1, unit_price: milk.price },
            SaleLine { gtin: bakery.gtin.clone(), quantity: 1, unit_price: cny(1250) },
            SaleLine { gtin: bakery.gtin.clone(), quantity: 2, unit_price: cny(320) },
        ];
        assert_eq!((sale.lines, sale.total), (expected, total));
        // Reported again: confirmed, not recorded twice.
        assert!(!record_finished_sale(&store, &rule, report(basket)).await.unwrap());
    }
}
