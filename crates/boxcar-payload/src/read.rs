//! Streaming verification (node side). The signature over the manifest is
//! checked before anything else is trusted; then each section streams
//! through the hasher of its compressed bytes, zstd, and the hasher of its
//! decompressed bytes into the caller's sink. A section is only good once
//! [`Verified::copy_next`] returned `Ok`; the caller must not make anything
//! it wrote bootable before [`Verified::finish`] returned `Ok`.

use crate::hashio::HashingReader;
use crate::header::{Header, HEADER_LEN};
use crate::manifest::{Manifest, Section, VersionPolicy};
use crate::stream::read_exact_or_truncated;
use crate::PayloadError;
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};
use std::io::{self, BufReader, Read, Write};

/// A payload whose signature and manifest have been checked; its sections
/// are still to be streamed and checked.
pub struct Verified<R> {
    manifest: Manifest,
    inner: R,
    next: usize,
}

/// Reads header and manifest without checking the signature: for
/// `boxcar payload inspect` only. Never use the result to install anything.
pub fn read_unverified(mut r: impl Read) -> Result<(Header, Manifest), PayloadError> {
    let mut hb = [0u8; HEADER_LEN];
    read_exact_or_truncated(&mut r, &mut hb, "header")?;
    let header = Header::decode(&hb)?;
    let mut mb = vec![0u8; header.manifest_len as usize];
    read_exact_or_truncated(&mut r, &mut mb, "manifest")?;
    Ok((header, Manifest::parse(&mb)?))
}

/// Reads the header and manifest, verifies the signature with `key` (an
/// unsigned payload is refused) and applies the version policy.
pub fn open<R: Read>(mut r: R, key: &VerifyingKey, policy: &VersionPolicy) -> Result<Verified<R>, PayloadError> {
    let head = crate::stream::open_head(&mut r, key, policy)?;
    tracing::debug!(version = %head.manifest.version, "payload signature verified");
    Ok(Verified {
        manifest: head.manifest,
        inner: r,
        next: 0,
    })
}

const CHUNK: usize = 256 * 1024;

impl<R: Read> Verified<R> {
    /// The signed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Name of the section [`copy_next`](Self::copy_next) will stream, if any.
    pub fn next_section(&self) -> Option<&'static str> {
        crate::manifest::SECTIONS.get(self.next).copied()
    }

    /// Streams the next section (usr, verity, uki in that order) into
    /// `sink`, checking its compressed and decompressed size and digests.
    pub fn copy_next(&mut self, sink: &mut dyn Write) -> Result<&'static str, PayloadError> {
        let Some(name) = self.next_section() else {
            return Err(PayloadError::BadManifest("no sections left".into()));
        };
        let section: Section = self.manifest.sections()[self.next].1.clone();
        self.next += 1;
        copy_section(&mut self.inner, name, &section, sink)?;
        Ok(name)
    }

    /// Checks that every section was consumed and nothing follows them.
    pub fn finish(mut self) -> Result<Manifest, PayloadError> {
        if self.next < 3 {
            return Err(PayloadError::BadManifest("not every section was read".into()));
        }
        let mut probe = [0u8; 1];
        match self.inner.read(&mut probe) {
            Ok(0) => Ok(self.manifest),
            Ok(_) => Err(PayloadError::TrailingData),
            Err(e) => Err(PayloadError::Stream(e)),
        }
    }
}

fn copy_section(
    inner: &mut impl Read,
    name: &'static str,
    s: &Section,
    sink: &mut dyn Write,
) -> Result<(), PayloadError> {
    let counted = HashingReader::new(inner.take(s.compressed_size));
    let mut dec = zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(CHUNK, counted))
        .map_err(|source| PayloadError::Decompress { section: name, source })?;
    let mut out_hash = Sha256::new();
    let mut out_len: u64 = 0;
    let mut buf = vec![0u8; CHUNK];
    let decoded: io::Result<()> = loop {
        match dec.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                out_len += n as u64;
                if out_len > s.size {
                    return Err(PayloadError::Oversized {
                        section: name,
                        limit: s.size,
                    });
                }
                out_hash.update(&buf[..n]);
                sink.write_all(&buf[..n])
                    .map_err(|source| PayloadError::Sink { section: name, source })?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
    };
    // Drain what zstd did not consume so every compressed byte is hashed.
    let mut rest = dec.finish();
    io::copy(&mut rest, &mut io::sink()).map_err(PayloadError::Stream)?;
    let counted = rest.into_inner();
    if counted.count < s.compressed_size {
        return Err(PayloadError::Truncated(format!(
            "section {name}: {} of {} compressed bytes",
            counted.count, s.compressed_size
        )));
    }
    let compressed_sha = hex::encode(counted.hasher.finalize());
    if compressed_sha != s.compressed_sha256 {
        return Err(PayloadError::DigestMismatch {
            section: name,
            what: "compressed sha256",
            expected: s.compressed_sha256.clone(),
            actual: compressed_sha,
        });
    }
    decoded.map_err(|source| PayloadError::Decompress { section: name, source })?;
    if out_len != s.size {
        return Err(PayloadError::DigestMismatch {
            section: name,
            what: "size",
            expected: s.size.to_string(),
            actual: out_len.to_string(),
        });
    }
    let sha = hex::encode(out_hash.finalize());
    if sha != s.sha256 {
        return Err(PayloadError::DigestMismatch {
            section: name,
            what: "sha256",
            expected: s.sha256.clone(),
            actual: sha,
        });
    }
    sink.flush()
        .map_err(|source| PayloadError::Sink { section: name, source })
}

/// Verifies a whole payload stream without keeping its contents.
pub fn verify_stream(r: impl Read, key: &VerifyingKey, policy: &VersionPolicy) -> Result<Manifest, PayloadError> {
    let mut v = open(r, key, policy)?;
    while v.next_section().is_some() {
        v.copy_next(&mut io::sink())?;
    }
    v.finish()
}

/// Verifies and unpacks a payload into `dir` (`usr.img`, `verity.img`,
/// `uki.efi`), then checks the unpacked /usr against its verity tree and
/// the signed root hash, as the agent does after writing a slot.
pub fn extract(
    r: impl Read,
    key: &VerifyingKey,
    policy: &VersionPolicy,
    dir: &std::path::Path,
) -> Result<Manifest, PayloadError> {
    let mut v = open(r, key, policy)?;
    for file in ["usr.img", "verity.img", "uki.efi"] {
        let path = dir.join(file);
        let f = std::fs::File::create(&path).map_err(|source| PayloadError::Write {
            path: path.clone(),
            source,
        })?;
        let mut w = io::BufWriter::new(f);
        v.copy_next(&mut w)?;
    }
    let m = v.finish()?;
    let root: boxcar_verity::RootHash = m.verity_params.root_hash.parse()?;
    boxcar_verity::verify_files(
        &dir.join("usr.img"),
        &dir.join("verity.img"),
        &root,
        boxcar_verity::Parallelism::Auto,
    )?;
    Ok(m)
}
