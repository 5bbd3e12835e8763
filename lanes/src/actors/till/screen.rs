//! The till's side of the lane's screens: what it keeps for them (the outcome of the last payment, the
//! notice, the shift's tally) and the state it publishes after every change.

use checkout_storage::{Currency, Money, PaymentCode, Product};
use tokio::sync::watch;

use super::basket::OpenSale;
use crate::{
    events::LaneEventKind,
    screen::state::{
        Amount, BasketView, DiscountView, LineView, Notice, OpenPriceView, PaymentPhase, ScreenState, ShiftTally,
    },
};

/// How the till treats the cashier's screen: where it publishes and the limits the cashier works within.
#[derive(Debug, Clone)]
pub struct TillScreen {
    /// Where the till publishes its state (the screens' server holds the receivers).
    pub publish: watch::Sender<ScreenState>,
    /// Charges above this many minor units wait for the cashier to confirm the amount.
    pub confirm_above: Option<i64>,
    /// The most an open-price item may be typed at, in minor units.
    pub open_price_cap: i64,
}

/// An open-price item scanned or keyed: its price typed (or not yet), waiting for the confirming key press.
pub(crate) struct PendingOpenPrice {
    pub product: Product,
    pub price: Option<Money>,
}

/// What the screens keep besides the basket: filled in by the till as things happen.
pub(crate) struct ScreenMemory {
    pub publish: Option<watch::Sender<ScreenState>>,
    pub confirm_above: Option<Money>,
    pub open_price_cap: Money,
    pub seq: u64,
    /// How the last payment ended (declined or paid), until the next sale starts or the next code is shown.
    pub outcome: Option<PaymentPhase>,
    /// The basket just paid, shown until the next sale starts.
    pub paid_basket: Option<BasketView>,
    pub notice: Option<Notice>,
    pub scanner_hint: Option<String>,
    /// Sales, items and amount paid in the cashier's shift.
    pub shift: (u64, u64, Money),
    /// A code read for an amount above the threshold, held until the cashier confirms (never written down).
    pub held_code: Option<(PaymentCode, std::time::Instant)>,
    /// The code being charged, masked.
    pub charging: Option<String>,
    /// How the charge under way goes, as the store last said.
    pub step: super::client::ChargeStep,
    pub open_price: Option<PendingOpenPrice>,
}

/// The default cap of an open-price item: 500 yuan.
pub const OPEN_PRICE_CAP_DEFAULT: i64 = 50_000;

impl ScreenMemory {
    pub fn new(screen: Option<TillScreen>, currency: Currency) -> ScreenMemory {
        let (publish, confirm_above, cap) = match screen {
            Some(s) => (Some(s.publish), s.confirm_above, s.open_price_cap),
            None => (None, None, OPEN_PRICE_CAP_DEFAULT),
        };
        ScreenMemory {
            publish,
            confirm_above: confirm_above.map(|m| Money::new(m, currency)),
            open_price_cap: Money::new(cap, currency),
            seq: 0,
            outcome: None,
            paid_basket: None,
            notice: None,
            scanner_hint: None,
            shift: (0, 0, Money::zero(currency)),
            held_code: None,
            charging: None,
            step: super::client::ChargeStep::default(),
            open_price: None,
        }
    }

    /// Keeps the event for the cashier's message line (and the scanner's hint apart).
    pub fn note(&mut self, kind: &LaneEventKind, text: String) {
        if let LaneEventKind::ReadHint { hint } = kind {
            self.scanner_hint = Some(hint.clone());
            return;
        }
        let (kind, level) = notice_kind(kind);
        self.notice = Some(Notice { kind, level, text });
    }
}

/// The basket as the screens show it.
pub(crate) fn basket_view(sale: &OpenSale) -> BasketView {
    let mut discounts: Vec<DiscountView> =
        sale.promotion_lines.iter().map(|d| DiscountView { name: d.name.clone(), amount: d.amount.into() }).collect();
    let coupon_off = sale.discount();
    if let Some(coupon) = sale.coupon.as_ref().filter(|_| coupon_off.minor_units > 0) {
        discounts.push(DiscountView { name: format!("coupon {}", coupon.coupon_id), amount: coupon_off.into() });
    }
    BasketView {
        sale_id: sale.sale_id.to_string(),
        lines: sale
            .lines
            .iter()
            .map(|l| LineView {
                name: l.name.clone(),
                gtin: l.gtin.to_string(),
                quantity: l.quantity,
                unit_price: l.unit_price.into(),
                line_total: l.line_total().map(Amount::from).unwrap_or_else(|_| l.unit_price.into()),
                typed: l.typed,
            })
            .collect(),
        discounts,
        items: sale.items(),
        total: sale.total.into(),
        to_pay: sale.to_pay().into(),
        member: sale.member_id.as_ref().map(ToString::to_string),
    }
}

