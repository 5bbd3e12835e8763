//! `checkout rush`: a store's busy period. Real lanes (scanner, decoder and till actors) with hand-held scanners
//! serve a line of simulated customers against a coordinator and the simulated provider, with a fault plan; a
//! live display while it runs, then the report, the plot and the verdict (the ledger against the provider's books).
//!
//! `store_model` draws the customers, `frames` what the scanners see, `lane_driver` the cashiers, `measure` the
//! clock and the figures, `backend` the coordinator and provider (in this process or as processes), `verdict`,
//! `report`, `plot` and `display` the output.

mod backend;
mod display;
mod frames;
mod lane_driver;
mod measure;
mod plot;
mod report;
mod store_model;
mod timeline;
mod verdict;

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use checkout_coordinator::sim::{Faults, SimOptions};
use checkout_lanes::{Bearer, FrameSource, LaneConfig, LaneCredentials, LaneSummary, hand_held_scanner};
use checkout_proto::v1::{self as pb, store_service_client::StoreServiceClient};
use checkout_storage::{LaneId, Provider, sample_catalog};
use tonic::service::interceptor::InterceptedService;

use self::{
    backend::Backend,
    frames::ProductFrames,
    lane_driver::{Cashier, Store},
    measure::{Recorder, SimClock},
    report::{Extra, RushReport, Setup},
    store_model::{LOW_BALANCE_WALLETS_FROM, StoreModel},
    timeline::FaultWindow,
};
use crate::cli::RushArgs;

/// Members the rush enrols; two in five customers are one of them.
const MEMBERS: u32 = 200;
/// Coupons the rush issues (10 yuan off baskets of 50 or more); one customer in ten shows one, so some are
/// shown again after they were used.
const COUPONS: u32 = 100;
/// The queue is sampled every 10 simulated seconds.
const SAMPLE_EVERY_S: f64 = 10.0;

type Manager = StoreServiceClient<InterceptedService<tonic::transport::Channel, Bearer>>;

async fn manager(url: &str, token: &str) -> anyhow::Result<Manager> {
    let channel =
        checkout_lanes::coordinator_endpoint(url, None)?.connect().await.context("connecting to the coordinator")?;
    Ok(StoreServiceClient::with_interceptor(channel, Bearer::new(token)?))
}

fn check(args: &RushArgs) -> anyhow::Result<()> {
    if !(1..=200).contains(&args.lanes) {
        bail!("--lanes: 1 to 200");
    }
    if !(args.speed.is_finite() && (1.0..=600.0).contains(&args.speed)) {
        bail!("--speed: 1 to 600");
    }
    if args.restarts > 0 && !args.processes {
        // (also with --coordinator: the rush does not own that process)
        bail!(
            "--restarts needs --processes: the coordinator is killed with SIGKILL and started again on the same folder and port"
        );
    }
    if args.restarts > 20 {
        bail!("--restarts: at most 20");
    }
    if let Some((start, length)) = args.outage
        && start + length > args.duration
    {
        bail!("--outage ends after the period does");
    }
    Ok(())
}

fn mode(args: &RushArgs) -> &'static str {
    match (&args.coordinator, args.processes) {
        (Some(_), _) => "a running coordinator",
        (None, true) => "processes",
        (None, false) => "one process",
    }
}

/// `MIN-MAX` in milliseconds.
fn latency_range(text: &str) -> anyhow::Result<(u64, u64)> {
    let (low, high) = text.split_once('-').context("--provider-latency-ms: MIN-MAX, like 300-1500")?;
    let (low, high): (u64, u64) = (low.trim().parse()?, high.trim().parse()?);
    if low > high || high > 600_000 {
        bail!("--provider-latency-ms: MIN at most MAX, MAX at most 600000");
    }
    Ok((low, high))
}

