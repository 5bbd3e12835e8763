//! The `checkout` command: parses the command line and hands over to the coordinator, a lane, the demo or the decoder.

mod bench;
mod bench_coordinator;
mod bench_idle_lanes;
mod bench_payments;
mod bench_reconcile;
mod bench_startup;
mod cli;
mod decode;
mod demo;
mod process_memory;
mod reconcile;
mod rush;

use std::{collections::HashMap, sync::Arc};

use anyhow::Context;
use checkout_coordinator::{CoordinatorConfig, PaymentProvider, sim::SimulatedProvider};
use checkout_lanes::{FrameSource, LaneConfig, SyntheticConfig};
use checkout_storage::{Currency, LaneId, Provider, StoreId};
use clap::Parser;

use crate::cli::{Cli, Command, CoordinatorArgs, LaneArgs};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Coordinator(args) => {
            init_tracing("info");
            run_coordinator(*args)
        }
        Command::Lane(args) => {
            init_tracing("info");
            run_lane(args)
        }
        Command::Demo(args) => {
            init_tracing("warn");
            demo::run(args)
        }
        Command::Decode(args) => {
            init_tracing("warn");
            decode::run(args)
        }
        Command::Bench(bench) => {
            init_tracing("warn");
            match bench {
                cli::BenchCommand::Engine(args) => bench_payments::engine(args),
                cli::BenchCommand::Ledger(args) if args.startup || args.open_once.is_some() => bench_startup::run(args),
                cli::BenchCommand::Ledger(args) => bench_payments::ledger(args),
                cli::BenchCommand::Coordinator(args) => bench_coordinator::coordinator(args),
                cli::BenchCommand::Decode(args) => bench::run(args),
                cli::BenchCommand::Photos(args) => bench::photos::run(args),
                cli::BenchCommand::Reconcile(args) => bench_reconcile::reconcile(args),
            }
        }
        Command::ProviderSim(args) => {
            init_tracing("info");
            run_provider_sim(args)
        }
        Command::Reconcile(args) => {
            init_tracing("warn");
            reconcile::run(args)
        }
        Command::Token(args) => make_token(&args),
        // Its logs go to --log, never over the live display.
        Command::Rush(args) => rush::run(*args),
    }
}

/// `checkout token`: a new token and what the configuration file needs of it.
fn make_token(args: &cli::TokenArgs) -> anyhow::Result<()> {
    use checkout_coordinator::auth::{TokenKind, hash_hex, hash_token, new_token};
    let kind = match args.kind.as_str() {
        "lane" => TokenKind::Lane,
        "enrolment" => TokenKind::Enrolment,
        _ => TokenKind::Staff,
    };
    let token = new_token(kind).context("reading the system's random source")?;
    let hash = hash_hex(&hash_token(&token));
    println!("{token}");
    eprintln!("Keep the token (the line above) secret; give the coordinator only its hash:");
    match kind {
        TokenKind::Staff => {
            eprintln!("[[staff]]\nname = {:?}\nrole = {:?}\ntoken_sha256 = \"{hash}\"", args.name, args.role)
        }
        TokenKind::Lane => eprintln!(
            "[[lanes.tokens]]\nlane_id = {:?}\ntoken_sha256 = \"{hash}\"",
            args.lane_id.as_deref().unwrap_or("L1")
        ),
        TokenKind::Enrolment => eprintln!("[lanes]\nenrolment_secret_sha256 = [\"{hash}\"]"),
    }
    Ok(())
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// The simulated provider serving all three wallets.
pub fn simulated_providers(provider: Arc<SimulatedProvider>) -> HashMap<Provider, Arc<dyn PaymentProvider>> {
    Provider::ALL.into_iter().map(|p| (p, provider.clone() as Arc<dyn PaymentProvider>)).collect()
}

/// The coordinator's security settings: the --config file, with the TLS files of the command line.
fn coordinator_security(args: &CoordinatorArgs) -> anyhow::Result<checkout_coordinator::config::Security> {
    use checkout_coordinator::{
        config::{Security, read_pem},
        listener::TlsFiles,
    };
    let mut security = match &args.config {
        Some(path) => Security::load(path)?,
        None => Security::default(),
    };
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        security.tls = Some(TlsFiles {
            certificate_chain_pem: read_pem(cert)?,
            private_key_pem: read_pem(key)?,
            client_ca_pem: args.client_ca.as_deref().map(read_pem).transpose()?,
        });
    }
    Ok(security)
}

