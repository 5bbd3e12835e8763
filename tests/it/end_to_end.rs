//! A real coordinator and a lane reading PNG frames: the sale and its payment reach StoreService and survive a restart.

use crate::common;

use std::sync::Arc;

use checkout_coordinator::sim::SimulatedProvider;
use checkout_lanes::{FrameSource, LaneConfig};
use checkout_proto::v1 as pb;
use checkout_storage::{LaneId, Provider, SimulatedWallet, Symbology, UnixMillis, sample_catalog};
use common::{WALLET_SEED, frame_with, run_lane, start_coordinator, write_png};

async fn store_client(url: &str) -> common::ManagerClient {
    common::manager_client(url).await
}

/// What StoreService must say about the one sale of the test.
async fn check_store(url: &str, expected_total: i64, milk_gtin: &str, masked_code: &str, code_middle: &str) {
    let mut store = store_client(url).await;
    let sales = store.list_sales(pb::ListSalesRequest::default()).await.unwrap().into_inner().sales;
    assert_eq!(sales.len(), 1);
    let sale = &sales[0];
    assert_eq!(sale.lane_id, "L1");
    assert_eq!(sale.items, 3);
    assert_eq!(sale.total.as_ref().unwrap().minor_units, expected_total);
    assert_eq!(sale.total.as_ref().unwrap().currency, "CNY");
    let milk_line = sale.lines.iter().find(|l| l.gtin == milk_gtin).expect("milk line");
    assert_eq!(milk_line.quantity, 2);

    let payments = store.list_payments(pb::ListPaymentsRequest::default()).await.unwrap().into_inner().payments;
    assert_eq!(payments.len(), 1);
    let payment = &payments[0];
    assert_eq!(payment.outcome(), pb::PaymentOutcome::Paid);
    assert_eq!(payment.provider(), pb::Provider::WechatPay);
    assert_eq!(payment.out_trade_no, sale.out_trade_no);
    assert_eq!(payment.masked_code, masked_code);
    assert!(!payment.masked_code.contains(code_middle));

    let totals = store.get_totals(pb::GetTotalsRequest::default()).await.unwrap().into_inner();
    assert_eq!((totals.sales, totals.items, totals.payments_paid), (1, 3, 1));
    assert_eq!(totals.paid_total.as_ref().unwrap().minor_units, expected_total);

    let lanes = store.list_lanes(pb::ListLanesRequest::default()).await.unwrap().into_inner().lanes;
    assert_eq!(lanes.len(), 1);
    assert_eq!((lanes[0].lane_id.as_str(), lanes[0].sales), ("L1", 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_pays_from_png_frames_and_the_store_remembers_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let frames = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let catalog = sample_catalog();
    let (milk, rice) = (&catalog[0], &catalog[2]);
    let wallet = SimulatedWallet::new(WALLET_SEED, Provider::WeChatPay, 17);
    let code = wallet.issue_code(UnixMillis::now());

    let blank = frame_with(None);
    let shots: Vec<Option<(&str, Symbology)>> = vec![
        Some((milk.gtin.as_str(), Symbology::Ean13)),
        Some((milk.gtin.as_str(), Symbology::Ean13)), // held in view: still one milk
        None,
        None,
        Some((rice.gtin.as_str(), Symbology::Ean13)),
        None,
        None,
        Some((milk.gtin.as_str(), Symbology::Ean13)), // a second bottle
        None,
        None,
        Some(("https://example.com/coupon", Symbology::QrCode)),
        None,
        Some((code.expose_digits(), Symbology::QrCode)),
        Some((code.expose_digits(), Symbology::QrCode)), // held in view: charged once
        None,
    ];
    for (i, shot) in shots.iter().enumerate() {
        let frame = if shot.is_some() { frame_with(*shot) } else { blank.clone() };
        write_png(&frames.path().join(format!("{i:03}.png")), &frame);
    }
    // An unreadable frame in the middle of the sale: logged, skipped, the lane goes on.
    std::fs::write(frames.path().join("006b.png"), b"\x89PNG\r\n\x1a\nthis is not really a png").unwrap();

    let coordinator = start_coordinator(data.path(), &sim).await;
    let config = LaneConfig::new(
        LaneId::parse("L1").unwrap(),
        coordinator.url.clone(),
        FrameSource::Paths(vec![frames.path().to_owned()]),
    );
    let summary = run_lane(config).await;
    assert_eq!(summary.sales, 1, "{summary:?}");
    assert_eq!(summary.items, 3);
    assert_eq!(summary.frames, shots.len() as u64 + 1);
    assert_eq!(summary.frames_skipped, 1);
    assert_eq!(summary.unrecognised, 1);
    let expected_total = 2 * milk.price.minor_units + rice.price.minor_units;
    assert_eq!(summary.paid_total.minor_units, expected_total);

    // The provider's books: one order, the wallet charged exactly the basket.
    assert_eq!(sim.orders().len(), 1);
    assert_eq!(sim.balance(Provider::WeChatPay, 17), 100_000 - expected_total);

    let masked = code.masked();
    let middle = &code.expose_digits()[4..14];
    check_store(&coordinator.url, expected_total, milk.gtin.as_str(), masked.as_str(), middle).await;
    coordinator.stop().await;

    let restarted = start_coordinator(data.path(), &sim).await;
    check_store(&restarted.url, expected_total, milk.gtin.as_str(), masked.as_str(), middle).await;
    restarted.stop().await;
}
