//! Mirroring from an Omaha endpoint, the way Nebraska's syncer mirrors Flatcar's public server.
//!
//! For each app, channel and architecture the mirror sends one scheduled update check as a
//! client that runs no version yet (`0.0.0`), on the channel's track, with a machine id that is
//! stable per upstream, app, channel and architecture (so the upstream sees a handful of
//! instances, not a new one every hour). The offered manifest becomes a local package with the
//! upstream's payload URL, file name, size and hashes (extra files too), and the local channel of
//! the same name is pointed at it. `noupdate` leaves the channel as it is; an error status is a
//! [`SyncError::Omaha`] naming the channel. Only the target version is mirrored: no
//! `multi_manifest_ok`, so no floors.

use super::{agent, mirror_package, SyncError, SyncReport, Upstream};
use crate::model::{ExtraFile, Package};
use crate::store::{Store, StoreError};
use boxcar_omaha::{AppRequest, AppStatus, Os, Ping, Request, Response, UpdateCheck, UpdateStatus};
use sha2::Digest;

/// The largest answer read (an update answer is about 1 KiB).
const MAX_ANSWER: u64 = 1024 * 1024;

/// One sync over Omaha (blocking).
pub(super) fn sync(
    store: &Store,
    now: i64,
    up: &Upstream,
    channels: &[String],
    arches: &[String],
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    for wanted in &up.apps {
        let app = store.resolve_app(wanted).map_err(|e| match e {
            StoreError::NotFound(_) => SyncError::UnknownApp(wanted.clone()),
            e => e.into(),
        })?;
        for channel in channels {
            for arch in arches {
                let fail = |message: String| SyncError::Omaha {
                    url: up.url.clone(),
                    channel: channel.clone(),
                    arch: arch.clone(),
                    message,
                };
                let request = check_request(&app.id, channel, arch, &machine_id(&up.url, &app.id, channel, arch));
                let answer = post(up, &request.to_xml()).map_err(fail)?;
                match offered_package(&answer, &app.id, arch).map_err(fail)? {
                    Some(pkg) => mirror_package(store, now, &app.id, channel, &pkg, &mut report)?,
                    None => tracing::info!(%channel, %arch, "upstream offers no package for this channel"),
                }
            }
        }
    }
    Ok(report)
}

/// update_engine's board name for an architecture (what the upstream reads it from).
fn board(arch: &str) -> String {
    format!("{arch}-usr")
}

