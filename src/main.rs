//! The `checkout` command: parses the command line and hands over to the coordinator, a lane, the demo or the decoder.

mod bench;
mod cli;
mod decode;
mod demo;

use std::{collections::HashMap, sync::Arc};

use anyhow::Context;
use checkout_coordinator::{CoordinatorConfig, PaymentProvider, simulated::SimulatedProvider};
use checkout_lanes::{FrameSource, LaneConfig, SyntheticConfig};
use checkout_storage::{Currency, LaneId, Provider, StoreId};
use clap::Parser;

use crate::cli::{Cli, Command, CoordinatorArgs, LaneArgs};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Coordinator(args) => {
            init_tracing("info");
            run_coordinator(args)
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
        Command::Bench(args) => {
            init_tracing("warn");
            match args.what {
                cli::BenchWhat::Decode(args) => bench::run(args),
            }
        }
    }
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

fn run_coordinator(args: CoordinatorArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        // The one line on stdout: scripts (and tests) that listen on port 0 read the address here.
        println!("coordinator listening on {}", listener.local_addr()?);
        let simulated = Arc::new(SimulatedProvider::new(args.wallet_seed.as_bytes(), args.starting_balance_fen));
        let config = CoordinatorConfig {
            store_id: StoreId::parse(&args.store_id)?,
            currency: Currency::parse(&args.currency)?,
            data_dir: args.data.clone(),
            providers: simulated_providers(simulated),
            shutdown_grace: std::time::Duration::from_secs(args.grace_secs),
        };
        checkout_coordinator::run(listener, config, cli::shutdown_signal()).await?;
        Ok(())
    })
}

fn run_lane(args: LaneArgs) -> anyhow::Result<()> {
    let lane_id = LaneId::parse(&args.id)?;
    let source = if args.synthetic {
        FrameSource::Synthetic(SyntheticConfig {
            seed: args.seed,
            customers: args.customers,
            wallet_seed: args.wallet_seed.as_bytes().to_vec(),
            ..SyntheticConfig::default()
        })
    } else {
        FrameSource::Paths(args.frames.clone())
    };
    let mut config = LaneConfig::new(lane_id, args.coordinator.clone(), source);
    config.frames_per_second = args.fps.or(if args.synthetic { Some(30.0) } else { None });
    let system = actix_rt::System::new();
    let summary = system.block_on(checkout_lanes::run_lane(config, None, cli::shutdown_signal()))?;
    println!(
        "lane {}: {} sales, {} items, {} paid; {} frames ({} skipped), {} codes read, {} unrecognised, {} declined",
        summary.lane_id,
        summary.sales,
        summary.items,
        summary.paid_total,
        summary.frames,
        summary.frames_skipped,
        summary.codes_read,
        summary.unrecognised,
        summary.declined
    );
    Ok(())
}
