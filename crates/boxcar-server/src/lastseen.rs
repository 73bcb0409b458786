//! "Last seen" write skipping: a heartbeat that repeats what this replica already queued for the
//! instance, within the last-seen resolution, is not written again.
//!
//! Without this every check of an up-to-date node rewrites its `instances` row only to move
//! `last_check` — the largest cost of a check (on PostgreSQL every such move is a non-HOT update
//! touching all indexes of the table). The map remembers, per instance, a keyed hash of the
//! fields the heartbeat wrote and when. It is only a write-skipping cache: it never answers a
//! question and it is never the reason something is written; losing it (clear, crash, restart)
//! only means the next heartbeat of each instance is written again.
//!
//! What a reader sees: `last_check` precise to the resolution (plus the flush interval); every
//! change of version, address, track, group, OEM or alias is written with the next flush, and
//! check-ins with events or an update decision never come here (the service forgets the
//! instance around them, so the heartbeat after them is written too).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::time::Duration;

/// Default last-seen resolution.
pub const DEFAULT_RESOLUTION: Duration = Duration::from_secs(60);
/// Largest resolution accepted (well below a day, the shortest retention, so pruning never
/// deletes a row this map believes recently written).
pub const MAX_RESOLUTION: Duration = Duration::from_secs(3600);
/// Entries kept before the map is emptied (24 bytes of payload each; at 10,000 checks/s and a
/// 60 s resolution 600,000 entries are live).
pub const CAPACITY: usize = 1_000_000;

/// One heartbeat as the service sees it, borrowed from the request (nothing is allocated for a
/// heartbeat that is skipped).
#[derive(Debug, Clone, Copy)]
pub struct Sighting<'a> {
    /// Normalised app id.
    pub app_id: &'a str,
    /// Machine id.
    pub machine_id: &'a str,
    /// Group resolved from the track.
    pub group_id: Option<&'a str>,
    /// Track as sent.
    pub track: &'a str,
    /// Running version.
    pub version: &'a str,
    /// Architecture.
    pub arch: &'a str,
    /// Client address.
    pub ip: &'a str,
    /// OEM id.
    pub oem: &'a str,
    /// Machine alias.
    pub alias: &'a str,
    /// Unix time of the check-in.
    pub at: i64,
}

/// Whether a heartbeat must be queued for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Queue it: something changed, the instance is not known here, or the resolution passed.
    Write,
    /// This replica queued the same fields for this instance less than one resolution ago.
    Skip,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    fields: u64,
    at: i64,
}

/// The per-replica map of what was last queued per instance.
///
/// Keys and fields are stored as 64-bit hashes with random keys chosen at start-up (so clients
/// cannot aim for collisions); a wrong skip needs both the instance hash and the fields hash to
/// collide with another instance's.
pub struct LastSeen {
    resolution: i64,
    capacity: usize,
    keys: RandomState,
    fields: RandomState,
    seen: HashMap<u64, Seen, BuildHasherDefault<KeyedHash>>,
}

impl LastSeen {
    /// An empty map; a zero resolution writes every heartbeat.
    pub fn new(resolution: Duration, capacity: usize) -> LastSeen {
        LastSeen {
            resolution: resolution.as_secs().min(i64::MAX as u64) as i64,
            capacity: capacity.max(1),
            keys: RandomState::new(),
            fields: RandomState::new(),
            seen: HashMap::default(),
        }
    }

    /// The resolution in seconds.
    pub fn resolution_secs(&self) -> i64 {
        self.resolution
    }

    /// Decides about one heartbeat; a heartbeat admitted for writing is remembered as written at
    /// its time (the caller queues it; if the write fails the caller must [`LastSeen::clear`]).
    pub fn admit(&mut self, s: &Sighting) -> Admission {
        let key = self.keys.hash_one((s.app_id, s.machine_id));
        let fields = self.fields.hash_one((
            s.app_id,
            s.machine_id,
            s.group_id,
            s.track,
            s.version,
            s.arch,
            s.ip,
            s.oem,
            s.alias,
        ));
        if let Some(e) = self.seen.get(&key) {
            if e.fields == fields && within_resolution(e.at, s.at, self.resolution) {
                return Admission::Skip;
            }
        } else if self.seen.len() >= self.capacity {
            // Bounded memory: start over (each instance is written once more).
            self.seen.clear();
        }
        self.seen.insert(key, Seen { fields, at: s.at });
        Admission::Write
    }

