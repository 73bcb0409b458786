//! The Ignition JSON corpus: valid configs are accepted with exactly the
//! warnings listed, invalid ones are rejected with the listed diagnostics
//! (path, line:col and message).

mod common;
use boxcar_config::{ignition, Strictness};
use common::*;

#[test]
fn valid_configs_are_accepted() {
    let files = files_with_ext(&corpus().join("ignition/valid"), "ign");
    assert!(files.len() >= 45, "corpus too small: {}", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let input = std::fs::read(f).unwrap();
        let exp = read_expect(&f.with_extension("expect"));
        match ignition::parse(&input, Strictness::Lenient) {
            Ok(p) => {
                let miss = unmet(&exp.lines, &p.report.entries);
                let extra = unexpected_warnings(&exp.lines, &p.report.entries);
                if !miss.is_empty() || !extra.is_empty() {
                    failures.push(format!("{}: missing {miss:?}, unexpected {extra:?}", f.display()));
                }
                assert_eq!(p.config.ignition.version, "3.4.0", "upgraded to the internal model");
            }
            Err(r) => failures.push(format!("{}: rejected:\n{r}", f.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn invalid_configs_are_rejected_with_the_right_diagnostics() {
    let files = files_with_ext(&corpus().join("ignition/invalid"), "ign");
    assert!(files.len() >= 60, "corpus too small: {}", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let input = std::fs::read(f).unwrap();
        let exp = read_expect(&f.with_extension("expect"));
        assert!(!exp.lines.is_empty(), "{}: no expectations", f.display());
        match ignition::parse(&input, Strictness::Lenient) {
            Ok(_) => failures.push(format!("{}: accepted", f.display())),
            Err(r) => {
                let miss = unmet(&exp.lines, &r.entries);
                if !miss.is_empty() {
                    failures.push(format!("{}: missing {miss:?}\n  got:\n{r}", f.display()));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
