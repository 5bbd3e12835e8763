//! A real full disk under the coordinator's ledger: the charge that cannot be stored is refused with a
//! clear error, the coordinator stops (fail-stop), nothing it acknowledged is lost, and after a restart
//! with room on the disk every charge settles to the provider's books.
//!
//! The ledger lives on a 16 MiB tmpfs in a private mount namespace (`unshare -rm`, no privileges
//! needed); coordinators enter it with `nsenter`, and the test reaches it through `/proc/PID/root`.

use crate::common;

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use checkout_lanes::CoordinatorClient;
use checkout_proto::v1 as pb;
use checkout_storage::{Provider, SimulatedWallet, UnixMillis, sample_catalog};
use common::{
    ManagerClient,
    processes::{BIN, Process, free_port, manager_token, provider_sim, sim_http, wait_for_exit, wait_for_port},
};
use tonic::Code;

const SEED: &str = "disk full wallets";

fn private_tmpfs_works() -> bool {
    Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /tmp && touch /tmp/x"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Holds a private mount namespace with a 16 MiB tmpfs at `mount_point` for as long as it lives.
fn tmpfs_holder(mount_point: &Path) -> Process {
    let script = r#"mount -t tmpfs -o size=16m tmpfs "$1" && echo mounted && exec sleep 600"#;
    let mut child = Command::new("unshare")
        .args(["-rm", "sh", "-c", script, "sh"])
        .arg(mount_point)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("unshare");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "mounted");
    Process(child)
}

/// Starts a coordinator inside `holder`'s namespace, its ledger on the tmpfs; its stderr goes to `log`.
fn coordinator_on_tmpfs(holder: &Process, mount_point: &Path, port: u16, sim: &str, log: &Path) -> Process {
    let process = spawn_on_tmpfs(holder, mount_point, port, sim, log);
    wait_for_port(port);
    process
}

fn spawn_on_tmpfs(holder: &Process, mount_point: &Path, port: u16, sim: &str, log: &Path) -> Process {
    let child = Command::new("nsenter")
        .args(["--preserve-credentials", "-U", "-m", "-t", &holder.0.id().to_string(), BIN, "coordinator"])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(mount_point.join("ledger"))
        .args(["--provider-sim", &format!("http://{sim}"), "--grace-secs", "2", "--resolve-every-ms", "300"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start the coordinator in the tmpfs's namespace");
    Process(child)
}

/// Waits for `process` to exit, at most 20 s.
async fn exit_of(mut process: Process) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || {
        wait_for_exit(&mut process.0, Duration::from_secs(20)).expect("the coordinator kept running")
    })
    .await
    .unwrap()
}

/// Fills the file system of `dir` up to the last byte; returns the filler file.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = file.write_all(&chunk) {
            assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC, got {e}");
            break;
        }
    }
    // Whatever is left is smaller than a chunk: take it byte by byte.
    while file.write_all(&[0]).is_ok() {}
    filler
}

fn pay_request(sale_id: &str, wallet: u16) -> pb::PayRequest {
    let product = &sample_catalog()[2];
    pb::PayRequest {
        lane_id: "L1".into(),
        sale_id: sale_id.into(),
        attempt: 1,
        payment_code: SimulatedWallet::new(SEED.as_bytes(), Provider::WeChatPay, wallet)
            .issue_code(UnixMillis::now())
            .expose_digits()
            .into(),
        lines: vec![pb::SaleLine { gtin: product.gtin.to_string(), quantity: 1, unit_price: None }],
        amount: Some(pb::Money { minor_units: product.price.minor_units, currency: "CNY".into() }),
        ..Default::default()
    }
}

async fn sales(store: &mut ManagerClient) -> Vec<String> {
    let sales = store.list_sales(pb::ListSalesRequest::default()).await.unwrap().into_inner().sales;
    sales.into_iter().map(|s| s.sale_id).collect()
}

fn orders_of(sim: &str, sale_id: &str) -> usize {
    let books = sim_http(sim, "GET", "/sim/books", "");
    books["orders"].as_array().unwrap().iter().filter(|o| o["out_trade_no"].as_str().unwrap().contains(sale_id)).count()
}

