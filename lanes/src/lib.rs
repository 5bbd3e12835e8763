//! One checkout lane: three actix actors (scanner, decoder, payment) that talk only by messages.
//!
//! [`run_lane`] registers the lane with the coordinator (through the
//! generated gRPC client, the only way a lane reaches it, with the lane's own
//! token: enrolled with the store's enrolment secret the first time, then
//! kept in the lane's data folder), starts the actors
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
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

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

/// Sends a bearer token with every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    pub fn new(token: &str) -> Result<Bearer, LaneError> {
        format!("Bearer {}", token.trim()).parse().map(Bearer).map_err(|_| LaneError::BadToken)
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer(..)")
    }
}

/// The lane's client of the coordinator: the generated client, sending the lane's token.
pub type CoordinatorClient = LaneServiceClient<InterceptedService<Channel, Bearer>>;

/// How a lane proves who it is. A token kept in the lane's data folder comes first, then `token`
/// (which is then kept), then enrolment with `enrolment_secret` (the token it gets is kept).
#[derive(Clone, Default)]
pub struct LaneCredentials {
    /// A lane token a manager issued for this lane (`StoreService/IssueLaneToken`).
    pub token: Option<String>,
    /// The store's lane enrolment secret: a lane never enrolled gets its token with it.
    pub enrolment_secret: Option<String>,
}

impl std::fmt::Debug for LaneCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneCredentials")
            .field("token", &self.token.as_ref().map(|_| ".."))
            .field("enrolment_secret", &self.enrolment_secret.as_ref().map(|_| ".."))
            .finish()
    }
}

/// TLS towards the coordinator (`https://` URLs): the CA to trust and, when the store asks lanes
/// for certificates, this lane's certificate and key (PEM).
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    pub ca_pem: Option<String>,
    pub certificate_pem: Option<String>,
    pub key_pem: Option<String>,
}

/// An endpoint for the coordinator at `url`, with TLS for `https://` URLs.
pub fn coordinator_endpoint(url: &str, tls: Option<&ClientTls>) -> Result<Endpoint, LaneError> {
    let bad_url = |source| LaneError::BadUrl { url: url.to_owned(), source };
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(bad_url)?
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10));
    if url.starts_with("https://") {
        let mut config = ClientTlsConfig::new();
        let tls = tls.cloned().unwrap_or_default();
        match &tls.ca_pem {
            Some(ca) => config = config.ca_certificate(Certificate::from_pem(ca)),
            None => {
                return Err(LaneError::Tls(
                    "an https:// coordinator needs the CA that signed its certificate (--ca)".into(),
                ));
            }
        }
        match (&tls.certificate_pem, &tls.key_pem) {
            (Some(certificate), Some(key)) => config = config.identity(Identity::from_pem(certificate, key)),
            (None, None) => {}
            _ => return Err(LaneError::Tls("a lane certificate needs its key, and a key its certificate".into())),
        }
        endpoint = endpoint.tls_config(config).map_err(|e| LaneError::Tls(e.to_string()))?;
    }
    Ok(endpoint)
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
    /// How the lane proves who it is.
    pub credentials: LaneCredentials,
    /// For an `https://` coordinator.
    pub tls: Option<ClientTls>,
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
            credentials: LaneCredentials::default(),
            tls: None,
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
    #[error("a token must be printable ASCII")]
    BadToken,
    #[error("TLS towards the coordinator: {0}")]
    Tls(String),
    #[error(
        "lane {lane_id} has no credentials: give it the store's lane enrolment secret (--enrolment-secret FILE) or a lane token a manager issued (--token-file FILE)"
    )]
    NoCredentials { lane_id: LaneId },
    #[error("cannot keep the lane's token in its data folder: {0}")]
    KeepToken(checkout_storage::StorageError),
    #[error("cannot read the system's random source: {0}")]
    Random(std::io::Error),
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

/// Why one attempt to register failed: for good, or worth another try.
enum Refusal {
    /// The coordinator answered no: stop.
    Final(LaneError),
    /// Unreachable or not ready: try again.
    Retry(String),
}

