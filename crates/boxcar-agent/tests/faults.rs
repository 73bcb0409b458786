//! Fault injection: staging runs in a child process (this test binary
//! re-executed with `BOXCAR_STAGE_CHILD`) that aborts itself at a named
//! failpoint. After each kill: the installed version, its slot and its
//! entry are unchanged and still boot next, the passive slot is not
//! bootable (before the commit point), and re-running staging completes —
//! resuming with HTTP Range where a checkpoint allows — with the exact
//! expected result. Also on a loop device, and against a server that
//! ignores Range.

mod support;

use boxcar_agent::stage::failpoint::POINTS;
use boxcar_agent::{Offer, SlotStager, Stager};
use boxcar_slots::layout;
use boxcar_slots::Slot;
use serde::{Deserialize, Serialize};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use support::*;

const CHILD_ENV: &str = "BOXCAR_STAGE_CHILD";

#[derive(Serialize, Deserialize)]
struct ChildSpec {
    disk: PathBuf,
    esp: PathBuf,
    state: PathBuf,
    public_key: PathBuf,
    os_release: PathBuf,
    cmdline: PathBuf,
    failpoint: Option<String>,
    version: String,
    url: String,
    size: u64,
    sha256: String,
}

/// Not a test: the child's entry point (returns at once without the env var).
#[test]
fn child_stage() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let spec: ChildSpec = serde_json::from_str(&spec).unwrap();
    let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).try_init();
    let mut config = boxcar_agent::StageConfig::system(spec.disk, spec.esp);
    config.state_dir = spec.state;
    config.public_key = spec.public_key;
    config.os_release = spec.os_release;
    config.cmdline = spec.cmdline;
    config.failpoint = spec.failpoint;
    config.tuning.checkpoint_every = 16 * 1024;
    let offer = Offer {
        version: spec.version,
        url: spec.url,
        size: spec.size,
        sha256: Some(spec.sha256),
    };
    match SlotStager::new(config).stage(&offer, &mut |_| {}, &AtomicBool::new(false)) {
        Ok(s) => {
            println!("staged {} into {}", s.version, s.slot);
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("stage failed: code {}: {}", e.code.0, e.message);
            std::process::exit(3)
        }
    }
}

