//! `checkout rush` as an operator runs it: a short busy period against coordinator and provider processes with a
//! coordinator killed (SIGKILL) and restarted in the middle, and a provider outage; its verdict, report and plot.

use std::process::Command;

use serde_json::Value;

use crate::common::processes::BIN;

#[test]
fn a_short_rush_with_a_restart_and_an_outage_loses_nothing_and_writes_its_report_and_plot() {
    let out = tempfile::tempdir().unwrap();
    let (report, plot, log) = (out.path().join("rush.json"), out.path().join("rush.svg"), out.path().join("rush.log"));
    let run = Command::new(BIN)
        .args(["rush", "--processes", "--lanes", "3", "--duration", "6m", "--speed", "30", "--seed", "5"])
        .args(["--restarts", "1", "--outage", "1m+1m", "--dropped-answers", "0.05", "--provider-errors", "0.05"])
        .arg("--report")
        .arg(&report)
        .arg("--plot")
        .arg(&plot)
        .arg("--log")
        .arg(&log)
        .output()
        .expect("run checkout rush");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "rush failed: {stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("-> OK"), "the summary gives the verdict: {stdout}");

    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).expect("the report is JSON");
    let verdict = &report["verdict"];
    for count in ["lost", "double_charged", "unresolved", "ledger_vs_books_differences"] {
        assert_eq!(verdict[count], 0, "verdict {count}: {verdict}");
    }
    let planned = report["setup"]["customers_planned"].as_u64().unwrap();
    assert!(planned >= 3, "a few customers: {planned}");
    assert_eq!(report["baskets"].as_u64(), Some(planned), "every customer left with a paid basket");
    assert_eq!(report["payments"]["paid"].as_u64(), Some(planned));
    assert_eq!(verdict["ledger_paid"].as_u64(), Some(planned), "the ledger holds every paid charge once");
    assert_eq!(verdict["sales_recorded"].as_u64(), Some(planned));
    assert!(report["items"].as_u64().unwrap() >= planned);
    for stage in ["frame_to_scan", "pay_round_trip", "commit"] {
        let s = &report["latency_ms"][stage];
        let (p50, p99, max) = (s["p50"].as_f64().unwrap(), s["p99"].as_f64().unwrap(), s["max"].as_f64().unwrap());
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{stage}: {s}");
    }
    assert!(report["throughput_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["rss_mib"].as_f64().unwrap() > 1.0);
    assert_eq!(report["dropped_frames"], 0);
    assert!(report["queue"].as_array().unwrap().len() >= 30, "sampled every 10 simulated seconds");
    let faults: Vec<&str> = report["faults"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(faults, ["provider outage", "coordinator restart"], "in the order they happened");
    assert!(report["queue_drained_after_outage_s"].as_f64().is_some(), "the offline queue emptied after the outage");

    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.trim_start().starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "an SVG document");
    assert_eq!(svg.matches("<svg").count(), 1);
    for label in ["Throughput", "Latency", "Offline queue", "provider outage", "coordinator restart"] {
        assert!(svg.contains(label), "the plot shows {label}");
    }
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("coordinator killed (SIGKILL)"), "the log file has the rush's and the store's tracing");
    assert!(!log.contains("\u{1b}["), "plain text, no terminal colours");
}
