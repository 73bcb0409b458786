//! Reading `local:` files and `trees:` from the files directory, which can
//! never be escaped: paths are resolved with symlinks followed and must
//! stay inside it (upstream Butane checks only the lexical path).

use std::path::{Path, PathBuf};

pub const ERR_NO_FILES_DIR: &str =
    "local file paths are relative to a files directory that must be specified with -d/--files-dir";
pub const ERR_ESCAPE: &str = "local file path traverses outside the files directory";

/// The `-d/--files-dir` root.
#[derive(Debug, Clone)]
pub struct FilesDir {
    root: Option<PathBuf>,
}

impl FilesDir {
    pub fn new(root: Option<&Path>) -> Result<FilesDir, String> {
        let root = match root {
            None => None,
            Some(r) => Some(
                r.canonicalize()
                    .map_err(|e| format!("files directory {}: {e}", r.display()))?,
            ),
        };
        Ok(FilesDir { root })
    }

    pub fn is_set(&self) -> bool {
        self.root.is_some()
    }

    /// Resolve `rel` inside the root, following symlinks, refusing escapes.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, String> {
        let root = self.root.as_ref().ok_or(ERR_NO_FILES_DIR)?;
        let joined = root.join(rel.trim_start_matches('/'));
        if !lexically_inside(root, &joined) {
            return Err(ERR_ESCAPE.into());
        }
        let real = joined.canonicalize().map_err(|e| format!("reading {rel:?}: {e}"))?;
        if !real.starts_with(root) {
            return Err(format!("{ERR_ESCAPE} (through a symbolic link)"));
        }
        Ok(real)
    }

    pub fn read(&self, rel: &str) -> Result<Vec<u8>, String> {
        let p = self.resolve(rel)?;
        std::fs::read(&p).map_err(|e| format!("reading {rel:?}: {e}"))
    }
}

fn lexically_inside(root: &Path, p: &Path) -> bool {
    let mut depth: i64 = 0;
    for c in p.strip_prefix(root).map(|r| r.components()).into_iter().flatten() {
        match c {
            std::path::Component::ParentDir => depth -= 1,
            std::path::Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    p.starts_with(root)
}

/// One entry found while walking a tree.
#[derive(Debug, PartialEq, Eq)]
pub enum TreeEntry {
    File {
        rel: String,
        executable: bool,
        data: Vec<u8>,
    },
    Symlink {
        rel: String,
        target: String,
    },
}

/// Walk a directory in lexical order without following symlinks.
pub fn walk(dir: &Path) -> Result<Vec<TreeEntry>, String> {
    let mut out = Vec::new();
    walk_into(dir, "", &mut out)?;
    Ok(out)
}

fn walk_into(dir: &Path, prefix: &str, out: &mut Vec<TreeEntry>) -> Result<(), String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let path = dir.join(&name);
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let meta = std::fs::symlink_metadata(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            walk_into(&path, &rel, out)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            out.push(TreeEntry::Symlink {
                rel,
                target: target.to_string_lossy().into_owned(),
            });
        } else if ft.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let data = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            out.push(TreeEntry::File {
                rel,
                executable: meta.permissions().mode() & 0o111 != 0,
                data,
            });
        } else {
            return Err("trees may only contain files, directories, and symlinks".into());
        }
    }
    Ok(())
}
