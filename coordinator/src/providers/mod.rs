//! The wallet providers: the seam between the payment engine and a provider's barcode-payment API (micropay, query, reverse, refund), and the adapters that speak each protocol.
//!
//! Nothing here imports the simulator (`crate::sim`): the simulator is built
//! on the protocols, never the other way round.
//!
//! Implementations translate their protocol's answers into these types, sorting
//! every answer code into one of four outcomes as the providers' documentation
//! lists them (summarised in `coordinator/providers.md`). Anything the caller cannot be sure of is *unknown*, never *failed*.

use std::{future::Future, pin::Pin, time::Duration};

pub mod alipay;
pub(crate) mod http;
pub mod wechat;

pub use http::{AdapterConfigError, BILL_TIMEOUT, MAX_BILL_BYTES};

use checkout_storage::{ChargeStatus, LaneId, Money, OutTradeNo, PaymentCode, Provider};

/// How long to let a customer type a password before the first query (WeChat `USERPAYING`, Alipay `10003`).
pub const PASSWORD_QUERY_AFTER: Duration = Duration::from_secs(5);

/// The provider code an HTTP 202 is booked under: the request was taken, the outcome is not known.
pub const HTTP_202: &str = "HTTP_202";

/// WeChat Pay and Alipay accept at most this many refunds of one order.
pub const MAX_REFUNDS_PER_ORDER: usize = 50;

/// A boxed future, so providers can sit behind `dyn PaymentProvider`.
pub type ProviderFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One micropay call: charge `code` for `amount` under the merchant order `out_trade_no`.
#[derive(Debug, Clone)]
pub struct MicropayRequest {
    pub out_trade_no: OutTradeNo,
    pub code: PaymentCode,
    pub amount: Money,
    /// What the customer's wallet shows as the purchase.
    pub description: String,
    /// The terminal (lane) the code was scanned at (WeChat `device_info`, Alipay `terminal_id`).
    pub terminal: LaneId,
}

/// The provider's answer to micropay, already sorted into what the store must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAnswer {
    /// Paid, new code needed, failed, or unknown (query, then reverse).
    pub status: ChargeStatus,
    /// The provider's own code: "SUCCESS", "NOTENOUGH", "10003", "40004/ACQ.BUYER_BALANCE_NOT_ENOUGH"...
    pub provider_code: String,
    /// What the cashier should do, in words.
    pub message: String,
    /// The provider's transaction number, when paid.
    pub transaction_id: String,
    /// For an unknown outcome: how long to wait before the first query
    /// (a customer entering a password: a few seconds; a system error: none).
    pub query_after: Duration,
}

/// Where an order stands at the provider, from an order query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderState {
    /// Money moved (WeChat SUCCESS, Alipay TRADE_SUCCESS / TRADE_FINISHED).
    Paid { transaction_id: String, amount: Money },
    /// The customer is still confirming (USERPAYING, WAIT_BUYER_PAY): query again later.
    Paying,
    /// Created but not paid, or the payment failed (NOTPAY, PAYERROR).
    NotPaid,
    /// Closed or reversed before payment (CLOSED, REVOKED, TRADE_CLOSED): no money moved or it was returned.
    Closed,
    /// Paid, then refunded in part or in full (REFUND).
    Refunded,
    /// The provider has no such order (ORDERNOTEXIST, ACQ.TRADE_NOT_EXIST).
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryAnswer {
    pub state: OrderState,
    pub provider_code: String,
}

/// The provider's answer to reverse (WeChat `secapi/pay/reverse`, Alipay `alipay.trade.cancel`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReverseAnswer {
    /// The order is closed; if it had been paid the money goes back (Alipay `action`: close or refund).
    Reversed { refunded: bool },
    /// Call reverse again (WeChat `recall=Y`, Alipay `retry_flag=Y`).
    CallAgain,
    /// Reverse is refused for good (for example an order older than the window): refund instead.
    Refused { provider_code: String },
}

