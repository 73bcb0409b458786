//! Run records: per-stage status and timings, kept in the run directory
//! between stage invocations and written into the target as
//! `/etc/.boxcar-provision-result.json` by the files stage (Ignition's
//! `/etc/.ignition-result.json`, plus the stage table).

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The result file inside the target.
pub const RESULT_FILE: &str = "/etc/.boxcar-provision-result.json";

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    /// fetch-offline found the config needs the network; fetch takes over.
    Deferred,
    /// Nothing to do (e.g. fetch when fetch-offline already had the config).
    Skipped,
    Failed,
}

/// One stage's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageRecord {
    pub stage: String,
    pub status: Status,
    /// RFC 3339, UTC.
    pub started: String,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub json_path: Option<String>,
    /// The cause, already free of secrets.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// State carried between stage invocations (in the run directory).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunState {
    pub user_config_provided: bool,
    pub stages: Vec<StageRecord>,
}

impl RunState {
    /// Load from `path`; missing or unreadable state starts empty.
    pub fn load(path: &Path) -> RunState {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Record a stage, replacing an earlier record of the same stage.
    pub fn record(&mut self, r: StageRecord) {
        self.stages.retain(|s| s.stage != r.stage);
        self.stages.push(r);
    }
}

/// The result file's contents.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultFile {
    #[serde(rename = "provisioningBootID")]
    pub provisioning_boot_id: String,
    pub provisioning_date: String,
    pub user_config_provided: bool,
    pub stages: Vec<StageRecord>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub previous_report: Option<serde_json::Value>,
}

/// The current boot's id (empty when unavailable, e.g. in tests).
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `SystemTime` as RFC 3339 UTC (`2026-11-22T17:00:00Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_370_400)),
            "2026-11-22T18:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }
}
