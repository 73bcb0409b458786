//! Pure tree arithmetic and hashing: no I/O, so it is shared by the file
//! formatter, the streaming builder and the verifier.

use crate::VerityError;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// Data and hash block size: Boxcar always uses 4096/4096 like veritysetup's default.
pub const BLOCK_SIZE: usize = 4096;
/// sha256 digest size.
pub const DIGEST_SIZE: usize = 32;
/// Digests per hash block (4096 / next_pow2(32)).
pub const HASHES_PER_BLOCK: u64 = (BLOCK_SIZE / DIGEST_SIZE) as u64;
/// Longest salt the superblock can record.
pub const MAX_SALT: usize = 256;

/// The salt mixed into every digest. Empty is allowed (`--salt=-`).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Salt(Vec<u8>);

impl Salt {
    /// A salt from raw bytes; at most [`MAX_SALT`] bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Self, VerityError> {
        if bytes.len() > MAX_SALT {
            return Err(VerityError::SaltTooLong(bytes.len()));
        }
        Ok(Salt(bytes))
    }

    /// Parses veritysetup's textual form: hex, or `-` for no salt.
    pub fn from_hex(s: &str) -> Result<Self, VerityError> {
        if s == "-" || s.is_empty() {
            return Ok(Salt(Vec::new()));
        }
        let b = hex::decode(s).map_err(|_| VerityError::BadHex {
            what: "salt",
            value: s.to_string(),
        })?;
        Salt::new(b)
    }

    /// The salt bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// veritysetup's textual form (`-` when empty).
    pub fn to_hex(&self) -> String {
        if self.0.is_empty() {
            "-".into()
        } else {
            hex::encode(&self.0)
        }
    }

    /// A hasher already fed with the salt; cloned per block.
    pub(crate) fn hasher(&self) -> Sha256 {
        let mut h = Sha256::new();
        h.update(&self.0);
        h
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Salt({})", self.to_hex())
    }
}

/// The root hash that goes on the kernel command line (`usrhash=`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RootHash(pub [u8; DIGEST_SIZE]);

impl fmt::Display for RootHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for RootHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RootHash({self})")
    }
}

impl FromStr for RootHash {
    type Err = VerityError;
    fn from_str(s: &str) -> Result<Self, VerityError> {
        let bad = || VerityError::BadHex {
            what: "root hash",
            value: s.to_string(),
        };
        let b = hex::decode(s.trim()).map_err(|_| bad())?;
        Ok(RootHash(b.try_into().map_err(|_| bad())?))
    }
}

/// Shape of the tree for a number of data blocks, computed exactly as
/// cryptsetup's `hash_levels()`: the number of levels is the smallest `n`
/// with `(data_blocks - 1) >> (7 n) == 0`, so one data block has no hash
/// level at all (its own digest is the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// Data blocks covered.
    pub data_blocks: u64,
    /// Hash blocks per level; index 0 is the level that hashes the data.
    pub level_blocks: Vec<u64>,
}

impl Geometry {
    /// Geometry for `data_blocks` (at least 1).
    pub fn new(data_blocks: u64) -> Result<Self, VerityError> {
        if data_blocks == 0 {
            return Err(VerityError::EmptyData);
        }
        let mut levels = 0u32;
        while 7 * levels < 64 && ((data_blocks - 1) >> (7 * levels)) != 0 {
            levels += 1;
        }
        let mut level_blocks = Vec::with_capacity(levels as usize);
        let mut n = data_blocks;
        for _ in 0..levels {
            n = n.div_ceil(HASHES_PER_BLOCK);
            level_blocks.push(n);
        }
        Ok(Geometry {
            data_blocks,
            level_blocks,
        })
    }

    /// Number of hash blocks in the tree (veritysetup's "Hash blocks").
    pub fn hash_blocks(&self) -> u64 {
        self.level_blocks.iter().sum()
    }

    /// Position of a level's first block, in hash blocks from the start of
    /// the hash device (block 0 is the superblock; the top level comes first).
    pub fn level_offset(&self, level: usize) -> u64 {
        1 + self.level_blocks[level + 1..].iter().sum::<u64>()
    }

    /// Size of the hash device: superblock block plus the tree.
    pub fn hash_device_size(&self) -> u64 {
        (1 + self.hash_blocks()) * BLOCK_SIZE as u64
    }
}

/// Hashes whole blocks of `input` (a multiple of [`BLOCK_SIZE`]) into
/// consecutive digests in `out` (`input.len() / 4096 * 32` bytes).
pub fn hash_blocks(salt: &Salt, input: &[u8], out: &mut [u8]) {
    debug_assert_eq!(input.len() % BLOCK_SIZE, 0);
    debug_assert_eq!(out.len(), input.len() / BLOCK_SIZE * DIGEST_SIZE);
    let base = salt.hasher();
    for (block, digest) in input.chunks_exact(BLOCK_SIZE).zip(out.chunks_exact_mut(DIGEST_SIZE)) {
        let mut h = base.clone();
        h.update(block);
        digest.copy_from_slice(&h.finalize());
    }
}

/// One digest of one block.
pub fn hash_one(salt: &Salt, block: &[u8]) -> [u8; DIGEST_SIZE] {
    let mut h = salt.hasher();
    h.update(block);
    h.finalize().into()
}

/// Builds every level above level 0 and the root, given level 0 as whole
/// zero-padded hash blocks. Returns the levels (index 0 = the input) and the root.
pub fn build_upper(salt: &Salt, geo: &Geometry, level0: Vec<u8>) -> (Vec<Vec<u8>>, RootHash) {
    let mut levels = vec![level0];
    for &blocks in &geo.level_blocks[1..] {
        let below = levels.last().expect("level 0 present");
        let mut next = vec![0u8; blocks as usize * BLOCK_SIZE];
        let used = below.len() / BLOCK_SIZE * DIGEST_SIZE;
        hash_blocks(salt, below, &mut next[..used]);
        levels.push(next);
    }
    let top = levels.last().expect("level 0 present");
    let root = RootHash(hash_one(salt, &top[..BLOCK_SIZE]));
    (levels, root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_cryptsetup_boundaries() {
        assert_eq!(Geometry::new(1).unwrap().level_blocks, Vec::<u64>::new());
        assert_eq!(Geometry::new(2).unwrap().level_blocks, vec![1]);
        assert_eq!(Geometry::new(128).unwrap().level_blocks, vec![1]);
        assert_eq!(Geometry::new(129).unwrap().level_blocks, vec![2, 1]);
        assert_eq!(Geometry::new(1000).unwrap().hash_blocks(), 9);
        // Flatcar's /usr: 260094 data blocks → 2032 + 16 + 1 hash blocks.
        let g = Geometry::new(260094).unwrap();
        assert_eq!(g.level_blocks, vec![2032, 16, 1]);
        assert_eq!(g.level_offset(2), 1);
        assert_eq!(g.level_offset(1), 2);
        assert_eq!(g.level_offset(0), 18);
        assert!(Geometry::new(0).is_err());
    }

    #[test]
    fn hex_roundtrip_and_salt_forms() {
        assert_eq!(Salt::from_hex("-").unwrap().as_bytes(), b"");
        assert_eq!(Salt::from_hex("0aff").unwrap().as_bytes(), &[0x0a, 0xff]);
        assert!(Salt::from_hex("abc").is_err());
        assert!(Salt::new(vec![0; 257]).is_err());
        let r: RootHash = "00".repeat(32).parse().unwrap();
        assert_eq!(r.to_string(), "00".repeat(32));
        assert!("00".parse::<RootHash>().is_err());
    }
}
