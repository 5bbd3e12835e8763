//! Store members at the till: a member code scanned with a basket earns the sale's points once it is paid,
//! once however often the sale is delivered; a forged, misread or blocked member code is refused and the
//! customer still pays.

use crate::common;

use std::sync::Arc;

use checkout_coordinator::sim::SimulatedProvider;
use checkout_lanes::LaneEventKind;
use checkout_proto::v1 as pb;
use checkout_storage::{Provider, SimulatedWallet, Symbology, UnixMillis, sample_catalog};
use common::{WALLET_SEED, lane_client, manager_client, start_coordinator};

/// Runs a lane over `shots`; its summary and what the cashier was shown.
async fn run_lane(
    url: &str,
    lane: &str,
    shots: &[(String, Symbology)],
) -> (checkout_lanes::LaneSummary, Vec<LaneEventKind>) {
    let frames = tempfile::tempdir().unwrap();
    common::write_frames(frames.path(), &common::each_then_blanks(shots));
    common::run_lane_over(url, lane, frames.path(), 20.0).await
}

/// A basket of two products after `member` (a code's text) is shown, paid with a fresh wallet code.
fn basket_with_member(member: &str, wallet: u16) -> (Vec<(String, Symbology)>, i64) {
    let catalog = sample_catalog();
    let (a, b) = (&catalog[2], &catalog[5]);
    let code = SimulatedWallet::new(WALLET_SEED, Provider::WeChatPay, wallet).issue_code(UnixMillis::now());
    let shots = vec![
        (member.to_owned(), Symbology::QrCode),
        (a.gtin.as_str().to_owned(), Symbology::Ean13),
        (b.gtin.as_str().to_owned(), Symbology::Ean13),
        (code.expose_digits().to_owned(), Symbology::QrCode),
    ];
    (shots, a.price.minor_units + b.price.minor_units)
}

async fn add_member(manager: &mut common::ManagerClient, name: &str) -> pb::Member {
    let request = pb::AddMemberRequest { name: name.into(), ..Default::default() };
    manager.add_member(request).await.expect("AddMember").into_inner()
}

