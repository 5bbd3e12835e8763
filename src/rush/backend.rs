//! The store the rush runs against: a coordinator and the simulated provider in this process, or as
//! processes of their own (`checkout provider-sim`, `checkout coordinator`) that can be killed and restarted.

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use checkout_coordinator::{
    CoordinatorConfig, EngineTiming,
    sim::{Faults, SimOptions, SimulatedProvider},
};
use checkout_storage::{Currency, StoreId};

use super::verdict::BookOrder;

/// How long a coordinator may take to listen again after a restart.
const START_WITHIN: Duration = Duration::from_secs(60);

/// A coordinator and provider in this process.
pub struct Embedded {
    provider: Arc<SimulatedProvider>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), checkout_coordinator::RunError>>>,
}

/// `checkout provider-sim` and `checkout coordinator` processes.
pub struct Processes {
    sim: Child,
    sim_address: String,
    coordinator: Child,
    coordinator_args: Vec<String>,
    port: u16,
}

/// A coordinator someone else runs, charging through a `checkout provider-sim` at `sim_address`.
pub struct External {
    sim_address: String,
}

pub enum Backend {
    Embedded(Embedded),
    Processes(Processes),
    External(External),
}

/// What the rush needs of a started store.
pub struct Started {
    pub backend: Backend,
    pub url: String,
    pub manager_token: String,
}

/// The coordinator's own credentials in its data folder.
fn manager_token_in(data: &Path) -> anyhow::Result<String> {
    let path = data.join(checkout_storage::CREDENTIALS_DIR).join(checkout_coordinator::auth::MANAGER_TOKEN_FILE);
    Ok(std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?.trim().to_owned())
}

/// Starts the coordinator and provider in this process (the server on the current tokio runtime).
pub async fn embedded(
    data_dir: PathBuf,
    wallet_seed: &[u8],
    options: SimOptions,
    speed: f64,
) -> anyhow::Result<Started> {
    let provider = Arc::new(SimulatedProvider::with_options(wallet_seed, 500_000, options));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let config = CoordinatorConfig {
        store_id: StoreId::parse("S001")?,
        currency: Currency::CNY,
        data_dir: data_dir.clone(),
        providers: crate::simulated_providers(provider.clone()),
        shutdown_grace: Duration::from_secs(10),
        timing: EngineTiming::default().accelerated(speed),
        security: checkout_coordinator::config::Security::default(),
    };
    let opened = checkout_coordinator::open(config)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(checkout_coordinator::serve(listener, opened, async {
        let _ = stopped.await;
    }));
    let manager_token = manager_token_in(&data_dir)?;
    Ok(Started {
        backend: Backend::Embedded(Embedded { provider, stop: Some(stop), server: Some(server) }),
        url,
        manager_token,
    })
}

/// The address a `checkout` server prints on its first line ("... listening on ADDRESS").
fn listening_address(child: &mut Child, server: &str) -> anyhow::Result<String> {
    let stdout = child.stdout.take().context("the server's stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let prefix = format!("{server} listening on ");
    line.trim().strip_prefix(&prefix).map(str::to_owned).with_context(|| format!("{server} did not start: {line:?}"))
}

fn wait_for_port(port: u16, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() >= deadline {
            bail!("the coordinator is not listening on port {port} after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn spawn_coordinator(args: &[String], log: Option<&Path>) -> anyhow::Result<Child> {
    let exe = std::env::current_exe()?;
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(path)?),
        None => Stdio::null(),
    };
    Command::new(exe)
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .context("starting checkout coordinator")
}

/// What the processes are told.
pub struct ProcessSetup<'a> {
    pub data_dir: &'a Path,
    pub wallet_seed: &'a str,
    pub options: SimOptions,
    pub speed: f64,
    pub log: Option<&'a Path>,
}