fn run_coordinator(args: CoordinatorArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let timing = checkout_coordinator::EngineTiming {
            query_deadline: std::time::Duration::from_secs(args.query_deadline_secs),
            resolve_every: std::time::Duration::from_millis(args.resolve_every_ms.max(10)),
            coupon_hold: std::time::Duration::from_secs(args.coupon_hold_secs),
            ..checkout_coordinator::EngineTiming::default()
        }
        .accelerated(args.accelerate);
        let config = CoordinatorConfig {
            store_id: StoreId::parse(&args.store_id)?,
            currency: Currency::parse(&args.currency)?,
            data_dir: args.data.clone(),
            providers: coordinator_providers(&args).await?,
            shutdown_grace: std::time::Duration::from_secs(args.grace_secs),
            timing,
            security: coordinator_security(&args)?,
        };
        let tls = config.security.tls.is_some();
        // The folder is locked before anything in it is read or written; a second coordinator stops here.
        let opened = checkout_coordinator::open(config)?;
        if let Some(generated) = &opened.generated {
            eprintln!(
                "credentials (0600, never logged): manager token in {}; lane enrolment secret in {}",
                generated.manager_token.display(),
                generated.lane_enrolment_secret.display()
            );
        }
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        // The one line on stdout: scripts (and tests) that listen on port 0 read the address here.
        let scheme = if tls { "https" } else { "http" };
        println!("coordinator listening on {}", listener.local_addr()?);
        tracing::info!("lanes reach this coordinator at {scheme}://{}", listener.local_addr()?);
        checkout_coordinator::serve(listener, opened, cli::shutdown_signal()).await?;
        Ok(())
    })
}

/// Who charges each provider's codes: adapters over HTTP where configured, else the in-process simulator.
async fn coordinator_providers(args: &CoordinatorArgs) -> anyhow::Result<HashMap<Provider, Arc<dyn PaymentProvider>>> {
    use checkout_coordinator::providers::{
        alipay::{AlipayAdapter, AlipayConfig},
        wechat::{WeChatConfig, WeChatPayV2},
    };
    if let Some(url) = &args.provider_sim {
        let base = url.trim_end_matches('/');
        // The simulator made its keys at start: the adapters take theirs from it.
        let (wechat, alipay) = checkout_coordinator::sim::adapters_for(base)
            .await
            .map_err(|e| anyhow::anyhow!("cannot configure the adapters for provider-sim: {e}"))?;
        let wechat: Arc<dyn PaymentProvider> = Arc::new(WeChatPayV2::new(wechat)?);
        let alipay: Arc<dyn PaymentProvider> = Arc::new(AlipayAdapter::new(alipay)?);
        tracing::info!(%base, "charging through provider-sim over HTTP");
        // provider-sim speaks WeChat Pay and Alipay; UnionPay codes are refused as not accepted here.
        return Ok(HashMap::from([(Provider::WeChatPay, wechat), (Provider::Alipay, alipay)]));
    }
    if args.wechat_url.is_none() && args.alipay_gateway.is_none() {
        let simulated = Arc::new(SimulatedProvider::new(args.wallet_seed.as_bytes(), args.starting_balance_fen));
        return Ok(simulated_providers(simulated));
    }
    let mut providers: HashMap<Provider, Arc<dyn PaymentProvider>> = HashMap::new();
    if let (Some(url), Some(appid), Some(mch_id), Some(key)) =
        (&args.wechat_url, &args.wechat_appid, &args.wechat_mch_id, &args.wechat_key)
    {
        let config = WeChatConfig {
            extra_root_ca_pem: read_pem(args.provider_ca.as_deref())?,
            client_cert_pem: read_pem(args.wechat_client_cert.as_deref())?,
            client_key_pem: read_pem(args.wechat_client_key.as_deref())?,
            ..WeChatConfig::new(url, appid, mch_id, key)
        };
        providers.insert(Provider::WeChatPay, Arc::new(WeChatPayV2::new(config)?));
    }
    if let (Some(gateway), Some(app_id), Some(private), Some(public)) =
        (&args.alipay_gateway, &args.alipay_app_id, &args.alipay_private_key, &args.alipay_public_key)
    {
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
        };
        let config = AlipayConfig {
            extra_root_ca_pem: read_pem(args.provider_ca.as_deref())?,
            ..AlipayConfig::new(gateway, app_id, &read(private)?, &read(public)?)
        };
        providers.insert(Provider::Alipay, Arc::new(AlipayAdapter::new(config)?));
    }
    Ok(providers)
}

