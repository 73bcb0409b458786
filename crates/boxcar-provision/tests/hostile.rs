//! Hostile and negative cases, as data (`tests/corpus/hostile/`): escapes
//! through symlinks and `..`, bad hashes, truncated and hanging downloads,
//! unsupported sources. Each must end as the case says, with the expected
//! error and JSON path, and nothing may change outside the root.

mod common;

use common::*;
use std::fs;
use std::path::Path;

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let c = fs::read_to_string(e.path()).unwrap_or_else(|_| "<not a file>".into());
            format!("{} {c:?}", e.file_name().to_string_lossy())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn hostile_cases() {
    let cases = load_cases("tests/corpus/hostile");
    assert!(cases.len() >= 15, "only {} hostile cases", cases.len());
    let mut failures = Vec::new();
    for (name, mut case) in cases {
        let server = http::Server::start(case.http.clone());
        let t = scratch();
        let outside = t.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("sentinel"), "host file\n").unwrap();
        let os = outside.display().to_string();
        for n in &mut case.tree {
            if let Some(s) = &mut n.symlink {
                *s = s.replace("{{OUTSIDE}}", &os);
            }
        }
        let cfg = t.path().join("config.ign");
        fs::write(&cfg, render_config(&case, &server.base).replace("{{OUTSIDE}}", &os)).unwrap();
        let root = t.path().join("root");
        let work = t.path().join("work");
        fs::create_dir_all(&work).unwrap();
        make_tree(&root, &case);
        let before_outside = listing(&outside);
        let (run, failure) = run_boxcar(&cfg, &root, &work, case.http_attempts.unwrap_or(3));
        drop(server);

        let mut problems = Vec::new();
        let want_ok = case.expect.as_deref() != Some("failure");
        if run.ok != want_ok {
            problems.push(format!("ok={} expected {want_ok}: {}", run.ok, run.message));
        }
        if let Some(s) = &case.error_contains {
            if !run.message.contains(s.as_str()) {
                problems.push(format!("error {:?} lacks {s:?}", run.message));
            }
        }
        if let Some(p) = &case.error_path {
            let got = failure.as_ref().and_then(|f| f.json_path.clone());
            if got.as_deref() != Some(p.as_str()) {
                problems.push(format!("json path {got:?}, expected {p:?}"));
            }
        }
        if listing(&outside) != before_outside {
            problems.push(format!("outside the root changed: {:?}", listing(&outside)));
        }
        let mut top: Vec<String> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        if top != ["config.ign", "outside", "root", "work"] {
            problems.push(format!("unexpected entries next to the root: {top:?}"));
        }
        if let Some(p) = &case.inside {
            let p = p.replace("{{OUTSIDE}}", &os);
            if fs::symlink_metadata(root.join(p.trim_start_matches('/'))).is_err() {
                problems.push(format!("{p} was not created inside the root"));
            }
        }
        if !run.ok && root.join("etc/notwritten").exists() {
            problems.push("a failed fetch still wrote /etc/notwritten".into());
        }
        if problems.is_empty() {
            eprintln!("ok   {name}: {} ({})", case.description, run.message);
        } else {
            eprintln!("FAIL {name}: {}\n  {}", case.description, problems.join("\n  "));
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "hostile case(s) failed: {failures:?}");
}
