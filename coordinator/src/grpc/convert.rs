//! Generated messages to domain types and back: the one place the coordinator converts them.

use checkout_proto::v1 as pb;
use checkout_storage::{
    ChargeRecord, ChargeStatus, Currency, LaneId, Money, OrderLine, Product, ProductCode, Provider, RefundRecord,
    RefundStatus, SaleId, SaleRecord, SettlementGap, ShiftId, ShiftSettlement, Tally, UnixMillis,
};

use super::Result;
use crate::{
    error::{CoordinatorError, field},
    services::{live::LaneActivity, shifts::ShiftReport},
};

/// Largest basket a lane may send: far above any real one (quantities cover repeats), well below abuse.
pub(super) const MAX_LINES: usize = 500;

pub(super) fn money_to_pb(money: Money) -> pb::Money {
    pb::Money { minor_units: money.minor_units, currency: money.currency.to_string() }
}

pub(super) fn money_from_pb(name: &str, money: Option<pb::Money>) -> Result<Money> {
    let money = money.ok_or_else(|| CoordinatorError::invalid(name, "required"))?;
    let currency = Currency::parse(&money.currency).map_err(field(&format!("{name}.currency")))?;
    Ok(Money::new(money.minor_units, currency))
}

pub(super) fn timestamp(at: UnixMillis) -> checkout_proto::Timestamp {
    checkout_proto::Timestamp { seconds: at.0.div_euclid(1000), nanos: (at.0.rem_euclid(1000) * 1_000_000) as i32 }
}

pub(super) fn millis_from_pb(name: &str, at: Option<checkout_proto::Timestamp>) -> Result<Option<UnixMillis>> {
    match at {
        None => Ok(None),
        Some(t) if (0..1_000_000_000).contains(&t.nanos) && t.seconds >= 0 && t.seconds < 253_402_300_800 => {
            Ok(Some(UnixMillis(t.seconds * 1000 + i64::from(t.nanos / 1_000_000))))
        }
        Some(_) => Err(CoordinatorError::invalid(name, "timestamp out of range")),
    }
}

pub fn provider_to_pb(provider: Provider) -> pb::Provider {
    match provider {
        Provider::WeChatPay => pb::Provider::WechatPay,
        Provider::Alipay => pb::Provider::Alipay,
        Provider::UnionPay => pb::Provider::Unionpay,
    }
}

/// A provider filter: `None` when unspecified.
pub(super) fn provider_from_pb(name: &str, value: i32) -> Result<Option<Provider>> {
    match pb::Provider::try_from(value) {
        Ok(pb::Provider::Unspecified) => Ok(None),
        Ok(pb::Provider::WechatPay) => Ok(Some(Provider::WeChatPay)),
        Ok(pb::Provider::Alipay) => Ok(Some(Provider::Alipay)),
        Ok(pb::Provider::Unionpay) => Ok(Some(Provider::UnionPay)),
        Err(_) => Err(CoordinatorError::invalid(name, format!("unknown provider {value}"))),
    }
}

pub(super) fn outcome_to_pb(status: ChargeStatus) -> pb::PaymentOutcome {
    match status {
        ChargeStatus::Paid => pb::PaymentOutcome::Paid,
        ChargeStatus::NewCodeNeeded => pb::PaymentOutcome::NewCodeNeeded,
        ChargeStatus::Failed => pb::PaymentOutcome::Failed,
        // Reversed: nothing was taken (or it went back); the customer may pay again with a fresh code.
        ChargeStatus::Reversed => pb::PaymentOutcome::NewCodeNeeded,
        ChargeStatus::Pending | ChargeStatus::Unknown | ChargeStatus::Reversing => pb::PaymentOutcome::Unknown,
    }
}

pub(super) fn product_to_pb(product: Product) -> pb::Product {
    pb::Product { gtin: product.gtin.to_string(), name: product.name, price: Some(money_to_pb(product.price)) }
}

