//! Update-check benchmark and fleet simulation (a program, not a test: it prints figures).
//!
//! `cargo bench -p boxcar-server --bench checks` runs everything on both engines; the words
//! `checks`, `stages`, `rollout`, `sim` pick parts, `sqlite` / `postgres` pick an engine, e.g.
//! `-- checks sqlite`.
//!
//! * checks: 10,000 distinct simulated Flatcar instances send update_engine's scheduled check over
//!   64 keep-alive HTTP/1.1 connections to a real server on loopback (2 server worker threads, a
//!   1-thread client in the same process). The same axum/hyper stack, served the same way
//!   (`into_make_service_with_connect_info`), answering a bare "200 OK" is measured in the same run
//!   with the same client, request bytes and connection count; bare and check rounds are
//!   interleaved (rotating the order) so background load hits both alike. Checks run twice: with
//!   the default last-seen resolution (repeats within it are not written) and with resolution 0
//!   (every heartbeat written). A check round ends when its heartbeats are written (the drain
//!   counts). Reported: checks/s, ratio to bare, p50/p99, p50/p99 at a paced 3,000 checks/s, and
//!   the rate of checks that need a database transaction (update available, group paused).
//! * stages: CPU time per check of each step of the fast path, single-threaded, no HTTP.
//! * rollout: the transactional path during an active rollout — 10,000 new instances behind the
//!   channel with grants available (each check evaluates the policy under the group lock and
//!   grants), then further instances checking in once the period limit is reached.
//! * sim: 100,000 instances on a simulated clock, policy 1,000 updates per hour.

#[path = "../tests/common/mod.rs"]
#[allow(unused_macros)]
mod common;
#[path = "support/load.rs"]
mod load;
#[path = "support/sim.rs"]
mod sim;

use boxcar_server::lastseen::DEFAULT_RESOLUTION;
use boxcar_server::model::Package;
use boxcar_server::policy::{SafeMode, UpdatesMode};
use boxcar_server::service::{Clock, Fleet, Path};
use boxcar_server::store::{GroupPatch, Store};
use common::{Backend, TestDb, FLATCAR};
use load::{http_request, load, Pace, Run, Stop, CONNECTIONS};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The allocator the `boxcar-server` binary uses (for the bare server too: same process).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const INSTANCES: usize = 10_000;
const ROUNDS: usize = 6;
const ROUND: Duration = Duration::from_millis(2500);
const RUN: Duration = Duration::from_secs(5);
/// Grants available in the rollout run (the group's per-period limit).
const ROLLOUT_GRANTS: usize = 10_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let parts = ["checks", "stages", "rollout", "sim"];
    let want = |w: &str| !args.iter().any(|a| parts.contains(&a.as_str())) || args.iter().any(|a| a == w);
    let engines: Vec<Backend> = match (args.iter().any(|a| a == "sqlite"), args.iter().any(|a| a == "postgres")) {
        (true, false) => vec![Backend::Sqlite],
        (false, true) => vec![Backend::Postgres],
        _ => vec![Backend::Sqlite, Backend::Postgres],
    };
    for b in &engines {
        if want("stages") {
            stages(*b);
        }
        if want("checks") {
            checks(*b);
        }
        if want("rollout") {
            rollout(*b);
        }
        if want("sim") {
            sim::simulate(*b);
        }
    }
}

