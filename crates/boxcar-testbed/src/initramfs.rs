//! Building small busybox initramfs images for test guests: busybox with
//! its applet links, host binaries with their shared libraries, kernel
//! modules in load order, and an `/init` script written by the test.

use crate::cpio::{CpioWriter, EntryKind};
use crate::error::{Result, TestbedError};
use crate::kernel::HostKernel;
use crate::tool;
use flate2::write::GzEncoder;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// Where the module load list lives in the image; [`PRELUDE`] insmods
/// every line in order.
pub const MODULE_LIST: &str = "etc/boxcar-modules";

/// Shell prelude for `/init` scripts: mounts the API filesystems, loads the
/// modules added with [`Initramfs::modules`], and defines `mark` (prints a
/// `BOXCAR_MARK` line on the console), `verdict N` (isa-debug-exit: QEMU
/// exits with `2N+1`; falls back to power-off without the device) and
/// `cmdline_arg KEY` (value of `KEY=` on the kernel command line).
pub const PRELUDE: &str = r#"#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /run && mount -t tmpfs tmpfs /tmp
if [ -f /etc/boxcar-modules ]; then
  while read -r m; do insmod "$m" || echo "BOXCAR_MARK insmod-failed $m"; done < /etc/boxcar-modules
fi
mark() { echo "BOXCAR_MARK $*"; }
verdict() {
  printf "\\00$1" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
  sleep 1; poweroff -f
}
cmdline_arg() { for a in $(cat /proc/cmdline); do case "$a" in "$1"=*) echo "${a#*=}";; esac; done; }
"#;

/// An initramfs being assembled; paths are relative to its root.
#[derive(Debug, Default, Clone)]
pub struct Initramfs {
    entries: BTreeMap<String, (u32, EntryKind)>,
    modules: Vec<String>,
}

fn rel(path: &str) -> String {
    path.trim_start_matches('/').to_string()
}

impl Initramfs {
    /// Empty image with `/dev/console` (the kernel opens it for init's
    /// stdio before any devtmpfs exists) and the usual directories.
    pub fn new() -> Self {
        let mut s = Self::default();
        for d in [
            "dev", "proc", "sys", "tmp", "run", "mnt", "etc", "bin", "sbin", "usr/bin", "usr/sbin",
        ] {
            s.dir(d);
        }
        s.entries
            .insert("dev/console".into(), (0o600, EntryKind::CharDev(5, 1)));
        s
    }

    /// [`Initramfs::new`] plus Debian's busybox-static and a link for each applet.
    pub fn busybox() -> Result<Self> {
        let mut s = Self::new();
        let bb = Path::new("/bin/busybox");
        s.copy_host(bb, "bin/busybox", 0o755)?;
        let list = tool::run(Command::new(bb).arg("--list-full"))?;
        for applet in String::from_utf8_lossy(&list).lines() {
            let applet = rel(applet.trim());
            if !applet.is_empty() && applet != "bin/busybox" {
                s.symlink(&applet, "/bin/busybox");
            }
        }
        Ok(s)
    }

