//! Storage rules: node paths and modes, links, partitions, filesystems,
//! RAID and LUKS.

use super::url::{check_resource, parse_url, validate_url};
use crate::model::{Disk, Filesystem, Luks, NodeOwner, Partition, Storage};
use crate::path::Path;
use crate::report::Report;
use crate::version::SpecVersion;

/// Absolute and clean, like Go's `path.IsAbs` and `path.Clean`.
pub fn check_path(p: &str) -> Result<(), &'static str> {
    if p.is_empty() {
        return Err("path not specified");
    }
    if !p.starts_with('/') {
        return Err("path not absolute");
    }
    if clean(p) != p {
        return Err("path is not fully simplified");
    }
    Ok(())
}

/// Go's `path.Clean` for absolute paths.
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

fn check_mode(r: &mut Report, mode: Option<i64>, p: Path) {
    let Some(m) = mode else { return };
    if !(0..=0o7777).contains(&m) {
        r.error(p.clone(), "illegal file mode").help = Some(format!(
            "modes are decimal in JSON; {m} is not a permission value (0644 is written 420)"
        ));
    }
    if (m as u32) & 0o7000 != 0 {
        r.warning(
            p,
            "setuid/setgid/sticky bits are not supported or functional in spec versions older than 3.6.0",
        );
    }
}

fn check_owner(r: &mut Report, o: &NodeOwner, p: Path) {
    if o.id.is_some() && o.name.as_deref().is_some_and(|n| !n.is_empty()) {
        r.error(p, "cannot set both id and name");
    }
}

pub fn check(r: &mut Report, s: &Storage, sp: &Path, v: SpecVersion) {
    let under_link = |path: &str| s.links.iter().any(|l| path.starts_with(&format!("{}/", l.path)));
    for (i, d) in s.directories.iter().enumerate() {
        let p = sp.key("directories").index(i);
        if let Err(m) = check_path(&d.path) {
            r.error(p.key("path"), m);
        }
        check_owner(r, &d.user, p.key("user"));
        check_owner(r, &d.group, p.key("group"));
        check_mode(r, d.mode, p.key("mode"));
        if under_link(&d.path) {
            r.error(p, "directory path includes link in config");
        }
    }
    for (i, f) in s.files.iter().enumerate() {
        let p = sp.key("files").index(i);
        if let Err(m) = check_path(&f.path) {
            r.error(p.key("path"), m);
        }
        check_owner(r, &f.user, p.key("user"));
        check_owner(r, &f.group, p.key("group"));
        check_mode(r, f.mode, p.key("mode"));
        if f.overwrite == Some(true) && f.contents.source.is_none() {
            r.error(p.key("overwrite"), "overwrite must be false if source is unspecified");
        }
        check_resource(r, &f.contents, &p.key("contents"), v);
        for (j, a) in f.append.iter().enumerate() {
            check_resource(r, a, &p.key("append").index(j), v);
        }
        if under_link(&f.path) {
            r.error(p, "file path includes link in config");
        }
    }
    for (i, l) in s.links.iter().enumerate() {
        let p = sp.key("links").index(i);
        if let Err(m) = check_path(&l.path) {
            r.error(p.key("path"), m);
        }
        check_owner(r, &l.user, p.key("user"));
        check_owner(r, &l.group, p.key("group"));
        if under_link(&l.path) {
            r.error(p.clone(), "link path includes link in config");
        }
        let Some(target) = l.target.as_deref().filter(|t| !t.is_empty()) else {
            // Specs before 3.3 did not require a target.
            if v >= SpecVersion::V3_3 {
                r.error(p.key("target"), "link target is required");
            }
            continue;
        };
        if l.hard != Some(true) {
            continue;
        }
        let abs = if target.starts_with('/') {
            clean(target)
        } else {
            clean(&format!("{}/{}", l.path, target))
        };
        if s.directories.iter().any(|d| d.path == abs) {
            r.error(p.clone(), "hard link target is a directory");
        }
        for (who, o) in [("user", &l.user), ("group", &l.group)] {
            if o.id.is_some() {
                r.warning(p.keys(&[who, "id"]), "user/group ignored for hard link");
            }
            if o.name.is_some() {
                r.warning(p.keys(&[who, "name"]), "user/group ignored for hard link");
            }
        }
    }
    for (i, d) in s.disks.iter().enumerate() {
        check_disk(r, d, &sp.key("disks").index(i));
    }
    for (i, f) in s.filesystems.iter().enumerate() {
        let p = sp.key("filesystems").index(i);
        check_filesystem(r, f, &p, v);
        if let Some(disk) = s.disks.iter().rev().find(|d| d.device == f.device) {
            if !disk.partitions.is_empty() {
                r.warning(p.key("device"), "filesystem overwrites partitioned device");
            } else if f.wipe_filesystem != Some(true) && disk.wipe_table == Some(true) {
                r.warning(
                    p.key("device"),
                    "device matches disk with wipeTable enabled; filesystem will be wiped",
                );
            }
        }
    }
    for (i, x) in s.raid.iter().enumerate() {
        let p = sp.key("raid").index(i);
        let level = match x.level.as_deref() {
            None | Some("") if v < SpecVersion::V3_3 => Err("unrecognized raid level"),
            None | Some("") => Err("raid level is required"),
            Some("linear" | "raid0" | "0" | "stripe") if x.spares.is_some_and(|s| s != 0) => {
                Err("spares unsupported for linear and raid0 arrays")
            }
            Some(
                "linear" | "raid0" | "0" | "stripe" | "raid1" | "1" | "mirror" | "raid4" | "4" | "raid5" | "5"
                | "raid6" | "6" | "raid10" | "10",
            ) => Ok(()),
            Some(_) => Err("unrecognized raid level"),
        };
        if let Err(m) = level {
            r.error(p.key("level"), m);
        }
        if x.devices.is_empty() {
            r.error(p.key("devices"), "raid devices required");
        }
        for (j, dev) in x.devices.iter().enumerate() {
            if let Err(m) = check_path(dev) {
                r.error(p.key("devices").index(j), m);
            }
        }
    }
    for (i, l) in s.luks.iter().enumerate() {
        check_luks(r, l, &sp.key("luks").index(i), v);
    }
}

