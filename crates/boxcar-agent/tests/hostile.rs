//! Hostile payloads and servers at the engine level (17 cases). One engine instance
//! meets each of them in turn; every attempt must fail with the right
//! update_engine code and a message naming the step, leave only the
//! installed version bootable, and a good staging must still work at the
//! end (the engine keeps working).

mod support;

use boxcar_agent::{Offer, SlotStager, StageFailure, Stager};
use boxcar_payload::header::HEADER_LEN;
use boxcar_payload::{keys, Signing};
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use support::*;

fn offer_for(server: &Server, served: &[u8], version: &str) -> Offer {
    Offer {
        version: version.into(),
        url: server.url.clone(),
        size: served.len() as u64,
        sha256: Some(sha256_hex(served)),
    }
}

/// Re-signs `payload` after `edit` changed its manifest text (same length).
fn resign(w: &World, payload: &[u8], edit: impl Fn(&str) -> String) -> Vec<u8> {
    let mlen = u32::from_le_bytes(payload[80..84].try_into().unwrap()) as usize;
    let manifest = std::str::from_utf8(&payload[HEADER_LEN..HEADER_LEN + mlen]).unwrap();
    let edited = edit(manifest);
    assert_eq!(edited.len(), mlen, "edit must keep the manifest length");
    assert_ne!(edited, manifest, "edit changed nothing");
    let mut out = payload.to_vec();
    out[HEADER_LEN..HEADER_LEN + mlen].copy_from_slice(edited.as_bytes());
    let p = w.dir.path().join("resigned.bxp");
    std::fs::write(&p, &out).unwrap();
    boxcar_payload::sign(&p, &w.key).unwrap();
    std::fs::read(&p).unwrap()
}

/// Makes the offer for what the server serves.
type OfferFn = dyn Fn(&Server, &[u8]) -> Offer;

struct Case {
    name: &'static str,
    served: Vec<u8>,
    mode: Mode,
    offer: Box<OfferFn>,
    code: u32,
    says: &'static str,
}

