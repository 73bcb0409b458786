//! The local API's wire format: one JSON object per line on a Unix socket, both ways.
//!
//! Every message carries `"v": 1` so a newer CLI talking to an older daemon (or the reverse)
//! gets a clear "unsupported version" instead of a misread field. Requests:
//!
//! ```text
//! {"v":1,"method":"status"}     → {"v":1,"ok":true,"status":{…}}
//! {"v":1,"method":"check"}      → {"v":1,"ok":true,"status":{…}}   (AttemptUpdate)
//! {"v":1,"method":"reset"}      → {"v":1,"ok":true,"status":{…}}   (ResetStatus)
//! {"v":1,"method":"rollback"}   → {"v":1,"ok":true,"rollback":{"version":"…"}}
//! {"v":1,"method":"watch"}      → one {"v":1,"ok":true,"status":{…}} line now and per change
//! anything else                 → {"v":1,"ok":false,"error":{"kind":"bad_request","message":"…"}}
//! ```

use crate::state::{State, Status};
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// Longest request line the daemon reads; anything longer is a bad request.
pub const MAX_REQUEST_LINE: usize = 4096;

/// What a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Current status (GetStatus).
    Status,
    /// Start an update check now (AttemptUpdate).
    Check,
    /// Forget a staged update (ResetStatus).
    Reset,
    /// Make the other slot boot next, on purpose.
    Rollback,
    /// Stream status changes until the client hangs up.
    Watch,
}

/// A request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version.
    pub v: u32,
    /// What to do.
    pub method: Method,
}

impl Request {
    /// A request of this build's version.
    pub fn new(method: Method) -> Request {
        Request { v: VERSION, method }
    }
}

/// The last failure, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    /// update_engine error code (ActionExitCode, or 2000 + HTTP status).
    pub code: u32,
    /// Its name, e.g. `OmahaRequestXMLParseError`.
    pub name: String,
    /// What happened, for people.
    pub message: String,
}

/// The status fields: update_engine's five `GetStatus` values plus what Boxcar adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    /// Unix time of the last update check (0 = never).
    pub last_checked_time: i64,
    /// 0.0–1.0 while downloading.
    pub progress: f64,
    /// `UPDATE_STATUS_…`.
    pub current_operation: String,
    /// Version offered or staged ("" when none; update_engine prints `0.0.0.0`).
    pub new_version: String,
    /// Payload size in bytes.
    pub new_size: u64,
    /// Payload bytes received so far.
    pub downloaded: u64,
    /// The running version (os-release `VERSION_ID`).
    pub running_version: String,
    /// `/run/reboot-required` was touched by this daemon.
    pub reboot_needed: bool,
    /// The last failure of an update attempt, if any since start or reset.
    pub last_error: Option<LastError>,
    /// Unix time the next scheduled check is due (0 = none scheduled: checks off).
    #[serde(default)]
    pub next_check_time: i64,
}

impl StatusView {
    /// Builds the view from the machine's status; `last_error` is the runner's (cleared when a
    /// new attempt starts, unlike the machine's last code).
    pub fn from_status(
        s: &Status,
        last_checked_time: i64,
        running_version: &str,
        last_error: Option<LastError>,
    ) -> Self {
        StatusView {
            last_checked_time,
            progress: s.progress,
            current_operation: s.state.dbus_name().to_string(),
            new_version: s.new_version.clone().unwrap_or_default(),
            new_size: s.new_size,
            downloaded: s.downloaded,
            running_version: running_version.to_string(),
            reboot_needed: s.state == State::UpdatedNeedReboot,
            last_error,
            next_check_time: 0,
        }
    }

    /// The five values of update_engine's `GetStatus` / `StatusUpdate`: (last checked time,
    /// progress, current operation, new version, new size).
    pub fn dbus_tuple(&self) -> (i64, f64, String, String, i64) {
        (
            self.last_checked_time,
            self.progress,
            self.current_operation.clone(),
            self.new_version.clone(),
            i64::try_from(self.new_size).unwrap_or(i64::MAX),
        )
    }

    /// Whether the state is one an update attempt ends in (nothing more will happen by itself).
    pub fn is_settled(&self) -> bool {
        self.current_operation == State::Idle.dbus_name()
            || self.current_operation == State::UpdatedNeedReboot.dbus_name()
    }

