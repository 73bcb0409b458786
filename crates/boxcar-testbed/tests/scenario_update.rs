//! The issue's *update* and *rollback* scenarios on the real image, in one VM
//! (the rollback starts from the updated node, so one test saves two boots):
//!
//! 1. `boxcar image build` makes versions N, N+1 and N+2 (N+2 with a health
//!    check that always fails); builds are cached by their inputs.
//! 2. The real Boxcar server runs on the host (SQLite in a temp dir), a file
//!    server serves the payloads; both are reached from the guest as 10.0.2.2.
//! 3. Image N boots through OVMF + systemd-boot; the Butane config
//!    (`tests/data/update-node.bu`) points the agent at the server.
//! 4. *update*: N+1 is published; the agent stages it into USR-B, the reboot
//!    coordinator reboots, N+1 comes up (os-release on the console), its boot
//!    entry is blessed, and the server shows the instance complete.
//! 5. *rollback*: N+2 is published; the agent stages it into USR-A with one
//!    boot try; N+2's health check fails and reboots; systemd-boot falls back
//!    to N+1 by itself; the agent on N+1 reports 3/0/44, the server records
//!    the rollback and halts the group.
//! 6. After power-off the ESP and GPT of the VM's disk are read on the host.
//!
//! Needs root (the image build), QEMU, OVMF, mtools and cgpt (scripts/setup.sh).
//! Slow under TCG: several image builds the first time, five boots.

mod common;
mod scenario;

use boxcar_server::model::InstanceStatus;
use boxcar_server::policy::UpdatesMode;
use boxcar_testbed::{efi, tool, Exit, VmBuilder};
use common::UEFI_TIMEOUT;
use scenario::{images, servers};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const FAILED: [&str; 3] = ["BOXCAR_PROVISION_FAILED", "Kernel panic", "emergency mode"];

/// Waits for `marker`, ending early on a failure marker.
fn wait(vm: &mut boxcar_testbed::Vm, marker: &str, timeout: Duration) -> String {
    let mut all = vec![marker];
    all.extend(FAILED);
    let (which, line) = vm.wait_for_any(&all, timeout).unwrap();
    assert_eq!(which, 0, "failure marker instead of {marker:?}: {line}");
    eprintln!("scenario: {:>6.0} s  {line}", vm.uptime().as_secs_f64());
    line
}

/// Polls `f` every 2 s until it returns Some, at most `timeout`.
fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The node's Ignition config: the Butane file with the server URL filled in,
/// translated by our own `boxcar butane`.
fn config(bin_dir: &Path, server_url: &str) -> String {
    let bu = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/update-node.bu"))
        .unwrap()
        .replace("@SERVER@", server_url);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("node.bu");
    std::fs::write(&p, bu).unwrap();
    let out = tool::run(Command::new(bin_dir.join("boxcar")).arg("butane").arg(&p)).unwrap();
    String::from_utf8(out).unwrap()
}

/// (number, byte offset) of partition `name` of a raw disk (`sfdisk -J`).
fn partition(image: &Path, name: &str) -> (u32, u64) {
    let out = tool::run(Command::new("sfdisk").arg("-J").arg(image)).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let parts = v["partitiontable"]["partitions"].as_array().unwrap();
    let (i, p) = parts
        .iter()
        .enumerate()
        .find(|(_, p)| p["name"] == name)
        .unwrap_or_else(|| panic!("no {name} partition"));
    (i as u32 + 1, p["start"].as_u64().unwrap() * 512)
}

/// gptprio (priority, tries, successful) of partition `n` via `cgpt show`.
fn gptprio(image: &Path, n: u32) -> (u32, u32, u32) {
    let get = |flag: &str| -> u32 {
        let out = tool::run(
            Command::new("cgpt")
                .args(["show", "-i", &n.to_string(), flag])
                .arg(image),
        )
        .unwrap();
        String::from_utf8_lossy(&out).trim().parse().unwrap()
    };
    (get("-P"), get("-T"), get("-S"))
}

