//! `checkout demo`: a coordinator and synthetic lanes in one process, ending with the summary the store reports.

use std::{sync::Arc, time::Instant};

use anyhow::{Context, bail};
use checkout_coordinator::{CoordinatorConfig, sim::SimulatedProvider};
use checkout_lanes::{
    Bearer, FrameSource, LaneConfig, LaneCredentials, LaneEvent, LaneEventKind, LaneSummary, SyntheticConfig,
};
use checkout_proto::v1::{self as pb, store_service_client::StoreServiceClient};
use checkout_storage::{Currency, LaneId, StoreId};
use tonic::service::interceptor::InterceptedService;

use crate::{cli::DemoArgs, simulated_providers};

const WALLET_SEED: &[u8] = b"demo";
/// The store's first members, whom the demo's customers may be.
const MEMBERS: [&str; 4] = ["Wang Fang", "Li Lei", "Zhang Wei", "Chen Jing"];

type Manager = StoreServiceClient<InterceptedService<tonic::transport::Channel, Bearer>>;

/// The store manager's client, with the token the data folder keeps.
async fn manager(url: &str, token: &str) -> anyhow::Result<Manager> {
    let channel =
        checkout_lanes::coordinator_endpoint(url, None)?.connect().await.context("connecting to the coordinator")?;
    Ok(StoreServiceClient::with_interceptor(channel, Bearer::new(token)?))
}

async fn store_totals(manager: &mut Manager) -> anyhow::Result<pb::GetTotalsResponse> {
    Ok(manager.get_totals(pb::GetTotalsRequest::default()).await.context("GetTotals")?.into_inner())
}

fn lane_totals(totals: &pb::GetTotalsResponse, lane: &str) -> (u64, u64, i64) {
    totals
        .lanes
        .iter()
        .find(|l| l.lane_id == lane)
        .map(|l| (l.sales, l.items, l.sales_total.as_ref().map_or(0, |m| m.minor_units)))
        .unwrap_or((0, 0, 0))
}

/// Enrols the demo's members the ledger does not have yet (a kept ledger has them); their points now.
async fn enrol_members(manager: &mut Manager) -> anyhow::Result<Vec<(String, i64)>> {
    for (n, name) in MEMBERS.iter().enumerate() {
        let member_id = format!("M{:08}", n + 1);
        let request = pb::GetMemberRequest { member_id, page_size: 1, ..Default::default() };
        match manager.get_member(request).await {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::NotFound => {
                let request = pb::AddMemberRequest { name: (*name).to_owned(), ..Default::default() };
                manager.add_member(request).await.context("AddMember")?;
            }
            Err(status) => return Err(status).context("GetMember"),
        }
    }
    member_points(manager).await
}

/// Coupons for the demo's customers: 10% off baskets of 20 yuan or more, for a day. Four lanes share eight of
/// them, so some customers show one another already used.
async fn issue_coupons(manager: &mut Manager) -> anyhow::Result<Vec<String>> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let mut codes = Vec::new();
    for _ in 0..8 {
        let request = pb::IssueCouponRequest {
            percent_off: 10,
            min_basket: Some(pb::Money { minor_units: 2_000, currency: "CNY".into() }),
            valid_until: Some(checkout_proto::Timestamp { seconds: now + 86_400, nanos: 0 }),
            note: "demo".into(),
            ..Default::default()
        };
        codes.push(manager.issue_coupon(request).await.context("IssueCoupon")?.into_inner().coupon_code);
    }
    Ok(codes)
}

