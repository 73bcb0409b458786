//! Merging configs as `ignition.config.merge` does: the child overrides the
//! parent field by field; keyed lists are merged entry by entry.
//!
//! The rules, from Ignition's merge:
//! - a scalar set in the child wins; an unset one keeps the parent's;
//! - keyed lists keep the parent's order; a child entry with the same key
//!   is merged into the parent's entry in place, new child entries follow;
//! - files, directories and links share one key space (the path): a child
//!   directory at a parent file's path replaces the file;
//! - a child HTTP header without a value deletes the parent's header;
//! - unkeyed lists (`append`, filesystem/LUKS/RAID `options`,
//!   `mountOptions`) are concatenated;
//! - the two kernel-argument lists share one key space, so moving an
//!   argument from `shouldExist` to `shouldNotExist` in a child works.

use crate::model::*;

fn opt<T: Clone>(p: &Option<T>, c: &Option<T>) -> Option<T> {
    c.clone().or_else(|| p.clone())
}

/// Merge `child` over `parent`.
pub fn merge(parent: &Config, child: &Config) -> Config {
    Config {
        ignition: Ignition {
            config: IgnitionConfig {
                merge: keyed(
                    &parent.ignition.config.merge,
                    &child.ignition.config.merge,
                    res_key,
                    resource,
                ),
                replace: resource(&parent.ignition.config.replace, &child.ignition.config.replace),
            },
            proxy: Proxy {
                http_proxy: opt(&parent.ignition.proxy.http_proxy, &child.ignition.proxy.http_proxy),
                https_proxy: opt(&parent.ignition.proxy.https_proxy, &child.ignition.proxy.https_proxy),
                no_proxy: strings(&parent.ignition.proxy.no_proxy, &child.ignition.proxy.no_proxy),
            },
            security: Security {
                tls: Tls {
                    certificate_authorities: keyed(
                        &parent.ignition.security.tls.certificate_authorities,
                        &child.ignition.security.tls.certificate_authorities,
                        res_key,
                        resource,
                    ),
                },
            },
            timeouts: Timeouts {
                http_response_headers: opt(
                    &parent.ignition.timeouts.http_response_headers,
                    &child.ignition.timeouts.http_response_headers,
                ),
                http_total: opt(
                    &parent.ignition.timeouts.http_total,
                    &child.ignition.timeouts.http_total,
                ),
            },
            version: child.ignition.version.clone(),
        },
        kernel_arguments: kargs(&parent.kernel_arguments, &child.kernel_arguments),
        passwd: Passwd {
            groups: keyed(&parent.passwd.groups, &child.passwd.groups, |g| g.name.clone(), group),
            users: keyed(&parent.passwd.users, &child.passwd.users, |u| u.name.clone(), user),
        },
        storage: storage(&parent.storage, &child.storage),
        systemd: Systemd {
            units: keyed(&parent.systemd.units, &child.systemd.units, |u| u.name.clone(), unit),
        },
    }
}

/// Merge two keyed lists with `f` merging entries whose keys match.
fn keyed<T: Clone>(parent: &[T], child: &[T], key: fn(&T) -> String, f: fn(&T, &T) -> T) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(parent.len() + child.len());
    let child_keys: Vec<String> = child.iter().map(key).collect();
    let parent_keys: Vec<String> = parent.iter().map(key).collect();
    for (p, pk) in parent.iter().zip(&parent_keys) {
        match child_keys.iter().rposition(|k| k == pk) {
            Some(ci) => out.push(f(p, &child[ci])),
            None => out.push(p.clone()),
        }
    }
    for (c, ck) in child.iter().zip(&child_keys) {
        if !parent_keys.contains(ck) {
            out.push(c.clone());
        }
    }
    out
}

/// Lists of plain strings are keyed by the string itself.
fn strings(parent: &[String], child: &[String]) -> Vec<String> {
    keyed(parent, child, String::clone, |_, c| c.clone())
}

fn res_key(r: &Resource) -> String {
    r.source.clone().unwrap_or_default()
}

fn resource(p: &Resource, c: &Resource) -> Resource {
    let mut headers = Vec::new();
    for ph in &p.http_headers {
        match c.http_headers.iter().rfind(|h| h.name == ph.name) {
            // A child header without a value removes the parent's.
            Some(ch) if ch.value.is_none() => {}
            Some(ch) => headers.push(HttpHeader {
                name: ch.name.clone(),
                value: opt(&ph.value, &ch.value),
            }),
            None => headers.push(ph.clone()),
        }
    }
    for ch in &c.http_headers {
        if !p.http_headers.iter().any(|h| h.name == ch.name) {
            headers.push(ch.clone());
        }
    }
    Resource {
        compression: opt(&p.compression, &c.compression),
        http_headers: headers,
        source: opt(&p.source, &c.source),
        verification: Verification {
            hash: opt(&p.verification.hash, &c.verification.hash),
        },
    }
}

