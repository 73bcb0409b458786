//! Applying a transfer: download the newest version, verify it, keep N, switch the symlink.
//!
//! Order of operations makes every failure harmless: the payload is streamed to a hidden
//! temporary file in the target directory while being hashed; only a file whose SHA-256
//! equals its `SHA256SUMS` line is renamed into place, and only then is `CurrentSymlink`
//! replaced, atomically (new link + rename over the old one). Pruning happens last and never
//! removes the current or protected version.

use crate::sums::{self, SumEntry};
use crate::transfer::{self, SourceType, Transfer, Verify};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tracing::info;

/// Errors while updating.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// `Verify=yes` needs GPG, which Boxcar does not implement yet.
    #[error("Verify=yes needs a GPG-signed SHA256SUMS, not supported yet; set Verify=no to rely on SHA256SUMS over a trusted channel")]
    SignatureUnsupported,
    /// Fetching failed.
    #[error("fetching {url}: {reason}")]
    Fetch {
        /// URL or path.
        url: String,
        /// Cause.
        reason: String,
    },
    /// `SHA256SUMS` is malformed.
    #[error("SHA256SUMS from {url}: {source}")]
    Sums {
        /// Where it came from.
        url: String,
        /// Cause.
        source: sums::SumsError,
    },
    /// No candidate matched.
    #[error("no file in {url}/SHA256SUMS matches the source pattern")]
    NothingAvailable {
        /// Source.
        url: String,
    },
    /// The downloaded payload does not match its checksum.
    #[error("{name}: SHA-256 {actual} does not match SHA256SUMS ({expected}); not installed")]
    ChecksumMismatch {
        /// File.
        name: String,
        /// Expected digest.
        expected: String,
        /// Actual digest.
        actual: String,
    },
    /// Local file work failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What.
        op: &'static str,
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> UpdateError + 'a {
    move |source| UpdateError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum UpdateOutcome {
    /// The newest version is already installed (symlink made current if needed).
    UpToDate {
        /// Version.
        version: String,
        /// Whether the symlink had to be (re)pointed.
        symlink_changed: bool,
    },
    /// A new version was installed.
    Installed {
        /// Version.
        version: String,
        /// Installed file.
        path: PathBuf,
        /// Whether the symlink changed.
        symlink_changed: bool,
        /// Versions removed.
        removed: Vec<String>,
    },
}

impl UpdateOutcome {
    /// True when the active extension changed: merge again or reboot.
    pub fn symlink_changed(&self) -> bool {
        match self {
            UpdateOutcome::UpToDate { symlink_changed, .. } | UpdateOutcome::Installed { symlink_changed, .. } => {
                *symlink_changed
            }
        }
    }
}

fn under_root(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

fn join_url(base: &str, name: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{name}")
    } else {
        format!("{base}/{name}")
    }
}

