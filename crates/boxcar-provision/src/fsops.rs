//! Small filesystem primitives with Ignition's defaults (dirs 0755, files
//! 0644, both before the umask for directories, explicit for files), each
//! returning an [`ApplyError`] that names the operation and the path.

use crate::error::ApplyError;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Ignition's `DefaultDirectoryPermissions`.
pub const DEFAULT_DIR_MODE: u32 = 0o755;
/// Ignition's `DefaultFilePermissions`.
pub const DEFAULT_FILE_MODE: u32 = 0o644;

/// `mkdir -p` of the parent of `path` (Ignition's `MkdirForFile`).
pub fn mkdir_for_file(path: &Path) -> Result<(), ApplyError> {
    match path.parent() {
        Some(p) => mkdir_all(p, DEFAULT_DIR_MODE),
        None => Ok(()),
    }
}

/// `mkdir -p` with `mode` (subject to the umask, like Go's `MkdirAll`).
pub fn mkdir_all(path: &Path, mode: u32) -> Result<(), ApplyError> {
    if path.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(ApplyError::io("creating directory", path))
}

/// Create `path` (which must not exist) with `data`, mode 0644.
pub fn write_new(path: &Path, data: &[u8]) -> Result<(), ApplyError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(DEFAULT_FILE_MODE)
        .open(path)
        .map_err(ApplyError::io("creating file", path))?;
    f.write_all(data).map_err(ApplyError::io("writing file", path))?;
    // Go's TempFile + Chmod(0644): the mode is explicit, not umask-dependent.
    f.set_permissions(fs::Permissions::from_mode(DEFAULT_FILE_MODE))
        .map_err(ApplyError::io("setting mode of", path))
}

/// Replace `path` atomically with `data` (temp file + rename), mode 0644.
pub fn write_replace(path: &Path, data: &[u8]) -> Result<(), ApplyError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.boxcar-tmp"));
    let _ = fs::remove_file(&tmp);
    write_new(&tmp, data)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        ApplyError::Io {
            op: "renaming into place",
            path: path.to_path_buf(),
            source: e,
        }
    })
}

/// Append `data` to `path`, creating it (0644 before umask) if missing.
pub fn append(path: &Path, data: &[u8]) -> Result<(), ApplyError> {
    if let Ok(m) = fs::symlink_metadata(path) {
        if !m.file_type().is_file() {
            return Err(ApplyError::AppendNotRegular {
                path: path.to_path_buf(),
            });
        }
    }
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(DEFAULT_FILE_MODE)
        .open(path)
        .map_err(ApplyError::io("opening for append", path))?;
    f.write_all(data).map_err(ApplyError::io("appending to", path))
}

/// Remove whatever is at `path` (Go's `os.RemoveAll`, never following a
/// symlink); a missing path is fine.
pub fn remove_all(path: &Path) -> Result<(), ApplyError> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ApplyError::Io {
            op: "inspecting",
            path: path.to_path_buf(),
            source: e,
        }),
        Ok(m) if m.file_type().is_dir() => fs::remove_dir_all(path).map_err(ApplyError::io("removing", path)),
        Ok(_) => fs::remove_file(path).map_err(ApplyError::io("removing", path)),
    }
}

/// `chmod` (follows symlinks, as Go's `os.Chmod`); keeps setuid/setgid/sticky.
pub fn chmod(path: &Path, mode: u32) -> Result<(), ApplyError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
        .map_err(ApplyError::io("changing mode of", path))
}

/// `lchown`.
pub fn lchown(path: &Path, uid: u32, gid: u32) -> Result<(), ApplyError> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(ApplyError::io("changing owner of", path))
}

/// Current owner (following links); `(0, 0)` if it cannot be read, as
/// Ignition's `getFileOwnerAndMode`.
pub fn owner_or_root(path: &Path) -> (u32, u32) {
    fs::metadata(path).map(|m| (m.uid(), m.gid())).unwrap_or((0, 0))
}
