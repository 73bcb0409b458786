//! The fleet simulation: 100,000 instances on a simulated clock, each checking in once an hour
//! (5-minute steps), policy 1,000 updates per hour; granted instances download, install, reboot
//! and report in the next step. Requests go through the service (parse, plan, store) without HTTP.

use super::{open, package};
use crate::common::{self, Backend, TestDb, FLATCAR};
use boxcar_server::service::Clock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Runs the simulation on `b` and prints grants per hour and the worst 60-minute window.
pub fn simulate(b: Backend) {
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
