//! Errors of image builds: each names the file, tool or key and the cause.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("manifest {path}: {why}")]
    Manifest { path: PathBuf, why: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run {program}: {source} (is it installed? see scripts/setup.sh)")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Tool {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("staging root {root}: {why}")]
    Root { root: PathBuf, why: String },
    #[error("initrd: {0}")]
    Initrd(String),
    #[error("disk image: {0}")]
    Disk(String),
    #[error(transparent)]
    Verity(#[from] boxcar_verity::VerityError),
    #[error(transparent)]
    Payload(#[from] boxcar_payload::PayloadError),
    #[error(transparent)]
    Slots(#[from] boxcar_slots::SlotsError),
}

/// Shorthand for a read error on `path`.
pub(crate) fn rd(path: &std::path::Path) -> impl Fn(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Read {
        path: path.into(),
        source,
    }
}

/// Shorthand for a write error on `path`.
pub(crate) fn wr(path: &std::path::Path) -> impl Fn(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Write {
        path: path.into(),
        source,
    }
}
