//! Userspace verification of a data image against its hash image and a
//! trusted root hash: the agent's read-back check before a slot is made
//! bootable. Checks top-down so the first mismatch is named precisely.

use crate::format::{covered_blocks, level0_parallel};
use crate::superblock::Superblock;
use crate::tree::{hash_blocks, hash_one, Geometry, RootHash, BLOCK_SIZE, DIGEST_SIZE};
use crate::{DataBlocks, Parallelism, Params, VerityError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Where verification found a difference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// The hash image's top level does not hash to the trusted root hash.
    #[error("root hash mismatch: hash image gives {actual}, expected {expected}")]
    Root { expected: RootHash, actual: RootHash },
    /// A hash block does not match the level below it (a corrupt hash image).
    #[error("hash tree level {level} does not match level {below} at hash block {block}", below = level - 1)]
    HashLevel { level: usize, block: u64 },
    /// The spare tail of a hash block is not zero.
    #[error("hash tree level {level} has non-zero padding")]
    Padding { level: usize },
    /// A data block does not match its digest; the byte offset like veritysetup reports it.
    #[error("data block {block} (position {offset}) does not match the hash tree")]
    DataBlock { block: u64, offset: u64 },
    /// The superblock does not describe a tree we can check.
    #[error("unsupported superblock: {0}")]
    Superblock(String),
}

/// A byte range of a file or block device: a whole image file, or a
/// partition inside a disk image (`offset`/`len` from the partition table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region<'a> {
    pub path: &'a Path,
    /// First byte of the region.
    pub offset: u64,
    /// Length in bytes; `None` = to the end of the file.
    pub len: Option<u64>,
}

impl<'a> Region<'a> {
    /// The whole file.
    pub fn file(path: &'a Path) -> Self {
        Region {
            path,
            offset: 0,
            len: None,
        }
    }
}

/// Size of a file or block device (block devices report 0 in metadata, so
/// seek to the end).
fn device_size(f: &File) -> std::io::Result<u64> {
    use std::io::Seek;
    let mut f = f;
    f.seek(std::io::SeekFrom::End(0))
}

/// The length of `r` inside `f`, checked against the file's size.
fn region_len(f: &File, r: &Region) -> std::io::Result<u64> {
    let size = device_size(f)?;
    let avail = size.checked_sub(r.offset).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("region starts at {} beyond the end ({size} bytes)", r.offset),
        )
    })?;
    match r.len {
        None => Ok(avail),
        Some(l) if l <= avail => Ok(l),
        Some(l) => Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "region of {l} bytes at {} extends beyond the end ({size} bytes)",
                r.offset
            ),
        )),
    }
}

/// Verifies `data` against the hash image `hash` and `root`. `Ok(())` only
/// when every data block, every hash block and the root match.
pub fn verify_files(data: &Path, hash: &Path, root: &RootHash, parallelism: Parallelism) -> Result<(), VerityError> {
    verify_regions(Region::file(data), Region::file(hash), root, parallelism)
}

/// Like [`verify_files`] for byte ranges, e.g. the USR and USR-VERITY
/// partitions of a disk image or block device read in place.
pub fn verify_regions(
    data_region: Region,
    hash_region: Region,
    root: &RootHash,
    parallelism: Parallelism,
) -> Result<(), VerityError> {
    let (data, hash) = (data_region.path, hash_region.path);
    let (dbase, hbase) = (data_region.offset, hash_region.offset);
    let herr = |source| VerityError::ReadHash {
        path: hash.into(),
        source,
    };
    let corrupt = |m: Mismatch| VerityError::Corrupt {
        path: data.into(),
        mismatch: m,
    };
    let hfile = File::open(hash).map_err(herr)?;
    let hsize = region_len(&hfile, &hash_region).map_err(herr)?;
    let mut sb_bytes = vec![0u8; crate::SUPERBLOCK_SIZE];
    hfile.read_exact_at(&mut sb_bytes, hbase).map_err(herr)?;
    let sb = Superblock::decode(&sb_bytes)?;
    if sb.hash_type != 1
        || sb.algorithm != "sha256"
        || sb.data_block_size as usize != BLOCK_SIZE
        || sb.hash_block_size as usize != BLOCK_SIZE
    {
        return Err(corrupt(Mismatch::Superblock(format!(
            "type {} {} {}/{}",
            sb.hash_type, sb.algorithm, sb.data_block_size, sb.hash_block_size
        ))));
    }
    let geo = Geometry::new(sb.data_blocks)?;
    if hsize < geo.hash_device_size() {
        return Err(VerityError::HashTooSmall {
            path: hash.into(),
            size: hsize,
            needed: geo.hash_device_size(),
        });
    }
    let derr = |source| VerityError::ReadData {
        path: data.into(),
        source,
    };
    let dfile = File::open(data).map_err(derr)?;
    let dsize = region_len(&dfile, &data_region).map_err(derr)?;
    covered_blocks(data, dsize, DataBlocks::Exactly(sb.data_blocks))?;
    let params = Params {
        salt: sb.salt.clone(),
        uuid: sb.uuid,
        data_blocks: DataBlocks::Exactly(sb.data_blocks),
    };

    if geo.level_blocks.is_empty() {
        let mut block = vec![0u8; BLOCK_SIZE];
        dfile.read_exact_at(&mut block, dbase).map_err(derr)?;
        if RootHash(hash_one(&params.salt, &block)) != *root {
            return Err(corrupt(Mismatch::DataBlock { block: 0, offset: 0 }));
        }
        return Ok(());
    }

    // Stored levels, index 0 = level 0.
    let mut stored = Vec::with_capacity(geo.level_blocks.len());
    for (i, &n) in geo.level_blocks.iter().enumerate() {
        let mut buf = vec![0u8; n as usize * BLOCK_SIZE];
        hfile
            .read_exact_at(&mut buf, hbase + geo.level_offset(i) * BLOCK_SIZE as u64)
            .map_err(herr)?;
        stored.push(buf);
    }
    let top = stored.last().expect("at least one level");
    let actual = RootHash(hash_one(&params.salt, &top[..BLOCK_SIZE]));
    if actual != *root {
        return Err(corrupt(Mismatch::Root {
            expected: *root,
            actual,
        }));
    }
    for level in (1..stored.len()).rev() {
        let below = &stored[level - 1];
        let used = below.len() / BLOCK_SIZE * DIGEST_SIZE;
        let mut want = vec![0u8; used];
        hash_blocks(&params.salt, below, &mut want);
        if let Some(i) = first_diff(&want, &stored[level][..used]) {
            return Err(corrupt(Mismatch::HashLevel {
                level,
                block: (i / DIGEST_SIZE) as u64,
            }));
        }
        if stored[level][used..].iter().any(|&b| b != 0) {
            return Err(corrupt(Mismatch::Padding { level }));
        }
    }
    let computed = level0_parallel(&dfile, data, dbase, &params, &geo, parallelism.threads())?;
    if let Some(i) = first_diff(&computed, &stored[0]) {
        if i >= geo.data_blocks as usize * DIGEST_SIZE {
            return Err(corrupt(Mismatch::Padding { level: 0 }));
        }
        let block = (i / DIGEST_SIZE) as u64;
        return Err(corrupt(Mismatch::DataBlock {
            block,
            offset: block * BLOCK_SIZE as u64,
        }));
    }
    Ok(())
}

fn first_diff(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}
