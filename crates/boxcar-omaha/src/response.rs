//! The response update_engine reads: `updatecheck@status`, urls, the first manifest's first package
//! and the postinstall action's `sha256`.

use crate::parse::{parse_tree, Limits, Node};
use crate::ParseError;

/// An Omaha response document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// `protocol`, "3.0".
    pub protocol: String,
    /// `server` name (Nebraska writes "nebraska"; Boxcar "boxcar").
    pub server: Option<String>,
    /// `daystart@elapsed_seconds`.
    pub daystart_elapsed_seconds: Option<u64>,
    /// One `<app>` per requested app.
    pub apps: Vec<AppResponse>,
}

/// `app@status` values (go-omaha's set plus Nebraska's error strings, kept verbatim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppStatus {
    /// `ok`.
    Ok,
    /// `error-unknownApplication`.
    UnknownApplication,
    /// Any other string, e.g. `error-instanceRegistrationFailed`.
    Other(String),
}

impl AppStatus {
    /// The string on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            AppStatus::Ok => "ok",
            AppStatus::UnknownApplication => "error-unknownApplication",
            AppStatus::Other(s) => s,
        }
    }

    /// Parses a wire string.
    pub fn from_wire(s: &str) -> AppStatus {
        match s {
            "ok" => AppStatus::Ok,
            "error-unknownApplication" => AppStatus::UnknownApplication,
            s => AppStatus::Other(s.to_string()),
        }
    }
}

/// `updatecheck@status`. update_engine continues only on `ok`, does nothing on `noupdate` and reports
/// error 34 (OmahaResponseInvalid) on anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateStatus {
    /// `ok`: an update follows.
    Ok,
    /// `noupdate`.
    NoUpdate,
    /// `error-internal`.
    ErrorInternal,
    /// Any other string.
    Other(String),
}

impl UpdateStatus {
    /// The string on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            UpdateStatus::Ok => "ok",
            UpdateStatus::NoUpdate => "noupdate",
            UpdateStatus::ErrorInternal => "error-internal",
            UpdateStatus::Other(s) => s,
        }
    }

    /// Parses a wire string.
    pub fn from_wire(s: &str) -> UpdateStatus {
        match s {
            "ok" => UpdateStatus::Ok,
            "noupdate" => UpdateStatus::NoUpdate,
            "error-internal" => UpdateStatus::ErrorInternal,
            s => UpdateStatus::Other(s.to_string()),
        }
    }
}

/// One `<app>` of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppResponse {
    /// `appid`, echoed from the request.
    pub app_id: String,
    /// `status`; ignored by update_engine, read by humans and Nebraska syncers.
    pub status: AppStatus,
    /// `<ping status="ok">` acknowledgement, when the request pinged.
    pub ping_status: Option<String>,
    /// `<updatecheck>`, when the request asked.
    pub update_check: Option<UpdateCheckResponse>,
    /// One `<event status="ok">` acknowledgement per event received.
    pub event_acks: usize,
}

/// `<updatecheck>` of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateCheckResponse {
    /// `status`.
    pub status: UpdateStatus,
    /// `PollInterval` in seconds, honoured for the next check only.
    pub poll_interval: Option<u32>,
    /// `urls/url@codebase`, tried in order; each should end in `/`.
    pub urls: Vec<String>,
    /// The manifest; update_engine reads only the first.
    pub manifest: Option<Manifest>,
}

/// `<manifest>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// `version`: the version the client will run after the update.
    pub version: String,
    /// `packages/package`; the first is the payload, further ones are extras (OEM sysexts, …).
    pub packages: Vec<Package>,
    /// `actions/action`; the postinstall one carries the payload's SHA-256.
    pub actions: Vec<Action>,
}

/// `<package>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Package {
    /// `name`, appended to the codebase URL.
    pub name: String,
    /// `hash`: base64 SHA-1 (not checked by update_engine, kept for compatibility).
    pub hash: Option<String>,
    /// `hash_sha256`: hex SHA-256, used by flatcar-postinst for extra packages.
    pub hash_sha256: Option<String>,
    /// `size` in bytes; must be > 0 for the payload.
    pub size: u64,
    /// `required`.
    pub required: bool,
}

