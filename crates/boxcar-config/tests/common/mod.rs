//! Shared helpers for the data-driven corpus tests.
#![allow(dead_code)]

use boxcar_config::report::{Diagnostic, Severity};
use std::path::{Path, PathBuf};

pub fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// One `LEVEL PATH LINE:COL MESSAGE` expectation.
#[derive(Debug)]
pub struct Expect {
    pub severity: Severity,
    pub path: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

pub struct ExpectFile {
    pub lines: Vec<Expect>,
    pub args: Vec<String>,
    pub stricter: bool,
}

pub fn read_expect(p: &Path) -> ExpectFile {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let mut out = ExpectFile {
        lines: vec![],
        args: vec![],
        stricter: false,
    };
    for l in text.lines() {
        let l = l.trim();
        if let Some(a) = l.strip_prefix("# args:") {
            out.args = a.split_whitespace().map(String::from).collect();
        }
        if l.starts_with("# boxcar-stricter") {
            out.stricter = true;
        }
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let mut it = l.splitn(4, ' ');
        let sev = match it.next().unwrap() {
            "error" => Severity::Error,
            "warning" => Severity::Warning,
            "info" => Severity::Info,
            other => panic!("{}: bad level {other}", p.display()),
        };
        let path = it.next().unwrap().to_string();
        let (line, col) = it.next().unwrap().split_once(':').unwrap();
        out.lines.push(Expect {
            severity: sev,
            path,
            line: line.parse().unwrap(),
            col: col.parse().unwrap(),
            message: it.next().unwrap_or("").to_string(),
        });
    }
    out
}

/// Every expectation must be met by some diagnostic; returns the misses.
pub fn unmet<'a>(expects: &'a [Expect], got: &[Diagnostic]) -> Vec<&'a Expect> {
    expects
        .iter()
        .filter(|e| {
            !got.iter().any(|d| {
                d.severity == e.severity
                    && d.display_path().to_string() == e.path
                    && d.pos.map(|p| (p.line, p.col)) == Some((e.line, e.col))
                    && d.message.contains(&e.message)
            })
        })
        .collect()
}

/// Warnings in `got` that no expectation mentions.
pub fn unexpected_warnings(expects: &[Expect], got: &[Diagnostic]) -> Vec<String> {
    got.iter()
        .filter(|d| d.severity == Severity::Warning)
        .filter(|d| !expects.iter().any(|e| d.message.contains(&e.message)))
        .map(|d| d.to_string())
        .collect()
}

pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

pub fn dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}
