//! The host's Debian kernel as a test guest kernel, and the uncompressed
//! `vmlinux` extracted from it for PVH direct boot.
//!
//! QEMU enters an ELF vmlinux carrying the Xen PVH note directly, which
//! skips SeaBIOS and the XZ decompression of the bzImage: ~5 s instead of
//! ~12 s to an initramfs marker under TCG. The vmlinux is extracted once and
//! cached (keyed by the bzImage's version, size and mtime).

use crate::error::{Result, TestbedError};
use crate::paths;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A kernel installed on the host with its modules.
#[derive(Debug, Clone)]
pub struct HostKernel {
    /// Release, e.g. `6.1.0-56-amd64`.
    pub release: String,
    /// `/boot/vmlinuz-<release>` (bzImage).
    pub bzimage: PathBuf,
    /// `/lib/modules/<release>`.
    pub modules: PathBuf,
}

impl HostKernel {
    /// The newest kernel in `/boot` that has modules installed, or the one
    /// named by `$BOXCAR_TESTBED_KERNEL` (a release). Debian's
    /// `linux-image-amd64` (scripts/setup.sh) provides it.
    pub fn find() -> Result<Self> {
        Self::find_in(Path::new("/boot"), Path::new("/lib/modules"))
    }

    fn find_in(boot: &Path, modules: &Path) -> Result<Self> {
        let wanted = std::env::var("BOXCAR_TESTBED_KERNEL").ok();
        let entries = std::fs::read_dir(boot).map_err(TestbedError::io("listing", boot))?;
        let mut releases: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("vmlinuz-").map(str::to_string))
            .filter(|r| modules.join(r).is_dir())
            .filter(|r| wanted.as_deref().is_none_or(|w| w == r))
            .collect();
        releases.sort_by_key(|r| version_key(r));
        let release = releases.pop().ok_or_else(|| {
            TestbedError::NoKernel(format!(
                "no {}/vmlinuz-* with modules in {}{} (install linux-image-amd64: scripts/setup.sh)",
                boot.display(),
                modules.display(),
                wanted
                    .map(|w| format!(" matching BOXCAR_TESTBED_KERNEL={w}"))
                    .unwrap_or_default()
            ))
        })?;
        Ok(HostKernel {
            bzimage: boot.join(format!("vmlinuz-{release}")),
            modules: modules.join(&release),
            release,
        })
    }

    /// The uncompressed PVH-bootable vmlinux, extracted into the cache on
    /// first use.
    pub fn pvh_vmlinux(&self) -> Result<PathBuf> {
        let meta = std::fs::metadata(&self.bzimage).map_err(TestbedError::io("reading", &self.bzimage))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let dir = paths::cache_dir();
        let out = dir.join(format!("vmlinux-{}-{}-{}", self.release, meta.len(), mtime));
        if out.is_file() {
            return Ok(out);
        }
        std::fs::create_dir_all(&dir).map_err(TestbedError::io("creating", &dir))?;
        let bz = std::fs::read(&self.bzimage).map_err(TestbedError::io("reading", &self.bzimage))?;
        let elf = extract_vmlinux(&self.bzimage, &bz)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(TestbedError::io("creating in", &dir))?;
        tmp.write_all(&elf).map_err(TestbedError::io("writing", tmp.path()))?;
        tmp.persist(&out).map_err(|e| TestbedError::Io {
            what: "renaming into",
            path: out.clone(),
            source: e.error,
        })?;
        tracing::info!(vmlinux = %out.display(), bytes = elf.len(), "extracted PVH kernel");
        Ok(out)
    }
}

/// Sort key for kernel releases: numbers compare numerically
/// (`6.1.0-56` > `6.1.0-9`).
fn version_key(r: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut num = String::new();
    let mut text = String::new();
    for c in r.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            if !num.is_empty() {
                key.push((num.parse().unwrap_or(u64::MAX), std::mem::take(&mut text)));
                num.clear();
            }
            text.push(c);
        }
    }
    key.push((num.parse().unwrap_or(0), text));
    key
}

/// Compression of a bzImage payload, from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Xz,
    Zstd,
    Gzip,
}

impl Compression {
    fn detect(b: &[u8]) -> Option<Self> {
        if b.starts_with(b"\xfd7zXZ\x00") {
            Some(Self::Xz)
        } else if b.starts_with(b"\x28\xb5\x2f\xfd") {
            Some(Self::Zstd)
        } else if b.starts_with(b"\x1f\x8b") {
            Some(Self::Gzip)
        } else {
            None
        }
    }

