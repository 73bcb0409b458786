//! Duplicate detection for keyed lists, as Ignition's `ValidateDups`.
//!
//! Lists are walked in schema order; lists that share a namespace (files,
//! directories and links by path; both kernel-argument lists) are checked
//! together, and the *later* entry is the one reported.

use crate::model::{Config, Partition, Resource};
use crate::path::Path;
use crate::report::Report;
use std::collections::{HashMap, HashSet};

/// One list of one struct: its field name and each item's key.
struct KeyedList {
    field: &'static str,
    keys: Vec<String>,
}

fn list(field: &'static str, keys: impl IntoIterator<Item = String>) -> KeyedList {
    KeyedList {
        field,
        keys: keys.into_iter().collect(),
    }
}

/// Check the lists of one struct; `groups` names lists sharing one namespace.
fn check_struct(r: &mut Report, base: &Path, lists: Vec<KeyedList>, groups: &[&[&'static str]]) {
    let mut seen: HashMap<&'static str, HashSet<String>> = HashMap::new();
    for l in lists {
        let namespace = groups.iter().find(|g| g.contains(&l.field)).map_or(l.field, |g| g[0]);
        let keys = seen.entry(namespace).or_default();
        for (i, k) in l.keys.into_iter().enumerate() {
            if !keys.insert(k) {
                r.error(base.key(l.field).index(i), "duplicate entry defined");
            }
        }
    }
}

fn sources(rs: &[Resource]) -> Vec<String> {
    rs.iter().map(|r| r.source.clone().unwrap_or_default()).collect()
}

pub fn check(r: &mut Report, cfg: &Config) {
    let root = Path::root();
    let ign = root.key("ignition");
    check_struct(
        r,
        &ign.key("config"),
        vec![list("merge", sources(&cfg.ignition.config.merge))],
        &[],
    );
    check_struct(
        r,
        &ign.keys(&["security", "tls"]),
        vec![list(
            "certificateAuthorities",
            sources(&cfg.ignition.security.tls.certificate_authorities),
        )],
        &[],
    );
    check_struct(
        r,
        &ign.key("proxy"),
        vec![list("noProxy", cfg.ignition.proxy.no_proxy.clone())],
        &[],
    );
    let resources = |r: &mut Report, res: &Resource, p: &Path| {
        let names = res.http_headers.iter().map(|h| h.name.clone());
        check_struct(r, p, vec![list("httpHeaders", names)], &[]);
    };
    for (i, m) in cfg.ignition.config.merge.iter().enumerate() {
        resources(r, m, &ign.keys(&["config", "merge"]).index(i));
    }
    resources(r, &cfg.ignition.config.replace, &ign.keys(&["config", "replace"]));

    let k = &cfg.kernel_arguments;
    check_struct(
        r,
        &root.key("kernelArguments"),
        vec![
            list("shouldExist", k.should_exist.clone()),
            list("shouldNotExist", k.should_not_exist.clone()),
        ],
        &[&["shouldExist", "shouldNotExist"]],
    );

    let p = root.key("passwd");
    let pw = &cfg.passwd;
    check_struct(
        r,
        &p,
        vec![
            list("groups", pw.groups.iter().map(|g| g.name.clone())),
            list("users", pw.users.iter().map(|u| u.name.clone())),
        ],
        &[],
    );
    for (i, u) in pw.users.iter().enumerate() {
        check_struct(
            r,
            &p.key("users").index(i),
            vec![
                list("groups", u.groups.clone()),
                list("sshAuthorizedKeys", u.ssh_authorized_keys.clone()),
            ],
            &[],
        );
    }

    let s = &cfg.storage;
    let sp = root.key("storage");
    check_struct(
        r,
        &sp,
        vec![
            list("directories", s.directories.iter().map(|d| d.path.clone())),
            list("disks", s.disks.iter().map(|d| d.device.clone())),
            list("files", s.files.iter().map(|f| f.path.clone())),
            list("filesystems", s.filesystems.iter().map(|f| f.device.clone())),
            list("links", s.links.iter().map(|l| l.path.clone())),
            list("luks", s.luks.iter().map(|l| l.name.clone())),
            list("raid", s.raid.iter().map(|x| x.name.clone())),
        ],
        &[&["directories", "files", "links"]],
    );
    for (i, d) in s.disks.iter().enumerate() {
        check_struct(
            r,
            &sp.key("disks").index(i),
            vec![list("partitions", d.partitions.iter().map(Partition::key))],
            &[],
        );
    }
    for (i, f) in s.files.iter().enumerate() {
        resources(r, &f.contents, &sp.key("files").index(i).key("contents"));
    }
    for (i, x) in s.raid.iter().enumerate() {
        check_struct(
            r,
            &sp.key("raid").index(i),
            vec![list("devices", x.devices.clone())],
            &[],
        );
    }
    for (i, l) in s.luks.iter().enumerate() {
        let lp = sp.key("luks").index(i);
        check_struct(r, &lp, vec![list("openOptions", l.open_options.clone())], &[]);
        check_struct(
            r,
            &lp.key("clevis"),
            vec![list("tang", l.clevis.tang.iter().map(|t| t.url.clone()))],
            &[],
        );
    }

    let up = root.keys(&["systemd"]);
    check_struct(
        r,
        &up,
        vec![list("units", cfg.systemd.units.iter().map(|u| u.name.clone()))],
        &[],
    );
    for (i, u) in cfg.systemd.units.iter().enumerate() {
        check_struct(
            r,
            &up.key("units").index(i),
            vec![list("dropins", u.dropins.iter().map(|d| d.name.clone()))],
            &[],
        );
    }
}
