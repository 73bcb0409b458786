//! The daemon side: what runs on a node for the whole boot. At start, report steady state
//! (release a lock held from before this boot, once healthy); then wait until the update agent
//! signals a staged update (`/run/reboot-required`); then run the reboot cycle.
//!
//! Releasing at start is Zincati's flow too: it also clears a slot left behind by an attempt
//! that died between "lock" and "reboot", because the lock is recursive and ours.

use crate::cycle::{Coordinator, CycleError, Outcome, Steady};
use std::path::Path;
use std::time::Duration;

/// Where the update agent signals "reboot needed" (also the sentinel kured reads).
pub const REBOOT_NEEDED: &str = "/run/reboot-required";

/// Runs one boot's worth of coordination; returns when the reboot was started (or handed off,
/// or the strategy is off). `sleep` is injected so tests drive time.
pub fn serve(
    coordinator: &Coordinator<'_>,
    signal: &Path,
    poll: Duration,
    sleep: &dyn Fn(Duration),
) -> Result<Outcome, CycleError> {
    // 1. Steady state: release what we may hold, once healthy; retry through lock outages.
    let mut last = String::new();
    loop {
        let msg = match coordinator.after_boot() {
            Ok(Steady::Released) => break,
            Ok(Steady::HoldingUnhealthy(reason)) => {
                format!("node unhealthy after boot, keeping the reboot lock: {reason}")
            }
            Err(e) => format!("reporting steady state: {e}"),
        };
        if msg != last {
            tracing::warn!("{msg}");
            last = msg;
        }
        sleep(poll);
    }
    tracing::info!(signal = %signal.display(), "steady; waiting for a staged update");
    // 2. Wait for the update agent's signal.
    while !signal.exists() {
        sleep(poll);
    }
    tracing::info!("update staged; coordinating the reboot");
    // 3. The cycle.
    coordinator.run(poll, sleep)
}
