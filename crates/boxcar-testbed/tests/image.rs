//! The issue's *immutability* scenario on the real image (built by the
//! test itself through [`BuiltImage`], cached by its inputs): one byte of a
//! /usr file's data block is flipped in USR-A of a copy; the node still
//! boots (the block is not read at boot), /usr is read-only, the rest of the
//! file reads, and the flipped block gives EIO.
//!
//! Booting, provisioning from fw_cfg and power-down of the unmodified image
//! are covered by `tests/scenarios.rs`.

mod common;

use boxcar_testbed::{tool, BuiltImage, Exit, ImageSpec, VmBuilder};
use common::UEFI_TIMEOUT;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A file no unit reads at boot, and its second compressed extent.
const VICTIM: &str = "/share/common-licenses/GPL-3";

/// Physical start of extent `n` from `dump.erofs -e` output
/// (`   1:     7006..   14841 |    7835 :  316375040.. 316379136 |    4096`).
fn extent_start(dump: &str, n: usize) -> Option<u64> {
    let line = dump.lines().find(|l| l.trim_start().starts_with(&format!("{n}:")))?;
    let physical = line.split(':').nth(2)?;
    physical.split("..").next()?.trim().parse().ok()
}

#[test]
fn extent_lines_parse() {
    let out = " Ext:   logical offset   |  length :     physical offset    |  length\n   0:        0..    7006 |    7006 :  316370944.. 316375040 |    4096\n   1:     7006..   14841 |    7835 :  316375040.. 316379136 |    4096\n";
    assert_eq!(extent_start(out, 0), Some(316370944));
    assert_eq!(extent_start(out, 1), Some(316375040));
    assert_eq!(extent_start(out, 2), None);
}

/// Byte offset and size of the GPT partition named `name`.
fn partition(image: &Path, name: &str) -> (u64, u64) {
    let out = tool::run(Command::new("sfdisk").arg("-J").arg(image)).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let p = v["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no {name} partition"));
    (p["start"].as_u64().unwrap() * 512, p["size"].as_u64().unwrap() * 512)
}

#[test]
fn boxcar_image_usr_is_read_only_and_a_flipped_usr_block_gives_eio() {
    let image = BuiltImage::get(&ImageSpec::boot_disk()).unwrap().raw;
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let (usr_off, usr_len) = partition(&image, "USR-A");
    let mut src = std::fs::File::open(&image).unwrap();
    src.seek(SeekFrom::Start(usr_off)).unwrap();
    let mut usr = vec![0u8; usr_len as usize];
    src.read_exact(&mut usr).unwrap();
    let usr_img = dir.path().join("usr-a.img");
    std::fs::write(&usr_img, &usr).unwrap();
    let dump = tool::run(
        Command::new("dump.erofs")
            .args(["-e", &format!("--path={VICTIM}")])
            .arg(&usr_img),
    )
    .unwrap();
    let block = extent_start(&String::from_utf8_lossy(&dump), 1).expect("second extent of the victim file");
    drop(usr);

    let copy = dir.path().join("flipped.raw");
    tool::run(Command::new("cp").arg("--sparse=always").arg(&image).arg(&copy)).unwrap();
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&copy).unwrap();
    let at = usr_off + block + 100;
    let mut byte = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut byte).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[byte[0] ^ 0x01]).unwrap();
    drop(f);

    // No shell variables: systemd would expand `$NAME` in ExecStart itself.
    let script = "u() { tr ' ' _; }; \
        echo BOXCAR_TESTBED_RO $(touch /usr/testbed 2>&1 | u) > /dev/ttyS0; \
        echo BOXCAR_TESTBED_HEAD $(head -c 4096 /usr/share/common-licenses/GPL-3 | sha256sum | cut -c1-64) > /dev/ttyS0; \
        echo BOXCAR_TESTBED_READ $(cat /usr/share/common-licenses/GPL-3 2>&1 >/dev/null | u) > /dev/ttyS0";
    let unit = format!(
        "[Unit]\nAfter=multi-user.target\n[Service]\nType=oneshot\nExecStart=/bin/sh -c \"{script}\"\n[Install]\nWantedBy=multi-user.target\n"
    );
    let config = serde_json::json!({
        "ignition": {"version": "3.3.0"},
        "systemd": {"units": [{"name": "testbed-ro.service", "enabled": true, "contents": unit}]}
    })
    .to_string();
    let mut first_page = vec![0u8; 4096];
    std::fs::File::open("/usr/share/common-licenses/GPL-3")
        .unwrap()
        .read_exact(&mut first_page)
        .unwrap();
    let mut vm = VmBuilder::boxcar_image("boxcar_image_flipped_usr_block", &copy, config)
        .start()
        .unwrap();
    let slow = UEFI_TIMEOUT * 3;
    let fail = ["BOXCAR_PROVISION_FAILED", "Kernel panic", "emergency mode"];
    let (which, line) = vm
        .wait_for_any(&[&["BOXCAR_TESTBED_RO"][..], &fail[..]].concat(), slow)
        .unwrap();
    assert_eq!(which, 0, "{line}");
    assert!(line.contains("Read-only_file_system"), "{line}");
    let line = vm.wait_for("BOXCAR_TESTBED_HEAD", slow).unwrap();
    let want = common::sha256_hex(&first_page);
    assert!(
        line.ends_with(&want),
        "the file's first extent should read (as the host's copy): {line}"
    );
    let line = vm.wait_for("BOXCAR_TESTBED_READ", slow).unwrap();
    eprintln!("image: {line} ({:.1} s after QEMU start)", vm.uptime().as_secs_f64());
    assert!(line.contains("Input/output_error"), "{line}");
    assert_eq!(vm.powerdown(Duration::from_secs(180)).unwrap(), Exit::NoVerdict);
}
