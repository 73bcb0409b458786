//! boxcar-updated end to end on loopback against the real Boxcar update server: check →
//! download → stage → UPDATED_NEED_REBOOT → /run/reboot-required, the server's view of the
//! events; then a simulated reboot into the new version (complete) or back into the old one
//! (rollback, error 44).

mod common;

use boxcar_server::model::InstanceStatus;
use common::*;
use std::time::Duration;

const NEVER: Duration = Duration::from_secs(86_400);

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

struct Setup {
    server: UpdateServer,
    files: HttpServer,
    node: Node,
}

fn setup(payload_len: usize) -> (Setup, Vec<u8>) {
    let server = UpdateServer::start();
    let files = HttpServer::start();
    let data = payload(payload_len);
    files.route("/pkg/boxcar-2.0.0.payload", Reply::Body(200, data.clone()));
    server.publish("2.0.0", &format!("{}/pkg/", files.base), "boxcar-2.0.0.payload", &data);
    let node = Node::new("1.0.0", &server.url);
    (Setup { server, files, node }, data)
}

/// Runs one update to UPDATED_NEED_REBOOT through the API and returns the daemon.
fn stage_update(s: &Setup, stager: std::sync::Arc<FileStager>) -> boxcar_agent::daemon::Daemon {
    let d = s.node.start(stager, NEVER);
    let sock = s.node.socket();
    assert_eq!(api_status(&sock).current_operation, "UPDATE_STATUS_IDLE");
    let r = api(&sock, r#"{"v":1,"method":"check"}"#);
    assert_eq!(r["ok"], true, "{r}");
    let st = wait_op(&sock, "UPDATE_STATUS_UPDATED_NEED_REBOOT");
    assert_eq!(st.new_version, "2.0.0");
    assert!(st.reboot_needed);
    assert_eq!(st.progress, 1.0);
    assert!(st.last_checked_time > 0);
    d
}

#[test]
fn update_reboot_complete() {
    let (s, data) = setup(300_000);
    let stager = FileStager::new(&s.node, "0.9.0");
    let sock = s.node.socket();
    let d = stage_update(&s, stager.clone());
    // Staged for real: the slot holds the payload, the reboot flag is there.
    assert_eq!(std::fs::read(stager.slot()).unwrap(), data);
    assert!(s.node.path("run/reboot-required").exists());
    // The server saw update_engine's sequence.
    let id = &s.node.machine_id;
    wait_for("installed on the server", || {
        let st = s.server.status(id);
        (st == Some(InstanceStatus::Installed), st)
    });
    let events = s.server.events(id);
    assert!(events.contains(&(13, 1, None)), "{events:?}");
    assert!(events.contains(&(14, 1, None)), "{events:?}");
    assert!(events.contains(&(3, 1, None)), "{events:?}");
    let pos = |e| events.iter().position(|x| *x == e).unwrap();
    assert!(pos((13, 1, None)) < pos((14, 1, None)) && pos((14, 1, None)) < pos((3, 1, None)));
    // A second check is refused while the update waits for the reboot.
    let r = api(&sock, r#"{"v":1,"method":"check"}"#);
    assert_eq!(r["error"]["kind"], "already_updated", "{r}");

    // A daemon restart in the same boot remembers the staged update and reports nothing.
    d.stop();
    let d = s.node.start(stager.clone(), NEVER);
    let st = api_status(&sock);
    assert_eq!(st.current_operation, "UPDATE_STATUS_UPDATED_NEED_REBOOT");
    assert_eq!(st.new_version, "2.0.0");
    d.stop();

    // Reboot into 2.0.0: the first check reports 3/2 with previousversion=1.0.0.
    s.node.set_version("2.0.0");
    s.node.new_boot();
    let before = s.files.hits.load(std::sync::atomic::Ordering::SeqCst);
    let d = s.node.start(stager.clone(), Duration::ZERO);
    wait_for("complete on the server", || {
        let st = s.server.status(id);
        (st == Some(InstanceStatus::Complete), st)
    });
    let inst = s.server.instance(id).unwrap();
    assert_eq!(inst.version, "2.0.0");
    let st = wait_op(&sock, "UPDATE_STATUS_IDLE");
    assert_eq!(st.running_version, "2.0.0");
    assert!(st.last_checked_time > 0);
    // Reported once: the stager's pending update is cleared, nothing downloaded again.
    wait_for("pending cleared", || {
        let p = s.node.path("slots/pending");
        (!p.exists(), p)
    });
    assert_eq!(s.files.hits.load(std::sync::atomic::Ordering::SeqCst), before);
    d.stop();
}

#[test]
fn rollback_after_reboot_is_reported_as_error_44() {
    let (s, _) = setup(50_000);
    let stager = FileStager::new(&s.node, "0.9.0");
    let d = stage_update(&s, stager.clone());
    d.stop();
    // The new version did not come up: the boot loader fell back to 1.0.0.
    s.node.new_boot();
    let d = s.node.start(stager.clone(), Duration::ZERO);
    let id = &s.node.machine_id;
    wait_for("rollback on the server", || {
        let st = s.server.status(id);
        (st == Some(InstanceStatus::Rollback), st)
    });
    let events = s.server.events(id);
    assert!(events.contains(&(3, 0, Some(44))), "{events:?}");
    assert!(!s.node.path("slots/pending").exists(), "reported once, then cleared");
    d.stop();
}

#[test]
fn reset_unstages_and_rollback_names_the_version() {
    let (s, _) = setup(20_000);
    let stager = FileStager::new(&s.node, "0.9.0");
    let sock = s.node.socket();
    let d = stage_update(&s, stager.clone());
    // Rollback is refused while an update is staged (the other slot is the new one).
    let r = api(&sock, r#"{"v":1,"method":"rollback"}"#);
    assert_eq!(r["error"]["kind"], "already_updated", "{r}");
    let r = api(&sock, r#"{"v":1,"method":"reset"}"#);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"]["current_operation"], "UPDATE_STATUS_IDLE");
    assert_eq!(stager.unstaged.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(!stager.slot().exists());
    assert!(!s.node.path("run/reboot-required").exists());
    let r = api(&sock, r#"{"v":1,"method":"rollback"}"#);
    assert_eq!(r["rollback"]["version"], "0.9.0", "{r}");
    assert!(
        s.node.path("run/reboot-required").exists(),
        "a rollback needs a reboot too"
    );
    d.stop();
}

#[test]
fn watch_streams_every_state_of_an_update() {
    let (s, _) = setup(2_000_000);
    let stager = FileStager::new(&s.node, "0.9.0");
    let sock = s.node.socket();
    let d = s.node.start(stager, NEVER);
    let mut w = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    use std::io::{BufRead, Write};
    w.write_all(b"{\"v\":1,\"method\":\"watch\"}\n").unwrap();
    let mut lines = std::io::BufReader::new(w.try_clone().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["status"]["current_operation"], "UPDATE_STATUS_IDLE");
    api(&sock, r#"{"v":1,"method":"check"}"#);
    let mut ops = Vec::new();
    let mut progress = Vec::new();
    for l in lines.by_ref() {
        let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
        let op = v["status"]["current_operation"].as_str().unwrap().to_string();
        progress.push(v["status"]["progress"].as_f64().unwrap());
        if ops.last() != Some(&op) {
            ops.push(op.clone());
        }
        if op == "UPDATE_STATUS_UPDATED_NEED_REBOOT" {
            break;
        }
    }
    assert_eq!(
        ops,
        [
            "UPDATE_STATUS_CHECKING_FOR_UPDATE",
            "UPDATE_STATUS_UPDATE_AVAILABLE",
            "UPDATE_STATUS_DOWNLOADING",
            "UPDATE_STATUS_VERIFYING",
            "UPDATE_STATUS_FINALIZING",
            "UPDATE_STATUS_UPDATED_NEED_REBOOT"
        ]
    );
    assert!(
        progress.windows(2).all(|p| p[0] <= p[1]),
        "progress never goes back: {progress:?}"
    );
    let mid = progress.iter().filter(|p| **p > 0.0 && **p < 1.0).count();
    assert!(mid >= 5, "a 2 MB download reports progress along the way: {progress:?}");
    drop(w);
    d.stop();
}

#[test]
fn api_rejects_bad_requests_clearly() {
    let node = Node::new("1.0.0", "http://127.0.0.1:9/v1/update/");
    let d = node.start(FileStager::new(&node, "0.9.0"), NEVER);
    let sock = node.socket();
    let r = api(&sock, "status please");
    assert_eq!(r["error"]["kind"], "bad_request");
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("request is not JSON"));
    let r = api(&sock, r#"{"v":7,"method":"status"}"#);
    assert_eq!(
        r["error"]["message"],
        "unsupported protocol version 7 (this daemon speaks 1)"
    );
    let r = api(&sock, r#"{"v":1,"method":"explode"}"#);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown variant `explode`"),
        "{r}"
    );
    // A line over the limit is refused and the connection closed; the daemon goes on.
    let r = api(&sock, &"x".repeat(10_000));
    assert!(
        r["error"]["message"].as_str().unwrap().contains("longer than 4096"),
        "{r}"
    );
    assert_eq!(api_status(&sock).current_operation, "UPDATE_STATUS_IDLE");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&sock).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o660);
    d.stop();
    assert!(!sock.exists(), "socket removed on stop");
}

#[test]
fn server_disabled_refuses_checks_but_serves_status() {
    let node = Node::new("1.0.0", "disabled");
    let d = node.start(FileStager::new(&node, "0.9.0"), Duration::ZERO);
    let r = api(&node.socket(), r#"{"v":1,"method":"check"}"#);
    assert_eq!(r["error"]["kind"], "disabled", "{r}");
    assert_eq!(api_status(&node.socket()).current_operation, "UPDATE_STATUS_IDLE");
    d.stop();
}
