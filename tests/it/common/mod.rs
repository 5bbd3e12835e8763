//! Shared helpers of the end-to-end tests: a real coordinator on 127.0.0.1:0, lanes on their own actix systems, rendered frames.
#![allow(dead_code)]

pub mod browser;
pub mod processes;

use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};

use checkout_coordinator::{
    CoordinatorConfig, EngineTiming, PaymentProvider, RunError,
    auth::{Role, StaffToken, hash_token},
    config::Security,
    sim::SimulatedProvider,
};
use checkout_lanes::{
    Bearer, CoordinatorClient, LaneConfig, LaneCredentials, LaneSummary,
    vision::{LumaFrame, encode_png, paste, render_code},
};
use checkout_proto::v1::{lane_service_client::LaneServiceClient, store_service_client::StoreServiceClient};
use checkout_storage::{Currency, LaneId, Provider, StoreId, Symbology};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

pub const WALLET_SEED: &[u8] = b"test wallets";

/// The tests' credentials, configured by hash as an operator would.
pub const MANAGER_TOKEN: &str = "ckm_test-manager";
pub const VIEWER_TOKEN: &str = "ckm_test-viewer";
pub const ENROLMENT_SECRET: &str = "cke_test-enrolment-secret";
/// Lanes with a configured token (others must enrol).
pub const CONFIGURED_LANES: [&str; 9] = ["L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8", "L9"];

pub fn lane_token(lane: &str) -> String {
    format!("ckl_test-lane-{lane}")
}

pub fn test_security() -> Security {
    Security {
        staff: vec![
            StaffToken { name: "ann".into(), role: Role::Manager, token_sha256: hash_token(MANAGER_TOKEN) },
            StaffToken { name: "bo".into(), role: Role::Viewer, token_sha256: hash_token(VIEWER_TOKEN) },
        ],
        enrolment_secrets: vec![hash_token(ENROLMENT_SECRET)],
        lane_tokens: CONFIGURED_LANES.iter().map(|l| (LaneId::parse(l).unwrap(), hash_token(&lane_token(l)))).collect(),
        generated_credentials: false,
        ..Security::default()
    }
}

/// A configured lane's credentials.
pub fn lane_credentials(lane: &str) -> LaneCredentials {
    LaneCredentials { token: Some(lane_token(lane)), enrolment_secret: None }
}

pub type ManagerClient = StoreServiceClient<InterceptedService<Channel, Bearer>>;

async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_owned()).unwrap().connect().await.expect("connect to the coordinator")
}

/// `StoreService` as the test manager.
pub async fn manager_client(url: &str) -> ManagerClient {
    StoreServiceClient::with_interceptor(channel(url).await, Bearer::new(MANAGER_TOKEN).unwrap())
}

/// `StoreService` with `token`.
pub async fn store_client_with(url: &str, token: &str) -> ManagerClient {
    StoreServiceClient::with_interceptor(channel(url).await, Bearer::new(token).unwrap())
}

/// `LaneService` as the configured lane `lane`.
pub async fn lane_client(url: &str, lane: &str) -> CoordinatorClient {
    lane_client_with(url, &lane_token(lane)).await
}

/// `LaneService` with `token`.
pub async fn lane_client_with(url: &str, token: &str) -> CoordinatorClient {
    LaneServiceClient::with_interceptor(channel(url).await, Bearer::new(token).unwrap())
}

/// A new token for `lane`, issued by the manager whose token is `manager_token`.
pub async fn issue_lane_token(url: &str, manager_token: &str, lane: &str) -> String {
    let mut store = store_client_with(url, manager_token).await;
    let request = checkout_proto::v1::IssueLaneTokenRequest { lane_id: lane.into(), ..Default::default() };
    store.issue_lane_token(request).await.expect("IssueLaneToken").into_inner().token
}

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
        coupon_hold: Duration::from_secs(60),
    }
}

pub fn providers(sim: &Arc<SimulatedProvider>) -> HashMap<Provider, Arc<dyn PaymentProvider>> {
    Provider::ALL.into_iter().map(|p| (p, sim.clone() as Arc<dyn PaymentProvider>)).collect()
}

