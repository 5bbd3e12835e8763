//! The coordinator's gRPC contract as a client sees it: reflection, health, clear errors for malformed requests, idempotent Pay.

use crate::common;

use std::sync::Arc;

use checkout_coordinator::sim::SimulatedProvider;
use checkout_proto::v1 as pb;
use checkout_storage::{Provider, SimulatedWallet, UnixMillis, sample_catalog};
use common::{WALLET_SEED, start_coordinator};
use tonic::{Code, transport::Channel};

async fn lane_client(url: &str) -> checkout_lanes::CoordinatorClient {
    let mut client = common::lane_client(url, "L7").await;
    client
        .register_lane(pb::RegisterLaneRequest { lane_id: "L7".into(), description: "contract test".into() })
        .await
        .expect("register");
    client
}

fn money(minor_units: i64) -> Option<pb::Money> {
    Some(pb::Money { minor_units, currency: "CNY".into() })
}

fn valid_pay(code: &str) -> pb::PayRequest {
    let product = &sample_catalog()[1];
    pb::PayRequest {
        lane_id: "L7".into(),
        sale_id: "L7-CONTRACT1".into(),
        attempt: 1,
        payment_code: code.into(),
        lines: vec![pb::SaleLine { gtin: product.gtin.to_string(), quantity: 2, unit_price: None }],
        amount: money(product.price.minor_units * 2),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_invalid_argument_naming_the_field() {
    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let mut client = lane_client(&coordinator.url).await;
    let code = SimulatedWallet::new(WALLET_SEED, Provider::Alipay, 5).issue_code(UnixMillis::now());
    let digits = code.expose_digits().to_owned();

    type Mangle = fn(&mut pb::PayRequest);
    let cases: Vec<(&str, Mangle)> = vec![
        ("lane_id", |r| r.lane_id = String::new()),
        ("sale_id", |r| r.sale_id = "has spaces".into()),
        ("attempt", |r| r.attempt = 0),
        ("payment_code", |r| r.payment_code = "12ab".into()),
        ("payment_code", |r| r.payment_code = "990000000000000000".into()),
        ("amount", |r| r.amount = None),
        ("amount.currency", |r| r.amount = Some(pb::Money { minor_units: 100, currency: "yuan".into() })),
        ("lines[0].gtin", |r| r.lines[0].gtin = "6901234000011".into()),
        ("lines[0].quantity", |r| r.lines[0].quantity = 0),
        ("lines", |r| r.lines.clear()),
    ];
    for (field, mangle) in cases {
        let mut request = valid_pay(&digits);
        mangle(&mut request);
        let status = client.pay(request).await.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(status.message().starts_with(field), "{field}: {}", status.message());
        // The full code never comes back in an error.
        assert!(!status.message().contains(&digits[4..14]), "{}", status.message());
    }
    assert!(sim.orders().is_empty(), "nothing was charged");

    // A total that is not the store's price is refused before anything is charged.
    let mut wrong_total = valid_pay(&digits);
    wrong_total.amount = money(1);
    let status = client.pay(wrong_total).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(sim.orders().is_empty());

    // A lane acting for another lane is refused; an unregistered lane is told to register.
    let mut stranger = valid_pay(&digits);
    stranger.lane_id = "L8".into();
    let status = client.pay(stranger.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    stranger.sale_id = "L8-CONTRACT1".into();
    let status = common::lane_client(&coordinator.url, "L8").await.pay(stranger).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("RegisterLane"));
    coordinator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeating_a_pay_request_returns_the_first_outcome_and_charges_once() {
    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let mut client = lane_client(&coordinator.url).await;
    let code = SimulatedWallet::new(WALLET_SEED, Provider::UnionPay, 9).issue_code(UnixMillis::now());
    let request = valid_pay(code.expose_digits());

    // The same request, twice at once and once more after: one charge.
    let (mut first, mut second) = (client.clone(), client.clone());
    let (a, b) = tokio::join!(first.pay(request.clone()), second.pay(request.clone()));
    let c = client.pay(request.clone()).await.unwrap().into_inner();
    let (a, b) = (a.unwrap().into_inner(), b.unwrap().into_inner());
    assert_eq!(a.outcome(), pb::PaymentOutcome::Paid, "{a:?}");
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(sim.orders().len(), 1);
    assert_eq!(sim.balance(Provider::UnionPay, 9), 100_000 - a.amount.unwrap().minor_units);
    assert_eq!(a.masked_code, code.masked().as_str());

    // A second attempt for a paid sale is refused, not charged.
    let fresh = SimulatedWallet::new(WALLET_SEED, Provider::UnionPay, 10).issue_code(UnixMillis::now());
    let mut second = valid_pay(fresh.expose_digits());
    second.attempt = 2;
    let status = client.pay(second).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(sim.orders().len(), 1);

    // The same code for another sale: a code is single-use, so the store declines it without asking
    // the provider, and the lane is told to ask for a fresh one.
    let mut reuse = valid_pay(code.expose_digits());
    reuse.sale_id = "L7-CONTRACT2".into();
    let answer = client.pay(reuse).await.unwrap().into_inner();
    assert_eq!(answer.outcome(), pb::PaymentOutcome::NewCodeNeeded);
    assert!(answer.message.contains("refresh"), "{}", answer.message);
    assert_eq!(sim.orders().len(), 1, "the provider was not asked");
    coordinator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_every_service_and_health_says_serving() {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    use tonic_reflection::pb::{v1, v1alpha};

    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let channel = Channel::from_shared(coordinator.url.clone()).unwrap().connect().await.unwrap();

    let mut v1_client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut answers = v1_client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let answer = answers.message().await.unwrap().expect("a reflection answer");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) = answer.message_response
    else {
        panic!("not a service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["checkout.v1.LaneService", "checkout.v1.StoreService", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }

    // A reflection client can fetch the schema of StoreService to call it without a .proto.
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::FileContainingSymbol(
            "checkout.v1.StoreService".into(),
        )),
    };
    let mut answers = v1_client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let answer = answers.message().await.unwrap().expect("a reflection answer");
    assert!(matches!(
        answer.message_response,
        Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()
    ));

    // Older clients (grpcurl before v1 support) speak v1alpha.
    let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut answers = alpha.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    assert!(answers.message().await.unwrap().is_some());

    // Lanes and each provider are reported serving once start-up recovery has run (it is quick on a new folder).
    let mut health = HealthClient::new(channel);
    for service in [
        "checkout.v1.LaneService",
        "checkout.v1.StoreService",
        "checkout.v1.Provider/WECHAT_PAY",
        "checkout.v1.Provider/ALIPAY",
        "checkout.v1.Provider/UNIONPAY",
    ] {
        let mut status = ServingStatus::Unknown;
        for _ in 0..50 {
            status = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status();
            if status == ServingStatus::Serving {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(status, ServingStatus::Serving, "{service}");
    }
    coordinator.stop().await;
}
