//! Starting, watching and stopping one QEMU guest.
//!
//! Everything a run writes (serial log, QEMU command line, stdout/stderr,
//! the OVMF vars copy, the Ignition config) goes to the test's artefact
//! directory, `<target>/test-artefacts/testbed/<test>/`. It is removed when
//! the [`Vm`] is dropped normally and kept when the test is panicking, so a
//! failed run leaves its logs behind. QEMU is killed on drop.

use crate::accel::Accel;
use crate::config::{qemu_escape, Boot, Disk, DiskFormat, DiskMode, IgnitionKey, Machine, OnReboot};
use crate::error::{Result, TestbedError};
use crate::exit::{decode, Exit};
use crate::serial::{tail, LogCursor};
use crate::{net, paths, qmp::Qmp, tool};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Serialises VMs within a test process: the host has 2 cores and a TCG
/// guest keeps one busy.
static VM_LOCK: Mutex<()> = Mutex::new(());

const TAIL_LINES: usize = 40;

/// Describes a VM; [`VmBuilder::start`] launches it.
#[derive(Debug, Clone)]
pub struct VmBuilder {
    name: String,
    machine: Machine,
    memory_mib: u32,
    smp: u32,
    accel: Option<Accel>,
    boot: Boot,
    disks: Vec<Disk>,
    ignition: Option<(Vec<u8>, IgnitionKey)>,
    forwards: Vec<u16>,
    debug_exit: bool,
    on_reboot: OnReboot,
    extra: Vec<String>,
}

impl VmBuilder {
    /// A VM for test `name` (names its artefact directory): 512 MiB, 1 CPU,
    /// accelerator detected at start, isa-debug-exit present, exits on reboot.
    pub fn new(name: &str, boot: Boot) -> Self {
        let machine = match boot {
            Boot::Uefi(_) => Machine::Q35,
            Boot::Direct { .. } => Machine::Pc,
        };
        VmBuilder {
            name: name.to_string(),
            machine,
            memory_mib: 512,
            smp: 1,
            accel: None,
            boot,
            disks: Vec::new(),
            ignition: None,
            forwards: Vec::new(),
            debug_exit: true,
            on_reboot: OnReboot::Exit,
            extra: Vec::new(),
        }
    }

    /// A Boxcar disk image (raw or qcow2) booted like a cloud VM: q35, OVMF
    /// (per-VM vars), 1 GiB, the image behind a qcow2 overlay (source
    /// untouched, writes kept across [`Vm::restart`]), the config on both
    /// fw_cfg names, guest reboots reset in place.
    pub fn boxcar_image(name: &str, image: &Path, config: impl Into<Vec<u8>>) -> Self {
        VmBuilder::new(name, Boot::Uefi(crate::Ovmf::debian()))
            .memory_mib(1024)
            .disk(Disk::new(image, DiskMode::Overlay))
            .ignition(config, IgnitionKey::Both)
            .on_reboot(OnReboot::Reset)
    }

    /// Machine type (default: q35 for UEFI, pc for direct boot).
    pub fn machine(mut self, m: Machine) -> Self {
        self.machine = m;
        self
    }

    /// Guest memory in MiB.
    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    /// Number of virtual CPUs.
    pub fn smp(mut self, n: u32) -> Self {
        self.smp = n.max(1);
        self
    }

    /// Overrides the detected accelerator.
    pub fn accel(mut self, a: Accel) -> Self {
        self.accel = Some(a);
        self
    }

    /// Adds a virtio-blk disk.
    pub fn disk(mut self, d: Disk) -> Self {
        self.disks.push(d);
        self
    }

    /// Passes an Ignition config through fw_cfg under `key`'s names.
    pub fn ignition(mut self, config: impl Into<Vec<u8>>, key: IgnitionKey) -> Self {
        self.ignition = Some((config.into(), key));
        self
    }

    /// Forwards a free host port on 127.0.0.1 to this guest TCP port
    /// (user-mode networking, virtio-net); see [`Vm::host_port`].
    pub fn forward(mut self, guest_port: u16) -> Self {
        self.forwards.push(guest_port);
        self
    }

    /// What a guest reboot does (default: QEMU exits).
    pub fn on_reboot(mut self, r: OnReboot) -> Self {
        self.on_reboot = r;
        self
    }

