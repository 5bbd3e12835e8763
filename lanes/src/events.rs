//! What a lane reports: events for its cashier (and the demo, which prints them) and the summary of its run.

use std::{fmt, time::Duration};

use checkout_storage::{Currency, LaneId, Money};

/// What a lane shows its cashier, and the demo prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaneEventKind {
    /// A product went into the basket (a new sale starts with its first product).
    ItemAdded {
        /// The sale the basket belongs to.
        sale_id: String,
        /// The product's name in the catalog.
        name: String,
        /// Its price.
        price: Money,
        /// Items in the basket now.
        basket_items: u32,
        /// What the basket comes to now.
        basket_total: Money,
    },
    /// A product code that is not in the store's catalog.
    UnknownProduct {
        /// The code read.
        gtin: String,
    },
    /// A code that is neither a product nor a payment code.
    Unrecognised {
        /// What the code looked like, and why it was not taken.
        reason: String,
    },
    /// A payment code shown before any item.
    ScanItemsFirst,
    /// The customer paid: the sale is over and goes to the store through the outbox.
    SalePaid {
        /// The sale.
        sale_id: String,
        /// Items bought.
        items: u32,
        /// What the customer paid.
        total: Money,
        /// The wallet's provider, by name.
        provider: String,
        /// The payment code, masked.
        masked_code: String,
        /// The store's order number of the charge.
        out_trade_no: String,
    },
    /// A member code was scanned and checked: the member goes with the sale (points once it is paid).
    MemberAttached {
        /// The member.
        member_id: String,
        /// Their name, or empty when the store could not be asked (the code checked out on the lane).
        name: String,
        /// Their points before this sale, when the store answered.
        points: Option<i64>,
    },
    /// A member code was refused: misread, altered, not this store's, unknown or blocked.
    MemberRefused {
        /// Why, in words for the cashier.
        reason: String,
    },
    /// A coupon was scanned into the sale and the store holds it for this sale: its discount is a line of
    /// its own, and the customer pays the basket less it.
    CouponApplied {
        /// The coupon.
        coupon_id: String,
        /// What it is for.
        note: String,
        /// What it takes off the basket now (nothing until the basket reaches its minimum).
        discount: Money,
        /// What the customer pays now.
        to_pay: Money,
    },
    /// The promotions in force take something off the basket (or no longer do): each as its own line.
    BasketDiscounts {
        /// The promotion's name and what it takes off.
        lines: Vec<(String, Money)>,
        /// What the customer pays now.
        to_pay: Money,
    },
    /// A coupon was refused: misread, forged, used, held by another sale, void or not valid today.
    CouponRefused {
        /// Why, in words for the cashier.
        reason: String,
    },
    /// A paid sale's record reached the store and is durable there (it left the lane's outbox).
    SaleDelivered {
        /// The sale.
        sale_id: String,
    },
    /// The charge was declined (or the store refused the request): another code or way to pay is needed.
    PaymentDeclined {
        /// The sale.
        sale_id: String,
        /// Why, in words for the cashier.
        message: String,
    },
    /// The charge's outcome is not known yet: the goods stay until it is.
    PaymentUncertain {
        /// The sale.
        sale_id: String,
        /// What the cashier should do, in words.
        message: String,
    },
    /// A frame that could not be loaded or decoded.
    FrameSkipped {
        /// Why.
        reason: String,
    },
    /// A code is in view but cannot be read; what might help.
    ReadHint {
        /// What the customer or cashier can do about it.
        hint: String,
    },
    /// The store stopped answering: wallet payments pause, sales stay on the lane.
    CoordinatorUnreachable {
        /// The failed heartbeat's error.
        reason: String,
    },
    /// The store answers again.
    CoordinatorReachable,
    /// A payment code shown while the store is unreachable: it cannot be charged later.
    WalletPaymentsUnavailable,
    /// The cashier signed on (or a shift left open by a crash was resumed).
    ShiftOpened {
        /// The shift.
        shift_id: String,
        /// The cashier signed on.
        cashier: String,
        /// Whether it is a shift an earlier run left open.
        resumed: bool,
    },
    /// The store's end-of-shift report.
    ShiftReport {
        /// The shift.
        shift_id: String,
        /// Its cashier.
        cashier: String,
        /// Sales paid in the shift.
        sales: u64,
        /// Items in those sales.
        items: u64,
        /// What those sales came to.
        total: Money,
    },
    /// A manager closed the lane: the customer being served finishes, no new sale starts.
    LaneClosedByStore {
        /// Who closed it, when and why.
        message: String,
    },
    /// A manager opened the lane again.
    LaneOpenedByStore,
    /// The cashier changed the basket (a line taken out, a quantity changed).
    BasketChanged {
        /// The sale.
        sale_id: String,
        /// Items in the basket now.
        basket_items: u32,
        /// What the basket comes to now.
        basket_total: Money,
    },
    /// The cashier cancelled the sale before it was paid: nothing was charged.
    SaleCancelled {
        /// The sale.
        sale_id: String,
        /// Items that were in the basket.
        items: u32,
    },
    /// An open-price item needs its price typed, or a typed price waits for the confirming key press.
    OpenPriceAsked {
        /// The product.
        name: String,
        /// The price typed, once typed.
        price: Option<Money>,
    },
    /// A payment code was read for an amount above the lane's threshold: the cashier confirms the amount first.
    AmountToConfirm {
        /// The sale.
        sale_id: String,
        /// What the code would be charged.
        amount: Money,
    },
    /// The cashier paused the lane (`true`) or resumed it.
    Paused(bool),
    /// Scans were not taken: the lane is paused or no cashier is signed on.
    ScanNotTaken {
        /// Why, in words for the cashier.
        reason: String,
    },
    /// The cashier signed off: the lane takes no scans until someone signs on.
    SignedOff {
        /// Who signed off.
        cashier: String,
    },
    /// Something the cashier should know that fits no other event (a disk or outbox failure).
    Problem {
        /// What happened, in words.
        message: String,
    },
}