fn name(b: Backend) -> &'static str {
    match b {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
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

fn open(b: Backend, db: &TestDb, clock: Clock) -> Arc<Fleet> {
    let store = Store::new(boxcar_server::db::open(&db.location, 8).unwrap());
    store.ensure_defaults(clock.now()).unwrap();
    Arc::new(Fleet::new(store, clock).unwrap_or_else(|e| panic!("{b:?}: {e}")))
}

/// A fleet whose stable channel serves 3100.0.0.
fn fleet_with_release(b: Backend, db: &TestDb) -> Arc<Fleet> {
    let fleet = open(b, db, Clock::System);
    fleet
        .store
        .create_package(fleet.clock.now(), &package("3100.0.0"), Some("stable"))
        .unwrap();
    fleet.refresh_snapshot().unwrap();
    fleet
}

/// Scheduled checks (heartbeat event, ping, updatecheck) of `n` machines `{prefix}-NNNNN`.
fn bodies(prefix: &str, n: usize, version: &str) -> Vec<String> {
    (0..n)
        .map(|i| common::check(&format!("{prefix}-{i:05}"), version, "stable", "0.0.0.0"))
        .collect()
}

fn requests(bodies: &[String]) -> Arc<Vec<Vec<u8>>> {
    Arc::new(bodies.iter().map(|b| http_request("/v1/update/", b)).collect())
}

/// The update server and the bare server on one 2-worker runtime, both served by `axum::serve`
/// with connect info.
struct Servers {
    rt: tokio::runtime::Runtime,
    boxcar: SocketAddr,
    bare: SocketAddr,
}

fn start_servers(fleet: &Arc<Fleet>) -> Servers {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let boxcar = listener.local_addr().unwrap();
    let bare_listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let bare = bare_listener.local_addr().unwrap();
    rt.spawn(boxcar_server::server::serve(fleet.clone(), listener));
    rt.spawn(async move {
        let app = axum::Router::new().route("/v1/update/", axum::routing::post(|| async { "200 OK" }));
        axum::serve(bare_listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
    });
    boxcar_server::server::spawn_background_on(&rt, fleet.clone(), boxcar_server::server::Retention::Forever);
    Servers { rt, boxcar, bare }
}

fn checks(b: Backend) {
    let db = TestDb::new(b);
    let fleet = fleet_with_release(b, &db);
    let servers = start_servers(&fleet);
    let up_to_date = requests(&bodies("bench", INSTANCES, "3100.0.0"));
    // Warm up: every instance registered once.
    drained_run(&fleet, &servers, &up_to_date, Pace::Rate(4000.0), Stop::After(RUN));

    println!(
        "== update checks, {}, {INSTANCES} instances, {CONNECTIONS} connections, {ROUNDS} interleaved rounds of {:.1} s each",
        name(b),
        ROUND.as_secs_f64()
    );
    println!(
        "   checks: last-seen resolution {} s (default); written: resolution 0, every heartbeat written",
        DEFAULT_RESOLUTION.as_secs()
    );
    let (mut bare, mut full, mut written) = (Run::default(), Run::default(), Run::default());
    for round in 0..ROUNDS {
        let (mut rb, mut rc, mut rw) = (None, None, None);
        // Rotate the order so that background load hits each kind alike.
        for k in 0..3 {
            match (round + k) % 3 {
                0 => {
                    rb = Some(load(
                        servers.bare,
                        up_to_date.clone(),
                        b"200 OK",
                        Pace::Closed,
                        Stop::After(ROUND),
                    ))
                }
                1 => rc = Some(check_round(&fleet, &servers, &up_to_date, DEFAULT_RESOLUTION)),
                _ => rw = Some(check_round(&fleet, &servers, &up_to_date, Duration::ZERO)),
            }
        }
        let (rb, rc, rw) = (rb.unwrap(), rc.unwrap(), rw.unwrap());
        println!(
            "  round {round}: bare {:>7.0}/s  checks {:>7.0}/s ({:.0} %)  written {:>7.0}/s ({:.0} %)",
            rb.rate(),
            rc.rate(),
            100.0 * rc.rate() / rb.rate(),
            rw.rate(),
            100.0 * rw.rate() / rb.rate()
        );
        bare.merge(rb);
        full.merge(rc);
        written.merge(rw);
    }
    fleet.set_last_seen_resolution(Duration::ZERO);
    let mut paced_written = paced_round(&fleet, &servers, &up_to_date);
    fleet.set_last_seen_resolution(DEFAULT_RESOLUTION);
    let mut paced = paced_round(&fleet, &servers, &up_to_date);

    // Checks that need a transaction: update available, group paused.
    fleet
        .store
        .set_updates(fleet.clock.now(), FLATCAR, "stable", UpdatesMode::Paused)
        .unwrap();
    let behind = requests(&bodies("bench", INSTANCES, "3000.0.0"));
    let mut slow = load(servers.boxcar, behind, b"noupdate", Pace::Closed, Stop::After(RUN));

    println!("{}", bare.line("bare 200 OK"));
    println!(
        "{}  ratio to bare {:.0} %",
        full.line("update checks (max)"),
        100.0 * full.rate() / bare.rate()
    );
    println!(
        "{}  ratio to bare {:.0} %",
        written.line("checks, every heartbeat written"),
        100.0 * written.rate() / bare.rate()
    );
    println!("{}", paced.line("update checks @3000/s"));
    println!("{}", paced_written.line("every heartbeat written @3000/s"));
    println!("{}  (update withheld: group paused)", slow.line("transactional checks"));
    servers.rt.shutdown_timeout(Duration::from_secs(1));
}

/// One closed-loop round of checks at `resolution`; the round ends when the heartbeats it queued
/// are written (the drain time counts: a rate the database cannot keep up with is not a rate).
fn check_round(fleet: &Arc<Fleet>, servers: &Servers, requests: &Arc<Vec<Vec<u8>>>, resolution: Duration) -> Run {
    fleet.set_last_seen_resolution(resolution);
    let (mut run, drain) = drained_run(fleet, servers, requests, Pace::Closed, Stop::After(ROUND));
    run.elapsed += drain;
    run
}

/// A paced run at 3,000 checks/s (latency from the scheduled send time); the backlog is written
/// before it returns.
fn paced_round(fleet: &Arc<Fleet>, servers: &Servers, requests: &Arc<Vec<Vec<u8>>>) -> Run {
    drained_run(fleet, servers, requests, Pace::Rate(3000.0), Stop::After(RUN)).0
}

/// Checks on the update server that start with no heartbeat queued and end when the heartbeats
/// they queued are written; the run and how long that writing took.
fn drained_run(
    fleet: &Arc<Fleet>,
    servers: &Servers,
    requests: &Arc<Vec<Vec<u8>>>,
    pace: Pace,
    stop: Stop,
) -> (Run, Duration) {
    fleet.flush_heartbeats().unwrap();
    let run = load(servers.boxcar, requests.clone(), b"noupdate", pace, stop);
    let t = Instant::now();
    fleet.flush_heartbeats().unwrap();
    (run, t.elapsed())
}

/// CPU time per check of each fast-path step, one thread, no HTTP: where a check's time goes.
fn stages(b: Backend) {
    let db = TestDb::new(b);
    let fleet = fleet_with_release(b, &db);
    let bodies = bodies("stage", INSTANCES, "3100.0.0");
    let limits = boxcar_omaha::Limits::default();
    // Register every instance first so the flush below measures the steady state.
    for body in &bodies {
        fleet.handle(body.as_bytes(), "10.0.0.1").unwrap();
    }
    fleet.flush_heartbeats().unwrap();

    // Best of 5 passes over the bodies: the machine is shared, the minimum is the cost.
    let per_check = |f: &mut dyn FnMut(usize)| -> f64 {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                for i in 0..bodies.len() {
                    f(i);
                }
                t.elapsed().as_secs_f64() * 1e6 / bodies.len() as f64
            })
            .fold(f64::INFINITY, f64::min)
    };
    let parse = per_check(&mut |i| {
        std::hint::black_box(boxcar_omaha::Request::parse_with(bodies[i].as_bytes(), &limits).unwrap());
    });
    let prepare = per_check(&mut |i| {
        let p = fleet.prepare(bodies[i].as_bytes()).unwrap();
        assert_eq!(p.path(), Path::Snapshot);
        std::hint::black_box(p);
    });
    let prepared: Vec<_> = bodies.iter().map(|b| fleet.prepare(b.as_bytes()).unwrap()).collect();
    // Default resolution: after the first pass every heartbeat is a repeat (not queued).
    let answer = per_check(&mut |i| {
        std::hint::black_box(fleet.answer(&prepared[i], "10.0.0.1").unwrap());
    });
    fleet.flush_heartbeats().unwrap();
    fleet.set_last_seen_resolution(Duration::ZERO);
    let answer_queued = per_check(&mut |i| {
        std::hint::black_box(fleet.answer(&prepared[i], "10.0.0.1").unwrap());
    });
    fleet.flush_heartbeats().unwrap();
    // One queued heartbeat per instance, flushed as the background job does.
    for p in &prepared {
        fleet.answer(p, "10.0.0.1").unwrap();
    }
    let t = Instant::now();
    let n = fleet.flush_heartbeats().unwrap();
    let flush = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!(
        "== fast-path stages, {}, µs of CPU per check (one thread, {INSTANCES} distinct bodies, best of 5)",
        name(b)
    );
    println!("parse the Omaha XML                          {parse:>7.2} µs");
    println!("prepare (parse + validate + plan on snapshot) {prepare:>6.2} µs");
    println!("answer (repeat within resolution, build + serialise) {answer:>6.2} µs");
    println!("answer (queue heartbeat, build + serialise)   {answer_queued:>6.2} µs");
    println!("write one queued heartbeat (flush of {n:>5})  {flush:>6.2} µs");
}

