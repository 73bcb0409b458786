//! Error types. Every variant names the operation that failed and carries
//! the place (path, URL with secrets redacted, JSON path) and the cause, so
//! a failed first boot explains itself on the console.

use std::path::PathBuf;

/// Failures while getting bytes from a resource (`data:`, http, tftp, …).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("decoding data URL: {0}")]
    DataUrl(String),
    #[error("{scheme}:// sources are not supported on this platform")]
    UnsupportedScheme { scheme: String },
    #[error("parsing source URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("fetching {url} needs the network, but this stage runs offline")]
    NeedsNetwork { url: String },
    #[error("GET {url}: HTTP status {status} after {attempts} attempt(s)")]
    HttpStatus { url: String, status: u16, attempts: u32 },
    #[error("GET {url}: {reason} (after {attempts} attempt(s))")]
    HttpTransport { url: String, reason: String, attempts: u32 },
    #[error("reading the body of {url}: {source}")]
    HttpBody { url: String, source: std::io::Error },
    #[error("TFTP read of {url}: {reason}")]
    Tftp { url: String, reason: String },
    #[error("decompressing {url} ({compression}): {source}")]
    Decompress {
        url: String,
        compression: String,
        source: std::io::Error,
    },
    #[error("unsupported compression {compression:?} for {url}")]
    UnknownCompression { url: String, compression: String },
    #[error("verification of {url} failed: {algorithm} is {actual}, config expects {expected}")]
    HashMismatch {
        url: String,
        algorithm: String,
        expected: String,
        actual: String,
    },
    #[error("verification hash {hash:?}: {reason}")]
    BadHash { hash: String, reason: String },
    #[error("loading certificate authority {url}: {reason}")]
    CertificateAuthority { url: String, reason: String },
    #[error("building HTTP client: {0}")]
    Client(String),
    #[error("resource has no source")]
    NoSource,
}

/// Failures while finding and assembling the config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config provider {provider}: not available on this platform")]
    ProviderNotAvailable { provider: String },
    #[error("config provider {provider}: reading {path}: {source}")]
    ProviderRead {
        provider: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config provider {provider}: {source}")]
    ProviderFetch { provider: String, source: FetchError },
    #[error("config from {origin} is invalid:\n{report}")]
    Invalid { origin: String, report: String },
    #[error("fetching {what} for the config: {source}")]
    Reference { what: String, source: FetchError },
    #[error("config references nest deeper than {0} levels")]
    TooDeep(usize),
    #[error("reading base config directory {path}: {source}")]
    BaseDir { path: PathBuf, source: std::io::Error },
    #[error("reading cached config {path}: {source}")]
    CacheRead { path: PathBuf, source: std::io::Error },
    #[error("writing cached config {path}: {source}")]
    CacheWrite { path: PathBuf, source: std::io::Error },
    #[error("no config cached at {path}: run the fetch-offline or fetch stage first")]
    NoCache { path: PathBuf },
}

/// Failures applying filesystem entries, units, users and kernel arguments.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("creating file {path}: a file exists there already and overwrite is false")]
    FileExists { path: PathBuf },
    #[error("creating file {path}: a non regular file exists there already and overwrite is false")]
    NonRegularExists { path: PathBuf },
    #[error("creating directory {path}: a non-directory already exists and overwrite is false")]
    NonDirectoryExists { path: PathBuf },
    #[error("creating symlink {path}: a symlink exists there but points to {actual}, not {expected}, and overwrite is false")]
    SymlinkMismatch {
        path: PathBuf,
        actual: String,
        expected: String,
    },
    #[error("creating symlink {path}: a non-symlink already exists there and overwrite is false")]
    NonSymlinkExists { path: PathBuf },
    #[error("creating hard link {path}: a file already exists there but is not the target and overwrite is false")]
    HardlinkMismatch { path: PathBuf },
    #[error("creating hard link {path}: target {target} does not exist: {source}")]
    HardlinkTarget {
        path: PathBuf,
        target: PathBuf,
        source: std::io::Error,
    },
    #[error("appending to {path}: can only append to regular files")]
    AppendNotRegular { path: PathBuf },
    #[error("{config_path} resolves to {resolved} after following symlinks, as does {other}")]
    DuplicateResolved {
        config_path: String,
        other: String,
        resolved: PathBuf,
    },
    #[error("fetching contents for {path}: {source}")]
    Fetch { path: String, source: FetchError },
    #[error("resolving owner of {path}: no such {kind} {name:?} in the target's /etc/{file}")]
    NoSuchOwner {
        path: String,
        kind: &'static str,
        name: String,
        file: &'static str,
    },
    #[error("reading {path}: {reason}")]
    Database { path: PathBuf, reason: String },
    #[error("{tool} for {name:?} failed ({status}): {stderr}")]
    Tool {
        tool: String,
        name: String,
        status: String,
        stderr: String,
    },
    #[error("running {tool}: {source}")]
    Spawn { tool: String, source: std::io::Error },
    #[error("path {path:?}: too many levels of symbolic links inside the root")]
    SymlinkLoop { path: String },
    #[error("creating filesystem entries: a worker thread panicked")]
    WorkerPanicked,
    #[error("kernel arguments: {0}")]
    Kargs(String),
    #[error("unit {name}: {reason}")]
    Unit { name: String, reason: String },
}

impl ApplyError {
    /// Shorthand for I/O failures: the operation and the path it touched.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ApplyError {
        let path = path.into();
        move |source| ApplyError::Io { op, path, source }
    }
}