#[test]
fn hostile_payloads_and_servers_are_refused_and_the_engine_keeps_working() {
    let w = World::new();
    let mut config = w.config();
    config.tuning.read_timeout = Duration::from_secs(2);
    let stager = SlotStager::new(config);
    let usr = usr_image(1200, 71);
    let uki = usr_image(6, 72);
    let (good, m) = w.payload(V2, &usr, &uki, None);
    let body = HEADER_LEN + u32::from_le_bytes(good[80..84].try_into().unwrap()) as usize;
    let flip = |at: usize| {
        let mut b = good.clone();
        b[at] ^= 0x04;
        b
    };
    let honest = |s: &Server, served: &[u8]| offer_for(s, served, V2);
    let other_key = keys::generate().unwrap();
    let (wrong_key, _) = w.payload(V2, &usr, &uki, Some(Signing::With(&other_key)));
    let (unsigned, _) = w.payload(V2, &usr, &uki, Some(Signing::Unsigned));
    let (older, _) = w.payload("0.9.0", &usr, &uki, None);
    let (too_big, _) = w.payload(V2, &usr_image(2300, 73), &uki, None);
    let lying_digest = resign(&w, &good, |t| t.replacen(&m.usr.sha256, &"0".repeat(64), 1));
    let mut huge = good.clone();
    huge.extend(std::iter::repeat_n(0x5a, 8 << 20));
    let cases = vec![
        Case {
            name: "bit flip in usr",
            served: flip(body + 1000),
            mode: Mode::Honest,
            offer: Box::new(honest),
            code: 12,
            says: "usr",
        },
        Case {
            name: "bit flip near the end (uki)",
            served: flip(good.len() - 20),
            mode: Mode::Honest,
            offer: Box::new(honest),
            code: 12,
            says: "uki",
        },
        Case {
            name: "bit flip in the manifest",
            served: flip(HEADER_LEN + 10),
            mode: Mode::Honest,
            offer: Box::new(honest),
            code: 18,
            says: "signature",
        },
        Case {
            name: "bit flip in the signature",
            served: flip(20),
            mode: Mode::Honest,
            offer: Box::new(honest),
            code: 18,
            says: "signature",
        },
        Case {
            name: "truncated file, announced as such",
            served: good[..good.len() - 5000].to_vec(),
            mode: Mode::Honest,
            offer: Box::new(honest),
            code: 12,
            says: "truncated",
        },
        Case {
            name: "connection closed early",
            served: good[..good.len() / 2].to_vec(),
            mode: Mode::NoLength,
            offer: Box::new(|s: &Server, _: &[u8]| offer_for(s, &good_clone(), V2)),
            code: 9,
            says: "connection closed",
        },
        Case {
            name: "wrong key",
            served: wrong_key,
            mode: Mode::Honest,
            offer: Box::new(honest),
            code: 18,
            says: "signature does not verify",
        },
        Case {
            name: "missing signature",
            served: unsigned,
            mode: Mode::Honest,
            offer: Box::new(honest),
            code: 18,
            says: "not signed",
        },
        Case {
            name: "digest mismatch under a valid signature",
            served: lying_digest,
            mode: Mode::Honest,
            offer: Box::new(honest),
            code: 12,
            says: "section usr: sha256 mismatch",
        },
        Case {
            name: "whole-file sha256 differs from the offer",
            served: good.clone(),
            mode: Mode::Honest,
            offer: Box::new(|s: &Server, served: &[u8]| Offer {
                sha256: Some("ab".repeat(32)),
                ..offer_for(s, served, V2)
            }),
            code: 10,
            says: "the offer announced",
        },
        Case {
            name: "downgrade offered",
            served: older.clone(),
            mode: Mode::Honest,
            offer: Box::new(|s: &Server, served: &[u8]| offer_for(s, served, "0.9.0")),
            code: 34,
            says: "downgrade refused",
        },
        Case {
            name: "downgrade inside a payload offered as newer",
            served: older,
            mode: Mode::Honest,
            offer: Box::new(honest),
            code: 12,
            says: "downgrade refused",
        },
        Case {
            name: "huge file behind the URL (Content-Length)",
            served: huge.clone(),
            mode: Mode::Honest,
            offer: Box::new(|s: &Server, _: &[u8]| offer_for(s, &good_clone(), V2)),
            code: 11,
            says: "the update offer announced",
        },
        Case {
            name: "huge file behind the URL (no Content-Length)",
            served: huge,
            mode: Mode::NoLength,
            offer: Box::new(|s: &Server, _: &[u8]| offer_for(s, &good_clone(), V2)),
            code: 11,
            says: "more than the",
        },
        Case {
            name: "server stalls",
            served: good.clone(),
            mode: Mode::StallAfter(300_000),
            offer: Box::new(honest),
            code: 9,
            says: "downloading",
        },
        Case {
            name: "HTTP 404",
            served: good.clone(),
            mode: Mode::Status(404),
            offer: Box::new(honest),
            code: 2404,
            says: "HTTP status 404",
        },
        Case {
            name: "usr image larger than the partition",
            served: too_big,
            mode: Mode::Honest,
            offer: Box::new(honest),
            code: 14,
            says: "does not fit partition USR-B",
        },
    ];
    GOOD.with(|g| *g.borrow_mut() = good.clone());
    let server = Server::start(Vec::new(), Mode::Honest);
    for c in &cases {
        server.set(c.served.clone(), c.mode);
        let offer = (c.offer)(&server, &c.served);
        let r = stager.stage(&offer, &mut |_| {}, &AtomicBool::new(false));
        let StageFailure { code, message } = match r {
            Ok(s) => panic!("{}: accepted: {s:?}", c.name),
            Err(e) => e,
        };
        assert_eq!(code.0, c.code, "{}: {message}", c.name);
        assert!(
            message.contains(c.says),
            "{}: message {message:?} lacks {:?}",
            c.name,
            c.says
        );
        w.assert_only_v1_bootable();
        assert_eq!(stager.boot_status().unwrap().pending, None, "{}", c.name);
    }
    // The same engine then stages a good payload (resuming the checkpoints
    // the stalled and cut-off transfers of these very bytes left).
    server.set(good.clone(), Mode::Honest);
    stager
        .stage(&offer_for(&server, &good, V2), &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    w.assert_staged(&m, &usr, &uki);
}

thread_local! {
    static GOOD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The good payload (for offers that announce it while something else is served).
fn good_clone() -> Vec<u8> {
    GOOD.with(|g| g.borrow().clone())
}

#[test]
fn a_corrupted_download_is_not_resumed_from_its_checkpoints() {
    let w = World::new();
    let stager = SlotStager::new(w.config());
    let usr = usr_image(1800, 81);
    let uki = usr_image(3, 82);
    let (good, m) = w.payload(V2, &usr, &uki, None);
    let body = HEADER_LEN + u32::from_le_bytes(good[80..84].try_into().unwrap()) as usize;
    // A flip in the middle of usr, served under the good payload's identity:
    // checkpoints before and after the flip are written, then usr fails.
    let mut bad = good.clone();
    bad[body + m.usr.compressed_size as usize / 2] ^= 0x01;
    let server = Server::start(bad, Mode::Honest);
    let e = stager
        .stage(&offer_for(&server, &good, V2), &mut |_| {}, &AtomicBool::new(false))
        .unwrap_err();
    assert_eq!(e.code.0, 12, "{}", e.message);
    w.assert_only_v1_bootable();
    // The server is fixed: the next attempt must not reuse hash states
    // that covered the flipped byte.
    server.set(good.clone(), Mode::Honest);
    stager
        .stage(&offer_for(&server, &good, V2), &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    w.assert_staged(&m, &usr, &uki);
}
