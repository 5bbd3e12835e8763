//! A hostile client at the connection and process level: TLS and plaintext, silent and surplus sockets, a
//! second coordinator on a live data folder, a flood of junk within a stated bound.

use std::{sync::Arc, time::Duration};

use checkout_coordinator::sim::SimulatedProvider;
use checkout_proto::v1::{
    self as pb, lane_service_client::LaneServiceClient, store_service_client::StoreServiceClient,
};
use checkout_storage::{Provider, SimulatedWallet, UnixMillis, sample_catalog};
use tonic::{Code, transport::Channel};

use crate::{
    common::{self, WALLET_SEED, manager_client},
    hostile_clients::{code, money, pay},
};

/// A CA and the certificates it signed, made for this run only.
struct TestPki {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    lane_cert_pem: String,
    lane_key_pem: String,
}

impl TestPki {
    fn new() -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
            KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "store CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let signed = |names: Vec<String>, common_name: &str, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params.distinguished_name.push(DnType::CommonName, common_name);
            params.extended_key_usages = vec![usage];
            (params.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
        };
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let (server_cert_pem, server_key_pem) = signed(names, "coordinator", ExtendedKeyUsagePurpose::ServerAuth);
        let (lane_cert_pem, lane_key_pem) = signed(Vec::new(), "L1", ExtendedKeyUsagePurpose::ClientAuth);
        TestPki { ca_pem: ca_cert.pem(), server_cert_pem, server_key_pem, lane_cert_pem, lane_key_pem }
    }

    fn server(&self, lanes_need_certificates: bool) -> checkout_coordinator::listener::TlsFiles {
        checkout_coordinator::listener::TlsFiles {
            certificate_chain_pem: self.server_cert_pem.clone(),
            private_key_pem: self.server_key_pem.clone(),
            client_ca_pem: lanes_need_certificates.then(|| self.ca_pem.clone()),
        }
    }

    fn client(&self, with_certificate: bool) -> checkout_lanes::ClientTls {
        checkout_lanes::ClientTls {
            ca_pem: Some(self.ca_pem.clone()),
            certificate_pem: with_certificate.then(|| self.lane_cert_pem.clone()),
            key_pem: with_certificate.then(|| self.lane_key_pem.clone()),
        }
    }
}

/// A channel to `url` with `tls`.
async fn channel_to(url: &str, tls: &checkout_lanes::ClientTls) -> Result<Channel, tonic::transport::Error> {
    checkout_lanes::coordinator_endpoint(url, Some(tls)).unwrap().connect().await
}

/// Finding 2 (plaintext only): the coordinator serves TLS; a lane and a manager work over it, a
/// plaintext client is refused, and with a client CA a lane without a certificate is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_and_managers_work_over_tls_and_plaintext_is_refused() {
    use checkout_lanes::Bearer;

    let pki = TestPki::new();
    for lanes_need_certificates in [false, true] {
        let data = tempfile::tempdir().unwrap();
        let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
        let mut security = common::test_security();
        security.tls = Some(pki.server(lanes_need_certificates));
        let coordinator = common::start_coordinator_with(data.path(), &sim, security).await;
        let url = coordinator.url.clone();
        assert!(url.starts_with("https://"));

        // A lane over TLS registers and pays.
        let channel = channel_to(&url, &pki.client(lanes_need_certificates)).await.expect("TLS connection");
        let mut lane =
            LaneServiceClient::with_interceptor(channel.clone(), Bearer::new(&common::lane_token("L1")).unwrap());
        let request = pb::RegisterLaneRequest { lane_id: "L1".into(), description: "over TLS".into() };
        lane.register_lane(request).await.expect("register over TLS");
        let paid = lane.pay(pay("L1", "L1-TLS", 1, &code(Provider::Alipay, 8), 1, 1)).await.unwrap().into_inner();
        assert_eq!(paid.outcome(), pb::PaymentOutcome::Paid);
        let mut manager = StoreServiceClient::with_interceptor(channel, Bearer::new(common::MANAGER_TOKEN).unwrap());
        let totals = manager.get_totals(pb::GetTotalsRequest::default()).await.expect("totals over TLS").into_inner();
        assert_eq!(totals.payments_paid, 1);

        // A whole lane over TLS: it registers, signs its cashier on and off through its outbox.
        let mut config = checkout_lanes::LaneConfig::new(
            checkout_storage::LaneId::parse("L2").unwrap(),
            url.clone(),
            checkout_lanes::FrameSource::Paths(Vec::new()),
        );
        config.tls = Some(pki.client(lanes_need_certificates));
        common::run_lane(config).await;
        let request = pb::ListShiftsRequest { lane_id: "L2".into(), ..Default::default() };
        let shifts = manager.list_shifts(request).await.unwrap().into_inner().shifts;
        assert_eq!(shifts.len(), 1, "{shifts:?}");
        assert_eq!(shifts[0].closed_how, "signed off");

        // Plaintext against the TLS port: no answer.
        let plain_url = url.replacen("https://", "http://", 1);
        let plain = async {
            let channel = Channel::from_shared(plain_url).unwrap().connect().await?;
            let mut client = StoreServiceClient::new(channel);
            client.get_totals(pb::GetTotalsRequest::default()).await.map_err(|e| e.to_string())?;
            Ok::<_, Box<dyn std::error::Error>>(())
        };
        let plain = tokio::time::timeout(Duration::from_secs(15), plain).await.expect("refused promptly");
        assert!(plain.is_err(), "a plaintext client was served on the TLS port");

        if lanes_need_certificates {
            let without = async {
                let channel = channel_to(&url, &pki.client(false)).await?;
                let mut client =
                    LaneServiceClient::with_interceptor(channel, Bearer::new(&common::lane_token("L1")).unwrap());
                let request = pb::RegisterLaneRequest { lane_id: "L1".into(), description: String::new() };
                client.register_lane(request).await.map_err(|e| e.to_string())?;
                Ok::<_, Box<dyn std::error::Error>>(())
            };
            let without = tokio::time::timeout(Duration::from_secs(15), without).await.expect("refused promptly");
            assert!(without.is_err(), "a lane without a certificate was served");
        }
        coordinator.stop().await;
    }
}

