//! Differential tests against the real `veritysetup` (cryptsetup-bin): our
//! hash image must equal its output byte for byte, and each tool must accept
//! the other's tree and catch the same corruption.

use boxcar_verity::{
    format_file, format_reader, parse_uuid, verify_files, DataBlocks, Mismatch, Parallelism, Params, RootHash, Salt,
    VerityError,
};
use std::path::Path;
use std::process::Command;

const UUID: &str = "0f3c2a6e-9b1d-4e55-8a77-1c2d3e4f5a6b";

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
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

fn veritysetup(args: &[&str]) -> std::process::Output {
    Command::new("veritysetup")
        .args(args)
        .output()
        .expect("veritysetup must be installed (cryptsetup-bin; scripts/setup.sh)")
}

/// Runs `veritysetup format` and returns the root hash it printed.
fn reference_format(data: &Path, hash: &Path, salt: &Salt, extra: &[&str]) -> RootHash {
    let salt_arg = format!("--salt={}", salt.to_hex());
    let uuid_arg = format!("--uuid={UUID}");
    let mut args = vec!["format", &salt_arg, &uuid_arg];
    args.extend_from_slice(extra);
    let (d, h) = (data.to_str().unwrap(), hash.to_str().unwrap());
    args.extend_from_slice(&[d, h]);
    let out = veritysetup(&args);
    assert!(out.status.success(), "veritysetup format: {:?}", out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Root hash:"))
        .expect("root hash line");
    line.split_whitespace().last().unwrap().parse().unwrap()
}

fn params(salt: &Salt, blocks: DataBlocks) -> Params {
    Params {
        salt: salt.clone(),
        uuid: parse_uuid(UUID).unwrap(),
        data_blocks: blocks,
    }
}

fn check_identical(blocks: usize, salt: Salt, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(&data, pseudo_random(blocks * 4096, seed)).unwrap();
    let (theirs, ours) = (dir.path().join("theirs"), dir.path().join("ours"));
    let root_ref = reference_format(&data, &theirs, &salt, &[]);
    let out = format_file(
        &data,
        &ours,
        &params(&salt, DataBlocks::WholeFile),
        Parallelism::Threads(3),
    )
    .unwrap();
    assert_eq!(out.root, root_ref, "root hash for {blocks} blocks, {salt:?}");
    let (a, b) = (std::fs::read(&theirs).unwrap(), std::fs::read(&ours).unwrap());
    assert_eq!(a.len(), b.len(), "hash image size for {blocks} blocks");
    assert!(a == b, "hash image bytes differ for {blocks} blocks, {salt:?}");
    assert_eq!(b.len() as u64, out.geometry.hash_device_size());

    // veritysetup accepts ours; we accept ours.
    let root = out.root.to_string();
    let v = veritysetup(&["verify", data.to_str().unwrap(), ours.to_str().unwrap(), &root]);
    assert!(v.status.success(), "veritysetup verify rejected ours: {v:?}");
    verify_files(&data, &ours, &out.root, Parallelism::Auto).unwrap();
}

#[test]
fn identical_across_level_boundaries_and_salts() {
    let salts = [
        Salt::new(vec![]).unwrap(),
        Salt::new(pseudo_random(32, 7)).unwrap(),
        Salt::new(pseudo_random(1, 8)).unwrap(),
        Salt::new(pseudo_random(63, 9)).unwrap(),
        Salt::new(pseudo_random(65, 10)).unwrap(),
        Salt::new(pseudo_random(256, 11)).unwrap(),
    ];
    for (i, salt) in salts.iter().enumerate() {
        for blocks in [1usize, 2, 127, 128, 129, 1000] {
            check_identical(blocks, salt.clone(), (i * 1000 + blocks) as u64);
        }
    }
}

#[test]
fn identical_for_multi_mib_and_three_levels() {
    let salt = Salt::new(pseudo_random(32, 99)).unwrap();
    // 4 MiB, and 16385 blocks (64 MiB + 1 block): the first size with 3 levels.
    check_identical(1024, salt.clone(), 1);
    check_identical(128 * 128 + 1, salt, 2);
}

#[test]
fn unaligned_data_is_refused_unless_a_prefix_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(&data, pseudo_random(3 * 4096 + 904, 5)).unwrap();
    let salt = Salt::new(pseudo_random(32, 6)).unwrap();
    let ours = dir.path().join("ours");
    let err = format_file(&data, &ours, &params(&salt, DataBlocks::WholeFile), Parallelism::Auto).unwrap_err();
    assert!(matches!(err, VerityError::UnalignedData { size, .. } if size == 3 * 4096 + 904));
    // veritysetup covers only the whole blocks; asked explicitly we match it.
    let theirs = dir.path().join("theirs");
    let root_ref = reference_format(&data, &theirs, &salt, &[]);
    let out = format_file(&data, &ours, &params(&salt, DataBlocks::Exactly(3)), Parallelism::Auto).unwrap();
    assert_eq!(out.root, root_ref);
    assert_eq!(std::fs::read(&theirs).unwrap(), std::fs::read(&ours).unwrap());
    // Too many blocks asked for.
    let err = format_file(&data, &ours, &params(&salt, DataBlocks::Exactly(4)), Parallelism::Auto).unwrap_err();
    assert!(matches!(err, VerityError::DataTooSmall { blocks: 4, .. }));
}

