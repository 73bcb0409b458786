//! The FleetLock client against the real Boxcar server (crates/boxcar-server, in-process on
//! 127.0.0.1 over a temporary SQLite database): protocol semantics, 30 concurrent agents with
//! max=2, and a server restart in the middle of the run.

mod common;

use boxcar_reboot::fleetlock::{FleetLockClient, FleetLockError};
use boxcar_reboot::strategy::FleetLockStrategy;
use boxcar_server::service::{Clock, Fleet};
use boxcar_server::store::Store;
use common::{analyse, run_agent, Event, History, Recorded};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The Boxcar server on loopback with its own runtime; stopped on drop.
struct Server {
    addr: SocketAddr,
    db: String,
    rt: Option<tokio::runtime::Runtime>,
}

impl Server {
    fn start(db: &str, port: u16) -> Server {
        let store = Store::new(boxcar_server::db::open(db, 8).expect("opening the server database"));
        store.ensure_defaults(0).unwrap();
        let fleet = Arc::new(Fleet::new(store, Clock::System).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        // The previous instance's socket may take a moment to go away after a restart.
        let listener = common::retry(
            || {
                rt.block_on(tokio::net::TcpListener::bind(addr))
                    .map_err(|e| e.to_string())
            },
            "binding the FleetLock server",
        );
        let addr = listener.local_addr().unwrap();
        rt.spawn(boxcar_server::server::serve(fleet, listener));
        Server {
            addr,
            db: db.to_string(),
            rt: Some(rt),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn stop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }

    /// A separate handle on the database, independent of the server's lifetime.
    fn holders(db: &str, group: &str) -> Result<Vec<String>, String> {
        let store = Store::new(boxcar_server::db::open(db, 1).map_err(|e| e.to_string())?);
        let groups = store.fleetlock_groups().map_err(|e| e.to_string())?;
        Ok(groups
            .into_iter()
            .find(|(g, _, _)| g == group)
            .map(|(_, _, h)| h)
            .unwrap_or_default())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn temp_db() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fleet.db").display().to_string();
    (dir, db)
}

fn set_max(db: &str, group: &str, max: i64) {
    Store::new(boxcar_server::db::open(db, 1).unwrap())
        .fleetlock_set_max(group, max)
        .unwrap();
}

#[test]
fn protocol_semantics_against_the_boxcar_server() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db, 0);
    set_max(&db, "workers", 2);
    let client = |id: &str, group: &str| FleetLockClient::new(&server.url(), id, group, Duration::from_secs(5));
    let (a, b, c) = (client("a", "workers"), client("b", "workers"), client("c", "workers"));
    a.pre_reboot().unwrap();
    a.pre_reboot().expect("recursive lock");
    b.pre_reboot().unwrap();
    let err = c.pre_reboot().unwrap_err();
    assert_eq!(err.kind(), Some("failed_lock_semaphore_full"), "{err}");
    assert!(matches!(err, FleetLockError::Refused { status: 409, .. }), "{err}");
    // Operator unlock of a dead holder (anyone knowing the id may release it).
    c.steady_state_for("a").unwrap();
    c.pre_reboot().unwrap();
    assert_eq!(Server::holders(&db, "workers").unwrap(), ["b", "c"]);
    // steady-state is idempotent.
    b.steady_state().unwrap();
    b.steady_state().unwrap();
    c.steady_state().unwrap();
    assert!(Server::holders(&db, "workers").unwrap().is_empty());
    // The server's group check comes back as a typed refusal.
    let err = client("a", "bad group").pre_reboot().unwrap_err();
    assert_eq!(err.kind(), Some("invalid_client_group"), "{err}");
    // Groups are independent (default max is 1 on the Boxcar server).
    client("x", "db").pre_reboot().unwrap();
    assert_eq!(
        client("y", "db").pre_reboot().unwrap_err().kind(),
        Some("failed_lock_semaphore_full")
    );
}

#[test]
fn unreachable_server_is_an_error() {
    let port = common::free_port();
    let err = FleetLockClient::new(
        &format!("http://127.0.0.1:{port}"),
        "a",
        "default",
        Duration::from_secs(2),
    )
    .pre_reboot()
    .unwrap_err();
    assert!(matches!(err, FleetLockError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("pre-reboot"), "{err}");
}

/// 30 agents, max=2, the server stopped after 10 reboots and started again on the same port
/// and database.
#[test]
fn thirty_agents_two_slots_survive_a_server_restart() {
    const AGENTS: usize = 30;
    const MAX: usize = 2;
    let (_dir, db) = temp_db();
    let mut server = Server::start(&db, 0);
    set_max(&db, "workers", MAX as i64);
    let url = server.url();
    let history = History::default();

    let agents: Vec<_> = (0..AGENTS)
        .map(|i| {
            let url = url.clone();
            let db = db.clone();
            let history = history.clone();
            std::thread::spawn(move || {
                let id = format!("node-{i:02}");
                let strategy = Recorded {
                    inner: FleetLockStrategy(FleetLockClient::new(&url, &id, "workers", Duration::from_secs(5))),
                    id: id.clone(),
                    history: history.clone(),
                    released: Mutex::new(false),
                    verify: Box::new(move |_| Server::holders(&db, "workers")),
                };
                run_agent(&strategy, &id, &history);
            })
        })
        .collect();

    common::wait_for_reboots(&history, AGENTS / 3, &agents);
    let port = server.addr.port();
    server.stop();
    history.push(Event::ServiceKilled);
    std::thread::sleep(Duration::from_millis(300));
    let server = Server::start(&server.db, port);
    history.push(Event::ServiceRestarted);
    for a in agents {
        a.join().expect("agent thread");
    }

    let analysis = analyse(&history.events(), MAX);
    println!("fleetlock: {analysis:?}");
    assert_eq!(analysis.reboots_per_agent.len(), AGENTS, "every agent rebooted");
    assert!(
        analysis.reboots_per_agent.values().all(|n| *n == 1),
        "exactly once each"
    );
    assert!(analysis.max_holders <= MAX);
    assert!(
        analysis.acquired_after_restart > 0,
        "agents recovered after the restart"
    );
    assert!(
        Server::holders(&server.db, "workers").unwrap().is_empty(),
        "leaked holders"
    );
}

#[test]
fn status_lists_holders_through_the_servers_admin_api() {
    use boxcar_reboot::status::{status, FleetLockHolders, LockView};
    let (dir, db) = temp_db();
    let server = Server::start(&db, 0);
    let token = Store::new(boxcar_server::db::open(&db, 1).unwrap())
        .create_token(0, "status", boxcar_server::store::Role::ReadOnly)
        .unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let conf = |token_file: &std::path::Path| {
        boxcar_reboot::config::parse_layers(&[(
            "/etc/boxcar/update.conf",
            &format!(
                "REBOOT_STRATEGY=fleetlock\nREBOOT_GROUP=workers\nFLEETLOCK_URL={}\nFLEETLOCK_TOKEN_FILE={}\n",
                server.url(),
                token_file.display()
            ),
        )])
        .unwrap()
    };
    let cfg = conf(&token_file);
    let now = "2024-01-01T00:00:00Z".parse().unwrap();

    // Nobody asked yet: the server knows no such group.
    assert!(matches!(
        status(&cfg, now).lock,
        LockView::FleetLock {
            holders: FleetLockHolders::NoGroupYet,
            ..
        }
    ));
    FleetLockClient::new(&server.url(), "node-a", "workers", Duration::from_secs(5))
        .pre_reboot()
        .unwrap();
    let s = status(&cfg, now);
    assert_eq!(
        s.lock,
        LockView::FleetLock {
            url: server.url(),
            holders: FleetLockHolders::Listed {
                slots: 1,
                holders: vec!["node-a".into()],
            },
        }
    );
    assert!(s.to_string().contains("holders:   1/1 node-a"), "{s}");

    // A token the server does not know: the lock is reported unavailable, with the reason.
    let bad = dir.path().join("bad-token");
    std::fs::write(&bad, "bxc_not_a_token").unwrap();
    match status(&conf(&bad), now).lock {
        LockView::Unavailable(e) => assert!(e.contains("401"), "{e}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
}
