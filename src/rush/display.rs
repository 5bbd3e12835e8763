//! The rush's live display: simulated clock, baskets, payments by outcome, offline queue and p99 so far, as an
//! `indicatif` bar on a terminal, or a plain line every few seconds when stdout is not one.

use std::{
    io::IsTerminal,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};

use super::measure::{Progress, Recorder};

/// Time between two plain lines when stdout is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

fn clock(sim_s: f64) -> String {
    let s = sim_s.max(0.0) as u64;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// One line of progress.
pub fn line(p: &Progress, customers: u64) -> String {
    let count = |k: &str| p.outcomes.get(k).copied().unwrap_or(0);
    let declined: u64 = p.outcomes.iter().filter(|(k, _)| k.starts_with("declined")).map(|(_, n)| n).sum();
    format!(
        "sim {} | at tills {} | baskets {}/{} | items {} | paid {} declined {} unreachable {} | queue {} waiting {} | p99 pay {:.0} ms scan {:.0} ms",
        clock(p.sim_s),
        p.customers_started - p.baskets,
        p.baskets,
        customers,
        p.items,
        count("paid"),
        declined,
        count("store_unreachable"),
        p.queue,
        p.waiting,
        p.pay_p99_ms,
        p.scan_p99_ms,
    )
}

/// Shows progress until `stop` is set.
pub fn spawn(recorder: Arc<Recorder>, customers: u64, duration_s: f64, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        if std::io::stdout().is_terminal() {
            let bar = ProgressBar::new(duration_s.max(1.0) as u64);
            let style = ProgressStyle::with_template("{bar:24.cyan/blue} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            while !stop.load(Ordering::Relaxed) {
                let progress = recorder.progress();
                bar.set_position(progress.sim_s.min(duration_s) as u64);
                bar.set_message(line(&progress, customers));
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        } else {
            let mut next = Instant::now() + PLAIN_EVERY;
            while !stop.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    println!("{}", line(&recorder.progress(), customers));
                    next += PLAIN_EVERY;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    })
}
