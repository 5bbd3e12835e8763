//! The WeChat Pay and Alipay adapters against `provider-sim` over real HTTP, and the requests as a provider sees them.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use checkout_coordinator::{
    PaymentProvider,
    providers::{
        MicropayRequest, OrderState, ProviderError, RefundAnswer, RefundRequest, ReverseAnswer,
        alipay::{self, AlipayAdapter},
        messages,
        wechat::{self, SignType, WeChatConfig, WeChatPayV2},
    },
    reconcile,
    sim::{self, Faults, ProviderSim, ProviderSimConfig, SimOptions, SimOrderState},
};
use checkout_storage::{
    ChargeStatus, Currency, LaneId, Money, OutTradeNo, PaymentCode, Provider, SimulatedWallet, UnixMillis,
};

use crate::{SEED, sim_app, tables::sorted, test_keys};

const NOW: Duration = Duration::ZERO;
const WAIT: Duration = Duration::from_secs(5);

// ------------------------------------------------------------- over HTTP

struct Running {
    sim: Arc<ProviderSim>,
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(options: SimOptions) -> Running {
        let mut config = ProviderSimConfig::new(SEED, 100_000).unwrap();
        config.options = options;
        let sim = Arc::new(ProviderSim::new(config).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sim::serve(listener, sim.clone(), async move {
            let _ = stopped.await;
        }));
        Running { sim, base, stop: Some(stop), task }
    }

    fn wechat(&self) -> WeChatPayV2 {
        let mut config = sim::wechat_merchant(&self.base);
        config.timeout = Duration::from_secs(5);
        WeChatPayV2::new(config).unwrap()
    }

    fn alipay(&self) -> AlipayAdapter {
        let mut config = sim_app(&format!("{}/gateway.do", self.base));
        config.timeout = Duration::from_secs(5);
        config.store_id = "S001".into();
        AlipayAdapter::new(config).unwrap()
    }

