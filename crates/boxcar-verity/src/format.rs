//! Formatting: data image in, hash image out. Level 0 (all but 1/128 of the
//! work) is hashed in parallel over contiguous ranges of the data with
//! positional reads, so no thread waits for another.

use crate::superblock::Superblock;
use crate::tree::{build_upper, hash_blocks, hash_one, Geometry, RootHash, BLOCK_SIZE, DIGEST_SIZE};
use crate::{DataBlocks, Params, VerityError};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// How many threads hash level 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parallelism {
    /// One thread per available CPU.
    Auto,
    /// Exactly this many threads (at least 1).
    Threads(usize),
}

impl Parallelism {
    /// The number of threads this setting resolves to on this machine.
    pub fn thread_count(self) -> usize {
        self.threads()
    }

    pub(crate) fn threads(self) -> usize {
        match self {
            Parallelism::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Parallelism::Threads(n) => n.max(1),
        }
    }
}

/// What a format produced: the root hash for `usrhash=` and the shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatOutput {
    pub root: RootHash,
    pub geometry: Geometry,
    pub superblock: Superblock,
}

const READ_CHUNK: usize = 256 * BLOCK_SIZE;

/// Resolves [`DataBlocks`] against the data file's size.
pub(crate) fn covered_blocks(path: &Path, size: u64, want: DataBlocks) -> Result<u64, VerityError> {
    match want {
        DataBlocks::WholeFile => {
            if size % BLOCK_SIZE as u64 != 0 {
                return Err(VerityError::UnalignedData {
                    path: path.into(),
                    size,
                });
            }
            Ok(size / BLOCK_SIZE as u64)
        }
        DataBlocks::Exactly(n) => {
            if n.saturating_mul(BLOCK_SIZE as u64) > size {
                return Err(VerityError::DataTooSmall {
                    path: path.into(),
                    size,
                    blocks: n,
                });
            }
            Ok(n)
        }
    }
}

/// Hashes `blocks` data blocks starting at `first` into `out` with positional reads.
fn hash_range(
    file: &File,
    path: &Path,
    base: u64,
    params: &Params,
    first: u64,
    out: &mut [u8],
) -> Result<(), VerityError> {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut pos = base + first * BLOCK_SIZE as u64;
    for out_chunk in out.chunks_mut(READ_CHUNK / BLOCK_SIZE * DIGEST_SIZE) {
        let len = out_chunk.len() / DIGEST_SIZE * BLOCK_SIZE;
        file.read_exact_at(&mut buf[..len], pos)
            .map_err(|source| VerityError::ReadData {
                path: path.into(),
                source,
            })?;
        hash_blocks(&params.salt, &buf[..len], out_chunk);
        pos += len as u64;
    }
    Ok(())
}

/// Builds level 0 for the data starting at byte `base` of `file` using
/// `threads` workers, hashing from a memory map when the kernel allows
/// one, else from positional reads.
pub(crate) fn level0_parallel(
    file: &File,
    path: &Path,
    base: u64,
    params: &Params,
    geo: &Geometry,
    threads: usize,
) -> Result<Vec<u8>, VerityError> {
    let mut level0 = vec![0u8; geo.level_blocks[0] as usize * BLOCK_SIZE];
    let digests = &mut level0[..geo.data_blocks as usize * DIGEST_SIZE];
    let per_thread = (geo.data_blocks as usize).div_ceil(threads).max(1) * DIGEST_SIZE;
    if let Some(map) = crate::mmap::Mapped::new(file, base, geo.data_blocks * BLOCK_SIZE as u64) {
        let data = map.bytes();
        let per_thread_data = per_thread / DIGEST_SIZE * BLOCK_SIZE;
        std::thread::scope(|s| {
            let handles: Vec<_> = digests
                .chunks_mut(per_thread)
                .zip(data.chunks(per_thread_data))
                .map(|(out, input)| s.spawn(move || hash_blocks(&params.salt, input, out)))
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().map_err(|_| VerityError::WorkerPanicked))
        })?;
        return Ok(level0);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = digests
            .chunks_mut(per_thread)
            .enumerate()
            .map(|(i, out)| {
                let first = (i * per_thread / DIGEST_SIZE) as u64;
                s.spawn(move || hash_range(file, path, base, params, first, out))
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().map_err(|_| VerityError::WorkerPanicked)?)
    })?;
    Ok(level0)
}