/// The text of an optional PEM file (`--provider-ca`, `--wechat-client-cert`, `--wechat-client-key`).
fn read_pem(path: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    path.map(|path| std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display())))
        .transpose()
}

fn run_lane(args: LaneArgs) -> anyhow::Result<()> {
    let lane_id = LaneId::parse(&args.id)?;
    let source = if args.synthetic {
        FrameSource::Synthetic(SyntheticConfig {
            seed: args.seed,
            customers: args.customers,
            wallet_seed: args.wallet_seed.as_bytes().to_vec(),
            wallets: args.wallets.clone(),
            members: args.members,
            coupons: match &args.coupons {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the coupons in {}", path.display()))?
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
                None => Vec::new(),
            },
            ..SyntheticConfig::default()
        })
    } else {
        FrameSource::Paths(args.frames.clone())
    };
    let mut config = LaneConfig::new(lane_id, args.coordinator.clone(), source);
    config.credentials = lane_credentials(&args)?;
    if args.ca.is_some() || args.cert.is_some() {
        let read = |path: &Option<std::path::PathBuf>| -> anyhow::Result<Option<String>> {
            path.as_ref()
                .map(|p| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display())))
                .transpose()
        };
        config.tls = Some(checkout_lanes::ClientTls {
            ca_pem: read(&args.ca)?,
            certificate_pem: read(&args.cert)?,
            key_pem: read(&args.key)?,
        });
    }
    config.frames_per_second = args.fps.or(if args.synthetic { Some(30.0) } else { None });
    config.data_dir = Some(args.data.clone().unwrap_or_else(|| format!("checkout-lane-{}", args.id).into()));
    if let Some(cashier) = &args.cashier {
        config.cashier = checkout_storage::CashierId::parse(cashier).context("--cashier")?;
    }
    if let Some(address) = &args.screen {
        config.screen = Some(lane_screen(&args, address, config.data_dir.as_deref())?);
    }
    let system = actix_rt::System::new();
    let summary = system.block_on(checkout_lanes::run_lane(config, None, cli::shutdown_signal()))?;
    println!(
        "lane {}: {} sales, {} items, {} paid; {} frames ({} skipped), {} codes read, {} unrecognised, {} declined; \
         frame to scan event: median {:.1} ms, p99 {:.1} ms",
        summary.lane_id,
        summary.sales,
        summary.items,
        summary.paid_total,
        summary.frames,
        summary.frames_skipped,
        summary.codes_read,
        summary.unrecognised,
        summary.declined,
        summary.scan_latency_median.as_secs_f64() * 1e3,
        summary.scan_latency_p99.as_secs_f64() * 1e3,
    );
    Ok(())
}

/// The lane's screens on `address`, with the screen key its data folder keeps (made the first time), so a
/// cashier's bookmarked page keeps working after a restart.
fn lane_screen(
    args: &LaneArgs,
    address: &str,
    data_dir: Option<&std::path::Path>,
) -> anyhow::Result<checkout_lanes::screen::ScreenConfig> {
    use checkout_lanes::screen::{Lang, ScreenConfig, ScreenListener};
    let listener = ScreenListener::bind(address).with_context(|| format!("--screen {address}"))?;
    let mut screen = ScreenConfig::new(listener)?;
    if let Some(dir) = data_dir {
        screen.key = kept_screen_key(dir, screen.key)?;
    }
    screen.lang = Lang::parse(&args.lang).unwrap_or_default();
    screen.confirm_above = args.confirm_above_fen;
    screen.open_price_cap = args.open_price_cap_fen;
    if screen.listener.local_addr().is_some_and(|a| !a.ip().is_loopback()) {
        eprintln!(
            "warning: the lane's screens are open to the network on {address}: the customer display needs no key"
        );
    }
    if let (Some(cashier), Some(customer)) = (screen.cashier_url(), screen.customer_url()) {
        println!("cashier screen: {cashier}\ncustomer display: {customer}");
    }
    Ok(screen)
}

