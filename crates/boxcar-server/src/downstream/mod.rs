//! Downstream mode: mirror channels and packages from an upstream update server.
//!
//! Two ways to ask the upstream ([`UpstreamProtocol`]): another Boxcar server's read-only admin
//! API (every app, channel and package as the upstream has them), or any Omaha endpoint —
//! Nebraska, Flatcar's public update server, a Boxcar server's `/v1/update/` — asked the way
//! Nebraska's syncer asks, one update check per channel and architecture ([`omaha`]).
//! Packages keep their upstream payload URLs — payloads are never hosted here — and local channels
//! are repointed when the upstream promotes. Local groups and policies stay local, so a site can
//! roll a release out at its own pace.

mod omaha;

use crate::model::{App, Channel, Package};
use crate::store::{Store, StoreError};
use std::time::Duration;

/// Where to mirror from.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Base URL of the upstream server (the Omaha endpoint itself for [`UpstreamProtocol::Omaha`]).
    pub url: String,
    /// How the upstream is asked.
    pub protocol: UpstreamProtocol,
    /// Apps to mirror (ids or names; for Omaha, apps known here, asked for by their id).
    pub apps: Vec<String>,
    /// How often to sync.
    pub interval: Duration,
    /// CA certificates to trust for an https:// upstream (see [`ca_certificates`]); `None`
    /// trusts Mozilla's roots.
    pub ca: Option<Vec<ureq::tls::Certificate<'static>>>,
}

/// How the upstream is asked for its channels. (`Debug` leaves the token out.)
#[derive(Clone)]
pub enum UpstreamProtocol {
    /// Another Boxcar server's read-only admin API (`/api/v1`), with a read-only token of it
    /// (never logged): every channel of the app, whatever its name or architecture.
    BoxcarApi {
        /// The token.
        token: String,
    },
    /// An Omaha endpoint, asked with one update check per channel (the upstream's track) and
    /// architecture, as Nebraska's syncer does; the channels to ask for must be named.
    Omaha {
        /// Channels (upstream tracks) to mirror, e.g. `stable`, `beta`.
        channels: Vec<String>,
        /// Architectures (`amd64`, `arm64`).
        arches: Vec<String>,
    },
}

impl std::fmt::Debug for UpstreamProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamProtocol::BoxcarApi { .. } => f.write_str("BoxcarApi { token: <redacted> }"),
            UpstreamProtocol::Omaha { channels, arches } => f
                .debug_struct("Omaha")
                .field("channels", channels)
                .field("arches", arches)
                .finish(),
        }
    }
}

/// The certificates of a PEM file's contents (a CA bundle for an https:// upstream).
pub fn ca_certificates(pem: &[u8]) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let certs = ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(e.to_string())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

/// What one sync changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Apps created locally.
    pub apps_created: usize,
    /// Channels created locally.
    pub channels_created: usize,
    /// Packages created locally.
    pub packages_created: usize,
    /// Channel/arch pointers moved.
    pub channels_moved: usize,
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The upstream could not be reached or answered badly.
    #[error("syncing from upstream: GET {path}: {message}")]
    Upstream { path: String, message: String },
    /// The Omaha upstream could not be reached or answered the update check for a channel badly.
    #[error("syncing from upstream: update check for channel {channel} ({arch}) at {url}: {message}")]
    Omaha {
        url: String,
        channel: String,
        arch: String,
        message: String,
    },
    /// An app to mirror over Omaha is not known here.
    #[error("syncing from upstream: app {0:?} is not known here; Omaha mirroring asks for apps by the id they have here (create it first with the upstream's app id)")]
    UnknownApp(String),
    /// The local store failed.
    #[error("syncing from upstream: {0}")]
    Store(#[from] StoreError),
}

/// An HTTP client for the upstream: 30 s per request, the configured CA if any, HTTP errors as
/// answers (so their body can be quoted).
fn agent(up: &Upstream) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)));
    if let Some(certs) = &up.ca {
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(certs))
                .build(),
        );
    }
    config.build().into()
}

fn get<T: serde::de::DeserializeOwned>(up: &Upstream, token: &str, path: &str) -> Result<T, SyncError> {
    let err = |message: String| SyncError::Upstream {
        path: path.to_string(),
        message,
    };
    let mut resp = agent(up)
        .get(&format!("{}/api/v1{path}", up.url.trim_end_matches('/')))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .map_err(|e| err(e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().map_err(|e| err(e.to_string()))?;
    if status != 200 {
        return Err(err(format!(
            "HTTP {status}: {}",
            body.chars().take(200).collect::<String>()
        )));
    }
    serde_json::from_str(&body).map_err(|e| err(format!("decoding answer: {e}")))
}

/// Mirrors once (blocking).
pub fn sync_once(store: &Store, now: i64, up: &Upstream) -> Result<SyncReport, SyncError> {
    match &up.protocol {
        UpstreamProtocol::BoxcarApi { token } => sync_api(store, now, up, token),
        UpstreamProtocol::Omaha { channels, arches } => omaha::sync(store, now, up, channels, arches),
    }
}

fn sync_api(store: &Store, now: i64, up: &Upstream, token: &str) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    let upstream_apps: Vec<App> = get(up, token, "/apps")?;
    for wanted in &up.apps {
        let Some(app) = upstream_apps.iter().find(|a| &a.name == wanted || &a.id == wanted) else {
            return Err(SyncError::Upstream {
                path: "/apps".into(),
                message: format!("upstream has no app {wanted}"),
            });
        };
        let local = match store.resolve_app(&app.id) {
            Ok(a) => a,
            Err(StoreError::NotFound(_)) => {
                report.apps_created += 1;
                store.create_app(now, app)?
            }
            Err(e) => return Err(e.into()),
        };
        let channels: Vec<Channel> = get(up, token, &format!("/apps/{}/channels", app.name))?;
        let local_channels = store.list_channels(&local.id)?;
        for ch in channels {
            // Every upstream channel exists here, even one that serves nothing yet.
            if !local_channels.iter().any(|c| c.name == ch.name) {
                store.create_channel(now, &local.id, &ch.name)?;
                report.channels_created += 1;
            }
            for p in &ch.packages {
                mirror_package(store, now, &local.id, &ch.name, p, &mut report)?;
            }
        }
    }
    Ok(report)
}

/// Makes the local `channel` of app `app_id` serve `pkg` for its architecture: creates the
/// channel and the package (same version and architecture, the upstream's URL and hashes) when
/// missing, and repoints the channel when it serves another version.
fn mirror_package(
    store: &Store,
    now: i64,
    app_id: &str,
    channel: &str,
    pkg: &Package,
    report: &mut SyncReport,
) -> Result<(), StoreError> {
    let here = store.list_channels(app_id)?.into_iter().find(|c| c.name == channel);
    if here.is_none() {
        store.create_channel(now, app_id, channel)?;
        report.channels_created += 1;
    }
    let known = store
        .list_packages(app_id)?
        .iter()
        .any(|l| l.version == pkg.version && l.arch == pkg.arch);
    if !known {
        let local = Package {
            app_id: app_id.to_string(),
            ..pkg.clone()
        };
        store.create_package(now, &local, None)?;
        report.packages_created += 1;
    }
    let current = here
        .as_ref()
        .and_then(|c| c.packages.iter().find(|l| l.arch == pkg.arch))
        .map(|l| l.version.as_str());
    if current != Some(pkg.version.as_str()) {
        store.promote(now, app_id, channel, &pkg.version, Some(&pkg.arch))?;
        report.channels_moved += 1;
    }
    Ok(())
}
