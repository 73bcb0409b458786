//! Thin wrappers over mount(2), umount2(2) and loop devices (the only unsafe code).
//!
//! Loop devices are configured read-only with autoclear, so they disappear when the last
//! mount of the image goes away: unmerging needs no bookkeeping.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Errors from mount-level operations.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// mount(2) failed.
    #[error("mounting {fstype} {source_} on {target}: {err}")]
    Mount {
        /// Source.
        source_: String,
        /// Mount point.
        target: PathBuf,
        /// File system type.
        fstype: String,
        /// Cause.
        err: std::io::Error,
    },
    /// umount2(2) failed.
    #[error("unmounting {target}: {err}")]
    Umount {
        /// Mount point.
        target: PathBuf,
        /// Cause.
        err: std::io::Error,
    },
    /// A loop device could not be set up.
    #[error("attaching {image} to a loop device: {err}")]
    Loop {
        /// The image.
        image: PathBuf,
        /// Cause.
        err: std::io::Error,
    },
    /// The image holds no file system we know.
    #[error("{image}: unknown file system (expected squashfs, erofs or ext4; GPT images are not supported yet)")]
    UnknownFs {
        /// The image.
        image: PathBuf,
    },
    /// A path contains a NUL byte.
    #[error("path {0} contains NUL")]
    Nul(PathBuf),
}

fn cstr(p: &Path) -> Result<CString, MountError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| MountError::Nul(p.to_path_buf()))
}

/// File system types found in extension images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsType {
    /// squashfs.
    Squashfs,
    /// erofs.
    Erofs,
    /// ext4 (also ext2/3, mounted with the ext4 driver).
    Ext4,
}

impl FsType {
    /// Kernel name.
    pub fn as_str(self) -> &'static str {
        match self {
            FsType::Squashfs => "squashfs",
            FsType::Erofs => "erofs",
            FsType::Ext4 => "ext4",
        }
    }

    /// Detects the file system from the first 2 KiB (pure).
    pub fn detect(head: &[u8]) -> Option<Self> {
        if head.len() >= 4 && &head[..4] == b"hsqs" {
            return Some(FsType::Squashfs);
        }
        if head.len() >= 1028 && head[1024..1028] == 0xE0F5_E1E2u32.to_le_bytes() {
            return Some(FsType::Erofs);
        }
        if head.len() >= 1082 && head[1080..1082] == 0xEF53u16.to_le_bytes() {
            return Some(FsType::Ext4);
        }
        None
    }
}

/// Reads the head of `image` and detects its file system.
pub fn detect_image(image: &Path) -> Result<FsType, MountError> {
    let mut head = vec![0u8; 2048];
    let mut f = File::open(image).map_err(|err| MountError::Loop {
        image: image.into(),
        err,
    })?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(err) => {
                return Err(MountError::Loop {
                    image: image.into(),
                    err,
                })
            }
        }
    }
    FsType::detect(&head[..n]).ok_or_else(|| MountError::UnknownFs { image: image.into() })
}

/// mount(2).
pub fn mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), MountError> {
    let err = |err| MountError::Mount {
        source_: source.into(),
        target: target.into(),
        fstype: fstype.into(),
        err,
    };
    let s = CString::new(source).map_err(|_| MountError::Nul(source.into()))?;
    let t = cstr(target)?;
    let f = CString::new(fstype).map_err(|_| MountError::Nul(fstype.into()))?;
    let d = data
        .map(|d| CString::new(d).map_err(|_| MountError::Nul(d.into())))
        .transpose()?;
    // SAFETY: all pointers are valid NUL-terminated strings or null.
    let r = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            f.as_ptr(),
            flags,
            d.as_ref().map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    if r != 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// How to unmount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Umount {
    /// Fail if busy.
    Normal,
    /// Detach lazily (MNT_DETACH): the tree disappears now, users keep their references.
    Detach,
}

