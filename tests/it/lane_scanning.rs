//! A lane's camera over seconds of frames: a payment code held in view is charged once, a code shown
//! too early can be shown again, and a charged code never pays a second sale.

use crate::common;

use std::{path::Path, sync::Arc};

use checkout_coordinator::sim::SimulatedProvider;
use checkout_lanes::LaneEventKind;
use checkout_storage::{Provider, SimulatedWallet, Symbology, UnixMillis, sample_catalog};
use common::{WALLET_SEED, start_coordinator, write_frames};

async fn run_at_30_fps(url: &str, lane: &str, frames: &Path) -> (checkout_lanes::LaneSummary, Vec<LaneEventKind>) {
    common::run_lane_over(url, lane, frames, 30.0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_code_held_in_view_for_three_seconds_is_charged_once() {
    let data = tempfile::tempdir().unwrap();
    let frames = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let product = &sample_catalog()[4];
    let code = SimulatedWallet::new(WALLET_SEED, Provider::Alipay, 31).issue_code(UnixMillis::now());

    let mut shots = vec![Some((product.gtin.as_str(), Symbology::Ean13)), None, None];
    // Three seconds at 30 frames a second: the customer holds the phone under the camera.
    shots.extend(std::iter::repeat_n(Some((code.expose_digits(), Symbology::QrCode)), 90));
    shots.extend([None, None]);
    write_frames(frames.path(), &shots);

    let (summary, _) = run_at_30_fps(&coordinator.url, "L4", frames.path()).await;
    assert_eq!((summary.sales, summary.items), (1, 1), "{summary:?}");
    assert_eq!(sim.orders().len(), 1, "one charge for 90 frames of the same code");
    assert_eq!(sim.balance(Provider::Alipay, 31), 100_000 - product.price.minor_units);
    coordinator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_shown_before_the_items_can_pay_after_them_but_a_charged_code_never_pays_again() {
    let data = tempfile::tempdir().unwrap();
    let frames = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let (tea, soap) = (&sample_catalog()[6], &sample_catalog()[9]);
    let code = SimulatedWallet::new(WALLET_SEED, Provider::WeChatPay, 32).issue_code(UnixMillis::now());
    let shown = Some((code.expose_digits(), Symbology::QrCode));
    let blank_seconds = |seconds: usize| std::iter::repeat_n(None, 30 * seconds);

    let mut shots = Vec::new();
    // Too early: no items yet. The customer lowers the phone.
    shots.extend([shown, shown]);
    shots.extend(blank_seconds(3));
    // The items, then the same code again: it pays.
    shots.extend([Some((tea.gtin.as_str(), Symbology::Ean13)), None, None]);
    shots.extend([shown, shown]);
    shots.extend(blank_seconds(3));
    // The next customer's items, and the first customer's (charged) code shown again: never charged again.
    shots.extend([Some((soap.gtin.as_str(), Symbology::Ean13)), None, None]);
    shots.extend([shown, shown]);
    shots.extend(blank_seconds(1));
    write_frames(frames.path(), &shots);

    let (summary, seen) = run_at_30_fps(&coordinator.url, "L5", frames.path()).await;
    assert!(seen.contains(&LaneEventKind::ScanItemsFirst), "{seen:?}");
    assert_eq!((summary.sales, summary.items), (1, 1), "only the tea was paid: {summary:?}");
    assert_eq!(sim.orders().len(), 1, "the code was sent to the provider once");
    assert_eq!(sim.balance(Provider::WeChatPay, 32), 100_000 - tea.price.minor_units);
    coordinator.stop().await;
}
