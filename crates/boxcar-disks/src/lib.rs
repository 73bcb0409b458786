//! Boxcar's disks, mount and umount stages: Ignition 2.14's storage
//! semantics on real block devices, as a library the provisioning engine
//! calls.
//!
//! * [`disks`] partitions disks (sgdisk), creates RAID arrays (mdadm), LUKS
//!   volumes (cryptsetup, clevis) and filesystems (mkfs.*), in Ignition's
//!   order, reusing what already matches and refusing to destroy what does
//!   not unless the config says `wipe…`;
//! * [`mount()`] mounts the filesystems with a `path` under the target root,
//!   parents first; [`umount`] undoes it in reverse;
//! * [`persist_luks`] stores LUKS keys and crypttab lines in the target once
//!   its root is mounted (Ignition does this in its files stage).
//!
//! Every function takes a [`Context`]; with [`Mode::DryRun`] nothing is
//! written and the [`Report`] lists what would be done. Planning is pure
//! and unit-tested (see [`gpt::plan`], [`fs::decide`], [`raid::mdadm_cmd`],
//! [`luks::format_cmd`]); only thin layers run commands.

mod clevis;
pub mod cmd;
pub mod device;
mod error;
pub mod fs;
pub mod gpt;
pub mod luks;
pub mod mount;
mod persist;
pub mod raid;
mod run;
mod secret;

pub use error::DisksError;
pub use luks::LuksVolume;
pub use run::Operation;
pub use secret::Secret;

use boxcar_config::model::{Resource, Storage};
use run::Run;
use std::path::PathBuf;
use std::time::Duration;

/// Whether a stage changes the system or only says what it would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    Apply,
    /// Read devices, plan, report; write nothing, fetch no keys.
    DryRun,
}

/// Supplies the bytes of a LUKS `keyFile` (and, for clevis, fetches tang
/// advertisements) so the provisioning engine's fetcher — with its
/// sources, CAs, headers, retries, decompression and verification — is
/// reused rather than duplicated here.
///
/// The error's message is shown to the user: it must not contain the key
/// or the resource's inline data.
pub trait KeySource {
    fn fetch(&self, resource: &Resource) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>>;
}

/// A [`KeySource`] for callers without a fetcher: every fetch fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKeySource;

impl KeySource for NoKeySource {
    fn fetch(&self, _: &Resource) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
        Err("no fetcher is available to read key files".into())
    }
}

/// What a stage needs from its caller.
pub struct Context<'k> {
    /// The target root (`/sysroot` in the initrd).
    pub root: PathBuf,
    pub mode: Mode,
    pub key_source: &'k dyn KeySource,
    /// How long to wait for each device to appear.
    pub device_timeout: Duration,
}

impl<'k> Context<'k> {
    /// Applies to `root`, fetching keys from `key_source`, waiting up to
    /// 90 s per device (systemd's default device timeout).
    pub fn new(root: impl Into<PathBuf>, key_source: &'k dyn KeySource) -> Self {
        Context {
            root: root.into(),
            mode: Mode::Apply,
            key_source,
            device_timeout: Duration::from_secs(90),
        }
    }
}

/// What a stage did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub mode: Mode,
    pub operations: Vec<Operation>,
    /// LUKS volumes set up by [`disks`]; hand them to [`persist_luks`].
    pub luks: Vec<LuksVolume>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for op in &self.operations {
            writeln!(f, "{op}")?;
        }
        Ok(())
    }
}

/// The disks stage: partitions, then RAID, then LUKS, then filesystems,
/// each in config order, stopping at the first error. Nothing to do when
/// the config has no disks, raid, luks or filesystems.
pub fn disks(storage: &Storage, ctx: &Context) -> Result<Report, DisksError> {
    let mut run = Run::new(ctx);
    for (i, d) in storage.disks.iter().enumerate() {
        gpt::partition_disk(&mut run, i, d)?;
    }
    for (i, r) in storage.raid.iter().enumerate() {
        raid::create(&mut run, i, r)?;
    }
    for (i, l) in storage.luks.iter().enumerate() {
        luks::create(&mut run, i, l)?;
    }
    for (i, f) in storage.filesystems.iter().enumerate() {
        fs::create(&mut run, i, f)?;
    }
    if run.applying()
        && !(storage.disks.is_empty()
            && storage.raid.is_empty()
            && storage.luks.is_empty()
            && storage.filesystems.is_empty())
    {
        device::settle();
    }
    Ok(run.report)
}

/// The mount stage: mounts every filesystem with a `path` (and a mountable
/// format) at that path under `ctx.root`, parents first.
pub fn mount(storage: &Storage, ctx: &Context) -> Result<Report, DisksError> {
    let mut run = Run::new(ctx);
    mount::mount_all(&mut run, &storage.filesystems)?;
    Ok(run.report)
}

/// The umount stage: unmounts what [`mount()`] mounted, children first.
pub fn umount(storage: &Storage, ctx: &Context) -> Result<Report, DisksError> {
    let mut run = Run::new(ctx);
    mount::umount_all(&mut run, &storage.filesystems)?;
    Ok(run.report)
}

/// Writes the keys of `volumes` (from [`Report::luks`] of [`disks`]) to
/// `/etc/luks/<name>` under `ctx.root` and appends their `/etc/crypttab`
/// lines. Call it after [`mount()`], during the files stage.
pub fn persist_luks(volumes: &[LuksVolume], ctx: &Context) -> Result<Report, DisksError> {
    let mut run = Run::new(ctx);
    persist::persist(&mut run, volumes)?;
    Ok(run.report)
}
