//! A process's memory as Linux reports it (`/proc/<pid>/status`), for the benchmarks.

/// A line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`) in MiB.
fn status_mib(pid: &str, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Peak resident memory of this process so far (`VmHWM`), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    status_mib("self", "VmHWM:")
}

/// Resident memory of this process now (`VmRSS`), in MiB.
pub fn resident_mib() -> Option<f64> {
    status_mib("self", "VmRSS:")
}

/// Resident memory of process `pid` now, in MiB.
pub fn resident_mib_of(pid: u32) -> Option<f64> {
    status_mib(&pid.to_string(), "VmRSS:")
}

/// Starts a new peak (`VmHWM` from now on): writing 5 to `clear_refs` resets it (Linux 4.0 and later).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
