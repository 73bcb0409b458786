//! etcd-lock against a real etcd (Debian's `etcd-server`, /usr/bin/etcd) started on free
//! loopback ports in a temporary directory: semantics, 30 concurrent agents with max=2, and an
//! etcd kill + restart in the middle of the run.

mod common;

use boxcar_reboot::etcd::{Acquire, EtcdGateway, EtcdLock};
use boxcar_reboot::semaphore::Semaphore;
use boxcar_reboot::strategy::EtcdStrategy;
use common::{analyse, free_port, retry, run_agent, Event, History, Recorded};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ETCD: &str = "/usr/bin/etcd";

/// A single-member etcd; killed on drop.
struct Etcd {
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl Etcd {
    fn start() -> Etcd {
        assert!(
            std::path::Path::new(ETCD).exists(),
            "{ETCD} missing: install Debian's etcd-server (scripts/setup.sh does)"
        );
        let mut e = Etcd {
            dir: tempfile::tempdir().unwrap(),
            client_port: free_port(),
            peer_port: free_port(),
            child: None,
        };
        e.spawn();
        e
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn spawn(&mut self) {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .unwrap();
        let child = Command::new(ETCD)
            .arg("--name=t")
            .arg(format!("--data-dir={}", self.data_dir().display()))
            .arg(format!("--listen-client-urls={}", self.url()))
            .arg(format!("--advertise-client-urls={}", self.url()))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=t={peer}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting etcd");
        self.child = Some(child);
        // Ready when a read through the JSON gateway succeeds.
        let gw = EtcdGateway::new(vec![self.url()], Duration::from_secs(2));
        retry(
            || gw.get("ready-probe").map_err(|e| e.to_string()),
            "waiting for etcd to serve",
        );
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// SIGKILL, no graceful shutdown.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn lock(etcd: &Etcd, group: &str, id: &str, max: u64) -> EtcdLock {
    EtcdLock::new(
        EtcdGateway::new(vec![etcd.url()], Duration::from_secs(2)),
        group,
        id,
        max,
        None,
    )
}

#[test]
fn semaphore_semantics_on_real_etcd() {
    let etcd = Etcd::start();
    let a = lock(&etcd, "workers", "a", 2);
    let b = lock(&etcd, "workers", "b", 2);
    let c = lock(&etcd, "workers", "c", 2);
    assert_eq!(a.status().unwrap(), None);
    assert_eq!(a.acquire().unwrap(), Acquire::Held);
    assert_eq!(a.acquire().unwrap(), Acquire::Held, "recursive");
    assert_eq!(b.acquire().unwrap(), Acquire::Held);
    assert_eq!(
        c.acquire().unwrap(),
        Acquire::Busy {
            holders: vec!["a".into(), "b".into()],
            slots: 2
        }
    );
    // airlock's layout, readable by airlock.
    let raw = EtcdGateway::new(vec![etcd.url()], Duration::from_secs(2))
        .get("com.coreos.airlock/groups/workers/v1/semaphore")
        .unwrap()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&raw.value).unwrap();
    assert_eq!(v["total_slots"], 2);
    assert_eq!(v["holders"], serde_json::json!(["a", "b"]));
    // Groups are independent.
    assert_eq!(lock(&etcd, "db", "c", 1).acquire().unwrap(), Acquire::Held);
    // Operator unlock of a dead holder frees its slot; unlocking again is harmless.
    assert!(c.unlock("a").unwrap());
    assert!(!c.unlock("a").unwrap());
    assert_eq!(c.acquire().unwrap(), Acquire::Held);
    assert!(b.release().unwrap());
    assert!(c.release().unwrap());
    assert_eq!(a.status().unwrap().unwrap().holders, Vec::<String>::new());
}

#[test]
fn ttl_evicts_a_stale_holder_written_long_ago() {
    let etcd = Etcd::start();
    let gw = EtcdGateway::new(vec![etcd.url()], Duration::from_secs(2));
    // A holder that took its slot in 2001 and never came back.
    let mut sem = Semaphore::new(1);
    sem.lock("dead-node", 1_000_000_000);
    let key = "com.coreos.airlock/groups/default/v1/semaphore";
    assert!(gw.put_if(key, None, &serde_json::to_vec(&sem).unwrap()).unwrap());
    assert!(
        !gw.put_if(key, None, b"{}").unwrap(),
        "create-only CAS must fail on an existing key"
    );
    let no_ttl = lock(&etcd, "default", "fresh", 1);
    assert!(matches!(no_ttl.acquire().unwrap(), Acquire::Busy { .. }));
    let with_ttl = EtcdLock::new(
        EtcdGateway::new(vec![etcd.url()], Duration::from_secs(2)),
        "default",
        "fresh",
        1,
        Some(Duration::from_secs(24 * 3600)),
    );
    assert_eq!(with_ttl.acquire().unwrap(), Acquire::Held);
    assert_eq!(with_ttl.status().unwrap().unwrap().holders, ["fresh"]);
}

#[test]
fn corrupt_semaphore_is_an_error_not_a_grant() {
    let etcd = Etcd::start();
    let gw = EtcdGateway::new(vec![etcd.url()], Duration::from_secs(2));
    assert!(gw
        .put_if("com.coreos.airlock/groups/x/v1/semaphore", None, b"not json")
        .unwrap());
    let err = lock(&etcd, "x", "a", 1).acquire().unwrap_err();
    assert!(err.to_string().contains("decoding the semaphore"), "{err}");
}

/// 30 agents, max=2, etcd SIGKILLed after 10 reboots and restarted on the same data.
#[test]
fn thirty_agents_two_slots_survive_an_etcd_restart() {
    const AGENTS: usize = 30;
    const MAX: u64 = 2;
    let etcd = Arc::new(Mutex::new(Etcd::start()));
    let url = etcd.lock().unwrap().url();
    let history = History::default();

    let agents: Vec<_> = (0..AGENTS)
        .map(|i| {
            let url = url.clone();
            let history = history.clone();
            std::thread::spawn(move || {
                let id = format!("node-{i:02}");
                let check = EtcdLock::new(
                    EtcdGateway::new(vec![url.clone()], Duration::from_secs(2)),
                    "workers",
                    "checker",
                    MAX,
                    None,
                );
                let strategy = Recorded {
                    inner: EtcdStrategy(EtcdLock::new(
                        EtcdGateway::new(vec![url], Duration::from_secs(2)),
                        "workers",
                        &id,
                        MAX,
                        None,
                    )),
                    id: id.clone(),
                    history: history.clone(),
                    released: Mutex::new(false),
                    verify: Box::new(move |_| {
                        let sem = check.status().map_err(|e| e.to_string())?.ok_or("no semaphore")?;
                        Ok(sem.holders)
                    }),
                };
                run_agent(&strategy, &id, &history);
            })
        })
        .collect();

    // Kill etcd once a third of the fleet has rebooted; restart it on the same data dir.
    common::wait_for_reboots(&history, AGENTS / 3, &agents);
    {
        let mut e = etcd.lock().unwrap();
        e.kill();
        history.push(Event::ServiceKilled);
        std::thread::sleep(Duration::from_millis(300));
        e.spawn();
        history.push(Event::ServiceRestarted);
    }
    for a in agents {
        a.join().expect("agent thread");
    }

    let events = history.events();
    let analysis = analyse(&events, MAX as usize);
    println!("etcd-lock: {analysis:?}");
    assert_eq!(analysis.reboots_per_agent.len(), AGENTS, "every agent rebooted");
    assert!(
        analysis.reboots_per_agent.values().all(|n| *n == 1),
        "exactly once each"
    );
    assert!(analysis.max_holders <= MAX as usize);
    assert!(
        analysis.acquired_after_restart > 0,
        "agents recovered after the restart"
    );
    // Nothing leaked: etcd itself lists no holder at the end.
    let e = etcd.lock().unwrap();
    let sem = lock(&e, "workers", "checker", MAX).status().unwrap().unwrap();
    assert_eq!(sem.holders, Vec::<String>::new(), "leaked holders");
    assert_eq!(sem.total_slots, MAX);
}

/// `boxcar reboot status` / `unlock ID` as library calls against real etcd, from a config.
#[test]
fn status_and_operator_unlock_from_config() {
    use boxcar_reboot::status::{status, unlock, LockView, Unlocked};
    let etcd = Etcd::start();
    let cfg = boxcar_reboot::config::parse_layers(&[(
        "/etc/boxcar/update.conf",
        &format!(
            "REBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_ENDPOINT={}\nLOCKSMITHD_GROUP=workers\nREBOOT_MAX_HOLDERS=3\n",
            etcd.url()
        ),
    )])
    .unwrap();
    let now = boxcar_reboot::jiff::Timestamp::now();
    assert_eq!(
        status(&cfg, now).lock,
        LockView::Etcd {
            key: "com.coreos.airlock/groups/workers/v1/semaphore".into(),
            slots: None,
            holders: vec![]
        }
    );
    assert_eq!(lock(&etcd, "workers", "dead-node", 3).acquire().unwrap(), Acquire::Held);
    let s = status(&cfg, now);
    assert!(s.to_string().contains("holders:   1/3 dead-node"), "{s}");
    assert_eq!(unlock(&cfg, "dead-node").unwrap(), Unlocked::Released);
    assert_eq!(unlock(&cfg, "dead-node").unwrap(), Unlocked::NotHeld);
    assert!(status(&cfg, now).to_string().contains("holders:   0/3"));
}

/// The daemon flow against real etcd: a slot held from the previous boot is released at start,
/// nothing happens until the update agent's signal appears, then the node locks and reboots.
#[test]
fn agent_releases_at_start_then_reboots_on_the_signal() {
    use boxcar_reboot::agent::serve;
    use boxcar_reboot::cycle::{AlwaysHealthy, Coordinator, Outcome, Rebooter, Sessions};
    use boxcar_reboot::window::Schedule;

    struct Rec(Mutex<usize>);
    impl Rebooter for Rec {
        fn reboot(&self) -> Result<(), String> {
            *self.0.lock().unwrap() += 1;
            Ok(())
        }
    }
    struct Nobody;
    impl Sessions for Nobody {
        fn interactive_users(&self) -> Result<Vec<String>, String> {
            Ok(vec![])
        }
    }

    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let signal = dir.path().join("reboot-required");
    // The previous boot left this node holding the only slot.
    assert_eq!(lock(&etcd, "default", "me", 1).acquire().unwrap(), Acquire::Held);
    let strategy = EtcdStrategy(lock(&etcd, "default", "me", 1));
    let rec = Rec(Mutex::new(0));
    let schedule = Schedule::always();
    let clock = boxcar_reboot::jiff::Timestamp::now;
    let c = Coordinator {
        strategy: &strategy,
        schedule: &schedule,
        rebooter: &rec,
        sessions: &Nobody,
        health: &AlwaysHealthy,
        hooks: &[],
        clock: &clock,
    };
    let observer = lock(&etcd, "default", "observer", 1);
    let polls = Mutex::new(0usize);
    let sleep = |_: Duration| {
        let mut n = polls.lock().unwrap();
        *n += 1;
        // While waiting for the signal: the old slot is free and no reboot happened.
        assert_eq!(observer.status().unwrap().unwrap().holders, Vec::<String>::new());
        assert_eq!(*rec.0.lock().unwrap(), 0);
        if *n == 3 {
            std::fs::write(&signal, b"").unwrap();
        }
        assert!(*n < 100, "agent never noticed the signal");
    };
    assert_eq!(
        serve(&c, &signal, Duration::from_millis(1), &sleep).unwrap(),
        Outcome::Rebooted
    );
    assert_eq!(*rec.0.lock().unwrap(), 1);
    assert_eq!(*polls.lock().unwrap(), 3);
    assert_eq!(
        observer.status().unwrap().unwrap().holders,
        ["me"],
        "holds the slot across the reboot"
    );
}
