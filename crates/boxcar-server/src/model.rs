//! The fleet model: applications, channels, packages, groups, instances, events, activity.

use crate::policy::Policy;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Where an instance stands in its update, derived from the event sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    /// Nothing in progress.
    Undefined = 1,
    /// Update granted, nothing heard since.
    Granted = 2,
    /// The update failed (event result 0).
    Error = 3,
    /// Running the granted version.
    Complete = 4,
    /// Installed, waiting for the reboot.
    Installed = 5,
    /// Download finished.
    Downloaded = 6,
    /// Download started.
    Downloading = 7,
    /// Eligible but held back by policy.
    OnHold = 8,
    /// Booted back into the old version (error 44, or installed and still on the old version).
    Rollback = 9,
}

impl InstanceStatus {
    /// Every status, for metrics and filters.
    pub const ALL: [InstanceStatus; 9] = [
        InstanceStatus::Undefined,
        InstanceStatus::Granted,
        InstanceStatus::Error,
        InstanceStatus::Complete,
        InstanceStatus::Installed,
        InstanceStatus::Downloaded,
        InstanceStatus::Downloading,
        InstanceStatus::OnHold,
        InstanceStatus::Rollback,
    ];

    /// The stored number.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// From the stored number (unknown numbers read as undefined).
    pub fn from_code(n: i64) -> InstanceStatus {
        InstanceStatus::ALL
            .into_iter()
            .find(|s| s.code() == n)
            .unwrap_or(InstanceStatus::Undefined)
    }

    /// snake_case name as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            InstanceStatus::Undefined => "undefined",
            InstanceStatus::Granted => "granted",
            InstanceStatus::Error => "error",
            InstanceStatus::Complete => "complete",
            InstanceStatus::Installed => "installed",
            InstanceStatus::Downloaded => "downloaded",
            InstanceStatus::Downloading => "downloading",
            InstanceStatus::OnHold => "on_hold",
            InstanceStatus::Rollback => "rollback",
        }
    }

    /// Parses the JSON name.
    pub fn from_name(s: &str) -> Option<InstanceStatus> {
        InstanceStatus::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// An Omaha application (Flatcar, or a Boxcar image of one's own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// Omaha app id, normalised with braces and lower case.
    pub id: String,
    /// Short unique name usable instead of the id (`flatcar`).
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// An extra file served next to the payload (OEM or system-extension images).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraFile {
    /// File name under the package's URL.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Base64 SHA-1.
    #[serde(default)]
    pub sha1: String,
    /// Hex SHA-256 (as flatcar-postinst expects for extras).
    pub sha256_hex: String,
}

/// A published payload for one version and architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// Server-assigned id.
    pub id: String,
    /// Owning app id.
    pub app_id: String,
    /// OS version the payload installs.
    pub version: String,
    /// `amd64` or `arm64`.
    pub arch: String,
    /// Base URL (codebase); ends in `/`.
    pub url: String,
    /// Payload file name appended to `url`.
    pub filename: String,
    /// Payload size in bytes.
    pub size: u64,
    /// Base64 SHA-1 of the payload.
    pub sha1: String,
    /// Base64 SHA-256 of the payload (the postinstall action's `sha256`).
    pub sha256: String,
    /// Extra files such as OEM system extensions.
    #[serde(default)]
    pub extra_files: Vec<ExtraFile>,
}

/// A channel and the package it points to per architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// Owning app id.
    pub app_id: String,
    /// `alpha`, `beta`, `stable`, `lts` or a custom name.
    pub name: String,
    /// arch → package.
    pub packages: Vec<Package>,
}

/// A group of instances following one channel under one rollout policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Slug, unique per app.
    pub id: String,
    /// Owning app id.
    pub app_id: String,
    /// Display name.
    pub name: String,
    /// The channel followed, if any.
    pub channel: Option<String>,
    /// The `track` (update.conf `GROUP`) clients send; the id is accepted too.
    pub track: String,
    /// Rollout policy.
    pub policy: Policy,
}

