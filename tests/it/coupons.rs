//! One-time coupons at the till: taken off what the customer pays, held by exactly one of two lanes that scan
//! the same coupon at the same moment, used once, given back when the payment is reversed, and a forged one
//! refused.

use crate::common;

use std::sync::Arc;

use checkout_coordinator::sim::SimulatedProvider;
use checkout_lanes::LaneEventKind;
use checkout_proto::v1 as pb;
use checkout_storage::{Provider, SimulatedWallet, Symbology, UnixMillis, sample_catalog};
use common::{WALLET_SEED, lane_client, manager_client, start_coordinator};

fn cny(fen: i64) -> pb::Money {
    pb::Money { minor_units: fen, currency: "CNY".into() }
}

async fn issue(manager: &mut common::ManagerClient, off: Option<i64>, percent: u32, min: i64) -> pb::Coupon {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let request = pb::IssueCouponRequest {
        amount_off: off.map(cny),
        percent_off: percent,
        min_basket: Some(cny(min)),
        valid_until: Some(checkout_proto::Timestamp { seconds: now + 86_400, nanos: 0 }),
        note: "spring campaign".into(),
        ..Default::default()
    };
    manager.issue_coupon(request).await.expect("IssueCoupon").into_inner()
}

async fn coupon_state(manager: &mut common::ManagerClient, coupon_id: &str) -> pb::Coupon {
    let coupons = manager.list_coupons(pb::ListCouponsRequest::default()).await.unwrap().into_inner().coupons;
    coupons.into_iter().find(|c| c.coupon_id == coupon_id).expect("listed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coupon_scanned_on_two_lanes_at_the_same_moment_is_taken_by_exactly_one() {
    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let mut manager = manager_client(&coordinator.url).await;
    let (lane1, lane2) = (lane_client(&coordinator.url, "L1").await, lane_client(&coordinator.url, "L2").await);
    for lane in ["L1", "L2"] {
        let mut client = lane_client(&coordinator.url, lane).await;
        let request = pb::RegisterLaneRequest { lane_id: lane.into(), ..Default::default() };
        client.register_lane(request).await.expect("RegisterLane");
    }
    for round in 0..10 {
        let coupon = issue(&mut manager, Some(500), 0, 0).await;
        let hold = |lane: &str| pb::HoldCouponRequest {
            lane_id: lane.into(),
            sale_id: format!("{lane}-ROUND{round}"),
            coupon_code: coupon.coupon_code.clone(),
        };
        let (mut a, mut b) = (lane1.clone(), lane2.clone());
        let (first, second) = tokio::join!(a.hold_coupon(hold("L1")), b.hold_coupon(hold("L2")));
        let taken: Vec<bool> = [&first, &second].iter().map(|r| r.is_ok()).collect();
        assert_eq!(taken.iter().filter(|t| **t).count(), 1, "round {round}: {first:?} {second:?}");
        let refused = match (first, second) {
            (Err(refused), _) | (_, Err(refused)) => refused,
            _ => unreachable!("one of the two is refused"),
        };
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
        assert!(refused.message().contains("another sale"), "{refused:?}");
        assert_eq!(coupon_state(&mut manager, &coupon.coupon_id).await.state, "held");
    }

    // A lane that lies: one sale holds one coupon (the one before goes back), and a lane holds coupons for at
    // most as many unpaid sales as its cap allows.
    let (first, second) = (issue(&mut manager, Some(100), 0, 0).await, issue(&mut manager, Some(100), 0, 0).await);
    let mut lane = lane1.clone();
    for coupon in [&first, &second] {
        let hold = pb::HoldCouponRequest {
            lane_id: "L1".into(),
            sale_id: "L1-GREEDY".into(),
            coupon_code: coupon.coupon_code.clone(),
        };
        lane.hold_coupon(hold).await.expect("HoldCoupon");
    }
    assert_eq!(coupon_state(&mut manager, &first.coupon_id).await.state, "issued", "given back for the second");
    assert_eq!(coupon_state(&mut manager, &second.coupon_id).await.state, "held");
    let mut refused = None;
    for n in 0..40 {
        let coupon = issue(&mut manager, Some(100), 0, 0).await;
        let hold = pb::HoldCouponRequest {
            lane_id: "L1".into(),
            sale_id: format!("L1-MANY{n}"),
            coupon_code: coupon.coupon_code.clone(),
        };
        if let Err(status) = lane.hold_coupon(hold).await {
            refused = Some((n, status));
            break;
        }
    }
    // Another lane's sale is not this lane's to hold a coupon for.
    let coupon = issue(&mut manager, Some(100), 0, 0).await;
    let theirs =
        pb::HoldCouponRequest { lane_id: "L1".into(), sale_id: "L2-THEIRS".into(), coupon_code: coupon.coupon_code };
    assert!(lane.hold_coupon(theirs).await.is_err());
    assert_eq!(coupon_state(&mut manager, &coupon.coupon_id).await.state, "issued");
    let (n, status) = refused.expect("a cap on the coupons one lane holds");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(n <= 32, "refused after {n} sales");
    coordinator.stop().await;
}

async fn run_lane(url: &str, lane: &str, shots: &[(String, Symbology)]) -> Vec<LaneEventKind> {
    let frames = tempfile::tempdir().unwrap();
    common::write_frames(frames.path(), &common::each_then_blanks(shots));
    common::run_lane_over(url, lane, frames.path(), 20.0).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coupon_comes_off_what_the_customer_pays_is_used_once_and_comes_back_when_the_payment_is_reversed() {
    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let mut manager = manager_client(&coordinator.url).await;
    let catalog = sample_catalog();
    let (a, b) = (&catalog[1], &catalog[3]);
    let basket = a.price.minor_units + b.price.minor_units;
    let coupon = issue(&mut manager, None, 20, 100).await;
    let off = basket * 20 / 100;

    let shots = |coupon: &str, wallet: u16| {
        let code = SimulatedWallet::new(WALLET_SEED, Provider::Alipay, wallet).issue_code(UnixMillis::now());
        vec![
            (a.gtin.as_str().to_owned(), Symbology::Ean13),
            (b.gtin.as_str().to_owned(), Symbology::Ean13),
            (coupon.to_owned(), Symbology::QrCode),
            (code.expose_digits().to_owned(), Symbology::QrCode),
        ]
    };
    let seen = run_lane(&coordinator.url, "L5", &shots(&coupon.coupon_code, 51)).await;
    let applied = seen.iter().find_map(|e| match e {
        LaneEventKind::CouponApplied { discount, to_pay, .. } => Some((discount.minor_units, to_pay.minor_units)),
        _ => None,
    });
    assert_eq!(applied, Some((off, basket - off)), "the discount is its own line: {seen:?}");
    let paid = seen.iter().find_map(|e| match e {
        LaneEventKind::SalePaid { total, out_trade_no, .. } => Some((total.minor_units, out_trade_no.clone())),
        _ => None,
    });
    let (total, out_trade_no) = paid.unwrap_or_else(|| panic!("not paid: {seen:?}"));
    assert_eq!(total, basket - off);
    assert_eq!(sim.balance(Provider::Alipay, 51), 100_000 - (basket - off), "the customer paid the discounted total");
    let used = coupon_state(&mut manager, &coupon.coupon_id).await;
    assert_eq!((used.state.as_str(), used.out_trade_no.as_str()), ("redeemed", out_trade_no.as_str()));
    let totals = manager.get_totals(pb::GetTotalsRequest::default()).await.unwrap().into_inner();
    assert_eq!(totals.discounts_given.map(|m| m.minor_units), Some(off), "the day's totals count the discount");
    let shifts = pb::ListShiftsRequest { lane_id: "L5".into(), ..Default::default() };
    let shifts = manager.list_shifts(shifts).await.unwrap().into_inner().shifts;
    assert_eq!(shifts.iter().filter_map(|s| s.discounts_given.as_ref()).map(|m| m.minor_units).sum::<i64>(), off);

    // Used once: shown again at another lane, it is refused and the customer pays in full.
    let seen = run_lane(&coordinator.url, "L6", &shots(&coupon.coupon_code, 52)).await;
    assert!(
        seen.iter().any(|e| matches!(e, LaneEventKind::CouponRefused { reason } if reason.contains("used already"))),
        "{seen:?}"
    );
    assert_eq!(sim.balance(Provider::Alipay, 52), 100_000 - basket);

    // A forged coupon (another id under the same signature) is refused on the spot.
    let forged = coupon.coupon_code.replace(&coupon.coupon_id, "C00000099");
    let seen = run_lane(&coordinator.url, "L6", &shots(&forged, 53)).await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, LaneEventKind::CouponRefused { reason } if reason.contains("does not check out"))),
        "{seen:?}"
    );

    // A coupon whose minimum the basket does not reach takes nothing off and is let go when the sale is paid.
    let big = issue(&mut manager, Some(500), 0, 1_000_000).await;
    let seen = run_lane(&coordinator.url, "L6", &shots(&big.coupon_code, 54)).await;
    assert!(
        seen.iter().any(|e| matches!(e, LaneEventKind::CouponApplied { discount, .. } if discount.minor_units == 0))
    );
    assert_eq!(sim.balance(Provider::Alipay, 54), 100_000 - basket);
    assert_eq!(coupon_state(&mut manager, &big.coupon_id).await.state, "issued", "free for a bigger basket");

    // The first sale's payment reversed by a manager: the coupon can be used again.
    let reverse = pb::ReversePaymentRequest { out_trade_no, reason: "wrong basket".into(), ..Default::default() };
    manager.reverse_payment(reverse).await.expect("ReversePayment");
    assert_eq!(coupon_state(&mut manager, &coupon.coupon_id).await.state, "issued");
    assert_eq!(sim.balance(Provider::Alipay, 51), 100_000, "the customer has their money back");
    coordinator.stop().await;
}