/// Formats `data` into a new hash image at `hash` (created or truncated),
/// byte-identical to `veritysetup format` with the same salt and UUID.
pub fn format_file(
    data: &Path,
    hash: &Path,
    params: &Params,
    parallelism: Parallelism,
) -> Result<FormatOutput, VerityError> {
    let read_err = |source| VerityError::ReadData {
        path: data.into(),
        source,
    };
    let file = File::open(data).map_err(read_err)?;
    let size = file.metadata().map_err(read_err)?.len();
    let geo = Geometry::new(covered_blocks(data, size, params.data_blocks)?)?;
    let (levels, root) = if geo.level_blocks.is_empty() {
        let mut block = vec![0u8; BLOCK_SIZE];
        file.read_exact_at(&mut block, 0).map_err(read_err)?;
        (Vec::new(), RootHash(hash_one(&params.salt, &block)))
    } else {
        let level0 = level0_parallel(&file, data, 0, params, &geo, parallelism.threads())?;
        build_upper(&params.salt, &geo, level0)
    };
    let superblock = Superblock::new(&geo, &params.salt, params.uuid);
    write_hash_image(hash, &superblock, &levels)?;
    tracing::debug!(data = %data.display(), blocks = geo.data_blocks, %root, "verity format");
    Ok(FormatOutput {
        root,
        geometry: geo,
        superblock,
    })
}

/// Formats from a stream (e.g. a download being written to a slot) covering
/// exactly `data_blocks` blocks; single-threaded, constant memory for the data.
pub fn format_reader(
    mut data: impl Read,
    data_blocks: u64,
    hash: &Path,
    params: &Params,
) -> Result<FormatOutput, VerityError> {
    let geo = Geometry::new(data_blocks)?;
    let stream_err = |source| VerityError::ReadData {
        path: "<stream>".into(),
        source,
    };
    let mut level0 = vec![0u8; geo.level_blocks.first().map_or(0, |n| *n as usize) * BLOCK_SIZE];
    let mut buf = vec![0u8; READ_CHUNK];
    let mut done = 0u64;
    let mut single_root = None;
    while done < data_blocks {
        let n = ((data_blocks - done) as usize).min(READ_CHUNK / BLOCK_SIZE);
        let len = n * BLOCK_SIZE;
        data.read_exact(&mut buf[..len]).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                VerityError::ShortStream {
                    got: done * BLOCK_SIZE as u64,
                    expected: data_blocks * BLOCK_SIZE as u64,
                }
            } else {
                stream_err(e)
            }
        })?;
        if geo.level_blocks.is_empty() {
            single_root = Some(RootHash(hash_one(&params.salt, &buf[..BLOCK_SIZE])));
        } else {
            let at = done as usize * DIGEST_SIZE;
            hash_blocks(&params.salt, &buf[..len], &mut level0[at..at + n * DIGEST_SIZE]);
        }
        done += n as u64;
    }
    let (levels, root) = match single_root {
        Some(root) => (Vec::new(), root),
        None => build_upper(&params.salt, &geo, level0),
    };
    let superblock = Superblock::new(&geo, &params.salt, params.uuid);
    write_hash_image(hash, &superblock, &levels)?;
    Ok(FormatOutput {
        root,
        geometry: geo,
        superblock,
    })
}

fn write_hash_image(path: &Path, sb: &Superblock, levels: &[Vec<u8>]) -> Result<(), VerityError> {
    let werr = |source| VerityError::WriteHash {
        path: path.into(),
        source,
    };
    let mut f = std::io::BufWriter::new(File::create(path).map_err(werr)?);
    let mut first = vec![0u8; BLOCK_SIZE];
    first[..crate::SUPERBLOCK_SIZE].copy_from_slice(&sb.encode());
    f.write_all(&first).map_err(werr)?;
    for level in levels.iter().rev() {
        f.write_all(level).map_err(werr)?;
    }
    f.into_inner()
        .map_err(|e| werr(e.into_error()))?
        .sync_data()
        .map_err(werr)
}