fn owner(p: &NodeOwner, c: &NodeOwner) -> NodeOwner {
    NodeOwner {
        id: opt(&p.id, &c.id),
        name: opt(&p.name, &c.name),
    }
}

fn group(p: &PasswdGroup, c: &PasswdGroup) -> PasswdGroup {
    PasswdGroup {
        gid: opt(&p.gid, &c.gid),
        name: c.name.clone(),
        password_hash: opt(&p.password_hash, &c.password_hash),
        should_exist: opt(&p.should_exist, &c.should_exist),
        system: opt(&p.system, &c.system),
    }
}

fn user(p: &PasswdUser, c: &PasswdUser) -> PasswdUser {
    PasswdUser {
        gecos: opt(&p.gecos, &c.gecos),
        groups: strings(&p.groups, &c.groups),
        home_dir: opt(&p.home_dir, &c.home_dir),
        name: c.name.clone(),
        no_create_home: opt(&p.no_create_home, &c.no_create_home),
        no_log_init: opt(&p.no_log_init, &c.no_log_init),
        no_user_group: opt(&p.no_user_group, &c.no_user_group),
        password_hash: opt(&p.password_hash, &c.password_hash),
        primary_group: opt(&p.primary_group, &c.primary_group),
        ssh_authorized_keys: strings(&p.ssh_authorized_keys, &c.ssh_authorized_keys),
        shell: opt(&p.shell, &c.shell),
        should_exist: opt(&p.should_exist, &c.should_exist),
        system: opt(&p.system, &c.system),
        uid: opt(&p.uid, &c.uid),
    }
}

fn unit(p: &Unit, c: &Unit) -> Unit {
    Unit {
        contents: opt(&p.contents, &c.contents),
        dropins: keyed(
            &p.dropins,
            &c.dropins,
            |d| d.name.clone(),
            |p, c| Dropin {
                contents: opt(&p.contents, &c.contents),
                name: c.name.clone(),
            },
        ),
        enabled: opt(&p.enabled, &c.enabled),
        mask: opt(&p.mask, &c.mask),
        name: c.name.clone(),
    }
}

fn kargs(p: &KernelArguments, c: &KernelArguments) -> KernelArguments {
    // One key space: an argument the child lists anywhere is dropped from
    // wherever the parent had it, then appears where the child put it.
    let in_child = |a: &String| c.should_exist.contains(a) || c.should_not_exist.contains(a);
    let side = |pl: &[String], cl: &[String]| -> Vec<String> {
        let mut v: Vec<String> = pl.iter().filter(|a| !in_child(a) || cl.contains(a)).cloned().collect();
        v.extend(cl.iter().filter(|a| !pl.contains(a)).cloned());
        v
    };
    KernelArguments {
        should_exist: side(&p.should_exist, &c.should_exist),
        should_not_exist: side(&p.should_not_exist, &c.should_not_exist),
    }
}

