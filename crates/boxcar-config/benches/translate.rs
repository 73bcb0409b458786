//! Benchmark: translate a Butane config with 1,000 files and 100 units,
//! then validate the result; compared in the same run with the real
//! `ignition-validate` validating the same JSON (the peer; it includes its
//! process start, so the ratio is a fair "what the user waits for").
//!
//! Run: `cargo bench -p boxcar-config --bench translate`

use boxcar_config::butane::{self, FilesDir};
use boxcar_config::{ignition, JsonStyle, Strictness};
use std::time::{Duration, Instant};

fn config() -> String {
    let mut s = String::from("variant: flatcar\nversion: 1.1.0\nstorage:\n  files:\n");
    for i in 0..1000 {
        s.push_str(&format!(
            "    - path: /etc/boxcar/bench/file-{i}.conf\n      mode: 0644\n      contents:\n        inline: |\n          setting_{i}=value {i}\n          another line for file {i}\n"
        ));
    }
    s.push_str("systemd:\n  units:\n");
    for i in 0..100 {
        s.push_str(&format!(
            "    - name: bench-{i}.service\n      enabled: true\n      contents: |\n        [Unit]\n        Description=Bench {i}\n        [Service]\n        ExecStart=/usr/bin/true {i}\n        [Install]\n        WantedBy=multi-user.target\n"
        ));
    }
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// CPU time this thread has run so far (`/proc/thread-self/schedstat`, ns).
/// Wall-clock medians swing with whatever else the machine runs; on-CPU
/// time does not count the time spent waiting for a core.
fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("reading /proc/thread-self/schedstat");
    let ns: u64 = s
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("schedstat run time");
    Duration::from_nanos(ns)
}

fn main() {
    let input = config();
    let opts = butane::Options {
        files_dir: FilesDir::new(None).unwrap(),
        strictness: Strictness::Lenient,
        source_path: None,
    };
    let mut json = String::new();
    let mut ours = Vec::new();
    let mut ours_cpu = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let c = thread_cpu();
        let out = butane::translate(input.as_bytes(), "bench.bu", &opts).expect("bench config translates");
        json = out.config.to_json(JsonStyle::Compact);
        let parsed = ignition::parse(json.as_bytes(), Strictness::Lenient).expect("output validates");
        assert_eq!(parsed.config.storage.files.len(), 1000);
        ours.push(t.elapsed());
        ours_cpu.push(thread_cpu() - c);
    }
    let ours = median(ours);
    println!(
        "translate+validate (1000 files, 100 units, {} KiB JSON): median {:.2} ms wall, {:.2} ms on-CPU",
        json.len() / 1024,
        ours.as_secs_f64() * 1e3,
        median(ours_cpu).as_secs_f64() * 1e3
    );

    let mut validate_only = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        ignition::parse(json.as_bytes(), Strictness::Lenient).unwrap();
        validate_only.push(t.elapsed());
    }
    let validate_only = median(validate_only);
    println!(
        "boxcar validate alone: median {:.2} ms",
        validate_only.as_secs_f64() * 1e3
    );

    let dir = std::env::temp_dir().join(format!("boxcar-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bench.ign");
    std::fs::write(&f, json.replace("\"3.4.0\"", "\"3.4.0-experimental\"")).unwrap();
    let mut peer = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let st = std::process::Command::new("ignition-validate").arg(&f).output();
        match st {
            Ok(o) if o.status.success() => peer.push(t.elapsed()),
            Ok(o) => panic!(
                "ignition-validate rejected the bench config: {}",
                String::from_utf8_lossy(&o.stdout)
            ),
            Err(e) => panic!("ignition-validate is needed for the comparison (scripts/setup.sh): {e}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let peer = median(peer);
    println!(
        "ignition-validate 2.14 (peer, same JSON): median {:.2} ms",
        peer.as_secs_f64() * 1e3
    );
    println!(
        "ratio: boxcar translate+validate is {:.1}x faster than ignition-validate alone; validate alone {:.1}x",
        peer.as_secs_f64() / ours.as_secs_f64(),
        peer.as_secs_f64() / validate_only.as_secs_f64()
    );
}
