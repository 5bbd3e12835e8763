//! A manager's corrections and look-ups over gRPC: a sale and a payment found by either of their keys, a
//! payment reversed inside its provider's window and refused outside it, repeated requests answered once
//! (AIP-155), and errors a script can branch on (AIP-193 `ErrorInfo`).

use crate::common;

use std::sync::Arc;

use checkout_coordinator::sim::SimulatedProvider;
use checkout_proto::{google_rpc, v1 as pb};
use checkout_storage::{OutTradeNo, Provider, Store, UnixMillis};
use common::{WALLET_SEED, manager_client, start_coordinator};
use prost::Message;
use tonic::Code;

use crate::hostile_clients::{code, money, pay, register};

/// A store for one test: a coordinator on a fresh ledger with the in-process provider, the lane `L1`
/// registered, and a manager's client.
pub(crate) struct TestStore {
    pub(crate) data: tempfile::TempDir,
    pub(crate) sim: Arc<SimulatedProvider>,
    pub(crate) coordinator: common::RunningCoordinator,
    pub(crate) lane: checkout_lanes::CoordinatorClient,
    pub(crate) manager: common::ManagerClient,
}

impl TestStore {
    pub(crate) async fn open() -> TestStore {
        let data = tempfile::tempdir().unwrap();
        let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
        let coordinator = start_coordinator(data.path(), &sim).await;
        let lane = register("L1", &coordinator.url).await;
        let manager = manager_client(&coordinator.url).await;
        TestStore { data, sim, coordinator, lane, manager }
    }
}

/// The `ErrorInfo` reason of a status, and the field a `BadRequest` names, if any.
fn reason_of(status: &tonic::Status) -> (String, Option<String>) {
    let rich = google_rpc::Status::decode(status.details()).expect("grpc-status-details-bin holds a google.rpc.Status");
    assert_eq!(rich.code, status.code() as i32);
    let mut reason = None;
    let mut field = None;
    for detail in rich.details {
        match detail.type_url.as_str() {
            "type.googleapis.com/google.rpc.ErrorInfo" => {
                let info = google_rpc::ErrorInfo::decode(detail.value.as_slice()).unwrap();
                assert_eq!(info.domain, "checkout");
                reason = Some(info.reason);
            }
            "type.googleapis.com/google.rpc.BadRequest" => {
                let bad = google_rpc::BadRequest::decode(detail.value.as_slice()).unwrap();
                field = bad.field_violations.first().map(|v| v.field.clone());
            }
            other => panic!("unexpected detail {other}"),
        }
    }
    (reason.expect("every error carries an ErrorInfo"), field)
}

