//! Fuzzes the resumable section verifier the agent streams downloads
//! through: arbitrary section bytes behind a genuinely signed head, fed in
//! arbitrary pieces, with a resume from the last boundary (through the
//! position's JSON form). Nothing may panic; output stays within the
//! declared section sizes.
#![no_main]
use boxcar_payload::{keys, open_head, BuildInput, Head, Position, SectionKind, SectionSink, SectionStream, Signing, VersionPolicy};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Bounded(Head);

impl SectionSink for Bounded {
    fn write_at(&mut self, section: SectionKind, offset: u64, data: &[u8]) -> std::io::Result<()> {
        assert!(offset + data.len() as u64 <= section.of(&self.0.manifest).size);
        Ok(())
    }
}

/// A small signed payload built once; its head is reused for every input.
fn head() -> &'static Head {
    static HEAD: OnceLock<Head> = OnceLock::new();
    HEAD.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("boxcar-fuzz-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("usr"), vec![0x61u8; 3 * 4096]).unwrap();
        std::fs::write(dir.join("uki"), b"uki bytes").unwrap();
        let key = keys::PrivateKey::from_bytes(&[7u8; 32]);
        let input = BuildInput {
            version: "1.0",
            usr: &dir.join("usr"),
            uki: &dir.join("uki"),
            level: 3,
            frame_bytes: 4096,
        };
        boxcar_payload::build(&input, &dir.join("p"), Signing::With(&key)).unwrap();
        let bytes = std::fs::read(dir.join("p")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        open_head(&bytes[..], &key.verifying_key(), &VersionPolicy::Any).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, body)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let head = head();
    let mut sink = Bounded(head.clone());
    let mut s = SectionStream::start(head).unwrap();
    let mut fed = 0;
    for piece in body.chunks(step) {
        if s.feed(piece, &mut sink).is_err() {
            break;
        }
        fed += piece.len();
    }
    let _ = s.finish();
    // Resume from the last boundary and feed the rest again.
    let json = serde_json::to_string(s.boundary()).unwrap();
    let p: Position = serde_json::from_str(&json).unwrap();
    let from = p.payload_offset(&head.manifest, head.body_offset()) - head.body_offset();
    if let Ok(mut r) = SectionStream::resume(head, p) {
        let end = fed.min(body.len());
        if (from as usize) <= end {
            let _ = r.feed(&body[from as usize..end], &mut sink);
        }
    }
});
