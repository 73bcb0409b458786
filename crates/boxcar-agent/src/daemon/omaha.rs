//! The Omaha requests the agent sends and how it reads the answers, in update_engine's shape
//! (pure: no I/O, so every rule is tested on documents).
//!
//! * Update check: `<ping active="1"/><updatecheck/>` plus one event: the boot report when
//!   there is one (`3/2 previousversion=<old>` after a successful update, `3/0 errorcode=44`
//!   after a rollback), else update_engine's heartbeat `3/2 previousversion=0.0.0.0`.
//! * Ping only, while an update waits for its reboot.
//! * Event reports: `13/1` download started, `14/1` download finished, `3/1` installed,
//!   `3/0 errorcode=N` failures. update_engine never sends Nebraska's `800`, so neither do we.

use super::identity::Identity;
use crate::stager::Offer;
use crate::state::ErrorCode;
use base64::Engine;
use boxcar_omaha::{AppRequest, Event, EventResult, EventType, Os, Ping, Request, Response, UpdateCheck, UpdateStatus};

/// What update_engine puts in `version`/`updaterversion`; servers key behaviour on it.
pub const UPDATER_VERSION: &str = "update_engine-0.4.10";

/// Error codes the client side produces (update_engine's ActionExitCode values).
pub mod codes {
    use crate::state::ErrorCode;
    /// The request could not be sent or no answer came (connection refused, timeout).
    pub const OMAHA_REQUEST_ERROR: ErrorCode = ErrorCode(2);
    /// The offered payload is larger than this node accepts.
    pub const PAYLOAD_SIZE_MISMATCH: ErrorCode = ErrorCode(11);
    /// The answer was empty.
    pub const EMPTY_RESPONSE: ErrorCode = ErrorCode(30);
    /// The answer was not acceptable XML (garbage, DTD/entities, too large).
    pub const XML_PARSE_ERROR: ErrorCode = ErrorCode(31);
    /// The answer was XML but not a usable Omaha response (error status, missing fields).
    pub const RESPONSE_INVALID: ErrorCode = ErrorCode(34);
    /// update_engine's base for HTTP statuses: 2000 + status.
    pub fn http(status: u16) -> ErrorCode {
        ErrorCode(2000 + u32::from(status))
    }
}

/// Why a check was made (`installsource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The timer.
    Scheduler,
    /// `AttemptUpdate` / `boxcar update check`.
    OnDemand,
}

/// Static request parameters from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Omaha app id.
    pub app_id: String,
    /// Track (`GROUP`).
    pub track: String,
    /// Board.
    pub board: String,
    /// Machine alias.
    pub machine_alias: Option<String>,
}

fn base(id: &Identity, p: &Params, source: Option<Source>) -> Request {
    Request {
        protocol: "3.0".into(),
        version: Some(UPDATER_VERSION.into()),
        updater_version: Some(UPDATER_VERSION.into()),
        install_source: source.map(|s| match s {
            Source::Scheduler => "scheduler".into(),
            Source::OnDemand => "ondemandupdate".into(),
        }),
        is_machine: Some("1".into()),
        os: Some(Os {
            version: Some("Chateau".into()),
            platform: Some("CoreOS".into()),
            sp: Some(format!("{}_{}", id.version, std::env::consts::ARCH)),
            arch: None,
        }),
        apps: vec![AppRequest {
            app_id: p.app_id.clone(),
            version: id.version.clone(),
            track: Some(p.track.clone()),
            boot_id: Some(id.boot_id.clone()),
            oem: Some(id.oem.clone()),
            oem_version: Some(id.oem_version.clone()),
            machine_id: id.machine_id.clone(),
            machine_alias: p.machine_alias.clone(),
            lang: Some("en-US".into()),
            board: Some(p.board.clone()),
            hardware_class: Some(String::new()),
            delta_okay: Some("false".into()),
            ..AppRequest::default()
        }],
    }
}

/// The event update_engine attaches to a scheduled check when nothing happened.
pub fn heartbeat() -> Event {
    Event {
        event_type: EventType::UpdateComplete,
        event_result: EventResult::SuccessReboot,
        error_code: None,
        previous_version: Some("0.0.0.0".into()),
    }
}

/// An event from the state machine's effect; `errorcode` only on failures.
pub fn event(event_type: EventType, result: EventResult, code: Option<ErrorCode>) -> Event {
    Event {
        event_type,
        event_result: result,
        error_code: if result == EventResult::Error {
            code.map(|c| c.0)
        } else {
            None
        },
        previous_version: None,
    }
}

/// An update check with its event (the boot report, or the heartbeat).
pub fn check_request(id: &Identity, p: &Params, source: Source, ev: Event) -> Request {
    let mut r = base(id, p, Some(source));
    let app = &mut r.apps[0];
    app.ping = Some(Ping {
        active: Some("1".into()),
        ..Ping::default()
    });
    app.update_check = Some(UpdateCheck::default());
    app.events.push(ev);
    r
}

