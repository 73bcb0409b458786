//! The `fcos` variant's own sugar: `boot_device` (a mirrored and/or
//! LUKS-encrypted root disk) and `grub.users` (GRUB superusers).
//!
//! Butane renders these into plain Ignition sections and merges the user's
//! config *over* them, so anything the user spells out explicitly wins. The
//! layout mirrors Fedora CoreOS's disk image: BIOS boot (x86_64) or PReP
//! (ppc64le) or a reserved partition, then ESP, `boot`, `root`.

use super::variant::{requirement_label, Target, Variant};
use crate::dataurl::{self, AutoCompress};
use crate::decode::{Decoder, ScalarRules};
use crate::model::{Clevis, Config, Disk, Filesystem, Luks, Partition, Raid, Resource, Tang};
use crate::path::Path;
use crate::report::{PathNaming, Report};
use crate::tree::{Entry, Node, Value};
use crate::version::SpecVersion;

const RESERVED_TYPE_GUID: &str = "8DA63339-0007-60C0-C436-083AC8230908";
const BIOS_TYPE_GUID: &str = "21686148-6449-6E6F-744E-656564454649";
const PREP_TYPE_GUID: &str = "9E1A2D38-C612-4316-AA26-8B49521E5A8B";
const ESP_TYPE_GUID: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const RESERVED_MIB: i64 = 1;
const BIOS_MIB: i64 = 1;
const PREP_MIB: i64 = 4;
const ESP_MIB: i64 = 127;
const BOOT_MIB: i64 = 384;

/// The firmware layout of the boot disk; it decides the first partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    X86_64,
    Aarch64,
    Ppc64le,
}

/// `boot_device` as written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BootDevice {
    /// `None`: not given (x86_64 is assumed, with a warning when mirroring).
    pub layout: Option<Layout>,
    pub luks_discard: Option<bool>,
    pub luks_tang: Vec<Tang>,
    pub luks_threshold: Option<i64>,
    pub luks_tpm2: Option<bool>,
    pub mirror_devices: Vec<String>,
}

/// One `grub.users` entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GrubUser {
    pub name: String,
    pub password_hash: String,
}

/// The sugar taken out of one fcos document, with its source tree so
/// diagnostics point at the YAML.
#[derive(Debug, Default)]
pub struct Sugar {
    pub boot: BootDevice,
    pub grub: Vec<GrubUser>,
    /// The removed `boot_device`/`grub` entries, for positions.
    pub tree: Option<Node>,
}

impl BootDevice {
    fn wants_luks(&self) -> bool {
        self.luks_tpm2 == Some(true) || !self.luks_tang.is_empty()
    }
    fn wants_mirror(&self) -> bool {
        !self.mirror_devices.is_empty()
    }
}

/// Remove `boot_device` (and `grub`, from fcos 1.5.0) from `doc`, decode and
/// check them. Diagnostics go to `r` with YAML positions. Other variants are
/// left alone (their decoder reports these keys as unused).
pub fn take(doc: &mut Node, target: Target, r: &mut Report) -> Sugar {
    if target.variant != Variant::Fcos {
        return Sugar::default();
    }
    let mut keys = vec!["boot_device"];
    if target.spec >= SpecVersion::V3_4 {
        keys.push("grub");
    }
    let mut taken: Vec<Entry> = keys.iter().filter_map(|k| doc.remove(k)).collect();
    if taken.is_empty() {
        return Sugar::default();
    }
    taken.sort_by_key(|e| e.key_pos);
    let tree = Node::new(Value::Map(taken), doc.pos);
    let mut sr = Report::new();
    let sugar = {
        let mut d = Decoder::new(target.spec, ScalarRules::Yaml, &mut sr);
        d.label = requirement_label;
        let boot = tree
            .get("boot_device")
            .map(|n| boot_device(&mut d, n))
            .unwrap_or_default();
        let grub = tree.get("grub").map(|n| grub(&mut d, n)).unwrap_or_default();
        Sugar { boot, grub, tree: None }
    };
    check(&sugar, &tree, &mut sr);
    sr.correlate(&tree, PathNaming::Yaml);
    r.merge(sr);
    Sugar {
        tree: Some(tree),
        ..sugar
    }
}

