//! Running host tools (objcopy, mtools, sfdisk, qemu-img …) with errors that
//! carry the tool's stderr.

use crate::error::{Result, TestbedError};
use std::process::{Command, Stdio};

/// Runs `cmd` to completion; returns its stdout, or an error with the
/// command line, exit status and stderr.
pub fn run(cmd: &mut Command) -> Result<Vec<u8>> {
    let tool = describe(cmd);
    tracing::debug!(%tool, "run");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| TestbedError::Spawn {
            tool: tool.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(TestbedError::Tool {
            tool,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// `program arg arg …` for messages and the saved QEMU command line.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&shell_quote(&a.to_string_lossy()));
    }
    s
}

/// Quotes one argument for a copy-pasteable shell line.
pub fn shell_quote(a: &str) -> String {
    let plain = !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_=,.:/+@%".contains(c));
    if plain {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("-m"), "-m");
        assert_eq!(shell_quote("console=ttyS0 quiet"), "'console=ttyS0 quiet'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn failing_tool_reports_stderr() {
        let err = run(Command::new("sh").args(["-c", "echo broken >&2; exit 3"])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("broken") && msg.contains("exit status: 3"), "{msg}");
    }
}
