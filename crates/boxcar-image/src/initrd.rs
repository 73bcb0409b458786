//! The systemd initrd, assembled from the staging root's own files: systemd
//! and udev with their units, rules and generators (so `usrhash=` and
//! `mount.usr=` are handled by systemd's veritysetup and fstab generators),
//! the programs first-boot provisioning runs, their shared libraries, the
//! kernel modules for virtio/dm-verity/erofs/ext4/overlay/vfat, and the
//! Boxcar units from the manifest's initrd overlay. Nothing is executed
//! inside the root and nothing is mounted: files are copied, `depmod -b`
//! indexes the modules, and the archive is written by our own cpio writer
//! with one timestamp for every member.

use crate::cmd::run;
use crate::cpio::{Member, Writer};
use crate::error::{rd, wr};
use crate::kmods;
use crate::manifest::{Compression, Initrd};
use crate::rootfs::Copier;
use crate::ImageError;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Directories copied whole (units, generators, udev rules and helpers).
const TREES: &[&str] = &[
    "usr/lib/systemd/system",
    "usr/lib/systemd/system-generators",
    "usr/lib/udev/rules.d",
    "usr/lib/modprobe.d",
];

/// Single files copied when present.
const FILES: &[&str] = &[
    "etc/passwd",
    "etc/group",
    "etc/shadow",
    "etc/gshadow",
    "etc/nsswitch.conf",
    "etc/login.defs",
    "etc/udev/udev.conf",
    "usr/lib/udev/ata_id",
    "usr/lib/udev/scsi_id",
    "usr/lib/udev/cdrom_id",
];

/// Where programs are looked up in the staging root, in order.
const PROGRAM_DIRS: &[&str] = &["usr/lib/systemd", "usr/bin", "usr/sbin"];

/// The kernel version of the staging root (its only usr/lib/modules entry).
pub fn kernel_version(root: &Path) -> Result<String, ImageError> {
    let dir = root.join("usr/lib/modules");
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .map_err(rd(&dir))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    match v.len() {
        1 => Ok(v.remove(0)),
        n => Err(ImageError::Root {
            root: root.into(),
            why: format!("expected exactly one kernel in usr/lib/modules, found {n}: {v:?}"),
        }),
    }
}

/// Fills `dest` with the initrd's files.
pub fn assemble(root: &Path, dest: &Path, spec: &Initrd, overlay: &Path, os_release: &str) -> Result<(), ImageError> {
    let mut c = Copier::new(root, dest);
    for (link, target) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        std::fs::create_dir_all(dest.join(target)).map_err(wr(dest))?;
        let p = dest.join(link);
        std::os::unix::fs::symlink(target, &p).map_err(wr(&p))?;
    }
    // The program loader, through the merged-/usr link like every binary names it.
    c.copy(Path::new("usr/lib64/ld-linux-x86-64.so.2"))?;
    for t in TREES {
        if root.join(t).exists() {
            c.copy_tree(Path::new(t))?;
        }
    }
    for f in FILES {
        c.copy(Path::new(f))?;
    }
    let find = |name: &str| {
        PROGRAM_DIRS
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| root.join(p).exists())
    };
    for p in &spec.programs {
        let rel = find(p).ok_or_else(|| ImageError::Initrd(format!("program {p} not found in the staging root")))?;
        c.copy(&rel)?;
    }
    for p in &spec.optional_programs {
        if let Some(rel) = find(p) {
            c.copy(&rel)?;
        }
    }
    for l in &spec.libraries {
        c.copy_library(l, &[], Path::new("initrd.libraries"))?;
    }
    let kver = kernel_version(root)?;
    copy_modules(root, dest, &kver, &spec.modules)?;
    // systemd recognises the initrd by /etc/initrd-release.
    let etc = dest.join("etc");
    std::fs::create_dir_all(&etc).map_err(wr(&etc))?;
    let rel = etc.join("initrd-release");
    std::fs::write(&rel, format!("{os_release}VARIANT_ID=\"initrd\"\n")).map_err(wr(&rel))?;
    let osr = etc.join("os-release");
    let _ = std::fs::remove_file(&osr);
    std::os::unix::fs::symlink("initrd-release", &osr).map_err(wr(&osr))?;
    // ConditionNeedsUpdate= units (ldconfig, sysusers, catalog) have nothing
    // to do in the initrd: mark /etc and /var as up to date.
    for f in ["etc/.updated", "var/.updated"] {
        let p = dest.join(f);
        std::fs::create_dir_all(p.parent().expect("has parent")).map_err(wr(&p))?;
        std::fs::write(&p, "").map_err(wr(&p))?;
    }
    let init = dest.join("init");
    std::os::unix::fs::symlink("usr/lib/systemd/systemd", &init).map_err(wr(&init))?;
    for d in ["dev", "proc", "sys", "run", "tmp", "sysroot", "var", "root"] {
        let p = dest.join(d);
        std::fs::create_dir_all(&p).map_err(wr(&p))?;
    }
    std::fs::set_permissions(dest.join("tmp"), std::fs::Permissions::from_mode(0o1777)).map_err(wr(dest))?;
    crate::customize::copy_tree(overlay, dest)?;
    // Shared-library cache for the initrd's own files (ldconfig -r works
    // on a directory; it chroots, it does not mount).
    let ldconf = dest.join("etc/ld.so.conf");
    std::fs::write(
        &ldconf,
        "/usr/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu/systemd\n",
    )
    .map_err(wr(&ldconf))?;
    run("ldconfig", ["-r".as_ref(), dest.as_os_str()], &[])?;
    Ok(())
}

