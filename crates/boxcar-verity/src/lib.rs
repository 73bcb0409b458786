//! dm-verity hash trees for Boxcar's /usr slots.
//!
//! The node boots `/usr` through dm-verity (`usrhash=` on the kernel command
//! line), so the hash tree we build at image and update time must be exactly
//! what the kernel and `veritysetup` expect. This crate produces the same
//! bytes as `veritysetup format --hash=sha256 --data-block-size=4096
//! --hash-block-size=4096 --format=1` for a given salt and UUID (checked
//! byte for byte in the tests), and verifies an image against a root hash in
//! userspace, so the update agent can read a written slot back before it
//! makes the slot bootable.
//!
//! Layout of the hash device (as cryptsetup writes it):
//! `[superblock padded to one hash block][top level] … [level 0]`.

mod error;
mod format;
mod mmap;
mod superblock;
mod tree;
mod verify;

pub use error::VerityError;
pub use format::{format_file, format_reader, FormatOutput, Parallelism};
pub use superblock::{Superblock, SUPERBLOCK_SIZE};
pub use tree::{Geometry, RootHash, Salt, BLOCK_SIZE, DIGEST_SIZE, HASHES_PER_BLOCK, MAX_SALT};
pub use verify::{verify_files, verify_regions, Mismatch, Region};

/// How a data image whose size is not a multiple of [`BLOCK_SIZE`] is handled.
///
/// `veritysetup format` silently covers only the whole blocks and leaves the
/// tail unprotected; we refuse by default because an unprotected tail of a
/// /usr image is a security hole, and make covering a prefix explicit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataBlocks {
    /// Cover the whole file; fail if its size is not a multiple of the block size.
    WholeFile,
    /// Cover exactly this many blocks from the start (like `--data-blocks`).
    Exactly(u64),
}

/// Parameters of one verity format, i.e. what goes into the superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Salt mixed into every digest (type 1: `sha256(salt ‖ block)`).
    pub salt: Salt,
    /// UUID recorded in the superblock (veritysetup's `--uuid`).
    pub uuid: [u8; 16],
    /// Which part of the data image is covered.
    pub data_blocks: DataBlocks,
}

/// Parses a textual UUID (`8e47396d-ef74-44da-b74a-39870ee94ee4`, dashes optional).
pub fn parse_uuid(s: &str) -> Result<[u8; 16], VerityError> {
    let digits: String = s.chars().filter(|c| *c != '-').collect();
    let bytes = hex::decode(&digits).map_err(|_| VerityError::BadUuid(s.to_string()))?;
    bytes.try_into().map_err(|_| VerityError::BadUuid(s.to_string()))
}

/// Formats a UUID the way veritysetup prints it.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let h = hex::encode(u);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
