//! boxcar-provision inside a PVH guest: the real binary (with its shared
//! libraries) runs from a busybox initramfs, reads the Ignition config from
//! QEMU fw_cfg, and writes files under a root on a virtio disk. The guest
//! checks the result and prints markers. The disk is a qcow2 overlay over
//! the ext4 image: after power-off the source is unchanged and the host
//! reads the guest's writes back from the overlay with debugfs.

mod common;

use boxcar_testbed::{cargo, tool, Disk, DiskMode, Exit, IgnitionKey, Initramfs, VmBuilder};
use common::{field, kernel, nonce, pvh, sha256_hex, PVH_TIMEOUT};
use std::path::Path;
use std::process::Command;

const INIT: &str = r#"
mkdir -p /sysroot
mount -t ext4 /dev/vda /sysroot || mark mount-failed
if boxcar-provision --root /sysroot --provider qemu --stage all --base-dir /nonexistent \
     --run-dir /run/boxcar-provision > /tmp/out 2>&1; then
  mark provision ok
else
  mark provision failed; cat /tmp/out
fi
mark motd=$(cat /sysroot/etc/motd) mode=$(stat -c %a /sysroot/etc/motd)
mark link=$(readlink /sysroot/etc/boxcar-link)
umount /sysroot
verdict 0
"#;

#[test]
fn boxcar_provision_in_guest_reads_fw_cfg_and_writes_the_root_disk() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let bin = cargo::build_bin(&manifest, "boxcar-provision", "boxcar-provision").unwrap();
    let k = kernel();
    let token = nonce();
    let config = format!(
        r#"{{"ignition":{{"version":"3.3.0"}},"storage":{{
          "files":[{{"path":"/etc/motd","mode":416,"contents":{{"source":"data:,hello-{token}"}}}}],
          "links":[{{"path":"/etc/boxcar-link","target":"/etc/motd"}}]}}}}"#
    );
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("root.ext4");
    std::fs::File::create(&disk).unwrap().set_len(64 << 20).unwrap();
    tool::run(Command::new("mkfs.ext4").args(["-q", "-F", "-L", "ROOT"]).arg(&disk)).unwrap();

    let source_digest = sha256_hex(&std::fs::read(&disk).unwrap());
    let mut initrd = Initramfs::busybox().unwrap();
    initrd
        .modules(&k, &["virtio_pci", "virtio_blk", "ext4", "qemu_fw_cfg"])
        .unwrap()
        .binary_with_libs(&bin)
        .unwrap()
        .symlink("usr/bin/boxcar-provision", &bin.to_string_lossy())
        .init(INIT);
    let initrd_path = dir.path().join("initrd.gz");
    initrd.write_gz(&initrd_path).unwrap();

    let mut vm = VmBuilder::new(
        "boxcar_provision_in_guest_reads_fw_cfg_and_writes_the_root_disk",
        pvh(&k, &initrd_path, ""),
    )
    .disk(Disk::new(&disk, DiskMode::Overlay))
    .ignition(config, IgnitionKey::Flatcar)
    .start()
    .unwrap();
    let line = vm.wait_for("BOXCAR_MARK provision", PVH_TIMEOUT).unwrap();
    assert!(line.ends_with("provision ok"), "{line}");
    let line = vm.wait_for("BOXCAR_MARK motd=", PVH_TIMEOUT).unwrap();
    assert_eq!(field(&line, "motd"), Some(format!("hello-{token}").as_str()), "{line}");
    assert_eq!(field(&line, "mode"), Some("640"), "{line}");
    let line = vm.wait_for("BOXCAR_MARK link=", PVH_TIMEOUT).unwrap();
    assert_eq!(field(&line, "link"), Some("/etc/motd"), "{line}");
    assert_eq!(vm.wait_exit(PVH_TIMEOUT).unwrap(), Exit::Pass);
    eprintln!("provision: QEMU exit {:.1} s after start", vm.uptime().as_secs_f64());

    assert_eq!(
        sha256_hex(&std::fs::read(&disk).unwrap()),
        source_digest,
        "source image modified"
    );
    let written = dir.path().join("written.raw");
    let overlay = vm.overlay(0).expect("overlay of disk 0");
    tool::run(
        Command::new("qemu-img")
            .args(["convert", "-O", "raw"])
            .arg(&overlay)
            .arg(&written),
    )
    .unwrap();
    let disk = written;
    let motd = tool::run(Command::new("debugfs").args(["-R", "cat /etc/motd"]).arg(&disk)).unwrap();
    assert_eq!(String::from_utf8_lossy(&motd), format!("hello-{token}"));
    let result = tool::run(
        Command::new("debugfs")
            .args(["-R", "cat /etc/.boxcar-provision-result.json"])
            .arg(&disk),
    )
    .unwrap();
    let result: serde_json::Value = serde_json::from_slice(&result).unwrap();
    assert!(result.to_string().contains("files"), "{result}");
}