fn copy_modules(root: &Path, dest: &Path, kver: &str, wanted: &[String]) -> Result<(), ImageError> {
    let mdir = PathBuf::from("usr/lib/modules").join(kver);
    let read = |name: &str| {
        let p = root.join(&mdir).join(name);
        std::fs::read_to_string(&p).map_err(rd(&p))
    };
    let deps = kmods::parse_modules_dep(&read("modules.dep")?);
    let builtin = kmods::parse_builtin(&read("modules.builtin")?);
    let set = kmods::closure(&deps, &builtin, wanted)
        .map_err(|m| ImageError::Initrd(format!("kernel {kver} has no modules named {}", m.join(", "))))?;
    let mut c = Copier::new(root, dest);
    for f in ["modules.builtin", "modules.builtin.modinfo", "modules.order"] {
        c.copy(&mdir.join(f))?;
    }
    for m in &set {
        if !c.copy(&mdir.join(m))? {
            return Err(ImageError::Initrd(format!(
                "module file {m} listed in modules.dep is missing"
            )));
        }
    }
    run("depmod", ["-b".as_ref(), dest.as_os_str(), kver.as_ref()], &[])?;
    Ok(())
}

/// Lists `dir` recursively in archive order: sorted, parents first.
fn walk(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), ImageError> {
    let full = dir.join(rel);
    let mut names: Vec<_> = std::fs::read_dir(&full)
        .map_err(rd(&full))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(rd(&full))?;
    names.sort();
    for n in names {
        let r = rel.join(&n);
        out.push(r.clone());
        if std::fs::symlink_metadata(dir.join(&r)).map_err(rd(&r))?.is_dir() {
            walk(dir, &r, out)?;
        }
    }
    Ok(())
}

/// Writes `dir` as a compressed newc archive; every mtime is `mtime`.
pub fn archive(dir: &Path, out: &Path, compression: Compression, mtime: u32) -> Result<(), ImageError> {
    let mut paths = Vec::new();
    walk(dir, Path::new(""), &mut paths)?;
    let mut w = Writer::new(Vec::new(), mtime);
    for rel in &paths {
        let full = dir.join(rel);
        let m = std::fs::symlink_metadata(&full).map_err(rd(&full))?;
        let member = if m.file_type().is_symlink() {
            Member::Symlink(
                std::fs::read_link(&full)
                    .map_err(rd(&full))?
                    .to_string_lossy()
                    .into_owned(),
            )
        } else if m.is_dir() {
            Member::Dir
        } else {
            Member::File(std::fs::read(&full).map_err(rd(&full))?)
        };
        let name = rel.to_string_lossy();
        w.add(&name, &member, m.mode(), m.uid(), m.gid()).map_err(wr(out))?;
    }
    let cpio = w.finish().map_err(wr(out))?;
    let data = match compression {
        Compression::Zstd => zstd::bulk::compress(&cpio, 12).map_err(wr(out))?,
        Compression::Gzip => {
            let mut e = GzipViaTool::new();
            e.write_all(&cpio).map_err(wr(out))?;
            e.finish()?
        }
    };
    std::fs::write(out, data).map_err(wr(out))?;
    tracing::info!(files = paths.len(), uncompressed = cpio.len(), "initrd written");
    Ok(())
}

/// gzip through the host's `gzip -n` (no name or time in the header).
struct GzipViaTool(Vec<u8>);

impl GzipViaTool {
    fn new() -> Self {
        GzipViaTool(Vec::new())
    }
    fn finish(self) -> Result<Vec<u8>, ImageError> {
        let t = tempfile::NamedTempFile::new().map_err(wr(Path::new("/tmp")))?;
        std::fs::write(t.path(), &self.0).map_err(wr(t.path()))?;
        run(
            "gzip",
            ["-n".as_ref(), "-9".as_ref(), "-c".as_ref(), t.path().as_os_str()],
            &[],
        )
    }
}

impl Write for GzipViaTool {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
