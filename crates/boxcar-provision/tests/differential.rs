//! Differential test against the real Ignition 2.14: every case in
//! `tests/corpus/differential/` is applied by Ignition and by
//! boxcar-provision to identical starting roots; both must succeed (or
//! both fail, for cases that say so) and the resulting trees must match.

mod common;

use common::*;
use std::fs;

#[test]
fn differential_against_real_ignition() {
    let cases = load_cases("tests/corpus/differential");
    assert!(cases.len() >= 40, "corpus has only {} cases", cases.len());
    let only = std::env::var("BOXCAR_CASE").ok();
    let mut failures = Vec::new();
    for (name, case) in &cases {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let server = http::Server::start(case.http.clone());
        let tftp = tftp::TftpServer::start(case.tftp.clone());
        let t = scratch();
        let cfg = t.path().join("config.ign");
        fs::write(&cfg, render_config_with(case, &server.base, &tftp.base)).unwrap();
        let (ri, rb) = (t.path().join("ignition-root"), t.path().join("boxcar-root"));
        let (wi, wb) = (t.path().join("ignition-work"), t.path().join("boxcar-work"));
        for d in [&wi, &wb] {
            fs::create_dir_all(d).unwrap();
        }
        make_tree(&ri, case);
        make_tree(&rb, case);
        let ign = run_ignition(&cfg, &ri, &wi);
        let (bx, _) = run_boxcar(&cfg, &rb, &wb, 5);
        let want_ok = case.expect.as_deref() != Some("failure");
        let mut problems = Vec::new();
        if ign.ok != want_ok {
            problems.push(format!("ignition ok={} (expected {want_ok}): {}", ign.ok, ign.message));
        }
        if bx.ok != ign.ok {
            problems.push(format!(
                "boxcar ok={} but ignition ok={}: {} {}",
                bx.ok, ign.ok, bx.message, ign.message
            ));
        }
        if ign.kargs != bx.kargs {
            problems.push(format!(
                "kargs helper calls differ:\n ignition: {:?}\n boxcar:   {:?}",
                ign.kargs, bx.kargs
            ));
        }
        if want_ok {
            let (mi, mb) = (manifest(&ri), manifest(&rb));
            if mi != mb {
                problems.push(format!("trees differ (- ignition, + boxcar):\n{}", diff(&mi, &mb)));
            }
        }
        if problems.is_empty() {
            eprintln!("ok   {name}: {}", case.description);
        } else {
            eprintln!("FAIL {name}: {}\n{}", case.description, problems.join("\n"));
            failures.push(name.clone());
        }
    }
    assert!(
        failures.is_empty(),
        "{} differential case(s) failed: {failures:?}",
        failures.len()
    );
}
