//! What each lane is doing right now, from its heartbeats, and which lanes managers closed; every change is announced to the lanes' watchers.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use checkout_storage::{LaneClosure, LaneId, Money, UnixMillis};
use tokio::sync::broadcast;

/// A lane that sent no heartbeat for this long is shown offline.
pub const OFFLINE_AFTER: Duration = Duration::from_secs(15);

/// Changes kept for watchers that have not read them yet; one that falls further behind gets a snapshot.
pub const WATCH_BACKLOG: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneActivity {
    Idle,
    Scanning,
    Paying,
    Closed,
}

/// A lane's last heartbeat and when it came.
#[derive(Debug, Clone)]
pub struct LiveLane {
    pub beat: Heartbeat,
    pub last_seen: UnixMillis,
    pub(crate) last_seen_at: Instant,
    /// Whether watchers were last told the lane is online.
    shown_online: bool,
}

impl LiveLane {
    pub fn online(&self) -> bool {
        self.beat.activity != LaneActivity::Closed && self.last_seen_at.elapsed() < OFFLINE_AFTER
    }
}

/// What a heartbeat reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    pub activity: LaneActivity,
    pub sale_id: String,
    pub basket_items: u32,
    pub basket_total: Option<Money>,
    pub frames_decoded: u64,
    pub codes_read: u64,
}

impl Heartbeat {
    /// Whether a watcher would see a difference (counters of frames and codes aside: they move every beat).
    fn shows_differently(&self, other: &Heartbeat) -> bool {
        (self.activity, &self.sale_id, self.basket_items, self.basket_total)
            != (other.activity, &other.sale_id, other.basket_items, other.basket_total)
    }
}

/// Heartbeat state of every lane seen since the coordinator started, the lanes managers closed, and the
/// announcements of lanes that changed (their ids: a watcher reads the lane as it is then).
pub struct LiveLanes {
    lanes: Mutex<HashMap<LaneId, LiveLane>>,
    closures: Mutex<HashMap<LaneId, LaneClosure>>,
    changes: broadcast::Sender<LaneId>,
}

impl LiveLanes {
    /// With the closures the ledger holds.
    pub fn new(closures: Vec<LaneClosure>) -> LiveLanes {
        let closures = closures.into_iter().map(|closure| (closure.lane_id.clone(), closure)).collect();
        LiveLanes {
            lanes: Mutex::new(HashMap::new()),
            closures: Mutex::new(closures),
            changes: broadcast::channel(WATCH_BACKLOG).0,
        }
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, HashMap<LaneId, LiveLane>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn closures(&self) -> std::sync::MutexGuard<'_, HashMap<LaneId, LaneClosure>> {
        self.closures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the watchers that `lane_id` changed. Never waits: a watcher behind is told to start over.
    pub fn announce(&self, lane_id: &LaneId) {
        // No receiver is not an error: nobody watches.
        let _ = self.changes.send(lane_id.clone());
    }

    /// The announcements from now on.
    pub fn watch(&self) -> broadcast::Receiver<LaneId> {
        self.changes.subscribe()
    }

    pub fn record(&self, lane_id: &LaneId, beat: Heartbeat) {
        let changed = {
            let mut lanes = self.lanes();
            let changed = lanes.get(lane_id).is_none_or(|was| !was.shown_online || was.beat.shows_differently(&beat));
            let lane =
                LiveLane { beat, last_seen: UnixMillis::now(), last_seen_at: Instant::now(), shown_online: true };
            lanes.insert(lane_id.clone(), lane);
            changed
        };
        if changed {
            self.announce(lane_id);
        }
    }

    pub fn get(&self, lane_id: &LaneId) -> Option<LiveLane> {
        self.lanes().get(lane_id).cloned()
    }

    /// Announces every lane that went offline since the last sweep (no heartbeat for [`OFFLINE_AFTER`]).
    pub fn sweep_offline(&self) {
        let gone: Vec<LaneId> = {
            let mut lanes = self.lanes();
            lanes
                .iter_mut()
                .filter(|(_, lane)| lane.shown_online && !lane.online())
                .map(|(lane_id, lane)| {
                    lane.shown_online = false;
                    lane_id.clone()
                })
                .collect()
        };
        for lane_id in &gone {
            self.announce(lane_id);
        }
    }

    pub fn closure(&self, lane_id: &LaneId) -> Option<LaneClosure> {
        self.closures().get(lane_id).cloned()
    }

    /// Closes (`Some`) or opens (`None`) a lane, as the ledger now says, and announces it.
    pub fn set_closure(&self, lane_id: &LaneId, closure: Option<LaneClosure>) {
        match closure {
            Some(closure) => self.closures().insert(lane_id.clone(), closure),
            None => self.closures().remove(lane_id),
        };
        self.announce(lane_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(activity: LaneActivity, items: u32, frames: u64) -> Heartbeat {
        Heartbeat {
            activity,
            sale_id: String::new(),
            basket_items: items,
            basket_total: None,
            frames_decoded: frames,
            codes_read: 0,
        }
    }

    #[test]
    fn only_visible_changes_are_announced_and_a_lagging_watcher_learns_it_fell_behind() {
        let live = LiveLanes::new(Vec::new());
        let mut watcher = live.watch();
        let lane = LaneId::parse("L1").unwrap();
        live.record(&lane, beat(LaneActivity::Idle, 0, 1));
        live.record(&lane, beat(LaneActivity::Idle, 0, 2));
        live.record(&lane, beat(LaneActivity::Scanning, 1, 3));
        assert_eq!(watcher.try_recv().unwrap(), lane);
        assert_eq!(watcher.try_recv().unwrap(), lane);
        assert!(matches!(watcher.try_recv(), Err(broadcast::error::TryRecvError::Empty)), "frames alone are no change");
        for items in 0..(WATCH_BACKLOG as u32 + 10) {
            live.record(&lane, beat(LaneActivity::Scanning, items + 2, 0));
        }
        assert!(matches!(watcher.try_recv(), Err(broadcast::error::TryRecvError::Lagged(_))));
    }
}
