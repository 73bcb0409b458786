//! What the staging engine works on: the disk, the ESP, the state
//! directory, the trusted key and where the running system describes
//! itself. Plain data; the daemon fills it from its configuration.

use std::path::PathBuf;
use std::time::Duration;

/// Paths and knobs of a [`super::SlotStager`].
#[derive(Debug, Clone)]
pub struct StageConfig {
    /// The disk holding the design.md layout: a GPT image file or a block
    /// device (`/dev/vda`). Slots are written in place at their offsets.
    pub disk: PathBuf,
    /// Root of the mounted ESP (boot entries go to `EFI/Linux/`).
    pub esp: PathBuf,
    /// Where the checkpoint journal and the pending update live
    /// (`/var/lib/boxcar`).
    pub state_dir: PathBuf,
    /// The trusted payload public key (SPKI PEM, in `/usr`).
    pub public_key: PathBuf,
    /// os-release of the running system (`VERSION_ID` = running version).
    pub os_release: PathBuf,
    /// The running kernel's command line (`/proc/cmdline`), for `usrhash=`.
    pub cmdline: PathBuf,
    /// Fault injection: the name of a failpoint at which the process aborts
    /// (tests only; see [`super::failpoint::POINTS`]).
    pub failpoint: Option<String>,
    pub tuning: Tuning,
}

impl StageConfig {
    /// The production paths, with `disk` and `esp` as found by the caller.
    pub fn system(disk: PathBuf, esp: PathBuf) -> StageConfig {
        StageConfig {
            disk,
            esp,
            state_dir: "/var/lib/boxcar".into(),
            public_key: "/usr/share/boxcar/update-key.pub.pem".into(),
            os_release: "/usr/lib/os-release".into(),
            cmdline: "/proc/cmdline".into(),
            failpoint: std::env::var(super::failpoint::ENV).ok(),
            tuning: Tuning::default(),
        }
    }
}

/// Timing and granularity. Defaults suit production; tests shrink them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Write a checkpoint once this many payload bytes arrived since the
    /// last one (at the next zstd frame boundary). Each checkpoint costs an
    /// fsync of the written partitions.
    pub checkpoint_every: u64,
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
    /// Give up when the server sends nothing for this long (a stall).
    pub read_timeout: Duration,
    /// Boot attempts of the new entry (`+N`).
    pub boot_tries: u32,
    /// Read the written slot back and check it against the verity tree
    /// before making it bootable. Only the benchmark turns this off, to
    /// measure its cost.
    pub read_back: ReadBack,
}

/// Whether the written partitions are read back before the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBack {
    /// Always, in production.
    Verify,
    /// Benchmark only: measure the download path alone.
    SkipForBenchmark,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            checkpoint_every: 64 << 20,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            boot_tries: 3,
            read_back: ReadBack::Verify,
        }
    }
}