/// A lane's basket lines, each checked on its own: a valid GTIN, a quantity of 1 to 9999 and, for an
/// open-price item, a typed unit price in the store's `currency`, positive and at most `open_price_cap`
/// (minor units). Whether a product is open-price is the catalog's to say: see [`crate::engine::price_lines`].
pub(super) fn lines_from_pb(
    lines: Vec<pb::SaleLine>,
    currency: Currency,
    open_price_cap: i64,
) -> Result<Vec<OrderLine>> {
    if lines.len() > MAX_LINES {
        return Err(CoordinatorError::invalid("lines", format!("at most {MAX_LINES} lines")));
    }
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let gtin = ProductCode::parse(&line.gtin).map_err(field(&format!("lines[{i}].gtin")))?;
            if line.quantity == 0 || line.quantity > 9_999 {
                return Err(CoordinatorError::invalid(format!("lines[{i}].quantity"), "must be 1 to 9999"));
            }
            let typed_price = match line.unit_price {
                None => None,
                Some(price) => Some(typed_price_from_pb(i, price, currency, open_price_cap)?),
            };
            Ok(OrderLine { gtin, quantity: line.quantity, typed_price })
        })
        .collect()
}

/// The unit price a cashier typed for line `i`: in the store's currency, more than zero, at most the cap.
fn typed_price_from_pb(i: usize, price: pb::Money, currency: Currency, cap: i64) -> Result<Money> {
    let name = format!("lines[{i}].unit_price");
    let price = money_from_pb(&name, Some(price))?;
    if price.currency != currency {
        return Err(CoordinatorError::invalid(format!("{name}.currency"), format!("the store takes {currency}")));
    }
    if price.minor_units <= 0 {
        return Err(CoordinatorError::invalid(name, format!("a typed price is more than zero, not {price}")));
    }
    if price.minor_units > cap {
        return Err(CoordinatorError::invalid(
            name,
            format!("{price} is above the store's cap of {} for an open-price item", Money::new(cap, currency)),
        ));
    }
    Ok(price)
}

pub(super) fn status_to_pb(status: ChargeStatus) -> pb::PaymentStatus {
    match status {
        ChargeStatus::Pending => pb::PaymentStatus::Pending,
        ChargeStatus::Paid => pb::PaymentStatus::Paid,
        ChargeStatus::NewCodeNeeded => pb::PaymentStatus::NewCodeNeeded,
        ChargeStatus::Failed => pb::PaymentStatus::Failed,
        ChargeStatus::Unknown => pb::PaymentStatus::Unknown,
        ChargeStatus::Reversing => pb::PaymentStatus::Reversing,
        ChargeStatus::Reversed => pb::PaymentStatus::Reversed,
    }
}

pub(super) fn charge_to_pb(charge: ChargeRecord) -> pb::Payment {
    pb::Payment {
        out_trade_no: charge.out_trade_no.to_string(),
        lane_id: charge.lane_id.to_string(),
        sale_id: charge.sale_id.to_string(),
        attempt: charge.attempt.get(),
        provider: provider_to_pb(charge.provider).into(),
        masked_code: charge.masked_code.to_string(),
        amount: Some(money_to_pb(charge.amount)),
        outcome: outcome_to_pb(charge.status).into(),
        status: status_to_pb(charge.status).into(),
        provider_code: charge.provider_code,
        message: charge.message,
        provider_transaction_id: charge.provider_transaction_id,
        created_at: Some(timestamp(charge.created_at)),
        settled_at: charge.settled_at.map(timestamp),
    }
}

pub(super) fn sale_to_pb(sale: SaleRecord) -> pb::Sale {
    pb::Sale {
        items: u32::try_from(sale.items()).unwrap_or(u32::MAX),
        lane_id: sale.lane_id.to_string(),
        sale_id: sale.sale_id.to_string(),
        lines: sale
            .lines
            .iter()
            .map(|l| pb::SaleLine {
                gtin: l.gtin.to_string(),
                quantity: l.quantity,
                unit_price: Some(money_to_pb(l.unit_price)),
            })
            .collect(),
        total: Some(money_to_pb(sale.total)),
        out_trade_no: sale.out_trade_no.to_string(),
        started_at: Some(timestamp(sale.started_at)),
        finished_at: Some(timestamp(sale.finished_at)),
        shift_id: sale.shift_id.map(|s| s.to_string()).unwrap_or_default(),
    }
}

