//! `boxcar fleet …` end to end against a real update server on loopback (SQLite).

use boxcar_server::service::{Clock, Fleet};
use boxcar_server::store::{Role, Store};
use std::io::{Read, Write};
use std::process::Command;
use std::sync::Arc;

struct Server {
    url: String,
    token: String,
    reader: String,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = boxcar_server::db::open(dir.path().join("fleet.db").to_str().unwrap(), 4).unwrap();
    let store = Store::new(db);
    store.ensure_defaults(Clock::System.now()).unwrap();
    let token = store.create_token(0, "cli-admin", Role::Admin).unwrap();
    let reader = store.create_token(0, "cli-reader", Role::ReadOnly).unwrap();
    let fleet = Arc::new(Fleet::new(store, Clock::System).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(boxcar_server::server::serve(fleet, listener));
    Server {
        url,
        token,
        reader,
        _rt: rt,
        _dir: dir,
    }
}

fn fleet(s: &Server, token: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_boxcar"))
        .arg("fleet")
        .args(args)
        .env("BOXCAR_SERVER", &s.url)
        .env("BOXCAR_TOKEN", token)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(s: &Server, args: &[&str]) -> String {
    let (code, out, err) = fleet(s, &s.token, args);
    assert_eq!(code, 0, "boxcar fleet {args:?}: {err}");
    out
}

fn omaha_check(s: &Server, machine: &str, version: &str) -> String {
    let body = format!(
        r#"<request protocol="3.0" version="update_engine-0.4.10"><os platform="CoreOS"/><app appid="{{e96281a6-d1af-4bde-9a0a-97b76e56dc57}}" version="{version}" track="canary" machineid="{machine}" board="amd64-usr"><ping active="1"/><updatecheck/><event eventtype="3" eventresult="2" previousversion="0.0.0.0"/></app></request>"#
    );
    let addr = s.url.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(
        c,
        "POST /v1/update/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    resp
}

#[test]
fn publish_promote_group_policy_pause_resume_and_search() {
    let s = server();
    assert!(ok(&s, &["apps"]).contains("flatcar"));
    let published = ok(
        &s,
        &[
            "publish",
            "--version",
            "3100.0.0",
            "--url",
            "https://cdn.example/3100.0.0/",
            "--filename",
            "flatcar_production_update.gz",
            "--size",
            "1000",
            "--sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "--extra",
            "oem-azure.gz:10:abababababababababababababababababababababababababababababababab",
            "--channel",
            "beta",
        ],
    );
    assert!(
        published.contains("\"sha256\": \"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\""),
        "{published}"
    );
    assert!(ok(&s, &["promote", "stable", "3100.0.0"]).contains("stable (amd64) now serves 3100.0.0"));
    assert!(ok(&s, &["channels"]).contains("stable\tamd64\t3100.0.0"));
    ok(
        &s,
        &["create-group", "canaries", "--channel", "stable", "--track", "canary"],
    );
    let policy = ok(
        &s,
        &[
            "set-policy",
            "canary",
            "--max-updates",
            "7",
            "--safe-mode",
            "off",
            "--timezone",
            "UTC",
            "--window",
            "mon,tue,wed,thu,fri,sat,sun 00:00 1440",
        ],
    );
    assert!(policy.contains("\"max_updates_per_period\": 7"), "{policy}");
    assert!(policy.contains("\"safe_mode\": \"off\""));
    let groups = ok(&s, &["groups"]);
    assert!(
        groups
            .lines()
            .any(|l| l.starts_with("canaries\tcanary\tstable\tenabled\toff\t7")),
        "{groups}"
    );

    assert!(ok(&s, &["pause", "canary"]).contains("updates paused"));
    assert!(omaha_check(&s, "node-1", "3000.0.0").contains(r#"<updatecheck status="noupdate">"#));
    assert!(ok(&s, &["resume", "canaries"]).contains("updates enabled"));
    assert!(omaha_check(&s, "node-1", "3000.0.0").contains(r#"<updatecheck status="ok">"#));

    let found = ok(&s, &["instances", "--status", "granted", "--group", "canaries"]);
    assert!(
        found
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("node-1\t3000.0.0\tgranted\tcanaries\t127.0.0.1"),
        "{found}"
    );
    assert_eq!(
        ok(&s, &["instances", "--version", "9.9.9"]).lines().count(),
        1,
        "header only"
    );
    let json = ok(&s, &["--json", "instances", "--id", "node"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["machine_id"], "node-1");
    let activity = ok(&s, &["activity"]);
    for kind in [
        "rollout_started",
        "group_resumed",
        "group_paused",
        "channel_promoted",
        "package_created",
    ] {
        assert!(activity.contains(kind), "{kind} missing from {activity}");
    }
    // Tables show RFC 3339 UTC times; --json keeps the API's unix seconds, and both name the
    // same instant.
    let first = activity.lines().nth(1).unwrap().split('\t').next().unwrap().to_string();
    let shown: jiff::Timestamp = first.parse().unwrap_or_else(|e| panic!("{first:?}: {e}"));
    assert!(
        first.ends_with('Z') && first.len() == "2026-01-01T00:00:00Z".len(),
        "{first}"
    );
    let raw: serde_json::Value = serde_json::from_str(&ok(&s, &["--json", "activity"])).unwrap();
    assert_eq!(raw[0]["ts"].as_i64(), Some(shown.as_second()), "{raw}");
    let age = jiff::Timestamp::now().as_second() - shown.as_second();
    assert!((0..600).contains(&age), "activity time {first} is {age} s from now");
}

#[test]
fn errors_are_reported_with_exit_codes_and_tokens_are_not_printed() {
    let s = server();
    let (code, _, err) = fleet(&s, &s.reader, &["pause", "stable"]);
    assert_eq!(code, 1);
    assert!(err.contains("HTTP 403: this token is read-only"), "{err}");
    assert!(!err.contains(&s.reader));
    let (code, _, err) = fleet(&s, "bxc_nope", &["apps"]);
    assert_eq!(code, 1);
    assert!(err.contains("HTTP 401"), "{err}");
    let (code, _, err) = fleet(&s, &s.token, &["promote", "stable", "1.2.3"]);
    assert_eq!(code, 1);
    assert!(err.contains("HTTP 404: package 1.2.3 not found"), "{err}");
    let (code, _, err) = fleet(&s, &s.token, &["set-policy", "stable", "--window", "mon 09:00"]);
    assert_eq!(code, 1);
    assert!(err.contains("expected \"DAYS HH:MM MINUTES\""), "{err}");
    let help = Command::new(env!("CARGO_BIN_EXE_boxcar"))
        .args(["fleet", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("publish") && help.contains("set-policy") && help.contains("instances"),
        "{help}"
    );
}
