//! Command-line arguments of `checkout`, and the shutdown signal every long-running command waits on.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "checkout", version, about = "Supermarket checkout lanes and their store coordinator")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the store coordinator (gRPC: LaneService, StoreService, reflection, health).
    Coordinator(Box<CoordinatorArgs>),
    /// Run one checkout lane against a coordinator.
    Lane(LaneArgs),
    /// Run a coordinator and four synthetic lanes in one process, then print the day's summary.
    Demo(DemoArgs),
    /// Decode image files and print one JSON object per file.
    Decode(DecodeArgs),
    /// Measure a part of the system.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// A test tool, not a provider: serve a simulated WeChat Pay v2 and Alipay OpenAPI provider over HTTP
    /// (real books, fault injection), on loopback unless told otherwise.
    ProviderSim(ProviderSimArgs),
    /// Reconcile a business day against the providers' bills on a running coordinator and export every
    /// difference as CSV (a manager's token).
    Reconcile(ReconcileArgs),
    /// Make a new random token and print it with its SHA-256, for the coordinator's --config file.
    Token(TokenArgs),
    /// Run a store's busy period: real lanes with hand-held scanners serving a line of customers, a coordinator,
    /// the simulated provider and a fault plan; live progress, then a report, a plot and the verdict.
    Rush(Box<RushArgs>),
}

