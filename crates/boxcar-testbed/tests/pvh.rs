//! PVH direct boot of the host kernel with a busybox initramfs built here:
//! console markers, an Ignition config read back from fw_cfg, a verdict
//! through isa-debug-exit, and a page served by the guest fetched through
//! a host port forward. A second boot checks the failure paths.

mod common;

use boxcar_testbed::net::http_get;
use boxcar_testbed::{paths, Disk, DiskMode, Exit, IgnitionKey, Initramfs, OnReboot, VmBuilder};
use common::{field, kernel, nonce, pvh, sha256_hex, PVH_TIMEOUT};
use std::time::{Duration, Instant};

const INIT: &str = r#"
mark boot
base=/sys/firmware/qemu_fw_cfg/by_name/opt
sha=$(sha256sum < $base/org.flatcar-linux/config/raw | cut -d' ' -f1)
size=$(cat $base/org.flatcar-linux/config/size)
mark fwcfg-flatcar sha=$sha size=$size
coreos=$(sha256sum < $base/com.coreos/config/raw | cut -d' ' -f1)
mark fwcfg-coreos sha=$coreos
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
httpd -p 80 -h /www
mark httpd ready
i=0
while [ ! -f /tmp/finished ] && [ $i -lt 900 ]; do sleep 0.2; i=$((i+1)); done
if [ "$sha" = "$(cmdline_arg boxcar.expect)" ] && [ -f /tmp/finished ]; then
  mark verdict pass; verdict 0
else
  mark verdict fail; verdict 1
fi
"#;

const FINISH_CGI: &str = "#!/bin/sh\ntouch /tmp/finished\nprintf 'Content-Type: text/plain\\r\\n\\r\\nfinishing\\n'\n";

#[test]
fn pvh_boot_fw_cfg_http_and_verdict() {
    let k = kernel();
    let token = nonce();
    let page = format!("<h1>boxcar testbed {token}</h1>\n");
    let config = format!(
        r#"{{"ignition":{{"version":"3.3.0"}},"storage":{{"files":[{{"path":"/etc/token","contents":{{"source":"data:,{token}"}}}}]}}}}"#
    );
    let mut initrd = Initramfs::busybox().unwrap();
    initrd
        .modules(&k, &["qemu_fw_cfg", "virtio_pci", "virtio_net"])
        .unwrap()
        .file("www/index.html", 0o644, page.clone())
        .file("www/cgi-bin/finish", 0o755, FINISH_CGI)
        .init(INIT);
    let dir = tempfile::tempdir().unwrap();
    let initrd_path = dir.path().join("initrd.gz");
    initrd.write_gz(&initrd_path).unwrap();

    let expect = sha256_hex(config.as_bytes());
    let started = Instant::now();
    let mut vm = VmBuilder::new(
        "pvh_boot_fw_cfg_http_and_verdict",
        pvh(&k, &initrd_path, &format!("boxcar.expect={expect}")),
    )
    .ignition(config.clone(), IgnitionKey::Both)
    .forward(80)
    .start()
    .unwrap();
    vm.wait_for("BOXCAR_MARK boot", PVH_TIMEOUT).unwrap();
    eprintln!("pvh: first marker {:.1} s after QEMU start", vm.uptime().as_secs_f64());

    let line = vm.wait_for("BOXCAR_MARK fwcfg-flatcar", PVH_TIMEOUT).unwrap();
    assert_eq!(field(&line, "sha"), Some(expect.as_str()), "{line}");
    assert_eq!(field(&line, "size"), Some(config.len().to_string().as_str()), "{line}");
    let line = vm.wait_for("BOXCAR_MARK fwcfg-coreos", PVH_TIMEOUT).unwrap();
    assert_eq!(field(&line, "sha"), Some(expect.as_str()), "{line}");

    vm.wait_for("BOXCAR_MARK httpd ready", PVH_TIMEOUT).unwrap();
    let port = vm.host_port(80).expect("forward for port 80");
    let resp = http_get(port, "/index.html", Duration::from_secs(60)).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(String::from_utf8_lossy(&resp.body), page);
    let missing = http_get(port, "/nope.html", Duration::from_secs(30)).unwrap();
    assert_eq!(missing.status, 404);
    let resp = http_get(port, "/cgi-bin/finish", Duration::from_secs(30)).unwrap();
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));

    vm.wait_for("BOXCAR_MARK verdict", PVH_TIMEOUT).unwrap();
    assert_eq!(vm.wait_exit(PVH_TIMEOUT).unwrap(), Exit::Pass);
    eprintln!(
        "pvh: QEMU exit {:.1} s after start, {:.1} s since the test started (incl. waiting for the VM lock)",
        vm.uptime().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn failing_guest_gives_fail_verdict_log_tail_and_kept_artefacts() {
    let k = kernel();
    let token = nonce();
    let mut initrd = Initramfs::busybox().unwrap();
    initrd.init(&format!("mark about-to-fail {token}\nverdict 5"));
    let dir = tempfile::tempdir().unwrap();
    let initrd_path = dir.path().join("initrd.gz");
    initrd.write_gz(&initrd_path).unwrap();
    let name = "failing_guest_keeps_artefacts";
    let artefacts = paths::artefact_dir(name);

    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut vm = VmBuilder::new(name, pvh(&k, &initrd_path, "")).start().unwrap();
        let err = vm
            .wait_for("BOXCAR_MARK never-printed", PVH_TIMEOUT)
            .unwrap_err()
            .to_string();
        assert!(err.contains("QEMU exited"), "{err}");
        assert!(
            err.contains(&format!("about-to-fail {token}")),
            "log tail missing: {err}"
        );
        assert_eq!(vm.wait_exit(PVH_TIMEOUT).unwrap(), Exit::Fail(5));
        assert!(vm.dir().join("qemu.cmdline").is_file());
        panic!("deliberate failure {token}");
    }));
    let msg = *outcome.unwrap_err().downcast::<String>().unwrap();
    assert_eq!(
        msg,
        format!("deliberate failure {token}"),
        "an assertion failed inside the run"
    );
    let serial = std::fs::read_to_string(artefacts.join("serial.log")).unwrap();
    assert!(serial.contains(&format!("about-to-fail {token}")));
    let cmdline = std::fs::read_to_string(artefacts.join("qemu.cmdline")).unwrap();
    assert!(
        cmdline.contains("isa-debug-exit") && cmdline.contains("-kernel"),
        "{cmdline}"
    );
    assert!(artefacts.join("qemu.stderr").is_file());
    std::fs::remove_dir_all(&artefacts).unwrap();
}

