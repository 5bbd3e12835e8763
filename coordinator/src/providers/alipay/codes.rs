//! Alipay's answer codes sorted into the engine's outcomes: pure tables, shared by the adapter and the simulator.
//!
//! `provider_code` is the answer's `code`, or `code/sub_code` when there is a
//! sub code (`40004/ACQ.BUYER_BALANCE_NOT_ENOUGH`). Anything unlisted is
//! *unknown* (query, then cancel), never *failed*.

use std::time::Duration;

use checkout_storage::{ChargeStatus, Money};

use crate::providers::{
    HTTP_202, OrderState, PASSWORD_QUERY_AFTER, ProviderAnswer, RefundAnswer, ReverseAnswer, messages,
};

/// `code` or `code/sub_code`.
pub fn provider_code(code: &str, sub_code: &str) -> String {
    if sub_code.is_empty() { code.to_owned() } else { format!("{code}/{sub_code}") }
}

/// Sorts an `alipay.trade.pay` answer (`code`, `sub_code`; or [`HTTP_202`]) into what the store must do next.
pub fn pay_answer(code: &str, sub_code: &str) -> ProviderAnswer {
    use ChargeStatus::{Failed, NewCodeNeeded, Paid, Unknown};
    let (status, message, query_after) = match (code, sub_code) {
        ("10000", _) => (Paid, messages::PAID, Duration::ZERO),
        // WAIT_BUYER_PAY: the customer is confirming on the phone; poll the query.
        ("10003", _) => (Unknown, messages::CUSTOMER_CONFIRMING, PASSWORD_QUERY_AFTER),
        // Unknown: query at once, then cancel if not paid.
        ("20000", _) | (HTTP_202, _) => (Unknown, messages::UNCERTAIN, Duration::ZERO),
        ("40004", sub) => match sub {
            "ACQ.PAYMENT_AUTH_CODE_INVALID" | "ACQ.TRADE_BUYER_NOT_MATCH" | "ACQ.PAYMENT_FAIL" => {
                (NewCodeNeeded, messages::FRESH_CODE, Duration::ZERO)
            }
            "ACQ.BUYER_BALANCE_NOT_ENOUGH" | "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH" => {
                (NewCodeNeeded, messages::NOT_ENOUGH, Duration::ZERO)
            }
            "ACQ.BUYER_ENABLE_STATUS_FORBID"
            | "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR"
            | "ACQ.BUYER_PAYMENT_AMOUNT_MONTH_LIMIT_ERROR"
            | "ACQ.ERROR_BALANCE_PAYMENT_DISABLE"
            | "ACQ.MOBILE_PAYMENT_SWITCH_OFF"
            | "ACQ.PULL_MOBILE_CASHIER_FAIL"
            | "ACQ.PAYMENT_REQUEST_HAS_RISK" => (NewCodeNeeded, messages::OTHER_METHOD, Duration::ZERO),
            // "Already paid: treat as paid if it is this buyer" — only the query can tell, so query.
            "ACQ.TRADE_HAS_SUCCESS" | "ACQ.SYSTEM_ERROR" => (Unknown, messages::UNCERTAIN, Duration::ZERO),
            "ACQ.TRADE_HAS_CLOSE"
            | "ACQ.CONTEXT_INCONSISTENT"
            | "ACQ.TOTAL_FEE_EXCEED"
            | "ACQ.INVALID_PARAMETER"
            | "ACQ.ACCESS_FORBIDDEN"
            | "ACQ.EXIST_FORBIDDEN_WORD"
            | "ACQ.PARTNER_ERROR"
            | "ACQ.BUYER_SELLER_EQUAL"
            | "ACQ.SELLER_BEEN_BLOCKED" => (Failed, messages::FAILED, Duration::ZERO),
            // An unlisted business failure: do not guess; query.
            _ => (Unknown, messages::UNCERTAIN, Duration::ZERO),
        },
        // Refused at the gateway, before any trade: missing or invalid parameters
        // (signature included), no permission, bad authorisation.
        ("40001" | "40002" | "40006" | "20001", _) => (Failed, messages::FAILED, Duration::ZERO),
        _ => (Unknown, messages::UNCERTAIN, Duration::ZERO),
    };
    ProviderAnswer {
        status,
        provider_code: provider_code(code, sub_code),
        message: message.to_owned(),
        transaction_id: String::new(),
        query_after,
    }
}

