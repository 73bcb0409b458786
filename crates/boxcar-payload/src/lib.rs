//! Boxcar update payloads: one file holding the new /usr image, its
//! dm-verity hash image, the UKI and a signed manifest (version, sizes and
//! sha256 digests before and after zstd compression). The format is
//! described in `docs/payload.md`.
//!
//! Why this shape: the node must be able to stream a payload straight into
//! the passive slot (no second copy on disk), yet trust nothing it has not
//! checked. So the manifest comes first and is signed (Ed25519), every
//! section's digests are in it, and the reader checks each section as it
//! streams. Verification is never optional: there is no API that yields
//! section data from an unsigned payload.

mod build;
mod error;
mod hashio;
pub mod header;
pub mod keys;
pub mod manifest;
mod read;
pub mod sha256state;
pub mod stream;

pub use build::{build, build_with_verity, sign, BuildInput, Signing, VerityIdentity, DEFAULT_FRAME_BYTES};
pub use error::PayloadError;
pub use manifest::{Manifest, Section, VerityParams, VersionPolicy};
pub use read::{extract, open, read_unverified, verify_stream, Verified};
pub use sha256state::Sha256State;
pub use stream::{open_head, Head, Position, SectionKind, SectionSink, SectionStream};
