//! Downstream mode: a server mirrors channels and packages from an upstream Boxcar server on
//! loopback — through its admin API, or through its Omaha endpoint as Nebraska's syncer mirrors
//! Flatcar's public server — and serves its own fleet from them, under its own policies.

mod common;
use boxcar_server::downstream::{sync_once, SyncReport, Upstream, UpstreamProtocol};
use common::*;
use serde_json::json;
use std::time::Duration;

on_both!(
    mirrors_channels_and_packages_and_follows_promotions,
    mirrors_over_omaha_like_nebraskas_syncer,
);

fn mirrors_channels_and_packages_and_follows_promotions(b: Backend) {
    let up_db = TestDb::new(Backend::Sqlite);
    let upstream = TestServer::start(&up_db);
    upstream.publish("3100.0.0", "stable");
    upstream.publish("3200.0.0", "beta");
    assert_eq!(
        upstream
            .api("POST", "/apps/flatcar/channels", Some(json!({"name": "edge"})))
            .0,
        201
    );
    assert_eq!(
        upstream
            .api(
                "PUT",
                "/apps/flatcar/channels/edge",
                Some(json!({"version": "3200.0.0"}))
            )
            .0,
        200
    );

    let db = TestDb::new(b);
    let down = TestServer::start(&db);
    let up = Upstream {
        url: format!("http://{}", upstream.addr),
        protocol: UpstreamProtocol::BoxcarApi {
            token: upstream.reader.clone(),
        },
        apps: vec!["flatcar".into()],
        interval: Duration::from_secs(3600),
        ca: None,
    };
    let report = sync_once(&down.fleet.store, T0, &up).unwrap();
    assert_eq!(
        report,
        SyncReport {
            apps_created: 0,
            channels_created: 1,
            packages_created: 2,
            channels_moved: 3
        }
    );
    down.refresh();
    let version = |name: &str| channel_version(&down, name);
    assert_eq!(
        (version("stable"), version("beta"), version("edge")),
        (json!("3100.0.0"), json!("3200.0.0"), json!("3200.0.0"))
    );

    // The mirror serves its own fleet with the upstream's payload URL, under its own policy.
    down.policy("stable", json!({"safe_mode": "off", "max_updates_per_period": 1}));
    let r = parse(down.omaha(&check("site-1", "3000.0.0", "stable", "0.0.0.0")));
    let uc = r.first_update_check().unwrap();
    assert_eq!(uc.urls, vec!["https://updates.example.com/3100.0.0/".to_string()]);
    assert_eq!(
        uc.manifest.as_ref().unwrap().actions[0].sha256.as_deref(),
        Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
    );
    assert_eq!(
        status_of(down.omaha(&check("site-2", "3000.0.0", "stable", "0.0.0.0"))),
        "noupdate",
        "local limit"
    );

    // Nothing new: nothing changes. Upstream promotes: the mirror follows.
    assert_eq!(sync_once(&down.fleet.store, T0, &up).unwrap(), SyncReport::default());
    assert_eq!(
        upstream
            .api(
                "PUT",
                "/apps/flatcar/channels/stable",
                Some(json!({"version": "3200.0.0"}))
            )
            .0,
        200
    );
    let report = sync_once(&down.fleet.store, T0, &up).unwrap();
    assert_eq!(
        report,
        SyncReport {
            channels_moved: 1,
            ..SyncReport::default()
        }
    );
    down.refresh();
    let (_, g) = down.api("GET", "/apps/flatcar/groups/stable", None);
    assert_eq!(g["progress"]["version"], "3200.0.0");

    // A bad upstream token is a clear error.
    let bad = Upstream {
        protocol: UpstreamProtocol::BoxcarApi {
            token: "bxc_wrong".into(),
        },
        ..up
    };
    let err = sync_once(&down.fleet.store, T0, &bad).unwrap_err().to_string();
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(!err.contains("bxc_wrong"), "token not in error text");
}

