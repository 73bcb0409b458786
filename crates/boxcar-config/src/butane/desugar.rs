//! Rewrite Butane sugar into plain Ignition nodes, in place.
//!
//! Generated nodes carry an [`Origin`] naming the YAML construct they came
//! from, so a later validation error on them points at the user's input.

use super::local::{walk, TreeEntry};
use super::variant::{requirement_label, Target};
use super::Options;
use crate::dataurl::{self, AutoCompress};
use crate::path::{camel_case, Path};
use crate::report::Report;
use crate::tree::{Entry, Node, Origin, Pos, Value};
use crate::version::SpecVersion;

/// Report at a known YAML node (Butane-phase errors are positioned at once).
fn report_at(r: &mut Report, path: Path, at: Pos, msg: impl Into<String>, warning: bool) {
    let d = if warning {
        r.warning(path.clone(), msg)
    } else {
        r.error(path.clone(), msg)
    };
    d.pos = Some(at);
    d.shown_path = Some(path.to_snake());
}

fn s(v: &str, origin: &Origin) -> Node {
    Node::generated(Value::Str(v.to_string()), origin)
}

pub fn desugar(doc: &mut Node, target: Target, opts: &Options, r: &mut Report) {
    camelize(doc);
    doc.remove("variant");
    doc.remove("version");
    // The Ignition version the output declares.
    let vo = Origin {
        path: Path::root().key("version"),
        pos: doc.pos,
    };
    if doc.get("ignition").is_none_or(|n| n.is_null()) {
        doc.set("ignition", Node::generated(Value::Map(vec![]), &vo));
    }
    if let Some(ign) = doc.get_mut("ignition") {
        if let Value::Map(_) = ign.value {
            if let Some(e) = ign.remove("version") {
                report_at(
                    r,
                    Path::root().keys(&["ignition", "version"]),
                    e.key_pos,
                    "Unused key version",
                    true,
                );
            }
            ign.set("version", s(target.spec.as_str(), &vo));
        }
    }
    let root = Path::root();
    for_each_resource(doc, &root, &mut |n, p| resource(n, p, target, opts, r));
    units(doc, target, opts, r);
    users(doc, target, opts, r);
    modes(doc, r);
    mount_units(doc, r);
    trees(doc, opts, r);
}

/// snake_case keys → Ignition's camelCase, remembering what was written.
fn camelize(n: &mut Node) {
    match &mut n.value {
        Value::Map(entries) => {
            for e in entries {
                e.key = camel_case(&e.written);
                camelize(&mut e.value);
            }
        }
        Value::List(items) => items.iter_mut().for_each(camelize),
        _ => {}
    }
}

fn list_items(n: Option<&mut Node>) -> impl Iterator<Item = (usize, &mut Node)> {
    n.and_then(|n| n.items_mut())
        .into_iter()
        .flat_map(|v| v.iter_mut().enumerate())
}

/// Visit every Resource position of the schema.
fn for_each_resource(doc: &mut Node, root: &Path, f: &mut dyn FnMut(&mut Node, &Path)) {
    let cfg = root.keys(&["ignition", "config"]);
    if let Some(c) = doc.get_mut("ignition").and_then(|i| i.get_mut("config")) {
        for (i, m) in list_items(c.get_mut("merge")) {
            f(m, &cfg.key("merge").index(i));
        }
        if let Some(rep) = c.get_mut("replace") {
            f(rep, &cfg.key("replace"));
        }
    }
    let cas = root.keys(&["ignition", "security", "tls", "certificateAuthorities"]);
    let tls = doc
        .get_mut("ignition")
        .and_then(|i| i.get_mut("security"))
        .and_then(|s| s.get_mut("tls"));
    for (i, ca) in list_items(tls.and_then(|t| t.get_mut("certificateAuthorities"))) {
        f(ca, &cas.index(i));
    }
    let sp = root.key("storage");
    let Some(storage) = doc.get_mut("storage") else { return };
    for (i, file) in list_items(storage.get_mut("files")) {
        let fp = sp.key("files").index(i);
        if let Some(c) = file.get_mut("contents") {
            f(c, &fp.key("contents"));
        }
        for (j, a) in list_items(file.get_mut("append")) {
            f(a, &fp.key("append").index(j));
        }
    }
    for (i, l) in list_items(storage.get_mut("luks")) {
        if let Some(k) = l.get_mut("keyFile") {
            f(k, &sp.key("luks").index(i).key("keyFile"));
        }
    }
}