pub(super) fn shift_report_to_pb(report: ShiftReport) -> pb::ShiftReport {
    let ShiftReport {
        shift,
        sales,
        items,
        sales_total,
        payments_declined,
        by_provider,
        settlement,
        points_granted,
        points_taken_back,
        discounts_given,
    } = report;
    pb::ShiftReport {
        shift_id: shift.shift_id.to_string(),
        lane_id: shift.lane_id.to_string(),
        cashier_id: shift.cashier.to_string(),
        opened_at: Some(timestamp(shift.opened_at)),
        closed_at: shift.closed_at.map(timestamp),
        closed_how: shift.closed_how,
        sales,
        items,
        sales_total: Some(money_to_pb(sales_total)),
        payments_declined,
        by_provider: by_provider
            .into_iter()
            .map(|(provider, (payments, total))| pb::ProviderTakings {
                provider: provider_to_pb(provider).into(),
                payments,
                total: Some(money_to_pb(total)),
            })
            .collect(),
        settlement: settlement.map(settlement_to_pb),
        points_granted,
        points_taken_back,
        discounts_given: Some(money_to_pb(discounts_given)),
    }
}

fn settlement_to_pb(settlement: ShiftSettlement) -> pb::ShiftSettlement {
    use pb::settlement_difference::Kind;
    pb::ShiftSettlement {
        agrees: settlement.agrees(),
        lane_sales: settlement.lane_sales,
        lane_total: Some(money_to_pb(settlement.lane_total)),
        ledger_sales: settlement.ledger_sales,
        ledger_total: Some(money_to_pb(settlement.ledger_total)),
        differences: settlement
            .gaps
            .into_iter()
            .map(|(gap, sale_id, lane_total, ledger_total)| pb::SettlementDifference {
                kind: match gap {
                    SettlementGap::OnlyOnLane => Kind::OnlyOnLane,
                    SettlementGap::OnlyInLedger => Kind::OnlyInLedger,
                    SettlementGap::TotalDiffers => Kind::TotalDiffers,
                }
                .into(),
                sale_id: sale_id.to_string(),
                lane_total: lane_total.map(money_to_pb),
                ledger_total: ledger_total.map(money_to_pb),
            })
            .collect(),
        settled_at: Some(timestamp(settlement.settled_at)),
    }
}

/// A lane's count of its shift: each sale and its total.
pub(super) fn counted_sales_from_pb(sales: Vec<pb::CountedSale>) -> Result<Vec<(SaleId, Money)>> {
    if sales.len() > crate::services::shifts::MAX_COUNTED_SALES {
        return Err(CoordinatorError::invalid(
            "counted_sales",
            format!("at most {} sales", crate::services::shifts::MAX_COUNTED_SALES),
        ));
    }
    sales
        .into_iter()
        .enumerate()
        .map(|(i, sale)| {
            let sale_id = SaleId::parse(&sale.sale_id).map_err(field(&format!("counted_sales[{i}].sale_id")))?;
            let total = money_from_pb(&format!("counted_sales[{i}].total"), sale.total)?;
            Ok((sale_id, total))
        })
        .collect()
}

/// An optional shift id: empty means none.
pub(super) fn shift_id_of(value: &str) -> Result<Option<ShiftId>> {
    if value.is_empty() { Ok(None) } else { ShiftId::parse(value).map(Some).map_err(field("shift_id")) }
}

pub(super) fn activity_from_pb(state: i32) -> Result<LaneActivity> {
    match pb::LaneState::try_from(state) {
        Ok(pb::LaneState::Idle) => Ok(LaneActivity::Idle),
        Ok(pb::LaneState::Scanning) => Ok(LaneActivity::Scanning),
        Ok(pb::LaneState::Paying) => Ok(LaneActivity::Paying),
        Ok(pb::LaneState::Closed) => Ok(LaneActivity::Closed),
        Ok(pb::LaneState::Unspecified) | Err(_) => Err(CoordinatorError::invalid("state", "unknown lane state")),
    }
}

pub(super) fn activity_to_pb(activity: LaneActivity) -> pb::LaneState {
    match activity {
        LaneActivity::Idle => pb::LaneState::Idle,
        LaneActivity::Scanning => pb::LaneState::Scanning,
        LaneActivity::Paying => pb::LaneState::Paying,
        LaneActivity::Closed => pb::LaneState::Closed,
    }
}

pub(super) fn lane_id_of(value: &str) -> Result<LaneId> {
    LaneId::parse(value).map_err(field("lane_id"))
}

