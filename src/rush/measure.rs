//! What the rush measures while it runs: the simulated clock, latencies from each action's scheduled time in
//! HDR histograms (flat memory however long the run), counts by outcome, and the timeline minute by minute.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::timeline::Minute;

/// Simulated time: `speed` simulated seconds pass in each second of wall time from `start`.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    pub start: Instant,
    pub speed: f64,
}

impl SimClock {
    /// The wall-clock instant of simulated second `sim_s`.
    pub fn at(&self, sim_s: f64) -> Instant {
        self.start + Duration::from_secs_f64((sim_s / self.speed).max(0.0))
    }

    /// Simulated seconds since the start.
    pub fn now_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * self.speed
    }

    /// A simulated span in wall time.
    pub fn wall(&self, simulated: Duration) -> Duration {
        simulated.div_f64(self.speed)
    }
}

/// Latencies are kept in microseconds, up to an hour.
fn histogram(significant_figures: u8) -> Histogram<u64> {
    // 1 µs to 1 h at 2 or 3 significant figures: bounds that are always valid.
    Histogram::new_with_bounds(1, 3_600_000_000, significant_figures)
        .unwrap_or_else(|e| unreachable!("fixed histogram bounds: {e}"))
}

fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = (latency.as_micros() as u64).clamp(1, histogram.high());
    histogram.saturating_record(micros);
}

/// p50, p99 and max of a stage, in milliseconds of wall time.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

fn percentiles(histogram: &Histogram<u64>) -> Percentiles {
    if histogram.is_empty() {
        return Percentiles::default();
    }
    let ms = |micros: u64| micros as f64 / 1000.0;
    Percentiles {
        count: histogram.len(),
        p50: ms(histogram.value_at_quantile(0.50)),
        p99: ms(histogram.value_at_quantile(0.99)),
        max: ms(histogram.max()),
    }
}

/// One sample of the offline queue.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct QueuePoint {
    /// Simulated seconds from the start.
    pub t_s: f64,
    /// Paid sales the lanes hold that the store has not recorded yet.
    pub lane_outboxes: u64,
    /// Charges the store has not settled with the provider (outcome unknown, reversal owed); `None` when the
    /// store could not be asked (restarting).
    pub store_unsettled: Option<u64>,
    /// Customers waiting in line for a lane.
    pub waiting: u64,
}

#[derive(Default)]
struct MinuteBucket {
    paid: u64,
    not_paid: u64,
    items: u64,
    pay: Option<Histogram<u64>>,
    scan: Option<Histogram<u64>>,
    queue: u64,
    waiting: u64,
}

impl MinuteBucket {
    /// The minute's figures, for the report and the plot.
    fn figures(&self, index: usize) -> Minute {
        let at = |h: &Option<Histogram<u64>>, q: f64| {
            h.as_ref().filter(|h| !h.is_empty()).map(|h| h.value_at_quantile(q) as f64 / 1000.0)
        };
        Minute {
            t_s: index as u64 * 60,
            paid: self.paid,
            not_paid: self.not_paid,
            items: self.items,
            pay_p50_ms: at(&self.pay, 0.5),
            pay_p99_ms: at(&self.pay, 0.99),
            scan_p50_ms: at(&self.scan, 0.5),
            scan_p99_ms: at(&self.scan, 0.99),
            queue: self.queue,
            waiting: self.waiting,
        }
    }
}

#[derive(Default)]
struct State {
    scan: Option<Histogram<u64>>,
    pay: Option<Histogram<u64>>,
    commit: Option<Histogram<u64>>,
    /// Minutes gone by, as figures (their histograms dropped: memory per minute stays a few numbers).
    closed_minutes: Vec<Minute>,
    /// The minute being measured, and its number.
    open_minute: MinuteBucket,
    open_index: usize,
    outcomes: BTreeMap<String, u64>,
    coupons: BTreeMap<String, u64>,
    baskets: u64,
    items: u64,
    rescans: u64,
    customers_started: u64,
    /// Paid sales not yet recorded by the store, by sale id, with when they were paid.
    in_lane_outboxes: HashMap<String, Instant>,
    /// Paid sales the lanes reported, by out_trade_no (for the verdict).
    paid_sales: Vec<String>,
    /// Paid sales of members: sale id and member number.
    member_sales: Vec<(String, u32)>,
    queue: Vec<QueuePoint>,
    last_store_unsettled: u64,
}

