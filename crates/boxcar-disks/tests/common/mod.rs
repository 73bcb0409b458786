//! Loop-device fixtures. Tests need root and loop devices (CI runs them as
//! root); without them they fail loudly instead of skipping.
#![allow(dead_code)]

use boxcar_config::model::Resource;
use boxcar_disks::{Context, KeySource, Mode};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

static LOCK: Mutex<()> = Mutex::new(());

/// Serialises the tests of one binary: they share the host's loop devices
/// and blkid's view of labels.
pub fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A sparse image attached to a loop device, detached on drop (also when
/// the test panics).
pub struct Loop {
    pub dev: String,
    _dir: tempfile::TempDir,
}

impl Loop {
    pub fn new(size_mib: u64) -> Loop {
        assert!(
            unsafe_geteuid_is_root(),
            "boxcar-disks loop-device tests must run as root (CI does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("disk.img");
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(size_mib * 1024 * 1024).unwrap();
        drop(f);
        let dev = run("losetup", &["--find", "--show", "--partscan", img.to_str().unwrap()])
            .trim()
            .to_string();
        assert!(dev.starts_with("/dev/loop"), "unexpected loop device {dev:?}");
        Loop { dev, _dir: dir }
    }

    pub fn part(&self, n: u32) -> String {
        boxcar_disks::device::partition_path(&self.dev, n)
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

fn unsafe_geteuid_is_root() -> bool {
    // /proc/self/status: "Uid: real effective saved fs".
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Unmounts `path` on drop if it is still mounted (a failed test).
pub struct MountGuard(pub PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        for _ in 0..4 {
            if !is_mounted(&self.0) {
                return;
            }
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
}

pub fn is_mounted(p: &Path) -> bool {
    let canon = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(canon.to_str().unwrap()))
}

/// One partition of `sfdisk --json`.
#[derive(Debug)]
pub struct Part {
    pub node: String,
    pub start: u64,
    pub size: u64,
    pub type_guid: String,
    pub guid: String,
    pub name: String,
}

pub fn sfdisk(dev: &str) -> Vec<Part> {
    let out = Command::new("sfdisk").args(["--json", dev]).output().unwrap();
    if !out.status.success() {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["partitiontable"]["partitions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| Part {
            node: p["node"].as_str().unwrap().to_string(),
            start: p["start"].as_u64().unwrap(),
            size: p["size"].as_u64().unwrap(),
            type_guid: p["type"].as_str().unwrap().to_string(),
            guid: p["uuid"].as_str().unwrap().to_string(),
            name: p["name"].as_str().unwrap_or("").to_string(),
        })
        .collect()
}

/// `blkid -p` TYPE, LABEL, UUID of a device ("" when absent).
pub fn blkid(dev: &str) -> (String, String, String) {
    let out = Command::new("blkid")
        .args(["-p", "-o", "export", dev])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or("")
            .to_string()
    };
    (get("TYPE"), get("LABEL"), get("UUID"))
}

/// Parses a config through the config crate, as provision will.
pub fn storage(json: &str) -> boxcar_config::model::Storage {
    let parsed = boxcar_config::ignition::parse(json.as_bytes(), boxcar_config::Strictness::Lenient)
        .unwrap_or_else(|r| panic!("config does not validate: {:?}", r.entries));
    parsed.config.storage
}

/// Keys from a fixed map (the provision crate passes its fetcher).
pub struct MapKeys(pub Vec<(String, Vec<u8>)>);

impl KeySource for MapKeys {
    fn fetch(&self, r: &Resource) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
        let src = r.source.as_deref().unwrap_or_default();
        self.0
            .iter()
            .find(|(k, _)| k == src)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("no such source {src}").into())
    }
}

pub fn ctx<'k>(root: &Path, mode: Mode, keys: &'k dyn KeySource) -> Context<'k> {
    Context {
        root: root.to_path_buf(),
        mode,
        key_source: keys,
        device_timeout: Duration::from_secs(10),
    }
}

/// A unique suffix so labels never collide with other tests or images.
pub fn uniq() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{}{}", std::process::id() % 10000, N.fetch_add(1, Ordering::Relaxed))
}
