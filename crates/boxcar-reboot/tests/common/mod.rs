//! Shared harness for the concurrency tests: agents that run the real reboot cycle against a
//! real lock service, and a history that is checked afterwards.
//!
//! Recording rule (so a recorded overlap is always a real one): `Acquired` is appended after the
//! lock service granted the slot, `Releasing` before the first release request. Each recorded
//! holding interval therefore lies inside the real one, and "never more than N holders in the
//! history" can only fail if the service really let more than N in. The rebooter holds the
//! slot for a short while so real overlaps show up in the history.

#![allow(dead_code)]

use boxcar_reboot::config::StrategyKind;
use boxcar_reboot::cycle::{Coordinator, HealthCheck, Outcome, Rebooter, Sessions, Steady};
use boxcar_reboot::strategy::{Permission, Strategy, StrategyError};
use boxcar_reboot::window::Schedule;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The service granted `id` a slot.
    Acquired(String),
    /// `id` "rebooted".
    Rebooted(String),
    /// `id` is about to release its slot.
    Releasing(String),
    /// The lock service was killed (and later restarted).
    ServiceKilled,
    /// The lock service is back.
    ServiceRestarted,
    /// An agent could not reach the lock service.
    Unreachable(String),
    /// Right after its grant, `id` read the service's holder list.
    Observed { id: String, holders: Vec<String> },
}

/// The shared, totally ordered history (the mutex order is the monotonic counter).
#[derive(Default, Clone)]
pub struct History(Arc<Mutex<Vec<Event>>>);

impl History {
    pub fn push(&self, e: Event) {
        self.0.lock().unwrap().push(e);
    }
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
    pub fn reboots(&self) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::Rebooted(_)))
            .count()
    }
}

/// Reads the service's holder list directly.
pub type Verify = dyn Fn(&str) -> Result<Vec<String>, String> + Send + Sync;

/// Wraps a real strategy and records grants and releases; after each grant it asks `verify`
/// (reading the service directly) that the holder is really listed.
pub struct Recorded<S> {
    pub inner: S,
    pub id: String,
    pub history: History,
    pub released: Mutex<bool>,
    pub verify: Box<Verify>,
}

impl<S: Strategy> Strategy for Recorded<S> {
    fn kind(&self) -> StrategyKind {
        self.inner.kind()
    }
    fn request(&self) -> Result<Permission, StrategyError> {
        let r = self.inner.request();
        match &r {
            Ok(Permission::Granted) => {
                self.history.push(Event::Acquired(self.id.clone()));
                // The service must list us now; retry reads through an outage.
                let holders = retry(|| (self.verify)(&self.id), "reading holders after a grant");
                self.history.push(Event::Observed {
                    id: self.id.clone(),
                    holders,
                });
            }
            Err(_) => self.history.push(Event::Unreachable(self.id.clone())),
            _ => {}
        }
        r
    }
    fn release(&self) -> Result<(), StrategyError> {
        let mut released = self.released.lock().unwrap();
        if !*released {
            self.history.push(Event::Releasing(self.id.clone()));
            *released = true;
        }
        self.inner.release()
    }
}

/// Retries `f` through a lock-service outage (bounded; panics with `what` when exhausted).
pub fn retry<T>(mut f: impl FnMut() -> Result<T, String>, what: &str) -> T {
    let mut last = String::new();
    for _ in 0..3000 {
        match f() {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{what}: still failing after 3000 attempts: {last}");
}

struct Recorder {
    id: String,
    history: History,
}

impl Rebooter for Recorder {
    fn reboot(&self) -> Result<(), String> {
        self.history.push(Event::Rebooted(self.id.clone()));
        // Hold the slot a little, as a real reboot does, so overlaps would be visible.
        std::thread::sleep(Duration::from_millis(15));
        Ok(())
    }
}

struct Nobody;
impl Sessions for Nobody {
    fn interactive_users(&self) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }
}

struct Healthy;
impl HealthCheck for Healthy {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Runs one agent's full cycle: wait for permission, reboot, "boot", release once steady.
pub fn run_agent(strategy: &dyn Strategy, id: &str, history: &History) {
    let schedule = Schedule::always();
    let rebooter = Recorder {
        id: id.to_string(),
        history: history.clone(),
    };
    let clock = jiff::Timestamp::now;
    let c = Coordinator {
        strategy,
        schedule: &schedule,
        rebooter: &rebooter,
        sessions: &Nobody,
        health: &Healthy,
        hooks: &[],
        clock: &clock,
    };
    let attempts = std::sync::atomic::AtomicUsize::new(0);
    let sleep = |d: Duration| {
        let n = attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert!(n < 3000, "{id} never got a reboot slot");
        std::thread::sleep(d);
    };
    let out = c.run(Duration::from_millis(10), &sleep).expect("reboot cycle");
    assert_eq!(out, Outcome::Rebooted, "{id}");
    // After the "boot": release once healthy, retrying through outages.
    let steady = retry(|| c.after_boot().map_err(|e| e.to_string()), "releasing after boot");
    assert_eq!(steady, Steady::Released);
}

/// What the history says.
#[derive(Debug)]
pub struct Analysis {
    pub max_holders: usize,
    pub reboots_per_agent: BTreeMap<String, usize>,
    pub acquired_after_restart: usize,
    pub unreachable_waits: usize,
}

/// Replays the history; panics on any protocol violation.
pub fn analyse(events: &[Event], max: usize) -> Analysis {
    let mut holding: Vec<String> = Vec::new();
    let mut max_holders = 0;
    let mut reboots = BTreeMap::new();
    let mut restarted = false;
    let mut acquired_after_restart = 0;
    let mut unreachable = 0;
    for (seq, e) in events.iter().enumerate() {
        match e {
            Event::Acquired(id) => {
                assert!(!holding.contains(id), "#{seq}: {id} acquired twice");
                holding.push(id.clone());
                max_holders = max_holders.max(holding.len());
                assert!(
                    holding.len() <= max,
                    "#{seq}: {} holders at once: {holding:?}",
                    holding.len()
                );
                if restarted {
                    acquired_after_restart += 1;
                }
            }
            Event::Rebooted(id) => {
                assert!(holding.contains(id), "#{seq}: {id} rebooted without holding a slot");
                *reboots.entry(id.clone()).or_insert(0) += 1;
            }
            Event::Releasing(id) => {
                let before = holding.len();
                holding.retain(|h| h != id);
                assert_eq!(holding.len() + 1, before, "#{seq}: {id} released without holding");
            }
            Event::ServiceRestarted => restarted = true,
            Event::Unreachable(_) => unreachable += 1,
            Event::Observed { id, holders } => {
                assert!(
                    holders.contains(id),
                    "#{seq}: {id} was granted but the service lists {holders:?}"
                );
                assert!(
                    holders.len() <= max,
                    "#{seq}: the service lists {} holders: {holders:?}",
                    holders.len()
                );
            }
            Event::ServiceKilled => {}
        }
    }
    assert!(holding.is_empty(), "slots never released: {holding:?}");
    Analysis {
        max_holders,
        reboots_per_agent: reboots,
        acquired_after_restart,
        unreachable_waits: unreachable,
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `n` reboots are recorded, or every agent has stopped (a failing agent must fail
/// the test at `join`, not hang it).
pub fn wait_for_reboots(history: &History, n: usize, agents: &[std::thread::JoinHandle<()>]) {
    while history.reboots() < n && !agents.iter().all(|a| a.is_finished()) {
        std::thread::sleep(Duration::from_millis(1));
    }
}