#[derive(Args, Clone)]
pub struct RushArgs {
    /// Lanes open.
    #[arg(long, default_value_t = 40)]
    pub lanes: u32,
    /// Simulated length of the period: `1h`, `20m`, `90s`.
    #[arg(long, default_value = "1h", value_parser = simulated_duration)]
    pub duration: std::time::Duration,
    /// Simulated seconds per second of wall time (60 runs an hour in a minute).
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
    /// Seed of the customers, their baskets and wallets, and the provider's fault dice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Scanners send the codes as text instead of frames through the decoder.
    #[arg(long)]
    pub no_vision: bool,
    /// Run `checkout provider-sim` and `checkout coordinator` as processes of their own (needed for
    /// --restarts: the coordinator is killed with SIGKILL and started again on the same folder and port).
    /// Their wallets are WeChat Pay and Alipay (the simulator's HTTP APIs).
    #[arg(long)]
    pub processes: bool,
    /// The coordinator's data folder (default: a temporary one, removed at the end).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Run against a coordinator already running (`http://HOST:PORT`) instead of starting one; needs
    /// --provider-sim (the provider it charges through: its faults are set and its books read from there) and
    /// --manager-token-file. Its lanes are R1, R2, ... (tokens issued for the run).
    #[arg(long, conflicts_with_all = ["processes", "data"], requires_all = ["provider_sim", "manager_token_file"])]
    pub coordinator: Option<String>,
    /// With --coordinator: the `checkout provider-sim` it charges through (`HOST:PORT`). For the rush's short
    /// balances and password steps start it with `--low-balance-wallets-from 9900` and `--password-above-fen`.
    #[arg(long)]
    pub provider_sim: Option<String>,
    /// With --coordinator: a file holding a manager's token.
    #[arg(long)]
    pub manager_token_file: Option<PathBuf>,
    /// The seed the provider's wallets are keyed from (with --coordinator: as provider-sim was told).
    #[arg(long, default_value = "rush")]
    pub wallet_seed: String,
    /// The provider's latency, simulated milliseconds: `MIN-MAX` uniform.
    #[arg(long, default_value = "300-1500")]
    pub provider_latency_ms: String,
    /// Share of provider calls that wait --provider-tail-ms more (the long tail).
    #[arg(long, default_value_t = 0.03, value_parser = rate)]
    pub provider_tail_rate: f64,
    #[arg(long, default_value_t = 6_000)]
    pub provider_tail_ms: u64,
    /// Share of provider calls answered SYSTEMERROR / 20000 (outcome unknown: the store queries).
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub provider_errors: f64,
    /// Share of charges made whose answer is cut off (the customer is charged, the store does not hear).
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub dropped_answers: f64,
    /// A provider outage: `START+LENGTH` in simulated time, for example `20m+5m`.
    #[arg(long, value_parser = outage_window)]
    pub outage: Option<(std::time::Duration, std::time::Duration)>,
    /// Kill the coordinator with SIGKILL this many times, evenly over the period, and start it again
    /// (needs --processes).
    #[arg(long, default_value_t = 0)]
    pub restarts: u32,
    /// Share of customers who need their password (the store's password threshold is set so).
    #[arg(long, default_value_t = 0.15, value_parser = rate)]
    pub password_share: f64,
    /// How long a customer takes to type the password, simulated seconds.
    #[arg(long, default_value_t = 12.0)]
    pub password_secs: f64,
    /// Write the lanes' and the coordinator's logs (tracing) to this file; without it they are off.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Write the report as JSON.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Draw throughput, latency and the offline queue over simulated time as SVG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// `1h`, `20m`, `90s`, `1h30m`.
pub fn simulated_duration(text: &str) -> Result<std::time::Duration, String> {
    let mut seconds = 0u64;
    let mut number = String::new();
    for c in text.trim().chars() {
        match c {
            '0'..='9' => number.push(c),
            'h' | 'm' | 's' => {
                let n: u64 = number.parse().map_err(|_| format!("{text:?}: a number before each of h, m, s"))?;
                seconds += n * match c {
                    'h' => 3600,
                    'm' => 60,
                    _ => 1,
                };
                number.clear();
            }
            _ => return Err(format!("{text:?}: write it like 1h, 20m, 90s or 1h30m")),
        }
    }
    if !number.is_empty() || seconds == 0 || seconds > 24 * 3600 {
        return Err(format!("{text:?}: write it like 1h, 20m, 90s or 1h30m (at most 24h)"));
    }
    Ok(std::time::Duration::from_secs(seconds))
}

/// `20m+5m`: an outage's start and length.
fn outage_window(text: &str) -> Result<(std::time::Duration, std::time::Duration), String> {
    let (start, length) = text.split_once('+').ok_or_else(|| format!("{text:?}: write START+LENGTH, like 20m+5m"))?;
    let start = if start.trim() == "0" { std::time::Duration::ZERO } else { simulated_duration(start)? };
    Ok((start, simulated_duration(length)?))
}

#[derive(Args)]
pub struct TokenArgs {
    /// What the token is for: staff (a manager or a viewer), lane, or enrolment (a lane enrolment secret).
    #[arg(long, default_value = "staff", value_parser = ["staff", "lane", "enrolment"])]
    pub kind: String,
    /// For staff: the name the audit log shows.
    #[arg(long, default_value = "staff")]
    pub name: String,
    /// For staff: manager or viewer.
    #[arg(long, default_value = "manager", value_parser = ["manager", "viewer"])]
    pub role: String,
    /// For a lane: its id.
    #[arg(long)]
    pub lane_id: Option<String>,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Charges per second through the payment engine against the in-process provider, and the engine's added latency.
    Engine(EngineBenchArgs),
    /// Durable ledger writes per second and commit latency with group commit.
    Ledger(LedgerBenchArgs),
    /// Charges per second through a real coordinator over gRPC: credentials checked or not, plaintext and TLS.
    Coordinator(CoordinatorBenchArgs),
    /// Decode a seeded set of distorted synthetic frames; compare with zxing-cpp on the same frames.
    Decode(BenchDecodeArgs),
    /// Decode real photos from folders with manifests (`../shared/corpus/*`); compare with zxing-cpp, per category.
    Photos(BenchPhotosArgs),
    /// Read a generated day's WeChat Pay and Alipay bills and match them against the ledger: time, memory, differences.
    Reconcile(ReconcileBenchArgs),
}

#[derive(Args)]
pub struct ReconcileBenchArgs {
    /// Payments in the day (at most 3000000); one in 50 is refunded, one in 200 reversed, a few carry differences.
    #[arg(long, default_value_t = 1_000_000)]
    pub payments: u64,
    /// Also write the day's WeChat Pay charges and refunds into a ledger (a temporary sled folder) and time
    /// the reconciliation as the coordinator makes it: the day's lines read from the ledger, the bill read,
    /// matched.
    #[arg(long)]
    pub through_ledger: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct EngineBenchArgs {
    /// Charges to make (at most 30000).
    #[arg(long, default_value_t = 5_000)]
    pub charges: u64,
    /// Lanes charging at once.
    #[arg(long, default_value_t = 40)]
    pub lanes: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CoordinatorBenchArgs {
    /// Charges in each run (each setup runs once a round).
    #[arg(long, default_value_t = 4_000)]
    pub charges: u64,
    /// Lanes charging at once, a connection each (at most 100).
    #[arg(long, default_value_t = 40)]
    pub lanes: u64,
    /// Rounds; each setup is reported by its median round.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Compare Pay with lanes sending heartbeats, without and with this many managers watching
    /// `WatchLanes` (at most 250), instead of the credentials and TLS setups.
    #[arg(long)]
    pub watchers: Option<usize>,
    /// Instead: this many lanes registered on a `checkout coordinator` process, each sending a heartbeat
    /// every 5 s (with --watchers managers watching), and the coordinator's resident memory.
    #[arg(long)]
    pub idle_lanes: Option<usize>,
    /// How long the idle lanes send heartbeats.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct LedgerBenchArgs {
    #[arg(long, default_value_t = 20_000)]
    pub writes: u64,
    /// Writers committing at once.
    #[arg(long, default_value_t = 40)]
    pub writers: u64,
    /// Folder to put the temporary ledger in (default: the system's temporary folder). With --startup: where
    /// the built history is kept (`startup-<charges>-<months>/`), so that a rerun only times the opening.
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    /// Time the coordinator's start-up (`Store::open`, each run a fresh process) with a year of history
    /// instead: --charges over 360 days up to yesterday, the oldest --archived-months of them closed.
    #[arg(long)]
    pub startup: bool,
    /// With --startup: charges in the year, with their sales (most are paid) and refunds (1 in 200).
    #[arg(long, default_value_t = 4_000_000)]
    pub charges: u64,
    /// With --startup: months (of 30 days) closed and archived, oldest first; 0 to 12.
    #[arg(long, default_value_t = 11)]
    pub archived_months: u32,
    /// With --startup: timed openings.
    #[arg(long, default_value_t = 5)]
    pub runs: u32,
    /// Opens this folder once and prints the time and memory as JSON (what each --startup run does).
    #[arg(long, hide = true)]
    pub open_once: Option<PathBuf>,
}

#[derive(Args)]
pub struct CoordinatorArgs {
    /// Address to serve gRPC on.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: String,
    /// The sled data folder (created if missing, 0700). At first start the coordinator writes a manager token
    /// and a lane enrolment secret into its `credentials/` folder (0600).
    #[arg(long, default_value = "store-data")]
    pub data: PathBuf,
    /// Configuration file (TOML): staff tokens, lane enrolment, limits, TLS (see the README, "Security").
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// PEM certificate chain to serve TLS with (with --tls-key); lanes then use https:// and --ca.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA that signs the lanes' client certificates: every connection must then show one.
    #[arg(long, requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// The store's id as the providers know it: 1 to 6 letters or digits.
    #[arg(long, default_value = "S001")]
    pub store_id: String,
    #[arg(long, default_value = "CNY")]
    pub currency: String,
    /// Seed the simulated provider keys its customers' wallets from (lanes with --synthetic must use the same).
    #[arg(long, default_value = "demo")]
    pub wallet_seed: String,
    /// What each simulated wallet holds at first, in fen.
    #[arg(long, default_value_t = 500_000)]
    pub starting_balance_fen: i64,
    /// Seconds in-flight requests may take to finish after SIGINT/SIGTERM.
    #[arg(long, default_value_t = 30)]
    pub grace_secs: u64,
    /// Charge through a `checkout provider-sim` at this URL (the WeChat Pay v2 adapter for WeChat
    /// codes, the Alipay adapter for Alipay codes) instead of the in-process simulator.
    #[arg(long, conflicts_with_all = ["wechat_url", "alipay_gateway"])]
    pub provider_sim: Option<String>,
    /// WeChat Pay v2 API base URL: charge WeChat codes through the `wechat-v2` adapter.
    #[arg(long, requires_all = ["wechat_appid", "wechat_mch_id", "wechat_key"])]
    pub wechat_url: Option<String>,
    #[arg(long)]
    pub wechat_appid: Option<String>,
    #[arg(long)]
    pub wechat_mch_id: Option<String>,
    /// The WeChat Pay merchant API key.
    #[arg(long, env = "CHECKOUT_WECHAT_KEY", hide_env_values = true)]
    pub wechat_key: Option<String>,
    /// Alipay OpenAPI gateway URL: charge Alipay codes through the `alipay` adapter.
    #[arg(long, requires_all = ["alipay_app_id", "alipay_private_key", "alipay_public_key"])]
    pub alipay_gateway: Option<String>,
    #[arg(long)]
    pub alipay_app_id: Option<String>,
    /// PEM file of the app's private key (signs requests).
    #[arg(long)]
    pub alipay_private_key: Option<PathBuf>,
    /// PEM file of Alipay's public key (verifies answers).
    #[arg(long)]
    pub alipay_public_key: Option<PathBuf>,
    /// PEM file of the WeChat Pay merchant API certificate (`apiclient_cert.pem`), presented for TLS client
    /// authentication on every call; WeChat Pay requires it for reversals and refunds (`secapi`).
    #[arg(long, requires_all = ["wechat_url", "wechat_client_key"])]
    pub wechat_client_cert: Option<PathBuf>,
    /// PEM file of that certificate's private key (`apiclient_key.pem`).
    #[arg(long, requires = "wechat_client_cert")]
    pub wechat_client_key: Option<PathBuf>,
    /// PEM file of a CA both adapters trust for https:// besides the public web roots (a private gateway or proxy).
    #[arg(long, conflicts_with = "provider_sim")]
    pub provider_ca: Option<PathBuf>,
    /// Seconds an unknown charge is queried before it is reversed.
    #[arg(long, default_value_t = 45)]
    pub query_deadline_secs: u64,
    /// Milliseconds between the resolver's passes over unsettled charges.
    #[arg(long, default_value_t = 10_000)]
    pub resolve_every_ms: u64,
    /// Seconds a coupon may stay held by a sale with no charge paid or under way before it is let go.
    #[arg(long, default_value_t = 1_800)]
    pub coupon_hold_secs: u64,
    /// For load tests that run simulated time faster (`checkout rush --processes`): every engine pause and
    /// deadline (those two included) this many times shorter.
    #[arg(long, default_value_t = 1.0)]
    pub accelerate: f64,
}

#[derive(Args)]
pub struct LaneArgs {
    /// Lane id: 1 to 6 letters or digits.
    #[arg(long)]
    pub id: String,
    /// The coordinator's URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub coordinator: String,
    /// Image files or folders of frames, read in name order.
    #[arg(long, num_args = 1.., required_unless_present = "synthetic", conflicts_with = "synthetic")]
    pub frames: Vec<PathBuf>,
    /// Use the synthetic camera: rendered customers paying with simulated wallets.
    #[arg(long)]
    pub synthetic: bool,
    /// Synthetic customers to serve (default: until stopped).
    #[arg(long)]
    pub customers: Option<u32>,
    /// Seed of the synthetic customers.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seed of the simulated wallets (must match the coordinator's).
    #[arg(long, default_value = "demo")]
    pub wallet_seed: String,
    /// Camera frames per second (synthetic default 30; image files default: as fast as they decode).
    #[arg(long)]
    pub fps: Option<f64>,
    /// Wallets the synthetic customers pay with: wechat, alipay, unionpay (default: all three).
    #[arg(long, value_delimiter = ',', value_parser = wallet)]
    pub wallets: Vec<checkout_storage::Provider>,
    /// Synthetic customers may be the store's first N members (M00000001 on): two in five show their member
    /// code before their first item.
    #[arg(long, default_value_t = 0)]
    pub members: u32,
    /// A file of coupon codes (one a line, from StoreService/IssueCoupon): one synthetic customer in five shows
    /// one after their items.
    #[arg(long)]
    pub coupons: Option<PathBuf>,
    /// The lane's own data folder, where paid sales wait while the store is unreachable
    /// [default: ./checkout-lane-ID].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The cashier signing on (1 to 20 letters, digits or dashes); their shift opens when the lane
    /// starts and closes when it stops [default: cashier-ID].
    #[arg(long)]
    pub cashier: Option<String>,
    /// File holding a lane token a manager issued for this lane (StoreService/IssueLaneToken); it is then
    /// kept in the lane's data folder.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// File holding the store's lane enrolment secret, used once to enrol a lane that has no token
    /// [default: store-data/credentials/lane-enrolment.secret, where a coordinator on this machine keeps it].
    #[arg(long)]
    pub enrolment_secret: Option<PathBuf>,
    /// PEM CA that signed the coordinator's certificate (for an https:// coordinator).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// PEM certificate of this lane, when the coordinator asks lanes for one (with --key).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Serve the cashier's screen (/cashier) and the customer display (/customer) on this address. Keep it on
    /// loopback unless the screens are on another machine: the cashier's page needs the lane's screen key
    /// (kept in the data folder, printed at start), the customer display needs none.
    #[arg(long, num_args = 0..=1, default_missing_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub screen: Option<String>,
    /// Language of the screens' labels: zh or en.
    #[arg(long, default_value = "zh", value_parser = ["zh", "en"])]
    pub lang: String,
    /// Charges above this amount (in fen) wait for the cashier to confirm the amount on the screen.
    #[arg(long, value_name = "FEN")]
    pub confirm_above_fen: Option<i64>,
    /// The most an open-price item may be typed at on the screen, in fen (the store has its own cap).
    #[arg(long, default_value_t = checkout_lanes::OPEN_PRICE_CAP_DEFAULT, value_name = "FEN")]
    pub open_price_cap_fen: i64,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Keep the ledger in this folder instead of a temporary one.
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long, default_value_t = 4)]
    pub lanes: u32,
    /// Customers per lane.
    #[arg(long, default_value_t = 5)]
    pub customers: u32,
    /// Seed of the synthetic customers.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Serve each lane's cashier screen and customer display (on ports it prints), at a pace to watch them by.
    #[arg(long)]
    pub screens: bool,
}

#[derive(Args)]
pub struct DecodeArgs {
    /// Image files (PNG, JPEG).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Largest image accepted, in pixels, checked against its header before any pixel is decoded (a larger
    /// one gets an error line). The default takes a 48 or 50 Mpx phone photo.
    #[arg(long, default_value_t = checkout_lanes::vision::PHOTO_PIXEL_LIMIT)]
    pub max_pixels: u64,
    /// Print every code read in a file (one JSON line each: a shelf photo, a sheet of labels), not only the first.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args)]
pub struct ProviderSimArgs {
    /// Address to serve HTTP on (WeChat Pay paths, Alipay `/gateway.do`, `/sim/...` administration). A test tool:
    /// its administration API is unauthenticated, so keep it on loopback.
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub listen: String,
    /// Seed the simulated wallets are keyed from (lanes with --synthetic must use the same).
    #[arg(long, default_value = "demo")]
    pub wallet_seed: String,
    /// What each simulated wallet holds at first, in fen.
    #[arg(long, default_value_t = 500_000)]
    pub starting_balance_fen: i64,
    /// Charges above this many fen need the customer's password (USERPAYING / 10003 first).
    #[arg(long)]
    pub password_above_fen: Option<i64>,
    /// How long the customer takes to enter the password, in milliseconds.
    #[arg(long, default_value_t = 3_000)]
    pub customer_delay_ms: u64,
    /// Wallets numbered this or above (0 to 9999, of each provider) start with --low-balance-fen instead:
    /// customers whose balance runs short.
    #[arg(long)]
    pub low_balance_wallets_from: Option<u16>,
    #[arg(long, default_value_t = 500)]
    pub low_balance_fen: i64,
    /// Every call waits between --latency-min-ms and --latency-max-ms (uniform).
    #[arg(long, default_value_t = 0)]
    pub latency_min_ms: u64,
    #[arg(long, default_value_t = 0)]
    pub latency_max_ms: u64,
    /// With this probability a call waits --latency-tail-ms more.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub latency_tail_rate: f64,
    #[arg(long, default_value_t = 0)]
    pub latency_tail_ms: u64,
    /// Probability of answering SYSTEMERROR / 20000 without touching the books.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub error_rate: f64,
    /// Probability of answering HTTP 202 with no body.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub http_202_rate: f64,
    /// Probability of cutting the answer off after the operation was booked.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub drop_after_charge_rate: f64,
    /// Probability of answering with a corrupted signature.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub corrupt_sign_rate: f64,
    /// Probability of answering reverse / cancel with recall=Y / retry_flag=Y.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub reverse_retry_rate: f64,
    /// Start in a full outage (every API call answers HTTP 503); change at run time with POST /sim/faults.
    #[arg(long)]
    pub outage: bool,
    /// Seed of the fault dice, so a run's faults repeat.
    #[arg(long, default_value_t = 1)]
    pub fault_seed: u64,
    #[arg(long, default_value = "wxsim0000000000001")]
    pub wechat_appid: String,
    #[arg(long, default_value = "1900000001")]
    pub wechat_mch_id: String,
    /// The WeChat Pay merchant key both sides sign with.
    #[arg(
        long,
        env = "CHECKOUT_SIM_WECHAT_KEY",
        default_value = "checkout-provider-sim-wechat-key1",
        hide_env_values = true
    )]
    pub wechat_key: String,
    #[arg(long, default_value = "2021000000000001")]
    pub alipay_app_id: String,
    /// PEM file of the key the simulator signs Alipay answers with (default: the test-only key in coordinator/testdata).
    #[arg(long)]
    pub alipay_private_key: Option<PathBuf>,
    /// PEM file of the app's public key that requests are checked with (default: the test-only key).
    #[arg(long)]
    pub app_public_key: Option<PathBuf>,
}

