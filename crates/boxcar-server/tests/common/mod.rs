//! Test harness: real SQLite files, a real PostgreSQL started from the Debian binaries on a temp
//! data directory and a loopback port, real servers on loopback, a tiny HTTP/1.1 client.
#![allow(dead_code)]

use boxcar_server::service::{Clock, Fleet};
use boxcar_server::store::{Role, Store};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// Which engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL server owned by the tests; stopped when the last user drops it.
pub struct PgServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

static PG: Mutex<Weak<PgServer>> = Mutex::new(Weak::new());

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn as_pg_user(bin: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", bin]);
        c
    } else {
        Command::new(bin)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PgServer {
    /// The shared server, started if nobody holds one.
    pub fn shared() -> Arc<PgServer> {
        let mut slot = PG.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slot.upgrade() {
            return s;
        }
        let s = Arc::new(PgServer::start());
        *slot = Arc::downgrade(&s);
        s
    }

    fn start() -> PgServer {
        assert!(
            Path::new(PG_BIN).join("postgres").exists(),
            "PostgreSQL 15 is required: run scripts/setup.sh"
        );
        let dir = tempfile::Builder::new().prefix("boxcar-pg").tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if is_root() {
            Command::new("chmod").arg("755").arg(dir.path()).status().unwrap();
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(ok.success(), "chown of the PostgreSQL data directory failed");
        }
        let out = as_pg_user(&format!("{PG_BIN}/initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let child = as_pg_user(&format!("{PG_BIN}/postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(dir.path())
            .args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ])
            .args(["-c", "max_connections=300", "-c", "shared_buffers=64MB"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = PgServer { dir, port, child };
        for _ in 0..600 {
            if postgres::Client::connect(&server.url("postgres"), postgres::NoTls).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("PostgreSQL did not start on port {port}");
    }

    /// Connection URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A fresh, empty database.
    pub fn create_database(&self) -> String {
        let name = format!("t_{}", boxcar_server::store::random_hex(6));
        let mut c = postgres::Client::connect(&self.url("postgres"), postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        self.url(&name)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Stop the postmaster itself (our child may be runuser).
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid")) {
            if let Some(pid) = pid.lines().next() {
                let _ = Command::new("kill").args(["-TERM", pid.trim()]).status();
            }
        }
        let _ = self.child.wait();
    }
}

/// A database for one test: a temp SQLite file or a fresh PostgreSQL database.
pub struct TestDb {
    pub location: String,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<Arc<PgServer>>,
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let location = dir.path().join("fleet.db").display().to_string();
                TestDb {
                    location,
                    _dir: Some(dir),
                    _pg: None,
                }
            }
            Backend::Postgres => {
                let pg = PgServer::shared();
                TestDb {
                    location: pg.create_database(),
                    _dir: None,
                    _pg: Some(pg),
                }
            }
        }
    }
}

/// Flatcar's app id.
pub const FLATCAR: &str = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}";

/// A running server on loopback with its own runtime.
pub struct TestServer {
    pub addr: SocketAddr,
    pub fleet: Arc<Fleet>,
    pub clock: Arc<AtomicI64>,
    pub admin: String,
    pub reader: String,
    rt: Option<tokio::runtime::Runtime>,
}

/// 2024-01-08 (a Monday) 12:00 UTC.
pub const T0: i64 = 1704715200;

impl TestServer {
    /// A server on `db` (a second call on the same location makes a replica).
    pub fn start(db: &TestDb) -> TestServer {
        let store = Store::new(boxcar_server::db::open(&db.location, 16).expect("opening test database"));
        let clock = Arc::new(AtomicI64::new(T0));
        store.ensure_defaults(T0).unwrap();
        let admin = store
            .create_token(
                T0,
                &format!("admin-{}", boxcar_server::store::random_hex(4)),
                Role::Admin,
            )
            .unwrap();
        let reader = store
            .create_token(
                T0,
                &format!("reader-{}", boxcar_server::store::random_hex(4)),
                Role::ReadOnly,
            )
            .unwrap();
        let fleet = Arc::new(Fleet::new(store, Clock::Manual(clock.clone())).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let f = fleet.clone();
        rt.spawn(async move { boxcar_server::server::serve(f, listener).await });
        TestServer {
            addr,
            fleet,
            clock,
            admin,
            reader,
            rt: Some(rt),
        }
    }

    /// Writes buffered heartbeats now (instead of waiting for the background job).
    pub fn flush(&self) {
        self.fleet.flush_heartbeats().unwrap();
    }

    /// Reloads the routing snapshot now (as the periodic job would).
    pub fn refresh(&self) {
        self.fleet.refresh_snapshot().unwrap();
    }

    pub fn advance(&self, secs: i64) {
        self.clock.fetch_add(secs, Ordering::SeqCst);
    }

    pub fn omaha(&self, xml: &str) -> (u16, String) {
        http(
            self.addr,
            "POST",
            "/v1/update/",
            &[("Content-Type", "text/xml")],
            xml.as_bytes(),
        )
    }

    pub fn api(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        self.api_as(&self.admin.clone(), method, path, body)
    }

    pub fn api_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {token}");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, text) = http(
            self.addr,
            method,
            &format!("/api/v1{path}"),
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            body.as_bytes(),
        );
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// Publishes version `v` (amd64) to `channel` of Flatcar.
    pub fn publish(&self, v: &str, channel: &str) {
        let (s, b) = self.api(
            "POST",
            "/apps/flatcar/packages",
            Some(serde_json::json!({
                "version": v, "arch": "amd64", "url": format!("https://updates.example.com/{v}/"),
                "filename": "flatcar_production_update.gz", "size": 465_000_000u64,
                "sha1": "2jmj7l5rSw0yVb/vlWAYkK/YBwk=",
                "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "extra_files": [{"name": "oem-azure.gz", "size": 1234, "sha1": "x", "sha256_hex": "ab".repeat(32)}],
                "channel": channel
            })),
        );
        assert_eq!(s, 201, "{b}");
    }

