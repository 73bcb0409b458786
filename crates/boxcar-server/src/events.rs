//! Instance status from the event sequence update_engine reports (pure).
//!
//! check(3/2 prev) → grant → 13/1 downloading → 14/1 downloaded → 3/1 installed → reboot →
//! check with 3/2 `previousversion=<old>` → complete. Result 0 is an error; error code 44 (or an
//! installed instance checking in on its old version) is a rollback.

use crate::model::InstanceStatus;
use boxcar_omaha::{Event, EventResult, EventType};

/// The part of an instance that events move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Current status.
    pub status: InstanceStatus,
    /// Whether an update is in flight.
    pub update_in_progress: bool,
    /// Version granted last.
    pub last_update_version: Option<String>,
    /// Version running when that grant was made.
    pub from_version: Option<String>,
}

/// Whether an event says nothing beyond "I am checking in" (update_engine attaches
/// `3/2 previousversion=0.0.0.0` to every scheduled check).
pub fn is_heartbeat(ev: &Event) -> bool {
    ev.event_type == EventType::UpdateComplete
        && ev.event_result == EventResult::SuccessReboot
        && matches!(ev.previous_version.as_deref(), None | Some("") | Some("0.0.0.0"))
}

/// Applies one event; returns the new progress when it changes.
///
/// Events other than failures are ignored unless an update is in flight (as Nebraska does), so a
/// replayed or stray event cannot move an idle instance.
pub fn apply_event(p: &Progress, running_version: &str, ev: &Event) -> Option<Progress> {
    let to = |status, in_progress| {
        Some(Progress {
            status,
            update_in_progress: in_progress,
            ..p.clone()
        })
    };
    if ev.event_result == EventResult::Error {
        if !p.update_in_progress && p.last_update_version.is_none() {
            return None;
        }
        return if ev.error_code == Some(44) {
            to(InstanceStatus::Rollback, false)
        } else {
            to(InstanceStatus::Error, false)
        };
    }
    if !p.update_in_progress {
        return None;
    }
    match (ev.event_type, ev.event_result) {
        (EventType::DownloadStarted, EventResult::Success) => to(InstanceStatus::Downloading, true),
        (EventType::DownloadFinished, EventResult::Success) => to(InstanceStatus::Downloaded, true),
        (EventType::UpdateComplete, EventResult::Success) | (EventType::Installed, EventResult::Success) => {
            to(InstanceStatus::Installed, true)
        }
        (EventType::UpdateComplete, EventResult::SuccessReboot) => {
            if p.last_update_version.as_deref() == Some(running_version) {
                to(InstanceStatus::Complete, false)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The previous-version rule on the server: an instance that installed an update but checks in
/// still running the version it was updated from has rolled back.
pub fn detect_rollback(p: &Progress, running_version: &str) -> bool {
    p.update_in_progress
        && p.status == InstanceStatus::Installed
        && p.last_update_version.as_deref() != Some(running_version)
        && p.from_version.as_deref() == Some(running_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: u32, r: u32, code: Option<u32>, prev: Option<&str>) -> Event {
        Event {
            event_type: t.into(),
            event_result: r.into(),
            error_code: code,
            previous_version: prev.map(str::to_string),
        }
    }

    fn granted() -> Progress {
        Progress {
            status: InstanceStatus::Granted,
            update_in_progress: true,
            last_update_version: Some("2.0.0".into()),
            from_version: Some("1.0.0".into()),
        }
    }

    #[test]
    fn a_full_update_walks_through_every_status() {
        let mut p = granted();
        for (e, want) in [
            (ev(13, 1, None, None), InstanceStatus::Downloading),
            (ev(14, 1, None, None), InstanceStatus::Downloaded),
            (ev(3, 1, None, None), InstanceStatus::Installed),
        ] {
            p = apply_event(&p, "1.0.0", &e).unwrap();
            assert_eq!(p.status, want);
            assert!(p.update_in_progress);
        }
        p = apply_event(&p, "2.0.0", &ev(3, 2, None, Some("1.0.0"))).unwrap();
        assert_eq!((p.status, p.update_in_progress), (InstanceStatus::Complete, false));
    }

    #[test]
    fn errors_and_rollbacks() {
        let p = apply_event(&granted(), "1.0.0", &ev(3, 0, Some(10), None)).unwrap();
        assert_eq!((p.status, p.update_in_progress), (InstanceStatus::Error, false));
        let p = apply_event(&granted(), "1.0.0", &ev(3, 0, Some(44), None)).unwrap();
        assert_eq!(p.status, InstanceStatus::Rollback);
        // Never granted anything: an error is recorded as an event only.
        let idle = Progress {
            status: InstanceStatus::Undefined,
            update_in_progress: false,
            last_update_version: None,
            from_version: None,
        };
        assert_eq!(apply_event(&idle, "1.0.0", &ev(3, 0, Some(44), None)), None);
        assert_eq!(apply_event(&idle, "1.0.0", &ev(13, 1, None, None)), None);
    }

    #[test]
    fn heartbeats_and_the_previous_version_rule() {
        assert!(is_heartbeat(&ev(3, 2, None, Some("0.0.0.0"))));
        assert!(is_heartbeat(&ev(3, 2, None, Some(""))));
        assert!(!is_heartbeat(&ev(3, 2, None, Some("1.0.0"))));
        let installed = Progress {
            status: InstanceStatus::Installed,
            ..granted()
        };
        assert!(detect_rollback(&installed, "1.0.0"));
        assert!(!detect_rollback(&installed, "2.0.0"));
        assert!(!detect_rollback(&granted(), "1.0.0"));
    }
}
