//! External commands (sgdisk, mkfs.*, blkid, mdadm, cryptsetup, mount).
//!
//! Commands are values first: the planning code builds a [`Cmd`], unit tests
//! compare it, dry-run prints it and only the apply path runs it. Arguments
//! never carry secrets (LUKS keys travel in files), so a command line is
//! always safe to log.

use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};

/// One command line: a program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
}

impl Cmd {
    pub fn new(program: &str) -> Self {
        Cmd {
            program: program.to_string(),
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, it: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(it.into_iter().map(Into::into));
        self
    }

    /// Runs the command and returns its standard output; a non-zero exit
    /// becomes [`CmdError::Failed`] carrying standard error.
    pub fn run(&self) -> Result<String, CmdError> {
        tracing::debug!(command = %self, "running");
        let out = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| CmdError::Spawn {
                program: self.program.clone(),
                source,
            })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(CmdError::Failed(Box::new(Failure {
                command: self.to_string(),
                code: out.status.code(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            })))
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&quote(&self.program))?;
        for a in &self.args {
            write!(f, " {}", quote(a))?;
        }
        Ok(())
    }
}

/// Shell-style quoting so a printed command can be pasted into a shell.
fn quote(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Why an external command failed.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("running {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("{0}")]
    Failed(Box<Failure>),
}

/// A command that ran and exited unsuccessfully.
#[derive(Debug)]
pub struct Failure {
    pub command: String,
    pub code: Option<i32>,
    pub stderr: String,
    pub stdout: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self
            .code
            .map_or("killed by a signal".to_string(), |c| format!("exit status {c}"));
        let msg = if self.stderr.is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        write!(f, "`{}` failed ({status}): {msg}", self.command)
    }
}

impl CmdError {
    /// The exit code when the command ran and failed.
    pub fn code(&self) -> Option<i32> {
        match self {
            CmdError::Failed(f) => f.code,
            CmdError::Spawn { .. } => None,
        }
    }
}

/// Whether `program` can be found in `PATH` (optional tools such as clevis
/// and udevadm).
pub fn in_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|d| is_executable(&d.join(program)))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_when_needed() {
        let c = Cmd::new("sgdisk")
            .arg("--change-name=1:my root")
            .arg("/dev/loop0")
            .arg("");
        assert_eq!(c.to_string(), "sgdisk '--change-name=1:my root' /dev/loop0 ''");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn failure_carries_stderr_and_code() {
        let e = Cmd::new("sh").args(["-c", "echo boom >&2; exit 3"]).run().unwrap_err();
        assert_eq!(e.code(), Some(3));
        assert!(e.to_string().contains("(exit status 3): boom"), "{e}");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let e = Cmd::new("/nonexistent/boxcar-no-such-tool").run().unwrap_err();
        assert!(matches!(e, CmdError::Spawn { .. }));
    }
}
