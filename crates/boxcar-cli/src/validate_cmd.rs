//! `boxcar validate`.

use crate::exit;
use boxcar_config::{ignition, render, Strictness};
use std::io::Read;
use std::path::PathBuf;

/// Check an Ignition config (spec 3.0.0–3.4.0) with Ignition's rules.
///
/// Prints each problem with its JSON path and line:column. Exit status: 0
/// valid (warnings allowed unless --strict), 1 invalid, 3 unreadable input.
#[derive(clap::Args)]
pub struct Args {
    /// The config to check; `-` or nothing reads standard input.
    file: Option<PathBuf>,
    /// Treat warnings (such as unknown keys) as errors.
    #[arg(short, long)]
    strict: bool,
    /// Print `error at $.path, line L col C: message` lines, as
    /// ignition-validate does, instead of the annotated form.
    #[arg(long)]
    raw_errors: bool,
}

pub fn read_input(file: &Option<PathBuf>) -> Result<(Vec<u8>, String), String> {
    match file.as_deref() {
        None => read_stdin(),
        Some(p) if p.as_os_str() == "-" => read_stdin(),
        Some(p) => std::fs::read(p)
            .map(|b| (b, p.display().to_string()))
            .map_err(|e| format!("reading {}: {e}", p.display())),
    }
}

fn read_stdin() -> Result<(Vec<u8>, String), String> {
    let mut b = Vec::new();
    std::io::stdin()
        .take(ignition::MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut b)
        .map_err(|e| format!("reading standard input: {e}"))?;
    Ok((b, "<stdin>".into()))
}

pub fn run(a: Args) -> u8 {
    let (input, name) = match read_input(&a.file) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::IO;
        }
    };
    let strictness = if a.strict {
        Strictness::Strict
    } else {
        Strictness::Lenient
    };
    let (ok, report) = match ignition::parse(&input, strictness) {
        Ok(p) => (true, p.report),
        Err(r) => (false, r),
    };
    if a.raw_errors {
        print!("{report}");
    } else {
        eprint!("{}", render::render(&report, &name, &String::from_utf8_lossy(&input)));
    }
    if ok {
        exit::OK
    } else {
        exit::INVALID
    }
}
