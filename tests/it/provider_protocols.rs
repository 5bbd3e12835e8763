//! `checkout provider-sim` as a process, and a coordinator charging through the real WeChat Pay and Alipay adapters over HTTP.

use crate::common;

use std::{process::Command, time::Duration};

use checkout_coordinator::{
    PaymentProvider,
    providers::{MicropayRequest, OrderState, ProviderError, alipay::AlipayAdapter, wechat::WeChatPayV2},
    sim,
};
use checkout_storage::{
    ChargeStatus, Currency, LaneId, Money, OutTradeNo, Provider, SimulatedWallet, StoreId, UnixMillis, sample_catalog,
};

use common::processes::{BIN, Process, provider_sim, terminate};

const SEED: &str = "process test";

/// provider-sim with 100.00 CNY in every wallet; returns it and its base URL.
fn start_sim(extra: &[&str]) -> (Process, String) {
    let mut args = vec!["--starting-balance-fen", "10000"];
    args.extend_from_slice(extra);
    let (sim, address) = provider_sim(SEED, &args);
    (sim, format!("http://{address}"))
}

fn pay(provider: Provider, wallet: u16, out_trade_no: &str, fen: i64) -> MicropayRequest {
    MicropayRequest {
        out_trade_no: OutTradeNo::parse(out_trade_no).unwrap(),
        code: SimulatedWallet::new(SEED.as_bytes(), provider, wallet).issue_code(UnixMillis::now()),
        amount: Money::new(fen, Currency::CNY),
        description: "groceries".into(),
        terminal: LaneId::parse("L1").unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_sim_process_serves_both_protocols_and_stops_on_sigterm() {
    let (mut child, base) = start_sim(&["--password-above-fen", "5000", "--customer-delay-ms", "200"]);
    // The process made its keys at start; the adapters take theirs from it, as `checkout coordinator --provider-sim` does.
    let (wechat, alipay) = sim::adapters_for(&base).await.unwrap();
    let wechat = WeChatPayV2::new(wechat).unwrap();
    let alipay = AlipayAdapter::new(alipay).unwrap();

    let paid = wechat.micropay(pay(Provider::WeChatPay, 1, "P1-W-1", 1_999)).await.unwrap();
    assert_eq!(paid.status, ChargeStatus::Paid, "{paid:?}");
    let paid = alipay.micropay(pay(Provider::Alipay, 1, "P1-A-1", 1_999)).await.unwrap();
    assert_eq!(paid.status, ChargeStatus::Paid, "{paid:?}");

    // Above the password threshold: unknown first, paid once the customer has typed it.
    let paying = alipay.micropay(pay(Provider::Alipay, 2, "P1-A-2", 6_000)).await.unwrap();
    assert_eq!((paying.status, paying.provider_code.as_str()), (ChargeStatus::Unknown, "10003"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let query = alipay.query(Provider::Alipay, &OutTradeNo::parse("P1-A-2").unwrap()).await.unwrap();
    assert!(matches!(query.state, OrderState::Paid { .. }), "{query:?}");

    // Not enough in the wallet (10 000 fen to start).
    let poor = wechat.micropay(pay(Provider::WeChatPay, 3, "P1-W-3", 10_001)).await.unwrap();
    assert_eq!((poor.status, poor.provider_code.as_str()), (ChargeStatus::NewCodeNeeded, "NOTENOUGH"));

    let status = terminate(&mut child.0, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    let gone = wechat.micropay(pay(Provider::WeChatPay, 4, "P1-W-4", 100)).await;
    assert!(matches!(gone, Err(ProviderError::Unreachable { .. })), "{gone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_sim_fault_flags_take_effect() {
    let (mut child, base) = start_sim(&["--outage"]);
    let wechat = WeChatPayV2::new(sim::adapters_for(&base).await.unwrap().0).unwrap();
    let down = wechat.micropay(pay(Provider::WeChatPay, 5, "P2-W-1", 100)).await;
    assert!(matches!(down, Err(ProviderError::Unreachable { .. })), "{down:?}");
    assert!(terminate(&mut child.0, Duration::from_secs(10)).success());

    let (mut child, base) = start_sim(&["--error-rate", "1"]);
    let alipay = AlipayAdapter::new(sim::adapters_for(&base).await.unwrap().1).unwrap();
    let error = alipay.micropay(pay(Provider::Alipay, 5, "P2-A-1", 100)).await.unwrap();
    assert_eq!((error.status, error.provider_code.as_str()), (ChargeStatus::Unknown, "20000/aop.ACQ.SYSTEM_ERROR"));
    assert!(terminate(&mut child.0, Duration::from_secs(10)).success());
}

#[test]
fn provider_sim_refuses_rates_outside_zero_to_one() {
    let output = Command::new(BIN).args(["provider-sim", "--error-rate", "1.5"]).output().expect("run provider-sim");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("between 0 and 1"));
}

/// The coordinator's engine against the adapters and `provider-sim` over HTTP: paid at once, and paid after
/// the password step (Alipay 10003: the engine waits, queries, and finds it paid).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_charges_through_the_adapters_over_http() {
    use std::{collections::HashMap, sync::Arc};

    use checkout_coordinator::{
        CoordinatorConfig,
        sim::{ProviderSim, ProviderSimConfig, SimOptions, SimOrderState},
    };
    use checkout_proto::v1 as pb;

    let product = &sample_catalog()[1];
    let price = product.price.minor_units;
    let mut config = ProviderSimConfig::new(SEED.as_bytes(), 1_000_000).unwrap();
    config.options = SimOptions {
        password_above: Some(price * 5),
        customer_delay: Duration::from_millis(1_000),
        ..SimOptions::default()
    };
    let sim = Arc::new(ProviderSim::new(config).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop_sim, sim_stopped) = tokio::sync::oneshot::channel::<()>();
    let sim_task = tokio::spawn(sim::serve(listener, sim.clone(), async move {
        let _ = sim_stopped.await;
    }));

    let mut providers: HashMap<Provider, Arc<dyn PaymentProvider>> = HashMap::new();
    providers.insert(Provider::WeChatPay, Arc::new(WeChatPayV2::new(sim::wechat_merchant(&base)).unwrap()));
    let app = sim::alipay_app(&format!("{base}/gateway.do"), sim::keys::generated().unwrap());
    let alipay = AlipayAdapter::new(app).unwrap();
    providers.insert(Provider::Alipay, Arc::new(alipay));
    providers.insert(Provider::UnionPay, sim.books().clone());
    let data = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = CoordinatorConfig {
        store_id: StoreId::parse("S001").unwrap(),
        currency: Currency::CNY,
        data_dir: data.path().to_owned(),
        providers,
        shutdown_grace: Duration::from_secs(10),
        timing: common::fast_timing(),
        security: common::test_security(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let coordinator = tokio::spawn(checkout_coordinator::run(listener, config, async {
        let _ = stopped.await;
    }));

    let mut client = common::lane_client(&url, "L9").await;
    client
        .register_lane(pb::RegisterLaneRequest { lane_id: "L9".into(), description: "adapters".into() })
        .await
        .unwrap();
    let pay_request = |sale_id: &str, provider: Provider, wallet: u16, quantity: u32| pb::PayRequest {
        lane_id: "L9".into(),
        sale_id: sale_id.into(),
        attempt: 1,
        payment_code: SimulatedWallet::new(SEED.as_bytes(), provider, wallet)
            .issue_code(UnixMillis::now())
            .expose_digits()
            .into(),
        lines: vec![pb::SaleLine { gtin: product.gtin.to_string(), quantity, unit_price: None }],
        amount: Some(pb::Money { minor_units: price * i64::from(quantity), currency: "CNY".into() }),
        ..Default::default()
    };

    let paid = client.pay(pay_request("L9-HTTP1", Provider::WeChatPay, 1, 2)).await.unwrap().into_inner();
    assert_eq!((paid.outcome(), paid.provider_code.as_str()), (pb::PaymentOutcome::Paid, "SUCCESS"), "{paid:?}");
    let order = sim.books().order(&OutTradeNo::parse(&paid.out_trade_no).unwrap()).unwrap();
    assert_eq!((order.state, order.amount.minor_units), (SimOrderState::Paid, price * 2));
    assert_eq!(order.transaction_id, paid.provider_transaction_id);

    // Above the password threshold: 10003 first; the engine waits, queries, and finds it paid.
    let paid = client.pay(pay_request("L9-HTTP2", Provider::Alipay, 2, 10)).await.unwrap().into_inner();
    assert_eq!(paid.outcome(), pb::PaymentOutcome::Paid, "{paid:?}");
    let order = sim.books().order(&OutTradeNo::parse(&paid.out_trade_no).unwrap()).unwrap();
    assert_eq!((order.state, order.amount.minor_units), (SimOrderState::Paid, price * 10));
    assert_eq!(sim.books().balance(Provider::Alipay, 2), 1_000_000 - price * 10);

    let _ = stop.send(());
    coordinator.await.unwrap().unwrap();
    let _ = stop_sim.send(());
    sim_task.await.unwrap().unwrap();
}
