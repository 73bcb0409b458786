//! The EFI system partition as a FAT image built with mkfs.vfat -C and
//! mtools (no mount): systemd-boot as the removable-media loader, a
//! loader.conf, the version's UKI in EFI/Linux/ (Type #2 entry) and the
//! first-boot flag the initrd looks for.

use crate::cmd::run;
use crate::error::{rd, wr};
use crate::ImageError;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// Path of the first-boot flag on the ESP (Flatcar keeps `flatcar/first_boot`).
pub const FIRST_BOOT_FLAG: &str = "boxcar/first_boot";

/// loader.conf: boot the newest good Boxcar entry at once.
pub const LOADER_CONF: &str = "timeout 0\ndefault boxcar-*\neditor no\n";

/// What goes onto the ESP.
pub struct EspInput<'a> {
    pub systemd_boot: &'a Path,
    pub uki: &'a Path,
    /// File name in EFI/Linux (e.g. `boxcar-4892.0.0.efi`).
    pub uki_name: &'a str,
    pub size_mib: u64,
    pub volume_id: u32,
    pub mtime: i64,
}

fn set_mtime(p: &Path, t: i64) -> Result<(), ImageError> {
    let f = std::fs::File::options().write(true).open(p).map_err(wr(p))?;
    f.set_modified(UNIX_EPOCH + Duration::from_secs(t.max(0) as u64))
        .map_err(wr(p))
}

/// Builds the FAT image at `out` (replaced if present).
pub fn build(i: &EspInput, out: &Path, scratch: &Path) -> Result<(), ImageError> {
    let _ = std::fs::remove_file(out);
    let kib = (i.size_mib * 1024).to_string();
    let volid = format!("{:08x}", i.volume_id);
    run(
        "mkfs.vfat",
        [
            "-C",
            "-F",
            "32",
            "-n",
            "EFI-SYSTEM",
            "-i",
            &volid,
            "--invariant",
            &out.display().to_string(),
            &kib,
        ],
        &[],
    )?;
    let img = out.display().to_string();
    let env = [("MTOOLS_SKIP_CHECK", "1")];
    for d in [
        "::/EFI",
        "::/EFI/BOOT",
        "::/EFI/systemd",
        "::/EFI/Linux",
        "::/loader",
        "::/boxcar",
    ] {
        run("mmd", ["-i", &img, d], &env)?;
    }
    let loader = scratch.join("loader.conf");
    std::fs::write(&loader, LOADER_CONF).map_err(wr(&loader))?;
    let flag = scratch.join("first_boot");
    std::fs::write(&flag, "").map_err(wr(&flag))?;
    let copies: [(&Path, String); 5] = [
        (i.systemd_boot, "::/EFI/BOOT/BOOTX64.EFI".into()),
        (i.systemd_boot, "::/EFI/systemd/systemd-bootx64.efi".into()),
        (i.uki, format!("::/EFI/Linux/{}", i.uki_name)),
        (&loader, "::/loader/loader.conf".into()),
        (&flag, format!("::/{FIRST_BOOT_FLAG}")),
    ];
    for (src, dst) in copies {
        // mcopy -m keeps the source's mtime: give every file the build's.
        let tmp = scratch.join("esp-file");
        std::fs::copy(src, &tmp).map_err(rd(src))?;
        set_mtime(&tmp, i.mtime)?;
        run("mcopy", ["-m", "-i", &img, &tmp.display().to_string(), &dst], &env)?;
    }
    Ok(())
}