/// A stable, UUID-shaped machine id for this mirror's checks of one channel and architecture.
fn machine_id(url: &str, app_id: &str, channel: &str, arch: &str) -> String {
    let d = sha2::Sha256::digest(format!("boxcar-mirror\n{url}\n{app_id}\n{channel}\n{arch}"));
    let h = hex::encode(&d[..16]);
    format!(
        "{{{}-{}-{}-{}-{}}}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The scheduled check of a client on `channel` that runs nothing yet.
fn check_request(app_id: &str, channel: &str, arch: &str, machine_id: &str) -> Request {
    Request {
        protocol: "3.0".into(),
        version: Some("boxcar-mirror".into()),
        updater_version: Some("boxcar-mirror".into()),
        install_source: Some("scheduler".into()),
        is_machine: Some("1".into()),
        os: Some(Os {
            version: Some("Chateau".into()),
            platform: Some("CoreOS".into()),
            sp: None,
            arch: Some(if arch == "arm64" { "arm64" } else { "x64" }.into()),
        }),
        apps: vec![AppRequest {
            app_id: app_id.to_string(),
            version: "0.0.0".into(),
            track: Some(channel.to_string()),
            machine_id: machine_id.to_string(),
            board: Some(board(arch)),
            ping: Some(Ping {
                active: Some("1".into()),
                ..Ping::default()
            }),
            update_check: Some(UpdateCheck::default()),
            ..AppRequest::default()
        }],
    }
}

fn post(up: &Upstream, xml: &str) -> Result<Vec<u8>, String> {
    let mut resp = agent(up)
        .post(&up.url)
        .header("Content-Type", "text/xml")
        .send(xml)
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_vec()
        .map_err(|e| format!("reading the answer: {e}"))?;
    if status != 200 {
        let text = String::from_utf8_lossy(&body);
        return Err(format!("HTTP {status}: {}", text.chars().take(200).collect::<String>()));
    }
    Ok(body)
}

/// The package the answer offers for `app_id`, `None` for `noupdate`. The first manifest package
/// is the payload (name, size, SHA-1), the postinstall action carries its base64 SHA-256, further
/// packages are extra files (hex SHA-256), and the first URL is the base they live under.
fn offered_package(body: &[u8], app_id: &str, arch: &str) -> Result<Option<Package>, String> {
    let resp = Response::parse(body).map_err(|e| e.to_string())?;
    let wanted = boxcar_omaha::normalize_app_id(app_id);
    let app = resp
        .apps
        .iter()
        .find(|a| boxcar_omaha::normalize_app_id(&a.app_id) == wanted)
        .ok_or_else(|| format!("the answer has no <app> for {app_id}"))?;
    if app.status != AppStatus::Ok {
        return Err(format!("app status {}", app.status.as_str()));
    }
    let uc = app.update_check.as_ref().ok_or("the answer has no <updatecheck>")?;
    match &uc.status {
        UpdateStatus::NoUpdate => return Ok(None),
        UpdateStatus::Ok => {}
        other => return Err(format!("update check status {}", other.as_str())),
    }
    let manifest = uc.manifest.as_ref().ok_or("an update without <manifest>")?;
    let url = uc.urls.first().ok_or("an update without <url codebase>")?;
    let (payload, extras) = manifest.packages.split_first().ok_or("a manifest without <package>")?;
    let sha256 = manifest
        .actions
        .iter()
        .find(|a| a.event == "postinstall")
        .and_then(|a| a.sha256.clone())
        .ok_or("no postinstall action with the payload's sha256")?;
    if manifest.version.trim().is_empty() || payload.name.is_empty() || payload.size == 0 {
        return Err("the manifest lacks a version, a package name or a size".into());
    }
    let extra_files = extras
        .iter()
        .map(|p| {
            Ok(ExtraFile {
                name: p.name.clone(),
                size: p.size,
                sha1: p.hash.clone().unwrap_or_default(),
                sha256_hex: p
                    .hash_sha256
                    .clone()
                    .ok_or_else(|| format!("extra file {} has no hash_sha256", p.name))?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Some(Package {
        id: String::new(),
        app_id: app_id.to_string(),
        version: manifest.version.clone(),
        arch: arch.to_string(),
        url: url.clone(),
        filename: payload.name.clone(),
        size: payload.size,
        sha1: payload.hash.clone().unwrap_or_default(),
        sha256,
        extra_files,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_ids_are_stable_and_differ_per_channel_and_arch() {
        let a = machine_id("https://up/v1/update/", "{app}", "stable", "amd64");
        assert_eq!(a, machine_id("https://up/v1/update/", "{app}", "stable", "amd64"));
        assert_ne!(a, machine_id("https://up/v1/update/", "{app}", "beta", "amd64"));
        assert_ne!(a, machine_id("https://up/v1/update/", "{app}", "stable", "arm64"));
        assert_eq!((a.len(), &a[..1], &a[9..10]), (38, "{", "-"));
    }

    #[test]
    fn the_check_asks_as_a_client_running_nothing_yet() {
        let xml = check_request("{app}", "beta", "arm64", "{m}").to_xml();
        let req = Request::parse(xml.as_bytes()).unwrap();
        let app = &req.apps[0];
        assert_eq!(
            (app.version.as_str(), app.track.as_deref(), app.board.as_deref()),
            ("0.0.0", Some("beta"), Some("arm64-usr"))
        );
        assert!(app.update_check.is_some() && app.events.is_empty());
        assert_eq!(req.os.unwrap().arch.as_deref(), Some("arm64"));
    }

    #[test]
    fn error_and_incomplete_answers_name_what_is_wrong() {
        let nebraska_error = r#"<response protocol="3.0" server="nebraska"><daystart elapsed_seconds="0"></daystart><app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" status="error-instanceRegistrationFailed"><updatecheck status="error-internal"><urls></urls></updatecheck></app></response>"#;
        let app = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}";
        let err = offered_package(nebraska_error.as_bytes(), app, "amd64").unwrap_err();
        assert!(err.contains("error-instanceRegistrationFailed"), "{err}");
        let other_app = nebraska_error.replace("e96281a6", "00000000");
        let err = offered_package(other_app.as_bytes(), app, "amd64").unwrap_err();
        assert!(err.contains("no <app>"), "{err}");
        let no_manifest = r#"<response protocol="3.0"><app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" status="ok"><updatecheck status="ok"><urls><url codebase="https://x/"></url></urls></updatecheck></app></response>"#;
        let err = offered_package(no_manifest.as_bytes(), app, "amd64").unwrap_err();
        assert!(err.contains("without <manifest>"), "{err}");
        let noupdate = r#"<response protocol="3.0"><app appid="e96281a6-d1af-4bde-9a0a-97b76e56dc57" status="ok"><updatecheck status="noupdate"></updatecheck></app></response>"#;
        assert_eq!(offered_package(noupdate.as_bytes(), app, "amd64").unwrap(), None);
        assert!(offered_package(b"<html>", app, "amd64").is_err());
    }
}
