//! A hostile client on the store network, one test per way it tried to do harm: another lane's sale
//! paid with a small charge, calls without credentials or outside their role, a second coordinator on
//! a live data folder, floods of junk, idle sockets, oversized and malformed requests.

use crate::common;

use std::{sync::Arc, time::Duration};

use checkout_coordinator::sim::SimulatedProvider;
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

/// A CA and the certificates it signed, made for this run only.
struct TestPki {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    lane_cert_pem: String,
    lane_key_pem: String,
}

impl TestPki {
    fn new() -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
            KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "store CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let signed = |names: Vec<String>, common_name: &str, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params.distinguished_name.push(DnType::CommonName, common_name);
            params.extended_key_usages = vec![usage];
            (params.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
        };
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let (server_cert_pem, server_key_pem) = signed(names, "coordinator", ExtendedKeyUsagePurpose::ServerAuth);
        let (lane_cert_pem, lane_key_pem) = signed(Vec::new(), "L1", ExtendedKeyUsagePurpose::ClientAuth);
        TestPki { ca_pem: ca_cert.pem(), server_cert_pem, server_key_pem, lane_cert_pem, lane_key_pem }
    }

    fn server(&self, lanes_need_certificates: bool) -> checkout_coordinator::listener::TlsFiles {
        checkout_coordinator::listener::TlsFiles {
            certificate_chain_pem: self.server_cert_pem.clone(),
            private_key_pem: self.server_key_pem.clone(),
            client_ca_pem: lanes_need_certificates.then(|| self.ca_pem.clone()),
        }
    }

    fn client(&self, with_certificate: bool) -> checkout_lanes::ClientTls {
        checkout_lanes::ClientTls {
            ca_pem: Some(self.ca_pem.clone()),
            certificate_pem: with_certificate.then(|| self.lane_cert_pem.clone()),
            key_pem: with_certificate.then(|| self.lane_key_pem.clone()),
        }
    }
}

/// A channel to `url` with `tls`.
async fn channel_to(url: &str, tls: &checkout_lanes::ClientTls) -> Result<Channel, tonic::transport::Error> {
    checkout_lanes::coordinator_endpoint(url, Some(tls)).unwrap().connect().await
}

/// Finding 2 (plaintext only): the coordinator serves TLS; a lane and a manager work over it, a
/// plaintext client is refused, and with a client CA a lane without a certificate is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_and_managers_work_over_tls_and_plaintext_is_refused() {
    use checkout_lanes::Bearer;

    let pki = TestPki::new();
    for lanes_need_certificates in [false, true] {
        let data = tempfile::tempdir().unwrap();
        let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
        let mut security = common::test_security();
        security.tls = Some(pki.server(lanes_need_certificates));
        let coordinator = common::start_coordinator_with(data.path(), &sim, security).await;
        let url = coordinator.url.clone();
        assert!(url.starts_with("https://"));

        // A lane over TLS registers and pays.
        let channel = channel_to(&url, &pki.client(lanes_need_certificates)).await.expect("TLS connection");
        let mut lane =
            LaneServiceClient::with_interceptor(channel.clone(), Bearer::new(&common::lane_token("L1")).unwrap());
        let request = pb::RegisterLaneRequest { lane_id: "L1".into(), description: "over TLS".into() };
        lane.register_lane(request).await.expect("register over TLS");
        let paid = lane.pay(pay("L1", "L1-TLS", 1, &code(Provider::Alipay, 8), 1, 1)).await.unwrap().into_inner();
        assert_eq!(paid.outcome(), pb::PaymentOutcome::Paid);
        let mut manager = StoreServiceClient::with_interceptor(channel, Bearer::new(common::MANAGER_TOKEN).unwrap());
        let totals = manager.get_totals(pb::GetTotalsRequest {}).await.expect("totals over TLS").into_inner();
        assert_eq!(totals.payments_paid, 1);

        // A whole lane over TLS: it registers, signs its cashier on and off through its outbox.
        let mut config = checkout_lanes::LaneConfig::new(
            checkout_storage::LaneId::parse("L2").unwrap(),
            url.clone(),
            checkout_lanes::FrameSource::Paths(Vec::new()),
        );
        config.tls = Some(pki.client(lanes_need_certificates));
        common::run_lane(config).await;
        let request = pb::ListShiftsRequest { lane_id: "L2".into(), ..Default::default() };
        let shifts = manager.list_shifts(request).await.unwrap().into_inner().shifts;
        assert_eq!(shifts.len(), 1, "{shifts:?}");
        assert_eq!(shifts[0].closed_how, "signed off");

        // Plaintext against the TLS port: no answer.
        let plain_url = url.replacen("https://", "http://", 1);
        let plain = async {
            let channel = Channel::from_shared(plain_url).unwrap().connect().await?;
            let mut client = StoreServiceClient::new(channel);
            client.get_totals(pb::GetTotalsRequest {}).await.map_err(|e| e.to_string())?;
            Ok::<_, Box<dyn std::error::Error>>(())
        };
        let plain = tokio::time::timeout(Duration::from_secs(15), plain).await.expect("refused promptly");
        assert!(plain.is_err(), "a plaintext client was served on the TLS port");

        if lanes_need_certificates {
            let without = async {
                let channel = channel_to(&url, &pki.client(false)).await?;
                let mut client =
                    LaneServiceClient::with_interceptor(channel, Bearer::new(&common::lane_token("L1")).unwrap());
                let request = pb::RegisterLaneRequest { lane_id: "L1".into(), description: String::new() };
                client.register_lane(request).await.map_err(|e| e.to_string())?;
                Ok::<_, Box<dyn std::error::Error>>(())
            };
            let without = tokio::time::timeout(Duration::from_secs(15), without).await.expect("refused promptly");
            assert!(without.is_err(), "a lane without a certificate was served");
        }
        coordinator.stop().await;
    }
}

