//! The store coordinator: serves `LaneService` and `StoreService` over gRPC, charges payment codes, keeps the ledger.
//!
//! [`run`] is the whole server: give it a bound listener, a configuration and
//! a shutdown future (mini-redis style). On shutdown it stops accepting,
//! refuses new charges, lets in-flight requests finish within the grace
//! period, flushes the ledger and returns. [`open`] and [`serve`] are its two
//! halves, for a caller that reports the data folder's credentials in between.

pub mod auth;
pub mod config;
mod engine;
mod error;
mod grpc;
pub mod listener;
pub mod providers;
pub mod reconcile;
mod services;
pub mod sim;

use std::{
    collections::HashMap,
    future::Future,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::Duration,
};

use checkout_proto::v1::{lane_service_server::LaneServiceServer, store_service_server::StoreServiceServer};
use checkout_storage::{Currency, LaneId, Provider, StorageError, Store, StoreId, UnixMillis, sample_catalog};
use tokio::net::TcpListener;
use tokio_stream::wrappers::ReceiverStream;
use tonic_health::ServingStatus;

use crate::{
    auth::{Credentials, ENROLMENT_SECRET_FILE, Gate, GateLayer, MANAGER_TOKEN_FILE, Role, StaffToken, TokenKind},
    config::Security,
};

pub use engine::refunds::RefundOrder;
pub use engine::{EngineTiming, PayOrder, Payments};
pub use error::CoordinatorError;
pub use providers::PaymentProvider;
pub use services::reconciliations::ledger_lines;

/// Everything the coordinator needs to start.
pub struct CoordinatorConfig {
    pub store_id: StoreId,
    pub currency: Currency,
    /// The sled data folder; created if missing.
    pub data_dir: PathBuf,
    /// Who charges each provider's codes.
    pub providers: HashMap<Provider, Arc<dyn PaymentProvider>>,
    /// How long in-flight requests may run after shutdown is asked for.
    pub shutdown_grace: Duration,
    /// How patient the payment engine is with providers.
    pub timing: EngineTiming,
    /// Credentials, TLS and limits.
    pub security: Security,
}

/// The state every service shares.
pub struct Coordinator {
    store: Store,
    store_id: StoreId,
    currency: Currency,
    payments: Payments,
    live: services::live::LiveLanes,
    shutting_down: AtomicBool,
    /// When the resolver's next pass starts (Unix millis).
    next_resolve_at: AtomicI64,
    /// Wakes the resolver for a pass now.
    resolve_now: tokio::sync::Notify,
    /// Credentials and the audit log.
    gate: Arc<Gate>,
    limits: config::Limits,
    /// Sales started and not paid yet, per lane: capped.
    open_sales: services::open_sales::OpenSales,
    /// One lane token issued at a time, so two enrolments of one new lane cannot both win.
    issuing: tokio::sync::Mutex<()>,
    /// Lanes whose tokens the configuration names: they count against the cap on lanes.
    configured_lanes: Vec<LaneId>,
    /// Turns for reads of the ledger on the blocking pool: a flood of lists queues here.
    readers: Arc<tokio::sync::Semaphore>,
    /// One lock per request id being answered, so a repeat sent at once waits for the first (AIP-155).
    request_locks: engine::Locks<String>,
    /// Turns for `WatchLanes` streams: each holds one while it runs.
    watchers: Arc<tokio::sync::Semaphore>,
    /// Becomes true at shutdown: the watchers' streams end, so that they do not hold the server open.
    stop_watching: tokio::sync::watch::Sender<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error(
        "the ledger failed ({0}); the coordinator stopped so that nothing unrecorded is acknowledged: free or fix the disk, then start it again"
    )]
    LedgerFailed(String),
    #[error("cannot keep the generated credentials in {path}: {source}")]
    Credentials { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] listener::TlsError),
}

/// Reads of the ledger (lists) that run at once; more wait their turn.
const READERS_AT_ONCE: usize = 4;

/// `WatchLanes` streams open at once (each costs a task and a buffer of a few changes); more are refused.
const MAX_WATCHERS: usize = 256;

/// Where the data folder keeps the credentials it generated at its first start.
#[derive(Debug, Clone)]
pub struct GeneratedCredentials {
    /// A bearer token with the manager role.
    pub manager_token: PathBuf,
    /// The secret a new lane enrols with (`LaneService/EnrolLane`).
    pub lane_enrolment_secret: PathBuf,
}

/// A coordinator whose data folder is open and locked, ready to [`serve`].
pub struct OpenedCoordinator {
    coordinator: Arc<Coordinator>,
    /// The generated credentials, unless the configuration turned them off.
    pub generated: Option<GeneratedCredentials>,
    grace: Duration,
    tls: Option<listener::TlsFiles>,
}

