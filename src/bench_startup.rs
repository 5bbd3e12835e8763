//! `checkout bench ledger --startup`: the coordinator's start-up (`Store::open`) with a year of history, most of it closed and archived.
//!
//! The history is written through `Store` as a store makes it: each day's shifts, charges (most paid, with
//! their sales; some declined or reversed), refunds asked three days after the payment, a commit a day, and
//! each day closed once written while it is among the oldest `--archived-months`. It is built once and kept
//! under `--data`; every timed run is a fresh process opening it (`--open-once`), as a restart is.

use std::{collections::VecDeque, path::Path, process::Command, time::Instant};

use anyhow::Context;
use checkout_storage::{
    Attempt, BusinessDay, CashierId, ChargeEvent, ChargeRecord, ChargeStatus, CodeFingerprint, Currency, DayClosure,
    LaneId, MaskedCode, Money, OrderLine, OutTradeNo, Provider, RefundRecord, RefundStatus, SaleId, SaleLine,
    SaleRecord, ShiftId, ShiftRecord, Store, StoreId, UnixMillis, basket_digest, sample_catalog,
};
use serde_json::{Value, json};

use crate::cli::LedgerBenchArgs;

/// The year: 12 months of 30 days, up to yesterday.
const DAYS: i32 = 360;
const LANES: u64 = 8;
const HOUR: i64 = 3_600_000;

pub fn run(args: LedgerBenchArgs) -> anyhow::Result<()> {
    if let Some(folder) = &args.open_once {
        return open_once(folder);
    }
    anyhow::ensure!(args.archived_months <= 12, "--archived-months is 0 to 12");
    let base = args.data.clone().unwrap_or_else(|| std::env::temp_dir().join("checkout-bench"));
    let name = format!("startup-{}-{}", args.charges, args.archived_months);
    let folder = base.join(&name);
    // Beside the data folder, which takes no foreign file.
    let built = base.join(format!("{name}.built"));
    if !built.exists() {
        if folder.exists() {
            std::fs::remove_dir_all(&folder).with_context(|| format!("removing a half-built {}", folder.display()))?;
        }
        std::fs::create_dir_all(&base)?;
        let begun = Instant::now();
        build(&folder, args.charges, args.archived_months)?;
        std::fs::write(&built, format!("built in {:.0} s\n", begun.elapsed().as_secs_f64()))?;
        eprintln!("built {} in {:.0} s", folder.display(), begun.elapsed().as_secs_f64());
    }
    let exe = std::env::current_exe().context("finding this program")?;
    let mut runs = Vec::new();
    for _ in 0..args.runs.max(1) {
        let out = Command::new(&exe).args(["bench", "ledger", "--open-once"]).arg(&folder).output()?;
        anyhow::ensure!(out.status.success(), "opening failed: {}", String::from_utf8_lossy(&out.stderr));
        runs.push(serde_json::from_slice::<Value>(&out.stdout).context("reading a run's report")?);
    }
    let mut open_ms: Vec<f64> = runs.iter().filter_map(|r| r["open_ms"].as_f64()).collect();
    let mut rss: Vec<u64> = runs.iter().filter_map(|r| r["peak_rss_kib"].as_u64()).collect();
    open_ms.sort_by(f64::total_cmp);
    rss.sort();
    let (min, median) = (open_ms[0], open_ms[open_ms.len() / 2]);
    let rss_median_mib = rss[rss.len() / 2] as f64 / 1024.0;
    let mut lookups: Vec<f64> = runs.iter().filter_map(|r| r["first_lookup_ms"].as_f64()).collect();
    lookups.sort_by(f64::total_cmp);
    let lookup_median = lookups[lookups.len() / 2];
    let archive_bytes = bytes_below(&folder.join(checkout_storage::ARCHIVE_DIR))?;
    let live_bytes = bytes_below(&folder)? - archive_bytes;
    let last = &runs[runs.len() - 1];
    if args.json {
        println!(
            "{}",
            json!({"charges": args.charges, "archived_months": args.archived_months, "runs": runs.len(),
                   "open_ms_min": min, "open_ms_median": median, "peak_rss_mib_median": rss_median_mib,
                   "first_archive_lookup_ms_median": lookup_median,
                   "live_charges": last["live_charges"], "closed_days": last["closed_days"],
                   "payments_paid": last["payments_paid"], "live_bytes": live_bytes, "archive_bytes": archive_bytes})
        );
    } else {
        println!(
            "start-up: {} charges over {DAYS} days, {} months archived ({} days closed), {} charges live, in {}",
            args.charges,
            args.archived_months,
            last["closed_days"],
            last["live_charges"],
            folder.display()
        );
        println!(
            "  Store::open, {} runs (each a fresh process, page cache warm): min {min:.0} ms, median {median:.0} ms",
            runs.len()
        );
        println!("  peak RSS of the opening process: median {rss_median_mib:.0} MiB");
        println!(
            "  then the first look-up that reaches the archive (opens its id index): median {lookup_median:.0} ms"
        );
        println!(
            "  live ledger {:.0} MiB, archive {:.0} MiB; totals answered: {} payments paid",
            live_bytes as f64 / 1048576.0,
            archive_bytes as f64 / 1048576.0,
            last["payments_paid"]
        );
    }
    Ok(())
}