fn check_disk(r: &mut Report, d: &Disk, p: &Path) {
    if d.device.is_empty() {
        r.error(p.key("device"), "disk device is required");
        return;
    }
    if let Err(m) = check_path(&d.device) {
        r.error(p.key("device"), m);
    }
    let parts = &d.partitions;
    // Numbers: 0 means "next free", so only non-zero numbers can collide.
    let mut collided = None;
    for (i, a) in parts.iter().enumerate() {
        if a.number != 0 && parts[..i].iter().any(|b| b.number == a.number) {
            collided = Some(i);
            break;
        }
    }
    if let Some(i) = collided {
        r.error(p.key("partitions").index(i), "partition numbers collide");
    }
    if let Some(i) = overlapping(parts) {
        r.error(p.key("partitions").index(i), "partitions overlap");
    }
    for (i, a) in parts.iter().enumerate() {
        if a.label.is_some() && parts[..i].iter().any(|b| b.label == a.label) {
            r.error(
                p.key("partitions").index(i),
                "cannot use the same partition label twice",
            );
            break;
        }
    }
    for (i, part) in parts.iter().enumerate() {
        check_partition(r, part, &p.key("partitions").index(i));
    }
}

/// The index of a partition that overlaps another with a fixed start.
/// A size of 0 means "fill": its end is taken to be its start, as Ignition does.
fn overlapping(parts: &[Partition]) -> Option<usize> {
    let span = |p: &Partition| match (p.start_mib, p.size_mib) {
        (Some(s), Some(z)) if s != 0 => Some((s, if z == 0 { s } else { s + z - 1 })),
        _ => None,
    };
    for (pi, p) in parts.iter().enumerate() {
        let Some((ps, pe)) = span(p) else { continue };
        for (oi, o) in parts.iter().enumerate() {
            if oi == pi {
                continue;
            }
            let Some((os, oe)) = span(o) else { continue };
            if (ps >= os && ps <= oe) || (pe >= os && pe <= oe) || (ps < os && pe > oe) {
                return Some(oi);
            }
        }
    }
    None
}