#[test]
fn update_then_rollback_on_the_real_image() {
    let start = Instant::now();
    let bins = images::binaries();
    let n = images::build(&bins, 0, None, &[".raw"]);
    let unhealthy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/unhealthy");
    // N+1 and N+2 only need their payloads; built while N boots.
    let b = bins.clone();
    let (tx, later) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(images::build(&b, 1, None, &[".bxp"]));
        let _ = tx.send(images::build(&b, 2, Some(&unhealthy), &[".bxp"]));
    });

    let server = servers::UpdateServer::start();
    let served = tempfile::tempdir().unwrap();
    let files = servers::FileServer::start(served.path().to_path_buf());
    let cfg = config(&bins, &server.guest_url());
    let boot_timeout = UEFI_TIMEOUT * 3;
    let mut boots = 1;
    // A forward gives the VM its NIC (user networking; no forwards = no NIC).
    let mut vm = VmBuilder::boxcar_image("scenario_update", &n.file(".raw"), cfg)
        .forward(22)
        .start()
        .unwrap();
    wait(
        &mut vm,
        &format!("BOXCAR_RUNNING VERSION_ID=\"{}\"", n.version),
        boot_timeout,
    );
    let t_n = vm.uptime();
    let n1 = later.recv().expect("N+1 built");
    assert!(n.version < n1.version, "{} {}", n.version, n1.version);

    // ---- update: N → N+1
    let p1 = n1.file(".bxp");
    std::os::unix::fs::symlink(&p1, served.path().join(p1.file_name().unwrap())).unwrap();
    server.publish(&n1.version, &files.guest_base(), &p1);
    let t_pub1 = vm.uptime();
    let line = wait(
        &mut vm,
        &format!("BOXCAR_RUNNING VERSION_ID=\"{}\"", n1.version),
        boot_timeout * 2,
    );
    boots += 1;
    let t_n1 = vm.uptime();
    assert!(
        line.contains(&format!("boxcar-{}.efi", n1.version)),
        "N+1's entry blessed (no boot counter): {line}"
    );
    assert!(
        files.sent.load(std::sync::atomic::Ordering::SeqCst) >= std::fs::metadata(&p1).unwrap().len(),
        "the payload was downloaded"
    );
    let inst = poll("instance complete on N+1", Duration::from_secs(180), || {
        server
            .instance()
            .filter(|i| i.status == InstanceStatus::Complete && i.version == n1.version)
    });
    let events = server.events(&inst.machine_id);
    for e in [(13, 1, None), (14, 1, None), (3, 1, None), (3, 2, None)] {
        assert!(events.contains(&e), "event {e:?} missing: {events:?}");
    }

    // ---- rollback: N+2 fails its health check
    let n2 = later.recv().expect("N+2 built");
    assert!(n1.version < n2.version, "{} {}", n1.version, n2.version);
    let p2 = n2.file(".bxp");
    std::os::unix::fs::symlink(&p2, served.path().join(p2.file_name().unwrap())).unwrap();
    server.publish(&n2.version, &files.guest_base(), &p2);
    let t_pub2 = vm.uptime();
    wait(
        &mut vm,
        &format!("BOXCAR_HEALTH_FAIL VERSION_ID=\"{}\"", n2.version),
        boot_timeout * 2,
    );
    boots += 1;
    let t_n2 = vm.uptime();
    let line = wait(
        &mut vm,
        &format!("BOXCAR_RUNNING VERSION_ID=\"{}\"", n1.version),
        boot_timeout,
    );
    boots += 1;
    let t_back = vm.uptime();
    assert!(line.contains(&format!("boxcar-{}.efi", n1.version)), "{line}");
    let inst = poll("rollback recorded", Duration::from_secs(180), || {
        server.instance().filter(|i| i.status == InstanceStatus::Rollback)
    });
    assert_eq!(inst.version, n1.version, "the node runs N+1 again");
    let events = server.events(&inst.machine_id);
    assert!(events.contains(&(3, 0, Some(44))), "3/0/44 missing: {events:?}");
    let policy = server.group_policy();
    assert_eq!(policy.updates, UpdatesMode::Halted, "group halted: {policy:?}");

    assert_eq!(vm.powerdown(Duration::from_secs(180)).unwrap(), Exit::NoVerdict);
    let t_end = vm.uptime();

    // ---- the disk, read on the host
    let overlay = vm.overlay(0).expect("overlay disk");
    let work = tempfile::tempdir_in("/var/tmp").unwrap();
    let raw = work.path().join("disk.raw");
    tool::run(
        Command::new("qemu-img")
            .args(["convert", "-O", "raw"])
            .arg(&overlay)
            .arg(&raw),
    )
    .unwrap();
    let (_, esp) = partition(&raw, "EFI-SYSTEM");
    let entries = efi::list_fat_dir(&raw, esp, "EFI/Linux").unwrap();
    eprintln!("scenario: ESP entries after power-off: {entries:?}");
    let blessed = format!("boxcar-{}.efi", n1.version);
    assert!(
        entries.iter().any(|e| e.eq_ignore_ascii_case(&blessed)),
        "{blessed} in {entries:?}"
    );
    assert!(
        !entries
            .iter()
            .any(|e| e.eq_ignore_ascii_case(&format!("boxcar-{}.efi", n2.version))),
        "N+2 never blessed: {entries:?}"
    );
    let (b, _) = partition(&raw, "USR-B");
    let (a, _) = partition(&raw, "USR-A");
    let (pb, _, sb) = gptprio(&raw, b);
    let (pa, _, _) = gptprio(&raw, a);
    assert_eq!(sb, 1, "USR-B (N+1) successful");
    assert!(pb > pa, "USR-B (N+1) has the highest priority: B {pb} A {pa}");

    eprintln!(
        "scenario: {boots} boots; N up {:.0} s; N+1 published {:.0} s → N+1 up {:.0} s; N+2 published {:.0} s → N+2 failed {:.0} s → back on N+1 {:.0} s; power-off {:.0} s; whole test {:.0} s",
        t_n.as_secs_f64(),
        t_pub1.as_secs_f64(),
        t_n1.as_secs_f64(),
        t_pub2.as_secs_f64(),
        t_n2.as_secs_f64(),
        t_back.as_secs_f64(),
        t_end.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
}
