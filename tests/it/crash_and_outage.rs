//! Crash and outage runs with real processes: lanes paying through a coordinator that is killed with
//! SIGKILL again and again (and a lane killed too), then a provider outage in a busy stretch.
//! Afterwards every charge is settled, no customer paid twice for a sale, and the ledger equals the
//! provider's books order by order.

use std::{
    collections::{BTreeMap, HashMap},
    io::Read,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use checkout_proto::v1 as pb;
use serde_json::Value;

use crate::common;

use common::processes::{
    BIN, Process, enrolment_secret_file, free_port, kill9, manager_token, sim_http, wait_for_exit, wait_for_port,
};

const SEED: &str = "crash test wallets";
/// Members enrolled before the lanes start; two in five synthetic customers are one of them.
const MEMBERS: u32 = 4;
/// Coupons issued before the lanes start (their codes in this file of the store's folder); one customer in five
/// shows one, some one already used.
const COUPONS: u32 = 12;
const COUPONS_FILE: &str = "coupons.txt";

/// `--coupons FILE` for a lane, when the run issued coupons.
fn coupons_file(store_data: &Path) -> Vec<std::ffi::OsString> {
    let file = store_data.join(COUPONS_FILE);
    if file.exists() { vec!["--coupons".into(), file.into_os_string()] } else { Vec::new() }
}

fn provider_sim(extra: &[&str]) -> (Process, String) {
    common::processes::provider_sim(SEED, extra)
}

fn coordinator(port: u16, data: &Path, sim: &str) -> Process {
    let child = Command::new(BIN)
        .args(["coordinator", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .args(["--provider-sim", &format!("http://{sim}")])
        .args(["--query-deadline-secs", "3", "--resolve-every-ms", "300", "--grace-secs", "2"])
        .args(["--coupon-hold-secs", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start coordinator");
    wait_for_port(port);
    Process(child)
}

fn lane(id: &str, port: u16, data: &Path, store_data: &Path, customers: u32, seed: u64) -> Process {
    let child = Command::new(BIN)
        .args(["lane", "--id", id, "--coordinator", &format!("http://127.0.0.1:{port}"), "--synthetic"])
        .arg("--enrolment-secret")
        .arg(enrolment_secret_file(store_data))
        .args(["--customers", &customers.to_string(), "--seed", &seed.to_string(), "--fps", "60"])
        // provider-sim speaks WeChat Pay and Alipay.
        .args(["--wallet-seed", SEED, "--wallets", "wechat,alipay", "--members", &MEMBERS.to_string()])
        .args(coupons_file(store_data))
        .arg("--data")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start lane");
    Process(child)
}

/// Waits for a lane to finish its customers; returns its summary line.
fn finish(mut lane: Process, within: Duration) -> String {
    let status = wait_for_exit(&mut lane.0, within).unwrap_or_else(|| panic!("lane did not finish in {within:?}"));
    let mut out = String::new();
    lane.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(status.success(), "lane failed: {out}");
    out
}

/// Small, seeded: the kill moments repeat from run to run.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

async fn enrol_members(port: u16, data: &Path) {
    let mut client = store(port, data).await;
    for n in 1..=MEMBERS {
        let request = pb::AddMemberRequest { name: format!("member {n}"), ..Default::default() };
        let member = client.add_member(request).await.unwrap().into_inner();
        assert_eq!(member.member_id, format!("M{n:08}"));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut codes = String::new();
    for _ in 0..COUPONS {
        let request = pb::IssueCouponRequest {
            amount_off: Some(pb::Money { minor_units: 300, currency: "CNY".into() }),
            valid_until: Some(checkout_proto::Timestamp { seconds: now + 86_400, nanos: 0 }),
            ..Default::default()
        };
        codes += &client.issue_coupon(request).await.unwrap().into_inner().coupon_code;
        codes.push('\n');
    }
    std::fs::write(data.join(COUPONS_FILE), codes).unwrap();
}

/// No coupon left held once the lanes are gone (the store lets go of the holds of sales a killed lane never
/// came back to), and every one used by a recorded sale (its 3 yuan off is checked with the sale's basket).
async fn assert_no_coupon_left_held(port: u16, data: &Path) -> usize {
    let mut client = store(port, data).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let coupons = loop {
        client.resolve_now(pb::ResolveNowRequest::default()).await.unwrap();
        let request = pb::ListCouponsRequest { page_size: 1000, ..Default::default() };
        let coupons = client.list_coupons(request).await.unwrap().into_inner().coupons;
        if coupons.iter().all(|c| c.state != "held") {
            break coupons;
        }
        assert!(Instant::now() < deadline, "coupons still held: {coupons:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let sales: std::collections::HashSet<String> =
        common::all_sales(&mut client, "").await.into_iter().map(|s| s.out_trade_no).collect();
    let used: Vec<_> = coupons.iter().filter(|c| c.state == "redeemed").collect();
    for coupon in &used {
        assert!(sales.contains(&coupon.out_trade_no), "coupon used by no recorded sale: {coupon:?}");
    }
    used.len()
}

/// Every point a member holds came from a paid, recorded sale, once, at one point a yuan.
async fn assert_points_only_for_paid_sales_and_once(port: u16, data: &Path) {
    let mut client = store(port, data).await;
    let sales: HashMap<String, pb::Sale> =
        common::all_sales(&mut client, "").await.into_iter().map(|s| (s.sale_id.clone(), s)).collect();
    let mut credited = std::collections::HashSet::new();
    for n in 1..=MEMBERS {
        let mut page_token = String::new();
        loop {
            let request = pb::GetMemberRequest { member_id: format!("M{n:08}"), page_size: 100, page_token };
            let page = client.get_member(request).await.unwrap().into_inner();
            for movement in &page.points_history {
                assert_eq!(movement.reason, "sale", "no refunds in this run: {movement:?}");
                let sale =
                    sales.get(&movement.sale_id).unwrap_or_else(|| panic!("points without a paid sale: {movement:?}"));
                assert_eq!(movement.out_trade_no, sale.out_trade_no, "{movement:?}");
                assert_eq!(movement.points, sale.total.as_ref().unwrap().minor_units / 100, "{movement:?}");
                assert!(credited.insert(movement.sale_id.clone()), "points twice for {}", movement.sale_id);
            }
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
    }
    assert!(!credited.is_empty(), "no member earned anything: the run did too little to prove anything");
    eprintln!("crash run: {} sales earned member points, each once", credited.len());
}

async fn store(port: u16, data: &Path) -> common::ManagerClient {
    common::store_client_with(&format!("http://127.0.0.1:{port}"), &manager_token(data)).await
}

/// Nudges the resolver until nothing is unsettled; returns how many passes it took.
async fn settle_everything(port: u16, data: &Path) -> usize {
    let mut client = store(port, data).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    for pass in 1.. {
        let left = client.resolve_now(pb::ResolveNowRequest::default()).await.unwrap().into_inner().still_unsettled;
        let listed = client
            .list_unsettled(pb::ListUnsettledRequest { page_size: 1000, ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .payments
            .len();
        if left == 0 && listed == 0 {
            return pass;
        }
        assert!(Instant::now() < deadline, "{listed} charges still unsettled after 90 s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    unreachable!()
}

/// The sale an order belongs to: its out_trade_no without the attempt.
fn sale_of(out_trade_no: &str) -> &str {
    out_trade_no.rsplit_once('-').map_or(out_trade_no, |(sale, _)| sale)
}

/// The ledger against the provider's books, order by order, and no sale paid twice.
async fn assert_ledger_equals_books(port: u16, data: &Path, sim: &str) -> (usize, usize) {
    let mut client = store(port, data).await;
    let payments = common::all_payments(&mut client, "").await;
    let books = sim_http(sim, "GET", "/sim/books", "");
    let orders: HashMap<String, (String, i64)> = books["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let state = o["state"].as_str().unwrap().to_owned();
            (o["out_trade_no"].as_str().unwrap().to_owned(), (state, o["amount"]["minor_units"].as_i64().unwrap()))
        })
        .collect();

    let mut paid_per_sale: BTreeMap<&str, usize> = BTreeMap::new();
    for (out_trade_no, (state, _)) in &orders {
        if state == "Paid" {
            *paid_per_sale.entry(sale_of(out_trade_no)).or_default() += 1;
        }
    }
    let twice: Vec<_> = paid_per_sale.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "customers charged twice for one sale: {twice:?}");

    let ledger: HashMap<&str, &pb::Payment> = payments.iter().map(|p| (p.out_trade_no.as_str(), p)).collect();
    for (out_trade_no, (state, amount)) in &orders {
        let entry = ledger.get(out_trade_no.as_str());
        if state == "Paid" {
            let entry = entry.unwrap_or_else(|| panic!("{out_trade_no} took money but is missing from the ledger"));
            assert_eq!(entry.outcome(), pb::PaymentOutcome::Paid, "{out_trade_no}: books say paid");
            assert_eq!(entry.amount.as_ref().unwrap().minor_units, *amount, "{out_trade_no}: amount");
        }
    }
    let mut paid = 0;
    for payment in &payments {
        if std::env::var_os("CHECKOUT_TEST_VERBOSE").is_some() {
            eprintln!("{} {:?} {} {}", payment.out_trade_no, payment.outcome(), payment.provider_code, payment.message);
        }
        let state = orders.get(&payment.out_trade_no).map(|(s, _)| s.as_str());
        match payment.outcome() {
            pb::PaymentOutcome::Paid => {
                paid += 1;
                assert_eq!(state, Some("Paid"), "{}: the ledger says paid", payment.out_trade_no);
            }
            pb::PaymentOutcome::Unknown => panic!("{} is still unknown", payment.out_trade_no),
            _ => assert!(
                matches!(state, None | Some("Closed" | "Reversed" | "NotPaid")),
                "{}: the ledger says not paid ({}), the books say {state:?}",
                payment.out_trade_no,
                payment.provider_code
            ),
        }
    }
    (payments.len(), paid)
}

/// Every paid charge has its sale, with the charge's amount and a basket that adds up to it, and
/// every sale has its paid charge: also for a lane killed between the charge and its answer.
async fn assert_every_paid_charge_has_its_sale(port: u16, data: &Path) {
    let mut client = store(port, data).await;
    let sales = common::all_sales(&mut client, "").await;
    let sales: HashMap<String, pb::Sale> = sales.into_iter().map(|s| (s.out_trade_no.clone(), s)).collect();
    let products = client.list_products(pb::ListProductsRequest::default()).await.unwrap().into_inner().products;
    let price: HashMap<&str, i64> =
        products.iter().map(|p| (p.gtin.as_str(), p.price.as_ref().unwrap().minor_units)).collect();
    let payments = common::all_payments(&mut client, "").await;
    let paid: Vec<pb::Payment> = payments.into_iter().filter(|p| p.outcome() == pb::PaymentOutcome::Paid).collect();
    let request = pb::ListCouponsRequest { page_size: 1000, ..Default::default() };
    let coupons = client.list_coupons(request).await.unwrap().into_inner().coupons;
    let with_coupon: std::collections::HashSet<&str> =
        coupons.iter().filter(|c| c.state == "redeemed").map(|c| c.out_trade_no.as_str()).collect();
    for payment in &paid {
        let sale =
            sales.get(&payment.out_trade_no).unwrap_or_else(|| panic!("{} paid but no sale", payment.out_trade_no));
        let amount = payment.amount.as_ref().unwrap().minor_units;
        assert_eq!(sale.total.as_ref().unwrap().minor_units, amount, "{}: sale total", payment.out_trade_no);
        let basket: i64 = sale.lines.iter().map(|l| price[l.gtin.as_str()] * i64::from(l.quantity)).sum();
        // A coupon used takes its 3 yuan off.
        let off = if with_coupon.contains(payment.out_trade_no.as_str()) { 300 } else { 0 };
        assert_eq!(basket - off, amount, "{}: the basket adds up to the payment", payment.out_trade_no);
    }
    assert_eq!(sales.len(), paid.len(), "a sale without a paid charge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_coordinator_and_a_lane_twenty_times_each_loses_no_payment_and_takes_none_twice() {
    let data = tempfile::tempdir().unwrap();
    let lanes_data = tempfile::tempdir().unwrap();
    let (_sim, sim) = provider_sim(&[
        "--password-above-fen",
        "15000",
        "--customer-delay-ms",
        "600",
        "--drop-after-charge-rate",
        "0.15",
        "--error-rate",
        "0.05",
        "--fault-seed",
        "11",
    ]);
    let port = free_port();
    let mut coordinator_process = coordinator(port, data.path(), &sim);
    enrol_members(port, data.path()).await;
    let (l1, l2) = (lanes_data.path().join("L1"), lanes_data.path().join("L2"));
    let lane1 = lane("L1", port, &l1, data.path(), 25, 1);
    let mut lane2 = lane("L2", port, &l2, data.path(), 25, 2);

    let mut dice = Dice(2026);
    for kill in 1..=20 {
        tokio::time::sleep(Duration::from_millis(250 + dice.below(600))).await;
        kill9(&mut coordinator_process);
        tokio::time::sleep(Duration::from_millis(dice.below(300))).await;
        coordinator_process = coordinator(port, data.path(), &sim);
        // Lane L2 dies too, at another moment, mid-sale; it comes back on its folder with new customers.
        tokio::time::sleep(Duration::from_millis(dice.below(400))).await;
        kill9(&mut lane2);
        lane2 = lane("L2", port, &l2, data.path(), if kill == 20 { 8 } else { 25 }, 100 + kill);
    }
    let summary1 = tokio::task::spawn_blocking(move || finish(lane1, Duration::from_secs(240))).await.unwrap();
    let summary2 = tokio::task::spawn_blocking(move || finish(lane2, Duration::from_secs(240))).await.unwrap();
    assert!(summary1.contains("lane L1:") && summary2.contains("lane L2:"), "{summary1} {summary2}");

    settle_everything(port, data.path()).await;
    let (charges, paid) = assert_ledger_equals_books(port, data.path(), &sim).await;
    eprintln!("crash run: 20 coordinator kills, 20 lane kills; {charges} charges, {paid} paid; {summary1}{summary2}");
    let coupons_used = assert_no_coupon_left_held(port, data.path()).await;
    eprintln!("crash run: {coupons_used} coupons used, each once, none left held");
    assert_every_paid_charge_has_its_sale(port, data.path()).await;
    assert_points_only_for_paid_sales_and_once(port, data.path()).await;
    assert!(paid >= 10, "only {paid} of {charges} charges were paid: the run did too little to prove anything");

    // Each lane had one cashier's shift: L2 resumed its shift after every kill, and both signed off at the
    // end; every sale belongs to its lane's shift.
    let mut client = store(port, data.path()).await;
    let shifts = client.list_shifts(pb::ListShiftsRequest::default()).await.unwrap().into_inner().shifts;
    let all_sales = common::all_sales(&mut client, "").await;
    for lane in ["L1", "L2"] {
        let of_lane: Vec<_> = shifts.iter().filter(|s| s.lane_id == lane).collect();
        assert_eq!(of_lane.len(), 1, "{lane}: {of_lane:?}");
        assert_eq!(of_lane[0].closed_how, "signed off", "{lane}: {of_lane:?}");
        let sales = all_sales.iter().filter(|s| s.lane_id == lane).count() as u64;
        assert_eq!(of_lane[0].sales, sales, "{lane}: every sale is in the shift");
    }

    // Every sale the lane that was never killed saw paid is recorded once, and its outbox is empty.
    let mut client = store(port, data.path()).await;
    let sales = common::all_sales(&mut client, "L1").await;
    let paid_l1 = common::all_payments(&mut client, "L1")
        .await
        .into_iter()
        .filter(|p| p.outcome() == pb::PaymentOutcome::Paid)
        .count();
    assert_eq!(sales.len(), paid_l1, "every paid charge of L1 has its sale recorded");
    let reported: usize = summary1
        .split("lane L1: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("sales count in the lane's summary");
    assert_eq!(sales.len(), reported, "the store recorded what the lane saw paid: {summary1}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_outage_fills_the_offline_queue_which_drains_to_zero_when_it_ends() {
    let data = tempfile::tempdir().unwrap();
    let lanes_data = tempfile::tempdir().unwrap();
    let (_sim, sim) = provider_sim(&["--fault-seed", "5"]);
    let port = free_port();
    let _coordinator = coordinator(port, data.path(), &sim);
    let lanes: Vec<Process> = (1..=3u64)
        .map(|n| lane(&format!("L{n}"), port, &lanes_data.path().join(format!("L{n}")), data.path(), 12, 10 + n))
        .collect();

    // Busy for a moment, then the provider goes down.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut faults = sim_http(&sim, "GET", "/sim/faults", "");
    faults["outage"] = Value::Bool(true);
    sim_http(&sim, "POST", "/sim/faults", &faults.to_string());

    // The queue grows while the provider is down.
    let mut client = store(port, data.path()).await;
    let mut most = 0;
    let outage_ends = Instant::now() + Duration::from_secs(6);
    while Instant::now() < outage_ends {
        let queued = client
            .list_unsettled(pb::ListUnsettledRequest { page_size: 1000, ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .payments;
        most = most.max(queued.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(most >= 1, "no charge waited in the offline queue during the outage");
    let totals = client.get_totals(pb::GetTotalsRequest::default()).await.unwrap().into_inner();
    assert!(totals.payments_unsettled >= 1);

    // The provider is back: the resolver drains the queue and the lanes finish their customers.
    faults["outage"] = Value::Bool(false);
    sim_http(&sim, "POST", "/sim/faults", &faults.to_string());
    for lane in lanes {
        tokio::task::spawn_blocking(move || finish(lane, Duration::from_secs(240))).await.unwrap();
    }
    settle_everything(port, data.path()).await;
    assert!(
        client
            .list_unsettled(pb::ListUnsettledRequest { page_size: 1000, ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .payments
            .is_empty()
    );
    let (charges, paid) = assert_ledger_equals_books(port, data.path(), &sim).await;
    assert_every_paid_charge_has_its_sale(port, data.path()).await;
    eprintln!(
        "outage run: at most {most} charges queued during the outage; {charges} charges, {paid} paid, queue drained to 0"
    );
    assert!(paid >= 5, "only {paid} charges paid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_answers_system_errors_and_password_steps_settle_to_the_books() {
    let data = tempfile::tempdir().unwrap();
    let lanes_data = tempfile::tempdir().unwrap();
    const PASSWORD_ABOVE_FEN: i64 = 17_500;
    let (_sim, sim) = provider_sim(&[
        "--drop-after-charge-rate",
        "0.2",
        "--error-rate",
        "0.05",
        "--password-above-fen",
        &PASSWORD_ABOVE_FEN.to_string(),
        "--customer-delay-ms",
        "700",
        "--fault-seed",
        "23",
    ]);
    let port = free_port();
    let _coordinator = coordinator(port, data.path(), &sim);
    let lanes: Vec<Process> = (1..=3u64)
        .map(|n| lane(&format!("L{n}"), port, &lanes_data.path().join(format!("L{n}")), data.path(), 15, 40 + n))
        .collect();
    for lane in lanes {
        tokio::task::spawn_blocking(move || finish(lane, Duration::from_secs(240))).await.unwrap();
    }
    settle_everything(port, data.path()).await;
    let (charges, paid) = assert_ledger_equals_books(port, data.path(), &sim).await;
    assert_every_paid_charge_has_its_sale(port, data.path()).await;
    let books = sim_http(&sim, "GET", "/sim/books", "");
    let orders = books["orders"].as_array().unwrap();
    let with_password =
        orders.iter().filter(|o| o["amount"]["minor_units"].as_i64().unwrap() > PASSWORD_ABOVE_FEN).count();
    eprintln!(
        "fault run: {charges} charges, {paid} paid, {} orders at the provider, {with_password} with a password step",
        orders.len()
    );
    assert!(paid >= 20, "only {paid} charges paid");
    assert!(with_password >= 1, "no charge went through the password step");
}
