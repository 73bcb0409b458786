//! `boxcar sysext`: build, validate, list, status, merge, unmerge, refresh, update.
//!
//! Thin over `boxcar-sysext`; the semantics are those of systemd-sysext 252 and sysupdate.

use crate::exit;
use boxcar_sysext::build::{self, BuildSpec, Format, ReleaseSpec, ReloadManager};
use boxcar_sysext::compat::Checks;
use boxcar_sysext::merge::{self, Options, Outcome};
use boxcar_sysext::{discover, sums, transfer, update};
use std::path::{Path, PathBuf};

/// Manage system extensions (systemd-sysext compatible).
#[derive(clap::Args)]
pub struct Args {
    /// Operate on this tree instead of `/`.
    #[arg(long, global = true, default_value = "/")]
    root: PathBuf,
    /// Skip the compatibility checks (like `systemd-sysext --force`).
    #[arg(long, global = true)]
    force: bool,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// List the extensions found in the search directories (after shadowing).
    List,
    /// Show, for every extension, whether it would be merged and why not. Exit 1 if any is ignored.
    Validate,
    /// Show what is merged into /usr and /opt.
    Status,
    /// Merge all compatible extensions (fails if already merged).
    Merge,
    /// Unmerge (works on merges made by systemd-sysext too).
    Unmerge,
    /// Unmerge, then merge what is there now.
    Refresh,
    /// Build a reproducible extension image from a directory tree or Debian packages.
    Build(BuildArgs),
    /// Apply sysupdate transfer files: download, verify, keep N versions, switch the symlink.
    Update(UpdateArgs),
    /// Build every extension of a JSON manifest and publish images, SHA256SUMS and transfer
    /// files into a directory any static HTTP server can serve.
    Bakery {
        /// The manifest (see docs/sysext.md).
        manifest: PathBuf,
        /// Output directory.
        out: PathBuf,
    },
}

#[derive(clap::ValueEnum, Clone, Copy)]
enum FormatArg {
    Squashfs,
    Erofs,
}

#[derive(clap::Args)]
struct BuildArgs {
    /// Extension name (NAME.raw, extension-release.NAME).
    #[arg(long)]
    name: String,
    /// Source tree holding usr/ and/or opt/.
    #[arg(required_unless_present = "deb", conflicts_with = "deb")]
    source: Option<PathBuf>,
    /// Build from Debian packages instead of a tree: their contents (not their maintainer
    /// scripts) are unpacked into one tree, in the order given (repeatable).
    #[arg(long, value_name = "PKG.deb")]
    deb: Vec<PathBuf>,
    /// Output image (default: NAME.raw in the current directory). A SHA256SUMS line is
    /// written next to it.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Image file system.
    #[arg(long, value_enum, default_value = "squashfs")]
    format: FormatArg,
    /// ID= (host OS ID, or _any for every OS).
    #[arg(long, default_value = "_any")]
    id: String,
    /// VERSION_ID= (ties the extension to one OS version).
    #[arg(long)]
    version_id: Option<String>,
    /// SYSEXT_LEVEL= (ties it to an extension API level).
    #[arg(long)]
    sysext_level: Option<String>,
    /// ARCHITECTURE= (x86-64, arm64, …, or _any).
    #[arg(long)]
    architecture: Option<String>,
    /// SYSEXT_SCOPE= (e.g. "system initrd").
    #[arg(long)]
    scope: Option<String>,
    /// Set EXTENSION_RELOAD_MANAGER=1.
    #[arg(long)]
    reload_manager: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Do nothing after switching.
    Nothing,
    /// Refresh the merged extensions in place.
    Refresh,
    /// Touch ROOT/run/reboot-required (for kured/locksmith-style reboots).
    RebootRequired,
}

#[derive(clap::Args)]
struct UpdateArgs {
    /// Transfer files; default: ROOT/{etc,run,usr/local/lib,usr/lib}/sysupdate[.COMPONENT].d/*.{conf,transfer}.
    files: Vec<PathBuf>,
    /// Component (reads sysupdate.COMPONENT.d directories).
    #[arg(short = 'C', long)]
    component: Option<String>,
    /// What to do when a symlink changed.
    #[arg(long, value_enum, default_value = "nothing")]
    then: After,
}

