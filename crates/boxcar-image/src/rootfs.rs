//! Copying files out of the staging root into another tree (the initrd)
//! with their symlink chains and shared-library closure. Paths are resolved
//! inside the staging root (absolute symlinks point into it, not the host).

use crate::cmd::run;
use crate::error::{rd, wr};
use crate::ImageError;
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

/// The dynamic-section facts we need from an ELF file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dynamic {
    pub needed: Vec<String>,
    pub runpath: Vec<String>,
}

/// Parses `readelf -dW` output: `(NEEDED) Shared library: [libc.so.6]`,
/// `(RUNPATH) Library runpath: [/usr/lib/x86_64-linux-gnu/systemd]`.
pub fn parse_readelf_dynamic(text: &str) -> Dynamic {
    let mut d = Dynamic::default();
    let bracket = |line: &str| -> Option<String> {
        let s = line.find('[')? + 1;
        let e = line.rfind(']')?;
        (e >= s).then(|| line[s..e].to_string())
    };
    for line in text.lines() {
        if line.contains("(NEEDED)") {
            d.needed.extend(bracket(line));
        } else if line.contains("(RUNPATH)") || line.contains("(RPATH)") {
            if let Some(p) = bracket(line) {
                d.runpath
                    .extend(p.split(':').filter(|s| !s.is_empty()).map(String::from));
            }
        }
    }
    d
}

/// Whether a file starts with the ELF magic.
fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut b = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut b)).is_ok() && b == *b"\x7fELF"
}

/// Library directories searched after RUNPATH (Debian x86-64, merged /usr).
const LIB_DIRS: &[&str] = &["usr/lib/x86_64-linux-gnu", "usr/lib", "usr/lib64"];

/// Copies paths from `root` to `dest`, following symlinks and libraries.
pub struct Copier<'a> {
    pub root: &'a Path,
    pub dest: &'a Path,
    done: BTreeSet<PathBuf>,
}

impl<'a> Copier<'a> {
    pub fn new(root: &'a Path, dest: &'a Path) -> Self {
        Copier {
            root,
            dest,
            done: BTreeSet::new(),
        }
    }