/// Sorts an `alipay.trade.query` `trade_status` (or `ACQ.TRADE_NOT_EXIST`); `None` for anything else.
pub fn query_state(trade_status: &str, trade_no: &str, amount: Money) -> Option<OrderState> {
    Some(match trade_status {
        "TRADE_SUCCESS" | "TRADE_FINISHED" => OrderState::Paid { transaction_id: trade_no.to_owned(), amount },
        "WAIT_BUYER_PAY" => OrderState::Paying,
        "TRADE_CLOSED" => OrderState::Closed,
        "ACQ.TRADE_NOT_EXIST" => OrderState::NotFound,
        _ => return None,
    })
}

/// Sorts an `alipay.trade.cancel` answer.
pub fn cancel_answer(code: &str, sub_code: &str, action: &str, retry_flag: &str) -> ReverseAnswer {
    if retry_flag == "Y" {
        return ReverseAnswer::CallAgain;
    }
    match (code, sub_code) {
        ("10000", _) => ReverseAnswer::Reversed { refunded: action == "refund" },
        // Nothing under this number: nothing moved.
        ("40004", "ACQ.TRADE_NOT_EXIST") => ReverseAnswer::Reversed { refunded: false },
        // Past the 24-hour window, a frozen trade, or a request Alipay will never take: refund instead.
        ("40004", "ACQ.TRADE_CANCEL_TIME_OUT" | "ACQ.REASON_TRADE_BEEN_FREEZEN" | "ACQ.INVALID_PARAMETER")
        | ("40001" | "40002" | "40006" | "20001", _) => {
            ReverseAnswer::Refused { provider_code: provider_code(code, sub_code) }
        }
        // 20000, ACQ.SYSTEM_ERROR, an HTTP 202 and anything unlisted: call again.
        _ => ReverseAnswer::CallAgain,
    }
}

/// Sorts an `alipay.trade.refund` answer.
pub fn refund_answer(code: &str, sub_code: &str, refund_id: &str) -> RefundAnswer {
    match (code, sub_code) {
        ("10000", _) => RefundAnswer::Accepted { refund_id: refund_id.to_owned() },
        ("20000", _) | ("40004", "ACQ.SYSTEM_ERROR") | (HTTP_202, _) => {
            RefundAnswer::Unknown { provider_code: provider_code(code, sub_code) }
        }
        ("40004", sub) => {
            let message = match sub {
                "ACQ.TRADE_NOT_EXIST" => "the provider has no paid order under this number",
                "ACQ.TRADE_STATUS_ERROR" => "the order is not paid (or already closed): nothing to refund",
                "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL" => "the refund is more than what is left of the payment",
                "ACQ.TRADE_NOT_ALLOW_REFUND" => "the order can take no more refunds",
                "ACQ.SELLER_BALANCE_NOT_ENOUGH" => "the merchant account cannot cover the refund",
                "ACQ.INVALID_PARAMETER" => "the refund number was used for another refund",
                _ => "the provider refused the refund",
            };
            RefundAnswer::Refused { provider_code: provider_code(code, sub), message: message.into() }
        }
        ("40001" | "40002" | "40006" | "20001", _) => RefundAnswer::Refused {
            provider_code: provider_code(code, sub_code),
            message: "the provider refused the request".into(),
        },
        _ => RefundAnswer::Unknown { provider_code: provider_code(code, sub_code) },
    }
}
