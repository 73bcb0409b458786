//! The stages and the runner: Ignition's order, one at a time or all,
//! each timed and recorded; a failure names the stage, the JSON path and
//! the cause.

pub mod block;
pub mod entries;
pub mod kargs;
pub mod storage;
pub mod units;
pub mod users;

use serde::Serialize;
use std::fmt;

/// Ignition's stages, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    FetchOffline,
    Fetch,
    Kargs,
    Disks,
    Mount,
    Files,
    Umount,
}

impl Stage {
    /// All stages in boot order.
    pub const ALL: [Stage; 7] = [
        Stage::FetchOffline,
        Stage::Fetch,
        Stage::Kargs,
        Stage::Disks,
        Stage::Mount,
        Stage::Files,
        Stage::Umount,
    ];

    /// The name Ignition uses (`fetch-offline`, …).
    pub fn name(self) -> &'static str {
        match self {
            Stage::FetchOffline => "fetch-offline",
            Stage::Fetch => "fetch",
            Stage::Kargs => "kargs",
            Stage::Disks => "disks",
            Stage::Mount => "mount",
            Stage::Files => "files",
            Stage::Umount => "umount",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A stage failure as shown on the console: stage, JSON path, cause.
#[derive(Debug, Clone, PartialEq)]
pub struct StageFailure {
    pub stage: Stage,
    /// The config location concerned, e.g. `$.storage.files.3`.
    pub json_path: Option<String>,
    /// The cause chain, free of secrets.
    pub cause: String,
}

impl fmt::Display for StageFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "provisioning failed in stage {}", self.stage)?;
        if let Some(p) = &self.json_path {
            write!(f, " at {p}")?;
        }
        write!(f, ": {}", self.cause)
    }
}

impl std::error::Error for StageFailure {}

/// Render an error and its sources as one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}