pub async fn start_coordinator(data: &Path, sim: &Arc<SimulatedProvider>) -> RunningCoordinator {
    start_coordinator_with(data, sim, test_security()).await
}

/// A coordinator with `security` (TLS makes its URL https://).
pub async fn start_coordinator_with(
    data: &Path,
    sim: &Arc<SimulatedProvider>,
    security: Security,
) -> RunningCoordinator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let scheme = if security.tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr().expect("address"));
    let config = CoordinatorConfig {
        store_id: StoreId::parse("S001").unwrap(),
        currency: Currency::CNY,
        data_dir: data.to_owned(),
        providers: providers(sim),
        shutdown_grace: Duration::from_secs(10),
        timing: fast_timing(),
        security,
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

/// Runs a lane to the end of its frames, sending what it shows the cashier to `events`. A lane
/// configured without credentials gets its configured token.
pub async fn run_lane_with_events(
    mut config: LaneConfig,
    events: Option<tokio::sync::mpsc::UnboundedSender<checkout_lanes::LaneEvent>>,
) -> LaneSummary {
    if config.credentials.token.is_none() && config.credentials.enrolment_secret.is_none() {
        config.credentials = lane_credentials(config.lane_id.as_str());
    }
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

/// Every sale (of `lane`, or of every lane when empty), page by page.
pub async fn all_sales(client: &mut ManagerClient, lane: &str) -> Vec<checkout_proto::v1::Sale> {
    use checkout_proto::v1 as pb;
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListSalesRequest { lane_id: lane.into(), page_size: 1000, page_token, ..Default::default() };
        let page = client.list_sales(request).await.expect("ListSales").into_inner();
        all.extend(page.sales);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

/// Every payment (of `lane`, or of every lane when empty), page by page.
pub async fn all_payments(client: &mut ManagerClient, lane: &str) -> Vec<checkout_proto::v1::Payment> {
    use checkout_proto::v1 as pb;
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let request =
            pb::ListPaymentsRequest { lane_id: lane.into(), page_size: 1000, page_token, ..Default::default() };
        let page = client.list_payments(request).await.expect("ListPayments").into_inner();
        all.extend(page.payments);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

/// Writes `shots` as numbered PNG frames in `dir` (each distinct frame rendered once, repeats hard-linked).
pub fn write_frames(dir: &Path, shots: &[Option<(&str, Symbology)>]) {
    let mut rendered: Vec<(Option<(&str, Symbology)>, std::path::PathBuf)> = Vec::new();
    for (i, shot) in shots.iter().enumerate() {
        let path = dir.join(format!("{i:04}.png"));
        match rendered.iter().find(|(s, _)| s == shot) {
            Some((_, first)) => std::fs::hard_link(first, &path).expect("link a repeated frame"),
            None => {
                write_png(&path, &frame_with(*shot));
                rendered.push((*shot, path));
            }
        }
    }
}

/// Each code shown for one frame, then three blank frames (the code taken away).
pub fn each_then_blanks(shots: &[(String, Symbology)]) -> Vec<Option<(&str, Symbology)>> {
    shots.iter().flat_map(|(text, symbology)| [Some((text.as_str(), *symbology)), None, None, None]).collect()
}

/// Runs lane `lane` over the frames in `dir` at `fps` frames a second; its summary and what the cashier was
/// shown.
pub async fn run_lane_over(
    url: &str,
    lane: &str,
    dir: &Path,
    fps: f64,
) -> (LaneSummary, Vec<checkout_lanes::LaneEventKind>) {
    let source = checkout_lanes::FrameSource::Paths(vec![dir.to_owned()]);
    let mut config = LaneConfig::new(LaneId::parse(lane).expect("lane id"), url.to_owned(), source);
    config.frames_per_second = Some(fps);
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let summary = run_lane_with_events(config, Some(events_tx)).await;
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event.kind);
    }
    (summary, seen)
}
