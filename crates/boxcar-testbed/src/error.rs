use std::path::PathBuf;

/// Why a test-bed operation failed. Each variant names what was being done
/// and carries the path, tool or marker involved, so a failing scenario test
/// says where to look.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("starting {tool}: {source} (run scripts/setup.sh to install it)")]
    Spawn { tool: String, source: std::io::Error },
    #[error("{tool} failed ({status}): {stderr}")]
    Tool {
        tool: String,
        status: String,
        stderr: String,
    },
    #[error("no host kernel found: {0}")]
    NoKernel(String),
    #[error("kernel image {path}: {cause}")]
    BadKernel { path: PathBuf, cause: String },
    #[error("required file {path} is missing: {hint}")]
    Missing { path: PathBuf, hint: &'static str },
    #[error("invalid {what}: {cause}")]
    Invalid { what: &'static str, cause: String },
    #[error("marker {marker:?} not seen within {secs} s ({why}); serial log {log}, last lines:\n{tail}")]
    MarkerTimeout {
        marker: String,
        secs: u64,
        why: String,
        log: PathBuf,
        tail: String,
    },
    #[error("QEMU did not exit within {secs} s; serial log {log}, last lines:\n{tail}")]
    ExitTimeout { secs: u64, log: PathBuf, tail: String },
    #[error("QMP {command}: {cause}")]
    Qmp { command: String, cause: String },
    #[error("a forwarded host port was taken before QEMU bound it: {0}")]
    PortTaken(String),
    #[error("HTTP {url}: {cause}")]
    Http { url: String, cause: String },
}

impl TestbedError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| TestbedError::Io { what, path, source }
    }
}

/// Result alias for the test bed.
pub type Result<T, E = TestbedError> = std::result::Result<T, E>;