/// Point diagnostics about the rendered LUKS volume's clevis settings
/// (always `storage.luks.0`, the rendered list comes first) at the
/// `boot_device.luks` the user wrote.
pub fn relocate(s: &Sugar, r: &mut Report) {
    let Some(tree) = &s.tree else { return };
    if !s.boot.wants_luks() {
        return;
    }
    let rendered = Path::root().keys(&["storage", "luks"]).index(0).key("clevis");
    for d in r.entries.iter_mut().filter(|d| d.pos.is_none()) {
        if !d.path.starts_with(&rendered) {
            continue;
        }
        let rest = &d.path.segments()[rendered.segments().len()..];
        let mut segs = Path::root().keys(&["boot_device", "luks"]).segments().to_vec();
        segs.extend_from_slice(rest);
        let user = Path::from_segments(segs);
        let loc = tree.locate(&user);
        d.pos = Some(loc.node.pos);
        d.shown_path = Some(user);
    }
}

fn boot_device(d: &mut Decoder, n: &Node) -> BootDevice {
    let p = Path::root().key("boot_device");
    let Some(mut o) = d.object(n, &p) else {
        return BootDevice::default();
    };
    let mut b = BootDevice::default();
    if let Some((ln, lp)) = d.get(&mut o, "layout", SpecVersion::V3_0) {
        b.layout = match d.to_string(ln, &lp).as_deref() {
            Some("x86_64") => Some(Layout::X86_64),
            Some("aarch64") => Some(Layout::Aarch64),
            Some("ppc64le") => Some(Layout::Ppc64le),
            Some(_) => {
                d.report.error(lp, "layout must be one of: aarch64, ppc64le, x86_64");
                None
            }
            None => None,
        };
    }
    if let Some((ln, lp)) = d.get(&mut o, "luks", SpecVersion::V3_0) {
        if let Some(mut lo) = d.object(ln, &lp) {
            b.luks_discard = d.bool_since(&mut lo, "discard", SpecVersion::V3_4);
            b.luks_tang = d.list(&mut lo, "tang", SpecVersion::V3_0, |d, n, p| {
                let Some(mut o) = d.object(n, p) else {
                    return Tang::default();
                };
                let t = Tang {
                    advertisement: d.str_since(&mut o, "advertisement", SpecVersion::V3_4),
                    thumbprint: d.str(&mut o, "thumbprint"),
                    url: d.str(&mut o, "url").unwrap_or_default(),
                };
                d.finish(o);
                t
            });
            b.luks_threshold = d.int(&mut lo, "threshold");
            b.luks_tpm2 = d.bool(&mut lo, "tpm2");
            d.finish(lo);
        }
    }
    if let Some((mn, mp)) = d.get(&mut o, "mirror", SpecVersion::V3_0) {
        if let Some(mut mo) = d.object(mn, &mp) {
            b.mirror_devices = d.str_list(&mut mo, "devices", SpecVersion::V3_0);
            d.finish(mo);
        }
    }
    d.finish(o);
    b
}

fn grub(d: &mut Decoder, n: &Node) -> Vec<GrubUser> {
    let p = Path::root().key("grub");
    let Some(mut o) = d.object(n, &p) else {
        return Vec::new();
    };
    let users = d.list(&mut o, "users", SpecVersion::V3_4, |d, n, p| {
        let Some(mut o) = d.object(n, p) else {
            return GrubUser::default();
        };
        let u = GrubUser {
            name: d.str(&mut o, "name").unwrap_or_default(),
            password_hash: d.str(&mut o, "password_hash").unwrap_or_default(),
        };
        d.finish(o);
        u
    });
    d.finish(o);
    users
}

/// Butane's checks on the sugar itself (the rendered config is validated
/// with everything else).
fn check(s: &Sugar, tree: &Node, r: &mut Report) {
    let bd = Path::root().key("boot_device");
    if s.boot.wants_mirror() && s.boot.layout.is_none() && !tree.locate(&bd.key("layout")).complete {
        r.warning(
            bd.key("mirror"),
            "boot_device.layout should be specified when boot_device.mirror is specified",
        );
    }
    if s.boot.mirror_devices.len() == 1 {
        r.error(
            bd.keys(&["mirror", "devices"]),
            "mirroring requires at least two devices",
        );
    }
    for (i, u) in s.grub.iter().enumerate() {
        let up = Path::root().keys(&["grub", "users"]).index(i);
        if u.name.is_empty() {
            r.error(up.key("name"), "field \"name\" is required");
        }
        if u.password_hash.is_empty() {
            r.error(up.key("password_hash"), "field \"password_hash\" is required");
        }
    }
}

