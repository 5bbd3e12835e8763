//! What a lane is told when it starts: its coordinator, its frames, its cashier and how it proves who it is.

use std::{
    collections::VecDeque,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use checkout_storage::{CashierId, LaneId};
use tokio::sync::{mpsc, oneshot};

use crate::{
    debounce::PAYMENT_HOLD_OFF,
    error::LaneError,
    messages::{FrameInput, Trigger, TriggerRead},
    synthetic::SyntheticConfig,
};

/// Where a lane's frames come from.
#[derive(Debug, Clone)]
pub enum FrameSource {
    /// Image files (PNG, JPEG) in this order; a folder stands for its files by name.
    Paths(Vec<PathBuf>),
    /// Synthetic customers, rendered.
    Synthetic(SyntheticConfig),
    /// A hand-held scanner: one frame each time its trigger is pulled ([`hand_held_scanner`]).
    HandHeld(HandHeldScanner),
}

/// The scanner end of a hand-held scanner: the lane takes it when it starts (one lane per scanner).
#[derive(Clone)]
pub struct HandHeldScanner(Arc<Mutex<Option<mpsc::UnboundedReceiver<Trigger>>>>);

impl std::fmt::Debug for HandHeldScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandHeldScanner")
    }
}

impl HandHeldScanner {
    /// The trigger's channel, for the lane that starts with this scanner; `None` once a lane has it.
    pub(crate) fn take(&self) -> Option<mpsc::UnboundedReceiver<Trigger>> {
        self.0.lock().ok()?.take()
    }
}

/// The trigger of a hand-held scanner. Dropping it (and its clones) puts the scanner down: the lane then
/// closes as a camera's lane does when its frames end.
#[derive(Clone, Debug)]
pub struct ScannerTrigger(mpsc::UnboundedSender<Trigger>);

impl ScannerTrigger {
    /// Takes `frame` and waits until the lane has handled what it read (a charge until it has an outcome);
    /// `None` when the lane has stopped.
    pub async fn pull(&self, frame: FrameInput) -> Option<TriggerRead> {
        let (reply, read) = oneshot::channel();
        self.0.send(Trigger { frame, reply }).ok()?;
        read.await.ok()
    }
}

/// A hand-held scanner and its trigger: give the scanner to a lane ([`FrameSource::HandHeld`]) and pull the
/// trigger for each code the cashier scans.
pub fn hand_held_scanner() -> (ScannerTrigger, HandHeldScanner) {
    let (triggers, taken) = mpsc::unbounded_channel();
    (ScannerTrigger(triggers), HandHeldScanner(Arc::new(Mutex::new(Some(taken)))))
}

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
    /// The CA that signed the coordinator's certificate.
    pub ca_pem: Option<String>,
    /// This lane's certificate, when the store asks lanes for one.
    pub certificate_pem: Option<String>,
    /// The key of `certificate_pem`.
    pub key_pem: Option<String>,
}

/// Everything one lane needs to run: [`LaneConfig::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct LaneConfig {
    /// The lane's id in the store.
    pub lane_id: LaneId,
    /// The coordinator, for example `http://127.0.0.1:50051`.
    pub coordinator_url: String,
    /// Where the lane's frames come from.
    pub source: FrameSource,
    /// Camera pace; `None` takes frames as fast as they decode (image files).
    pub frames_per_second: Option<f64>,
    /// How often the lane tells the coordinator its state (and delivers its outbox).
    pub heartbeat_every: Duration,
    /// Time within which the same payment code is not taken again.
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
    /// The cashier's screen and the customer display, when the lane serves them.
    pub screen: Option<crate::screen::ScreenConfig>,
}

/// The cashier a lane signs on when none is named: "cashier-" and the lane id.
pub fn default_cashier(lane_id: &LaneId) -> CashierId {
    // A lane id has at most 6 letters or digits, so this is at most 14 characters: always valid.
    CashierId::parse(&format!("cashier-{lane_id}")).unwrap_or_else(|_| unreachable!("cashier id of lane {lane_id}"))
}

impl LaneConfig {
    /// A lane with the default timings, one decoder thread, the default cashier and no credentials yet.
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
            screen: None,
        }
    }
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