/// A wallet by its short name.
fn wallet(text: &str) -> Result<checkout_storage::Provider, String> {
    match text.to_ascii_lowercase().as_str() {
        "wechat" => Ok(checkout_storage::Provider::WeChatPay),
        "alipay" => Ok(checkout_storage::Provider::Alipay),
        "unionpay" => Ok(checkout_storage::Provider::UnionPay),
        other => Err(format!("{other:?}: wechat, alipay or unionpay")),
    }
}

/// A probability from 0 to 1.
fn rate(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&value) { Ok(value) } else { Err(format!("{value} is not between 0 and 1")) }
}

#[derive(Args)]
pub struct BenchPhotosArgs {
    /// Folders of photos: each with a manifest.csv (QR or retail photos), or none (photos without a code).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Do not run zxing-cpp.
    #[arg(long)]
    pub no_peer: bool,
    /// The Python that has the `zxing-cpp` package.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Also run the pipeline with one step switched off (or on) at a time.
    #[arg(long)]
    pub ablate: bool,
    /// Name each photo we miss or read wrong on stderr.
    #[arg(long)]
    pub verbose: bool,
    /// Read each photo as a lane reads a camera frame (the lane's vision settings), not as `checkout decode` reads a photo.
    #[arg(long)]
    pub lane: bool,
    /// Print one JSON line a photo instead of the table: each reader's read, wrong and milliseconds.
    #[arg(long, conflicts_with = "json")]
    pub per_photo: bool,
}