/// The transactional path during a rollout: grants available, then the limit reached.
fn rollout(b: Backend) {
    let db = TestDb::new(b);
    let fleet = fleet_with_release(b, &db);
    let mut policy = fleet.store.get_group(FLATCAR, "stable").unwrap().policy;
    policy.updates = UpdatesMode::Enabled;
    policy.safe_mode = SafeMode::Off;
    policy.max_updates_per_period = ROLLOUT_GRANTS as u32;
    policy.period_minutes = 60;
    policy.update_timeout_minutes = 120;
    policy.halt.threshold_percent = 0;
    let patch = GroupPatch {
        policy: Some(policy),
        ..Default::default()
    };
    fleet
        .store
        .update_group(fleet.clock.now(), FLATCAR, "stable", &patch)
        .unwrap();
    fleet.refresh_snapshot().unwrap();
    let servers = start_servers(&fleet);

    let granting = requests(&bodies("roll", ROLLOUT_GRANTS, "3000.0.0"));
    let mut grants = load(
        servers.boxcar,
        granting,
        br#"<updatecheck status="ok">"#,
        Pace::Closed,
        Stop::OnePass(Duration::from_secs(120)),
    );
    let held = requests(&bodies("held", INSTANCES, "3000.0.0"));
    let mut limited = load(servers.boxcar, held, b"noupdate", Pace::Closed, Stop::After(RUN));
    let granted = fleet
        .store
        .group_progress(FLATCAR, "stable")
        .map(|p| format!("{p:?}"))
        .unwrap_or_else(|e| e.to_string());
    println!(
        "== rollout in progress, {}, limit {ROLLOUT_GRANTS} updates / 60 min, safe mode off, {CONNECTIONS} connections",
        name(b)
    );
    println!(
        "{}  (each check a new instance, granted)",
        grants.line("checks granting an update")
    );
    println!(
        "{}  (update withheld: period limit reached)",
        limited.line("checks after the limit")
    );
    println!("group progress afterwards: {granted}");
    servers.rt.shutdown_timeout(Duration::from_secs(1));
}
