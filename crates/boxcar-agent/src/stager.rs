//! The boundary between the daemon (Omaha client, timers, local API,
//! D-Bus) and the staging engine (download, verify, write the passive slot,
//! boot entries, blessing). The daemon only sees this trait, so it can be
//! tested with a scripted stager and the engine can be tested without a
//! daemon.

use crate::state::ErrorCode;
use std::sync::atomic::AtomicBool;

/// What the server offered, taken from the Omaha response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Version the payload installs (`manifest version=`).
    pub version: String,
    /// Full URL of the payload file (codebase + package name).
    pub url: String,
    /// Payload file size announced by the server, in bytes.
    pub size: u64,
    /// sha256 of the whole payload file from the response (hex), if sent.
    pub sha256: Option<String>,
}

/// A successfully staged update: the passive slot holds `version`, its
/// boot entry has a boot counter, and the slot is set for one trial boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    pub version: String,
    /// Label of the partition written, e.g. `USR-B`.
    pub slot: String,
}

/// What the node booted and what was pending before the boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootStatus {
    /// Version of the running /usr (os-release `VERSION_ID`).
    pub running_version: String,
    /// Label of the booted USR partition, when it could be determined.
    pub booted_slot: Option<String>,
    /// Update staged before the last reboot and not yet reported.
    pub pending: Option<crate::PendingUpdate>,
    /// Whether this boot was marked good yet (the booted slot's gptprio
    /// successful bit, set by `mark-good` once `boot-complete.target` was
    /// reached).
    pub health: BootHealth,
}

/// Whether the running version has proven itself on this node.
///
/// A freshly updated version runs "on trial" until its health checks pass
/// and `boxcar-updated mark-good` marks its slot successful; until then the
/// agent must not tell the server the update is complete, because a failed
/// check may still send the node back to the old version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootHealth {
    /// The booted slot is marked successful.
    Good,
    /// The booted slot is not (yet) marked successful.
    OnTrial,
    /// The booted slot could not be told (no `usrhash=`, not a Boxcar disk).
    Unknown,
}

/// A failed step, with the update_engine error code the daemon reports in
/// its error event. `message` is for logs and the API; it never holds
/// secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StageFailure {
    pub code: ErrorCode,
    pub message: String,
}

/// The staging engine as the daemon drives it. Every method blocks; the
/// daemon calls them from a worker thread.
pub trait Stager: Send + Sync {
    /// Downloads, verifies and writes the passive slot and its boot entry.
    /// Calls `on_progress(done)` with payload bytes received so far
    /// (monotonic, may start above 0 when a download resumes). Returns
    /// early with a failure when `cancel` becomes true. Nothing is made
    /// bootable unless this returns `Ok`.
    fn stage(
        &self,
        offer: &Offer,
        on_progress: &mut dyn FnMut(u64),
        cancel: &AtomicBool,
    ) -> Result<Staged, StageFailure>;

    /// Forgets a staged, not yet booted update: the passive slot becomes
    /// unbootable again and its boot entry is removed.
    fn unstage(&self) -> Result<(), StageFailure>;

    /// The running version, the booted slot and the pending update (read
    /// at daemon start to decide between success and rollback).
    fn boot_status(&self) -> Result<BootStatus, StageFailure>;

    /// Records that the pending update was reported, so it is not reported
    /// again after the next restart.
    fn clear_pending(&self) -> Result<(), StageFailure>;

    /// The running version reached `boot-complete.target`: bless its boot
    /// entry, mark its slot successful with the highest priority, prune old
    /// entries.
    fn mark_booted_good(&self) -> Result<(), StageFailure>;

    /// Makes the other slot (the previous version) boot next, on purpose.
    /// Returns the version that will boot.
    fn rollback(&self) -> Result<String, StageFailure>;
}
