//! boxcar-updated end to end on loopback against the real Boxcar update server, staging with
//! the real `SlotStager` into a GPT disk image: check → download → stage →
//! UPDATED_NEED_REBOOT → /run/reboot-required, the server's view of the events; then a
//! simulated reboot into the new version (complete) or back into the old one (rollback,
//! error 44).

mod common;
mod support;

use boxcar_server::model::InstanceStatus;
use common::*;
use std::sync::atomic::Ordering;
use std::time::Duration;

const NEVER: Duration = Duration::from_secs(86_400);

/// Runs one update to UPDATED_NEED_REBOOT through the API and returns the daemon.
fn stage_update(node: &Node) -> boxcar_agent::daemon::Daemon {
    let d = node.start(NEVER);
    let sock = node.socket();
    assert_eq!(api_status(&sock).current_operation, "UPDATE_STATUS_IDLE");
    let r = api(&sock, r#"{"v":1,"method":"check"}"#);
    assert_eq!(r["ok"], true, "{r}");
    let st = wait_op(&sock, "UPDATE_STATUS_UPDATED_NEED_REBOOT");
    assert_eq!(st.new_version, "2.0.0");
    assert!(st.reboot_needed);
    assert_eq!(st.progress, 1.0);
    assert!(st.last_checked_time > 0);
    assert_eq!(st.last_error, None);
    d
}

#[test]
fn update_reboot_complete_then_rollback_on_purpose() {
    let server = UpdateServer::start();
    let node = Node::new(&server.url);
    let (files, m) = node.publish(&server, "2.0.0", 800);
    let sock = node.socket();
    let d = stage_update(&node);
    // Staged for real: slot B holds 2.0.0 with a counted boot entry, the reboot flag is there.
    let usr = support::usr_image(800, 21);
    let uki = support::usr_image(3, 22);
    node.world.assert_staged(&m, &usr, &uki);
    let flag = node.path("run/reboot-required");
    wait_for("the reboot flag", || (flag.exists(), flag.clone()));
    // The server saw update_engine's sequence, in order.
    let id = &node.machine_id;
    wait_for("installed on the server", || {
        let st = server.status(id);
        (st == Some(InstanceStatus::Installed), st)
    });
    let events = server.events(id);
    let pos = |e: (u32, u32, Option<u32>)| {
        events
            .iter()
            .position(|x| *x == e)
            .unwrap_or_else(|| panic!("{e:?} missing from {events:?}"))
    };
    assert!(pos((13, 1, None)) < pos((14, 1, None)) && pos((14, 1, None)) < pos((3, 1, None)));
    assert!(
        !events.iter().any(|e| e.0 == 800),
        "update_engine never sends 800: {events:?}"
    );
    // A second check is refused while the update waits for the reboot.
    let r = api(&sock, r#"{"v":1,"method":"check"}"#);
    assert_eq!(r["error"]["kind"], "already_updated", "{r}");

    // A daemon restart in the same boot remembers the staged update and reports nothing.
    d.stop();
    let n_events = server.events(id).len();
    let d = node.start(Duration::ZERO);
    let st = api_status(&sock);
    assert_eq!(st.current_operation, "UPDATE_STATUS_UPDATED_NEED_REBOOT");
    assert_eq!(st.new_version, "2.0.0");
    d.stop();
    assert_eq!(
        server.events(id).len(),
        n_events,
        "no event after a restart in the same boot"
    );

    use boxcar_agent::Stager;
    // Reboot into 2.0.0. Until this boot is marked good (boot-complete.target reached), it is
    // on trial: the checks carry a plain ping, no 3/2 event, and the pending record stays.
    // (The server's own rule may already call the instance complete from the version it
    // reports, as Nebraska does; the agent's success report waits for the health checks.)
    node.reboot_into(&m);
    files.reset_counters();
    let n_events = server.events(id).len();
    assert_eq!(
        node.stager().boot_status().unwrap().health,
        boxcar_agent::BootHealth::OnTrial
    );
    let d = node.start(Duration::ZERO);
    wait_for("the first check from 2.0.0", || {
        let v = server.instance(id).map(|i| i.version);
        (v.as_deref() == Some("2.0.0"), v)
    });
    assert_eq!(
        server.events(id).len(),
        n_events,
        "no event while on trial: {:?}",
        server.events(id)
    );
    assert!(node.stager().boot_status().unwrap().pending.is_some());
    // Marked good: the next check reports 3/2 with previousversion=1.0.0.
    node.stager().mark_booted_good().unwrap();
    assert_eq!(
        node.stager().boot_status().unwrap().health,
        boxcar_agent::BootHealth::Good
    );
    let r = api(&sock, r#"{"v":1,"method":"check"}"#);
    assert!(r.get("error").is_none(), "{r}");
    wait_for("3/2 on the server", || {
        let ev = server.events(id);
        (ev.contains(&(3, 2, None)), ev)
    });
    assert_eq!(server.status(id), Some(InstanceStatus::Complete));
    assert_eq!(server.instance(id).unwrap().version, "2.0.0");
    let st = wait_op(&sock, "UPDATE_STATUS_IDLE");
    assert_eq!(st.running_version, "2.0.0");
    // Reported once: the engine's pending record is cleared; nothing downloaded again.
    wait_for("pending cleared", || {
        let p = node.stager().boot_status().unwrap().pending;
        (p.is_none(), p)
    });
    assert_eq!(files.sent.load(Ordering::SeqCst), 0);

    // Roll back to 1.0.0 on purpose.
    let r = api(&sock, r#"{"v":1,"method":"rollback"}"#);
    assert_eq!(r["rollback"]["version"], "1.0.0", "{r}");
    assert_eq!(
        boxcar_slots::layout::next_boot_slot(&node.world.gpt()).unwrap(),
        Some(boxcar_slots::Slot::A)
    );
    d.stop();
}

#[test]
fn nothing_is_staged_over_the_fallback_slot_while_the_boot_is_on_trial() {
    use boxcar_agent::Stager;
    let server = UpdateServer::start();
    server.open_policy();
    let node = Node::new(&server.url);
    let (_files, m) = node.publish(&server, "2.0.0", 800);
    let sock = node.socket();
    stage_update(&node).stop();
    // Booted into 2.0.0 from slot B, on trial; slot A (1.0.0) is what it falls back to.
    node.reboot_into(&m);
    let (files, _) = node.publish(&server, "3.0.0", 800);
    assert_eq!(
        node.stager().boot_status().unwrap().health,
        boxcar_agent::BootHealth::OnTrial
    );
    let gpt_before = node.world.gpt();
    let d = node.start(NEVER);
    let r = api(&sock, r#"{"v":1,"method":"check"}"#);
    assert_eq!(r["ok"], true, "{r}");
    let id = &node.machine_id;
    wait_for("the check from 2.0.0", || {
        let v = server.instance(id).map(|i| i.version);
        (v.as_deref() == Some("2.0.0"), v)
    });
    let st = wait_op(&sock, "UPDATE_STATUS_IDLE");
    assert_eq!((st.new_version.as_str(), st.reboot_needed), ("", false), "{st:?}");
    assert_eq!(
        files.sent.load(Ordering::SeqCst),
        0,
        "nothing downloaded while on trial"
    );
    let granted = server.instance(id).unwrap();
    assert_eq!(
        (granted.update_in_progress, granted.last_update_version.as_deref()),
        (true, Some("3.0.0")),
        "the server did offer 3.0.0: {granted:?}"
    );
    assert_eq!(
        boxcar_slots::layout::slot_prio(&node.world.gpt(), boxcar_slots::Slot::A).unwrap(),
        boxcar_slots::layout::slot_prio(&gpt_before, boxcar_slots::Slot::A).unwrap(),
        "the fallback slot is untouched"
    );
    // Marked good: the same offer is staged into slot A at the next check.
    node.stager().mark_booted_good().unwrap();
    let r = api(&sock, r#"{"v":1,"method":"check"}"#);
    assert_eq!(r["ok"], true, "{r}");
    let st = wait_op(&sock, "UPDATE_STATUS_UPDATED_NEED_REBOOT");
    assert_eq!(st.new_version, "3.0.0");
    assert!(files.sent.load(Ordering::SeqCst) > 0);
    assert_eq!(
        boxcar_slots::layout::next_boot_slot(&node.world.gpt()).unwrap(),
        Some(boxcar_slots::Slot::A)
    );
    d.stop();
}

#[test]
fn rollback_after_reboot_is_reported_as_error_44() {
    let server = UpdateServer::start();
    let node = Node::new(&server.url);
    let (_files, _m) = node.publish(&server, "2.0.0", 300);
    let d = stage_update(&node);
    d.stop();
    // The new version never became healthy: the boot loader fell back to 1.0.0.
    node.reboot_and_fall_back();
    let d = node.start(Duration::ZERO);
    let id = &node.machine_id;
    wait_for("rollback on the server", || {
        let st = server.status(id);
        (st == Some(InstanceStatus::Rollback), st)
    });
    let events = server.events(id);
    assert!(events.contains(&(3, 0, Some(44))), "{events:?}");
    use boxcar_agent::Stager;
    wait_for("pending cleared", || {
        let p = node.stager().boot_status().unwrap().pending;
        (p.is_none(), p)
    });
    // The daemon carries on, idle, on 1.0.0.
    let st = wait_op(&node.socket(), "UPDATE_STATUS_IDLE");
    assert_eq!(st.running_version, "1.0.0");
    d.stop();
}

#[test]
fn reset_unstages_and_rollback_refusals_are_clear() {
    let server = UpdateServer::start();
    let node = Node::new(&server.url);
    let (_files, _m) = node.publish(&server, "2.0.0", 300);
    let sock = node.socket();
    let d = stage_update(&node);
    // Rollback is refused while an update is staged (the other slot is the new one).
    let r = api(&sock, r#"{"v":1,"method":"rollback"}"#);
    assert_eq!(r["error"]["kind"], "already_updated", "{r}");
    let r = api(&sock, r#"{"v":1,"method":"reset"}"#);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"]["current_operation"], "UPDATE_STATUS_IDLE");
    node.world.assert_only_v1_bootable();
    assert!(!node.path("run/reboot-required").exists());
    // Slot B never booted: the engine refuses, the API says why.
    let r = api(&sock, r#"{"v":1,"method":"rollback"}"#);
    assert_eq!(r["error"]["kind"], "stager", "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().starts_with("rollback failed: "),
        "{r}"
    );
    d.stop();
}

#[test]
fn watch_streams_every_state_of_an_update() {
    let server = UpdateServer::start();
    let node = Node::new(&server.url);
    let (_files, _m) = node.publish(&server, "2.0.0", 1500);
    let sock = node.socket();
    let d = node.start(NEVER);
    let mut w = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    use std::io::{BufRead, Write};
    w.write_all(b"{\"v\":1,\"method\":\"watch\"}\n").unwrap();
    let mut lines = std::io::BufReader::new(w.try_clone().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["status"]["current_operation"], "UPDATE_STATUS_IDLE");
    api(&sock, r#"{"v":1,"method":"check"}"#);
    let mut ops: Vec<String> = Vec::new();
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
    assert!(mid >= 2, "the download reports progress along the way: {progress:?}");
    drop(w);
    d.stop();
}

#[test]
fn api_rejects_bad_requests_clearly() {
    let node = Node::new("http://127.0.0.1:9/v1/update/");
    let d = node.start(NEVER);
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
    let node = Node::new("disabled");
    let d = node.start(Duration::ZERO);
    let r = api(&node.socket(), r#"{"v":1,"method":"check"}"#);
    assert_eq!(r["error"]["kind"], "disabled", "{r}");
    assert_eq!(api_status(&node.socket()).current_operation, "UPDATE_STATUS_IDLE");
    d.stop();
}

#[test]
fn scheduled_tick_while_waiting_for_the_reboot_is_a_ping_only() {
    use base64::Engine;
    use sha2::Digest;
    // A recording Omaha server that offers a real signed payload.
    let omaha = HttpServer::start();
    let node = Node::new(&format!("{}/v1/update/", omaha.base));
    let usr = support::usr_image(200, 21);
    let (payload, _m) = node.world.payload("2.0.0", &usr, b"uki", None);
    let files = support::Server::start(payload.clone(), support::Mode::Honest);
    let (base, name) = files.url.rsplit_once('/').unwrap();
    let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&payload));
    let offer = format!(
        r#"<response protocol="3.0"><app appid="{{e96281a6-d1af-4bde-9a0a-97b76e56dc57}}" status="ok"><updatecheck status="ok" PollInterval="3000"><urls><url codebase="{base}/"></url></urls><manifest version="2.0.0"><packages><package name="{name}" size="{}" required="true"></package></packages><actions><action event="postinstall" sha256="{sha}"></action></actions></manifest></updatecheck></app></response>"#,
        payload.len()
    );
    omaha.route("/v1/update/", Reply::Body(200, offer.into_bytes()));
    // The timer's first check stages the update.
    let d = node.start(Duration::ZERO);
    wait_op(&node.socket(), "UPDATE_STATUS_UPDATED_NEED_REBOOT");
    // The server's PollInterval (3000 s, harness fuzz 0) sets the next check.
    let delay = wait_for("the next check to be scheduled", || {
        let s = api_status(&node.socket());
        (
            s.next_check_time > s.last_checked_time,
            s.next_check_time - s.last_checked_time,
        )
    });
    assert!((2995..=3005).contains(&delay), "{delay}");
    let first = &omaha.bodies()[0];
    assert!(
        first.contains(r#"installsource="scheduler""#) && first.contains("<updatecheck"),
        "{first}"
    );
    d.stop();
    // Restarted in the same boot, the next tick only pings.
    let n = omaha.bodies().len();
    let d = node.start(Duration::ZERO);
    let bodies = wait_for("the ping", || {
        let b = omaha.bodies();
        (b.len() > n, b)
    });
    let ping = &bodies[n];
    assert!(ping.contains(r#"<ping active="1""#), "{ping}");
    assert!(!ping.contains("<updatecheck") && !ping.contains("<event"), "{ping}");
    d.stop();
}