/// Lane L1 (with a token the manager issues it) and the manager, on the coordinator whose ledger is `ledger`.
async fn connect(port: u16, ledger: &Path) -> (CoordinatorClient, ManagerClient) {
    let url = format!("http://127.0.0.1:{port}");
    let manager = manager_token(ledger);
    let token = common::issue_lane_token(&url, &manager, "L1").await;
    (common::lane_client_with(&url, &token).await, common::store_client_with(&url, &manager).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_coordinator_cleanly_and_loses_nothing() {
    if !private_tmpfs_works() {
        eprintln!("SKIPPED: this machine cannot mount a tmpfs in a private namespace (unshare -rm)");
        return;
    }
    let (_sim, sim) = provider_sim(SEED, &[]);
    let mount_point = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let holder = tmpfs_holder(mount_point.path());
    // The namespace's view of its tmpfs, from outside.
    let tmpfs = PathBuf::from(format!("/proc/{}/root{}", holder.0.id(), mount_point.path().display()));
    let port = free_port();
    let coordinator = coordinator_on_tmpfs(&holder, mount_point.path(), port, &sim, &logs.path().join("1.log"));
    assert!(tmpfs.join("ledger").is_dir(), "the ledger is on the tmpfs");

    let (mut lane, _) = connect(port, &tmpfs.join("ledger")).await;
    lane.register_lane(pb::RegisterLaneRequest { lane_id: "L1".into(), description: "disk".into() }).await.unwrap();
    let paid = lane.pay(pay_request("L1-BEFORE", 1)).await.unwrap().into_inner();
    assert_eq!(paid.outcome(), pb::PaymentOutcome::Paid, "{paid:?}");

    let filler = fill(&tmpfs);
    // sled first fills the log segment it already holds, so it takes some charges to reach the wall.
    let mut refused_sale = None;
    let mut paid_on_full_disk = 0;
    for n in 0..400u16 {
        let sale_id = format!("L1-FULL{n}");
        match lane.pay(pay_request(&sale_id, 10 + n)).await {
            Ok(answer) => {
                assert_eq!(answer.into_inner().outcome(), pb::PaymentOutcome::Paid);
                paid_on_full_disk += 1;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(status.message().contains("ledger failed; nothing was recorded"), "{status:?}");
                refused_sale = Some(sale_id);
                break;
            }
        }
    }
    let refused_sale = refused_sale.expect("a full disk never refused a charge");
    eprintln!("disk full: {paid_on_full_disk} charges fitted in sled's last segment, then {refused_sale} was refused");

    // Fail-stop: the coordinator exits with a clear message instead of carrying on unsure of its disk.
    let exited = exit_of(coordinator).await;
    assert!(!exited.success(), "a failed ledger is not a clean exit");
    let log = std::fs::read_to_string(logs.path().join("1.log")).unwrap();
    assert!(log.contains("No space left on device") && log.contains("start it again"), "{log}");

    // Started again on the still-full disk, it refuses to open, clearly, and leaves no half copy behind.
    let refused = spawn_on_tmpfs(&holder, mount_point.path(), free_port(), &sim, &logs.path().join("full.log"));
    assert!(!exit_of(refused).await.success(), "opened a ledger on a full disk");
    let log = std::fs::read_to_string(logs.path().join("full.log")).unwrap();
    assert!(log.contains("No space left on device"), "{log}");
    let leftovers: Vec<_> = std::fs::read_dir(tmpfs.join("ledger")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!leftovers.iter().any(|name| name.to_string_lossy().starts_with(".opening")), "{leftovers:?}");

    // Room again: the coordinator starts on the same folder with everything it acknowledged.
    std::fs::remove_file(&filler).unwrap();
    let port = free_port();
    let _coordinator = coordinator_on_tmpfs(&holder, mount_point.path(), port, &sim, &logs.path().join("2.log"));
    let (mut lane, mut store) = connect(port, &tmpfs.join("ledger")).await;
    // The lane asks again about the refused sale (same request): a definite answer now.
    let again = lane.pay(pay_request(&refused_sale, 10 + paid_on_full_disk)).await;
    eprintln!("the refused sale asked again: {again:?}");
    let after = lane.pay(pay_request("L1-AFTER", 1000)).await.unwrap().into_inner();
    assert_eq!(after.outcome(), pb::PaymentOutcome::Paid, "{after:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !store
        .list_unsettled(pb::ListUnsettledRequest { page_size: 1000, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .payments
        .is_empty()
    {
        assert!(std::time::Instant::now() < deadline, "charges still unsettled after 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recorded = sales(&mut store).await;
    assert!(recorded.contains(&"L1-BEFORE".to_owned()) && recorded.contains(&"L1-AFTER".to_owned()), "{recorded:?}");
    assert_eq!(recorded.len(), 2 + paid_on_full_disk as usize + usize::from(orders_of(&sim, &refused_sale) > 0));
    let books = sim_http(&sim, "GET", "/sim/books", "");
    let paid_in_books: Vec<&str> = books["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["state"].as_str() == Some("Paid"))
        .map(|o| o["out_trade_no"].as_str().unwrap())
        .collect();
    assert_eq!(recorded.len(), paid_in_books.len(), "every paid order has its sale: {recorded:?} {paid_in_books:?}");
}
