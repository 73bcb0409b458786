//! Who this node is, as update_engine tells the server: running version (os-release), machine
//! id, boot id, OEM. Read from files whose paths the caller chooses, so tests run anywhere.

use std::path::{Path, PathBuf};

/// Files the identity is read from.
#[derive(Debug, Clone)]
pub struct IdentityFiles {
    /// os-release of the running /usr (`VERSION_ID`).
    pub os_release: PathBuf,
    /// `/etc/machine-id`.
    pub machine_id: PathBuf,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: PathBuf,
    /// oem-release candidates, first existing wins (`ID`, `VERSION_ID`).
    pub oem_release: Vec<PathBuf>,
}

impl Default for IdentityFiles {
    fn default() -> Self {
        IdentityFiles {
            os_release: "/usr/lib/os-release".into(),
            machine_id: "/etc/machine-id".into(),
            boot_id: "/proc/sys/kernel/random/boot_id".into(),
            oem_release: vec!["/etc/oem-release".into(), "/usr/share/oem/oem-release".into()],
        }
    }
}

/// The node as the Omaha request describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Running OS version.
    pub version: String,
    /// Machine id (32 hex digits).
    pub machine_id: String,
    /// Boot id in braces, as update_engine sends it.
    pub boot_id: String,
    /// OEM id (`ID` of oem-release), empty when none.
    pub oem: String,
    /// OEM version, empty when none.
    pub oem_version: String,
}

/// A file that is missing or unusable, named.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Read, but without the value needed.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is missing.
        message: String,
    },
}

fn read(p: &Path) -> Result<String, IdentityError> {
    std::fs::read_to_string(p).map_err(|source| IdentityError::Read {
        path: p.display().to_string(),
        source,
    })
}

/// The value of `key` in an os-release style file (`KEY=value`, optional quotes).
pub fn os_release_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.trim().split_once('=')?;
        if k.trim() != key {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
            .unwrap_or(v);
        Some(v.to_string())
    })
}

/// The running version: `VERSION_ID` of the os-release file.
pub fn running_version(os_release: &Path) -> Result<String, IdentityError> {
    let text = read(os_release)?;
    match os_release_value(&text, "VERSION_ID") {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(IdentityError::Invalid {
            path: os_release.display().to_string(),
            message: "no VERSION_ID".into(),
        }),
    }
}

/// Reads everything; `version_override` replaces the os-release version (FLATCAR_RELEASE_VERSION).
pub fn read_identity(files: &IdentityFiles, version_override: Option<&str>) -> Result<Identity, IdentityError> {
    let version = match version_override {
        Some(v) => v.to_string(),
        None => running_version(&files.os_release)?,
    };
    let machine_id = read(&files.machine_id)?.trim().to_string();
    if machine_id.len() != 32 || !machine_id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(IdentityError::Invalid {
            path: files.machine_id.display().to_string(),
            message: "expected 32 hex digits".into(),
        });
    }
    let boot = read(&files.boot_id)?.trim().to_string();
    if boot.is_empty() || boot.len() > 64 {
        return Err(IdentityError::Invalid {
            path: files.boot_id.display().to_string(),
            message: "expected a boot id".into(),
        });
    }
    let (mut oem, mut oem_version) = (String::new(), String::new());
    for p in &files.oem_release {
        if let Ok(text) = std::fs::read_to_string(p) {
            oem = os_release_value(&text, "ID").unwrap_or_default();
            oem_version = os_release_value(&text, "VERSION_ID").unwrap_or_default();
            break;
        }
    }
    Ok(Identity {
        version,
        machine_id,
        boot_id: format!("{{{boot}}}"),
        oem,
        oem_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values() {
        let t = "NAME=\"Boxcar\"\nID=boxcar\nVERSION_ID='4081.2.0'\nBUILD_ID=x=y\n";
        assert_eq!(os_release_value(t, "VERSION_ID").as_deref(), Some("4081.2.0"));
        assert_eq!(os_release_value(t, "NAME").as_deref(), Some("Boxcar"));
        assert_eq!(os_release_value(t, "BUILD_ID").as_deref(), Some("x=y"));
        assert_eq!(os_release_value(t, "VERSION"), None);
    }

    #[test]
    fn identity_from_files_and_errors_name_the_file() {
        let d = tempfile::tempdir().unwrap();
        let f = |n: &str, t: &str| {
            let p = d.path().join(n);
            std::fs::write(&p, t).unwrap();
            p
        };
        let files = IdentityFiles {
            os_release: f("os-release", "ID=boxcar\nVERSION_ID=1.2.3\n"),
            machine_id: f("machine-id", "0123456789abcdef0123456789abcdef\n"),
            boot_id: f("boot_id", "5f4c0e0e-1111-2222-3333-444455556666\n"),
            oem_release: vec![d.path().join("missing"), f("oem-release", "ID=qemu\nVERSION_ID=0.1\n")],
        };
        let id = read_identity(&files, None).unwrap();
        assert_eq!(id.version, "1.2.3");
        assert_eq!(id.boot_id, "{5f4c0e0e-1111-2222-3333-444455556666}");
        assert_eq!((id.oem.as_str(), id.oem_version.as_str()), ("qemu", "0.1"));
        assert_eq!(read_identity(&files, Some("9.9.9")).unwrap().version, "9.9.9");
        std::fs::write(&files.machine_id, "short\n").unwrap();
        let e = read_identity(&files, None).unwrap_err().to_string();
        assert!(e.ends_with("machine-id: expected 32 hex digits"), "{e}");
        std::fs::write(&files.os_release, "ID=boxcar\n").unwrap();
        let e = read_identity(&files, None).unwrap_err().to_string();
        assert!(e.ends_with("os-release: no VERSION_ID"), "{e}");
    }
}