/// The lane's token: the one kept in its folder, else the configured one (then kept), else one got
/// by enrolling with the enrolment secret (then kept).
async fn lane_token(config: &LaneConfig, outbox: &LaneStore, channel: &Channel) -> Result<String, Refusal> {
    let keep = |token: &str| outbox.set_lane_token(Some(token)).map_err(|e| Refusal::Final(LaneError::KeepToken(e)));
    if let Some(token) = &config.credentials.token
        && outbox.lane_token().ok().flatten().as_deref() != Some(token.as_str())
    {
        keep(token)?;
        return Ok(token.clone());
    }
    if let Ok(Some(token)) = outbox.lane_token() {
        return Ok(token);
    }
    let Some(secret) = &config.credentials.enrolment_secret else {
        return Err(Refusal::Final(LaneError::NoCredentials { lane_id: config.lane_id.clone() }));
    };
    // The lane makes its token and keeps it first: a crash before the answer enrols the same token again.
    let token = match outbox.enrolling_token() {
        Ok(Some(token)) => token,
        _ => {
            let token = new_lane_token().map_err(|e| Refusal::Final(LaneError::Random(e)))?;
            outbox.set_enrolling_token(Some(&token)).map_err(|e| Refusal::Final(LaneError::KeepToken(e)))?;
            token
        }
    };
    let bearer = Bearer::new(secret).map_err(Refusal::Final)?;
    let mut client = LaneServiceClient::with_interceptor(channel.clone(), bearer);
    let request = pb::EnrolLaneRequest { lane_id: config.lane_id.to_string(), token_sha256: sha256_hex(&token) };
    match client.enrol_lane(request).await {
        Ok(_) => {
            keep(&token)?;
            let _ = outbox.set_enrolling_token(None);
            tracing::info!(lane_id = %config.lane_id, "lane enrolled with the store; its token is kept in its data folder");
            Ok(token)
        }
        Err(status) => Err(refusal(&config.lane_id, status)),
    }
}

/// A new lane token: `ckl_` and 32 bytes of the system's random source in base64url, as the store makes them.
fn new_lane_token() -> std::io::Result<String> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(format!("ckl_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// The token's SHA-256 in hex: all of it the store keeps.
fn sha256_hex(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A refusal is final unless the coordinator may answer otherwise later (down, starting, overloaded).
fn refusal(lane_id: &LaneId, status: tonic::Status) -> Refusal {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            Refusal::Retry(status.to_string())
        }
        _ => Refusal::Final(LaneError::Refused { lane_id: lane_id.clone(), message: status.message().to_owned() }),
    }
}

/// Registers with the coordinator, retrying until it answers or `config.connect_timeout` passes.
async fn register(
    config: &LaneConfig,
    outbox: &LaneStore,
) -> Result<(CoordinatorClient, Currency, Vec<Product>), LaneError> {
    let endpoint = coordinator_endpoint(&config.coordinator_url, config.tls.as_ref())?;
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = async {
            let channel = endpoint.connect().await.map_err(|e| Refusal::Retry(e.to_string()))?;
            let token = lane_token(config, outbox, &channel).await?;
            let mut client = LaneServiceClient::with_interceptor(channel, Bearer::new(&token).map_err(Refusal::Final)?);
            let request = pb::RegisterLaneRequest {
                lane_id: config.lane_id.to_string(),
                description: format!("checkout lane {}", env!("CARGO_PKG_VERSION")),
            };
            match client.register_lane(request).await {
                Ok(response) => Ok((client, response.into_inner())),
                Err(status) if status.code() == tonic::Code::Unauthenticated && config.credentials.token.is_none() => {
                    // The kept token is unknown to this coordinator (a new ledger): forget it, so the
                    // next try enrols again if the lane has the enrolment secret.
                    let _ = outbox.set_lane_token(None);
                    match config.credentials.enrolment_secret {
                        Some(_) => {
                            Err(Refusal::Retry(format!("the kept lane token was refused ({})", status.message())))
                        }
                        None => Err(refusal(&config.lane_id, status)),
                    }
                }
                Err(status) => Err(refusal(&config.lane_id, status)),
            }
        };
        match attempt.await {
            Ok((client, response)) => {
                let currency = Currency::parse(&response.currency).map_err(|e| LaneError::BadCatalog(e.to_string()))?;
                let products = products_from_pb(response.products)?;
                tracing::info!(lane_id = %config.lane_id, store = %response.store_id, products = products.len(), "lane registered");
                return Ok((client, currency, products));
            }
            Err(Refusal::Final(error)) => return Err(error),
            Err(Refusal::Retry(message)) if started.elapsed() >= config.connect_timeout => {
                return Err(LaneError::Unreachable {
                    url: config.coordinator_url.clone(),
                    waited: config.connect_timeout,
                    last_error: message,
                });
            }
            Err(Refusal::Retry(message)) => {
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
    // Without a data folder the outbox (and the lane's token) live in a temporary one for this run only.
    let temporary = match &config.data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(LaneError::TemporaryFolder)?),
    };
    let data_dir = config.data_dir.clone().or_else(|| temporary.as_ref().map(|t| t.path().to_owned()));
    let data_dir = data_dir.unwrap_or_default();
    let outbox = LaneStore::open(&data_dir).map_err(|source| LaneError::Storage { path: data_dir.clone(), source })?;
    let (client, currency, products) = register(&config, &outbox).await?;
    let camera = match &config.source {
        FrameSource::Paths(paths) => Camera::Files(list_frames(paths)?),
        FrameSource::Synthetic(synthetic) => {
            Camera::Synthetic(SyntheticCamera::new(synthetic.clone(), products.clone()))
        }
    };
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
