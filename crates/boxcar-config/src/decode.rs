//! Positioned tree → typed [`Config`], strictly per spec version.
//!
//! Every key a section knows is looked up together with the spec version
//! that introduced it. A key from a newer spec than the config declares is
//! an error (Ignition would silently ignore it, and the user would find out
//! at boot); a key no spec knows is a warning ("Unused key").

use crate::model::*;
use crate::path::Path;
use crate::report::{Anchor, Report, Severity};
use crate::tree::{Node, Value};
use crate::version::SpecVersion::{self, *};

/// How scalars convert: JSON is typed; YAML follows go-yaml v3, where any
/// scalar decodes into a string field and `yes`/`no`/`on`/`off` into a bool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarRules {
    Json,
    Yaml,
}

/// Turns "3.2.0" into the text appended to "requires …" messages, so Butane
/// can name its own variant versions.
pub type VersionLabel = fn(SpecVersion) -> String;

pub struct Decoder<'r> {
    pub version: SpecVersion,
    pub rules: ScalarRules,
    pub label: VersionLabel,
    pub report: &'r mut Report,
}

/// A mapping being decoded; remembers which keys were looked at.
pub struct Obj<'a> {
    node: &'a Node,
    path: Path,
    used: Vec<bool>,
}

fn spec_label(v: SpecVersion) -> String {
    format!("requires spec version {v} or newer")
}

impl<'r> Decoder<'r> {
    pub fn new(version: SpecVersion, rules: ScalarRules, report: &'r mut Report) -> Self {
        Decoder {
            version,
            rules,
            label: spec_label,
            report,
        }
    }

    fn type_error(&mut self, path: &Path, node: &Node, want: &str) {
        self.report
            .error(path.clone(), format!("expected {want}, found {}", node.value.kind()));
    }

