//! The host side of the update scenarios: the real Boxcar update server
//! (in-process, SQLite in a temp dir) and a plain HTTP file server for the
//! payloads. Both listen on 127.0.0.1; the guest reaches them as 10.0.2.2
//! (QEMU user networking).

use boxcar_server::model::{Instance, Package};
use boxcar_server::policy::{Policy, SafeMode};
use boxcar_server::service::{Clock, Fleet};
use boxcar_server::store::{GroupPatch, InstanceFilter, Store};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub const APP: &str = boxcar_omaha::FLATCAR_APP_ID;
/// The group the node's update.conf names (GROUP=stable), following channel `stable`.
pub const GROUP: &str = "stable";

/// What the guest calls the host.
pub const HOST_FROM_GUEST: &str = "10.0.2.2";

pub struct UpdateServer {
    pub port: u16,
    pub fleet: Arc<Fleet>,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl UpdateServer {
    /// Starts the server with the default app, channels and groups; the `stable` group gets a
    /// policy without rate limits or safe mode (one node), halting at the first failure.
    pub fn start() -> UpdateServer {
        let dir = tempfile::tempdir().unwrap();
        let db = boxcar_server::db::open(dir.path().join("fleet.db").to_str().unwrap(), 4).unwrap();
        let store = Store::new(db);
        let now = Clock::System.now();
        store.ensure_defaults(now).unwrap();
        let policy = Policy {
            safe_mode: SafeMode::Off,
            max_updates_per_period: 100,
            ..Policy::default()
        };
        assert_eq!(policy.halt.min_failures, 1, "auto-halt at the first failure");
        store
            .update_group(
                now,
                APP,
                GROUP,
                &GroupPatch {
                    policy: Some(policy),
                    ..GroupPatch::default()
                },
            )
            .unwrap();
        let fleet = Arc::new(Fleet::new(store, Clock::System).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        rt.spawn(boxcar_server::server::serve(fleet.clone(), listener));
        UpdateServer {
            port,
            fleet,
            _rt: rt,
            _dir: dir,
        }
    }

    /// The Omaha URL as the guest sees it.
    pub fn guest_url(&self) -> String {
        format!("http://{HOST_FROM_GUEST}:{}/v1/update/", self.port)
    }

    /// Publishes `version` on the stable channel: the payload at `base_url`/`file`'s name,
    /// with its sha256 and size.
    pub fn publish(&self, version: &str, base_url: &str, file: &Path) {
        let bytes = std::fs::read(file).unwrap();
        let pkg = Package {
            id: String::new(),
            app_id: APP.into(),
            version: version.into(),
            arch: "amd64".into(),
            url: base_url.into(),
            filename: file.file_name().unwrap().to_string_lossy().into(),
            size: bytes.len() as u64,
            sha1: String::new(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            extra_files: vec![],
        };
        self.fleet
            .store
            .create_package(Clock::System.now(), &pkg, Some(GROUP))
            .unwrap();
        self.fleet.refresh_snapshot().unwrap();
    }

    /// The only instance (the node's machine id is made at its first boot).
    pub fn instance(&self) -> Option<Instance> {
        let _ = self.fleet.flush_heartbeats();
        let all = self
            .fleet
            .store
            .list_instances(&InstanceFilter {
                app_id: Some(APP.into()),
                ..InstanceFilter::default()
            })
            .unwrap();
        assert!(all.len() <= 1, "one node, instances: {all:?}");
        all.into_iter().next()
    }

    /// (type, result, error code) of the instance's events, oldest first.
    pub fn events(&self, machine_id: &str) -> Vec<(u32, u32, Option<u32>)> {
        let mut v: Vec<_> = self
            .fleet
            .store
            .instance_events(APP, machine_id, 200)
            .unwrap()
            .into_iter()
            .map(|e| (e.event_type, e.event_result, e.error_code))
            .collect();
        v.reverse();
        v
    }

    pub fn group_policy(&self) -> Policy {
        self.fleet.store.get_group(APP, GROUP).unwrap().policy
    }
}

/// Serves the files of a directory over HTTP/1.1 GET (whole files), counting bytes sent.
pub struct FileServer {
    pub port: u16,
    pub sent: Arc<AtomicU64>,
}

impl FileServer {
    pub fn start(root: PathBuf) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(AtomicU64::new(0));
        let s = sent.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (root, s) = (root.clone(), s.clone());
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    let mut line = String::new();
                    if r.read_line(&mut line).is_err() {
                        return;
                    }
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                            break;
                        }
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("/");
                    let name = path.trim_start_matches('/');
                    let mut w = conn;
                    match (
                        name.contains('/') || name.is_empty(),
                        std::fs::File::open(root.join(name)),
                    ) {
                        (false, Ok(mut f)) => {
                            let len = f.metadata().unwrap().len();
                            let _ = write!(
                                w,
                                "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
                            );
                            if let Ok(n) = std::io::copy(&mut f, &mut w) {
                                s.fetch_add(n, Ordering::SeqCst);
                            }
                        }
                        _ => {
                            let _ = w
                                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        }
                    }
                });
            }
        });
        FileServer { port, sent }
    }

    /// Base URL as the guest sees it.
    pub fn guest_base(&self) -> String {
        format!("http://{HOST_FROM_GUEST}:{}/", self.port)
    }
}