/// Reads the token in `path`, or makes one there (0600) when there is none.
fn token_file(path: &std::path::Path, kind: TokenKind) -> Result<String, RunError> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let fail = |source| RunError::Credentials { path: path.to_owned(), source };
    match std::fs::read_to_string(path) {
        Ok(token) if !token.trim().is_empty() => return Ok(token.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    let token = auth::new_token(kind).map_err(fail)?;
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(fail)?;
    file.write_all(format!("{token}\n").as_bytes()).and_then(|()| file.sync_all()).map_err(fail)?;
    Ok(token)
}

/// Opens (or creates) the data folder, taking its lock first, and makes the credentials a new folder needs.
pub fn open(config: CoordinatorConfig) -> Result<OpenedCoordinator, RunError> {
    let store = Store::open(&config.data_dir)?;
    let seeded = store.seed_catalog_if_empty(&sample_catalog())?;
    if seeded > 0 {
        tracing::info!(products = seeded, "new data folder: loaded the sample catalog");
    }
    let mut security = config.security;
    let generated = if security.generated_credentials {
        let folder = store.credentials_dir()?;
        let manager_token = folder.join(MANAGER_TOKEN_FILE);
        let lane_enrolment_secret = folder.join(ENROLMENT_SECRET_FILE);
        let manager = token_file(&manager_token, TokenKind::Staff)?;
        let secret = token_file(&lane_enrolment_secret, TokenKind::Enrolment)?;
        security.staff.push(StaffToken {
            name: "generated".to_owned(),
            role: Role::Manager,
            token_sha256: auth::hash_token(&manager),
        });
        security.enrolment_secrets.push(auth::hash_token(&secret));
        Some(GeneratedCredentials { manager_token, lane_enrolment_secret })
    } else {
        None
    };
    let mut lane_tokens: Vec<(LaneId, auth::TokenHash)> = store
        .lane_tokens()?
        .into_iter()
        .filter(|record| !record.revoked)
        .map(|record| (record.lane_id, record.token_sha256))
        .collect();
    lane_tokens.extend(security.lane_tokens.iter().cloned());
    let credentials = Credentials::new(&security.staff, &security.enrolment_secrets, &lane_tokens);
    store.keep_audit_entries(security.limits.audit_entries);
    let forgotten = store.forget_old_requests()?;
    if forgotten > 0 {
        store.commit_blocking()?;
    }
    let live = services::live::LiveLanes::new(store.lane_closures()?);
    let coordinator = Arc::new(Coordinator {
        payments: Payments::new(store.clone(), config.store_id.clone(), config.providers, config.timing)
            .with_points_rule(security.points.clone()),
        gate: Arc::new(Gate::new(credentials, store.clone(), security.unchecked_for_benchmarks)),
        store,
        store_id: config.store_id,
        currency: config.currency,
        live,
        shutting_down: AtomicBool::new(false),
        next_resolve_at: AtomicI64::new(0),
        resolve_now: tokio::sync::Notify::new(),
        open_sales: services::open_sales::OpenSales::default(),
        limits: security.limits,
        issuing: tokio::sync::Mutex::new(()),
        configured_lanes: security.lane_tokens.iter().map(|(lane_id, _)| lane_id.clone()).collect(),
        readers: Arc::new(tokio::sync::Semaphore::new(READERS_AT_ONCE)),
        request_locks: Default::default(),
        watchers: Arc::new(tokio::sync::Semaphore::new(MAX_WATCHERS)),
        stop_watching: tokio::sync::watch::channel(false).0,
    });
    Ok(OpenedCoordinator { coordinator, generated, grace: config.shutdown_grace, tls: security.tls })
}

/// Serves the coordinator on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    config: CoordinatorConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    serve(listener, open(config)?, shutdown).await
}

