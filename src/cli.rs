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
    Coordinator(CoordinatorArgs),
    /// Run one checkout lane against a coordinator.
    Lane(LaneArgs),
    /// Run a coordinator and four synthetic lanes in one process, then print the day's summary.
    Demo(DemoArgs),
    /// Decode image files and print one JSON object per file.
    Decode(DecodeArgs),
    /// Benchmarks.
    Bench(BenchArgs),
}

#[derive(Args)]
pub struct CoordinatorArgs {
    /// Address to serve gRPC on.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: String,
    /// The sled data folder (created if missing).
    #[arg(long)]
    pub data: PathBuf,
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
}

#[derive(Args)]
pub struct DecodeArgs {
    /// Image files (PNG, JPEG).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Subcommand)]
pub enum BenchWhat {
    /// Decode a seeded set of distorted synthetic frames; compare with zxing-cpp on the same frames.
    Decode(BenchDecodeArgs),
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
