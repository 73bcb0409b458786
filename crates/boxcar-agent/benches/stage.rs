//! Staging a payload from a local HTTP server into a loop-backed slot:
//! the engine vs a shell pipeline doing the same transfer work, same data,
//! same run. Not a test: `cargo bench -p boxcar-agent --bench stage`
//! (root, needs losetup, curl, zstd, sha256sum, dd).
//!
//! The pipeline (one per run, bash):
//! ```text
//! curl -s URL | tee >(sha256sum >/dev/null) | tail -c +BODY | zstd -d -c \
//!   | dd of=/dev/loopP bs=1M iflag=fullblock oflag=direct conv=fsync
//! ```
//! It downloads the same payload file from the same server, hashes the
//! whole file (the engine checks the offer's sha256), skips header and
//! manifest, decompresses every section (usr, verity, UKI frames), and
//! writes the result durably to a loop device over the USR-B partition of
//! the same disk image. It verifies nothing (no signature, no per-section
//! digests, no read-back), so it is the lower bound of what the engine
//! must do. The engine writes through a loop device of the whole disk at
//! the partition offsets, fsyncs at each checkpoint and at the end.
//!
//! Environment: `BOXCAR_STAGE_BENCH_MIB` (usr image size, default 1024),
//! `BOXCAR_STAGE_BENCH_RUNS` (default 3; best run counts).

#[path = "../tests/support/mod.rs"]
mod support;

use boxcar_agent::stage::{ReadBack, StageConfig, Tuning};
use boxcar_agent::{Offer, SlotStager, Stager};
use boxcar_payload::{build, keys, BuildInput, Signing};
use boxcar_slots::layout::{self, Sizes};
use boxcar_slots::{bootent, Guid, Mbr, Slot};
use std::io::Write;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use support::{Mode, Server};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Loop(String);
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

fn losetup(args: &[&str], file: &std::path::Path) -> Loop {
    let out = Command::new("losetup")
        .args(["--find", "--show"])
        .args(args)
        .arg(file)
        .output()
        .expect("losetup");
    assert!(out.status.success(), "losetup: {out:?}");
    Loop(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// usr image: 1 MiB blocks alternating pseudo-random and text-like, so
/// zstd has work to do and output about half the input.
fn write_usr(path: &std::path::Path, mib: u64) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut chunk = vec![0u8; 1 << 20];
    for i in 0..mib {
        if i % 2 == 0 {
            for word in chunk.chunks_exact_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                word.copy_from_slice(&x.to_le_bytes());
            }
        } else {
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = b"boxcar /usr/lib/systemd libc.so.6 "[(j + i as usize) % 34];
            }
        }
        w.write_all(&chunk).unwrap();
    }
    w.flush().unwrap();
}

