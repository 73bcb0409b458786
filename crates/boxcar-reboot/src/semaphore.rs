//! The reboot semaphore value, in airlock's layout, and the pure transitions on it.
//!
//! Stored at `com.coreos.airlock/groups/<group>/v1/semaphore` as
//! `{"total_slots":N,"holders":["id",...]}` (holders sorted), so Boxcar nodes and an airlock
//! server can share one etcd. Boxcar adds an optional `boxcar_since` map (holder → unix seconds
//! of acquisition) for TTL eviction; airlock ignores and drops it, in which case those holders
//! simply never expire by TTL (they still can be unlocked explicitly).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The etcd key of a group's semaphore (airlock's layout).
pub fn semaphore_key(group: &str) -> String {
    format!("com.coreos.airlock/groups/{group}/v1/semaphore")
}

/// A counting semaphore owned by holder ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Semaphore {
    /// Number of slots.
    pub total_slots: u64,
    /// Ids holding a slot, sorted.
    #[serde(default)]
    pub holders: Vec<String>,
    /// When each holder took its slot (Boxcar extension, unix seconds).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub boxcar_since: BTreeMap<String, i64>,
}

/// What a lock attempt did to the semaphore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// The id already held a slot (recursive lock): nothing to write.
    AlreadyHeld,
    /// The id took a free slot: write the new value.
    Taken,
    /// No free slot; these ids hold them.
    Full(Vec<String>),
}

impl Semaphore {
    /// An empty semaphore with `slots` slots.
    pub fn new(slots: u64) -> Semaphore {
        Semaphore {
            total_slots: slots,
            holders: Vec::new(),
            boxcar_since: BTreeMap::new(),
        }
    }

    /// Takes a slot for `id` at `now` (unix seconds) if one is free.
    pub fn lock(&mut self, id: &str, now: i64) -> LockOutcome {
        if self.holders.iter().any(|h| h == id) {
            return LockOutcome::AlreadyHeld;
        }
        if self.holders.len() as u64 >= self.total_slots {
            return LockOutcome::Full(self.holders.clone());
        }
        self.holders.push(id.to_string());
        self.holders.sort();
        self.boxcar_since.insert(id.to_string(), now);
        LockOutcome::Taken
    }

    /// Releases `id`'s slot; returns whether it held one (unlocking a free id is not an error).
    pub fn unlock(&mut self, id: &str) -> bool {
        self.boxcar_since.remove(id);
        let before = self.holders.len();
        self.holders.retain(|h| h != id);
        self.holders.len() != before
    }

    /// Removes holders that took their slot more than `ttl` before `now`; returns them.
    /// Holders without a recorded time (written by airlock) are kept.
    pub fn evict_stale(&mut self, now: i64, ttl: Duration) -> Vec<String> {
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let stale: Vec<String> = self
            .holders
            .iter()
            .filter(|h| {
                self.boxcar_since
                    .get(*h)
                    .is_some_and(|since| now.saturating_sub(*since) > ttl)
            })
            .cloned()
            .collect();
        for h in &stale {
            self.unlock(h);
        }
        stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airlock_layout_round_trips() {
        let airlock = r#"{"total_slots":2,"holders":["b","a"]}"#;
        let mut s: Semaphore = serde_json::from_str(airlock).unwrap();
        assert_eq!(s.total_slots, 2);
        assert!(s.boxcar_since.is_empty());
        assert_eq!(s.lock("c", 10), LockOutcome::Full(vec!["b".into(), "a".into()]));
        assert!(s.unlock("a"));
        assert_eq!(s.lock("c", 10), LockOutcome::Taken);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"total_slots":2,"holders":["b","c"],"boxcar_since":{"c":10}}"#
        );
        assert_eq!(
            semaphore_key("workers"),
            "com.coreos.airlock/groups/workers/v1/semaphore"
        );
    }

    #[test]
    fn recursive_and_idempotent() {
        let mut s = Semaphore::new(1);
        assert_eq!(s.lock("a", 1), LockOutcome::Taken);
        assert_eq!(s.lock("a", 2), LockOutcome::AlreadyHeld);
        assert_eq!(s.holders, ["a"]);
        assert!(s.unlock("a"));
        assert!(!s.unlock("a"));
    }

    #[test]
    fn ttl_evicts_only_timed_holders() {
        let mut s: Semaphore = serde_json::from_str(r#"{"total_slots":3,"holders":["airlock-node"]}"#).unwrap();
        s.lock("old", 100);
        s.lock("new", 5000);
        assert_eq!(s.evict_stale(4000, Duration::from_secs(3600)), ["old"]);
        assert_eq!(s.holders, ["airlock-node", "new"]);
        assert!(s.evict_stale(i64::MAX, Duration::MAX).is_empty());
    }
}
