//! `checkout bench coordinator`: charges per second through a real coordinator over gRPC, with and
//! without credentials checked, over plaintext and TLS.
//!
//! Each run starts a coordinator on 127.0.0.1 with a temporary ledger and the in-process simulated
//! provider, and lanes (one connection each) that charge a fresh code for a one-item sale, one Pay after
//! another. The four setups take turns, round after round, and each is reported by its median round,
//! so that the machine's moods fall on all of them alike. With `--watchers N`, two setups instead: lanes
//! that also send a heartbeat a second (each a visible change), without and with N managers watching
//! every change through `WatchLanes`.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use checkout_coordinator::{
    CoordinatorConfig, EngineTiming, auth::hash_token, config::Security, listener::TlsFiles, sim::SimulatedProvider,
};
use checkout_lanes::ClientTls;
use checkout_proto::v1::{self as pb, lane_service_client::LaneServiceClient};
use checkout_storage::{Currency, LaneId, Provider, SimulatedWallet, StoreId, UnixMillis, sample_catalog};
use serde_json::json;
use tonic::{metadata::MetadataValue, service::Interceptor};

use crate::{cli::CoordinatorBenchArgs, simulated_providers};

const SEED: &[u8] = b"bench coordinator";

/// One setup of the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Setup {
    tls: bool,
    credentials: bool,
    /// Managers streaming `WatchLanes` while lanes charge and send heartbeats (`None`: no heartbeats).
    watchers: Option<usize>,
}

impl Setup {
    fn name(self) -> String {
        match (self.tls, self.credentials, self.watchers) {
            (_, _, Some(0)) => "heartbeats, nobody watching".to_owned(),
            (_, _, Some(n)) => format!("heartbeats, {n} WatchLanes watchers"),
            (false, false, None) => "plaintext, credentials not checked".to_owned(),
            (false, true, None) => "plaintext, credentials checked".to_owned(),
            (true, false, None) => "TLS, credentials not checked".to_owned(),
            (true, true, None) => "TLS, credentials checked".to_owned(),
        }
    }
}

const MANAGER_TOKEN: &str = "ckm_bench-manager";

/// Sends a heartbeat a second for `lane`, each with another basket count (a change every watcher is sent),
/// until `stop`.
async fn heartbeats(
    mut client: LaneServiceClient<tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Identity>>,
    lane: u64,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    let mut sent = 0;
    while !*stop.borrow() {
        every.tick().await;
        let request = pb::HeartbeatRequest {
            lane_id: format!("L{lane}"),
            state: pb::LaneState::Scanning.into(),
            sale_id: format!("L{lane}-HB"),
            basket_items: (sent % 40) as u32 + 1,
            ..Default::default()
        };
        client.heartbeat(request).await?;
        sent += 1;
    }
    Ok(sent)
}

/// Watchers to a connection: a store's managers come from few machines (and the coordinator caps the
/// connections one address may hold).
const WATCHERS_A_CONNECTION: usize = 10;

/// A manager reading every `WatchLanes` message until the stream ends; returns how many lanes it was sent.
pub(crate) async fn watch(
    channel: tonic::transport::Channel,
    manager_token: &str,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let bearer = checkout_lanes::Bearer::new(manager_token)?;
    let mut client = pb::store_service_client::StoreServiceClient::with_interceptor(channel, bearer);
    let mut stream = client.watch_lanes(pb::WatchLanesRequest {}).await?.into_inner();
    let mut lanes_seen = 0;
    let mut stop = stop;
    loop {
        tokio::select! {
            message = stream.message() => match message? {
                Some(message) => lanes_seen += message.lanes.len() as u64,
                None => return Ok(lanes_seen),
            },
            _ = stop.wait_for(|stop| *stop) => return Ok(lanes_seen),
        }
    }
}

/// What one run measured.
struct Run {
    per_second: f64,
    median_ms: f64,
    p99_ms: f64,
    /// Heartbeats sent and lanes the watchers were sent, together.
    side_messages: u64,
}

fn lane_token(lane: u64) -> String {
    format!("ckl_bench-lane-{lane}")
}

/// A self-signed certificate for 127.0.0.1, made for this run.
fn test_certificate() -> anyhow::Result<(String, String)> {
    let key = rcgen::KeyPair::generate()?;
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    Ok((params.self_signed(&key)?.pem(), key.serialize_pem()))
}

/// A lane's credentials as a call carries them: its token, or (unchecked) the lane it claims to be.
#[derive(Clone)]
struct Identity {
    header: &'static str,
    value: MetadataValue<tonic::metadata::Ascii>,
}

impl Interceptor for Identity {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert(self.header, self.value.clone());
        Ok(request)
    }
}