/// Everything measured, shared by the lanes' drivers, the sampler and the display.
pub struct Recorder {
    pub clock: SimClock,
    state: Mutex<State>,
}

/// A copy of the counters for the display.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub sim_s: f64,
    pub baskets: u64,
    pub items: u64,
    pub customers_started: u64,
    pub outcomes: BTreeMap<String, u64>,
    pub queue: u64,
    pub waiting: u64,
    pub pay_p99_ms: f64,
    pub scan_p99_ms: f64,
}

/// The recorder's totals at the end of the run.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub baskets: u64,
    pub items: u64,
    pub rescans: u64,
    pub outcomes: BTreeMap<String, u64>,
    pub coupons: BTreeMap<String, u64>,
    pub frame_to_scan: Percentiles,
    pub pay_round_trip: Percentiles,
    pub commit: Percentiles,
    pub minutes: Vec<Minute>,
    pub queue: Vec<QueuePoint>,
    pub paid_sales: Vec<String>,
    pub member_sales: Vec<(String, u32)>,
}

impl Recorder {
    pub fn new(clock: SimClock) -> Recorder {
        Recorder { clock, state: Mutex::new(State::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The bucket of the minute `sim_s` falls in; minutes before it are closed into figures. (Something
    /// recorded a hair late, after its minute closed, counts in the open one.)
    fn minute(state: &mut State, sim_s: f64) -> &mut MinuteBucket {
        let index = (sim_s.max(0.0) / 60.0) as usize;
        if index > state.open_index {
            let closed = std::mem::take(&mut state.open_minute);
            state.closed_minutes.push(closed.figures(state.open_index));
            for gap in state.open_index + 1..index {
                state.closed_minutes.push(MinuteBucket::default().figures(gap));
            }
            state.open_index = index;
        }
        &mut state.open_minute
    }

    pub fn customer_started(&self) {
        self.lock().customers_started += 1;
    }

    /// An item scanned `latency` after it was scheduled.
    pub fn item_scanned(&self, latency: Duration) {
        let sim_s = self.clock.now_s();
        let mut state = self.lock();
        state.items += 1;
        record(state.scan.get_or_insert_with(|| histogram(3)), latency);
        let minute = Self::minute(&mut state, sim_s);
        minute.items += 1;
        record(minute.scan.get_or_insert_with(|| histogram(2)), latency);
    }

    /// The cashier had to scan a code again (nothing read from the frame).
    pub fn rescanned(&self) {
        self.lock().rescans += 1;
    }

    /// One payment attempt ended with `outcome`, `latency` after the code was scheduled to be scanned.
    pub fn payment(&self, outcome: &str, latency: Duration) {
        let sim_s = self.clock.now_s();
        let mut state = self.lock();
        *state.outcomes.entry(outcome.to_owned()).or_default() += 1;
        record(state.pay.get_or_insert_with(|| histogram(3)), latency);
        let minute = Self::minute(&mut state, sim_s);
        if outcome == "paid" {
            minute.paid += 1;
        } else {
            minute.not_paid += 1;
        }
        record(minute.pay.get_or_insert_with(|| histogram(2)), latency);
    }

    /// A basket is done: paid (its sale is in the lane's outbox until the store records it).
    pub fn sale_paid(&self, sale_id: &str, out_trade_no: &str) {
        let mut state = self.lock();
        state.baskets += 1;
        state.in_lane_outboxes.insert(sale_id.to_owned(), Instant::now());
        state.paid_sales.push(out_trade_no.to_owned());
    }

    /// A coupon shown at a till ended so: applied, refused (used already, held elsewhere), not read.
    pub fn coupon(&self, outcome: &str) {
        *self.lock().coupons.entry(outcome.to_owned()).or_default() += 1;
    }

    /// A member's sale was paid: their points are due.
    pub fn member_sale_paid(&self, sale_id: &str, member: u32) {
        self.lock().member_sales.push((sale_id.to_owned(), member));
    }

    /// The store recorded a paid sale (the lane's outbox delivered it).
    pub fn sale_recorded(&self, sale_id: &str) {
        let mut state = self.lock();
        if let Some(paid_at) = state.in_lane_outboxes.remove(sale_id) {
            record(state.commit.get_or_insert_with(|| histogram(3)), paid_at.elapsed());
        }
    }

    /// A sample of the queues.
    pub fn sample_queue(&self, store_unsettled: Option<u64>, waiting: u64) {
        let sim_s = self.clock.now_s();
        let mut state = self.lock();
        if let Some(n) = store_unsettled {
            state.last_store_unsettled = n;
        }
        let lane_outboxes = state.in_lane_outboxes.len() as u64;
        state.queue.push(QueuePoint { t_s: sim_s, lane_outboxes, store_unsettled, waiting });
        let total = lane_outboxes + state.last_store_unsettled;
        let minute = Self::minute(&mut state, sim_s);
        minute.queue = total;
        minute.waiting = waiting;
    }

    pub fn progress(&self) -> Progress {
        let sim_s = self.clock.now_s();
        let state = self.lock();
        let p99 = |h: &Option<Histogram<u64>>| h.as_ref().map_or(0.0, |h| percentiles(h).p99);
        Progress {
            sim_s,
            baskets: state.baskets,
            items: state.items,
            customers_started: state.customers_started,
            outcomes: state.outcomes.clone(),
            queue: state.in_lane_outboxes.len() as u64 + state.last_store_unsettled,
            waiting: state.queue.last().map_or(0, |q| q.waiting),
            pay_p99_ms: p99(&state.pay),
            scan_p99_ms: p99(&state.scan),
        }
    }

    pub fn totals(&self) -> Totals {
        let state = self.lock();
        let of = |h: &Option<Histogram<u64>>| h.as_ref().map(percentiles).unwrap_or_default();
        let mut minutes = state.closed_minutes.clone();
        minutes.push(state.open_minute.figures(state.open_index));
        Totals {
            baskets: state.baskets,
            items: state.items,
            rescans: state.rescans,
            outcomes: state.outcomes.clone(),
            coupons: state.coupons.clone(),
            frame_to_scan: of(&state.scan),
            pay_round_trip: of(&state.pay),
            commit: of(&state.commit),
            minutes,
            queue: state.queue.clone(),
            paid_sales: state.paid_sales.clone(),
            member_sales: state.member_sales.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_their_minute_and_stage_and_the_lane_outbox_empties_as_the_store_records() {
        let clock = SimClock { start: Instant::now(), speed: 1.0 };
        let recorder = Recorder::new(clock);
        for ms in [10, 20, 30, 40, 500] {
            recorder.item_scanned(Duration::from_millis(ms));
        }
        recorder.payment("declined_expired_code", Duration::from_millis(900));
        recorder.payment("paid", Duration::from_millis(1_100));
        recorder.sale_paid("L1-000001", "L1-000001-1");
        recorder.sample_queue(Some(2), 5);
        assert_eq!(recorder.progress().queue, 3, "one sale in a lane's outbox, two charges unsettled");
        recorder.sale_recorded("L1-000001");
        let totals = recorder.totals();
        assert_eq!((totals.items, totals.baskets), (5, 1));
        assert_eq!(recorder.progress().queue, 2, "the sale left the lane's outbox");
        assert!((totals.frame_to_scan.p50 - 30.0).abs() < 0.1, "{:?}", totals.frame_to_scan);
        assert!((totals.frame_to_scan.max - 500.0).abs() < 1.0);
        assert_eq!(totals.pay_round_trip.count, 2);
        assert_eq!(totals.commit.count, 1);
        assert_eq!(totals.outcomes["paid"], 1);
        assert_eq!(totals.minutes.len(), 1);
        assert_eq!((totals.minutes[0].paid, totals.minutes[0].not_paid, totals.minutes[0].waiting), (1, 1, 5));
    }

    #[test]
    fn a_minute_gone_by_is_kept_as_its_figures_with_empty_minutes_between() {
        // 6,000 simulated seconds a second: 10 ms of wall time is a simulated minute.
        let recorder = Recorder::new(SimClock { start: Instant::now(), speed: 6_000.0 });
        recorder.payment("paid", Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(25));
        recorder.payment("paid", Duration::from_millis(40));
        let minutes = recorder.totals().minutes;
        assert!(minutes.len() >= 3, "{minutes:?}");
        let (first, last) = (&minutes[0], &minutes[minutes.len() - 1]);
        assert_eq!((first.paid, first.pay_p50_ms.map(f64::round)), (1, Some(20.0)));
        assert_eq!((last.paid, last.pay_p50_ms.map(f64::round)), (1, Some(40.0)));
        assert!(minutes[1..minutes.len() - 1].iter().all(|m| m.paid == 0 && m.pay_p50_ms.is_none()));
        assert!(minutes.iter().enumerate().all(|(i, m)| m.t_s == i as u64 * 60));
    }
}