/// Ping only (update staged, waiting for the reboot).
pub fn ping_request(id: &Identity, p: &Params) -> Request {
    let mut r = base(id, p, Some(Source::Scheduler));
    r.apps[0].ping = Some(Ping {
        active: Some("1".into()),
        ..Ping::default()
    });
    r
}

/// An event report.
pub fn event_request(id: &Identity, p: &Params, ev: Event) -> Request {
    let mut r = base(id, p, None);
    r.apps[0].events.push(ev);
    r
}

/// What an update check answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Nothing to do.
    NoUpdate,
    /// An update to stage.
    Offer(Offer),
}

/// A usable answer and the server's `PollInterval` (seconds), if it sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckAnswer {
    /// Update or not.
    pub answer: Answer,
    /// Seconds until the next check, as the server wishes.
    pub poll_interval: Option<u32>,
}

/// A check that failed, with the code update_engine reports for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CheckError {
    /// Error code for the 3/0 event.
    pub code: ErrorCode,
    /// What was wrong; never contains secrets.
    pub message: String,
}

fn invalid(message: impl Into<String>) -> CheckError {
    CheckError {
        code: codes::RESPONSE_INVALID,
        message: message.into(),
    }
}

/// Reads a response body as update_engine does: `noupdate`, or `ok` with a manifest, a
/// codebase, one package of non-zero size and the postinstall action's `sha256` (base64,
/// required). Anything else is an error with update_engine's code.
pub fn interpret(body: &[u8], app_id: &str) -> Result<CheckAnswer, CheckError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(CheckError {
            code: codes::EMPTY_RESPONSE,
            message: "the server sent an empty response".into(),
        });
    }
    let resp = Response::parse(body).map_err(|e| CheckError {
        code: codes::XML_PARSE_ERROR,
        message: e.to_string(),
    })?;
    let app = resp
        .apps
        .iter()
        .find(|a| boxcar_omaha::normalize_app_id(&a.app_id) == boxcar_omaha::normalize_app_id(app_id))
        .or_else(|| resp.apps.first())
        .ok_or_else(|| invalid("response has no <app>"))?;
    let uc = app.update_check.as_ref().ok_or_else(|| {
        invalid(format!(
            "response has no <updatecheck> (app status {})",
            app.status.as_str()
        ))
    })?;
    let poll_interval = uc.poll_interval;
    match &uc.status {
        UpdateStatus::NoUpdate => {
            return Ok(CheckAnswer {
                answer: Answer::NoUpdate,
                poll_interval,
            })
        }
        UpdateStatus::Ok => {}
        other => {
            return Err(invalid(format!(
                "server answered updatecheck status {} (app status {})",
                other.as_str(),
                app.status.as_str()
            )))
        }
    }
    let m = uc
        .manifest
        .as_ref()
        .ok_or_else(|| invalid("update offered without <manifest>"))?;
    if m.version.is_empty() {
        return Err(invalid("update offered without a manifest version"));
    }
    let codebase = uc
        .urls
        .iter()
        .find(|u| !u.is_empty())
        .ok_or_else(|| invalid("update offered without a codebase URL"))?;
    let pkg = m
        .packages
        .first()
        .ok_or_else(|| invalid("update offered without a package"))?;
    if pkg.size == 0 || pkg.name.is_empty() {
        return Err(invalid(format!("package {:?} has no name or a zero size", pkg.name)));
    }
    let sha_b64 = m
        .actions
        .iter()
        .find(|a| a.event == "postinstall")
        .and_then(|a| a.sha256.as_deref())
        .ok_or_else(|| invalid("update offered without the postinstall action's sha256"))?;
    let sha = base64::engine::general_purpose::STANDARD
        .decode(sha_b64)
        .ok()
        .filter(|d| d.len() == 32)
        .ok_or_else(|| invalid(format!("postinstall sha256 {sha_b64:?} is not base64 of 32 bytes")))?;
    Ok(CheckAnswer {
        answer: Answer::Offer(Offer {
            version: m.version.clone(),
            url: format!("{codebase}{}", pkg.name),
            size: pkg.size,
            sha256: Some(hex::encode(sha)),
        }),
        poll_interval,
    })
}

