//! The engine's tests: scripted providers answering as the documented protocols would.

use super::*;
use crate::providers::{MicropayRequest, OrderState, ProviderAnswer, ReverseAnswer, messages};

mod support {
    pub(super) use super::charges::{Scripted, engine, lost, order};
    use super::*;

    /// An engine whose provider pays the next micropay.
    pub(super) async fn paid_engine() -> (Arc<Scripted>, Payments, tempfile::TempDir) {
        let provider = Arc::new(Scripted::default());
        provider.micropay.lock().unwrap().push_back(super::charges::answer(
            ChargeStatus::Paid,
            "SUCCESS",
            Duration::ZERO,
        ));
        let (payments, dir) = engine(provider.clone());
        (provider, payments, dir)
    }
}

mod charges {
    use std::{collections::VecDeque, sync::atomic::AtomicUsize};

    use checkout_storage::{Currency, SimulatedWallet, sample_catalog};

    use super::*;
    use crate::providers::{
        ProviderError, ProviderFuture, QueryAnswer, RefundAnswer, RefundRequest, messages::UNCERTAIN,
    };

    /// A provider that answers from scripts, as the documented protocol would, and counts calls.
    #[derive(Default)]
    pub(super) struct Scripted {
        pub(super) micropay: Mutex<VecDeque<Result<ProviderAnswer, ProviderError>>>,
        pub(super) query: Mutex<VecDeque<Result<OrderState, ProviderError>>>,
        pub(super) reverse: Mutex<VecDeque<Result<ReverseAnswer, ProviderError>>>,
        pub(super) refund: Mutex<VecDeque<Result<RefundAnswer, ProviderError>>>,
        pub(super) refund_calls: AtomicUsize,
        pub(super) micropay_calls: AtomicUsize,
        pub(super) reverse_calls: AtomicUsize,
    }

    pub(super) fn answer(
        status: ChargeStatus,
        code: &str,
        query_after: Duration,
    ) -> Result<ProviderAnswer, ProviderError> {
        Ok(ProviderAnswer {
            status,
            provider_code: code.into(),
            message: if status == ChargeStatus::Paid { messages::PAID.into() } else { UNCERTAIN.into() },
            transaction_id: if status == ChargeStatus::Paid { "T1".into() } else { String::new() },
            query_after,
        })
    }

    pub(super) fn lost() -> ProviderError {
        ProviderError::Unreachable { provider: Provider::WeChatPay, reason: "connection reset".into() }
    }

    impl PaymentProvider for Scripted {
        fn micropay(&self, _: MicropayRequest) -> ProviderFuture<'_, Result<ProviderAnswer, ProviderError>> {
            self.micropay_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let next = self.micropay.lock().unwrap().pop_front().unwrap_or_else(|| Err(lost()));
            Box::pin(async move { next })
        }