    /// Open a mapping; null counts as absent.
    pub fn object<'a>(&mut self, node: &'a Node, path: &Path) -> Option<Obj<'a>> {
        match &node.value {
            Value::Map(e) => Some(Obj {
                node,
                path: path.clone(),
                used: vec![false; e.len()],
            }),
            Value::Null => None,
            _ => {
                self.type_error(path, node, "an object");
                None
            }
        }
    }

    /// Look up `key`, marking it used; enforce the version that introduced it.
    pub fn get<'a>(&mut self, o: &mut Obj<'a>, key: &str, since: SpecVersion) -> Option<(&'a Node, Path)> {
        let entries = o.node.entries()?;
        let idx = entries.iter().rposition(|e| e.key == key)?;
        for (i, e) in entries.iter().enumerate() {
            if e.key == key {
                o.used[i] = true;
            }
        }
        let path = o.path.key(key);
        if self.version < since {
            let msg = format!(
                "{:?} {} (this config is {})",
                entries[idx].written,
                (self.label)(since),
                self.version
            );
            self.report.push(Severity::Error, path, Anchor::Key, msg);
            return None;
        }
        let node = &entries[idx].value;
        if node.is_null() {
            return None;
        }
        Some((node, path))
    }

    /// Report keys nobody asked for.
    pub fn finish(&mut self, o: Obj<'_>) {
        let Some(entries) = o.node.entries() else { return };
        for (e, used) in entries.iter().zip(o.used) {
            if !used {
                self.report.push(
                    Severity::Warning,
                    o.path.key(&e.key),
                    Anchor::Key,
                    format!("Unused key {}", e.written),
                );
            }
        }
    }

    pub fn to_string(&mut self, node: &Node, path: &Path) -> Option<String> {
        match (&node.value, self.rules) {
            (Value::Str(s), _) => Some(s.clone()),
            (Value::Null, _) => None,
            (Value::Int(_) | Value::Float(_) | Value::Bool(_), ScalarRules::Yaml) if node.text.is_some() => {
                node.text.as_deref().map(str::to_string)
            }
            _ => {
                self.type_error(path, node, "a string");
                None
            }
        }
    }

    pub fn to_int(&mut self, node: &Node, path: &Path) -> Option<i64> {
        match &node.value {
            Value::Int(n) => Some(*n),
            Value::Null => None,
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                let msg = format!("expected an integer, found a number ({f}) that is out of range or has a fraction");
                self.report.error(path.clone(), msg);
                None
            }
            _ => {
                self.type_error(path, node, "an integer");
                None
            }
        }
    }

    pub fn to_bool(&mut self, node: &Node, path: &Path) -> Option<bool> {
        match (&node.value, self.rules) {
            (Value::Bool(b), _) => Some(*b),
            (Value::Null, _) => None,
            (Value::Str(s), ScalarRules::Yaml) => match s.as_str() {
                "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
                "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
                _ => {
                    self.type_error(path, node, "a boolean");
                    None
                }
            },
            _ => {
                self.type_error(path, node, "a boolean");
                None
            }
        }
    }

    pub fn str(&mut self, o: &mut Obj<'_>, key: &str) -> Option<String> {
        self.str_since(o, key, V3_0)
    }

    pub fn str_since(&mut self, o: &mut Obj<'_>, key: &str, since: SpecVersion) -> Option<String> {
        let (n, p) = self.get(o, key, since)?;
        self.to_string(n, &p)
    }

    pub fn int(&mut self, o: &mut Obj<'_>, key: &str) -> Option<i64> {
        let (n, p) = self.get(o, key, V3_0)?;
        self.to_int(n, &p)
    }

    pub fn bool(&mut self, o: &mut Obj<'_>, key: &str) -> Option<bool> {
        self.bool_since(o, key, V3_0)
    }

    pub fn bool_since(&mut self, o: &mut Obj<'_>, key: &str, since: SpecVersion) -> Option<bool> {
        let (n, p) = self.get(o, key, since)?;
        self.to_bool(n, &p)
    }

    /// A nested section decoded by `f`; absent gives the default.
    pub fn nested<T: Default>(
        &mut self,
        o: &mut Obj<'_>,
        key: &str,
        since: SpecVersion,
        f: fn(&mut Self, &Node, &Path) -> T,
    ) -> T {
        match self.get(o, key, since) {
            Some((n, p)) => f(self, n, &p),
            None => T::default(),
        }
    }

    /// A list whose items are decoded by `f`.
    pub fn list<T: Default>(
        &mut self,
        o: &mut Obj<'_>,
        key: &str,
        since: SpecVersion,
        f: fn(&mut Self, &Node, &Path) -> T,
    ) -> Vec<T> {
        let Some((n, p)) = self.get(o, key, since) else {
            return Vec::new();
        };
        match &n.value {
            Value::List(items) => items
                .iter()
                .enumerate()
                .map(|(i, it)| f(self, it, &p.index(i)))
                .collect(),
            _ => {
                self.type_error(&p, n, "a list");
                Vec::new()
            }
        }
    }

    pub fn str_list(&mut self, o: &mut Obj<'_>, key: &str, since: SpecVersion) -> Vec<String> {
        self.list(o, key, since, |d, n, p| {
            if n.is_null() {
                d.report.error(p.clone(), "expected a string, found null");
            }
            d.to_string(n, p).unwrap_or_default()
        })
    }
}

/// Decode a whole config whose version has already been established.
pub fn config(d: &mut Decoder, node: &Node) -> Config {
    let root = Path::root();
    let Some(mut o) = d.object(node, &root) else {
        return Config::default();
    };
    let c = Config {
        ignition: d.nested(&mut o, "ignition", V3_0, ignition),
        kernel_arguments: d.nested(&mut o, "kernelArguments", V3_3, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return KernelArguments::default();
            };
            let k = KernelArguments {
                should_exist: d.str_list(&mut o, "shouldExist", V3_3),
                should_not_exist: d.str_list(&mut o, "shouldNotExist", V3_3),
            };
            d.finish(o);
            k
        }),
        passwd: d.nested(&mut o, "passwd", V3_0, passwd),
        storage: d.nested(&mut o, "storage", V3_0, storage),
        systemd: d.nested(&mut o, "systemd", V3_0, systemd),
    };
    d.finish(o);
    c
}

