//! UEFI boot media built without mounting anything: a FAT ESP made with
//! `mkfs.vfat -C` and filled with mtools, placed into a GPT disk image
//! written by `sfdisk`, and unified kernel images assembled with `objcopy`
//! from systemd's EFI stub.

use crate::error::{Result, TestbedError};
use crate::tool;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// systemd-boot from Debian's systemd-boot-efi.
pub const SYSTEMD_BOOT: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
/// The UKI stub from Debian's systemd-boot-efi.
pub const UKI_STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
/// Where the ESP starts in disks made by [`gpt_disk_with_esp`].
pub const ESP_OFFSET: u64 = 1 << 20;
const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";

fn mtools(cmd: &str) -> Command {
    let mut c = Command::new(cmd);
    c.env("MTOOLS_SKIP_CHECK", "1");
    c
}

/// A FAT32 file system image being filled (an ESP).
#[derive(Debug)]
pub struct EspImage {
    path: PathBuf,
}

impl EspImage {
    /// Creates a `size_mib` FAT32 image labelled `EFI-SYSTEM`.
    pub fn create(path: &Path, size_mib: u64) -> Result<Self> {
        if path.exists() {
            std::fs::remove_file(path).map_err(TestbedError::io("replacing", path))?;
        }
        let kib = (size_mib * 1024).to_string();
        tool::run(
            Command::new("mkfs.vfat")
                .args(["-C", "-F", "32", "-n", "EFI-SYSTEM"])
                .arg(path)
                .arg(kib),
        )?;
        Ok(EspImage { path: path.into() })
    }

    /// Copies a host file to `dest` (e.g. `EFI/BOOT/BOOTX64.EFI`),
    /// creating the directories on the way.
    pub fn copy(&self, host: &Path, dest: &str) -> Result<&Self> {
        let dest = dest.trim_start_matches('/');
        let mut dir = String::new();
        if let Some((parent, _)) = dest.rsplit_once('/') {
            for part in parent.split('/') {
                dir = if dir.is_empty() {
                    part.to_string()
                } else {
                    format!("{dir}/{part}")
                };
                let exists = tool::run(mtools("mdir").arg("-i").arg(&self.path).arg(format!("::/{dir}"))).is_ok();
                if !exists {
                    tool::run(mtools("mmd").arg("-i").arg(&self.path).arg(format!("::/{dir}")))?;
                }
            }
        }
        tool::run(
            mtools("mcopy")
                .arg("-o")
                .arg("-i")
                .arg(&self.path)
                .arg(host)
                .arg(format!("::/{dest}")),
        )?;
        Ok(self)
    }

    /// Writes `data` to `dest` (through a temporary file).
    pub fn write(&self, dest: &str, data: &[u8]) -> Result<&Self> {
        let tmp = tempfile::NamedTempFile::new().map_err(TestbedError::io("creating", std::env::temp_dir()))?;
        std::fs::write(tmp.path(), data).map_err(TestbedError::io("writing", tmp.path()))?;
        self.copy(tmp.path(), dest)
    }

    /// The image file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Sectors of 512 bytes for `bytes`, rounded up.
///
/// Worked example: a 120 MiB ESP is 125829120 bytes = 245760 sectors.
pub fn sectors(bytes: u64) -> u64 {
    bytes.div_ceil(512)
}

/// Writes a GPT disk image: the ESP as partition 1 at 1 MiB, 1 MiB free at
/// the end for the backup GPT.
pub fn gpt_disk_with_esp(out: &Path, esp: &Path) -> Result<()> {
    let esp_bytes = std::fs::read(esp).map_err(TestbedError::io("reading", esp))?;
    let esp_len = (esp_bytes.len() as u64).div_ceil(ESP_OFFSET) * ESP_OFFSET;
    let total = ESP_OFFSET + esp_len + ESP_OFFSET;
    let f = std::fs::File::create(out).map_err(TestbedError::io("creating", out))?;
    f.set_len(total).map_err(TestbedError::io("sizing", out))?;
    drop(f);
    let script = format!(
        "label: gpt\nstart=2048, size={}, type={ESP_TYPE}, name=\"EFI-SYSTEM\"\n",
        sectors(esp_len)
    );
    let mut child = Command::new("sfdisk")
        .args(["--quiet", "--no-reread", "--no-tell-kernel"])
        .arg(out)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| TestbedError::Spawn {
            tool: "sfdisk".into(),
            source,
        })?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())
        .map_err(TestbedError::io("feeding sfdisk for", out))?;
    let res = child
        .wait_with_output()
        .map_err(TestbedError::io("running sfdisk on", out))?;
    if !res.status.success() {
        return Err(TestbedError::Tool {
            tool: "sfdisk".into(),
            status: res.status.to_string(),
            stderr: String::from_utf8_lossy(&res.stderr).into_owned(),
        });
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(out)
        .map_err(TestbedError::io("opening", out))?;
    f.seek(SeekFrom::Start(ESP_OFFSET))
        .map_err(TestbedError::io("seeking in", out))?;
    f.write_all(&esp_bytes)
        .map_err(TestbedError::io("writing ESP into", out))?;
    Ok(())
}

