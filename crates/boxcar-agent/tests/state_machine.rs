//! The update_engine state machine: the happy path with its Omaha events,
//! every failure path, and an exhaustive check that events outside the
//! allowed transitions are refused without changing anything.

use boxcar_agent::{after_boot, BootReport, Effect, ErrorCode, Event, Machine, PendingUpdate, Refused, State};
use boxcar_omaha::{EventResult, EventType};

fn omaha(t: EventType, r: EventResult, code: Option<u32>) -> Effect {
    Effect::OmahaEvent {
        event_type: t,
        result: r,
        error_code: code.map(ErrorCode),
    }
}

fn offer() -> Event {
    Event::UpdateFound {
        version: "4800.1.0".into(),
        size: 1000,
    }
}

/// Drives a fresh machine into `target` along the happy path.
fn machine_in(target: State) -> Machine {
    let mut m = Machine::default();
    let path = [
        Event::CheckRequested,
        offer(),
        Event::DownloadStarted,
        Event::Progress { done: 1000 },
        Event::DownloadFinished,
        Event::VerifyPassed,
        Event::Finalized,
    ];
    if target == State::ReportingErrorEvent {
        m.handle(Event::CheckRequested).unwrap();
        m.handle(Event::Failed { code: ErrorCode(37) }).unwrap();
        return m;
    }
    for ev in path {
        if m.status().state == target {
            break;
        }
        m.handle(ev).unwrap();
    }
    assert_eq!(m.status().state, target);
    m
}

#[test]
fn happy_path_states_and_events_as_update_engine() {
    let mut m = Machine::default();
    assert_eq!(m.status().state.dbus_name(), "UPDATE_STATUS_IDLE");
    assert_eq!(m.handle(Event::CheckRequested).unwrap(), vec![Effect::StatusChanged]);
    assert_eq!(m.handle(offer()).unwrap(), vec![Effect::StatusChanged]);
    assert_eq!(m.status().new_version.as_deref(), Some("4800.1.0"));
    assert_eq!(
        m.handle(Event::DownloadStarted).unwrap(),
        vec![
            omaha(EventType::DownloadStarted, EventResult::Success, None),
            Effect::StatusChanged
        ]
    );
    m.handle(Event::Progress { done: 250 }).unwrap();
    assert_eq!(m.status().progress, 0.25);
    assert_eq!(
        m.handle(Event::DownloadFinished).unwrap_err(),
        Refused::Incomplete { done: 250, size: 1000 }
    );
    m.handle(Event::Progress { done: 1000 }).unwrap();
    assert_eq!(
        m.handle(Event::DownloadFinished).unwrap(),
        vec![
            omaha(EventType::DownloadFinished, EventResult::Success, None),
            Effect::StatusChanged
        ]
    );
    assert_eq!(m.status().state, State::Verifying);
    m.handle(Event::VerifyPassed).unwrap();
    assert_eq!(
        m.handle(Event::Finalized).unwrap(),
        vec![
            omaha(EventType::UpdateComplete, EventResult::Success, None),
            Effect::SignalRebootNeeded,
            Effect::StatusChanged
        ]
    );
    assert_eq!(m.status().state.dbus_name(), "UPDATE_STATUS_UPDATED_NEED_REBOOT");
    // No second update on top of a staged one.
    assert_eq!(m.handle(Event::CheckRequested).unwrap_err(), Refused::AlreadyUpdated);
    // ResetStatus un-stages the slot.
    assert_eq!(
        m.handle(Event::ResetRequested).unwrap(),
        vec![Effect::UnstageSlot, Effect::StatusChanged]
    );
    assert_eq!(m.status().state, State::Idle);
    assert_eq!(m.status().new_version, None);
}

