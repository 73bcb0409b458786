//! The target root, and path resolution inside it as if chrooted.
//!
//! Ignition's `JoinPath` resolves every component but the last, following
//! existing symlinks *relative to the root*. We do the same and go further:
//! chains of links are followed to the end, `..` never climbs above the
//! root, and an absolute link target restarts at the root, so no config
//! path and no link planted in the target can make us write outside it.

use crate::error::ApplyError;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Linux's own limit on links followed in one lookup.
const MAX_LINKS: usize = 40;

/// A directory treated as `/` for everything a config names.
#[derive(Debug, Clone)]
pub struct Root {
    base: PathBuf,
}

impl Root {
    /// Use `base` as the target root. It need not exist yet (dry runs).
    pub fn new(base: impl Into<PathBuf>) -> Root {
        Root { base: base.into() }
    }

    /// The host path of the root itself.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Resolve `path` (as seen from inside the root) to a host path under
    /// the root. All components but the last are resolved through symlinks
    /// inside the root; the last is kept as is (so a link itself can be
    /// replaced or inspected), as Ignition does.
    pub fn join(&self, path: &str) -> Result<PathBuf, ApplyError> {
        let rel = self.resolve(path, false)?;
        Ok(self.host(&rel))
    }

    /// Like [`Root::join`] but also follows a symlink in the last
    /// component (for reading files such as `/etc/passwd`).
    pub fn join_follow(&self, path: &str) -> Result<PathBuf, ApplyError> {
        let rel = self.resolve(path, true)?;
        Ok(self.host(&rel))
    }

    /// The host path of an already resolved in-root component list.
    fn host(&self, rel: &[OsString]) -> PathBuf {
        let mut p = self.base.clone();
        for c in rel {
            p.push(c);
        }
        p
    }

    /// Turn a host path under the root back into the in-root path
    /// (for messages and the dry-run plan).
    pub fn display(&self, host: &Path) -> String {
        match host.strip_prefix(&self.base) {
            Ok(r) => format!("/{}", r.display()),
            Err(_) => host.display().to_string(),
        }
    }

    fn resolve(&self, path: &str, follow_last: bool) -> Result<Vec<OsString>, ApplyError> {
        // Pending components, processed from the front.
        let mut todo: Vec<OsString> = split(path.as_bytes());
        todo.reverse();
        let mut out: Vec<OsString> = Vec::new();
        let mut links = 0usize;
        while let Some(c) = todo.pop() {
            let last = todo.is_empty();
            if c == ".." {
                out.pop(); // clamped at the root
                continue;
            }
            out.push(c);
            if last && !follow_last {
                break;
            }
            let host = self.host(&out);
            let Ok(meta) = std::fs::symlink_metadata(&host) else {
                continue; // missing: later components are created as named
            };
            if !meta.file_type().is_symlink() {
                continue;
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(ApplyError::SymlinkLoop { path: path.to_string() });
            }
            let target = std::fs::read_link(&host).map_err(ApplyError::io("reading link", &host))?;
            out.pop();
            let tb = target.as_os_str().as_bytes();
            if tb.first() == Some(&b'/') {
                out.clear();
            }
            let mut more = split(tb);
            more.reverse();
            todo.extend(more);
        }
        Ok(out)
    }
}

/// Split a path into its components, dropping empty ones and `.`.
fn split(p: &[u8]) -> Vec<OsString> {
    p.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| OsString::from(std::ffi::OsStr::from_bytes(c)))
        .collect()
}

/// Depth of a config path, as Ignition sorts creation order by it.
pub fn depth(path: &str) -> usize {
    split(path.as_bytes()).len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn dotdot_is_clamped_at_root() {
        let t = tempfile::tempdir().unwrap();
        let r = Root::new(t.path());
        assert_eq!(r.join("/../../etc/x").unwrap(), t.path().join("etc/x"));
        assert_eq!(r.join("/a/../../b").unwrap(), t.path().join("b"));
    }

    #[test]
    fn absolute_symlink_is_followed_inside_root() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        symlink("/outside", t.path().join("etc/foo")).unwrap();
        let r = Root::new(t.path());
        assert_eq!(r.join("/etc/foo/bar").unwrap(), t.path().join("outside/bar"));
        // The last component is not followed.
        assert_eq!(r.join("/etc/foo").unwrap(), t.path().join("etc/foo"));
    }

    #[test]
    fn relative_symlink_escape_is_contained() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a")).unwrap();
        symlink("../../../../..", t.path().join("a/up")).unwrap();
        let r = Root::new(t.path());
        assert_eq!(r.join("/a/up/tmp/x").unwrap(), t.path().join("tmp/x"));
    }

    #[test]
    fn chains_and_loops() {
        let t = tempfile::tempdir().unwrap();
        symlink("b", t.path().join("a")).unwrap();
        symlink("/c", t.path().join("b")).unwrap();
        symlink("loop2", t.path().join("loop1")).unwrap();
        symlink("loop1", t.path().join("loop2")).unwrap();
        let r = Root::new(t.path());
        assert_eq!(r.join("/a/x").unwrap(), t.path().join("c/x"));
        assert!(matches!(r.join("/loop1/x"), Err(ApplyError::SymlinkLoop { .. })));
    }

    #[test]
    fn depth_counts_components() {
        assert_eq!(depth("/"), 0);
        assert_eq!(depth("/a/b//c/"), 3);
    }
}
