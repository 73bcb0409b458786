//! The staging engine: [`SlotStager`] implements [`crate::Stager`] on a
//! real disk. It downloads a signed payload over HTTP(S), streams it
//! through the verifier into the passive slot's USR and USR-VERITY
//! partitions and a staging file on the ESP (one pass, no second copy),
//! checkpoints at zstd frame boundaries so an interrupted download resumes
//! with an HTTP Range request, reads the written slot back against the
//! signed verity root hash, and only then commits: partition GUIDs from
//! the root hash, the UKI renamed into `EFI/Linux/boxcar-<v>+3.efi`, the
//! slot set for one trial boot, the pending update recorded.
//!
//! Blocking I/O and std threads only; the daemon calls it from a worker.
//! See docs/update-agent.md, "Staging engine".

mod config;
pub mod content_range;
mod download;
mod engine;
pub mod errors;
pub mod failpoint;
pub mod http;
pub mod journal;
mod ops;
mod readback;
mod sink;
pub mod system;

pub use config::{ReadBack, StageConfig, Tuning};

use crate::{BootStatus, Offer, StageFailure, Staged, Stager};
use errors::{code, fail};
use failpoint::Failpoints;
use std::fs::File;
use std::sync::atomic::AtomicBool;

/// The staging engine on a disk with the Boxcar layout.
pub struct SlotStager {
    config: StageConfig,
    failpoints: Failpoints,
    http: http::Http,
}

impl SlotStager {
    /// An engine for `config`. Nothing is touched until a method is called.
    pub fn new(config: StageConfig) -> SlotStager {
        let failpoints = Failpoints::new(config.failpoint.as_deref());
        let http = http::Http::new(config.tuning.connect_timeout, config.tuning.read_timeout);
        SlotStager {
            config,
            failpoints,
            http,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &StageConfig {
        &self.config
    }

    /// Serialises staging operations between processes (the daemon and a
    /// CLI, or a restarted daemon and a dying one): an exclusive `flock`
    /// on a file in the state directory, released when the guard drops or
    /// the process dies.
    fn lock(&self) -> Result<File, StageFailure> {
        use std::os::fd::AsRawFd;
        let dir = &self.config.state_dir;
        let path = dir.join(".stage.lock");
        let f = std::fs::create_dir_all(dir)
            .and_then(|_| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
            })
            .map_err(|e| errors::io(code::ERROR, "opening the lock file", &path, e))?;
        // SAFETY: flock only takes the descriptor and flags; `f` is open.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(fail(
                code::ERROR,
                format!("another staging operation holds {}", path.display()),
            ));
        }
        Ok(f)
    }
}

impl Stager for SlotStager {
    fn stage(
        &self,
        offer: &Offer,
        on_progress: &mut dyn FnMut(u64),
        cancel: &AtomicBool,
    ) -> Result<Staged, StageFailure> {
        let _lock = self.lock()?;
        let r = self.stage_locked(offer, on_progress, cancel);
        if let Err(e) = &r {
            tracing::warn!(code = e.code.0, error = %e.message, "staging failed");
        }
        r
    }

    fn unstage(&self) -> Result<(), StageFailure> {
        let _lock = self.lock()?;
        self.unstage_locked()
    }

    fn boot_status(&self) -> Result<BootStatus, StageFailure> {
        self.boot_status_impl()
    }

    fn clear_pending(&self) -> Result<(), StageFailure> {
        let dir = &self.config.state_dir;
        journal::remove(dir, journal::PENDING)
            .map_err(|e| errors::io(code::ERROR, "removing", &journal::path(dir, journal::PENDING), e))
    }

    fn mark_booted_good(&self) -> Result<(), StageFailure> {
        let _lock = self.lock()?;
        self.mark_booted_good_locked()
    }

    fn rollback(&self) -> Result<String, StageFailure> {
        let _lock = self.lock()?;
        self.rollback_locked()
    }
}
