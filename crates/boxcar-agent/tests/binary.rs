//! The `boxcar-updated` binary as systemd runs it: `run` unprivileged with every path in a
//! temp dir (staging into a disk image through the real engine, against the real server),
//! stopped by SIGTERM; `check-once`; `mark-good` after the reboot; config errors by file:line.

mod common;
mod support;

use boxcar_server::model::InstanceStatus;
use common::*;
use std::process::{Command, Stdio};

/// A child process killed if the test fails before it is waited for.
struct Reaped(Option<std::process::Child>);

impl Reaped {
    fn take(mut self) -> std::process::Child {
        self.0.take().unwrap()
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn updated(node: &Node) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_boxcar-updated"));
    c.env("RUST_LOG", "info");
    c.env("BOXCAR_UPDATED_DISK", &node.world.disk);
    c.env("BOXCAR_UPDATED_ESP", &node.world.esp);
    c
}

fn stager_flags(node: &Node) -> Vec<String> {
    let w = &node.world;
    vec![
        "--key".into(),
        w.public_key.display().to_string(),
        "--os-release".into(),
        w.os_release.display().to_string(),
        "--cmdline".into(),
        w.cmdline.display().to_string(),
        "--state-dir".into(),
        w.state.display().to_string(),
    ]
}

fn node_flags(node: &Node) -> Vec<String> {
    let mut v = stager_flags(node);
    for (flag, file) in [
        ("--config", "update.conf"),
        ("--machine-id", "machine-id"),
        ("--boot-id", "boot_id"),
        ("--reboot-required", "run/reboot-required"),
        ("--socket", "run/updated.sock"),
    ] {
        v.push(flag.into());
        v.push(node.path(file).display().to_string());
    }
    v.extend(["--dbus", "none", "--http-timeout", "5"].map(String::from));
    v
}

#[test]
fn run_stage_sigterm_then_check_once_and_mark_good_after_the_reboot() {
    let server = UpdateServer::start();
    let node = Node::new(&server.url);
    let (_files, m) = node.publish(&server, "2.0.0", 300);
    // The daemon, first check right away.
    let child = Reaped(Some(
        updated(&node)
            .arg("run")
            .args(node_flags(&node))
            .args(["--first-check", "0", "--fuzz", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let sock = node.socket();
    wait_for("the socket", || (sock.exists(), sock.clone()));
    let st = wait_op(&sock, "UPDATE_STATUS_UPDATED_NEED_REBOOT");
    assert_eq!(st.new_version, "2.0.0");
    let flag = node.path("run/reboot-required");
    wait_for("the reboot flag", || (flag.exists(), flag.clone()));
    // SIGTERM: a clean stop, socket removed.
    let child = child.take();
    // SAFETY: kill(2) on the pid of our own child.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("update staged; reboot needed") && log.contains("stopping"),
        "{log}"
    );
    assert!(!sock.exists());

    // After the reboot into 2.0.0: one check in the foreground reports success.
    node.reboot_into(&m);
    let out = updated(&node)
        .arg("check-once")
        .args(node_flags(&node))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("CURRENT_OP=UPDATE_STATUS_IDLE\n"), "{stdout}");
    assert!(stdout.starts_with("LAST_CHECKED_TIME="), "{stdout}");
    wait_for("complete on the server", || {
        let s = server.status(&node.machine_id);
        (s == Some(InstanceStatus::Complete), s)
    });

    // boot-complete.target reached: mark good blesses 2.0.0's entry and slot.
    let out = updated(&node)
        .arg("mark-good")
        .args(stager_flags(&node))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        node.world.entries().contains(&"boxcar-2.0.0.efi".to_string()),
        "{:?}",
        node.world.entries()
    );
    let p = boxcar_slots::layout::slot_prio(&node.world.gpt(), boxcar_slots::Slot::B).unwrap();
    assert_eq!((p.tries, p.successful), (0, boxcar_slots::Successful::Yes));
}

#[test]
fn check_once_failure_and_config_errors_are_reported() {
    let node = Node::new("http://127.0.0.1:9/v1/update/");
    std::fs::write(
        node.path("update.conf"),
        "GROUP=stable\nSERVER=http://127.0.0.1:9/v1/update/\nGRUOP=beta\nREBOOT_STRATEGY=reboot\nbroken line\n",
    )
    .unwrap();
    let out = updated(&node)
        .arg("check-once")
        .args(node_flags(&node))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let conf = node.path("update.conf").display().to_string();
    assert!(err.contains(&format!("{conf}:3: unknown key GRUOP (ignored)")), "{err}");
    assert!(err.contains(&format!("{conf}:5: expected KEY=value")), "{err}");
    assert!(
        !err.contains("REBOOT_STRATEGY"),
        "the reboot coordinator's keys are known: {err}"
    );
    assert!(err.contains("error 2 (OmahaRequestError)"), "{err}");
    node.world.assert_only_v1_bootable();
}

#[test]
fn help_names_the_subcommands_and_paths() {
    let out = Command::new(env!("CARGO_BIN_EXE_boxcar-updated"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["run", "mark-good", "check-once"] {
        assert!(help.contains(word), "{help}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_boxcar-updated"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--socket",
        "--dbus",
        "--reboot-required",
        "--first-check",
        "--disk",
        "BOXCAR_UPDATED_DISK",
    ] {
        assert!(help.contains(word), "{word} missing from {help}");
    }
}