/// Finding 5 (connections): sockets that never speak are closed after the handshake timeout, and
/// connections past the cap are closed at once; a real client gets through once they are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_handshake_timeout_and_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let mut security = common::test_security();
    security.limits.connections.max_connections_per_address = 4;
    security.limits.connections.handshake_timeout = Duration::from_secs(1);
    let coordinator = common::start_coordinator_with(data.path(), &sim, security).await;
    let address = coordinator.url.trim_start_matches("http://").to_owned();

    let mut idle = Vec::new();
    for n in 0..4 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        if n == 3 {
            // Half a preface, then nothing: a slow sender is no better than a silent one.
            stream.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
        }
        idle.push(stream);
    }
    // Over the cap: closed at once.
    let mut over = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_millis(500), over.read(&mut byte)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "a connection past the cap stayed open: {closed:?}");

    // Within the timeout and a little more, each idle socket is closed by the coordinator.
    let started = std::time::Instant::now();
    for mut stream in idle {
        let mut sink = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(read.is_ok(), "an idle connection was still open after 5 s");
    }
    assert!(started.elapsed() < Duration::from_secs(3), "closed after {:?}", started.elapsed());

    // The real client is served again.
    let mut manager = manager_client(&coordinator.url).await;
    manager.get_totals(pb::GetTotalsRequest::default()).await.expect("a real client after the idle ones went");
    coordinator.stop().await;
}

