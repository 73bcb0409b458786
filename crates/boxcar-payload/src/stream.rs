//! Push-based, resumable verification of a payload's sections (node side).
//!
//! [`crate::open`] pulls from one `Read` from start to end; a download that
//! breaks in the middle would have to start over. Here the caller pushes
//! the bytes it receives ([`SectionStream::feed`]) and the stream remembers
//! the last zstd frame boundary it crossed as a [`Position`]: offsets plus
//! the saved states of the three running hashes (whole file, section
//! compressed, section decompressed). A caller that made the output up to a
//! position durable can store it and later [`SectionStream::resume`] from
//! it, asking the server for the bytes from [`Position::payload_offset`] on.
//!
//! Trust is the same as in the pulling reader: the head (header and
//! manifest) is signature-checked first ([`open_head`]), every section's
//! sizes and digests are compared when its last byte arrives, and the
//! caller must make nothing bootable before [`SectionStream::finish`].

use crate::header::{signed_message, Header, SigAlg, HEADER_LEN};
use crate::manifest::{Manifest, Section, VersionPolicy, SECTIONS};
use crate::sha256state::Sha256State;
use crate::PayloadError;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::io::{self, Read};
use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};

/// The three sections, in payload order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SectionKind {
    Usr,
    Verity,
    Uki,
}

impl SectionKind {
    /// Payload order.
    pub const ALL: [SectionKind; 3] = [SectionKind::Usr, SectionKind::Verity, SectionKind::Uki];

    /// Name as in the manifest and in error messages.
    pub fn name(self) -> &'static str {
        SECTIONS[self as usize]
    }

    /// The manifest entry for this section.
    pub fn of(self, m: &Manifest) -> &Section {
        match self {
            SectionKind::Usr => &m.usr,
            SectionKind::Verity => &m.verity,
            SectionKind::Uki => &m.uki,
        }
    }
}

/// Where decompressed section bytes go: positional, so a resumed stream
/// simply rewrites from the checkpoint's offset.
pub trait SectionSink {
    /// Writes `data` at decompressed `offset` of `section`.
    fn write_at(&mut self, section: SectionKind, offset: u64, data: &[u8]) -> io::Result<()>;
}

/// The signature-checked head of a payload: fixed header and manifest.
#[derive(Debug, Clone)]
pub struct Head {
    pub manifest: Manifest,
    /// The header and manifest bytes exactly as received (start of the file).
    pub bytes: Vec<u8>,
    /// sha256 of the manifest bytes, hex: identifies the payload in a journal.
    pub manifest_sha256: String,
}

impl Head {
    /// Offset of the first section byte in the payload file.
    pub fn body_offset(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// `read_exact` that reports a short stream as a truncated payload.
pub(crate) fn read_exact_or_truncated(r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<(), PayloadError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            PayloadError::Truncated(format!("{what} cut short"))
        } else {
            PayloadError::Stream(e)
        }
    })
}

/// Reads header and manifest from `r`, verifies the signature with `key`
/// (unsigned payloads are refused) and applies the version policy; reads
/// nothing beyond the manifest.
pub fn open_head(mut r: impl Read, key: &VerifyingKey, policy: &VersionPolicy) -> Result<Head, PayloadError> {
    let mut hb = [0u8; HEADER_LEN];
    read_exact_or_truncated(&mut r, &mut hb, "header")?;
    let header = Header::decode(&hb)?;
    if header.alg == SigAlg::None {
        return Err(PayloadError::MissingSignature);
    }
    let mut mb = vec![0u8; header.manifest_len as usize];
    read_exact_or_truncated(&mut r, &mut mb, "manifest")?;
    let sig = Signature::from_bytes(&header.signature);
    key.verify_strict(&signed_message(header.format, &mb), &sig)
        .map_err(|_| PayloadError::BadSignature)?;
    let manifest = Manifest::parse(&mb)?;
    policy.check(&manifest.version)?;
    let mut s = Sha256State::new();
    s.update(&mb);
    let mut bytes = hb.to_vec();
    bytes.extend_from_slice(&mb);
    Ok(Head {
        manifest,
        bytes,
        manifest_sha256: s.finalize_hex(),
    })
}

/// A resumable point in the stream: always at a zstd frame boundary (or a
/// section boundary), where decompression can restart with a fresh decoder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Index of the current section (0 usr, 1 verity, 2 uki; 3 = all done).
    pub section: usize,
    /// Compressed bytes of the current section consumed.
    pub compressed: u64,
    /// Decompressed bytes of the current section produced.
    pub decompressed: u64,
    /// sha256 of every payload byte before this point (header included).
    pub file_hash: Sha256State,
    /// sha256 of the current section's compressed bytes so far.
    pub compressed_hash: Sha256State,
    /// sha256 of the current section's decompressed bytes so far.
    pub decompressed_hash: Sha256State,
}