fn check_guid(r: &mut Report, g: Option<&str>, p: Path) {
    let Some(g) = g else { return };
    let groups: Vec<&str> = g.split('-').collect();
    let ok = g.is_empty()
        || (groups.iter().map(|s| s.len()).eq([8, 4, 4, 4, 12])
            && groups.iter().all(|s| s.bytes().all(|b| b.is_ascii_hexdigit())));
    if !ok {
        r.error(p, "doesn't match the form \"01234567-89AB-CDEF-EDCB-A98765432101\"");
    }
}

fn check_partition(r: &mut Report, part: &Partition, p: &Path) {
    let has_others = part.label.is_some()
        || part.type_guid.as_deref().is_some_and(|s| !s.is_empty())
        || part.guid.as_deref().is_some_and(|s| !s.is_empty())
        || part.start_mib.is_some()
        || part.size_mib.is_some();
    if part.should_exist == Some(false) && has_others {
        r.error(
            p.clone(),
            "shouldExist specified false with other options also specified",
        );
    }
    if part.number == 0 && part.label.is_none() {
        r.error(p.clone(), "a partition number >= 1 or a label must be specified");
    }
    if let Some(l) = &part.label {
        if l.len() > 36 {
            r.error(p.key("label"), "partition labels may not exceed 36 characters");
        } else if l.contains(':') {
            r.error(
                p.key("label"),
                "partition label will be truncated to text before the colon",
            );
        }
    }
    check_guid(r, part.guid.as_deref(), p.key("guid"));
    check_guid(r, part.type_guid.as_deref(), p.key("typeGuid"));
}

fn check_filesystem(r: &mut Report, f: &Filesystem, p: &Path, v: SpecVersion) {
    if let Some(path) = f.path.as_deref().filter(|s| !s.is_empty()) {
        if let Err(m) = check_path(path) {
            r.error(p.key("path"), m);
        }
    }
    if let Err(m) = check_path(&f.device) {
        r.error(p.key("device"), m);
    }
    let set = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.is_empty());
    match f.format.as_deref() {
        None | Some("") => {
            if set(&f.path)
                || set(&f.label)
                || set(&f.uuid)
                || f.wipe_filesystem == Some(true)
                || !f.mount_options.is_empty()
                || !f.options.is_empty()
            {
                r.error(
                    p.key("format"),
                    "format cannot be empty when path, label, uuid, wipeFilesystem, options, or mountOptions is specified",
                );
            }
        }
        Some("ext4" | "btrfs" | "xfs" | "swap" | "vfat") => {}
        Some("none") if v >= SpecVersion::V3_3 => {}
        Some(_) => {
            r.error(p.key("format"), "invalid filesystem format");
        }
    }
    if let Some(label) = f.label.as_deref().filter(|l| !l.is_empty()) {
        let limit = match f.format.as_deref() {
            None | Some("") => {
                r.error(p.key("label"), "filesystem must specify format if label is specified");
                return;
            }
            Some("ext4") => Some((16, "ext4")),
            Some("btrfs") => Some((256, "btrfs")),
            Some("xfs") => Some((12, "xfs")),
            Some("swap") => Some((15, "swap")),
            Some("vfat") => Some((11, "vfat")),
            _ => None,
        };
        if let Some((max, fs)) = limit {
            if label.len() > max {
                r.error(
                    p.key("label"),
                    format!("filesystem labels cannot be longer than {max} characters when using {fs}"),
                );
            }
        }
    }
}