    /// Extra raw QEMU arguments.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.extra.push(a.into());
        self
    }

    /// Prepares the artefact directory and starts QEMU. Holds the VM lock
    /// until the [`Vm`] is dropped.
    pub fn start(self) -> Result<Vm> {
        self.validate()?;
        let accel = self.accel.unwrap_or_else(Accel::detect);
        let guard = VM_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let dir = paths::artefact_dir(&self.name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(TestbedError::io("clearing", &dir))?;
        }
        std::fs::create_dir_all(&dir).map_err(TestbedError::io("creating", &dir))?;
        let work = tempfile::Builder::new()
            .prefix("boxcar-vm-")
            .tempdir()
            .map_err(TestbedError::io("creating", std::env::temp_dir()))?;
        let mut ports = BTreeMap::new();
        for g in &self.forwards {
            ports.insert(*g, net::free_port()?);
        }
        let args = match self.args(accel, &dir, work.path(), &ports) {
            Ok(a) => a,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let mut vm = Vm {
            name: self.name,
            dir,
            work,
            args,
            child: None,
            cursor: LogCursor::at(0),
            unread: VecDeque::new(),
            ports,
            exit: None,
            runs: 0,
            started: Instant::now(),
            _guard: guard,
        };
        vm.spawn()?;
        Ok(vm)
    }

    /// Checks that every file the command line names exists, before
    /// anything is created or started.
    fn validate(&self) -> Result<()> {
        let mut files: Vec<(&PathBuf, &'static str)> = Vec::new();
        match &self.boot {
            Boot::Uefi(o) => {
                let hint = "install Debian's ovmf (scripts/setup.sh)";
                files.extend([(&o.code, hint), (&o.vars_template, hint)]);
            }
            Boot::Direct { kernel, initrd, .. } => {
                files.push((kernel, "kernel for direct boot"));
                files.extend(initrd.iter().map(|i| (i, "initrd for direct boot")));
            }
        }
        files.extend(self.disks.iter().map(|d| (&d.path, "disk image to attach")));
        match files.into_iter().find(|(p, _)| !p.is_file()) {
            Some((path, hint)) => Err(TestbedError::Missing {
                path: path.clone(),
                hint,
            }),
            None => Ok(()),
        }
    }

    fn args(&self, accel: Accel, dir: &Path, work: &Path, ports: &BTreeMap<u16, u16>) -> Result<Vec<String>> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |v: &[&str]| a.extend(v.iter().map(|s| s.to_string()));
        push(&["-machine", self.machine.name(), "-m", &self.memory_mib.to_string()]);
        push(&["-smp", &self.smp.to_string()]);
        match accel {
            Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
            Accel::Tcg => push(&["-accel", "tcg"]),
        }
        push(&["-display", "none", "-vga", "none", "-nodefaults"]);
        let serial = dir.join("serial.log");
        let chardev = format!("file,id=serial0,path={},append=on", qemu_escape(&serial));
        push(&["-chardev", &chardev, "-serial", "chardev:serial0"]);
        let qmp = format!("unix:{},server=on,wait=off", qemu_escape(&work.join("qmp.sock")));
        push(&["-qmp", &qmp]);
        if self.on_reboot == OnReboot::Exit {
            push(&["-no-reboot"]);
        }
        if self.debug_exit {
            push(&["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
        }
        match &self.boot {
            Boot::Uefi(ovmf) => {
                let vars = dir.join("OVMF_VARS.fd");
                std::fs::copy(&ovmf.vars_template, &vars).map_err(TestbedError::io("copying", &vars))?;
                let code = format!(
                    "if=pflash,format=raw,unit=0,readonly=on,file={}",
                    qemu_escape(&ovmf.code)
                );
                let vars = format!("if=pflash,format=raw,unit=1,file={}", qemu_escape(&vars));
                push(&["-drive", &code, "-drive", &vars]);
            }
            Boot::Direct { kernel, initrd, append } => {
                push(&["-kernel", &kernel.to_string_lossy(), "-append", append]);
                if let Some(i) = initrd {
                    push(&["-initrd", &i.to_string_lossy()]);
                }
            }
        }
        for (i, d) in self.disks.iter().enumerate() {
            a.push("-drive".into());
            a.push(drive_option(i, d, work)?);
        }
        if let Some((config, key)) = &self.ignition {
            let file = dir.join("config.ign");
            std::fs::write(&file, config).map_err(TestbedError::io("writing", &file))?;
            for name in key.names() {
                a.push("-fw_cfg".into());
                a.push(format!("name={name},file={}", qemu_escape(&file)));
            }
        }
        if ports.is_empty() {
            a.extend(["-nic".into(), "none".into()]);
        } else {
            let fwd: String = ports
                .iter()
                .map(|(g, h)| format!(",hostfwd=tcp:127.0.0.1:{h}-:{g}"))
                .collect();
            a.extend(["-netdev".into(), format!("user,id=net0{fwd}")]);
            a.extend(["-device".into(), "virtio-net-pci,netdev=net0".into()]);
        }
        a.extend(self.extra.iter().cloned());
        Ok(a)
    }
}

/// `-drive` value for disk `i`; creates the overlay for [`DiskMode::Overlay`].
fn drive_option(i: usize, d: &Disk, work: &Path) -> Result<String> {
    let (file, format, extra) = match d.mode {
        DiskMode::Snapshot => (d.path.clone(), d.format, ",snapshot=on"),
        DiskMode::Writable => (d.path.clone(), d.format, ""),
        DiskMode::Overlay => {
            let overlay = work.join(format!("disk{i}.qcow2"));
            let src = std::path::absolute(&d.path).map_err(TestbedError::io("resolving", &d.path))?;
            tool::run(
                Command::new("qemu-img")
                    .args(["create", "-q", "-f", "qcow2", "-F", d.format.name(), "-b"])
                    .arg(&src)
                    .arg(&overlay),
            )?;
            (overlay, DiskFormat::Qcow2, "")
        }
    };
    Ok(format!(
        "if=virtio,format={},file={}{extra}",
        format.name(),
        qemu_escape(&file)
    ))
}

/// A running (or exited) guest. See the module docs for artefacts.
#[derive(Debug)]
pub struct Vm {
    name: String,
    dir: PathBuf,
    work: tempfile::TempDir,
    args: Vec<String>,
    child: Option<Child>,
    cursor: LogCursor,
    /// Lines read from the log but not yet scanned by a `wait_for`.
    unread: VecDeque<String>,
    ports: BTreeMap<u16, u16>,
    exit: Option<Exit>,
    runs: u32,
    /// When the current QEMU process was started.
    started: Instant,
    _guard: MutexGuard<'static, ()>,
}

impl Vm {
    fn spawn(&mut self) -> Result<()> {
        self.runs += 1;
        let qemu = "qemu-system-x86_64";
        let mut cmd = Command::new(qemu);
        cmd.args(&self.args);
        let line = tool::describe(&cmd);
        let cmdline = self.dir.join("qemu.cmdline");
        let prev = std::fs::read_to_string(&cmdline).unwrap_or_default();
        std::fs::write(&cmdline, format!("{prev}# run {}\n{line}\n", self.runs))
            .map_err(TestbedError::io("writing", &cmdline))?;
        let out = |n: &str| {
            let p = self.dir.join(n);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(TestbedError::io("creating", p))
        };
        let (stdout, stderr) = (out("qemu.stdout")?, out("qemu.stderr")?);
        tracing::info!(vm = %self.name, run = self.runs, "starting QEMU");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|source| TestbedError::Spawn {
                tool: qemu.into(),
                source,
            })?;
        self.child = Some(child);
        self.started = Instant::now();
        self.exit = None;
        Ok(())
    }

    /// The serial console log (all runs of this VM, appended).
    pub fn serial_log(&self) -> PathBuf {
        self.dir.join("serial.log")
    }

    /// The qcow2 overlay of disk `index` (0 = `/dev/vda`) when it was added
    /// with [`DiskMode::Overlay`]: where the guest's writes went. Read it
    /// back with `qemu-img convert` after power-off.
    pub fn overlay(&self, index: usize) -> Option<PathBuf> {
        let p = self.work.path().join(format!("disk{index}.qcow2"));
        p.is_file().then_some(p)
    }

    /// Time since the current QEMU process started (boot timings).
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// This VM's artefact directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The VM's copy of the OVMF vars (UEFI boots only).
    pub fn vars_file(&self) -> Option<PathBuf> {
        let p = self.dir.join("OVMF_VARS.fd");
        p.is_file().then_some(p)
    }

    /// Host port forwarded to `guest_port` (declared with
    /// [`VmBuilder::forward`]).
    pub fn host_port(&self, guest_port: u16) -> Option<u16> {
        self.ports.get(&guest_port).copied()
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("qemu.stderr")).unwrap_or_default()
    }

    /// Records and returns the exit if QEMU has ended.
    fn poll_exit(&mut self) -> Result<Option<Exit>> {
        if let Some(e) = &self.exit {
            return Ok(Some(e.clone()));
        }
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let status = child
            .try_wait()
            .map_err(TestbedError::io("waiting for", "qemu-system-x86_64"))?;
        Ok(status.map(|s| {
            let e = decode(s.code(), &self.stderr_text());
            tracing::info!(vm = %self.name, exit = ?e, "QEMU exited");
            self.exit = Some(e.clone());
            e
        }))
    }

    /// Waits until a console line contains `marker` and returns that line.
    /// Lines are consumed: the next call scans from the line after it.
    /// Fails with the log tail on timeout or when QEMU exits first.
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) -> Result<String> {
        self.wait_for_any(&[marker], timeout).map(|(_, line)| line)
    }

    /// Like [`Vm::wait_for`] for the first line containing any of
    /// `markers` (e.g. a success and a failure marker); returns which one
    /// (its index) and the line.
    pub fn wait_for_any(&mut self, markers: &[&str], timeout: Duration) -> Result<(usize, String)> {
        let start = Instant::now();
        let log = self.serial_log();
        let find = |line: &str| markers.iter().position(|m| line.contains(m));
        loop {
            let exited = self.poll_exit()?;
            let new = self.cursor.poll(&log)?;
            self.unread.extend(new);
            while let Some(line) = self.unread.pop_front() {
                if let Some(i) = find(&line) {
                    tracing::debug!(vm = %self.name, %line, secs = start.elapsed().as_secs_f64(), "marker");
                    return Ok((i, line));
                }
            }
            let why = match exited {
                Some(e) => match find(&self.cursor.pending()) {
                    Some(i) => return Ok((i, self.cursor.pending())),
                    None => format!("QEMU exited: {e:?}"),
                },
                None if start.elapsed() >= timeout => "timeout".into(),
                None => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            return Err(TestbedError::MarkerTimeout {
                marker: markers.join(" | "),
                secs: timeout.as_secs(),
                why,
                tail: tail(&log, TAIL_LINES),
                log,
            });
        }
    }

    /// Waits for QEMU to exit by itself (guest verdict or power-off).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Exit> {
        let start = Instant::now();
        loop {
            if let Some(e) = self.poll_exit()? {
                return Ok(e);
            }
            if start.elapsed() >= timeout {
                return Err(TestbedError::ExitTimeout {
                    secs: timeout.as_secs(),
                    log: self.serial_log(),
                    tail: tail(&self.serial_log(), TAIL_LINES),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clean shutdown: QMP `system_powerdown` (ACPI button), then `quit`
    /// if the guest has not powered off within `grace`, then kill.
    pub fn powerdown(&mut self, grace: Duration) -> Result<Exit> {
        if let Some(e) = self.poll_exit()? {
            return Ok(e);
        }
        let sock = self.work.path().join("qmp.sock");
        let mut qmp = Qmp::connect(&sock, Duration::from_secs(10))?;
        qmp.execute("system_powerdown")?;
        if let Ok(e) = self.wait_exit(grace) {
            return Ok(e);
        }
        tracing::info!(vm = %self.name, "guest ignored power-down; QMP quit");
        let _ = qmp.execute("quit");
        match self.wait_exit(Duration::from_secs(10)) {
            Ok(e) => Ok(e),
            Err(_) => {
                self.kill();
                self.wait_exit(Duration::from_secs(10))
            }
        }
    }

    /// Starts QEMU again with the same disks, overlays and OVMF vars after
    /// it exited: a reboot of the same machine. The serial log continues.
    pub fn restart(&mut self) -> Result<()> {
        if self.poll_exit()?.is_none() {
            return Err(TestbedError::Invalid {
                what: "restart",
                cause: format!("VM {} is still running; power it down first", self.name),
            });
        }
        self.spawn()
    }

    /// Kills QEMU (SIGKILL) if it is running.
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("testbed: VM {} failed; logs kept in {}", self.name, self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_inputs_are_named_and_nothing_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let kernel = dir.path().join("vmlinux");
        std::fs::write(&kernel, b"x").unwrap();
        let boot = Boot::Direct {
            kernel,
            initrd: Some(dir.path().join("missing-initrd.gz")),
            append: String::new(),
        };
        let name = "unit_missing_inputs";
        let err = VmBuilder::new(name, boot).start().unwrap_err().to_string();
        assert!(err.contains("missing-initrd.gz") && err.contains("initrd"), "{err}");
        assert!(!paths::artefact_dir(name).exists());
        let err = VmBuilder::new(name, Boot::Uefi(crate::Ovmf::debian()))
            .disk(Disk::new(dir.path().join("nope.qcow2"), DiskMode::Overlay))
            .start()
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope.qcow2"), "{err}");
    }
}
