//! Running the external tools of a build (mmdebstrap, mkfs.*, objcopy,
//! mtools, qemu-img) with their stderr in the error when they fail.

use crate::ImageError;
use std::ffi::OsStr;
use std::process::{Command, Stdio};

/// Runs `program args…` with extra environment, returning stdout.
pub fn run<I, S>(program: &str, args: I, env: &[(&str, &str)]) -> Result<Vec<u8>, ImageError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(program);
    c.args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    tracing::debug!(?c, "running");
    let out = c.output().map_err(|source| ImageError::Spawn {
        program: program.to_string(),
        source,
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The end of stderr is where tools say what went wrong.
        let tail: String = stderr
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        return Err(ImageError::Tool {
            program: program.to_string(),
            status: out.status.to_string(),
            stderr: tail,
        });
    }
    Ok(out.stdout)
}
