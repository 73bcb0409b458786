//! Describing a VM and turning the description into a QEMU command line.

use crate::accel::Accel;
use crate::config::{qemu_escape, Boot, Disk, DiskFormat, DiskMode, IgnitionKey, Machine, OnReboot};
use crate::error::{Result, TestbedError};
use crate::vm::Vm;
use crate::{net, paths, tool};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
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
    /// Guest port → host port (`None`: pick a free one at start).
    forwards: Vec<(u16, Option<u16>)>,
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
    /// (per-VM vars), 2 GiB, 2 CPUs, the image behind a qcow2 overlay (source
    /// untouched, writes kept across [`Vm::restart`]), the config on both
    /// fw_cfg names, guest reboots reset in place.
    pub fn boxcar_image(name: &str, image: &Path, config: impl Into<Vec<u8>>) -> Self {
        VmBuilder::new(name, Boot::Uefi(crate::Ovmf::debian()))
            .memory_mib(2048)
            .smp(2)
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
        self.forwards.push((guest_port, None));
        self
    }

    /// Forwards a fixed host port on 127.0.0.1 (e.g. for a demo a person
    /// opens in a browser). A taken port fails the start with
    /// [`TestbedError::PortTaken`]; there is no retry.
    pub fn forward_fixed(mut self, guest_port: u16, host_port: u16) -> Self {
        self.forwards.push((guest_port, Some(host_port)));
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
    /// until the [`Vm`] is dropped. With port forwards, waits until QEMU
    /// answers on QMP (its set-up is done) and retries with new host ports
    /// if one was taken between choosing and binding it.
    pub fn start(self) -> Result<Vm> {
        self.validate()?;
        let accel = self.accel.unwrap_or_else(Accel::detect);
        const ATTEMPTS: u32 = 3;
        for attempt in 1..=ATTEMPTS {
            let mut vm = self.clone().start_once(accel)?;
            if self.forwards.is_empty() {
                return Ok(vm);
            }
            match vm.await_setup(Duration::from_secs(60)) {
                Err(TestbedError::PortTaken(msg)) if attempt < ATTEMPTS && self.only_picked_ports() => {
                    tracing::info!(%msg, attempt, "host port taken; retrying with new ports");
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok(vm),
            }
        }
        unreachable!("the last attempt returns")
    }

    fn only_picked_ports(&self) -> bool {
        self.forwards.iter().all(|(_, h)| h.is_none())
    }

    fn start_once(self, accel: Accel) -> Result<Vm> {
        let guard = crate::vm::lock();
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
        for (g, h) in &self.forwards {
            let host = match h {
                Some(h) => *h,
                None => net::free_port()?,
            };
            ports.insert(*g, host);
        }
        let args = match self.args(accel, &dir, work.path(), &ports) {
            Ok(a) => a,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        Vm::launch(self.name, dir, work, args, ports, guard)
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
