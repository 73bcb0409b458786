//! A writer for the `newc` cpio format the kernel unpacks as an initramfs.
//!
//! Written here rather than with `cpio -o` so device nodes (`/dev/console`)
//! and modes can be set without root, and the archive is deterministic
//! (mtime 0, inode numbers in entry order).
//!
//! Each entry: a 110-byte ASCII header (`070701` + 13 fields of 8 hex
//! digits), the NUL-terminated name, padding to 4 bytes, the data, padding
//! to 4 bytes. The archive ends with an entry named `TRAILER!!!`.

/// What an entry is; the file-type bits of the mode come from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// Regular file with its contents.
    File(Vec<u8>),
    /// Directory.
    Dir,
    /// Symbolic link to the target path.
    Symlink(String),
    /// Character device (major, minor).
    CharDev(u32, u32),
}

/// Serialises entries into a newc archive in memory.
#[derive(Debug, Default)]
pub struct CpioWriter {
    out: Vec<u8>,
    next_ino: u32,
}

const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Bytes of padding after `len` bytes to reach a multiple of 4.
///
/// Worked example: a header (110) plus the name `init\0` (5) is 115 bytes,
/// so 1 byte of padding follows: `pad4(115) == 1`.
pub fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}

impl CpioWriter {
    /// Empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one entry; `path` is relative to the initramfs root
    /// (no leading slash), `perm` the permission bits (e.g. 0o755).
    pub fn push(&mut self, path: &str, perm: u32, kind: &EntryKind) {
        let (ftype, data, rdev): (u32, &[u8], (u32, u32)) = match kind {
            EntryKind::File(d) => (S_IFREG, d, (0, 0)),
            EntryKind::Dir => (S_IFDIR, &[], (0, 0)),
            EntryKind::Symlink(t) => (S_IFLNK, t.as_bytes(), (0, 0)),
            EntryKind::CharDev(ma, mi) => (S_IFCHR, &[], (*ma, *mi)),
        };
        self.next_ino += 1;
        let nlink = if ftype == S_IFDIR { 2 } else { 1 };
        self.header(self.next_ino, ftype | (perm & 0o7777), nlink, data.len(), rdev, path);
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn header(&mut self, ino: u32, mode: u32, nlink: u32, size: usize, rdev: (u32, u32), name: &str) {
        let fields = [
            ino,
            mode,
            0,
            0,
            nlink,
            0,
            size as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
    }

    fn pad(&mut self) {
        let n = pad4(self.out.len());
        self.out.extend(std::iter::repeat_n(0u8, n));
    }

    /// Writes the trailer and returns the archive bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.header(0, 0, 1, 0, (0, 0), "TRAILER!!!");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_examples() {
        assert_eq!(pad4(115), 1);
        assert_eq!(pad4(116), 0);
        assert_eq!(pad4(110 + "TRAILER!!!".len() + 1), 3);
    }

    #[test]
    fn header_fields_and_alignment() {
        let mut w = CpioWriter::new();
        w.push("init", 0o755, &EntryKind::File(b"#!/bin/sh\n".to_vec()));
        w.push("dev/console", 0o600, &EntryKind::CharDev(5, 1));
        let a = w.finish();
        assert_eq!(&a[..6], b"070701");
        // ino 1, mode 0100755, size 10, namesize 5.
        assert_eq!(&a[6..22], b"00000001000081ed");
        assert_eq!(&a[6 + 6 * 8..6 + 7 * 8], b"0000000a");
        assert_eq!(&a[110..115], b"init\0");
        assert_eq!(&a[116..126], b"#!/bin/sh\n");
        // Second header starts at 128 (126 padded), rdev major 5 minor 1.
        assert_eq!(&a[128..134], b"070701");
        assert_eq!(&a[128 + 6 + 9 * 8..128 + 6 + 11 * 8], b"0000000500000001");
        assert_eq!(a.len() % 4, 0);
    }
}