#[tokio::test]
async fn a_manager_looks_up_reverses_and_repeats_safely() {
    let TestStore { data, sim, coordinator, mut lane, mut manager } = TestStore::open().await;

    // Two paid sales: one to reverse, one to refund.
    let wallet_balance = sim.balance(Provider::WeChatPay, 3);
    let first = lane.pay(pay("L1", "L1-R1", 1, &code(Provider::WeChatPay, 3), 0, 2)).await.unwrap().into_inner();
    let second = lane.pay(pay("L1", "L1-R2", 1, &code(Provider::Alipay, 4), 1, 1)).await.unwrap().into_inner();
    assert_eq!((first.outcome(), second.outcome()), (pb::PaymentOutcome::Paid, pb::PaymentOutcome::Paid));

    // Look-ups by either key.
    let by_id = pb::GetSaleRequest { key: Some(pb::get_sale_request::Key::SaleId("L1-R1".into())) };
    let sale = manager.get_sale(by_id).await.unwrap().into_inner();
    let by_payment =
        pb::GetSaleRequest { key: Some(pb::get_sale_request::Key::OutTradeNo(first.out_trade_no.clone())) };
    assert_eq!(manager.get_sale(by_payment).await.unwrap().into_inner(), sale);
    assert_eq!(sale.out_trade_no, first.out_trade_no);
    let by_sale = pb::GetPaymentRequest { key: Some(pb::get_payment_request::Key::SaleId("L1-R1".into())) };
    let payment = manager.get_payment(by_sale).await.unwrap().into_inner();
    let payment_row = payment.payment.clone().unwrap();
    assert_eq!(payment_row.out_trade_no, first.out_trade_no);
    assert_eq!(payment_row.status(), pb::PaymentStatus::Paid);
    assert!(payment.events.iter().any(|e| e.what.starts_with("micropay")), "{:?}", payment.events);
    let missing = pb::GetSaleRequest { key: Some(pb::get_sale_request::Key::SaleId("L1-NOPE".into())) };
    let status = manager.get_sale(missing).await.unwrap_err();
    assert_eq!((status.code(), reason_of(&status).0.as_str()), (Code::NotFound, "NOT_FOUND"));
    let garbled = pb::GetPaymentRequest { key: Some(pb::get_payment_request::Key::OutTradeNo("x y".into())) };
    let status = manager.get_payment(garbled).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason_of(&status), ("INVALID_FIELD".to_owned(), Some("out_trade_no".to_owned())));

    // Reverse the first: the money goes back, the ledger says so, a repeat changes nothing more.
    let paid_before = manager.get_totals(pb::GetTotalsRequest::default()).await.unwrap().into_inner().paid_total;
    let reverse = pb::ReversePaymentRequest {
        out_trade_no: first.out_trade_no.clone(),
        reason: "customer changed their mind".into(),
        request_id: "rev-0001".into(),
    };
    let reversed = manager.reverse_payment(reverse.clone()).await.unwrap().into_inner();
    assert_eq!(reversed.status(), pb::PaymentStatus::Reversed);
    assert_eq!(sim.balance(Provider::WeChatPay, 3), wallet_balance, "the whole amount went back");
    let out_trade_no = OutTradeNo::parse(&first.out_trade_no).unwrap();
    assert!(sim.order(&out_trade_no).unwrap().reversed());
    let paid_after = manager.get_totals(pb::GetTotalsRequest::default()).await.unwrap().into_inner().paid_total;
    assert_eq!(
        paid_before.unwrap().minor_units - paid_after.unwrap().minor_units,
        first.amount.clone().unwrap().minor_units
    );
    assert_eq!(manager.reverse_payment(reverse.clone()).await.unwrap().into_inner(), reversed, "the first answer");
    let reused = pb::ReversePaymentRequest { out_trade_no: second.out_trade_no.clone(), ..reverse.clone() };
    let status = manager.reverse_payment(reused).await.unwrap_err();
    assert_eq!((status.code(), reason_of(&status).0.as_str()), (Code::FailedPrecondition, "REQUEST_ID_REUSED"));

    // A refund repeated with its request id refunds once; the payment then cannot be reversed whole.
    let refund = pb::RefundRequest {
        out_trade_no: second.out_trade_no.clone(),
        out_refund_no: "RF-DAY-1".into(),
        amount: money(50),
        reason: "dented tin".into(),
        request_id: "refund-0001".into(),
    };
    let refunded = manager.refund(refund.clone()).await.unwrap().into_inner();
    assert_eq!(manager.refund(refund.clone()).await.unwrap().into_inner(), refunded);
    let second_no = OutTradeNo::parse(&second.out_trade_no).unwrap();
    assert_eq!(sim.order(&second_no).unwrap().refunds.len(), 1);
    let reverse_second = pb::ReversePaymentRequest {
        out_trade_no: second.out_trade_no.clone(),
        reason: "wrong basket".into(),
        ..Default::default()
    };
    let status = manager.reverse_payment(reverse_second).await.unwrap_err();
    assert_eq!((status.code(), reason_of(&status).0.as_str()), (Code::FailedPrecondition, "PARTLY_REFUNDED"));

    // The answers are kept across a restart.
    coordinator.stop().await;
    let coordinator = start_coordinator(data.path(), &sim).await;
    let mut manager = manager_client(&coordinator.url).await;
    assert_eq!(manager.refund(refund).await.unwrap().into_inner(), refunded);
    assert_eq!(sim.order(&second_no).unwrap().refunds.len(), 1);
    coordinator.stop().await;
}