impl Position {
    /// The start of the first section, after `head`.
    pub fn start(head: &Head) -> Position {
        let mut file_hash = Sha256State::new();
        file_hash.update(&head.bytes);
        Position {
            section: 0,
            compressed: 0,
            decompressed: 0,
            file_hash,
            compressed_hash: Sha256State::new(),
            decompressed_hash: Sha256State::new(),
        }
    }

    /// Offset in the payload file of the next byte to feed.
    pub fn payload_offset(&self, m: &Manifest, body_offset: u64) -> u64 {
        let before: u64 = SectionKind::ALL[..self.section.min(3)]
            .iter()
            .map(|k| k.of(m).compressed_size)
            .sum();
        body_offset + before + self.compressed
    }

    /// The section this position is in, if any is left.
    pub fn kind(&self) -> Option<SectionKind> {
        SectionKind::ALL.get(self.section).copied()
    }

    /// Decompressed bytes of all sections written before this point.
    pub fn decompressed_total(&self, m: &Manifest) -> u64 {
        let before: u64 = SectionKind::ALL[..self.section.min(3)]
            .iter()
            .map(|k| k.of(m).size)
            .sum();
        before + self.decompressed
    }

    /// Checks a stored position against the manifest it claims to belong to.
    fn check(&self, m: &Manifest, body_offset: u64) -> Result<(), PayloadError> {
        let bad = |why: &str| Err(PayloadError::BadCheckpoint(why.to_string()));
        if self.section > 3 {
            return bad("section index out of range");
        }
        if let Some(k) = self.kind() {
            let s = k.of(m);
            if self.compressed > s.compressed_size || self.decompressed > s.size {
                return bad("offsets beyond the section");
            }
        } else if self.compressed != 0 || self.decompressed != 0 {
            return bad("offsets after the last section");
        }
        let states = [&self.file_hash, &self.compressed_hash, &self.decompressed_hash];
        if states.iter().any(|s| !s.is_consistent()) {
            return bad("inconsistent hash state");
        }
        if self.compressed_hash.len() != self.compressed
            || self.decompressed_hash.len() != self.decompressed
            || self.file_hash.len() != self.payload_offset(m, body_offset)
        {
            return bad("hash lengths do not match the offsets");
        }
        Ok(())
    }
}

const OUT_CHUNK: usize = 256 * 1024;

/// Verifies sections pushed into it and writes them to a [`SectionSink`].
pub struct SectionStream {
    manifest: Manifest,
    body_offset: u64,
    /// Live position (may be inside a frame).
    pos: Position,
    /// Last frame or section boundary crossed.
    boundary: Position,
    decoder: Decoder<'static>,
    /// Whether the decoder is inside a frame.
    in_frame: bool,
    out: Vec<u8>,
}

fn decoder(kind: SectionKind) -> Result<Decoder<'static>, PayloadError> {
    Decoder::new().map_err(|source| PayloadError::Decompress {
        section: kind.name(),
        source,
    })
}

impl SectionStream {
    /// A stream positioned at the first section of the payload with `head`.
    pub fn start(head: &Head) -> Result<SectionStream, PayloadError> {
        Self::resume(head, Position::start(head))
    }

    /// A stream continuing from a stored position of the same payload.
    pub fn resume(head: &Head, pos: Position) -> Result<SectionStream, PayloadError> {
        pos.check(&head.manifest, head.body_offset())?;
        let mut s = SectionStream {
            manifest: head.manifest.clone(),
            body_offset: head.body_offset(),
            boundary: pos.clone(),
            pos,
            decoder: decoder(SectionKind::Usr)?,
            in_frame: false,
            out: vec![0u8; OUT_CHUNK],
        };
        s.settle()?;
        Ok(s)
    }

    /// Offset in the payload file of the next byte expected.
    pub fn offset(&self) -> u64 {
        self.pos.payload_offset(&self.manifest, self.body_offset)
    }

    /// The last boundary crossed: where a resumed stream can start.
    pub fn boundary(&self) -> &Position {
        &self.boundary
    }

    /// Compressed bytes left in the current section (`None` when done).
    /// Callers that checkpoint feed at most this much at a time, so every
    /// section boundary is seen as a boundary.
    pub fn section_remaining(&self) -> Option<u64> {
        let kind = self.pos.kind()?;
        Some(kind.of(&self.manifest).compressed_size - self.pos.compressed)
    }

    /// Whether every section has been received and checked.
    pub fn is_complete(&self) -> bool {
        self.pos.section >= 3
    }

