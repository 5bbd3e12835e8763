//! Named locks: one per charge or sale being worked on, removed when the last holder lets go.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

pub(crate) type Locks<K> = Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>;

/// Holds a named lock from a lock map, and removes the entry when the last holder lets go.
pub(crate) struct Held<'a, K: std::hash::Hash + Eq + Clone> {
    map: &'a Locks<K>,
    key: K,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<K: std::hash::Hash + Eq + Clone> Drop for Held<'_, K> {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // Two references: the map's and ours. Anyone else still waiting keeps the entry.
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.key);
        }
    }
}

fn lock_entry<K: std::hash::Hash + Eq + Clone>(map: &Locks<K>, key: &K) -> Arc<tokio::sync::Mutex<()>> {
    map.lock().unwrap_or_else(|p| p.into_inner()).entry(key.clone()).or_default().clone()
}

pub(crate) async fn hold<'a, K: std::hash::Hash + Eq + Clone>(map: &'a Locks<K>, key: &K) -> Held<'a, K> {
    let lock = lock_entry(map, key);
    let guard = Some(lock.clone().lock_owned().await);
    Held { map, key: key.clone(), lock, guard }
}

pub(super) fn try_hold<'a, K: std::hash::Hash + Eq + Clone>(map: &'a Locks<K>, key: &K) -> Option<Held<'a, K>> {
    let lock = lock_entry(map, key);
    let guard = lock.clone().try_lock_owned().ok();
    let held = Held { map, key: key.clone(), lock, guard };
    held.guard.is_some().then_some(held)
}
