//! The issue's *provision*, *encryption* and *extension* scenarios on a real
//! Boxcar image (built by the test itself, cached by its inputs), on one
//! node, because every boot of the image costs minutes under emulation:
//!
//! * provision: `examples/demo.bu` (a user with an SSH key, a web page and a
//!   unit that serves it from a podman container whose root file system is a
//!   busybox tarball shipped in the config) → the page, with a nonce, is
//!   fetched from the host through a port forward and compared byte for byte;
//!   the user exists with the key.
//! * encryption: `examples/encrypted-data.bu` puts /var/lib/data on LUKS2 on
//!   a second virtio disk with a key boxcar-provision generates; a file
//!   written at provisioning and one written by a unit in boot 1 are read in
//!   boot 2 after a power-off and restart of the same VM (unlocked through
//!   /etc/crypttab, mounted by the generated mount unit); the host sees a
//!   LUKS2 header and none of the plaintext on the disk.
//! * extension: `examples/sysext-local.bu` ships a sysext built here with
//!   `boxcar sysext build`; systemd-sysext merges it at boot: its program
//!   runs from /usr/bin with the nonce the test put into the image, and
//!   `systemd-sysext status` lists it, in both boots.
//!
//! The configs are the examples, translated with `boxcar butane` together
//! with a test-only overlay that adds the check unit printing the markers.

mod common;
mod scenario;