/// `inline:` / `local:` → `source:` data URL plus explicit `compression`.
fn resource(n: &mut Node, p: &Path, target: Target, opts: &Options, r: &mut Report) {
    if !matches!(n.value, Value::Map(_)) {
        return;
    }
    let set: Vec<&str> = ["local", "inline", "source"]
        .into_iter()
        .filter(|k| n.get(k).is_some_and(|v| !v.is_null()))
        .collect();
    if set.len() > 1 {
        let last = set[set.len() - 1];
        let at = n.entry(last).map_or(n.pos, |e| e.value.pos);
        report_at(
            r,
            p.key(last),
            at,
            "only one of the following can be set: inline, local, source",
            false,
        );
        return;
    }
    let user_compression = n.get("compression").and_then(|c| c.as_str()).unwrap_or("").to_string();
    let (data, key) = if let Some(e) = n.remove("inline") {
        if e.value.is_null() {
            return;
        }
        match e
            .value
            .as_str()
            .map(str::to_string)
            .or(e.value.text.as_deref().map(str::to_string))
        {
            Some(t) => (t.into_bytes(), e),
            None if e.value.is_null() => return,
            None => {
                let msg = format!("expected a string, found {}", e.value.value.kind());
                report_at(r, p.key("inline"), e.value.pos, msg, false);
                return;
            }
        }
    } else if let Some(e) = n.remove("local") {
        let Some(rel) = e.value.as_str() else {
            if !e.value.is_null() {
                report_at(
                    r,
                    p.key("local"),
                    e.value.pos,
                    "expected a string, found a non-string",
                    false,
                );
            }
            return;
        };
        match opts.files_dir.read(rel) {
            Ok(d) => (d, e),
            Err(m) => {
                report_at(r, p.key("local"), e.value.pos, m, false);
                return;
            }
        }
    } else {
        return;
    };
    let origin = Origin {
        path: p.key(&key.written).to_snake(),
        pos: key.value.pos,
    };
    if p.starts_with(&Path::root().keys(&["ignition", "config"])) {
        // A merged config is validated now, not at boot.
        let declared = crate::json::parse(&data)
            .ok()
            .and_then(|t| t.get("ignition")?.get("version")?.as_str().map(str::to_string));
        if declared.as_deref().is_some_and(|v| v != target.spec.as_str()) {
            let d = r.warning(
                p.key("version"),
                "skipping validation for the merge/replace ignition config due to an unkown version",
            );
            d.pos = Some(n.pos);
            d.shown_path = Some(p.key("version").to_snake());
        } else if let Err(rep) = crate::ignition::parse(&data, Default::default()) {
            for d in rep.entries.iter().filter(|d| d.severity == crate::Severity::Error) {
                report_at(
                    r,
                    origin.path.clone(),
                    origin.pos,
                    format!("embedded Ignition config: {d}"),
                    false,
                );
            }
        }
    }
    let compress = if user_compression.is_empty() {
        AutoCompress::Allowed
    } else {
        AutoCompress::Forbidden
    };
    let enc = dataurl::encode(&data, compress);
    n.set("source", s(&enc.url, &origin));
    let compression = if user_compression.is_empty() {
        enc.compression
    } else {
        user_compression
    };
    n.set("compression", s(&compression, &origin));
}

fn local_sugar_allowed(target: Target, r: &mut Report, path: Path, at: Pos, written: &str) -> bool {
    if target.has_local_sugar() {
        return true;
    }
    let msg = format!("{written:?} {}", requirement_label(SpecVersion::V3_4));
    report_at(r, path, at, msg, false);
    false
}