/// Starts `checkout coordinator` on a free port with `data`; returns it, its URL, and its stderr file.
fn coordinator_process(data: &std::path::Path, log: &std::path::Path) -> (common::processes::Process, String) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(common::processes::BIN)
        .args(["coordinator", "--listen", "127.0.0.1:0", "--wallet-seed", "hostile", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start coordinator");
    let address = common::processes::listening_address(&mut child, "coordinator");
    (common::processes::Process(child), format!("http://{address}"))
}

/// Finding 3: a second coordinator on a live data folder is refused, changes nothing, and the first
/// goes on serving and loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_coordinator_on_a_live_folder_is_refused_and_the_first_loses_nothing() {
    use common::processes::{manager_token, terminate, wait_for_exit};

    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let (mut first, url) = coordinator_process(data.path(), &logs.path().join("first.log"));
    let manager = manager_token(data.path());
    let token = common::issue_lane_token(&url, &manager, "L1").await;
    let mut lane = common::lane_client_with(&url, &token).await;
    lane.register_lane(pb::RegisterLaneRequest { lane_id: "L1".into(), description: String::new() }).await.unwrap();
    let code = |wallet: u16| {
        SimulatedWallet::new(b"hostile", Provider::WeChatPay, wallet)
            .issue_code(UnixMillis::now())
            .expose_digits()
            .to_owned()
    };
    for n in 0..3u16 {
        let paid = lane.pay(pay("L1", &format!("L1-BEFORE{n}"), 1, &code(n), 0, 1)).await.unwrap().into_inner();
        assert_eq!(paid.outcome(), pb::PaymentOutcome::Paid);
    }

    let second = std::process::Command::new(common::processes::BIN)
        .args(["coordinator", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(logs.path().join("second.log")).unwrap())
        .spawn()
        .unwrap();
    let mut second = common::processes::Process(second);
    let status = wait_for_exit(&mut second.0, Duration::from_secs(20)).expect("the second coordinator exits");
    assert!(!status.success());
    let log = std::fs::read_to_string(logs.path().join("second.log")).unwrap();
    assert!(log.contains("in use by another process"), "{log}");

    // The first keeps serving, on files that are still the folder's.
    for n in 3..6u16 {
        let paid = lane.pay(pay("L1", &format!("L1-AFTER{n}"), 1, &code(n), 0, 1)).await.unwrap().into_inner();
        assert_eq!(paid.outcome(), pb::PaymentOutcome::Paid);
    }
    let fds = std::fs::read_dir(format!("/proc/{}/fd", first.0.id())).unwrap();
    for fd in fds.flatten() {
        let target = std::fs::read_link(fd.path()).map(|p| p.display().to_string()).unwrap_or_default();
        assert!(!target.ends_with("(deleted)"), "the first coordinator writes to a deleted file: {target}");
    }
    drop(lane);
    assert!(terminate(&mut first.0, Duration::from_secs(15)).success());

    // Everything acknowledged is there after a restart.
    let (mut again, url) = coordinator_process(data.path(), &logs.path().join("again.log"));
    let mut store = common::store_client_with(&url, &manager).await;
    let totals = store.get_totals(pb::GetTotalsRequest::default()).await.unwrap().into_inner();
    assert_eq!((totals.sales, totals.payments_paid), (6, 6));
    assert!(terminate(&mut again.0, Duration::from_secs(15)).success());
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The bytes of every file below `dir`.
fn bytes_below(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() { pending.push(entry.path()) } else { total += meta.len() }
        }
    }
    total
}