    fn faults(&self, faults: Faults) {
        self.sim.set_faults(faults);
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

fn code(provider: Provider, wallet: u16) -> PaymentCode {
    SimulatedWallet::new(SEED, provider, wallet).issue_code(UnixMillis::now())
}

fn pay(code: PaymentCode, out_trade_no: &str, fen: i64) -> MicropayRequest {
    MicropayRequest {
        out_trade_no: OutTradeNo::parse(out_trade_no).unwrap(),
        code,
        amount: Money::new(fen, Currency::CNY),
        description: "groceries".into(),
        terminal: LaneId::parse("L1").unwrap(),
    }
}

fn no(out_trade_no: &str) -> OutTradeNo {
    OutTradeNo::parse(out_trade_no).unwrap()
}

fn refund(provider: Provider, out_trade_no: &str, out_refund_no: &str, order: i64, fen: i64) -> RefundRequest {
    RefundRequest {
        provider,
        out_trade_no: no(out_trade_no),
        out_refund_no: out_refund_no.into(),
        order_amount: Money::new(order, Currency::CNY),
        refund_amount: Money::new(fen, Currency::CNY),
        reason: "returned".into(),
    }
}

/// Both adapters, each with its provider's wallets.
fn adapters(running: &Running) -> Vec<(Provider, Box<dyn PaymentProvider>)> {
    vec![(Provider::WeChatPay, Box::new(running.wechat())), (Provider::Alipay, Box::new(running.alipay()))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_pay_reverse_and_refund_against_the_simulator() {
    let running = Running::start(SimOptions::default()).await;
    for (provider, adapter) in adapters(&running) {
        let p = if provider == Provider::Alipay { "A" } else { "W" };
        // Paid: the books moved the money once.
        let paid = adapter.micropay(pay(code(provider, 1), &format!("S1-{p}-1"), 1_234)).await.unwrap();
        assert_eq!((paid.status, paid.message.as_str()), (ChargeStatus::Paid, messages::PAID), "{provider}");
        assert!(!paid.transaction_id.is_empty());
        assert_eq!(running.sim.books().balance(provider, 1), 100_000 - 1_234);
        let query = adapter.query(provider, &no(&format!("S1-{p}-1"))).await.unwrap();
        assert_eq!(
            query.state,
            OrderState::Paid { transaction_id: paid.transaction_id.clone(), amount: Money::new(1_234, Currency::CNY) }
        );

        // A wallet that cannot cover it, and a used code.
        let poor = adapter.micropay(pay(code(provider, 2), &format!("S1-{p}-2"), 100_001)).await.unwrap();
        assert_eq!((poor.status, poor.message.as_str()), (ChargeStatus::NewCodeNeeded, messages::NOT_ENOUGH));
        let used_code = code(provider, 3);
        adapter.micropay(pay(used_code.clone(), &format!("S1-{p}-3"), 100)).await.unwrap();
        let used = adapter.micropay(pay(used_code, &format!("S1-{p}-4"), 100)).await.unwrap();
        assert_eq!(used.status, ChargeStatus::NewCodeNeeded, "{provider}: {used:?}");

        // Reverse of a paid order refunds it in the books.
        let reversed = adapter.reverse(provider, &no(&format!("S1-{p}-1"))).await.unwrap();
        assert_eq!(reversed, ReverseAnswer::Reversed { refunded: true }, "{provider}");
        assert_eq!(running.sim.books().balance(provider, 1), 100_000);
        let order = running.sim.books().order(&no(&format!("S1-{p}-1"))).unwrap();
        assert_eq!(order.state, SimOrderState::Reversed);
        assert_eq!(adapter.query(provider, &no(&format!("S1-{p}-1"))).await.unwrap().state, OrderState::Closed);
        // Reverse of an order that never was: closed, nothing moved.
        let nothing = adapter.reverse(provider, &no(&format!("S1-{p}-99"))).await.unwrap();
        assert_eq!(nothing, ReverseAnswer::Reversed { refunded: false });

        // Refunds: idempotent by out_refund_no, never more than paid.
        let order_no = format!("S1-{p}-5");
        adapter.micropay(pay(code(provider, 5), &order_no, 1_000)).await.unwrap();
        let first = adapter.refund(refund(provider, &order_no, "RF-1", 1_000, 400)).await.unwrap();
        assert!(matches!(first, RefundAnswer::Accepted { .. }), "{provider}: {first:?}");
        let again = adapter.refund(refund(provider, &order_no, "RF-1", 1_000, 400)).await.unwrap();
        assert_eq!(again, first);
        assert_eq!(running.sim.books().balance(provider, 5), 100_000 - 600);
        let too_much = adapter.refund(refund(provider, &order_no, "RF-2", 1_000, 601)).await.unwrap();
        assert!(matches!(too_much, RefundAnswer::Refused { .. }), "{provider}: {too_much:?}");
        assert_eq!(running.sim.books().order(&no(&order_no)).unwrap().refunded, 400);
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_step_is_unknown_then_paying_then_paid() {
    let options = SimOptions {
        password_above: Some(10_000),
        customer_delay: Duration::from_millis(1_200),
        ..SimOptions::default()
    };
    let running = Running::start(options).await;
    for (provider, adapter) in adapters(&running) {
        let order_no = format!("S1-PW{}-1", provider == Provider::Alipay);
        let answer = adapter.micropay(pay(code(provider, 7), &order_no, 20_000)).await.unwrap();
        assert_eq!(sorted(&answer), (ChargeStatus::Unknown, messages::CUSTOMER_CONFIRMING, WAIT), "{provider}");
        assert_eq!(adapter.query(provider, &no(&order_no)).await.unwrap().state, OrderState::Paying);
        assert_eq!(running.sim.books().balance(provider, 7), 100_000, "no money before the password");
        tokio::time::sleep(Duration::from_millis(1_400)).await;
        let query = adapter.query(provider, &no(&order_no)).await.unwrap();
        assert!(matches!(query.state, OrderState::Paid { amount, .. } if amount.minor_units == 20_000), "{query:?}");
        assert_eq!(running.sim.books().balance(provider, 7), 80_000);

        // Reversing an order still in the password step closes it: nothing moves.
        let order_no = format!("S1-PW{}-2", provider == Provider::Alipay);
        adapter.micropay(pay(code(provider, 8), &order_no, 20_000)).await.unwrap();
        let reversed = adapter.reverse(provider, &no(&order_no)).await.unwrap();
        assert_eq!(reversed, ReverseAnswer::Reversed { refunded: false }, "{provider}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(adapter.query(provider, &no(&order_no)).await.unwrap().state, OrderState::Closed);
        assert_eq!(running.sim.books().balance(provider, 8), 100_000);
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_unknown_never_failed() {
    let running = Running::start(SimOptions::default()).await;
    for (provider, adapter) in adapters(&running) {
        let p = if provider == Provider::Alipay { "A" } else { "W" };

        // A tampered (corrupted-sign) answer is not believed, though the charge was made.
        running.faults(Faults { corrupt_sign_rate: 1.0, ..Faults::default() });
        let tampered = adapter.micropay(pay(code(provider, 11), &format!("S2-{p}-1"), 500)).await;
        assert!(matches!(tampered, Err(ProviderError::BadAnswer { .. })), "{provider}: {tampered:?}");
        running.faults(Faults::default());
        assert!(matches!(
            adapter.query(provider, &no(&format!("S2-{p}-1"))).await.unwrap().state,
            OrderState::Paid { .. }
        ));

        // The answer is dropped after the charge: an error, and the query shows it paid.
        running.faults(Faults { drop_after_charge_rate: 1.0, ..Faults::default() });
        let dropped = adapter.micropay(pay(code(provider, 12), &format!("S2-{p}-2"), 700)).await;
        assert!(matches!(dropped, Err(ProviderError::Unreachable { .. })), "{provider}: {dropped:?}");
        running.faults(Faults::default());
        let query = adapter.query(provider, &no(&format!("S2-{p}-2"))).await.unwrap();
        assert!(matches!(query.state, OrderState::Paid { amount, .. } if amount.minor_units == 700), "{query:?}");
        assert_eq!(running.sim.books().balance(provider, 12), 100_000 - 700);

        // A system error: unknown, query at once; nothing booked.
        running.faults(Faults { error_rate: 1.0, ..Faults::default() });
        let error = adapter.micropay(pay(code(provider, 13), &format!("S2-{p}-3"), 100)).await.unwrap();
        assert_eq!(sorted(&error), (ChargeStatus::Unknown, messages::UNCERTAIN, NOW), "{provider}");
        assert!(adapter.query(provider, &no(&format!("S2-{p}-3"))).await.is_err());

        // HTTP 202: unknown.
        running.faults(Faults { http_202_rate: 1.0, ..Faults::default() });
        let accepted = adapter.micropay(pay(code(provider, 14), &format!("S2-{p}-4"), 100)).await.unwrap();
        assert_eq!(
            (accepted.status, accepted.provider_code.as_str()),
            (ChargeStatus::Unknown, checkout_coordinator::providers::HTTP_202)
        );

        // An outage: no answer.
        running.faults(Faults { outage: true, ..Faults::default() });
        let down = adapter.micropay(pay(code(provider, 15), &format!("S2-{p}-5"), 100)).await;
        assert!(matches!(down, Err(ProviderError::Unreachable { .. })), "{provider}: {down:?}");

        // Reverse asks to be called again, then works.
        running.faults(Faults { reverse_retry_rate: 1.0, ..Faults::default() });
        assert_eq!(adapter.reverse(provider, &no(&format!("S2-{p}-2"))).await.unwrap(), ReverseAnswer::CallAgain);
        running.faults(Faults::default());
        assert_eq!(
            adapter.reverse(provider, &no(&format!("S2-{p}-2"))).await.unwrap(),
            ReverseAnswer::Reversed { refunded: true }
        );
        assert_eq!(running.sim.books().balance(provider, 12), 100_000);
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_beyond_the_timeout_is_no_answer_and_wrong_keys_are_refused() {
    let running = Running::start(SimOptions::default()).await;
    running.faults(Faults { latency_min_ms: 300, latency_max_ms: 300, ..Faults::default() });
    let mut config = sim::wechat_merchant(&running.base);
    config.timeout = Duration::from_millis(100);
    let slow = WeChatPayV2::new(config).unwrap().micropay(pay(code(Provider::WeChatPay, 21), "S3-W-1", 100)).await;
    assert!(matches!(slow, Err(ProviderError::Unreachable { .. })), "{slow:?}");
    running.faults(Faults::default());

    // A merchant key the provider does not know: the request is refused before any trade.
    let mut config = sim::wechat_merchant(&running.base);
    config.key = "not the merchant key".into();
    let wrong = WeChatPayV2::new(config).unwrap().micropay(pay(code(Provider::WeChatPay, 22), "S3-W-2", 100)).await;
    let wrong = wrong.unwrap();
    assert_eq!(wrong.status, ChargeStatus::Unknown, "{wrong:?}");
    assert!(running.sim.books().order(&no("S3-W-2")).is_none());

    // An app key Alipay does not know: the request is refused (signed answer, 40002).
    let mut config = sim_app(&format!("{}/gateway.do", running.base));
    config.app_private_key = test_keys::ALIPAY_PRIVATE_PEM.into();
    let wrong = AlipayAdapter::new(config).unwrap().micropay(pay(code(Provider::Alipay, 23), "S3-A-1", 100)).await;
    let wrong = wrong.unwrap();
    assert_eq!((wrong.status, wrong.provider_code.as_str()), (ChargeStatus::Failed, "40002/isv.invalid-signature"));
    assert!(running.sim.books().order(&no("S3-A-1")).is_none());

    // Configurations print without their secrets.
    let config = sim::wechat_merchant(&running.base);
    assert!(!format!("{config:?}").contains(&config.key));
    let config = sim_app(&running.base);
    assert!(!format!("{config:?}").contains("PRIVATE"));

    // An https URL is taken (TLS: see tests/tls.rs), another scheme is refused at construction; a bad key too.
    assert!(WeChatPayV2::new(sim::wechat_merchant("https://api.mch.weixin.qq.com")).is_ok());
    assert!(WeChatPayV2::new(sim::wechat_merchant("ftp://api.mch.weixin.qq.com")).is_err());
    let mut config = sim_app("http://127.0.0.1:1/gateway.do");
    config.alipay_public_key = "not a key".into();
    assert!(AlipayAdapter::new(config).is_err());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bills_list_the_days_payments_refunds_and_reversals() {
    let running = Running::start(SimOptions::default()).await;
    let (wechat, alipay) = (running.wechat(), running.alipay());
    wechat.micropay(pay(code(Provider::WeChatPay, 31), "S4-W-1", 1_234)).await.unwrap();
    wechat.micropay(pay(code(Provider::WeChatPay, 32), "S4-W-2", 1_000)).await.unwrap();
    wechat.refund(refund(Provider::WeChatPay, "S4-W-2", "RF-W", 1_000, 250)).await.unwrap();
    wechat.micropay(pay(code(Provider::WeChatPay, 33), "S4-W-3", 500)).await.unwrap();
    wechat.reverse(Provider::WeChatPay, &no("S4-W-3")).await.unwrap();
    alipay.micropay(pay(code(Provider::Alipay, 34), "S4-A-1", 999)).await.unwrap();

    let today = alipay::china_date(UnixMillis::now());
    let gzip = wechat.download_bill(&today.replace('-', ""), "ALL").await.unwrap().expect("a bill for today");
    assert!(gzip.starts_with(&[0x1f, 0x8b]), "asked with tar_type=GZIP");
    let mut bill = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gzip[..]), &mut bill).unwrap();
    let lines: Vec<&str> = bill.lines().collect();
    // Header, 3 payments, 1 refund, 1 reversal, totals header, totals.
    assert_eq!(lines.len(), 8, "{bill}");
    for line in &lines[1..6] {
        assert!(line.split(',').all(|f| f.starts_with('`')), "{line}");
        assert_eq!(line.split(',').count(), 24, "{line}");
    }
    assert!(bill.contains("`S4-W-1,") && bill.contains("`12.34,"), "{bill}");
    assert!(bill.contains("`REFUND,") && bill.contains("`RF-W,") && bill.contains("`2.50,"), "{bill}");
    assert!(bill.contains("`REVOKED,"), "{bill}");
    // 3 payments of 27.34 yuan; 2.50 + 5.00 refunded; fees 0.07 + 0.06 + 0.03.
    assert_eq!(lines[7], "`5,`27.34,`7.50,`0.00,`0.16,`27.34,`7.50");
    let parsed = reconcile::parse_wechat_bill(&gzip).unwrap();
    assert_eq!(parsed.lines.len(), 5);
    assert_eq!((parsed.totals.charged, parsed.totals.refunded, parsed.totals.fees), (2_734, 750, 16));
    assert_eq!(wechat.download_bill("20000101", "ALL").await.unwrap(), None);

    // Alipay: a zip of the GBK details and summary files.
    let zip = alipay.download_bill(&today).await.unwrap();
    assert!(zip.starts_with(b"PK\x03\x04"), "a zip");
    let bill = reconcile::parse_alipay_bill(&zip).unwrap();
    assert_eq!(bill.day.as_deref(), Some(today.as_str()));
    assert_eq!(bill.lines.len(), 1, "{bill:?}");
    assert_eq!((bill.lines[0].out_trade_no.as_str(), bill.lines[0].amount, bill.lines[0].fee), ("S4-A-1", 999, 6));

    // The same bills as the coordinator asks for them, by business day (`2026-11-25`).
    let wechat: &dyn PaymentProvider = &wechat;
    let gzip = wechat.download_bill(Provider::WeChatPay, &today).await.unwrap().expect("a bill");
    assert_eq!(reconcile::parse_wechat_bill(&gzip).unwrap().lines.len(), 5);
    let alipay: &dyn PaymentProvider = &alipay;
    let zip = alipay.download_bill(Provider::Alipay, &today).await.unwrap().expect("a bill");
    assert_eq!(reconcile::parse_alipay_bill(&zip).unwrap().lines.len(), 1);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_and_cancel_keep_the_providers_windows() {
    let running = Running::start(SimOptions::default()).await;
    let (wechat, alipay) = (running.wechat(), running.alipay());
    wechat.micropay(pay(code(Provider::WeChatPay, 35), "S4-W-OLD", 100)).await.unwrap();
    wechat.micropay(pay(code(Provider::WeChatPay, 36), "S4-W-6D", 100)).await.unwrap();
    alipay.micropay(pay(code(Provider::Alipay, 37), "S4-A-OLD", 100)).await.unwrap();
    let books = running.sim.books();
    assert!(books.age_order(&no("S4-W-OLD"), sim::WECHAT_REVERSE_WINDOW + Duration::from_secs(60)));
    assert!(books.age_order(&no("S4-W-6D"), Duration::from_secs(6 * 24 * 3600)));
    assert!(books.age_order(&no("S4-A-OLD"), sim::ALIPAY_CANCEL_WINDOW + Duration::from_secs(60)));
    assert_eq!(
        wechat.reverse(Provider::WeChatPay, &no("S4-W-OLD")).await.unwrap(),
        ReverseAnswer::Refused { provider_code: "REVERSE_EXPIRE".into() }
    );
    assert_eq!(
        wechat.reverse(Provider::WeChatPay, &no("S4-W-6D")).await.unwrap(),
        ReverseAnswer::Reversed { refunded: true }
    );
    assert_eq!(
        alipay.reverse(Provider::Alipay, &no("S4-A-OLD")).await.unwrap(),
        ReverseAnswer::Refused { provider_code: "40004/ACQ.TRADE_CANCEL_TIME_OUT".into() }
    );
    assert_eq!(books.order(&no("S4-A-OLD")).unwrap().state, SimOrderState::Paid, "refused: nothing changed");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_endpoints_dump_the_books_and_change_faults() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let running = Running::start(SimOptions::default()).await;
    running.wechat().micropay(pay(code(Provider::WeChatPay, 41), "S5-W-1", 300)).await.unwrap();
    let address = running.base.trim_start_matches("http://").to_owned();
    let http = |request: String| {
        let address = address.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            answer
        }
    };
    let books = http(format!("GET /sim/books HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")).await;
    assert!(books.starts_with("HTTP/1.1 200"), "{books}");
    assert!(books.contains("\"S5-W-1\"") && books.contains("\"WeChatPay/41\":99700"), "{books}");
    assert!(books.contains("\"amount\":{\"minor_units\":300,\"currency\":\"CNY\"}"), "{books}");

    let faults = r#"{"outage":true,"latency_max_ms":5}"#;
    let set = http(format!(
        "POST /sim/faults HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{faults}",
        faults.len()
    ))
    .await;
    assert!(set.starts_with("HTTP/1.1 200"), "{set}");
    assert!(running.sim.faults().outage);
    assert_eq!(running.sim.faults().latency_max_ms, 5);
    let down = running.wechat().micropay(pay(code(Provider::WeChatPay, 42), "S5-W-2", 300)).await;
    assert!(matches!(down, Err(ProviderError::Unreachable { .. })));

    let issued = http(format!(
        "GET /sim/code?provider=alipay&wallet=9 HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    ))
    .await;
    assert!(issued.contains("\"code\":\"280009"), "{issued}");
    running.stop().await;
}

// ------------------------------------------- requests as the provider sees them

/// Accepts one HTTP request, answers `answer` (or closes the connection), and returns the request body.
async fn capture_one(answer: Option<String>) -> (String, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).await.unwrap();
            received.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&received).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    if let Some(answer) = answer {
                        let response = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                            answer.len()
                        );
                        stream.write_all(response.as_bytes()).await.unwrap();
                    }
                    return body.to_owned();
                }
            }
            assert!(n > 0, "the connection closed before the whole request came");
        }
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_requests_carry_the_documented_fields_and_signature() {
    use hmac::{Hmac, Mac};
    let config = sim::wechat_merchant("http://unused");
    // The answer, signed by hand with the merchant key (the algorithm written out again, independently).
    let hmac_upper_hex = |text: &str| {
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(config.key.as_bytes()).unwrap();
        mac.update(text.as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02X}")).collect::<String>()
    };
    let fields = [
        ("appid", config.appid.as_str()),
        ("mch_id", config.mch_id.as_str()),
        ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
        ("result_code", "SUCCESS"),
        ("return_code", "SUCCESS"),
        ("total_fee", "1234"),
        ("transaction_id", "4200000000000000000000000001"),
    ];
    let text: String = fields.iter().map(|(k, v)| format!("{k}={v}&")).collect::<String>() + "key=" + &config.key;
    let mut answer: String = fields.iter().map(|(k, v)| format!("<{k}>{v}</{k}>")).collect();
    answer = format!("<xml>{answer}<sign>{}</sign></xml>", hmac_upper_hex(&text));

    let (url, request) = capture_one(Some(answer)).await;
    let adapter = WeChatPayV2::new(WeChatConfig { base_url: url, ..config.clone() }).unwrap();
    let code = code(Provider::WeChatPay, 51);
    let paid = adapter.micropay(pay(code.clone(), "S6-W-1", 1_234)).await.unwrap();
    assert_eq!((paid.status, paid.transaction_id.as_str()), (ChargeStatus::Paid, "4200000000000000000000000001"));

    let sent = wechat::parse_xml(&request.await.unwrap()).unwrap();
    for (name, value) in [
        ("appid", config.appid.as_str()),
        ("mch_id", config.mch_id.as_str()),
        ("sign_type", "HMAC-SHA256"),
        ("total_fee", "1234"),
        ("fee_type", "CNY"),
        ("out_trade_no", "S6-W-1"),
        ("device_info", "L1"),
        ("spbill_create_ip", "127.0.0.1"),
        ("body", "groceries"),
        ("auth_code", code.expose_digits()),
    ] {
        assert_eq!(sent.get(name).map(String::as_str), Some(value), "{name}");
    }
    assert_eq!(sent["nonce_str"].len(), 32);
    let text: String = sent.iter().filter(|(k, _)| k.as_str() != "sign").map(|(k, v)| format!("{k}={v}&")).collect();
    assert_eq!(sent["sign"], hmac_upper_hex(&format!("{text}key={}", config.key)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alipay_requests_carry_the_documented_fields_and_an_rsa2_signature() {
    use base64::Engine as _;
    use rsa::{pkcs1v15::VerifyingKey, pkcs8::DecodePublicKey, signature::Verifier};
    let (url, request) = capture_one(None).await;
    let adapter = AlipayAdapter::new(sim_app(&format!("{url}/gateway.do"))).unwrap();
    let code = code(Provider::Alipay, 52);
    // The capture closes without answering: no answer is an error, never a failure.
    let answer = adapter.micropay(pay(code.clone(), "S6-A-1", 1_234)).await;
    assert!(matches!(answer, Err(ProviderError::Unreachable { .. })), "{answer:?}");

    let decode = |text: &str| {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' => {
                    out.push(u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16).unwrap());
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).unwrap()
    };
    let sent: BTreeMap<String, String> = request
        .await
        .unwrap()
        .split('&')
        .map(|pair| pair.split_once('=').unwrap())
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    assert_eq!(sent["method"], "alipay.trade.pay");
    assert_eq!(sent["sign_type"], "RSA2");
    assert_eq!(sent["charset"], "utf-8");
    assert_eq!(sent["version"], "1.0");
    assert_eq!(sent["app_id"], "2021000000000001");
    assert_eq!(sent["timestamp"].len(), "2026-11-25 18:49:38".len());
    let biz: serde_json::Value = serde_json::from_str(&sent["biz_content"]).unwrap();
    assert_eq!(biz["scene"], "bar_code");
    assert_eq!(biz["total_amount"], "12.34");
    assert_eq!(biz["out_trade_no"], "S6-A-1");
    assert_eq!(biz["terminal_id"], "L1");
    assert_eq!(biz["auth_code"], code.expose_digits());

    // SHA256withRSA over the sorted k=v pairs without `sign`, checked with the rsa crate directly.
    let content: String = sent
        .iter()
        .filter(|(k, _)| k.as_str() != "sign")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let key = rsa::RsaPublicKey::from_public_key_pem(&sim::keys::generated().unwrap().app_public_pem).unwrap();
    let signature = base64::engine::general_purpose::STANDARD.decode(&sent["sign"]).unwrap();
    let signature = rsa::pkcs1v15::Signature::try_from(signature.as_slice()).unwrap();
    VerifyingKey::<sha2::Sha256>::new(key).verify(content.as_bytes(), &signature).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_md5_signing_works_end_to_end() {
    let running = Running::start(SimOptions::default()).await;
    let mut config = sim::wechat_merchant(&running.base);
    config.sign_type = SignType::Md5;
    let paid = WeChatPayV2::new(config).unwrap().micropay(pay(code(Provider::WeChatPay, 53), "S6-W-2", 100)).await;
    assert_eq!(paid.unwrap().status, ChargeStatus::Paid);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_of_300_megabytes_is_not_read_and_leaves_the_outcome_unknown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 8192];
        let _ = stream.read(&mut request).await;
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 314572800\r\n\r\n<xml>";
        stream.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0usize;
        // Until the coordinator hangs up.
        while sent < 314_572_800 && stream.write_all(&chunk).await.is_ok() {
            sent += chunk.len();
        }
        sent
    });
    let adapter = WeChatPayV2::new(WeChatConfig { base_url: url, ..sim::wechat_merchant("http://unused") }).unwrap();
    let answer = adapter.micropay(pay(code(Provider::WeChatPay, 61), "S7-W-1", 100)).await;
    match answer {
        Err(ProviderError::Unreachable { reason, .. }) => assert!(reason.contains("larger than"), "{reason}"),
        other => panic!("a 300 MB answer must leave the outcome unknown: {other:?}"),
    }
    let sent = server.await.unwrap();
    assert!(sent < 64 * 1024 * 1024, "the coordinator hung up early: {sent} bytes were sent");
}
