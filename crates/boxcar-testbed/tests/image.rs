//! A Boxcar disk image from `boxcar image build`, booted through the test
//! bed like a cloud VM: OVMF → systemd-boot → UKI → verity /usr, the
//! Ignition config from fw_cfg provisions a file and a unit that prints a
//! marker with the file's nonce, the os-release version and what backs
//! /usr; then a clean ACPI power-down through QMP.
//!
//! Needs a built image (minutes to build, so not part of the default run):
//! `BOXCAR_TESTBED_IMAGE=out/boxcar-<version>.raw cargo test -p boxcar-testbed
//! --test image -- --ignored --nocapture`.

mod common;

use boxcar_testbed::{Exit, VmBuilder};
use common::{nonce, UEFI_TIMEOUT};
use std::path::PathBuf;
use std::time::Duration;

#[test]
#[ignore = "needs a built image: BOXCAR_TESTBED_IMAGE=path/to/boxcar-<version>.raw"]
fn boxcar_image_boots_provisions_from_fw_cfg_and_powers_down() {
    let image = PathBuf::from(std::env::var("BOXCAR_TESTBED_IMAGE").expect("BOXCAR_TESTBED_IMAGE"));
    let token = nonce();
    let unit = "[Unit]\\nAfter=multi-user.target\\n[Service]\\nType=oneshot\\nExecStart=/bin/sh -c 'echo BOXCAR_TESTBED_UP $(cat /etc/testbed-token) $(. /etc/os-release; echo $VERSION_ID) $(findmnt -no SOURCE,FSTYPE,OPTIONS /usr) > /dev/ttyS0'\\n[Install]\\nWantedBy=multi-user.target\\n";
    let config = format!(
        r#"{{"ignition":{{"version":"3.3.0"}},
 "storage":{{"files":[{{"path":"/etc/testbed-token","mode":420,"contents":{{"source":"data:,{token}"}}}}]}},
 "systemd":{{"units":[{{"name":"testbed-mark.service","enabled":true,"contents":"{unit}"}}]}}}}"#
    );
    let mut vm = VmBuilder::boxcar_image("boxcar_image_boots", &image, config)
        .start()
        .unwrap();
    let slow = UEFI_TIMEOUT * 3;
    let (which, line) = vm
        .wait_for_any(
            &[
                "BOXCAR_TESTBED_UP",
                "BOXCAR_PROVISION_FAILED",
                "Kernel panic",
                "emergency mode",
            ],
            slow,
        )
        .unwrap();
    eprintln!(
        "image: marker {:.1} s after QEMU start: {line}",
        vm.uptime().as_secs_f64()
    );
    assert_eq!(which, 0, "{line}");
    assert!(line.contains(&format!("BOXCAR_TESTBED_UP {token} ")), "{line}");
    assert!(
        line.contains("/dev/mapper/usr erofs ro"),
        "/usr not verity/erofs read-only: {line}"
    );
    let before = std::time::Instant::now();
    assert_eq!(vm.powerdown(Duration::from_secs(180)).unwrap(), Exit::NoVerdict);
    eprintln!("image: powered down in {:.1} s", before.elapsed().as_secs_f64());
    assert!(vm.overlay(0).is_some(), "writes went to the overlay");
}
