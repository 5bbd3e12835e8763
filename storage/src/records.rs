//! The records the store keeps: products, lanes, sales and charge attempts.

use serde::{Deserialize, Serialize};

use crate::{
    Attempt, CashierId, CodeFingerprint, LaneId, MaskedCode, Money, OutTradeNo, ProductCode, Provider, SaleId, ShiftId,
    UnixMillis,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub gtin: ProductCode,
    pub name: String,
    pub price: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneRecord {
    pub lane_id: LaneId,
    pub description: String,
    pub registered_at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleLine {
    pub gtin: ProductCode,
    pub quantity: u32,
    pub unit_price: Money,
}

/// A finished, paid sale: recorded by the coordinator the moment its charge is paid,
/// from the basket the lane sent with the charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleRecord {
    pub lane_id: LaneId,
    pub sale_id: SaleId,
    /// The cashier's shift the sale was rung up in, when the lane had one open.
    pub shift_id: Option<ShiftId>,
    pub lines: Vec<SaleLine>,
    pub total: Money,
    pub out_trade_no: OutTradeNo,
    pub started_at: UnixMillis,
    pub finished_at: UnixMillis,
}

impl SaleRecord {
    pub fn items(&self) -> u64 {
        self.lines.iter().map(|l| u64::from(l.quantity)).sum()
    }
}

/// Where a charge attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChargeStatus {
    /// The intent is recorded; the provider has not answered yet.
    Pending,
    /// Money moved.
    Paid,
    /// The customer must show a fresh code or pay another way; nothing was charged.
    NewCodeNeeded,
    /// This order definitely failed; nothing was charged.
    Failed,
    /// The provider's answer did not settle it; it must be queried and, if not paid, reversed.
    Unknown,
    /// A reversal is owed (not paid in time, or paid twice for one sale) and not yet confirmed.
    Reversing,
    /// Reversed: the order is closed and any money taken went back to the customer.
    Reversed,
}

impl ChargeStatus {
    /// Nothing more will happen to a charge in a final state.
    pub fn is_final(self) -> bool {
        matches!(self, ChargeStatus::Paid | ChargeStatus::NewCodeNeeded | ChargeStatus::Failed | ChargeStatus::Reversed)
    }
}

/// One step in a charge's history: what was asked or answered, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeEvent {
    pub at: UnixMillis,
    /// For example "micropay: USERPAYING", "query: paid", "reverse: call again".
    pub what: String,
}

/// One charge attempt: recorded as `Pending` before the provider is called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRecord {
    pub out_trade_no: OutTradeNo,
    pub lane_id: LaneId,
    pub sale_id: SaleId,
    pub attempt: Attempt,
    pub provider: Provider,
    pub masked_code: MaskedCode,
    /// The code's keyed hash (see [`crate::CodeFingerprint`]): the code itself is never stored.
    pub code_fingerprint: CodeFingerprint,
    pub amount: Money,
    pub status: ChargeStatus,
    /// The provider's own answer code ("SUCCESS", "NOTENOUGH", ...), empty while pending.
    pub provider_code: String,
    /// What the cashier should do, in words.
    pub message: String,
    pub provider_transaction_id: String,
    pub created_at: UnixMillis,
    pub settled_at: Option<UnixMillis>,
    /// The basket this charge pays for, priced from the catalog when the intent was recorded,
    /// so a paid charge makes its sale whatever happens to the lane afterwards.
    pub lines: Vec<SaleLine>,
    pub shift_id: Option<ShiftId>,
    /// When the lane started the sale (its first scan).
    pub sale_started_at: UnixMillis,
    /// When another attempt paid this sale first, that attempt: this one is reversed as surplus.
    pub superseded_by: Option<OutTradeNo>,
    /// Every provider call and answer, oldest first.
    pub events: Vec<ChargeEvent>,
}

impl ChargeRecord {
    pub fn log(&mut self, what: impl Into<String>) {
        self.events.push(ChargeEvent { at: UnixMillis::now(), what: what.into() });
    }
}

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RefundStatus {
    /// Recorded before the provider was asked.
    Pending,
    Accepted,
    Refused,
    /// Asked, but the answer did not settle it: repeat with the same refund number.
    Unknown,
}

/// A refund of part or all of a paid charge, keyed by the merchant's `out_refund_no`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    pub out_refund_no: String,
    pub out_trade_no: OutTradeNo,
    pub lane_id: LaneId,
    pub amount: Money,
    pub reason: String,
    pub status: RefundStatus,
    pub provider_code: String,
    pub message: String,
    pub refund_id: String,
    pub created_at: UnixMillis,
    pub settled_at: Option<UnixMillis>,
}

/// A cashier's shift at a lane, from sign-on to sign-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftRecord {
    pub shift_id: ShiftId,
    pub lane_id: LaneId,
    pub cashier: CashierId,
    pub opened_at: UnixMillis,
    pub closed_at: Option<UnixMillis>,
    /// How it closed: "signed off", or "the next shift on the lane opened" when the lane never said.
    pub closed_how: String,
}
