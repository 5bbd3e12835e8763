//! One checkout lane: three actix actors (scanner, decoder, payment) that talk only by messages.
//!
//! [`run_lane`] registers the lane with the coordinator (through the
//! generated gRPC client, the only way a lane reaches it), starts the actors
//! on the current actix arbiter (the decoder on its own `SyncArbiter`
//! threads), and returns the lane's summary when the camera runs out of
//! frames or `shutdown` completes.

pub mod debounce;
pub mod decoder;
pub mod payment;
pub mod scanner;
pub mod synthetic;
pub mod vision;

use std::{collections::VecDeque, future::Future, path::PathBuf, time::Duration};

use actix::prelude::*;
use checkout_proto::v1::{self as pb, lane_service_client::LaneServiceClient};
use checkout_storage::{CashierId, Currency, LaneId, LaneStore, Money, Product, ProductCode};
use tokio::sync::{mpsc::UnboundedSender, oneshot};
use tonic::transport::{Channel, Endpoint};

pub use payment::{LaneEvent, LaneEventKind, LaneSummary};
pub use synthetic::SyntheticConfig;

use crate::{
    debounce::{Debouncer, PAYMENT_HOLD_OFF},
    decoder::Decoder,
    payment::{Payment, PaymentSetup},
    scanner::{Camera, Scanner, StopScanning},
    synthetic::SyntheticCamera,
};

/// Where a lane's frames come from.
#[derive(Debug, Clone)]
pub enum FrameSource {
    /// Image files (PNG, JPEG) in this order; a folder stands for its files by name.
    Paths(Vec<PathBuf>),
    /// Synthetic customers, rendered.
    Synthetic(SyntheticConfig),
}

#[derive(Debug, Clone)]
pub struct LaneConfig {
    pub lane_id: LaneId,
    /// The coordinator, for example `http://127.0.0.1:50051`.
    pub coordinator_url: String,
    pub source: FrameSource,
    /// Camera pace; `None` takes frames as fast as they decode (image files).
    pub frames_per_second: Option<f64>,
    pub heartbeat_every: Duration,
    pub payment_hold_off: Duration,
    /// How long to keep trying to reach the coordinator at start.
    pub connect_timeout: Duration,
    /// Threads decoding frames for this lane.
    pub decoder_threads: usize,
    /// The lane's own sled folder (its outbox); `None` keeps it in a temporary folder for this run.
    pub data_dir: Option<PathBuf>,
    /// The cashier signed on: the lane opens (or resumes) their shift when it starts and closes it when it stops.
    pub cashier: CashierId,
}

/// The cashier a lane signs on when none is named: "cashier-" and the lane id.
pub fn default_cashier(lane_id: &LaneId) -> CashierId {
    // A lane id has at most 6 letters or digits, so this is at most 14 characters: always valid.
    CashierId::parse(&format!("cashier-{lane_id}")).unwrap_or_else(|_| unreachable!("cashier id of lane {lane_id}"))
}

impl LaneConfig {
    pub fn new(lane_id: LaneId, coordinator_url: impl Into<String>, source: FrameSource) -> LaneConfig {
        LaneConfig {
            coordinator_url: coordinator_url.into(),
            source,
            frames_per_second: None,
            heartbeat_every: Duration::from_secs(2),
            payment_hold_off: PAYMENT_HOLD_OFF,
            connect_timeout: Duration::from_secs(30),
            decoder_threads: 1,
            cashier: default_cashier(&lane_id),
            lane_id,
            data_dir: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LaneError {
    #[error("coordinator address {url:?} is invalid: {source}")]
    BadUrl { url: String, source: tonic::transport::Error },
    #[error("cannot reach the coordinator at {url} within {waited:?}: {last_error}")]
    Unreachable { url: String, waited: Duration, last_error: String },
    #[error("the coordinator refused lane {lane_id}: {message}")]
    Refused { lane_id: LaneId, message: String },
    #[error("the coordinator's price file is unusable: {0}")]
    BadCatalog(String),
    #[error("cannot list frames in {path}: {source}")]
    Frames { path: PathBuf, source: std::io::Error },
    #[error("cannot make a temporary data folder: {0}")]
    TemporaryFolder(std::io::Error),
    #[error("cannot open the lane's data folder {path}: {source}")]
    Storage { path: PathBuf, source: checkout_storage::StorageError },
    #[error("the lane's actors stopped before finishing")]
    ActorsStopped,
}

/// Expands folders into their files, sorted by name.
pub fn list_frames(paths: &[PathBuf]) -> Result<VecDeque<PathBuf>, LaneError> {
    let mut frames = VecDeque::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| LaneError::Frames { path: path.clone(), source })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
                .collect();
            files.sort();
            frames.extend(files);
        } else {
            frames.push_back(path.clone());
        }
    }
    Ok(frames)
}

