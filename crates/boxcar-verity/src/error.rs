use std::path::PathBuf;

/// Why formatting or verifying a verity tree failed. Variants name the
/// operation and carry the path involved.
#[derive(Debug, thiserror::Error)]
pub enum VerityError {
    #[error("reading data image {path}: {source}")]
    ReadData { path: PathBuf, source: std::io::Error },
    #[error("reading hash image {path}: {source}")]
    ReadHash { path: PathBuf, source: std::io::Error },
    #[error("writing hash image {path}: {source}")]
    WriteHash { path: PathBuf, source: std::io::Error },
    #[error(
        "data image {path} is {size} bytes, not a multiple of 4096 (give an explicit block count to cover a prefix)"
    )]
    UnalignedData { path: PathBuf, size: u64 },
    #[error("data image {path} has {size} bytes, fewer than the {blocks} blocks to cover")]
    DataTooSmall { path: PathBuf, size: u64, blocks: u64 },
    #[error("data image is empty: dm-verity needs at least one block")]
    EmptyData,
    #[error("data stream ended after {got} bytes, expected {expected}")]
    ShortStream { got: u64, expected: u64 },
    #[error("salt of {0} bytes is longer than the 256 bytes a superblock holds")]
    SaltTooLong(usize),
    #[error("invalid hex in {what}: {value:?}")]
    BadHex { what: &'static str, value: String },
    #[error("invalid UUID {0:?}")]
    BadUuid(String),
    #[error("hash image superblock: {0}")]
    BadSuperblock(String),
    #[error("hash image {path} is {size} bytes, the tree needs {needed}")]
    HashTooSmall { path: PathBuf, size: u64, needed: u64 },
    #[error("verifying {path}: {mismatch}")]
    Corrupt { path: PathBuf, mismatch: crate::Mismatch },
    #[error("hashing worker thread panicked")]
    WorkerPanicked,
}
