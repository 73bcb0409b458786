//! The `disks`, `mount` and `umount` stages sit behind [`StorageStages`]
//! so the block-device work (partitions, RAID, LUKS, filesystems) can live
//! in its own crate and be plugged in by the binary.

use crate::fetch::Fetcher;
use boxcar_config::model::Config;
use std::path::Path;

/// Whether a stage may change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    /// Describe what would happen; touch nothing.
    DryRun,
}

/// A failure inside a storage stage, with the JSON path it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    /// e.g. `$.storage.filesystems.0`.
    pub json_path: Option<String>,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// What a storage stage gets from the engine.
pub struct StorageContext<'a> {
    /// The final config (spec 3.4 model).
    pub config: &'a Config,
    /// The target root (`/sysroot`); filesystems mount below it.
    pub root: &'a Path,
    pub mode: Mode,
    /// The engine's fetcher, configured from `ignition.*` (CAs, proxy,
    /// timeouts): use it for LUKS key files and tang advertisements so
    /// they follow the same rules as every other resource.
    pub fetcher: &'a Fetcher,
    /// Private state between stage invocations (0700 in `/run`); e.g.
    /// generated LUKS keys from `disks` for the files stage, when the
    /// stages run as separate processes.
    pub run_dir: &'a Path,
}

/// The disks, mount and umount stages, plus the storage part of the files
/// stage. `plan` lines are printed by `--dry-run`; in [`Mode::DryRun`]
/// nothing may be changed.
pub trait StorageStages {
    /// Partition, RAID, LUKS and format as `storage.{disks,raid,luks,filesystems}` say.
    fn disks(&self, cx: &StorageContext, plan: &mut Vec<String>) -> Result<(), StorageError>;
    /// Mount `storage.filesystems` with a `path` under the root.
    fn mount(&self, cx: &StorageContext, plan: &mut Vec<String>) -> Result<(), StorageError>;
    /// Called by the files stage after units and presets (where Ignition
    /// writes `/etc/crypttab` and the LUKS key files).
    fn files(&self, _cx: &StorageContext, _plan: &mut Vec<String>) -> Result<(), StorageError> {
        Ok(())
    }
    /// Unmount what `mount` mounted.
    fn umount(&self, cx: &StorageContext, plan: &mut Vec<String>) -> Result<(), StorageError>;
}

/// The build without block-device support: configs with storage sections
/// fail clearly, all others pass through.
#[derive(Debug, Default)]
pub struct NoStorage;

/// The first storage section a config uses, as a JSON path.
pub fn first_storage_section(cfg: &Config) -> Option<&'static str> {
    let s = &cfg.storage;
    if !s.disks.is_empty() {
        Some("$.storage.disks")
    } else if !s.raid.is_empty() {
        Some("$.storage.raid")
    } else if !s.filesystems.is_empty() {
        Some("$.storage.filesystems")
    } else if !s.luks.is_empty() {
        Some("$.storage.luks")
    } else {
        None
    }
}

impl NoStorage {
    fn check(stage: &str, cfg: &Config) -> Result<(), StorageError> {
        match first_storage_section(cfg) {
            None => Ok(()),
            Some(p) => Err(StorageError {
                json_path: Some(p.to_string()),
                message: format!("{stage} stage: storage.disks/raid/filesystems/luks are not supported by this build"),
                source: None,
            }),
        }
    }
}

impl StorageStages for NoStorage {
    fn disks(&self, cx: &StorageContext, _: &mut Vec<String>) -> Result<(), StorageError> {
        NoStorage::check("disks", cx.config)
    }
    fn mount(&self, cx: &StorageContext, _: &mut Vec<String>) -> Result<(), StorageError> {
        NoStorage::check("mount", cx.config)
    }
    fn umount(&self, cx: &StorageContext, _: &mut Vec<String>) -> Result<(), StorageError> {
        NoStorage::check("umount", cx.config)
    }
}
