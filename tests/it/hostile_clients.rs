//! A hostile client on the store network, at the level of calls: another lane's sale paid with a small
//! charge, calls without credentials or outside their role, enrolment and revoked tokens, oversized,
//! malformed and hidden-text requests, reads that would starve the server, lists without pages.

use crate::common;

use std::{sync::Arc, time::Duration};

use checkout_coordinator::sim::SimulatedProvider;
use checkout_proto::v1::{
    self as pb, lane_service_client::LaneServiceClient, store_service_client::StoreServiceClient,
};
use checkout_storage::{Provider, SimulatedWallet, UnixMillis, sample_catalog};
use common::{WALLET_SEED, lane_client, manager_client, start_coordinator, store_client_with};
use tonic::{Code, transport::Channel};

pub(crate) fn money(minor_units: i64) -> Option<pb::Money> {
    Some(pb::Money { minor_units, currency: "CNY".into() })
}

/// A Pay for `quantity` of the catalog's product `product` at its price.
pub(crate) fn pay(lane: &str, sale: &str, attempt: u32, code: &str, product: usize, quantity: u32) -> pb::PayRequest {
    let product = &sample_catalog()[product];
    pb::PayRequest {
        lane_id: lane.into(),
        sale_id: sale.into(),
        attempt,
        payment_code: code.into(),
        lines: vec![pb::SaleLine { gtin: product.gtin.to_string(), quantity, unit_price: None }],
        amount: money(product.price.minor_units * i64::from(quantity)),
        ..Default::default()
    }
}

pub(crate) fn code(provider: Provider, wallet: u16) -> String {
    SimulatedWallet::new(WALLET_SEED, provider, wallet).issue_code(UnixMillis::now()).expose_digits().to_owned()
}

pub(crate) async fn register(lane: &str, url: &str) -> checkout_lanes::CoordinatorClient {
    let mut client = lane_client(url, lane).await;
    let request = pb::RegisterLaneRequest { lane_id: lane.into(), description: format!("lane {lane}") };
    client.register_lane(request).await.expect("register");
    client
}

/// Every audit entry, oldest first, as (method, outcome, caller).
async fn audit(url: &str) -> Vec<(String, String, String)> {
    let mut manager = manager_client(url).await;
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListAuditRequest { page_size: 100, page_token };
        let page = manager.list_audit(request).await.expect("ListAudit").into_inner();
        entries.extend(page.entries.into_iter().map(|e| (e.method, e.outcome, e.caller)));
        if page.next_page_token.is_empty() {
            return entries;
        }
        page_token = page.next_page_token;
    }
}