/// The Ignition sections `boot_device` stands for, in Butane's order:
/// disks (one per mirror device), ESP filesystems, the RAIDs, the boot
/// filesystem, the LUKS volume, and the root filesystem.
pub fn render_boot_device(b: &BootDevice) -> Config {
    let mut c = Config::default();
    let (mirror, luks) = (b.wants_mirror(), b.wants_luks());
    if !mirror && !luks {
        return c;
    }
    let layout = b.layout.unwrap_or(Layout::X86_64);
    let part = |label: String, size: i64, type_guid: Option<&str>| Partition {
        label: Some(label),
        size_mib: Some(size),
        type_guid: type_guid.map(str::to_string),
        ..Default::default()
    };
    if mirror {
        for (i, device) in b.mirror_devices.iter().enumerate() {
            let n = i + 1;
            let mut partitions = vec![match layout {
                Layout::X86_64 => part(format!("bios-{n}"), BIOS_MIB, Some(BIOS_TYPE_GUID)),
                Layout::Ppc64le => part(format!("prep-{n}"), PREP_MIB, Some(PREP_TYPE_GUID)),
                Layout::Aarch64 => part(format!("reserved-{n}"), RESERVED_MIB, Some(RESERVED_TYPE_GUID)),
            }];
            partitions.push(match layout {
                Layout::Ppc64le => part(format!("reserved-{n}"), RESERVED_MIB, Some(RESERVED_TYPE_GUID)),
                _ => part(format!("esp-{n}"), ESP_MIB, Some(ESP_TYPE_GUID)),
            });
            partitions.push(part(format!("boot-{n}"), BOOT_MIB, None));
            partitions.push(Partition {
                label: Some(format!("root-{n}")),
                ..Default::default()
            });
            c.storage.disks.push(Disk {
                device: device.clone(),
                partitions,
                wipe_table: Some(true),
            });
            if layout != Layout::Ppc64le {
                c.storage.filesystems.push(Filesystem {
                    device: format!("/dev/disk/by-partlabel/esp-{n}"),
                    format: Some("vfat".into()),
                    label: Some(format!("esp-{n}")),
                    wipe_filesystem: Some(true),
                    ..Default::default()
                });
            }
        }
        let members = |prefix: &str| {
            (1..=b.mirror_devices.len())
                .map(|n| format!("/dev/disk/by-partlabel/{prefix}-{n}"))
                .collect::<Vec<_>>()
        };
        c.storage.raid = vec![
            Raid {
                devices: members("boot"),
                level: Some("raid1".into()),
                name: "md-boot".into(),
                // Superblock at the end, so BIOS GRUB reads the partition
                // as a plain filesystem.
                options: vec!["--metadata=1.0".into()],
                spares: None,
            },
            Raid {
                devices: members("root"),
                level: Some("raid1".into()),
                name: "md-root".into(),
                options: vec![],
                spares: None,
            },
        ];
        c.storage.filesystems.push(Filesystem {
            device: "/dev/md/md-boot".into(),
            format: Some("ext4".into()),
            label: Some("boot".into()),
            wipe_filesystem: Some(true),
            ..Default::default()
        });
    }
    if luks {
        c.storage.luks.push(Luks {
            clevis: Clevis {
                tang: b.luks_tang.clone(),
                threshold: b.luks_threshold,
                tpm2: b.luks_tpm2,
                ..Default::default()
            },
            device: Some(
                if mirror {
                    "/dev/md/md-root"
                } else {
                    "/dev/disk/by-partlabel/root"
                }
                .into(),
            ),
            discard: b.luks_discard,
            label: Some("luks-root".into()),
            name: "root".into(),
            wipe_volume: Some(true),
            ..Default::default()
        });
    }
    c.storage.filesystems.push(Filesystem {
        device: if luks { "/dev/mapper/root" } else { "/dev/md/md-root" }.into(),
        format: Some("xfs".into()),
        label: Some("root".into()),
        wipe_filesystem: Some(true),
        ..Default::default()
    });
    c
}

/// `grub.users` as `/boot/grub2/user.cfg`, appended on the `boot`
/// filesystem, which is declared mounted at /boot.
pub fn render_grub(users: &[GrubUser]) -> Config {
    let mut c = Config::default();
    if users.is_empty() {
        return c;
    }
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    let cmds: Vec<String> = users
        .iter()
        .map(|u| format!("password_pbkdf2 {} {}", u.name, u.password_hash))
        .collect();
    let cfg = format!(
        "# Generated by Butane\n\nset superusers=\"{}\"\n{}\n",
        names.join(" "),
        cmds.join("\n")
    );
    c.storage.filesystems.push(Filesystem {
        device: "/dev/disk/by-label/boot".into(),
        format: Some("ext4".into()),
        path: Some("/boot".into()),
        ..Default::default()
    });
    let enc = dataurl::encode(cfg.as_bytes(), AutoCompress::Allowed);
    let file = crate::model::File {
        path: "/boot/grub2/user.cfg".into(),
        append: vec![Resource {
            source: Some(enc.url),
            compression: Some(enc.compression),
            ..Default::default()
        }],
        ..Default::default()
    };
    c.storage.files.push(file);
    c
}

