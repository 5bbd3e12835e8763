//! The rush's report: the JSON written with `--report`, and the summary printed at the end.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    measure::{Percentiles, QueuePoint, Totals},
    timeline::{FaultWindow, Minute},
    verdict::Verdict,
};

/// Latency per stage, milliseconds of wall time, from each action's scheduled time.
#[derive(Debug, Clone, Serialize)]
pub struct Stages {
    /// A label's frame taken to the item on the till (decoding, de-duplication, the basket).
    pub frame_to_scan: Percentiles,
    /// A payment code's frame taken to the charge's outcome on the lane (decoding, gRPC to the store, the
    /// provider's micropay, a password step, queries while the outcome is unknown).
    pub pay_round_trip: Percentiles,
    /// A sale paid on the lane to its record durable at the store (the lane's outbox delivered).
    pub commit: Percentiles,
}

/// How the run was set up.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    pub mode: &'static str,
    pub lanes: u32,
    pub simulated_seconds: f64,
    pub speed: f64,
    pub seed: u64,
    pub vision: bool,
    pub customers_planned: u64,
    pub password_above_fen: Option<i64>,
}

/// Everything `--report` writes.
#[derive(Debug, Clone, Serialize)]
pub struct RushReport {
    pub setup: Setup,
    /// Customers served to a paid sale.
    pub baskets: u64,
    /// Items scanned.
    pub items: u64,
    /// Payment attempts by outcome: paid, declined (expired code, short balance, other), store unreachable.
    pub payments: BTreeMap<String, u64>,
    /// Coupons shown at the tills by outcome: applied, refused (used already, held by another sale), not read.
    pub coupons: BTreeMap<String, u64>,
    /// Paid payments per simulated second over the period.
    pub throughput_per_s: f64,
    /// Paid payments per second of wall time.
    pub wall_throughput_per_s: f64,
    pub latency_ms: Stages,
    /// The offline queue sampled every 10 simulated seconds.
    pub queue: Vec<QueuePoint>,
    /// Simulated seconds from the end of the last provider outage until the offline queue was empty again
    /// (`None`: no outage, or it never emptied).
    pub queue_drained_after_outage_s: Option<f64>,
    /// Labels and codes the cashier had to scan again (nothing read).
    pub rescans: u64,
    /// Frames the lanes could not take (camera frames that passed while decoding; a hand-held scanner drops none).
    pub dropped_frames: u64,
    /// Paid sales still in a lane's outbox at the end.
    pub undelivered_sales: u64,
    /// Peak resident memory of the rush's process (and so of an embedded coordinator), MiB.
    pub rss_mib: f64,
    pub wall_seconds: f64,
    pub minutes: Vec<Minute>,
    pub faults: Vec<FaultWindow>,
    pub verdict: Verdict,
}

/// When the queue first emptied after the last outage ended, in simulated seconds after its end.
pub fn drained_after(queue: &[QueuePoint], faults: &[FaultWindow]) -> Option<f64> {
    let end = faults
        .iter()
        .filter(|f| f.kind.contains("outage"))
        .map(|f| f.end_s)
        .fold(None, |a: Option<f64>, e| Some(a.map_or(e, |a| a.max(e))))?;
    queue
        .iter()
        .filter(|q| q.t_s >= end)
        .find(|q| q.lane_outboxes == 0 && q.store_unsettled == Some(0))
        .map(|q| q.t_s - end)
}

