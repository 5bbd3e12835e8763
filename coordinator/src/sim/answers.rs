//! What the simulator answers for what its books did, in each protocol's own codes (the other way round from the adapters' tables).

/// WeChat Pay v2's codes for the books' outcomes (WeChat Pay and UnionPay wallets).
pub mod wechat {
    use checkout_storage::{Currency, Money};

    use crate::{
        providers::{
            OrderState, QueryAnswer, RefundAnswer,
            wechat::{query_state, refund_answer},
        },
        sim::books::{PayOutcome, RefundOutcome, SimOrderState, SimulatedOrder},
    };

    /// The micropay code the simulator answers for what its books did.
    pub fn micropay_code_of(outcome: &PayOutcome) -> &'static str {
        match outcome {
            PayOutcome::Paid { .. } => "SUCCESS",
            PayOutcome::Paying { .. } => "USERPAYING",
            PayOutcome::Expired => "AUTHCODEEXPIRE",
            PayOutcome::Invalid => "AUTH_CODE_INVALID",
            PayOutcome::Used => "AUTH_CODE_ERROR",
            PayOutcome::NotEnough => "NOTENOUGH",
            PayOutcome::OrderExists(SimOrderState::Paid) => "ORDERPAID",
            PayOutcome::OrderExists(SimOrderState::Closed) => "ORDERCLOSED",
            PayOutcome::OrderExists(SimOrderState::Reversed) => "ORDERREVERSED",
            PayOutcome::OrderExists(SimOrderState::Paying | SimOrderState::NotPaid) => "OUT_TRADE_NO_USED",
        }
    }

    /// The orderquery `trade_state` of a booked order (`ORDERNOTEXIST` for none).
    pub fn trade_state_of(order: Option<&SimulatedOrder>) -> &'static str {
        match order {
            None => "ORDERNOTEXIST",
            Some(order) => match order.state {
                SimOrderState::Paying => "USERPAYING",
                SimOrderState::Paid if order.refunded > 0 => "REFUND",
                SimOrderState::Paid => "SUCCESS",
                SimOrderState::NotPaid => "PAYERROR",
                SimOrderState::Closed | SimOrderState::Reversed => "REVOKED",
            },
        }
    }

    /// What an orderquery of the simulator's books answers, sorted.
    pub fn query_answer_of(order: Option<&SimulatedOrder>) -> QueryAnswer {
        let code = trade_state_of(order);
        let (transaction_id, amount) =
            order.map_or((String::new(), Money::zero(Currency::CNY)), |o| (o.transaction_id.clone(), o.amount));
        let state = query_state(code, &transaction_id, amount).unwrap_or(OrderState::NotFound);
        QueryAnswer { state, provider_code: code.to_owned() }
    }

    /// The refund code the simulator answers for what its books did.
    pub fn refund_code_of(outcome: &RefundOutcome) -> &'static str {
        match outcome {
            RefundOutcome::Accepted { .. } => "SUCCESS",
            RefundOutcome::NoSuchOrder => "ORDERNOTEXIST",
            RefundOutcome::NotPaid => "ERROR",
            RefundOutcome::TooMuch => "REFUND_FEE_INVALID",
            RefundOutcome::TooMany => "INVALID_REQ_TOO_MUCH",
            RefundOutcome::Mismatch => "PARAM_ERROR",
        }
    }

    /// What a refund of the simulator's books answers, sorted.
    pub fn refund_answer_of(outcome: &RefundOutcome) -> RefundAnswer {
        let refund_id = match outcome {
            RefundOutcome::Accepted { refund_id, .. } => refund_id.as_str(),
            _ => "",
        };
        refund_answer(refund_code_of(outcome), refund_id)
    }
}

/// Alipay's codes for the books' outcomes.
pub mod alipay {
    use checkout_storage::{Currency, Money};

    use crate::{
        providers::{
            OrderState, QueryAnswer, RefundAnswer,
            alipay::{query_state, refund_answer},
        },
        sim::books::{PayOutcome, RefundOutcome, SimOrderState, SimulatedOrder},
    };

    /// The `alipay.trade.pay` codes the simulator answers for what its books did.
    pub fn pay_codes_of(outcome: &PayOutcome) -> (&'static str, &'static str) {
        match outcome {
            PayOutcome::Paid { .. } => ("10000", ""),
            PayOutcome::Paying { .. } => ("10003", ""),
            PayOutcome::Expired | PayOutcome::Invalid | PayOutcome::Used => ("40004", "ACQ.PAYMENT_AUTH_CODE_INVALID"),
            PayOutcome::NotEnough => ("40004", "ACQ.BUYER_BALANCE_NOT_ENOUGH"),
            PayOutcome::OrderExists(SimOrderState::Paid) => ("40004", "ACQ.TRADE_HAS_SUCCESS"),
            PayOutcome::OrderExists(SimOrderState::Closed | SimOrderState::Reversed) => {
                ("40004", "ACQ.TRADE_HAS_CLOSE")
            }
            PayOutcome::OrderExists(SimOrderState::Paying | SimOrderState::NotPaid) => {
                ("40004", "ACQ.CONTEXT_INCONSISTENT")
            }
        }
    }

    /// The `trade_status` of a booked order (`ACQ.TRADE_NOT_EXIST` for none). A partly refunded trade stays TRADE_SUCCESS.
    pub fn trade_status_of(order: Option<&SimulatedOrder>) -> &'static str {
        match order {
            None => "ACQ.TRADE_NOT_EXIST",
            Some(order) => match order.state {
                SimOrderState::Paying => "WAIT_BUYER_PAY",
                SimOrderState::Paid if order.refunded >= order.amount.minor_units => "TRADE_CLOSED",
                SimOrderState::Paid => "TRADE_SUCCESS",
                SimOrderState::NotPaid | SimOrderState::Closed | SimOrderState::Reversed => "TRADE_CLOSED",
            },
        }
    }

    /// What `alipay.trade.query` of the simulator's books answers, sorted.
    pub fn query_answer_of(order: Option<&SimulatedOrder>) -> QueryAnswer {
        let code = trade_status_of(order);
        let (trade_no, amount) =
            order.map_or((String::new(), Money::zero(Currency::CNY)), |o| (o.transaction_id.clone(), o.amount));
        let state = query_state(code, &trade_no, amount).unwrap_or(OrderState::NotFound);
        QueryAnswer { state, provider_code: code.to_owned() }
    }

    /// The refund codes the simulator answers for what its books did.
    pub fn refund_codes_of(outcome: &RefundOutcome) -> (&'static str, &'static str) {
        match outcome {
            RefundOutcome::Accepted { .. } => ("10000", ""),
            RefundOutcome::NoSuchOrder => ("40004", "ACQ.TRADE_NOT_EXIST"),
            RefundOutcome::NotPaid => ("40004", "ACQ.TRADE_STATUS_ERROR"),
            RefundOutcome::TooMuch => ("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"),
            RefundOutcome::TooMany => ("40004", "ACQ.TRADE_NOT_ALLOW_REFUND"),
            RefundOutcome::Mismatch => ("40004", "ACQ.INVALID_PARAMETER"),
        }
    }

    /// What a refund of the simulator's books answers, sorted.
    pub fn refund_answer_of(outcome: &RefundOutcome) -> RefundAnswer {
        let refund_id = match outcome {
            RefundOutcome::Accepted { refund_id, .. } => refund_id.as_str(),
            _ => "",
        };
        let (code, sub_code) = refund_codes_of(outcome);
        refund_answer(code, sub_code, refund_id)
    }
}