    /// An instance of the Flatcar app as the admin API shows it.
    pub fn instance(&self, id: &str) -> serde_json::Value {
        let (st, b) = self.api("GET", &format!("/apps/flatcar/instances/{id}"), None);
        assert_eq!(st, 200, "{b}");
        b
    }

    /// Sets the policy of a Flatcar group.
    pub fn policy(&self, group: &str, policy: serde_json::Value) {
        let (s, b) = self.api(
            "PATCH",
            &format!("/apps/flatcar/groups/{group}"),
            Some(serde_json::json!({ "policy": policy })),
        );
        assert_eq!(s, 200, "{b}");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// One HTTP/1.1 exchange (Connection: close); returns status and body.
pub fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    // Read the head, then exactly Content-Length bytes (some servers keep the connection open).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            if let Some(len) = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
            {
                while buf.len() < end + 4 + len {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                break;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The request update_engine sends for a scheduled check.
pub fn check(machine: &str, version: &str, track: &str, prev: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="scheduler" ismachine="1">
    <os version="Chateau" platform="CoreOS" sp="{version}_x86_64"></os>
    <app appid="{FLATCAR}" version="{version}" track="{track}" bootid="{{11111111-2222-3333-4444-555555555555}}" oem="qemu" oemversion="0.1" alephversion="3000.0.0" machineid="{machine}" machinealias="" lang="en-US" board="amd64-usr" hardware_class="" delta_okay="false" >
        <ping active="1"></ping>
        <updatecheck></updatecheck>
        <event eventtype="3" eventresult="2" previousversion="{prev}"></event>
    </app>
</request>
"#
    )
}

/// A ping-only request (state UPDATED_NEED_REBOOT).
pub fn ping(machine: &str, version: &str, track: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="scheduler" ismachine="1">
    <os version="Chateau" platform="CoreOS" sp="{version}_x86_64"></os>
    <app appid="{FLATCAR}" version="{version}" track="{track}" bootid="{{11111111-2222-3333-4444-555555555555}}" oem="qemu" oemversion="0.1" alephversion="3000.0.0" machineid="{machine}" machinealias="" lang="en-US" board="amd64-usr" hardware_class="" delta_okay="false" >
        <ping active="1"></ping>
    </app>
</request>
"#
    )
}

/// An event report.
pub fn event(machine: &str, version: &str, track: &str, t: u32, r: u32, code: Option<u32>) -> String {
    let code = code.map(|c| format!(r#" errorcode="{c}""#)).unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="scheduler" ismachine="1">
    <os version="Chateau" platform="CoreOS" sp="{version}_x86_64"></os>
    <app appid="{FLATCAR}" version="{version}" track="{track}" bootid="{{11111111-2222-3333-4444-555555555555}}" oem="qemu" oemversion="0.1" alephversion="3000.0.0" machineid="{machine}" machinealias="" lang="en-US" board="amd64-usr" hardware_class="" delta_okay="false" >
        <event eventtype="{t}" eventresult="{r}"{code}></event>
    </app>
</request>
"#
    )
}

/// Parses a 200 response.
pub fn parse(resp: (u16, String)) -> boxcar_omaha::Response {
    assert_eq!(resp.0, 200, "{}", resp.1);
    boxcar_omaha::Response::parse(resp.1.as_bytes()).unwrap_or_else(|e| panic!("{e}: {}", resp.1))
}

/// The update check status of a 200 response.
/// A group policy that grants at once: no canary, `max` updates per hour, no automatic halt.
pub fn open_policy(max: u32) -> serde_json::Value {
    serde_json::json!({"safe_mode": "off", "max_updates_per_period": max, "period_minutes": 60,
                       "update_timeout_minutes": 60, "halt": {"threshold_percent": 0, "min_failures": 1}})
}

pub fn status_of(resp: (u16, String)) -> String {
    parse(resp)
        .first_update_check()
        .map(|u| u.status.as_str().to_string())
        .unwrap_or_default()
}

/// Generates `mod sqlite` and `mod postgres` running each listed test function on that engine.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::common::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name($crate::common::Backend::Postgres) } )*
        }
    };
}

pub fn artefact_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/test-artefacts")
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