    /// Normalises `p` (relative to the root) by resolving every symlinked
    /// directory component inside the root; the last component is kept.
    fn resolve_dirs(&self, p: &Path) -> Result<PathBuf, ImageError> {
        let mut out = PathBuf::new();
        let comps: Vec<Component> = p.components().collect();
        let mut hops = 0;
        let mut queue: std::collections::VecDeque<PathBuf> = comps
            .iter()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(PathBuf::from(s)),
                Component::ParentDir => Some(PathBuf::from("..")),
                _ => None,
            })
            .collect();
        while let Some(c) = queue.pop_front() {
            if c == Path::new("..") {
                out.pop();
                continue;
            }
            let candidate = out.join(&c);
            let full = self.root.join(&candidate);
            let is_last = queue.is_empty();
            match std::fs::symlink_metadata(&full) {
                Ok(m) if m.file_type().is_symlink() && !is_last => {
                    hops += 1;
                    if hops > 40 {
                        return Err(ImageError::Root {
                            root: self.root.into(),
                            why: format!("symlink loop at {}", candidate.display()),
                        });
                    }
                    let target = std::fs::read_link(&full).map_err(rd(&full))?;
                    let mut rest: Vec<PathBuf> = target
                        .components()
                        .filter_map(|c| match c {
                            Component::Normal(s) => Some(PathBuf::from(s)),
                            Component::ParentDir => Some(PathBuf::from("..")),
                            _ => None,
                        })
                        .collect();
                    if target.is_absolute() {
                        out = PathBuf::new();
                    }
                    rest.extend(queue.drain(..));
                    queue = rest.into();
                }
                _ => out = candidate,
            }
        }
        Ok(out)
    }

    /// Copies one path (relative to the root), its symlink chain and, for
    /// ELF files, its libraries. Returns false when it does not exist.
    pub fn copy(&mut self, rel: &Path) -> Result<bool, ImageError> {
        let rel = self.resolve_dirs(rel)?;
        if !self.done.insert(rel.clone()) {
            return Ok(true);
        }
        let src = self.root.join(&rel);
        let meta = match std::fs::symlink_metadata(&src) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(rd(&src)(e)),
        };
        let dst = self.dest.join(&rel);
        if let Some(parent) = rel.parent() {
            self.mkdirs(parent)?;
        }
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&src).map_err(rd(&src))?;
            if !dst.exists() {
                std::os::unix::fs::symlink(&target, &dst).map_err(wr(&dst))?;
            }
            // Masked units point at /dev/null: nothing to copy behind them.
            if target.starts_with("/dev") {
                return Ok(true);
            }
            let next = if target.is_absolute() {
                target.strip_prefix("/").expect("absolute").to_path_buf()
            } else {
                rel.parent().unwrap_or(Path::new("")).join(&target)
            };
            if !self.copy(&next)? {
                return Err(ImageError::Root {
                    root: self.root.into(),
                    why: format!("{} is a dangling symlink", rel.display()),
                });
            }
        } else if meta.is_dir() {
            self.mkdirs(&rel)?;
        } else {
            std::fs::copy(&src, &dst).map_err(rd(&src))?;
            if is_elf(&src) {
                self.copy_libraries(&src)?;
            }
        }
        Ok(true)
    }

    /// Copies a whole directory tree (sorted walk).
    pub fn copy_tree(&mut self, rel: &Path) -> Result<(), ImageError> {
        let src = self.root.join(rel);
        let mut entries: Vec<_> = std::fs::read_dir(&src)
            .map_err(rd(&src))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(rd(&src))?;
        entries.sort();
        self.copy(rel)?;
        for name in entries {
            let child = rel.join(&name);
            let m = std::fs::symlink_metadata(self.root.join(&child)).map_err(rd(&child))?;
            if m.is_dir() {
                self.copy_tree(&child)?;
            } else {
                self.copy(&child)?;
            }
        }
        Ok(())
    }

    /// Creates directories in the destination with the root's modes.
    fn mkdirs(&self, rel: &Path) -> Result<(), ImageError> {
        let mut cur = PathBuf::new();
        for c in rel.components() {
            cur.push(c);
            let d = self.dest.join(&cur);
            if std::fs::symlink_metadata(&d).is_err() {
                std::fs::create_dir(&d).map_err(wr(&d))?;
            }
        }
        Ok(())
    }

    fn copy_libraries(&mut self, elf: &Path) -> Result<(), ImageError> {
        let out = run("readelf", ["-dW".as_ref(), elf.as_os_str()], &[])?;
        let mut dy = parse_readelf_dynamic(&String::from_utf8_lossy(&out));
        // A library already loaded by its soname satisfies later requests
        // (libsystemd-core needs libsystemd-shared without a RUNPATH, found
        // because systemd loaded it first): search the requester's own
        // directory too, and resolve $ORIGIN.
        let origin = elf
            .strip_prefix(self.root)
            .ok()
            .and_then(|p| p.parent())
            .map(|p| format!("/{}", p.display()))
            .unwrap_or_default();
        for r in dy.runpath.iter_mut() {
            *r = r.replace("$ORIGIN", &origin);
        }
        dy.runpath.push(origin);
        for lib in dy.needed {
            self.copy_library(&lib, &dy.runpath, elf)?;
        }
        Ok(())
    }

    /// Finds `name` in the runpath and the standard directories and copies it.
    pub fn copy_library(&mut self, name: &str, runpath: &[String], wanted_by: &Path) -> Result<(), ImageError> {
        let dirs = runpath
            .iter()
            .map(|d| d.trim_start_matches('/').to_string())
            .chain(LIB_DIRS.iter().map(|d| d.to_string()));
        for d in dirs {
            let rel = Path::new(&d).join(name);
            if self.root.join(&rel).exists() {
                self.copy(&rel)?;
                return Ok(());
            }
        }
        Err(ImageError::Initrd(format!(
            "library {name} needed by {} not found in the staging root",
            wanted_by.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readelf_output() {
        let t = " 0x0000000000000001 (NEEDED)             Shared library: [libsystemd-shared-252.so]\n\
                 0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]\n\
                 0x000000000000001d (RUNPATH)            Library runpath: [/usr/lib/x86_64-linux-gnu/systemd:/x]\n\
                 0x000000000000000c (INIT)               0x4000\n";
        let d = parse_readelf_dynamic(t);
        assert_eq!(d.needed, ["libsystemd-shared-252.so", "libc.so.6"]);
        assert_eq!(d.runpath, ["/usr/lib/x86_64-linux-gnu/systemd", "/x"]);
    }

    #[test]
    fn copies_symlink_chains_inside_the_root() {
        let r = tempfile::tempdir().unwrap();
        let d = tempfile::tempdir().unwrap();
        let root = r.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
        std::fs::write(root.join("usr/bin/real"), "x").unwrap();
        // Absolute link through the merged-/usr link: must resolve inside the root.
        std::os::unix::fs::symlink("/bin/real", root.join("usr/bin/alias")).unwrap();
        let mut c = Copier::new(root, d.path());
        assert!(c.copy(Path::new("usr/bin/alias")).unwrap());
        assert_eq!(std::fs::read(d.path().join("usr/bin/real")).unwrap(), b"x");
        assert!(std::fs::symlink_metadata(d.path().join("usr/bin/alias"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(!c.copy(Path::new("usr/bin/missing")).unwrap());
        std::os::unix::fs::symlink("/dev/null", root.join("usr/bin/masked")).unwrap();
        assert!(c.copy(Path::new("usr/bin/masked")).unwrap());
        std::os::unix::fs::symlink("nowhere", root.join("usr/bin/dangling")).unwrap();
        assert!(c.copy(Path::new("usr/bin/dangling")).is_err());
    }
}
