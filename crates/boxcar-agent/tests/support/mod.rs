//! Test support for the staging engine: a disk image with the Boxcar
//! layout and version 1.0.0 installed in slot A (real usr image, verity
//! tree, UKI entry, GUIDs from the root hash), signed payloads, and a small
//! std-only HTTP/1.1 file server with Range support and hostile modes.
#![allow(dead_code)]

use boxcar_agent::stage::{ReadBack, StageConfig, Tuning};
use boxcar_payload::{build, keys, BuildInput, Manifest, Signing};
use boxcar_slots::layout::{self, Sizes};
use boxcar_slots::{bootent, Guid, Mbr, Slot};
use boxcar_verity::{format_file, DataBlocks, Parallelism, Params, Salt};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const V1: &str = "1.0.0";
pub const V2: &str = "2.0.0";
pub const SECTOR: u64 = 512;

/// Deterministic bytes: the first half pseudo-random, the rest a repeating
/// pattern (so compression has something to do).
pub fn usr_image(blocks: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v: Vec<u8> = (0..blocks * 4096 / 2)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let pattern = format!("boxcar usr image seed {seed} ");
    while v.len() < blocks * 4096 {
        v.extend_from_slice(pattern.as_bytes());
    }
    v.truncate(blocks * 4096);
    v
}

/// A disk, an ESP directory, a state directory and the running system's
/// description, in a temporary directory.
pub struct World {
    pub dir: tempfile::TempDir,
    pub disk: PathBuf,
    pub esp: PathBuf,
    pub state: PathBuf,
    pub public_key: PathBuf,
    pub os_release: PathBuf,
    pub cmdline: PathBuf,
    pub key: keys::PrivateKey,
    /// The installed version's /usr bytes, root hash and UKI.
    pub v1_usr: Vec<u8>,
    pub v1_root: [u8; 32],
    pub v1_uki: Vec<u8>,
}

/// Sizes of the test disk: 8 MiB slots, 1 MiB verity partitions.
pub fn sizes() -> Sizes {
    Sizes {
        esp_mib: 2,
        usr_mib: 8,
        verity_mib: 1,
        oem_mib: 1,
    }
}

fn part_extent(disk: &Path, label: &str) -> (u64, u64) {
    let gpt = boxcar_slots::read(disk).unwrap().gpt;
    let n = gpt.find_by_label(label).unwrap();
    let e = gpt.partition(n).unwrap();
    (e.first_lba * SECTOR, e.sectors() * SECTOR)
}

