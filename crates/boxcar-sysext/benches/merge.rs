//! Benchmark (not a test): merging 5 squashfs extensions into a temporary `--root`, by
//! Boxcar (library call) and by the host's systemd-sysext 252 (process), alternating in the
//! same run and the same private mount namespace. Prints medians and the ratio.
//!
//! Run: `cargo bench -p boxcar-sysext --bench merge` (as root; needs systemd-sysext, mksquashfs).

use boxcar_sysext::build::{self, BuildSpec, Format, ReleaseSpec, ReloadManager};
use boxcar_sysext::merge::{self, Options};
use std::process::Command;
use std::time::{Duration, Instant};

const EXTENSIONS: usize = 5;
const ROUNDS: usize = 30;

fn main() {
    // SAFETY: single-threaded here; private mount namespace for everything below.
    unsafe {
        assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare needs root");
        libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        );
    }
    // systemd-sysext 252 under --root needs /run to be a mount point and / shared (see the reference).
    sh("mount -t tmpfs tmpfs /run && mount --make-rshared /");
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(root.join("usr/lib")).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::write(root.join("usr/lib/os-release"), "ID=boxcar\nSYSEXT_LEVEL=1.0\n").unwrap();
    for i in 0..EXTENSIONS {
        let src = t.path().join(format!("src{i}"));
        for d in 0..20 {
            let dir = src.join(format!("usr/share/ext{i}/d{d}"));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..20 {
                std::fs::write(dir.join(format!("f{f}")), format!("{i} {d} {f}\n").repeat(50)).unwrap();
            }
        }
        std::fs::create_dir_all(src.join("usr/bin")).unwrap();
        std::fs::write(src.join(format!("usr/bin/tool{i}")), "x").unwrap();
        let release = ReleaseSpec {
            id: "_any".into(),
            version_id: None,
            sysext_level: None,
            architecture: None,
            scope: None,
            reload_manager: ReloadManager::No,
        };
        let out = root.join(format!("var/lib/extensions/ext{i}.raw"));
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        build::build(&BuildSpec {
            name: format!("ext{i}"),
            source: src,
            output: out,
            format: Format::Squashfs,
            release,
        })
        .unwrap();
    }
    let ws = t.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let mut opts = Options::new(&root);
    opts.workspace_base = ws;

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let s = Instant::now();
        let r = merge::merge(&opts).unwrap();
        ours.push(s.elapsed());
        assert_eq!(r.merged_names().len(), EXTENSIONS);
        merge::unmerge(&opts).unwrap();

        let s = Instant::now();
        let st = Command::new("systemd-sysext")
            .arg(format!("--root={}", root.display()))
            .arg("merge")
            .output()
            .unwrap();
        theirs.push(s.elapsed());
        assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
        assert!(root.join("usr/bin/tool4").exists());
        let st = Command::new("systemd-sysext")
            .arg(format!("--root={}", root.display()))
            .arg("unmerge")
            .output()
            .unwrap();
        assert!(st.status.success());
    }
    let (mo, mt) = (median(&mut ours), median(&mut theirs));
    println!("merge of {EXTENSIONS} squashfs extensions, {ROUNDS} rounds, medians:");
    println!("  boxcar-sysext (library call): {:>8.2} ms", mo.as_secs_f64() * 1e3);
    println!("  systemd-sysext 252 (process): {:>8.2} ms", mt.as_secs_f64() * 1e3);
    println!(
        "  ratio boxcar/systemd: {:.3} (goal: <= 1)",
        mo.as_secs_f64() / mt.as_secs_f64()
    );
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(st.success(), "{cmd}");
}
