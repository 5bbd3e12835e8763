//! One checkout lane: three actix actors (scanner, decoder, till) that talk only by messages.
//!
//! [`run_lane`] registers the lane with the coordinator (through the
//! generated gRPC client, the only way a lane reaches it, with the lane's own
//! token: enrolled with the store's enrolment secret the first time, then
//! kept in the lane's data folder), starts the actors
//! on the current actix arbiter (the decoder on its own `SyncArbiter`
//! threads), and returns the lane's summary when the camera runs out of
//! frames or `shutdown` completes.
//!
//! `config` is what a lane is told, `register` how it joins the store over `connection`, `actors` the
//! scanner, decoder and till with the `messages` between them, `events` what the lane reports, `convert`
//! the one place generated (protobuf) types meet the lane's own, and `error` the lane's error type.

pub mod actors;
mod config;
mod connection;
mod convert;
pub mod debounce;
mod error;
mod events;
pub mod messages;
mod register;
pub mod screen;
pub mod synthetic;
pub mod vision;

use std::future::Future;

use checkout_storage::LaneStore;
use tokio::sync::{mpsc::UnboundedSender, oneshot};

pub use crate::{
    actors::till::OPEN_PRICE_CAP_DEFAULT,
    config::{
        ClientTls, FrameSource, HandHeldScanner, LaneConfig, LaneCredentials, ScannerTrigger, default_cashier,
        hand_held_scanner, list_frames,
    },
    connection::{Bearer, CoordinatorClient, coordinator_endpoint},
    error::LaneError,
    events::{LaneEvent, LaneEventKind, LaneSummary},
    synthetic::SyntheticConfig,
};
use crate::{
    actors::{
        scanner::Camera,
        till::{TillScreen, TillSetup},
    },
    messages::StopScanning,
    register::register,
    synthetic::SyntheticCamera,
};

/// Runs one lane until its frames end or `shutdown` completes. Call it inside an actix `System`.
pub async fn run_lane(
    config: LaneConfig,
    events: Option<UnboundedSender<LaneEvent>>,
    shutdown: impl Future<Output = ()>,
) -> Result<LaneSummary, LaneError> {
    // Without a data folder the outbox (and the lane's token) live in a temporary one for this run only.
    let temporary = match &config.data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(LaneError::TemporaryFolder)?),
    };
    let data_dir = config.data_dir.clone().or_else(|| temporary.as_ref().map(|t| t.path().to_owned()));
    let data_dir = data_dir.unwrap_or_default();
    let outbox = LaneStore::open(&data_dir).map_err(|source| LaneError::Storage { path: data_dir.clone(), source })?;
    let (client, currency, products, member_key, promotions) = register(&config, &outbox).await?;
    let camera = match &config.source {
        FrameSource::Paths(paths) => Camera::Files(list_frames(paths)?),
        FrameSource::Synthetic(synthetic) => {
            Camera::Synthetic(Box::new(SyntheticCamera::new(synthetic.clone(), products.clone(), member_key.clone())))
        }
        FrameSource::HandHeld(scanner) => Camera::HandHeld(Some(scanner.take().ok_or(LaneError::ScannerInUse)?)),
    };
    let (done_tx, done_rx) = oneshot::channel();
    let screen_state = config.screen.as_ref().map(|screen| {
        let (publish, state) =
            tokio::sync::watch::channel(screen::state::ScreenState::empty(&config.lane_id, currency));
        let till_screen =
            TillScreen { publish, confirm_above: screen.confirm_above, open_price_cap: screen.open_price_cap };
        (till_screen, state)
    });
    let (till_screen, screen_state) = screen_state.unzip();
    let setup = TillSetup {
        client,
        products,
        currency,
        heartbeat_every: config.heartbeat_every,
        events,
        outbox,
        cashier: config.cashier.clone(),
        member_key,
        promotions,
        screen: till_screen,
    };
    let (scanner, till) = actors::start(&config, camera, setup, done_tx);
    let screen_server = match (&config.screen, screen_state) {
        (Some(screen), Some(state)) => {
            let server = screen::serve(screen, till, state).map_err(LaneError::Screen)?;
            if let Some(customer) = screen.customer_url() {
                tracing::info!(lane_id = %config.lane_id, %customer, "lane screens served (the cashier's at /cashier, with the lane's screen key)");
            }
            Some(server)
        }
        _ => None,
    };
    let summary = wait_for_lane(&config, scanner, done_rx, shutdown).await;
    if let Some(server) = screen_server {
        server.stop(true).await;
    }
    summary
}

/// Waits until the lane's actors are done, stopping the scanner when `shutdown` completes first.
async fn wait_for_lane(
    config: &LaneConfig,
    scanner: actix::Addr<actors::scanner::Scanner>,
    done_rx: oneshot::Receiver<LaneSummary>,
    shutdown: impl Future<Output = ()>,
) -> Result<LaneSummary, LaneError> {
    tokio::pin!(shutdown);
    tokio::pin!(done_rx);
    tokio::select! {
        summary = &mut done_rx => return summary.map_err(|_| LaneError::ActorsStopped),
        () = &mut shutdown => {
            tracing::info!(lane_id = %config.lane_id, "lane stopping: finishing the sale in progress");
            scanner.do_send(StopScanning);
        }
    }
    done_rx.await.map_err(|_| LaneError::ActorsStopped)
}
