//! `checkout bench coordinator --idle-lanes N`: the coordinator's resident memory with N lanes registered and
//! sending a heartbeat every 5 s, and managers watching them, measured on a `checkout coordinator` process.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;
use checkout_lanes::Bearer;
use checkout_proto::v1::{
    self as pb, lane_service_client::LaneServiceClient, store_service_client::StoreServiceClient,
};
use serde_json::json;

use crate::process_memory::resident_mib_of;
use tonic::transport::{Channel, Endpoint};

/// Lanes or watchers to a connection (the coordinator caps the connections one address may hold).
const CALLERS_A_CONNECTION: usize = 25;
/// How often each lane sends a heartbeat, as a lane does.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

pub fn run(lanes: usize, watchers: usize, seconds: u64, json_out: bool) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let config = data.path().join("coordinator.toml");
    std::fs::write(&config, format!("[lanes]\nmax_lanes = {}\n", lanes + 10))?;
    let folder = data.path().join("ledger");
    let mut child = Command::new(std::env::current_exe()?)
        .args(["coordinator", "--listen", "127.0.0.1:0", "--data"])
        .arg(&folder)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting a coordinator")?;
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("the coordinator's output")?).read_line(&mut line)?;
    let address =
        line.trim().strip_prefix("coordinator listening on ").context("the coordinator's address")?.to_owned();
    let url = format!("http://{address}");
    let manager_token = std::fs::read_to_string(folder.join("credentials/manager.token"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let result = runtime.block_on(async {
        let connect = || async {
            Endpoint::from_shared(url.clone())?.tcp_nodelay(true).connect().await.map_err(anyhow::Error::from)
        };
        let mut manager = StoreServiceClient::with_interceptor(connect().await?, Bearer::new(&manager_token)?);
        let mut clients = Vec::with_capacity(lanes);
        let mut channel: Option<Channel> = None;
        let registering = Instant::now();
        let mut register_ms = Vec::with_capacity(lanes);
        for lane in 0..lanes {
            if lane % CALLERS_A_CONNECTION == 0 {
                channel = Some(connect().await?);
            }
            let lane_id = format!("L{lane}");
            let request = pb::IssueLaneTokenRequest { lane_id: lane_id.clone(), ..Default::default() };
            let token = manager.issue_lane_token(request).await?.into_inner().token;
            let mut client =
                LaneServiceClient::with_interceptor(channel.clone().context("a connection")?, Bearer::new(&token)?);
            let begun = Instant::now();
            let request = pb::RegisterLaneRequest { lane_id, description: format!("lane {lane}") };
            client.register_lane(request).await?;
            register_ms.push(begun.elapsed().as_secs_f64() * 1000.0);
            clients.push(client);
        }
        let registered_in = registering.elapsed();
        register_ms.sort_by(f64::total_cmp);
        let register_p99 = register_ms.get(register_ms.len() * 99 / 100).copied().unwrap_or(0.0);
        let after_registering = resident_mib_of(pid);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for w in 0..watchers {
            if w % CALLERS_A_CONNECTION == 0 {
                channel = Some(connect().await?);
            }
            let channel = channel.clone().context("a connection")?;
            let (manager_token, stopped) = (manager_token.clone(), stopped.clone());
            tasks.push(tokio::spawn(
                async move { crate::bench_coordinator::watch(channel, &manager_token, stopped).await },
            ));
        }
        let lane_count = clients.len().max(1);
        for (lane, mut client) in clients.into_iter().enumerate() {
            let mut stopped = stopped.clone();
            tasks.push(tokio::spawn(async move {
                // Spread over the period, as lanes started at different moments are.
                tokio::time::sleep(HEARTBEAT_EVERY * lane as u32 / lane_count as u32).await;
                let mut every = tokio::time::interval(HEARTBEAT_EVERY);
                let mut sent = 0u64;
                loop {
                    tokio::select! {
                        _ = every.tick() => {}
                        _ = stopped.wait_for(|stop| *stop) => return Ok(sent),
                    }
                    let request = pb::HeartbeatRequest {
                        lane_id: format!("L{lane}"),
                        state: pb::LaneState::Scanning.into(),
                        sale_id: format!("L{lane}-S{}", sent / 4),
                        basket_items: (sent % 20) as u32 + 1,
                        ..Default::default()
                    };
                    client.heartbeat(request).await?;
                    sent += 1;
                }
            }));
        }
        let mut peak = after_registering.unwrap_or(0.0);
        let until = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(500)).await;
            peak = peak.max(resident_mib_of(pid).unwrap_or(0.0));
        }
        stop.send_replace(true);
        let mut messages = 0;
        for task in tasks {
            messages += task.await??;
        }
        Ok::<_, anyhow::Error>((registered_in, register_p99, after_registering, peak, messages))
    });
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let _ = child.wait();
    let (registered_in, register_p99, after_registering, peak, messages) = result?;
    if json_out {
        println!(
            "{}",
            json!({"lanes": lanes, "watchers": watchers, "seconds": seconds,
                   "registered_in_s": registered_in.as_secs_f64(), "register_p99_ms": register_p99,
                   "rss_mib_after_registering": after_registering, "rss_mib": peak,
                   "heartbeats_and_watched_lanes": messages})
        );
    } else {
        println!(
            "bench coordinator: {lanes} lanes registered in {:.1} s (RegisterLane p99 {register_p99:.2} ms), a heartbeat each every 5 s for {seconds} s, {watchers} WatchLanes watchers",
            registered_in.as_secs_f64()
        );
        println!(
            "coordinator resident memory: {:.1} MiB after registering, peak {peak:.1} MiB ({messages} heartbeats sent and lanes watched)",
            after_registering.unwrap_or(f64::NAN)
        );
    }
    Ok(())
}
