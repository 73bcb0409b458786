//! The VM description: machine, accelerator, firmware or direct kernel,
//! disks, Ignition config, network. Pure data; [`crate::Vm`] turns it into
//! a QEMU command line.

use std::path::{Path, PathBuf};

/// QEMU machine type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// i440FX: what PVH direct boot was measured on.
    Pc,
    /// Q35: needed for OVMF's pflash vars.
    Q35,
}

impl Machine {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Machine::Pc => "pc",
            Machine::Q35 => "q35",
        }
    }
}

/// UEFI firmware: read-only code and a vars template. Each VM gets its own
/// copy of the vars, kept across restarts of that VM (boot counting and
/// `LoaderBootCountPath` live there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ovmf {
    pub code: PathBuf,
    pub vars_template: PathBuf,
}

impl Ovmf {
    /// Debian's `ovmf` 4 MiB build without Secure Boot.
    pub fn debian() -> Self {
        Ovmf {
            code: "/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
            vars_template: "/usr/share/OVMF/OVMF_VARS_4M.fd".into(),
        }
    }
}

/// How the guest starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// Firmware from the disks (OVMF → systemd-boot → UKI).
    Uefi(Ovmf),
    /// `-kernel/-initrd/-append`; with an ELF vmlinux this is PVH.
    Direct {
        kernel: PathBuf,
        initrd: Option<PathBuf>,
        append: String,
    },
}

/// Image format of a disk file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Raw,
    Qcow2,
}

impl DiskFormat {
    pub(crate) fn name(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
        }
    }
}

/// What guest writes do to the source image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskMode {
    /// QEMU's `snapshot=on`: writes go to a temporary file and are lost at
    /// every QEMU exit (also across [`crate::Vm::restart`]).
    Snapshot,
    /// A qcow2 overlay in the VM's work directory backed by the image:
    /// writes survive restarts of the same VM; the source is untouched.
    Overlay,
    /// Writes go to the image itself (the test owns a copy and reads it
    /// back after power-off, e.g. the ESP after boot counting).
    Writable,
}

/// One virtio-blk disk (`/dev/vda`, `/dev/vdb`, … in the order added).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub path: PathBuf,
    pub format: DiskFormat,
    pub mode: DiskMode,
}

impl Disk {
    /// A disk with the format guessed from the extension (`.qcow2` or raw).
    pub fn new(path: impl AsRef<Path>, mode: DiskMode) -> Self {
        let path = path.as_ref().to_path_buf();
        let format = if path.extension().is_some_and(|e| e == "qcow2") {
            DiskFormat::Qcow2
        } else {
            DiskFormat::Raw
        };
        Disk { path, format, mode }
    }
}

/// Which fw_cfg names carry the Ignition config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnitionKey {
    /// `opt/org.flatcar-linux/config` (what Flatcar reads).
    Flatcar,
    /// `opt/com.coreos/config` (upstream Ignition, Fedora CoreOS).
    CoreOs,
    /// Both names, same content.
    Both,
}

impl IgnitionKey {
    /// The fw_cfg names for this choice.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            IgnitionKey::Flatcar => &["opt/org.flatcar-linux/config"],
            IgnitionKey::CoreOs => &["opt/com.coreos/config"],
            IgnitionKey::Both => &["opt/org.flatcar-linux/config", "opt/com.coreos/config"],
        }
    }
}

/// What a guest-initiated reboot does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnReboot {
    /// QEMU exits (`-no-reboot`); the test decides, e.g. with
    /// [`crate::Vm::restart`]. A kernel panic with `panic=-1` ends the run.
    Exit,
    /// The VM resets in place (update and rollback scenarios).
    Reset,
}

/// Escapes a value for a QEMU `-drive`/`-fw_cfg` option list (`,` → `,,`).
pub fn qemu_escape(p: &Path) -> String {
    p.to_string_lossy().replace(',', ",,")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_format_from_extension() {
        assert_eq!(Disk::new("a.qcow2", DiskMode::Snapshot).format, DiskFormat::Qcow2);
        assert_eq!(Disk::new("a.img", DiskMode::Writable).format, DiskFormat::Raw);
    }

    #[test]
    fn commas_are_doubled() {
        assert_eq!(qemu_escape(Path::new("/t/a,b")), "/t/a,,b");
    }
}
