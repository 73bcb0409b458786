//! `boxcar sysext build`: a reproducible extension image from a directory tree, or from
//! Debian packages unpacked into one ([`unpack_debs`]).
//!
//! The tree is staged (so the source is never modified), the release file is added, and the
//! image is written by the real `mksquashfs` or `mkfs.erofs` with every input that could vary
//! pinned: owners (root), timestamps (0), xattrs (none), UUID (zero), entry order (sorted by
//! the tools). Same input, same bytes.

use crate::release::ReleaseFields;
use std::path::{Path, PathBuf};
use std::process::Command;
use tracing::warn;

/// Image file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// squashfs, zstd-compressed (default: smallest, see docs/sysext.md).
    #[default]
    Squashfs,
    /// erofs, lz4hc-compressed (faster random reads, larger).
    Erofs,
}

/// The fields written to `extension-release.NAME`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReleaseSpec {
    /// `ID=`: host OS ID or `_any`.
    pub id: String,
    /// `VERSION_ID=`, ties the extension to one OS version.
    #[serde(default)]
    pub version_id: Option<String>,
    /// `SYSEXT_LEVEL=`, ties it to an API level instead.
    #[serde(default)]
    pub sysext_level: Option<String>,
    /// `ARCHITECTURE=` in `ConditionArchitecture=` spelling, or `_any`.
    #[serde(default)]
    pub architecture: Option<String>,
    /// `SYSEXT_SCOPE=` (e.g. `system initrd`).
    #[serde(default)]
    pub scope: Option<String>,
    /// `EXTENSION_RELOAD_MANAGER=1` (systemd ≥ 255 reloads the manager after merging).
    #[serde(default)]
    pub reload_manager: ReloadManager,
}

/// Whether newer systemd should run daemon-reload after merging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReloadManager {
    /// Do not set the field.
    #[default]
    No,
    /// Set `EXTENSION_RELOAD_MANAGER=1`.
    Yes,
}

/// Errors while building.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Invalid input (name, fields).
    #[error("invalid build input: {0}")]
    Invalid(String),
    /// File work failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was done.
        op: &'static str,
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The image tool failed.
    #[error("{tool} failed ({status}): {stderr}")]
    Tool {
        /// Tool name.
        tool: &'static str,
        /// Exit status.
        status: String,
        /// Its stderr.
        stderr: String,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BuildError + 'a {
    move |source| BuildError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Renders the release file (pure). Values are validated so the file re-parses to the same fields.
pub fn render_release(spec: &ReleaseSpec) -> Result<String, BuildError> {
    let mut s = String::new();
    let mut put = |k: &str, v: &str| -> Result<(), BuildError> {
        if v.is_empty()
            || v.chars()
                .any(|c| c.is_control() || matches!(c, '"' | '\'' | '\\' | '$' | '`'))
        {
            return Err(BuildError::Invalid(format!("{k}={v:?}: empty or special characters")));
        }
        if v.contains(' ') {
            s.push_str(&format!("{k}=\"{v}\"\n"));
        } else {
            s.push_str(&format!("{k}={v}\n"));
        }
        Ok(())
    };
    put("ID", &spec.id)?;
    if let Some(v) = &spec.version_id {
        put("VERSION_ID", v)?;
    }
    if let Some(v) = &spec.sysext_level {
        put("SYSEXT_LEVEL", v)?;
    }
    if let Some(v) = &spec.architecture {
        put("ARCHITECTURE", v)?;
    }
    if let Some(v) = &spec.scope {
        put("SYSEXT_SCOPE", v)?;
    }
    if spec.reload_manager == ReloadManager::Yes {
        put("EXTENSION_RELOAD_MANAGER", "1")?;
    }
    debug_assert!(ReleaseFields::parse(&s).is_ok());
    Ok(s)
}

/// Top-level entries that systemd-sysext will not merge (pure).
pub fn outside_hierarchies(top_level: &[String]) -> Vec<String> {
    let mut v: Vec<String> = top_level
        .iter()
        .filter(|n| n.as_str() != "usr" && n.as_str() != "opt")
        .cloned()
        .collect();
    v.sort();
    v
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// Extension name (image `NAME.raw`, release file `extension-release.NAME`).
    pub name: String,
    /// Source tree (holds `usr/…` and/or `opt/…`).
    pub source: PathBuf,
    /// Output file.
    pub output: PathBuf,
    /// File system.
    pub format: Format,
    /// Release fields.
    pub release: ReleaseSpec,
}

/// What was built.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildOutput {
    /// The image.
    pub image: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// `sha256sum`-style line.
    pub sums_line: String,
    /// Top-level entries outside usr/ and opt/ (warned about; systemd ignores them).
    pub outside: Vec<String>,
}

