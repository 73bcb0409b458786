//! Block device paths: waiting for them to appear, partition node names,
//! and telling the kernel about a new partition table.
//!
//! Ignition waits for every device a stage uses (through systemd's device
//! units) and then resolves symlinks such as `/dev/disk/by-partlabel/ROOT`
//! once, so later steps keep using the same node. We poll the path with a
//! timeout instead. Where no udev runs (minimal initrds, containers, this
//! project's CI) the `/dev/disk/by-*` links never appear, so for those four
//! link families we fall back to asking `blkid` for the matching device.

use crate::cmd::Cmd;
use std::path::Path;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(50);

/// The node of partition `number` on `disk`, following the kernel's naming:
/// a disk whose name ends in a digit gets a `p` separator (`/dev/loop0p1`,
/// `/dev/nvme0n1p1`, `/dev/mmcblk0p2`), others do not (`/dev/sda1`).
pub fn partition_path(disk: &str, number: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{number}")
    } else {
        format!("{disk}{number}")
    }
}

/// Why a device could not be found.
#[derive(Debug)]
pub enum WaitError {
    Timeout,
    Other(String),
}

/// Waits up to `timeout` for `device` to exist and returns its canonical
/// path (symlinks resolved), as Ignition's device aliases do.
pub fn wait_for(device: &str, timeout: Duration) -> Result<String, WaitError> {
    let deadline = Instant::now() + timeout;
    let fallback = if udev_running() { None } else { by_link_tag(device) };
    loop {
        match std::fs::canonicalize(device) {
            Ok(p) => return Ok(p.to_string_lossy().into_owned()),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(WaitError::Other(format!("{device}: {e}")))
            }
            Err(_) => {}
        }
        if let Some((tag, value)) = &fallback {
            if let Some(found) = blkid_lookup(tag, value).map_err(WaitError::Other)? {
                tracing::info!(device, found, "no udev: resolved device link through blkid");
                return Ok(found);
            }
        }
        if Instant::now() >= deadline {
            return Err(WaitError::Timeout);
        }
        std::thread::sleep(POLL);
    }
}

/// Resolves `device` now, without waiting: `Some(canonical)` when present.
pub fn resolve_now(device: &str) -> Option<String> {
    wait_for(device, Duration::ZERO).ok()
}

/// Whether a udev daemon manages /dev (its control socket exists).
pub fn udev_running() -> bool {
    Path::new("/run/udev/control").exists()
}

/// For `/dev/disk/by-{label,partlabel,uuid,partuuid}/X`, the blkid tag and
/// the decoded value (udev escapes `/`, spaces and others as `\xNN`).
pub fn by_link_tag(device: &str) -> Option<(String, String)> {
    let rest = device.strip_prefix("/dev/disk/")?;
    let (kind, value) = rest.split_once('/')?;
    let tag = match kind {
        "by-label" => "LABEL",
        "by-partlabel" => "PARTLABEL",
        "by-uuid" => "UUID",
        "by-partuuid" => "PARTUUID",
        _ => return None,
    };
    if value.is_empty() || value.contains('/') {
        return None;
    }
    Some((tag.to_string(), unescape_udev(value)))
}

fn unescape_udev(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            if let Ok(v) = u8::from_str_radix(&s[i + 2..i + 4], 16) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The one device whose `tag` equals `value`, bypassing blkid's cache.
fn blkid_lookup(tag: &str, value: &str) -> Result<Option<String>, String> {
    let cmd = Cmd::new("blkid")
        .args(["-c", "/dev/null", "-o", "device", "-t"])
        .arg(format!("{tag}={value}"));
    match cmd.run() {
        Ok(out) => {
            let devs: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
            match devs.as_slice() {
                [] => Ok(None),
                [one] => Ok(Some(one.to_string())),
                many => Err(format!("{tag}={value} matches several devices: {}", many.join(", "))),
            }
        }
        Err(e) if e.code() == Some(2) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Makes the kernel's view of `disk`'s partitions match the table on disk.
///
/// sgdisk asks the kernel to re-read the table, but that fails while a
/// partition is in use and does nothing when the kernel lacks the GPT
/// parser; `partx --update` adds, resizes and removes partition nodes one
/// by one instead. Then udev (if any) is given time to create its links.
pub fn sync_partitions(disk: &str) {
    if let Err(e) = Cmd::new("partx").args(["--update", disk]).run() {
        // Expected after wiping a table (nothing to read); the kernel's own
        // re-read covers the rest, and a missing node times out clearly.
        tracing::debug!(disk, error = %e, "partx --update failed; relying on the kernel's re-read");
    }
    settle();
}

/// `udevadm settle` when udev runs; a no-op otherwise.
pub fn settle() {
    if udev_running() {
        if let Err(e) = Cmd::new("udevadm").arg("settle").run() {
            tracing::warn!(error = %e, "udevadm settle failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_follow_the_kernel() {
        assert_eq!(partition_path("/dev/loop0", 1), "/dev/loop0p1");
        assert_eq!(partition_path("/dev/nvme0n1", 3), "/dev/nvme0n1p3");
        assert_eq!(partition_path("/dev/mmcblk0", 2), "/dev/mmcblk0p2");
        assert_eq!(partition_path("/dev/sda", 1), "/dev/sda1");
        assert_eq!(partition_path("/dev/vdb", 12), "/dev/vdb12");
        assert_eq!(partition_path("/dev/md127", 1), "/dev/md127p1");
    }

    #[test]
    fn link_tags() {
        assert_eq!(
            by_link_tag("/dev/disk/by-partlabel/ROOT"),
            Some(("PARTLABEL".into(), "ROOT".into()))
        );
        assert_eq!(
            by_link_tag("/dev/disk/by-label/my\\x20data"),
            Some(("LABEL".into(), "my data".into()))
        );
        assert_eq!(by_link_tag("/dev/disk/by-id/ata-foo"), None);
        assert_eq!(by_link_tag("/dev/sda"), None);
        assert_eq!(by_link_tag("/dev/disk/by-uuid/"), None);
    }

    #[test]
    fn missing_device_times_out() {
        let r = wait_for("/dev/boxcar-test-no-such-device", Duration::from_millis(120));
        assert!(matches!(r, Err(WaitError::Timeout)));
    }

    #[test]
    fn existing_path_is_canonicalised() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("real"), b"").unwrap();
        std::os::unix::fs::symlink("real", d.path().join("link")).unwrap();
        let got = wait_for(d.path().join("link").to_str().unwrap(), Duration::ZERO).unwrap();
        assert_eq!(
            got,
            std::fs::canonicalize(d.path().join("real")).unwrap().to_str().unwrap()
        );
    }
}