/// Guest: on the first boot write a token to /dev/vda and reboot; on the
/// second (the disk holds the token) report it and pass.
const REBOOT_INIT: &str = r#"
seen=$(dd if=/dev/vda bs=16 count=1 2>/dev/null)
if [ "$seen" = "$(cmdline_arg boxcar.token)" ]; then
  mark second-boot token=$seen
  verdict 0
fi
mark first-boot
printf '%s' "$(cmdline_arg boxcar.token)" | dd of=/dev/vda bs=16 count=1 conv=fsync 2>/dev/null
reboot -f
"#;

#[test]
fn guest_reboot_resets_in_place_and_keeps_overlay_writes() {
    let k = kernel();
    let token = nonce();
    let mut initrd = Initramfs::busybox().unwrap();
    initrd
        .modules(&k, &["virtio_pci", "virtio_blk"])
        .unwrap()
        .init(REBOOT_INIT);
    let dir = tempfile::tempdir().unwrap();
    let initrd_path = dir.path().join("initrd.gz");
    initrd.write_gz(&initrd_path).unwrap();
    let disk = dir.path().join("state.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();

    let mut vm = VmBuilder::new(
        "guest_reboot_resets_in_place_and_keeps_overlay_writes",
        pvh(&k, &initrd_path, &format!("boxcar.token={token}")),
    )
    .disk(Disk::new(&disk, DiskMode::Overlay))
    .on_reboot(OnReboot::Reset)
    .start()
    .unwrap();
    vm.wait_for("BOXCAR_MARK first-boot", PVH_TIMEOUT).unwrap();
    let line = vm.wait_for("BOXCAR_MARK second-boot", PVH_TIMEOUT).unwrap();
    assert_eq!(field(&line, "token"), Some(token.as_str()), "{line}");
    assert_eq!(vm.wait_exit(PVH_TIMEOUT).unwrap(), Exit::Pass);
    assert_eq!(
        std::fs::read(&disk).unwrap(),
        vec![0u8; 1 << 20],
        "source image modified"
    );
}

#[test]
fn a_taken_fixed_host_port_fails_the_start_clearly() {
    let k = kernel();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let initrd_path = dir.path().join("initrd.gz");
    Initramfs::new().write_gz(&initrd_path).unwrap();
    let err = VmBuilder::new("a_taken_fixed_host_port", pvh(&k, &initrd_path, ""))
        .forward_fixed(80, port)
        .start()
        .unwrap_err();
    assert!(
        matches!(&err, boxcar_testbed::TestbedError::PortTaken(m) if m.contains(&port.to_string())),
        "{err}"
    );
}
