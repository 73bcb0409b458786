//! Update-check benchmark and fleet simulation (a program, not a test: it prints figures).
//!
//! `cargo bench -p boxcar-server --bench checks` runs both; `-- checks` or `-- sim` picks one;
//! `-- checks sqlite` limits the engines.
//!
//! Checks: 10,000 distinct simulated Flatcar instances send update_engine's scheduled check over
//! keep-alive HTTP/1.1 connections to a real server on loopback; the same HTTP stack answering a
//! bare "200 OK" is measured in the same run. Reported: checks/s (closed loop, 64 connections),
//! ratio to bare, p50/p99 latency, p50/p99 at a paced 3,000 checks/s, and the rate of checks that
//! need a database transaction (update available but withheld by policy).
//!
//! Simulation: 100,000 instances on a simulated clock, each checking in once an hour, policy 1,000
//! updates per hour; prints grants per hour and the largest count in any 60-minute window.

#[path = "../tests/common/mod.rs"]
#[allow(unused_macros)]
mod common;

use boxcar_server::model::Package;
use boxcar_server::service::{Clock, Fleet};
use boxcar_server::store::Store;
use common::{Backend, TestDb, FLATCAR};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const INSTANCES: usize = 10_000;
const CONNECTIONS: usize = 64;
const RUN: Duration = Duration::from_secs(5);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let want = |w: &str| args.is_empty() || args.iter().any(|a| a == w);
    let engines: Vec<Backend> = match (args.iter().any(|a| a == "sqlite"), args.iter().any(|a| a == "postgres")) {
        (true, false) => vec![Backend::Sqlite],
        (false, true) => vec![Backend::Postgres],
        _ => vec![Backend::Sqlite, Backend::Postgres],
    };
    if want("checks") {
        for b in &engines {
            checks(*b);
        }
    }
    if want("sim") {
        for b in &engines {
            simulate(*b);
        }
    }
}

fn package(version: &str) -> Package {
    Package {
        id: String::new(),
        app_id: FLATCAR.into(),
        version: version.into(),
        arch: "amd64".into(),
        url: "https://updates.example.com/".into(),
        filename: "flatcar_production_update.gz".into(),
        size: 465_000_000,
        sha1: "2jmj7l5rSw0yVb/vlWAYkK/YBwk=".into(),
        sha256: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=".into(),
        extra_files: Vec::new(),
    }
}

fn http_request(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[derive(Default)]
struct Run {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

impl Run {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&mut self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        self.latencies.sort();
        let i = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
        self.latencies[i].as_secs_f64() * 1000.0
    }
}

/// Reads one HTTP/1.1 response (Content-Length framed); returns whether it was a 200 whose body
/// contains `expect`.
async fn read_response(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>, expect: &[u8]) -> std::io::Result<bool> {
    buf.clear();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = &buf[end + 4..end + 4 + len];
            return Ok(head.starts_with("http/1.1 200") && body.windows(expect.len()).any(|w| w == expect));
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Drives `requests` (round robin over connections) for `RUN`; `rate` paces the sends and measures
/// latency from the scheduled send time (no coordinated omission).
fn load(addr: std::net::SocketAddr, requests: Arc<Vec<Vec<u8>>>, expect: &'static [u8], rate: Option<f64>) -> Run {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let start = Instant::now();
        let deadline = start + RUN;
        let mut tasks = Vec::new();
        for c in 0..CONNECTIONS {
            let requests = requests.clone();
            tasks.push(tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                s.set_nodelay(true).unwrap();
                let mut run = Run::default();
                let mut buf = Vec::with_capacity(4096);
                let interval = rate.map(|r| Duration::from_secs_f64(CONNECTIONS as f64 / r));
                let offset = interval
                    .map(|i| i.mul_f64(c as f64 / CONNECTIONS as f64))
                    .unwrap_or_default();
                let mut k = 0usize;
                loop {
                    let scheduled = match interval {
                        Some(i) => start + offset + i * k as u32,
                        None => Instant::now(),
                    };
                    if scheduled >= deadline {
                        break;
                    }
                    if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
                        tokio::time::sleep(wait).await;
                    }
                    let req = &requests[(c + k * CONNECTIONS) % requests.len()];
                    s.write_all(req).await.unwrap();
                    match read_response(&mut s, &mut buf, expect).await {
                        Ok(true) => run.latencies.push(scheduled.elapsed()),
                        Ok(false) => run.errors += 1,
                        Err(_) => {
                            run.errors += 1;
                            break;
                        }
                    }
                    k += 1;
                }
                run
            }));
        }
        let mut total = Run::default();
        for t in tasks {
            let r = t.await.unwrap();
            total.latencies.extend(r.latencies);
            total.errors += r.errors;
        }
        total.elapsed = start.elapsed().min(RUN);
        total
    })
}

