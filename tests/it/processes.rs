//! The `checkout` binary as an operator runs it: a coordinator process, a lane process, SIGTERM, restart.

use crate::common;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use checkout_proto::v1 as pb;
use checkout_storage::{LaneStore, Provider};
use common::processes::{BIN, enrolment_secret_file, listening_address, manager_token, terminate};

/// Starts `checkout coordinator` on a free port, logging everything to `log`, and returns it with its URL.
fn start_coordinator(data: &Path, log: &Path) -> (Child, String) {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
    let mut child = Command::new(BIN)
        .args(["coordinator", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(["--wallet-seed", "process test"])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start coordinator");
    let address = listening_address(&mut child, "coordinator");
    (child, format!("http://{address}"))
}

/// Every run of digits in `bytes` that is shaped like a wallet payment code.
fn payment_codes_in(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| !b.is_ascii_digit())
        .filter(|run| (16..=24).contains(&run.len()))
        .map(|run| String::from_utf8_lossy(run).into_owned())
        .filter(|run| Provider::of_code(run).is_some())
        .collect()
}

/// Every file below `dir`.
fn files_below(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() { pending.push(path) } else { files.push(path) }
        }
    }
    files
}

async fn totals(url: &str, data: &Path) -> pb::GetTotalsResponse {
    let mut client = common::store_client_with(url, &manager_token(data)).await;
    client.get_totals(pb::GetTotalsRequest::default()).await.expect("totals").into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_and_lane_processes_pay_and_the_coordinator_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let coordinator_log = logs.path().join("coordinator.log");
    let (mut coordinator, url) = start_coordinator(data.path(), &coordinator_log);

    let lane_data = tempfile::tempdir().unwrap();
    let lane = tokio::task::spawn_blocking({
        let url = url.clone();
        let lane_data = lane_data.path().to_owned();
        let store_data = data.path().to_owned();
        move || {
            Command::new(BIN)
                .arg("lane")
                .arg("--data")
                .arg(&lane_data)
                .args(["--id", "L3", "--coordinator", &url, "--synthetic", "--customers", "2", "--fps", "120"])
                .arg("--enrolment-secret")
                .arg(enrolment_secret_file(&store_data))
                .args(["--wallet-seed", "process test", "--cashier", "anna-li"])
                .env("RUST_LOG", "debug")
                .output()
                .expect("run lane")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&lane.stdout);
    assert!(lane.status.success(), "lane failed: {stdout}");
    assert!(stdout.contains("lane L3: 2 sales"), "{stdout}");
    assert!(stdout.contains("frame to scan event: median"), "the lane measures its own latency: {stdout}");

    let before = totals(&url, data.path()).await;
    assert_eq!(before.sales, 2);
    assert_eq!(before.payments_paid, 2);
    // The cashier's shift opened with the lane and closed with it, with both sales in its report.
    let mut manager = common::store_client_with(&url, &manager_token(data.path())).await;
    let shifts = manager.list_shifts(pb::ListShiftsRequest::default()).await.unwrap().into_inner().shifts;
    assert_eq!(shifts.len(), 1, "{shifts:?}");
    let shift = &shifts[0];
    assert_eq!((shift.cashier_id.as_str(), shift.closed_how.as_str(), shift.sales), ("anna-li", "signed off", 2));
    assert_eq!(shift.sales_total, before.sales_total);

    let status = terminate(&mut coordinator, Duration::from_secs(15));
    assert!(status.success(), "coordinator exit status after SIGTERM: {status:?}");

    let (mut coordinator, url) = start_coordinator(data.path(), &coordinator_log);
    let after = totals(&url, data.path()).await;
    assert_eq!((after.sales, after.items, after.paid_total), (before.sales, before.items, before.paid_total));
    assert!(terminate(&mut coordinator, Duration::from_secs(15)).success());

    // Privacy: no full payment code in the ledger's files or in any log, even at debug level.
    let coordinator_log = std::fs::read(&coordinator_log).unwrap();
    assert!(String::from_utf8_lossy(&coordinator_log).contains("charge answered"), "the log was captured");
    let mut leaks = payment_codes_in(&coordinator_log);
    leaks.extend(payment_codes_in(&lane.stderr));
    leaks.extend(payment_codes_in(&lane.stdout));
    for file in files_below(data.path()).into_iter().chain(files_below(lane_data.path())) {
        leaks.extend(payment_codes_in(&std::fs::read(&file).unwrap()));
    }
    assert!(leaks.is_empty(), "payment codes written in full: {} found", leaks.len());
    // Nor a credential in any log.
    let lane_token = LaneStore::open(lane_data.path()).unwrap().lane_token().unwrap().expect("the lane kept its token");
    let secret = std::fs::read_to_string(enrolment_secret_file(data.path())).unwrap();
    for credential in [manager_token(data.path()), secret.trim().to_owned(), lane_token] {
        let secret_part = &credential[4..];
        for log in [&coordinator_log, &lane.stderr, &lane.stdout] {
            assert!(!String::from_utf8_lossy(log).contains(secret_part), "a credential is in a log");
        }
    }
}