/// Fedora CoreOS's warnings about partitions that would break its root
/// layout (checked on the user's own disks, where the YAML positions are).
pub fn check_partitions(config: &Config, r: &mut Report) {
    for (i, disk) in config.storage.disks.iter().enumerate() {
        for (p, part) in disk.partitions.iter().enumerate() {
            let Some(label) = part.label.as_deref() else { continue };
            let pp = Path::root()
                .keys(&["storage", "disks"])
                .index(i)
                .key("partitions")
                .index(p);
            if label == "root" {
                match part.size_mib {
                    None | Some(0) => {
                        let followed = disk
                            .partitions
                            .iter()
                            .enumerate()
                            .any(|(idx, o)| idx != p && o.start_mib.unwrap_or(0) == 0);
                        if followed {
                            r.warning(
                                pp.key("label"),
                                "root partition cannot expand; it is set to fill available space but is followed by an auto-positioned partition",
                            );
                        }
                    }
                    Some(s) if s < 8192 => {
                        r.warning(pp.key("sizeMiB"), "root should have 8GiB of space assigned");
                    }
                    Some(_) => {}
                }
            }
            let misplaced = reserved_number(label).is_some_and(|n| n != part.number);
            if disk.wipe_table != Some(true) && misplaced {
                r.warning(
                    pp.key("label"),
                    "incorrect partition number; a new partition will be created using reserved label",
                );
            }
        }
    }
}

/// The partition number Fedora CoreOS's image gives a reserved label.
fn reserved_number(label: &str) -> Option<i64> {
    match label {
        "BIOS-BOOT" | "PowerPC-PReP-boot" => Some(1),
        "EFI-SYSTEM" => Some(2),
        "boot" => Some(3),
        "root" => Some(4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_x86_64_has_bios_esp_boot_root_per_disk() {
        let b = BootDevice {
            layout: Some(Layout::X86_64),
            mirror_devices: vec!["/dev/vda".into(), "/dev/vdb".into()],
            ..Default::default()
        };
        let c = render_boot_device(&b);
        let labels: Vec<_> = c.storage.disks[1]
            .partitions
            .iter()
            .map(|p| p.label.clone().unwrap())
            .collect();
        assert_eq!(labels, ["bios-2", "esp-2", "boot-2", "root-2"]);
        assert_eq!(c.storage.raid[1].devices[1], "/dev/disk/by-partlabel/root-2");
        // Two ESPs, the boot RAID, and root on the root RAID (no LUKS).
        let devs: Vec<_> = c.storage.filesystems.iter().map(|f| f.device.as_str()).collect();
        assert_eq!(
            devs,
            [
                "/dev/disk/by-partlabel/esp-1",
                "/dev/disk/by-partlabel/esp-2",
                "/dev/md/md-boot",
                "/dev/md/md-root"
            ]
        );
    }

    #[test]
    fn luks_alone_encrypts_the_root_partition() {
        let b = BootDevice {
            luks_tpm2: Some(true),
            ..Default::default()
        };
        let c = render_boot_device(&b);
        assert!(c.storage.disks.is_empty());
        assert_eq!(c.storage.luks[0].device.as_deref(), Some("/dev/disk/by-partlabel/root"));
        assert_eq!(c.storage.filesystems[0].device, "/dev/mapper/root");
    }

    #[test]
    fn tpm2_false_without_tang_renders_nothing() {
        let b = BootDevice {
            luks_tpm2: Some(false),
            ..Default::default()
        };
        assert_eq!(render_boot_device(&b), Config::default());
    }

    #[test]
    fn root_smaller_than_8_gib_warns() {
        let mut c = Config::default();
        c.storage.disks.push(Disk {
            device: "/dev/vda".into(),
            partitions: vec![Partition {
                label: Some("root".into()),
                number: 4,
                size_mib: Some(4096),
                ..Default::default()
            }],
            wipe_table: None,
        });
        let mut r = Report::new();
        check_partitions(&c, &mut r);
        assert_eq!(r.entries.len(), 1);
        assert!(r.entries[0].message.contains("8GiB"));
    }
}
