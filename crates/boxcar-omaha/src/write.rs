//! Serialisation. Attribute order and element shapes follow what update_engine sends and what
//! Nebraska answers (explicit end tags, `<?xml?>` declaration), so captures look familiar.

use crate::{AppRequest, AppResponse, Request, Response};
use quick_xml::escape::escape;
use std::fmt::Write;

fn attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    out.push_str(&escape(value));
    out.push('"');
}

fn opt(out: &mut String, name: &str, value: &Option<String>) {
    if let Some(v) = value {
        attr(out, name, v);
    }
}

impl Response {
    /// Writes the response document as update_engine expects it.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response");
        attr(&mut out, "protocol", &self.protocol);
        opt(&mut out, "server", &self.server);
        out.push('>');
        if let Some(secs) = self.daystart_elapsed_seconds {
            let _ = write!(out, "<daystart elapsed_seconds=\"{secs}\"></daystart>");
        }
        for app in &self.apps {
            write_app_response(&mut out, app);
        }
        out.push_str("</response>\n");
        out
    }
}

fn write_app_response(out: &mut String, app: &AppResponse) {
    out.push_str("<app");
    attr(out, "appid", &app.app_id);
    attr(out, "status", app.status.as_str());
    out.push('>');
    if let Some(status) = &app.ping_status {
        out.push_str("<ping");
        attr(out, "status", status);
        out.push_str("></ping>");
    }
    if let Some(uc) = &app.update_check {
        out.push_str("<updatecheck");
        attr(out, "status", uc.status.as_str());
        if let Some(p) = uc.poll_interval {
            attr(out, "PollInterval", &p.to_string());
        }
        out.push_str("><urls>");
        for url in &uc.urls {
            out.push_str("<url");
            attr(out, "codebase", url);
            out.push_str("></url>");
        }
        out.push_str("</urls>");
        if let Some(m) = &uc.manifest {
            out.push_str("<manifest");
            attr(out, "version", &m.version);
            out.push_str("><packages>");
            for p in &m.packages {
                out.push_str("<package");
                attr(out, "name", &p.name);
                opt(out, "hash", &p.hash);
                opt(out, "hash_sha256", &p.hash_sha256);
                attr(out, "size", &p.size.to_string());
                attr(out, "required", if p.required { "true" } else { "false" });
                out.push_str("></package>");
            }
            out.push_str("</packages><actions>");
            for a in &m.actions {
                out.push_str("<action");
                attr(out, "event", &a.event);
                opt(out, "sha256", &a.sha256);
                if a.disable_payload_backoff {
                    attr(out, "DisablePayloadBackoff", "true");
                }
                if let Some(n) = a.max_failure_count_per_url {
                    attr(out, "MaxFailureCountPerUrl", &n.to_string());
                }
                if a.is_delta_payload {
                    attr(out, "IsDeltaPayload", "true");
                }
                for (k, v) in &a.extra {
                    attr(out, k, v);
                }
                out.push_str("></action>");
            }
            out.push_str("</actions></manifest>");
        }
        out.push_str("</updatecheck>");
    }
    for _ in 0..app.event_acks {
        out.push_str("<event status=\"ok\"></event>");
    }
    out.push_str("</app>");
}

impl Request {
    /// Writes the request document with update_engine's attribute order (used by the node agent,
    /// the benchmark and the downstream syncer).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<request");
        attr(&mut out, "protocol", &self.protocol);
        opt(&mut out, "version", &self.version);
        opt(&mut out, "updaterversion", &self.updater_version);
        opt(&mut out, "installsource", &self.install_source);
        opt(&mut out, "ismachine", &self.is_machine);
        out.push_str(">\n");
        if let Some(os) = &self.os {
            out.push_str("    <os");
            opt(&mut out, "version", &os.version);
            opt(&mut out, "platform", &os.platform);
            opt(&mut out, "sp", &os.sp);
            opt(&mut out, "arch", &os.arch);
            out.push_str("></os>\n");
        }
        for app in &self.apps {
            write_app_request(&mut out, app);
        }
        out.push_str("</request>\n");
        out
    }
}

fn write_app_request(out: &mut String, app: &AppRequest) {
    out.push_str("    <app");
    attr(out, "appid", &app.app_id);
    attr(out, "version", &app.version);
    opt(out, "track", &app.track);
    opt(out, "bootid", &app.boot_id);
    opt(out, "oem", &app.oem);
    opt(out, "oemversion", &app.oem_version);
    opt(out, "alephversion", &app.aleph_version);
    attr(out, "machineid", &app.machine_id);
    opt(out, "machinealias", &app.machine_alias);
    opt(out, "lang", &app.lang);
    opt(out, "board", &app.board);
    opt(out, "hardware_class", &app.hardware_class);
    opt(out, "delta_okay", &app.delta_okay);
    opt(out, "from_track", &app.from_track);
    opt(out, "multi_manifest_ok", &app.multi_manifest_ok);
    out.push_str(">\n");
    if let Some(p) = &app.ping {
        out.push_str("        <ping");
        opt(out, "active", &p.active);
        opt(out, "a", &p.a);
        opt(out, "r", &p.r);
        out.push_str("></ping>\n");
    }
    if let Some(u) = &app.update_check {
        out.push_str("        <updatecheck");
        opt(out, "targetversionprefix", &u.target_version_prefix);
        out.push_str("></updatecheck>\n");
    }
    for e in &app.events {
        out.push_str("        <event");
        attr(out, "eventtype", &e.event_type.code().to_string());
        attr(out, "eventresult", &e.event_result.code().to_string());
        if let Some(code) = e.error_code {
            attr(out, "errorcode", &code.to_string());
        }
        opt(out, "previousversion", &e.previous_version);
        out.push_str("></event>\n");
    }
    out.push_str("    </app>\n");
}