fn ignition(d: &mut Decoder, n: &Node, p: &Path) -> Ignition {
    let Some(mut o) = d.object(n, p) else {
        return Ignition::default();
    };
    let i = Ignition {
        config: d.nested(&mut o, "config", V3_0, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return IgnitionConfig::default();
            };
            let c = IgnitionConfig {
                merge: d.list(&mut o, "merge", V3_0, config_reference),
                replace: d.nested(&mut o, "replace", V3_0, config_reference),
            };
            d.finish(o);
            c
        }),
        proxy: d.nested(&mut o, "proxy", V3_1, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return Proxy::default();
            };
            let x = Proxy {
                http_proxy: d.str_since(&mut o, "httpProxy", V3_1),
                https_proxy: d.str_since(&mut o, "httpsProxy", V3_1),
                no_proxy: d.str_list(&mut o, "noProxy", V3_1),
            };
            d.finish(o);
            x
        }),
        security: d.nested(&mut o, "security", V3_0, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return Security::default();
            };
            let s = Security {
                tls: d.nested(&mut o, "tls", V3_0, |d, n, p| {
                    let Some(mut o) = d.object(n, p) else {
                        return Tls::default();
                    };
                    let t = Tls {
                        certificate_authorities: d.list(&mut o, "certificateAuthorities", V3_0, config_reference),
                    };
                    d.finish(o);
                    t
                }),
            };
            d.finish(o);
            s
        }),
        timeouts: d.nested(&mut o, "timeouts", V3_0, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return Timeouts::default();
            };
            let t = Timeouts {
                http_response_headers: d.int(&mut o, "httpResponseHeaders"),
                http_total: d.int(&mut o, "httpTotal"),
            };
            d.finish(o);
            t
        }),
        version: d.str(&mut o, "version").unwrap_or_default(),
    };
    d.finish(o);
    i
}

/// Merge/replace configs and CAs: spec 3.0 had no compression for them.
fn config_reference(d: &mut Decoder, n: &Node, p: &Path) -> Resource {
    resource_with(d, n, p, V3_1)
}

pub(crate) fn resource(d: &mut Decoder, n: &Node, p: &Path) -> Resource {
    resource_with(d, n, p, V3_0)
}

fn resource_with(d: &mut Decoder, n: &Node, p: &Path, compression_since: SpecVersion) -> Resource {
    let Some(mut o) = d.object(n, p) else {
        return Resource::default();
    };
    let r = Resource {
        compression: d.str_since(&mut o, "compression", compression_since),
        http_headers: d.list(&mut o, "httpHeaders", V3_1, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return HttpHeader::default();
            };
            let h = HttpHeader {
                name: d.str_since(&mut o, "name", V3_1).unwrap_or_default(),
                value: d.str_since(&mut o, "value", V3_1),
            };
            d.finish(o);
            h
        }),
        source: d.str(&mut o, "source"),
        verification: d.nested(&mut o, "verification", V3_0, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return Verification::default();
            };
            let v = Verification {
                hash: d.str(&mut o, "hash"),
            };
            d.finish(o);
            v
        }),
    };
    d.finish(o);
    r
}

fn owner(d: &mut Decoder, n: &Node, p: &Path) -> NodeOwner {
    let Some(mut o) = d.object(n, p) else {
        return NodeOwner::default();
    };
    let x = NodeOwner {
        id: d.int(&mut o, "id"),
        name: d.str(&mut o, "name"),
    };
    d.finish(o);
    x
}