/// Finding 4: 1,000 anonymous Pays with the largest basket, then 1,000 Pays of one lane with junk codes,
/// leave the data folder and the coordinator's memory within a small bound; the lane's unpaid sales are capped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_junk_pays_leaves_disk_and_memory_growth_bounded() {
    use common::processes::{manager_token, terminate};

    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let (mut coordinator, url) = coordinator_process(data.path(), &logs.path().join("coordinator.log"));
    let manager = manager_token(data.path());
    let token = common::issue_lane_token(&url, &manager, "L1").await;
    let mut lane = common::lane_client_with(&url, &token).await;
    lane.register_lane(pb::RegisterLaneRequest { lane_id: "L1".into(), description: String::new() }).await.unwrap();
    let real = SimulatedWallet::new(b"hostile", Provider::Alipay, 1).issue_code(UnixMillis::now());
    let paid = lane.pay(pay("L1", "L1-REAL", 1, real.expose_digits(), 0, 1)).await.unwrap().into_inner();
    assert_eq!(paid.outcome(), pb::PaymentOutcome::Paid);
    let pid = coordinator.0.id();
    let (disk_before, rss_before) = (bytes_below(data.path()), rss_kib(pid));

    // The largest basket a Pay takes: 500 lines.
    // Products the store prices itself (an open-price item's line would need a typed price).
    let catalog: Vec<_> = sample_catalog().into_iter().filter(|p| !p.is_open_price()).collect();
    let lines: Vec<pb::SaleLine> = (0..500)
        .map(|i| pb::SaleLine { gtin: catalog[i % catalog.len()].gtin.to_string(), quantity: 1, unit_price: None })
        .collect();
    let total: i64 = (0..500).map(|i| catalog[i % catalog.len()].price.minor_units).sum();
    let junk = |sale: String, attempt: u32, n: u64| pb::PayRequest {
        lane_id: "L1".into(),
        sale_id: sale,
        attempt,
        // Well-formed WeChat Pay codes no wallet issued.
        payment_code: format!("13{:016}", 7_000_000_000_000_000 + n),
        lines: lines.clone(),
        amount: money(total),
        ..Default::default()
    };
    let mut anonymous = LaneServiceClient::new(Channel::from_shared(url.clone()).unwrap().connect().await.unwrap());
    for n in 0..1_000u64 {
        let status = anonymous.pay(junk(format!("L1-ANON{n}"), 1, n)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    let (disk_anonymous, rss_anonymous) = (bytes_below(data.path()), rss_kib(pid));

    // With a lane's own token: every junk code is declined by the provider; past 32 unpaid sales the lane is refused.
    let (mut declined, mut capped) = (0, 0);
    for n in 0..1_000u64 {
        match lane.pay(junk(format!("L1-JUNK{}", n / 30), (n % 30) as u32 + 1, 10_000 + n)).await {
            Ok(answer) => {
                assert_eq!(answer.into_inner().outcome(), pb::PaymentOutcome::NewCodeNeeded);
                declined += 1;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                capped += 1;
            }
        }
    }
    let (disk_after, rss_after) = (bytes_below(data.path()), rss_kib(pid));
    let mib = |bytes: u64| bytes as f64 / 1_048_576.0;
    eprintln!(
        "junk flood: anonymous: disk {:+.2} MiB, memory {:+.1} MiB; with a lane token ({declined} declined, {capped} over the cap): disk {:+.2} MiB, memory {:+.1} MiB",
        mib(disk_anonymous.saturating_sub(disk_before)),
        (rss_anonymous as f64 - rss_before as f64) / 1024.0,
        mib(disk_after.saturating_sub(disk_anonymous)),
        (rss_after as f64 - rss_anonymous as f64) / 1024.0,
    );
    assert_eq!(declined, 32 * 30, "32 unpaid sales of 30 attempts each");
    assert_eq!(capped, 1_000 - 32 * 30);
    // Lane junk grows the ledger by sled's log of the intents, each with its 500 lines until it is
    // declined; the figures are printed above.
    assert!(disk_anonymous.saturating_sub(disk_before) < 1_048_576, "anonymous junk grew the ledger");
    assert!(rss_anonymous.saturating_sub(rss_before) < 16 * 1024, "anonymous junk grew the memory");
    assert!(disk_after.saturating_sub(disk_anonymous) < 16 * 1_048_576, "lane junk grew the ledger too much");
    assert!(rss_after.saturating_sub(rss_anonymous) < 32 * 1024, "lane junk grew the memory too much");

    // The ledger keeps no basket of a declined charge: a page of them is small.
    let mut store = common::store_client_with(&url, &manager).await;
    let request = pb::ListPaymentsRequest { lane_id: "L1".into(), ..Default::default() };
    let listed = store.list_payments(request).await.unwrap().into_inner().payments;
    assert!(listed.iter().any(|p| p.outcome() == pb::PaymentOutcome::NewCodeNeeded));
    drop((lane, anonymous, store));
    assert!(terminate(&mut coordinator.0, Duration::from_secs(15)).success());
}

/// Finding 5 (file descriptors): with the open-file limit at 128, 200 silent sockets neither take the
/// coordinator down nor keep a real client out for longer than the handshake timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_at_a_low_file_limit_do_not_lock_real_clients_out() {
    use std::process::{Command, Stdio};

    use common::processes::{BIN, Process, listening_address, manager_token, terminate};

    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("SKIPPED: prlimit (util-linux) is not installed");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let config = data.path().with_extension("toml");
    std::fs::write(&config, "[limits]\nhandshake_timeout_secs = 1\n").unwrap();
    let mut child = Command::new("prlimit")
        .args(["--nofile=128:128", BIN, "coordinator", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start coordinator under prlimit");
    let address = listening_address(&mut child, "coordinator");
    let mut coordinator = Process(child);
    let url = format!("http://{address}");
    let token = manager_token(data.path());

    let silent: Vec<std::net::TcpStream> =
        (0..200).filter_map(|_| std::net::TcpStream::connect(&address).ok()).collect();
    let started = std::time::Instant::now();
    let served = loop {
        let attempt = async {
            let endpoint = Channel::from_shared(url.clone()).unwrap().connect_timeout(Duration::from_secs(1));
            let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
            let bearer = checkout_lanes::Bearer::new(&token).unwrap();
            let mut client = StoreServiceClient::with_interceptor(channel, bearer);
            client.get_totals(pb::GetTotalsRequest::default()).await.map_err(|e| e.to_string())
        };
        match tokio::time::timeout(Duration::from_secs(2), attempt).await {
            Ok(Ok(_)) => break true,
            _ if started.elapsed() > Duration::from_secs(10) => break false,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    eprintln!("a real client was served {:?} after {} silent sockets opened", started.elapsed(), silent.len());
    assert!(served, "a real client was kept out for 10 s");
    assert!(coordinator.0.try_wait().unwrap().is_none(), "the coordinator died");
    drop(silent);
    assert!(terminate(&mut coordinator.0, Duration::from_secs(15)).success());
}
