//! Every conversion between the coordinator's generated (protobuf) types and the lane's own: the rest of the
//! crate builds and reads domain types, and only hands generated ones to the client.

use checkout_proto::{Timestamp, v1 as pb};
use checkout_storage::{
    Currency, FinishedSale, LaneId, Money, OrderLine, Product, ProductCode, ShiftCount, ShiftId, ShiftRecord,
    UnixMillis,
};

use crate::{
    actors::till::{
        basket::OpenSale,
        charge::{Charge, PayFlow},
    },
    error::LaneError,
    events::{LaneEventKind, LaneSummary},
};

/// What the lane tells the store about itself at registration.
pub(crate) fn register_request(lane_id: &LaneId) -> pb::RegisterLaneRequest {
    pb::RegisterLaneRequest {
        lane_id: lane_id.to_string(),
        description: format!("checkout lane {}", env!("CARGO_PKG_VERSION")),
    }
}

/// What the lane sends to enrol: its id and its new token's SHA-256.
pub(crate) fn enrol_request(lane_id: &LaneId, token_sha256: String) -> pb::EnrolLaneRequest {
    pb::EnrolLaneRequest { lane_id: lane_id.to_string(), token_sha256 }
}

/// The store's id, currency and catalog, from its answer to registration.
/// What registration tells a lane: the store, its currency, its catalog and the key of its member codes
/// (`None` from a coordinator that has none).
pub(crate) type Registered = (String, Currency, Vec<Product>, Option<checkout_storage::MemberKey>, Promotions);

/// The store's promotions as a lane prices with them, and their version.
#[derive(Debug, Clone, Default)]
pub struct Promotions {
    pub version: u64,
    pub list: Vec<checkout_storage::PromotionRecord>,
}

/// A promotion from the store; `None` for one this lane cannot read (left out, and logged).
fn promotion_from_pb(p: pb::Promotion) -> Option<checkout_storage::PromotionRecord> {
    use checkout_storage::{PromotionId, PromotionKind, PromotionRecord};
    let read = || -> Result<PromotionRecord, String> {
        let kind = match (p.price_off, p.buy_n) {
            (Some(off), 0) => {
                let currency = Currency::parse(&off.currency).map_err(|e| e.to_string())?;
                PromotionKind::PriceOff(Money::new(off.minor_units, currency))
            }
            (None, n) if n > 0 => PromotionKind::BuyNGetOneFree(n),
            _ => return Err("neither a price off nor buy N".into()),
        };
        let millis = |t: Option<checkout_proto::Timestamp>| {
            t.map(|t| UnixMillis(t.seconds * 1000 + i64::from(t.nanos) / 1_000_000))
        };
        Ok(PromotionRecord {
            promotion_id: PromotionId::parse(&p.promotion_id).map_err(|e| e.to_string())?,
            gtin: ProductCode::parse(&p.gtin).map_err(|e| e.to_string())?,
            kind,
            valid_from: millis(p.valid_from).unwrap_or(UnixMillis(0)),
            valid_until: millis(p.valid_until).ok_or("no end")?,
            ended_at: millis(p.ended_at),
            name: p.name,
        })
    };
    read().map_err(|e| tracing::warn!(error = %e, "a promotion from the store is unreadable: left out")).ok()
}

/// The promotions a registration or a heartbeat answer carries.
pub(crate) fn promotions_from_pb(version: u64, list: Vec<pb::Promotion>) -> Promotions {
    Promotions { version, list: list.into_iter().filter_map(promotion_from_pb).collect() }
}

pub(crate) fn catalog_from_pb(response: pb::RegisterLaneResponse) -> Result<Registered, LaneError> {
    let currency = Currency::parse(&response.currency).map_err(|e| LaneError::BadCatalog(e.to_string()))?;
    let products = response
        .products
        .into_iter()
        .map(|p| {
            let gtin = ProductCode::parse(&p.gtin).map_err(|e| LaneError::BadCatalog(format!("{}: {e}", p.gtin)))?;
            let price = p.price.ok_or_else(|| LaneError::BadCatalog(format!("{gtin} has no price")))?;
            let currency = Currency::parse(&price.currency).map_err(|e| LaneError::BadCatalog(e.to_string()))?;
            Ok(Product { gtin, name: p.name, price: Money::new(price.minor_units, currency) })
        })
        .collect::<Result<_, LaneError>>()?;
    let member_key = checkout_storage::MemberKey::from_bytes(&response.member_code_key);
    let promotions = promotions_from_pb(response.promotions_version, response.promotions);
    Ok((response.store_id, currency, products, member_key, promotions))
}