fn mirrors_over_omaha_like_nebraskas_syncer(b: Backend) {
    let up_db = TestDb::new(Backend::Sqlite);
    let upstream = TestServer::start(&up_db);
    upstream.publish("3100.0.0", "stable");
    upstream.publish("3200.0.0", "beta");
    let db = TestDb::new(b);
    let down = TestServer::start(&db);
    let up = Upstream {
        url: format!("http://{}/v1/update/", upstream.addr),
        protocol: UpstreamProtocol::Omaha {
            channels: vec!["stable".into(), "beta".into()],
            arches: vec!["amd64".into(), "arm64".into()],
        },
        apps: vec!["flatcar".into()],
        interval: Duration::from_secs(3600),
        ca: None,
    };
    // Four checks (2 channels x 2 arches); nothing is published for arm64.
    let report = sync_once(&down.fleet.store, T0, &up).unwrap();
    let expected = SyncReport {
        packages_created: 2,
        channels_moved: 2,
        ..SyncReport::default()
    };
    assert_eq!(report, expected);
    // The mirrored packages are the upstream's: URL, file name, size, both hashes, extra files.
    let packages = |s: &TestServer| {
        let mut all = s.fleet.store.list_packages(FLATCAR).unwrap();
        all.iter_mut().for_each(|p| p.id.clear());
        all.sort_by(|a, b| a.version.cmp(&b.version));
        all
    };
    let (mine, theirs) = (packages(&down), packages(&upstream));
    assert_eq!(mine, theirs);
    assert_eq!(mine[0].extra_files.len(), 1);
    down.refresh();
    let version = |name: &str| channel_version(&down, name);
    assert_eq!(
        (version("stable"), version("beta")),
        (json!("3100.0.0"), json!("3200.0.0"))
    );
    // The upstream saw four stable instances (one per channel and arch), not one per sync.
    assert_eq!(sync_once(&down.fleet.store, T0, &up).unwrap(), SyncReport::default());
    let _ = upstream.fleet.flush_heartbeats();
    let (_, seen) = upstream.api("GET", "/instances?app=flatcar&version=0.0.0", None);
    assert_eq!(seen.as_array().map(Vec::len), Some(4), "{seen}");

    // Upstream promotes stable: the mirror follows (the package is already here from beta).
    upstream.publish("3300.0.0", "stable");
    let report = sync_once(&down.fleet.store, T0, &up).unwrap();
    assert_eq!(
        report,
        SyncReport {
            packages_created: 1,
            channels_moved: 1,
            ..SyncReport::default()
        }
    );

    // An app the upstream does not know: its error answer, named with the channel.
    let (st, body) = down.api(
        "POST",
        "/apps",
        Some(json!({"id": "{00000000-0000-0000-0000-000000000001}", "name": "other"})),
    );
    assert_eq!(st, 201, "{body}");
    let other = Upstream {
        apps: vec!["other".into()],
        ..up.clone()
    };
    let err = sync_once(&down.fleet.store, T0, &other).unwrap_err().to_string();
    assert!(
        err.contains("channel stable (amd64)") && err.contains("error-unknownApplication"),
        "{err}"
    );
    // An app not known here, and an upstream that is not there: clear errors.
    let unknown = Upstream {
        apps: vec!["nosuch".into()],
        ..up.clone()
    };
    let err = sync_once(&down.fleet.store, T0, &unknown).unwrap_err().to_string();
    assert!(err.contains("\"nosuch\" is not known here"), "{err}");
    let gone = Upstream {
        url: "http://127.0.0.1:9/v1/update/".into(),
        ..up
    };
    let err = sync_once(&down.fleet.store, T0, &gone).unwrap_err().to_string();
    assert!(err.contains("http://127.0.0.1:9/v1/update/"), "{err}");
}

/// The version the mirror's channel `name` serves (its first architecture).
fn channel_version(down: &TestServer, name: &str) -> serde_json::Value {
    let (_, chans) = down.api("GET", "/apps/flatcar/channels", None);
    chans.as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()["packages"][0]["version"].clone()
}