use boxcar_testbed::{net, tool, BuiltImage, Disk, DiskMode, Exit, ImageSpec, Vm, VmBuilder};
use common::{field, nonce};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One boot of the image to the check unit's markers (TCG, loaded host).
const BOOT: Duration = Duration::from_secs(720);
/// Console lines that end a wait early: the boot went wrong.
const FAILED: [&str; 4] = [
    "BOXCAR_PROVISION_FAILED",
    "Kernel panic",
    "emergency mode",
    "Failed to mount",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Prints the markers the host checks; runs in both boots. `$` is not
/// expanded by systemd here (a script file, not an ExecStart line).
const CHECK_SCRIPT: &str = r#"#!/bin/sh
exec >/dev/ttyS0 2>&1
m() { echo "BOXCAR_SCENARIO $*"; }
keys=$(cat /home/demo/.ssh/authorized_keys /home/demo/.ssh/authorized_keys.d/* 2>/dev/null | grep -cF "$(cat /etc/scenario/key)")
m user uid=$(id -u demo) home=$(getent passwd demo | cut -d: -f6) keys=$keys
m version=$(. /etc/os-release; echo "$VERSION_ID")
# When the initrd's provisioning units ran in this boot (tests/scenario/provision_time.rs).
m provision $(/etc/scenario/provision-time.sh)
m uptime=$(cut -d' ' -f1 /proc/uptime)
boot=$(cat /proc/sys/kernel/random/boot_id)
seen=$(cat /var/lib/data/boot-note 2>/dev/null || echo none)
m luks mount=$(findmnt -no SOURCE,FSTYPE /var/lib/data | tr -s ' ' ,) type=$(cryptsetup status data | awk '/type:/ {print $2}') secret=$(cat /var/lib/data/secret) seen=$seen boot=$boot
echo "$boot" > /var/lib/data/boot-note && sync
m sysext hello=$(/usr/bin/demo-hello | tr ' ' _) listed=$(systemd-sysext status 2>&1 | grep -c demo-hello)
m done
"#;

/// Test-only Butane overlay: the check script and its unit.
fn check_overlay(key: &str, secret: &str) -> String {
    format!(
        r#"variant: flatcar
version: 1.1.0
storage:
  files:
    - path: /etc/scenario/check.sh
      mode: 0755
      contents:
        inline: |
{script}    - path: /etc/scenario/provision-time.sh
      mode: 0755
      contents:
        inline: |
{provision_time}    - path: /etc/scenario/key
      mode: 0644
      contents:
        inline: "{key}"
    - path: /var/lib/data/secret
      mode: 0600
      contents:
        inline: "{secret}"
systemd:
  units:
    - name: scenario-check.service
      enabled: true
      contents: |
        [Unit]
        Description=Scenario test markers
        Requires=var-lib-data.mount
        After=var-lib-data.mount systemd-sysext.service demo-web.service
        [Service]
        Type=oneshot
        ExecStart=/etc/scenario/check.sh
        [Install]
        WantedBy=multi-user.target
"#,
        script = scenario::indent(CHECK_SCRIPT, 10),
        provision_time = scenario::indent(scenario::provision_time::SCRIPT, 10),
    )
}

/// The SSH key line of examples/demo.bu (what the guest must have).
fn demo_key(demo: &str) -> String {
    demo.lines()
        .find_map(|l| l.trim().strip_prefix("- ssh-ed25519 "))
        .map(|rest| format!("ssh-ed25519 {rest}"))
        .expect("examples/demo.bu has an ssh-ed25519 key")
}

/// Waits for the next `BOXCAR_SCENARIO <what>` line, ending early on a
/// failure marker.
fn scenario_line(vm: &mut Vm, what: &str, timeout: Duration) -> String {
    let marker = format!("BOXCAR_SCENARIO {what}");
    let (which, line) = vm
        .wait_for_any(&[&[marker.as_str()][..], &FAILED[..]].concat(), timeout)
        .unwrap();
    assert_eq!(which, 0, "boot failed: {line}");
    line
}

/// Polls the forwarded port until the page answers 200 (podman imports and
/// starts the container after the unit is started).
fn fetch_page(vm: &Vm, within: Duration) -> Vec<u8> {
    let port = vm.host_port(8080).expect("forward for 8080");
    let start = Instant::now();
    loop {
        match net::http_get(port, "/index.html", Duration::from_secs(10)) {
            Ok(r) if r.status == 200 => return r.body,
            other if start.elapsed() > within => panic!("page not served after {within:?}: {other:?}"),
            _ => std::thread::sleep(Duration::from_secs(3)),
        }
    }
}

fn run(cmd: &mut Command) -> Vec<u8> {
    tool::run(cmd).unwrap()
}

#[test]
fn provision_encryption_and_extension_on_one_node_across_a_reboot() {
    let t0 = Instant::now();
    let image = BuiltImage::get(&ImageSpec::boot_disk()).unwrap();
    eprintln!(
        "scenarios: image {} ready after {:.0} s",
        image.version,
        t0.elapsed().as_secs_f64()
    );
    let boxcar = image.bin_dir.join("boxcar");
    let ws = workspace();
    let examples = ws.join("examples");
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(files.join("demo")).unwrap();

    // The page, with a nonce nothing else knows.
    let token = nonce();
    let mut page = std::fs::read(examples.join("files/demo/index.html")).unwrap();
    page.extend_from_slice(format!("<!-- {token} -->\n").as_bytes());
    std::fs::write(files.join("demo/index.html"), &page).unwrap();
    // The container's root file system: busybox-static alone.
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    run(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(files.join("demo/httpd-rootfs.tar"))
        .arg("."));
    // The extension: the example tree plus a stamp with a nonce.
    let stamp = nonce();
    let tree = dir.path().join("demo-hello");
    run(Command::new("cp")
        .arg("-a")
        .arg(examples.join("files/demo/demo-hello"))
        .arg(&tree));
    std::fs::create_dir_all(tree.join("usr/share/demo-hello")).unwrap();
    std::fs::write(tree.join("usr/share/demo-hello/stamp"), &stamp).unwrap();
    run(Command::new(&boxcar)
        .args(["sysext", "build", "--name", "demo-hello", "--id", "_any"])
        .arg(&tree)
        .arg("-o")
        .arg(files.join("demo/demo-hello.raw")));

    let demo = std::fs::read_to_string(examples.join("demo.bu")).unwrap();
    let key = demo_key(&demo);
    let secret = format!("secret-{}", nonce());
    let overlay = dir.path().join("check.bu");
    std::fs::write(&overlay, check_overlay(&key, &secret)).unwrap();
    let config = run(Command::new(&boxcar)
        .args(["butane", "--strict", "--files-dir"])
        .arg(&files)
        .arg(examples.join("demo.bu"))
        .arg(examples.join("encrypted-data.bu"))
        .arg(examples.join("sysext-local.bu"))
        .arg(&overlay));
    let data = dir.path().join("data.img");
    std::fs::File::create(&data).unwrap().set_len(256 << 20).unwrap();

    let mut vm = VmBuilder::boxcar_image("scenario_provision_encryption_extension", &image.raw, config)
        .disk(Disk::new(&data, DiskMode::Writable))
        .forward(8080)
        .start()
        .unwrap();

    // Boot 1: provisioning, then the check unit.
    let user = scenario_line(&mut vm, "user", BOOT);
    let boot1 = vm.uptime();
    eprintln!(
        "scenarios: boot 1 check unit after {:.0} s: {user}",
        boot1.as_secs_f64()
    );
    assert!(
        field(&user, "uid").is_some_and(|u| u.parse::<u32>().is_ok_and(|u| u >= 1000)),
        "{user}"
    );
    assert_eq!(field(&user, "home"), Some("/home/demo"), "{user}");
    assert_eq!(field(&user, "keys"), Some("1"), "the demo key once: {user}");
    let version = scenario_line(&mut vm, "version", Duration::from_secs(60));
    assert_eq!(
        field(&version, "version"),
        Some(image.version.as_str()),
        "os-release: {version}"
    );
    // Provisioning ran in the initrd of this first boot (its share of the boot: the
    // closing note's benchmark; no timing assertion).
    let prov1 = scenario_line(&mut vm, "provision", Duration::from_secs(60));
    let up1 = scenario_line(&mut vm, "uptime", Duration::from_secs(60));
    eprintln!("scenarios: boot 1 {prov1} (check unit at kernel {up1})");
    assert_eq!(field(&prov1, "ran"), Some("yes"), "{prov1}");
    let luks1 = scenario_line(&mut vm, "luks", Duration::from_secs(60));
    assert_eq!(field(&luks1, "mount"), Some("/dev/mapper/data,ext4"), "{luks1}");
    assert_eq!(field(&luks1, "type"), Some("LUKS2"), "{luks1}");
    assert_eq!(field(&luks1, "secret"), Some(secret.as_str()), "{luks1}");
    assert_eq!(field(&luks1, "seen"), Some("none"), "first boot: {luks1}");
    let boot_id1 = field(&luks1, "boot").unwrap().to_string();
    let sysext1 = scenario_line(&mut vm, "sysext", Duration::from_secs(60));
    let hello = format!("hello_from_the_demo-hello_system_extension_{stamp}");
    assert_eq!(field(&sysext1, "hello"), Some(hello.as_str()), "{sysext1}");
    assert_eq!(field(&sysext1, "listed"), Some("1"), "systemd-sysext status: {sysext1}");
    scenario_line(&mut vm, "done", Duration::from_secs(60));

    let body = fetch_page(&vm, Duration::from_secs(300));
    eprintln!(
        "scenarios: page served {:.0} s after QEMU start ({} bytes)",
        vm.uptime().as_secs_f64(),
        body.len()
    );
    assert_eq!(body, page, "the served page differs from the one in the config");
    let down = Instant::now();
    assert_eq!(vm.powerdown(Duration::from_secs(180)).unwrap(), Exit::NoVerdict);
    eprintln!(
        "scenarios: boot 1 powered down in {:.0} s",
        down.elapsed().as_secs_f64()
    );

    // On the host: the data disk is LUKS2 and holds no plaintext.
    let dump = String::from_utf8_lossy(&run(Command::new("cryptsetup").arg("luksDump").arg(&data))).into_owned();
    assert!(
        dump.lines()
            .any(|l| l.starts_with("Version:") && l.trim_end().ends_with('2')),
        "not LUKS2: {dump}"
    );
    assert!(
        dump.contains("pbkdf2"),
        "the example's options reached luksFormat: {dump}"
    );
    let raw = std::fs::read(&data).unwrap();
    assert!(
        !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "plaintext of the secret on the encrypted disk"
    );
    drop(raw);

    // Boot 2: same machine (vars, overlay, data disk), no provisioning.
    let restart = Instant::now();
    vm.restart().unwrap();
    let user2 = scenario_line(&mut vm, "user", BOOT);
    eprintln!(
        "scenarios: boot 2 check unit after {:.0} s",
        restart.elapsed().as_secs_f64()
    );
    assert_eq!(field(&user2, "uid"), field(&user, "uid"), "{user2}");
    scenario_line(&mut vm, "version", Duration::from_secs(60));
    let prov2 = scenario_line(&mut vm, "provision", Duration::from_secs(60));
    assert_eq!(field(&prov2, "ran"), Some("no"), "first boot only: {prov2}");
    let luks2 = scenario_line(&mut vm, "luks", Duration::from_secs(60));
    assert_eq!(field(&luks2, "mount"), Some("/dev/mapper/data,ext4"), "{luks2}");
    assert_eq!(field(&luks2, "secret"), Some(secret.as_str()), "{luks2}");
    assert_eq!(field(&luks2, "seen"), Some(boot_id1.as_str()), "boot 1's note: {luks2}");
    assert_ne!(field(&luks2, "boot"), Some(boot_id1.as_str()), "a new boot: {luks2}");
    let sysext2 = scenario_line(&mut vm, "sysext", Duration::from_secs(60));
    assert_eq!(field(&sysext2, "hello"), Some(hello.as_str()), "{sysext2}");
    scenario_line(&mut vm, "done", Duration::from_secs(60));
    let body = fetch_page(&vm, Duration::from_secs(300));
    assert_eq!(body, page, "boot 2 serves the same page");
    assert_eq!(vm.powerdown(Duration::from_secs(180)).unwrap(), Exit::NoVerdict);
    eprintln!(
        "scenarios: boot 2 done in {:.0} s; whole test {:.0} s",
        restart.elapsed().as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
