//! Promotions at the till: "buy N get one free" and a price off, each its own line on the lane, charged as
//! the store prices them, counted in the day's discounts; an ended promotion no longer applies, and lanes
//! learn of changes with their heartbeats.

use crate::common;

use std::sync::Arc;

use checkout_coordinator::sim::SimulatedProvider;
use checkout_lanes::LaneEventKind;
use checkout_proto::v1 as pb;
use checkout_storage::{Provider, SimulatedWallet, Symbology, UnixMillis, sample_catalog};
use common::{WALLET_SEED, lane_client, manager_client, start_coordinator};

async fn run_lane(url: &str, lane: &str, shots: &[(String, Symbology)]) -> Vec<LaneEventKind> {
    let frames = tempfile::tempdir().unwrap();
    common::write_frames(frames.path(), &common::each_then_blanks(shots));
    common::run_lane_over(url, lane, frames.path(), 20.0).await.1
}

fn paid_total(seen: &[LaneEventKind]) -> i64 {
    seen.iter()
        .find_map(|e| match e {
            LaneEventKind::SalePaid { total, .. } => Some(total.minor_units),
            _ => None,
        })
        .unwrap_or_else(|| panic!("not paid: {seen:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_come_off_as_their_own_lines_are_charged_so_and_stop_when_ended() {
    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let mut manager = manager_client(&coordinator.url).await;
    let catalog = sample_catalog();
    let (tea, rice) = (&catalog[6], &catalog[8]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let until = Some(checkout_proto::Timestamp { seconds: now + 3_600, nanos: 0 });
    let three_for_two = pb::CreatePromotionRequest {
        gtin: tea.gtin.to_string(),
        name: "Tea: 3 for 2".into(),
        buy_n: 2,
        valid_until: until,
        ..Default::default()
    };
    let three_for_two = manager.create_promotion(three_for_two).await.expect("CreatePromotion").into_inner();
    let one_off = pb::CreatePromotionRequest {
        gtin: rice.gtin.to_string(),
        name: "Rice week".into(),
        price_off: Some(pb::Money { minor_units: 100, currency: "CNY".into() }),
        valid_until: until,
        ..Default::default()
    };
    manager.create_promotion(one_off).await.expect("CreatePromotion");

    let basket = |wallet: u16| {
        let code = SimulatedWallet::new(WALLET_SEED, Provider::WeChatPay, wallet).issue_code(UnixMillis::now());
        let mut shots: Vec<(String, Symbology)> =
            std::iter::repeat_n((tea.gtin.as_str().to_owned(), Symbology::Ean13), 3).collect();
        shots.push((rice.gtin.as_str().to_owned(), Symbology::Ean13));
        shots.push((code.expose_digits().to_owned(), Symbology::QrCode));
        shots
    };
    let full = 3 * tea.price.minor_units + rice.price.minor_units;
    let off = tea.price.minor_units + 100;
    let seen = run_lane(&coordinator.url, "L3", &basket(61)).await;
    let lines = seen.iter().rev().find_map(|e| match e {
        LaneEventKind::BasketDiscounts { lines, to_pay } => Some((lines.clone(), to_pay.minor_units)),
        _ => None,
    });
    let (lines, to_pay) = lines.unwrap_or_else(|| panic!("no discount lines: {seen:?}"));
    let names: Vec<&str> = lines.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["Tea: 3 for 2", "Rice week"], "each promotion its own line");
    assert_eq!(to_pay, full - off);
    assert_eq!(paid_total(&seen), full - off);
    assert_eq!(sim.balance(Provider::WeChatPay, 61), 100_000 - (full - off), "charged as the store priced it");
    let totals = manager.get_totals(pb::GetTotalsRequest::default()).await.unwrap().into_inner();
    assert_eq!(totals.discounts_given.map(|m| m.minor_units), Some(off));

    // Ended: the tea is full price again; the rice week goes on.
    let end = pb::EndPromotionRequest { promotion_id: three_for_two.promotion_id.clone() };
    let ended = manager.end_promotion(end).await.expect("EndPromotion").into_inner();
    assert!(ended.ended_at.is_some());
    let seen = run_lane(&coordinator.url, "L3", &basket(62)).await;
    assert_eq!(paid_total(&seen), full - 100);

    // A lane learns of changes with its heartbeat: the answer carries the promotions when its version is old.
    let mut lane = lane_client(&coordinator.url, "L3").await;
    let beat = |version: u64| pb::HeartbeatRequest {
        lane_id: "L3".into(),
        promotions_version: version,
        state: pb::LaneState::Idle.into(),
        ..Default::default()
    };
    let answer = lane.heartbeat(beat(0)).await.unwrap().into_inner();
    assert_eq!(answer.promotions.len(), 1, "the rice week, not the ended one: {:?}", answer.promotions);
    let again = lane.heartbeat(beat(answer.promotions_version)).await.unwrap().into_inner();
    assert!(again.promotions.is_empty(), "nothing new");
    coordinator.stop().await;
}