/// The lane's state for the store: closed, paying, scanning a basket, or idle.
pub(crate) fn heartbeat_request(
    lane_id: &LaneId,
    sale: Option<&OpenSale>,
    paying: bool,
    closed: bool,
    summary: &LaneSummary,
    promotions_version: u64,
) -> pb::HeartbeatRequest {
    let state = match (sale, paying, closed) {
        (_, _, true) => pb::LaneState::Closed,
        (_, true, _) => pb::LaneState::Paying,
        (Some(_), _, _) => pb::LaneState::Scanning,
        (None, _, _) => pb::LaneState::Idle,
    };
    pb::HeartbeatRequest {
        lane_id: lane_id.to_string(),
        state: state.into(),
        sale_id: sale.map(|s| s.sale_id.to_string()).unwrap_or_default(),
        basket_items: sale.map(OpenSale::items).unwrap_or(0),
        basket_total: sale.map(|s| money_to_pb(s.total)),
        frames_decoded: summary.frames,
        codes_read: summary.codes_read,
        promotions_version,
        // The attempt under way, so the store can say how its charge goes.
        attempt: sale.filter(|_| paying).map_or(0, |s| s.attempts),
    }
}

/// The `Pay` of one charge.
pub(crate) fn pay_request(charge: &Charge) -> pb::PayRequest {
    pb::PayRequest {
        lane_id: charge.lane_id.to_string(),
        sale_id: charge.sale_id.to_string(),
        attempt: charge.attempt,
        payment_code: charge.code.expose_digits().to_owned(),
        lines: sale_lines(&charge.lines),
        amount: Some(money_to_pb(charge.total)),
        shift_id: shift_id(charge.shift_id.as_ref()),
        started_at: Some(timestamp(charge.started_at)),
        member_id: charge.member_id.as_ref().map(ToString::to_string).unwrap_or_default(),
        coupon_id: charge.coupon_id.clone().unwrap_or_default(),
    }
}

/// How the store's answer to `Pay` ends the charge for the lane.
pub(crate) fn pay_flow(response: pb::PayResponse) -> PayFlow {
    match pb::PaymentOutcome::try_from(response.outcome) {
        Ok(pb::PaymentOutcome::Paid) => PayFlow::Paid {
            provider: provider_name(response.provider),
            masked_code: response.masked_code,
            out_trade_no: response.out_trade_no,
        },
        Ok(pb::PaymentOutcome::NewCodeNeeded | pb::PaymentOutcome::Failed) => {
            PayFlow::Declined { message: response.message }
        }
        _ => PayFlow::Uncertain { message: response.message },
    }
}

/// A paid sale for the store, from the outbox.
pub(crate) fn finish_sale_request(sale: &FinishedSale) -> pb::FinishSaleRequest {
    pb::FinishSaleRequest {
        lane_id: sale.lane_id.to_string(),
        sale_id: sale.sale_id.to_string(),
        lines: sale_lines(&sale.lines),
        total: Some(money_to_pb(sale.total)),
        out_trade_no: sale.out_trade_no.to_string(),
        started_at: Some(timestamp(sale.started_at)),
        finished_at: Some(timestamp(sale.finished_at)),
        shift_id: shift_id(sale.shift_id.as_ref()),
    }
}

/// A shift's opening for the store, from the outbox.
pub(crate) fn open_shift_request(shift: &ShiftRecord) -> pb::OpenShiftRequest {
    pb::OpenShiftRequest {
        lane_id: shift.lane_id.to_string(),
        shift_id: shift.shift_id.to_string(),
        cashier_id: shift.cashier.to_string(),
        opened_at: Some(timestamp(shift.opened_at)),
    }
}