impl World {
    /// Layout on a 32 MiB image file, 1.0.0 installed and booted from slot A.
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let disk = d.join("disk.img");
        std::fs::File::create(&disk).unwrap().set_len(32 << 20).unwrap();
        let mut n = 0u8;
        let gpt = layout::boxcar_layout((32 << 20) / SECTOR, sizes(), Guid([0xd1; 16]), || {
            n += 1;
            Guid([n; 16])
        })
        .unwrap();
        boxcar_slots::write(&disk, &gpt, Mbr::Protective).unwrap();
        // Slot A: a real usr image and its verity tree.
        let v1_usr = usr_image(600, 11);
        let usr_path = d.join("v1-usr.img");
        let hash_path = d.join("v1-verity.img");
        std::fs::write(&usr_path, &v1_usr).unwrap();
        let out = format_file(
            &usr_path,
            &hash_path,
            &Params {
                salt: Salt::from_hex(&"a1".repeat(32)).unwrap(),
                uuid: [3; 16],
                data_blocks: DataBlocks::WholeFile,
            },
            Parallelism::Threads(1),
        )
        .unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
        let (uo, _) = part_extent(&disk, "USR-A");
        let (vo, _) = part_extent(&disk, "USR-A-VERITY");
        f.write_all_at(&v1_usr, uo).unwrap();
        f.write_all_at(&std::fs::read(&hash_path).unwrap(), vo).unwrap();
        drop(f);
        let root = out.root.0;
        let mut gpt = boxcar_slots::read(&disk).unwrap().gpt;
        let a = layout::find_slot(&gpt, Slot::A).unwrap();
        let (ug, vg) = guids(&root);
        gpt.partition_mut(a.usr).unwrap().guid = ug;
        gpt.partition_mut(a.verity).unwrap().guid = vg;
        boxcar_slots::write(&disk, &gpt, Mbr::Keep).unwrap();
        // ESP with the installed, blessed entry.
        let esp = d.join("esp");
        let v1_uki = usr_image(3, 99);
        bootent::install(&esp, V1, &v1_uki, 0).unwrap();
        let key = keys::generate().unwrap();
        let public_key = d.join("key.pub.pem");
        keys::save(&key, &d.join("key.pem"), &public_key).unwrap();
        let os_release = d.join("os-release");
        std::fs::write(&os_release, format!("NAME=Boxcar\nVERSION_ID={V1}\n")).unwrap();
        let cmdline = d.join("cmdline");
        std::fs::write(
            &cmdline,
            format!("mount.usr=/dev/mapper/usr usrhash={} quiet\n", hex::encode(root)),
        )
        .unwrap();
        World {
            disk,
            esp,
            state: d.join("state"),
            public_key,
            os_release,
            cmdline,
            key,
            v1_usr,
            v1_root: root,
            v1_uki,
            dir,
        }
    }

    /// The engine configuration for this world (small checkpoints).
    pub fn config(&self) -> StageConfig {
        StageConfig {
            disk: self.disk.clone(),
            esp: self.esp.clone(),
            state_dir: self.state.clone(),
            public_key: self.public_key.clone(),
            os_release: self.os_release.clone(),
            cmdline: self.cmdline.clone(),
            failpoint: None,
            tuning: Tuning {
                checkpoint_every: 16 * 1024,
                connect_timeout: Duration::from_secs(5),
                read_timeout: Duration::from_secs(5),
                boot_tries: 3,
                read_back: ReadBack::Verify,
            },
        }
    }

    /// Builds a payload for `version` with `usr` and `uki`, signed with
    /// this world's key (or `signing`), 32 KiB frames (so even the
    /// small verity section has several).
    pub fn payload(&self, version: &str, usr: &[u8], uki: &[u8], signing: Option<Signing>) -> (Vec<u8>, Manifest) {
        let d = self.dir.path();
        let (u, k, out) = (d.join("in-usr"), d.join("in-uki"), d.join(format!("{version}.bxp")));
        std::fs::write(&u, usr).unwrap();
        std::fs::write(&k, uki).unwrap();
        let input = BuildInput {
            version,
            usr: &u,
            uki: &k,
            level: 3,
            frame_bytes: 32 * 1024,
        };
        let m = build(&input, &out, signing.unwrap_or(Signing::With(&self.key))).unwrap();
        (std::fs::read(&out).unwrap(), m)
    }

    /// Bytes of a partition by label.
    pub fn partition(&self, label: &str, len: usize) -> Vec<u8> {
        let (o, _) = part_extent(&self.disk, label);
        let mut b = vec![0u8; len];
        std::fs::File::open(&self.disk)
            .unwrap()
            .read_exact_at(&mut b, o)
            .unwrap();
        b
    }

    /// Managed entry file names on the ESP, newest first.
    pub fn entries(&self) -> Vec<String> {
        bootent::list(&self.esp)
            .unwrap()
            .into_iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    pub fn gpt(&self) -> boxcar_slots::Gpt {
        boxcar_slots::read(&self.disk).unwrap().gpt
    }

    /// Asserts the installed version is intact and boots next, and that
    /// nothing of a staged version is bootable.
    pub fn assert_only_v1_bootable(&self) {
        assert_eq!(self.partition("USR-A", self.v1_usr.len()), self.v1_usr, "USR-A changed");
        let gpt = self.gpt();
        assert_eq!(layout::next_boot_slot(&gpt).unwrap(), Some(Slot::A));
        let a = layout::slot_prio(&gpt, Slot::A).unwrap();
        assert_eq!((a.tries, a.successful), (0, boxcar_slots::Successful::Yes));
        assert!(!layout::slot_prio(&gpt, Slot::B).unwrap().bootable(), "USR-B bootable");
        assert_eq!(self.entries(), vec![format!("boxcar-{V1}.efi")]);
        let entry = self.esp.join("EFI/Linux").join(format!("boxcar-{V1}.efi"));
        assert_eq!(std::fs::read(entry).unwrap(), self.v1_uki);
        let (ug, _) = guids(&self.v1_root);
        let a = layout::find_slot(&gpt, Slot::A).unwrap();
        assert_eq!(gpt.partition(a.usr).unwrap().guid, ug);
    }

    /// Asserts `version` with `usr`/`uki` is staged in slot B exactly as
    /// the engine must leave it.
    pub fn assert_staged(&self, m: &Manifest, usr: &[u8], uki: &[u8]) {
        assert_eq!(self.partition("USR-B", usr.len()), usr, "USR-B content");
        assert_eq!(self.partition("USR-A", self.v1_usr.len()), self.v1_usr, "USR-A changed");
        let gpt = self.gpt();
        let root: [u8; 32] = hex::decode(&m.verity_params.root_hash).unwrap().try_into().unwrap();
        let (ug, vg) = guids(&root);
        let b = layout::find_slot(&gpt, Slot::B).unwrap();
        assert_eq!(gpt.partition(b.usr).unwrap().guid, ug, "USR-B GUID");
        assert_eq!(gpt.partition(b.verity).unwrap().guid, vg, "USR-B-VERITY GUID");
        let p = layout::slot_prio(&gpt, Slot::B).unwrap();
        assert_eq!((p.tries, p.successful), (1, boxcar_slots::Successful::No));
        assert_eq!(layout::next_boot_slot(&gpt).unwrap(), Some(Slot::B));
        assert_eq!(
            self.entries(),
            vec![format!("boxcar-{}+3.efi", m.version), format!("boxcar-{V1}.efi")]
        );
        let entry = self.esp.join("EFI/Linux").join(format!("boxcar-{}+3.efi", m.version));
        assert_eq!(std::fs::read(entry).unwrap(), uki);
        // No staging leftovers.
        let hidden = std::fs::read_dir(self.esp.join("EFI/Linux"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
            .count();
        assert_eq!(hidden, 0, "staging files left on the ESP");
        assert!(!self.state.join("stage-journal.json").exists());
    }

    /// Pretends the machine rebooted into `version` from `root`.
    pub fn boot_into(&self, version: &str, root: &[u8; 32]) {
        std::fs::write(&self.os_release, format!("VERSION_ID={version}\n")).unwrap();
        std::fs::write(&self.cmdline, format!("usrhash={}\n", hex::encode(root))).unwrap();
    }
}

/// Partition GUIDs from a root hash (pairing rule), computed independently
/// of the engine.
pub fn guids(root: &[u8; 32]) -> (Guid, Guid) {
    (
        Guid(root[..16].try_into().unwrap()),
        Guid(root[16..].try_into().unwrap()),
    )
}

/// How the test server misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Honest: 200 for plain requests, 206 with Content-Range for ranges.
    Honest,
    /// Always 200 with the whole file (ignores Range).
    IgnoreRange,
    /// Sends this many body bytes, then nothing (connection kept open).
    StallAfter(u64),
    /// No Content-Length; the body ends when the connection closes.
    NoLength,
    /// Answers every request with this status and an empty body.
    Status(u16),
}

/// A loopback HTTP/1.1 server for one file.
pub struct Server {
    pub url: String,
    pub sent: Arc<AtomicU64>,
    pub ranges: Arc<Mutex<Vec<Option<String>>>>,
    stop: Arc<AtomicBool>,
    data: Arc<Mutex<Arc<Vec<u8>>>>,
    mode: Arc<Mutex<Mode>>,
}

impl Server {
    pub fn start(data: Vec<u8>, mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/payload.bxp", listener.local_addr().unwrap());
        let s = Server {
            url,
            sent: Arc::default(),
            ranges: Arc::default(),
            stop: Arc::default(),
            data: Arc::new(Mutex::new(Arc::new(data))),
            mode: Arc::new(Mutex::new(mode)),
        };
        let (sent, ranges, stop, data, mode) = (
            s.sent.clone(),
            s.ranges.clone(),
            s.stop.clone(),
            s.data.clone(),
            s.mode.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (sent, ranges, stop) = (sent.clone(), ranges.clone(), stop.clone());
                        let data = data.lock().unwrap().clone();
                        let mode = *mode.lock().unwrap();
                        std::thread::spawn(move || {
                            let _ = serve(conn, &data, mode, &sent, &ranges, &stop);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        s
    }

    /// Serves other bytes from now on.
    pub fn set(&self, data: Vec<u8>, mode: Mode) {
        *self.data.lock().unwrap() = Arc::new(data);
        *self.mode.lock().unwrap() = mode;
    }

    pub fn reset_counters(&self) {
        self.sent.store(0, Ordering::SeqCst);
        self.ranges.lock().unwrap().clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    conn: TcpStream,
    data: &[u8],
    mode: Mode,
    sent: &AtomicU64,
    ranges: &Mutex<Vec<Option<String>>>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut range = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    ranges.lock().unwrap().push(range.clone());
    let total = data.len() as u64;
    let parsed = range.as_deref().and_then(|v| {
        let (a, b) = v.strip_prefix("bytes=")?.split_once('-')?;
        let a: u64 = a.parse().ok()?;
        let b: u64 = if b.is_empty() { total - 1 } else { b.parse().ok()? };
        (a <= b && b < total).then_some((a, b))
    });
    let mut w = conn;
    if let Mode::Status(code) = mode {
        let head = format!("HTTP/1.1 {code} Refused\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return w.write_all(head.as_bytes());
    }
    let (status, start, end) = match (mode, parsed) {
        (Mode::Honest | Mode::StallAfter(_), Some((a, b))) => ("206 Partial Content", a, b + 1),
        _ => ("200 OK", 0, total),
    };
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    if mode != Mode::NoLength {
        head += &format!("Content-Length: {}\r\n", end - start);
    }
    if status.starts_with("206") {
        head += &format!("Content-Range: bytes {start}-{}/{total}\r\n", end - 1);
    }
    head += "\r\n";
    w.write_all(head.as_bytes())?;
    let body = &data[start as usize..end as usize];
    let limit = match mode {
        Mode::StallAfter(n) => n.min(body.len() as u64) as usize,
        _ => body.len(),
    };
    for chunk in body[..limit].chunks(64 * 1024) {
        w.write_all(chunk)?;
        sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    w.flush()?;
    if let Mode::StallAfter(_) = mode {
        for _ in 0..600 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Drain a little so the client sees an orderly close.
    let _ = r.get_mut().set_read_timeout(Some(Duration::from_millis(10)));
    let mut sink = [0u8; 64];
    let _ = r.read(&mut sink);
    Ok(())
}

/// sha256 hex of bytes, independently of the engine.
pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// `cgpt show -i N -P|-T|-S DISK` as a number.
pub fn cgpt_field(disk: &Path, part: u32, flag: &str) -> u64 {
    let out = std::process::Command::new("cgpt")
        .args(["show", "-i", &part.to_string(), flag])
        .arg(disk)
        .output()
        .expect("run cgpt (Debian package cgpt)");
    assert!(out.status.success(), "cgpt failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}
