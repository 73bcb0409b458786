//! Shared test helpers: data-driven cases, starting trees, a real HTTP
//! server on loopback, the real Ignition 2.14 as peer, tree manifests.
#![allow(dead_code)]

pub mod http;
pub mod tftp;

use boxcar_provision::provider::FileProvider;
use boxcar_provision::stages::kargs::KargsCommand;
use boxcar_provision::{Engine, Stage, StageFailure};
use serde::Deserialize;
use sha2::{Digest, Sha256, Sha512};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The real Ignition binary from Debian's `ignition` package.
pub const IGNITION: &str = "/usr/lib/dracut/modules.d/30ignition/ignition";

/// A starting-tree node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub path: String,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub dir: bool,
    #[serde(default)]
    pub symlink: Option<String>,
    #[serde(default)]
    pub mode: Option<u32>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
}

/// One data-driven case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Case {
    pub description: String,
    #[serde(default)]
    pub tree: Vec<Node>,
    /// Copy the fixture login.defs (private groups, UMASK 077) into the root.
    #[serde(default)]
    pub login_defs: bool,
    #[serde(default)]
    pub http: BTreeMap<String, http::Route>,
    /// Files served by a loopback TFTP server (`{{TFTP}}` in the config).
    #[serde(default)]
    pub tftp: BTreeMap<String, String>,
    pub config: serde_json::Value,
    /// `success` (default) or `failure`: what both engines must do.
    #[serde(default)]
    pub expect: Option<String>,
    /// For hostile cases: a substring the boxcar error must contain.
    #[serde(default)]
    pub error_contains: Option<String>,
    /// For hostile cases: the JSON path the failure must name.
    #[serde(default)]
    pub error_path: Option<String>,
    /// For hostile cases: a path (relative to the root) that must exist afterwards.
    #[serde(default)]
    pub inside: Option<String>,
    /// HTTP attempts for boxcar (hostile cases keep it low).
    #[serde(default)]
    pub http_attempts: Option<u32>,
}

/// Load all cases in `dir`, sorted by file name.
pub fn load_cases(dir: &str) -> Vec<(String, Case)> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut names: Vec<PathBuf> = fs::read_dir(&base)
        .unwrap_or_else(|e| panic!("reading {}: {e}", base.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            let case: Case = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_stem().unwrap().to_string_lossy().into_owned(), case)
        })
        .collect()
}

/// Replace `{{HTTP}}`, `{{sha512:/route}}`, `{{sha256:/route}}` in the config.
pub fn render_config(case: &Case, base_url: &str) -> String {
    render_config_with(case, base_url, "tftp://127.0.0.1:1")
}

/// Like [`render_config`], also replacing `{{TFTP}}`.
pub fn render_config_with(case: &Case, base_url: &str, tftp_url: &str) -> String {
    let mut s = serde_json::to_string(&case.config)
        .unwrap()
        .replace("{{HTTP}}", base_url)
        .replace("{{TFTP}}", tftp_url);
    for (route, r) in &case.http {
        let body = r.decoded_body();
        let h512: String = Sha512::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
        let h256: String = Sha256::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
        s = s.replace(&format!("{{{{sha512:{route}}}}}"), &h512);
        s = s.replace(&format!("{{{{sha256:{route}}}}}"), &h256);
    }
    s
}

const LOGIN_DEFS: &str = "MAIL_DIR /var/spool/mail\nUID_MIN 1000\nUID_MAX 60000\nSYS_UID_MIN 201\nSYS_UID_MAX 999\n\
GID_MIN 1000\nGID_MAX 60000\nSYS_GID_MIN 201\nSYS_GID_MAX 999\nUMASK 077\nUSERGROUPS_ENAB yes\nENCRYPT_METHOD SHA512\n";

