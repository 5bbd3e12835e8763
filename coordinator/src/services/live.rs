//! What each lane is doing right now, from its heartbeats: kept in memory, not in the ledger.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use checkout_storage::{LaneId, Money, UnixMillis};

/// A lane that sent no heartbeat for this long is shown offline.
pub const OFFLINE_AFTER: Duration = Duration::from_secs(15);

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
}

impl LiveLane {
    pub fn online(&self) -> bool {
        self.beat.activity != LaneActivity::Closed && self.last_seen_at.elapsed() < OFFLINE_AFTER
    }
}

/// Heartbeat state of every lane seen since the coordinator started.
#[derive(Default)]
pub struct LiveLanes(Mutex<HashMap<LaneId, LiveLane>>);

/// What a heartbeat reports.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub activity: LaneActivity,
    pub sale_id: String,
    pub basket_items: u32,
    pub basket_total: Option<Money>,
    pub frames_decoded: u64,
    pub codes_read: u64,
}

impl LiveLanes {
    pub fn record(&self, lane_id: &LaneId, beat: Heartbeat) {
        let lane = LiveLane { beat, last_seen: UnixMillis::now(), last_seen_at: Instant::now() };
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(lane_id.clone(), lane);
    }

    pub fn get(&self, lane_id: &LaneId) -> Option<LiveLane> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(lane_id).cloned()
    }
}