/// Unpacks the contents of Debian packages into `into`, in order, so [`build`] can image them
/// as one tree. Only the data is extracted (`dpkg-deb -x`): no maintainer scripts run and no
/// package database is written, as for Flatcar's sysext bakery.
pub fn unpack_debs(debs: &[PathBuf], into: &Path) -> Result<(), BuildError> {
    if debs.is_empty() {
        return Err(BuildError::Invalid("no Debian packages given".into()));
    }
    std::fs::create_dir_all(into).map_err(io("creating", into))?;
    for deb in debs {
        let out = Command::new("dpkg-deb")
            .arg("-x")
            .arg(deb)
            .arg(into)
            .output()
            .map_err(io("running dpkg-deb for", deb))?;
        if !out.status.success() {
            return Err(BuildError::Tool {
                tool: "dpkg-deb",
                status: out.status.to_string(),
                stderr: format!("{}: {}", deb.display(), String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
    }
    Ok(())
}

/// Builds the image. Requires `mksquashfs` or `mkfs.erofs` on PATH.
pub fn build(spec: &BuildSpec) -> Result<BuildOutput, BuildError> {
    if !crate::discover::image_name_is_valid(&spec.name) {
        return Err(BuildError::Invalid(format!("extension name {:?}", spec.name)));
    }
    let release = render_release(&spec.release)?;
    let src_meta = std::fs::metadata(&spec.source).map_err(io("reading source", &spec.source))?;
    if !src_meta.is_dir() {
        return Err(BuildError::Invalid(format!(
            "{} is not a directory",
            spec.source.display()
        )));
    }
    let mut top = Vec::new();
    for e in std::fs::read_dir(&spec.source).map_err(io("listing", &spec.source))? {
        let e = e.map_err(io("listing", &spec.source))?;
        top.push(e.file_name().to_string_lossy().into_owned());
    }
    let outside = outside_hierarchies(&top);
    for o in &outside {
        warn!(
            "{}/{o} is outside usr/ and opt/: systemd-sysext will not merge it",
            spec.source.display()
        );
    }
    let out_dir = spec
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(out_dir).map_err(io("creating", out_dir))?;
    let stage = tempfile::Builder::new()
        .prefix(".boxcar-sysext-stage")
        .tempdir_in(out_dir)
        .map_err(io("staging in", out_dir))?;
    let st = stage.path().join("root");
    let cp = Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg(spec.source.join("."))
        .arg(&st)
        .output()
        .map_err(io("running cp for", &spec.source))?;
    if !cp.status.success() {
        return Err(BuildError::Tool {
            tool: "cp",
            status: cp.status.to_string(),
            stderr: String::from_utf8_lossy(&cp.stderr).into(),
        });
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&st, std::fs::Permissions::from_mode(0o755)).map_err(io("chmod", &st))?;
    let mut dir = st.clone();
    for c in crate::metadata::RELEASE_DIR.split('/') {
        dir.push(c);
        if !dir.exists() {
            std::fs::create_dir(&dir).map_err(io("creating", &dir))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).map_err(io("chmod", &dir))?;
        }
    }
    let rel = dir.join(format!("extension-release.{}", spec.name));
    std::fs::write(&rel, release).map_err(io("writing", &rel))?;
    std::fs::set_permissions(&rel, std::fs::Permissions::from_mode(0o644)).map_err(io("chmod", &rel))?;
    let tmp_img = stage.path().join("image.raw");
    let (tool, out) = match spec.format {
        Format::Squashfs => (
            "mksquashfs",
            Command::new("mksquashfs")
                .arg(&st)
                .arg(&tmp_img)
                .args([
                    "-all-root",
                    "-mkfs-time",
                    "0",
                    "-all-time",
                    "0",
                    "-no-xattrs",
                    "-noappend",
                    "-quiet",
                ])
                .args(["-comp", "zstd", "-no-progress"])
                .output(),
        ),
        Format::Erofs => (
            "mkfs.erofs",
            Command::new("mkfs.erofs")
                .args([
                    "-T0",
                    "--all-root",
                    "-x-1",
                    "-zlz4hc,12",
                    "-U",
                    "00000000-0000-0000-0000-000000000000",
                ])
                .arg(&tmp_img)
                .arg(&st)
                .output(),
        ),
    };
    let out = out.map_err(io("running image tool for", &spec.output))?;
    if !out.status.success() {
        return Err(BuildError::Tool {
            tool,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        });
    }
    std::fs::set_permissions(&tmp_img, std::fs::Permissions::from_mode(0o644)).map_err(io("chmod", &tmp_img))?;
    std::fs::rename(&tmp_img, &spec.output).map_err(io("renaming to", &spec.output))?;
    let sha256 = crate::sums::sha256_file(&spec.output).map_err(io("hashing", &spec.output))?;
    let fname = spec
        .output
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(BuildOutput {
        image: spec.output.clone(),
        sums_line: crate::sums::line(&sha256, &fname),
        sha256,
        outside,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_rendering() {
        let spec = ReleaseSpec {
            id: "_any".into(),
            version_id: None,
            sysext_level: Some("1.0".into()),
            architecture: Some("x86-64".into()),
            scope: Some("system initrd".into()),
            reload_manager: ReloadManager::Yes,
        };
        let s = render_release(&spec).unwrap();
        assert_eq!(s, "ID=_any\nSYSEXT_LEVEL=1.0\nARCHITECTURE=x86-64\nSYSEXT_SCOPE=\"system initrd\"\nEXTENSION_RELOAD_MANAGER=1\n");
        let f = ReleaseFields::parse(&s).unwrap();
        assert_eq!(f.get("SYSEXT_SCOPE"), Some("system initrd"));
        let bad = ReleaseSpec {
            id: "a\nB=1".into(),
            ..spec
        };
        assert!(render_release(&bad).is_err());
    }

    #[test]
    fn outside_examples() {
        let v = outside_hierarchies(&["usr".into(), "etc".into(), "opt".into(), "var".into()]);
        assert_eq!(v, vec!["etc".to_string(), "var".to_string()]);
    }
}
