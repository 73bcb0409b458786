//! The manifest: what a payload contains, with sizes and digests of every
//! section before and after compression. Parsed strictly (unknown fields
//! refused, limits checked) because it is the first thing read from an
//! untrusted stream — though only after its signature was checked.

use crate::PayloadError;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Current payload format version.
pub const FORMAT: u32 = 1;
/// Largest section we accept (guards every allocation and decompression).
pub const MAX_SECTION: u64 = 64 << 30;

/// The signed description of a payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`]; repeated inside the signed bytes.
    pub format: u32,
    /// OS version the payload installs, e.g. `4800.1.0`.
    pub version: String,
    /// The /usr filesystem image (written to the passive USR partition).
    pub usr: Section,
    /// Its dm-verity hash image (written to the USR-VERITY partition).
    pub verity: Section,
    /// Parameters of the verity tree; `root_hash` goes into `usrhash=`.
    pub verity_params: VerityParams,
    /// The unified kernel image (written to the ESP).
    pub uki: Section,
}

/// Size and digests of one section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Bytes after decompression.
    pub size: u64,
    /// sha256 of the decompressed bytes, hex.
    pub sha256: String,
    /// Bytes of the zstd frame in the payload.
    pub compressed_size: u64,
    /// sha256 of the compressed bytes, hex.
    pub compressed_sha256: String,
}

/// The verity tree the payload's /usr was formatted with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerityParams {
    pub root_hash: String,
    /// Hex, or `-` for none.
    pub salt: String,
    pub uuid: String,
    pub data_blocks: u64,
}

/// Section names in payload order.
pub const SECTIONS: [&str; 3] = ["usr", "verity", "uki"];

impl Manifest {
    /// Parses and validates manifest bytes; never panics on any input.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, PayloadError> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| PayloadError::BadManifest(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    /// The sections in payload order.
    pub fn sections(&self) -> [(&'static str, &Section); 3] {
        [("usr", &self.usr), ("verity", &self.verity), ("uki", &self.uki)]
    }

    /// Checks format, version syntax, limits, digest syntax and that the
    /// verity parameters agree with the section sizes.
    pub fn validate(&self) -> Result<(), PayloadError> {
        let bad = |m: String| Err(PayloadError::BadManifest(m));
        if self.format != FORMAT {
            return Err(PayloadError::UnsupportedFormat(self.format));
        }
        if !valid_version(&self.version) {
            return bad(format!("version {:?} is not [A-Za-z0-9._~^]+", self.version));
        }
        for (name, s) in self.sections() {
            if s.size > MAX_SECTION || s.compressed_size > MAX_SECTION {
                return bad(format!("section {name} is larger than {MAX_SECTION} bytes"));
            }
            if !is_sha256_hex(&s.sha256) || !is_sha256_hex(&s.compressed_sha256) {
                return bad(format!("section {name} has a malformed sha256"));
            }
        }
        let vp = &self.verity_params;
        let root: Result<boxcar_verity::RootHash, _> = vp.root_hash.parse();
        if root.is_err() || boxcar_verity::Salt::from_hex(&vp.salt).is_err() {
            return bad("verity root hash or salt malformed".into());
        }
        if boxcar_verity::parse_uuid(&vp.uuid).is_err() {
            return bad("verity UUID malformed".into());
        }
        if vp.data_blocks == 0 || vp.data_blocks.checked_mul(4096) != Some(self.usr.size) {
            return bad("verity data_blocks does not cover the usr section exactly".into());
        }
        let geo = boxcar_verity::Geometry::new(vp.data_blocks)?;
        if geo.hash_device_size() != self.verity.size {
            return bad("verity section size does not match its tree geometry".into());
        }
        Ok(())
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Version strings are boot-entry versions (they become file names on the
/// ESP), at most 64 bytes long.
pub fn valid_version(v: &str) -> bool {
    v.len() <= 64 && boxcar_slots::bootent::valid_version(v)
}

/// Versions compare as boot entries do: digit runs numerically, everything
/// else bytewise (`4800.1.0` > `4799.2.3`, `10.0` > `9.9`).
pub use boxcar_slots::bootent::compare_versions;

/// Whether an older or equal version may be installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionPolicy {
    /// Only versions newer than the running one (the agent's default).
    NewerThan(String),
    /// Any version (an operator's explicit rollback or an inspection).
    Any,
}

impl VersionPolicy {
    /// Refuses `offered` if the policy forbids it.
    pub fn check(&self, offered: &str) -> Result<(), PayloadError> {
        match self {
            VersionPolicy::NewerThan(current) if compare_versions(offered, current) != Ordering::Greater => {
                Err(PayloadError::Downgrade {
                    offered: offered.into(),
                    current: current.clone(),
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ordering_and_policy() {
        assert_eq!(compare_versions("4800.1.0", "4799.2.3"), Ordering::Greater);
        assert_eq!(compare_versions("10.0", "9.9"), Ordering::Greater);
        assert_eq!(compare_versions("1.0.0", "1.0.0"), Ordering::Equal);
        let p = VersionPolicy::NewerThan("4800.1.0".into());
        assert!(p.check("4800.1.1").is_ok());
        assert!(matches!(p.check("4800.1.0"), Err(PayloadError::Downgrade { .. })));
        assert!(matches!(p.check("4799.9.9"), Err(PayloadError::Downgrade { .. })));
        assert!(VersionPolicy::Any.check("1").is_ok());
    }

    #[test]
    fn garbage_manifests_are_refused() {
        for junk in [&b""[..], b"{}", b"[1,2]", b"\xff\xfe", b"{\"format\":1}", b"null"] {
            assert!(Manifest::parse(junk).is_err());
        }
    }
}
