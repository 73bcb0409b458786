//! update_engine's states and the transitions between them. Events that do
//! not fit the current state are refused and leave it unchanged, so a late
//! download callback or a duplicate D-Bus call can never skip verification.

use boxcar_omaha::{EventResult, EventType};

/// update_engine's states, as `GetStatus` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    CheckingForUpdate,
    UpdateAvailable,
    Downloading,
    Verifying,
    Finalizing,
    UpdatedNeedReboot,
    ReportingErrorEvent,
}

impl State {
    /// Every state, for exhaustive tests and documentation.
    pub const ALL: [State; 8] = [
        State::Idle,
        State::CheckingForUpdate,
        State::UpdateAvailable,
        State::Downloading,
        State::Verifying,
        State::Finalizing,
        State::UpdatedNeedReboot,
        State::ReportingErrorEvent,
    ];

    /// The name update_engine puts on D-Bus (`com.coreos.update1` `GetStatus`)
    /// and `update_engine_client -status` prints as `CURRENT_OP`.
    pub fn dbus_name(self) -> &'static str {
        match self {
            State::Idle => "UPDATE_STATUS_IDLE",
            State::CheckingForUpdate => "UPDATE_STATUS_CHECKING_FOR_UPDATE",
            State::UpdateAvailable => "UPDATE_STATUS_UPDATE_AVAILABLE",
            State::Downloading => "UPDATE_STATUS_DOWNLOADING",
            State::Verifying => "UPDATE_STATUS_VERIFYING",
            State::Finalizing => "UPDATE_STATUS_FINALIZING",
            State::UpdatedNeedReboot => "UPDATE_STATUS_UPDATED_NEED_REBOOT",
            State::ReportingErrorEvent => "UPDATE_STATUS_REPORTING_ERROR_EVENT",
        }
    }

    /// States in which an update attempt is under way and may fail.
    fn in_attempt(self) -> bool {
        matches!(
            self,
            State::CheckingForUpdate
                | State::UpdateAvailable
                | State::Downloading
                | State::Verifying
                | State::Finalizing
        )
    }
}

/// An update_engine error code (ActionExitCode), as sent in Omaha events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub u32);

/// What happened, as reported to the machine by the daemon's workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Timer or `AttemptUpdate`/`boxcar update check`.
    CheckRequested,
    /// The server answered "noupdate".
    NoUpdate,
    /// The server offered a version of `size` payload bytes.
    UpdateFound {
        version: String,
        size: u64,
    },
    DownloadStarted,
    /// `done` payload bytes received so far.
    Progress {
        done: u64,
    },
    DownloadFinished,
    /// Signature, digests and the read-back of the written slot all passed.
    VerifyPassed,
    /// Slot marked for a trial boot and its boot entry installed.
    Finalized,
    /// Any step of the attempt failed.
    Failed {
        code: ErrorCode,
    },
    /// The error event reached the server (or gave up trying).
    ErrorReported,
    /// `ResetStatus`: forget a staged update (un-stages the slot).
    ResetRequested,
}

impl Event {
    fn name(&self) -> &'static str {
        match self {
            Event::CheckRequested => "CheckRequested",
            Event::NoUpdate => "NoUpdate",
            Event::UpdateFound { .. } => "UpdateFound",
            Event::DownloadStarted => "DownloadStarted",
            Event::Progress { .. } => "Progress",
            Event::DownloadFinished => "DownloadFinished",
            Event::VerifyPassed => "VerifyPassed",
            Event::Finalized => "Finalized",
            Event::Failed { .. } => "Failed",
            Event::ErrorReported => "ErrorReported",
            Event::ResetRequested => "ResetRequested",
        }
    }
}

/// What the daemon must do after a transition, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send an Omaha event as update_engine does.
    OmahaEvent {
        event_type: EventType,
        result: EventResult,
        error_code: Option<ErrorCode>,
    },
    /// Touch `/run/reboot-required` and tell the API/D-Bus listeners.
    SignalRebootNeeded,
    /// Make the passive slot unbootable again and remove its boot entry.
    UnstageSlot,
    /// Emit the `StatusUpdate` D-Bus signal / API notification.
    StatusChanged,
}

/// A refused event; the state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("event {event} is not valid in state {}", from.dbus_name())]
    InvalidTransition { from: State, event: &'static str },
    #[error("an update is already staged; reboot or reset first")]
    AlreadyUpdated,
    #[error("an update check or attempt is already in progress")]
    Busy,
    #[error("progress {done} is below {previous} or beyond the payload size {size}")]
    BadProgress { done: u64, previous: u64, size: u64 },
    #[error("download finished after {done} of {size} bytes")]
    Incomplete { done: u64, size: u64 },
    #[error("an offered payload must have a version and a non-zero size")]
    BadOffer,
}

