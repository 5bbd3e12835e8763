//! `checkout provider-sim` as a process: the WeChat Pay and Alipay adapters pay through it, faults change at run time, SIGTERM stops it.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use checkout_coordinator::{
    PaymentProvider,
    alipay::{AlipayAdapter, AlipayConfig},
    provider::{MicropayRequest, OrderState, ProviderError},
    wechat::{WeChatConfig, WeChatPayV2},
};
use checkout_storage::{ChargeStatus, Currency, LaneId, Money, OutTradeNo, Provider, SimulatedWallet, UnixMillis};

const BIN: &str = env!("CARGO_BIN_EXE_checkout");
const SEED: &str = "process test";

fn start_sim(extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["provider-sim", "--listen", "127.0.0.1:0", "--wallet-seed", SEED, "--starting-balance-fen", "10000"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start provider-sim");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read address");
    let address = line.trim().strip_prefix("provider-sim listening on ").expect("address line").to_owned();
    (child, format!("http://{address}"))
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    for _ in 0..200 {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("provider-sim did not stop within 10 s of SIGTERM");
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
    let wechat = WeChatPayV2::new(WeChatConfig::for_simulator(&base)).unwrap();
    let alipay = AlipayAdapter::new(AlipayConfig::for_simulator(&format!("{base}/gateway.do"))).unwrap();

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

    let status = terminate(&mut child);
    assert!(status.success(), "{status:?}");
    let gone = wechat.micropay(pay(Provider::WeChatPay, 4, "P1-W-4", 100)).await;
    assert!(matches!(gone, Err(ProviderError::Unreachable { .. })), "{gone:?}");
}

#[test]
fn provider_sim_refuses_rates_outside_zero_to_one() {
    let output = Command::new(BIN).args(["provider-sim", "--error-rate", "1.5"]).output().expect("run provider-sim");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("between 0 and 1"));
}