/// Whether an answer to an event report or ping is acceptable (parses as a response).
pub fn ack_ok(body: &[u8]) -> Result<(), CheckError> {
    Response::parse(body).map(|_| ()).map_err(|e| CheckError {
        code: codes::XML_PARSE_ERROR,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Identity {
        Identity {
            version: "1.0.0".into(),
            machine_id: "0123456789abcdef0123456789abcdef".into(),
            boot_id: "{b}".into(),
            oem: "qemu".into(),
            oem_version: String::new(),
        }
    }

    fn params() -> Params {
        Params {
            app_id: boxcar_omaha::FLATCAR_APP_ID.into(),
            track: "stable".into(),
            board: "amd64-usr".into(),
            machine_alias: None,
        }
    }

    #[test]
    fn check_request_has_update_engine_shape() {
        let xml = check_request(&id(), &params(), Source::OnDemand, heartbeat()).to_xml();
        for part in [
            r#"<request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="ondemandupdate" ismachine="1">"#,
            r#"<os version="Chateau" platform="CoreOS" sp="1.0.0_"#,
            r#"appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="1.0.0" track="stable" bootid="{b}" oem="qemu""#,
            r#"machineid="0123456789abcdef0123456789abcdef""#,
            r#"board="amd64-usr""#,
            r#"delta_okay="false""#,
            r#"<ping active="1""#,
            r#"<updatecheck"#,
            r#"<event eventtype="3" eventresult="2" previousversion="0.0.0.0""#,
        ] {
            assert!(xml.contains(part), "{part} missing from {xml}");
        }
        // It is what the server parses.
        let back = Request::parse(xml.as_bytes()).unwrap();
        assert_eq!(back.apps[0].events, vec![heartbeat()]);
        assert_eq!(back.install_source.as_deref(), Some("ondemandupdate"));
    }

    #[test]
    fn events_carry_error_codes_only_on_failure() {
        let e = event(EventType::DownloadStarted, EventResult::Success, Some(ErrorCode(9)));
        assert_eq!(e.error_code, None);
        let xml = event_request(
            &id(),
            &params(),
            event(EventType::UpdateComplete, EventResult::Error, Some(ErrorCode(44))),
        )
        .to_xml();
        assert!(
            xml.contains(r#"<event eventtype="3" eventresult="0" errorcode="44""#),
            "{xml}"
        );
        assert!(!xml.contains("<updatecheck") && !xml.contains("<ping"), "{xml}");
        let ping = ping_request(&id(), &params()).to_xml();
        assert!(ping.contains("<ping") && !ping.contains("<updatecheck") && !ping.contains("<event"));
    }

    const OFFER: &str = r#"<?xml version="1.0" encoding="UTF-8"?><response protocol="3.0" server="nebraska"><daystart elapsed_seconds="0"></daystart><app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" status="ok"><updatecheck status="ok" PollInterval="1800"><urls><url codebase="http://127.0.0.1:9/pkg/"></url></urls><manifest version="2.0.0"><packages><package name="boxcar.payload" hash="x" size="4096" required="true"></package></packages><actions><action event="postinstall" sha256="47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" DisablePayloadBackoff="true"></action></actions></manifest></updatecheck></app></response>"#;

    #[test]
    fn offer_is_read_with_hex_sha256_and_poll_interval() {
        let a = interpret(OFFER.as_bytes(), boxcar_omaha::FLATCAR_APP_ID).unwrap();
        assert_eq!(a.poll_interval, Some(1800));
        assert_eq!(
            a.answer,
            Answer::Offer(Offer {
                version: "2.0.0".into(),
                url: "http://127.0.0.1:9/pkg/boxcar.payload".into(),
                size: 4096,
                sha256: Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into()),
            })
        );
    }

    #[test]
    fn bad_answers_get_update_engine_codes() {
        let app = boxcar_omaha::FLATCAR_APP_ID;
        let code = |body: &str| interpret(body.as_bytes(), app).unwrap_err().code.0;
        assert_eq!(code(""), 30);
        assert_eq!(code("  \n"), 30);
        assert_eq!(code("this is not xml <<<"), 31);
        assert_eq!(
            code(r#"<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><response protocol="3.0">&b;</response>"#),
            31,
            "entity bombs are refused before expansion"
        );
        assert_eq!(code(&format!("<response>{}</response>", "<x/>".repeat(20_000))), 31);
        assert_eq!(code(r#"<response protocol="3.0"></response>"#), 34);
        assert_eq!(
            code(
                r#"<response protocol="3.0"><app appid="x" status="error-unknownApplication"><updatecheck status="error-internal"></updatecheck></app></response>"#
            ),
            34
        );
        assert_eq!(
            code(&OFFER.replace(r#" sha256="47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=""#, "")),
            34
        );
        assert_eq!(code(&OFFER.replace("47DEQpj8", "!!!!")), 34);
        assert_eq!(code(&OFFER.replace(r#"size="4096""#, r#"size="0""#)), 34);
        assert_eq!(
            code(&OFFER.replace(r#"<url codebase="http://127.0.0.1:9/pkg/"></url>"#, "")),
            34
        );
        let msg = interpret(
            br#"<response protocol="3.0"><app appid="x" status="error-unknownApplication"><updatecheck status="error-internal"></updatecheck></app></response>"#,
            app,
        )
        .unwrap_err()
        .message;
        assert_eq!(
            msg,
            "server answered updatecheck status error-internal (app status error-unknownApplication)"
        );
        let noupdate = interpret(
            br#"<response protocol="3.0"><app appid="x" status="ok"><updatecheck status="noupdate"></updatecheck></app></response>"#,
            app,
        )
        .unwrap();
        assert_eq!(noupdate.answer, Answer::NoUpdate);
        assert_eq!(codes::http(503), ErrorCode(2503));
    }
}