/// One timed opening, reported as JSON: what each run of `--startup` does in its own process.
fn open_once(folder: &Path) -> anyhow::Result<()> {
    let begun = Instant::now();
    let store = Store::open(folder)?;
    let open_ms = begun.elapsed().as_secs_f64() * 1e3;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    // The first look-up that misses the live ledger opens the archive's id index (a new charge does).
    let begun = Instant::now();
    let missing = store.charge(&OutTradeNo::parse("S001-L0-NONE-1")?)?;
    let first_lookup_ms = begun.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(missing.is_none(), "a charge that was never made was found");
    let paid = store.totals().0.payments_paid;
    let live = store.charges_page("", None, usize::MAX)?.len();
    println!(
        "{}",
        json!({"open_ms": open_ms, "rss_kib": kib("VmRSS:"), "peak_rss_kib": kib("VmHWM:"), "first_lookup_ms": first_lookup_ms,
               "payments_paid": paid, "live_charges": live, "closed_days": store.closed_days()?.len()})
    );
    Ok(())
}

/// Writes the year into a new ledger at `folder`.
fn build(folder: &Path, charges: u64, archived_months: u32) -> anyhow::Result<()> {
    let store = Store::open(folder)?;
    store.seed_catalog_if_empty(&sample_catalog())?;
    // The year's baskets: products with a catalog price (open-price items are typed at a till).
    let catalog: Vec<_> = sample_catalog().into_iter().filter(|p| !p.is_open_price()).collect();
    let store_id = StoreId::parse("S001")?;
    let first = BusinessDay(BusinessDay::of(UnixMillis::now()).0 - DAYS);
    let archived_days = archived_months as i32 * 30;
    // Paid charges to refund, by the day they were made: refunds are asked three days later.
    let mut to_refund: VecDeque<Vec<ChargeRecord>> = VecDeque::new();
    let mut n: u64 = 0;
    let mut refunds: u64 = 0;
    let (mut writing, mut closing) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    for d in 0..DAYS {
        let begun = Instant::now();
        let day = BusinessDay(first.0 + d);
        let at = |millis: i64| UnixMillis(day.start().0 + millis);
        for lane in 1..=LANES {
            store.put_shift(&ShiftRecord {
                shift_id: ShiftId::parse(&format!("L{lane}-D{d}"))?,
                lane_id: LaneId::parse(&format!("L{lane}"))?,
                cashier: CashierId::parse(&format!("C{:03}", lane + 10 * (d as u64 % 3)))?,
                opened_at: at(7 * HOUR + 1800 * 1000),
                closed_at: Some(at(22 * HOUR + 1800 * 1000)),
                closed_how: "signed off".into(),
            })?;
        }
        let count = charges * (d as u64 + 1) / DAYS as u64 - charges * d as u64 / DAYS as u64;
        let mut paid_today = Vec::new();
        for i in 0..count {
            let lane = n % LANES + 1;
            let created = at(8 * HOUR + (i as i64) * (14 * HOUR) / count.max(1) as i64);
            let sale_id = SaleId::parse(&format!("L{lane}-{n:09X}"))?;
            let status = match n % 100 {
                0 => ChargeStatus::NewCodeNeeded,
                1 | 2 => ChargeStatus::Failed,
                3 => ChargeStatus::Reversed,
                _ => ChargeStatus::Paid,
            };
            let lines: Vec<SaleLine> = (0..1 + n % 5)
                .map(|k| {
                    let product = &catalog[((n + k * 7) % catalog.len() as u64) as usize];
                    SaleLine { gtin: product.gtin.clone(), quantity: 1 + (k % 2) as u32, unit_price: product.price }
                })
                .collect();
            let total = lines.iter().map(|l| l.unit_price.minor_units * i64::from(l.quantity)).sum();
            let mut fingerprint = [0u8; 16];
            fingerprint[..8].copy_from_slice(&n.to_be_bytes());
            let charge = ChargeRecord {
                out_trade_no: OutTradeNo::derive(&store_id, &sale_id, Attempt::new(1)?),
                lane_id: LaneId::parse(&format!("L{lane}"))?,
                sale_id,
                attempt: Attempt::new(1)?,
                provider: Provider::ALL[(n % 3) as usize],
                masked_code: MaskedCode::of("134567890123456789"),
                code_fingerprint: CodeFingerprint(fingerprint),
                amount: Money::new(total, Currency::CNY),
                status,
                provider_code: if status == ChargeStatus::Paid { "SUCCESS".into() } else { "USERPAYING".into() },
                message: if status == ChargeStatus::Paid { "paid".into() } else { "declined".into() },
                provider_transaction_id: format!("42000{:023}", n),
                created_at: created,
                settled_at: Some(UnixMillis(created.0 + 1500)),
                basket_sha256: basket_digest(
                    &lines.iter().map(|l| OrderLine::catalog(l.gtin.clone(), l.quantity)).collect::<Vec<_>>(),
                ),
                lines: if status == ChargeStatus::Paid { lines } else { Vec::new() },
                shift_id: Some(ShiftId::parse(&format!("L{lane}-D{d}"))?),
                sale_started_at: UnixMillis(created.0 - 60_000),
                superseded_by: None,
                events: vec![ChargeEvent { at: UnixMillis(created.0 + 1500), what: "micropay: SUCCESS".into() }],
            };
            store.put_charge(&charge)?;
            store.claim_code(charge.code_fingerprint, &charge.out_trade_no)?;
            if status == ChargeStatus::Paid {
                store.insert_sale_if_absent(&SaleRecord::paid_by(&charge, UnixMillis(created.0 + 2000)))?;
                if n % 200 == 7 {
                    paid_today.push(charge);
                }
            }
            n += 1;
        }
        to_refund.push_back(paid_today);
        if to_refund.len() > 3
            && let Some(asked) = to_refund.pop_front()
        {
            for (k, charge) in asked.iter().enumerate() {
                refunds += 1;
                store.insert_refund_if_absent(&RefundRecord {
                    out_refund_no: format!("RF{refunds:09}"),
                    out_trade_no: charge.out_trade_no.clone(),
                    lane_id: charge.lane_id.clone(),
                    amount: charge.amount,
                    reason: "returned".into(),
                    status: RefundStatus::Accepted,
                    provider_code: "SUCCESS".into(),
                    message: "refunded".into(),
                    refund_id: format!("50300{refunds:023}"),
                    created_at: at(15 * HOUR + k as i64 * 1000),
                    settled_at: Some(at(15 * HOUR + k as i64 * 1000 + 800)),
                })?;
            }
        }
        store.commit_blocking()?;
        writing += begun.elapsed();
        let begun = Instant::now();
        if d < archived_days {
            let closure = DayClosure { closed_by: "bench".into(), closed_at: UnixMillis::now(), note: String::new() };
            store.archive_day(day, closure)?;
        }
        closing += begun.elapsed();
        if d % 30 == 29 {
            eprintln!(
                "  built {} of {DAYS} days ({n} charges, {refunds} refunds): {:.0} s writing, {:.0} s closing days",
                d + 1,
                writing.as_secs_f64(),
                closing.as_secs_f64()
            );
        }
    }
    Ok(())
}

fn bytes_below(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(0) };
    for entry in entries {
        let entry = entry?;
        total += if entry.file_type()?.is_dir() { bytes_below(&entry.path())? } else { entry.metadata()?.len() };
    }
    Ok(total)
}
