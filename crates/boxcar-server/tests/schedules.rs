//! The server's own schedulers, as the `boxcar-server` binary runs them: with short intervals set
//! by its flags, a downstream server mirrors from an upstream Boxcar server and prunes old
//! instances by itself, with no manual sync or prune call. Both jobs are seen to repeat (not only
//! to run once at start-up): an upstream promotion and an instance aged past the retention after
//! start-up are picked up too.

mod common;
use boxcar_server::service::{Clock, Fleet};
use boxcar_server::store::{Role, Store};
use common::*;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The binary under test; killed when dropped.
struct Downstream(Child);

impl Drop for Downstream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Registers `machine` as last seen at `at` in the database at `path` (the way a check-in does).
fn seen_at(path: &str, machine: &str, at: i64) {
    let store = Store::new(boxcar_server::db::open(path, 2).unwrap());
    store.ensure_defaults(at).unwrap();
    let fleet = Fleet::new(store, Clock::Manual(Arc::new(AtomicI64::new(at)))).unwrap();
    fleet
        .handle(check(machine, "3000.0.0", "stable", "0.0.0.0").as_bytes(), "10.0.0.9")
        .unwrap();
    fleet.flush_heartbeats().unwrap();
}

/// Polls `cond` every 200 ms until it holds; panics with `what` after 60 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn scheduled_sync_and_prune_run_without_manual_calls() {
    let up_db = TestDb::new(Backend::Sqlite);
    let upstream = TestServer::start(&up_db);
    upstream.publish("3100.0.0", "stable");

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("downstream.db").display().to_string();
    let now = Clock::System.now();
    seen_at(&db, "stale-node", now - 3 * 86400);
    seen_at(&db, "live-node", now);
    let token = {
        let store = Store::new(boxcar_server::db::open(&db, 2).unwrap());
        for m in ["stale-node", "live-node"] {
            store
                .get_instance(boxcar_omaha::FLATCAR_APP_ID, m)
                .expect("registered before start");
        }
        store.create_token(now, "schedule-test", Role::ReadOnly).unwrap()
    };
    let token_file = dir.path().join("upstream-token");
    std::fs::write(&token_file, &upstream.reader).unwrap();
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let _server = Downstream(
        Command::new(env!("CARGO_BIN_EXE_boxcar-server"))
            .args(["--db", &db, "serve", "--listen", &addr.to_string()])
            .args(["--retention-days", "1", "--prune-interval-secs", "1"])
            .args(["--upstream", &format!("http://{}", upstream.addr)])
            .arg("--upstream-token-file")
            .arg(&token_file)
            .args(["--sync-interval-secs", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting boxcar-server"),
    );
    eventually("the server listens", || std::net::TcpStream::connect(addr).is_ok());
    let api = |path: &str| -> (u16, Value) {
        let (status, body) = http(
            addr,
            "GET",
            &format!("/api/v1{path}"),
            &[("Authorization", &format!("Bearer {token}"))],
            b"",
        );
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    };
    let stable = || -> Option<String> {
        let (status, chans) = api("/apps/flatcar/channels");
        if status != 200 {
            return None;
        }
        chans.as_array()?.iter().find(|c| c["name"] == "stable")?["packages"][0]["version"]
            .as_str()
            .map(str::to_string)
    };
    let exists = |machine: &str| api(&format!("/apps/flatcar/instances/{machine}")).0 == 200;

    eventually("the mirror serves upstream's stable release", || {
        stable().as_deref() == Some("3100.0.0")
    });
    eventually("the stale instance is pruned", || !exists("stale-node"));
    assert!(exists("live-node"), "a recent instance must survive pruning");

    // Both jobs run again later: upstream promotes a new release, and another instance is found
    // aged past the retention after start-up.
    upstream.publish("3200.0.0", "stable");
    seen_at(&db, "aged-node", now - 2 * 86400);
    assert!(exists("aged-node"), "written before the next prune");
    eventually("the mirror follows the promotion", || {
        stable().as_deref() == Some("3200.0.0")
    });
    eventually("the later stale instance is pruned", || !exists("aged-node"));
    assert!(exists("live-node"));
}
