//! Kernel-side dm-verity, which the host cannot check (no device-mapper):
//! a /usr image (erofs) formatted with boxcar-verity opens with
//! `veritysetup open` in a PVH guest and mounts read-only; on a copy with
//! one flipped data block, reading that block fails with EIO while the
//! rest of the file system stays readable.

mod common;

use boxcar_testbed::{tool, Disk, DiskMode, Exit, Initramfs, VmBuilder};
use boxcar_verity::{format_file, DataBlocks, Parallelism, Params, Salt};
use common::{field, kernel, nonce, pvh, sha256_hex, PVH_TIMEOUT};
use std::path::Path;
use std::process::Command;

const INIT: &str = r#"
export DM_DISABLE_UDEV=1
mkdir -p /run/cryptsetup
root=$(cmdline_arg boxcar.roothash)
check() {
  veritysetup open "$1" usr /dev/vdb "$root" && mark "$2" open=ok || mark "$2" open=failed
  mount -t erofs -o ro /dev/mapper/usr /mnt || mark "$2" mount=failed
  hello=$(cat /mnt/hello.txt)
  if canary=$(cat /mnt/canary.bin 2>/tmp/err | sha256sum | cut -d' ' -f1) && [ ! -s /tmp/err ]; then
    mark "$2" hello=$hello canary=$canary
  else
    mark "$2" hello=$hello canary-error=$(tr ' ' '_' < /tmp/err)
  fi
  touch /mnt/new 2>/dev/null && mark "$2" write=allowed || mark "$2" write=refused
  umount /mnt
  veritysetup close usr
}
check /dev/vda good
check /dev/vdc bad
mark dmesg $(dmesg | grep -c 'verity.*data block')
verdict 0
"#;

/// Offset of the 4 KiB block holding `needle` in the image.
fn block_of(image: &[u8], needle: &[u8]) -> usize {
    let pos = image
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("canary stored uncompressed in the erofs image");
    pos / 4096 * 4096
}

fn pad_to_block(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len.div_ceil(4096) * 4096).unwrap();
}

#[test]
fn verity_usr_opens_mounts_read_only_and_a_flipped_block_fails_with_eio() {
    let k = kernel();
    let token = nonce();
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("usr");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("hello.txt"), &token).unwrap();
    let canary: Vec<u8> = (0..16 * 4096u32)
        .map(|i| token.as_bytes()[i as usize % token.len()] ^ (i / 4096) as u8)
        .collect();
    std::fs::write(tree.join("canary.bin"), &canary).unwrap();
    let good = dir.path().join("usr.erofs");
    tool::run(Command::new("mkfs.erofs").arg("--quiet").arg(&good).arg(&tree)).unwrap();
    pad_to_block(&good);

    let hash = dir.path().join("usr.verity");
    let params = Params {
        salt: Salt::new(hex::decode(format!("{token}{token}")).unwrap()).unwrap(),
        uuid: [7; 16],
        data_blocks: DataBlocks::WholeFile,
    };
    let out = format_file(&good, &hash, &params, Parallelism::Auto).unwrap();
    let root = out.root.to_string();

    let mut image = std::fs::read(&good).unwrap();
    let third_block_of_canary = &canary[2 * 4096..2 * 4096 + 64];
    let block = block_of(&image, third_block_of_canary);
    image[block + 100] ^= 0x01;
    let bad = dir.path().join("usr-bad.erofs");
    std::fs::write(&bad, &image).unwrap();

    let mut initrd = Initramfs::busybox().unwrap();
    initrd
        .modules(&k, &["virtio_pci", "virtio_blk", "dm-verity", "erofs"])
        .unwrap()
        .binary_with_libs(Path::new("/usr/sbin/veritysetup"))
        .unwrap()
        .init(INIT);
    let initrd_path = dir.path().join("initrd.gz");
    initrd.write_gz(&initrd_path).unwrap();

    let mut vm = VmBuilder::new(
        "verity_usr_opens_mounts_read_only_and_a_flipped_block_fails_with_eio",
        pvh(&k, &initrd_path, &format!("boxcar.roothash={root}")),
    )
    .disk(Disk::new(&good, DiskMode::Snapshot))
    .disk(Disk::new(&hash, DiskMode::Snapshot))
    .disk(Disk::new(&bad, DiskMode::Snapshot))
    .start()
    .unwrap();

    let line = vm.wait_for("BOXCAR_MARK good open=", PVH_TIMEOUT).unwrap();
    assert!(line.ends_with("open=ok"), "{line}");
    let line = vm.wait_for("BOXCAR_MARK good hello=", PVH_TIMEOUT).unwrap();
    assert_eq!(field(&line, "hello"), Some(token.as_str()), "{line}");
    assert_eq!(field(&line, "canary"), Some(sha256_hex(&canary).as_str()), "{line}");
    let line = vm.wait_for("BOXCAR_MARK good write=", PVH_TIMEOUT).unwrap();
    assert!(line.ends_with("write=refused"), "{line}");

    let line = vm.wait_for("BOXCAR_MARK bad open=", PVH_TIMEOUT).unwrap();
    assert!(
        line.ends_with("open=ok"),
        "a data flip is only seen when the block is read: {line}"
    );
    let line = vm.wait_for("BOXCAR_MARK bad hello=", PVH_TIMEOUT).unwrap();
    assert_eq!(
        field(&line, "hello"),
        Some(token.as_str()),
        "untouched blocks stay readable: {line}"
    );
    let err = field(&line, "canary-error").unwrap_or_else(|| panic!("corrupted block was read: {line}"));
    assert!(err.contains("Input/output_error"), "{line}");
    let line = vm.wait_for("BOXCAR_MARK dmesg", PVH_TIMEOUT).unwrap();
    let reports: u32 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(reports >= 1, "kernel should log the corrupted data block: {line}");
    assert_eq!(vm.wait_exit(PVH_TIMEOUT).unwrap(), Exit::Pass);
    eprintln!("verity: QEMU exit {:.1} s after start", vm.uptime().as_secs_f64());
}
