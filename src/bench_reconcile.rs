//! `checkout bench reconcile`: a day of N payments, its WeChat Pay bill (gzip) and Alipay bill (zip of GBK CSVs) with a sprinkling of every difference, read and matched against the ledger: seconds, lines per second, peak memory, the differences found.

use std::{collections::BTreeMap, time::Instant};

use anyhow::{Context, bail, ensure};
use checkout_coordinator::{
    reconcile::{self, Bill, DifferenceKind, LedgerLine, LineKind, OrderState, Reconciliation},
    sim::bills::{self, BillRow, RowRefund, RowState},
};
use checkout_storage::{Provider, UnixMillis};
use serde_json::json;

use crate::{
    cli::ReconcileBenchArgs,
    process_memory::{peak_rss_mib, reset_peak_rss, resident_mib},
};

const DAY: &str = "2026-11-25";
/// More would pass the parsers' default limit of lines.
const MOST_PAYMENTS: u64 = 3_000_000;

/// Where each kind of difference is sprinkled: payment `i` gets it when `i % period == offset`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sprinkle {
    MissingInLedger,
    MissingInBill,
    AmountMismatch,
    StateMismatch,
    DuplicateInBill,
    DuplicateInLedger,
}

const SPRINKLES: [Sprinkle; 6] = [
    Sprinkle::MissingInLedger,
    Sprinkle::MissingInBill,
    Sprinkle::AmountMismatch,
    Sprinkle::StateMismatch,
    Sprinkle::DuplicateInBill,
    Sprinkle::DuplicateInLedger,
];

impl Sprinkle {
    fn kind(self) -> DifferenceKind {
        match self {
            Sprinkle::MissingInLedger => DifferenceKind::MissingInLedger,
            Sprinkle::MissingInBill => DifferenceKind::MissingInBill,
            Sprinkle::AmountMismatch => DifferenceKind::AmountMismatch,
            Sprinkle::StateMismatch => DifferenceKind::StateMismatch,
            Sprinkle::DuplicateInBill | Sprinkle::DuplicateInLedger => DifferenceKind::Duplicate,
        }
    }
}

/// The generated day: payment `i`'s amount, what happens to it, which difference it carries.
struct Day {
    payments: u64,
    period: u64,
    start: UnixMillis,
}

impl Day {
    fn new(payments: u64) -> anyhow::Result<Day> {
        let start = reconcile::parse_china_datetime(&format!("{DAY} 00:00:00")).context("the bench's day")?;
        Ok(Day { payments, period: (payments / 10).clamp(7, 99_991), start })
    }

    fn sprinkle(&self, i: u64) -> Option<Sprinkle> {
        SPRINKLES.get(usize::try_from(i % self.period).ok()?).copied()
    }

    fn amount(i: u64) -> i64 {
        100 + (i.wrapping_mul(7919) % 50_000) as i64
    }

    fn refunded(i: u64) -> Option<i64> {
        (i % 50 == 3).then(|| Day::amount(i) / 4 + 1)
    }

    fn reversed(i: u64) -> bool {
        i % 200 == 7
    }

    fn out_trade_no(i: u64) -> String {
        format!("S1-L{:02}-{i:09}", i % 40)
    }

    fn at(&self, i: u64) -> UnixMillis {
        // Spread over the day from 08:00, a payment's refund or reversal a second later.
        UnixMillis(self.start.0 + 8 * 3_600_000 + (i as i64) * (50_000_000 / self.payments.max(1) as i64))
    }

