//! `checkout bench coordinator`: charges per second through a real coordinator over gRPC, with and
//! without credentials checked, over plaintext and TLS.
//!
//! Each run starts a coordinator on 127.0.0.1 with a temporary ledger and the in-process simulated
//! provider, and lanes (one connection each) that charge a fresh code for a one-item sale, one Pay after
//! another. The four setups take turns, round after round, and each is reported by its median round,
//! so that the machine's moods fall on all of them alike.

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
}

impl Setup {
    fn name(self) -> &'static str {
        match (self.tls, self.credentials) {
            (false, false) => "plaintext, credentials not checked",
            (false, true) => "plaintext, credentials checked",
            (true, false) => "TLS, credentials not checked",
            (true, true) => "TLS, credentials checked",
        }
    }
}

/// What one run measured.
struct Run {
    per_second: f64,
    median_ms: f64,
    p99_ms: f64,
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
                        lines: vec![pb::SaleLine { gtin: product.gtin.to_string(), quantity: 1 }],
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
    let _ = stop.send(());
    server.await?.context("the bench coordinator")?;
    anyhow::ensure!(sim.orders().len() == latencies.len(), "the provider's books differ from the charges made");
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    Ok(Run { per_second: latencies.len() as f64 / elapsed.as_secs_f64(), median_ms: at(0.5), p99_ms: at(0.99) })
}

pub fn coordinator(args: CoordinatorBenchArgs) -> anyhow::Result<()> {
    let lanes = args.lanes.clamp(1, 100);
    let charges = args.charges.clamp(lanes, 3 * 20_000);
    let rounds = args.rounds.max(1);
    let certificate = test_certificate()?;
    let setups = [
        Setup { tls: false, credentials: false },
        Setup { tls: false, credentials: true },
        Setup { tls: true, credentials: false },
        Setup { tls: true, credentials: true },
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut runs: HashMap<Setup, Vec<Run>> = HashMap::new();
    for _ in 0..rounds {
        for setup in setups {
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
    let cost = |transport_tls: bool| {
        let without = median(Setup { tls: transport_tls, credentials: false }).per_second;
        let with = median(Setup { tls: transport_tls, credentials: true }).per_second;
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
        println!(
            "{}",
            json!({"lanes": lanes, "charges_per_run": charges, "rounds": rounds, "runs": rows,
                   "credentials_cost_percent": {"plaintext": cost(false), "tls": cost(true)}})
        );
        return Ok(());
    }
    println!(
        "bench coordinator: {lanes} lanes over gRPC on 127.0.0.1, {charges} charges a run, {rounds} rounds (each setup's median round)"
    );
    println!("{:<38} {:>10} {:>10} {:>10}", "setup", "charges/s", "median ms", "p99 ms");
    for setup in setups {
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