/// The demo's members and their points.
async fn member_points(manager: &mut Manager) -> anyhow::Result<Vec<(String, i64)>> {
    let mut points = Vec::new();
    for n in 1..=MEMBERS.len() {
        let request = pb::GetMemberRequest { member_id: format!("M{n:08}"), page_size: 1, ..Default::default() };
        let member = manager.get_member(request).await.context("GetMember")?.into_inner().member.unwrap_or_default();
        points.push((member.name, member.points));
    }
    Ok(points)
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, (fen % 100).abs())
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let temporary = tempfile::tempdir().context("creating a temporary data folder")?;
    let data_dir = args.data.clone().unwrap_or_else(|| temporary.path().to_owned());
    println!(
        "checkout demo: {} lanes, {} customers each, ledger in {}",
        args.lanes,
        args.customers,
        data_dir.display()
    );

    // The coordinator runs on its own multi-threaded runtime; the lanes on the actix system below.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let config = CoordinatorConfig {
        store_id: StoreId::parse("S001")?,
        currency: Currency::CNY,
        data_dir,
        providers: simulated_providers(Arc::new(SimulatedProvider::new(WALLET_SEED, 500_000))),
        shutdown_grace: std::time::Duration::from_secs(10),
        timing: checkout_coordinator::EngineTiming::default(),
        security: checkout_coordinator::config::Security::default(),
    };
    let opened = checkout_coordinator::open(config)?;
    let generated = opened.generated.clone().context("the demo needs the generated credentials")?;
    let manager_token = std::fs::read_to_string(&generated.manager_token).context("reading the manager token")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(checkout_coordinator::serve(listener, opened, async {
        let _ = stopped.await;
    }));
    let mut manager = runtime.block_on(manager(&url, &manager_token))?;
    let before = runtime.block_on(store_totals(&mut manager))?;
    let points_before = runtime.block_on(enrol_members(&mut manager))?;
    let coupons = runtime.block_on(issue_coupons(&mut manager))?;
    // The demo is the store's manager: it issues each lane its token (a kept ledger has them enrolled already).
    let tokens = runtime.block_on(async {
        let mut tokens = Vec::new();
        for n in 1..=args.lanes {
            let request = pb::IssueLaneTokenRequest { lane_id: format!("L{n}"), ..Default::default() };
            tokens.push(manager.issue_lane_token(request).await.context("IssueLaneToken")?.into_inner().token);
        }
        anyhow::Ok(tokens)
    })?;

    let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel::<LaneEvent>();
    let printer = std::thread::spawn(move || {
        while let Some(event) = events_rx.blocking_recv() {
            // Items and "cannot read, hold it still" hints are the cashier's business; the demo shows the rest.
            let shown = !matches!(event.kind, LaneEventKind::ItemAdded { .. } | LaneEventKind::ReadHint { .. });
            if shown {
                println!("[{:6.2}s] {event}", started.elapsed().as_secs_f64());
            }
        }
    });

    // With --screens each lane serves its two pages on a port of its own, and the customers slow to a pace
    // a newcomer can follow on the screens.
    let mut screens = Vec::new();
    if args.screens {
        println!("the lanes' screens (open them in a browser; the demo ends when its customers are served):");
        for n in 1..=args.lanes {
            let screen = checkout_lanes::screen::ScreenConfig::new(checkout_lanes::screen::ScreenListener::bind(
                "127.0.0.1:0",
            )?)?;
            if let (Some(cashier), Some(customer)) = (screen.cashier_url(), screen.customer_url()) {
                println!("  L{n}: cashier {cashier}\n      customer {customer}");
            }
            screens.push(Some(screen));
        }
    } else {
        screens.resize_with(args.lanes as usize, || None);
    }
    // With screens: 4 frames a second (an item a second), and 15 s to open them before the first customer.
    let (fps, lead_in_frames) = if args.screens { (4.0, 60) } else { (30.0, 0) };
    if args.screens {
        println!("the first customers come in 15 s");
    }

    let system = actix_rt::System::new();
    let summaries: Vec<LaneSummary> = system.block_on(async {
        let lanes = (1..=args.lanes).zip(tokens).zip(screens).map(|((n, token), screen)| {
            let lane_id = LaneId::parse(&format!("L{n}"));
            let url = url.clone();
            let events = events_tx.clone();
            let seed = args.seed.wrapping_mul(1_000).wrapping_add(u64::from(n));
            let customers = args.customers;
            let coupons = coupons.clone();
            async move {
                let synthetic = SyntheticConfig {
                    seed,
                    customers: Some(customers),
                    wallet_seed: WALLET_SEED.to_vec(),
                    members: MEMBERS.len() as u32,
                    coupons,
                    lead_in_frames,
                    ..SyntheticConfig::default()
                };
                let mut config = LaneConfig::new(lane_id?, url, FrameSource::Synthetic(synthetic));
                config.frames_per_second = Some(fps);
                config.screen = screen;
                config.credentials = LaneCredentials { token: Some(token), enrolment_secret: None };
                Ok::<_, anyhow::Error>(checkout_lanes::run_lane(config, Some(events), std::future::pending()).await?)
            }
        });
        futures::future::join_all(lanes).await.into_iter().collect::<anyhow::Result<Vec<_>>>()
    })?;
    // Dropping the lanes' runtime closes their connections, so the coordinator can drain and stop.
    drop(system);
    drop(events_tx);
    let _ = printer.join();

    let after = runtime.block_on(store_totals(&mut manager))?;
    let points_after = runtime.block_on(member_points(&mut manager))?;
    let coupons_used = runtime
        .block_on(manager.list_coupons(pb::ListCouponsRequest { page_size: 1000, ..Default::default() }))
        .context("ListCoupons")?
        .into_inner()
        .coupons
        .iter()
        .filter(|c| c.state == "redeemed")
        .count();
    drop(manager);
    let _ = stop.send(());
    runtime.block_on(server).context("coordinator task")??;

    println!();
    println!("       --- as the lane counted ---   ---- as StoreService reports ----");
    println!("lane    sales  items          CNY    sales  items          CNY  match");
    let mut all_match = true;
    let (mut sales, mut items, mut fen) = (0u64, 0u64, 0i64);
    for summary in &summaries {
        let lane = summary.lane_id.as_str();
        let (s1, i1, f1) = lane_totals(&after, lane);
        let (s0, i0, f0) = lane_totals(&before, lane);
        let store = (s1 - s0, i1 - i0, f1 - f0);
        let lane_view = (summary.sales, summary.items, summary.paid_total.minor_units);
        let matches = store == lane_view;
        all_match &= matches;
        sales += summary.sales;
        items += summary.items;
        fen += summary.paid_total.minor_units;
        println!(
            "{lane:<6} {:>6} {:>6} {:>12}   {:>6} {:>6} {:>12}  {}",
            lane_view.0,
            lane_view.1,
            yuan(lane_view.2),
            store.0,
            store.1,
            yuan(store.2),
            if matches { "yes" } else { "NO" }
        );
    }
    let store_sales = after.sales - before.sales;
    let store_fen = after.sales_total.as_ref().map_or(0, |m| m.minor_units)
        - before.sales_total.as_ref().map_or(0, |m| m.minor_units);
    let store_paid = after.paid_total.as_ref().map_or(0, |m| m.minor_units)
        - before.paid_total.as_ref().map_or(0, |m| m.minor_units);
    println!(
        "{:<6} {:>6} {:>6} {:>12}   {:>6} {:>6} {:>12}  {}",
        "total",
        sales,
        items,
        yuan(fen),
        store_sales,
        after.items - before.items,
        yuan(store_fen),
        if store_sales == sales && store_fen == fen { "yes" } else { "NO" }
    );
    println!(
        "payments: {} paid ({} CNY), {} declined; finished in {:.1}s",
        after.payments_paid - before.payments_paid,
        yuan(store_paid),
        after.payments_declined - before.payments_declined,
        started.elapsed().as_secs_f64()
    );
    let earned: Vec<String> = points_after
        .iter()
        .zip(&points_before)
        .map(|((name, now), (_, before))| format!("{name} +{}", now - before))
        .collect();
    println!("member points earned: {}; coupons used: {coupons_used}", earned.join(", "));
    if !all_match || store_sales != sales || store_fen != fen || store_paid != fen {
        bail!("the lanes' tallies differ from what the store reports");
    }
    Ok(())
}
