//! The CLI's contract: exit codes, stdin/stdout, compiler-style errors,
//! atomic --output, merging several Butane files.

use std::io::Write;
use std::process::{Command, Stdio};

fn run(args: &[&str], stdin: &str) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_boxcar"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = c.stdin.take().unwrap().write_all(stdin.as_bytes());
    c.wait_with_output().unwrap()
}

#[test]
fn butane_from_stdin_to_stdout() {
    let out = run(
        &["butane"],
        "variant: flatcar\nversion: 1.1.0\nstorage:\n  files:\n    - path: /etc/hostname\n      contents:\n        inline: node1\n",
    );
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ignition"]["version"], "3.4.0");
    assert_eq!(v["storage"]["files"][0]["contents"]["source"], "data:,node1");
}

#[test]
fn errors_are_rendered_like_a_compiler() {
    let out = run(
        &["butane"],
        "variant: flatcar\nversion: 1.1.0\nstorage:\n  files:\n    - path: etc/hostname\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing is written on error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error: path not absolute"), "{err}");
    assert!(err.contains("--> <stdin>:5:13 at $.storage.files.0.path"), "{err}");
    assert!(
        err.contains(" 5 |     - path: etc/hostname\n   |             ^"),
        "{err}"
    );
}

#[test]
fn strict_fails_on_warnings_and_raw_errors_match_ignition() {
    let input = "variant: flatcar\nversion: 1.1.0\nbogus: 1\n";
    assert!(run(&["butane"], input).status.success());
    let out = run(&["butane", "--strict", "--raw-errors"], input);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "warning at $.bogus, line 3 col 1: Unused key bogus\n"
    );
}

#[test]
fn validate_exit_codes() {
    let ok = run(&["validate", "-"], r#"{"ignition":{"version":"3.3.0"}}"#);
    assert_eq!(ok.status.code(), Some(0));
    let bad = run(
        &["validate", "--raw-errors"],
        r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"x"}]}}"#,
    );
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&bad.stdout),
        "error at $.storage.files.0.path, line 1 col 61: path not absolute\n"
    );
    let missing = run(&["validate", "/nonexistent/config.ign"], "");
    assert_eq!(missing.status.code(), Some(3));
}

#[test]
fn several_files_merge_and_output_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.bu");
    let role = dir.path().join("role.bu");
    std::fs::write(
        &base,
        "variant: flatcar\nversion: 1.1.0\nstorage:\n  files:\n    - path: /etc/a\n      contents: {inline: base}\n      mode: 0600\n",
    )
    .unwrap();
    std::fs::write(
        &role,
        "variant: flatcar\nversion: 1.1.0\nstorage:\n  files:\n    - path: /etc/a\n      contents: {inline: role}\n",
    )
    .unwrap();
    let out_path = dir.path().join("out.ign");
    let (b, r, o) = (
        base.to_str().unwrap(),
        role.to_str().unwrap(),
        out_path.to_str().unwrap(),
    );
    let out = run(&["butane", b, r, "-o", o], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    assert_eq!(v["storage"]["files"][0]["contents"]["source"], "data:,role");
    assert_eq!(v["storage"]["files"][0]["mode"], 384);
    assert!(!dir.path().join("out.tmp-boxcar").exists());
    // Deterministic: the same input gives the same bytes.
    let again = run(&["butane", b, r], "");
    assert_eq!(again.stdout, std::fs::read(&out_path).unwrap());
}

#[test]
fn include_merges_a_base_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("base.bu"),
        "variant: flatcar\nversion: 1.1.0\npasswd:\n  users:\n    - name: core\n      ssh_authorized_keys: [ssh-ed25519 AAAA base]\n",
    )
    .unwrap();
    let top = dir.path().join("web.bu");
    std::fs::write(&top, "variant: flatcar\nversion: 1.1.0\ninclude: [base.bu]\nsystemd:\n  units:\n    - name: web.service\n      mask: true\n").unwrap();
    let out = run(&["butane", top.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["passwd"]["users"][0]["name"], "core");
    assert_eq!(v["systemd"]["units"][0]["name"], "web.service");
    // A cycle is an error, not a hang.
    std::fs::write(
        dir.path().join("base.bu"),
        "variant: flatcar\nversion: 1.1.0\ninclude: [web.bu]\n",
    )
    .unwrap();
    let out = run(&["butane", top.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("include cycle"));
}

#[test]
fn merged_inputs_are_validated_as_a_whole() {
    // Each file is valid alone; together a file is written through a
    // link, which Ignition would reject at boot.
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.bu");
    let b = dir.path().join("b.bu");
    std::fs::write(
        &a,
        "variant: flatcar\nversion: 1.1.0\nstorage:\n  links:\n    - path: /etc/app\n      target: /opt/app\n",
    )
    .unwrap();
    std::fs::write(
        &b,
        "variant: flatcar\nversion: 1.1.0\nstorage:\n  files:\n    - path: /etc/app/conf\n",
    )
    .unwrap();
    let out = run(&["butane", a.to_str().unwrap(), b.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("<merged config>") && err.contains("file path includes link"),
        "{err}"
    );
}