pub(super) fn tally_to_pb(lane_id: &LaneId, t: &Tally, currency: Currency) -> pb::LaneTotals {
    pb::LaneTotals {
        lane_id: lane_id.to_string(),
        sales: t.sales,
        items: t.items,
        sales_total: Some(money_to_pb(t.sales_total.of(currency))),
        payments_paid: t.payments_paid,
        payments_declined: t.payments_declined,
        paid_total: Some(money_to_pb(t.paid_total.of(currency))),
    }
}

pub(super) fn refund_status_to_pb(status: RefundStatus) -> pb::RefundStatus {
    match status {
        RefundStatus::Accepted => pb::RefundStatus::Accepted,
        RefundStatus::Refused => pb::RefundStatus::Refused,
        RefundStatus::Pending | RefundStatus::Unknown => pb::RefundStatus::Unknown,
    }
}

pub(super) fn refund_to_pb(refund: RefundRecord) -> pb::Refund {
    pb::Refund {
        out_refund_no: refund.out_refund_no,
        out_trade_no: refund.out_trade_no.to_string(),
        amount: Some(money_to_pb(refund.amount)),
        reason: refund.reason,
        status: refund_status_to_pb(refund.status).into(),
        provider_code: refund.provider_code,
        message: refund.message,
        refund_id: refund.refund_id,
        created_at: Some(timestamp(refund.created_at)),
        lane_id: refund.lane_id.to_string(),
    }
}

/// A coupon's discount as the protocol carries it: an amount off, or a percentage.
pub(super) fn discount_to_pb(discount: checkout_storage::CouponDiscount) -> (Option<pb::Money>, u32) {
    match discount {
        checkout_storage::CouponDiscount::AmountOff(amount) => (Some(money_to_pb(amount)), 0),
        checkout_storage::CouponDiscount::PercentOff(percent) => (None, percent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: i64 = 100_000;

    fn line(gtin: &str, quantity: u32, unit_price: Option<(i64, &str)>) -> pb::SaleLine {
        pb::SaleLine {
            gtin: gtin.into(),
            quantity,
            unit_price: unit_price.map(|(minor_units, currency)| pb::Money { minor_units, currency: currency.into() }),
        }
    }

    fn refusal(lines: Vec<pb::SaleLine>) -> (String, String) {
        match lines_from_pb(lines, Currency::CNY, CAP) {
            Err(CoordinatorError::InvalidArgument { field, reason }) => (field, reason),
            other => panic!("not refused as an invalid argument: {other:?}"),
        }
    }

    #[test]
    fn a_typed_price_travels_and_other_lines_have_none() {
        let lines = vec![
            line("6901234000016", 2, None),
            line("2000000000015", 1, Some((1250, "CNY"))),
            line("2000000000015", 1, Some((320, "CNY"))),
            line("2000000000015", 3, Some((CAP, "CNY"))),
        ];
        let read = lines_from_pb(lines, Currency::CNY, CAP).unwrap();
        let milk = ProductCode::parse("6901234000016").unwrap();
        let bakery = ProductCode::parse("2000000000015").unwrap();
        let cny = |fen| Money::new(fen, Currency::CNY);
        assert_eq!(
            read,
            vec![
                OrderLine::catalog(milk, 2),
                OrderLine::open_price(bakery.clone(), 1, cny(1250)),
                OrderLine::open_price(bakery.clone(), 1, cny(320)),
                OrderLine::open_price(bakery, 3, cny(CAP)),
            ]
        );
    }

    #[test]
    fn a_typed_price_out_of_bounds_or_in_another_currency_is_refused() {
        let bakery = "2000000000015";
        let at = |price| vec![line("6901234000016", 1, None), line(bakery, 1, Some(price))];
        let (field, reason) = refusal(at((CAP + 1, "CNY")));
        assert_eq!(field, "lines[1].unit_price");
        assert!(reason.contains("1000.00 CNY"), "{reason}");
        for price in [0, -1250] {
            assert_eq!(refusal(at((price, "CNY"))).0, "lines[1].unit_price", "{price}");
        }
        assert_eq!(refusal(at((1250, "USD"))).0, "lines[1].unit_price.currency");
        assert_eq!(refusal(at((1250, "yuan"))).0, "lines[1].unit_price.currency");
    }
}
