//! A lane and an unreachable store: wallet payments are refused with a clear message, paid sales wait in the lane's outbox.

use crate::common;

use std::{sync::Arc, time::Duration};

use checkout_coordinator::sim::SimulatedProvider;
use checkout_lanes::{FrameSource, LaneConfig, LaneEventKind};
use checkout_proto::v1 as pb;
use checkout_storage::{
    Attempt, FinishedSale, LaneId, LaneStore, OutTradeNo, OutboxItem, Provider, SaleId, SimulatedWallet, StoreId,
    Symbology, UnixMillis, sample_catalog,
};
use common::{WALLET_SEED, frame_with, run_lane, run_lane_with_events, start_coordinator, write_png};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_left_in_the_outbox_is_delivered_once_when_the_lane_starts_again() {
    let data = tempfile::tempdir().unwrap();
    let lane_data = tempfile::tempdir().unwrap();
    let no_frames = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;

    // The lane was paid for a sale, then lost the store before it could report the sale.
    let product = &sample_catalog()[3];
    let mut lane = common::lane_client(&coordinator.url, "L5").await;
    lane.register_lane(pb::RegisterLaneRequest { lane_id: "L5".into(), description: String::new() }).await.unwrap();
    let code = SimulatedWallet::new(WALLET_SEED, Provider::Alipay, 77).issue_code(UnixMillis::now());
    let paid = lane
        .pay(pb::PayRequest {
            lane_id: "L5".into(),
            sale_id: "L5-OUTBOX1".into(),
            attempt: 1,
            payment_code: code.expose_digits().into(),
            lines: vec![pb::SaleLine { gtin: product.gtin.to_string(), quantity: 3, unit_price: None }],
            amount: Some(pb::Money { minor_units: product.price.minor_units * 3, currency: "CNY".into() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paid.outcome(), pb::PaymentOutcome::Paid);
    let sale_id = SaleId::parse("L5-OUTBOX1").unwrap();
    {
        let outbox = LaneStore::open(lane_data.path()).unwrap();
        outbox
            .push(&OutboxItem::Sale(FinishedSale {
                lane_id: LaneId::parse("L5").unwrap(),
                shift_id: None,
                out_trade_no: OutTradeNo::derive(&StoreId::parse("S001").unwrap(), &sale_id, Attempt::new(1).unwrap()),
                sale_id,
                lines: vec![(product.gtin.clone(), 3).into()],
                total: product.price.checked_mul(3).unwrap(),
                started_at: UnixMillis::now(),
                finished_at: UnixMillis::now(),
            }))
            .unwrap();
    }

    // The lane starts again on its folder: the outbox goes to the store first.
    for _ in 0..2 {
        let mut config = LaneConfig::new(
            LaneId::parse("L5").unwrap(),
            coordinator.url.clone(),
            FrameSource::Paths(vec![no_frames.path().to_owned()]),
        );
        config.data_dir = Some(lane_data.path().to_owned());
        let summary = run_lane(config).await;
        assert_eq!(summary.undelivered, 0);
    }
    assert!(LaneStore::open(lane_data.path()).unwrap().pending().unwrap().is_empty());
    let mut store = common::manager_client(&coordinator.url).await;
    let sales = store.list_sales(pb::ListSalesRequest::default()).await.unwrap().into_inner().sales;
    assert_eq!(sales.len(), 1, "recorded exactly once");
    assert_eq!((sales[0].sale_id.as_str(), sales[0].items), ("L5-OUTBOX1", 3));
    // Each run signed its cashier on and off: two shifts, both closed, in order.
    let shifts = store
        .list_shifts(pb::ListShiftsRequest { lane_id: "L5".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .shifts;
    assert_eq!(shifts.len(), 2, "{shifts:?}");
    for shift in &shifts {
        assert_eq!((shift.cashier_id.as_str(), shift.closed_how.as_str()), ("cashier-L5", "signed off"), "{shift:?}");
    }
    assert_ne!(shifts[0].shift_id, shifts[1].shift_id);
    coordinator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_store_is_unreachable_wallet_codes_are_refused_not_charged() {
    let data = tempfile::tempdir().unwrap();
    let frames = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(data.path(), &sim).await;

    let product = &sample_catalog()[5];
    let code = SimulatedWallet::new(WALLET_SEED, Provider::WeChatPay, 12).issue_code(UnixMillis::now());
    let mut shots = vec![Some((product.gtin.as_str(), Symbology::Ean13)), None, None];
    // Two seconds of an empty scanner at 20 frames a second, then the customer's code.
    shots.extend(std::iter::repeat_n(None, 40));
    shots.extend([Some((code.expose_digits(), Symbology::QrCode)), None, None]);
    for (i, shot) in shots.iter().enumerate() {
        write_png(&frames.path().join(format!("{i:03}.png")), &frame_with(*shot));
    }

    let mut config = LaneConfig::new(
        LaneId::parse("L6").unwrap(),
        coordinator.url.clone(),
        FrameSource::Paths(vec![frames.path().to_owned()]),
    );
    config.frames_per_second = Some(20.0);
    config.heartbeat_every = Duration::from_millis(200);
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let lane = tokio::spawn(run_lane_with_events(config, Some(events_tx)));

    // The store goes away while the customer's items are scanned.
    tokio::time::sleep(Duration::from_millis(400)).await;
    coordinator.stop().await;
    let summary = lane.await.unwrap();

    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event.kind);
    }
    assert!(seen.iter().any(|e| matches!(e, LaneEventKind::CoordinatorUnreachable { .. })), "{seen:?}");
    assert!(seen.contains(&LaneEventKind::WalletPaymentsUnavailable), "{seen:?}");
    assert_eq!(summary.sales, 0);
    assert!(sim.orders().is_empty(), "nothing was charged");
}