    fn tool(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Self::Xz => ("xz", &["--decompress", "--stdout", "--single-stream"]),
            Self::Zstd => ("zstd", &["--decompress", "--stdout"]),
            Self::Gzip => ("gzip", &["--decompress", "--stdout"]),
        }
    }
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// Where the compressed kernel sits in a bzImage, from the x86 boot
/// protocol header: `payload_offset` (0x248) and `payload_length` (0x24c)
/// count from the protected-mode code, which starts after `setup_sects`
/// (0x1f1; 0 means 4) + 1 sectors of 512 bytes.
///
/// Worked example: setup_sects 27, payload_offset 0x3b5, length 100 →
/// start (27+1)·512 + 0x3b5 = 14336 + 949 = 15285, range 15285..15385.
pub fn payload_range(bz: &[u8]) -> Result<Range<usize>, String> {
    if bz.get(0x202..0x206) != Some(b"HdrS") {
        return Err("no x86 boot protocol header (HdrS at 0x202): not a bzImage".into());
    }
    let version = u16::from_le_bytes([bz[0x206], bz[0x207]]);
    if version < 0x208 {
        return Err(format!(
            "boot protocol {version:#x} has no payload fields (needs 2.08+)"
        ));
    }
    let sects = match bz[0x1f1] {
        0 => 4,
        n => n as usize,
    };
    let off = u32_at(bz, 0x248).ok_or("truncated header")? as usize;
    let len = u32_at(bz, 0x24c).ok_or("truncated header")? as usize;
    let start = (sects + 1) * 512 + off;
    let end = start.checked_add(len).ok_or("payload length overflows")?;
    if end > bz.len() || len == 0 {
        return Err(format!("payload {start}..{end} outside the {}-byte file", bz.len()));
    }
    Ok(start..end)
}

/// Decompresses the payload of a bzImage with the matching host tool and
/// checks that the result is an ELF image.
pub fn extract_vmlinux(path: &Path, bz: &[u8]) -> Result<Vec<u8>> {
    let bad = |cause: String| TestbedError::BadKernel {
        path: path.into(),
        cause,
    };
    let range = payload_range(bz).map_err(bad)?;
    let payload = &bz[range];
    let comp = Compression::detect(payload)
        .ok_or_else(|| bad(format!("unknown payload compression (magic {:02x?})", &payload[..4])))?;
    let (tool, args) = comp.tool();
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| TestbedError::Spawn {
            tool: tool.into(),
            source,
        })?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = payload.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().map_err(|source| TestbedError::Spawn {
        tool: tool.into(),
        source,
    })?;
    let _ = feeder.join();
    if !out.status.success() {
        return Err(bad(format!(
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    if !out.stdout.starts_with(b"\x7fELF") {
        return Err(bad("decompressed payload is not an ELF vmlinux".into()));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(sects: u8, off: u32, len: u32, size: usize) -> Vec<u8> {
        let mut b = vec![0u8; size];
        b[0x1f1] = sects;
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        b[0x248..0x24c].copy_from_slice(&off.to_le_bytes());
        b[0x24c..0x250].copy_from_slice(&len.to_le_bytes());
        b
    }

    #[test]
    fn payload_range_worked_example() {
        let b = header(27, 0x3b5, 100, 20000);
        assert_eq!(payload_range(&b).unwrap(), 15285..15385);
        let zero_sects = header(0, 0, 10, 4000);
        assert_eq!(payload_range(&zero_sects).unwrap(), 2560..2570);
    }

    #[test]
    fn payload_range_rejects_bad_images() {
        assert!(payload_range(&[0u8; 1000]).unwrap_err().contains("HdrS"));
        let past_end = header(1, 0, 5000, 2000);
        assert!(payload_range(&past_end).unwrap_err().contains("outside"));
    }

    #[test]
    fn extraction_round_trips_through_xz() {
        let elf = b"\x7fELF fake kernel body".repeat(50);
        let mut xz = Command::new("xz")
            .args(["--stdout", "--check=crc32"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        xz.stdin.take().unwrap().write_all(&elf).unwrap();
        let comp = xz.wait_with_output().unwrap().stdout;
        let mut bz = header(1, 0, comp.len() as u32, 1024);
        bz.extend_from_slice(&comp);
        bz.extend_from_slice(b"trailing");
        assert_eq!(extract_vmlinux(Path::new("t"), &bz).unwrap(), elf);
        let not_elf_body = b"plain".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&not_elf_body).unwrap();
        let gz = gz.finish().unwrap();
        let mut bz = header(1, 0, gz.len() as u32, 1024);
        bz.extend_from_slice(&gz);
        let err = extract_vmlinux(Path::new("t"), &bz).unwrap_err().to_string();
        assert!(err.contains("not an ELF"), "{err}");
    }

    #[test]
    fn release_sorting_is_numeric() {
        let mut r = vec!["6.1.0-9-amd64", "6.1.0-56-amd64", "6.1.0-10-amd64"];
        r.sort_by_key(|x| version_key(x));
        assert_eq!(r, ["6.1.0-9-amd64", "6.1.0-10-amd64", "6.1.0-56-amd64"]);
    }
}