    /// The signed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Consumes `data` (the payload bytes at [`offset`](Self::offset)),
    /// writing decompressed bytes to `sink` and checking each section when
    /// its last byte arrives.
    pub fn feed(&mut self, mut data: &[u8], sink: &mut dyn SectionSink) -> Result<(), PayloadError> {
        while !data.is_empty() {
            let n = self.feed_to_boundary(data, sink)?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Like [`feed`](Self::feed) but stops right after the next frame or
    /// section boundary; returns how many bytes of `data` were consumed.
    /// A caller that checkpoints calls this in a loop and looks at
    /// [`boundary`](Self::boundary) after each call, so it sees every
    /// boundary, however large its buffers are.
    pub fn feed_to_boundary(&mut self, data: &[u8], sink: &mut dyn SectionSink) -> Result<usize, PayloadError> {
        if data.is_empty() {
            return Ok(0);
        }
        let Some(kind) = self.pos.kind() else {
            return Err(PayloadError::TrailingData);
        };
        let section = kind.of(&self.manifest).clone();
        let take = ((section.compressed_size - self.pos.compressed) as usize).min(data.len());
        let n = self.decompress(kind, &section, &data[..take], sink)?;
        self.settle()?;
        Ok(n)
    }

    /// Decompresses from `chunk` until it is used up or a frame ends;
    /// returns the bytes consumed.
    fn decompress(
        &mut self,
        kind: SectionKind,
        section: &Section,
        chunk: &[u8],
        sink: &mut dyn SectionSink,
    ) -> Result<usize, PayloadError> {
        let zerr = |source| PayloadError::Decompress {
            section: kind.name(),
            source,
        };
        let mut input = InBuffer::around(chunk);
        loop {
            let before = input.pos();
            let mut output = OutBuffer::around(&mut self.out[..]);
            let hint = self.decoder.run(&mut input, &mut output).map_err(zerr)?;
            let produced = output.pos();
            let full = produced == OUT_CHUNK;
            let consumed = &chunk[before..input.pos()];
            self.pos.file_hash.update(consumed);
            self.pos.compressed_hash.update(consumed);
            self.pos.compressed += consumed.len() as u64;
            if produced > 0 {
                if self.pos.decompressed + produced as u64 > section.size {
                    return Err(PayloadError::Oversized {
                        section: kind.name(),
                        limit: section.size,
                    });
                }
                let bytes = &self.out[..produced];
                self.pos.decompressed_hash.update(bytes);
                sink.write_at(kind, self.pos.decompressed, bytes)
                    .map_err(|source| PayloadError::Sink {
                        section: kind.name(),
                        source,
                    })?;
                self.pos.decompressed += produced as u64;
            }
            if hint == 0 {
                // A frame ended and is fully flushed: a restart point.
                self.in_frame = false;
                self.boundary = self.pos.clone();
                return Ok(input.pos());
            }
            self.in_frame = true;
            if input.pos() == chunk.len() && !full {
                return Ok(input.pos());
            }
            if input.pos() == before && produced == 0 {
                return Err(zerr(io::Error::other("decoder made no progress")));
            }
        }
    }

    /// Closes finished sections (checking them) and skips empty ones.
    fn settle(&mut self) -> Result<(), PayloadError> {
        while let Some(kind) = self.pos.kind() {
            let s = kind.of(&self.manifest).clone();
            if self.pos.compressed < s.compressed_size {
                return Ok(());
            }
            if self.in_frame {
                return Err(PayloadError::Truncated(format!(
                    "section {} ends inside a zstd frame",
                    kind.name()
                )));
            }
            check_section(kind, &s, &self.pos)?;
            self.pos.section += 1;
            self.pos.compressed = 0;
            self.pos.decompressed = 0;
            self.pos.compressed_hash = Sha256State::new();
            self.pos.decompressed_hash = Sha256State::new();
            self.decoder = decoder(kind)?;
            self.boundary = self.pos.clone();
            tracing::debug!(section = kind.name(), "section verified");
        }
        Ok(())
    }

    /// Checks that every section arrived; returns the sha256 of the whole
    /// payload file (hex) for comparison with the server's announcement.
    pub fn finish(&self) -> Result<String, PayloadError> {
        if let Some(kind) = self.pos.kind() {
            let s = kind.of(&self.manifest);
            return Err(PayloadError::Truncated(format!(
                "payload ended in section {} after {} of {} compressed bytes",
                kind.name(),
                self.pos.compressed,
                s.compressed_size
            )));
        }
        Ok(self.pos.file_hash.finalize_hex())
    }
}

fn check_section(kind: SectionKind, s: &Section, pos: &Position) -> Result<(), PayloadError> {
    let mismatch = |what: &'static str, expected: String, actual: String| PayloadError::DigestMismatch {
        section: kind.name(),
        what,
        expected,
        actual,
    };
    let csha = pos.compressed_hash.finalize_hex();
    if csha != s.compressed_sha256 {
        return Err(mismatch("compressed sha256", s.compressed_sha256.clone(), csha));
    }
    if pos.decompressed != s.size {
        return Err(mismatch("size", s.size.to_string(), pos.decompressed.to_string()));
    }
    let sha = pos.decompressed_hash.finalize_hex();
    if sha != s.sha256 {
        return Err(mismatch("sha256", s.sha256.clone(), sha));
    }
    Ok(())
}