/// Build the starting tree: the shadow-utils files Ignition's peer script
/// creates, optional login.defs, then the case's nodes.
pub fn make_tree(root: &Path, case: &Case) {
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    fs::write(root.join("etc/gshadow"), "root:*::\n").unwrap();
    for f in ["etc/shadow", "etc/gshadow"] {
        fs::set_permissions(root.join(f), fs::Permissions::from_mode(0o640)).unwrap();
    }
    if case.login_defs {
        fs::write(root.join("etc/login.defs"), LOGIN_DEFS).unwrap();
    }
    for n in &case.tree {
        let p = root.join(n.path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        if let Some(c) = &n.file {
            fs::write(&p, c).unwrap();
        } else if let Some(t) = &n.symlink {
            std::os::unix::fs::symlink(t, &p).unwrap();
        } else if n.dir {
            fs::create_dir_all(&p).unwrap();
        }
        if let Some(m) = n.mode {
            fs::set_permissions(&p, fs::Permissions::from_mode(m)).unwrap();
        }
        if n.uid.is_some() || n.gid.is_some() {
            std::os::unix::fs::lchown(&p, n.uid, n.gid).unwrap();
        }
    }
}

/// A fresh directory every user can traverse (Ignition writes SSH keys as
/// the user, so the path to the root must be searchable by others).
pub fn scratch() -> tempfile::TempDir {
    let t = tempfile::Builder::new()
        .prefix("boxcar-prov-")
        .tempdir_in("/tmp")
        .unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    t
}

/// Outcome of one engine run.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub message: String,
    pub kargs: String,
}

/// Run the real Ignition 2.14 against `root` the way the peer tool does:
/// fetch-offline, fetch if needed, kargs if configured, files.
pub fn run_ignition(cfg_path: &Path, root: &Path, work: &Path) -> Run {
    assert!(
        Path::new(IGNITION).exists(),
        "real Ignition missing at {IGNITION}: run scripts/setup.sh (Debian package `ignition`)"
    );
    let bin = work.join("bin");
    let sysconf = work.join("sysconf");
    fs::create_dir_all(&bin).unwrap();
    fs::create_dir_all(&sysconf).unwrap();
    fs::write(bin.join("setfiles"), "#!/bin/sh\ncat >/dev/null\n").unwrap();
    let kargs_file = work.join("kargs.args");
    fs::write(
        bin.join("ignition-kargs-helper"),
        format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n", kargs_file.display()),
    )
    .unwrap();
    for f in ["setfiles", "ignition-kargs-helper"] {
        fs::set_permissions(bin.join(f), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let sel_dir = root.join("etc/selinux");
    let sel_created = !sel_dir.exists();
    fs::create_dir_all(&sel_dir).unwrap();
    fs::write(sel_dir.join("config"), "SELINUXTYPE=targeted\n").unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let stage = |s: &str| {
        let out = Command::new(IGNITION)
            .args(["-platform", "file", "-root"])
            .arg(root)
            .arg("-config-cache")
            .arg(work.join("ignition.json"))
            .arg("-state-file")
            .arg(work.join("state"))
            .arg("-neednet")
            .arg(work.join("neednet"))
            .args(["-log-to-stdout", "-stage", s])
            .env("PATH", &path)
            .env("IGNITION_SYSTEM_CONFIG_DIR", &sysconf)
            .env("IGNITION_CONFIG_FILE", cfg_path)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), log)
    };
    let cfg_text = fs::read_to_string(cfg_path).unwrap();
    let mut steps = vec!["fetch-offline"];
    let mut result = (true, String::new());
    for s in ["fetch-offline", "fetch", "kargs", "files"] {
        if s == "fetch" && !work.join("neednet").exists() {
            continue;
        }
        if s == "kargs" && !cfg_text.contains("\"kernelArguments\"") {
            continue;
        }
        steps.push(s);
        let (ok, log) = stage(s);
        if !ok {
            let crit: Vec<&str> = log.lines().filter(|l| l.contains("CRITICAL")).collect();
            result = (false, format!("ignition {s} failed: {}", crit.join(" | ")));
            break;
        }
    }
    if sel_created {
        let _ = fs::remove_dir_all(&sel_dir);
    } else {
        let _ = fs::remove_file(sel_dir.join("config"));
    }
    let _ = fs::remove_file(root.join("etc/.pwd.lock"));
    Run {
        ok: result.0,
        message: result.1,
        kargs: fs::read_to_string(&kargs_file).unwrap_or_default(),
    }
}

