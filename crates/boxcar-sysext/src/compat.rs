//! Matching an extension's `extension-release` against the host `os-release`.
//!
//! Pure decision logic mirroring systemd 252's `extension_release_validate()`, so that an
//! extension accepted by Boxcar is accepted by stock systemd-sysext and vice versa. The order
//! of checks matters for which reason is reported and is kept identical: scope, architecture,
//! ID (`_any` short-circuits), then SYSEXT_LEVEL or VERSION_ID.

use crate::release::ReleaseFields;

/// The host side of the match, read from `ROOT/etc/os-release` or `ROOT/usr/lib/os-release`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostRelease {
    /// `ID=`; required.
    pub id: String,
    /// `VERSION_ID=`, if set.
    pub version_id: Option<String>,
    /// `SYSEXT_LEVEL=`, if set.
    pub sysext_level: Option<String>,
}

/// Where the extension is being merged: systemd checks `SYSEXT_SCOPE=` against this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The booted system (the default).
    System,
    /// The initrd.
    Initrd,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::System => "system",
            Scope::Initrd => "initrd",
        }
    }
}

/// Why the host release cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostReleaseError {
    /// `ID=` missing or empty: systemd refuses to merge anything.
    #[error("'ID' field not found or empty in os-release data")]
    MissingId,
}

impl HostRelease {
    /// Extracts the fields used for matching.
    pub fn from_fields(f: &ReleaseFields) -> Result<Self, HostReleaseError> {
        Ok(Self {
            id: f.get("ID").ok_or(HostReleaseError::MissingId)?.to_string(),
            version_id: f.get("VERSION_ID").map(str::to_string),
            sysext_level: f.get("SYSEXT_LEVEL").map(str::to_string),
        })
    }
}

/// The outcome of matching one extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The extension may be merged.
    Accept(AcceptReason),
    /// The extension is ignored (not an error: merging continues with the others).
    Reject(RejectReason),
}

/// Why an extension was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptReason {
    /// `ID=_any`.
    AnyOs,
    /// ID matched and the host has no version information (rolling release).
    RollingHost,
    /// ID and SYSEXT_LEVEL or VERSION_ID matched.
    VersionMatches,
    /// `--force` skipped the checks.
    Forced,
}

/// Why an extension was ignored; the message wording follows systemd's debug log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// No key/value pairs in the release file.
    #[error("carries no extension-release data")]
    NoData,
    /// `SYSEXT_SCOPE=` does not list the current scope.
    #[error("is not suitable for scope {0}")]
    Scope(&'static str),
    /// `ARCHITECTURE=` names another architecture.
    #[error("is for architecture '{ext}', but deployed on top of '{host}'")]
    Architecture {
        /// The extension's architecture.
        ext: String,
        /// The host's architecture.
        host: String,
    },
    /// No `ID=`.
    #[error("does not contain ID in extension-release")]
    MissingId,
    /// `ID=` differs from the host's.
    #[error("is for OS '{ext}', but deployed on top of '{host}'")]
    Id {
        /// The extension's ID.
        ext: String,
        /// The host's ID.
        host: String,
    },
    /// `SYSEXT_LEVEL=` differs.
    #[error("is for sysext API level '{ext}', but running on sysext API level '{host}'")]
    Level {
        /// The extension's level.
        ext: String,
        /// The host's level.
        host: String,
    },
    /// Host has VERSION_ID, extension has neither a matching level nor VERSION_ID.
    #[error("does not contain VERSION_ID in extension-release but requested to match '{host}'")]
    MissingVersionId {
        /// The host's VERSION_ID.
        host: String,
    },
    /// `VERSION_ID=` differs.
    #[error("is for OS version '{ext}', but deployed on top of '{host}'")]
    VersionId {
        /// The extension's VERSION_ID.
        ext: String,
        /// The host's VERSION_ID.
        host: String,
    },
}

/// Whether the version checks run at all (`--force` skips them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Checks {
    /// Check everything (default).
    #[default]
    Enforce,
    /// Skip the compatibility checks, as `systemd-sysext --force`.
    Skip,
}

/// The host architecture in `ConditionArchitecture=` spelling, as compiled.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86-64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64-le",
        "powerpc64" => "ppc64",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "loongarch64" => "loongarch64",
        other => other,
    }
}

