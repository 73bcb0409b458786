//! The end-to-end demo behind `scripts/demo.sh` (the README's main command):
//! build Boxcar images N and N+1, start the update server with its embedded
//! database, boot a VM from `examples/demo.bu`, print the page its container
//! serves, publish N+1, follow the update (server status and the node's
//! console) through the reboot to the new version, and say how long each
//! step took.
//!
//! It reuses the scenario tests' host side (`tests/scenario/`): the same
//! image cache, update server and file server, so the demo and the tests
//! cannot drift apart. Run as root: `cargo run -p boxcar-testbed --example demo`.

#[path = "../tests/scenario/mod.rs"]
mod scenario;

use boxcar_server::model::InstanceStatus;
use boxcar_testbed::{net, tool, VmBuilder};
use scenario::{images, servers};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// One boot of the image under emulation (TCG) on a small machine.
const BOOT: Duration = Duration::from_secs(900);
/// Console lines that mean the boot went wrong.
const FAILED: [&str; 3] = ["BOXCAR_PROVISION_FAILED", "Kernel panic", "emergency mode"];

/// Collects the duration of each step for the summary.
struct Steps {
    start: Instant,
    last: Instant,
    done: Vec<(String, Duration)>,
}

impl Steps {
    fn new() -> Steps {
        let now = Instant::now();
        Steps {
            start: now,
            last: now,
            done: Vec::new(),
        }
    }

    fn finish(&mut self, what: &str) {
        let took = self.last.elapsed();
        self.last = Instant::now();
        println!("==> {what}: done in {:.0} s", took.as_secs_f64());
        self.done.push((what.to_string(), took));
    }

    fn summary(&self) {
        println!("\nStep times:");
        for (what, took) in &self.done {
            println!("  {:>6.0} s  {what}", took.as_secs_f64());
        }
        println!("  {:>6.0} s  total", self.start.elapsed().as_secs_f64());
    }
}

/// A console line without the kernel timestamp, the journal's prefix and
/// the log's time and level (`[  12.3] boxcar-updated[315]: 2026-… INFO target: msg`
/// → `boxcar-updated: msg`).
fn node_line(line: &str) -> String {
    let line = line.trim();
    let line = match line.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((_, rest)) => rest,
        None => line,
    };
    let Some((unit, msg)) = line.split_once(": ") else {
        return line.to_string();
    };
    let unit = unit.split('[').next().unwrap_or(unit);
    // tracing's "<time>  INFO <target>: <message>"
    let msg = msg
        .split_once(" INFO ")
        .or_else(|| msg.split_once(" WARN "))
        .and_then(|(_, rest)| rest.split_once(": "))
        .map(|(_, m)| m)
        .unwrap_or(msg);
    format!("{unit}: {msg}")
}

fn say(what: &str) {
    println!("\n==> {what}");
}

/// The update settings layered over examples/demo.bu: the server on the
/// host (10.0.2.2 in QEMU user networking), a quick first check, reboot as
/// soon as an update is staged, the update agent's and reboot coordinator's
/// log on the console (the demo shows their progress lines), and a console
/// line with the running version once the boot was marked good.
fn update_overlay(server_url: &str) -> String {
    let provision_time = scenario::indent(scenario::provision_time::SCRIPT, 10);
    format!(
        r#"variant: flatcar
version: 1.1.0
storage:
  files:
    - path: /etc/boxcar/update.conf
      mode: 0644
      contents:
        inline: |
          SERVER={server_url}
          GROUP=stable
          REBOOT_STRATEGY=reboot
    - path: /etc/demo/provision-time.sh
      mode: 0755
      contents:
        inline: |
{provision_time}    - path: /etc/boxcar/updated.env
      mode: 0644
      contents:
        inline: |
          BOXCAR_UPDATED_FIRST_CHECK=5
          BOXCAR_UPDATED_INTERVAL=20
          BOXCAR_UPDATED_FUZZ=0
systemd:
  units:
    - name: boxcar-updated.service
      dropins:
        - name: 50-console.conf
          contents: |
            [Service]
            StandardError=journal+console
    - name: boxcar-reboot.service
      dropins:
        - name: 50-console.conf
          contents: |
            [Service]
            StandardError=journal+console
    # How long the initrd's provisioning units took in this boot (from the journal the
    # initrd hands over): first start to last finish, in seconds of kernel time.
    - name: demo-provision-time.service
      enabled: true
      contents: |
        [Unit]
        After=multi-user.target
        [Service]
        Type=oneshot
        ExecStart=/bin/sh -c 'echo BOXCAR_PROVISION_TIME $(/etc/demo/provision-time.sh) > /dev/ttyS0'
        [Install]
        WantedBy=multi-user.target
    - name: demo-running.service
      enabled: true
      contents: |
        [Unit]
        After=multi-user.target boxcar-mark-good.service
        [Service]
        Type=oneshot
        ExecStart=/bin/sh -c 'echo BOXCAR_RUNNING $(grep ^VERSION_ID= /usr/lib/os-release) entries: $(ls /boot/EFI/Linux) > /dev/ttyS0'
        [Install]
        WantedBy=multi-user.target
"#
    )
}