impl RushReport {
    pub fn new(setup: Setup, totals: Totals, faults: Vec<FaultWindow>, verdict: Verdict, extra: Extra) -> RushReport {
        let paid = totals.outcomes.get("paid").copied().unwrap_or(0);
        RushReport {
            throughput_per_s: paid as f64 / setup.simulated_seconds.max(1.0),
            wall_throughput_per_s: paid as f64 / extra.wall_seconds.max(0.001),
            setup,
            baskets: totals.baskets,
            items: totals.items,
            payments: totals.outcomes,
            coupons: totals.coupons,
            latency_ms: Stages {
                frame_to_scan: totals.frame_to_scan,
                pay_round_trip: totals.pay_round_trip,
                commit: totals.commit,
            },
            queue_drained_after_outage_s: drained_after(&totals.queue, &faults),
            queue: totals.queue,
            rescans: totals.rescans,
            dropped_frames: extra.dropped_frames,
            undelivered_sales: extra.undelivered_sales,
            rss_mib: extra.rss_mib,
            wall_seconds: extra.wall_seconds,
            minutes: totals.minutes,
            faults,
            verdict,
        }
    }

    /// The summary for the terminal.
    pub fn summary(&self) -> String {
        let s = &self.setup;
        let l = &self.latency_ms;
        let v = &self.verdict;
        let payments: Vec<String> = self.payments.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let stage = |name: &str, p: &Percentiles| {
            format!(
                "  {name:<15} p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms  ({} measured)\n",
                p.p50, p.p99, p.max, p.count
            )
        };
        let mut text = format!(
            "checkout rush: {} lanes, {:.0} simulated minutes at {}x ({}), {} vision, seed {}\n",
            s.lanes,
            s.simulated_seconds / 60.0,
            s.speed,
            s.mode,
            if s.vision { "with" } else { "without" },
            s.seed
        );
        text += &format!(
            "  baskets {} of {} customers, items {}, rescans {}, {:.2} payments/simulated s ({:.1}/s wall)\n",
            self.baskets,
            s.customers_planned,
            self.items,
            self.rescans,
            self.throughput_per_s,
            self.wall_throughput_per_s
        );
        text += &format!("  payments: {}\n", payments.join(", "));
        let coupons: Vec<String> = self.coupons.iter().map(|(k, n)| format!("{k} {n}")).collect();
        text += &format!("  coupons: {}\n", coupons.join(", "));
        text += &stage("frame to scan", &l.frame_to_scan);
        text += &stage("pay round trip", &l.pay_round_trip);
        text += &stage("commit", &l.commit);
        for fault in &self.faults {
            text += &format!(
                "  fault: {} from {:.1} to {:.1} simulated min\n",
                fault.kind,
                fault.start_s / 60.0,
                fault.end_s / 60.0
            );
        }
        if let Some(drained) = self.queue_drained_after_outage_s {
            text += &format!("  offline queue empty {drained:.0} simulated s after the outage ended\n");
        }
        text += &format!(
            "  wall {:.1} s, peak memory {:.0} MiB, dropped frames {}, sales left in lane outboxes {}\n",
            self.wall_seconds, self.rss_mib, self.dropped_frames, self.undelivered_sales
        );
        text += &format!(
            "  verdict ({} orders, {} paid, {} sales): lost {}, double charged {}, unresolved {}, ledger vs books differences {} -> {}\n",
            v.orders_checked,
            v.ledger_paid,
            v.sales_recorded,
            v.lost,
            v.double_charged,
            v.unresolved,
            v.ledger_vs_books_differences,
            if v.all_zero() { "OK" } else { "FAILED" }
        );
        let p = &v.points;
        text += &format!(
            "  member points: {} sales credited, {} points; missing {}, without a paid sale {}, twice {}, wrong amount {}\n",
            p.sales_credited, p.points_credited, p.missing, p.without_paid_sale, p.twice, p.wrong_amount
        );
        text += &format!(
            "  coupons used {}, left held {}, used without a paid sale {}\n",
            v.coupons_redeemed, v.coupons_left_held, v.coupons_without_paid_sale
        );
        for example in &v.examples {
            text += &format!("    {example}\n");
        }
        text
    }
}

/// What the report needs besides the recorder's totals.
pub struct Extra {
    pub wall_seconds: f64,
    pub dropped_frames: u64,
    pub undelivered_sales: u64,
    pub rss_mib: f64,
}
