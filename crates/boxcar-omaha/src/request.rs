//! The request update_engine sends: one `<request>` with `<os>` and one `<app>`.

use crate::parse::{parse_tree, Limits, Node};
use crate::{EventResult, EventType, ParseError};

/// An Omaha request document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// `protocol`, "3.0" for every client Boxcar serves.
    pub protocol: String,
    /// Client name and version, e.g. `update_engine-0.4.10`.
    pub version: Option<String>,
    /// `updaterversion`, same as `version` for update_engine.
    pub updater_version: Option<String>,
    /// `scheduler` for periodic checks, `ondemandupdate` when an operator asked.
    pub install_source: Option<String>,
    /// `ismachine`, always "1" for update_engine.
    pub is_machine: Option<String>,
    /// The `<os>` element.
    pub os: Option<Os>,
    /// The `<app>` elements; update_engine sends exactly one.
    pub apps: Vec<AppRequest>,
}

/// The `<os>` element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Os {
    /// `version`, "Chateau" for Flatcar.
    pub version: Option<String>,
    /// `platform`, "CoreOS" for Flatcar.
    pub platform: Option<String>,
    /// `sp`, `<version>_<uname -m>`.
    pub sp: Option<String>,
    /// `arch`, sent by Nebraska's syncer (`x64`) but not by update_engine.
    pub arch: Option<String>,
}

/// One `<app>` of a request: who is asking and what it wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppRequest {
    /// `appid` as sent (braces optional; see [`crate::normalize_app_id`]).
    pub app_id: String,
    /// The running OS version.
    pub version: String,
    /// `track`: the `GROUP` from update.conf, a group's track alias (or id) on the server.
    pub track: Option<String>,
    /// `bootid`, changes every boot.
    pub boot_id: Option<String>,
    /// `oem` (`ID` of oem-release).
    pub oem: Option<String>,
    /// `oemversion`.
    pub oem_version: Option<String>,
    /// `alephversion`: first version installed on this machine.
    pub aleph_version: Option<String>,
    /// `machineid`: the instance identity.
    pub machine_id: String,
    /// `machinealias` (update.conf `MACHINE_ALIAS`).
    pub machine_alias: Option<String>,
    /// `lang`.
    pub lang: Option<String>,
    /// `board`: `amd64-usr` or `arm64-usr`; the architecture.
    pub board: Option<String>,
    /// `hardware_class`.
    pub hardware_class: Option<String>,
    /// `delta_okay`.
    pub delta_okay: Option<String>,
    /// `from_track` (ChromeOS-era clients).
    pub from_track: Option<String>,
    /// `multi_manifest_ok`, sent by Nebraska syncers to receive floors.
    pub multi_manifest_ok: Option<String>,
    /// `<ping>`, present on checks and ping-only requests.
    pub ping: Option<Ping>,
    /// `<updatecheck>`, present when the client asks for an update.
    pub update_check: Option<UpdateCheck>,
    /// `<event>`s reporting progress or failure.
    pub events: Vec<Event>,
}

/// `<ping>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ping {
    /// `active`.
    pub active: Option<String>,
    /// `a` (days since last active ping, ChromeOS era).
    pub a: Option<String>,
    /// `r` (days since last roll call, ChromeOS era).
    pub r: Option<String>,
}

/// `<updatecheck>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateCheck {
    /// `targetversionprefix` (ChromeOS era; ignored by Boxcar's server).
    pub target_version_prefix: Option<String>,
}

/// `<event>`: progress or failure of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `eventtype`.
    pub event_type: EventType,
    /// `eventresult`.
    pub event_result: EventResult,
    /// `errorcode`, sent when the result is not a success.
    pub error_code: Option<u32>,
    /// `previousversion`, sent on every scheduled check (`0.0.0.0` or empty when nothing was updated).
    pub previous_version: Option<String>,
}

impl Request {
    /// Parses a request body with the default [`Limits`].
    pub fn parse(body: &[u8]) -> Result<Request, ParseError> {
        Request::parse_with(body, &Limits::default())
    }

    /// Parses a request body with explicit limits.
    pub fn parse_with(body: &[u8], limits: &Limits) -> Result<Request, ParseError> {
        let root = parse_tree(body, limits)?;
        if root.name != "request" {
            return Err(ParseError::UnexpectedRoot {
                expected: "request",
                found: root.name,
            });
        }
        let os = root.child("os").map(|n| Os {
            version: n.attr_owned("version"),
            platform: n.attr_owned("platform"),
            sp: n.attr_owned("sp"),
            arch: n.attr_owned("arch"),
        });
        let apps = root.children_named("app").map(app).collect::<Result<Vec<_>, _>>()?;
        Ok(Request {
            protocol: root.attr_owned("protocol").unwrap_or_default(),
            version: root.attr_owned("version"),
            updater_version: root.attr_owned("updaterversion"),
            install_source: root.attr_owned("installsource"),
            is_machine: root.attr_owned("ismachine"),
            os,
            apps,
        })
    }
}

fn app(n: &Node) -> Result<AppRequest, ParseError> {
    let app_id = n.attr_owned("appid").ok_or(ParseError::MissingAttribute {
        element: "app",
        attribute: "appid",
    })?;
    let mut events = Vec::new();
    for e in n.children_named("event") {
        let t: u32 = e.num("event", "eventtype")?.ok_or(ParseError::MissingAttribute {
            element: "event",
            attribute: "eventtype",
        })?;
        let r: u32 = e.num("event", "eventresult")?.unwrap_or(1);
        events.push(Event {
            event_type: t.into(),
            event_result: r.into(),
            error_code: e.num("event", "errorcode")?,
            previous_version: e.attr_owned("previousversion"),
        });
    }
    Ok(AppRequest {
        app_id,
        version: n.attr_owned("version").unwrap_or_default(),
        track: n.attr_owned("track"),
        boot_id: n.attr_owned("bootid"),
        oem: n.attr_owned("oem"),
        oem_version: n.attr_owned("oemversion"),
        aleph_version: n.attr_owned("alephversion"),
        machine_id: n.attr_owned("machineid").unwrap_or_default(),
        machine_alias: n.attr_owned("machinealias"),
        lang: n.attr_owned("lang"),
        board: n.attr_owned("board"),
        hardware_class: n.attr_owned("hardware_class"),
        delta_okay: n.attr_owned("delta_okay"),
        from_track: n.attr_owned("from_track"),
        multi_manifest_ok: n.attr_owned("multi_manifest_ok"),
        ping: n.child("ping").map(|p| Ping {
            active: p.attr_owned("active"),
            a: p.attr_owned("a"),
            r: p.attr_owned("r"),
        }),
        update_check: n.child("updatecheck").map(|u| UpdateCheck {
            target_version_prefix: u.attr_owned("targetversionprefix"),
        }),
        events,
    })
}