/// Files, directories and links: one key space by path.
fn storage(p: &Storage, c: &Storage) -> Storage {
    let child_paths: Vec<(&str, &str)> = c
        .files
        .iter()
        .map(|f| ("file", f.path.as_str()))
        .chain(c.directories.iter().map(|d| ("dir", d.path.as_str())))
        .chain(c.links.iter().map(|l| ("link", l.path.as_str())))
        .collect();
    // Parent entries whose path the child uses for another kind are dropped.
    let taken_by_other = |kind: &str, path: &str| child_paths.iter().any(|(k, cp)| *cp == path && *k != kind);
    let pf: Vec<File> = p
        .files
        .iter()
        .filter(|f| !taken_by_other("file", &f.path))
        .cloned()
        .collect();
    let pd: Vec<Directory> = p
        .directories
        .iter()
        .filter(|d| !taken_by_other("dir", &d.path))
        .cloned()
        .collect();
    let pl: Vec<Link> = p
        .links
        .iter()
        .filter(|l| !taken_by_other("link", &l.path))
        .cloned()
        .collect();
    Storage {
        directories: keyed(
            &pd,
            &c.directories,
            |d| d.path.clone(),
            |p, c| Directory {
                group: owner(&p.group, &c.group),
                overwrite: opt(&p.overwrite, &c.overwrite),
                path: c.path.clone(),
                user: owner(&p.user, &c.user),
                mode: opt(&p.mode, &c.mode),
            },
        ),
        disks: keyed(
            &p.disks,
            &c.disks,
            |d| d.device.clone(),
            |p, c| Disk {
                device: c.device.clone(),
                partitions: keyed(&p.partitions, &c.partitions, Partition::key, partition),
                wipe_table: opt(&p.wipe_table, &c.wipe_table),
            },
        ),
        files: keyed(
            &pf,
            &c.files,
            |f| f.path.clone(),
            |p, c| File {
                group: owner(&p.group, &c.group),
                overwrite: opt(&p.overwrite, &c.overwrite),
                path: c.path.clone(),
                user: owner(&p.user, &c.user),
                append: [p.append.clone(), c.append.clone()].concat(),
                contents: resource(&p.contents, &c.contents),
                mode: opt(&p.mode, &c.mode),
            },
        ),
        filesystems: keyed(
            &p.filesystems,
            &c.filesystems,
            |f| f.device.clone(),
            |p, c| Filesystem {
                device: c.device.clone(),
                format: opt(&p.format, &c.format),
                label: opt(&p.label, &c.label),
                mount_options: [p.mount_options.clone(), c.mount_options.clone()].concat(),
                options: [p.options.clone(), c.options.clone()].concat(),
                path: opt(&p.path, &c.path),
                uuid: opt(&p.uuid, &c.uuid),
                wipe_filesystem: opt(&p.wipe_filesystem, &c.wipe_filesystem),
            },
        ),
        links: keyed(
            &pl,
            &c.links,
            |l| l.path.clone(),
            |p, c| Link {
                group: owner(&p.group, &c.group),
                overwrite: opt(&p.overwrite, &c.overwrite),
                path: c.path.clone(),
                user: owner(&p.user, &c.user),
                hard: opt(&p.hard, &c.hard),
                target: opt(&p.target, &c.target),
            },
        ),
        luks: keyed(&p.luks, &c.luks, |l| l.name.clone(), luks),
        raid: keyed(
            &p.raid,
            &c.raid,
            |r| r.name.clone(),
            |p, c| Raid {
                devices: strings(&p.devices, &c.devices),
                level: opt(&p.level, &c.level),
                name: c.name.clone(),
                options: [p.options.clone(), c.options.clone()].concat(),
                spares: opt(&p.spares, &c.spares),
            },
        ),
    }
}

fn partition(p: &Partition, c: &Partition) -> Partition {
    Partition {
        guid: opt(&p.guid, &c.guid),
        label: opt(&p.label, &c.label),
        number: c.number,
        resize: opt(&p.resize, &c.resize),
        should_exist: opt(&p.should_exist, &c.should_exist),
        size_mib: opt(&p.size_mib, &c.size_mib),
        start_mib: opt(&p.start_mib, &c.start_mib),
        type_guid: opt(&p.type_guid, &c.type_guid),
        wipe_partition_entry: opt(&p.wipe_partition_entry, &c.wipe_partition_entry),
    }
}

fn luks(p: &Luks, c: &Luks) -> Luks {
    Luks {
        clevis: Clevis {
            custom: ClevisCustom {
                config: opt(&p.clevis.custom.config, &c.clevis.custom.config),
                needs_network: opt(&p.clevis.custom.needs_network, &c.clevis.custom.needs_network),
                pin: opt(&p.clevis.custom.pin, &c.clevis.custom.pin),
            },
            tang: keyed(
                &p.clevis.tang,
                &c.clevis.tang,
                |t| t.url.clone(),
                |p, c| Tang {
                    advertisement: opt(&p.advertisement, &c.advertisement),
                    thumbprint: opt(&p.thumbprint, &c.thumbprint),
                    url: c.url.clone(),
                },
            ),
            threshold: opt(&p.clevis.threshold, &c.clevis.threshold),
            tpm2: opt(&p.clevis.tpm2, &c.clevis.tpm2),
        },
        device: opt(&p.device, &c.device),
        discard: opt(&p.discard, &c.discard),
        key_file: resource(&p.key_file, &c.key_file),
        label: opt(&p.label, &c.label),
        name: c.name.clone(),
        open_options: strings(&p.open_options, &c.open_options),
        options: [p.options.clone(), c.options.clone()].concat(),
        uuid: opt(&p.uuid, &c.uuid),
        wipe_volume: opt(&p.wipe_volume, &c.wipe_volume),
    }
}