#[derive(Args)]
pub struct BenchDecodeArgs {
    /// Frames in the set (one in seven has no code; half VGA, half 720p).
    #[arg(long, default_value_t = 1400)]
    pub frames: usize,
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Do not run zxing-cpp.
    #[arg(long)]
    pub no_peer: bool,
    /// The Python that has the `zxing-cpp` package.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Also run rxing on the whole frame (TryHarder, AlsoInverted), the approach before the pipeline.
    #[arg(long)]
    pub baseline: bool,
    /// Also run the pipeline with one step switched off at a time.
    #[arg(long)]
    pub ablate: bool,
    /// Write the frames our decoder misses to this folder as PNG (their specs go to stderr).
    #[arg(long)]
    pub failures: Option<PathBuf>,
    /// Also this many close-ups (codes held near the camera: 4 to 20 pixels a module), reported on their own
    /// line and kept out of every other figure.
    #[arg(long, default_value_t = 120)]
    pub close_ups: usize,
    /// Also this many frames of codes moving while the shutter is open (motion blur of a quarter of a module to
    /// three modules), reported by how far they moved and kept out of every other figure.
    #[arg(long, default_value_t = 240)]
    pub moving: usize,
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

#[derive(Args)]
pub struct ReconcileArgs {
    /// The business day, YYYY-MM-DD (China Standard Time); it must be over.
    #[arg(long)]
    pub date: String,
    /// The provider whose bill to reconcile: wechat, alipay or unionpay [default: wechat and alipay].
    #[arg(long)]
    pub provider: Vec<String>,
    /// Where to write the differences, as CSV ("-" for standard output).
    #[arg(long)]
    pub csv: PathBuf,
    /// The coordinator's URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub coordinator: String,
    /// File holding a manager's token (the coordinator keeps a generated one in its data folder's
    /// credentials/manager.token).
    #[arg(long)]
    pub token_file: PathBuf,
    /// PEM CA certificate the coordinator's TLS certificate chains to (for an https:// URL).
    #[arg(long)]
    pub ca: Option<PathBuf>,
}