    /// The bill's rows of payment `i` (none when the bill lacks it, twice when it has it twice).
    fn rows(&self, i: u64) -> Vec<BillRow> {
        let sprinkle = self.sprinkle(i);
        let at = self.at(i);
        let row = |state: RowState, at: UnixMillis, refund: Option<RowRefund>| BillRow {
            at,
            created_at: UnixMillis(at.0 - 2_000),
            state,
            out_trade_no: Day::out_trade_no(i),
            transaction_id: format!("4200{i:024}"),
            terminal: format!("L{:02}", i % 40),
            wallet: (i % 5000) as u16,
            order_amount: Day::amount(i),
            currency: "CNY".into(),
            description: "groceries".into(),
            refund,
        };
        let mut rows = Vec::with_capacity(2);
        if sprinkle != Some(Sprinkle::MissingInBill) {
            rows.push(row(RowState::Success, at, None));
        }
        if sprinkle == Some(Sprinkle::DuplicateInBill) {
            rows.push(row(RowState::Success, at, None));
        }
        if let Some(amount) = Day::refunded(i) {
            let refund = RowRefund { refund_id: format!("5000{i:024}"), out_refund_no: format!("RF-{i}"), amount };
            rows.push(row(RowState::Refund, UnixMillis(at.0 + 1_000), Some(refund)));
        }
        if Day::reversed(i) {
            let back = Day::amount(i);
            let refund = RowRefund { refund_id: format!("REV{i}"), out_refund_no: String::new(), amount: back };
            rows.push(row(RowState::Revoked, UnixMillis(at.0 + 1_000), Some(refund)));
        }
        rows
    }

    fn all_rows(&self) -> impl Iterator<Item = BillRow> + '_ {
        (0..self.payments).flat_map(|i| self.rows(i))
    }

    /// The store's ledger lines of `provider` for the day.
    fn ledger(&self, provider: Provider) -> Vec<LedgerLine> {
        let mut lines = Vec::with_capacity(self.payments as usize + self.payments as usize / 40);
        for i in 0..self.payments {
            let sprinkle = self.sprinkle(i);
            let at = self.at(i);
            let state = match (Day::reversed(i), Day::refunded(i)) {
                (true, _) => OrderState::Reversed,
                (false, Some(_)) => OrderState::Refunded,
                (false, None) => OrderState::Paid,
            };
            let line = |kind, out_refund_no, amount, state| LedgerLine {
                provider,
                kind,
                out_trade_no: Day::out_trade_no(i),
                out_refund_no,
                amount,
                state,
                time: at,
            };
            let mut charge = line(LineKind::Charge, None, Day::amount(i), state);
            match sprinkle {
                Some(Sprinkle::AmountMismatch) => charge.amount += 1,
                Some(Sprinkle::StateMismatch) => charge.state = OrderState::Pending,
                _ => {}
            }
            if sprinkle == Some(Sprinkle::DuplicateInLedger) {
                lines.push(charge.clone());
            }
            if sprinkle != Some(Sprinkle::MissingInLedger) {
                lines.push(charge);
            }
            if let Some(amount) = Day::refunded(i) {
                lines.push(line(LineKind::Refund, Some(format!("RF-{i}")), amount, state));
            }
            if Day::reversed(i) {
                lines.push(line(LineKind::Reversal, None, Day::amount(i), state));
            }
        }
        lines
    }

    /// How many differences of each kind the sprinkling makes.
    fn expected(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for sprinkle in SPRINKLES {
            let offset = SPRINKLES.iter().position(|s| *s == sprinkle).unwrap_or(0) as u64;
            let hits = if self.payments > offset { (self.payments - 1 - offset) / self.period + 1 } else { 0 };
            *counts.entry(format!("{:?}", sprinkle.kind())).or_insert(0) += hits;
        }
        counts
    }
}

/// Reads `bytes` with `parse` and reconciles the bill against `ledger`, timed.
fn measure(
    name: &str,
    day: &Day,
    bytes: Vec<u8>,
    ledger: &[LedgerLine],
    parse: fn(&[u8]) -> Result<Bill, reconcile::BillError>,
) -> anyhow::Result<serde_json::Value> {
    let reset = reset_peak_rss();
    let started = Instant::now();
    let bill = parse(&bytes).with_context(|| format!("the {name} bill"))?;
    let parsed = started.elapsed();
    let result: Reconciliation = reconcile::reconcile(ledger, &bill)?;
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_rss_mib();
    let mut found: BTreeMap<String, u64> = BTreeMap::new();
    for difference in &result.differences {
        *found.entry(format!("{:?}", difference.kind)).or_insert(0) += 1;
    }
    let expected = day.expected();
    let expected: BTreeMap<String, u64> = expected.into_iter().filter(|(_, n)| *n > 0).collect();
    ensure!(found == expected, "{name}: found {found:?}, the sprinkling made {expected:?}");
    Ok(json!({
        "bill": name,
        "bill_bytes": bytes.len(),
        "bill_lines": bill.lines.len(),
        "ledger_lines": ledger.len(),
        "parse_seconds": parsed.as_secs_f64(),
        "match_seconds": seconds - parsed.as_secs_f64(),
        "seconds": seconds,
        "lines_per_second": (bill.lines.len() + ledger.len()) as f64 / seconds,
        "peak_rss_mib": peak,
        "peak_reset_before": reset,
        "differences": found,
        "matched": result.matched,
        "bill_net_fen": result.bill.net,
        "ledger_net_fen": result.ledger.net,
    }))
}