#[test]
fn streaming_format_matches_file_format() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = pseudo_random(300 * 4096, 12);
    let data = dir.path().join("data");
    std::fs::write(&data, &bytes).unwrap();
    let salt = Salt::new(pseudo_random(32, 13)).unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let p = params(&salt, DataBlocks::WholeFile);
    let x = format_file(&data, &a, &p, Parallelism::Auto).unwrap();
    let y = format_reader(&bytes[..], 300, &b, &p).unwrap();
    assert_eq!(x.root, y.root);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let err = format_reader(&bytes[..4096 * 10], 300, &b, &p).unwrap_err();
    assert!(matches!(err, VerityError::ShortStream { .. }));
}

#[test]
fn flipped_data_byte_is_caught_by_both() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(&data, pseudo_random(200 * 4096, 21)).unwrap();
    let salt = Salt::new(pseudo_random(32, 22)).unwrap();
    let hash = dir.path().join("hash");
    let out = format_file(&data, &hash, &params(&salt, DataBlocks::WholeFile), Parallelism::Auto).unwrap();
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[150 * 4096 + 17] ^= 0x01;
    std::fs::write(&data, &bytes).unwrap();
    let root = out.root.to_string();
    let v = veritysetup(&["verify", data.to_str().unwrap(), hash.to_str().unwrap(), &root]);
    assert!(!v.status.success(), "veritysetup accepted a flipped byte");
    assert!(String::from_utf8_lossy(&v.stderr).contains("position 614400"), "{v:?}");
    match verify_files(&data, &hash, &out.root, Parallelism::Auto).unwrap_err() {
        VerityError::Corrupt {
            mismatch: Mismatch::DataBlock { block, offset },
            ..
        } => assert_eq!((block, offset), (150, 614400)),
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn corrupt_hash_image_and_wrong_root_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(&data, pseudo_random(300 * 4096, 31)).unwrap();
    let salt = Salt::new(pseudo_random(32, 32)).unwrap();
    let hash = dir.path().join("hash");
    let out = format_file(&data, &hash, &params(&salt, DataBlocks::WholeFile), Parallelism::Auto).unwrap();
    // Wrong root.
    let wrong: RootHash = "11".repeat(32).parse().unwrap();
    assert!(matches!(
        verify_files(&data, &hash, &wrong, Parallelism::Auto).unwrap_err(),
        VerityError::Corrupt {
            mismatch: Mismatch::Root { .. },
            ..
        }
    ));
    // A flipped byte in level 0 (the last hash blocks): caught as a level mismatch.
    let mut h = std::fs::read(&hash).unwrap();
    let last = h.len() - 4096;
    h[last + 5] ^= 0x80;
    std::fs::write(&hash, &h).unwrap();
    assert!(matches!(
        verify_files(&data, &hash, &out.root, Parallelism::Auto).unwrap_err(),
        VerityError::Corrupt {
            mismatch: Mismatch::HashLevel { level: 1, .. },
            ..
        }
    ));
    let v = veritysetup(&[
        "verify",
        data.to_str().unwrap(),
        hash.to_str().unwrap(),
        &out.root.to_string(),
    ]);
    assert!(!v.status.success());
    // Truncated hash image.
    std::fs::write(&hash, &h[..8192]).unwrap();
    assert!(matches!(
        verify_files(&data, &hash, &out.root, Parallelism::Auto).unwrap_err(),
        VerityError::HashTooSmall { .. }
    ));
}

#[test]
fn veritysetup_tree_verifies_with_ours() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(&data, pseudo_random(129 * 4096, 41)).unwrap();
    let hash = dir.path().join("hash");
    let salt = Salt::new(pseudo_random(17, 42)).unwrap();
    let root = reference_format(&data, &hash, &salt, &[]);
    verify_files(&data, &hash, &root, Parallelism::Threads(2)).unwrap();
}