fn open(b: Backend, db: &TestDb, clock: Clock) -> Arc<Fleet> {
    let store = Store::new(boxcar_server::db::open(&db.location, 8).unwrap());
    store.ensure_defaults(clock.now()).unwrap();
    Arc::new(Fleet::new(store, clock).unwrap_or_else(|e| panic!("{b:?}: {e}")))
}

fn checks(b: Backend) {
    let db = TestDb::new(b);
    let fleet = open(b, &db, Clock::System);
    fleet
        .store
        .create_package(fleet.clock.now(), &package("3100.0.0"), Some("stable"))
        .unwrap();
    fleet.refresh_snapshot().unwrap();

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let bare_listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let bare_addr = bare_listener.local_addr().unwrap();
    let f = fleet.clone();
    server_rt.spawn(boxcar_server::server::serve(f, listener));
    server_rt.spawn(async move {
        let app = axum::Router::new().route("/v1/update/", axum::routing::post(|| async { "200 OK" }));
        axum::serve(bare_listener, app).await
    });
    boxcar_server::server::spawn_background_on(&server_rt, fleet.clone(), boxcar_server::server::Retention::Forever);

    let up_to_date: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..INSTANCES)
            .map(|i| {
                http_request(
                    "/v1/update/",
                    &common::check(&format!("bench-{i:05}"), "3100.0.0", "stable", "0.0.0.0"),
                )
            })
            .collect(),
    );
    // Warm up: every instance registered once.
    let _ = load(addr, up_to_date.clone(), b"noupdate", Some(4000.0));
    fleet.flush_heartbeats().unwrap();

    let mut bare = load(bare_addr, up_to_date.clone(), b"200 OK", None);
    let mut full = load(addr, up_to_date.clone(), b"noupdate", None);
    let mut paced = load(addr, up_to_date.clone(), b"noupdate", Some(3000.0));
    // Let the heartbeat backlog of the runs above drain before measuring the transactional path.
    fleet.flush_heartbeats().unwrap();

    // Checks that need a transaction: update available, group paused.
    fleet
        .store
        .set_updates(
            fleet.clock.now(),
            FLATCAR,
            "stable",
            boxcar_server::policy::UpdatesMode::Paused,
        )
        .unwrap();
    let behind: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..INSTANCES)
            .map(|i| {
                http_request(
                    "/v1/update/",
                    &common::check(&format!("bench-{i:05}"), "3000.0.0", "stable", "0.0.0.0"),
                )
            })
            .collect(),
    );
    let mut slow = load(addr, behind, b"noupdate", None);

    let name = match b {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    println!(
        "== update checks, {name}, {INSTANCES} instances, {CONNECTIONS} connections, {}s runs",
        RUN.as_secs()
    );
    println!(
        "bare 200 OK            {:>9.0} req/s   p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
        bare.rate(),
        bare.pct(0.5),
        bare.pct(0.99),
        bare.errors
    );
    println!(
        "update checks (max)    {:>9.0} req/s   p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}  ratio to bare {:.0} %",
        full.rate(),
        full.pct(0.5),
        full.pct(0.99),
        full.errors,
        100.0 * full.rate() / bare.rate()
    );
    println!(
        "update checks @3000/s  {:>9.0} req/s   p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
        paced.rate(),
        paced.pct(0.5),
        paced.pct(0.99),
        paced.errors
    );
    println!(
        "transactional checks   {:>9.0} req/s   p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}  (update withheld by policy)",
        slow.rate(),
        slow.pct(0.5),
        slow.pct(0.99),
        slow.errors
    );
    server_rt.shutdown_timeout(Duration::from_secs(1));
}

