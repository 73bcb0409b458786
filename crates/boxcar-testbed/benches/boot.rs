//! Boot-to-marker time of the PVH fast path (extracted vmlinux) against its
//! peer, QEMU's usual `-kernel vmlinuz` (bzImage: SeaBIOS + in-guest XZ
//! decompression), with the same busybox initramfs and command line.
//! Alternating runs; medians and their ratio are printed.
//!
//! `cargo bench -p boxcar-testbed --bench boot` (BOXCAR_BENCH_REPS=N, default 3).

use boxcar_testbed::{Boot, Exit, HostKernel, Initramfs, VmBuilder};
use std::path::Path;
use std::time::{Duration, Instant};

fn boot_once(kernel: &Path, initrd: &Path) -> f64 {
    let boot = Boot::Direct {
        kernel: kernel.to_path_buf(),
        initrd: Some(initrd.to_path_buf()),
        append: "console=ttyS0 quiet panic=-1 mitigations=off".into(),
    };
    let start = Instant::now();
    let mut vm = VmBuilder::new("bench_boot", boot).start().expect("start QEMU");
    vm.wait_for("BOXCAR_MARK bench-up", Duration::from_secs(300))
        .expect("marker");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(vm.wait_exit(Duration::from_secs(60)).expect("exit"), Exit::Pass);
    secs
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let reps: usize = std::env::var("BOXCAR_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let k = HostKernel::find().expect("host kernel");
    let vmlinux = k.pvh_vmlinux().expect("vmlinux");
    let dir = tempfile::tempdir().expect("tempdir");
    let initrd = dir.path().join("initrd.gz");
    let mut img = Initramfs::busybox().expect("busybox");
    img.init("mark bench-up\nverdict 0");
    img.write_gz(&initrd).expect("initrd");
    let (mut pvh, mut bz) = (Vec::new(), Vec::new());
    for i in 0..reps {
        pvh.push(boot_once(&vmlinux, &initrd));
        bz.push(boot_once(&k.bzimage, &initrd));
        eprintln!("run {}: pvh {:.2} s, bzImage {:.2} s", i + 1, pvh[i], bz[i]);
    }
    let (p, b) = (median(&mut pvh), median(&mut bz));
    println!(
        "boot to marker, median of {reps}: PVH vmlinux {p:.2} s, bzImage {b:.2} s; PVH is {:.2}x faster",
        b / p
    );
}