/// One event of one lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneEvent {
    /// The lane it happened on.
    pub lane_id: LaneId,
    /// What happened.
    pub kind: LaneEventKind,
}

impl fmt::Display for LaneEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lane = &self.lane_id;
        match &self.kind {
            LaneEventKind::ItemAdded { name, price, basket_items, basket_total, .. } => {
                write!(f, "{lane}: {name} {price} ({basket_items} items, {basket_total})")
            }
            LaneEventKind::UnknownProduct { gtin } => write!(f, "{lane}: product {gtin} is not in the price file"),
            LaneEventKind::Unrecognised { reason } => write!(f, "{lane}: {reason}"),
            LaneEventKind::ScanItemsFirst => {
                write!(f, "{lane}: payment code scanned with an empty basket: scan items first")
            }
            LaneEventKind::SalePaid { sale_id, items, total, provider, masked_code, .. } => {
                write!(f, "{lane}: sale {sale_id} paid: {items} items, {total} by {provider} {masked_code}")
            }
            LaneEventKind::MemberAttached { member_id, name, points: Some(points) } => {
                write!(f, "{lane}: member {name} ({member_id}), {points} points")
            }
            LaneEventKind::MemberAttached { member_id, .. } => {
                write!(
                    f,
                    "{lane}: member {member_id} (the store's records are out of reach: points come with the sale)"
                )
            }
            LaneEventKind::MemberRefused { reason } => write!(f, "{lane}: member code refused: {reason}"),
            LaneEventKind::CouponApplied { coupon_id, note, discount, to_pay } => {
                write!(f, "{lane}: coupon {coupon_id} ({note}): -{discount}, to pay {to_pay}")
            }
            LaneEventKind::CouponRefused { reason } => write!(f, "{lane}: coupon refused: {reason}"),
            LaneEventKind::BasketDiscounts { lines, to_pay } => {
                let lines: Vec<String> = lines.iter().map(|(name, off)| format!("{name} -{off}")).collect();
                write!(f, "{lane}: {}; to pay {to_pay}", lines.join(", "))
            }
            LaneEventKind::SaleDelivered { sale_id } => write!(f, "{lane}: sale {sale_id} recorded by the store"),
            LaneEventKind::PaymentDeclined { sale_id, message } => {
                write!(f, "{lane}: sale {sale_id} not paid: {message}")
            }
            LaneEventKind::PaymentUncertain { sale_id, message } => write!(f, "{lane}: sale {sale_id}: {message}"),
            LaneEventKind::FrameSkipped { reason } => write!(f, "{lane}: frame skipped: {reason}"),
            LaneEventKind::ReadHint { hint } => write!(f, "{lane}: a code is in view but cannot be read: {hint}"),
            LaneEventKind::CoordinatorUnreachable { reason } => {
                write!(
                    f,
                    "{lane}: store system unreachable ({reason}): wallet payments paused, sales kept on this lane"
                )
            }
            LaneEventKind::CoordinatorReachable => write!(f, "{lane}: store system reachable again"),
            LaneEventKind::WalletPaymentsUnavailable => write!(
                f,
                "{lane}: store system offline: wallet codes cannot be charged now (they expire within a minute); ask for another payment method"
            ),
            LaneEventKind::ShiftOpened { shift_id, cashier, resumed: false } => {
                write!(f, "{lane}: {cashier} signed on (shift {shift_id})")
            }
            LaneEventKind::ShiftOpened { shift_id, cashier, resumed: true } => {
                write!(f, "{lane}: shift {shift_id} of {cashier} resumed")
            }
            LaneEventKind::ShiftReport { shift_id, cashier, sales, items, total } => {
                write!(f, "{lane}: shift {shift_id} of {cashier} closed: {sales} sales, {items} items, {total}")
            }
            LaneEventKind::LaneClosedByStore { message } => {
                write!(f, "{lane}: lane {message}: finish this customer, take no new one")
            }
            LaneEventKind::LaneOpenedByStore => write!(f, "{lane}: lane opened by the store"),
            LaneEventKind::BasketChanged { basket_items, basket_total, .. } => {
                write!(f, "{lane}: basket changed: {basket_items} items, {basket_total}")
            }
            LaneEventKind::SaleCancelled { sale_id, items } => {
                write!(f, "{lane}: sale {sale_id} cancelled with {items} items: nothing charged")
            }
            LaneEventKind::OpenPriceAsked { name, price: None } => write!(f, "{lane}: type the price of {name}"),
            LaneEventKind::OpenPriceAsked { name, price: Some(price) } => {
                write!(f, "{lane}: {name} at {price}: press Enter again to add it")
            }
            LaneEventKind::AmountToConfirm { sale_id, amount } => {
                write!(f, "{lane}: sale {sale_id}: check the amount {amount}, then confirm to charge")
            }
            LaneEventKind::Paused(true) => write!(f, "{lane}: lane paused"),
            LaneEventKind::Paused(false) => write!(f, "{lane}: lane open again"),
            LaneEventKind::ScanNotTaken { reason } => write!(f, "{lane}: scan not taken: {reason}"),
            LaneEventKind::SignedOff { cashier } => write!(f, "{lane}: {cashier} signed off"),
            LaneEventKind::Problem { message } => write!(f, "{lane}: {message}"),
        }
    }
}