    /// Forgets one instance: its next heartbeat is written (called around store check-ins, which
    /// change the row behind this map's back).
    pub fn forget(&mut self, app_id: &str, machine_id: &str) {
        let key = self.keys.hash_one((app_id, machine_id));
        self.seen.remove(&key);
    }

    /// Forgets everything (after a failed flush, a prune, a resolution change).
    pub fn clear(&mut self) {
        self.seen.clear();
    }

    /// Instances remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Whether a heartbeat at `now` may be skipped after one queued at `written`: not older than it
/// (a clock that went back writes) and less than `resolution` seconds later.
///
/// written 100, resolution 60: now 100 → skip, 159 → skip, 160 → write, 99 → write;
/// resolution 0 → always write.
/// The map's keys are already the output of a randomly keyed hash of client-chosen ids, so they
/// are used as they are instead of being hashed a second time.
#[derive(Default)]
struct KeyedHash(u64);

impl Hasher for KeyedHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; anything else is folded in so the hasher stays correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

fn within_resolution(written: i64, now: i64, resolution: i64) -> bool {
    now >= written && now - written < resolution
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s<'a>(machine: &'a str, version: &'a str, at: i64) -> Sighting<'a> {
        Sighting {
            app_id: "app",
            machine_id: machine,
            group_id: Some("stable"),
            track: "stable",
            version,
            arch: "amd64",
            ip: "10.0.0.1",
            oem: "",
            alias: "",
            at,
        }
    }

    #[test]
    fn resolution_window_worked_examples() {
        assert!(within_resolution(100, 100, 60));
        assert!(within_resolution(100, 159, 60));
        assert!(!within_resolution(100, 160, 60));
        assert!(!within_resolution(100, 99, 60));
        assert!(!within_resolution(100, 100, 0));
    }

    #[test]
    fn repeats_skip_until_the_resolution_passes_and_changes_write() {
        let mut m = LastSeen::new(Duration::from_secs(60), 10);
        assert_eq!(m.admit(&s("a", "1", 100)), Admission::Write);
        assert_eq!(m.admit(&s("a", "1", 130)), Admission::Skip);
        // Another instance is independent.
        assert_eq!(m.admit(&s("b", "1", 130)), Admission::Write);
        // A new version is written at once, and the window restarts from it.
        assert_eq!(m.admit(&s("a", "2", 131)), Admission::Write);
        assert_eq!(m.admit(&s("a", "2", 190)), Admission::Skip);
        assert_eq!(m.admit(&s("a", "2", 191)), Admission::Write);
        let mut ip = s("a", "2", 192);
        ip.ip = "10.0.0.2";
        assert_eq!(m.admit(&ip), Admission::Write);
        // Forgotten: written again.
        m.forget("app", "a");
        assert_eq!(m.admit(&s("a", "2", 193)), Admission::Write);
    }

    #[test]
    fn zero_resolution_writes_everything() {
        let mut m = LastSeen::new(Duration::ZERO, 10);
        assert_eq!(m.admit(&s("a", "1", 100)), Admission::Write);
        assert_eq!(m.admit(&s("a", "1", 100)), Admission::Write);
    }

    #[test]
    fn the_map_is_bounded() {
        let mut m = LastSeen::new(Duration::from_secs(60), 3);
        for i in 0..3 {
            m.admit(&s(&i.to_string(), "1", 100));
        }
        assert_eq!(m.len(), 3);
        // Known instances do not empty it.
        assert_eq!(m.admit(&s("0", "1", 101)), Admission::Skip);
        assert_eq!(m.len(), 3);
        // A fourth instance starts over: the map never holds more than its capacity.
        assert_eq!(m.admit(&s("3", "1", 101)), Admission::Write);
        assert_eq!(m.len(), 1);
        assert_eq!(m.admit(&s("0", "1", 102)), Admission::Write);
    }
}