/// examples/demo.bu with its files (the page and the container's root file
/// system, busybox alone) plus the update overlay, translated by our own
/// `boxcar butane`.
fn node_config(boxcar: &Path, work: &Path, server_url: &str) -> anyhow::Result<Vec<u8>> {
    let examples = images::workspace().join("examples");
    let files = work.join("files");
    std::fs::create_dir_all(files.join("demo"))?;
    std::fs::copy(examples.join("files/demo/index.html"), files.join("demo/index.html"))?;
    let rootfs = work.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin"))?;
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))?;
    tool::run(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(files.join("demo/httpd-rootfs.tar"))
            .arg("."),
    )?;
    let overlay = work.join("update.bu");
    std::fs::write(&overlay, update_overlay(server_url))?;
    Ok(tool::run(
        Command::new(boxcar)
            .args(["butane", "--strict", "--files-dir"])
            .arg(&files)
            .arg(examples.join("demo.bu"))
            .arg(&overlay),
    )?)
}

/// How far the demo goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Build, boot, provision, serve the page (`--no-update`).
    Provision,
    /// Also publish N+1 and follow the update through the reboot (the default).
    Update,
}

const USAGE: &str = "usage: demo [--no-update]

Builds Boxcar images N and N+1, starts the update server, boots N in QEMU with
examples/demo.bu and prints the page its container serves; then publishes N+1
and follows the node through the download, the reboot and the new version, and
says how long each step took. --no-update stops after the page.";

