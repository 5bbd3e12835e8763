//! A hostile client on the store network, one test per way it tried to do harm: another lane's sale
//! paid with a small charge, calls without credentials or outside their role, a second coordinator on
//! a live data folder, floods of junk, idle sockets, oversized and malformed requests.

mod common;

use std::{sync::Arc, time::Duration};

use checkout_coordinator::simulated::SimulatedProvider;
use checkout_proto::v1::{
    self as pb, lane_service_client::LaneServiceClient, store_service_client::StoreServiceClient,
};
use checkout_storage::{Provider, SimulatedWallet, UnixMillis, sample_catalog};
use common::{WALLET_SEED, lane_client, manager_client, start_coordinator, store_client_with};
use tonic::{Code, transport::Channel};

fn money(minor_units: i64) -> Option<pb::Money> {
    Some(pb::Money { minor_units, currency: "CNY".into() })
}

/// A Pay for `quantity` of the catalog's product `product` at its price.
fn pay(lane: &str, sale: &str, attempt: u32, code: &str, product: usize, quantity: u32) -> pb::PayRequest {
    let product = &sample_catalog()[product];
    pb::PayRequest {
        lane_id: lane.into(),
        sale_id: sale.into(),
        attempt,
        payment_code: code.into(),
        lines: vec![pb::SaleLine { gtin: product.gtin.to_string(), quantity }],
        amount: money(product.price.minor_units * i64::from(quantity)),
        ..Default::default()
    }
}

fn code(provider: Provider, wallet: u16) -> String {
    SimulatedWallet::new(WALLET_SEED, provider, wallet).issue_code(UnixMillis::now()).expose_digits().to_owned()
}

async fn register(lane: &str, url: &str) -> checkout_lanes::CoordinatorClient {
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
    };

    let channel = Channel::from_shared(url.clone()).unwrap().connect().await.unwrap();
    let mut anonymous = StoreServiceClient::new(channel.clone());
    assert_eq!(anonymous.refund(refund.clone()).await.unwrap_err().code(), Code::Unauthenticated);
    assert_eq!(anonymous.resolve_now(pb::ResolveNowRequest {}).await.unwrap_err().code(), Code::Unauthenticated);
    let mut forged = store_client_with(&url, "ckm_not-a-real-token").await;
    assert_eq!(forged.refund(refund.clone()).await.unwrap_err().code(), Code::Unauthenticated);
    let mut viewer = store_client_with(&url, common::VIEWER_TOKEN).await;
    assert_eq!(viewer.refund(refund.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(viewer.list_audit(pb::ListAuditRequest::default()).await.unwrap_err().code(), Code::PermissionDenied);
    viewer.get_totals(pb::GetTotalsRequest {}).await.expect("a viewer reads");
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
    let revoked = manager.revoke_lane_token(pb::RevokeLaneTokenRequest { lane_id: "NEW1".into() }).await.unwrap();
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
