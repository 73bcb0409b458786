//! Filesystems: reuse what matches, refuse what differs, create the rest.
//!
//! Ignition probes the device with libblkid and compares type, label and
//! UUID; without `wipeFilesystem` a matching filesystem is kept (its data
//! survives re-provisioning) and any other filesystem is an error, so a
//! typo never destroys data. With `wipeFilesystem` the signatures are wiped
//! (`wipefs -a`) and mkfs runs with its force flag.

use crate::cmd::{Cmd, CmdError};
use crate::error::DisksError;
use crate::run::Run;
use boxcar_config::model::Filesystem;

/// What blkid reports for a device; empty strings when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsInfo {
    pub fs_type: String,
    pub uuid: String,
    pub label: String,
}

/// Parses `blkid -o export` output.
pub fn parse_blkid_export(out: &str) -> FsInfo {
    let mut info = FsInfo::default();
    for line in out.lines() {
        if let Some((k, v)) = line.split_once('=') {
            match k {
                "TYPE" => info.fs_type = v.to_string(),
                "UUID" => info.uuid = v.to_string(),
                "LABEL" => info.label = v.to_string(),
                _ => {}
            }
        }
    }
    info
}

/// Probes `dev` directly (no cache). A device with more than one signature
/// is probed again allowing that, with a warning, as Ignition does.
pub fn probe(dev: &str) -> Result<FsInfo, CmdError> {
    match Cmd::new("blkid").args(["-p", "-o", "export", dev]).run() {
        Ok(out) => Ok(parse_blkid_export(&out)),
        Err(e) if e.code() == Some(2) => Ok(FsInfo::default()),
        Err(e) if e.to_string().contains("ambivalent") => {
            tracing::warn!(device = dev, error = %e, "several signatures found; using the first");
            match Cmd::new("blkid").args(["-c", "/dev/null", "-o", "export", dev]).run() {
                Ok(out) => Ok(parse_blkid_export(&out)),
                Err(e2) if e2.code() == Some(2) => Ok(FsInfo::default()),
                Err(e2) => Err(e2),
            }
        }
        Err(e) => Err(e),
    }
}

/// The minimal canonical form in which two equal UUIDs compare equal:
/// lower case, and for vfat without the dash of `A1B2-C3D4` (mkfs.fat wants
/// the 32-bit volume id without it).
pub fn canonical_uuid(format: &str, uuid: &str) -> String {
    let mut u = uuid.to_ascii_lowercase();
    if format == "vfat" && u.len() >= 5 && u.as_bytes()[4] == b'-' {
        u.remove(4);
    }
    u
}

/// The outcome for one filesystem entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No `format`: Ignition leaves the device alone.
    Untouched,
    /// The existing filesystem matches (or `none` on a blank device).
    Reuse,
    /// Wipe signatures, then run `mkfs` (absent for `none`).
    Create { mkfs: Option<Cmd> },
}

/// Why an entry cannot be satisfied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideError {
    Unsupported(String),
    Mismatch(FsInfo),
}

/// Decides what to do with `fs` on device `dev` currently holding `found`.
pub fn decide(fs: &Filesystem, dev: &str, found: &FsInfo) -> Result<Decision, DecideError> {
    let Some(format) = fs.format.as_deref() else {
        return Ok(Decision::Untouched);
    };
    let mkfs = mkfs_cmd(fs, format, dev)?;
    if fs.wipe_filesystem != Some(true) {
        let want_type = if format == "none" { "" } else { format };
        let label_ok = fs.label.as_ref().is_none_or(|l| *l == found.label);
        let uuid_ok = fs
            .uuid
            .as_ref()
            .is_none_or(|u| canonical_uuid(want_type, u) == canonical_uuid(&found.fs_type, &found.uuid));
        if found.fs_type == want_type && label_ok && uuid_ok {
            return Ok(Decision::Reuse);
        }
        if !found.fs_type.is_empty() {
            return Err(DecideError::Mismatch(found.clone()));
        }
    }
    Ok(Decision::Create { mkfs })
}

