//! Payload round trips and hostile payloads: every corruption is refused
//! with a specific error, never accepted and never a panic.

use boxcar_payload::{
    build, extract, keys, open, read_unverified, sign, verify_stream, BuildInput, PayloadError, Signing, VersionPolicy,
};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

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

struct Fixture {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    usr: Vec<u8>,
    uki: Vec<u8>,
    key: keys::PrivateKey,
    payload: PathBuf,
}

fn fixture(version: &str, signing: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    // 140 blocks (two tree levels): half random, half zeros (compressible).
    let mut usr = pseudo_random(70 * 4096, 1);
    usr.resize(140 * 4096, 0);
    let uki = pseudo_random(50_000, 2);
    std::fs::write(d.join("usr.in"), &usr).unwrap();
    std::fs::write(d.join("uki.in"), &uki).unwrap();
    let key = keys::generate().unwrap();
    let payload = d.join("payload.bxp");
    let input = BuildInput {
        version,
        usr: &d.join("usr.in"),
        uki: &d.join("uki.in"),
        level: 3,
        // Several frames per section: the multi-frame format is what nodes read.
        frame_bytes: 64 * 1024,
    };
    let s = if signing {
        Signing::With(&key)
    } else {
        Signing::Unsigned
    };
    build(&input, &payload, s).unwrap();
    Fixture {
        _dir: dir,
        dir: d,
        usr,
        uki,
        key,
        payload,
    }
}

fn verify_bytes(bytes: &[u8], f: &Fixture) -> Result<boxcar_payload::Manifest, PayloadError> {
    verify_stream(bytes, &f.key.verifying_key(), &VersionPolicy::Any)
}

#[test]
fn build_verify_extract_roundtrip_and_veritysetup_agrees() {
    let f = fixture("4800.1.0", true);
    let m = verify_stream(
        std::fs::File::open(&f.payload).unwrap(),
        &f.key.verifying_key(),
        &VersionPolicy::NewerThan("4799.0.0".into()),
    )
    .unwrap();
    assert_eq!(m.version, "4800.1.0");
    assert_eq!(m.usr.size, 140 * 4096);
    assert!(m.usr.compressed_size < m.usr.size);
    let out = f.dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let m2 = extract(
        std::fs::File::open(&f.payload).unwrap(),
        &f.key.verifying_key(),
        &VersionPolicy::Any,
        &out,
    )
    .unwrap();
    assert_eq!(m, m2);
    assert_eq!(std::fs::read(out.join("usr.img")).unwrap(), f.usr);
    assert_eq!(std::fs::read(out.join("uki.efi")).unwrap(), f.uki);
    // The shipped verity tree is valid for veritysetup with the signed root hash.
    let v = Command::new("veritysetup")
        .arg("verify")
        .arg(out.join("usr.img"))
        .arg(out.join("verity.img"))
        .arg(&m.verity_params.root_hash)
        .output()
        .expect("veritysetup installed");
    assert!(v.status.success(), "{v:?}");
}

/// A reader that hands out 1–7 bytes at a time, like a slow network.
struct Dribble<'a>(&'a [u8], usize);
impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.1 = self.1 % 7 + 1;
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn streaming_with_tiny_reads_and_section_by_section() {
    let f = fixture("1.2.3", true);
    let bytes = std::fs::read(&f.payload).unwrap();
    let mut v = open(Dribble(&bytes, 0), &f.key.verifying_key(), &VersionPolicy::Any).unwrap();
    assert_eq!(v.next_section(), Some("usr"));
    let mut usr = Vec::new();
    assert_eq!(v.copy_next(&mut usr).unwrap(), "usr");
    assert_eq!(usr, f.usr);
    v.copy_next(&mut std::io::sink()).unwrap();
    let mut uki = Vec::new();
    assert_eq!(v.copy_next(&mut uki).unwrap(), "uki");
    assert_eq!(uki, f.uki);
    assert_eq!(v.next_section(), None);
    v.finish().unwrap();
}

