//! Verity format of a large image: ours vs `veritysetup format`, same data,
//! same salt and UUID, same run. Not a test: run with
//! `cargo bench -p boxcar-verity --bench format`.
//!
//! Environment: `BOXCAR_VERITY_BENCH_MIB` (default 1024),
//! `BOXCAR_VERITY_BENCH_DATA` = `random` (default) or `sparse`,
//! `BOXCAR_VERITY_BENCH_RUNS` (default 3; the best run of each counts),
//! `BOXCAR_VERITY_BENCH_THREADS` (default: one per CPU).

use boxcar_verity::{format_file, parse_uuid, DataBlocks, Parallelism, Params, Salt};
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

const UUID: &str = "0f3c2a6e-9b1d-4e55-8a77-1c2d3e4f5a6b";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn main() {
    let mib: u64 = env_or("BOXCAR_VERITY_BENCH_MIB", "1024").parse().expect("MiB");
    let kind = env_or("BOXCAR_VERITY_BENCH_DATA", "random");
    let runs: usize = env_or("BOXCAR_VERITY_BENCH_RUNS", "3").parse().expect("runs");
    let parallelism = match std::env::var("BOXCAR_VERITY_BENCH_THREADS") {
        Ok(n) => Parallelism::Threads(n.parse().expect("threads")),
        Err(_) => Parallelism::Auto,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data.img");
    let file = std::fs::File::create(&data).expect("create data");
    match kind.as_str() {
        "sparse" => file.set_len(mib << 20).expect("set_len"),
        _ => {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            let mut chunk = vec![0u8; 1 << 20];
            for _ in 0..mib {
                for word in chunk.chunks_exact_mut(8) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    word.copy_from_slice(&x.to_le_bytes());
                }
                w.write_all(&chunk).expect("write data");
            }
            w.flush().expect("flush");
        }
    }
    let salt_hex = "5ae1".repeat(16);
    let salt = Salt::from_hex(&salt_hex).expect("salt");
    let params = Params {
        salt,
        uuid: parse_uuid(UUID).expect("uuid"),
        data_blocks: DataBlocks::WholeFile,
    };
    let (ours_path, theirs_path) = (dir.path().join("ours"), dir.path().join("theirs"));

    let mut best_ref = Duration::MAX;
    let mut ref_root = String::new();
    let mut best_ours = Duration::MAX;
    let mut our_root = String::new();
    for _ in 0..runs {
        let t = Instant::now();
        let out = Command::new("veritysetup")
            .args(["format", &format!("--salt={salt_hex}"), &format!("--uuid={UUID}")])
            .arg(&data)
            .arg(&theirs_path)
            .output()
            .expect("run veritysetup");
        best_ref = best_ref.min(t.elapsed());
        assert!(out.status.success(), "veritysetup failed: {out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        ref_root = stdout
            .lines()
            .find(|l| l.starts_with("Root hash:"))
            .and_then(|l| l.split_whitespace().last())
            .expect("root hash line")
            .to_string();

        let t = Instant::now();
        let o = format_file(&data, &ours_path, &params, parallelism).expect("format");
        best_ours = best_ours.min(t.elapsed());
        our_root = o.root.to_string();
    }
    assert_eq!(our_root, ref_root, "root hashes differ");
    let same = std::fs::read(&ours_path).expect("read") == std::fs::read(&theirs_path).expect("read");
    assert!(same, "hash images differ");
    let mibf = mib as f64;
    println!(
        "verity format, {mib} MiB {kind} data, best of {runs}, {} threads",
        parallelism.thread_count()
    );
    println!(
        "  veritysetup format : {:>8.3} s  {:>8.1} MiB/s",
        best_ref.as_secs_f64(),
        mibf / best_ref.as_secs_f64()
    );
    println!(
        "  boxcar-verity      : {:>8.3} s  {:>8.1} MiB/s",
        best_ours.as_secs_f64(),
        mibf / best_ours.as_secs_f64()
    );
    println!(
        "  speed-up           : {:.2}x (root hash {our_root} identical, hash image identical)",
        best_ref.as_secs_f64() / best_ours.as_secs_f64()
    );
}
