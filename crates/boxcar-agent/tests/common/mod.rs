//! Shared harness for the daemon tests: the real Boxcar update server on loopback (SQLite in a
//! temp dir), hostile Omaha servers, and a node: the staging engine's test world (a GPT disk
//! image with 1.0.0 in slot A, an ESP, a payload key; `support`) plus the daemon's own files
//! (machine id, boot id, update.conf, /run). The daemon drives the real `SlotStager`.

#![allow(dead_code)]

use crate::support::{self, World};
use boxcar_agent::daemon::config::{self, AgentConfig};
use boxcar_agent::daemon::dbus::Bus;
use boxcar_agent::daemon::identity::IdentityFiles;
use boxcar_agent::daemon::proto::StatusView;
use boxcar_agent::daemon::schedule::Timing;
use boxcar_agent::daemon::{Daemon, Options};
use boxcar_agent::SlotStager;
use boxcar_server::model::{Instance, InstanceStatus, Package};
use boxcar_server::service::{Clock, Fleet};
use boxcar_server::store::Store;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const APP: &str = boxcar_omaha::FLATCAR_APP_ID;

/// Waits (bounded) until `f` holds; panics with `what` and the last value otherwise.
pub fn wait_for<T: std::fmt::Debug>(what: &str, mut f: impl FnMut() -> (bool, T)) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, v) = f();
        if ok {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}; last: {v:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- update server

/// The real Boxcar server, in-process on a tokio runtime of its own.
pub struct UpdateServer {
    pub url: String,
    pub fleet: Arc<Fleet>,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl UpdateServer {
    pub fn start() -> UpdateServer {
        let dir = tempfile::tempdir().unwrap();
        let db = boxcar_server::db::open(dir.path().join("fleet.db").to_str().unwrap(), 4).unwrap();
        let store = Store::new(db);
        store.ensure_defaults(Clock::System.now()).unwrap();
        let fleet = Arc::new(Fleet::new(store, Clock::System).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}/v1/update/", listener.local_addr().unwrap());
        rt.spawn(boxcar_server::server::serve(fleet.clone(), listener));
        UpdateServer {
            url,
            fleet,
            _rt: rt,
            _dir: dir,
        }
    }

    /// Lets the stable group grant every update at once (no canary, no period limit to speak of).
    pub fn open_policy(&self) {
        let store = &self.fleet.store;
        let mut policy = store.get_group(APP, "stable").unwrap().policy;
        policy.safe_mode = boxcar_server::policy::SafeMode::Off;
        policy.max_updates_per_period = 1000;
        let patch = boxcar_server::store::GroupPatch {
            policy: Some(policy),
            ..Default::default()
        };
        store.update_group(Clock::System.now(), APP, "stable", &patch).unwrap();
        self.fleet.refresh_snapshot().unwrap();
    }

    /// Publishes `version` on the stable channel, its payload at `base_url` + `filename`.
    pub fn publish(&self, version: &str, base_url: &str, filename: &str, payload: &[u8]) {
        use sha2::Digest;
        let pkg = Package {
            id: String::new(),
            app_id: APP.into(),
            version: version.into(),
            arch: "amd64".into(),
            url: base_url.into(),
            filename: filename.into(),
            size: payload.len() as u64,
            sha1: String::new(),
            sha256: hex::encode(sha2::Sha256::digest(payload)),
            extra_files: vec![],
        };
        self.fleet
            .store
            .create_package(Clock::System.now(), &pkg, Some("stable"))
            .unwrap();
        self.fleet.refresh_snapshot().unwrap();
    }

    pub fn instance(&self, machine_id: &str) -> Option<Instance> {
        let _ = self.fleet.flush_heartbeats();
        self.fleet.store.get_instance(APP, machine_id).ok()
    }

    pub fn status(&self, machine_id: &str) -> Option<InstanceStatus> {
        self.instance(machine_id).map(|i| i.status)
    }

    /// (type, result, error code) of the instance's events, oldest first (the store lists
    /// them newest first, by insertion id).
    pub fn events(&self, machine_id: &str) -> Vec<(u32, u32, Option<u32>)> {
        let mut v: Vec<_> = self
            .fleet
            .store
            .instance_events(APP, machine_id, 100)
            .unwrap()
            .into_iter()
            .map(|e| (e.event_type, e.event_result, e.error_code))
            .collect();
        v.reverse();
        v
    }
}

// ---------------------------------------------------------------- small HTTP servers

/// What a canned HTTP server answers.
#[derive(Clone)]
pub enum Reply {
    /// Status and body.
    Body(u16, Vec<u8>),
    /// A 200 whose body never ends (until the client hangs up).
    Endless,
    /// Read the request, never answer.
    Stall,
}

/// A tiny threaded HTTP/1.1 server: routes by path (GET or POST), records request bodies.
pub struct HttpServer {
    pub base: String,
    pub requests: Arc<Mutex<Vec<(String, String)>>>,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    stop: Arc<AtomicBool>,
    pub hits: Arc<AtomicUsize>,
}

impl HttpServer {
    pub fn start() -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let (rq, rt, st, h) = (requests.clone(), routes.clone(), stop.clone(), hits.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (rq, rt, st, h) = (rq.clone(), rt.clone(), st.clone(), h.clone());
                std::thread::spawn(move || serve_conn(conn, &rq, &rt, &st, &h));
            }
        });
        HttpServer {
            base,
            requests,
            routes,
            stop,
            hits,
        }
    }

    pub fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.into(), reply);
    }

    pub fn bodies(&self) -> Vec<String> {
        self.requests.lock().unwrap().iter().map(|(_, b)| b.clone()).collect()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.base.trim_start_matches("http://"));
    }
}