        fn query(&self, _: Provider, _: &OutTradeNo) -> ProviderFuture<'_, Result<QueryAnswer, ProviderError>> {
            // The last scripted state repeats: an order stays where it is.
            let mut queue = self.query.lock().unwrap();
            let next = if queue.len() > 1 { queue.pop_front() } else { queue.front().cloned() };
            let next = next.unwrap_or(Ok(OrderState::NotFound));
            Box::pin(async move { next.map(|state| QueryAnswer { provider_code: format!("{state:?}"), state }) })
        }

        fn reverse(&self, _: Provider, _: &OutTradeNo) -> ProviderFuture<'_, Result<ReverseAnswer, ProviderError>> {
            self.reverse_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let next =
                self.reverse.lock().unwrap().pop_front().unwrap_or(Ok(ReverseAnswer::Reversed { refunded: false }));
            Box::pin(async move { next })
        }

        fn refund(&self, _: RefundRequest) -> ProviderFuture<'_, Result<RefundAnswer, ProviderError>> {
            self.refund_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let next = self
                .refund
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Ok(RefundAnswer::Unknown { provider_code: "UNSCRIPTED".into() }));
            Box::pin(async move { next })
        }
    }

    fn timing() -> EngineTiming {
        EngineTiming {
            query_deadline: Duration::from_millis(300),
            query_every: Duration::from_millis(10),
            query_every_max: Duration::from_millis(40),
            reverse_every: Duration::from_millis(5),
            reverse_attempts: 4,
            resolve_every: Duration::from_millis(50),
            coupon_hold: Duration::from_secs(60),
        }
    }

    pub(super) fn engine(provider: Arc<Scripted>) -> (Payments, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.seed_catalog_if_empty(&sample_catalog()).unwrap();
        let providers: HashMap<Provider, Arc<dyn PaymentProvider>> =
            Provider::ALL.into_iter().map(|p| (p, provider.clone() as Arc<dyn PaymentProvider>)).collect();
        (Payments::new(store, StoreId::parse("S1").unwrap(), providers, timing()), dir)
    }

    pub(super) fn order(sale: &str, attempt: u32) -> PayOrder {
        let product = &sample_catalog()[0];
        PayOrder {
            lane_id: LaneId::parse("L1").unwrap(),
            sale_id: SaleId::parse(sale).unwrap(),
            attempt: Attempt::new(attempt).unwrap(),
            code: SimulatedWallet::new(b"t", Provider::WeChatPay, attempt as u16).issue_code(UnixMillis::now()),
            lines: vec![checkout_storage::OrderLine::catalog(product.gtin.clone(), 1)],
            amount: Money::new(product.price.minor_units, Currency::CNY),
            shift_id: None,
            started_at: UnixMillis::now(),
        }
    }

    fn paid_state() -> Result<OrderState, ProviderError> {
        Ok(OrderState::Paid {
            transaction_id: "T9".into(),
            amount: Money::new(sample_catalog()[0].price.minor_units, Currency::CNY),
        })
    }

    #[tokio::test]
    async fn a_customer_typing_a_password_is_queried_until_paid() {
        let provider = Arc::new(Scripted::default());
        provider.micropay.lock().unwrap().push_back(answer(
            ChargeStatus::Unknown,
            "USERPAYING",
            Duration::from_millis(20),
        ));
        provider.query.lock().unwrap().extend([Ok(OrderState::Paying), Ok(OrderState::Paying), paid_state()]);
        let (payments, _dir) = engine(provider.clone());
        let charge = payments.pay(order("L1-A", 1)).await.unwrap();
        assert_eq!(charge.status, ChargeStatus::Paid);
        assert_eq!(charge.provider_transaction_id, "T9");
        assert_eq!(charge.message, messages::PAID);
        assert!(charge.events.iter().any(|e| e.what == "micropay: USERPAYING"), "{:?}", charge.events);
        assert_eq!(provider.reverse_calls.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(
            payments.store.charge(&charge.out_trade_no).unwrap().unwrap(),
            charge,
            "the ledger holds the outcome"
        );
    }

    #[tokio::test]
    async fn an_unknown_charge_not_paid_by_the_deadline_is_reversed_calling_again_while_asked() {
        let provider = Arc::new(Scripted::default());
        provider.micropay.lock().unwrap().push_back(answer(ChargeStatus::Unknown, "SYSTEMERROR", Duration::ZERO));
        provider.query.lock().unwrap().push_back(Ok(OrderState::NotPaid));
        provider
            .reverse
            .lock()
            .unwrap()
            .extend([Ok(ReverseAnswer::CallAgain), Ok(ReverseAnswer::Reversed { refunded: false })]);
        let (payments, _dir) = engine(provider.clone());
        let charge = payments.pay(order("L1-B", 1)).await.unwrap();
        assert_eq!(charge.status, ChargeStatus::Reversed);
        assert_eq!(charge.message, messages::REVERSED);
        assert_eq!(provider.reverse_calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_lost_answer_is_recovered_by_query_and_a_repeat_never_charges_again() {
        let provider = Arc::new(Scripted::default());
        provider.micropay.lock().unwrap().push_back(Err(lost()));
        provider.query.lock().unwrap().push_back(paid_state());
        let (payments, _dir) = engine(provider.clone());
        let first = payments.pay(order("L1-C", 1)).await.unwrap();
        assert_eq!(first.status, ChargeStatus::Paid);
        let again = payments.pay(order("L1-C", 1)).await.unwrap();
        assert_eq!(again, first);
        assert_eq!(provider.micropay_calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn when_the_provider_stays_down_the_charge_waits_for_the_resolver() {
        let provider = Arc::new(Scripted::default());
        provider.micropay.lock().unwrap().push_back(Err(lost()));
        provider.query.lock().unwrap().push_back(Err(lost()));
        provider.reverse.lock().unwrap().extend((0..4).map(|_| Err(lost())));
        let (payments, _dir) = engine(provider.clone());
        let charge = payments.pay(order("L1-D", 1)).await.unwrap();
        assert_eq!(charge.status, ChargeStatus::Reversing, "a reversal is owed and remembered");
        assert_eq!(payments.store.outstanding_charges().unwrap().len(), 1);
        // The provider is back: the resolver finishes the reversal.
        assert_eq!(payments.resolve_outstanding().await.unwrap(), 0);
        let charge = payments.store.charge(&charge.out_trade_no).unwrap().unwrap();
        assert_eq!(charge.status, ChargeStatus::Reversed);
    }

    #[tokio::test]
    async fn a_sale_paid_by_two_attempts_keeps_the_first_and_reverses_the_surplus() {
        let provider = Arc::new(Scripted::default());
        // Attempt 1: the answer is lost and the provider is unreachable for a while; the customer pays again.
        provider.micropay.lock().unwrap().push_back(Err(lost()));
        provider.query.lock().unwrap().push_back(Err(lost()));
        provider.reverse.lock().unwrap().extend((0..4).map(|_| Err(lost())));
        let (payments, _dir) = engine(provider.clone());
        let first = payments.pay(order("L1-E", 1)).await.unwrap();
        assert_eq!(first.status, ChargeStatus::Reversing);

        // Attempt 2 is paid. Later the resolver learns attempt 1 was paid too: its reversal returns the money.
        provider.micropay.lock().unwrap().push_back(answer(ChargeStatus::Paid, "SUCCESS", Duration::ZERO));
        let second = payments.pay(order("L1-E", 2)).await.unwrap();
        assert_eq!(second.status, ChargeStatus::Paid);
        provider.reverse.lock().unwrap().push_back(Ok(ReverseAnswer::Reversed { refunded: true }));
        payments.resolve_outstanding().await.unwrap();
        let first = payments.store.charge(&first.out_trade_no).unwrap().unwrap();
        assert_eq!(first.status, ChargeStatus::Reversed);
        assert!(first.events.iter().any(|e| e.what == "reverse: done, money returned"));

        // A third attempt for the paid sale is refused before anything is sent.
        let calls = provider.micropay_calls.load(std::sync::atomic::Ordering::SeqCst);
        assert!(matches!(payments.pay(order("L1-E", 3)).await, Err(CoordinatorError::FailedPrecondition(_))));
        assert_eq!(provider.micropay_calls.load(std::sync::atomic::Ordering::SeqCst), calls);
    }

    #[tokio::test]
    async fn a_late_paid_attempt_is_superseded_by_the_earlier_winner() {
        let provider = Arc::new(Scripted::default());
        provider.micropay.lock().unwrap().push_back(answer(ChargeStatus::Paid, "SUCCESS", Duration::ZERO));
        let (payments, _dir) = engine(provider.clone());
        let winner = payments.pay(order("L1-F", 1)).await.unwrap();
        // Attempt 2 was sent before the lane learnt attempt 1 was paid (the lane retried with a new code).
        let second = order("L1-F", 2);
        let mut late = winner.clone();
        late.out_trade_no = OutTradeNo::derive(&StoreId::parse("S1").unwrap(), &late.sale_id, Attempt::new(2).unwrap());
        late.attempt = Attempt::new(2).unwrap();
        late.status = ChargeStatus::Unknown;
        late.code_fingerprint = payments.store.fingerprint(&second.code);
        payments.store.put_charge(&late).unwrap();
        provider.query.lock().unwrap().push_back(paid_state());
        payments.resolve_outstanding().await.unwrap();
        let late = payments.store.charge(&late.out_trade_no).unwrap().unwrap();
        assert_eq!(late.status, ChargeStatus::Reversed);
        assert_eq!(late.superseded_by.as_ref(), Some(&winner.out_trade_no));
        // Asking about the late attempt answers with the winner.
        let answer = payments.pay(second.clone()).await.unwrap();
        assert_eq!(answer.out_trade_no, winner.out_trade_no);
        // The late attempt's number with another basket or another code is someone else's request: refused.
        let mut other_basket = second.clone();
        other_basket.lines[0].quantity += 1;
        other_basket.amount = other_basket.amount.checked_mul(2).unwrap();
        assert!(matches!(payments.pay(other_basket).await, Err(CoordinatorError::FailedPrecondition(_))));
        let mut other_lane = second;
        other_lane.lane_id = LaneId::parse("L2").unwrap();
        assert!(matches!(payments.pay(other_lane).await, Err(CoordinatorError::FailedPrecondition(_))));
    }

    #[tokio::test]
    async fn a_declined_charge_keeps_the_books_not_the_basket() {
        let provider = Arc::new(Scripted::default());
        provider.micropay.lock().unwrap().push_back(answer(ChargeStatus::NewCodeNeeded, "NOTENOUGH", Duration::ZERO));
        let (payments, _dir) = engine(provider.clone());
        let declined = payments.pay(order("L1-G", 1)).await.unwrap();
        let kept = payments.store.charge(&declined.out_trade_no).unwrap().unwrap();
        assert_eq!(kept.status, ChargeStatus::NewCodeNeeded);
        assert!(kept.lines.is_empty(), "a declined charge keeps no basket");
        assert_eq!(kept.amount, declined.amount);
        assert!(kept.masked_code.as_str().contains('*'));
    }
}

mod refunds {
    use std::sync::atomic::Ordering::SeqCst;

    use checkout_storage::{Currency, RefundStatus};

    use super::support::*;
    use crate::{
        engine::refunds::RefundOrder,
        providers::MAX_REFUNDS_PER_ORDER,
        providers::{RefundAnswer, ReverseAnswer},
    };

    fn refund(out_trade_no: &checkout_storage::OutTradeNo, number: &str, fen: i64) -> RefundOrder {
        RefundOrder {
            out_trade_no: out_trade_no.clone(),
            out_refund_no: number.into(),
            amount: checkout_storage::Money::new(fen, Currency::CNY),
            reason: "damaged".into(),
        }
    }

    #[tokio::test]
    async fn refunds_are_idempotent_and_never_exceed_what_was_paid() {
        let (provider, payments, _dir) = paid_engine().await;
        let paid = payments.pay(order("L1-R", 1)).await.unwrap();
        let price = paid.amount.minor_units;
        provider.refund.lock().unwrap().push_back(Ok(RefundAnswer::Accepted { refund_id: "R1".into() }));
        let (first, total) = payments.refund(refund(&paid.out_trade_no, "RF-1", price - 10)).await.unwrap();
        assert_eq!((first.status, total.minor_units), (RefundStatus::Accepted, price - 10));
        // The same refund number again: the first answer, no second call.
        let (again, total) = payments.refund(refund(&paid.out_trade_no, "RF-1", price - 10)).await.unwrap();
        assert_eq!((again, total.minor_units), (first, price - 10));
        assert_eq!(provider.refund_calls.load(SeqCst), 1);
        // More than is left is refused before the provider is asked.
        assert!(payments.refund(refund(&paid.out_trade_no, "RF-2", 11)).await.is_err());
        assert_eq!(provider.refund_calls.load(SeqCst), 1);
        // The same number for another amount is a mistake, said as such.
        assert!(payments.refund(refund(&paid.out_trade_no, "RF-1", 5)).await.is_err());
    }

    #[tokio::test]
    async fn an_unknown_refund_is_asked_again_with_the_same_number() {
        let (provider, payments, _dir) = paid_engine().await;
        let paid = payments.pay(order("L1-S", 1)).await.unwrap();
        provider.refund.lock().unwrap().push_back(Ok(RefundAnswer::Unknown { provider_code: "SYSTEMERROR".into() }));
        let (first, total) = payments.refund(refund(&paid.out_trade_no, "RF-9", 100)).await.unwrap();
        assert_eq!((first.status, total.minor_units), (RefundStatus::Unknown, 0));
        provider.refund.lock().unwrap().push_back(Ok(RefundAnswer::Accepted { refund_id: "R9".into() }));
        let (second, total) = payments.refund(refund(&paid.out_trade_no, "RF-9", 100)).await.unwrap();
        assert_eq!((second.status, total.minor_units), (RefundStatus::Accepted, 100));
        assert_eq!(provider.refund_calls.load(SeqCst), 2);
    }

    #[tokio::test]
    async fn at_most_fifty_refunds_per_order_and_none_of_an_unpaid_one() {
        let (provider, payments, _dir) = paid_engine().await;
        let paid = payments.pay(order("L1-T", 1)).await.unwrap();
        for n in 0..MAX_REFUNDS_PER_ORDER {
            provider.refund.lock().unwrap().push_back(Ok(RefundAnswer::Accepted { refund_id: format!("R{n}") }));
            payments.refund(refund(&paid.out_trade_no, &format!("RF-{n}"), 1)).await.unwrap();
        }
        assert!(payments.refund(refund(&paid.out_trade_no, "RF-51", 1)).await.is_err());

        provider.micropay.lock().unwrap().push_back(Err(lost()));
        provider.reverse.lock().unwrap().push_back(Ok(ReverseAnswer::Reversed { refunded: false }));
        let reversed = payments.pay(order("L1-U", 1)).await.unwrap();
        assert!(payments.refund(refund(&reversed.out_trade_no, "RF-X", 1)).await.is_err());
    }
}

mod answer_codes {
    use std::sync::atomic::Ordering::SeqCst;

    use super::support::*;
    use super::*;
    use crate::providers::{HTTP_202, alipay, wechat};

    /// Each answer, through the engine: the ledger ends in the answer's outcome (an unknown one is
    /// queried, found unpaid and reversed), with its provider code and cashier message.
    async fn drive(answer: ProviderAnswer) {
        let provider = Arc::new(Scripted::default());
        provider.micropay.lock().unwrap().push_back(Ok(answer.clone()));
        provider.query.lock().unwrap().push_back(Ok(OrderState::NotPaid));
        let (payments, _dir) = engine(provider.clone());
        let charge = payments.pay(order("L1-CODE", 1)).await.unwrap();
        let ledger = payments.store.charge(&charge.out_trade_no).unwrap().unwrap();
        assert_eq!(ledger, charge, "the ledger holds what the lane was told");
        let code = &answer.provider_code;
        assert!(ledger.events.iter().any(|e| e.what == format!("micropay: {code}")), "{code}: {:?}", ledger.events);
        assert!(ledger.status.is_final(), "{code}: left {:?}", ledger.status);
        match answer.status {
            ChargeStatus::Paid => {
                assert_eq!((ledger.status, ledger.message.as_str()), (ChargeStatus::Paid, messages::PAID), "{code}")
            }
            ChargeStatus::NewCodeNeeded | ChargeStatus::Failed => {
                assert_eq!((ledger.status, &ledger.message), (answer.status, &answer.message), "{code}");
                assert_eq!(&ledger.provider_code, code);
                assert_eq!(provider.reverse_calls.load(SeqCst), 0, "{code}: nothing to reverse");
            }
            _ => {
                assert_eq!(ledger.status, ChargeStatus::Reversed, "{code}: unknown, unpaid by the deadline");
                assert_eq!(ledger.message, messages::REVERSED);
                assert!(provider.reverse_calls.load(SeqCst) >= 1, "{code}");
            }
        }
    }

    #[tokio::test]
    async fn wechat_micropay_codes() {
        for code in [
            "SUCCESS",
            "USERPAYING",
            "SYSTEMERROR",
            "BANKERROR",
            HTTP_202,
            "AUTHCODEEXPIRE",
            "NOTENOUGH",
            "NOTSUPORTCARD",
            "AUTH_CODE_ERROR",
            "AUTH_CODE_INVALID",
            "BUYER_MISMATCH",
            "PARAM_ERROR",
            "ORDERPAID",
            "ORDERCLOSED",
            "ORDERREVERSED",
            "OUT_TRADE_NO_USED",
            "NOAUTH",
            "INVALID_REQUEST",
            "TRADE_ERROR",
            "SIGNERROR",
            "SOMETHING_NEW",
        ] {
            let mut answer = wechat::micropay_answer(code);
            answer.query_after = Duration::ZERO;
            drive(answer).await;
        }
    }

    #[tokio::test]
    async fn alipay_trade_pay_codes() {
        for (code, sub_code) in [
            ("10000", ""),
            ("10003", ""),
            ("20000", ""),
            ("20000", "ACQ.SYSTEM_ERROR"),
            ("40004", "ACQ.PAYMENT_AUTH_CODE_INVALID"),
            ("40004", "ACQ.BUYER_BALANCE_NOT_ENOUGH"),
            ("40004", "ACQ.TRADE_HAS_SUCCESS"),
            ("40004", "ACQ.TRADE_HAS_CLOSE"),
            ("40004", "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR"),
            ("40004", "ACQ.PAYMENT_FAIL"),
            ("40004", "ACQ.TOTAL_FEE_EXCEED"),
            ("40004", "ACQ.SOMETHING_NEW"),
            ("40002", "isv.invalid-signature"),
        ] {
            let mut answer = alipay::pay_answer(code, sub_code);
            answer.query_after = Duration::ZERO;
            drive(answer).await;
        }
    }
}

mod open_prices {
    use checkout_storage::{
        Currency, OrderLine, ProductCode, PromotionId, PromotionKind, PromotionRecord, sample_catalog,
    };

    use super::{support::*, *};

    fn cny(fen: i64) -> Money {
        Money::new(fen, Currency::CNY)
    }

    fn milk() -> ProductCode {
        sample_catalog()[0].gtin.clone()
    }

    fn bakery() -> ProductCode {
        sample_catalog().into_iter().find(|p| p.is_open_price()).unwrap().gtin
    }

    /// Milk, and two bakery items at 12.50 and 3.20 yuan.
    fn basket() -> Vec<OrderLine> {
        vec![
            OrderLine::catalog(milk(), 2),
            OrderLine::open_price(bakery(), 1, cny(1250)),
            OrderLine::open_price(bakery(), 1, cny(320)),
        ]
    }

    fn refused_field(result: Result<(Vec<SaleLine>, Money), CoordinatorError>) -> (String, String) {
        match result {
            Err(CoordinatorError::InvalidArgument { field, reason }) => (field, reason),
            other => panic!("not an invalid argument: {other:?}"),
        }
    }

    #[test]
    fn an_open_price_line_is_priced_at_its_typed_price_and_every_other_from_the_catalog() {
        let (payments, _dir) = engine(Arc::new(Scripted::default()));
        let (lines, total) = price_lines(&payments.store, &basket()).unwrap();
        let milk_price = sample_catalog()[0].price;
        let unit_prices: Vec<_> = lines.iter().map(|l| (l.gtin.clone(), l.quantity, l.unit_price)).collect();
        assert_eq!(unit_prices, vec![(milk(), 2, milk_price), (bakery(), 1, cny(1250)), (bakery(), 1, cny(320))]);
        assert_eq!(total, cny(milk_price.minor_units * 2 + 1250 + 320));
    }

    #[test]
    fn a_typed_price_on_a_catalog_product_or_none_on_an_open_price_one_is_refused() {
        let (payments, _dir) = engine(Arc::new(Scripted::default()));
        let mut lying = basket();
        lying[0].typed_price = Some(cny(1));
        let (field, reason) = refused_field(price_lines(&payments.store, &lying));
        assert_eq!(field, "lines[0].unit_price");
        assert!(reason.contains("is not an open-price item"), "{reason}");
        let mut untyped = basket();
        untyped[2].typed_price = None;
        let (field, reason) = refused_field(price_lines(&payments.store, &untyped));
        assert_eq!(field, "lines[2].unit_price");
        assert!(reason.contains("is an open-price item"), "{reason}");
    }

    #[tokio::test]
    async fn a_basket_with_open_price_items_is_charged_its_typed_prices_and_no_promotion_on_them() {
        let (provider, payments, _dir) = paid_engine().await;
        // A promotion naming the bakery's code: the lane prices typed lines without promotions, so does the store.
        let now = UnixMillis::now();
        payments
            .store
            .create_promotion(PromotionRecord {
                promotion_id: PromotionId::numbered(0),
                gtin: bakery(),
                kind: PromotionKind::PriceOff(cny(100)),
                valid_from: UnixMillis(now.0 - 60_000),
                valid_until: UnixMillis(now.0 + 60_000),
                ended_at: None,
                name: "bakery hour".into(),
            })
            .unwrap();
        let total = cny(sample_catalog()[0].price.minor_units * 2 + 1250 + 320);
        let bakery_order = PayOrder { lines: basket(), amount: total, ..order("L1-BAKERY", 1) };
        let charge = payments.pay(bakery_order).await.unwrap();
        assert_eq!((charge.status, charge.amount), (ChargeStatus::Paid, total));
        assert_eq!(charge.basket_sha256, checkout_storage::basket_digest(&basket()));
        let sale = payments.store.sale(&charge.sale_id).unwrap().unwrap();
        assert_eq!(sale.lines.iter().map(|l| l.unit_price.minor_units).collect::<Vec<_>>()[1..], [1250, 320]);
        assert_eq!(provider.micropay_calls.load(std::sync::atomic::Ordering::SeqCst), 1);

        // A lane that lies about a typed price is refused before the provider is called.
        let mut lying = basket();
        lying[0].typed_price = Some(cny(1));
        let liar = PayOrder { lines: lying, amount: total, ..order("L1-LIAR", 1) };
        let refused = payments.pay(liar).await.unwrap_err();
        assert!(matches!(refused, CoordinatorError::InvalidArgument { .. }), "{refused:?}");
        assert_eq!(provider.micropay_calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(payments.store.charges_with_prefix("S1-L1-LIAR-").unwrap().is_empty(), "nothing recorded");
    }
}