#[tokio::test]
async fn a_payment_past_its_providers_window_is_refused_a_reversal() {
    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let mut lane = register("L1", &coordinator.url).await;
    let wechat = lane.pay(pay("L1", "L1-OLD1", 1, &code(Provider::WeChatPay, 5), 0, 1)).await.unwrap().into_inner();
    let alipay = lane.pay(pay("L1", "L1-OLD2", 1, &code(Provider::Alipay, 6), 0, 1)).await.unwrap().into_inner();
    coordinator.stop().await;

    // Two days pass for both (the ledger's own clock of the charges moved back).
    {
        let store = Store::open(data.path()).unwrap();
        for out_trade_no in [&wechat.out_trade_no, &alipay.out_trade_no] {
            let mut charge = store.charge(&OutTradeNo::parse(out_trade_no).unwrap()).unwrap().unwrap();
            charge.created_at = UnixMillis(charge.created_at.0 - 2 * 24 * 3600 * 1000);
            store.put_charge(&charge).unwrap();
        }
        store.commit_blocking().unwrap();
    }
    let coordinator = start_coordinator(data.path(), &sim).await;
    let mut manager = manager_client(&coordinator.url).await;
    let reverse = |out_trade_no: &str| pb::ReversePaymentRequest {
        out_trade_no: out_trade_no.into(),
        reason: "late".into(),
        ..Default::default()
    };
    // Alipay cancels within 24 hours only: refund instead.
    let status = manager.reverse_payment(reverse(&alipay.out_trade_no)).await.unwrap_err();
    assert_eq!((status.code(), reason_of(&status).0.as_str()), (Code::FailedPrecondition, "REVERSE_WINDOW_CLOSED"));
    assert!(status.message().contains("refund it instead"), "{}", status.message());
    let get = pb::GetPaymentRequest { key: Some(pb::get_payment_request::Key::OutTradeNo(alipay.out_trade_no)) };
    let still = manager.get_payment(get).await.unwrap().into_inner().payment.unwrap();
    assert_eq!(still.status(), pb::PaymentStatus::Paid, "nothing changed");
    // WeChat Pay reverses for 7 days.
    let reversed = manager.reverse_payment(reverse(&wechat.out_trade_no)).await.unwrap().into_inner();
    assert_eq!(reversed.status(), pb::PaymentStatus::Reversed);
    // A viewer may look but not reverse.
    let mut viewer = common::store_client_with(&coordinator.url, common::VIEWER_TOKEN).await;
    let status = viewer.reverse_payment(reverse(&wechat.out_trade_no)).await.unwrap_err();
    assert_eq!((status.code(), reason_of(&status).0.as_str()), (Code::PermissionDenied, "PERMISSION_DENIED"));
    coordinator.stop().await;
}