fn serve_conn(
    conn: TcpStream,
    requests: &Mutex<Vec<(String, String)>>,
    routes: &Mutex<HashMap<String, Reply>>,
    stop: &AtomicBool,
    hits: &AtomicUsize,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        hits.fetch_add(1, Ordering::SeqCst);
        requests
            .lock()
            .unwrap()
            .push((path.clone(), String::from_utf8_lossy(&body).into_owned()));
        let reply = routes
            .lock()
            .unwrap()
            .get(&path)
            .cloned()
            .unwrap_or(Reply::Body(404, b"not found".to_vec()));
        match reply {
            Reply::Body(status, b) => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: text/xml\r\n\r\n",
                    b.len()
                );
                if out.write_all(head.as_bytes()).is_err() || out.write_all(&b).is_err() {
                    return;
                }
            }
            Reply::Endless => {
                let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n");
                let chunk = vec![b'<'; 64 * 1024];
                while !stop.load(Ordering::SeqCst) && out.write_all(&chunk).is_ok() {}
                return;
            }
            Reply::Stall => {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                    // The client gave up when its side is closed.
                    let mut b = [0u8; 1];
                    out.set_nonblocking(true).ok();
                    if matches!(out.peek(&mut b), Ok(0)) {
                        return;
                    }
                    out.set_nonblocking(false).ok();
                }
                return;
            }
        }
    }
}

// ---------------------------------------------------------------- the node

/// A node: the stager's world plus the daemon's files.
pub struct Node {
    pub world: World,
    pub dir: tempfile::TempDir,
    pub machine_id: String,
}