fn simulate(b: Backend) {
    const FLEET: usize = 100_000;
    const HOURS: i64 = 3;
    const STEP: i64 = 300; // simulated seconds per step; each instance checks once an hour
    let db = TestDb::new(b);
    let clock = Arc::new(AtomicI64::new(common::T0));
    let fleet = open(b, &db, Clock::Manual(clock.clone()));
    let mut policy = fleet.store.get_group(FLATCAR, "stable").unwrap().policy;
    policy.safe_mode = boxcar_server::policy::SafeMode::Off;
    policy.max_updates_per_period = 1000;
    policy.period_minutes = 60;
    policy.update_timeout_minutes = 120;
    policy.halt.threshold_percent = 0;
    let patch = boxcar_server::store::GroupPatch {
        policy: Some(policy),
        ..Default::default()
    };
    fleet.store.update_group(common::T0, FLATCAR, "stable", &patch).unwrap();
    fleet
        .store
        .create_package(common::T0, &package("3100.0.0"), Some("stable"))
        .unwrap();
    fleet.refresh_snapshot().unwrap();

    let started = Instant::now();
    let mut grants: Vec<i64> = Vec::new();
    let mut updated = vec![false; FLEET];
    let mut pending: Vec<usize> = Vec::new();
    let steps_per_hour = 3600 / STEP;
    let mut checks = 0u64;
    for step in 0..HOURS * steps_per_hour {
        let now = common::T0 + step * STEP;
        clock.store(now, Ordering::SeqCst);
        // Instances granted in the previous step download, install, reboot and report.
        for i in std::mem::take(&mut pending) {
            let m = format!("sim-{i:06}");
            for (t, r) in [(13, 1), (14, 1), (3, 1)] {
                fleet
                    .handle(
                        common::event(&m, "3000.0.0", "stable", t, r, None).as_bytes(),
                        "10.0.0.1",
                    )
                    .unwrap();
            }
            fleet
                .handle(
                    common::check(&m, "3100.0.0", "stable", "3000.0.0").as_bytes(),
                    "10.0.0.1",
                )
                .unwrap();
            updated[i] = true;
        }
        let slot = (step % steps_per_hour) as usize;
        let share: Vec<usize> = (0..FLEET).filter(|i| i % steps_per_hour as usize == slot).collect();
        let results: Vec<(usize, bool)> = std::thread::scope(|s| {
            let chunks: Vec<_> = share.chunks(share.len().div_ceil(4)).collect();
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    let fleet = &fleet;
                    let updated = &updated;
                    s.spawn(move || {
                        chunk
                            .iter()
                            .map(|&i| {
                                let v = if updated[i] { "3100.0.0" } else { "3000.0.0" };
                                let xml = fleet
                                    .handle(
                                        common::check(&format!("sim-{i:06}"), v, "stable", "0.0.0.0").as_bytes(),
                                        "10.0.0.1",
                                    )
                                    .unwrap();
                                (i, !updated[i] && xml.contains(r#"<updatecheck status="ok">"#))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        checks += share.len() as u64;
        for (i, granted) in results {
            if granted {
                grants.push(now);
                pending.push(i);
            }
        }
        fleet.flush_heartbeats().unwrap();
    }
    let worst_window = grants
        .iter()
        .map(|&t| grants.iter().filter(|&&g| g > t - 3600 && g <= t).count())
        .max()
        .unwrap_or(0);
    let name = match b {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    println!("== fleet simulation, {name}: {FLEET} instances, policy 1000 updates / 60 min, {HOURS} simulated hours");
    for h in 0..HOURS {
        let n = grants
            .iter()
            .filter(|&&g| g >= common::T0 + h * 3600 && g < common::T0 + (h + 1) * 3600)
            .count();
        println!("hour {h}: {n} updates granted");
    }
    println!(
        "largest number of grants in any 60-minute window: {worst_window} (limit 1000) -> policy {}",
        if worst_window <= 1000 { "held" } else { "VIOLATED" }
    );
    println!(
        "{checks} checks in {:.1} s wall time ({:.0} checks/s through the store)",
        started.elapsed().as_secs_f64(),
        checks as f64 / started.elapsed().as_secs_f64()
    );
}
