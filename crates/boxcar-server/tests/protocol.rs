//! Omaha protocol and rollout policy, with the request shapes Flatcar's update_engine sends, on
//! SQLite and on PostgreSQL.

mod common;
use boxcar_omaha::{AppStatus, UpdateStatus};
use common::*;
use serde_json::json;

on_both!(
    unknown_app_is_an_error_answer,
    no_package_means_noupdate_and_the_instance_is_recorded,
    unknown_track_means_noupdate_and_no_group,
    a_full_update_walks_the_instance_through_every_status,
    error_and_rollback_events_are_decoded,
    installed_but_booted_old_version_is_a_rollback,
    safe_mode_grants_one_canary_first,
    automatic_halt_on_error_threshold,
    paused_groups_and_windows_withhold,
    timed_out_updates_halt_in_safe_mode,
    period_limit_resets_after_the_period,
);

fn unknown_app_is_an_error_answer(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    let xml = check("m1", "3000.0.0", "stable", "0.0.0.0").replace(FLATCAR, "{00000000-0000-0000-0000-000000000001}");
    let r = parse(s.omaha(&xml));
    let app = &r.apps[0];
    assert_eq!(app.app_id, "{00000000-0000-0000-0000-000000000001}");
    assert_eq!(app.status, AppStatus::UnknownApplication);
    assert_eq!(app.update_check.as_ref().unwrap().status, UpdateStatus::ErrorInternal);
    s.flush();
    let (_, list) = s.api("GET", "/instances", None);
    assert_eq!(list.as_array().unwrap().len(), 0, "nothing stored for unknown apps");
}

fn no_package_means_noupdate_and_the_instance_is_recorded(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    // Appid without braces, as old clients send it.
    let xml = check("m1", "3000.0.0", "stable", "0.0.0.0").replace(FLATCAR, "e96281a6-d1af-4bde-9a0a-97b76e56dc57");
    let r = parse(s.omaha(&xml));
    assert_eq!(r.protocol, "3.0");
    assert_eq!(r.server.as_deref(), Some("boxcar"));
    let app = &r.apps[0];
    assert_eq!(app.status, AppStatus::Ok);
    assert_eq!(app.ping_status.as_deref(), Some("ok"));
    assert_eq!(app.event_acks, 1);
    let uc = app.update_check.as_ref().unwrap();
    assert_eq!(uc.status, UpdateStatus::NoUpdate);
    assert!(uc.urls.is_empty() && uc.manifest.is_none());
    s.flush();
    let i = s.instance("m1");
    assert_eq!(i["version"], "3000.0.0");
    assert_eq!(i["group_id"], "stable");
    assert_eq!(i["status"], "undefined");
    assert_eq!(i["oem"], "qemu");
    assert_eq!(i["ip"], "127.0.0.1");
    assert_eq!(i["arch"], "amd64");
}

fn unknown_track_means_noupdate_and_no_group(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    s.publish("3100.0.0", "stable");
    assert_eq!(
        status_of(s.omaha(&check("m1", "3000.0.0", "nightly-xyz", "0.0.0.0"))),
        "noupdate"
    );
    s.flush();
    let i = s.instance("m1");
    assert_eq!(i["group_id"], serde_json::Value::Null);
    assert_eq!(i["track"], "nightly-xyz");
}

