//! Fault injection for the crash tests: at a named point of staging the
//! process aborts at once (no destructors, no flushes), like a power cut
//! or an OOM kill, and the test checks what a restart finds.

/// Environment variable naming the armed failpoint (`BOXCAR_FAILPOINT=usr-mid`).
pub const ENV: &str = "BOXCAR_FAILPOINT";

/// Every failpoint, in the order staging reaches them.
pub const POINTS: &[&str] = &[
    // Passive slot made unbootable, old entries not yet removed.
    "slot-invalidated",
    // Some usr bytes written, before the first checkpoint.
    "usr-before-checkpoint",
    // Right after a checkpoint inside usr was journaled.
    "usr-mid",
    // usr verified, checkpoint at the section boundary journaled.
    "between-sections",
    // Inside the verity section, after a checkpoint.
    "verity-mid",
    // Whole stream written (UKI staging file complete), not yet journaled as downloaded.
    "uki-written",
    // Journal says downloaded; read-back not started.
    "before-read-back",
    // Read-back passed; partition GUIDs not set yet.
    "after-read-back",
    // GUIDs set; the next step is the commit rename of the UKI.
    "before-commit",
    // UKI entry renamed into place (committed); gptprio not yet set.
    "after-commit",
    // Slot set for a trial boot; pending update not yet written.
    "after-trial",
    // Pending update written; journal not yet removed.
    "pending-written",
];

/// The armed failpoint, if any.
#[derive(Debug, Clone, Default)]
pub struct Failpoints {
    armed: Option<String>,
}

impl Failpoints {
    /// Arms `spec` (one of [`POINTS`]); unknown names are reported and ignored.
    pub fn new(spec: Option<&str>) -> Failpoints {
        let armed = spec.filter(|s| !s.is_empty()).and_then(|s| {
            if POINTS.contains(&s) {
                Some(s.to_string())
            } else {
                tracing::warn!(failpoint = s, "unknown failpoint ignored");
                None
            }
        });
        Failpoints { armed }
    }

    /// Aborts the process if `name` is armed.
    pub fn hit(&self, name: &str) {
        debug_assert!(POINTS.contains(&name), "failpoint {name} not listed");
        if self.armed.as_deref() == Some(name) {
            eprintln!("boxcar-stage: failpoint {name} reached, aborting");
            std::process::abort();
        }
    }
}
