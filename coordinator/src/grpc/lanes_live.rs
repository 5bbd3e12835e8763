//! The lanes as managers see them: `ListLanes`' rows, the `WatchLanes` stream, and closing and opening a lane.

use std::{collections::BTreeSet, sync::Arc};

use checkout_proto::v1 as pb;
use checkout_storage::{LaneClosure, LaneId, LaneRecord, UnixMillis};
use tokio::sync::{
    broadcast::{
        self,
        error::{RecvError, TryRecvError},
    },
    mpsc,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::{Result, convert::*, lane_id_of, plain_text};
use crate::{Coordinator, auth::Caller, error::CoordinatorError};

/// Messages a watcher's stream holds before its reader takes them: a reader slower than that misses
/// changes, and is sent a snapshot once it catches up.
const WATCHER_BUFFER: usize = 16;

/// A lane as the ledger, its heartbeats and its shift show it now.
pub(super) fn lane_to_pb(c: &Coordinator, lane: LaneRecord) -> Result<pb::Lane> {
    let totals = c.store.lane_tally(&lane.lane_id);
    let mut out = pb::Lane {
        lane_id: lane.lane_id.to_string(),
        description: lane.description,
        state: pb::LaneState::Closed.into(),
        sales: totals.sales,
        sales_total: Some(money_to_pb(totals.sales_total.of(c.currency))),
        ..Default::default()
    };
    if let Some(live) = c.live.get(&lane.lane_id) {
        out.online = live.online();
        out.last_seen = Some(timestamp(live.last_seen));
        let beat = live.beat;
        out.state = activity_to_pb(beat.activity).into();
        out.sale_id = beat.sale_id;
        out.basket_items = beat.basket_items;
        out.basket_total = beat.basket_total.map(money_to_pb);
        out.frames_decoded = beat.frames_decoded;
        out.codes_read = beat.codes_read;
    }
    if let Some(shift) = c.store.open_shifts(Some(&lane.lane_id))?.into_iter().max_by_key(|s| s.opened_at.0) {
        out.cashier_id = shift.cashier.to_string();
    }
    if let Some(closure) = c.live.closure(&lane.lane_id) {
        out.closed_by_store = true;
        out.closed_message = closed_message(&closure);
    }
    Ok(out)
}

/// "closed by manager ann at 2026-12-06 21:00:00 (UTC+8): end of day".
pub(crate) fn closed_message(closure: &LaneClosure) -> String {
    let at = crate::providers::alipay::china_datetime(closure.closed_at);
    let reason = if closure.reason.is_empty() { String::new() } else { format!(": {}", closure.reason) };
    format!("closed by {} at {at} (UTC+8){reason}", closure.closed_by)
}

/// Every lane, as a snapshot.
fn snapshot(c: &Coordinator) -> Result<pb::WatchLanesResponse> {
    let lanes = c.store.lanes()?.into_iter().map(|lane| lane_to_pb(c, lane)).collect::<Result<Vec<_>>>()?;
    Ok(pb::WatchLanesResponse { snapshot: true, lanes })
}

/// The lanes that changed, each read once for every watcher: one publisher turns the announcements of
/// `LiveLanes` into messages that watchers share.
#[derive(Clone)]
pub struct LaneFeed(broadcast::Sender<Arc<pb::WatchLanesResponse>>);

impl LaneFeed {
    /// Starts the publisher; it ends when the coordinator stops watching (shutdown).
    pub fn start(c: Arc<Coordinator>) -> LaneFeed {
        let (feed, _) = broadcast::channel(crate::services::live::WATCH_BACKLOG);
        let publisher = feed.clone();
        let mut changes = c.live.watch();
        let mut stopping = c.stop_watching.subscribe();
        tokio::spawn(async move {
            loop {
                let first = tokio::select! {
                    changed = changes.recv() => changed,
                    _ = stopping.wait_for(|stop| *stop) => return,
                };
                // Every change waiting now goes in one message, each lane once, as it is now.
                let mut changed: BTreeSet<LaneId> = BTreeSet::new();
                let mut all = false;
                let mut next = first;
                loop {
                    match next {
                        Ok(lane_id) => {
                            changed.insert(lane_id);
                        }
                        Err(RecvError::Lagged(_)) => all = true,
                        Err(RecvError::Closed) => return,
                    }
                    next = match changes.try_recv() {
                        Ok(lane_id) => Ok(lane_id),
                        Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                        Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                    };
                }
                let message = if all { snapshot(&c) } else { changes_of(&c, &changed) };
                match message {
                    // Nobody watching is no error.
                    Ok(message) => drop(publisher.send(Arc::new(message))),
                    Err(e) => tracing::warn!(error = %e, "the lanes' changes could not be read for their watchers"),
                }
            }
        });
        LaneFeed(feed)
    }
}

/// The lanes `changed` as they are now, as a change.
fn changes_of(c: &Coordinator, changed: &BTreeSet<LaneId>) -> Result<pb::WatchLanesResponse> {
    let mut lanes = Vec::with_capacity(changed.len());
    for lane_id in changed {
        if let Some(lane) = c.store.lane(lane_id)? {
            lanes.push(lane_to_pb(c, lane)?);
        }
    }
    Ok(pb::WatchLanesResponse { snapshot: false, lanes })
}

/// A `WatchLanes` stream: a snapshot, then each change; a snapshot again after the watcher fell behind.
/// Ends when the watcher goes away or the coordinator shuts down.
pub(super) fn watch(
    c: Arc<Coordinator>,
    feed: &LaneFeed,
) -> Result<ReceiverStream<Result<pb::WatchLanesResponse, Status>>> {
    let turn = c.watchers.clone().try_acquire_owned().map_err(|_| {
        CoordinatorError::ResourceExhausted("too many WatchLanes streams are open: close one and try again".into())
    })?;
    let (out, stream) = mpsc::channel(WATCHER_BUFFER);
    // Subscribed before the snapshot is read, so that no change between the two is lost.
    let mut changes = feed.0.subscribe();
    let mut stopping = c.stop_watching.subscribe();
    tokio::spawn(async move {
        let _turn = turn;
        let mut next = snapshot(&c);
        loop {
            let message = next.map_err(Status::from);
            let failed = message.is_err();
            tokio::select! {
                sent = out.send(message) => if sent.is_err() || failed { return },
                _ = stopping.wait_for(|stop| *stop) => return,
            }
            // A watcher that went away frees its place at once, not at the next change.
            let changed = tokio::select! {
                changed = changes.recv() => changed,
                () = out.closed() => return,
                _ = stopping.wait_for(|stop| *stop) => return,
            };
            next = match changed {
                Ok(message) => Ok(message.as_ref().clone()),
                // Fell behind: what it missed is in a fresh snapshot.
                Err(RecvError::Lagged(_)) => snapshot(&c),
                Err(RecvError::Closed) => return,
            };
        }
    });
    Ok(ReceiverStream::new(stream))
}

/// Closes a lane for new customers (it finishes the one it serves), or opens it again.
pub(super) async fn set_closed(
    c: &Coordinator,
    caller: &Caller,
    lane_id: &str,
    closed: Option<&str>,
) -> Result<pb::Lane> {
    let lane_id = lane_id_of(lane_id)?;
    let lane = c.store.lane(&lane_id)?.ok_or_else(|| CoordinatorError::NotFound(format!("no lane {lane_id}")))?;
    let closure = match closed {
        Some(reason) => {
            plain_text("reason", reason, 80)?;
            let serving = c.live.get(&lane_id).map(|live| live.beat.sale_id).filter(|sale| !sale.is_empty());
            let earlier = c.live.closure(&lane_id);
            Some(earlier.unwrap_or(LaneClosure {
                lane_id: lane_id.clone(),
                closed_at: UnixMillis::now(),
                closed_by: caller.principal.to_string(),
                reason: reason.to_owned(),
                finishing_sale: serving.and_then(|sale| checkout_storage::SaleId::parse(&sale).ok()),
            }))
        }
        None => None,
    };
    c.store.set_lane_closure(&lane_id, closure.as_ref())?;
    let (method, detail) = match &closure {
        Some(closure) => ("StoreService/CloseLane", closed_message(closure)),
        None => ("StoreService/OpenLane", "opened".to_owned()),
    };
    c.audit_action(caller, method, lane_id.as_str(), &detail);
    c.store.commit().await?;
    c.live.set_closure(&lane_id, closure);
    lane_to_pb(c, lane)
}