fn storage(d: &mut Decoder, n: &Node, p: &Path) -> Storage {
    let Some(mut o) = d.object(n, p) else {
        return Storage::default();
    };
    let s = Storage {
        directories: d.list(&mut o, "directories", V3_0, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return Directory::default();
            };
            let x = Directory {
                group: d.nested(&mut o, "group", V3_0, owner),
                overwrite: d.bool(&mut o, "overwrite"),
                path: d.str(&mut o, "path").unwrap_or_default(),
                user: d.nested(&mut o, "user", V3_0, owner),
                mode: d.int(&mut o, "mode"),
            };
            d.finish(o);
            x
        }),
        disks: d.list(&mut o, "disks", V3_0, disk),
        files: d.list(&mut o, "files", V3_0, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return File::default();
            };
            let x = File {
                group: d.nested(&mut o, "group", V3_0, owner),
                overwrite: d.bool(&mut o, "overwrite"),
                path: d.str(&mut o, "path").unwrap_or_default(),
                user: d.nested(&mut o, "user", V3_0, owner),
                append: d.list(&mut o, "append", V3_0, resource),
                contents: d.nested(&mut o, "contents", V3_0, resource),
                mode: d.int(&mut o, "mode"),
            };
            d.finish(o);
            x
        }),
        filesystems: d.list(&mut o, "filesystems", V3_0, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return Filesystem::default();
            };
            let x = Filesystem {
                device: d.str(&mut o, "device").unwrap_or_default(),
                format: d.str(&mut o, "format"),
                label: d.str(&mut o, "label"),
                mount_options: d.str_list(&mut o, "mountOptions", V3_1),
                options: d.str_list(&mut o, "options", V3_0),
                path: d.str(&mut o, "path"),
                uuid: d.str(&mut o, "uuid"),
                wipe_filesystem: d.bool(&mut o, "wipeFilesystem"),
            };
            d.finish(o);
            x
        }),
        links: d.list(&mut o, "links", V3_0, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return Link::default();
            };
            let x = Link {
                group: d.nested(&mut o, "group", V3_0, owner),
                overwrite: d.bool(&mut o, "overwrite"),
                path: d.str(&mut o, "path").unwrap_or_default(),
                user: d.nested(&mut o, "user", V3_0, owner),
                hard: d.bool(&mut o, "hard"),
                target: d.str(&mut o, "target"),
            };
            d.finish(o);
            x
        }),
        luks: d.list(&mut o, "luks", V3_2, luks),
        raid: d.list(&mut o, "raid", V3_0, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return Raid::default();
            };
            let x = Raid {
                devices: d.str_list(&mut o, "devices", V3_0),
                level: d.str(&mut o, "level"),
                name: d.str(&mut o, "name").unwrap_or_default(),
                options: d.str_list(&mut o, "options", V3_0),
                spares: d.int(&mut o, "spares"),
            };
            d.finish(o);
            x
        }),
    };
    d.finish(o);
    s
}

fn disk(d: &mut Decoder, n: &Node, p: &Path) -> Disk {
    let Some(mut o) = d.object(n, p) else {
        return Disk::default();
    };
    let x = Disk {
        device: d.str(&mut o, "device").unwrap_or_default(),
        partitions: d.list(&mut o, "partitions", V3_0, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return Partition::default();
            };
            let x = Partition {
                guid: d.str(&mut o, "guid"),
                label: d.str(&mut o, "label"),
                number: d.int(&mut o, "number").unwrap_or_default(),
                resize: d.bool_since(&mut o, "resize", V3_2),
                should_exist: d.bool(&mut o, "shouldExist"),
                size_mib: d.int(&mut o, "sizeMiB"),
                start_mib: d.int(&mut o, "startMiB"),
                type_guid: d.str(&mut o, "typeGuid"),
                wipe_partition_entry: d.bool(&mut o, "wipePartitionEntry"),
            };
            d.finish(o);
            x
        }),
        wipe_table: d.bool(&mut o, "wipeTable"),
    };
    d.finish(o);
    x
}

