//! Finding extensions: search directories, the shadowing rule, masking.
//!
//! systemd 252 looks in a fixed list of directories; the first directory holding a name wins
//! and hides the same name further down. An empty directory `/etc/extensions/NAME` therefore
//! masks `NAME.raw` anywhere else: it wins the name and is later ignored for lacking a
//! release file. The scan (I/O) is separate from the resolution (pure).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Search directories in priority order, relative to the root (systemd 252).
pub const SEARCH_DIRS: &[&str] = &[
    "etc/extensions",
    "run/extensions",
    "var/lib/extensions",
    "usr/lib/extensions",
    "usr/local/lib/extensions",
];

/// What an extension is stored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageKind {
    /// A plain directory tree.
    Directory,
    /// A `NAME.raw` file holding a squashfs, erofs or ext4 file system.
    Raw,
}

impl ImageKind {
    /// The spelling used by `systemd-sysext list`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Directory => "directory",
            ImageKind::Raw => "raw",
        }
    }
}

/// One entry found in a search directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Candidate {
    /// The image name: the directory name, or the file name without `.raw`.
    pub name: String,
    /// Directory or image file.
    #[serde(rename = "type")]
    pub kind: ImageKind,
    /// Path as found (symlinks not resolved, so `list` shows what the admin placed).
    pub path: PathBuf,
    /// Modification time, shown by `list`.
    #[serde(skip)]
    pub mtime: Option<SystemTime>,
}

/// Errors while scanning search directories.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// A search directory exists but cannot be listed.
    #[error("listing extension directory {path}: {source}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// systemd's `image_name_is_valid()`: a plain file name without control characters, not a
/// `.#` temporary file. Hidden names are valid (252 merges a directory called `.hidden`).
pub fn image_name_is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.starts_with(".#")
        && !name.chars().any(|c| c.is_control())
}

/// Classifies one directory entry by name and the type of what it points to.
/// Pure: `is_dir` / `is_file` describe the entry after following symlinks.
pub fn classify(file_name: &str, is_dir: bool, is_file: bool) -> Option<(String, ImageKind)> {
    if is_dir {
        image_name_is_valid(file_name).then(|| (file_name.to_string(), ImageKind::Directory))
    } else if is_file {
        let name = file_name.strip_suffix(".raw")?;
        image_name_is_valid(name).then(|| (name.to_string(), ImageKind::Raw))
    } else {
        None
    }
}

/// Applies the shadowing rule: `per_dir` is in search-directory priority order; the first
/// occurrence of a name wins. Within one directory entries are taken in byte order of their
/// file names. The result is sorted by name.
pub fn resolve_shadowing(per_dir: Vec<Vec<Candidate>>) -> Vec<Candidate> {
    let mut out: std::collections::BTreeMap<String, Candidate> = Default::default();
    for mut dir in per_dir {
        dir.sort_by(|a, b| a.path.cmp(&b.path));
        for c in dir {
            out.entry(c.name.clone()).or_insert(c);
        }
    }
    out.into_values().collect()
}

/// Resolves `path` inside `root`: absolute symlink targets are taken relative to `root`, so
/// `--root` never reaches out to the host. Returns `None` for dangling links or loops.
pub fn chase_in_root(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut cur = path.to_path_buf();
    for _ in 0..32 {
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&cur).ok()?;
                cur = if target.is_absolute() {
                    root.join(target.strip_prefix("/").ok()?)
                } else {
                    cur.parent()?.join(target)
                };
            }
            Ok(_) => return Some(cur),
            Err(_) => return None,
        }
    }
    None
}

/// Scans the search directories below `root` and returns the winning extensions by name.
pub fn discover(root: &Path) -> Result<Vec<Candidate>, DiscoverError> {
    let mut per_dir = Vec::new();
    for d in SEARCH_DIRS {
        let dir = root.join(d);
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::NotADirectory => {
                continue
            }
            Err(source) => return Err(DiscoverError::ReadDir { path: dir, source }),
        };
        let mut found = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|source| DiscoverError::ReadDir {
                path: dir.clone(),
                source,
            })?;
            let Some(fname) = ent.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = ent.path();
            let Some(real) = chase_in_root(root, &path) else {
                continue;
            };
            let Ok(meta) = std::fs::metadata(&real) else { continue };
            if let Some((name, kind)) = classify(&fname, meta.is_dir(), meta.is_file()) {
                found.push(Candidate {
                    name,
                    kind,
                    path,
                    mtime: meta.modified().ok(),
                });
            }
        }
        per_dir.push(found);
    }
    Ok(resolve_shadowing(per_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, kind: ImageKind, path: &str) -> Candidate {
        Candidate {
            name: name.into(),
            kind,
            path: path.into(),
            mtime: None,
        }
    }

    #[test]
    fn classify_examples() {
        assert_eq!(
            classify("docker.raw", false, true),
            Some(("docker".into(), ImageKind::Raw))
        );
        assert_eq!(
            classify("docker", true, false),
            Some(("docker".into(), ImageKind::Directory))
        );
        assert_eq!(classify("docker.img", false, true), None);
        assert_eq!(
            classify(".hidden", true, false),
            Some((".hidden".into(), ImageKind::Directory))
        );
        assert_eq!(classify(".#tmp.raw", false, true), None);
        assert_eq!(classify(".raw", false, true), None);
        assert_eq!(classify("null.raw", false, false), None);
    }

    #[test]
    fn first_directory_wins_and_masks() {
        let etc = vec![c("docker", ImageKind::Directory, "/etc/extensions/docker")];
        let var = vec![
            c("docker", ImageKind::Raw, "/var/lib/extensions/docker.raw"),
            c("kubelet", ImageKind::Raw, "/var/lib/extensions/kubelet.raw"),
        ];
        let usr = vec![c("kubelet", ImageKind::Directory, "/usr/lib/extensions/kubelet")];
        let r = resolve_shadowing(vec![etc, vec![], var, usr]);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].path, PathBuf::from("/etc/extensions/docker"));
        assert_eq!(r[1].path, PathBuf::from("/var/lib/extensions/kubelet.raw"));
    }

    #[test]
    fn chase_stays_in_root() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("opt/x")).unwrap();
        std::fs::write(t.path().join("opt/x/a.raw"), b"").unwrap();
        std::os::unix::fs::symlink("/opt/x/a.raw", t.path().join("l")).unwrap();
        std::os::unix::fs::symlink("/dev/null-does-not-exist", t.path().join("n")).unwrap();
        assert_eq!(
            chase_in_root(t.path(), &t.path().join("l")),
            Some(t.path().join("opt/x/a.raw"))
        );
        assert_eq!(chase_in_root(t.path(), &t.path().join("n")), None);
    }
}
