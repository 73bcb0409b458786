//! Downstream mode: mirror apps, channels and packages from an upstream Boxcar server.
//!
//! The upstream's read-only admin API is the source (its Omaha endpoint would apply the
//! upstream's rollout policy to the mirror itself). Packages keep their upstream payload URLs —
//! payloads are never hosted here — and local channels are repointed when the upstream promotes.
//! Local groups and policies stay local, so a site can roll a release out at its own pace.

use crate::model::{App, Channel, Package};
use crate::store::{Store, StoreError};
use std::time::Duration;

/// Where to mirror from.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Base URL of the upstream server.
    pub url: String,
    /// A read-only token of the upstream (never logged).
    pub token: String,
    /// Apps to mirror (ids or names).
    pub apps: Vec<String>,
    /// How often to sync.
    pub interval: Duration,
    /// CA certificates to trust for an https:// upstream (see [`ca_certificates`]); `None`
    /// trusts Mozilla's roots.
    pub ca: Option<Vec<ureq::tls::Certificate<'static>>>,
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
    /// The local store failed.
    #[error("syncing from upstream: {0}")]
    Store(#[from] StoreError),
}

fn get<T: serde::de::DeserializeOwned>(up: &Upstream, path: &str) -> Result<T, SyncError> {
    let err = |message: String| SyncError::Upstream {
        path: path.to_string(),
        message,
    };
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
    let agent: ureq::Agent = config.build().into();
    let mut resp = agent
        .get(&format!("{}/api/v1{path}", up.url.trim_end_matches('/')))
        .header("Authorization", &format!("Bearer {}", up.token))
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
    let mut report = SyncReport::default();
    let upstream_apps: Vec<App> = get(up, "/apps")?;
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
        let channels: Vec<Channel> = get(up, &format!("/apps/{}/channels", app.name))?;
        let local_channels = store.list_channels(&local.id)?;
        let mut local_packages = store.list_packages(&local.id)?;
        for ch in channels {
            let here = local_channels.iter().find(|c| c.name == ch.name);
            if here.is_none() {
                store.create_channel(now, &local.id, &ch.name)?;
                report.channels_created += 1;
            }
            for p in &ch.packages {
                if !local_packages
                    .iter()
                    .any(|l| l.version == p.version && l.arch == p.arch)
                {
                    let created = store.create_package(
                        now,
                        &Package {
                            app_id: local.id.clone(),
                            ..p.clone()
                        },
                        None,
                    )?;
                    local_packages.push(created);
                    report.packages_created += 1;
                }
                let current = here
                    .and_then(|c| c.packages.iter().find(|l| l.arch == p.arch))
                    .map(|l| l.version.as_str());
                if current != Some(p.version.as_str()) {
                    store.promote(now, &local.id, &ch.name, &p.version, Some(&p.arch))?;
                    report.channels_moved += 1;
                }
            }
        }
    }
    Ok(report)
}