fn open_source(t: &Transfer, root: &Path, name: &str) -> Result<Box<dyn Read>, UpdateError> {
    let url = join_url(&t.source_path, name);
    match t.source_type {
        SourceType::UrlFile => {
            let resp = ureq::get(&url).call().map_err(|e| UpdateError::Fetch {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            Ok(Box::new(resp.into_body().into_reader()))
        }
        SourceType::RegularFile => {
            let p = under_root(root, &url);
            Ok(Box::new(std::fs::File::open(&p).map_err(|e| UpdateError::Fetch {
                url,
                reason: e.to_string(),
            })?))
        }
    }
}

/// Lists installed versions in the target directory (version, file name).
pub fn installed(t: &Transfer, root: &Path) -> Result<Vec<(String, String)>, UpdateError> {
    let dir = under_root(root, &t.target_path);
    let mut out = Vec::new();
    match std::fs::read_dir(&dir) {
        Ok(rd) => {
            for e in rd {
                let e = e.map_err(io("listing", &dir))?;
                let n = e.file_name().to_string_lossy().into_owned();
                if let Some(v) = t.target_version(&n) {
                    out.push((v, n));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("listing", &dir)(e)),
    }
    Ok(out)
}

/// Points `link` (absolute, under `root`) at `target_abs` atomically; returns whether it changed.
fn switch_symlink(root: &Path, link: &str, target_abs: &Path) -> Result<bool, UpdateError> {
    let lp = under_root(root, link);
    if std::fs::read_link(&lp).ok().as_deref() == Some(target_abs) {
        return Ok(false);
    }
    let parent = lp.parent().unwrap_or(root);
    std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
    let tmp = parent.join(format!(".#boxcar-link.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target_abs, &tmp).map_err(io("creating symlink", &tmp))?;
    std::fs::rename(&tmp, &lp).map_err(io("replacing symlink", &lp))?;
    Ok(true)
}

/// Removes a partial download on every exit path that did not install it.
struct Partial(PathBuf);
impl Drop for Partial {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs one transfer below `root`.
pub fn apply(t: &Transfer, root: &Path) -> Result<UpdateOutcome, UpdateError> {
    if t.verify == Verify::Signature {
        return Err(UpdateError::SignatureUnsupported);
    }
    let sums_url = join_url(&t.source_path, "SHA256SUMS");
    let mut text = String::new();
    open_source(t, root, "SHA256SUMS")?
        .take(16 << 20)
        .read_to_string(&mut text)
        .map_err(|e| UpdateError::Fetch {
            url: sums_url.clone(),
            reason: e.to_string(),
        })?;
    let entries = sums::parse(&text).map_err(|source| UpdateError::Sums {
        url: sums_url.clone(),
        source,
    })?;
    let available: Vec<(String, String)> = entries
        .iter()
        .filter_map(|e| t.source_version(&e.name).map(|v| (v, e.name.clone())))
        .collect();
    let (version, src_name) = transfer::pick_newest(&available, t.min_version.as_deref())
        .cloned()
        .ok_or_else(|| UpdateError::NothingAvailable {
            url: t.source_path.clone(),
        })?;
    let expected = entries
        .iter()
        .find(|e: &&SumEntry| e.name == src_name)
        .map(|e| e.sha256.clone())
        .unwrap_or_default();

    let dir = under_root(root, &t.target_path);
    std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let have = installed(t, root)?;
    let target_name = t.target_patterns[0].render(&version);
    let target_abs = Path::new(&t.target_path).join(&target_name);
    let current_version = t
        .current_symlink
        .as_ref()
        .and_then(|l| std::fs::read_link(under_root(root, l)).ok())
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .and_then(|n| t.target_version(&n));

    if let Some((_, existing)) = have.iter().find(|(v, _)| *v == version) {
        let abs = Path::new(&t.target_path).join(existing);
        let changed = match &t.current_symlink {
            Some(l) => switch_symlink(root, l, &abs)?,
            None => false,
        };
        return Ok(UpdateOutcome::UpToDate {
            version,
            symlink_changed: changed,
        });
    }

    let partial = Partial(dir.join(format!(".#sysupdate.{target_name}.partial")));
    let mut out = std::fs::File::create(&partial.0).map_err(io("creating", &partial.0))?;
    let mut input = open_source(t, root, &src_name)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = input.read(&mut buf).map_err(|e| UpdateError::Fetch {
            url: join_url(&t.source_path, &src_name),
            reason: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io("writing", &partial.0))?;
    }
    let actual = hex::encode(hasher.finalize());
    if actual != expected {
        return Err(UpdateError::ChecksumMismatch {
            name: src_name,
            expected,
            actual,
        });
    }
    out.sync_all().map_err(io("syncing", &partial.0))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&partial.0, std::fs::Permissions::from_mode(t.mode)).map_err(io("chmod", &partial.0))?;
    let final_path = dir.join(&target_name);
    std::fs::rename(&partial.0, &final_path).map_err(io("installing", &final_path))?;
    info!(version = %version, path = %final_path.display(), "installed");
    let changed = match &t.current_symlink {
        Some(l) => switch_symlink(root, l, &target_abs)?,
        None => false,
    };
    let mut versions: Vec<String> = have.iter().map(|(v, _)| v.clone()).collect();
    versions.push(version.clone());
    let mut keep = vec![version.as_str()];
    if let Some(p) = &t.protect_version {
        keep.push(p);
    }
    if t.current_symlink.is_none() {
        if let Some(c) = &current_version {
            keep.push(c);
        }
    }
    let removed = transfer::prune(&versions, t.instances_max, &keep);
    for v in &removed {
        if let Some((_, n)) = have.iter().find(|(hv, _)| hv == v) {
            let p = dir.join(n);
            std::fs::remove_file(&p).map_err(io("removing old version", &p))?;
        }
    }
    Ok(UpdateOutcome::Installed {
        version,
        path: final_path,
        symlink_changed: changed,
        removed,
    })
}