/// The provider's faults for the run, in wall time: simulated milliseconds over the speed.
fn faults(args: &RushArgs, outage: bool) -> anyhow::Result<Faults> {
    let (low, high) = latency_range(&args.provider_latency_ms)?;
    let wall = |ms: u64| (ms as f64 / args.speed).round() as u64;
    Ok(Faults {
        latency_min_ms: wall(low),
        latency_max_ms: wall(high),
        latency_tail_rate: args.provider_tail_rate,
        latency_tail_ms: wall(args.provider_tail_ms),
        error_rate: args.provider_errors,
        drop_after_charge_rate: args.dropped_answers,
        outage,
        ..Faults::default()
    })
}

/// What the rush's customers buy, by position: the sample catalog without its open-price items (a cashier
/// would type their prices; no customer of the rush takes one).
fn rush_catalog() -> Vec<checkout_storage::Product> {
    sample_catalog().into_iter().filter(|p| !p.is_open_price()).collect()
}

/// The basket total above which the share `password_share` of customers is asked for a password.
fn password_threshold(model: &StoreModel, customers: &[store_model::Customer], share: f64) -> Option<i64> {
    if share <= 0.0 || customers.is_empty() {
        return None;
    }
    let catalog = rush_catalog();
    let mut totals: Vec<i64> = customers
        .iter()
        .map(|c| c.items.iter().filter_map(|i| catalog.get(*i)).map(|p| p.price.minor_units).sum())
        .collect();
    totals.sort_unstable();
    let index = ((1.0 - share.min(1.0)) * totals.len() as f64) as usize;
    let _ = model;
    totals.get(index.min(totals.len() - 1)).copied()
}

fn init_log(path: Option<&Path>) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the log {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(Mutex::new(file)).init();
    Ok(())
}

/// Every page of a listing.
async fn all_payments(manager: &mut Manager) -> anyhow::Result<Vec<pb::Payment>> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListPaymentsRequest { page_size: 1000, page_token, ..Default::default() };
        let page = manager.list_payments(request).await.context("ListPayments")?.into_inner();
        all.extend(page.payments);
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        page_token = page.next_page_token;
    }
}

async fn all_sales(manager: &mut Manager) -> anyhow::Result<Vec<pb::Sale>> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListSalesRequest { page_size: 1000, page_token, ..Default::default() };
        let page = manager.list_sales(request).await.context("ListSales")?.into_inner();
        all.extend(page.sales);
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        page_token = page.next_page_token;
    }
}

/// The rush's coupons: 10 yuan off a basket of 50 or more, valid for two days.
async fn issue_coupons(manager: &mut Manager) -> anyhow::Result<Vec<String>> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let cny = |fen| pb::Money { minor_units: fen, currency: "CNY".into() };
    let mut codes = Vec::new();
    for _ in 0..COUPONS {
        let request = pb::IssueCouponRequest {
            amount_off: Some(cny(1_000)),
            min_basket: Some(cny(5_000)),
            valid_until: Some(checkout_proto::Timestamp { seconds: now + 2 * 86_400, nanos: 0 }),
            note: "rush".into(),
            ..Default::default()
        };
        codes.push(manager.issue_coupon(request).await.context("IssueCoupon")?.into_inner().coupon_code);
    }
    Ok(codes)
}

/// Every coupon, page by page.
async fn all_coupons(manager: &mut Manager) -> anyhow::Result<Vec<pb::Coupon>> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListCouponsRequest { page_size: 1000, page_token };
        let page = manager.list_coupons(request).await.context("ListCoupons")?.into_inner();
        all.extend(page.coupons);
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        page_token = page.next_page_token;
    }
}

/// A member's every movement of points.
async fn points_history(manager: &mut Manager, member_id: &str) -> anyhow::Result<Vec<pb::PointsMovement>> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::GetMemberRequest { member_id: member_id.to_owned(), page_size: 1000, page_token };
        let page = manager.get_member(request).await.context("GetMember")?.into_inner();
        all.extend(page.points_history);
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        page_token = page.next_page_token;
    }
}