/// Run boxcar-provision (the library, as the binary does) against `root`.
pub fn run_boxcar(cfg_path: &Path, root: &Path, work: &Path, http_attempts: u32) -> (Run, Option<StageFailure>) {
    let kargs_file = work.join("boxcar-kargs.args");
    let helper = work.join("boxcar-kargs-helper");
    fs::write(
        &helper,
        format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n", kargs_file.display()),
    )
    .unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    let mut e = Engine::new(root, work.join("run"));
    e.providers = vec![Box::new(FileProvider {
        path: cfg_path.to_path_buf(),
    })];
    e.kargs = Box::new(KargsCommand { program: helper });
    e.http.max_attempts = http_attempts;
    e.http.initial_backoff = std::time::Duration::from_millis(20);
    e.http.response_timeout = std::time::Duration::from_secs(2);
    let r = e.run(&Stage::ALL);
    let kargs = fs::read_to_string(&kargs_file).unwrap_or_default();
    match r {
        Ok(_) => (
            Run {
                ok: true,
                message: String::new(),
                kargs,
            },
            None,
        ),
        Err((_, f)) => (
            Run {
                ok: false,
                message: f.to_string(),
                kargs,
            },
            Some(f),
        ),
    }
}

const EXCLUDED: [&str; 10] = [
    "etc/.ignition-result.json",
    "etc/.boxcar-provision-result.json",
    "etc/.pwd.lock",
    "etc/passwd-",
    "etc/group-",
    "etc/shadow-",
    "etc/gshadow-",
    "etc/subuid-",
    "etc/subgid-",
    "etc/selinux",
];

/// A normalised listing: one line per node with type, mode, owner, link
/// count (files), size, path, link target and a content digest; shadow's
/// last-change field and the preset file's line order are normalised
/// (Ignition writes presets in Go map order, which is random).
pub fn manifest(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let mut ents: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    ents.sort();
    for p in ents {
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if EXCLUDED.contains(&rel.as_str()) {
            continue;
        }
        let m = fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let mode = m.mode() & 0o7777;
        let owner = format!("{}:{}", m.uid(), m.gid());
        if ft.is_symlink() {
            let t = fs::read_link(&p).unwrap();
            out.push(format!("l {owner} {rel} -> {}", t.display()));
        } else if ft.is_dir() {
            out.push(format!("d {mode:o} {owner} {rel}"));
            walk(root, &p, out);
        } else if ft.is_file() {
            let mut data = fs::read(&p).unwrap();
            if rel == "etc/shadow" {
                let t = String::from_utf8_lossy(&data)
                    .lines()
                    .map(|l| {
                        let mut f: Vec<&str> = l.split(':').collect();
                        if f.len() > 2 {
                            f[2] = "LASTCHG";
                        }
                        f.join(":") + "\n"
                    })
                    .collect::<String>();
                data = t.into_bytes();
            }
            if rel.ends_with("20-ignition.preset") {
                let mut lines: Vec<&str> = std::str::from_utf8(&data).unwrap().lines().collect();
                lines.sort();
                data = (lines.join("\n") + "\n").into_bytes();
            }
            let shown = match std::str::from_utf8(&data) {
                Ok(s) if data.len() <= 200 => format!("{s:?}"),
                _ => Sha256::digest(&data)
                    .iter()
                    .take(8)
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            };
            out.push(format!("f {mode:o} {owner} n{} {rel} {shown}", m.nlink()));
        } else {
            out.push(format!("? {mode:o} {owner} {rel}"));
        }
    }
}

/// Lines only in `a` (-) and only in `b` (+).
pub fn diff(a: &[String], b: &[String]) -> String {
    let mut s = String::new();
    for l in a.iter().filter(|l| !b.contains(l)) {
        s.push_str(&format!("- {l}\n"));
    }
    for l in b.iter().filter(|l| !a.contains(l)) {
        s.push_str(&format!("+ {l}\n"));
    }
    s
}