fn luks(d: &mut Decoder, n: &Node, p: &Path) -> Luks {
    let Some(mut o) = d.object(n, p) else {
        return Luks::default();
    };
    let x = Luks {
        clevis: d.nested(&mut o, "clevis", V3_2, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return Clevis::default();
            };
            let c = Clevis {
                custom: d.nested(&mut o, "custom", V3_2, |d, n, p| {
                    let Some(mut o) = d.object(n, p) else {
                        return ClevisCustom::default();
                    };
                    let c = ClevisCustom {
                        config: d.str(&mut o, "config"),
                        needs_network: d.bool(&mut o, "needsNetwork"),
                        pin: d.str(&mut o, "pin"),
                    };
                    d.finish(o);
                    c
                }),
                tang: d.list(&mut o, "tang", V3_2, |d, n, p| {
                    let Some(mut o) = d.object(n, p) else {
                        return Tang::default();
                    };
                    let t = Tang {
                        advertisement: d.str_since(&mut o, "advertisement", V3_4),
                        thumbprint: d.str(&mut o, "thumbprint"),
                        url: d.str(&mut o, "url").unwrap_or_default(),
                    };
                    d.finish(o);
                    t
                }),
                threshold: d.int(&mut o, "threshold"),
                tpm2: d.bool(&mut o, "tpm2"),
            };
            d.finish(o);
            c
        }),
        device: d.str(&mut o, "device"),
        discard: d.bool_since(&mut o, "discard", V3_4),
        key_file: d.nested(&mut o, "keyFile", V3_2, resource),
        label: d.str(&mut o, "label"),
        name: d.str(&mut o, "name").unwrap_or_default(),
        open_options: d.str_list(&mut o, "openOptions", V3_4),
        options: d.str_list(&mut o, "options", V3_2),
        uuid: d.str(&mut o, "uuid"),
        wipe_volume: d.bool(&mut o, "wipeVolume"),
    };
    d.finish(o);
    x
}

fn systemd(d: &mut Decoder, n: &Node, p: &Path) -> Systemd {
    let Some(mut o) = d.object(n, p) else {
        return Systemd::default();
    };
    let s = Systemd {
        units: d.list(&mut o, "units", V3_0, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return Unit::default();
            };
            let u = Unit {
                contents: d.str(&mut o, "contents"),
                dropins: d.list(&mut o, "dropins", V3_0, |d, n, p| {
                    let Some(mut o) = d.object(n, p) else {
                        return Dropin::default();
                    };
                    let x = Dropin {
                        contents: d.str(&mut o, "contents"),
                        name: d.str(&mut o, "name").unwrap_or_default(),
                    };
                    d.finish(o);
                    x
                }),
                enabled: d.bool(&mut o, "enabled"),
                mask: d.bool(&mut o, "mask"),
                name: d.str(&mut o, "name").unwrap_or_default(),
            };
            d.finish(o);
            u
        }),
    };
    d.finish(o);
    s
}

fn passwd(d: &mut Decoder, n: &Node, p: &Path) -> Passwd {
    let Some(mut o) = d.object(n, p) else {
        return Passwd::default();
    };
    let x = Passwd {
        groups: d.list(&mut o, "groups", V3_0, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return PasswdGroup::default();
            };
            let g = PasswdGroup {
                gid: d.int(&mut o, "gid"),
                name: d.str(&mut o, "name").unwrap_or_default(),
                password_hash: d.str(&mut o, "passwordHash"),
                should_exist: d.bool_since(&mut o, "shouldExist", V3_2),
                system: d.bool(&mut o, "system"),
            };
            d.finish(o);
            g
        }),
        users: d.list(&mut o, "users", V3_0, |d, n, p| {
            let Some(mut o) = d.object(n, p) else {
                return PasswdUser::default();
            };
            let u = PasswdUser {
                gecos: d.str(&mut o, "gecos"),
                groups: d.str_list(&mut o, "groups", V3_0),
                home_dir: d.str(&mut o, "homeDir"),
                name: d.str(&mut o, "name").unwrap_or_default(),
                no_create_home: d.bool(&mut o, "noCreateHome"),
                no_log_init: d.bool(&mut o, "noLogInit"),
                no_user_group: d.bool(&mut o, "noUserGroup"),
                password_hash: d.str(&mut o, "passwordHash"),
                primary_group: d.str(&mut o, "primaryGroup"),
                ssh_authorized_keys: d.str_list(&mut o, "sshAuthorizedKeys", V3_0),
                shell: d.str(&mut o, "shell"),
                should_exist: d.bool_since(&mut o, "shouldExist", V3_2),
                system: d.bool(&mut o, "system"),
                uid: d.int(&mut o, "uid"),
            };
            d.finish(o);
            u
        }),
    };
    d.finish(o);
    x
}