fn main() -> anyhow::Result<()> {
    let scope = match std::env::args().nth(1).as_deref() {
        None | Some("--update") => Scope::Update,
        Some("--no-update") => Scope::Provision,
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return Ok(());
        }
        Some(other) => anyhow::bail!("unknown argument {other:?} (try --help)"),
    };
    let mut steps = Steps::new();

    say("Building the Boxcar image (Debian packages, erofs /usr + dm-verity, UKI, systemd-boot, signed payload; cached)");
    let bins = images::binaries();
    let n = images::build(&bins, 0, None, &[".raw"]);
    println!("    N   = {}  ({})", n.version, n.file(".raw").display());
    steps.finish("build image N");
    // N+1 only needs its payload; it is built while N boots.
    let n1 = (scope == Scope::Update).then(|| {
        let b = bins.clone();
        std::thread::spawn(move || images::build(&b, 1, None, &[".bxp"]))
    });

    say("Starting the update server (SQLite) and a file server for payloads");
    let server = servers::UpdateServer::start();
    let served = tempfile::tempdir()?;
    let files = servers::FileServer::start(served.path().to_path_buf());
    println!("    Omaha endpoint for the node: {}", server.guest_url());
    let work = tempfile::tempdir_in("/var/tmp")?;
    let config = node_config(&bins.join("boxcar"), work.path(), &server.guest_url())?;
    steps.finish("start server, translate examples/demo.bu");

    say(&format!(
        "Booting {} in QEMU (OVMF → systemd-boot → UKI), provisioning from examples/demo.bu",
        n.version
    ));
    let mut vm = VmBuilder::boxcar_image("demo", &n.file(".raw"), config)
        .forward(8080)
        .start()?;
    println!("    serial console: {}", vm.serial_log().display());
    let running = format!("BOXCAR_RUNNING VERSION_ID=\"{}\"", n.version);
    let (mut line, mut provision) = (None, None);
    while line.is_none() || provision.is_none() {
        let mut all = vec![running.as_str(), "BOXCAR_PROVISION_TIME"];
        all.extend(FAILED);
        let (which, l) = vm.wait_for_any(&all, BOOT)?;
        match which {
            0 => line = Some(l),
            1 => provision = Some(l),
            _ => anyhow::bail!("the boot failed: {l}"),
        }
    }
    println!("    {}", line.unwrap_or_default());
    if let Some(p) = provision {
        println!(
            "    provisioning in the initrd: {}",
            p.trim().trim_start_matches("BOXCAR_PROVISION_TIME ")
        );
    }
    steps.finish(&format!("first boot of {} with provisioning", n.version));

    say("Fetching the page the node serves from its podman container");
    let port = vm.host_port(8080).expect("port 8080 is forwarded");
    let page = {
        let end = Instant::now() + Duration::from_secs(600);
        loop {
            match net::http_get(port, "/index.html", Duration::from_secs(10)) {
                Ok(r) if r.status == 200 => break r.body,
                other => {
                    anyhow::ensure!(Instant::now() < end, "page not served: {other:?}");
                    std::thread::sleep(Duration::from_secs(3));
                }
            }
        }
    };
    println!("    GET http://127.0.0.1:{port}/index.html →\n");
    println!("{}", String::from_utf8_lossy(&page));
    steps.finish("page served from the container");

    let Some(n1) = n1 else {
        vm.powerdown(Duration::from_secs(180))?;
        steps.finish("power off");
        steps.summary();
        return Ok(());
    };
    let n1 = n1
        .join()
        .map_err(|_| anyhow::anyhow!("building N+1 failed (see above)"))?;
    println!("    N+1 = {}  ({})", n1.version, n1.file(".bxp").display());
    steps.finish("build N+1 (while N booted)");

    say(&format!("Publishing {} on the stable channel", n1.version));
    let payload = n1.file(".bxp");
    std::os::unix::fs::symlink(&payload, served.path().join(payload.file_name().unwrap()))?;
    server.publish(&n1.version, &files.guest_base(), &payload);
    steps.finish("publish");

    say("Following the update: server status of the node, then the reboot");
    let want = format!("BOXCAR_RUNNING VERSION_ID=\"{}\"", n1.version);
    let mut last = None;
    let end = Instant::now() + BOOT * 2;
    let running = loop {
        if let Some(i) = server.instance() {
            if last != Some(i.status) {
                println!(
                    "    {:>6.0} s  server: instance {} is {:?} (running {})",
                    steps.start.elapsed().as_secs_f64(),
                    i.machine_id,
                    i.status,
                    i.version
                );
                last = Some(i.status);
            }
        }
        let progress = [
            want.as_str(),
            "update offered",
            "downloading and writing the update",
            "payload downloaded and verified",
            "read-back verified",
            "update staged; reboot needed",
            "rebooting strategy",
            "reboot: Restarting system",
            "Welcome to",
        ];
        match vm.wait_for_any(&progress, Duration::from_secs(2)) {
            Ok((0, line)) => break line,
            Ok((_, line)) => println!(
                "    {:>6.0} s  node: {}",
                steps.start.elapsed().as_secs_f64(),
                node_line(&line)
            ),
            Err(_) if Instant::now() < end => {}
            Err(e) => return Err(e.into()),
        }
    };
    println!("    {running}");
    steps.finish(&format!("stage {} into USR-B, reboot, come up", n1.version));

    let inst = {
        let end = Instant::now() + Duration::from_secs(180);
        loop {
            match server.instance() {
                Some(i) if i.status == InstanceStatus::Complete => break i,
                _ if Instant::now() < end => std::thread::sleep(Duration::from_secs(2)),
                other => anyhow::bail!("the server never saw the update complete: {other:?}"),
            }
        }
    };
    println!(
        "    server: instance {} is {:?} on {}",
        inst.machine_id, inst.status, inst.version
    );
    steps.finish("server shows the update complete");

    vm.powerdown(Duration::from_secs(180))?;
    steps.finish("power off");
    steps.summary();
    Ok(())
}
