//! The binary with the block-device stages plugged in, on a real loop
//! device: partition, format, mount under the root, write a file into the
//! new filesystem, unmount — then read it all back with the host's tools.
//! Needs root and loop devices (CI runs as root); fails loudly otherwise.

use std::process::Command;

fn run(cmd: &str, args: &[&str]) -> String {
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

/// A sparse image on a loop device, detached on drop.
struct Loop {
    dev: String,
    _dir: tempfile::TempDir,
}

impl Loop {
    fn new(size_mib: u64) -> Loop {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        std::fs::File::create(&img).unwrap().set_len(size_mib << 20).unwrap();
        let dev = run("losetup", &["--find", "--show", "--partscan", img.to_str().unwrap()])
            .trim()
            .to_string();
        Loop { dev, _dir: dir }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

#[test]
fn disks_mount_files_umount_on_a_loop_device() {
    let disk = Loop::new(64);
    let part = boxcar_disks::device::partition_path(&disk.dev, 1);
    let root = tempfile::tempdir().unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("config.ign");
    std::fs::write(
        &cfg,
        format!(
            r#"{{"ignition":{{"version":"3.4.0"}},
"storage":{{
 "disks":[{{"device":"{dev}","wipeTable":true,"partitions":[{{"number":1,"label":"DATA","sizeMiB":0}}]}}],
 "filesystems":[{{"device":"{part}","format":"ext4","label":"data","path":"/var/lib/data","wipeFilesystem":true}}],
 "files":[{{"path":"/var/lib/data/hello.txt","mode":420,"contents":{{"source":"data:,written%20by%20boxcar"}}}}]}}}}"#,
            dev = disk.dev
        ),
    )
    .unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_boxcar-provision"))
        .args(["--root", root.path().to_str().unwrap()])
        .args(["--run-dir", run_dir.path().join("run").to_str().unwrap()])
        .args(["--config", cfg.to_str().unwrap(), "--device-timeout", "20"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "provisioning failed:\n{stderr}");

    // The umount stage ran: nothing is left mounted under the root.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !mounts.contains(root.path().to_str().unwrap()),
        "still mounted under the root:\n{mounts}"
    );
    // The mount point exists in the root, but the file went to the new
    // filesystem, not into the root's own directory.
    assert!(root.path().join("var/lib/data").is_dir());
    assert!(!root.path().join("var/lib/data/hello.txt").exists());

    let table: serde_json::Value = serde_json::from_str(&run("sfdisk", &["--json", &disk.dev])).unwrap();
    assert_eq!(table["partitiontable"]["label"], "gpt");
    assert_eq!(table["partitiontable"]["partitions"][0]["name"], "DATA");
    assert_eq!(run("blkid", &["-o", "value", "-s", "TYPE", &part]).trim(), "ext4");
    assert_eq!(run("blkid", &["-o", "value", "-s", "LABEL", &part]).trim(), "data");

    let check = tempfile::tempdir().unwrap();
    run("mount", &[&part, check.path().to_str().unwrap()]);
    let contents = std::fs::read_to_string(check.path().join("hello.txt"));
    let _ = Command::new("umount").arg(check.path()).status();
    assert_eq!(contents.unwrap(), "written by boxcar");

    // A filesystem that differs from the config (another label) without
    // wipeFilesystem is refused, naming the config entry, and kept.
    std::fs::write(
        &cfg,
        format!(
            r#"{{"ignition":{{"version":"3.4.0"}},
"storage":{{"filesystems":[{{"device":"{part}","format":"ext4","label":"other"}}]}}}}"#
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_boxcar-provision"))
        .args(["--root", root.path().to_str().unwrap()])
        .args(["--run-dir", run_dir.path().join("run2").to_str().unwrap()])
        .args(["--config", cfg.to_str().unwrap(), "--device-timeout", "20"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("stage disks") && stderr.contains("$.storage.filesystems.0"),
        "{stderr}"
    );
    assert_eq!(run("blkid", &["-o", "value", "-s", "LABEL", &part]).trim(), "data");
}
