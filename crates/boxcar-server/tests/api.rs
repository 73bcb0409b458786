//! Admin API, tokens, OpenAPI, metrics, FleetLock, retention and hostile input, on both engines.

mod common;
use common::*;
use serde_json::json;

on_both!(
    hostile_omaha_input_gets_clear_4xx_and_the_server_keeps_serving,
    tokens_and_roles,
    apps_channels_packages_groups,
    instance_search,
    openapi_document_lists_every_route,
    metrics_expose_instances_grants_latency_and_pool,
    fleetlock_semaphores,
    retention_prunes_old_rows,
);

fn hostile_omaha_input_gets_clear_4xx_and_the_server_keeps_serving(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    let cases: Vec<(String, u16, &str)> = vec![
        ("<request protocol=\"3.0\"><app></request>".into(), 400, "parsing Omaha document"),
        ("not xml at all <<<".into(), 400, "parsing Omaha document"),
        (
            r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><request protocol="3.0"><app appid="&b;" version="1" machineid="m"/></request>"#.into(),
            400,
            "DTD",
        ),
        (format!("<request protocol=\"3.0\">{}</request>", "x".repeat(100 * 1024)), 413, "exceeds the limit"),
        (
            format!("<request protocol=\"3.0\"><app appid=\"{}\" version=\"1\" machineid=\"m\"/></request>", "a".repeat(20_000)),
            400,
            "attribute appid of <app>",
        ),
        ("<request protocol=\"2.0\"><app appid=\"x\" version=\"1\" machineid=\"m\"/></request>".into(), 400, "protocol"),
        ("<request protocol=\"3.0\"></request>".into(), 400, "no <app>"),
        ("<request protocol=\"3.0\"><app appid=\"x\" version=\"1\"/></request>".into(), 400, "machineid"),
    ];
    for (body, want, msg) in cases {
        let (status, text) = s.omaha(&body);
        assert_eq!(status, want, "{text}");
        assert!(text.contains(msg), "expected {msg:?} in {text:?}");
    }
    // Still serving.
    assert_eq!(
        status_of(s.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0"))),
        "noupdate"
    );
    let (_, metrics) = http(s.addr, "GET", "/metrics", &[], b"");
    assert!(metrics.contains("boxcar_bad_requests_total 8"), "{metrics}");
}

fn tokens_and_roles(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    let (st, _) = http(s.addr, "GET", "/api/v1/apps", &[], b"");
    assert_eq!(st, 401);
    let (st, body) = s.api_as("bxc_wrong", "GET", "/apps", None);
    assert_eq!((st, body["error"].as_str()), (401, Some("unknown token")));
    let (st, _) = s.api_as(&"x".repeat(10_000), "GET", "/apps", None);
    assert_eq!(st, 401);
    let (st, apps) = s.api_as(&s.reader.clone(), "GET", "/apps", None);
    assert_eq!(st, 200);
    assert_eq!(apps[0]["name"], "flatcar");
    let (st, body) = s.api_as(&s.reader.clone(), "POST", "/apps/flatcar/groups/stable/pause", None);
    assert_eq!((st, body["error"].as_str()), (403, Some("this token is read-only")));
    // An admin mints a read-only token; it works for reading only.
    let (st, t) = s.api("POST", "/tokens", Some(json!({"name": "ci", "role": "readonly"})));
    assert_eq!(st, 201);
    let token = t["token"].as_str().unwrap().to_string();
    assert_eq!(s.api_as(&token, "GET", "/activity", None).0, 200);
    assert_eq!(
        s.api_as(&token, "POST", "/prune", Some(json!({"older_than_days": 5})))
            .0,
        403
    );
    // Stored hashed: the plain token is nowhere in the database file (SQLite) / tokens table.
    let rows = s.fleet.store.token_role(&token).unwrap();
    assert_eq!(rows, Some(boxcar_server::store::Role::ReadOnly));
    if b == Backend::Sqlite {
        let raw = std::fs::read(&db.location).unwrap_or_default();
        let wal = std::fs::read(format!("{}-wal", db.location)).unwrap_or_default();
        let hay = [raw, wal].concat();
        assert!(
            !hay.windows(token.len()).any(|w| w == token.as_bytes()),
            "token stored in clear"
        );
    }
}

fn apps_channels_packages_groups(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    let app = json!({"id": "AAAAAAAA-0000-0000-0000-000000000001", "name": "myos", "description": "ours"});
    let (st, created) = s.api("POST", "/apps", Some(app.clone()));
    assert_eq!(st, 201, "{created}");
    assert_eq!(created["id"], "{aaaaaaaa-0000-0000-0000-000000000001}");
    assert_eq!(s.api("POST", "/apps", Some(app)).0, 409);
    assert_eq!(
        s.api("POST", "/apps/myos/channels", Some(json!({"name": "edge"}))).0,
        201
    );
    assert_eq!(
        s.api("POST", "/apps/myos/channels", Some(json!({"name": "bad name!"})))
            .0,
        400
    );
    let pkg = |v: &str, arch: &str| {
        json!({"version": v, "arch": arch, "url": "https://x.example/p", "filename": "update.gz", "size": 10,
               "sha256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="})
    };
    for (v, a) in [("1.0.0", "amd64"), ("1.0.0", "arm64"), ("1.1.0", "amd64")] {
        let (st, p) = s.api("POST", "/apps/myos/packages", Some(pkg(v, a)));
        assert_eq!(st, 201, "{p}");
        assert_eq!(p["url"], "https://x.example/p/", "codebase gets its trailing slash");
    }
    assert_eq!(s.api("POST", "/apps/myos/packages", Some(pkg("1.0.0", "amd64"))).0, 409);
    let (st, moved) = s.api("PUT", "/apps/myos/channels/edge", Some(json!({"version": "1.0.0"})));
    assert_eq!(st, 200);
    assert_eq!(moved.as_array().unwrap().len(), 2, "both arches promoted");
    assert_eq!(
        s.api("PUT", "/apps/myos/channels/edge", Some(json!({"version": "9.9.9"})))
            .0,
        404
    );
    assert_eq!(
        s.api("PUT", "/apps/myos/channels/nope", Some(json!({"version": "1.0.0"})))
            .0,
        404
    );
    let (_, chans) = s.api("GET", "/apps/myos/channels", None);
    let edge = chans.as_array().unwrap().iter().find(|c| c["name"] == "edge").unwrap();
    assert_eq!(edge["packages"][0]["version"], "1.0.0");
    let names: Vec<&str> = chans
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta", "edge", "lts", "stable"]);

    let bad = json!({"id": "prod", "channel": "edge", "policy": {"timezone": "Mars/Olympus"}});
    let (st, err) = s.api("POST", "/apps/myos/groups", Some(bad));
    assert_eq!(st, 400);
    assert!(err["error"].as_str().unwrap().contains("Mars/Olympus"));
    let good = json!({"id": "prod", "track": "production", "channel": "edge",
                      "policy": {"timezone": "Europe/Berlin", "max_updates_per_period": 50}});
    assert_eq!(s.api("POST", "/apps/myos/groups", Some(good)).0, 201);
    let (st, g) = s.api("GET", "/apps/myos/groups/production", None);
    assert_eq!(st, 200);
    assert_eq!(g["id"], "prod");
    assert_eq!(g["policy"]["max_updates_per_period"], 50);
    assert_eq!(g["policy"]["safe_mode"], "on");
    assert_eq!(g["progress"]["version"], "1.0.0");
    // A node of our own app on the track gets the package.
    let xml = check("n1", "0.9.0", "production", "0.0.0.0").replace(FLATCAR, "{aaaaaaaa-0000-0000-0000-000000000001}");
    let r = parse(s.omaha(&xml));
    assert_eq!(
        r.first_update_check().unwrap().manifest.as_ref().unwrap().version,
        "1.0.0"
    );
    assert_eq!(s.api("GET", "/apps/nope/groups", None).0, 404);
}

fn instance_search(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    for (m, v, ip, track) in [
        ("aa-1", "3000.0.0", "10.0.0.1", "stable"),
        ("aa-2", "3000.0.0", "10.0.0.2", "beta"),
        ("bb-1", "3100.0.0", "192.168.1.5", "stable"),
    ] {
        let (st, _) = http(
            s.addr,
            "POST",
            "/v1/update/",
            &[("X-Forwarded-For", &format!("{ip}, 172.16.0.1"))],
            check(m, v, track, "0.0.0.0").as_bytes(),
        );
        assert_eq!(st, 200);
    }
    s.flush();
    let ids = |q: &str| -> Vec<String> {
        let (st, list) = s.api("GET", &format!("/instances?{q}"), None);
        assert_eq!(st, 200, "{list}");
        let mut v: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["machine_id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids("version=3000.0.0"), ["aa-1", "aa-2"]);
    assert_eq!(ids("id=aa"), ["aa-1", "aa-2"]);
    assert_eq!(ids("ip=10.0.0."), ["aa-1", "aa-2"]);
    assert_eq!(ids("ip=192.168.1.5"), ["bb-1"]);
    assert_eq!(ids("group=beta"), ["aa-2"]);
    assert_eq!(ids("status=undefined&group=stable"), ["aa-1", "bb-1"]);
    assert_eq!(ids("app=flatcar&limit=1").len(), 1);
    assert_eq!(ids("status=complete"), Vec::<String>::new());
    assert_eq!(s.api("GET", "/instances?status=bogus", None).0, 400);
}

fn openapi_document_lists_every_route(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    let (st, body) = http(s.addr, "GET", "/openapi.json", &[], b"");
    assert_eq!(st, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let mut paths: Vec<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    paths.sort();
    let mut routes = vec![
        "/api/v1/apps",
        "/api/v1/apps/{app}/channels",
        "/api/v1/apps/{app}/channels/{channel}",
        "/api/v1/apps/{app}/packages",
        "/api/v1/apps/{app}/groups",
        "/api/v1/apps/{app}/groups/{group}",
        "/api/v1/apps/{app}/groups/{group}/pause",
        "/api/v1/apps/{app}/groups/{group}/resume",
        "/api/v1/apps/{app}/versions",
        "/api/v1/apps/{app}/instances/{machine}",
        "/api/v1/instances",
        "/api/v1/activity",
        "/api/v1/prune",
        "/api/v1/tokens",
        "/api/v1/fleetlock/groups",
        "/api/v1/fleetlock/groups/{group}",
    ];
    routes.sort();
    assert_eq!(paths, routes);
    // And each documented GET without path parameters answers.
    for p in routes
        .iter()
        .filter(|p| !p.contains('{') && doc["paths"][**p].get("get").is_some())
    {
        let (st, body) = s.api("GET", p.trim_start_matches("/api/v1"), None);
        assert_eq!(st, 200, "{p}: {body}");
    }
}

fn metrics_expose_instances_grants_latency_and_pool(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    s.policy("stable", json!({"safe_mode": "off", "max_updates_per_period": 10}));
    s.publish("3100.0.0", "stable");
    assert_eq!(status_of(s.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0"))), "ok");
    parse(s.omaha(&event("m1", "3000.0.0", "stable", 3, 0, Some(44))));
    assert_eq!(
        status_of(s.omaha(&check("m2", "3100.0.0", "stable", "0.0.0.0"))),
        "noupdate"
    );
    s.flush();
    let (st, m) = http(s.addr, "GET", "/metrics", &[], b"");
    assert_eq!(st, 200);
    for want in [
        r#"boxcar_instances{app="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}",group="stable",channel="stable",version="3000.0.0",status="rollback"} 1"#,
        r#"boxcar_instances{app="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}",group="stable",channel="stable",version="3100.0.0",status="undefined"} 1"#,
        "boxcar_update_grants_total 1",
        "boxcar_error_events_total 1",
        "boxcar_rollback_events_total 1",
        r#"boxcar_update_checks_total{result="noupdate"} 1"#,
        r#"boxcar_omaha_request_duration_seconds_bucket{le="+Inf"} 3"#,
        "boxcar_omaha_request_duration_seconds_count 3",
        "boxcar_db_connections_max 16",
    ] {
        assert!(m.contains(want), "missing {want} in\n{m}");
    }
}

fn lock(s: &TestServer, path: &str, id: &str, group: &str) -> (u16, String) {
    let body = json!({"client_params": {"id": id, "group": group}}).to_string();
    http(
        s.addr,
        "POST",
        path,
        &[("fleet-lock-protocol", "true")],
        body.as_bytes(),
    )
}

fn fleetlock_semaphores(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    assert_eq!(
        s.api("PUT", "/fleetlock/groups/workers", Some(json!({"max_holders": 2})))
            .0,
        204
    );
    assert_eq!(
        s.api("PUT", "/fleetlock/groups/workers", Some(json!({"max_holders": 0})))
            .0,
        400
    );
    assert_eq!(lock(&s, "/v1/pre-reboot", "a", "workers").0, 200);
    assert_eq!(lock(&s, "/v1/pre-reboot", "b", "workers").0, 200);
    let (st, body) = lock(&s, "/v1/pre-reboot", "c", "workers");
    assert_eq!(st, 409);
    let err: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["kind"], "failed_lock_semaphore_full");
    assert_eq!(lock(&s, "/v1/pre-reboot", "a", "workers").0, 200, "recursive");
    assert_eq!(lock(&s, "/v1/steady-state", "a", "workers").0, 200);
    assert_eq!(lock(&s, "/v1/steady-state", "a", "workers").0, 200, "idempotent unlock");
    assert_eq!(lock(&s, "/v1/pre-reboot", "c", "workers").0, 200);
    // Groups are isolated; unknown groups get one slot.
    assert_eq!(lock(&s, "/v1/pre-reboot", "x", "default").0, 200);
    assert_eq!(lock(&s, "/v1/pre-reboot", "y", "default").0, 409);
    let (_, groups) = s.api("GET", "/fleetlock/groups", None);
    let workers = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "workers")
        .unwrap();
    assert_eq!(workers["holders"], json!(["b", "c"]));
    // Protocol violations.
    let body = json!({"client_params": {"id": "a", "group": "workers"}}).to_string();
    let (st, text) = http(s.addr, "POST", "/v1/pre-reboot", &[], body.as_bytes());
    assert_eq!(st, 400);
    assert!(text.contains("missing_fleet_lock_header"));
    let (st, text) = lock(&s, "/v1/pre-reboot", "a", "bad group!");
    assert_eq!(st, 400);
    assert!(text.contains("invalid_client_group"));
    let (st, _) = http(
        s.addr,
        "POST",
        "/v1/pre-reboot",
        &[("fleet-lock-protocol", "true")],
        b"{not json",
    );
    assert_eq!(st, 400);
    assert_eq!(lock(&s, "/v1/pre-reboot", "", "workers").0, 400);
}

fn retention_prunes_old_rows(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    s.omaha(&check("old", "3000.0.0", "stable", "0.0.0.0"));
    s.omaha(&event("old", "3000.0.0", "stable", 3, 0, Some(9)));
    s.flush();
    s.advance(100 * 86400);
    s.omaha(&check("new", "3000.0.0", "stable", "0.0.0.0"));
    s.flush();
    let (st, n) = s.api("POST", "/prune", Some(json!({"older_than_days": 90})));
    assert_eq!(st, 200);
    assert_eq!(n["instances"], 1);
    assert_eq!(n["events"], 1);
    let (_, list) = s.api("GET", "/instances", None);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["machine_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["new"]);
}