pub fn reconcile(args: ReconcileBenchArgs) -> anyhow::Result<()> {
    if args.payments == 0 || args.payments > MOST_PAYMENTS {
        bail!("--payments: 1 to {MOST_PAYMENTS}");
    }
    let day = Day::new(args.payments)?;
    let mut runs = Vec::new();

    let generated = Instant::now();
    let gzip = bills::write_wechat_bill_gzip(Vec::new(), "wxbench", "1900000001", day.all_rows())?;
    let ledger = day.ledger(Provider::WeChatPay);
    eprintln!(
        "WeChat Pay: {} bytes of gzip, {} ledger lines, made in {:.1?}",
        gzip.len(),
        ledger.len(),
        generated.elapsed()
    );
    runs.push(measure("WeChat Pay (gzip CSV)", &day, gzip, &ledger, reconcile::parse_wechat_bill)?);
    drop(ledger);

    let generated = Instant::now();
    let zip = bills::write_alipay_bill(std::io::Cursor::new(Vec::new()), DAY, day.all_rows())?.into_inner();
    let ledger = day.ledger(Provider::Alipay);
    eprintln!("Alipay: {} bytes of zip, {} ledger lines, made in {:.1?}", zip.len(), ledger.len(), generated.elapsed());
    runs.push(measure("Alipay (zip of GBK CSVs)", &day, zip, &ledger, reconcile::parse_alipay_bill)?);

    if args.through_ledger {
        runs.push(through_ledger(&day)?);
    }
    if args.json {
        println!("{}", json!({ "payments": args.payments, "runs": runs }));
        return Ok(());
    }
    println!("a day of {} payments, each bill read and matched against the ledger:", args.payments);
    for run in &runs {
        println!(
            "  {:<26} {:>9.3} s (read {:.3} s, match {:.3} s)  {:>10.0} lines/s  peak RSS {:>6.0} MiB  {} bytes",
            run["bill"].as_str().unwrap_or(""),
            run["seconds"].as_f64().unwrap_or(0.0),
            run["parse_seconds"].as_f64().unwrap_or(0.0),
            run["match_seconds"].as_f64().unwrap_or(0.0),
            run["lines_per_second"].as_f64().unwrap_or(0.0),
            run["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
            run["bill_bytes"],
        );
        if let Some(before) = run["resident_before_mib"].as_f64() {
            println!(
                "    (ledger read from sled: {:.3} s; {before:.0} MiB resident before it, the process's own ledger)",
                run["ledger_read_seconds"].as_f64().unwrap_or(0.0)
            );
        }
        println!("    differences: {}", run["differences"]);
    }
    Ok(())
}

/// The day's WeChat Pay charges and refunds written into a ledger, then reconciled as the coordinator does:
/// its lines read from the ledger (`services::reconciliations::ledger_lines`), the bill read, matched.
fn through_ledger(day: &Day) -> anyhow::Result<serde_json::Value> {
    use checkout_coordinator::ledger_lines;
    use checkout_storage::{
        Attempt, BusinessDay, ChargeEvent, ChargeRecord, ChargeStatus, CodeFingerprint, Currency, LaneId, MaskedCode,
        Money, OutTradeNo, RefundRecord, RefundStatus, SaleId, Store,
    };
    let folder = tempfile::tempdir()?;
    let store = Store::open(folder.path())?;
    let written = Instant::now();
    for i in 0..day.payments {
        let at = day.at(i);
        let out_trade_no = OutTradeNo::parse(&Day::out_trade_no(i))?;
        let lane_id = LaneId::parse(&format!("L{:02}", i % 40))?;
        let reversed = Day::reversed(i);
        let mut fingerprint = [0u8; 16];
        fingerprint[..8].copy_from_slice(&i.to_be_bytes());
        let mut charge = ChargeRecord {
            out_trade_no: out_trade_no.clone(),
            lane_id: lane_id.clone(),
            sale_id: SaleId::parse(&format!("L{:02}-{i:09}", i % 40))?,
            attempt: Attempt::new(1)?,
            provider: Provider::WeChatPay,
            masked_code: MaskedCode::of("134567890123456789"),
            code_fingerprint: CodeFingerprint(fingerprint),
            amount: Money::new(Day::amount(i), Currency::CNY),
            status: if reversed { ChargeStatus::Reversed } else { ChargeStatus::Paid },
            provider_code: "SUCCESS".into(),
            message: "paid".into(),
            provider_transaction_id: format!("4200{i:024}"),
            created_at: at,
            settled_at: Some(if reversed { UnixMillis(at.0 + 1_000) } else { at }),
            lines: Vec::new(),
            basket_sha256: [0; 32],
            shift_id: None,
            sale_started_at: at,
            superseded_by: None,
            events: vec![ChargeEvent { at, what: "micropay: SUCCESS".into() }],
        };
        if reversed {
            charge.log("reverse: done, money returned");
        }
        store.put_charge(&charge)?;
        if let Some(amount) = Day::refunded(i) {
            store.insert_refund_if_absent(&RefundRecord {
                out_refund_no: format!("RF-{i}"),
                out_trade_no,
                lane_id,
                amount: Money::new(amount, Currency::CNY),
                reason: "returned".into(),
                status: RefundStatus::Accepted,
                provider_code: "SUCCESS".into(),
                message: "refunded".into(),
                refund_id: format!("5000{i:024}"),
                created_at: UnixMillis(at.0 + 1_000),
                settled_at: Some(UnixMillis(at.0 + 1_000)),
            })?;
        }
    }
    store.commit_blocking()?;
    eprintln!("ledger: {} charges written in {:.1?}", day.payments, written.elapsed());
    let gzip = bills::write_wechat_bill_gzip(Vec::new(), "wxbench", "1900000001", day.all_rows())?;
    let reset = reset_peak_rss();
    // The process already holds the ledger it just wrote (sled's pages) and what the runs before freed:
    // the reconciliation's own share is the peak over this.
    let resident_before = resident_mib();
    let started = Instant::now();
    let business_day = BusinessDay::of(day.start);
    let lines = ledger_lines(&store, Provider::WeChatPay, business_day).map_err(|e| anyhow::anyhow!("{e}"))?;
    let read = started.elapsed();
    let bill = reconcile::parse_wechat_bill(&gzip)?;
    let parsed = started.elapsed() - read;
    let result = reconcile::reconcile(&lines, &bill)?;
    let seconds = started.elapsed().as_secs_f64();
    let mut found: BTreeMap<String, u64> = BTreeMap::new();
    for difference in &result.differences {
        *found.entry(format!("{:?}", difference.kind)).or_insert(0) += 1;
    }
    Ok(json!({
        "bill": "WeChat Pay, ledger read from sled",
        "bill_bytes": gzip.len(),
        "bill_lines": bill.lines.len(),
        "ledger_lines": lines.len(),
        "ledger_read_seconds": read.as_secs_f64(),
        "parse_seconds": parsed.as_secs_f64(),
        "match_seconds": seconds - read.as_secs_f64() - parsed.as_secs_f64(),
        "seconds": seconds,
        "lines_per_second": (bill.lines.len() + lines.len()) as f64 / seconds,
        "peak_rss_mib": peak_rss_mib(),
        "resident_before_mib": resident_before,
        "peak_over_resident_before_mib": peak_rss_mib().zip(resident_before).map(|(peak, before)| peak - before),
        "peak_reset_before": reset,
        "differences": found,
        "matched": result.matched,
    }))
}
