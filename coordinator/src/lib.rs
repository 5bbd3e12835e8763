//! The store coordinator: serves `LaneService` and `StoreService` over gRPC, charges payment codes, keeps the ledger.
//!
//! [`run`] is the whole server: give it a bound listener, a configuration and
//! a shutdown future (mini-redis style). On shutdown it stops accepting,
//! refuses new charges, lets in-flight requests finish within the grace
//! period, flushes the ledger and returns.

pub mod alipay;
mod error;
mod grpc;
mod http;
mod live;
mod payments;
pub mod provider;
pub mod provider_sim;
mod refunds;
mod shifts;
pub mod simulated;
mod totals;
pub mod wechat;

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
use checkout_storage::{Currency, Provider, StorageError, Store, StoreId, UnixMillis, sample_catalog};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::ServingStatus;

pub use error::CoordinatorError;
pub use payments::{EngineTiming, PayOrder, Payments};
pub use provider::PaymentProvider;
pub use refunds::{MAX_REFUNDS_PER_ORDER, RefundOrder};

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
}

/// The state every service shares.
pub struct Coordinator {
    store: Store,
    store_id: StoreId,
    currency: Currency,
    payments: Payments,
    live: live::LiveLanes,
    shutting_down: AtomicBool,
    /// When the resolver's next pass starts (Unix millis).
    next_resolve_at: AtomicI64,
    /// Wakes the resolver for a pass now.
    resolve_now: tokio::sync::Notify,
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
}

/// Serves the coordinator on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    config: CoordinatorConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let store = Store::open(&config.data_dir)?;
    let seeded = store.seed_catalog_if_empty(&sample_catalog())?;
    if seeded > 0 {
        tracing::info!(products = seeded, "new data folder: loaded the sample catalog");
    }
    let coordinator = Arc::new(Coordinator {
        payments: Payments::new(store.clone(), config.store_id.clone(), config.providers, config.timing),
        store: store.clone(),
        store_id: config.store_id,
        currency: config.currency,
        live: live::LiveLanes::default(),
        shutting_down: AtomicBool::new(false),
        next_resolve_at: AtomicI64::new(0),
        resolve_now: tokio::sync::Notify::new(),
    });

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

    let address = listener.local_addr().ok();
    tracing::info!(?address, data = %store.path().display(), "coordinator serving");

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
        let _ = stop_tx.send(());
    };
    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(LaneServiceServer::new(grpc::LaneApi(coordinator.clone())))
        .add_service(StoreServiceServer::new(grpc::StoreApi(coordinator.clone())))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), signal);

    let grace = config.shutdown_grace;
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