/// Registers with the coordinator, retrying until it answers or `config.connect_timeout` passes.
async fn register(config: &LaneConfig) -> Result<(LaneServiceClient<Channel>, Currency, Vec<Product>), LaneError> {
    let endpoint = Endpoint::from_shared(config.coordinator_url.clone())
        .map_err(|source| LaneError::BadUrl { url: config.coordinator_url.clone(), source })?
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true);
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = async {
            let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
            let mut client = LaneServiceClient::new(channel);
            let request = pb::RegisterLaneRequest {
                lane_id: config.lane_id.to_string(),
                description: format!("checkout lane {}", env!("CARGO_PKG_VERSION")),
            };
            match client.register_lane(request).await {
                Ok(response) => Ok((client, response.into_inner())),
                Err(status) if status.code() == tonic::Code::InvalidArgument => {
                    Err(format!("refused: {}", status.message()))
                }
                Err(status) => Err(status.to_string()),
            }
        };
        match attempt.await {
            Ok((client, response)) => {
                let currency = Currency::parse(&response.currency).map_err(|e| LaneError::BadCatalog(e.to_string()))?;
                let products = products_from_pb(response.products)?;
                tracing::info!(lane_id = %config.lane_id, store = %response.store_id, products = products.len(), "lane registered");
                return Ok((client, currency, products));
            }
            Err(message) if message.starts_with("refused: ") => {
                return Err(LaneError::Refused { lane_id: config.lane_id.clone(), message });
            }
            Err(message) if started.elapsed() >= config.connect_timeout => {
                return Err(LaneError::Unreachable {
                    url: config.coordinator_url.clone(),
                    waited: config.connect_timeout,
                    last_error: message,
                });
            }
            Err(message) => {
                tracing::info!(url = %config.coordinator_url, error = %message, "coordinator not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

fn products_from_pb(products: Vec<pb::Product>) -> Result<Vec<Product>, LaneError> {
    products
        .into_iter()
        .map(|p| {
            let gtin = ProductCode::parse(&p.gtin).map_err(|e| LaneError::BadCatalog(format!("{}: {e}", p.gtin)))?;
            let price = p.price.ok_or_else(|| LaneError::BadCatalog(format!("{gtin} has no price")))?;
            let currency = Currency::parse(&price.currency).map_err(|e| LaneError::BadCatalog(e.to_string()))?;
            Ok(Product { gtin, name: p.name, price: Money::new(price.minor_units, currency) })
        })
        .collect()
}

/// Runs one lane until its frames end or `shutdown` completes. Call it inside an actix `System`.
pub async fn run_lane(
    config: LaneConfig,
    events: Option<UnboundedSender<LaneEvent>>,
    shutdown: impl Future<Output = ()>,
) -> Result<LaneSummary, LaneError> {
    let (client, currency, products) = register(&config).await?;
    let camera = match &config.source {
        FrameSource::Paths(paths) => Camera::Files(list_frames(paths)?),
        FrameSource::Synthetic(synthetic) => {
            Camera::Synthetic(SyntheticCamera::new(synthetic.clone(), products.clone()))
        }
    };
    // Without a data folder the outbox lives in a temporary one for this run only.
    let temporary = match &config.data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(LaneError::TemporaryFolder)?),
    };
    let data_dir = config.data_dir.clone().or_else(|| temporary.as_ref().map(|t| t.path().to_owned()));
    let data_dir = data_dir.unwrap_or_default();
    let outbox = LaneStore::open(&data_dir).map_err(|source| LaneError::Storage { path: data_dir.clone(), source })?;
    let (done_tx, done_rx) = oneshot::channel();
    let setup = PaymentSetup {
        client,
        products,
        currency,
        heartbeat_every: config.heartbeat_every,
        events,
        outbox,
        cashier: config.cashier.clone(),
    };
    let payment = Payment::new(config.lane_id.clone(), setup, done_tx).start();
    let decoder = SyncArbiter::start(config.decoder_threads.max(1), Decoder::default);
    let frame_interval =
        config.frames_per_second.filter(|fps| *fps > 0.0).map(|fps| Duration::from_secs_f64(1.0 / fps));
    let scanner =
        Scanner::new(camera, decoder, payment, Debouncer::new(config.payment_hold_off), frame_interval).start();

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