#[test]
fn failure_in_every_attempt_state_reports_an_error_event() {
    for st in [
        State::CheckingForUpdate,
        State::UpdateAvailable,
        State::Downloading,
        State::Verifying,
        State::Finalizing,
    ] {
        let mut m = machine_in(st);
        let eff = m.handle(Event::Failed { code: ErrorCode(10) }).unwrap();
        assert_eq!(
            eff,
            vec![
                omaha(EventType::UpdateComplete, EventResult::Error, Some(10)),
                Effect::StatusChanged
            ],
            "{st:?}"
        );
        assert_eq!(m.status().state, State::ReportingErrorEvent);
        assert_eq!(m.status().last_error, Some(ErrorCode(10)));
        m.handle(Event::ErrorReported).unwrap();
        assert_eq!(m.status().state, State::Idle);
        assert_eq!(m.status().new_version, None);
        // And a new check can start.
        m.handle(Event::CheckRequested).unwrap();
    }
}

#[test]
fn events_outside_the_transition_table_are_refused_and_change_nothing() {
    let events = [
        Event::CheckRequested,
        Event::NoUpdate,
        offer(),
        Event::DownloadStarted,
        Event::Progress { done: 1000 },
        Event::DownloadFinished,
        Event::VerifyPassed,
        Event::Finalized,
        Event::Failed { code: ErrorCode(1) },
        Event::ErrorReported,
        Event::ResetRequested,
    ];
    let mut accepted = Vec::new();
    for st in State::ALL {
        for ev in &events {
            let mut m = machine_in(st);
            let before = m.clone();
            match m.handle(ev.clone()) {
                Ok(_) => accepted.push((st, format!("{ev:?}").split([' ', '{']).next().unwrap().to_string())),
                Err(_) => assert_eq!(m, before, "refused {ev:?} in {st:?} changed the machine"),
            }
        }
    }
    let s = |st: State, e: &str| (st, e.to_string());
    use State::*;
    let expected = vec![
        s(Idle, "CheckRequested"),
        s(Idle, "ResetRequested"),
        s(CheckingForUpdate, "NoUpdate"),
        s(CheckingForUpdate, "UpdateFound"),
        s(CheckingForUpdate, "Failed"),
        s(UpdateAvailable, "DownloadStarted"),
        s(UpdateAvailable, "Failed"),
        s(Downloading, "Progress"),
        // DownloadFinished is guarded: refused here because nothing was
        // received yet (accepted after full progress, see the happy path).
        s(Downloading, "Failed"),
        s(Verifying, "VerifyPassed"),
        s(Verifying, "Failed"),
        s(Finalizing, "Finalized"),
        s(Finalizing, "Failed"),
        s(UpdatedNeedReboot, "ResetRequested"),
        s(ReportingErrorEvent, "ErrorReported"),
    ];
    assert_eq!(accepted, expected);
}

#[test]
fn progress_guards_and_bad_offers() {
    let mut m = machine_in(State::Downloading);
    m.handle(Event::Progress { done: 500 }).unwrap();
    assert!(matches!(
        m.handle(Event::Progress { done: 400 }),
        Err(Refused::BadProgress { .. })
    ));
    assert!(matches!(
        m.handle(Event::Progress { done: 1001 }),
        Err(Refused::BadProgress { .. })
    ));
    assert_eq!(m.status().downloaded, 500);
    let mut m = machine_in(State::CheckingForUpdate);
    assert_eq!(
        m.handle(Event::UpdateFound {
            version: "1".into(),
            size: 0
        })
        .unwrap_err(),
        Refused::BadOffer
    );
    assert_eq!(m.handle(Event::CheckRequested).unwrap_err(), Refused::Busy);
}

#[test]
fn after_boot_reports_success_or_rollback() {
    let p = PendingUpdate {
        version: "4800.1.0".into(),
    };
    assert_eq!(after_boot(None, "4799.0.0"), BootReport::Nothing);
    assert_eq!(after_boot(None, "4799.0.0").effect(), None);
    let ok = after_boot(Some(&p), "4800.1.0");
    assert_eq!(
        ok.effect(),
        Some(omaha(EventType::UpdateComplete, EventResult::SuccessReboot, None))
    );
    let rb = after_boot(Some(&p), "4799.0.0");
    assert_eq!(
        rb,
        BootReport::RolledBack {
            wanted: "4800.1.0".into(),
            running: "4799.0.0".into()
        }
    );
    assert_eq!(
        rb.effect(),
        Some(omaha(EventType::UpdateComplete, EventResult::Error, Some(44)))
    );
    assert_eq!(boxcar_omaha::error_code_name(44), "RollbackError");
}
