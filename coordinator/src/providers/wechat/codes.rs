//! WeChat Pay v2's answer codes sorted into the engine's outcomes: pure tables, shared by the adapter and the simulator.
//!
//! Every code the providers' documentation lists is sorted as it says
//! (summarised in `coordinator/providers.md`); anything unlisted
//! is *unknown* (query, then reverse), never *failed*.

use std::time::Duration;

use checkout_storage::{ChargeStatus, Money};

use crate::providers::{
    HTTP_202, OrderState, PASSWORD_QUERY_AFTER, ProviderAnswer, RefundAnswer, ReverseAnswer, messages,
};

fn answer(status: ChargeStatus, code: &str, message: &str, query_after: Duration) -> ProviderAnswer {
    ProviderAnswer {
        status,
        provider_code: code.to_owned(),
        message: message.to_owned(),
        transaction_id: String::new(),
        query_after,
    }
}

/// Sorts a micropay answer code (`err_code`, or `SUCCESS`, or [`HTTP_202`]) into what the store must do next.
pub fn micropay_answer(code: &str) -> ProviderAnswer {
    use ChargeStatus::{Failed, NewCodeNeeded, Paid, Unknown};
    let now = Duration::ZERO;
    match code {
        "SUCCESS" => answer(Paid, code, messages::PAID, now),
        // The customer is entering the password: wait, then query.
        "USERPAYING" => answer(Unknown, code, messages::CUSTOMER_CONFIRMING, PASSWORD_QUERY_AFTER),
        // The outcome is unknown: query at once.
        "SYSTEMERROR" | "BANKERROR" | HTTP_202 => answer(Unknown, code, messages::UNCERTAIN, now),
        // WeChat documents ORDERPAID with the definite failures, but it says this
        // order number *was paid*: a retried request after a lost answer gets it.
        // Calling that "failed, nothing charged" would lose the customer's money,
        // so it is unknown and the query settles it.
        "ORDERPAID" => answer(Unknown, code, messages::UNCERTAIN, now),
        "AUTHCODEEXPIRE" | "AUTH_CODE_INVALID" | "BUYER_MISMATCH" => {
            answer(NewCodeNeeded, code, messages::FRESH_CODE, now)
        }
        "AUTH_CODE_ERROR" => answer(NewCodeNeeded, code, messages::CODE_USED, now),
        "NOTENOUGH" => answer(NewCodeNeeded, code, messages::NOT_ENOUGH, now),
        "NOTSUPORTCARD" => answer(NewCodeNeeded, code, messages::OTHER_METHOD, now),
        "PARAM_ERROR"
        | "ORDERCLOSED"
        | "ORDERREVERSED"
        | "OUT_TRADE_NO_USED"
        | "NOAUTH"
        | "INVALID_REQUEST"
        | "TRADE_ERROR"
        | "SIGNERROR"
        | "XML_FORMAT_ERROR"
        | "LACK_PARAMS"
        | "APPID_NOT_EXIST"
        | "MCHID_NOT_EXIST"
        | "APPID_MCHID_NOT_MATCH"
        | "REQUIRE_POST_METHOD"
        | "POST_DATA_EMPTY"
        | "NOT_UTF8" => answer(Failed, code, messages::FAILED, now),
        // Unlisted: never guess "failed".
        _ => answer(Unknown, code, messages::UNCERTAIN, now),
    }
}

/// Sorts an orderquery `trade_state` (or `ORDERNOTEXIST`); `None` for a state the protocol does not have.
pub fn query_state(trade_state: &str, transaction_id: &str, amount: Money) -> Option<OrderState> {
    Some(match trade_state {
        "SUCCESS" => OrderState::Paid { transaction_id: transaction_id.to_owned(), amount },
        "REFUND" => OrderState::Refunded,
        "NOTPAY" | "PAYERROR" => OrderState::NotPaid,
        "CLOSED" | "REVOKED" => OrderState::Closed,
        "USERPAYING" => OrderState::Paying,
        "ORDERNOTEXIST" => OrderState::NotFound,
        _ => return None,
    })
}

/// Sorts a reverse answer: `result_code`, `err_code` and `recall`; `refunded` says whether the order had been paid.
pub fn reverse_answer(result_code: &str, err_code: &str, recall: &str, refunded: bool) -> ReverseAnswer {
    if recall == "Y" {
        return ReverseAnswer::CallAgain;
    }
    if result_code == "SUCCESS" {
        return ReverseAnswer::Reversed { refunded };
    }
    match err_code {
        // Nothing to close: no money moved under this number.
        "ORDERNOTEXIST" => ReverseAnswer::Reversed { refunded: false },
        // Older than the 7-day window, or a request WeChat will never take: refund instead.
        "REVERSE_EXPIRE"
        | "TRADE_OVERDUE"
        | "INVALID_TRANSACTIONID"
        | "PARAM_ERROR"
        | "REQUIRE_POST_METHOD"
        | "SIGNERROR"
        | "INVALID_REQUEST"
        | "TRADE_ERROR"
        | "NOAUTH" => ReverseAnswer::Refused { provider_code: err_code.to_owned() },
        // SYSTEMERROR, USERPAYING, BANKERROR and anything unlisted: the order may still move; call again.
        _ => ReverseAnswer::CallAgain,
    }
}

/// Sorts a refund answer (`SUCCESS` or the `err_code`).
pub fn refund_answer(code: &str, refund_id: &str) -> RefundAnswer {
    match code {
        "SUCCESS" => RefundAnswer::Accepted { refund_id: refund_id.to_owned() },
        "SYSTEMERROR" | "BIZERR_NEED_RETRY" | "FREQUENCY_LIMITED" | HTTP_202 => {
            RefundAnswer::Unknown { provider_code: code.to_owned() }
        }
        "TRADE_OVERDUE"
        | "ERROR"
        | "USER_ACCOUNT_ABNORMAL"
        | "INVALID_REQ_TOO_MUCH"
        | "NOTENOUGH"
        | "INVALID_TRANSACTIONID"
        | "PARAM_ERROR"
        | "ORDERNOTEXIST"
        | "REFUND_FEE_INVALID"
        | "SIGNERROR"
        | "NOAUTH" => RefundAnswer::Refused { provider_code: code.to_owned(), message: refund_message(code).into() },
        _ => RefundAnswer::Unknown { provider_code: code.to_owned() },
    }
}

fn refund_message(code: &str) -> &'static str {
    match code {
        "TRADE_OVERDUE" => "the order is too old to refund",
        "INVALID_REQ_TOO_MUCH" => "the order has had too many refunds (at most 50)",
        "NOTENOUGH" => "the merchant account cannot cover the refund",
        "ORDERNOTEXIST" | "INVALID_TRANSACTIONID" => "the provider has no paid order under this number",
        "REFUND_FEE_INVALID" => "the refund is more than what is left of the payment",
        "USER_ACCOUNT_ABNORMAL" => "the customer's account cannot take refunds: refund another way",
        _ => "the provider refused the refund",
    }
}