/// Starts `checkout provider-sim` and `checkout coordinator` (on a free port, kept across restarts).
pub fn processes(setup: &ProcessSetup<'_>) -> anyhow::Result<Started> {
    let exe = std::env::current_exe()?;
    let mut sim_command = Command::new(&exe);
    sim_command
        .args(["provider-sim", "--listen", "127.0.0.1:0", "--wallet-seed", setup.wallet_seed])
        .args(["--customer-delay-ms", &setup.options.customer_delay.as_millis().to_string()]);
    if let Some(above) = setup.options.password_above {
        sim_command.args(["--password-above-fen", &above.to_string()]);
    }
    if let Some(from) = setup.options.low_balance_from {
        sim_command.args(["--low-balance-wallets-from", &from.to_string()]);
        sim_command.args(["--low-balance-fen", &setup.options.low_balance.to_string()]);
    }
    let mut sim = sim_command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().context("starting provider-sim")?;
    let sim_address = listening_address(&mut sim, "provider-sim")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let coordinator_args: Vec<String> = [
        "coordinator",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data",
        &setup.data_dir.display().to_string(),
        "--provider-sim",
        &format!("http://{sim_address}"),
        "--accelerate",
        &setup.speed.to_string(),
        "--grace-secs",
        "5",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let coordinator = spawn_coordinator(&coordinator_args, setup.log)?;
    wait_for_port(port, START_WITHIN)?;
    let manager_token = manager_token_in(setup.data_dir)?;
    let backend = Backend::Processes(Processes { sim, sim_address, coordinator, coordinator_args, port });
    Ok(Started { backend, url: format!("http://127.0.0.1:{port}"), manager_token })
}

/// A coordinator already running at `url`, with a manager's token in `token_file`.
pub fn external(url: &str, sim_address: &str, token_file: &Path) -> anyhow::Result<Started> {
    let manager_token = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading the manager token in {}", token_file.display()))?
        .trim()
        .to_owned();
    // The books must be readable before anything is charged: the verdict needs them.
    sim_http(sim_address, "GET", "/sim/faults", "").context("provider-sim's administration API")?;
    let backend = Backend::External(External { sim_address: sim_address.to_owned() });
    Ok(Started { backend, url: url.to_owned(), manager_token })
}

/// GET or POST on the simulator's administration API; the JSON answer.
fn sim_http(address: &str, method: &str, path: &str, body: &str) -> anyhow::Result<serde_json::Value> {
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, json) = response.split_once("\r\n\r\n").context("provider-sim sent no HTTP answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("provider-sim answered {path} with {}", head.lines().next().unwrap_or_default());
    }
    serde_json::from_str(json).with_context(|| format!("provider-sim's answer to {path}"))
}

impl Backend {
    /// Sets what goes wrong at the provider from now on.
    pub fn set_faults(&self, faults: &Faults) -> anyhow::Result<()> {
        match self {
            Backend::Embedded(embedded) => embedded.provider.set_faults(faults.clone()),
            Backend::Processes(Processes { sim_address, .. }) | Backend::External(External { sim_address }) => {
                sim_http(sim_address, "POST", "/sim/faults", &serde_json::to_string(faults)?)?;
            }
        }
        Ok(())
    }

    /// Every order in the provider's books.
    pub fn books(&self) -> anyhow::Result<Vec<BookOrder>> {
        match self {
            Backend::Embedded(embedded) => Ok(embedded
                .provider
                .orders()
                .into_iter()
                .map(|o| BookOrder {
                    out_trade_no: o.out_trade_no.to_string(),
                    state: format!("{:?}", o.state),
                    amount: o.amount.minor_units,
                })
                .collect()),
            Backend::Processes(Processes { sim_address, .. }) | Backend::External(External { sim_address }) => {
                let books = sim_http(sim_address, "GET", "/sim/books", "")?;
                let orders = books["orders"].as_array().context("/sim/books without orders")?;
                orders
                    .iter()
                    .map(|o| {
                        Ok(BookOrder {
                            out_trade_no: o["out_trade_no"].as_str().context("out_trade_no")?.to_owned(),
                            state: o["state"].as_str().context("state")?.to_owned(),
                            amount: o["amount"]["minor_units"].as_i64().context("amount")?,
                        })
                    })
                    .collect()
            }
        }
    }

    /// Kills the coordinator with SIGKILL and starts it again on the same folder and port; returns how long
    /// it was away.
    pub fn restart_coordinator(&mut self, log: Option<&Path>) -> anyhow::Result<Duration> {
        let Backend::Processes(p) = self else { bail!("restarts need --processes") };
        let killed = Instant::now();
        p.coordinator.kill().context("SIGKILL to the coordinator")?;
        p.coordinator.wait()?;
        p.coordinator = spawn_coordinator(&p.coordinator_args, log)?;
        wait_for_port(p.port, START_WITHIN)?;
        Ok(killed.elapsed())
    }

    /// Stops the coordinator (draining) and the provider.
    pub async fn stop(self) -> anyhow::Result<()> {
        match self {
            Backend::Embedded(mut embedded) => {
                if let Some(stop) = embedded.stop.take() {
                    let _ = stop.send(());
                }
                if let Some(server) = embedded.server.take() {
                    server.await.context("the coordinator task")??;
                }
            }
            Backend::Processes(mut p) => {
                let _ = Command::new("kill").args(["-TERM", &p.coordinator.id().to_string()]).status();
                let deadline = Instant::now() + Duration::from_secs(15);
                while p.coordinator.try_wait()?.is_none() && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let _ = p.coordinator.kill();
                let _ = p.coordinator.wait();
                let _ = p.sim.kill();
                let _ = p.sim.wait();
            }
            // Someone else's coordinator keeps running; its faults are cleared.
            Backend::External(external) => {
                let clear = serde_json::to_string(&Faults::default())?;
                sim_http(&external.sim_address, "POST", "/sim/faults", &clear)?;
            }
        }
        Ok(())
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        let _ = self.coordinator.kill();
        let _ = self.coordinator.wait();
        let _ = self.sim.kill();
        let _ = self.sim.wait();
    }
}