fn opts(a: &Args) -> Options {
    let mut o = Options::new(&a.root);
    if a.force {
        o.checks = Checks::Skip;
    }
    o
}

fn fail(e: impl std::fmt::Display) -> u8 {
    eprintln!("error: {e}");
    exit::IO
}

pub fn run(a: Args) -> u8 {
    match &a.cmd {
        Cmd::List => match discover::discover(&a.root) {
            Ok(c) => {
                if a.json {
                    println!("{}", serde_json::to_string_pretty(&c).unwrap_or_default());
                } else {
                    println!("NAME\tTYPE\tPATH");
                    for x in c {
                        println!("{}\t{}\t{}", x.name, x.kind.as_str(), x.path.display());
                    }
                }
                exit::OK
            }
            Err(e) => fail(e),
        },
        Cmd::Validate => match merge::inspect(&opts(&a)) {
            Ok(d) => {
                let mut bad = false;
                let mut rows = Vec::new();
                for x in &d {
                    let (verdict, why) = match &x.outcome {
                        Outcome::Merged => ("ok", String::new()),
                        Outcome::Ignored(r) => {
                            bad = true;
                            ("ignored", r.to_string())
                        }
                    };
                    if a.json {
                        rows.push(serde_json::json!({"name": x.candidate.name, "path": x.candidate.path, "verdict": verdict, "reason": why}));
                    } else {
                        println!(
                            "{}\t{}\t{}\t{}",
                            x.candidate.name,
                            x.candidate.path.display(),
                            verdict,
                            why
                        );
                    }
                }
                if a.json {
                    println!("{}", serde_json::Value::Array(rows));
                }
                if bad {
                    exit::INVALID
                } else {
                    exit::OK
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit::INVALID
            }
        },
        Cmd::Status => {
            let s = merge::status(&opts(&a));
            if a.json {
                println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            } else {
                println!("HIERARCHY\tEXTENSIONS");
                for h in s {
                    let e = if h.extensions.is_empty() {
                        "none".to_string()
                    } else {
                        h.extensions.join(", ")
                    };
                    println!("{}\t{e}", h.hierarchy.display());
                }
            }
            exit::OK
        }
        Cmd::Merge | Cmd::Refresh => {
            let o = opts(&a);
            let r = if matches!(a.cmd, Cmd::Merge) {
                merge::merge(&o)
            } else {
                merge::refresh(&o)
            };
            match r {
                Ok(r) => {
                    report_merge(&r);
                    exit::OK
                }
                Err(e) => fail(e),
            }
        }
        Cmd::Unmerge => match merge::unmerge(&opts(&a)) {
            Ok(v) => {
                for p in v {
                    eprintln!("Unmerged '{}'.", p.display());
                }
                exit::OK
            }
            Err(e) => fail(e),
        },
        Cmd::Build(b) => run_build(b),
        Cmd::Update(u) => run_update(&a, u),
        Cmd::Bakery { manifest, out } => match boxcar_sysext::bakery::bake(manifest, out) {
            Ok(v) => {
                for o in v {
                    print!("{}", o.sums_line);
                }
                exit::OK
            }
            Err(e) => fail(e),
        },
    }
}

fn report_merge(r: &merge::MergeReport) {
    for d in &r.decisions {
        if let Outcome::Ignored(why) = &d.outcome {
            eprintln!("Extension '{}' {why}, ignoring.", d.candidate.name);
        }
    }
    let names = r.merged_names();
    if r.decisions.is_empty() {
        eprintln!("No extensions found.");
    } else if names.is_empty() {
        eprintln!("No suitable extensions found.");
    } else {
        eprintln!("Using extensions '{}'.", names.join("', '"));
        for h in &r.merged_hierarchies {
            eprintln!("Merged extensions into '{}'.", h.display());
        }
    }
}

fn run_build(b: &BuildArgs) -> u8 {
    let output = b
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.raw", b.name)));
    // Holds the unpacked packages until the image is written.
    let unpacked;
    let source = match &b.source {
        Some(s) => s.clone(),
        None => {
            unpacked = match tempfile::tempdir() {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: creating a directory to unpack packages into: {e}");
                    return exit::IO;
                }
            };
            let tree = unpacked.path().join("tree");
            if let Err(e) = build::unpack_debs(&b.deb, &tree) {
                return fail(e);
            }
            tree
        }
    };
    let spec = BuildSpec {
        name: b.name.clone(),
        source: source.clone(),
        output: output.clone(),
        format: match b.format {
            FormatArg::Squashfs => Format::Squashfs,
            FormatArg::Erofs => Format::Erofs,
        },
        release: ReleaseSpec {
            id: b.id.clone(),
            version_id: b.version_id.clone(),
            sysext_level: b.sysext_level.clone(),
            architecture: b.architecture.clone(),
            scope: b.scope.clone(),
            reload_manager: if b.reload_manager {
                ReloadManager::Yes
            } else {
                ReloadManager::No
            },
        },
    };
    let out = match build::build(&spec) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    for o in &out.outside {
        eprintln!(
            "warning: {}/{o} is outside usr/ and opt/; systemd-sysext will not merge it",
            source.display()
        );
    }
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let sums_path = dir.join("SHA256SUMS");
    let existing = std::fs::read_to_string(&sums_path).unwrap_or_default();
    let fname = output
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    match sums::upsert(&existing, &out.sha256, &fname) {
        Ok(text) => {
            if let Err(e) = std::fs::write(&sums_path, text) {
                return fail(format!("writing {}: {e}", sums_path.display()));
            }
        }
        Err(e) => return fail(format!("{}: {e}", sums_path.display())),
    }
    print!("{}", out.sums_line);
    exit::OK
}