/// Finding 5 (connections): sockets that never speak are closed after the handshake timeout, and
/// connections past the cap are closed at once; a real client gets through once they are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_handshake_timeout_and_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let mut security = common::test_security();
    security.limits.connections.max_connections_per_address = 4;
    security.limits.connections.handshake_timeout = Duration::from_secs(1);
    let coordinator = common::start_coordinator_with(data.path(), &sim, security).await;
    let address = coordinator.url.trim_start_matches("http://").to_owned();

    let mut idle = Vec::new();
    for n in 0..4 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        if n == 3 {
            // Half a preface, then nothing: a slow sender is no better than a silent one.
            stream.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
        }
        idle.push(stream);
    }
    // Over the cap: closed at once.
    let mut over = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_millis(500), over.read(&mut byte)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "a connection past the cap stayed open: {closed:?}");

    // Within the timeout and a little more, each idle socket is closed by the coordinator.
    let started = std::time::Instant::now();
    for mut stream in idle {
        let mut sink = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(read.is_ok(), "an idle connection was still open after 5 s");
    }
    assert!(started.elapsed() < Duration::from_secs(3), "closed after {:?}", started.elapsed());

    // The real client is served again.
    let mut manager = manager_client(&coordinator.url).await;
    manager.get_totals(pb::GetTotalsRequest {}).await.expect("a real client after the idle ones went");
    coordinator.stop().await;
}

/// Starts `checkout coordinator` on a free port with `data`; returns it, its URL, and its stderr file.
fn coordinator_process(data: &std::path::Path, log: &std::path::Path) -> (common::processes::Process, String) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(common::processes::BIN)
        .args(["coordinator", "--listen", "127.0.0.1:0", "--wallet-seed", "hostile", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start coordinator");
    let address = common::processes::listening_address(&mut child, "coordinator");
    (common::processes::Process(child), format!("http://{address}"))
}

/// Finding 3: a second coordinator on a live data folder is refused, changes nothing, and the first
/// goes on serving and loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_coordinator_on_a_live_folder_is_refused_and_the_first_loses_nothing() {
    use common::processes::{manager_token, terminate, wait_for_exit};

    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let (mut first, url) = coordinator_process(data.path(), &logs.path().join("first.log"));
    let manager = manager_token(data.path());
    let token = common::issue_lane_token(&url, &manager, "L1").await;
    let mut lane = common::lane_client_with(&url, &token).await;
    lane.register_lane(pb::RegisterLaneRequest { lane_id: "L1".into(), description: String::new() }).await.unwrap();
    let code = |wallet: u16| {
        SimulatedWallet::new(b"hostile", Provider::WeChatPay, wallet)
            .issue_code(UnixMillis::now())
            .expose_digits()
            .to_owned()
    };
    for n in 0..3u16 {
        let paid = lane.pay(pay("L1", &format!("L1-BEFORE{n}"), 1, &code(n), 0, 1)).await.unwrap().into_inner();
        assert_eq!(paid.outcome(), pb::PaymentOutcome::Paid);
    }

    let second = std::process::Command::new(common::processes::BIN)
        .args(["coordinator", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(logs.path().join("second.log")).unwrap())
        .spawn()
        .unwrap();
    let mut second = common::processes::Process(second);
    let status = wait_for_exit(&mut second.0, Duration::from_secs(20)).expect("the second coordinator exits");
    assert!(!status.success());
    let log = std::fs::read_to_string(logs.path().join("second.log")).unwrap();
    assert!(log.contains("in use by another process"), "{log}");

    // The first keeps serving, on files that are still the folder's.
    for n in 3..6u16 {
        let paid = lane.pay(pay("L1", &format!("L1-AFTER{n}"), 1, &code(n), 0, 1)).await.unwrap().into_inner();
        assert_eq!(paid.outcome(), pb::PaymentOutcome::Paid);
    }
    let fds = std::fs::read_dir(format!("/proc/{}/fd", first.0.id())).unwrap();
    for fd in fds.flatten() {
        let target = std::fs::read_link(fd.path()).map(|p| p.display().to_string()).unwrap_or_default();
        assert!(!target.ends_with("(deleted)"), "the first coordinator writes to a deleted file: {target}");
    }
    drop(lane);
    assert!(terminate(&mut first.0, Duration::from_secs(15)).success());

    // Everything acknowledged is there after a restart.
    let (mut again, url) = coordinator_process(data.path(), &logs.path().join("again.log"));
    let mut store = common::store_client_with(&url, &manager).await;
    let totals = store.get_totals(pb::GetTotalsRequest {}).await.unwrap().into_inner();
    assert_eq!((totals.sales, totals.payments_paid), (6, 6));
    assert!(terminate(&mut again.0, Duration::from_secs(15)).success());
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The bytes of every file below `dir`.
fn bytes_below(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() { pending.push(entry.path()) } else { total += meta.len() }
        }
    }
    total
}