impl Node {
    /// 1.0.0 installed and booted from slot A; update.conf points at `server`.
    pub fn new(server: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let machine_id = format!("{:032x}", rand_u128());
        let node = Node {
            world: World::new(),
            dir,
            machine_id,
        };
        std::fs::write(node.path("machine-id"), format!("{}\n", node.machine_id)).unwrap();
        node.new_boot();
        std::fs::write(node.path("update.conf"), format!("GROUP=stable\nSERVER={server}\n")).unwrap();
        node
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A new boot id, as after a reboot.
    pub fn new_boot(&self) {
        std::fs::write(self.path("boot_id"), format!("{}\n", uuid_like())).unwrap();
    }

    /// The boot loader tries the staged slot and the new version comes up.
    pub fn reboot_into(&self, m: &boxcar_payload::Manifest) {
        let mut gpt = self.world.gpt();
        assert_eq!(
            boxcar_slots::layout::simulate_boot(&mut gpt).unwrap(),
            Some(boxcar_slots::Slot::B)
        );
        boxcar_slots::write(&self.world.disk, &gpt, boxcar_slots::Mbr::Keep).unwrap();
        let root: [u8; 32] = hex::decode(&m.verity_params.root_hash).unwrap().try_into().unwrap();
        self.world.boot_into(&m.version, &root);
        self.new_boot();
    }

    /// The boot loader tries the staged slot, the new version never gets healthy, the try is
    /// spent and the next boot falls back to slot A (os-release and usrhash stay 1.0.0's).
    pub fn reboot_and_fall_back(&self) {
        let mut gpt = self.world.gpt();
        assert_eq!(
            boxcar_slots::layout::simulate_boot(&mut gpt).unwrap(),
            Some(boxcar_slots::Slot::B)
        );
        assert_eq!(
            boxcar_slots::layout::simulate_boot(&mut gpt).unwrap(),
            Some(boxcar_slots::Slot::A)
        );
        boxcar_slots::write(&self.world.disk, &gpt, boxcar_slots::Mbr::Keep).unwrap();
        self.new_boot();
    }

    pub fn config(&self) -> AgentConfig {
        let p = self.path("update.conf");
        let loaded = config::load(&[p.as_path()]);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        loaded.config
    }

    /// Options with quick timing: the first check is due after `first` (use a long one to
    /// drive checks only through the API).
    pub fn options(&self, first: Duration) -> Options {
        Options {
            identity: IdentityFiles {
                os_release: self.world.os_release.clone(),
                machine_id: self.path("machine-id"),
                boot_id: self.path("boot_id"),
                oem_release: vec![self.path("oem-release")],
            },
            reboot_required: self.path("run/reboot-required"),
            state_dir: self.world.state.clone(),
            timing: Timing {
                initial: first,
                interval: Duration::from_secs(3600),
                fuzz: Duration::ZERO,
                max_backoff: Duration::from_secs(3600),
            },
            http_timeout: Duration::from_secs(2),
            max_payload: 64 << 20,
            event_attempts: 2,
            event_retry: Duration::from_millis(50),
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.path("run/updated.sock")
    }

    pub fn stager(&self) -> Arc<SlotStager> {
        Arc::new(SlotStager::new(self.world.config()))
    }

    /// Starts the daemon in-process with the real staging engine.
    pub fn start(&self, first: Duration) -> Daemon {
        self.start_on(first, &Bus::Off)
    }

    pub fn start_on(&self, first: Duration, bus: &Bus) -> Daemon {
        Daemon::start(
            self.config(),
            self.options(first),
            self.stager(),
            Some(self.socket()),
            bus,
        )
        .unwrap()
    }

    /// Builds a signed payload for `version` (`blocks` × 4 KiB of /usr), serves it, publishes
    /// it on the stable channel of `server`.
    pub fn publish(
        &self,
        server: &UpdateServer,
        version: &str,
        blocks: usize,
    ) -> (support::Server, boxcar_payload::Manifest) {
        let usr = support::usr_image(blocks, 21);
        let uki = support::usr_image(3, 22);
        let (payload, m) = self.world.payload(version, &usr, &uki, None);
        let files = support::Server::start(payload.clone(), support::Mode::Honest);
        let (base, name) = files.url.rsplit_once('/').unwrap();
        server.publish(version, &format!("{base}/"), name, &payload);
        (files, m)
    }
}

pub fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let a = std::collections::hash_map::RandomState::new().build_hasher().finish() as u128;
    let b = std::collections::hash_map::RandomState::new().build_hasher().finish() as u128;
    (a << 64) | b
}

fn uuid_like() -> String {
    let h = format!("{:032x}", rand_u128());
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

// ---------------------------------------------------------------- the API, as a client

/// One request over the socket; returns the response line as JSON.
pub fn api(socket: &Path, line: &str) -> serde_json::Value {
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    // One write: the daemon answers an over-long line and closes at once, so a newline written
    // separately could meet a closed socket (a broken pipe seen once under load).
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut out = String::new();
    r.read_line(&mut out).unwrap();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

pub fn api_status(socket: &Path) -> StatusView {
    serde_json::from_value(api(socket, r#"{"v":1,"method":"status"}"#)["status"].clone()).unwrap()
}

/// Waits until the daemon's operation is `op`.
pub fn wait_op(socket: &Path, op: &str) -> StatusView {
    wait_for(op, || {
        let s = api_status(socket);
        (s.current_operation == op, s)
    })
}
