//! A charge as the till sees it: what one `Pay` asks for, and how it ended.

use checkout_storage::{LaneId, MemberId, Money, OrderLine, PaymentCode, SaleId, ShiftId, UnixMillis};

/// One `Pay`: the open sale's basket and the customer's code. The same charge sent again is the same
/// request (same sale and attempt), so the store never charges it twice.
#[derive(Clone)]
pub(crate) struct Charge {
    pub lane_id: LaneId,
    pub sale_id: SaleId,
    /// 1 for the first code shown for this sale; each fresh code is the next attempt.
    pub attempt: u32,
    pub code: PaymentCode,
    /// Basket lines in scan order, an open-price item's with the price the cashier typed.
    pub lines: Vec<OrderLine>,
    /// The total the lane showed the customer.
    pub total: Money,
    /// The cashier's shift, when one is open.
    pub shift_id: Option<ShiftId>,
    /// The sale's first scan.
    pub started_at: UnixMillis,
    /// The member whose code was scanned for the sale.
    pub member_id: Option<MemberId>,
    /// The coupon taken off the basket (`total` is then the basket less its discount).
    pub coupon_id: Option<String>,
}

/// How a payment ended, as the lane sees it.
pub(crate) enum PayFlow {
    /// Paid: the store's answer, for the cashier and the outbox.
    Paid { provider: String, masked_code: String, out_trade_no: String },
    /// Declined: another code or way to pay is needed.
    Declined { message: String },
    /// Not known yet: the till asks again until it is.
    Uncertain { message: String },
    /// The coordinator refused the request itself (bad code, unreachable...).
    Refused { message: String },
}
