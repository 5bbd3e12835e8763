//! Reconciling a day of the store's ledger against a provider's daily bill: the bill's domain types, its parsers (WeChat Pay's CSV, Alipay's zip of GBK CSVs) and the line-by-line matching.
//!
//! The API is three plain functions over plain types:
//!
//! - [`parse_wechat_bill`] reads what WeChat Pay v2 `pay/downloadbill` answers (CSV text, or its gzip
//!   when asked with `tar_type=GZIP`) into a [`Bill`];
//! - [`parse_alipay_bill`] reads the zip the URL of `alipay.data.dataservice.bill.downloadurl.query`
//!   serves (a details file and a summary file, GBK CSV) into a [`Bill`];
//! - [`reconcile`] matches the day's [`LedgerLine`]s against a [`Bill`] in linear time and returns a
//!   [`Reconciliation`]: every [`Difference`] sorted, and the day's totals on both sides.
//!
//! A bill is taken whole or refused whole: a [`BillError`] names the file, the line and the reason, and
//! nothing partial is returned. Everything read is bounded by [`BillLimits`] (input size, decompressed
//! size, line length, lines, zip entries). Money is integer fen (minor units of CNY); a yuan amount must
//! read exactly `12.34` (two decimals) to become 1234 fen, anything else is refused.

mod alipay_bill;
mod matching;
#[cfg(test)]
mod tests;
mod text;
mod wechat_bill;

use checkout_storage::{Provider, UnixMillis};
use serde::{Deserialize, Serialize};

pub use alipay_bill::{parse_alipay_bill, parse_alipay_bill_with};
pub use matching::reconcile;
pub use text::{parse_china_datetime, parse_yuan};
pub use wechat_bill::{parse_wechat_bill, parse_wechat_bill_with};

/// What one bill line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LineKind {
    /// Money taken from the customer (WeChat `SUCCESS`, Alipay 业务类型 交易).
    Charge,
    /// Money given back by a refund (WeChat `REFUND`, Alipay 退款 with a 退款批次号/请求号), keyed by `out_refund_no`.
    Refund,
    /// A charge reversed (WeChat `REVOKED`; Alipay: a 退款 without a request number, which `alipay.trade.cancel` leaves).
    Reversal,
}

/// One line of a provider's bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillLine {
    pub kind: LineKind,
    pub out_trade_no: String,
    /// The merchant's refund number of a refund line; `None` on charges and reversals.
    pub out_refund_no: Option<String>,
    /// Fen, positive: the amount charged, refunded or reversed.
    pub amount: i64,
    /// Fen the provider keeps for this line: positive when charged, negative when a fee is given back.
    pub fee: i64,
    /// When it happened (the bill's China Standard Time, as Unix milliseconds).
    pub time: UnixMillis,
    /// The provider's own number for the order (WeChat 微信订单号, Alipay 支付宝交易号).
    pub transaction_id: String,
}

/// A bill's totals as its own summary states them (checked against its lines when it is read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillTotals {
    /// Every line: charges, refunds and reversals.
    pub lines: u64,
    /// Fen charged.
    pub charged: i64,
    /// Fen given back by refunds and reversals.
    pub refunded: i64,
    /// Fen of fees, net of fees given back.
    pub fees: i64,
}

/// A provider's bill for one day, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bill {
    pub provider: Provider,
    /// `2026-11-25`: the day the bill states (Alipay's `#起始日期`); WeChat's bill states none, so the date of
    /// its first line (`None` for a bill without lines).
    pub day: Option<String>,
    /// In the bill's order.
    pub lines: Vec<BillLine>,
    /// The bill's own totals (WeChat's totals row, Alipay's summary file), which agree with `lines`.
    pub totals: BillTotals,
}

/// How much of a bill is read before it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillLimits {
    /// The bill as downloaded (gzip or zip included).
    pub max_input_bytes: usize,
    /// The text once decompressed (a zip's files together): a zip bomb stops here.
    pub max_text_bytes: u64,
    /// One line of text.
    pub max_line_bytes: usize,
    /// Lines of text, comments included.
    pub max_lines: usize,
    /// Entries of an Alipay zip.
    pub max_zip_entries: usize,
}

impl Default for BillLimits {
    /// 256 MiB downloaded, 768 MiB of text, 16 KiB a line, 4 million lines, 4 zip entries: a day of a
    /// million payments fits with room to spare.
    fn default() -> BillLimits {
        BillLimits {
            max_input_bytes: 256 * 1024 * 1024,
            max_text_bytes: 768 * 1024 * 1024,
            max_line_bytes: 16 * 1024,
            max_lines: 4_000_000,
            max_zip_entries: 4,
        }
    }
}

