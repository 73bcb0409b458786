//! The checkpoint journal and the pending-update record in the state
//! directory: versioned JSON written atomically (temporary file, fsync,
//! rename, directory fsync). The journal is written only after the
//! partition data it describes was fsynced, so after a crash it never
//! claims more than what is on disk.

use boxcar_payload::{Manifest, Position};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Journal file name in the state directory.
pub const JOURNAL: &str = "stage-journal.json";
/// Pending-update file name in the state directory.
pub const PENDING: &str = "pending-update.json";
/// Format version of both files.
pub const FORMAT: u32 = 1;

/// Which payload a journal belongs to; a resume needs all of it to match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadId {
    pub url: String,
    /// sha256 of the whole file as the Omaha offer announced it (if any).
    pub offer_sha256: Option<String>,
    pub offer_size: u64,
    pub version: String,
    /// Label of the passive USR partition being written.
    pub slot: String,
}

/// How far staging got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum Phase {
    /// Written and fsynced up to `position` (a zstd frame boundary).
    Downloading { position: Box<Position> },
    /// Every section arrived, verified and fsynced; read-back and commit remain.
    Downloaded,
}

/// The checkpoint journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    pub format: u32,
    pub payload: PayloadId,
    /// sha256 of the signed manifest (hex): a re-fetched head must match.
    pub manifest_sha256: String,
    /// Bytes of header + manifest (where the sections start).
    pub head_len: u64,
    /// The manifest, as verified when the download started; the read-back
    /// after a restart checks the slot against it. A resumed download
    /// re-verifies the signature of the re-fetched head and compares its
    /// digest with `manifest_sha256`.
    pub manifest: Manifest,
    pub phase: Phase,
}

/// An update staged for the next boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    pub format: u32,
    pub version: String,
    /// Label of the USR partition holding it.
    pub slot: String,
    /// The version that was running when it was staged.
    pub previous_version: String,
}

/// Writes `value` as JSON to `dir/name` atomically.
pub fn save<T: Serialize>(dir: &Path, name: &str, value: &T) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    fs::File::open(dir)?.sync_all()
}

/// What reading a state file found.
#[derive(Debug)]
pub enum Loaded<T> {
    Missing,
    Found(T),
    /// Present but unreadable (wrong format version, damaged): the reason.
    Invalid(String),
}

/// Reads `dir/name`.
pub fn load<T: DeserializeOwned>(dir: &Path, name: &str) -> std::io::Result<Loaded<T>> {
    let path = dir.join(name);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(e) => return Err(e),
    };
    let format = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("format").and_then(|f| f.as_u64()));
    if format != Some(FORMAT as u64) {
        return Ok(Loaded::Invalid(format!(
            "{} has format {format:?}, this agent reads {FORMAT}",
            path.display()
        )));
    }
    Ok(match serde_json::from_slice(&bytes) {
        Ok(v) => Loaded::Found(v),
        Err(e) => Loaded::Invalid(format!("{}: {e}", path.display())),
    })
}

/// Removes `dir/name` (durably); a missing file is fine.
pub fn remove(dir: &Path, name: &str) -> std::io::Result<()> {
    match fs::remove_file(dir.join(name)) {
        Ok(()) => fs::File::open(dir)?.sync_all(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Path of `name` in `dir`, for messages.
pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_damage() {
        let d = tempfile::tempdir().unwrap();
        let p = Pending {
            format: FORMAT,
            version: "2.0".into(),
            slot: "USR-B".into(),
            previous_version: "1.0".into(),
        };
        assert!(matches!(load::<Pending>(d.path(), PENDING).unwrap(), Loaded::Missing));
        save(d.path(), PENDING, &p).unwrap();
        assert!(matches!(load::<Pending>(d.path(), PENDING).unwrap(), Loaded::Found(x) if x == p));
        // No temporary file left behind.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
        fs::write(d.path().join(PENDING), b"{\"format\": 2}").unwrap();
        assert!(matches!(
            load::<Pending>(d.path(), PENDING).unwrap(),
            Loaded::Invalid(_)
        ));
        fs::write(d.path().join(PENDING), b"{\"format\": 1, \"junk\": 1}").unwrap();
        assert!(matches!(
            load::<Pending>(d.path(), PENDING).unwrap(),
            Loaded::Invalid(_)
        ));
        remove(d.path(), PENDING).unwrap();
        remove(d.path(), PENDING).unwrap();
        assert!(matches!(load::<Pending>(d.path(), PENDING).unwrap(), Loaded::Missing));
    }
}
