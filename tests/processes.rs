//! The `checkout` binary as an operator runs it: a coordinator process, a lane process, SIGTERM, restart.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use checkout_proto::v1::{self as pb, store_service_client::StoreServiceClient};

const BIN: &str = env!("CARGO_BIN_EXE_checkout");

/// Starts `checkout coordinator` on a free port and returns it with its URL.
fn start_coordinator(data: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["coordinator", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(["--wallet-seed", "process test"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start coordinator");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read address");
    let address = line.trim().strip_prefix("coordinator listening on ").expect("address line").to_owned();
    (child, format!("http://{address}"))
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    for _ in 0..300 {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("the coordinator did not stop within 15 s of SIGTERM");
}

async fn totals(url: &str) -> pb::GetTotalsResponse {
    let mut client = StoreServiceClient::connect(url.to_owned()).await.expect("connect");
    client.get_totals(pb::GetTotalsRequest {}).await.expect("totals").into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_and_lane_processes_pay_and_the_coordinator_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let (mut coordinator, url) = start_coordinator(data.path());

    let lane = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            Command::new(BIN)
                .args(["lane", "--id", "L3", "--coordinator", &url, "--synthetic", "--customers", "2", "--fps", "120"])
                .args(["--wallet-seed", "process test"])
                .stderr(Stdio::null())
                .output()
                .expect("run lane")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&lane.stdout);
    assert!(lane.status.success(), "lane failed: {stdout}");
    assert!(stdout.contains("lane L3: 2 sales"), "{stdout}");

    let before = totals(&url).await;
    assert_eq!(before.sales, 2);
    assert_eq!(before.payments_paid, 2);

    let status = terminate(&mut coordinator);
    assert!(status.success(), "coordinator exit status after SIGTERM: {status:?}");

    let (mut coordinator, url) = start_coordinator(data.path());
    let after = totals(&url).await;
    assert_eq!((after.sales, after.items, after.paid_total), (before.sales, before.items, before.paid_total));
    assert!(terminate(&mut coordinator).success());
}