/// Serves an opened coordinator on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    opened: OpenedCoordinator,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let OpenedCoordinator { coordinator, grace, tls, .. } = opened;
    let store = coordinator.store.clone();
    let tls = tls.as_ref().map(listener::tls_acceptor).transpose()?;
    let limits = coordinator.limits.clone();
    let mut connections = limits.connections.clone();
    if let Some(files) = listener::raise_open_file_limit() {
        // Leave room for the ledger, the providers' connections and the log.
        let room = usize::try_from(files.saturating_sub(128)).unwrap_or(usize::MAX).max(16);
        connections.max_connections = connections.max_connections.min(room);
    }
    // One address never takes more than a quarter of the connections: others still get in.
    connections.max_connections_per_address =
        connections.max_connections_per_address.min((connections.max_connections / 4).max(1));

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(checkout_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    // Lanes are told the store is ready only once charges left unsettled by a crash are resolved.
    health.set_not_serving::<LaneServiceServer<grpc::LaneApi>>().await;
    health.set_serving::<StoreServiceServer<grpc::StoreApi>>().await;
    let resolver = tokio::spawn(resolve_forever(coordinator.clone(), health.clone()));
    let offline_sweeper = tokio::spawn(sweep_offline_lanes(coordinator.clone()));
    let lane_feed = grpc::LaneFeed::start(coordinator.clone());

    let address = listener.local_addr().ok();
    tracing::info!(
        ?address,
        data = %store.path().display(),
        tls = tls.is_some(),
        max_connections = connections.max_connections,
        "coordinator serving"
    );
    let (incoming, accepting) = listener::admit_connections(listener, tls, connections);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let state = coordinator.clone();
    let ledger_failure = Arc::new(std::sync::OnceLock::new());
    let failure = ledger_failure.clone();
    let lanes_health = health.clone();
    let signal = async move {
        tokio::select! {
            () = shutdown => {
                tracing::info!("shutting down: no new connections or charges, finishing in-flight requests");
            }
            // Fail-stop: after a failed write or flush nobody knows what reached the disk, so the
            // coordinator takes no more charges and exits; what it acknowledged is safe on disk and
            // what was in flight resumes at the next start.
            reason = state.store.failed() => {
                tracing::error!(%reason, "the ledger failed: refusing charges and stopping; restart once the disk is fixed");
                lanes_health.set_not_serving::<LaneServiceServer<grpc::LaneApi>>().await;
                let _ = failure.set(reason);
            }
        }
        state.shutting_down.store(true, Ordering::SeqCst);
        state.stop_watching.send_replace(true);
        let _ = stop_tx.send(());
    };
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(limits.max_streams_per_connection)
        .http2_max_header_list_size(16 * 1024)
        .layer(GateLayer(coordinator.gate.clone()))
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(
            LaneServiceServer::new(grpc::LaneApi(coordinator.clone()))
                .max_decoding_message_size(limits.max_message_bytes),
        )
        .add_service(
            StoreServiceServer::new(grpc::StoreApi(coordinator.clone(), lane_feed))
                .max_decoding_message_size(limits.max_message_bytes),
        )
        .serve_with_incoming_shutdown(ReceiverStream::new(incoming), signal);

    let grace_expired = async move {
        if stop_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server => served?,
        () = grace_expired => tracing::warn!(?grace, "grace period over: abandoning requests still running"),
    }
    // Whatever the resolver was doing is durable step by step; it resumes at the next start.
    resolver.abort();
    offline_sweeper.abort();
    accepting.abort();
    if let Some(reason) = ledger_failure.get() {
        return Err(RunError::LedgerFailed(reason.clone()));
    }
    store.commit().await?;
    tracing::info!("ledger flushed; coordinator stopped");
    Ok(())
}

/// The `grpc.health.v1` service name under which a provider's recovery is reported: `checkout.v1.Provider/WECHAT_PAY`.
pub fn provider_health_name(provider: Provider) -> String {
    format!("checkout.v1.Provider/{}", grpc::provider_to_pb(provider).as_str_name().trim_start_matches("PROVIDER_"))
}

/// Resolves charges left unsettled: once at start (then lanes are told the store is serving), then periodically.
async fn resolve_forever(coordinator: Arc<Coordinator>, health: tonic_health::server::HealthReporter) {
    let every = coordinator.payments.timing().resolve_every;
    let mut ready = false;
    // A provider is reported healthy once the charges a crash left with it are settled.
    let mut recovering: Vec<Provider> = coordinator.payments.providers().collect();
    for provider in &recovering {
        health.set_service_status(provider_health_name(*provider), ServingStatus::NotServing).await;
    }
    loop {
        match coordinator.payments.resolve_outstanding().await {
            Ok(left) => {
                if !ready {
                    health.set_serving::<LaneServiceServer<grpc::LaneApi>>().await;
                    ready = true;
                    tracing::info!(unsettled = left, "start-up recovery pass done: serving lanes");
                } else if left > 0 {
                    tracing::info!(unsettled = left, "charges still unsettled");
                }
                if !recovering.is_empty() {
                    let outstanding = coordinator.store.outstanding_charges().unwrap_or_default();
                    let mut still = Vec::new();
                    for provider in recovering {
                        if outstanding.iter().any(|c| c.provider == provider) {
                            still.push(provider);
                        } else {
                            health.set_service_status(provider_health_name(provider), ServingStatus::Serving).await;
                            tracing::info!(%provider, "recovered: every charge left by a restart is settled");
                        }
                    }
                    recovering = still;
                }
            }
            Err(e) => tracing::error!(error = %e, "resolver pass failed"),
        }
        let next = UnixMillis::now().0 + every.as_millis() as i64;
        coordinator.next_resolve_at.store(next, Ordering::SeqCst);
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = coordinator.resolve_now.notified() => {}
        }
    }
}

/// Tells the lanes' watchers, once a second, of every lane that stopped sending heartbeats.
async fn sweep_offline_lanes(coordinator: Arc<Coordinator>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        coordinator.live.sweep_offline();
    }
}
