//! A day reconciled over gRPC against the providers' bills as they ship them (WeChat Pay's gzip CSV, Alipay's
//! zip of GBK files): what matches, every kind of difference found, kept and paged, and days refused.

use crate::common;

use std::time::Duration;

use checkout_coordinator::sim::SimulatedProvider;
use checkout_proto::v1 as pb;
use checkout_storage::{BusinessDay, Money, OutTradeNo, PaymentCode, Provider, Store, UnixMillis};
use common::{manager_client, start_coordinator};
use tonic::Code;

use crate::{
    hostile_clients::{code, money, pay},
    manager_day::TestStore,
};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Moves a charge, its refunds and its provider order a day back, as if all had happened yesterday.
fn age_a_day(store: &Store, sim: &SimulatedProvider, out_trade_no: &str) {
    let out_trade_no = OutTradeNo::parse(out_trade_no).unwrap();
    let back = |at: UnixMillis| UnixMillis(at.0 - DAY.as_millis() as i64);
    let mut charge = store.charge(&out_trade_no).unwrap().unwrap();
    charge.created_at = back(charge.created_at);
    charge.settled_at = charge.settled_at.map(back);
    store.put_charge(&charge).unwrap();
    for mut refund in store.refunds_of(&out_trade_no).unwrap() {
        refund.created_at = back(refund.created_at);
        refund.settled_at = refund.settled_at.map(back);
        store.put_refund(&refund).unwrap();
    }
    assert!(sim.age_order(&out_trade_no, DAY));
}

