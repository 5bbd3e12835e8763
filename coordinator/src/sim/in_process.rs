//! The simulator's books as an in-process [`PaymentProvider`]: each wallet's answers in its provider's own codes, faults obeyed as over HTTP.

use checkout_storage::{OutTradeNo, Provider};

use super::{
    answers, bills,
    books::{PayOutcome, ReverseOutcome, SimulatedProvider},
};
use crate::providers::{
    HTTP_202, MicropayRequest, PaymentProvider, ProviderAnswer, ProviderError, ProviderFuture, QueryAnswer,
    RefundAnswer, RefundRequest, ReverseAnswer, alipay, wechat,
};

fn tampered(provider: Provider) -> ProviderError {
    ProviderError::BadAnswer { provider, reason: "the answer's signature does not verify (injected)".to_owned() }
}

/// The in-process provider obeys [`Faults`] as `provider-sim` does: an outage or a dropped answer is
/// [`ProviderError::Unreachable`], a corrupted signature [`ProviderError::BadAnswer`] (both *after* the
/// books moved, for a dropped or tampered answer), an error SYSTEMERROR / 20000 without touching the books.
impl PaymentProvider for SimulatedProvider {
    fn micropay(&self, request: MicropayRequest) -> ProviderFuture<'_, Result<ProviderAnswer, ProviderError>> {
        Box::pin(async move {
            let provider = request.code.provider();
            let sorted = |wechat_code: &str, alipay_codes: (&str, &str)| match provider {
                Provider::Alipay => alipay::pay_answer(alipay_codes.0, alipay_codes.1),
                Provider::WeChatPay | Provider::UnionPay => wechat::micropay_answer(wechat_code),
            };
            let Some(fate) = self.fate().await else {
                return Err(ProviderError::unreachable(provider, "outage (injected)"));
            };
            if fate.http_202 {
                return Ok(sorted(HTTP_202, (HTTP_202, "")));
            }
            if fate.error {
                return Ok(sorted("SYSTEMERROR", ("20000", "aop.ACQ.SYSTEM_ERROR")));
            }
            let outcome = self.pay(
                provider,
                &request.out_trade_no,
                &request.code,
                request.amount,
                request.terminal.as_str(),
                &request.description,
            );
            if fate.drop {
                return Err(ProviderError::unreachable(provider, "answer dropped after the charge (injected)"));
            }
            if fate.corrupt_sign {
                return Err(tampered(provider));
            }
            let answer = sorted(answers::wechat::micropay_code_of(&outcome), answers::alipay::pay_codes_of(&outcome));
            let transaction_id = match outcome {
                PayOutcome::Paid { transaction_id } => transaction_id,
                _ => String::new(),
            };
            Ok(ProviderAnswer { transaction_id, ..answer })
        })
    }

    fn query(
        &self,
        provider: Provider,
        out_trade_no: &OutTradeNo,
    ) -> ProviderFuture<'_, Result<QueryAnswer, ProviderError>> {
        let out_trade_no = out_trade_no.clone();
        Box::pin(async move {
            let Some(fate) = self.fate().await else {
                return Err(ProviderError::unreachable(provider, "outage (injected)"));
            };
            if fate.http_202 || fate.error || fate.drop {
                return Err(ProviderError::unreachable(provider, "no usable answer to the query (injected)"));
            }
            if fate.corrupt_sign {
                return Err(tampered(provider));
            }
            let order = self.order(&out_trade_no);
            Ok(match provider {
                Provider::Alipay => answers::alipay::query_answer_of(order.as_ref()),
                Provider::WeChatPay | Provider::UnionPay => answers::wechat::query_answer_of(order.as_ref()),
            })
        })
    }

    fn reverse(
        &self,
        provider: Provider,
        out_trade_no: &OutTradeNo,
    ) -> ProviderFuture<'_, Result<ReverseAnswer, ProviderError>> {
        let out_trade_no = out_trade_no.clone();
        Box::pin(async move {
            let Some(fate) = self.fate().await else {
                return Err(ProviderError::unreachable(provider, "outage (injected)"));
            };
            if fate.http_202 || fate.error || fate.reverse_retry {
                return Ok(ReverseAnswer::CallAgain);
            }
            let outcome = self.reverse_order(&out_trade_no);
            if fate.drop {
                return Err(ProviderError::unreachable(provider, "answer dropped after the reverse (injected)"));
            }
            if fate.corrupt_sign {
                return Err(tampered(provider));
            }
            Ok(match outcome {
                ReverseOutcome::Closed => ReverseAnswer::Reversed { refunded: false },
                ReverseOutcome::Refunded => ReverseAnswer::Reversed { refunded: true },
                ReverseOutcome::TooOld => match provider {
                    Provider::Alipay => alipay::cancel_answer("40004", "ACQ.TRADE_CANCEL_TIME_OUT", "", "N"),
                    Provider::WeChatPay | Provider::UnionPay => {
                        wechat::reverse_answer("FAIL", "REVERSE_EXPIRE", "N", false)
                    }
                },
            })
        })
    }

    fn refund(&self, request: RefundRequest) -> ProviderFuture<'_, Result<RefundAnswer, ProviderError>> {
        Box::pin(async move {
            let provider = request.provider;
            let Some(fate) = self.fate().await else {
                return Err(ProviderError::unreachable(provider, "outage (injected)"));
            };
            if fate.http_202 || fate.error {
                let code = if provider == Provider::Alipay { "20000" } else { "SYSTEMERROR" };
                return Ok(RefundAnswer::Unknown { provider_code: code.to_owned() });
            }
            let outcome =
                self.refund_order(&request.out_trade_no, &request.out_refund_no, request.refund_amount.minor_units);
            if fate.drop {
                return Err(ProviderError::unreachable(provider, "answer dropped after the refund (injected)"));
            }
            if fate.corrupt_sign {
                return Err(tampered(provider));
            }
            Ok(match provider {
                Provider::Alipay => answers::alipay::refund_answer_of(&outcome),
                Provider::WeChatPay | Provider::UnionPay => answers::wechat::refund_answer_of(&outcome),
            })
        })
    }

    /// The books' bill of `day`, written as the provider ships it (the merchant ids of `provider-sim`'s
    /// defaults: the in-process provider has no merchant).
    fn download_bill(
        &self,
        provider: Provider,
        day: &str,
    ) -> ProviderFuture<'_, Result<Option<Vec<u8>>, ProviderError>> {
        let day = day.to_owned();
        Box::pin(async move {
            if self.fate().await.is_none() {
                return Err(ProviderError::unreachable(provider, "outage (injected)"));
            }
            let rows = bills::bill_rows(&self.snapshot().orders, provider, &day);
            let failed = |e: std::io::Error| ProviderError::bad_answer(provider, format!("the bill: {e}"));
            match provider {
                Provider::Alipay => bills::write_alipay_bill(std::io::Cursor::new(Vec::new()), &day, rows)
                    .map(|zip| Some(zip.into_inner()))
                    .map_err(|e| ProviderError::bad_answer(provider, format!("the bill: {e}"))),
                Provider::WeChatPay | Provider::UnionPay if rows.is_empty() => Ok(None),
                Provider::WeChatPay | Provider::UnionPay => {
                    let gzip = Vec::new();
                    bills::write_wechat_bill_gzip(gzip, super::WECHAT_APPID, super::WECHAT_MCH_ID, rows)
                        .map(Some)
                        .map_err(failed)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        providers::OrderState,
        sim::books::{Faults, RefundOutcome, SimOptions, SimOrderState},
    };
    use checkout_storage::{ChargeStatus, Currency, LaneId, Money, PaymentCode, SimulatedWallet, UnixMillis};

    fn request(code: PaymentCode, out_trade_no: &str, fen: i64) -> MicropayRequest {
        MicropayRequest {
            out_trade_no: OutTradeNo::parse(out_trade_no).unwrap(),
            code,
            amount: Money::new(fen, Currency::CNY),
            description: "groceries".into(),
            terminal: LaneId::parse("L1").unwrap(),
        }
    }

    fn refund(provider: Provider, out_trade_no: &str, out_refund_no: &str, fen: i64) -> RefundRequest {
        RefundRequest {
            provider,
            out_trade_no: OutTradeNo::parse(out_trade_no).unwrap(),
            out_refund_no: out_refund_no.into(),
            order_amount: Money::new(2_500, Currency::CNY),
            refund_amount: Money::new(fen, Currency::CNY),
            reason: "returned".into(),
        }
    }

    #[tokio::test]
    async fn a_code_moves_money_once() {
        let sim = SimulatedProvider::new(b"seed", 10_000);
        let wallet = SimulatedWallet::new(b"seed", Provider::Alipay, 3);
        let code = wallet.issue_code(UnixMillis::now());
        let paid = sim.micropay(request(code.clone(), "S1-A-1", 2_500)).await.unwrap();
        assert_eq!(paid.status, ChargeStatus::Paid);
        assert!(!paid.transaction_id.is_empty());
        assert_eq!(sim.balance(Provider::Alipay, 3), 7_500);
        let again = sim.micropay(request(code, "S1-A-2", 2_500)).await.unwrap();
        assert_eq!(
            (again.status, again.provider_code.as_str()),
            (ChargeStatus::NewCodeNeeded, "40004/ACQ.PAYMENT_AUTH_CODE_INVALID")
        );
        assert_eq!(sim.balance(Provider::Alipay, 3), 7_500);
        assert_eq!(sim.orders().len(), 1);
    }

    #[tokio::test]
    async fn unknown_codes_and_empty_wallets_are_refused() {
        let sim = SimulatedProvider::new(b"seed", 1_000);
        let stranger = SimulatedWallet::new(b"another store", Provider::WeChatPay, 1).issue_code(UnixMillis::now());
        let answer = sim.micropay(request(stranger, "S1-B-1", 100)).await.unwrap();
        assert_eq!(answer.provider_code, "AUTH_CODE_INVALID");
        let code = SimulatedWallet::new(b"seed", Provider::WeChatPay, 1).issue_code(UnixMillis::now());
        let answer = sim.micropay(request(code, "S1-B-2", 1_001)).await.unwrap();
        assert_eq!((answer.status, answer.provider_code.as_str()), (ChargeStatus::NewCodeNeeded, "NOTENOUGH"));
        assert!(sim.orders().is_empty());
    }

    #[tokio::test]
    async fn the_password_step_is_unknown_then_paying_then_paid() {
        let options = SimOptions {
            password_above: Some(1_000),
            customer_delay: Duration::from_millis(400),
            ..SimOptions::default()
        };
        let sim = SimulatedProvider::with_options(b"seed", 10_000, options);
        let code = SimulatedWallet::new(b"seed", Provider::WeChatPay, 5).issue_code(UnixMillis::now());
        let answer = sim.micropay(request(code, "S1-C-1", 2_000)).await.unwrap();
        assert_eq!((answer.status, answer.provider_code.as_str()), (ChargeStatus::Unknown, "USERPAYING"));
        assert_eq!(answer.query_after, Duration::from_secs(5));
        let no = OutTradeNo::parse("S1-C-1").unwrap();
        let query = sim.query(Provider::WeChatPay, &no).await.unwrap();
        assert_eq!(query.state, OrderState::Paying);
        assert_eq!(sim.balance(Provider::WeChatPay, 5), 10_000);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let query = sim.query(Provider::WeChatPay, &no).await.unwrap();
        assert!(matches!(query.state, OrderState::Paid { amount, .. } if amount.minor_units == 2_000), "{query:?}");
        assert_eq!(sim.balance(Provider::WeChatPay, 5), 8_000);
    }

    #[tokio::test]
    async fn reverse_keeps_each_providers_window() {
        use crate::sim::{ALIPAY_CANCEL_WINDOW, WECHAT_REVERSE_WINDOW};
        let sim = SimulatedProvider::new(b"seed", 10_000);
        let minute = Duration::from_secs(60);
        let mut orders = Vec::new();
        for (wallet, provider, no, age) in [
            (1, Provider::WeChatPay, "S1-W-1", WECHAT_REVERSE_WINDOW + minute),
            (2, Provider::WeChatPay, "S1-W-2", WECHAT_REVERSE_WINDOW - minute),
            (3, Provider::Alipay, "S1-A-1", ALIPAY_CANCEL_WINDOW + minute),
            (4, Provider::Alipay, "S1-A-2", ALIPAY_CANCEL_WINDOW - minute),
        ] {
            let code = SimulatedWallet::new(b"seed", provider, wallet).issue_code(UnixMillis::now());
            sim.micropay(request(code, no, 100)).await.unwrap();
            let no = OutTradeNo::parse(no).unwrap();
            assert!(sim.age_order(&no, age));
            orders.push((provider, no));
        }
        let refused = |code: &str| ReverseAnswer::Refused { provider_code: code.into() };
        assert_eq!(sim.reverse(orders[0].0, &orders[0].1).await.unwrap(), refused("REVERSE_EXPIRE"));
        assert_eq!(sim.reverse(orders[1].0, &orders[1].1).await.unwrap(), ReverseAnswer::Reversed { refunded: true });
        assert_eq!(sim.reverse(orders[2].0, &orders[2].1).await.unwrap(), refused("40004/ACQ.TRADE_CANCEL_TIME_OUT"));
        assert_eq!(sim.reverse(orders[3].0, &orders[3].1).await.unwrap(), ReverseAnswer::Reversed { refunded: true });
        // Refused: the old orders stay paid (a refund gives their money back).
        assert_eq!(sim.order(&orders[0].1).unwrap().state, SimOrderState::Paid);
        assert_eq!(sim.order(&orders[2].1).unwrap().state, SimOrderState::Paid);
        assert!(!sim.age_order(&OutTradeNo::parse("S1-NONE").unwrap(), minute));
    }

    #[tokio::test]
    async fn reverse_closes_unpaid_orders_and_refunds_paid_ones() {
        let options = SimOptions {
            password_above: Some(1_000),
            customer_delay: Duration::from_secs(60),
            ..SimOptions::default()
        };
        let sim = SimulatedProvider::with_options(b"seed", 10_000, options);
        let paying = SimulatedWallet::new(b"seed", Provider::Alipay, 1).issue_code(UnixMillis::now());
        sim.micropay(request(paying, "S1-D-1", 2_000)).await.unwrap();
        let no = OutTradeNo::parse("S1-D-1").unwrap();
        assert_eq!(sim.reverse(Provider::Alipay, &no).await.unwrap(), ReverseAnswer::Reversed { refunded: false });
        assert_eq!(sim.query(Provider::Alipay, &no).await.unwrap().state, OrderState::Closed);
        assert_eq!(sim.balance(Provider::Alipay, 1), 10_000);

        let paid = SimulatedWallet::new(b"seed", Provider::Alipay, 2).issue_code(UnixMillis::now());
        sim.micropay(request(paid, "S1-D-2", 500)).await.unwrap();
        let no = OutTradeNo::parse("S1-D-2").unwrap();
        assert_eq!(sim.balance(Provider::Alipay, 2), 9_500);
        assert_eq!(sim.reverse(Provider::Alipay, &no).await.unwrap(), ReverseAnswer::Reversed { refunded: true });
        assert_eq!(sim.reverse(Provider::Alipay, &no).await.unwrap(), ReverseAnswer::Reversed { refunded: true });
        assert_eq!(sim.balance(Provider::Alipay, 2), 10_000);
    }

    #[tokio::test]
    async fn refunds_are_idempotent_bounded_and_never_exceed_the_payment() {
        let sim = SimulatedProvider::new(b"seed", 10_000);
        let code = SimulatedWallet::new(b"seed", Provider::WeChatPay, 9).issue_code(UnixMillis::now());
        sim.micropay(request(code, "S1-E-1", 2_500)).await.unwrap();
        let first = sim.refund(refund(Provider::WeChatPay, "S1-E-1", "RF1", 1_000)).await.unwrap();
        assert!(matches!(first, RefundAnswer::Accepted { .. }), "{first:?}");
        assert_eq!(sim.refund(refund(Provider::WeChatPay, "S1-E-1", "RF1", 1_000)).await.unwrap(), first);
        assert_eq!(sim.balance(Provider::WeChatPay, 9), 8_500);
        let too_much = sim.refund(refund(Provider::WeChatPay, "S1-E-1", "RF2", 1_501)).await.unwrap();
        assert!(matches!(too_much, RefundAnswer::Refused { .. }), "{too_much:?}");
        let no = OutTradeNo::parse("S1-E-1").unwrap();
        assert_eq!(sim.query(Provider::WeChatPay, &no).await.unwrap().state, OrderState::Refunded);
        for i in 0..49 {
            let answer = sim.refund(refund(Provider::WeChatPay, "S1-E-1", &format!("RX{i}"), 1)).await.unwrap();
            assert!(matches!(answer, RefundAnswer::Accepted { .. }), "{i}: {answer:?}");
        }
        assert_eq!(sim.refund_order(&no, "RX-over", 1), RefundOutcome::TooMany);
        assert_eq!(sim.balance(Provider::WeChatPay, 9), 8_549);
    }

    #[tokio::test]
    async fn in_process_faults_lose_answers_not_money() {
        let sim = SimulatedProvider::new(b"seed", 10_000);
        let no = OutTradeNo::parse("S1-F-1").unwrap();
        sim.set_faults(Faults { drop_after_charge_rate: 1.0, ..Faults::default() });
        let code = SimulatedWallet::new(b"seed", Provider::WeChatPay, 4).issue_code(UnixMillis::now());
        let dropped = sim.micropay(request(code, "S1-F-1", 1_500)).await;
        assert!(matches!(dropped, Err(ProviderError::Unreachable { .. })), "{dropped:?}");
        sim.set_faults(Faults::default());
        let query = sim.query(Provider::WeChatPay, &no).await.unwrap();
        assert!(matches!(query.state, OrderState::Paid { .. }), "{query:?}");
        assert_eq!(sim.balance(Provider::WeChatPay, 4), 8_500);

        sim.set_faults(Faults { error_rate: 1.0, ..Faults::default() });
        let code = SimulatedWallet::new(b"seed", Provider::Alipay, 4).issue_code(UnixMillis::now());
        let error = sim.micropay(request(code, "S1-F-2", 100)).await.unwrap();
        assert_eq!((error.status, error.provider_code.as_str()), (ChargeStatus::Unknown, "20000/aop.ACQ.SYSTEM_ERROR"));
        assert!(sim.order(&OutTradeNo::parse("S1-F-2").unwrap()).is_none());

        sim.set_faults(Faults { reverse_retry_rate: 1.0, ..Faults::default() });
        assert_eq!(sim.reverse(Provider::WeChatPay, &no).await.unwrap(), ReverseAnswer::CallAgain);
        sim.set_faults(Faults { outage: true, ..Faults::default() });
        assert!(sim.query(Provider::WeChatPay, &no).await.is_err());
        sim.set_faults(Faults::default());
        assert_eq!(sim.reverse(Provider::WeChatPay, &no).await.unwrap(), ReverseAnswer::Reversed { refunded: true });
        assert_eq!(sim.balance(Provider::WeChatPay, 4), 10_000);
    }

    #[test]
    fn wallets_from_the_low_balance_number_up_start_with_the_low_balance() {
        let options = SimOptions { low_balance_from: Some(9_900), low_balance: 500, ..SimOptions::default() };
        let sim = SimulatedProvider::with_options(b"seed", 10_000, options);
        assert_eq!(sim.balance(Provider::Alipay, 9_899), 10_000);
        assert_eq!(sim.balance(Provider::Alipay, 9_900), 500);
        assert_eq!(sim.balance(Provider::WeChatPay, 9_999), 500);
    }

    #[tokio::test]
    async fn wechat_revokes_a_password_step_that_outlasts_its_limit() {
        let options = SimOptions {
            password_above: Some(1_000),
            customer_delay: Duration::from_secs(60),
            wechat_revoke_unpaid_after: Some(Duration::from_millis(300)),
            ..SimOptions::default()
        };
        let sim = SimulatedProvider::with_options(b"seed", 10_000, options);
        let code = SimulatedWallet::new(b"seed", Provider::WeChatPay, 6).issue_code(UnixMillis::now());
        sim.micropay(request(code, "S1-G-1", 2_000)).await.unwrap();
        let no = OutTradeNo::parse("S1-G-1").unwrap();
        assert_eq!(sim.query(Provider::WeChatPay, &no).await.unwrap().state, OrderState::Paying);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let query = sim.query(Provider::WeChatPay, &no).await.unwrap();
        assert_eq!((query.state, query.provider_code.as_str()), (OrderState::Closed, "REVOKED"));
        assert_eq!(sim.balance(Provider::WeChatPay, 6), 10_000);
    }
}
