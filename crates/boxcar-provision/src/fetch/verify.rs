//! `verification.hash`: `sha512-<hex>` / `sha256-<hex>` over the
//! decompressed contents, checked before anything is written.

use crate::error::FetchError;
use sha2::{Digest, Sha256, Sha512};

/// A parsed expected hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedHash {
    pub algorithm: HashAlgorithm,
    /// Lower-case hex, as the config spelled it (case-folded).
    pub hex: String,
}

/// The hash functions Ignition accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    Sha256,
    Sha512,
}

impl HashAlgorithm {
    fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha512 => "sha512",
        }
    }
    fn hex_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 64,
            HashAlgorithm::Sha512 => 128,
        }
    }
}

/// Parse `sha512-…` / `sha256-…`.
pub fn parse(hash: &str) -> Result<ExpectedHash, FetchError> {
    let bad = |reason: &str| FetchError::BadHash {
        hash: hash.to_string(),
        reason: reason.to_string(),
    };
    let (func, hex) = hash.split_once('-').ok_or_else(|| bad("expected <function>-<hex>"))?;
    let algorithm = match func {
        "sha512" => HashAlgorithm::Sha512,
        "sha256" => HashAlgorithm::Sha256,
        _ => return Err(bad("unrecognized hash function")),
    };
    if hex.len() != algorithm.hex_len() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("hash value has the wrong length or is not hex"));
    }
    Ok(ExpectedHash {
        algorithm,
        hex: hex.to_ascii_lowercase(),
    })
}

/// Hex digest of `data`.
pub fn digest(algorithm: HashAlgorithm, data: &[u8]) -> String {
    match algorithm {
        HashAlgorithm::Sha256 => hex::encode(Sha256::digest(data)),
        HashAlgorithm::Sha512 => hex::encode(Sha512::digest(data)),
    }
}

/// Check `data` against `expected`; `url` (already redacted) names the
/// resource in the error.
pub fn check(expected: &ExpectedHash, data: &[u8], url: &str) -> Result<(), FetchError> {
    let actual = digest(expected.algorithm, data);
    if actual == expected.hex {
        Ok(())
    } else {
        Err(FetchError::HashMismatch {
            url: url.to_string(),
            algorithm: expected.algorithm.name().to_string(),
            expected: expected.hex.clone(),
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc() {
        let h = parse("sha256-BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD").unwrap();
        assert!(check(&h, b"abc", "x").is_ok());
        assert!(matches!(check(&h, b"abd", "x"), Err(FetchError::HashMismatch { .. })));
    }

    #[test]
    fn rejects_unknown_and_short() {
        assert!(parse("md5-00").is_err());
        assert!(parse("sha512-abcd").is_err());
        assert!(parse("nodash").is_err());
    }
}