/// A shift's closing for the store, from the outbox.
/// A shift's closing, with what the lane counted in it when it did (`None`: an outbox of an earlier build).
pub(crate) fn close_shift_request(
    lane_id: &LaneId,
    shift_id: &ShiftId,
    closed_at: UnixMillis,
    counted: Option<&ShiftCount>,
) -> pb::CloseShiftRequest {
    pb::CloseShiftRequest {
        lane_id: lane_id.to_string(),
        shift_id: shift_id.to_string(),
        closed_at: Some(timestamp(closed_at)),
        counted: counted.is_some(),
        counted_sales: counted
            .map(|counted| {
                counted
                    .sales
                    .iter()
                    .map(|(sale_id, total)| pb::CountedSale {
                        sale_id: sale_id.to_string(),
                        total: Some(money_to_pb(*total)),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The store's end-of-shift report, for the cashier.
pub(crate) fn shift_report(report: pb::ShiftReport, currency: Currency) -> LaneEventKind {
    LaneEventKind::ShiftReport {
        shift_id: report.shift_id,
        cashier: report.cashier_id,
        sales: report.sales,
        items: report.items,
        total: report.sales_total.map(|total| money_from_pb(total, currency)).unwrap_or(Money::zero(currency)),
    }
}

/// The store's money; the lane's own currency stands in for a currency it cannot read.
fn money_from_pb(money: pb::Money, lane_currency: Currency) -> Money {
    Money::new(money.minor_units, Currency::parse(&money.currency).unwrap_or(lane_currency))
}

fn money_to_pb(money: Money) -> pb::Money {
    pb::Money { minor_units: money.minor_units, currency: money.currency.to_string() }
}

fn timestamp(at: UnixMillis) -> Timestamp {
    Timestamp { seconds: at.0.div_euclid(1000), nanos: (at.0.rem_euclid(1000) * 1_000_000) as i32 }
}

fn sale_lines(lines: &[OrderLine]) -> Vec<pb::SaleLine> {
    lines
        .iter()
        .map(|line| pb::SaleLine {
            gtin: line.gtin.to_string(),
            quantity: line.quantity,
            // Only an open-price item's line carries the price the cashier typed; the store prices the rest.
            unit_price: line.typed_price.map(money_to_pb),
        })
        .collect()
}

/// A shift id, or empty when there is none.
fn shift_id(shift_id: Option<&ShiftId>) -> String {
    shift_id.map(ToString::to_string).unwrap_or_default()
}

fn provider_name(provider: i32) -> String {
    match pb::Provider::try_from(provider) {
        Ok(pb::Provider::WechatPay) => "WeChat Pay",
        Ok(pb::Provider::Alipay) => "Alipay",
        Ok(pb::Provider::Unionpay) => "UnionPay QuickPass",
        _ => "an unknown provider",
    }
    .to_owned()
}

/// A coupon the store holds for the sale, as the till keeps it.
pub(crate) struct CouponAnswer {
    pub coupon_id: String,
    pub note: String,
    pub held: crate::actors::till::basket::HeldCoupon,
}

/// The store's answer to `HoldCoupon`; why it is unusable, when it is.
pub(crate) fn held_coupon(answer: pb::CouponAtTill) -> Result<CouponAnswer, String> {
    let money = |m: pb::Money| -> Result<Money, String> {
        let currency = Currency::parse(&m.currency).map_err(|e| e.to_string())?;
        Ok(Money::new(m.minor_units, currency))
    };
    let discount = match (answer.amount_off, answer.percent_off) {
        (Some(amount), 0) => checkout_storage::CouponDiscount::AmountOff(money(amount)?),
        (None, percent @ 1..=100) => checkout_storage::CouponDiscount::PercentOff(percent),
        _ => return Err(format!("the store's answer for coupon {} is unusable", answer.coupon_id)),
    };
    let min_basket = money(answer.min_basket.unwrap_or_default()).unwrap_or(Money::zero(Currency::CNY));
    Ok(CouponAnswer {
        coupon_id: answer.coupon_id.clone(),
        note: answer.note,
        held: crate::actors::till::basket::HeldCoupon { coupon_id: answer.coupon_id, discount, min_basket },
    })
}