fn beat(lane: &str, state: pb::LaneState, sale: &str, items: u32) -> pb::HeartbeatRequest {
    pb::HeartbeatRequest {
        lane_id: lane.into(),
        state: state.into(),
        sale_id: sale.into(),
        basket_items: items,
        basket_total: money(i64::from(items) * 100),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_manager_watches_the_lanes_and_closes_one_after_its_customer() {
    use tokio_stream::StreamExt;
    let TestStore { data: _data, sim: _sim, coordinator, lane: mut l1, mut manager } = TestStore::open().await;
    let url = coordinator.url.clone();
    let mut l2 = register("L2", &url).await;

    let mut watch = manager.watch_lanes(pb::WatchLanesRequest {}).await.unwrap().into_inner();
    let first = watch.next().await.unwrap().unwrap();
    assert!(first.snapshot);
    let ids: Vec<&str> = first.lanes.iter().map(|lane| lane.lane_id.as_str()).collect();
    assert_eq!(ids, ["L1", "L2"]);
    assert!(first.lanes.iter().all(|lane| lane.online && lane.state() == pb::LaneState::Idle));

    // A lane scanning shows as it happens; a heartbeat that changes nothing visible is not sent on.
    l1.heartbeat(beat("L1", pb::LaneState::Scanning, "L1-W1", 3)).await.unwrap();
    l1.heartbeat(beat("L1", pb::LaneState::Scanning, "L1-W1", 3)).await.unwrap();
    l2.heartbeat(beat("L2", pb::LaneState::Scanning, "L2-W1", 1)).await.unwrap();
    // Changes waiting together come in one message, each lane once.
    let mut seen: Vec<pb::Lane> = Vec::new();
    while !seen.iter().any(|lane| lane.lane_id == "L2") {
        let change = watch.next().await.unwrap().unwrap();
        assert!(!change.snapshot);
        seen.extend(change.lanes);
    }
    let ids: Vec<&str> = seen.iter().map(|lane| lane.lane_id.as_str()).collect();
    assert_eq!(ids, ["L1", "L2"], "the repeated L1 beat was no change");
    assert_eq!((seen[0].basket_items, seen[0].sale_id.as_str()), (3, "L1-W1"));

    // Closed while serving L1-W1: that customer pays, the next one is refused; the lane is told.
    let started_before = Some(checkout_proto::Timestamp { seconds: UnixMillis::now().0 / 1000 - 5, nanos: 0 });
    let close = pb::CloseLaneRequest { lane_id: "L1".into(), reason: "end of day".into(), request_id: String::new() };
    let closed = manager.close_lane(close).await.unwrap().into_inner();
    assert!(closed.closed_by_store && closed.closed_message.contains("end of day"), "{closed:?}");
    let change = watch.next().await.unwrap().unwrap();
    assert!(change.lanes[0].closed_by_store, "the watcher sees it closed");
    let answer = l1.heartbeat(beat("L1", pb::LaneState::Scanning, "L1-W1", 3)).await.unwrap().into_inner();
    assert!(answer.closed_by_store && answer.closed_message.contains("end of day"));
    let mut finishing = pay("L1", "L1-W1", 1, &code(Provider::WeChatPay, 7), 0, 1);
    finishing.started_at = started_before;
    assert_eq!(l1.pay(finishing).await.unwrap().into_inner().outcome(), pb::PaymentOutcome::Paid);
    let status = l1.pay(pay("L1", "L1-W2", 1, &code(Provider::WeChatPay, 8), 0, 1)).await.unwrap_err();
    assert_eq!((status.code(), reason_of(&status).0.as_str()), (Code::FailedPrecondition, "LANE_CLOSED"));
    // Another lane is not affected; a viewer may watch but not open a lane.
    assert_eq!(
        l2.pay(pay("L2", "L2-W1", 1, &code(Provider::Alipay, 9), 0, 1)).await.unwrap().into_inner().outcome(),
        pb::PaymentOutcome::Paid
    );
    let mut viewer = common::store_client_with(&url, common::VIEWER_TOKEN).await;
    let mut viewer_watch = viewer.watch_lanes(pb::WatchLanesRequest {}).await.unwrap().into_inner();
    assert!(viewer_watch.next().await.unwrap().unwrap().snapshot);
    let open = pb::OpenLaneRequest { lane_id: "L1".into(), request_id: String::new() };
    assert_eq!(viewer.open_lane(open.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    // Opened again (and it stays so across a restart): new customers pay.
    assert!(!manager.open_lane(open).await.unwrap().into_inner().closed_by_store);
    let status = l1.pay(pay("L1", "L1-W3", 1, &code(Provider::WeChatPay, 10), 0, 1)).await.unwrap();
    assert_eq!(status.into_inner().outcome(), pb::PaymentOutcome::Paid);
    coordinator.stop().await;
}

#[tokio::test]
async fn a_watcher_that_stops_reading_gets_a_snapshot_and_never_slows_the_lanes() {
    use tokio_stream::StreamExt;
    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let url = coordinator.url.clone();
    let mut l1 = register("L1", &url).await;
    // A watcher on a small HTTP/2 window: what it does not read soon stops the server's sending.
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .unwrap()
        .initial_stream_window_size(Some(2048))
        .initial_connection_window_size(Some(65_535))
        .connect()
        .await
        .unwrap();
    let bearer = checkout_lanes::Bearer::new(common::MANAGER_TOKEN).unwrap();
    let mut manager = pb::store_service_client::StoreServiceClient::with_interceptor(channel, bearer);
    let mut stalled = manager.watch_lanes(pb::WatchLanesRequest {}).await.unwrap().into_inner();
    assert!(stalled.next().await.unwrap().unwrap().snapshot);
    // Far more changes than a watcher's backlog, while it reads nothing: every heartbeat is answered.
    for items in 1..=2_000u32 {
        l1.heartbeat(beat("L1", pb::LaneState::Scanning, "L1-S1", items % 50 + 1)).await.unwrap();
    }
    l1.heartbeat(beat("L1", pb::LaneState::Idle, "", 0)).await.unwrap();
    // Reading again, it is told to start over and ends on the lane as it is.
    let mut snapshots = 0;
    let mut last = None;
    while let Ok(Some(message)) = tokio::time::timeout(std::time::Duration::from_millis(500), stalled.next()).await {
        let message = message.unwrap();
        snapshots += usize::from(message.snapshot);
        last = message.lanes.last().cloned();
    }
    assert!(snapshots >= 1, "a watcher that fell behind is sent a snapshot");
    let last = last.unwrap();
    assert_eq!((last.state(), last.basket_items), (pb::LaneState::Idle, 0));
    coordinator.stop().await;
}

fn at(millis: i64) -> Option<checkout_proto::Timestamp> {
    Some(checkout_proto::Timestamp { seconds: millis.div_euclid(1000), nanos: 0 })
}

#[tokio::test]
async fn totals_by_lane_provider_shift_and_time_window() {
    use checkout_storage::BusinessDay;
    let TestStore { data: _data, sim: _sim, coordinator, lane: mut l1, mut manager } = TestStore::open().await;
    let url = coordinator.url.clone();
    let mut l2 = register("L2", &url).await;
    let shift = pb::OpenShiftRequest {
        lane_id: "L1".into(),
        shift_id: "L1-SH1".into(),
        cashier_id: "ann".into(),
        ..Default::default()
    };
    l1.open_shift(shift).await.unwrap();
    let before = UnixMillis::now().0;
    for (n, wallet) in [(1, 11), (2, 12)] {
        let mut request = pay("L1", &format!("L1-T{n}"), 1, &code(Provider::WeChatPay, wallet), 0, n);
        request.shift_id = "L1-SH1".into();
        assert_eq!(l1.pay(request).await.unwrap().into_inner().outcome(), pb::PaymentOutcome::Paid);
    }
    let alipay = l2.pay(pay("L2", "L2-T1", 1, &code(Provider::Alipay, 13), 1, 1)).await.unwrap().into_inner();
    let refund = pb::RefundRequest {
        out_trade_no: alipay.out_trade_no.clone(),
        out_refund_no: "RF-T1".into(),
        amount: money(10),
        reason: "short".into(),
        ..Default::default()
    };
    manager.refund(refund).await.unwrap();
    let after = UnixMillis::now().0 + 1;
    let l1_total = |n: u32| sample_price(0) * i64::from(n);

    let totals = |request: pb::GetTotalsRequest| {
        let mut manager = manager.clone();
        async move { manager.get_totals(request).await.unwrap().into_inner() }
    };
    let all = totals(pb::GetTotalsRequest::default()).await;
    assert_eq!((all.sales, all.payments_paid, all.refunds, all.filtered), (3, 3, 1, false));

    let lane = totals(pb::GetTotalsRequest { lane_id: "L1".into(), ..Default::default() }).await;
    assert_eq!((lane.sales, lane.items, lane.filtered), (2, 3, true));
    assert_eq!(lane.paid_total.unwrap().minor_units, l1_total(3));
    let alipay_only =
        totals(pb::GetTotalsRequest { provider: pb::Provider::Alipay.into(), ..Default::default() }).await;
    assert_eq!((alipay_only.sales, alipay_only.payments_paid, alipay_only.refunds), (1, 1, 1));
    assert_eq!(alipay_only.refunded_total.unwrap().minor_units, 10);
    let shift = totals(pb::GetTotalsRequest { shift_id: "L1-SH1".into(), ..Default::default() }).await;
    assert_eq!((shift.sales, shift.items), (2, 3));

    // A window around the sales reads them record by record; one before them holds nothing.
    let window = totals(pb::GetTotalsRequest {
        start_time: at(before - 1000),
        end_time: at(after + 1000),
        ..Default::default()
    })
    .await;
    assert_eq!((window.sales, window.payments_paid, window.refunds), (3, 3, 1));
    let earlier = totals(pb::GetTotalsRequest { end_time: at(before - 1000), ..Default::default() }).await;
    assert_eq!((earlier.sales, earlier.payments_paid, earlier.refunds), (0, 0, 0));
    // Whole business days come from the summary, the hours at either end from the records: the same sums.
    let today = BusinessDay::of(UnixMillis(before));
    let day = totals(pb::GetTotalsRequest {
        start_time: at(today.start().0),
        end_time: at(today.end().0),
        ..Default::default()
    })
    .await;
    let around = pb::GetTotalsRequest {
        start_time: at(today.start().0 - 12 * 3_600_000),
        end_time: at(today.end().0 + 12 * 3_600_000),
        lane_id: "L1".into(),
        ..Default::default()
    };
    let around = totals(around).await;
    assert_eq!((day.sales, day.items, day.refunds), (all.sales, all.items, all.refunds));
    assert_eq!((around.sales, around.items), (2, 3));
    let status = manager
        .get_totals(pb::GetTotalsRequest { shift_id: "L1-SH1".into(), lane_id: "L1".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(reason_of(&status), ("INVALID_FIELD".to_owned(), Some("shift_id".to_owned())));
    coordinator.stop().await;
}

fn sample_price(product: usize) -> i64 {
    checkout_storage::sample_catalog()[product].price.minor_units
}

#[tokio::test]
async fn a_lanes_own_count_of_its_shift_is_settled_against_the_ledger() {
    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let url = coordinator.url.clone();
    let mut l1 = register("L1", &url).await;
    let open = |shift: &str| pb::OpenShiftRequest {
        lane_id: "L1".into(),
        shift_id: shift.into(),
        cashier_id: "bo".into(),
        ..Default::default()
    };
    l1.open_shift(open("L1-SA")).await.unwrap();
    let mut totals = Vec::new();
    for (n, wallet) in [(1u32, 21u16), (2, 22)] {
        let mut request = pay("L1", &format!("L1-SA{n}"), 1, &code(Provider::WeChatPay, wallet), 0, n);
        request.shift_id = "L1-SA".into();
        let paid = l1.pay(request).await.unwrap().into_inner();
        totals.push(paid.amount.unwrap());
    }
    let counted = |sale: &str, total: &pb::Money| pb::CountedSale { sale_id: sale.into(), total: Some(total.clone()) };
    // The lane agrees: the report says so.
    let close = pb::CloseShiftRequest {
        lane_id: "L1".into(),
        shift_id: "L1-SA".into(),
        counted: true,
        counted_sales: vec![counted("L1-SA1", &totals[0]), counted("L1-SA2", &totals[1])],
        ..Default::default()
    };
    let report = l1.close_shift(close).await.unwrap().into_inner();
    let settlement = report.settlement.unwrap();
    assert!(settlement.agrees && settlement.differences.is_empty(), "{settlement:?}");
    assert_eq!((settlement.lane_sales, settlement.ledger_sales), (2, 2));

    // Another shift: the lane lost one sale, counted one the store never had, and another at a wrong total.
    l1.open_shift(open("L1-SB")).await.unwrap();
    for (n, wallet) in [(1u32, 23u16), (2, 24), (3, 25)] {
        let mut request = pay("L1", &format!("L1-SB{n}"), 1, &code(Provider::Alipay, wallet), 0, n);
        request.shift_id = "L1-SB".into();
        l1.pay(request).await.unwrap();
    }
    let wrong = pb::Money { minor_units: 1, currency: "CNY".into() };
    let close = pb::CloseShiftRequest {
        lane_id: "L1".into(),
        shift_id: "L1-SB".into(),
        counted: true,
        counted_sales: vec![counted("L1-SB1", &totals[0]), counted("L1-SB2", &wrong), counted("L1-SB9", &wrong)],
        ..Default::default()
    };
    let settlement = l1.close_shift(close).await.unwrap().into_inner().settlement.unwrap();
    assert!(!settlement.agrees);
    let mut differences: Vec<(pb::settlement_difference::Kind, String)> =
        settlement.differences.iter().map(|d| (d.kind(), d.sale_id.clone())).collect();
    differences.sort();
    use pb::settlement_difference::Kind;
    assert_eq!(
        differences,
        [
            (Kind::OnlyOnLane, "L1-SB9".into()),
            (Kind::OnlyInLedger, "L1-SB3".into()),
            (Kind::TotalDiffers, "L1-SB2".into())
        ]
    );
    // A manager sees it with the shift; another lane's sale ids are refused.
    let mut manager = manager_client(&url).await;
    let shifts =
        manager.list_shifts(pb::ListShiftsRequest { lane_id: "L1".into(), ..Default::default() }).await.unwrap();
    let listed: Vec<bool> =
        shifts.into_inner().shifts.iter().map(|s| s.settlement.as_ref().is_some_and(|s| s.agrees)).collect();
    assert_eq!(listed, [true, false]);
    l1.open_shift(open("L1-SC")).await.unwrap();
    let foreign = pb::CloseShiftRequest {
        lane_id: "L1".into(),
        shift_id: "L1-SC".into(),
        counted: true,
        counted_sales: vec![counted("L2-X", &wrong)],
        ..Default::default()
    };
    assert_eq!(l1.close_shift(foreign).await.unwrap_err().code(), Code::PermissionDenied);
    coordinator.stop().await;
}

#[tokio::test]
async fn watchers_are_capped_and_a_closed_stream_frees_its_place() {
    use tokio_stream::StreamExt;
    let TestStore { data: _data, sim: _sim, coordinator, lane: _lane, manager: _ } = TestStore::open().await;
    // A client opening stream after stream (over a few connections, as the per-connection cap is lower).
    let mut streams = Vec::new();
    let mut refused = None;
    for n in 0..300 {
        if n % 50 == 0 {
            streams.push((manager_client(&coordinator.url).await, Vec::new()));
        }
        let (client, open) = streams.last_mut().unwrap();
        match client.watch_lanes(pb::WatchLanesRequest {}).await {
            Ok(stream) => open.push(stream.into_inner()),
            Err(status) => {
                refused = Some((n, status));
                break;
            }
        }
    }
    let (opened, status) = refused.expect("the watchers are capped");
    assert_eq!(opened, 256);
    assert_eq!((status.code(), reason_of(&status).0.as_str()), (Code::ResourceExhausted, "RESOURCE_EXHAUSTED"));
    // A watcher that goes away frees its place.
    let (client, open) = streams.last_mut().unwrap();
    open.clear();
    let mut again = None;
    for _ in 0..50 {
        match client.watch_lanes(pb::WatchLanesRequest {}).await {
            Ok(stream) => {
                again = Some(stream.into_inner());
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    assert!(again.expect("a place is free again").next().await.unwrap().unwrap().snapshot);
    drop(streams);
    coordinator.stop().await;
}
