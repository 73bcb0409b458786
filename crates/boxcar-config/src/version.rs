//! Ignition spec versions this crate reads.

use std::fmt;

/// A supported Ignition spec version. All are parsed into one internal model
/// (the newest); what differs per version is which fields and URL schemes
/// are allowed, and that is checked while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SpecVersion {
    V3_0,
    V3_1,
    V3_2,
    V3_3,
    V3_4,
}

impl SpecVersion {
    pub const ALL: [SpecVersion; 5] = [
        SpecVersion::V3_0,
        SpecVersion::V3_1,
        SpecVersion::V3_2,
        SpecVersion::V3_3,
        SpecVersion::V3_4,
    ];

    /// The version of the internal model; every config is upgraded to it.
    pub const LATEST: SpecVersion = SpecVersion::V3_4;

    pub fn as_str(self) -> &'static str {
        match self {
            SpecVersion::V3_0 => "3.0.0",
            SpecVersion::V3_1 => "3.1.0",
            SpecVersion::V3_2 => "3.2.0",
            SpecVersion::V3_3 => "3.3.0",
            SpecVersion::V3_4 => "3.4.0",
        }
    }

    /// Parse a version string. Distinguishes "not a version at all" from
    /// "a version we do not support", as Ignition does.
    pub fn parse(s: &str) -> Result<SpecVersion, VersionError> {
        if let Some(v) = SpecVersion::ALL.iter().find(|v| v.as_str() == s) {
            return Ok(*v);
        }
        if is_semver(s) {
            Err(VersionError::Unsupported)
        } else {
            Err(VersionError::Invalid)
        }
    }
}

impl fmt::Display for SpecVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("invalid config version (couldn't parse)")]
    Invalid,
    #[error("unsupported config version")]
    Unsupported,
}

/// `MAJOR.MINOR.PATCH` with an optional `-prerelease` / `+build`.
pub fn is_semver(s: &str) -> bool {
    let core = s.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p.len() == 1 || !p.starts_with('0')))
        && (core.len() == s.len() || s.len() > core.len() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_versions() {
        assert_eq!(SpecVersion::parse("3.2.0"), Ok(SpecVersion::V3_2));
        assert_eq!(SpecVersion::parse("3.4.0"), Ok(SpecVersion::V3_4));
        assert_eq!(SpecVersion::parse("2.3.0"), Err(VersionError::Unsupported));
        assert_eq!(SpecVersion::parse("3.5.0"), Err(VersionError::Unsupported));
        assert_eq!(SpecVersion::parse("3.4.0-experimental"), Err(VersionError::Unsupported));
        assert_eq!(SpecVersion::parse("banana"), Err(VersionError::Invalid));
        assert_eq!(SpecVersion::parse("3.1"), Err(VersionError::Invalid));
        assert!(SpecVersion::V3_1 < SpecVersion::V3_2);
    }
}
