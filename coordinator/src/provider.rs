//! The seam between the payment engine and a wallet provider's micropay API.

use std::{future::Future, pin::Pin};

use checkout_storage::{ChargeStatus, LaneId, Money, OutTradeNo, PaymentCode, Provider};

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
    /// The terminal (lane) the code was scanned at.
    pub terminal: LaneId,
}

/// The provider's answer, already sorted into what the store must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAnswer {
    /// Paid, new code needed, failed, or unknown (query, then reverse).
    pub status: ChargeStatus,
    /// The provider's own code: "SUCCESS", "NOTENOUGH", "10003"...
    pub provider_code: String,
    /// What the cashier should do, in words.
    pub message: String,
    /// The provider's transaction number, when paid.
    pub transaction_id: String,
}

/// The provider could not be asked or did not answer: the outcome is unknown.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("{provider} did not answer: {reason}")]
    Unreachable { provider: Provider, reason: String },
}

/// A wallet provider's barcode-payment API, as the engine uses it.
pub trait PaymentProvider: Send + Sync + 'static {
    /// Charges a customer-presented code (WeChat `pay/micropay`, Alipay `alipay.trade.pay` with `scene=bar_code`).
    fn micropay(&self, request: MicropayRequest) -> ProviderFuture<'_, Result<ProviderAnswer, ProviderError>>;
}

/// The cashier's words for each outcome.
pub mod messages {
    pub const PAID: &str = "paid";
    pub const FRESH_CODE: &str = "ask the customer for a fresh payment code";
    pub const CODE_USED: &str = "this code was already used: ask the customer to refresh the code";
    pub const NOT_ENOUGH: &str = "insufficient balance: ask the customer to use another payment method";
    pub const UNCERTAIN: &str = "payment uncertain: do not hand over the goods yet";
    pub const FAILED: &str = "payment failed: nothing was charged";
}
