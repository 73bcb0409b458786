//! The request update_engine sends: one `<request>` with `<os>` and one `<app>`.

use crate::parse::{attr, num, walk, Attrs, Limits, Visitor};
use crate::scan::scan;
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
    ///
    /// Reads the document once, element by element, copying only the attributes a request has
    /// (no intermediate tree: this runs for every check-in the server answers). Malformed XML is
    /// reported before any semantic error; among semantic errors the first in document order wins.
    ///
    /// The plain XML update_engine writes is read by a fast single-pass reader; anything else
    /// (and every malformed body) by the general one, with the same result (module `scan`).
    pub fn parse_with(body: &[u8], limits: &Limits) -> Result<Request, ParseError> {
        match Request::parse_plain(body, limits) {
            Some(result) => result,
            None => Request::parse_general(body, limits),
        }
    }

    /// The fast reader only: `None` when the body is outside its subset.
    pub(crate) fn parse_plain(body: &[u8], limits: &Limits) -> Option<Result<Request, ParseError>> {
        let mut v = RequestVisitor::default();
        scan(body, limits, &mut v).ok()?;
        Some(v.finish())
    }

    /// The general reader only.
    pub(crate) fn parse_general(body: &[u8], limits: &Limits) -> Result<Request, ParseError> {
        let mut v = RequestVisitor::default();
        walk(body, limits, &mut v)?;
        v.finish()
    }
}

impl RequestVisitor {
    /// The request, or the first semantic error, once the whole document was read.
    fn finish(self) -> Result<Request, ParseError> {
        let v = self;
        if let Some(found) = v.wrong_root {
            return Err(ParseError::UnexpectedRoot {
                expected: "request",
                found,
            });
        }
        match v.error {
            Some(e) => Err(e),
            None => Ok(v.req),
        }
    }
}

/// Fills a [`Request`] from the elements that matter: the root's attributes, its first `<os>`,
/// its `<app>`s and, directly inside each app, the first `<ping>`, the first `<updatecheck>` and
/// every `<event>`. Everything else is checked by the walker and skipped.
#[derive(Default)]
struct RequestVisitor {
    req: Request,
    /// The root element's name when it is not `request`.
    wrong_root: Option<String>,
    /// First semantic error (missing appid, bad number), reported once the XML was read.
    error: Option<ParseError>,
    /// Inside a direct `<app>` child of the root.
    in_app: bool,
    seen_ping: bool,
    seen_update_check: bool,
}

fn owned(attrs: &Attrs<'_>, name: &str) -> Option<String> {
    attr(attrs, name).map(str::to_string)
}

/// Sets a field from an attribute unless it is already set: the first value of a name wins, as
/// with [`attr`]. The elements with many attributes (`<app>` has 14) are read in one pass over
/// their attributes with this, instead of scanning them once per field.
fn set_first(field: &mut Option<String>, value: &str) {
    if field.is_none() {
        *field = Some(value.to_string());
    }
}

impl RequestVisitor {
    fn fail(&mut self, e: ParseError) {
        self.error.get_or_insert(e);
    }

    fn root(&mut self, name: &str, a: &Attrs<'_>) {
        if name != "request" {
            self.wrong_root = Some(name.to_string());
            return;
        }
        let mut protocol = None;
        let r = &mut self.req;
        for (name, value) in a {
            let field = match *name {
                "protocol" => &mut protocol,
                "version" => &mut r.version,
                "updaterversion" => &mut r.updater_version,
                "installsource" => &mut r.install_source,
                "ismachine" => &mut r.is_machine,
                _ => continue,
            };
            set_first(field, value);
        }
        r.protocol = protocol.unwrap_or_default();
    }

    fn app(&mut self, a: &Attrs<'_>) {
        self.in_app = true;
        self.seen_ping = false;
        self.seen_update_check = false;
        let (mut app_id, mut version, mut machine_id) = (None, None, None);
        let mut app = AppRequest::default();
        let r = &mut app;
        for (name, value) in a {
            let field = match *name {
                "appid" => &mut app_id,
                "version" => &mut version,
                "track" => &mut r.track,
                "bootid" => &mut r.boot_id,
                "oem" => &mut r.oem,
                "oemversion" => &mut r.oem_version,
                "alephversion" => &mut r.aleph_version,
                "machineid" => &mut machine_id,
                "machinealias" => &mut r.machine_alias,
                "lang" => &mut r.lang,
                "board" => &mut r.board,
                "hardware_class" => &mut r.hardware_class,
                "delta_okay" => &mut r.delta_okay,
                "from_track" => &mut r.from_track,
                "multi_manifest_ok" => &mut r.multi_manifest_ok,
                _ => continue,
            };
            set_first(field, value);
        }
        let Some(app_id) = app_id else {
            return self.fail(ParseError::MissingAttribute {
                element: "app",
                attribute: "appid",
            });
        };
        app.app_id = app_id;
        app.version = version.unwrap_or_default();
        app.machine_id = machine_id.unwrap_or_default();
        self.req.apps.push(app);
    }

    fn app_child(&mut self, name: &str, a: &Attrs<'_>) {
        if self.error.is_some() {
            return;
        }
        let Some(app) = self.req.apps.last_mut() else { return };
        match name {
            "ping" if !self.seen_ping => {
                self.seen_ping = true;
                app.ping = Some(Ping {
                    active: owned(a, "active"),
                    a: owned(a, "a"),
                    r: owned(a, "r"),
                });
            }
            "updatecheck" if !self.seen_update_check => {
                self.seen_update_check = true;
                app.update_check = Some(UpdateCheck {
                    target_version_prefix: owned(a, "targetversionprefix"),
                });
            }
            "event" => match event(a) {
                Ok(e) => app.events.push(e),
                Err(e) => self.fail(e),
            },
            _ => {}
        }
    }
}

impl Visitor for RequestVisitor {
    fn open(&mut self, depth: usize, name: &str, a: &Attrs<'_>) {
        match depth {
            0 => self.root(name, a),
            _ if self.wrong_root.is_some() => {}
            1 if name == "app" => self.app(a),
            1 if name == "os" && self.req.os.is_none() => {
                let mut os = Os::default();
                let o = &mut os;
                for (name, value) in a {
                    let field = match *name {
                        "version" => &mut o.version,
                        "platform" => &mut o.platform,
                        "sp" => &mut o.sp,
                        "arch" => &mut o.arch,
                        _ => continue,
                    };
                    set_first(field, value);
                }
                self.req.os = Some(os);
            }
            2 if self.in_app => self.app_child(name, a),
            _ => {}
        }
    }

    fn close(&mut self, depth: usize) {
        if depth == 1 {
            self.in_app = false;
        }
    }
}

fn event(a: &Attrs<'_>) -> Result<Event, ParseError> {
    let t: u32 = num(a, "event", "eventtype")?.ok_or(ParseError::MissingAttribute {
        element: "event",
        attribute: "eventtype",
    })?;
    let r: u32 = num(a, "event", "eventresult")?.unwrap_or(1);
    Ok(Event {
        event_type: t.into(),
        event_result: r.into(),
        error_code: num(a, "event", "errorcode")?,
        previous_version: owned(a, "previousversion"),
    })
}
