//! The errors of the disks, mount and umount stages.
//!
//! Every variant names the operation that failed and, where the failure
//! belongs to one config entry, carries that entry's JSON path (for example
//! `$.storage.filesystems.2`) so the provisioning report can point at the
//! line the user has to fix.

use crate::cmd::CmdError;
use std::path::PathBuf;

/// Why a disks, mount or umount stage failed.
#[derive(Debug, thiserror::Error)]
pub enum DisksError {
    #[error("{path}: waiting for device {device}: not present after {timeout_secs}s")]
    DeviceTimeout {
        path: String,
        device: String,
        timeout_secs: u64,
    },

    #[error("{path}: resolving device {device}: {reason}")]
    ResolveDevice {
        path: String,
        device: String,
        reason: String,
    },

    #[error("{path}: wiping partition table of {device}: {source}")]
    WipeTable {
        path: String,
        device: String,
        source: CmdError,
    },

    #[error("{path}: reading partition table of {device}: {source}")]
    ReadTable {
        path: String,
        device: String,
        source: CmdError,
    },

    #[error("{path}: reading partition table of {device}: {reason}")]
    ParseTable {
        path: String,
        device: String,
        reason: String,
    },

    #[error("{path}: computing partition sizes on {device}: {source}")]
    Pretend {
        path: String,
        device: String,
        source: CmdError,
    },

    #[error("{path}: computing partition sizes on {device}: sgdisk had unexpected output")]
    BadSgdiskOutput { path: String, device: String },

    /// Ignition: "partition N exists but is specified as nonexistant and
    /// wipePartitionEntry is false".
    #[error("{path}: partition {number} on {device} exists but shouldExist is false and wipePartitionEntry is false")]
    PartitionExists { path: String, device: String, number: u32 },

    /// Ignition: "Partition N didn't match: …".
    #[error("{path}: partition {number} on {device} didn't match: {reason} (set wipePartitionEntry to recreate it, or resize to grow it)")]
    PartitionMismatch {
        path: String,
        device: String,
        number: u32,
        reason: String,
    },

    #[error("{path}: invalid partition on {device}: {reason}")]
    PartitionSpec {
        path: String,
        device: String,
        reason: String,
    },

    #[error("{path}: creating or deleting partitions on {device}: {source}")]
    CommitPartitions {
        path: String,
        device: String,
        source: CmdError,
    },

    #[error("{path}: determining filesystem type of {device}: {source}")]
    ProbeFilesystem {
        path: String,
        device: String,
        source: CmdError,
    },

    /// Ignition's ErrBadFilesystem.
    #[error("{path}: filesystem at {device} is not of the correct type, label, or UUID (found {found_type}, label {found_label:?}, uuid {found_uuid:?}) and wipeFilesystem is false")]
    FilesystemMismatch {
        path: String,
        device: String,
        found_type: String,
        found_label: String,
        found_uuid: String,
    },

    #[error("{path}: unsupported filesystem format {format:?}")]
    UnsupportedFormat { path: String, format: String },

    #[error("{path}: wiping signatures from {device}: {source}")]
    Wipefs {
        path: String,
        device: String,
        source: CmdError,
    },

    #[error("{path}: creating {format} filesystem on {device}: {source}")]
    Mkfs {
        path: String,
        device: String,
        format: String,
        source: CmdError,
    },

    #[error("{path}: invalid RAID array {name}: {reason}")]
    RaidSpec { path: String, name: String, reason: String },

    #[error("{path}: creating RAID array {name}: {source}")]
    CreateRaid {
        path: String,
        name: String,
        source: CmdError,
    },

    #[error("{path}: LUKS volume {name}: {reason}")]
    LuksSpec { path: String, name: String, reason: String },

    #[error("{path}: fetching key file for LUKS volume {name}: {reason}")]
    LuksKeyFetch { path: String, name: String, reason: String },

    #[error("{path}: LUKS volume {name}: {what}: {source}")]
    LuksIo {
        path: String,
        name: String,
        what: &'static str,
        source: std::io::Error,
    },

    /// Ignition's ErrBadVolume.
    #[error("{path}: volume at {device} cannot be used for LUKS volume {name}: {reason} and wipeVolume is false")]
    LuksVolumeMismatch {
        path: String,
        device: String,
        name: String,
        reason: String,
    },

    #[error("{path}: LUKS volume {name}: {what}: {source}")]
    Cryptsetup {
        path: String,
        name: String,
        what: &'static str,
        source: CmdError,
    },

    #[error("{path}: LUKS volume {name}: clevis binding requested but `clevis` is not installed on this system")]
    ClevisUnavailable { path: String, name: String },

    #[error("{path}: LUKS volume {name}: binding clevis: {source}")]
    Clevis {
        path: String,
        name: String,
        source: CmdError,
    },

    #[error("{path}: mount point {target}: {reason}")]
    MountPoint {
        path: String,
        target: PathBuf,
        reason: String,
    },

    #[error("{path}: creating mount point {target}: {source}")]
    CreateMountPoint {
        path: String,
        target: PathBuf,
        source: std::io::Error,
    },

    #[error("{path}: mounting {device} at {target}: {source}")]
    Mount {
        path: String,
        device: String,
        target: PathBuf,
        source: CmdError,
    },

    #[error("{path}: unmounting {target}: {source}")]
    Umount {
        path: String,
        target: PathBuf,
        source: CmdError,
    },

    #[error("writing LUKS key for {name} into {target}: {source}")]
    PersistKey {
        name: String,
        target: PathBuf,
        source: std::io::Error,
    },

    #[error("writing {target}: {source}")]
    Crypttab { target: PathBuf, source: std::io::Error },
}

impl DisksError {
    /// The JSON path of the config entry the failure belongs to (e.g.
    /// `$.storage.filesystems.2`); `None` for failures writing the target.
    pub fn config_path(&self) -> Option<&str> {
        match self {
            DisksError::DeviceTimeout { path, .. }
            | DisksError::ResolveDevice { path, .. }
            | DisksError::WipeTable { path, .. }
            | DisksError::ReadTable { path, .. }
            | DisksError::ParseTable { path, .. }
            | DisksError::Pretend { path, .. }
            | DisksError::BadSgdiskOutput { path, .. }
            | DisksError::PartitionExists { path, .. }
            | DisksError::PartitionMismatch { path, .. }
            | DisksError::PartitionSpec { path, .. }
            | DisksError::CommitPartitions { path, .. }
            | DisksError::ProbeFilesystem { path, .. }
            | DisksError::FilesystemMismatch { path, .. }
            | DisksError::UnsupportedFormat { path, .. }
            | DisksError::Wipefs { path, .. }
            | DisksError::Mkfs { path, .. }
            | DisksError::RaidSpec { path, .. }
            | DisksError::CreateRaid { path, .. }
            | DisksError::LuksSpec { path, .. }
            | DisksError::LuksKeyFetch { path, .. }
            | DisksError::LuksIo { path, .. }
            | DisksError::LuksVolumeMismatch { path, .. }
            | DisksError::Cryptsetup { path, .. }
            | DisksError::ClevisUnavailable { path, .. }
            | DisksError::Clevis { path, .. }
            | DisksError::MountPoint { path, .. }
            | DisksError::CreateMountPoint { path, .. }
            | DisksError::Mount { path, .. }
            | DisksError::Umount { path, .. } => Some(path),
            DisksError::PersistKey { .. } | DisksError::Crypttab { .. } => None,
        }
    }
}