/// Finding 1: a lane (or anyone) paying another lane's sale with a small charge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_lanes_sale_cannot_be_paid_with_a_small_charge() {
    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let url = coordinator.url.clone();
    let mut l3 = register("L3", &url).await;
    let mut evil = register("L4", &url).await;
    let sale = "L3-BIGBASKET";

    // The basket at lane L3: 6 bottles of the third product. The stranger pays one, for the same sale.
    let stranger_code = code(Provider::WeChatPay, 66);
    let cheap = pay("L3", sale, 1, &stranger_code, 2, 1);
    let status = evil.pay(cheap.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "as lane L3: {status:?}");
    let mut own_lane = cheap.clone();
    own_lane.lane_id = "L4".into();
    let status = evil.pay(own_lane).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "L3's sale id under its own lane: {status:?}");
    let anonymous = LaneServiceClient::new(Channel::from_shared(url.clone()).unwrap().connect().await.unwrap());
    let status = anonymous.clone().pay(cheap.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(sim.orders().is_empty(), "nothing reached the provider");

    // The real lane pays its own basket, once, at its own amount.
    let basket = pay("L3", sale, 1, &code(Provider::Alipay, 3), 2, 6);
    let paid = l3.pay(basket.clone()).await.unwrap().into_inner();
    assert_eq!(paid.outcome(), pb::PaymentOutcome::Paid, "{paid:?}");
    assert_eq!(paid.amount, basket.amount);

    // Even lane L3's own token cannot reuse the sale's attempt for a smaller basket or another code:
    // the repeat must be the same charge, else it is refused and written to the audit log.
    for forged in [pay("L3", sale, 1, &code(Provider::Alipay, 3), 2, 1), pay("L3", sale, 1, &stranger_code, 2, 6)] {
        let status = l3.pay(forged).await.unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    }
    let again = l3.pay(basket.clone()).await.unwrap().into_inner();
    assert_eq!(again, paid, "the true repeat gets the first answer");

    let orders = sim.orders();
    assert_eq!(orders.len(), 1, "one charge reached the provider: {orders:?}");
    assert_eq!(orders[0].amount.minor_units, basket.amount.unwrap().minor_units);
    let mut manager = manager_client(&url).await;
    let sales = manager.list_sales(pb::ListSalesRequest::default()).await.unwrap().into_inner().sales;
    assert_eq!(sales.len(), 1);
    assert_eq!((sales[0].sale_id.as_str(), sales[0].items), (sale, 6));

    let audit = audit(&url).await;
    let refused = |outcome: &str, caller: &str| {
        audit.iter().any(|(m, o, c)| m == "checkout.v1.LaneService/Pay" && o == outcome && c == caller)
    };
    assert!(refused("PERMISSION_DENIED", "lane L4"), "{audit:?}");
    assert!(refused("UNAUTHENTICATED", "anonymous"), "{audit:?}");
    assert!(refused("FAILED_PRECONDITION", "lane L3"), "{audit:?}");
    coordinator.stop().await;
}

