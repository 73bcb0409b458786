//! What to report after a boot: the staged version came up (success after
//! reboot), or the boot loader fell back to the old slot (rollback).

use crate::state::{Effect, ErrorCode};
use boxcar_omaha::{EventResult, EventType};

/// update_engine's RollbackError, which Flatcar reports when the node came
/// back on the old version after an update.
pub const ROLLBACK_ERROR: ErrorCode = ErrorCode(44);

/// An update staged before the reboot (persisted by the daemon).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpdate {
    pub version: String,
}

/// What the agent learns after boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootReport {
    /// No update was pending: nothing to report.
    Nothing,
    /// The new version is running: report success-after-reboot (3/2).
    Succeeded { version: String },
    /// The old version is running although an update was staged: the new
    /// one did not become healthy in time. Report 3/0/44.
    RolledBack { wanted: String, running: String },
}

impl BootReport {
    /// The Omaha event to send for this report, if any.
    pub fn effect(&self) -> Option<Effect> {
        match self {
            BootReport::Nothing => None,
            BootReport::Succeeded { .. } => Some(Effect::OmahaEvent {
                event_type: EventType::UpdateComplete,
                result: EventResult::SuccessReboot,
                error_code: None,
            }),
            BootReport::RolledBack { .. } => Some(Effect::OmahaEvent {
                event_type: EventType::UpdateComplete,
                result: EventResult::Error,
                error_code: Some(ROLLBACK_ERROR),
            }),
        }
    }
}

/// Decides the report from the pending update and the running version.
pub fn after_boot(pending: Option<&PendingUpdate>, running: &str) -> BootReport {
    match pending {
        None => BootReport::Nothing,
        Some(p) if p.version == running => BootReport::Succeeded {
            version: running.to_string(),
        },
        Some(p) => BootReport::RolledBack {
            wanted: p.version.clone(),
            running: running.to_string(),
        },
    }
}
