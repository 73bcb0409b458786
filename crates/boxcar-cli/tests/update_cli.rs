//! `boxcar update …` against a running boxcar-updated (in-process, real staging engine on a
//! disk image, real update server on loopback), over the daemon's socket.

#[path = "../../boxcar-agent/tests/common/mod.rs"]
mod common;
#[path = "../../boxcar-agent/tests/support/mod.rs"]
mod support;

use common::*;
use std::process::Command;
use std::time::Duration;

const NEVER: Duration = Duration::from_secs(86_400);

fn boxcar(node: &Node, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_boxcar"))
        .arg("update")
        .args(args)
        .env("BOXCAR_UPDATED_SOCKET", node.socket())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn status_check_watch_reset_rollback() {
    let server = UpdateServer::start();
    let node = Node::new(&server.url);
    let (_files, _m) = node.publish(&server, "2.0.0", 600);
    let d = node.start(NEVER);

    let (code, out, err) = boxcar(&node, &["status"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "LAST_CHECKED_TIME=0\nPROGRESS=0\nCURRENT_OP=UPDATE_STATUS_IDLE\nNEW_VERSION=0.0.0.0\nNEW_SIZE=0\n"
    );
    // Watching while idle returns at once.
    let (code, out, _) = boxcar(&node, &["watch"]);
    assert_eq!((code, out.as_str()), (0, "UPDATE_STATUS_IDLE\n"));

    // check --watch follows the attempt with plain lines (stdout is not a terminal).
    let (code, out, err) = boxcar(&node, &["check", "--watch"]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"UPDATE_STATUS_IDLE"), "{out}");
    assert!(lines.contains(&"UPDATE_STATUS_CHECKING_FOR_UPDATE"), "{out}");
    assert!(
        lines.iter().any(|l| l.contains("% UPDATE_STATUS_DOWNLOADING 2.0.0 (")),
        "{out}"
    );
    assert!(lines.contains(&"UPDATE_STATUS_FINALIZING 2.0.0"), "{out}");
    assert_eq!(lines.last(), Some(&"UPDATE_STATUS_UPDATED_NEED_REBOOT 2.0.0"), "{out}");
    assert!(!out.contains('\r'), "no terminal control characters in plain output");

    let (code, out, _) = boxcar(&node, &["status", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["current_operation"], "UPDATE_STATUS_UPDATED_NEED_REBOOT");
    assert_eq!(v["new_version"], "2.0.0");
    assert_eq!(v["running_version"], "1.0.0");
    assert_eq!(v["reboot_needed"], true);
    assert_eq!(v["progress"], 1.0);
    let (_, out, _) = boxcar(&node, &["status"]);
    assert!(
        out.contains("\nPROGRESS=1\nCURRENT_OP=UPDATE_STATUS_UPDATED_NEED_REBOOT\nNEW_VERSION=2.0.0\n"),
        "{out}"
    );

    // Refusals are explained, exit 1.
    let (code, _, err) = boxcar(&node, &["check"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "boxcar update: an update is already staged; reboot or reset first\n"
    );
    let (code, _, err) = boxcar(&node, &["rollback"]);
    assert_eq!(code, 1);
    assert!(err.contains("`boxcar update reset` (ResetStatus) first"), "{err}");

    let (code, out, _) = boxcar(&node, &["reset"]);
    assert_eq!((code, out.as_str()), (0, "status reset (UPDATE_STATUS_IDLE)\n"));
    node.world.assert_only_v1_bootable();
    // The other slot never booted: the engine refuses a rollback and says why.
    let (code, _, err) = boxcar(&node, &["rollback"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("boxcar update: rollback failed: "), "{err}");
    d.stop();
}

#[test]
fn failed_attempt_exits_1_with_the_error_and_no_daemon_exits_3() {
    let omaha = HttpServer::start();
    omaha.route("/v1/update/", Reply::Body(200, b"<html>not omaha</xml>".to_vec()));
    let node = Node::new(&format!("{}/v1/update/", omaha.base));
    let d = node.start(NEVER);
    let (code, out, _) = boxcar(&node, &["check", "--watch"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("UPDATE_STATUS_REPORTING_ERROR_EVENT"), "{out}");
    assert!(
        out.contains("error 31 (OmahaRequestXMLParseError): parsing Omaha document"),
        "{out}"
    );
    d.stop();
    let (code, _, err) = boxcar(&node, &["status"]);
    assert_eq!(code, 3);
    assert!(
        err.contains("cannot reach boxcar-updated at ") && err.contains("updated.sock"),
        "{err}"
    );
}

#[test]
fn help_lists_the_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_boxcar"))
        .args(["update", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for w in [
        "status",
        "check",
        "watch",
        "reset",
        "rollback",
        "--socket",
        "BOXCAR_UPDATED_SOCKET",
    ] {
        assert!(help.contains(w), "{w} missing from {help}");
    }
}
