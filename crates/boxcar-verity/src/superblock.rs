//! The 512-byte verity superblock at the start of the hash device (format 1,
//! as cryptsetup's `VERITY_write_sb` writes it, little endian).

use crate::tree::{Geometry, Salt, BLOCK_SIZE};
use crate::VerityError;

/// Bytes of the on-disk superblock (the rest of its hash block is zero).
pub const SUPERBLOCK_SIZE: usize = 512;
const MAGIC: &[u8; 8] = b"verity\0\0";

/// The fields of a verity superblock that Boxcar writes and checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// 1 for the normal format, 0 for Chrome OS; we only produce 1.
    pub hash_type: u32,
    pub uuid: [u8; 16],
    /// Algorithm name, e.g. `sha256`.
    pub algorithm: String,
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub data_blocks: u64,
    pub salt: Salt,
}

impl Superblock {
    /// The superblock for Boxcar's fixed parameters.
    pub fn new(geo: &Geometry, salt: &Salt, uuid: [u8; 16]) -> Self {
        Superblock {
            hash_type: 1,
            uuid,
            algorithm: "sha256".into(),
            data_block_size: BLOCK_SIZE as u32,
            hash_block_size: BLOCK_SIZE as u32,
            data_blocks: geo.data_blocks,
            salt: salt.clone(),
        }
    }

    /// Encodes into the 512 on-disk bytes.
    pub fn encode(&self) -> [u8; SUPERBLOCK_SIZE] {
        let mut b = [0u8; SUPERBLOCK_SIZE];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        b[12..16].copy_from_slice(&self.hash_type.to_le_bytes());
        b[16..32].copy_from_slice(&self.uuid);
        let alg = self.algorithm.as_bytes();
        let n = alg.len().min(31);
        b[32..32 + n].copy_from_slice(&alg[..n]);
        b[64..68].copy_from_slice(&self.data_block_size.to_le_bytes());
        b[68..72].copy_from_slice(&self.hash_block_size.to_le_bytes());
        b[72..80].copy_from_slice(&self.data_blocks.to_le_bytes());
        let salt = self.salt.as_bytes();
        b[80..82].copy_from_slice(&(salt.len() as u16).to_le_bytes());
        b[88..88 + salt.len()].copy_from_slice(salt);
        b
    }

    /// Decodes and sanity-checks on-disk bytes; never panics on any input.
    pub fn decode(b: &[u8]) -> Result<Self, VerityError> {
        let bad = |m: &str| VerityError::BadSuperblock(m.to_string());
        if b.len() < SUPERBLOCK_SIZE {
            return Err(bad("shorter than 512 bytes"));
        }
        if &b[0..8] != MAGIC {
            return Err(bad("no verity magic"));
        }
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        if u32_at(8) != 1 {
            return Err(bad("unsupported version"));
        }
        let alg_raw = &b[32..64];
        let alg_len = alg_raw.iter().position(|&c| c == 0).unwrap_or(32);
        let algorithm = String::from_utf8_lossy(&alg_raw[..alg_len]).into_owned();
        let salt_len = u16::from_le_bytes([b[80], b[81]]) as usize;
        if salt_len > 256 {
            return Err(bad("salt size over 256"));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[16..32]);
        let mut db = [0u8; 8];
        db.copy_from_slice(&b[72..80]);
        Ok(Superblock {
            hash_type: u32_at(12),
            uuid,
            algorithm,
            data_block_size: u32_at(64),
            hash_block_size: u32_at(68),
            data_blocks: u64::from_le_bytes(db),
            salt: Salt::new(b[88..88 + salt_len].to_vec())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_rejects_garbage() {
        let geo = Geometry::new(1000).unwrap();
        let sb = Superblock::new(&geo, &Salt::new(vec![7; 33]).unwrap(), [9; 16]);
        let enc = sb.encode();
        assert_eq!(&enc[0..6], b"verity");
        assert_eq!(Superblock::decode(&enc).unwrap(), sb);
        assert!(Superblock::decode(&enc[..100]).is_err());
        let mut bad = enc;
        bad[81] = 0xff;
        assert!(Superblock::decode(&bad).is_err());
        assert!(Superblock::decode(&[0u8; 512]).is_err());
    }
}
