//! The Butane corpus: each ok/ case translates to its expected Ignition
//! JSON (compared semantically; gzip data URLs by their decompressed
//! bytes, since compressors differ), each err/ case fails with the listed
//! diagnostics at the listed YAML line:col.

mod common;
use boxcar_config::butane::{self, FilesDir};
use boxcar_config::{dataurl, JsonStyle, Strictness};
use common::*;
use serde_json::Value;
use std::io::Read;
use std::path::Path;

fn options(case: &Path, args: &[String]) -> butane::Options {
    let files = case.join("files");
    let dir = (files.is_dir() && !args.iter().any(|a| a == "--no-files-dir")).then_some(files);
    butane::Options {
        files_dir: FilesDir::new(dir.as_deref()).unwrap(),
        strictness: if args.iter().any(|a| a == "--strict") {
            Strictness::Strict
        } else {
            Strictness::Lenient
        },
        source_path: Some(case.join("config.bu")),
    }
}

/// Replace gzip data URLs by their decompressed contents, recursively.
fn normalize(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let gz = m.get("compression").and_then(Value::as_str) == Some("gzip");
            if let Some(Value::String(src)) = m.get_mut("source") {
                if gz && src.starts_with("data:") {
                    let raw = dataurl::decode(src).expect("expected data URL decodes");
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(&raw[..])
                        .read_to_end(&mut out)
                        .expect("gzip");
                    *src = format!("gunzipped:{}", String::from_utf8_lossy(&out));
                }
            }
            m.values_mut().for_each(normalize);
        }
        Value::Array(a) => a.iter_mut().for_each(normalize),
        _ => {}
    }
}

#[test]
fn ok_cases_translate_to_the_expected_ignition() {
    let cases = dirs(&corpus().join("butane/ok"));
    assert!(cases.len() >= 40, "corpus too small: {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let input = std::fs::read(case.join("config.bu")).unwrap();
        let exp = read_expect(&case.join("expect"));
        match butane::translate(&input, "config.bu", &options(case, &exp.args)) {
            Ok(t) => {
                let mut got: Value = serde_json::from_str(&t.config.to_json(JsonStyle::Compact)).unwrap();
                let mut want: Value =
                    serde_json::from_slice(&std::fs::read(case.join("expected.ign")).unwrap()).unwrap();
                normalize(&mut got);
                normalize(&mut want);
                if got != want {
                    failures.push(format!(
                        "{}:\n  got  {}\n  want {}",
                        case.display(),
                        serde_json::to_string(&got).unwrap(),
                        serde_json::to_string(&want).unwrap()
                    ));
                }
                let miss = unmet(&exp.lines, &t.report.entries);
                let extra = unexpected_warnings(&exp.lines, &t.report.entries);
                if !miss.is_empty() || !extra.is_empty() {
                    failures.push(format!("{}: missing {miss:?}, unexpected {extra:?}", case.display()));
                }
            }
            Err(f) => failures.push(format!(
                "{}: failed:\n{}",
                case.display(),
                f.reports.iter().map(|(_, r)| r.to_string()).collect::<String>()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn err_cases_fail_with_the_expected_diagnostics() {
    let cases = dirs(&corpus().join("butane/err"));
    assert!(cases.len() >= 30, "corpus too small: {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let input = std::fs::read(case.join("config.bu")).unwrap();
        let exp = read_expect(&case.join("expect"));
        assert!(!exp.lines.is_empty(), "{}: no expectations", case.display());
        match butane::translate(&input, "config.bu", &options(case, &exp.args)) {
            Ok(_) => failures.push(format!("{}: translated", case.display())),
            Err(f) => {
                let all: Vec<_> = f.reports.iter().flat_map(|(_, r)| r.entries.clone()).collect();
                let miss = unmet(&exp.lines, &all);
                if !miss.is_empty() {
                    let got: String = all.iter().map(|d| format!("    {d}\n")).collect();
                    failures.push(format!("{}: missing {miss:?}\n  got:\n{got}", case.display()));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
