//! A reproducible cpio "newc" archive writer (the initramfs format):
//! entries in the order given, inode numbers counted from 1, every mtime
//! the same, owners and modes from the files. No hard links (each path is
//! stored whole), which the kernel's unpacker accepts.

use std::io::{self, Write};

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

/// Mode bits for the member type.
fn type_bits(m: &Member) -> u32 {
    match m {
        Member::Dir => 0o040000,
        Member::File(_) => 0o100000,
        Member::Symlink(_) => 0o120000,
    }
}

/// The numeric fields of one newc header.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields {
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub size: u32,
    pub namesize: u32,
}

/// The 110-byte newc header (device numbers and checksum zero).
pub fn header(f: &Fields) -> String {
    let fields = [
        f.ino, f.mode, f.uid, f.gid, f.nlink, f.mtime, f.size, 0, 0, 0, 0, f.namesize, 0,
    ];
    let mut h = String::from("070701");
    for v in fields {
        h.push_str(&format!("{v:08x}"));
    }
    h
}

fn pad4(w: &mut impl Write, len: usize) -> io::Result<()> {
    let pad = (4 - len % 4) % 4;
    w.write_all(&[0u8; 3][..pad])
}

/// Streams a newc archive.
pub struct Writer<W: Write> {
    out: W,
    ino: u32,
    mtime: u32,
}

impl<W: Write> Writer<W> {
    /// Every member gets `mtime` (SOURCE_DATE_EPOCH).
    pub fn new(out: W, mtime: u32) -> Self {
        Writer { out, ino: 0, mtime }
    }

    /// Appends `name` (relative, no leading `/`) with permission bits `perm`.
    pub fn add(&mut self, name: &str, member: &Member, perm: u32, uid: u32, gid: u32) -> io::Result<()> {
        self.ino += 1;
        let data: &[u8] = match member {
            Member::Dir => &[],
            Member::File(d) => d,
            Member::Symlink(t) => t.as_bytes(),
        };
        let nlink = if matches!(member, Member::Dir) { 2 } else { 1 };
        let size = u32::try_from(data.len()).map_err(|_| io::Error::other(format!("{name}: larger than 4 GiB")))?;
        self.entry(name, type_bits(member) | (perm & 0o7777), uid, gid, nlink, size)?;
        self.out.write_all(data)?;
        pad4(&mut self.out, data.len())
    }

    fn entry(&mut self, name: &str, mode: u32, uid: u32, gid: u32, nlink: u32, size: u32) -> io::Result<()> {
        let namesize = name.len() as u32 + 1;
        let h = header(&Fields {
            ino: self.ino,
            mode,
            uid,
            gid,
            nlink,
            mtime: self.mtime,
            size,
            namesize,
        });
        self.out.write_all(h.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        pad4(&mut self.out, h.len() + name.len() + 1)
    }

    /// Writes the trailer and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.ino = 0;
        self.entry("TRAILER!!!", 0, 0, 0, 1, 0)?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let h = header(&Fields {
            ino: 1,
            mode: 0o100644,
            nlink: 1,
            mtime: 0x5f5e1000,
            size: 5,
            namesize: 4,
            ..Fields::default()
        });
        assert_eq!(h.len(), 110);
        assert!(h.starts_with("07070100000001000081a4"));
        assert_eq!(&h[46..54], "5f5e1000");
    }

    #[test]
    fn gnu_cpio_reads_it_back() {
        let mut w = Writer::new(Vec::new(), 1_700_000_000);
        w.add("etc", &Member::Dir, 0o755, 0, 0).unwrap();
        w.add("etc/hello", &Member::File(b"hi\n".to_vec()), 0o640, 0, 0)
            .unwrap();
        w.add("init", &Member::Symlink("usr/lib/systemd/systemd".into()), 0o777, 0, 0)
            .unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        let t = tempfile::tempdir().unwrap();
        let mut c = std::process::Command::new("cpio")
            .args(["-idm", "--quiet", "--no-absolute-filenames"])
            .current_dir(t.path())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("cpio is installed (scripts/setup.sh)");
        c.stdin.take().unwrap().write_all(&bytes).unwrap();
        assert!(c.wait().unwrap().success());
        assert_eq!(std::fs::read(t.path().join("etc/hello")).unwrap(), b"hi\n");
        assert_eq!(
            std::fs::read_link(t.path().join("init")).unwrap(),
            std::path::Path::new("usr/lib/systemd/systemd")
        );
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(t.path().join("etc/hello")).unwrap();
        assert_eq!(m.mode() & 0o777, 0o640);
        assert_eq!(m.mtime(), 1_700_000_000);
    }
}
