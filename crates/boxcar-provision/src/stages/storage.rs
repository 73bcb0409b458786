//! The `disks`, `mount` and `umount` stages sit behind [`StorageStages`]
//! so the block-device work (partitions, RAID, LUKS, filesystems) can live
//! in its own crate and be plugged in by the binary.

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

/// The disks, mount and umount stages. `plan` lines are printed by
/// `--dry-run`; in [`Mode::DryRun`] nothing may be changed.
pub trait StorageStages {
    /// Partition, RAID, LUKS and format as `storage.{disks,raid,luks,filesystems}` say.
    fn disks(&self, cfg: &Config, mode: Mode, plan: &mut Vec<String>) -> Result<(), StorageError>;
    /// Mount `storage.filesystems` with a `path` under `root`.
    fn mount(&self, cfg: &Config, root: &Path, mode: Mode, plan: &mut Vec<String>) -> Result<(), StorageError>;
    /// Unmount what `mount` mounted.
    fn umount(&self, cfg: &Config, root: &Path, mode: Mode, plan: &mut Vec<String>) -> Result<(), StorageError>;
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
    fn disks(&self, cfg: &Config, _: Mode, _: &mut Vec<String>) -> Result<(), StorageError> {
        NoStorage::check("disks", cfg)
    }
    fn mount(&self, cfg: &Config, _: &Path, _: Mode, _: &mut Vec<String>) -> Result<(), StorageError> {
        NoStorage::check("mount", cfg)
    }
    fn umount(&self, cfg: &Config, _: &Path, _: Mode, _: &mut Vec<String>) -> Result<(), StorageError> {
        NoStorage::check("umount", cfg)
    }
}
