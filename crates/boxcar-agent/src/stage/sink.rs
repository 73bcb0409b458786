//! Where staged bytes go: the passive USR and USR-VERITY partitions,
//! written in place on the disk at their offsets (image file or block
//! device), and the UKI's staging file on the ESP. Positional writes, so a
//! resumed download rewrites from its checkpoint.

use super::system::Extent;
use boxcar_payload::{SectionKind, SectionSink};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Writes sections to their destinations.
pub struct SlotSink {
    disk: File,
    usr: Extent,
    verity: Extent,
    uki: File,
    pub uki_path: PathBuf,
}

impl SlotSink {
    /// Opens the disk for writing and the UKI staging file (created if
    /// missing, never truncated: a resume keeps what is there).
    pub fn open(disk: &Path, usr: Extent, verity: Extent, uki_path: &Path) -> io::Result<SlotSink> {
        let disk = OpenOptions::new().read(true).write(true).open(disk)?;
        if let Some(dir) = uki_path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let uki = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(uki_path)?;
        Ok(SlotSink {
            disk,
            usr,
            verity,
            uki,
            uki_path: uki_path.to_path_buf(),
        })
    }

    /// Sets the UKI staging file to its final length (drops stale tails).
    pub fn set_uki_len(&self, len: u64) -> io::Result<()> {
        self.uki.set_len(len)
    }

    /// Makes everything written so far durable.
    pub fn sync(&self) -> io::Result<()> {
        self.disk.sync_data()?;
        self.uki.sync_data()
    }
}

fn bounded(e: Extent, offset: u64, len: usize, what: &str) -> io::Result<u64> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= e.len => Ok(e.offset + offset),
        _ => Err(io::Error::other(format!(
            "{what} write at {offset}+{len} goes beyond the partition's {} bytes",
            e.len
        ))),
    }
}

impl SectionSink for SlotSink {
    fn write_at(&mut self, section: SectionKind, offset: u64, data: &[u8]) -> io::Result<()> {
        match section {
            SectionKind::Usr => self
                .disk
                .write_all_at(data, bounded(self.usr, offset, data.len(), "usr")?),
            SectionKind::Verity => self
                .disk
                .write_all_at(data, bounded(self.verity, offset, data.len(), "verity")?),
            SectionKind::Uki => self.uki.write_all_at(data, offset),
        }
    }
}

/// Asks the kernel to drop cached pages of `file` in `[offset, offset+len)`
/// after they were synced, so a read-back reads the device, not the cache.
pub fn drop_cache(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: posix_fadvise only reads its integer arguments; the fd is
    // valid for the lifetime of `file`.
    let rc = unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            offset as libc::off_t,
            len as libc::off_t,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    if rc != 0 {
        tracing::debug!(rc, "posix_fadvise(DONTNEED) failed; read-back may hit the page cache");
    }
}
