//! OVMF → systemd-boot → UKI on a GPT disk whose ESP was made without
//! mounting. Checks the console marker, systemd-boot's boot counting
//! (`boxcar-1+3.efi` renamed on each attempt, read back with mtools), and
//! that a restart of the same VM keeps the EFI variables the guest wrote.

mod common;

use boxcar_testbed::efi::{self, EspImage, ESP_OFFSET};
use boxcar_testbed::{Boot, Disk, DiskMode, Exit, Initramfs, Ovmf, VmBuilder};
use common::{field, kernel, nonce, UEFI_TIMEOUT};
use std::path::Path;
use std::time::{Duration, Instant};

/// Guest: mount efivarfs; report whether our test variable exists (and its
/// value), then write the token from the command line into it.
const INIT: &str = r#"
mark boot
mount -t efivarfs efivarfs /sys/firmware/efi/efivars || mark efivarfs-failed
var=/sys/firmware/efi/efivars/BoxcarTestbed-6d1b5f0e-3a52-4c1e-9f4b-0c7a9e2d8b31
if [ -f "$var" ]; then
  mark efivar found=$(tail -c +5 "$var")
  mark waiting
  while true; do sleep 10; done
fi
printf '\007\000\000\000%s' "$(cmdline_arg boxcar.token)" > /tmp/var
cat /tmp/var > "$var" && mark efivar written || mark efivar write-failed
verdict 0
"#;

fn counted_names(disk: &Path) -> Vec<String> {
    efi::list_fat_dir(disk, ESP_OFFSET, "EFI/Linux").unwrap()
}

#[test]
fn ovmf_systemd_boot_uki_boot_counting_and_persistent_vars() {
    let k = kernel();
    let token = nonce();
    let dir = tempfile::tempdir().unwrap();
    let mut initrd = Initramfs::busybox().unwrap();
    initrd.modules(&k, &["efivarfs"]).unwrap().init(INIT);
    let initrd_path = dir.path().join("initrd.gz");
    initrd.write_gz(&initrd_path).unwrap();

    let uki = dir.path().join("boxcar.efi");
    let os_release = "ID=boxcar\nNAME=Boxcar\nVERSION_ID=1\nPRETTY_NAME=\"Boxcar testbed 1\"\n";
    let cmdline = format!("console=ttyS0 quiet panic=-1 mitigations=off boxcar.token={token}");
    efi::build_uki(&k.bzimage, &initrd_path, &cmdline, os_release, &uki).unwrap();

    let esp = EspImage::create(&dir.path().join("esp.img"), 64).unwrap();
    esp.copy(Path::new(efi::SYSTEMD_BOOT), "EFI/BOOT/BOOTX64.EFI")
        .unwrap()
        .copy(&uki, "EFI/Linux/boxcar-1+3.efi")
        .unwrap()
        .write("loader/loader.conf", b"timeout 0\n")
        .unwrap();
    let disk = dir.path().join("disk.img");
    efi::gpt_disk_with_esp(&disk, esp.path()).unwrap();
    assert_eq!(counted_names(&disk), ["boxcar-1+3.efi"]);

    let mut vm = VmBuilder::new(
        "ovmf_systemd_boot_uki_boot_counting_and_persistent_vars",
        Boot::Uefi(Ovmf::debian()),
    )
    .disk(Disk::new(&disk, DiskMode::Writable))
    .start()
    .unwrap();
    let pristine_vars = std::fs::read(Ovmf::debian().vars_template).unwrap();
    vm.wait_for("BOXCAR_MARK boot", UEFI_TIMEOUT).unwrap();
    eprintln!("uefi: first marker {:.1} s after QEMU start", vm.uptime().as_secs_f64());
    let (which, line) = vm
        .wait_for_any(&["BOXCAR_MARK efivar written", "BOXCAR_MARK efivar"], UEFI_TIMEOUT)
        .unwrap();
    assert_eq!(which, 0, "{line}");
    assert_eq!(vm.wait_exit(UEFI_TIMEOUT).unwrap(), Exit::Pass);
    assert_eq!(counted_names(&disk), ["boxcar-1+2-1.efi"]);
    let vars_after_first = std::fs::read(vm.vars_file().unwrap()).unwrap();
    assert_ne!(
        vars_after_first, pristine_vars,
        "the guest's variable should be in the VM's vars copy"
    );

    let restarted = Instant::now();
    vm.restart().unwrap();
    let line = vm.wait_for("BOXCAR_MARK efivar", UEFI_TIMEOUT).unwrap();
    assert_eq!(field(&line, "found"), Some(token.as_str()), "{line}");
    eprintln!(
        "uefi: second boot marker after {:.1} s",
        restarted.elapsed().as_secs_f64()
    );
    vm.wait_for("BOXCAR_MARK waiting", UEFI_TIMEOUT).unwrap();
    // A busybox init ignores the ACPI button: powerdown falls back to QMP quit.
    assert_eq!(vm.powerdown(Duration::from_secs(3)).unwrap(), Exit::NoVerdict);
    assert_eq!(counted_names(&disk), ["boxcar-1+1-2.efi"]);
}
