use std::path::PathBuf;

/// Why building, signing or verifying a payload failed. Every variant is a
/// refusal: nothing from a payload that produced one may be made bootable.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("reading payload stream: {0}")]
    Stream(std::io::Error),
    #[error("not a Boxcar payload (bad magic)")]
    BadMagic,
    #[error("payload format version {0} is not supported (this build reads 1)")]
    UnsupportedFormat(u32),
    #[error("payload is truncated: {0}")]
    Truncated(String),
    #[error("payload has trailing data after the last section")]
    TrailingData,
    #[error("payload is not signed (signature is required)")]
    MissingSignature,
    #[error("unknown signature algorithm {0}")]
    UnknownSignatureAlgorithm(u32),
    #[error("signature does not verify with the trusted key")]
    BadSignature,
    #[error("manifest of {0} bytes exceeds the limit")]
    ManifestTooLarge(u64),
    #[error("invalid manifest: {0}")]
    BadManifest(String),
    #[error("section {section}: {what} mismatch (manifest {expected}, payload {actual})")]
    DigestMismatch {
        section: &'static str,
        what: &'static str,
        expected: String,
        actual: String,
    },
    #[error("section {section} decompresses to more than the {limit} bytes the manifest declares")]
    Oversized { section: &'static str, limit: u64 },
    #[error("section {section}: zstd: {source}")]
    Decompress {
        section: &'static str,
        source: std::io::Error,
    },
    #[error("version {offered} is not newer than the running {current} (downgrade refused)")]
    Downgrade { offered: String, current: String },
    #[error("key file {path}: {why}")]
    Key { path: PathBuf, why: String },
    #[error("verity: {0}")]
    Verity(#[from] boxcar_verity::VerityError),
    #[error("stored download position does not fit this payload: {0}")]
    BadCheckpoint(String),
    #[error("writing section {section} to its destination: {source}")]
    Sink {
        section: &'static str,
        source: std::io::Error,
    },
}