#[test]
fn every_sampled_bit_flip_is_refused() {
    let f = fixture("2.0.0", true);
    let bytes = std::fs::read(&f.payload).unwrap();
    let mut positions: Vec<usize> = (0..bytes.len()).step_by(bytes.len() / 61 + 1).collect();
    // Signature, manifest length, first and last manifest byte, first and last section byte.
    positions.extend([16, 79, 80, 84, bytes.len() - 1]);
    for pos in positions {
        let mut b = bytes.clone();
        b[pos] ^= 0x04;
        let r = verify_bytes(&b, &f);
        assert!(r.is_err(), "flip at {pos} of {} accepted", bytes.len());
    }
    // A flip inside the usr section is named precisely.
    let (_, m) = read_unverified(&bytes[..]).unwrap();
    let body = bytes.len() - (m.usr.compressed_size + m.verity.compressed_size + m.uki.compressed_size) as usize;
    let mut b = bytes.clone();
    b[body + m.usr.compressed_size as usize / 2] ^= 0x10;
    match verify_bytes(&b, &f).unwrap_err() {
        PayloadError::DigestMismatch { section: "usr", .. } | PayloadError::Decompress { section: "usr", .. } => {}
        e => panic!("unexpected {e}"),
    }
    // A flip in the manifest breaks the signature.
    let mut b = bytes.clone();
    b[100] ^= 0x01;
    assert!(matches!(
        verify_bytes(&b, &f).unwrap_err(),
        PayloadError::BadSignature | PayloadError::BadManifest(_) | PayloadError::ManifestTooLarge(_)
    ));
}

#[test]
fn truncation_and_trailing_data_are_refused() {
    let f = fixture("2.0.0", true);
    let bytes = std::fs::read(&f.payload).unwrap();
    for cut in [0, 10, 84, 200, bytes.len() / 2, bytes.len() - 1] {
        let e = verify_bytes(&bytes[..cut], &f).unwrap_err();
        assert!(matches!(e, PayloadError::Truncated(_)), "cut at {cut}: {e}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        verify_bytes(&longer, &f).unwrap_err(),
        PayloadError::TrailingData
    ));
}

#[test]
fn wrong_key_and_missing_signature_are_refused() {
    let f = fixture("3.0.0", true);
    let bytes = std::fs::read(&f.payload).unwrap();
    let other = keys::generate().unwrap();
    let e = verify_stream(&bytes[..], &other.verifying_key(), &VersionPolicy::Any).unwrap_err();
    assert!(matches!(e, PayloadError::BadSignature), "{e}");

    let u = fixture("3.0.0", false);
    let ubytes = std::fs::read(&u.payload).unwrap();
    assert!(matches!(
        verify_bytes(&ubytes, &u).unwrap_err(),
        PayloadError::MissingSignature
    ));
    // Signing afterwards makes it valid; only the 84-byte header changed.
    sign(&u.payload, &u.key).unwrap();
    let signed = std::fs::read(&u.payload).unwrap();
    assert_eq!(signed[84..], ubytes[84..]);
    verify_bytes(&signed, &u).unwrap();
    // A signature from another key in an otherwise valid payload.
    sign(&u.payload, &other).unwrap();
    let wrong = std::fs::read(&u.payload).unwrap();
    assert!(matches!(
        verify_bytes(&wrong, &u).unwrap_err(),
        PayloadError::BadSignature
    ));
}

/// Replaces `from` by `to` (same length) inside the manifest, then re-signs
/// with the right key: a payload whose signature is valid but whose
/// manifest lies about a section.
fn tamper_manifest(f: &Fixture, from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(&f.payload).unwrap();
    let len = u32::from_le_bytes(bytes[80..84].try_into().unwrap()) as usize;
    let text = String::from_utf8(bytes[84..84 + len].to_vec()).unwrap();
    assert!(text.contains(from), "{from} not in manifest");
    let new = text.replacen(from, to, 1);
    bytes[84..84 + len].copy_from_slice(new.as_bytes());
    let p = f.dir.join("tampered.bxp");
    std::fs::write(&p, &bytes).unwrap();
    sign(&p, &f.key).unwrap();
    std::fs::read(&p).unwrap()
}

