//! Shared helpers of the end-to-end tests: a real coordinator on 127.0.0.1:0, lanes on their own actix systems, rendered frames.
#![allow(dead_code)]

pub mod processes;

use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};

use checkout_coordinator::{CoordinatorConfig, EngineTiming, PaymentProvider, RunError, simulated::SimulatedProvider};
use checkout_lanes::{
    LaneConfig, LaneSummary,
    vision::{LumaFrame, encode_png, paste, render_code},
};
use checkout_storage::{Currency, Provider, StoreId, Symbology};
use tokio::{sync::oneshot, task::JoinHandle};

pub const WALLET_SEED: &[u8] = b"test wallets";

pub struct RunningCoordinator {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), RunError>>,
}

impl RunningCoordinator {
    /// Asks for shutdown and waits until the coordinator has flushed and stopped.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.handle)
            .await
            .expect("coordinator stops within 30 s")
            .expect("coordinator task")
            .expect("coordinator run");
    }
}

/// The engine's patience shrunk from seconds to milliseconds, so tests of unknown outcomes run quickly.
pub fn fast_timing() -> EngineTiming {
    EngineTiming {
        query_deadline: Duration::from_millis(1_500),
        query_every: Duration::from_millis(50),
        query_every_max: Duration::from_millis(200),
        reverse_every: Duration::from_millis(50),
        reverse_attempts: 5,
        resolve_every: Duration::from_millis(200),
    }
}

pub fn providers(sim: &Arc<SimulatedProvider>) -> HashMap<Provider, Arc<dyn PaymentProvider>> {
    Provider::ALL.into_iter().map(|p| (p, sim.clone() as Arc<dyn PaymentProvider>)).collect()
}

pub async fn start_coordinator(data: &Path, sim: &Arc<SimulatedProvider>) -> RunningCoordinator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let config = CoordinatorConfig {
        store_id: StoreId::parse("S001").unwrap(),
        currency: Currency::CNY,
        data_dir: data.to_owned(),
        providers: providers(sim),
        shutdown_grace: Duration::from_secs(10),
        timing: fast_timing(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(checkout_coordinator::run(listener, config, async {
        let _ = stopped.await;
    }));
    RunningCoordinator { url, stop: Some(stop), handle }
}

/// Runs a lane to the end of its frames on its own thread and actix system.
pub async fn run_lane(config: LaneConfig) -> LaneSummary {
    run_lane_with_events(config, None).await
}

/// Runs a lane to the end of its frames, sending what it shows the cashier to `events`.
pub async fn run_lane_with_events(
    config: LaneConfig,
    events: Option<tokio::sync::mpsc::UnboundedSender<checkout_lanes::LaneEvent>>,
) -> LaneSummary {
    tokio::task::spawn_blocking(move || {
        let system = actix_rt::System::new();
        system.block_on(checkout_lanes::run_lane(config, events, std::future::pending()))
    })
    .await
    .expect("lane thread")
    .expect("lane run")
}

/// A 640x480 grey frame showing `text` as `symbology`, or nothing.
pub fn frame_with(code: Option<(&str, Symbology)>) -> LumaFrame {
    let mut frame = LumaFrame::new(640, 480, 190);
    if let Some((text, symbology)) = code {
        let module = if symbology == Symbology::QrCode { 5 } else { 3 };
        let image = render_code(text, symbology, module, 120).expect("render");
        paste(&mut frame, &image, 60, 90);
    }
    frame
}

pub fn write_png(path: &Path, frame: &LumaFrame) {
    std::fs::write(path, encode_png(frame).expect("png")).expect("write frame");
}