#[tokio::test]
async fn yesterday_is_reconciled_against_both_bills_and_every_difference_is_kept() {
    let TestStore { data, sim, coordinator, mut lane, mut manager } = TestStore::open().await;
    let mut paid = Vec::new();
    for (n, provider, wallet) in [
        (1, Provider::WeChatPay, 31),
        (2, Provider::WeChatPay, 32),
        (3, Provider::WeChatPay, 33),
        (4, Provider::Alipay, 34),
        (5, Provider::Alipay, 35),
    ] {
        let answer = lane.pay(pay("L1", &format!("L1-RC{n}"), 1, &code(provider, wallet), 0, 2)).await.unwrap();
        let answer = answer.into_inner();
        assert_eq!(answer.outcome(), pb::PaymentOutcome::Paid);
        paid.push(answer.out_trade_no);
    }
    // A refund and a reversal, each matched by a bill line.
    for (out_trade_no, number) in [(&paid[1], "RF-RC2"), (&paid[4], "RF-RC5")] {
        let refund = pb::RefundRequest {
            out_trade_no: out_trade_no.clone(),
            out_refund_no: number.into(),
            amount: money(100),
            reason: "returned".into(),
            ..Default::default()
        };
        manager.refund(refund).await.unwrap();
    }
    let reverse =
        pb::ReversePaymentRequest { out_trade_no: paid[2].clone(), reason: "mistake".into(), ..Default::default() };
    assert_eq!(manager.reverse_payment(reverse).await.unwrap().into_inner().status(), pb::PaymentStatus::Reversed);
    // Today's day is not over: its bill is not out yet.
    let today = BusinessDay::of(UnixMillis::now());
    let ask = |date: String, provider: pb::Provider| pb::ReconcileRequest {
        date,
        provider: provider.into(),
        request_id: String::new(),
    };
    let status = manager.reconcile(ask(today.to_string(), pb::Provider::WechatPay)).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    coordinator.stop().await;

    // Everything happened yesterday; then the provider booked a charge the store never recorded (the
    // customer's loss), and the store's ledger holds another charge at a fen more than was taken.
    {
        let store = Store::open(data.path()).unwrap();
        for out_trade_no in &paid {
            age_a_day(&store, &sim, out_trade_no);
        }
        let mut first = store.charge(&OutTradeNo::parse(&paid[0]).unwrap()).unwrap().unwrap();
        first.amount = Money::new(first.amount.minor_units + 1, first.amount.currency);
        store.put_charge(&first).unwrap();
        store.commit_blocking().unwrap();
    }
    let stray = OutTradeNo::parse("S001-L9-STRAY-1").unwrap();
    let stray_code = PaymentCode::parse(&code(Provider::WeChatPay, 36)).unwrap();
    sim.pay(Provider::WeChatPay, &stray, &stray_code, Money::new(700, checkout_storage::Currency::CNY), "L9", "stray");
    assert!(sim.age_order(&stray, DAY));

    let coordinator = start_coordinator(data.path(), &sim).await;
    let mut manager = manager_client(&coordinator.url).await;
    let yesterday = BusinessDay(today.0 - 1).to_string();
    let close = |accept_differences| pb::CloseDayRequest {
        date: yesterday.clone(),
        accept_differences,
        note: "end of day".into(),
        request_id: String::new(),
    };
    let status = manager.close_day(close(true)).await.unwrap_err();
    assert!(status.message().contains("reconcile"), "a day is closed once reconciled: {}", status.message());
    let wechat = manager.reconcile(ask(yesterday.clone(), pb::Provider::WechatPay)).await.unwrap().into_inner();
    assert!(!wechat.clean);
    assert_eq!(wechat.differences, 2, "{wechat:?}");
    assert_eq!(wechat.differences_by_kind.get("KIND_MISSING_IN_LEDGER"), Some(&1));
    assert_eq!(wechat.differences_by_kind.get("KIND_AMOUNT_MISMATCH"), Some(&1));
    let (ledger, bill) = (wechat.ledger.unwrap(), wechat.bill.unwrap());
    assert_eq!((ledger.refunds, bill.refunds, ledger.reversals, bill.reversals), (1, 1, 1, 1));
    assert_eq!(bill.charges, 4, "three of ours and the stray one");
    assert!(bill.fees.unwrap().minor_units > 0, "the provider's fee is in its bill");
    let alipay = manager.reconcile(ask(yesterday.clone(), pb::Provider::Alipay)).await.unwrap().into_inner();
    assert!(alipay.clean, "{alipay:?}");
    assert_eq!((alipay.matched, alipay.ledger.unwrap().refunds), (3, 1));

    // Kept: listed by day, differences a page at a time.
    let listed = manager
        .list_reconciliations(pb::ListReconciliationsRequest { date: yesterday.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.reconciliations.iter().map(|r| r.id).collect::<Vec<_>>(), [wechat.id, alipay.id]);
    let mut differences = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::GetReconciliationRequest { id: wechat.id, page_size: 1, page_token };
        let page = manager.get_reconciliation(request).await.unwrap().into_inner();
        differences.extend(page.differences);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut found: Vec<(pb::difference::Kind, String)> =
        differences.iter().map(|d| (d.kind(), d.out_trade_no.clone())).collect();
    found.sort();
    assert_eq!(
        found,
        [
            (pb::difference::Kind::MissingInLedger, stray.to_string()),
            (pb::difference::Kind::AmountMismatch, paid[0].clone())
        ]
    );
    let mismatch = differences.iter().find(|d| d.kind() == pb::difference::Kind::AmountMismatch).unwrap();
    assert_eq!(
        mismatch.ledger_amount.as_ref().unwrap().minor_units,
        mismatch.bill_amount.as_ref().unwrap().minor_units + 1
    );
    let status = manager
        .get_reconciliation(pb::GetReconciliationRequest { id: 999_999, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    // A viewer may read them but not run one.
    let mut viewer = common::store_client_with(&coordinator.url, common::VIEWER_TOKEN).await;
    assert_eq!(
        viewer.reconcile(ask(yesterday.clone(), pb::Provider::Alipay)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert!(viewer.list_reconciliations(pb::ListReconciliationsRequest::default()).await.is_ok());
    let status = manager.reconcile(ask("2026-02-30".into(), pb::Provider::Alipay)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // Close the day: refused while the WeChat Pay differences are open, then accepted as they are.
    let totals_before = manager.get_totals(pb::GetTotalsRequest::default()).await.unwrap().into_inner();
    let status = manager.close_day(close(false)).await.unwrap_err();
    assert!(status.message().contains("differences"), "{}", status.message());
    let closed = manager.close_day(close(true)).await.unwrap().into_inner();
    // (The test moved the payments to yesterday, not their sales: those finished today and stay live.)
    assert_eq!((closed.charges, closed.sales, closed.refunds), (5, 0, 2));
    assert!(closed.note.contains("reconciliation") && closed.note.contains("end of day"), "{}", closed.note);
    let days = manager.list_closed_days(pb::ListClosedDaysRequest::default()).await.unwrap().into_inner().days;
    assert_eq!(days.iter().map(|d| d.date.as_str()).collect::<Vec<_>>(), [yesterday.as_str()]);
    // Its records left the live ledger for the archive, where a manager still finds them; totals stand.
    let live = common::all_payments(&mut manager, "L1").await;
    assert!(live.is_empty(), "{live:?}");
    let archived = pb::ListPaymentsRequest { archive_month: closed.archive_month.clone(), ..Default::default() };
    assert_eq!(manager.list_payments(archived).await.unwrap().into_inner().payments.len(), 5);
    let get = pb::GetPaymentRequest { key: Some(pb::get_payment_request::Key::OutTradeNo(paid[1].clone())) };
    let payment = manager.get_payment(get).await.unwrap().into_inner();
    assert_eq!(payment.refunds.len(), 1);
    assert_eq!(manager.get_totals(pb::GetTotalsRequest::default()).await.unwrap().into_inner(), totals_before);
    // Its payments are final: no reversal, nor a second reconciliation; a refund is a new live record.
    let reverse =
        pb::ReversePaymentRequest { out_trade_no: paid[0].clone(), reason: "late".into(), ..Default::default() };
    let status = manager.reverse_payment(reverse).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("closed day"), "{}", status.message());
    assert_eq!(
        manager.reconcile(ask(yesterday.clone(), pb::Provider::Alipay)).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    let refund = pb::RefundRequest {
        out_trade_no: paid[3].clone(),
        out_refund_no: "RF-AFTER".into(),
        amount: money(50),
        reason: "returned".into(),
        ..Default::default()
    };
    let refunded = manager.refund(refund).await.unwrap().into_inner();
    assert_eq!(refunded.refund.unwrap().status(), pb::RefundStatus::Accepted);
    coordinator.stop().await;

    // After a restart (which reads only the open days) every total is as it was, the new refund with it.
    let coordinator = start_coordinator(data.path(), &sim).await;
    let mut manager = manager_client(&coordinator.url).await;
    let totals = manager.get_totals(pb::GetTotalsRequest::default()).await.unwrap().into_inner();
    assert_eq!(
        (totals.sales, totals.payments_paid, totals.refunds),
        (totals_before.sales, totals_before.payments_paid, totals_before.refunds + 1)
    );
    assert_eq!(totals.paid_total, totals_before.paid_total);
    coordinator.stop().await;
}

#[test]
fn checkout_reconcile_exports_a_days_differences_as_csv() {
    use common::processes::{BIN, coordinator_process, manager_token, terminate};
    use std::process::Command;
    let data = tempfile::tempdir().unwrap();
    let (mut coordinator, address) = coordinator_process(data.path(), &[]);
    let token_file = data.path().join("credentials/manager.token");
    assert!(!manager_token(data.path()).is_empty());
    let out = tempfile::tempdir().unwrap();
    let csv = out.path().join("day.csv");
    let yesterday = BusinessDay(BusinessDay::of(UnixMillis::now()).0 - 1).to_string();
    let run = Command::new(BIN)
        .args(["reconcile", "--date", &yesterday, "--coordinator", &format!("http://{address}"), "--csv"])
        .arg(&csv)
        .arg("--token-file")
        .arg(&token_file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("PROVIDER_WECHAT_PAY") && stderr.contains("PROVIDER_ALIPAY"), "{stderr}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("date,provider,reconciliation,number,kind,"), "{text}");
    // Today is refused, with the reason, and the command fails.
    let today = BusinessDay::of(UnixMillis::now()).to_string();
    let refused = Command::new(BIN)
        .args(["reconcile", "--date", &today, "--coordinator", &format!("http://{address}"), "--csv", "-"])
        .arg("--token-file")
        .arg(&token_file)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not over yet"));
    assert!(terminate(&mut coordinator.0, Duration::from_secs(15)).success());
}