/// One machine running an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// App id.
    pub app_id: String,
    /// Omaha `machineid`.
    pub machine_id: String,
    /// Group it belongs to (none when its track is unknown).
    pub group_id: Option<String>,
    /// Track as sent.
    pub track: String,
    /// Running version.
    pub version: String,
    /// Architecture.
    pub arch: String,
    /// Client address.
    pub ip: String,
    /// OEM id.
    pub oem: String,
    /// Machine alias.
    pub alias: String,
    /// Update status.
    pub status: InstanceStatus,
    /// Whether an update is in flight.
    pub update_in_progress: bool,
    /// Version last granted.
    pub last_update_version: Option<String>,
    /// Version running when the last update was granted (for rollback detection).
    pub from_version: Option<String>,
    /// Unix time of the last grant.
    pub last_update_granted_at: Option<i64>,
    /// Last error code and its decoded name.
    pub last_error_code: Option<u32>,
    /// Decoded `last_error_code`.
    pub last_error: Option<String>,
    /// Unix time first seen.
    pub first_seen: i64,
    /// Unix time of the last check-in.
    pub last_check: i64,
}

/// A recorded Omaha event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Unix time.
    pub ts: i64,
    /// App id.
    pub app_id: String,
    /// Machine id.
    pub machine_id: String,
    /// Event type number.
    pub event_type: u32,
    /// Event result number.
    pub event_result: u32,
    /// Error code, if any.
    pub error_code: Option<u32>,
    /// Decoded error code.
    pub error: Option<String>,
    /// `previousversion`.
    pub previous_version: Option<String>,
    /// Version running when sent.
    pub version: String,
}

/// Severity of an activity entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Info,
    /// Needs attention.
    Warning,
    /// Something stopped.
    Error,
}

/// An entry of the activity log (rollouts started, groups halted, channels promoted, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// Unix time.
    pub ts: i64,
    /// App id.
    pub app_id: String,
    /// Group, if the entry concerns one.
    pub group_id: Option<String>,
    /// Machine-readable kind (`rollout_started`, `group_halted`, …).
    pub kind: String,
    /// Severity.
    pub severity: Severity,
    /// Version concerned.
    pub version: Option<String>,
    /// Human-readable text.
    pub message: String,
}

/// Maps update_engine's `board` (or the syncer's `os@arch`) to a package architecture.
pub fn arch_from_board(board: Option<&str>, os_arch: Option<&str>) -> &'static str {
    let b = board.or(os_arch).unwrap_or("amd64");
    if b.starts_with("arm64") || b.starts_with("aarch64") {
        "arm64"
    } else {
        "amd64"
    }
}

/// Compares OS versions numerically component by component (`3975.2.10` > `3975.2.9`).
///
/// Non-numeric parts compare as strings; build metadata after `+` is ignored, as in semver.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn strip(v: &str) -> &str {
        v.split('+').next().unwrap_or("")
    }
    let (a, b) = (strip(a), strip(b));
    let mut ai = a.split(['.', '-']);
    let mut bi = b.split(['.', '-']);
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return Ordering::Equal,
            (Some(_), None) => return Ordering::Greater,
            (None, Some(_)) => return Ordering::Less,
            (Some(x), Some(y)) => {
                let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions("3975.2.10", "3975.2.9"), Ordering::Greater);
        assert_eq!(compare_versions("3975.2.0", "3975.2.0+dev"), Ordering::Equal);
        assert_eq!(compare_versions("1.2", "1.2.0"), Ordering::Less);
        assert_eq!(compare_versions("0.0.0", "2512.2.0"), Ordering::Less);
    }

    #[test]
    fn boards_map_to_arches() {
        assert_eq!(arch_from_board(Some("amd64-usr"), None), "amd64");
        assert_eq!(arch_from_board(Some("arm64-usr"), None), "arm64");
        assert_eq!(arch_from_board(None, Some("x64")), "amd64");
    }

    #[test]
    fn statuses_round_trip() {
        for s in InstanceStatus::ALL {
            assert_eq!(InstanceStatus::from_code(s.code()), s);
            assert_eq!(InstanceStatus::from_name(s.name()), Some(s));
        }
    }
}