async fn unsettled(manager: &mut Manager) -> Option<u64> {
    let mut count = 0u64;
    let mut page_token = String::new();
    loop {
        let request = pb::ListUnsettledRequest { page_size: 1000, page_token };
        let page = tokio::time::timeout(Duration::from_secs(2), manager.list_unsettled(request)).await.ok()?.ok()?;
        let page = page.into_inner();
        count += page.payments.len() as u64;
        if page.next_page_token.is_empty() {
            return Some(count);
        }
        page_token = page.next_page_token;
    }
}

/// The fault plan on its own thread: the outage switched on and off, the coordinator killed and restarted, at
/// their simulated times. Returns the windows as they happened.
fn run_fault_plan(
    args: &RushArgs,
    clock: SimClock,
    backend: Arc<Mutex<Backend>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<Vec<FaultWindow>>>> {
    let duration_s = args.duration.as_secs_f64();
    let mut events: Vec<(f64, &'static str)> = Vec::new();
    if let Some((start, length)) = args.outage {
        events.push((start.as_secs_f64(), "outage on"));
        events.push(((start + length).as_secs_f64(), "outage off"));
    }
    for k in 1..=args.restarts {
        events.push((duration_s * f64::from(k) / f64::from(args.restarts + 1), "restart"));
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let normal = faults(args, false)?;
    let outage = faults(args, true)?;
    let log = args.log.clone();
    Ok(std::thread::spawn(move || {
        let mut windows = Vec::new();
        let mut outage_from = None;
        for (at, what) in events {
            while Instant::now() < clock.at(at) {
                if stop.load(Ordering::Relaxed) {
                    return Ok(windows);
                }
                std::thread::sleep(
                    Duration::from_millis(5).min(clock.at(at).saturating_duration_since(Instant::now())),
                );
            }
            let mut backend = backend.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match what {
                "outage on" => {
                    backend.set_faults(&outage)?;
                    outage_from = Some(clock.now_s());
                }
                "outage off" => {
                    backend.set_faults(&normal)?;
                    let start_s = outage_from.take().unwrap_or(at);
                    windows.push(FaultWindow { kind: "provider outage".into(), start_s, end_s: clock.now_s() });
                }
                _ => {
                    let start_s = clock.now_s();
                    let away = backend.restart_coordinator(log.as_deref())?;
                    tracing::info!(?away, "coordinator killed (SIGKILL) and listening again");
                    windows.push(FaultWindow { kind: "coordinator restart".into(), start_s, end_s: clock.now_s() });
                }
            }
        }
        Ok(windows)
    }))
}

pub fn run(args: RushArgs) -> anyhow::Result<()> {
    check(&args)?;
    init_log(args.log.as_deref())?;
    let wall_start = Instant::now();
    let duration_s = args.duration.as_secs_f64();
    let vision = !args.no_vision;
    let catalog = rush_catalog();
    // provider-sim speaks WeChat Pay and Alipay; in one process all three wallets are simulated.
    let providers = if args.processes || args.coordinator.is_some() {
        vec![(Provider::WeChatPay, 0.58), (Provider::Alipay, 0.42)]
    } else {
        vec![(Provider::WeChatPay, 0.55), (Provider::Alipay, 0.38), (Provider::UnionPay, 0.07)]
    };
    let model = StoreModel {
        lanes: args.lanes,
        duration_s,
        seed: args.seed,
        catalog_len: catalog.len(),
        providers,
        expired_share: 0.03,
        short_balance_share: 0.02,
        members: MEMBERS,
        member_share: 0.4,
        coupons: COUPONS,
        coupon_share: 0.1,
    };
    let customers = model.customers();
    let customers_planned = customers.len() as u64;
    let password_above = password_threshold(&model, &customers, args.password_share);
    let options = SimOptions {
        password_above,
        customer_delay: Duration::from_secs_f64(args.password_secs / args.speed),
        // The engine's query deadline runs accelerated; WeChat Pay's own 45 s revoke does too.
        wechat_revoke_unpaid_after: Some(Duration::from_secs_f64(45.0 / args.speed)),
        low_balance_from: Some(LOW_BALANCE_WALLETS_FROM),
        low_balance: 500,
    };

    let temporary = tempfile::tempdir().context("creating a temporary folder")?;
    let data_dir = args.data.clone().unwrap_or_else(|| temporary.path().join("coordinator"));
    std::fs::create_dir_all(&data_dir)?;
    let store_at = match &args.coordinator {
        Some(url) => format!("the coordinator at {url}"),
        None => format!("ledger in {}", data_dir.display()),
    };
    println!(
        "checkout rush: {} lanes, {} customers over {:.0} simulated minutes at {}x ({}), {store_at}",
        args.lanes,
        customers_planned,
        duration_s / 60.0,
        args.speed,
        mode(&args),
    );

    let control = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let started = if let Some(url) = &args.coordinator {
        let (sim, token) = (args.provider_sim.as_deref().unwrap_or_default(), args.manager_token_file.as_deref());
        backend::external(url, sim, token.context("--manager-token-file")?)?
    } else if args.processes {
        backend::processes(&backend::ProcessSetup {
            data_dir: &data_dir,
            wallet_seed: &args.wallet_seed,
            options,
            speed: args.speed,
            log: args.log.as_deref(),
        })?
    } else {
        control.block_on(backend::embedded(data_dir.clone(), args.wallet_seed.as_bytes(), options, args.speed))?
    };
    started.backend.set_faults(&faults(&args, false)?)?;
    let backend = Arc::new(Mutex::new(started.backend));
    let url = started.url.clone();
    let mut manager_client = control.block_on(manager(&url, &started.manager_token))?;
    let tokens = control.block_on(async {
        let mut tokens = Vec::new();
        for n in 1..=args.lanes {
            let request = pb::IssueLaneTokenRequest { lane_id: format!("R{n}"), ..Default::default() };
            tokens.push(manager_client.issue_lane_token(request).await.context("IssueLaneToken")?.into_inner().token);
        }
        anyhow::Ok(tokens)
    })?;
    let members = control.block_on(async {
        let mut members = Vec::new();
        for n in 1..=MEMBERS {
            let request = pb::AddMemberRequest { name: format!("Rush member {n}"), ..Default::default() };
            members.push(manager_client.add_member(request).await.context("AddMember")?.into_inner());
        }
        anyhow::Ok(members)
    })?;
    let member_codes = members.iter().map(|m| m.member_code.clone()).collect();
    let coupon_codes = control.block_on(issue_coupons(&mut manager_client))?;
    let frames = Arc::new(ProductFrames::render(&catalog, args.seed, vision)?);

    let clock = SimClock { start: Instant::now(), speed: args.speed };
    let recorder = Arc::new(Recorder::new(clock));
    let store = Arc::new(Store::new(
        customers,
        recorder.clone(),
        frames,
        args.wallet_seed.as_bytes().to_vec(),
        vision,
        member_codes,
        coupon_codes,
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let fault_plan = run_fault_plan(&args, clock, backend.clone(), stop.clone())?;
    let sampler = {
        let (store, recorder, stop, mut manager) =
            (store.clone(), recorder.clone(), stop.clone(), manager_client.clone());
        control.spawn(async move {
            let mut next = 0.0;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep_until(clock.at(next).into()).await;
                let unsettled = unsettled(&mut manager).await;
                recorder.sample_queue(unsettled, store.waiting());
                next += SAMPLE_EVERY_S;
            }
        })
    };
    let display = display::spawn(recorder.clone(), customers_planned, duration_s, stop.clone());

    // The lanes and their cashiers on the actix system of this thread; each lane's decoder on its own thread.
    let heartbeat_every = clock.wall(Duration::from_secs(10)).max(Duration::from_millis(50));
    let system = actix_rt::System::new();
    let summaries: Vec<LaneSummary> = system.block_on(async {
        let mut lanes = Vec::new();
        let mut cashiers = Vec::new();
        for (n, token) in (1..=args.lanes).zip(tokens) {
            let (trigger, scanner) = hand_held_scanner();
            let mut config =
                LaneConfig::new(LaneId::parse(&format!("R{n}"))?, url.clone(), FrameSource::HandHeld(scanner));
            config.heartbeat_every = heartbeat_every;
            config.payment_hold_off = clock.wall(Duration::from_secs(1));
            config.credentials = LaneCredentials { token: Some(token), enrolment_secret: None };
            let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
            let (to_cashier, cashier_events) = tokio::sync::mpsc::unbounded_channel();
            actix_rt::spawn(lane_driver::pump_events(events_rx, to_cashier, recorder.clone()));
            lanes.push(actix_rt::spawn(checkout_lanes::run_lane(config, Some(events_tx), std::future::pending())));
            let cashier = Cashier { trigger, events: cashier_events, store: store.clone() };
            cashiers.push(actix_rt::spawn(cashier.serve()));
        }
        futures::future::join_all(cashiers).await;
        let mut summaries = Vec::new();
        for lane in lanes {
            summaries.push(lane.await.context("a lane's task")?.context("a lane")?);
        }
        anyhow::Ok(summaries)
    })?;
    drop(system);
    stop.store(true, Ordering::Relaxed);
    let faults_seen = fault_plan.join().map_err(|_| anyhow::anyhow!("the fault plan's thread panicked"))??;
    control.block_on(sampler).context("the queue sampler")?;
    let _ = display.join();
    let simulated_end = recorder.clock.now_s();

    // Settle what is left (charges still unknown), then reconcile the ledger with the provider's books.
    let verdict = control.block_on(async {
        let settle_by = Instant::now() + Duration::from_secs(60);
        loop {
            let request = pb::ResolveNowRequest::default();
            let left = manager_client.resolve_now(request).await.map(|r| r.into_inner().still_unsettled);
            if left.is_ok_and(|n| n == 0) || Instant::now() >= settle_by {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let payments = all_payments(&mut manager_client).await?;
        let sales = all_sales(&mut manager_client).await?;
        let books = backend.lock().unwrap_or_else(std::sync::PoisonError::into_inner).books()?;
        let totals = recorder.totals();
        let mut verdict = verdict::reconcile(&payments, &sales, &books, &totals.paid_sales);
        let mut histories = Vec::new();
        for (n, member) in (1..).zip(&members) {
            histories.push((n, points_history(&mut manager_client, &member.member_id).await?));
        }
        verdict::reconcile_points(&mut verdict, &histories, &sales, &totals.member_sales);
        verdict::reconcile_coupons(&mut verdict, &all_coupons(&mut manager_client).await?, &sales);
        anyhow::Ok(verdict)
    })?;
    let wall_seconds = wall_start.elapsed().as_secs_f64();
    let extra = Extra {
        wall_seconds,
        dropped_frames: summaries.iter().map(|s| s.frames_skipped).sum(),
        undelivered_sales: summaries.iter().map(|s| s.undelivered).sum(),
        rss_mib: crate::process_memory::peak_rss_mib().unwrap_or(0.0),
    };
    let setup = Setup {
        mode: mode(&args),
        lanes: args.lanes,
        simulated_seconds: simulated_end.max(duration_s),
        speed: args.speed,
        seed: args.seed,
        vision,
        customers_planned,
        password_above_fen: password_above,
    };
    let report = RushReport::new(setup, recorder.totals(), faults_seen, verdict, extra);
    let backend = Arc::try_unwrap(backend).map_err(|_| anyhow::anyhow!("the store is still in use"))?;
    control.block_on(backend.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).stop())?;

    print!("{}", report.summary());
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "checkout rush: {} lanes, {:.0} min at {}x, seed {}",
            args.lanes,
            duration_s / 60.0,
            args.speed,
            args.seed
        );
        plot::write_svg(path, &title, &report.minutes, &report.faults, report.setup.simulated_seconds)?;
    }
    if !report.verdict.all_zero() {
        bail!("the verdict is not all zero: see above");
    }
    Ok(())
}