/// Finding 2: calls without credentials, with unknown ones, or outside the caller's lane or role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_credentials_or_outside_their_role_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let url = coordinator.url.clone();
    let mut l1 = register("L1", &url).await;
    let paid = l1.pay(pay("L1", "L1-REFUNDME", 1, &code(Provider::WeChatPay, 1), 0, 2)).await.unwrap().into_inner();
    assert_eq!(paid.outcome(), pb::PaymentOutcome::Paid);
    let refund = pb::RefundRequest {
        out_trade_no: paid.out_trade_no.clone(),
        out_refund_no: "RF-HOSTILE".into(),
        amount: money(100),
        reason: "hostile".into(),
        ..Default::default()
    };

    let channel = Channel::from_shared(url.clone()).unwrap().connect().await.unwrap();
    let mut anonymous = StoreServiceClient::new(channel.clone());
    assert_eq!(anonymous.refund(refund.clone()).await.unwrap_err().code(), Code::Unauthenticated);
    assert_eq!(
        anonymous.resolve_now(pb::ResolveNowRequest::default()).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let mut forged = store_client_with(&url, "ckm_not-a-real-token").await;
    assert_eq!(forged.refund(refund.clone()).await.unwrap_err().code(), Code::Unauthenticated);
    let mut viewer = store_client_with(&url, common::VIEWER_TOKEN).await;
    assert_eq!(viewer.refund(refund.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(viewer.list_audit(pb::ListAuditRequest::default()).await.unwrap_err().code(), Code::PermissionDenied);
    viewer.get_totals(pb::GetTotalsRequest::default()).await.expect("a viewer reads");
    // A lane's token is no manager's.
    let mut lane_as_manager = store_client_with(&url, &common::lane_token("L1")).await;
    assert_eq!(lane_as_manager.refund(refund.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    let order = sim.order(&checkout_storage::OutTradeNo::parse(&paid.out_trade_no).unwrap()).unwrap();
    assert!(order.refunds.is_empty(), "no refund reached the provider");

    // Lane-scoped calls act only on the caller's own lane.
    let mut l2 = register("L2", &url).await;
    let rename = pb::RegisterLaneRequest { lane_id: "L1".into(), description: "taken over".into() };
    assert_eq!(l2.register_lane(rename.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    let mut anonymous_lane = LaneServiceClient::new(channel.clone());
    assert_eq!(anonymous_lane.register_lane(rename).await.unwrap_err().code(), Code::Unauthenticated);
    let shift = pb::OpenShiftRequest {
        lane_id: "L1".into(),
        shift_id: "L1-HIJACK".into(),
        cashier_id: "mallory".into(),
        opened_at: None,
    };
    assert_eq!(l2.open_shift(shift).await.unwrap_err().code(), Code::PermissionDenied);
    let beat = |lane: &str, total: Option<pb::Money>| pb::HeartbeatRequest {
        lane_id: lane.into(),
        state: pb::LaneState::Scanning.into(),
        basket_total: total,
        ..Default::default()
    };
    assert_eq!(l2.heartbeat(beat("L1", money(1))).await.unwrap_err().code(), Code::PermissionDenied);
    let absurd = Some(pb::Money { minor_units: i64::MIN, currency: "XXX".into() });
    assert_eq!(l1.heartbeat(beat("L1", absurd)).await.unwrap_err().code(), Code::InvalidArgument);
    let negative = Some(pb::Money { minor_units: -5, currency: "CNY".into() });
    assert_eq!(l1.heartbeat(beat("L1", negative)).await.unwrap_err().code(), Code::InvalidArgument);
    // Asking how another lane's charge goes is refused; an absurd attempt of its own sale tells nothing.
    let paying = |sale: &str, attempt: u32| pb::HeartbeatRequest {
        lane_id: "L2".into(),
        state: pb::LaneState::Paying.into(),
        sale_id: sale.into(),
        attempt,
        ..Default::default()
    };
    assert_eq!(l2.heartbeat(paying("L1-X", 1)).await.unwrap_err().code(), Code::PermissionDenied);
    let answer = l2.heartbeat(paying("L2-X", u32::MAX)).await.unwrap().into_inner();
    assert_eq!(answer.charge_progress(), pb::ChargeProgress::Unspecified);

    let mut manager = manager_client(&url).await;
    let lanes = manager.list_lanes(pb::ListLanesRequest::default()).await.unwrap().into_inner().lanes;
    let l1_shown = lanes.iter().find(|l| l.lane_id == "L1").expect("L1 listed");
    assert_eq!(l1_shown.description, "lane L1", "nobody else renamed it");
    let answer = manager.refund(refund).await.expect("the manager refunds").into_inner();
    assert_eq!(answer.refund.unwrap().status(), pb::RefundStatus::Accepted);

    // Health and reflection stay open, so standard tooling works without a token.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let request = tonic_health::pb::HealthCheckRequest { service: "checkout.v1.StoreService".into() };
    health.check(request).await.expect("health answers anonymous callers");

    let audit = audit(&url).await;
    for (method, outcome, caller) in [
        ("checkout.v1.StoreService/Refund", "UNAUTHENTICATED", "anonymous"),
        ("checkout.v1.StoreService/Refund", "PERMISSION_DENIED", "viewer bo"),
        ("checkout.v1.StoreService/Refund", "PERMISSION_DENIED", "lane L1"),
        ("checkout.v1.LaneService/RegisterLane", "PERMISSION_DENIED", "lane L2"),
        ("checkout.v1.LaneService/OpenShift", "PERMISSION_DENIED", "lane L2"),
        ("checkout.v1.StoreService/Refund", "ok", "manager ann"),
    ] {
        let found = audit.iter().any(|(m, o, c)| (m.as_str(), o.as_str(), c.as_str()) == (method, outcome, caller));
        assert!(found, "{method} {outcome} {caller} not in the audit log: {audit:?}");
    }
    coordinator.stop().await;
}

/// Finding 2 (enrolment): a new lane enrols with the secret; the secret cannot take over an enrolled
/// lane; a revoked token stops working at once; the number of lanes is capped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enrolment_secret_enrols_new_lanes_only_and_revoked_tokens_stop_working() {
    use checkout_lanes::{FrameSource, LaneConfig, LaneCredentials};
    use checkout_storage::{LaneId, LaneStore};

    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let mut security = common::test_security();
    security.limits.max_lanes = common::CONFIGURED_LANES.len() + 2;
    let coordinator = common::start_coordinator_with(data.path(), &sim, security).await;
    let url = coordinator.url.clone();

    // A lane with the enrolment secret and no frames: it enrols, registers, keeps its token.
    let lane_data = tempfile::tempdir().unwrap();
    let run = |lane: &str, folder: &std::path::Path, secret: &str| {
        let mut config = LaneConfig::new(LaneId::parse(lane).unwrap(), url.clone(), FrameSource::Paths(Vec::new()));
        config.data_dir = Some(folder.to_owned());
        config.connect_timeout = Duration::from_secs(3);
        config.credentials = LaneCredentials { token: None, enrolment_secret: Some(secret.to_owned()) };
        tokio::task::spawn_blocking(move || {
            actix_rt::System::new().block_on(checkout_lanes::run_lane(config, None, std::future::pending()))
        })
    };
    run("NEW1", lane_data.path(), common::ENROLMENT_SECRET).await.unwrap().expect("a new lane enrols");
    let token = LaneStore::open(lane_data.path()).unwrap().lane_token().unwrap().expect("token kept");
    let mut new_lane = common::lane_client_with(&url, &token).await;
    let request = pb::RegisterLaneRequest { lane_id: "NEW1".into(), description: "again".into() };
    new_lane.register_lane(request.clone()).await.expect("its kept token works");

    // Another machine with the secret cannot take over NEW1 (or any enrolled lane), nor guess the secret.
    let elsewhere = tempfile::tempdir().unwrap();
    let taken = run("NEW1", elsewhere.path(), common::ENROLMENT_SECRET).await.unwrap();
    assert!(matches!(&taken, Err(checkout_lanes::LaneError::Refused { .. })), "{taken:?}");
    let guessed = run("NEW2", elsewhere.path(), "cke_guess").await.unwrap();
    assert!(matches!(&guessed, Err(checkout_lanes::LaneError::Refused { .. })), "{guessed:?}");

    // The manager revokes NEW1: its token stops at once, and the secret cannot enrol it again.
    let mut manager = manager_client(&url).await;
    let revoked = manager
        .revoke_lane_token(pb::RevokeLaneTokenRequest { lane_id: "NEW1".into(), ..Default::default() })
        .await
        .unwrap();
    assert!(revoked.into_inner().revoked);
    assert_eq!(new_lane.register_lane(request).await.unwrap_err().code(), Code::Unauthenticated);
    let again = run("NEW1", tempfile::tempdir().unwrap().path(), common::ENROLMENT_SECRET).await.unwrap();
    assert!(again.is_err(), "a revoked lane re-enrolled with the secret");

    // The store enrols at most max_lanes lanes (9 configured + NEW1 + one more).
    run("NEW2", tempfile::tempdir().unwrap().path(), common::ENROLMENT_SECRET).await.unwrap().expect("room for one");
    let full = run("NEW3", tempfile::tempdir().unwrap().path(), common::ENROLMENT_SECRET).await.unwrap();
    match full {
        Err(checkout_lanes::LaneError::Refused { message, .. }) => assert!(message.contains("max_lanes"), "{message}"),
        other => panic!("a lane past the cap: {other:?}"),
    }
    coordinator.stop().await;
}

/// Finding 6: oversized fields and messages, malformed messages, hidden characters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_malformed_and_hidden_text_requests_get_short_invalid_argument() {
    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let url = coordinator.url.clone();
    let mut l1 = register("L1", &url).await;

    for digits in [4 * 1024 * 1024, 100_000] {
        let mut huge = pay("L1", "L1-HUGE", 1, "", 0, 1);
        huge.payment_code = "1".repeat(digits);
        let status = l1.pay(huge).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{} digits: {}", digits, status.code());
        assert!(status.message().len() < 200, "the error is short, not an echo: {} bytes", status.message().len());
    }

    // Not a protobuf message at all.
    let status = raw_unary(&url, "/checkout.v1.LaneService/Pay", &common::lane_token("L1"), &[0xff; 64]).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    for hidden in ["L1 \u{202E}evil", "tab\there", "zero\u{200B}width"] {
        let request = pb::RegisterLaneRequest { lane_id: "L1".into(), description: hidden.into() };
        let status = l1.register_lane(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{hidden:?}");
        assert!(status.message().starts_with("description:"), "{}", status.message());
    }
    let paid = l1.pay(pay("L1", "L1-TEXT", 1, &code(Provider::WeChatPay, 4), 0, 1)).await.unwrap().into_inner();
    let mut manager = manager_client(&url).await;
    let refund = pb::RefundRequest {
        out_trade_no: paid.out_trade_no,
        out_refund_no: "RF-TEXT".into(),
        amount: money(1),
        reason: "damaged\u{2066} or not".into(),
        ..Default::default()
    };
    let status = manager.refund(refund).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("reason:"), "{}", status.message());
    coordinator.stop().await;
}

/// Sends `body` as a gRPC message to `path` and returns the status.
async fn raw_unary(url: &str, path: &str, token: &str, body: &[u8]) -> tonic::Status {
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

    #[derive(Default)]
    struct Raw;
    struct RawEncoder;
    struct RawDecoder;
    impl Encoder for RawEncoder {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
            bytes::BufMut::put_slice(dst, &item);
            Ok(())
        }
    }
    impl Decoder for RawDecoder {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
            let n = bytes::Buf::remaining(src);
            Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
        }
    }
    impl Codec for Raw {
        type Encode = Vec<u8>;
        type Decode = Vec<u8>;
        type Encoder = RawEncoder;
        type Decoder = RawDecoder;
        fn encoder(&mut self) -> RawEncoder {
            RawEncoder
        }
        fn decoder(&mut self) -> RawDecoder {
            RawDecoder
        }
    }
    let channel = Channel::from_shared(url.to_owned()).unwrap().connect().await.unwrap();
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    let mut request = tonic::Request::new(body.to_vec());
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    client.unary(request, path.parse().unwrap(), Raw).await.expect_err("garbage is not answered")
}

/// A ledger holding `records` paid sales of eight lanes, written directly (quicker than charging them).
fn ledger_of_paid_sales(records: u32) -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let store = checkout_storage::Store::open(data.path()).unwrap();
    for n in 0..records {
        let (charge, sale) = paid_sale(n);
        store.put_charge(&charge).unwrap();
        store.insert_sale_if_absent(&sale).unwrap();
    }
    store.commit_blocking().unwrap();
    data
}

/// A paid charge and its sale, as the engine records them, for filling a ledger quickly.
fn paid_sale(n: u32) -> (checkout_storage::ChargeRecord, checkout_storage::SaleRecord) {
    use checkout_storage::{
        Attempt, ChargeRecord, ChargeStatus, CodeFingerprint, LaneId, MaskedCode, OutTradeNo, SaleId, SaleLine,
        SaleRecord, StoreId, basket_digest,
    };
    let product = &sample_catalog()[(n % 20) as usize];
    let lane = format!("L{}", n % 8 + 1);
    let sale_id = SaleId::parse(&format!("{lane}-FILL{n:06}")).unwrap();
    let out_trade_no = OutTradeNo::derive(&StoreId::parse("S001").unwrap(), &sale_id, Attempt::new(1).unwrap());
    let lines = vec![SaleLine { gtin: product.gtin.clone(), quantity: 3, unit_price: product.price }];
    let charge = ChargeRecord {
        out_trade_no: out_trade_no.clone(),
        lane_id: LaneId::parse(&lane).unwrap(),
        sale_id: sale_id.clone(),
        attempt: Attempt::new(1).unwrap(),
        provider: Provider::WeChatPay,
        masked_code: MaskedCode::of("134567890123456789"),
        code_fingerprint: CodeFingerprint([(n % 251) as u8; 16]),
        amount: product.price.checked_mul(3).unwrap(),
        status: ChargeStatus::Paid,
        provider_code: "SUCCESS".into(),
        message: "paid".into(),
        provider_transaction_id: format!("T{n}"),
        created_at: UnixMillis(1_700_000_000_000 + i64::from(n)),
        settled_at: Some(UnixMillis(1_700_000_000_500 + i64::from(n))),
        lines: lines.clone(),
        basket_sha256: basket_digest(&[checkout_storage::OrderLine::catalog(product.gtin.clone(), 3)]),
        shift_id: None,
        sale_started_at: UnixMillis(1_700_000_000_000),
        superseded_by: None,
        events: Vec::new(),
    };
    let sale = SaleRecord {
        lane_id: charge.lane_id.clone(),
        sale_id,
        shift_id: None,
        lines,
        total: charge.amount,
        out_trade_no,
        started_at: charge.sale_started_at,
        finished_at: UnixMillis(1_700_000_001_000 + i64::from(n)),
    };
    (charge, sale)
}

/// Finding 5 (reads): totals, lane lists and pages of payments are served from the ledger's summary
/// and indexes, a few reads at a time off the async runtime, so health checks and charges stay quick
/// however hard managers (or a hostile script) read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_within_a_second_while_list_loops_run() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    const RECORDS: u32 = 20_000;
    let data = ledger_of_paid_sales(RECORDS);
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let url = coordinator.url.clone();
    let totals = manager_client(&url).await.get_totals(pb::GetTotalsRequest::default()).await.unwrap().into_inner();
    assert_eq!(totals.sales, u64::from(RECORDS), "the summary counts what the ledger holds");

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loops = Vec::new();
    for n in 0..8 {
        let (url, stop) = (url.clone(), stop.clone());
        loops.push(tokio::spawn(async move {
            let mut client = manager_client(&url).await;
            let mut calls = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if n % 2 == 0 {
                    client.get_totals(pb::GetTotalsRequest::default()).await.unwrap();
                } else {
                    let request = pb::ListPaymentsRequest { page_size: 1000, ..Default::default() };
                    client.list_payments(request).await.unwrap();
                }
                calls += 1;
            }
            calls
        }));
    }
    // And a burst of 300 page requests at once.
    let burst_client = manager_client(&url).await;
    let burst: Vec<_> = (0..300)
        .map(|_| {
            let mut client = burst_client.clone();
            tokio::spawn(async move {
                let request = pb::ListPaymentsRequest { page_size: 1000, ..Default::default() };
                client.list_payments(request).await.map(|r| r.into_inner().payments.len())
            })
        })
        .collect();

    let channel = Channel::from_shared(url.clone()).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(channel);
    let mut slowest = Duration::ZERO;
    let until = std::time::Instant::now() + Duration::from_secs(4);
    while std::time::Instant::now() < until {
        let asked = std::time::Instant::now();
        let request = HealthCheckRequest { service: "checkout.v1.LaneService".into() };
        tokio::time::timeout(Duration::from_secs(5), health.check(request)).await.expect("health answered").unwrap();
        slowest = slowest.max(asked.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut calls = 0;
    for task in loops {
        calls += task.await.unwrap();
    }
    let mut pages = 0;
    for task in burst {
        assert_eq!(task.await.unwrap().expect("a page of the burst"), 1000);
        pages += 1;
    }
    eprintln!(
        "health: slowest answer {slowest:?} over 4 s while 8 loops made {calls} calls and {pages} pages of 1000 came at once"
    );
    assert!(slowest < Duration::from_secs(1), "health took {slowest:?}");
    coordinator.stop().await;
}

/// Finding 6 (lists): every list is paginated with a default and a maximum page, tokens belong to
/// their list and filters, and walking the pages gives every record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_is_paginated_and_its_tokens_are_its_own() {
    const RECORDS: u32 = 2_500;
    let data = ledger_of_paid_sales(RECORDS);
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let mut manager = manager_client(&coordinator.url).await;

    let first = manager.list_sales(pb::ListSalesRequest::default()).await.unwrap().into_inner();
    assert_eq!(first.sales.len(), 50, "the default page");
    assert!(!first.next_page_token.is_empty());
    let big = pb::ListSalesRequest { page_size: 1_000_000, ..Default::default() };
    assert_eq!(manager.list_sales(big).await.unwrap().into_inner().sales.len(), 1000, "the largest page");
    let negative = pb::ListSalesRequest { page_size: -1, ..Default::default() };
    assert_eq!(manager.list_sales(negative).await.unwrap_err().code(), Code::InvalidArgument);

    // A token is its list's, with its filters.
    let other_list = pb::ListPaymentsRequest { page_token: first.next_page_token.clone(), ..Default::default() };
    assert_eq!(manager.list_payments(other_list).await.unwrap_err().code(), Code::InvalidArgument);
    let other_filter =
        pb::ListSalesRequest { lane_id: "L1".into(), page_token: first.next_page_token.clone(), ..Default::default() };
    assert_eq!(manager.list_sales(other_filter).await.unwrap_err().code(), Code::InvalidArgument);
    let forged = pb::ListSalesRequest { page_token: "AQIDBAUGBwgJ".into(), ..Default::default() };
    assert_eq!(manager.list_sales(forged).await.unwrap_err().code(), Code::InvalidArgument);

    // Walking every page gives every sale once; a lane's pages give that lane's only.
    let all = common::all_sales(&mut manager, "").await;
    let unique: std::collections::BTreeSet<_> = all.iter().map(|s| s.sale_id.clone()).collect();
    assert_eq!((all.len(), unique.len()), (RECORDS as usize, RECORDS as usize));
    let l3 = common::all_sales(&mut manager, "L3").await;
    let of_l3 = (0..RECORDS).filter(|n| n % 8 == 2).count();
    assert!(l3.iter().all(|s| s.lane_id == "L3") && l3.len() == of_l3, "{}", l3.len());
    assert_eq!(common::all_payments(&mut manager, "L3").await.len(), l3.len());

    // The other lists page too.
    let small = |page_token: String| (2, page_token);
    let (page_size, page_token) = small(String::new());
    let products = manager.list_products(pb::ListProductsRequest { page_size, page_token }).await.unwrap().into_inner();
    assert_eq!(products.products.len(), 2);
    let (page_size, page_token) = small(products.next_page_token);
    let more = manager.list_products(pb::ListProductsRequest { page_size, page_token }).await.unwrap().into_inner();
    assert!(more.products[0].gtin > products.products[1].gtin, "the next page goes on from the last");
    for lane in ["L1", "L2", "L3"] {
        register(lane, &coordinator.url).await;
    }
    let lanes = manager.list_lanes(pb::ListLanesRequest { page_size: 2, ..Default::default() }).await.unwrap();
    let lanes = lanes.into_inner();
    assert_eq!(lanes.lanes.len(), 2);
    assert!(!lanes.next_page_token.is_empty());
    let request = pb::ListLanesRequest { page_size: 2, page_token: lanes.next_page_token };
    assert_eq!(manager.list_lanes(request).await.unwrap().into_inner().lanes.len(), 1);
    for request in [pb::ListShiftsRequest { page_size: 2, ..Default::default() }] {
        assert!(manager.list_shifts(request).await.unwrap().into_inner().next_page_token.is_empty());
    }
    assert!(
        manager.list_unsettled(pb::ListUnsettledRequest::default()).await.unwrap().into_inner().payments.is_empty()
    );
    assert!(manager.list_refunds(pb::ListRefundsRequest::default()).await.unwrap().into_inner().refunds.is_empty());
    coordinator.stop().await;
}
