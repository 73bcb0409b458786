//! `boxcar image build` on bad input: exit 1, a message naming the file,
//! line and key, and nothing written. (The full build is tested in
//! crates/boxcar-image/tests/full_build.rs.)

use std::process::Command;

#[test]
fn a_bad_manifest_is_refused_before_anything_happens() {
    let ws = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let good = std::fs::read_to_string(ws.join("images/boxcar.toml")).unwrap();
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("bad.toml");
    std::fs::write(&m, good.replace("[disk]\n", "[disk]\nsize_gib = 4\n")).unwrap();
    let out_dir = t.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_boxcar"))
        .args(["image", "build", "-m"])
        .arg(&m)
        .arg("-o")
        .arg(&out_dir)
        .args(["--cache-dir"])
        .arg(t.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.toml") && err.contains("size_gib"), "{err}");
    assert!(!out_dir.exists(), "nothing may be written for a bad manifest");
    assert!(!t.path().join("cache").exists());
}