fn transfer_files(root: &Path, component: Option<&str>) -> Vec<PathBuf> {
    let d = match component {
        Some(c) => format!("sysupdate.{c}.d"),
        None => "sysupdate.d".into(),
    };
    // First directory holding a file name wins (like systemd's conf_files_list).
    let mut by_name = std::collections::BTreeMap::new();
    for base in ["etc", "run", "usr/local/lib", "usr/lib"] {
        let Ok(rd) = std::fs::read_dir(root.join(base).join(&d)) else {
            continue;
        };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".conf") || n.ends_with(".transfer") {
                by_name.entry(n).or_insert(e.path());
            }
        }
    }
    by_name.into_values().collect()
}

fn run_update(a: &Args, u: &UpdateArgs) -> u8 {
    let files = if u.files.is_empty() {
        transfer_files(&a.root, u.component.as_deref())
    } else {
        u.files.clone()
    };
    if files.is_empty() {
        eprintln!("error: no transfer files found");
        return exit::INVALID;
    }
    let mut changed = false;
    for f in &files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => return fail(format!("reading {}: {e}", f.display())),
        };
        let t = match transfer::Transfer::parse(&text, boxcar_sysext::compat::host_architecture()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {}: {e}", f.display());
                return exit::INVALID;
            }
        };
        for i in &t.ignored {
            eprintln!("warning: {}: {i} is not supported, ignored", f.display());
        }
        match update::apply(&t, &a.root) {
            Ok(o) => {
                changed |= o.symlink_changed();
                match &o {
                    update::UpdateOutcome::UpToDate { version, .. } => {
                        println!("{}: {version} is current", f.display())
                    }
                    update::UpdateOutcome::Installed {
                        version, path, removed, ..
                    } => {
                        println!("{}: installed {version} as {}", f.display(), path.display());
                        for r in removed {
                            println!("{}: removed {r}", f.display());
                        }
                    }
                }
            }
            Err(e) => return fail(format!("{}: {e}", f.display())),
        }
    }
    if changed {
        match u.then {
            After::Nothing => {}
            After::Refresh => match merge::refresh(&opts(a)) {
                Ok(r) => report_merge(&r),
                Err(e) => return fail(e),
            },
            After::RebootRequired => {
                let p = a.root.join("run/reboot-required");
                if let Err(e) = std::fs::create_dir_all(a.root.join("run")).and_then(|_| std::fs::write(&p, b"")) {
                    return fail(format!("writing {}: {e}", p.display()));
                }
                eprintln!("Signalled {}.", p.display());
            }
        }
    }
    exit::OK
}
