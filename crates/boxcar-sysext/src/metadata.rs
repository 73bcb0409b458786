//! Locating an extension's release file: the name rule and its xattr exception.
//!
//! The release file must be `usr/lib/extension-release.d/extension-release.<NAME>` where NAME
//! is the image name. If that file is absent (an image renamed on deployment), systemd 252
//! falls back to the single regular `extension-release.*` file carrying the xattr
//! `user.extension-release.strict` set to a false value; two such files are ambiguous.

use crate::discover::image_name_is_valid;
use crate::release::{ParseError, ReleaseFields};
use std::path::{Path, PathBuf};

/// Directory holding release files, relative to the extension root.
pub const RELEASE_DIR: &str = "usr/lib/extension-release.d";

/// State of `user.extension-release.strict` on a candidate file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictXattr {
    /// Not set (or unreadable): the file only counts under its own name.
    Missing,
    /// Set to a true value: the author insists on the name rule.
    True,
    /// Set to a false value: the image may be renamed.
    False,
}

/// One `extension-release.*` file found in the release directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseCandidate {
    /// File name suffix after `extension-release.`.
    pub suffix: String,
    /// Regular file (after opening without following symlinks).
    pub regular: bool,
    /// The strict xattr.
    pub strict: StrictXattr,
}

/// Outcome of the name rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseChoice {
    /// Use `extension-release.<suffix>`.
    Use(String),
    /// No usable release file.
    None,
    /// Several fallback files qualify.
    Ambiguous,
}

/// Pure name rule: `exact` is whether `extension-release.<name>` exists.
pub fn choose_release_file(name: &str, exact: bool, others: &[ReleaseCandidate]) -> ReleaseChoice {
    if exact {
        return ReleaseChoice::Use(name.to_string());
    }
    let mut hits = others
        .iter()
        .filter(|c| c.regular && image_name_is_valid(&c.suffix) && c.strict == StrictXattr::False);
    match (hits.next(), hits.next()) {
        (Some(c), None) => ReleaseChoice::Use(c.suffix.clone()),
        (None, _) => ReleaseChoice::None,
        (Some(_), Some(_)) => ReleaseChoice::Ambiguous,
    }
}

/// Errors reading an extension's metadata.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The release directory could not be listed.
    #[error("listing {path}: {source}")]
    ReadDir {
        /// Directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The release file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The release file is malformed.
    #[error("parsing {path}: {source}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Cause.
        source: ParseError,
    },
    /// Several renamed release files qualify.
    #[error("several extension-release files in {path} carry user.extension-release.strict=false")]
    Ambiguous {
        /// Directory.
        path: PathBuf,
    },
}

/// Reads the strict xattr of `path` without following symlinks.
pub fn read_strict_xattr(path: &Path) -> StrictXattr {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return StrictXattr::Missing;
    };
    let mut buf = [0u8; 64];
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"user.extension-release.strict".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return StrictXattr::Missing;
    }
    match parse_bool(&buf[..n as usize]) {
        Some(true) => StrictXattr::True,
        Some(false) => StrictXattr::False,
        None => StrictXattr::Missing,
    }
}

/// systemd's `parse_boolean()`.
pub fn parse_bool(v: &[u8]) -> Option<bool> {
    let s = std::str::from_utf8(v).ok()?.trim_end_matches('\0');
    match s.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

/// Reads the release of the extension tree at `ext_root` (a directory or a mounted image).
/// `Ok(None)`: no release file for `name`.
pub fn read_extension_release(ext_root: &Path, name: &str) -> Result<Option<ReleaseFields>, MetadataError> {
    let dir = ext_root.join(RELEASE_DIR);
    let exact = dir.join(format!("extension-release.{name}"));
    let exact_ok = std::fs::metadata(&exact).map(|m| m.is_file()).unwrap_or(false);
    let mut others = Vec::new();
    if !exact_ok {
        match std::fs::read_dir(&dir) {
            Ok(rd) => {
                for e in rd.flatten() {
                    let Some(f) = e.file_name().to_str().map(str::to_string) else {
                        continue;
                    };
                    let Some(suffix) = f.strip_prefix("extension-release.") else {
                        continue;
                    };
                    let p = e.path();
                    let regular = std::fs::symlink_metadata(&p).map(|m| m.is_file()).unwrap_or(false);
                    others.push(ReleaseCandidate {
                        suffix: suffix.to_string(),
                        regular,
                        strict: read_strict_xattr(&p),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::NotADirectory => {}
            Err(source) => return Err(MetadataError::ReadDir { path: dir, source }),
        }
        others.sort_by(|a, b| a.suffix.cmp(&b.suffix));
    }
    let file = match choose_release_file(name, exact_ok, &others) {
        ReleaseChoice::Use(s) => dir.join(format!("extension-release.{s}")),
        ReleaseChoice::None => return Ok(None),
        ReleaseChoice::Ambiguous => return Err(MetadataError::Ambiguous { path: dir }),
    };
    let text = std::fs::read(&file).map_err(|source| MetadataError::Read {
        path: file.clone(),
        source,
    })?;
    let text = String::from_utf8_lossy(&text);
    ReleaseFields::parse(&text)
        .map(Some)
        .map_err(|source| MetadataError::Parse { path: file, source })
}

/// Reads the host release: `ROOT/etc/os-release`, else `ROOT/usr/lib/os-release`.
pub fn read_os_release(root: &Path) -> Result<ReleaseFields, MetadataError> {
    let etc = root.join("etc/os-release");
    let path = if crate::discover::chase_in_root(root, &etc).is_some() {
        etc
    } else {
        root.join("usr/lib/os-release")
    };
    let real = crate::discover::chase_in_root(root, &path).unwrap_or_else(|| path.clone());
    let text = std::fs::read(&real).map_err(|source| MetadataError::Read {
        path: path.clone(),
        source,
    })?;
    ReleaseFields::parse(&String::from_utf8_lossy(&text)).map_err(|source| MetadataError::Parse { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc(s: &str, strict: StrictXattr) -> ReleaseCandidate {
        ReleaseCandidate {
            suffix: s.into(),
            regular: true,
            strict,
        }
    }

    #[test]
    fn name_rule_examples() {
        // docker.raw renamed to docker-24.raw: the file keeps its original name.
        assert_eq!(
            choose_release_file("docker-24", false, &[rc("docker", StrictXattr::Missing)]),
            ReleaseChoice::None
        );
        assert_eq!(
            choose_release_file("docker-24", false, &[rc("docker", StrictXattr::True)]),
            ReleaseChoice::None
        );
        assert_eq!(
            choose_release_file("docker-24", false, &[rc("docker", StrictXattr::False)]),
            ReleaseChoice::Use("docker".into())
        );
        assert_eq!(
            choose_release_file("x", false, &[rc("a", StrictXattr::False), rc("b", StrictXattr::False)]),
            ReleaseChoice::Ambiguous
        );
        assert_eq!(choose_release_file("x", true, &[]), ReleaseChoice::Use("x".into()));
        let mut link = rc("a", StrictXattr::False);
        link.regular = false;
        assert_eq!(choose_release_file("x", false, &[link]), ReleaseChoice::None);
    }

    #[test]
    fn bools() {
        assert_eq!(parse_bool(b"false"), Some(false));
        assert_eq!(parse_bool(b"0"), Some(false));
        assert_eq!(parse_bool(b"Yes"), Some(true));
        assert_eq!(parse_bool(b"maybe"), None);
    }
}