/// The screen key kept in the lane's data folder, or `fresh` written there (readable by its owner only).
fn kept_screen_key(
    dir: &std::path::Path,
    fresh: checkout_lanes::screen::ScreenKey,
) -> anyhow::Result<checkout_lanes::screen::ScreenKey> {
    let path = dir.join("screen.key");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Some(key) = checkout_lanes::screen::ScreenKey::parse(text.trim())
    {
        return Ok(key);
    }
    // The folder is the lane's data folder: made (or checked) as the lane makes it, before a file goes in.
    drop(
        checkout_storage::LaneStore::open(dir)
            .with_context(|| format!("opening the lane's data folder {}", dir.display()))?,
    );
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, fresh.expose().as_bytes())?;
    file.sync_all()?;
    Ok(fresh)
}

/// Where the lane's credentials come from: --token-file, and the enrolment secret of --enrolment-secret or,
/// without it, of a coordinator on this machine with the default data folder.
fn lane_credentials(args: &LaneArgs) -> anyhow::Result<checkout_lanes::LaneCredentials> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .map(|t| t.trim().to_owned())
            .with_context(|| format!("cannot read {}", path.display()))
    };
    let token = args.token_file.as_deref().map(read).transpose()?;
    let default_secret = std::path::Path::new("store-data")
        .join(checkout_storage::CREDENTIALS_DIR)
        .join(checkout_coordinator::auth::ENROLMENT_SECRET_FILE);
    let enrolment_secret = match &args.enrolment_secret {
        Some(path) => Some(read(path)?),
        None => read(&default_secret).ok(),
    };
    Ok(checkout_lanes::LaneCredentials { token, enrolment_secret })
}

fn run_provider_sim(args: cli::ProviderSimArgs) -> anyhow::Result<()> {
    use checkout_coordinator::sim::{Faults, ProviderSim, ProviderSimConfig, SimOptions};
    let read = |path: &Option<std::path::PathBuf>| -> anyhow::Result<Option<String>> {
        path.as_ref()
            .map(|p| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display())))
            .transpose()
    };
    let mut config = ProviderSimConfig::new(args.wallet_seed.as_bytes(), args.starting_balance_fen)?;
    config.options = SimOptions {
        password_above: args.password_above_fen,
        customer_delay: std::time::Duration::from_millis(args.customer_delay_ms),
        low_balance_from: args.low_balance_wallets_from,
        low_balance: args.low_balance_fen,
        ..SimOptions::default()
    };
    config.faults = Faults {
        latency_min_ms: args.latency_min_ms,
        latency_max_ms: args.latency_max_ms,
        latency_tail_rate: args.latency_tail_rate,
        latency_tail_ms: args.latency_tail_ms,
        error_rate: args.error_rate,
        http_202_rate: args.http_202_rate,
        drop_after_charge_rate: args.drop_after_charge_rate,
        corrupt_sign_rate: args.corrupt_sign_rate,
        reverse_retry_rate: args.reverse_retry_rate,
        outage: args.outage,
    };
    config.fault_seed = args.fault_seed;
    config.wechat.appid = args.wechat_appid.clone();
    config.wechat.mch_id = args.wechat_mch_id.clone();
    config.wechat.key = args.wechat_key.clone();
    config.alipay.app_id = args.alipay_app_id.clone();
    if let Some(key) = read(&args.alipay_private_key)? {
        config.alipay.alipay_private_key = key;
        config.keys = None;
    }
    if let Some(key) = read(&args.app_public_key)? {
        config.alipay.app_public_key = key;
        config.keys = None;
    }
    let sim = Arc::new(ProviderSim::new(config)?);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        // The one line on stdout: scripts (and tests) that listen on port 0 read the address here.
        println!("provider-sim listening on {}", listener.local_addr()?);
        checkout_coordinator::sim::serve(listener, sim, cli::shutdown_signal()).await?;
        Ok(())
    })
}