/// File names in `dir` of the FAT file system at `offset` bytes into
/// `image` (read with `mdir`, nothing mounted).
pub fn list_fat_dir(image: &Path, offset: u64, dir: &str) -> Result<Vec<String>> {
    let spec = format!("{}@@{offset}", image.display());
    let out = tool::run(
        mtools("mdir")
            .args(["-b", "-i", &spec])
            .arg(format!("::/{}", dir.trim_matches('/'))),
    )?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.trim().rsplit('/').next().map(str::to_string))
        .filter(|n| !n.is_empty())
        .collect())
}

/// Section addresses for a UKI: `.linux` at 32 MiB, `.initrd` at the next
/// MiB boundary after the kernel (the stub's own sections end below
/// 0x1a000; `.osrel` and `.cmdline` sit at 0x20000 and 0x30000).
///
/// Worked example: an 8.2 MB kernel (8_600_000 bytes) ends at
/// 0x2000000 + 8_600_000 = 0x2833A40, so `.initrd` goes to 0x2900000.
pub fn uki_initrd_vma(kernel_len: u64) -> u64 {
    const LINUX_VMA: u64 = 0x200_0000;
    (LINUX_VMA + kernel_len).div_ceil(ESP_OFFSET) * ESP_OFFSET
}

/// Assembles a unified kernel image from the systemd stub.
pub fn build_uki(kernel: &Path, initrd: &Path, cmdline: &str, os_release: &str, out: &Path) -> Result<()> {
    let stub = Path::new(UKI_STUB);
    if !stub.is_file() {
        return Err(TestbedError::Missing {
            path: stub.into(),
            hint: "install systemd-boot-efi (scripts/setup.sh)",
        });
    }
    let klen = std::fs::metadata(kernel)
        .map_err(TestbedError::io("reading", kernel))?
        .len();
    let dir = tempfile::tempdir().map_err(TestbedError::io("creating", std::env::temp_dir()))?;
    let (osrel, cmd) = (dir.path().join("os-release"), dir.path().join("cmdline"));
    std::fs::write(&osrel, os_release).map_err(TestbedError::io("writing", &osrel))?;
    std::fs::write(&cmd, cmdline).map_err(TestbedError::io("writing", &cmd))?;
    let sec = |name: &str, file: &Path, vma: u64| {
        [
            "--add-section".to_string(),
            format!("{name}={}", file.display()),
            "--change-section-vma".to_string(),
            format!("{name}={vma:#x}"),
        ]
    };
    let mut c = Command::new("objcopy");
    c.args(sec(".osrel", &osrel, 0x20000))
        .args(sec(".cmdline", &cmd, 0x30000))
        .args(sec(".linux", kernel, 0x200_0000))
        .args(sec(".initrd", initrd, uki_initrd_vma(klen)))
        .arg(stub)
        .arg(out);
    tool::run(&mut c)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_examples() {
        assert_eq!(sectors(120 << 20), 245_760);
        assert_eq!(sectors(1), 1);
        assert_eq!(uki_initrd_vma(8_600_000), 0x290_0000);
        assert_eq!(uki_initrd_vma(1 << 20), 0x210_0000);
    }
}