/// `<action>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Action {
    /// `event`: `postinstall` is the one update_engine needs.
    pub event: String,
    /// `sha256`: base64 SHA-256 of the whole payload (required on postinstall).
    pub sha256: Option<String>,
    /// `DisablePayloadBackoff="true"`.
    pub disable_payload_backoff: bool,
    /// `MaxFailureCountPerUrl`.
    pub max_failure_count_per_url: Option<u32>,
    /// `IsDeltaPayload="true"`.
    pub is_delta_payload: bool,
    /// `ChromeOSVersion`/`DisplayVersion` and other ignored attributes, kept in order for round trips.
    pub extra: Vec<(String, String)>,
}

impl Response {
    /// The first app's update check, the only one update_engine looks at.
    pub fn first_update_check(&self) -> Option<&UpdateCheckResponse> {
        self.apps.first().and_then(|a| a.update_check.as_ref())
    }

    /// Parses a response body with the default [`Limits`] (used by the node agent and by tests).
    pub fn parse(body: &[u8]) -> Result<Response, ParseError> {
        Response::parse_with(body, &Limits::default())
    }

    /// Parses a response body with explicit limits.
    pub fn parse_with(body: &[u8], limits: &Limits) -> Result<Response, ParseError> {
        let root = parse_tree(body, limits)?;
        if root.name != "response" {
            return Err(ParseError::UnexpectedRoot {
                expected: "response",
                found: root.name,
            });
        }
        let apps = root.children_named("app").map(app).collect::<Result<Vec<_>, _>>()?;
        Ok(Response {
            protocol: root.attr_owned("protocol").unwrap_or_default(),
            server: root.attr_owned("server"),
            daystart_elapsed_seconds: match root.child("daystart") {
                Some(d) => d.num("daystart", "elapsed_seconds")?,
                None => None,
            },
            apps,
        })
    }
}

fn app(n: &Node) -> Result<AppResponse, ParseError> {
    let update_check = match n.child("updatecheck") {
        None => None,
        Some(u) => Some(UpdateCheckResponse {
            status: UpdateStatus::from_wire(u.attr("status").unwrap_or("")),
            poll_interval: u.num("updatecheck", "PollInterval")?,
            urls: u
                .child("urls")
                .map(|urls| {
                    urls.children_named("url")
                        .filter_map(|x| x.attr_owned("codebase"))
                        .collect()
                })
                .unwrap_or_default(),
            manifest: match u.child("manifest") {
                Some(m) => Some(manifest(m)?),
                None => None,
            },
        }),
    };
    Ok(AppResponse {
        app_id: n.attr_owned("appid").unwrap_or_default(),
        status: AppStatus::from_wire(n.attr("status").unwrap_or("")),
        ping_status: n.child("ping").map(|p| p.attr_owned("status").unwrap_or_default()),
        update_check,
        event_acks: n.children_named("event").count(),
    })
}

fn manifest(m: &Node) -> Result<Manifest, ParseError> {
    let mut packages = Vec::new();
    for p in m.child("packages").iter().flat_map(|p| p.children_named("package")) {
        packages.push(Package {
            name: p.attr_owned("name").unwrap_or_default(),
            hash: p.attr_owned("hash"),
            hash_sha256: p.attr_owned("hash_sha256"),
            size: p.num("package", "size")?.unwrap_or(0),
            required: p.attr("required").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        });
    }
    let mut actions = Vec::new();
    for a in m.child("actions").iter().flat_map(|a| a.children_named("action")) {
        let known = [
            "event",
            "sha256",
            "DisablePayloadBackoff",
            "MaxFailureCountPerUrl",
            "IsDeltaPayload",
        ];
        actions.push(Action {
            event: a.attr_owned("event").unwrap_or_default(),
            sha256: a.attr_owned("sha256"),
            disable_payload_backoff: a.attr("DisablePayloadBackoff").is_some_and(|v| v == "true"),
            max_failure_count_per_url: a.num("action", "MaxFailureCountPerUrl")?,
            is_delta_payload: a.attr("IsDeltaPayload").is_some_and(|v| v == "true"),
            extra: a
                .attrs
                .iter()
                .filter(|(k, _)| !known.contains(&k.as_str()))
                .cloned()
                .collect(),
        });
    }
    Ok(Manifest {
        version: m.attr_owned("version").unwrap_or_default(),
        packages,
        actions,
    })
}
