//! The unified kernel image: systemd's EFI stub with the kernel, initrd,
//! command line and os-release added as PE sections by objcopy (Debian 12
//! has no ukify). The stub's own sections end below 0x1a000, so the small
//! sections go at 0x20000/0x30000, the kernel at 32 MiB and the initrd
//! above the kernel's end, 2 MiB aligned.

use crate::cmd::run;
use crate::ImageError;
use std::path::Path;

/// Where systemd-boot-efi installs the x86-64 stub.
pub const STUB: &str = "usr/lib/systemd/boot/efi/linuxx64.efi.stub";

const OSREL_VMA: u64 = 0x20000;
const CMDLINE_VMA: u64 = 0x30000;
const LINUX_VMA: u64 = 0x200_0000;
const ALIGN: u64 = 0x20_0000;

/// Section VMAs: (.osrel, .cmdline, .linux, .initrd). `.initrd` starts at
/// the first 2 MiB boundary after the kernel, never below 48 MiB.
pub fn section_vmas(kernel_len: u64) -> (u64, u64, u64, u64) {
    let end = LINUX_VMA + kernel_len;
    let initrd = end.div_ceil(ALIGN) * ALIGN;
    (OSREL_VMA, CMDLINE_VMA, LINUX_VMA, initrd.max(0x300_0000))
}

/// The kernel command line: what finds /usr and ROOT, then `extra`.
pub fn cmdline(usrhash: &str, fstype: &str, extra: &str) -> String {
    let base = format!(
        "mount.usr=/dev/mapper/usr mount.usrfstype={fstype} mount.usrflags=ro usrhash={usrhash} root=LABEL=ROOT rootflags=rw"
    );
    if extra.trim().is_empty() {
        base
    } else {
        format!("{base} {}", extra.trim())
    }
}

/// Files that go into a UKI.
pub struct UkiInput<'a> {
    pub stub: &'a Path,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub cmdline: &'a Path,
    pub os_release: &'a Path,
}

/// Builds the UKI at `out` with objcopy.
pub fn build(i: &UkiInput, out: &Path) -> Result<(), ImageError> {
    let klen = std::fs::metadata(i.kernel).map_err(crate::error::rd(i.kernel))?.len();
    let (osrel, cmd, linux, initrd) = section_vmas(klen);
    let sec = |name: &str, file: &Path, vma: u64| {
        vec![
            "--add-section".to_string(),
            format!("{name}={}", file.display()),
            "--change-section-vma".to_string(),
            format!("{name}={vma:#x}"),
        ]
    };
    let mut args = Vec::new();
    args.extend(sec(".osrel", i.os_release, osrel));
    args.extend(sec(".cmdline", i.cmdline, cmd));
    args.extend(sec(".linux", i.kernel, linux));
    args.extend(sec(".initrd", i.initrd, initrd));
    args.push(i.stub.display().to_string());
    args.push(out.display().to_string());
    run("objcopy", &args, &[])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initrd_goes_above_the_kernel() {
        // 8 MiB kernel: ends at 40 MiB, but never below 48 MiB.
        assert_eq!(section_vmas(8 << 20).3, 0x300_0000);
        // 16 MiB + 1 byte: ends just past 48 MiB → next 2 MiB boundary, 50 MiB.
        assert_eq!(section_vmas((16 << 20) + 1).3, 0x320_0000);
        // 20 MiB exactly ends at 52 MiB, already aligned.
        assert_eq!(section_vmas(20 << 20).3, 0x340_0000);
    }

    #[test]
    fn cmdline_finds_usr_by_hash() {
        let c = cmdline("ab", "erofs", " console=ttyS0 ");
        assert!(c.starts_with("mount.usr=/dev/mapper/usr mount.usrfstype=erofs mount.usrflags=ro usrhash=ab "));
        assert!(c.ends_with("rootflags=rw console=ttyS0"));
        assert!(!cmdline("ab", "erofs", "").ends_with(' '));
    }
}