fn main() {
    let mib = env_or("BOXCAR_STAGE_BENCH_MIB", 1024);
    let runs = env_or("BOXCAR_STAGE_BENCH_RUNS", 3).max(1);
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let d = dir.path();

    // Payload for 2.0.0.
    let key = keys::generate().unwrap();
    keys::save(&key, &d.join("key.pem"), &d.join("key.pub.pem")).unwrap();
    write_usr(&d.join("usr.img"), mib);
    std::fs::write(d.join("uki.efi"), vec![7u8; 8 << 20]).unwrap();
    let t = Instant::now();
    let input = BuildInput {
        version: "2.0.0",
        usr: &d.join("usr.img"),
        uki: &d.join("uki.efi"),
        level: 3,
        frame_bytes: boxcar_payload::DEFAULT_FRAME_BYTES,
    };
    let m = build(&input, &d.join("p.bxp"), Signing::With(&key)).unwrap();
    std::fs::remove_file(d.join("usr.img")).unwrap();
    let payload = std::fs::read(d.join("p.bxp")).unwrap();
    std::fs::remove_file(d.join("p.bxp")).unwrap();
    let body = 84 + u32::from_le_bytes(payload[80..84].try_into().unwrap()) as u64;
    println!(
        "payload: {mib} MiB usr -> {:.1} MiB file ({} zstd frames of 16 MiB), built in {:.1} s",
        payload.len() as f64 / 1048576.0,
        mib.div_ceil(16),
        t.elapsed().as_secs_f64()
    );

    // Disk: the Boxcar layout sized for the payload, slot A "booted".
    let sizes = Sizes {
        esp_mib: 2,
        // Room for the pipeline, which writes all three sections there.
        usr_mib: mib + mib / 64 + 32,
        verity_mib: mib / 64 + 2,
        oem_mib: 1,
    };
    let total = (2 * sizes.usr_mib + 2 * sizes.verity_mib + 16) << 20;
    let disk_img = d.join("disk.img");
    std::fs::File::create(&disk_img).unwrap().set_len(total).unwrap();
    let mut n = 0u8;
    let mut gpt = layout::boxcar_layout(total / 512, sizes, Guid([9; 16]), || {
        n += 1;
        Guid([n; 16])
    })
    .unwrap();
    let a_root = [0x42u8; 32];
    let a = layout::find_slot(&gpt, Slot::A).unwrap();
    gpt.partition_mut(a.usr).unwrap().guid = Guid(a_root[..16].try_into().unwrap());
    boxcar_slots::write(&disk_img, &gpt, Mbr::Protective).unwrap();
    let b = layout::find_slot(&gpt, Slot::B).unwrap();
    let be = gpt.partition(b.usr).unwrap();
    let (b_off, b_len) = (be.first_lba * 512, be.sectors() * 512);
    let esp = d.join("esp");
    bootent::install(&esp, "1.0.0", b"uki", 0).unwrap();
    std::fs::write(d.join("os-release"), "VERSION_ID=1.0.0\n").unwrap();
    std::fs::write(d.join("cmdline"), format!("usrhash={}\n", hex::encode(a_root))).unwrap();

    let disk_dev = losetup(&[], &disk_img);
    let part_dev = losetup(
        &["--offset", &b_off.to_string(), "--sizelimit", &b_len.to_string()],
        &disk_img,
    );
    let server = Server::start(payload.clone(), Mode::Honest);
    let offer = Offer {
        version: "2.0.0".into(),
        url: server.url.clone(),
        size: payload.len() as u64,
        sha256: Some(support::sha256_hex(&payload)),
    };
    let config = |read_back| StageConfig {
        disk: disk_dev.0.clone().into(),
        esp: esp.clone(),
        state_dir: d.join("state"),
        public_key: d.join("key.pub.pem"),
        os_release: d.join("os-release"),
        cmdline: d.join("cmdline"),
        failpoint: None,
        tuning: Tuning {
            read_back,
            ..Tuning::default()
        },
    };
    let engine = |read_back| {
        let stager = SlotStager::new(config(read_back));
        let t = Instant::now();
        stager.stage(&offer, &mut |_| {}, &AtomicBool::new(false)).unwrap();
        let e = t.elapsed();
        stager.unstage().unwrap();
        e
    };
    let pipeline = || {
        let script = format!(
            "set -o pipefail; curl -s {url} | tee >(sha256sum >/dev/null) | tail -c +{skip} | zstd -d -c \
             | dd of={dev} bs=1M iflag=fullblock oflag=direct conv=fsync status=none",
            url = server.url,
            skip = body + 1,
            dev = part_dev.0
        );
        let t = Instant::now();
        let st = Command::new("bash").args(["-c", &script]).status().unwrap();
        let e = t.elapsed();
        assert!(st.success(), "pipeline failed");
        e
    };
    let best = |f: &dyn Fn() -> Duration| (0..runs).map(|_| f()).min().unwrap();
    let p = best(&pipeline);
    let e_plain = best(&|| engine(ReadBack::SkipForBenchmark));
    let e_verify = best(&|| engine(ReadBack::Verify));
    let mibs = |t: Duration| mib as f64 / t.as_secs_f64();
    println!(
        "staging {mib} MiB usr (best of {runs}), payload {} bytes",
        payload.len()
    );
    println!(
        "  pipeline (curl|tee sha256sum|zstd -d|dd direct): {:7.3} s {:8.1} MiB/s",
        p.as_secs_f64(),
        mibs(p)
    );
    println!(
        "  engine, no read-back                          : {:7.3} s {:8.1} MiB/s  ratio {:.2}x",
        e_plain.as_secs_f64(),
        mibs(e_plain),
        p.as_secs_f64() / e_plain.as_secs_f64()
    );
    println!(
        "  engine, with read-back verification           : {:7.3} s {:8.1} MiB/s  ratio {:.2}x",
        e_verify.as_secs_f64(),
        mibs(e_verify),
        p.as_secs_f64() / e_verify.as_secs_f64()
    );
    println!(
        "  (ratio = pipeline time / engine time; goal >= 0.8; usrhash {})",
        m.verity_params.root_hash
    );
}
