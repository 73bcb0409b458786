//! Downstream mode: a server mirrors channels and packages from an upstream Boxcar server on
//! loopback and serves its own fleet from them, under its own policies.

mod common;
use boxcar_server::downstream::{sync_once, SyncReport, Upstream};
use common::*;
use serde_json::json;
use std::time::Duration;

on_both!(mirrors_channels_and_packages_and_follows_promotions);

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
        token: upstream.reader.clone(),
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
    let (_, chans) = down.api("GET", "/apps/flatcar/channels", None);
    let version = |name: &str| {
        chans.as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()["packages"][0]["version"].clone()
    };
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
        token: "bxc_wrong".into(),
        ..up
    };
    let err = sync_once(&down.fleet.store, T0, &bad).unwrap_err().to_string();
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(!err.contains("bxc_wrong"), "token not in error text");
}
