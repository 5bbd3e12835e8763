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
    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let url = coordinator.url.clone();
    let mut lane = register("L1", &url).await;
    let mut manager = manager_client(&url).await;

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