    /// `update_engine_client -status` lines.
    pub fn to_update_engine_lines(&self) -> String {
        format!(
            "LAST_CHECKED_TIME={}\nPROGRESS={}\nCURRENT_OP={}\nNEW_VERSION={}\nNEW_SIZE={}\n",
            self.last_checked_time,
            self.progress,
            self.current_operation,
            if self.new_version.is_empty() {
                "0.0.0.0"
            } else {
                &self.new_version
            },
            self.new_size
        )
    }
}

/// Why a request was not carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The line was not a valid request (JSON, fields, version).
    BadRequest,
    /// An update check or attempt is under way.
    Busy,
    /// An update is staged: reboot or reset first.
    AlreadyUpdated,
    /// Update checks are switched off (`SERVER=disabled`).
    Disabled,
    /// The staging engine failed (rollback, reset).
    Stager,
    /// The request is valid but not in this state.
    InvalidState,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Category, for programs.
    pub kind: ErrorKind,
    /// Explanation, for people.
    pub message: String,
}

/// What `rollback` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackView {
    /// The version that will boot next.
    pub version: String,
}

/// A response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version.
    pub v: u32,
    /// Whether the request was carried out.
    pub ok: bool,
    /// Status after the request (status, check, reset, watch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusView>,
    /// Rollback result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackView>,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

impl Response {
    /// A successful answer carrying a status.
    pub fn status(s: StatusView) -> Response {
        Response {
            v: VERSION,
            ok: true,
            status: Some(s),
            rollback: None,
            error: None,
        }
    }

    /// A successful rollback answer.
    pub fn rollback(version: String) -> Response {
        Response {
            v: VERSION,
            ok: true,
            status: None,
            rollback: Some(RollbackView { version }),
            error: None,
        }
    }

    /// An error answer.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
        Response {
            v: VERSION,
            ok: false,
            status: None,
            rollback: None,
            error: Some(ApiError {
                kind,
                message: message.into(),
            }),
        }
    }
}

/// Parses one request line, with an error message that says what was wrong.
pub fn parse_request(line: &str) -> Result<Request, String> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("request is not JSON: {e}"))?;
    match value.get("v").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return Err(format!(
                "unsupported protocol version {v} (this daemon speaks {VERSION})"
            ))
        }
        None => return Err("request has no protocol version \"v\"".into()),
    }
    serde_json::from_value(value)
        .map_err(|e| format!("invalid request: {e} (methods: status, check, reset, rollback, watch)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_errors_say_why() {
        assert_eq!(
            parse_request(r#"{"v":1,"method":"watch"}"#).unwrap(),
            Request::new(Method::Watch)
        );
        assert!(parse_request("status").unwrap_err().starts_with("request is not JSON"));
        assert_eq!(
            parse_request(r#"{"v":2,"method":"status"}"#).unwrap_err(),
            "unsupported protocol version 2 (this daemon speaks 1)"
        );
        assert!(parse_request(r#"{"method":"status"}"#)
            .unwrap_err()
            .contains("no protocol version"));
        let e = parse_request(r#"{"v":1,"method":"reboot"}"#).unwrap_err();
        assert!(
            e.contains("unknown variant `reboot`") && e.contains("methods: status"),
            "{e}"
        );
    }

    #[test]
    fn update_engine_lines() {
        let mut m = crate::Machine::default();
        let view = StatusView::from_status(m.status(), 0, "1.0.0", None);
        assert_eq!(
            view.to_update_engine_lines(),
            "LAST_CHECKED_TIME=0\nPROGRESS=0\nCURRENT_OP=UPDATE_STATUS_IDLE\nNEW_VERSION=0.0.0.0\nNEW_SIZE=0\n"
        );
        m.handle(crate::Event::CheckRequested).unwrap();
        m.handle(crate::Event::UpdateFound {
            version: "2.0.0".into(),
            size: 400,
        })
        .unwrap();
        m.handle(crate::Event::DownloadStarted).unwrap();
        m.handle(crate::Event::Progress { done: 100 }).unwrap();
        let view = StatusView::from_status(m.status(), 1700000000, "1.0.0", None);
        assert_eq!(
            view.to_update_engine_lines(),
            "LAST_CHECKED_TIME=1700000000\nPROGRESS=0.25\nCURRENT_OP=UPDATE_STATUS_DOWNLOADING\nNEW_VERSION=2.0.0\nNEW_SIZE=400\n"
        );
        assert_eq!(
            view.dbus_tuple(),
            (
                1700000000,
                0.25,
                "UPDATE_STATUS_DOWNLOADING".to_string(),
                "2.0.0".to_string(),
                400
            )
        );
        assert!(!view.is_settled());
    }
}
