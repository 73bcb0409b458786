//! `boxcar butane`.

use crate::exit;
use crate::validate_cmd::read_input;
use boxcar_config::butane::{self, FilesDir};
use boxcar_config::{render, JsonStyle, Strictness};
use std::io::Write;
use std::path::PathBuf;

/// Translate a Butane config (variant flatcar 1.0.0/1.1.0, fcos 1.4.0/1.5.0)
/// into Ignition JSON.
///
/// Reads FILE (or standard input) and writes JSON to standard output or
/// --output. Problems are shown with file:line:col and the offending line.
/// Several FILEs are merged in order, later ones overriding earlier ones
/// (a base config plus role overlays); a Butane file may also list others
/// under `include:`. Output is deterministic: same input, same bytes.
///
/// Exit status: 0 translated, 1 invalid input (nothing is written),
/// 3 unreadable input or unwritable output.
#[derive(clap::Args)]
pub struct Args {
    /// Butane files; `-` or nothing reads standard input.
    files: Vec<PathBuf>,
    /// Directory that `local:`, `contents_local`, `ssh_authorized_keys_local`
    /// and `trees` are relative to; nothing outside it can be read.
    #[arg(short = 'd', long = "files-dir", value_name = "DIR")]
    files_dir: Option<PathBuf>,
    /// Fail on warnings too.
    #[arg(short, long)]
    strict: bool,
    /// Indent the JSON output.
    #[arg(short, long)]
    pretty: bool,
    /// Only check the input; write nothing.
    #[arg(short, long)]
    check: bool,
    /// Write the JSON here instead of standard output (replaced atomically).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print `error at $.path, line L col C: message` lines instead of the
    /// annotated form.
    #[arg(long)]
    raw_errors: bool,
}

pub fn run(a: Args) -> u8 {
    let files_dir = match FilesDir::new(a.files_dir.as_deref()) {
        Ok(f) => f,
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
    let inputs: Vec<Option<PathBuf>> = if a.files.is_empty() {
        vec![None]
    } else {
        a.files.iter().cloned().map(Some).collect()
    };
    let mut merged: Option<butane::Translated> = None;
    for f in inputs {
        let (input, name) = match read_input(&f) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::IO;
            }
        };
        let opts = butane::Options {
            files_dir: files_dir.clone(),
            strictness,
            source_path: f.clone().filter(|p| p.as_os_str() != "-"),
        };
        match butane::translate(&input, &name, &opts) {
            Ok(t) => {
                show(&t.report, &name, &input, a.raw_errors);
                merged = Some(match merged {
                    None => t,
                    Some(prev) => match butane::combine(prev, t) {
                        Ok(c) => c,
                        Err(fail) => {
                            for (n, r) in &fail.reports {
                                show(r, n, b"", a.raw_errors);
                            }
                            return exit::INVALID;
                        }
                    },
                });
            }
            Err(fail) => {
                for (n, r) in &fail.reports {
                    let src = if *n == name {
                        input.clone()
                    } else {
                        std::fs::read(n).unwrap_or_default()
                    };
                    show(r, n, &src, a.raw_errors);
                }
                return exit::INVALID;
            }
        }
    }
    let Some(t) = merged else { return exit::INVALID };
    if a.check {
        return exit::OK;
    }
    let style = if a.pretty {
        JsonStyle::Pretty
    } else {
        JsonStyle::Compact
    };
    let mut json = t.config.to_json(style);
    json.push('\n');
    match write_output(a.output.as_ref(), json.as_bytes()) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::IO
        }
    }
}

fn show(r: &boxcar_config::Report, name: &str, input: &[u8], raw: bool) {
    if raw {
        eprint!("{r}");
    } else {
        eprint!("{}", render::render(r, name, &String::from_utf8_lossy(input)));
    }
}

/// Write to a temporary file beside the target and rename it into place, so
/// a crash never leaves half a config behind.
fn write_output(out: Option<&PathBuf>, data: &[u8]) -> Result<(), String> {
    let Some(path) = out else {
        return std::io::stdout()
            .write_all(data)
            .map_err(|e| format!("writing standard output: {e}"));
    };
    let tmp = path.with_extension("tmp-boxcar");
    std::fs::write(&tmp, data).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming {} to {}: {e}", tmp.display(), path.display()))
}
