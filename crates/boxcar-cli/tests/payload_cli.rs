//! `boxcar payload …` end to end through the real binary.

use std::path::Path;
use std::process::{Command, Output};

fn boxcar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boxcar")).args(args).output().unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn keygen_build_verify_inspect_sign_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = (d.join("key.pem"), d.join("key.pub.pem"));
    let out = boxcar(&["payload", "keygen", "--private", p(&key), "--public", p(&public)]);
    assert!(out.status.success(), "{out:?}");
    let usr: Vec<u8> = (0..40 * 4096u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(d.join("usr.img"), &usr).unwrap();
    std::fs::write(d.join("uki.efi"), b"MZ not really a UKI").unwrap();
    let payload = d.join("p.bxp");
    let (usr_img, uki_efi) = (d.join("usr.img"), d.join("uki.efi"));
    let build = |key: Option<&Path>| {
        let mut args = vec![
            "payload",
            "build",
            "--os-version",
            "4800.1.0",
            "--usr",
            p(&usr_img),
            "--uki",
            p(&uki_efi),
            "-o",
            p(&payload),
        ];
        if let Some(k) = key {
            args.extend(["--key", p(k)]);
        }
        boxcar(&args)
    };
    let out = build(Some(&key));
    assert!(out.status.success(), "{out:?}");
    let verify = |extra: &[&str]| {
        let mut args = vec!["payload", "verify", "--public-key", p(&public)];
        args.extend_from_slice(extra);
        args.push(p(&payload));
        boxcar(&args)
    };
    let x = d.join("x");
    std::fs::create_dir(&x).unwrap();
    let out = verify(&["--current-version", "4799.0.0", "--extract", p(&x)]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK:"));
    assert_eq!(std::fs::read(x.join("usr.img")).unwrap(), usr);

    let out = boxcar(&["payload", "inspect", p(&payload)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("UNVERIFIED") && text.contains("4800.1.0"),
        "{text}"
    );

    // Downgrade refused with exit 1.
    let out = verify(&["--current-version", "4800.1.0"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("downgrade"));

    // A flipped byte: exit 1.
    let mut bytes = std::fs::read(&payload).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 1;
    std::fs::write(&payload, &bytes).unwrap();
    assert_eq!(verify(&[]).status.code(), Some(1));

    // Unsigned: refused until signed.
    assert!(build(None).status.success());
    let out = verify(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not signed"));
    assert!(boxcar(&["payload", "sign", "--key", p(&key), p(&payload)])
        .status
        .success());
    assert!(verify(&[]).status.success());

    // Missing key file: I/O exit code 3.
    let out = boxcar(&["payload", "verify", "--public-key", p(&d.join("nope")), p(&payload)]);
    assert_eq!(out.status.code(), Some(3));
}