/// What a lane did in its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneSummary {
    /// The lane.
    pub lane_id: LaneId,
    /// Sales paid.
    pub sales: u64,
    /// Items in the paid sales.
    pub items: u64,
    /// What the paid sales came to.
    pub paid_total: Money,
    /// Charges declined.
    pub declined: u64,
    /// Frames decoded (or skipped).
    pub frames: u64,
    /// Frames that could not be loaded or decoded.
    pub frames_skipped: u64,
    /// Codes read in all frames, before de-duplication.
    pub codes_read: u64,
    /// Codes that were neither a product nor a payment code.
    pub unrecognised: u64,
    /// Paid sales still in the lane's outbox when it stopped.
    pub undelivered: u64,
    /// Frame-to-scan-event latency of the frames that gave scans: the median.
    pub scan_latency_median: Duration,
    /// Frame-to-scan-event latency of the frames that gave scans: the 99th percentile.
    pub scan_latency_p99: Duration,
}

impl LaneSummary {
    /// A lane that has done nothing yet.
    pub(crate) fn new(lane_id: LaneId, currency: Currency) -> LaneSummary {
        LaneSummary {
            lane_id,
            sales: 0,
            items: 0,
            paid_total: Money::zero(currency),
            declined: 0,
            frames: 0,
            frames_skipped: 0,
            codes_read: 0,
            unrecognised: 0,
            undelivered: 0,
            scan_latency_median: Duration::ZERO,
            scan_latency_p99: Duration::ZERO,
        }
    }

    /// Sets the median and 99th percentile of frame-to-scan latency from those seen.
    pub(crate) fn set_scan_latencies(&mut self, latencies: &mut [Duration]) {
        latencies.sort();
        let at = |q: f64| {
            let n = latencies.len();
            let i = ((n as f64 * q).ceil() as usize).clamp(1, n.max(1)) - 1;
            latencies.get(i).copied().unwrap_or_default()
        };
        (self.scan_latency_median, self.scan_latency_p99) = (at(0.5), at(0.99));
    }
}