fn check_luks(r: &mut Report, l: &Luks, p: &Path, v: SpecVersion) {
    if l.name.contains('/') {
        r.error(p.key("name"), "device names cannot contain slashes");
    }
    if l.label.as_deref().is_some_and(|s| s.len() > 47) {
        r.error(p.key("label"), "luks device labels cannot be longer than 47 characters");
    }
    match l.device.as_deref() {
        None | Some("") => {
            r.error(p.key("device"), "disk device is required");
        }
        Some(d) => {
            if let Err(m) = check_path(d) {
                r.error(p.key("device"), m);
            }
        }
    }
    let c = &l.clevis;
    let custom_pin = c.custom.pin.as_deref().is_some_and(|s| !s.is_empty());
    if custom_pin && (!c.tang.is_empty() || c.tpm2 == Some(true) || c.threshold.is_some_and(|t| t != 0)) {
        r.error(
            p.key("clevis"),
            "cannot use custom clevis config with tpm2, tang, or threshold",
        );
    }
    if let Some(src) = l.key_file.source.as_deref().filter(|s| !s.is_empty()) {
        if validate_url(src, v).is_err() {
            r.error(p.key("keys"), "invalid key-file source");
        }
    }
    check_resource(r, &l.key_file, &p.key("keyFile"), v);
    let cp = p.key("clevis");
    let cu = &c.custom;
    let config_set = cu.config.as_deref().is_some_and(|s| !s.is_empty());
    if custom_pin || config_set || cu.needs_network == Some(true) {
        match cu.pin.as_deref() {
            Some("tpm2" | "tang" | "sss") => {}
            Some(s) if !s.is_empty() => {
                r.error(cp.keys(&["custom", "pin"]), "unsupported clevis pin");
            }
            _ => {
                r.error(cp.keys(&["custom", "pin"]), "missing required custom clevis pin");
            }
        }
        if !config_set {
            r.error(cp.keys(&["custom", "config"]), "missing required custom clevis config");
        }
    }
    for (i, t) in c.tang.iter().enumerate() {
        let tp = cp.key("tang").index(i);
        match parse_url(&t.url) {
            Err(_) => {
                r.error(tp.key("url"), "unable to parse url");
            }
            Ok(u) if u.scheme != "http" && u.scheme != "https" => {
                r.error(tp.key("url"), "invalid url scheme");
            }
            Ok(_) => {}
        }
        if t.thumbprint.as_deref().is_none_or(str::is_empty) {
            r.error(tp.key("thumbprint"), "thumbprint is required");
        }
        if let Some(a) = t.advertisement.as_deref().filter(|s| !s.is_empty()) {
            if serde_json::from_str::<serde_json::Value>(a).is_err() {
                r.error(tp.key("advertisement"), "advertisement is not valid JSON");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(check_path("/etc/hostname"), Ok(()));
        assert_eq!(check_path("/"), Ok(()));
        assert_eq!(check_path(""), Err("path not specified"));
        assert_eq!(check_path("etc/x"), Err("path not absolute"));
        assert_eq!(check_path("/etc/../x"), Err("path is not fully simplified"));
        assert_eq!(check_path("/etc/"), Err("path is not fully simplified"));
        assert_eq!(check_path("//etc"), Err("path is not fully simplified"));
        assert_eq!(clean("/a/./b/../../.."), "/");
    }

    #[test]
    fn overlap_examples() {
        let part = |start, size| Partition {
            number: 1,
            start_mib: Some(start),
            size_mib: Some(size),
            ..Default::default()
        };
        // [10,19] and [20,29] touch but do not overlap.
        assert_eq!(overlapping(&[part(10, 10), part(20, 10)]), None);
        // [10,19] and [15,24] overlap; the first partition found is reported against the second.
        assert_eq!(overlapping(&[part(10, 10), part(15, 10)]), Some(1));
        // A start of 0 means "wherever it fits" and is never checked.
        assert_eq!(overlapping(&[part(0, 10), part(0, 10)]), None);
        // [5,50] straddles [10,19].
        assert_eq!(overlapping(&[part(10, 10), part(5, 46)]), Some(1));
    }
}