/// Why a bill was refused: where (the file inside a zip, the 1-based line; line 0 is the bill as a whole) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}line {line}: {reason}", file.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct BillError {
    /// The file inside an Alipay zip; `None` for WeChat's single file and for the zip as a whole.
    pub file: Option<String>,
    pub line: usize,
    pub reason: String,
}

impl BillError {
    pub(crate) fn at(line: usize, reason: impl Into<String>) -> BillError {
        BillError { file: None, line, reason: reason.into() }
    }

    pub(crate) fn in_file(mut self, file: &str) -> BillError {
        self.file = Some(file.to_owned());
        self
    }
}

/// Where an order stands, as the ledger knows it (for the ledger's lines) or as the bill shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OrderState {
    /// Paid, nothing given back.
    Paid,
    /// Paid, then refunded in part or in full.
    Refunded,
    /// Paid, then reversed (WeChat reverse, Alipay cancel): the whole amount went back.
    Reversed,
    /// The ledger does not know yet (pending, unknown, reversing).
    Pending,
    /// The ledger holds the charge as not paid (failed, new code needed, closed before payment).
    Failed,
}

/// One line of the store's ledger for the day, as the reconciliation reads it.
///
/// Give one `Charge` line for each order paid on the day (and for orders the ledger holds as `Pending` or
/// `Failed` that the provider might have booked), one `Refund` line for each refund made on the day and one
/// `Reversal` line for each paid order reversed on the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerLine {
    /// Lines of other providers than the bill's are left out of its reconciliation.
    pub provider: Provider,
    pub kind: LineKind,
    pub out_trade_no: String,
    /// The refund's number (Alipay `out_request_no`). A refund line without one is keyed by its `out_trade_no`,
    /// as Alipay keys a refund asked without `out_request_no`.
    pub out_refund_no: Option<String>,
    /// Fen, positive.
    pub amount: i64,
    /// Where the order stood at the end of the bill's day, as the ledger knows it (only a charge line's
    /// state is compared; a later change shows as a state mismatch).
    pub state: OrderState,
    pub time: UnixMillis,
}

/// Which side of the reconciliation a line is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Side {
    Ledger,
    Bill,
}

/// How the ledger and the bill differ on one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DifferenceKind {
    /// The provider booked it; the ledger has no such line.
    MissingInLedger,
    /// The ledger has it; the provider's bill has no such line.
    MissingInBill,
    /// Both have the line, for different amounts.
    AmountMismatch,
    /// Both have the charge, and the order stands differently (paid, refunded, reversed, pending, failed).
    StateMismatch,
    /// The same key twice on one side (`side`): the second and later lines.
    Duplicate,
}

/// One difference between the ledger and the bill.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Difference {
    pub kind: DifferenceKind,
    pub line_kind: LineKind,
    pub out_trade_no: String,
    pub out_refund_no: Option<String>,
    /// Fen, when the ledger has the line.
    pub ledger_amount: Option<i64>,
    /// Fen, when the bill has the line.
    pub bill_amount: Option<i64>,
    /// For a state mismatch: the ledger's state and the bill's.
    pub ledger_state: Option<OrderState>,
    pub bill_state: Option<OrderState>,
    /// For a duplicate: the side that has the key more than once.
    pub side: Option<Side>,
}

/// One side's totals for the day (fen; counts of lines).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTotals {
    pub charges: u64,
    pub charged: i64,
    pub refunds: u64,
    pub refunded: i64,
    pub reversals: u64,
    pub reversed: i64,
    /// The provider's fees (the ledger knows none: 0 on its side).
    pub fees: i64,
    /// `charged - refunded - reversed - fees`: what the provider owes the store for the day.
    pub net: i64,
}

/// Every difference between the day's ledger and a bill, and both sides' totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    pub provider: Provider,
    pub day: Option<String>,
    /// Sorted by kind, line kind, `out_trade_no`, `out_refund_no`, then the rest.
    pub differences: Vec<Difference>,
    pub ledger: DayTotals,
    pub bill: DayTotals,
    /// Lines of the bill's provider that matched one another with no difference.
    pub matched: u64,
}

impl Reconciliation {
    /// True when ledger and bill agree line by line.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }

    /// How many differences of `kind`.
    pub fn count(&self, kind: DifferenceKind) -> usize {
        self.differences.iter().filter(|d| d.kind == kind).count()
    }
}

/// Why a reconciliation could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    /// A day's sum does not fit in i64 fen.
    #[error("the day's {0} do not fit in 64-bit fen")]
    Overflow(&'static str),
    /// A ledger line's amount is zero or negative.
    #[error("ledger line {out_trade_no}: amount {amount} fen is not positive")]
    BadAmount { out_trade_no: String, amount: i64 },
}