/// Finding 4: 1,000 anonymous Pays with the largest basket, then 1,000 Pays of one lane with junk codes,
/// leave the data folder and the coordinator's memory within a small bound; the lane's unpaid sales are capped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_junk_pays_leaves_disk_and_memory_growth_bounded() {
    use common::processes::{manager_token, terminate};

    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let (mut coordinator, url) = coordinator_process(data.path(), &logs.path().join("coordinator.log"));
    let manager = manager_token(data.path());
    let token = common::issue_lane_token(&url, &manager, "L1").await;
    let mut lane = common::lane_client_with(&url, &token).await;
    lane.register_lane(pb::RegisterLaneRequest { lane_id: "L1".into(), description: String::new() }).await.unwrap();
    let real = SimulatedWallet::new(b"hostile", Provider::Alipay, 1).issue_code(UnixMillis::now());
    let paid = lane.pay(pay("L1", "L1-REAL", 1, real.expose_digits(), 0, 1)).await.unwrap().into_inner();
    assert_eq!(paid.outcome(), pb::PaymentOutcome::Paid);
    let pid = coordinator.0.id();
    let (disk_before, rss_before) = (bytes_below(data.path()), rss_kib(pid));

    // The largest basket a Pay takes: 500 lines.
    let catalog = sample_catalog();
    let lines: Vec<pb::SaleLine> =
        (0..500).map(|i| pb::SaleLine { gtin: catalog[i % catalog.len()].gtin.to_string(), quantity: 1 }).collect();
    let total: i64 = (0..500).map(|i| catalog[i % catalog.len()].price.minor_units).sum();
    let junk = |sale: String, attempt: u32, n: u64| pb::PayRequest {
        lane_id: "L1".into(),
        sale_id: sale,
        attempt,
        // Well-formed WeChat Pay codes no wallet issued.
        payment_code: format!("13{:016}", 7_000_000_000_000_000 + n),
        lines: lines.clone(),
        amount: money(total),
        ..Default::default()
    };
    let mut anonymous = LaneServiceClient::new(Channel::from_shared(url.clone()).unwrap().connect().await.unwrap());
    for n in 0..1_000u64 {
        let status = anonymous.pay(junk(format!("L1-ANON{n}"), 1, n)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    let (disk_anonymous, rss_anonymous) = (bytes_below(data.path()), rss_kib(pid));

    // With a lane's own token: every junk code is declined by the provider; past 32 unpaid sales the lane is refused.
    let (mut declined, mut capped) = (0, 0);
    for n in 0..1_000u64 {
        match lane.pay(junk(format!("L1-JUNK{}", n / 30), (n % 30) as u32 + 1, 10_000 + n)).await {
            Ok(answer) => {
                assert_eq!(answer.into_inner().outcome(), pb::PaymentOutcome::NewCodeNeeded);
                declined += 1;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                capped += 1;
            }
        }
    }
    let (disk_after, rss_after) = (bytes_below(data.path()), rss_kib(pid));
    let mib = |bytes: u64| bytes as f64 / 1_048_576.0;
    eprintln!(
        "junk flood: anonymous: disk {:+.2} MiB, memory {:+.1} MiB; with a lane token ({declined} declined, {capped} over the cap): disk {:+.2} MiB, memory {:+.1} MiB",
        mib(disk_anonymous.saturating_sub(disk_before)),
        (rss_anonymous as f64 - rss_before as f64) / 1024.0,
        mib(disk_after.saturating_sub(disk_anonymous)),
        (rss_after as f64 - rss_anonymous as f64) / 1024.0,
    );
    assert_eq!(declined, 32 * 30, "32 unpaid sales of 30 attempts each");
    assert_eq!(capped, 1_000 - 32 * 30);
    // Measured here: anonymous +0.00 MiB disk, +0.9 MiB memory; lane junk +5.8 MiB disk (sled's log of
    // the 960 intents, each with its 500 lines until it is declined), +2.5 MiB memory.
    assert!(disk_anonymous.saturating_sub(disk_before) < 1_048_576, "anonymous junk grew the ledger");
    assert!(rss_anonymous.saturating_sub(rss_before) < 16 * 1024, "anonymous junk grew the memory");
    assert!(disk_after.saturating_sub(disk_anonymous) < 16 * 1_048_576, "lane junk grew the ledger too much");
    assert!(rss_after.saturating_sub(rss_anonymous) < 32 * 1024, "lane junk grew the memory too much");

    // The ledger keeps no basket of a declined charge: a page of them is small.
    let mut store = common::store_client_with(&url, &manager).await;
    let request = pb::ListPaymentsRequest { lane_id: "L1".into(), ..Default::default() };
    let listed = store.list_payments(request).await.unwrap().into_inner().payments;
    assert!(listed.iter().any(|p| p.outcome() == pb::PaymentOutcome::NewCodeNeeded));
    drop((lane, anonymous, store));
    assert!(terminate(&mut coordinator.0, Duration::from_secs(15)).success());
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
        basket_sha256: basket_digest([(&product.gtin, 3)]),
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
    let data = tempfile::tempdir().unwrap();
    {
        let store = checkout_storage::Store::open(data.path()).unwrap();
        for n in 0..RECORDS {
            let (charge, sale) = paid_sale(n);
            store.put_charge(&charge).unwrap();
            store.insert_sale_if_absent(&sale).unwrap();
        }
        store.commit_blocking().unwrap();
    }
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let url = coordinator.url.clone();
    let totals = manager_client(&url).await.get_totals(pb::GetTotalsRequest {}).await.unwrap().into_inner();
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
                    client.get_totals(pb::GetTotalsRequest {}).await.unwrap();
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
    let data = tempfile::tempdir().unwrap();
    {
        let store = checkout_storage::Store::open(data.path()).unwrap();
        for n in 0..RECORDS {
            let (charge, sale) = paid_sale(n);
            store.put_charge(&charge).unwrap();
            store.insert_sale_if_absent(&sale).unwrap();
        }
        store.commit_blocking().unwrap();
    }
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

/// Finding 5 (file descriptors): with the open-file limit at 128, 200 silent sockets neither take the
/// coordinator down nor keep a real client out for longer than the handshake timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_at_a_low_file_limit_do_not_lock_real_clients_out() {
    use std::process::{Command, Stdio};

    use common::processes::{BIN, Process, listening_address, manager_token, terminate};

    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("SKIPPED: prlimit (util-linux) is not installed");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let config = data.path().with_extension("toml");
    std::fs::write(&config, "[limits]\nhandshake_timeout_secs = 1\n").unwrap();
    let mut child = Command::new("prlimit")
        .args(["--nofile=128:128", BIN, "coordinator", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start coordinator under prlimit");
    let address = listening_address(&mut child, "coordinator");
    let mut coordinator = Process(child);
    let url = format!("http://{address}");
    let token = manager_token(data.path());

    let silent: Vec<std::net::TcpStream> =
        (0..200).filter_map(|_| std::net::TcpStream::connect(&address).ok()).collect();
    let started = std::time::Instant::now();
    let served = loop {
        let attempt = async {
            let endpoint = Channel::from_shared(url.clone()).unwrap().connect_timeout(Duration::from_secs(1));
            let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
            let bearer = checkout_lanes::Bearer::new(&token).unwrap();
            let mut client = StoreServiceClient::with_interceptor(channel, bearer);
            client.get_totals(pb::GetTotalsRequest {}).await.map_err(|e| e.to_string())
        };
        match tokio::time::timeout(Duration::from_secs(2), attempt).await {
            Ok(Ok(_)) => break true,
            _ if started.elapsed() > Duration::from_secs(10) => break false,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    eprintln!("a real client was served {:?} after {} silent sockets opened", started.elapsed(), silent.len());
    assert!(served, "a real client was kept out for 10 s");
    assert!(coordinator.0.try_wait().unwrap().is_none(), "the coordinator died");
    drop(silent);
    assert!(terminate(&mut coordinator.0, Duration::from_secs(15)).success());
}