/// The till's state for its screens.
pub(crate) struct TillView<'a> {
    pub lane_id: String,
    pub cashier: Option<String>,
    pub shift_id: Option<String>,
    pub paused: bool,
    pub closed_by_store: Option<String>,
    pub reachable: bool,
    pub sale: Option<&'a OpenSale>,
    pub paying: bool,
    pub uncertain: Option<String>,
}

impl ScreenMemory {
    /// Publishes the till's state to its screens (nothing when it has none).
    pub fn publish(&mut self, till: TillView<'_>) {
        let Some(publish) = &self.publish else { return };
        self.seq += 1;
        let payment = if let (Some((code, _)), Some(sale)) = (&self.held_code, till.sale) {
            PaymentPhase::ConfirmAmount { amount: sale.to_pay().into(), masked_code: code.masked().to_string() }
        } else if till.paying {
            PaymentPhase::Charging { masked_code: self.charging.clone().unwrap_or_default(), step: self.step.name() }
        } else if let Some(message) = till.uncertain {
            PaymentPhase::Uncertain { message }
        } else if let Some(outcome) = &self.outcome {
            outcome.clone()
        } else if till.sale.is_some() {
            PaymentPhase::Scanning
        } else {
            PaymentPhase::Idle
        };
        let state = ScreenState {
            seq: self.seq,
            lane_id: till.lane_id,
            cashier: till.cashier,
            shift_id: till.shift_id,
            paused: till.paused,
            closed_by_store: till.closed_by_store,
            store_reachable: till.reachable,
            basket: till.sale.map(basket_view).or_else(|| self.paid_basket.clone()),
            payment,
            open_price: self
                .open_price
                .as_ref()
                .map(|p| OpenPriceView { name: p.product.name.clone(), price: p.price.map(Amount::from) }),
            scanner_hint: self.scanner_hint.clone(),
            notice: self.notice.clone(),
            shift: ShiftTally { sales: self.shift.0, items: self.shift.1, total: self.shift.2.into() },
            open_price_cap: self.open_price_cap.into(),
            confirm_above: self.confirm_above.map(Amount::from),
        };
        publish.send_replace(state);
    }
}

/// The notice's kind and level for an event.
fn notice_kind(kind: &LaneEventKind) -> (&'static str, &'static str) {
    match kind {
        LaneEventKind::ItemAdded { .. } => ("item_added", "info"),
        LaneEventKind::UnknownProduct { .. } => ("unknown_product", "warn"),
        LaneEventKind::Unrecognised { .. } => ("unrecognised", "warn"),
        LaneEventKind::ScanItemsFirst => ("scan_items_first", "warn"),
        LaneEventKind::SalePaid { .. } => ("paid", "info"),
        LaneEventKind::MemberAttached { .. } => ("member", "info"),
        LaneEventKind::MemberRefused { .. } => ("member_refused", "warn"),
        LaneEventKind::CouponApplied { .. } => ("coupon", "info"),
        LaneEventKind::BasketDiscounts { .. } => ("discounts", "info"),
        LaneEventKind::CouponRefused { .. } => ("coupon_refused", "warn"),
        LaneEventKind::SaleDelivered { .. } => ("delivered", "info"),
        LaneEventKind::PaymentDeclined { .. } => ("declined", "error"),
        LaneEventKind::PaymentUncertain { .. } => ("uncertain", "error"),
        LaneEventKind::FrameSkipped { .. } => ("frame_skipped", "warn"),
        LaneEventKind::ReadHint { .. } => ("read_hint", "warn"),
        LaneEventKind::CoordinatorUnreachable { .. } => ("store_unreachable", "error"),
        LaneEventKind::CoordinatorReachable => ("store_reachable", "info"),
        LaneEventKind::WalletPaymentsUnavailable => ("wallets_unavailable", "error"),
        LaneEventKind::ShiftOpened { .. } => ("signed_on", "info"),
        LaneEventKind::ShiftReport { .. } => ("shift_report", "info"),
        LaneEventKind::LaneClosedByStore { .. } => ("closed_by_store", "warn"),
        LaneEventKind::LaneOpenedByStore => ("opened_by_store", "info"),
        LaneEventKind::BasketChanged { .. } => ("basket_changed", "info"),
        LaneEventKind::SaleCancelled { .. } => ("cancelled", "warn"),
        LaneEventKind::OpenPriceAsked { .. } => ("open_price", "info"),
        LaneEventKind::AmountToConfirm { .. } => ("confirm_amount", "warn"),
        LaneEventKind::Paused(_) => ("paused", "info"),
        LaneEventKind::SignedOff { .. } => ("signed_off", "info"),
        LaneEventKind::ScanNotTaken { .. } => ("scan_not_taken", "warn"),
        LaneEventKind::Problem { .. } => ("problem", "error"),
    }
}
