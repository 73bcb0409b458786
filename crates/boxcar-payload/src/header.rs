//! The fixed header in front of the manifest, and what the signature covers.
//!
//! ```text
//! 0    8   magic "BOXCARPL"
//! 8    4   format version, u32 LE (1)
//! 12   4   signature algorithm, u32 LE (0 none, 1 Ed25519)
//! 16   64  signature (zero when unsigned)
//! 80   4   manifest length M, u32 LE (at most 1 MiB)
//! 84   M   manifest, JSON
//! ```
//! The signature is fixed-size and in place, so `sign` rewrites 68 bytes
//! of a built payload without copying it.

use crate::PayloadError;

pub const MAGIC: &[u8; 8] = b"BOXCARPL";
pub const HEADER_LEN: usize = 84;
pub const MAX_MANIFEST: u32 = 1 << 20;
/// Domain separation: a signature over a payload can't be replayed as a
/// signature over anything else made with the same key.
pub const SIGN_DOMAIN: &[u8] = b"boxcar-payload-signature-v1\0";

/// How the payload is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigAlg {
    None,
    Ed25519,
}

/// The decoded fixed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub format: u32,
    pub alg: SigAlg,
    pub signature: [u8; 64],
    pub manifest_len: u32,
}

impl Header {
    /// Decodes the first [`HEADER_LEN`] bytes.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Result<Header, PayloadError> {
        if &b[0..8] != MAGIC {
            return Err(PayloadError::BadMagic);
        }
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let format = u32_at(8);
        if format != crate::manifest::FORMAT {
            return Err(PayloadError::UnsupportedFormat(format));
        }
        let alg = match u32_at(12) {
            0 => SigAlg::None,
            1 => SigAlg::Ed25519,
            n => return Err(PayloadError::UnknownSignatureAlgorithm(n)),
        };
        let manifest_len = u32_at(80);
        if manifest_len > MAX_MANIFEST {
            return Err(PayloadError::ManifestTooLarge(manifest_len as u64));
        }
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&b[16..80]);
        Ok(Header {
            format,
            alg,
            signature,
            manifest_len,
        })
    }

    /// Encodes the fixed header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&self.format.to_le_bytes());
        let alg: u32 = match self.alg {
            SigAlg::None => 0,
            SigAlg::Ed25519 => 1,
        };
        b[12..16].copy_from_slice(&alg.to_le_bytes());
        b[16..80].copy_from_slice(&self.signature);
        b[80..84].copy_from_slice(&self.manifest_len.to_le_bytes());
        b
    }
}

/// The exact bytes the signature covers: domain, format, manifest.
pub fn signed_message(format: u32, manifest: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGN_DOMAIN.len() + 4 + manifest.len());
    m.extend_from_slice(SIGN_DOMAIN);
    m.extend_from_slice(&format.to_le_bytes());
    m.extend_from_slice(manifest);
    m
}
