//! LUKS through boxcar-provision in a PVH guest (the host has no
//! device-mapper, so issue 3 could only unit-test this): a config puts an
//! ext4 data filesystem on LUKS2 with a generated key and writes a file
//! into it. The guest checks the mount, closes the volume and reopens it
//! with the key persisted under /etc/luks; the host checks that the disk is
//! LUKS2, that the file's contents are not on it in clear, and that the
//! persisted key unlocks the header. The config's `options` pick PBKDF2
//! with few iterations: argon2's benchmark and unlock cost ~40 s under TCG,
//! and the generated key is 4096 random bytes anyway.

mod common;

use boxcar_testbed::{cargo, tool, Disk, DiskMode, Exit, IgnitionKey, Initramfs, VmBuilder};
use common::{field, kernel, nonce, pvh, PVH_TIMEOUT};
use std::path::Path;
use std::process::Command;

const INIT: &str = r#"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin DM_DISABLE_UDEV=1
mkdir -p /sysroot /run/cryptsetup
mount -t ext4 /dev/vda /sysroot || mark mount-failed
if boxcar-provision --root /sysroot --provider qemu --stage all --base-dir /nonexistent \
     --run-dir /run/boxcar-provision --device-timeout 20 > /tmp/out 2>&1; then
  mark provision ok
else
  mark provision failed; cat /tmp/out
fi
cryptsetup status data > /dev/null && mark luks active || mark luks inactive
cryptsetup close data
cryptsetup luksOpen /dev/vdb reopened --key-file /sysroot/etc/luks/data && mark reopen ok || mark reopen failed
mount -t ext4 /dev/mapper/reopened /mnt && mark data=$(cat /mnt/hello)
umount /mnt; cryptsetup close reopened; umount /sysroot
verdict 0
"#;

#[test]
fn boxcar_provision_puts_a_filesystem_on_luks_in_the_guest() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let bin = cargo::build_bin(&manifest, "boxcar-provision", "boxcar-provision").unwrap();
    let k = kernel();
    let token = nonce();
    let secret = format!("secret-{token}");
    let config = format!(
        r#"{{"ignition":{{"version":"3.3.0"}},"storage":{{
          "luks":[{{"name":"data","device":"/dev/vdb","wipeVolume":true,
                   "options":["--pbkdf","pbkdf2","--pbkdf-force-iterations","1000"]}}],
          "filesystems":[{{"device":"/dev/mapper/data","format":"ext4","path":"/var/lib/data","wipeFilesystem":true}}],
          "files":[{{"path":"/var/lib/data/hello","contents":{{"source":"data:,{secret}"}}}}]}}}}"#
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.ext4");
    std::fs::File::create(&root).unwrap().set_len(64 << 20).unwrap();
    tool::run(Command::new("mkfs.ext4").args(["-q", "-F", "-L", "ROOT"]).arg(&root)).unwrap();
    let data = dir.path().join("data.img");
    std::fs::File::create(&data).unwrap().set_len(64 << 20).unwrap();

    let mut initrd = Initramfs::busybox().unwrap();
    initrd
        .modules(
            &k,
            &[
                "virtio_pci",
                "virtio_blk",
                "ext4",
                "qemu_fw_cfg",
                "dm-crypt",
                "xts",
                "algif_skcipher",
            ],
        )
        .unwrap();
    for tool in ["cryptsetup", "blkid", "wipefs", "mkfs.ext4"] {
        initrd.binary_with_libs(&Path::new("/usr/sbin").join(tool)).unwrap();
    }
    initrd
        .copy_host(Path::new("/etc/mke2fs.conf"), "etc/mke2fs.conf", 0o644)
        .unwrap()
        .binary_with_libs(&bin)
        .unwrap()
        .symlink("usr/bin/boxcar-provision", &bin.to_string_lossy())
        .init(INIT);
    let initrd_path = dir.path().join("initrd.gz");
    initrd.write_gz(&initrd_path).unwrap();

    let mut vm = VmBuilder::new(
        "boxcar_provision_puts_a_filesystem_on_luks_in_the_guest",
        pvh(&k, &initrd_path, ""),
    )
    .disk(Disk::new(&root, DiskMode::Writable))
    .disk(Disk::new(&data, DiskMode::Writable))
    .ignition(config, IgnitionKey::Flatcar)
    .start()
    .unwrap();
    let line = vm.wait_for("BOXCAR_MARK provision", PVH_TIMEOUT).unwrap();
    assert!(line.ends_with("provision ok"), "{line}");
    let line = vm.wait_for("BOXCAR_MARK luks", PVH_TIMEOUT).unwrap();
    assert!(line.ends_with("luks active"), "{line}");
    let line = vm.wait_for("BOXCAR_MARK reopen", PVH_TIMEOUT).unwrap();
    assert!(line.ends_with("reopen ok"), "{line}");
    let line = vm.wait_for("BOXCAR_MARK data=", PVH_TIMEOUT).unwrap();
    assert_eq!(field(&line, "data"), Some(secret.as_str()), "{line}");
    assert_eq!(vm.wait_exit(PVH_TIMEOUT).unwrap(), Exit::Pass);
    eprintln!("luks: QEMU exit {:.1} s after start", vm.uptime().as_secs_f64());

    let raw = std::fs::read(&data).unwrap();
    assert!(raw.starts_with(b"LUKS\xba\xbe"), "data disk has no LUKS header");
    assert!(
        !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "file contents on the disk in clear"
    );
    let key = tool::run(Command::new("debugfs").args(["-R", "cat /etc/luks/data"]).arg(&root)).unwrap();
    assert!(!key.is_empty(), "no persisted key");
    let dump = tool::run(Command::new("cryptsetup").arg("luksDump").arg(&data)).unwrap();
    assert!(
        String::from_utf8_lossy(&dump).contains("pbkdf2"),
        "the config's options reached luksFormat"
    );
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, &key).unwrap();
    tool::run(
        Command::new("cryptsetup")
            .args(["luksOpen", "--test-passphrase", "--key-file"])
            .arg(&key_file)
            .arg(&data),
    )
    .unwrap();
    std::fs::write(&key_file, b"wrong key").unwrap();
    let wrong = tool::run(
        Command::new("cryptsetup")
            .args(["luksOpen", "--test-passphrase", "--key-file"])
            .arg(&key_file)
            .arg(&data),
    );
    assert!(wrong.is_err(), "a wrong key must not unlock the volume");
}