/// umount2(2).
pub fn umount(target: &Path, how: Umount) -> Result<(), MountError> {
    let t = cstr(target)?;
    let flags = match how {
        Umount::Normal => 0,
        Umount::Detach => libc::MNT_DETACH,
    };
    // SAFETY: valid NUL-terminated path.
    if unsafe { libc::umount2(t.as_ptr(), flags) } != 0 {
        return Err(MountError::Umount {
            target: target.into(),
            err: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// Attaches `image` read-only with autoclear; returns the device path. The returned `File`
/// keeps the device alive until the caller has mounted it.
pub fn loop_attach(image: &Path) -> Result<(PathBuf, File), MountError> {
    let lerr = |err| MountError::Loop {
        image: image.into(),
        err,
    };
    let backing = File::open(image).map_err(lerr)?;
    let ctl = File::open("/dev/loop-control").map_err(lerr)?;
    for _ in 0..64 {
        // SAFETY: ioctl without argument on an open fd.
        let n = unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
        if n < 0 {
            return Err(lerr(std::io::Error::last_os_error()));
        }
        let dev = PathBuf::from(format!("/dev/loop{n}"));
        let devf = match std::fs::OpenOptions::new().read(true).open(&dev) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Device node not created (no udev in this namespace): make it.
                let c = cstr(&dev)?;
                // SAFETY: valid path; block device 7:n.
                unsafe { libc::mknod(c.as_ptr(), libc::S_IFBLK | 0o660, libc::makedev(7, n as u32)) };
                std::fs::OpenOptions::new().read(true).open(&dev).map_err(lerr)?
            }
            Err(e) => return Err(lerr(e)),
        };
        // SAFETY: LoopConfig is plain old data; all-zero is a valid value.
        let mut cfg: LoopConfig = unsafe { std::mem::zeroed() };
        cfg.fd = backing.as_raw_fd() as u32;
        cfg.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
        let name = image.as_os_str().as_bytes();
        let k = name.len().min(63);
        cfg.info.lo_file_name[..k].copy_from_slice(&name[..k]);
        // SAFETY: cfg is a properly laid-out loop_config.
        let r = unsafe { libc::ioctl(devf.as_raw_fd(), LOOP_CONFIGURE as _, &cfg as *const LoopConfig) };
        if r == 0 {
            return Ok((dev, devf));
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EBUSY) {
            continue; // raced with another user of the same free device
        }
        return Err(lerr(e));
    }
    Err(lerr(std::io::Error::from_raw_os_error(libc::EBUSY)))
}

/// Mounts an image file read-only (`nodev`) at `target` through a loop device.
pub fn mount_image(image: &Path, target: &Path) -> Result<FsType, MountError> {
    let fs = detect_image(image)?;
    let (dev, _keep) = loop_attach(image)?;
    let data = match fs {
        FsType::Ext4 => Some("norecovery"),
        _ => None,
    };
    mount(
        &dev.to_string_lossy(),
        target,
        fs.as_str(),
        libc::MS_RDONLY | libc::MS_NODEV,
        data,
    )?;
    Ok(fs)
}

/// The device number of the file system holding `path`, as `MAJ:MIN`.
pub fn dev_string(path: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::MetadataExt;
    let d = std::fs::symlink_metadata(path)?.dev();
    Ok(format!("{}:{}", libc::major(d), libc::minor(d)))
}

/// True when `path` is a mount point (its device differs from its parent's, or same inode
/// as the parent, i.e. `/`).
pub fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(m), Ok(p)) = (std::fs::symlink_metadata(path), std::fs::metadata(path.join(".."))) else {
        return false;
    };
    m.dev() != p.dev() || m.ino() == p.ino()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_magics() {
        let mut b = vec![0u8; 2048];
        assert_eq!(FsType::detect(&b), None);
        b[..4].copy_from_slice(b"hsqs");
        assert_eq!(FsType::detect(&b), Some(FsType::Squashfs));
        b[..4].fill(0);
        b[1024..1028].copy_from_slice(&0xE0F5_E1E2u32.to_le_bytes());
        assert_eq!(FsType::detect(&b), Some(FsType::Erofs));
        b[1024..1028].fill(0);
        b[1080] = 0x53;
        b[1081] = 0xEF;
        assert_eq!(FsType::detect(&b), Some(FsType::Ext4));
        assert_eq!(FsType::detect(&b[..10]), None);
    }
}