fn a_full_update_walks_the_instance_through_every_status(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    s.policy("stable", open_policy(10));
    s.publish("3100.0.0", "stable");

    let r = parse(s.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0")));
    let app = &r.apps[0];
    assert_eq!(app.app_id, FLATCAR);
    assert_eq!(app.status, AppStatus::Ok);
    let uc = app.update_check.as_ref().unwrap();
    assert_eq!(uc.status, UpdateStatus::Ok);
    assert_eq!(uc.urls, vec!["https://updates.example.com/3100.0.0/".to_string()]);
    let m = uc.manifest.as_ref().unwrap();
    assert_eq!(m.version, "3100.0.0");
    assert_eq!(m.packages[0].name, "flatcar_production_update.gz");
    assert_eq!(m.packages[0].size, 465_000_000);
    assert_eq!(m.packages[0].hash.as_deref(), Some("2jmj7l5rSw0yVb/vlWAYkK/YBwk="));
    assert!(m.packages[0].required);
    assert_eq!(m.packages[1].name, "oem-azure.gz");
    assert_eq!(m.packages[1].hash_sha256.as_deref(), Some("ab".repeat(32).as_str()));
    assert!(!m.packages[1].required);
    let action = &m.actions[0];
    assert_eq!(action.event, "postinstall");
    // Hex given at publish time, base64 on the wire.
    assert_eq!(
        action.sha256.as_deref(),
        Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
    );
    assert!(action.disable_payload_backoff);
    assert_eq!(s.instance("m1")["status"], "granted");

    for (t, r, want) in [(13, 1, "downloading"), (14, 1, "downloaded"), (3, 1, "installed")] {
        let resp = parse(s.omaha(&event("m1", "3000.0.0", "stable", t, r, None)));
        assert_eq!(resp.apps[0].event_acks, 1);
        assert!(resp.apps[0].update_check.is_none());
        assert_eq!(s.instance("m1")["status"], want);
    }
    // UPDATED_NEED_REBOOT: pings only.
    let resp = parse(s.omaha(&ping("m1", "3000.0.0", "stable")));
    assert_eq!(resp.apps[0].ping_status.as_deref(), Some("ok"));
    assert!(resp.apps[0].update_check.is_none());
    assert_eq!(resp.apps[0].event_acks, 0);
    // After the reboot: check with previousversion = old version.
    assert_eq!(
        status_of(s.omaha(&check("m1", "3100.0.0", "stable", "3000.0.0"))),
        "noupdate"
    );
    let i = s.instance("m1");
    assert_eq!(i["status"], "complete");
    assert_eq!(i["update_in_progress"], false);
    assert_eq!(i["version"], "3100.0.0");
    let kinds: Vec<String> = i["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].to_string())
        .collect();
    assert_eq!(kinds, vec!["3", "3", "14", "13"]);
    let (_, activity) = s.api("GET", "/activity?app=flatcar", None);
    assert!(activity
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["kind"] == "rollout_started" && a["version"] == "3100.0.0"));
    let (_, g) = s.api("GET", "/apps/flatcar/groups/stable", None);
    assert_eq!(g["progress"]["complete"], 1);
    assert_eq!(g["progress"]["granted"], 1);
}

fn error_and_rollback_events_are_decoded(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    s.policy("stable", open_policy(10));
    s.publish("3100.0.0", "stable");
    assert_eq!(status_of(s.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0"))), "ok");
    assert_eq!(status_of(s.omaha(&check("m2", "3000.0.0", "stable", "0.0.0.0"))), "ok");
    parse(s.omaha(&event("m1", "3000.0.0", "stable", 13, 1, None)));
    // PayloadHashMismatch with the "resumed" flag.
    parse(s.omaha(&event("m1", "3000.0.0", "stable", 3, 0, Some((1 << 30) | 10))));
    let i = s.instance("m1");
    assert_eq!(i["status"], "error");
    assert_eq!(i["last_error"], "PayloadHashMismatch (resumed)");
    assert_eq!(i["events"][0]["error"], "PayloadHashMismatch (resumed)");
    // update_engine's own rollback report: a check carrying 3/0/44.
    let xml = check("m2", "3000.0.0", "stable", "0.0.0.0").replace(
        r#"eventresult="2" previousversion="0.0.0.0""#,
        r#"eventresult="0" errorcode="44""#,
    );
    parse(s.omaha(&xml));
    let i = s.instance("m2");
    assert_eq!(i["status"], "rollback");
    assert_eq!(i["last_error"], "RollbackError");
}

fn installed_but_booted_old_version_is_a_rollback(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    s.policy("stable", open_policy(10));
    s.publish("3100.0.0", "stable");
    assert_eq!(status_of(s.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0"))), "ok");
    for (t, r) in [(13, 1), (14, 1), (3, 1)] {
        parse(s.omaha(&event("m1", "3000.0.0", "stable", t, r, None)));
    }
    // Rebooted, still on 3000.0.0.
    s.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0"));
    assert_eq!(s.instance("m1")["status"], "rollback");
}

fn safe_mode_grants_one_canary_first(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    s.policy(
        "stable",
        json!({"safe_mode": "on", "max_updates_per_period": 5, "period_minutes": 60}),
    );
    s.publish("3100.0.0", "stable");
    assert_eq!(
        status_of(s.omaha(&check("canary", "3000.0.0", "stable", "0.0.0.0"))),
        "ok"
    );
    assert_eq!(
        status_of(s.omaha(&check("m2", "3000.0.0", "stable", "0.0.0.0"))),
        "noupdate"
    );
    assert_eq!(s.instance("m2")["status"], "on_hold");
    // The canary finishes; the period limit applies from now on.
    s.omaha(&check("canary", "3100.0.0", "stable", "3000.0.0"));
    assert_eq!(s.instance("canary")["status"], "complete");
    assert_eq!(status_of(s.omaha(&check("m2", "3000.0.0", "stable", "0.0.0.0"))), "ok");
}

fn automatic_halt_on_error_threshold(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    s.policy(
        "stable",
        json!({"safe_mode": "off", "max_updates_per_period": 10, "halt": {"threshold_percent": 50, "min_failures": 1}}),
    );
    s.publish("3100.0.0", "stable");
    for m in ["m1", "m2"] {
        assert_eq!(status_of(s.omaha(&check(m, "3000.0.0", "stable", "0.0.0.0"))), "ok");
    }
    parse(s.omaha(&event("m1", "3000.0.0", "stable", 3, 0, Some(21))));
    let (_, g) = s.api("GET", "/apps/flatcar/groups/stable", None);
    assert_eq!(g["policy"]["updates"], "halted");
    assert!(g["policy"]["halted_reason"].as_str().unwrap().contains("1 of 2"), "{g}");
    assert_eq!(g["progress"]["error"], 1);
    let (_, activity) = s.api("GET", "/activity", None);
    let halted = activity
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "group_halted")
        .expect("halt logged");
    assert_eq!(halted["severity"], "error");
    assert!(
        halted["message"]
            .as_str()
            .unwrap()
            .contains("InvalidMetadataMagicString"),
        "{halted}"
    );
    // No new grants while halted; already granted instances may still finish.
    assert_eq!(
        status_of(s.omaha(&check("m3", "3000.0.0", "stable", "0.0.0.0"))),
        "noupdate"
    );
    assert_eq!(status_of(s.omaha(&check("m2", "3000.0.0", "stable", "0.0.0.0"))), "ok");
    // Resume: rollout continues (not stuck after a pause).
    let (st, g) = s.api("POST", "/apps/flatcar/groups/stable/resume", None);
    assert_eq!(st, 200);
    assert_eq!(g["policy"]["updates"], "enabled");
    assert_eq!(g["policy"].get("halted_reason"), None);
    assert_eq!(status_of(s.omaha(&check("m3", "3000.0.0", "stable", "0.0.0.0"))), "ok");
}

fn paused_groups_and_windows_withhold(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    s.publish("3100.0.0", "stable");
    let (st, _) = s.api("POST", "/apps/flatcar/groups/stable/pause", None);
    assert_eq!(st, 200);
    assert_eq!(
        status_of(s.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0"))),
        "noupdate"
    );
    // T0 is Monday 12:00 UTC = 07:00 in New York; window Mon 09:00-10:00 New York time.
    s.policy(
        "stable",
        json!({"safe_mode": "off", "max_updates_per_period": 10, "timezone": "America/New_York",
               "windows": [{"days": ["mon"], "start": "09:00", "length_minutes": 60}]}),
    );
    assert_eq!(
        status_of(s.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0"))),
        "noupdate"
    );
    s.advance(2 * 3600 + 30 * 60); // 09:30 New York
    assert_eq!(status_of(s.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0"))), "ok");
    s.advance(3600); // 10:30, closed again
    assert_eq!(
        status_of(s.omaha(&check("m2", "3000.0.0", "stable", "0.0.0.0"))),
        "noupdate"
    );
    let (_, activity) = s.api("GET", "/activity", None);
    assert!(activity.as_array().unwrap().iter().any(|a| a["kind"] == "group_paused"));
}

fn timed_out_updates_halt_in_safe_mode(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    s.policy(
        "stable",
        json!({"safe_mode": "on", "max_updates_per_period": 5, "update_timeout_minutes": 30}),
    );
    s.publish("3100.0.0", "stable");
    assert_eq!(
        status_of(s.omaha(&check("slow", "3000.0.0", "stable", "0.0.0.0"))),
        "ok"
    );
    s.advance(31 * 60);
    assert_eq!(
        status_of(s.omaha(&check("m2", "3000.0.0", "stable", "0.0.0.0"))),
        "noupdate"
    );
    let (_, g) = s.api("GET", "/apps/flatcar/groups/stable", None);
    assert_eq!(g["policy"]["updates"], "halted");
    assert!(g["policy"]["halted_reason"].as_str().unwrap().contains("timed out"));
}

fn period_limit_resets_after_the_period(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    s.policy("stable", open_policy(2));
    s.publish("3100.0.0", "stable");
    let got: Vec<String> = ["m1", "m2", "m3"]
        .iter()
        .map(|m| status_of(s.omaha(&check(m, "3000.0.0", "stable", "0.0.0.0"))))
        .collect();
    assert_eq!(got, ["ok", "ok", "noupdate"]);
    assert_eq!(s.instance("m3")["status"], "on_hold");
    // Finish both so the concurrency limit does not hold m3 back, then let the period pass.
    for m in ["m1", "m2"] {
        s.omaha(&check(m, "3100.0.0", "stable", "3000.0.0"));
    }
    s.advance(59 * 60);
    assert_eq!(
        status_of(s.omaha(&check("m3", "3000.0.0", "stable", "0.0.0.0"))),
        "noupdate"
    );
    s.advance(2 * 60);
    assert_eq!(status_of(s.omaha(&check("m3", "3000.0.0", "stable", "0.0.0.0"))), "ok");
}
