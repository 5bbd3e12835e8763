//! `checkout bench engine` and `checkout bench ledger`: charges per second through the payment engine, durable ledger writes per second.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use checkout_coordinator::{EngineTiming, PayOrder, Payments, sim::SimulatedProvider};
use checkout_storage::{
    Attempt, ChargeRecord, ChargeStatus, CodeFingerprint, Currency, LaneId, MaskedCode, Money, OutTradeNo, ProductCode,
    Provider, SaleId, SaleLine, SimulatedWallet, Store, StoreId, UnixMillis, sample_catalog,
};
use serde_json::json;

use crate::{
    cli::{EngineBenchArgs, LedgerBenchArgs},
    simulated_providers,
};

/// Median and 99th percentile of `samples`, in milliseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99))
}

/// Runs `count` timed operations split over `workers` concurrent tasks; returns each one's latency and the wall time.
fn timed_concurrently<F, Fut>(workers: u64, count: u64, operation: F) -> anyhow::Result<(Vec<Duration>, Duration)>
where
    F: Fn(u64, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let operation = Arc::new(operation);
    let started = Instant::now();
    let latencies = runtime.block_on(async {
        let tasks: Vec<_> = (0..workers)
            .map(|worker| {
                let operation = operation.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    for n in (worker..count).step_by(workers as usize) {
                        let begun = Instant::now();
                        operation(worker, n).await?;
                        latencies.push(begun.elapsed());
                    }
                    Ok::<_, anyhow::Error>(latencies)
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await??);
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    Ok((latencies, started.elapsed()))
}

pub fn engine(args: EngineBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    store.seed_catalog_if_empty(&sample_catalog())?;
    const SEED: &[u8] = b"bench";
    let sim = Arc::new(SimulatedProvider::new(SEED, i64::MAX / 4));
    let store_id = StoreId::parse("S001")?;
    let payments = Arc::new(Payments::new(store, store_id, simulated_providers(sim.clone()), EngineTiming::default()));
    let product = sample_catalog().into_iter().next().context("empty catalog")?;
    let charges = args.charges.min(3 * 10_000);
    let lanes = args.lanes.max(1);

    let (mut latencies, elapsed) = timed_concurrently(lanes, charges, move |lane, n| {
        let payments = payments.clone();
        let product = product.clone();
        async move {
            // Each charge its own wallet: a code is single-use.
            let provider = Provider::ALL[(n % 3) as usize];
            let code = SimulatedWallet::new(SEED, provider, (n / 3) as u16).issue_code(UnixMillis::now());
            let order = PayOrder {
                lane_id: LaneId::parse(&format!("L{lane}"))?,
                sale_id: SaleId::parse(&format!("L{lane}-{n}"))?,
                attempt: Attempt::new(1)?,
                code,
                lines: vec![checkout_storage::OrderLine::catalog(product.gtin.clone(), 1)],
                amount: product.price,
                shift_id: None,
                started_at: UnixMillis::now(),
            };
            let charge = payments.pay(order).await?;
            anyhow::ensure!(charge.status == ChargeStatus::Paid, "charge {n} not paid: {:?}", charge.status);
            Ok(())
        }
    })?;
    let (median, p99) = percentiles(&mut latencies);
    let per_second = latencies.len() as f64 / elapsed.as_secs_f64();
    anyhow::ensure!(sim.orders().len() == latencies.len(), "the provider's books differ from the charges made");
    if args.json {
        println!(
            "{}",
            json!({"charges": latencies.len(), "lanes": lanes, "charges_per_second": per_second,
                   "added_latency_median_ms": median, "added_latency_p99_ms": p99})
        );
    } else {
        println!(
            "engine: {} charges from {lanes} concurrent lanes against the in-process provider (zero latency)",
            latencies.len()
        );
        println!("  throughput: {per_second:.0} charges/s over {:.2} s", elapsed.as_secs_f64());
        println!(
            "  engine's added latency per charge (two durable commits: the intent, then the answer with its sale): median {median:.2} ms, p99 {p99:.2} ms"
        );
    }
    Ok(())
}

fn sample_charge(n: u64) -> anyhow::Result<ChargeRecord> {
    let sale_id = SaleId::parse(&format!("B-{n}"))?;
    let gtin = ProductCode::from_body("690123456789")?;
    Ok(ChargeRecord {
        basket_sha256: checkout_storage::basket_digest(&[checkout_storage::OrderLine::catalog(gtin.clone(), 1)]),
        out_trade_no: OutTradeNo::derive(&StoreId::parse("S001")?, &sale_id, Attempt::new(1)?),
        lane_id: LaneId::parse("L1")?,
        sale_id,
        attempt: Attempt::new(1)?,
        provider: Provider::WeChatPay,
        masked_code: MaskedCode::of("130000000000000000"),
        code_fingerprint: CodeFingerprint([0; 16]),
        amount: Money::new(1290, Currency::CNY),
        status: ChargeStatus::Paid,
        provider_code: "SUCCESS".into(),
        message: "paid".into(),
        provider_transaction_id: format!("T{n}"),
        lines: vec![SaleLine { gtin, quantity: 1, unit_price: Money::new(1290, Currency::CNY) }],
        shift_id: None,
        sale_started_at: UnixMillis::now(),
        created_at: UnixMillis::now(),
        settled_at: Some(UnixMillis::now()),
        superseded_by: None,
        events: Vec::new(),
    })
}

pub fn ledger(args: LedgerBenchArgs) -> anyhow::Result<()> {
    let dir = match &args.data {
        Some(path) => {
            std::fs::create_dir_all(path)?;
            tempfile::tempdir_in(path)?
        }
        None => tempfile::tempdir()?,
    };
    let store = Store::open(dir.path())?;
    let writers = args.writers.max(1);
    let (mut latencies, elapsed) = timed_concurrently(writers, args.writes, move |_, n| {
        let store = store.clone();
        async move {
            store.put_charge(&sample_charge(n)?)?;
            store.commit().await?;
            Ok(())
        }
    })?;
    let (median, p99) = percentiles(&mut latencies);
    let per_second = latencies.len() as f64 / elapsed.as_secs_f64();
    // Opening copies sled's files aside and reads every record back: what a restart costs at this size.
    let folder_bytes = bytes_below(dir.path())?;
    let begun = Instant::now();
    let records = Store::open(dir.path())?.charges()?.len();
    let open_ms = begun.elapsed().as_secs_f64() * 1e3;
    if args.json {
        println!(
            "{}",
            json!({"writes": latencies.len(), "writers": writers, "writes_per_second": per_second,
                   "commit_median_ms": median, "commit_p99_ms": p99,
                   "reopen_ms": open_ms, "reopen_records": records, "folder_bytes": folder_bytes})
        );
    } else {
        println!(
            "ledger: {} durable writes (write + flush before acknowledging) from {writers} concurrent writers in {}",
            latencies.len(),
            dir.path().display()
        );
        println!("  throughput: {per_second:.0} writes/s over {:.2} s (group commit)", elapsed.as_secs_f64());
        println!("  commit latency: median {median:.2} ms, p99 {p99:.2} ms");
        println!(
            "  reopening (copy aside, open, check every record): {open_ms:.0} ms for {records} charges, {:.1} MiB",
            folder_bytes as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(())
}

fn bytes_below(dir: &std::path::Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        total += if entry.file_type()?.is_dir() { bytes_below(&entry.path())? } else { entry.metadata()?.len() };
    }
    Ok(total)
}