    /// Adds a directory and its parents.
    pub fn dir(&mut self, path: &str) -> &mut Self {
        let path = rel(path);
        let mut cur = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !cur.is_empty() {
                cur.push('/');
            }
            cur.push_str(part);
            self.entries.entry(cur.clone()).or_insert((0o755, EntryKind::Dir));
        }
        self
    }

    fn parent_dirs(&mut self, path: &str) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
    }

    /// Adds (or replaces) a regular file.
    pub fn file(&mut self, path: &str, perm: u32, data: impl Into<Vec<u8>>) -> &mut Self {
        let path = rel(path);
        self.parent_dirs(&path);
        self.entries.insert(path, (perm, EntryKind::File(data.into())));
        self
    }

    /// Adds a symbolic link.
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let path = rel(path);
        self.parent_dirs(&path);
        self.entries
            .insert(path, (0o777, EntryKind::Symlink(target.to_string())));
        self
    }

    /// Copies a host file (symlinks followed) to `guest`.
    pub fn copy_host(&mut self, host: &Path, guest: &str, perm: u32) -> Result<&mut Self> {
        let data = std::fs::read(host).map_err(TestbedError::io("reading", host))?;
        Ok(self.file(guest, perm, data))
    }

    /// The `/init` script: [`PRELUDE`] followed by `body`.
    pub fn init(&mut self, body: &str) -> &mut Self {
        self.file("init", 0o755, format!("{PRELUDE}\n{body}\n"))
    }

    /// Copies a dynamically linked host program and every shared library
    /// `ldd` lists for it (incl. the loader) to the same paths in the image.
    pub fn binary_with_libs(&mut self, host: &Path) -> Result<&mut Self> {
        let guest = host.to_string_lossy().into_owned();
        self.copy_host(host, &guest, 0o755)?;
        let out = tool::run(Command::new("ldd").arg(host))?;
        for lib in parse_ldd(&String::from_utf8_lossy(&out)) {
            if !self.entries.contains_key(&rel(&lib)) {
                self.copy_host(Path::new(&lib), &lib, 0o755)?;
            }
        }
        Ok(self)
    }

    /// Copies kernel modules and their dependencies (resolved with
    /// `modprobe --show-depends`) and appends them, in load order and
    /// without repeats, to [`MODULE_LIST`].
    pub fn modules(&mut self, kernel: &HostKernel, names: &[&str]) -> Result<&mut Self> {
        for name in names {
            let out = tool::run(Command::new("modprobe").args(["-S", &kernel.release, "--show-depends", name]))?;
            let text = String::from_utf8_lossy(&out);
            let kos = parse_show_depends(&text);
            if kos.is_empty() {
                return Err(TestbedError::Invalid {
                    what: "kernel module",
                    cause: format!("{name} is built into {} or unknown: {}", kernel.release, text.trim()),
                });
            }
            for ko in kos {
                if !self.modules.contains(&ko) {
                    self.copy_host(Path::new(&ko), &ko, 0o644)?;
                    self.modules.push(ko);
                }
            }
        }
        let list: String = self.modules.iter().map(|m| format!("{m}\n")).collect();
        self.file(MODULE_LIST, 0o644, list);
        Ok(self)
    }

    /// The newc cpio archive (uncompressed).
    pub fn to_cpio(&self) -> Vec<u8> {
        let mut w = CpioWriter::new();
        for (path, (perm, kind)) in &self.entries {
            w.push(path, *perm, kind);
        }
        w.finish()
    }

    /// Writes the gzip-compressed archive to `path`.
    pub fn write_gz(&self, path: &Path) -> Result<()> {
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&self.to_cpio())
            .map_err(TestbedError::io("compressing initramfs for", path))?;
        let gz = enc
            .finish()
            .map_err(TestbedError::io("compressing initramfs for", path))?;
        std::fs::write(path, gz).map_err(TestbedError::io("writing", path))
    }
}

/// Absolute library paths from `ldd` output: `libx.so => /path (0x…)` and
/// the loader line `/lib64/ld-linux-x86-64.so.2 (0x…)`; vdso has no path.
pub fn parse_ldd(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rhs)) => rhs.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| path.to_string())
        })
        .collect()
}

/// `.ko` paths from `modprobe --show-depends` (`insmod /lib/…/x.ko [opts]`;
/// `builtin x` lines are skipped).
pub fn parse_show_depends(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("insmod "))
        .filter_map(|rest| rest.split_whitespace().next().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_lines() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n\tlibgone.so => not found\n";
        assert_eq!(
            parse_ldd(out),
            ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"]
        );
    }

    #[test]
    fn show_depends_lines() {
        let out = "builtin crc32c\ninsmod /lib/modules/6.1/kernel/drivers/md/dm-mod.ko \ninsmod /lib/modules/6.1/x.ko opt=1\n";
        assert_eq!(
            parse_show_depends(out),
            ["/lib/modules/6.1/kernel/drivers/md/dm-mod.ko", "/lib/modules/6.1/x.ko"]
        );
    }

    #[test]
    fn parents_are_created_and_archive_is_deterministic() {
        let mut a = Initramfs::new();
        a.file("/www/cgi-bin/x", 0o755, "hi").init("mark up");
        assert!(matches!(a.entries.get("www/cgi-bin"), Some((_, EntryKind::Dir))));
        let b = a.clone();
        assert_eq!(a.to_cpio(), b.to_cpio());
        let cpio = a.to_cpio();
        let text = String::from_utf8_lossy(&cpio);
        assert!(text.contains("BOXCAR_MARK") && text.contains("dev/console"));
    }
}
