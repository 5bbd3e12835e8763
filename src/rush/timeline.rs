//! What `checkout rush` records over simulated time, minute by minute, for the report and the plot.

use serde::Serialize;

/// One simulated minute of the rush.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Minute {
    /// Start of the minute, in simulated seconds from the start of the rush.
    pub t_s: u64,
    /// Payments that ended paid in this minute.
    pub paid: u64,
    /// Payments that ended any other way in this minute (declined, refused, abandoned).
    pub not_paid: u64,
    /// Items scanned in this minute.
    pub items: u64,
    /// Payment round trip (scheduled to answered) in this minute, milliseconds of wall time; `None` when no
    /// payment ended in it.
    pub pay_p50_ms: Option<f64>,
    pub pay_p99_ms: Option<f64>,
    /// Frame-to-scan latency in this minute, milliseconds of wall time.
    pub scan_p50_ms: Option<f64>,
    pub scan_p99_ms: Option<f64>,
    /// The offline queue at the end of the minute: paid sales the lanes still hold (not yet durable at the
    /// store) plus charges the store has not settled with the provider.
    pub queue: u64,
    /// Customers waiting in line (arrived, not yet at a till) at the end of the minute.
    pub waiting: u64,
}

/// A window in which a fault was in force.
#[derive(Debug, Clone, Serialize)]
pub struct FaultWindow {
    /// What went wrong: "provider outage", "coordinator restart", ...
    pub kind: String,
    /// Simulated seconds from the start of the rush.
    pub start_s: f64,
    pub end_s: f64,
}