async fn member(manager: &mut common::ManagerClient, member_id: &str) -> pb::GetMemberResponse {
    let request = pb::GetMemberRequest { member_id: member_id.into(), ..Default::default() };
    manager.get_member(request).await.expect("GetMember").into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_scanned_with_a_basket_earns_its_points_once_the_sale_is_paid_and_only_once() {
    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let mut manager = manager_client(&coordinator.url).await;
    let wang = add_member(&mut manager, "Wang Fang").await;
    assert!(wang.member_code.starts_with(&format!("CKM1:{}:", wang.member_id)), "{}", wang.member_code);
    assert_eq!(wang.points, 0);

    let (shots, total) = basket_with_member(&wang.member_code, 41);
    let (summary, seen) = run_lane(&coordinator.url, "L7", &shots).await;
    assert_eq!(summary.sales, 1, "{seen:?}");
    assert!(
        seen.iter()
            .any(|e| matches!(e, LaneEventKind::MemberAttached { name, points: Some(0), .. } if name == "Wang Fang")),
        "the cashier sees the member's name and points: {seen:?}"
    );

    let earned = total / 100; // one point a whole yuan
    let got = member(&mut manager, &wang.member_id).await;
    assert_eq!(got.member.as_ref().unwrap().points, earned);
    assert_eq!(got.points_history.len(), 1, "{:?}", got.points_history);
    let movement = &got.points_history[0];
    assert_eq!((movement.points, movement.reason.as_str()), (earned, "sale"));

    // The lane delivers the sale again (a retry after an outage): the points stay as they were.
    let sale = common::all_sales(&mut manager, "L7").await.remove(0);
    let mut lane = lane_client(&coordinator.url, "L7").await;
    for _ in 0..2 {
        let again = pb::FinishSaleRequest {
            lane_id: "L7".into(),
            sale_id: sale.sale_id.clone(),
            // The store prices these lines itself: none carries a typed price.
            lines: sale
                .lines
                .iter()
                .map(|l| pb::SaleLine { gtin: l.gtin.clone(), quantity: l.quantity, unit_price: None })
                .collect(),
            total: sale.total.clone(),
            out_trade_no: sale.out_trade_no.clone(),
            ..Default::default()
        };
        let answer = lane.finish_sale(again).await.expect("FinishSale").into_inner();
        assert!(!answer.newly_recorded);
    }
    let got = member(&mut manager, &wang.member_id).await;
    assert_eq!(
        (got.member.unwrap().points, got.points_history.len()),
        (earned, 1),
        "a sale delivered twice earns once"
    );

    // The day's totals and the cashier's shift report count the points granted.
    let totals = |lane: &str| pb::GetTotalsRequest { lane_id: lane.into(), ..Default::default() };
    let all = manager.get_totals(totals("")).await.unwrap().into_inner();
    assert_eq!((all.points_granted, all.points_taken_back), (earned, 0));
    assert_eq!(manager.get_totals(totals("L7")).await.unwrap().into_inner().points_granted, earned);
    assert_eq!(manager.get_totals(totals("L9")).await.unwrap().into_inner().points_granted, 0, "another lane's");
    let shifts = pb::ListShiftsRequest { lane_id: "L7".into(), ..Default::default() };
    let shifts = manager.list_shifts(shifts).await.unwrap().into_inner().shifts;
    assert_eq!(shifts.iter().map(|s| s.points_granted).sum::<i64>(), earned, "{shifts:?}");

    // Refunds take the points back in proportion, once each, and all of them when all the money went back.
    let refund = |no: &str, fen: i64| pb::RefundRequest {
        out_trade_no: sale.out_trade_no.clone(),
        out_refund_no: no.into(),
        amount: Some(pb::Money { minor_units: fen, currency: "CNY".into() }),
        reason: "returned goods".into(),
        ..Default::default()
    };
    let half = total / 2;
    for _ in 0..2 {
        manager.refund(refund("RF-1", half)).await.expect("Refund");
    }
    let got = member(&mut manager, &wang.member_id).await;
    let back = earned * half / total;
    assert_eq!(got.member.unwrap().points, earned - back, "{:?}", got.points_history);
    assert_eq!(got.points_history.len(), 2, "a refund repeated takes back once");
    assert_eq!(got.points_history[1].reason, "refund RF-1");
    manager.refund(refund("RF-2", total - half)).await.expect("Refund");
    let got = member(&mut manager, &wang.member_id).await;
    assert_eq!(got.member.unwrap().points, 0, "everything refunded, every point back: {:?}", got.points_history);
    let all = manager.get_totals(totals("")).await.unwrap().into_inner();
    assert_eq!((all.points_granted, all.points_taken_back), (earned, earned));
    coordinator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_blocked_member_code_is_refused_and_the_customer_still_pays() {
    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let mut manager = manager_client(&coordinator.url).await;
    let li = add_member(&mut manager, "Li Lei").await;
    let han = add_member(&mut manager, "Han Meimei").await;

    // Li's code with Han's id in it: the signature no longer checks out.
    let forged = li.member_code.replace(&li.member_id, &han.member_id);
    let (shots, _) = basket_with_member(&forged, 42);
    let (summary, seen) = run_lane(&coordinator.url, "L8", &shots).await;
    assert_eq!(summary.sales, 1, "the customer pays without the member: {seen:?}");
    assert!(
        seen.iter()
            .any(|e| matches!(e, LaneEventKind::MemberRefused { reason } if reason.contains("does not check out"))),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|e| matches!(e, LaneEventKind::MemberAttached { .. })));

    // A blocked member's own code: the store refuses it.
    let blocked = pb::BlockMemberRequest {
        member_id: li.member_id.clone(),
        reason: "card reported stolen".into(),
        ..Default::default()
    };
    let li_now = manager.block_member(blocked).await.expect("BlockMember").into_inner();
    assert!(li_now.blocked);
    let (shots, _) = basket_with_member(&li.member_code, 43);
    let (summary, seen) = run_lane(&coordinator.url, "L8", &shots).await;
    assert_eq!(summary.sales, 1);
    assert!(
        seen.iter().any(|e| matches!(e, LaneEventKind::MemberRefused { reason } if reason.contains("blocked"))),
        "{seen:?}"
    );
    for member_id in [&li.member_id, &han.member_id] {
        let got = member(&mut manager, member_id).await;
        assert!(got.points_history.is_empty(), "{member_id} earned nothing: {:?}", got.points_history);
    }

    // Straight over gRPC, the lookup says why.
    let mut lane = lane_client(&coordinator.url, "L8").await;
    let lookup = |code: &str| pb::LookupMemberRequest { lane_id: "L8".into(), member_code: code.into() };
    let status = lane.lookup_member(lookup(&forged)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    let status = lane.lookup_member(lookup(&li.member_code)).await.unwrap_err();
    assert!(status.message().contains("blocked"), "{status:?}");
    let found = lane.lookup_member(lookup(&han.member_code)).await.expect("LookupMember").into_inner();
    assert_eq!((found.name.as_str(), found.points), ("Han Meimei", 0));

    // A client that lies: a huge code, another lane's id, a viewer enrolling members, no credentials.
    let status = lane.lookup_member(lookup(&"CKM1:".repeat(10_000))).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let as_other = pb::LookupMemberRequest { lane_id: "L9".into(), member_code: han.member_code.clone() };
    assert_eq!(lane.lookup_member(as_other).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    let mut viewer = common::store_client_with(&coordinator.url, common::VIEWER_TOKEN).await;
    let enrol = pb::AddMemberRequest { name: "Mallory".into(), ..Default::default() };
    assert_eq!(viewer.add_member(enrol).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    let nobody = checkout_lanes::coordinator_endpoint(&coordinator.url, None).unwrap().connect().await.unwrap();
    let mut nobody = pb::store_service_client::StoreServiceClient::new(nobody);
    let request = pb::GetMemberRequest { member_id: han.member_id.clone(), ..Default::default() };
    assert_eq!(nobody.get_member(request).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    coordinator.stop().await;
}
