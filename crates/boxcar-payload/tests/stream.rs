//! The push-based, resumable verifier: same acceptance as the pulling
//! reader, output identical for any chunking, resumable from every frame
//! boundary through a JSON round trip of the position, and refusing
//! positions that do not fit the payload.

use boxcar_payload::{
    build, keys, open_head, BuildInput, PayloadError, Position, SectionKind, SectionSink, SectionStream, Signing,
    VersionPolicy,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[derive(Default)]
struct MemSink(HashMap<SectionKind, Vec<u8>>);

impl SectionSink for MemSink {
    fn write_at(&mut self, section: SectionKind, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let v = self.0.entry(section).or_default();
        let end = offset as usize + data.len();
        if v.len() < end {
            v.resize(end, 0);
        }
        v[offset as usize..end].copy_from_slice(data);
        Ok(())
    }
}

struct Built {
    _dir: tempfile::TempDir,
    bytes: Vec<u8>,
    usr: Vec<u8>,
    uki: Vec<u8>,
    key: keys::PublicKey,
}

fn built(frame_bytes: u64) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut usr = pseudo_random(40 * 4096, 7);
    usr.resize(100 * 4096, 0);
    let uki = pseudo_random(30_000, 9);
    std::fs::write(d.join("usr"), &usr).unwrap();
    std::fs::write(d.join("uki"), &uki).unwrap();
    let key = keys::generate().unwrap();
    let input = BuildInput {
        version: "2.0.0",
        usr: &d.join("usr"),
        uki: &d.join("uki"),
        level: 3,
        frame_bytes,
    };
    build(&input, &d.join("p"), Signing::With(&key)).unwrap();
    Built {
        bytes: std::fs::read(d.join("p")).unwrap(),
        _dir: dir,
        usr,
        uki,
        key: key.verifying_key(),
    }
}

#[test]
fn any_chunking_gives_the_same_verified_output() {
    let b = built(32 * 1024);
    let head = open_head(&b.bytes[..], &b.key, &VersionPolicy::Any).unwrap();
    let whole_sha = hex::encode(Sha256::digest(&b.bytes));
    for chunk in [1usize, 7, 4096, 65_536, usize::MAX] {
        let mut s = SectionStream::start(&head).unwrap();
        let mut sink = MemSink::default();
        let body = &b.bytes[head.body_offset() as usize..];
        for piece in body.chunks(chunk.min(body.len())) {
            s.feed(piece, &mut sink).unwrap();
        }
        assert_eq!(s.finish().unwrap(), whole_sha, "chunk {chunk}");
        assert_eq!(sink.0[&SectionKind::Usr], b.usr);
        assert_eq!(sink.0[&SectionKind::Uki], b.uki);
    }
}

#[test]
fn resumes_from_every_boundary() {
    let b = built(16 * 1024);
    let head = open_head(&b.bytes[..], &b.key, &VersionPolicy::Any).unwrap();
    // Collect the boundaries a first pass crosses, feeding 1000-byte pieces.
    let mut s = SectionStream::start(&head).unwrap();
    let mut sink = MemSink::default();
    let mut boundaries: Vec<Position> = Vec::new();
    let body = &b.bytes[head.body_offset() as usize..];
    for piece in body.chunks(1000) {
        s.feed(piece, &mut sink).unwrap();
        if boundaries.last() != Some(s.boundary()) {
            boundaries.push(s.boundary().clone());
        }
    }
    s.finish().unwrap();
    // More than one boundary inside usr: the section really is multi-frame.
    assert!(boundaries.iter().filter(|p| p.section == 0 && p.compressed > 0).count() >= 3);
    for p in &boundaries {
        let json = serde_json::to_string(p).unwrap();
        let p: Position = serde_json::from_str(&json).unwrap();
        let from = p.payload_offset(&head.manifest, head.body_offset()) as usize;
        let mut sink = MemSink::default();
        let mut r = SectionStream::resume(&head, p).unwrap();
        assert_eq!(r.offset() as usize, from);
        r.feed(&b.bytes[from..], &mut sink).unwrap();
        assert_eq!(r.finish().unwrap(), hex::encode(Sha256::digest(&b.bytes)));
    }
}

#[test]
fn corrupt_or_foreign_positions_are_refused() {
    let b = built(16 * 1024);
    let head = open_head(&b.bytes[..], &b.key, &VersionPolicy::Any).unwrap();
    let mut p = Position::start(&head);
    p.compressed = 5; // hashes do not cover 5 bytes
    assert!(matches!(
        SectionStream::resume(&head, p),
        Err(PayloadError::BadCheckpoint(_))
    ));
    let mut p = Position::start(&head);
    p.section = 9;
    assert!(matches!(
        SectionStream::resume(&head, p),
        Err(PayloadError::BadCheckpoint(_))
    ));
}

#[test]
fn flipped_and_truncated_streams_are_refused() {
    let b = built(16 * 1024);
    let head = open_head(&b.bytes[..], &b.key, &VersionPolicy::Any).unwrap();
    let body = head.body_offset() as usize;
    for at in [body + 3, body + 20_000, b.bytes.len() - 10] {
        let mut bad = b.bytes.clone();
        bad[at] ^= 0x10;
        let mut s = SectionStream::start(&head).unwrap();
        let r = s
            .feed(&bad[body..], &mut MemSink::default())
            .and_then(|_| s.finish().map(|_| ()));
        assert!(r.is_err(), "flip at {at} accepted");
    }
    let mut s = SectionStream::start(&head).unwrap();
    s.feed(&b.bytes[body..b.bytes.len() - 1], &mut MemSink::default())
        .unwrap();
    assert!(matches!(s.finish(), Err(PayloadError::Truncated(_))));
    let mut s = SectionStream::start(&head).unwrap();
    let mut extra = b.bytes[body..].to_vec();
    extra.push(0);
    assert!(matches!(
        s.feed(&extra, &mut MemSink::default()),
        Err(PayloadError::TrailingData)
    ));
}