#[test]
fn digest_and_size_mismatch_under_a_valid_signature() {
    let f = fixture("4.0.0", true);
    let (_, m) = read_unverified(std::fs::File::open(&f.payload).unwrap()).unwrap();
    // Wrong decompressed digest for the uki.
    let mut wrong = m.uki.sha256.clone();
    let c = if wrong.starts_with('0') { "1" } else { "0" };
    wrong.replace_range(0..1, c);
    let b = tamper_manifest(&f, &m.uki.sha256, &wrong);
    match verify_bytes(&b, &f).unwrap_err() {
        PayloadError::DigestMismatch {
            section: "uki",
            what: "sha256",
            ..
        } => {}
        e => panic!("unexpected {e}"),
    }
    // Wrong compressed digest for verity.
    let mut wrong = m.verity.compressed_sha256.clone();
    let c = if wrong.ends_with('0') { "1" } else { "0" };
    wrong.replace_range(63..64, c);
    let b = tamper_manifest(&f, &m.verity.compressed_sha256, &wrong);
    match verify_bytes(&b, &f).unwrap_err() {
        PayloadError::DigestMismatch {
            section: "verity",
            what: "compressed sha256",
            ..
        } => {}
        e => panic!("unexpected {e}"),
    }
    // The uki declared smaller than it decompresses to: stopped as oversized.
    let size = format!("\"size\": {}", m.uki.size);
    // Same length, padded with spaces (JSON allows them, not leading zeros).
    let smaller = format!(
        "\"size\": {:>width$}",
        m.uki.size / 10,
        width = m.uki.size.to_string().len()
    );
    let b = tamper_manifest(&f, &size, &smaller);
    let e = verify_bytes(&b, &f).unwrap_err();
    assert!(matches!(e, PayloadError::Oversized { section: "uki", .. }), "{e}");
}

#[test]
fn downgrade_and_same_version_are_refused() {
    let f = fixture("4800.1.0", true);
    let bytes = std::fs::read(&f.payload).unwrap();
    for current in ["4800.1.0", "4800.1.1", "4801.0.0"] {
        let e = verify_stream(
            &bytes[..],
            &f.key.verifying_key(),
            &VersionPolicy::NewerThan(current.into()),
        )
        .unwrap_err();
        assert!(matches!(e, PayloadError::Downgrade { .. }), "{current}: {e}");
    }
    verify_stream(
        &bytes[..],
        &f.key.verifying_key(),
        &VersionPolicy::NewerThan("4799.9.9".into()),
    )
    .unwrap();
}

#[test]
fn key_files_roundtrip_and_match_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = (dir.path().join("k.pem"), dir.path().join("k.pub.pem"));
    let k = keys::generate().unwrap();
    keys::save(&k, &private, &public).unwrap();
    assert!(keys::save(&k, &private, &public).is_err(), "overwrote a private key");
    assert_eq!(keys::load_private(&private).unwrap().to_bytes(), k.to_bytes());
    assert_eq!(keys::load_public(&public).unwrap(), k.verifying_key());
    // openssl derives the same public key from our private key file.
    let o = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .output()
        .expect("openssl installed");
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        std::fs::read_to_string(&public).unwrap()
    );
    assert!(keys::load_public(&private).is_err());
    assert!(keys::load_private(Path::new("/nonexistent")).is_err());
}

#[test]
fn fixed_verity_identity_gives_the_callers_root_hash() {
    use boxcar_payload::{build_with_verity, VerityIdentity};
    use boxcar_verity::{DataBlocks, Parallelism, Params, Salt};
    let f = fixture("4892.0.0", true);
    let salt = Salt::new(vec![7u8; 32]).unwrap();
    let uuid = [9u8; 16];
    // What the image builder computed for the UKI's usrhash=.
    let expected = boxcar_verity::format_file(
        &f.dir.join("usr.in"),
        &f.dir.join("own.verity"),
        &Params {
            salt: salt.clone(),
            uuid,
            data_blocks: DataBlocks::WholeFile,
        },
        Parallelism::Threads(1),
    )
    .unwrap();
    let out = f.dir.join("fixed.bxp");
    let input = BuildInput {
        version: "4892.0.0",
        usr: &f.dir.join("usr.in"),
        uki: &f.dir.join("uki.in"),
        level: 1,
    };
    let fixed = VerityIdentity::Fixed {
        salt: salt.clone(),
        uuid,
    };
    let m = build_with_verity(&input, fixed, &out, Signing::With(&f.key)).unwrap();
    assert_eq!(m.verity_params.root_hash, expected.root.to_string());
    assert_eq!(m.verity_params.salt, salt.to_hex());
    assert_eq!(m.verity_params.uuid, boxcar_verity::format_uuid(&uuid));
    // A random identity (plain `build`) gives another root hash.
    let r = build(&input, &f.dir.join("random.bxp"), Signing::With(&f.key)).unwrap();
    assert_ne!(r.verity_params.root_hash, m.verity_params.root_hash);
}
