//! The daemon's note that it staged an update in this boot (update_engine keeps a completion
//! marker in /run for the same purpose). With the boot id inside, one file answers both
//! questions at start-up: "restarted before the reboot?" (same boot id: stay in
//! UPDATED_NEED_REBOOT, report nothing) and "which version did we come from?" (the
//! `previousversion` of the success report after the reboot).

use serde::{Deserialize, Serialize};
use std::path::Path;

/// File name inside the state directory.
pub const FILE: &str = "staged.json";

/// What was staged, when, from what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedMarker {
    /// Version staged.
    pub version: String,
    /// Payload size.
    pub size: u64,
    /// Boot id (in braces) of the boot that staged it.
    pub boot_id: String,
    /// Version running when it was staged.
    pub from_version: String,
}

/// Reads the marker; a missing file is `None`, an unreadable or corrupt one an error naming it.
pub fn read(path: &Path) -> Result<Option<StagedMarker>, String> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| format!("{}: corrupt staged marker: {e} (remove it to continue)", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

/// Writes the marker atomically (temp file + rename), creating the directory.
pub fn write(path: &Path, m: &StagedMarker) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    let body = serde_json::to_vec(m).map_err(|e| e.to_string())?;
    std::fs::write(&tmp, body).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming {} to {}: {e}", tmp.display(), path.display()))
}

/// Removes the marker (missing is fine).
pub fn remove(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_missing_and_corrupt() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub").join(FILE);
        assert_eq!(read(&p).unwrap(), None);
        let m = StagedMarker {
            version: "2.0.0".into(),
            size: 10,
            boot_id: "{b}".into(),
            from_version: "1.0.0".into(),
        };
        write(&p, &m).unwrap();
        assert_eq!(read(&p).unwrap(), Some(m));
        std::fs::write(&p, "{").unwrap();
        assert!(read(&p).unwrap_err().contains("corrupt staged marker"));
        remove(&p).unwrap();
        remove(&p).unwrap();
    }
}
