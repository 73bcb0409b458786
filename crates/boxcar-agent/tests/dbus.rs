//! update_engine's D-Bus interface against a real `dbus-daemon` started here on a temp unix
//! socket: methods called with `dbus-send --print-reply`, the `StatusUpdate` signal watched
//! with `dbus-monitor`, an update run through `AttemptUpdate` against the real update server.

mod common;
mod support;

use boxcar_agent::daemon::dbus::Bus;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct DbusDaemon {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl DbusDaemon {
    fn start() -> DbusDaemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("bus");
        let conf = dir.path().join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="com.coreos.update1"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--print-address", "--nofork"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon (Debian package dbus, see scripts/setup.sh)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon printed {address:?}");
        DbusDaemon {
            child,
            address,
            _dir: dir,
        }
    }

    /// `dbus-send --print-reply` to the update_engine object; returns stdout.
    fn call(&self, member: &str) -> Result<String, String> {
        let out = Command::new("dbus-send")
            .arg(format!("--bus={}", self.address))
            .args(["--print-reply", "--dest=com.coreos.update1", "/com/coreos/update1"])
            .arg(member)
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for DbusDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dbus-monitor` on the bus; its output lines collected in the background.
struct Monitor {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Monitor {
    fn start(address: &str) -> Monitor {
        let mut child = Command::new("dbus-monitor")
            .args(["--address", address])
            .arg("type='signal',interface='com.coreos.update1.Manager'")
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-monitor (Debian package dbus-bin)");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                l.lock().unwrap().push(line);
            }
        });
        Monitor { child, lines }
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The five values of a GetStatus reply as dbus-send prints them.
fn get_status(bus: &DbusDaemon) -> Vec<String> {
    let out = bus.call("com.coreos.update1.Manager.GetStatus").unwrap();
    out.lines().skip(1).map(|l| l.trim().to_string()).collect()
}

#[test]
fn update_engine_interface_on_a_real_bus() {
    let bus = DbusDaemon::start();
    let server = UpdateServer::start();
    let node = Node::new(&server.url);
    let (_files, _m) = node.publish(&server, "2.0.0", 300);
    let d = node.start_on(Duration::from_secs(86_400), &Bus::Address(bus.address.clone()));

    // Introspection shows update_engine's signatures.
    let xml = bus.call("org.freedesktop.DBus.Introspectable.Introspect").unwrap();
    for part in [
        r#"<interface name="com.coreos.update1.Manager">"#,
        r#"<method name="AttemptUpdate">"#,
        r#"<method name="ResetStatus">"#,
        r#"<arg name="last_checked_time" type="x" direction="out"/>"#,
        r#"<arg name="progress" type="d" direction="out"/>"#,
        r#"<arg name="current_operation" type="s" direction="out"/>"#,
        r#"<arg name="new_version" type="s" direction="out"/>"#,
        r#"<arg name="new_size" type="x" direction="out"/>"#,
        r#"<signal name="StatusUpdate">"#,
    ] {
        assert!(xml.contains(part), "{part} missing from {xml}");
    }

    assert_eq!(
        get_status(&bus),
        [
            "int64 0",
            "double 0",
            "string \"UPDATE_STATUS_IDLE\"",
            "string \"\"",
            "int64 0"
        ]
    );

    let monitor = Monitor::start(&bus.address);
    // dbus-monitor is listening once it became a monitor (it then loses its unique name).
    wait_for("dbus-monitor to subscribe", || {
        let t = monitor.text();
        (t.contains("member=NameLost"), t)
    });

    bus.call("com.coreos.update1.Manager.AttemptUpdate").unwrap();
    wait_op(&node.socket(), "UPDATE_STATUS_UPDATED_NEED_REBOOT");
    let size = std::fs::metadata(node.world.dir.path().join("2.0.0.bxp"))
        .unwrap()
        .len();
    let st = get_status(&bus);
    assert!(st[0].starts_with("int64 ") && st[0] != "int64 0", "{st:?}");
    assert_eq!(
        st[1..],
        [
            "double 1".to_string(),
            "string \"UPDATE_STATUS_UPDATED_NEED_REBOOT\"".to_string(),
            "string \"2.0.0\"".to_string(),
            format!("int64 {size}")
        ]
    );
    // Every state went out as a StatusUpdate signal, in order.
    let signals = wait_for("the final StatusUpdate", || {
        let t = monitor.text();
        (t.contains("UPDATE_STATUS_UPDATED_NEED_REBOOT"), t)
    });
    assert!(signals.contains("member=StatusUpdate"), "{signals}");
    // Each signal carries update_engine's five values: x d s s x.
    let lines: Vec<&str> = signals.lines().collect();
    let i = lines.iter().rposition(|l| l.contains("member=StatusUpdate")).unwrap();
    let types: Vec<&str> = lines[i + 1..i + 6]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(types, ["int64", "double", "string", "string", "int64"], "{signals}");
    assert_eq!(lines[i + 3].trim(), "string \"UPDATE_STATUS_UPDATED_NEED_REBOOT\"");
    let order = [
        "UPDATE_STATUS_CHECKING_FOR_UPDATE",
        "UPDATE_STATUS_UPDATE_AVAILABLE",
        "UPDATE_STATUS_DOWNLOADING",
        "UPDATE_STATUS_VERIFYING",
        "UPDATE_STATUS_FINALIZING",
        "UPDATE_STATUS_UPDATED_NEED_REBOOT",
    ];
    let pos: Vec<usize> = order
        .iter()
        .map(|s| signals.find(s).unwrap_or_else(|| panic!("{s} missing from {signals}")))
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{signals}");

    // AttemptUpdate with an update staged is ignored (as update_engine does), no error.
    bus.call("com.coreos.update1.Manager.AttemptUpdate").unwrap();
    // ResetStatus un-stages and is signalled.
    bus.call("com.coreos.update1.Manager.ResetStatus").unwrap();
    assert_eq!(get_status(&bus)[2], "string \"UPDATE_STATUS_IDLE\"");
    node.world.assert_only_v1_bootable();
    wait_for("the IDLE signal after the reset", || {
        let t = monitor.text();
        let after = t.rfind("UPDATE_STATUS_UPDATED_NEED_REBOOT").unwrap_or(0);
        (t[after..].contains("UPDATE_STATUS_IDLE"), t)
    });

    // The name is released when the daemon stops.
    d.stop();
    let e = bus.call("com.coreos.update1.Manager.GetStatus").unwrap_err();
    assert!(e.contains("com.coreos.update1"), "{e}");
}

#[test]
fn attempt_update_with_checks_off_is_a_dbus_error() {
    let bus = DbusDaemon::start();
    let node = Node::new("disabled");
    let d = node.start_on(Duration::from_secs(86_400), &Bus::Address(bus.address.clone()));
    let e = bus.call("com.coreos.update1.Manager.AttemptUpdate").unwrap_err();
    assert!(
        e.contains("org.freedesktop.DBus.Error.Failed") && e.contains("update checks are off"),
        "{e}"
    );
    d.stop();
}
