//! Differential checks against the real `ignition-validate` (Debian's
//! Ignition 2.14, installed by scripts/setup.sh): every config we accept or
//! produce is accepted by it, and every config it rejects we reject too.
//! Spec 3.4.0 is checked as 3.4.0-experimental, the name 2.14 knows it by.

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../boxcar-config/tests/corpus")
}

fn ignition_validate(json: &[u8]) -> (bool, String) {
    let text = String::from_utf8_lossy(json).replace("\"3.4.0\"", "\"3.4.0-experimental\"");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.ign");
    std::fs::write(&f, text).unwrap();
    let out = Command::new("ignition-validate")
        .arg(&f)
        .output()
        .expect("ignition-validate must be installed (scripts/setup.sh installs Debian's ignition)");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn boxcar(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_boxcar")).args(args).output().unwrap()
}

fn sorted(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

fn ign_files(dir: &Path) -> Vec<PathBuf> {
    sorted(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ign"))
        .collect()
}

#[test]
fn ignition_corpus_agrees_with_ignition_validate() {
    let mut problems = Vec::new();
    let (mut valid, mut rejected_both) = (0, 0);
    for f in ign_files(&corpus().join("ignition/valid")) {
        let (ok, out) = ignition_validate(&std::fs::read(&f).unwrap());
        if !ok {
            problems.push(format!(
                "{}: ignition-validate rejects a config we accept:\n{out}",
                f.display()
            ));
        }
        let ours = boxcar(&["validate", f.to_str().unwrap()]);
        assert!(ours.status.success(), "{}", f.display());
        valid += 1;
    }
    for f in ign_files(&corpus().join("ignition/invalid")) {
        let (ok, _) = ignition_validate(&std::fs::read(&f).unwrap());
        let ours = boxcar(&["validate", "--raw-errors", f.to_str().unwrap()]);
        if !ok {
            rejected_both += 1;
            if ours.status.code() != Some(1) {
                problems.push(format!("{}: ignition-validate rejects it, we do not", f.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        valid >= 45 && rejected_both >= 60,
        "valid {valid}, rejected by both {rejected_both}"
    );
    eprintln!("differential: {valid} valid configs accepted by both; {rejected_both} invalid configs rejected by both");
}

#[test]
fn butane_outputs_and_examples_pass_ignition_validate() {
    let mut inputs: Vec<(PathBuf, Option<PathBuf>)> = sorted(&corpus().join("butane/ok"))
        .into_iter()
        .filter(|d| d.is_dir())
        .map(|d| (d.join("config.bu"), Some(d.join("files")).filter(|f| f.is_dir())))
        .collect();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    // The demo's binary inputs are built, not committed (examples/README.md;
    // the scenario test builds the real ones); translation only embeds
    // their bytes, so stand-ins do here.
    let files = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(examples.join("files/."))
        .arg(files.path())
        .status()
        .unwrap();
    assert!(status.success());
    for generated in ["demo/httpd-rootfs.tar", "demo/demo-hello.raw"] {
        let p = files.path().join(generated);
        if !p.exists() {
            std::fs::write(&p, format!("stand-in for {generated}")).unwrap();
        }
    }
    for e in sorted(&examples)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "bu"))
    {
        inputs.push((e, Some(files.path().to_path_buf())));
    }
    let mut problems = Vec::new();
    for (bu, files) in &inputs {
        let mut args = vec!["butane", bu.to_str().unwrap()];
        if let Some(f) = files {
            args.extend(["-d", f.to_str().unwrap()]);
        }
        let out = boxcar(&args);
        if !out.status.success() {
            problems.push(format!(
                "{}: translation failed:\n{}",
                bu.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let (ok, msg) = ignition_validate(&out.stdout);
        if !ok {
            problems.push(format!(
                "{}: ignition-validate rejects our output:\n{msg}",
                bu.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(inputs.len() >= 50);
    eprintln!(
        "differential: {} Butane outputs accepted by ignition-validate",
        inputs.len()
    );
}