/// Decides whether an extension with release `ext` may be merged on `host`.
pub fn validate(host: &HostRelease, ext: &ReleaseFields, host_arch: &str, scope: Scope, checks: Checks) -> Verdict {
    use RejectReason as R;
    if checks == Checks::Skip {
        return Verdict::Accept(AcceptReason::Forced);
    }
    if ext.is_empty() {
        return Verdict::Reject(R::NoData);
    }
    if let Some(s) = ext.get("SYSEXT_SCOPE") {
        if !s.split_ascii_whitespace().any(|w| w == scope.as_str()) {
            return Verdict::Reject(R::Scope(scope.as_str()));
        }
    }
    if let Some(a) = ext.get("ARCHITECTURE") {
        if a != "_any" && a != host_arch {
            return Verdict::Reject(R::Architecture {
                ext: a.into(),
                host: host_arch.into(),
            });
        }
    }
    let Some(id) = ext.get("ID") else {
        return Verdict::Reject(R::MissingId);
    };
    if id == "_any" {
        return Verdict::Accept(AcceptReason::AnyOs);
    }
    if id != host.id {
        return Verdict::Reject(R::Id {
            ext: id.into(),
            host: host.id.clone(),
        });
    }
    if host.version_id.is_none() && host.sysext_level.is_none() {
        return Verdict::Accept(AcceptReason::RollingHost);
    }
    match (&host.sysext_level, ext.get("SYSEXT_LEVEL")) {
        (Some(h), Some(e)) => {
            if h != e {
                return Verdict::Reject(R::Level {
                    ext: e.into(),
                    host: h.clone(),
                });
            }
        }
        _ => {
            if let Some(h) = &host.version_id {
                match ext.get("VERSION_ID") {
                    None => return Verdict::Reject(R::MissingVersionId { host: h.clone() }),
                    Some(e) if e != h => {
                        return Verdict::Reject(R::VersionId {
                            ext: e.into(),
                            host: h.clone(),
                        })
                    }
                    Some(_) => {}
                }
            }
        }
    }
    Verdict::Accept(AcceptReason::VersionMatches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(level: Option<&str>, version: Option<&str>) -> HostRelease {
        HostRelease {
            id: "boxcar".into(),
            version_id: version.map(Into::into),
            sysext_level: level.map(Into::into),
        }
    }
    fn ext(s: &str) -> ReleaseFields {
        ReleaseFields::parse(s).unwrap()
    }
    fn v(h: &HostRelease, e: &str) -> Verdict {
        validate(h, &ext(e), "x86-64", Scope::System, Checks::Enforce)
    }

    #[test]
    fn worked_examples() {
        let flatcar_like = host(Some("1.0"), Some("3815.2.0"));
        // Bakery extension: ID=_any matches every OS.
        assert_eq!(
            v(&flatcar_like, "ID=_any\nARCHITECTURE=x86-64"),
            Verdict::Accept(AcceptReason::AnyOs)
        );
        // _any does not bypass the architecture check (it comes first).
        assert!(matches!(
            v(&flatcar_like, "ID=_any\nARCHITECTURE=arm64"),
            Verdict::Reject(RejectReason::Architecture { .. })
        ));
        // Level set on both sides: level decides, VERSION_ID ignored.
        assert_eq!(
            v(&flatcar_like, "ID=boxcar\nSYSEXT_LEVEL=1.0\nVERSION_ID=1"),
            Verdict::Accept(AcceptReason::VersionMatches)
        );
        assert!(matches!(
            v(&flatcar_like, "ID=boxcar\nSYSEXT_LEVEL=2.0"),
            Verdict::Reject(RejectReason::Level { .. })
        ));
        // Extension without level: VERSION_ID must match.
        assert!(matches!(
            v(&flatcar_like, "ID=boxcar"),
            Verdict::Reject(RejectReason::MissingVersionId { .. })
        ));
        assert_eq!(
            v(&flatcar_like, "ID=boxcar\nVERSION_ID=3815.2.0"),
            Verdict::Accept(AcceptReason::VersionMatches)
        );
        assert!(matches!(
            v(&flatcar_like, "ID=boxcar\nVERSION_ID=1"),
            Verdict::Reject(RejectReason::VersionId { .. })
        ));
        // Wrong OS.
        assert!(matches!(
            v(&flatcar_like, "ID=debian\nSYSEXT_LEVEL=1.0"),
            Verdict::Reject(RejectReason::Id { .. })
        ));
        assert_eq!(v(&flatcar_like, ""), Verdict::Reject(RejectReason::NoData));
        assert_eq!(
            v(&flatcar_like, "VERSION_ID=1"),
            Verdict::Reject(RejectReason::MissingId)
        );
        // Rolling host: ID alone suffices.
        assert_eq!(
            v(&host(None, None), "ID=boxcar\nSYSEXT_LEVEL=9"),
            Verdict::Accept(AcceptReason::RollingHost)
        );
        // Host without level but extension with one: VERSION_ID decides.
        assert!(matches!(
            v(&host(None, Some("12")), "ID=boxcar\nSYSEXT_LEVEL=1.0"),
            Verdict::Reject(RejectReason::MissingVersionId { .. })
        ));
        // Scope.
        assert_eq!(
            v(&flatcar_like, "ID=_any\nSYSEXT_SCOPE=initrd"),
            Verdict::Reject(RejectReason::Scope("system"))
        );
        assert_eq!(
            v(&flatcar_like, "ID=_any\nSYSEXT_SCOPE=initrd system"),
            Verdict::Accept(AcceptReason::AnyOs)
        );
        // Force.
        assert_eq!(
            validate(&flatcar_like, &ext("ID=x"), "x86-64", Scope::System, Checks::Skip),
            Verdict::Accept(AcceptReason::Forced)
        );
    }

    #[test]
    fn host_needs_id() {
        assert_eq!(
            HostRelease::from_fields(&ext("VERSION_ID=1")),
            Err(HostReleaseError::MissingId)
        );
    }
}