fn read_text(opts: &Options, rel: &str) -> Result<String, String> {
    opts.files_dir
        .read(rel)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// `contents_local` on units and drop-ins.
fn units(doc: &mut Node, target: Target, opts: &Options, r: &mut Report) {
    let up = Path::root().keys(&["systemd", "units"]);
    let Some(systemd) = doc.get_mut("systemd") else { return };
    for (i, unit) in list_items(systemd.get_mut("units")) {
        let p = up.index(i);
        contents_local(unit, &p, target, opts, r);
        for (j, d) in list_items(unit.get_mut("dropins")) {
            contents_local(d, &p.key("dropins").index(j), target, opts, r);
        }
    }
}

fn contents_local(n: &mut Node, p: &Path, target: Target, opts: &Options, r: &mut Report) {
    let Some(e) = n.remove("contentsLocal") else { return };
    if e.value.is_null() {
        return;
    }
    if !local_sugar_allowed(target, r, p.key("contentsLocal"), e.key_pos, &e.written) {
        return;
    }
    if n.get("contents").is_some_and(|c| !c.is_null()) {
        let msg = "only one of the following can be set: contents, contents_local";
        report_at(r, p.key("contentsLocal"), e.value.pos, msg, false);
        return;
    }
    let Some(rel) = e.value.as_str() else {
        report_at(r, p.key("contentsLocal"), e.value.pos, "expected a string", false);
        return;
    };
    match read_text(opts, rel) {
        Ok(t) => {
            let o = Origin {
                path: p.key("contentsLocal").to_snake(),
                pos: e.value.pos,
            };
            n.set("contents", s(&t, &o));
        }
        Err(m) => report_at(r, p.key("contentsLocal"), e.value.pos, m, false),
    }
}

/// `ssh_authorized_keys_local`: one key per non-empty line.
fn users(doc: &mut Node, target: Target, opts: &Options, r: &mut Report) {
    let up = Path::root().keys(&["passwd", "users"]);
    let Some(passwd) = doc.get_mut("passwd") else { return };
    for (i, user) in list_items(passwd.get_mut("users")) {
        let p = up.index(i);
        let Some(e) = user.remove("sshAuthorizedKeysLocal") else {
            continue;
        };
        if e.value.is_null() || !local_sugar_allowed(target, r, p.key("sshAuthorizedKeysLocal"), e.key_pos, &e.written)
        {
            continue;
        }
        if !opts.files_dir.is_set() {
            report_at(
                r,
                p.key("sshAuthorizedKeysLocal"),
                e.value.pos,
                super::local::ERR_NO_FILES_DIR,
                false,
            );
            continue;
        }
        let Value::List(files) = &e.value.value else {
            report_at(
                r,
                p.key("sshAuthorizedKeysLocal"),
                e.value.pos,
                "expected a list",
                false,
            );
            continue;
        };
        let mut keys: Vec<Node> = match user.get("sshAuthorizedKeys").map(|k| &k.value) {
            Some(Value::List(v)) => v.clone(),
            _ => Vec::new(),
        };
        for (j, f) in files.iter().enumerate() {
            let fp = p.key("sshAuthorizedKeysLocal").index(j);
            let Some(rel) = f.as_str() else {
                report_at(r, fp, f.pos, "expected a string", false);
                continue;
            };
            match read_text(opts, rel) {
                Ok(t) => {
                    let o = Origin {
                        path: fp.to_snake(),
                        pos: f.pos,
                    };
                    keys.extend(
                        t.split('\n')
                            .map(|l| l.trim_end_matches('\r'))
                            .filter(|l| !l.is_empty())
                            .map(|l| s(l, &o)),
                    );
                }
                Err(m) => report_at(r, fp, f.pos, m, false),
            }
        }
        let pos = e.key_pos;
        user.set("sshAuthorizedKeys", Node::new(Value::List(keys), pos));
    }
}

/// Butane's "you probably meant octal" warning.
fn modes(doc: &mut Node, r: &mut Report) {
    let sp = Path::root().key("storage");
    let Some(storage) = doc.get("storage") else { return };
    for (list, dir) in [("files", false), ("directories", true)] {
        let Some(Value::List(items)) = storage.get(list).map(|n| &n.value) else {
            continue;
        };
        for (i, it) in items.iter().enumerate() {
            if let Some(m) = it.get("mode") {
                if let Value::Int(mode) = m.value {
                    if looks_decimal(mode, dir) {
                        report_at(
                            r,
                            sp.key(list).index(i).key("mode"),
                            m.pos,
                            "unreasonable mode would be reasonable if specified in octal; remember to add a leading zero",
                            true,
                        );
                    }
                }
            }
        }
    }
}

/// True when `mode` is unusual but its decimal digits read as octal are a
/// usual mode (644 → 0644).
pub fn looks_decimal(mode: i64, dir: bool) -> bool {
    if !(0..=7777).contains(&mode) {
        return false;
    }
    let mut octal = 0;
    for div in [1000, 100, 10, 1] {
        let digit = (mode / div) % 10;
        if digit > 7 {
            return false;
        }
        octal = (octal << 3) | digit;
    }
    !typical_mode(mode, dir) && typical_mode(octal, dir)
}

fn typical_mode(mode: i64, dir: bool) -> bool {
    if mode == 0 {
        return true;
    }
    let (mut had_r, mut had_w, mut had_x) = (false, false, false);
    for perm in [mode & 7, (mode >> 3) & 7, (mode >> 6) & 7] {
        let (rd, wr, ex) = (perm & 4 != 0, perm & 2 != 0, perm & 1 != 0);
        if (!rd && had_r) || (!wr && had_w) || (!ex && had_x) || (ex && had_r && !had_x) || ((wr || ex) && !rd) {
            return false;
        }
        had_r |= rd;
        had_w |= wr;
        had_x |= ex;
    }
    if !had_r {
        return false;
    }
    if dir {
        had_x && mode & 0o4000 == 0 && (mode & 0o3000 == 0 || had_w)
    } else {
        (mode & 0o6000 == 0 || (had_x && mode & 2 == 0)) && mode & 0o1000 == 0
    }
}

/// systemd's path escaping for unit names (`/var/lib/data` → `var-lib-data`).
pub fn unit_name_path_escape(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return "-".into();
    }
    let mut out = String::new();
    for (i, b) in trimmed.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || b == b':' || b == b'_' || b == b'.' => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// `with_mount_unit: true` → a `.mount` (or `.swap`) unit, merged under any
/// unit of the same name the user wrote.
fn mount_units(doc: &mut Node, r: &mut Report) {
    let fp = Path::root().keys(&["storage", "filesystems"]);
    let luks_tang: Vec<(String, bool)> = doc
        .get("storage")
        .and_then(|s| s.get("luks"))
        .map(|l| match &l.value {
            Value::List(v) => v
                .iter()
                .map(|x| {
                    let name = x.get("name").and_then(|n| n.as_str()).unwrap_or("").to_string();
                    let tang = x
                        .get("clevis")
                        .and_then(|c| c.get("tang"))
                        .is_some_and(|t| matches!(&t.value, Value::List(v) if !v.is_empty()));
                    (name, tang)
                })
                .collect(),
            _ => vec![],
        })
        .unwrap_or_default();
    let mut generated: Vec<Node> = Vec::new();
    for (i, fs) in list_items(doc.get_mut("storage").and_then(|s| s.get_mut("filesystems"))) {
        let p = fp.index(i);
        let Some(e) = fs.remove("withMountUnit") else { continue };
        if !matches!(e.value.value, Value::Bool(true)) {
            continue;
        }
        let get = |k: &str| fs.get(k).and_then(|n| n.as_str()).map(str::to_string);
        let device = get("device").unwrap_or_default();
        let Some(format) = get("format").filter(|f| !f.is_empty()) else {
            report_at(
                r,
                p.key("format"),
                fs.pos,
                "format is required if with_mount_unit is true",
                false,
            );
            continue;
        };
        let swap = format == "swap";
        let path = get("path").filter(|p| !p.is_empty());
        if !swap && path.is_none() {
            report_at(
                r,
                p.key("path"),
                fs.pos,
                "path is required if with_mount_unit is true and format is not swap",
                false,
            );
            continue;
        }
        let remote = luks_tang.iter().any(|(name, tang)| {
            *tang && (device == format!("/dev/mapper/{name}") || device == format!("/dev/disk/by-id/dm-name-{name}"))
        });
        let options: Vec<String> = match fs.get("mountOptions").map(|n| &n.value) {
            Some(Value::List(v)) => v.iter().filter_map(|n| n.as_str().map(str::to_string)).collect(),
            _ => vec![],
        };
        let (name, contents) = mount_unit(&device, path.as_deref(), &format, &options, remote);
        let o = Origin {
            path: p.key("withMountUnit").to_snake(),
            pos: e.value.pos,
        };
        generated.push(Node::generated(
            Value::Map(vec![
                gen_entry("name", s(&name, &o)),
                gen_entry("enabled", Node::generated(Value::Bool(true), &o)),
                gen_entry("contents", s(&contents, &o)),
            ]),
            &o,
        ));
    }
    if generated.is_empty() {
        return;
    }
    if doc.get("systemd").is_none_or(|n| n.is_null()) {
        let pos = doc.pos;
        doc.set("systemd", Node::new(Value::Map(vec![]), pos));
    }
    let Some(systemd) = doc.get_mut("systemd") else { return };
    if systemd.get("units").is_none_or(|n| n.is_null()) {
        let pos = systemd.pos;
        systemd.set("units", Node::new(Value::List(vec![]), pos));
    }
    let Some(units) = systemd.get_mut("units").and_then(|u| u.items_mut()) else {
        return;
    };
    // Generated units are the merge parent: the user's fields win.
    let mut front = Vec::new();
    for g in generated {
        let gname = g.get("name").and_then(|n| n.as_str()).unwrap_or("").to_string();
        match units
            .iter_mut()
            .find(|u| u.get("name").and_then(|n| n.as_str()) == Some(gname.as_str()))
        {
            Some(user) => {
                for k in ["enabled", "contents"] {
                    if user.get(k).is_none_or(|n| n.is_null()) {
                        if let Some(v) = g.get(k) {
                            user.set(k, v.clone());
                        }
                    }
                }
            }
            None => front.push(g),
        }
    }
    units.splice(0..0, front);
}

fn gen_entry(key: &str, value: Node) -> Entry {
    Entry {
        key: key.to_string(),
        written: key.to_string(),
        key_pos: value.pos,
        value,
    }
}

/// The unit Butane writes for a filesystem.
pub fn mount_unit(
    device: &str,
    path: Option<&str>,
    format: &str,
    options: &[String],
    remote: bool,
) -> (String, String) {
    let mut opts: Vec<String> = options.to_vec();
    if remote {
        opts.push("_netdev".into());
    }
    let opt_line = if opts.is_empty() {
        String::new()
    } else {
        format!("\nOptions={}", opts.join(","))
    };
    if format == "swap" {
        let name = format!("{}.swap", unit_name_path_escape(device));
        let c = format!("# Generated by Butane\n[Swap]\nWhat={device}{opt_line}\n\n[Install]\nRequiredBy=swap.target");
        return (name, c);
    }
    let path = path.unwrap_or("/");
    let esc = unit_name_path_escape(device);
    let target = if remote { "remote-fs.target" } else { "local-fs.target" };
    let c = format!(
        "# Generated by Butane\n[Unit]\nRequires=systemd-fsck@{esc}.service\nAfter=systemd-fsck@{esc}.service\n\n[Mount]\nWhere={path}\nWhat={device}\nType={format}{opt_line}\n\n[Install]\nRequiredBy={target}"
    );
    (format!("{}.mount", unit_name_path_escape(path)), c)
}

/// `storage.trees`: every regular file becomes a `files` entry (0755 if
/// executable, else 0644, unless the user set a mode on an explicit entry
/// for that path), every symlink a `links` entry.
fn trees(doc: &mut Node, opts: &Options, r: &mut Report) {
    let tp = Path::root().keys(&["storage", "trees"]);
    let Some(storage) = doc.get_mut("storage") else { return };
    let Some(e) = storage.remove("trees") else { return };
    let Value::List(trees) = e.value.value else {
        if !e.value.is_null() {
            report_at(r, tp, e.value.pos, "expected a list", false);
        }
        return;
    };
    for name in ["files", "links", "directories"] {
        if storage.get(name).is_none_or(|n| n.is_null()) {
            let pos = storage.pos;
            storage.set(name, Node::new(Value::List(vec![]), pos));
        }
    }
    for (i, t) in trees.iter().enumerate() {
        let p = tp.index(i);
        let local = t.get("local").and_then(|n| n.as_str()).unwrap_or("");
        if let Some(Value::Map(entries)) = Some(&t.value) {
            for e in entries.iter().filter(|e| e.key != "local" && e.key != "path") {
                report_at(r, p.key(&e.key), e.key_pos, format!("Unused key {}", e.written), true);
            }
        }
        if local.is_empty() {
            report_at(r, p.clone(), t.pos, "local is required", false);
            continue;
        }
        if !opts.files_dir.is_set() {
            report_at(r, p.clone(), t.pos, super::local::ERR_NO_FILES_DIR, false);
            return;
        }
        let dir = match opts.files_dir.resolve(local) {
            Ok(d) => d,
            Err(m) => {
                report_at(r, p.clone(), t.pos, m, false);
                continue;
            }
        };
        if !dir.is_dir() {
            report_at(r, p.clone(), t.pos, "root of tree must be a directory", false);
            continue;
        }
        let dest = t
            .get("path")
            .and_then(|n| n.as_str())
            .filter(|s| !s.is_empty())
            .unwrap_or("/")
            .to_string();
        let entries = match walk(&dir) {
            Ok(v) => v,
            Err(m) => {
                report_at(r, p.clone(), t.pos, m, false);
                continue;
            }
        };
        let o = Origin {
            path: p.to_snake(),
            pos: t.pos,
        };
        for entry in entries {
            add_tree_entry(storage, entry, &dest, &o, r);
        }
    }
}

fn join(dest: &str, rel: &str) -> String {
    crate::validate::storage::clean(&format!("{}/{}", dest.trim_end_matches('/'), rel))
}

fn path_of(n: &Node) -> Option<&str> {
    n.get("path").and_then(|p| p.as_str())
}

fn add_tree_entry(storage: &mut Node, entry: TreeEntry, dest: &str, o: &Origin, r: &mut Report) {
    let rel = match &entry {
        TreeEntry::File { rel, .. } | TreeEntry::Symlink { rel, .. } => rel.clone(),
    };
    let target_path = join(dest, &rel);
    let (own, others): (&str, [&str; 2]) = match entry {
        TreeEntry::File { .. } => ("files", ["links", "directories"]),
        TreeEntry::Symlink { .. } => ("links", ["files", "directories"]),
    };
    let exists_elsewhere = others.iter().any(|l| {
        storage
            .get(l)
            .and_then(|n| match &n.value {
                Value::List(v) => Some(v.iter().any(|x| path_of(x) == Some(target_path.as_str()))),
                _ => None,
            })
            .unwrap_or(false)
    });
    if exists_elsewhere {
        report_at(
            r,
            o.path.clone(),
            o.pos,
            "matching filesystem node has existing contents or different type",
            false,
        );
        return;
    }
    let Some(list) = storage.get_mut(own).and_then(|n| n.items_mut()) else {
        return;
    };
    let idx = match list.iter().position(|x| path_of(x) == Some(target_path.as_str())) {
        Some(i) => i,
        None => {
            list.push(Node::generated(
                Value::Map(vec![gen_entry("path", s(&target_path, o))]),
                o,
            ));
            list.len() - 1
        }
    };
    let node = &mut list[idx];
    match entry {
        TreeEntry::File { executable, data, .. } => {
            let has_source = node
                .get("contents")
                .and_then(|c| c.get("source"))
                .is_some_and(|s| !s.is_null());
            if has_source {
                report_at(
                    r,
                    o.path.clone(),
                    o.pos,
                    "matching filesystem node has existing contents or different type",
                    false,
                );
                return;
            }
            if node.get("contents").is_none_or(|c| c.is_null()) {
                node.set("contents", Node::generated(Value::Map(vec![]), o));
            }
            let compression = node
                .get("contents")
                .and_then(|c| c.get("compression"))
                .and_then(|c| c.as_str())
                .unwrap_or("")
                .to_string();
            let enc = dataurl::encode(
                &data,
                if compression.is_empty() {
                    AutoCompress::Allowed
                } else {
                    AutoCompress::Forbidden
                },
            );
            if let Some(c) = node.get_mut("contents") {
                c.set("source", s(&enc.url, o));
                if compression.is_empty() {
                    c.set("compression", s(&enc.compression, o));
                }
            }
            if node.get("mode").is_none_or(|m| m.is_null()) {
                node.set(
                    "mode",
                    Node::generated(Value::Int(if executable { 0o755 } else { 0o644 }), o),
                );
            }
        }
        TreeEntry::Symlink { target, .. } => {
            if node
                .get("target")
                .and_then(|t| t.as_str())
                .is_some_and(|t| !t.is_empty())
            {
                report_at(
                    r,
                    o.path.clone(),
                    o.pos,
                    "matching filesystem node has existing contents or different type",
                    false,
                );
                return;
            }
            node.set("target", s(&target, o));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_mode_examples() {
        assert!(looks_decimal(644, false)); // meant 0644
        assert!(looks_decimal(755, true)); // meant 0755
        assert!(!looks_decimal(0o644, false)); // 420 is already right
        assert!(!looks_decimal(0, false));
        assert!(!looks_decimal(888, false)); // 8 is no octal digit
    }

    #[test]
    fn escapes_unit_names_like_systemd() {
        assert_eq!(unit_name_path_escape("/var/lib/data"), "var-lib-data");
        assert_eq!(
            unit_name_path_escape("/dev/disk/by-label/my-data"),
            "dev-disk-by\\x2dlabel-my\\x2ddata"
        );
        assert_eq!(unit_name_path_escape("/"), "-");
    }
}