async fn run_once(setup: Setup, lanes: u64, charges: u64, certificate: &(String, String)) -> anyhow::Result<Run> {
    let data = tempfile::tempdir()?;
    let sim = Arc::new(SimulatedProvider::new(SEED, i64::MAX / 4));
    let mut security = Security { generated_credentials: false, ..Security::default() };
    security.lane_tokens = (0..lanes)
        .map(|lane| Ok((LaneId::parse(&format!("L{lane}"))?, hash_token(&lane_token(lane)))))
        .collect::<anyhow::Result<_>>()?;
    security.unchecked_for_benchmarks = !setup.credentials;
    security.staff = vec![checkout_coordinator::auth::StaffToken {
        name: "bench".into(),
        role: checkout_coordinator::auth::Role::Manager,
        token_sha256: hash_token(MANAGER_TOKEN),
    }];
    security.limits.max_open_sales = usize::MAX;
    if setup.tls {
        security.tls = Some(TlsFiles {
            certificate_chain_pem: certificate.0.clone(),
            private_key_pem: certificate.1.clone(),
            client_ca_pem: None,
        });
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let url = format!("{}://{address}", if setup.tls { "https" } else { "http" });
    let config = CoordinatorConfig {
        store_id: StoreId::parse("S001")?,
        currency: Currency::CNY,
        data_dir: data.path().to_owned(),
        providers: simulated_providers(sim.clone()),
        shutdown_grace: Duration::from_secs(5),
        timing: EngineTiming::default(),
        security,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(checkout_coordinator::run(listener, config, async {
        let _ = stopped.await;
    }));
    let tls = ClientTls { ca_pem: Some(certificate.0.clone()), ..ClientTls::default() };

    let mut clients: Vec<LaneServiceClient<tonic::service::interceptor::InterceptedService<_, Identity>>> = Vec::new();
    for lane in 0..lanes {
        let channel = checkout_lanes::coordinator_endpoint(&url, Some(&tls))?.connect().await?;
        let identity = if setup.credentials {
            Identity { header: "authorization", value: format!("Bearer {}", lane_token(lane)).parse()? }
        } else {
            Identity { header: "x-checkout-claim", value: format!("lane L{lane}").parse()? }
        };
        let mut client = LaneServiceClient::with_interceptor(channel, identity);
        let request = pb::RegisterLaneRequest { lane_id: format!("L{lane}"), description: "bench".into() };
        client.register_lane(request).await.context("registering a bench lane")?;
        clients.push(client);
    }
    let (stop_side, side_stopped) = tokio::sync::watch::channel(false);
    let mut side_tasks = Vec::new();
    if let Some(watchers) = setup.watchers {
        for (lane, client) in clients.iter().enumerate() {
            side_tasks.push(tokio::spawn(heartbeats(client.clone(), lane as u64, side_stopped.clone())));
        }
        let mut channel = None;
        for n in 0..watchers {
            if n % WATCHERS_A_CONNECTION == 0 {
                channel = Some(tonic::transport::Endpoint::from_shared(url.clone())?.connect().await?);
            }
            let channel = channel.clone().context("a watcher's connection")?;
            let stopped = side_stopped.clone();
            side_tasks.push(tokio::spawn(async move { watch(channel, MANAGER_TOKEN, stopped).await }));
        }
    }
    let product = sample_catalog().into_iter().next().context("empty catalog")?;
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(lane, mut client)| {
            let product = product.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for n in (lane as u64..charges).step_by(lanes as usize) {
                    // Each charge its own wallet: a code is single-use.
                    let provider = Provider::ALL[(n % 3) as usize];
                    let code = SimulatedWallet::new(SEED, provider, (n / 3) as u16).issue_code(UnixMillis::now());
                    let request = pb::PayRequest {
                        lane_id: format!("L{lane}"),
                        sale_id: format!("L{lane}-B{n}"),
                        attempt: 1,
                        payment_code: code.expose_digits().to_owned(),
                        lines: vec![pb::SaleLine { gtin: product.gtin.to_string(), quantity: 1, unit_price: None }],
                        amount: Some(pb::Money { minor_units: product.price.minor_units, currency: "CNY".into() }),
                        ..Default::default()
                    };
                    let begun = Instant::now();
                    let answer = client.pay(request).await?.into_inner();
                    latencies.push(begun.elapsed());
                    anyhow::ensure!(answer.outcome() == pb::PaymentOutcome::Paid, "charge {n}: {}", answer.message);
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    stop_side.send_replace(true);
    let mut side_messages = 0;
    for task in side_tasks {
        side_messages += task.await??;
    }
    let _ = stop.send(());
    server.await?.context("the bench coordinator")?;
    anyhow::ensure!(sim.orders().len() == latencies.len(), "the provider's books differ from the charges made");
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    Ok(Run {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        median_ms: at(0.5),
        p99_ms: at(0.99),
        side_messages,
    })
}

pub fn coordinator(args: CoordinatorBenchArgs) -> anyhow::Result<()> {
    if let Some(lanes) = args.idle_lanes {
        return crate::bench_idle_lanes::run(
            lanes.clamp(1, 5_000),
            args.watchers.unwrap_or(0).min(250),
            args.seconds,
            args.json,
        );
    }
    let lanes = args.lanes.clamp(1, 100);
    let charges = args.charges.clamp(lanes, 3 * 20_000);
    let rounds = args.rounds.max(1);
    let certificate = test_certificate()?;
    let setups: Vec<Setup> = match args.watchers {
        Some(watchers) => vec![
            Setup { tls: false, credentials: true, watchers: Some(0) },
            Setup { tls: false, credentials: true, watchers: Some(watchers.min(250)) },
        ],
        None => vec![
            Setup { tls: false, credentials: false, watchers: None },
            Setup { tls: false, credentials: true, watchers: None },
            Setup { tls: true, credentials: false, watchers: None },
            Setup { tls: true, credentials: true, watchers: None },
        ],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut runs: HashMap<Setup, Vec<Run>> = HashMap::new();
    for _ in 0..rounds {
        for &setup in &setups {
            let run = runtime.block_on(run_once(setup, lanes, charges, &certificate))?;
            runs.entry(setup).or_default().push(run);
        }
    }
    // Each setup by its median round (by throughput).
    let median = |setup: Setup| -> &Run {
        let mut of_setup: Vec<&Run> = runs[&setup].iter().collect();
        of_setup.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
        of_setup[of_setup.len() / 2]
    };
    if args.watchers.is_some() {
        let (quiet, watched) = (median(setups[0]), median(setups[1]));
        let p99_change = (watched.p99_ms / quiet.p99_ms - 1.0) * 100.0;
        if args.json {
            let row =
                |run: &Run| json!({"payments_per_s": run.per_second, "p50_ms": run.median_ms, "p99_ms": run.p99_ms});
            println!(
                "{}",
                json!({"lanes": lanes, "charges_per_run": charges, "rounds": rounds, "watchers": setups[1].watchers,
                       "without_watchers": row(quiet), "with_watchers": row(watched),
                       "watcher_lanes_received": watched.side_messages, "pay_p99_change_percent": p99_change})
            );
        } else {
            println!(
                "bench coordinator: {lanes} lanes charging and sending a heartbeat a second, {charges} charges a run"
            );
            println!("{:<38} {:>10} {:>10} {:>10}", "setup", "charges/s", "median ms", "p99 ms");
            for (setup, run) in [(setups[0], quiet), (setups[1], watched)] {
                println!("{:<38} {:>10.0} {:>10.2} {:>10.2}", setup.name(), run.per_second, run.median_ms, run.p99_ms);
            }
            println!("Pay p99 with the watchers: {p99_change:+.1}%");
        }
        return Ok(());
    }
    let cost = |transport_tls: bool| {
        let without = median(Setup { tls: transport_tls, credentials: false, watchers: None }).per_second;
        let with = median(Setup { tls: transport_tls, credentials: true, watchers: None }).per_second;
        (1.0 - with / without) * 100.0
    };
    if args.json {
        let rows: Vec<_> = setups
            .iter()
            .map(|setup| {
                let run = median(*setup);
                json!({"tls": setup.tls, "credentials_checked": setup.credentials,
                       "charges_per_second": run.per_second, "median_ms": run.median_ms, "p99_ms": run.p99_ms})
            })
            .collect();
        // The figures of the setup a store runs: credentials checked (plaintext; TLS in `runs`).
        let main = median(Setup { tls: false, credentials: true, watchers: None });
        println!(
            "{}",
            json!({"lanes": lanes, "charges_per_run": charges, "rounds": rounds,
                   "payments_per_s": main.per_second, "p50_ms": main.median_ms, "p99_ms": main.p99_ms,
                   "rss_mib": crate::process_memory::peak_rss_mib(), "rss_is": "the bench process: coordinator and lanes together",
                   "runs": rows, "credentials_cost_percent": {"plaintext": cost(false), "tls": cost(true)}})
        );
        return Ok(());
    }
    println!(
        "bench coordinator: {lanes} lanes over gRPC on 127.0.0.1, {charges} charges a run, {rounds} rounds (each setup's median round)"
    );
    println!("{:<38} {:>10} {:>10} {:>10}", "setup", "charges/s", "median ms", "p99 ms");
    for &setup in &setups {
        let run = median(setup);
        println!("{:<38} {:>10.0} {:>10.2} {:>10.2}", setup.name(), run.per_second, run.median_ms, run.p99_ms);
    }
    println!(
        "checking credentials costs {:.1}% of throughput over plaintext, {:.1}% over TLS",
        cost(false),
        cost(true)
    );
    Ok(())
}
