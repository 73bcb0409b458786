//! Ignition's validation rules over the typed model.
//!
//! The rules and their messages follow Ignition (so a config accepted here
//! is accepted there and the same mistake gets the same words); the report
//! carries internal paths, positions are attached later by correlation.

mod dups;
pub(crate) mod storage;
mod systemd;
pub mod url;

use crate::model::Config;
use crate::path::Path;
use crate::report::Report;
use crate::version::SpecVersion;

/// Validate a decoded config written for spec `v`.
pub fn validate(cfg: &Config, v: SpecVersion) -> Report {
    let mut r = Report::new();
    let root = Path::root();
    let ign = root.key("ignition");
    let cp = ign.key("config");
    for (i, m) in cfg.ignition.config.merge.iter().enumerate() {
        if v > SpecVersion::V3_0 || m.source.is_some() {
            url::check_required_source(&mut r, m, &cp.key("merge").index(i), v);
        }
        url::check_resource(&mut r, m, &cp.key("merge").index(i), v);
    }
    url::check_resource(&mut r, &cfg.ignition.config.replace, &cp.key("replace"), v);
    let tls = ign.keys(&["security", "tls", "certificateAuthorities"]);
    for (i, ca) in cfg.ignition.security.tls.certificate_authorities.iter().enumerate() {
        if v == SpecVersion::V3_0 && ca.source.is_none() {
            r.error(tls.index(i).key("source"), "invalid url scheme");
        } else {
            url::check_required_source(&mut r, ca, &tls.index(i), v);
        }
        url::check_resource(&mut r, ca, &tls.index(i), v);
    }
    let proxy = &cfg.ignition.proxy;
    url::check_proxy(
        &mut r,
        proxy.http_proxy.as_deref(),
        ign.keys(&["proxy", "httpProxy"]),
        true,
    );
    url::check_proxy(
        &mut r,
        proxy.https_proxy.as_deref(),
        ign.keys(&["proxy", "httpsProxy"]),
        false,
    );
    for (name, t) in [
        ("httpResponseHeaders", cfg.ignition.timeouts.http_response_headers),
        ("httpTotal", cfg.ignition.timeouts.http_total),
    ] {
        if t.is_some_and(|t| t < 0) {
            r.error(ign.keys(&["timeouts", name]), "timeouts cannot be negative");
        }
    }
    storage::check(&mut r, &cfg.storage, &root.key("storage"), v);
    systemd::check(&mut r, &cfg.systemd, &root.key("systemd"));
    systemd::check_path_conflicts(&mut r, cfg);
    dups::check(&mut r, cfg);
    r
}