/// A refund of part or all of a paid order, idempotent by `out_refund_no`.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub provider: Provider,
    pub out_trade_no: OutTradeNo,
    pub out_refund_no: String,
    /// What the order was paid.
    pub order_amount: Money,
    pub refund_amount: Money,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundAnswer {
    /// Accepted (WeChat: query for the final state; Alipay: done). Repeating it refunds nothing more.
    Accepted { refund_id: String },
    /// Refused for good, with the provider's code and the reason in words.
    Refused { provider_code: String, message: String },
    /// Unknown: repeat with the same `out_refund_no`.
    Unknown { provider_code: String },
}

/// The provider could not be asked or did not answer: the outcome is unknown.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("{provider} did not answer: {reason}")]
    Unreachable { provider: Provider, reason: String },
    /// An answer came but cannot be trusted (bad signature, malformed body): treat as no answer.
    #[error("{provider} answered something that cannot be trusted: {reason}")]
    BadAnswer { provider: Provider, reason: String },
}

impl ProviderError {
    pub fn unreachable(provider: Provider, reason: impl Into<String>) -> ProviderError {
        ProviderError::Unreachable { provider, reason: reason.into() }
    }

    pub fn bad_answer(provider: Provider, reason: impl Into<String>) -> ProviderError {
        ProviderError::BadAnswer { provider, reason: reason.into() }
    }
}

/// A wallet provider's barcode-payment API, as the engine uses it.
pub trait PaymentProvider: Send + Sync + 'static {
    /// Charges a customer-presented code (WeChat `pay/micropay`, Alipay `alipay.trade.pay` with `scene=bar_code`).
    fn micropay(&self, request: MicropayRequest) -> ProviderFuture<'_, Result<ProviderAnswer, ProviderError>>;

    /// Where an order stands (WeChat `pay/orderquery`, Alipay `alipay.trade.query`).
    fn query(
        &self,
        provider: Provider,
        out_trade_no: &OutTradeNo,
    ) -> ProviderFuture<'_, Result<QueryAnswer, ProviderError>>;

    /// Closes an unpaid order or returns a paid one's money (WeChat `secapi/pay/reverse`, Alipay `alipay.trade.cancel`).
    fn reverse(
        &self,
        provider: Provider,
        out_trade_no: &OutTradeNo,
    ) -> ProviderFuture<'_, Result<ReverseAnswer, ProviderError>>;

    /// Refunds part or all of a paid order (WeChat `secapi/pay/refund`, Alipay `alipay.trade.refund`).
    fn refund(&self, request: RefundRequest) -> ProviderFuture<'_, Result<RefundAnswer, ProviderError>>;

    /// `provider`'s bill of the business day `day` (`2026-11-25`, China Standard Time) as it ships it (WeChat
    /// Pay `pay/downloadbill`, every line, gzip; Alipay the zip `alipay.data.dataservice.bill.downloadurl.query`
    /// points to), `None` when it has no bill for that day. A provider without bills answers an error.
    fn download_bill(
        &self,
        provider: Provider,
        day: &str,
    ) -> ProviderFuture<'_, Result<Option<Vec<u8>>, ProviderError>> {
        let _ = day;
        Box::pin(async move { Err(ProviderError::unreachable(provider, "this provider has no bill to download")) })
    }
}

/// The cashier's words for each outcome.
pub mod messages {
    pub const PAID: &str = "paid";
    pub const FRESH_CODE: &str = "ask the customer for a fresh payment code";
    pub const CODE_USED: &str = "this code was already used: ask the customer to refresh the code";
    pub const NOT_ENOUGH: &str = "insufficient balance: ask the customer to use another payment method";
    pub const UNCERTAIN: &str = "payment uncertain: do not hand over the goods yet";
    pub const CUSTOMER_CONFIRMING: &str =
        "the customer is confirming the payment on the phone: wait; do not hand over the goods yet";
    pub const OTHER_METHOD: &str = "this wallet cannot pay here: ask the customer to use another payment method";
    pub const FAILED: &str = "payment failed: nothing was charged";
    pub const REVERSED: &str = "payment not completed and reversed: nothing was charged; ask for a fresh code";
}