/// Runs staging in a child process; returns its exit status and stderr.
fn run_child(
    w: &World,
    disk: &std::path::Path,
    server: &Server,
    payload: &[u8],
    failpoint: Option<&str>,
) -> (std::process::ExitStatus, String) {
    let spec = ChildSpec {
        disk: disk.to_path_buf(),
        esp: w.esp.clone(),
        state: w.state.clone(),
        public_key: w.public_key.clone(),
        os_release: w.os_release.clone(),
        cmdline: w.cmdline.clone(),
        failpoint: failpoint.map(str::to_string),
        version: V2.into(),
        url: server.url.clone(),
        size: payload.len() as u64,
        sha256: sha256_hex(payload),
    };
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["child_stage", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, serde_json::to_string(&spec).unwrap())
        .env_remove("BOXCAR_FAILPOINT")
        .output()
        .unwrap();
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Points after which the next download needs no payload bytes at all.
fn after_download(point: &str) -> bool {
    let i = POINTS.iter().position(|p| *p == point).unwrap();
    i > POINTS.iter().position(|p| *p == "uki-written").unwrap()
}

/// Points whose checkpoint lets the restart fetch only part of the payload.
const RESUMING: &[&str] = &["usr-mid", "between-sections", "verity-mid", "uki-written"];

/// What must hold right after the kill at `point`.
fn assert_after_kill(w: &World, point: &str) {
    match point {
        "after-commit" => {
            // Committed: the entry exists, gptprio not yet switched.
            assert_eq!(w.partition("USR-A", w.v1_usr.len()), w.v1_usr);
            assert_eq!(layout::next_boot_slot(&w.gpt()).unwrap(), Some(Slot::A));
            assert_eq!(
                w.entries(),
                vec![format!("boxcar-{V2}+3.efi"), format!("boxcar-{V1}.efi")]
            );
        }
        "after-trial" | "pending-written" => {
            assert_eq!(w.partition("USR-A", w.v1_usr.len()), w.v1_usr);
            assert_eq!(layout::next_boot_slot(&w.gpt()).unwrap(), Some(Slot::B));
            let a = layout::slot_prio(&w.gpt(), Slot::A).unwrap();
            assert_eq!(a.successful, boxcar_slots::Successful::Yes, "A stays the fallback");
        }
        _ => w.assert_only_v1_bootable(),
    }
}

#[test]
fn killed_at_every_failpoint_then_resumed() {
    assert!(POINTS.len() >= 10);
    let usr = usr_image(1800, 31);
    let uki = usr_image(20, 32);
    for point in POINTS {
        let w = World::new();
        let (payload, m) = w.payload(V2, &usr, &uki, None);
        let server = Server::start(payload.clone(), Mode::Honest);
        let (status, stderr) = run_child(&w, &w.disk, &server, &payload, Some(point));
        assert_eq!(
            status.signal(),
            Some(libc_sigabrt()),
            "{point}: child was not killed: {stderr}"
        );
        assert!(
            stderr.contains(&format!("failpoint {point} reached")),
            "{point}: {stderr}"
        );
        assert_after_kill(&w, point);
        server.reset_counters();
        let (status, stderr) = run_child(&w, &w.disk, &server, &payload, None);
        assert!(status.success(), "{point}: restart failed: {stderr}");
        w.assert_staged(&m, &usr, &uki);
        let pending = std::fs::read_to_string(w.state.join("pending-update.json")).unwrap();
        assert!(pending.contains(V2), "{point}: {pending}");
        let sent = server.sent.load(Ordering::SeqCst);
        if after_download(point) {
            assert_eq!(sent, 0, "{point}: downloaded again after the payload was complete");
        } else if RESUMING.contains(point) {
            assert!(
                sent < payload.len() as u64,
                "{point}: resumed download fetched {sent} of {} bytes",
                payload.len()
            );
            let ranges = server.ranges.lock().unwrap().clone();
            assert!(
                ranges
                    .iter()
                    .any(|r| r.as_deref().is_some_and(|r| r.starts_with("bytes=0-"))),
                "{point}: head not re-fetched for the signature check: {ranges:?}"
            );
        }
    }
}

fn libc_sigabrt() -> i32 {
    6
}

/// Detaches a loop device on drop.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

#[test]
fn loop_device_kill_mid_usr_and_resume() {
    let w = World::new();
    let out = Command::new("losetup")
        .args(["--find", "--show"])
        .arg(&w.disk)
        .output()
        .expect("losetup (util-linux; tests run as root)");
    assert!(out.status.success(), "losetup failed: {out:?}");
    let dev = Loop(String::from_utf8_lossy(&out.stdout).trim().to_string());
    let dev_path = PathBuf::from(&dev.0);
    let usr = usr_image(1800, 41);
    let uki = usr_image(9, 42);
    let (payload, m) = w.payload(V2, &usr, &uki, None);
    let server = Server::start(payload.clone(), Mode::Honest);
    let (status, stderr) = run_child(&w, &dev_path, &server, &payload, Some("usr-mid"));
    assert_eq!(status.signal(), Some(libc_sigabrt()), "{stderr}");
    w.assert_only_v1_bootable();
    server.reset_counters();
    let (status, stderr) = run_child(&w, &dev_path, &server, &payload, None);
    assert!(status.success(), "{stderr}");
    assert!(server.sent.load(Ordering::SeqCst) < payload.len() as u64);
    drop(dev);
    // Checked through the backing file, by us and by cgpt.
    w.assert_staged(&m, &usr, &uki);
    let b = layout::find_slot(&w.gpt(), Slot::B).unwrap().usr;
    assert_eq!(cgpt_field(&w.disk, b, "-T"), 1);
    assert_eq!(cgpt_field(&w.disk, b, "-S"), 0);
}

#[test]
fn server_ignoring_range_restarts_from_zero() {
    let w = World::new();
    let usr = usr_image(1800, 51);
    let uki = usr_image(4, 52);
    let (payload, m) = w.payload(V2, &usr, &uki, None);
    let server = Server::start(payload.clone(), Mode::Honest);
    let (status, _) = run_child(&w, &w.disk, &server, &payload, Some("verity-mid"));
    assert!(!status.success());
    server.set(payload.clone(), Mode::IgnoreRange);
    server.reset_counters();
    let (status, stderr) = run_child(&w, &w.disk, &server, &payload, None);
    assert!(status.success(), "{stderr}");
    // The whole file came again (once: the 200 to the head request is reused).
    assert_eq!(server.sent.load(Ordering::SeqCst), payload.len() as u64);
    w.assert_staged(&m, &usr, &uki);
}

#[test]
fn a_different_payload_at_the_url_after_a_checkpoint_starts_over() {
    let w = World::new();
    let usr = usr_image(1800, 61);
    let (payload, _) = w.payload(V2, &usr, b"uki-1", None);
    let server = Server::start(payload.clone(), Mode::Honest);
    let (status, _) = run_child(&w, &w.disk, &server, &payload, Some("usr-mid"));
    assert!(!status.success());
    // Same version and URL, rebuilt (new salt → new manifest), same offer
    // identity except its sha256: the journal must not be reused.
    let (payload2, m2) = w.payload(V2, &usr, b"uki-2", None);
    server.set(payload2.clone(), Mode::Honest);
    let stager = SlotStager::new(w.config());
    let offer = Offer {
        version: V2.into(),
        url: server.url.clone(),
        size: payload2.len() as u64,
        sha256: Some(sha256_hex(&payload2)),
    };
    stager.stage(&offer, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    w.assert_staged(&m2, &usr, b"uki-2");
}