/// The fields update_engine's `GetStatus` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub state: State,
    /// 0.0–1.0 while downloading.
    pub progress: f64,
    pub new_version: Option<String>,
    pub new_size: u64,
    /// Bytes received of the current download.
    pub downloaded: u64,
    pub last_error: Option<ErrorCode>,
}

/// The state machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    status: Status,
}

impl Default for Machine {
    fn default() -> Self {
        Machine {
            status: Status {
                state: State::Idle,
                progress: 0.0,
                new_version: None,
                new_size: 0,
                downloaded: 0,
                last_error: None,
            },
        }
    }
}

fn omaha(event_type: EventType, result: EventResult) -> Effect {
    Effect::OmahaEvent {
        event_type,
        result,
        error_code: None,
    }
}

impl Machine {
    /// A machine in UPDATED_NEED_REBOOT for an update staged earlier in this boot, when the
    /// daemon restarts before the reboot (update_engine restores the same state from its
    /// completion marker in /run). No effects: the events were sent by the first run.
    pub fn staged(version: String, size: u64) -> Machine {
        Machine {
            status: Status {
                state: State::UpdatedNeedReboot,
                progress: 1.0,
                new_version: Some(version),
                new_size: size,
                downloaded: size,
                last_error: None,
            },
        }
    }

    /// Current status.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Applies an event: the new state and the effects, or a refusal with
    /// the state unchanged.
    pub fn handle(&mut self, ev: Event) -> Result<Vec<Effect>, Refused> {
        use State::*;
        let s = &mut self.status;
        let from = s.state;
        let invalid = || Refused::InvalidTransition { from, event: ev.name() };
        let mut effects = match (from, &ev) {
            (Idle, Event::CheckRequested) => {
                s.state = CheckingForUpdate;
                vec![]
            }
            (UpdatedNeedReboot, Event::CheckRequested) => return Err(Refused::AlreadyUpdated),
            (st, Event::CheckRequested) if st.in_attempt() || st == ReportingErrorEvent => return Err(Refused::Busy),
            (CheckingForUpdate, Event::NoUpdate) => {
                s.state = Idle;
                vec![]
            }
            (CheckingForUpdate, Event::UpdateFound { version, size }) => {
                if version.is_empty() || *size == 0 {
                    return Err(Refused::BadOffer);
                }
                s.state = UpdateAvailable;
                s.new_version = Some(version.clone());
                s.new_size = *size;
                s.downloaded = 0;
                s.progress = 0.0;
                vec![]
            }
            (UpdateAvailable, Event::DownloadStarted) => {
                s.state = Downloading;
                vec![omaha(EventType::DownloadStarted, EventResult::Success)]
            }
            (Downloading, Event::Progress { done }) => {
                if *done < s.downloaded || *done > s.new_size {
                    return Err(Refused::BadProgress {
                        done: *done,
                        previous: s.downloaded,
                        size: s.new_size,
                    });
                }
                s.downloaded = *done;
                s.progress = *done as f64 / s.new_size as f64;
                vec![]
            }
            (Downloading, Event::DownloadFinished) => {
                if s.downloaded != s.new_size {
                    return Err(Refused::Incomplete {
                        done: s.downloaded,
                        size: s.new_size,
                    });
                }
                s.state = Verifying;
                vec![omaha(EventType::DownloadFinished, EventResult::Success)]
            }
            (Verifying, Event::VerifyPassed) => {
                s.state = Finalizing;
                vec![]
            }
            (Finalizing, Event::Finalized) => {
                s.state = UpdatedNeedReboot;
                vec![
                    omaha(EventType::UpdateComplete, EventResult::Success),
                    Effect::SignalRebootNeeded,
                ]
            }
            (st, Event::Failed { code }) if st.in_attempt() => {
                s.state = ReportingErrorEvent;
                s.last_error = Some(*code);
                vec![Effect::OmahaEvent {
                    event_type: EventType::UpdateComplete,
                    result: EventResult::Error,
                    error_code: Some(*code),
                }]
            }
            (ReportingErrorEvent, Event::ErrorReported) => {
                s.state = Idle;
                s.new_version = None;
                s.new_size = 0;
                s.downloaded = 0;
                s.progress = 0.0;
                vec![]
            }
            (UpdatedNeedReboot, Event::ResetRequested) => {
                s.state = Idle;
                s.new_version = None;
                s.new_size = 0;
                s.downloaded = 0;
                s.progress = 0.0;
                vec![Effect::UnstageSlot]
            }
            (Idle, Event::ResetRequested) => return Ok(vec![]),
            _ => return Err(invalid()),
        };
        effects.push(Effect::StatusChanged);
        Ok(effects)
    }
}
