//! Where staged bytes go: the passive USR and USR-VERITY partitions,
//! written in place on the disk at their offsets (image file or block
//! device), and the UKI's staging file on the ESP. Positional writes, so a
//! resumed download rewrites from its checkpoint. Also the download's
//! prefetching reader: network reads overlap with decompression too.

use super::system::Extent;
use boxcar_payload::{SectionKind, SectionSink};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Writes sections to their destinations. The writes themselves run on a
/// writer thread (bounded queue), so copying into the page cache and the
/// block layer overlaps with decompression and hashing; [`SlotSink::sync`]
/// waits for the queue to drain and reports the first write error.
pub struct SlotSink {
    usr: Extent,
    verity: Extent,
    uki: File,
    pub uki_path: PathBuf,
    queue: Option<SyncSender<Cmd>>,
    writer: Option<JoinHandle<()>>,
    failed: Arc<Mutex<Option<String>>>,
}

enum Cmd {
    Write {
        section: SectionKind,
        at: u64,
        data: Vec<u8>,
    },
    Sync(SyncSender<io::Result<()>>),
}

/// Queue depth in write requests (each at most 256 KiB).
const QUEUE: usize = 32;

/// `e` with the path it happened on in front, so the caller's message says
/// which of the sink's files failed (the disk or the UKI staging file).
fn naming(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl SlotSink {
    /// Opens the disk for writing and the UKI staging file (created if
    /// missing, never truncated: a resume keeps what is there).
    pub fn open(disk: &Path, usr: Extent, verity: Extent, uki_path: &Path) -> io::Result<SlotSink> {
        let disk = OpenOptions::new()
            .read(true)
            .write(true)
            .open(disk)
            .map_err(|e| naming(disk, e))?;
        if let Some(dir) = uki_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| naming(dir, e))?;
        }
        let uki = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(uki_path)
            .map_err(|e| naming(uki_path, e))?;
        let (queue, rx) = sync_channel::<Cmd>(QUEUE);
        let failed: Arc<Mutex<Option<String>>> = Arc::default();
        let (uki_w, failed_w) = (uki.try_clone()?, failed.clone());
        let writer = std::thread::Builder::new()
            .name("boxcar-stage-writer".into())
            .spawn(move || writer(rx, disk, uki_w, failed_w))?;
        Ok(SlotSink {
            usr,
            verity,
            uki,
            uki_path: uki_path.to_path_buf(),
            queue: Some(queue),
            writer: Some(writer),
            failed,
        })
    }

    /// Sets the UKI staging file to its final length (drops stale tails).
    pub fn set_uki_len(&self, len: u64) -> io::Result<()> {
        self.uki.set_len(len)
    }

    /// Waits until every queued write is done, then makes everything
    /// written durable.
    pub fn sync(&self) -> io::Result<()> {
        let (tx, rx) = sync_channel(1);
        self.send(Cmd::Sync(tx))?;
        rx.recv().map_err(|_| self.writer_gone())?
    }

    fn writer_gone(&self) -> io::Error {
        let why = self.failed.lock().ok().and_then(|f| f.clone());
        io::Error::other(why.unwrap_or_else(|| "writer thread stopped".into()))
    }

    fn send(&self, cmd: Cmd) -> io::Result<()> {
        if let Some(why) = self.failed.lock().ok().and_then(|f| f.clone()) {
            return Err(io::Error::other(why));
        }
        match &self.queue {
            Some(q) => q.send(cmd).map_err(|_| self.writer_gone()),
            None => Err(self.writer_gone()),
        }
    }
}

impl Drop for SlotSink {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

fn writer(rx: Receiver<Cmd>, disk: File, uki: File, failed: Arc<Mutex<Option<String>>>) {
    let mut error: Option<io::Error> = None;
    for cmd in rx {
        match cmd {
            Cmd::Write { section, at, data } if error.is_none() => {
                let r = match section {
                    SectionKind::Uki => uki.write_all_at(&data, at),
                    _ => disk.write_all_at(&data, at),
                };
                if let Err(e) = r {
                    if let Ok(mut f) = failed.lock() {
                        *f = Some(format!("writing {} at byte {at}: {e}", section.name()));
                    }
                    error = Some(e);
                }
            }
            Cmd::Write { .. } => {}
            Cmd::Sync(reply) => {
                let r = match &error {
                    Some(e) => Err(io::Error::new(e.kind(), e.to_string())),
                    None => disk.sync_data().and_then(|_| uki.sync_data()),
                };
                let _ = reply.send(r);
            }
        }
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
        let at = match section {
            SectionKind::Usr => bounded(self.usr, offset, data.len(), "usr")?,
            SectionKind::Verity => bounded(self.verity, offset, data.len(), "verity")?,
            SectionKind::Uki => offset,
        };
        self.send(Cmd::Write {
            section,
            at,
            data: data.to_vec(),
        })
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

/// Reads a response body on its own thread, a few 1 MiB buffers ahead, so
/// receiving from the socket overlaps with verifying and decompressing.
pub struct Prefetch {
    rx: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Prefetch {
    /// Starts reading `inner` in the background.
    pub fn new(mut inner: Box<dyn io::Read + Send>) -> Prefetch {
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(4);
        std::thread::spawn(move || loop {
            let mut buf = vec![0u8; 1 << 20];
            let r = loop {
                match inner.read(&mut buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let last = !matches!(r, Ok(n) if n > 0);
            let msg = r.map(|n| {
                buf.truncate(n);
                buf
            });
            // The reader went away (failure or cancel): stop.
            if tx.send(msg).is_err() || last {
                return;
            }
        });
        Prefetch {
            rx,
            current: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

impl io::Read for Prefetch {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(b)) if b.is_empty() => self.done = true,
                Ok(Ok(b)) => {
                    self.current = b;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::other("body reader thread stopped"));
                }
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