/// The mkfs command for `format` with Ignition's flags: force, UUID, label,
/// then the user's `options`, then the device.
pub fn mkfs_cmd(fs: &Filesystem, format: &str, dev: &str) -> Result<Option<Cmd>, DecideError> {
    let uuid = fs.uuid.as_ref().map(|u| canonical_uuid(format, u));
    let (program, force, uuid_args, label_flag): (&str, Option<&str>, Vec<String>, &str) = match format {
        "ext4" => (
            "mkfs.ext4",
            Some("-F"),
            uuid.map(|u| vec!["-U".into(), u]).unwrap_or_default(),
            "-L",
        ),
        "btrfs" => (
            "mkfs.btrfs",
            Some("--force"),
            uuid.map(|u| vec!["-U".into(), u]).unwrap_or_default(),
            "-L",
        ),
        "xfs" => (
            "mkfs.xfs",
            Some("-f"),
            uuid.map(|u| vec!["-m".into(), format!("uuid={u}")]).unwrap_or_default(),
            "-L",
        ),
        "swap" => (
            "mkswap",
            Some("-f"),
            uuid.map(|u| vec!["-U".into(), u]).unwrap_or_default(),
            "-L",
        ),
        // mkfs.fat has no force flag: it always overwrites.
        "vfat" => (
            "mkfs.vfat",
            None,
            uuid.map(|u| vec!["-i".into(), u]).unwrap_or_default(),
            "-n",
        ),
        "none" => return Ok(None),
        other => return Err(DecideError::Unsupported(other.to_string())),
    };
    let mut cmd = Cmd::new(program).args(fs.options.iter().cloned());
    if let Some(f) = force {
        cmd = cmd.arg(f);
    }
    cmd = cmd.args(uuid_args);
    if let Some(l) = &fs.label {
        cmd = cmd.arg(label_flag).arg(l.clone());
    }
    Ok(Some(cmd.arg(dev)))
}

/// Creates or reuses the filesystem of `$.storage.filesystems.<index>`.
pub(crate) fn create(run: &mut Run, index: usize, fs: &Filesystem) -> Result<(), DisksError> {
    let path = format!("$.storage.filesystems.{index}");
    if fs.format.is_none() {
        return Ok(());
    }
    let Some(dev) = run.device_or_planned(&path, &fs.device)? else {
        // Dry run: the device comes from an earlier planned step.
        let d = decide(fs, &fs.device, &FsInfo::default()).map_err(|e| decide_error(&path, &fs.device, e))?;
        return plan_create(run, &path, fs, &fs.device, d);
    };
    let found = probe(&dev).map_err(|source| DisksError::ProbeFilesystem {
        path: path.clone(),
        device: fs.device.clone(),
        source,
    })?;
    tracing::info!(device = %fs.device, r#type = %found.fs_type, uuid = %found.uuid, label = %found.label, "found filesystem");
    let d = decide(fs, &dev, &found).map_err(|e| decide_error(&path, &fs.device, e))?;
    plan_create(run, &path, fs, &dev, d)
}

fn plan_create(run: &mut Run, path: &str, fs: &Filesystem, dev: &str, d: Decision) -> Result<(), DisksError> {
    let format = fs.format.as_deref().unwrap_or_default();
    match d {
        Decision::Untouched => Ok(()),
        Decision::Reuse => {
            run.note(
                path,
                format!("{dev} already has the requested {format} filesystem; kept"),
            );
            Ok(())
        }
        Decision::Create { mkfs } => {
            let wipefs = Cmd::new("wipefs").args(["-a", dev]);
            run.exec(path, format!("wipe filesystem signatures from {dev}"), wipefs)
                .map_err(|source| DisksError::Wipefs {
                    path: path.to_string(),
                    device: dev.to_string(),
                    source,
                })?;
            if let Some(cmd) = mkfs {
                run.exec(path, format!("create a {format} filesystem on {dev}"), cmd)
                    .map_err(|source| DisksError::Mkfs {
                        path: path.to_string(),
                        device: dev.to_string(),
                        format: format.to_string(),
                        source,
                    })?;
            }
            Ok(())
        }
    }
}

fn decide_error(path: &str, dev: &str, e: DecideError) -> DisksError {
    match e {
        DecideError::Unsupported(format) => DisksError::UnsupportedFormat {
            path: path.to_string(),
            format,
        },
        DecideError::Mismatch(f) => DisksError::FilesystemMismatch {
            path: path.to_string(),
            device: dev.to_string(),
            found_type: if f.fs_type.is_empty() {
                "nothing".into()
            } else {
                f.fs_type
            },
            found_label: f.label,
            found_uuid: f.uuid,
        },
    }
}

#[cfg(test)]
#[path = "fs_tests.rs"]
mod tests;
