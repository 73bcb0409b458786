//! Merge, unmerge, refresh, status and validation of extensions below a root (I/O).
//!
//! The decisions come from [`crate::compat`], [`crate::discover`], [`crate::metadata`] and
//! [`crate::plan`]; this module only mounts. Images and the meta layer are mounted in a
//! private tmpfs workspace; once the overlays are up, the workspace is detached (MNT_DETACH):
//! the overlays keep their layers alive, nothing is left in the mount table but the overlays,
//! and unmerging is a plain unmount (loop devices autoclear). The on-disk markers are those of
//! systemd-sysext (`.systemd-sysext/{dev,extensions}`), so either tool can unmerge the other's
//! merge.

use crate::compat::{self, Checks, HostRelease, RejectReason, Scope, Verdict};
use crate::discover::{self, Candidate, ImageKind};
use crate::metadata::{self, MetadataError};
use crate::mount::{self, MountError, Umount};
use crate::plan::{self, HierarchyState, HIERARCHIES};
use std::path::{Path, PathBuf};
use tracing::{debug, info};

/// Name of the marker directory inside merged hierarchies (shared with systemd-sysext).
pub const META_DIR: &str = ".systemd-sysext";

/// What to operate on and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The tree to work on (`/` for the running system).
    pub root: PathBuf,
    /// `--force`.
    pub checks: Checks,
    /// Scope matched against `SYSEXT_SCOPE=`.
    pub scope: Scope,
    /// Where private workspaces are created (each a fresh tmpfs, detached after use).
    pub workspace_base: PathBuf,
}

impl Options {
    /// Defaults for `root`; the scope is that of the running system (see [`detect_scope`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            checks: Checks::Enforce,
            scope: detect_scope(),
            workspace_base: PathBuf::from("/run"),
        }
    }
}

/// The scope of the running system, as systemd's `in_initrd()` decides it: the initrd is
/// recognised by `/etc/initrd-release` (of the running system, not of `--root`).
pub fn detect_scope() -> Scope {
    if Path::new("/etc/initrd-release").exists() {
        Scope::Initrd
    } else {
        Scope::System
    }
}

/// Errors of the merge family.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Reading the host os-release failed.
    #[error("reading os-release of {root}: {source}")]
    HostRelease {
        /// Root.
        root: PathBuf,
        /// Cause.
        source: MetadataError,
    },
    /// Host os-release lacks ID.
    #[error("os-release of {root}: {source}")]
    HostId {
        /// Root.
        root: PathBuf,
        /// Cause.
        source: compat::HostReleaseError,
    },
    /// Scanning search directories failed.
    #[error(transparent)]
    Discover(#[from] discover::DiscoverError),
    /// An image's metadata could not be read; like systemd 252 this aborts the merge.
    #[error("reading metadata of image {name}: {reason}")]
    ImageMetadata {
        /// Image name.
        name: String,
        /// Cause.
        reason: String,
    },
    /// Mount-level failure.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// `merge` on an already merged hierarchy.
    #[error("hierarchy {0} is already merged")]
    AlreadyMerged(PathBuf),
    /// Filesystem work in the workspace or meta layer failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> MergeError + 'a {
    move |source| MergeError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The outcome for one discovered extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Merged (or would be).
    Merged,
    /// Ignored, with systemd's reason.
    Ignored(RejectReason),
}

/// One extension and what happened to it.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The discovered extension.
    pub candidate: Candidate,
    /// Its outcome.
    pub outcome: Outcome,
}

/// Result of a merge.
#[derive(Debug, Clone, Default)]
pub struct MergeReport {
    /// Every discovered extension with its outcome, sorted by name.
    pub decisions: Vec<Decision>,
    /// Hierarchies that got an overlay.
    pub merged_hierarchies: Vec<PathBuf>,
}

impl MergeReport {
    /// Names merged, sorted.
    pub fn merged_names(&self) -> Vec<String> {
        self.decisions
            .iter()
            .filter(|d| d.outcome == Outcome::Merged)
            .map(|d| d.candidate.name.clone())
            .collect()
    }
}

/// Reads and checks the host release of `root`.
pub fn host_release(root: &Path) -> Result<HostRelease, MergeError> {
    let f = metadata::read_os_release(root).map_err(|source| MergeError::HostRelease {
        root: root.into(),
        source,
    })?;
    HostRelease::from_fields(&f).map_err(|source| MergeError::HostId {
        root: root.into(),
        source,
    })
}

/// True when `hier` is a merged tree made by us or systemd-sysext: a mount point whose
/// `.systemd-sysext/dev` names its own device (an offline copy of a merged tree is not).
pub fn is_merged(hier: &Path) -> bool {
    if !mount::is_mount_point(hier) {
        return false;
    }
    let Ok(recorded) = std::fs::read_to_string(hier.join(META_DIR).join("dev")) else {
        return false;
    };
    mount::dev_string(hier).map(|d| d == recorded.trim()).unwrap_or(false)
}

/// A private tmpfs for image mounts and the meta layer; detached on drop.
struct Workspace {
    path: PathBuf,
    mounted: bool,
}

impl Workspace {
    fn create(base: &Path) -> Result<Self, MergeError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = base.join(format!("boxcar-sysext.{}.{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(io("creating workspace", &path))?;
        let mut ws = Self { path, mounted: false };
        mount::mount(
            "tmpfs",
            &ws.path,
            "tmpfs",
            libc::MS_NODEV | libc::MS_NOSUID,
            Some("mode=0755"),
        )?;
        ws.mounted = true;
        Ok(ws)
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if self.mounted {
            if let Err(e) = mount::umount(&self.path, Umount::Detach) {
                tracing::warn!("{e}");
            }
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Roots of extensions being looked at: directories in place, images mounted in `ws`.
fn extension_tree(ws: &Workspace, c: &Candidate, root: &Path) -> Result<PathBuf, MergeError> {
    let real = discover::chase_in_root(root, &c.path).unwrap_or_else(|| c.path.clone());
    match c.kind {
        ImageKind::Directory => Ok(real),
        ImageKind::Raw => {
            let target = ws.path.join("extensions").join(&c.name);
            std::fs::create_dir_all(&target).map_err(io("creating mount point", &target))?;
            let fs = mount::mount_image(&real, &target)?;
            debug!(name = %c.name, fs = fs.as_str(), "mounted image");
            Ok(target)
        }
    }
}

/// Decides on one mounted/in-place extension tree.
fn decide(c: &Candidate, tree: &Path, host: &HostRelease, opts: &Options) -> Result<Outcome, MergeError> {
    let release = match metadata::read_extension_release(tree, &c.name) {
        Ok(r) => r,
        Err(e) if c.kind == ImageKind::Directory => {
            debug!(name = %c.name, "{e}, ignoring");
            None
        }
        Err(e) => {
            return Err(MergeError::ImageMetadata {
                name: c.name.clone(),
                reason: e.to_string(),
            })
        }
    };
    let release = match release {
        Some(r) => r,
        // systemd 252: directories without release are ignored; images fail the whole merge.
        None if c.kind == ImageKind::Raw && opts.checks == Checks::Enforce => {
            return Err(MergeError::ImageMetadata {
                name: c.name.clone(),
                reason: format!("no usr/lib/extension-release.d/extension-release.{}", c.name),
            })
        }
        None => Default::default(),
    };
    Ok(
        match compat::validate(host, &release, compat::host_architecture(), opts.scope, opts.checks) {
            Verdict::Accept(_) => Outcome::Merged,
            Verdict::Reject(r) => {
                info!("Extension '{}' {r}, ignoring.", c.name);
                Outcome::Ignored(r)
            }
        },
    )
}

/// Discovers and checks all extensions without merging (images are mounted briefly).
pub fn inspect(opts: &Options) -> Result<Vec<Decision>, MergeError> {
    let host = host_release(&opts.root)?;
    let candidates = discover::discover(&opts.root)?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let ws = Workspace::create(&opts.workspace_base)?;
    let mut out = Vec::new();
    for c in candidates {
        let tree = extension_tree(&ws, &c, &opts.root)?;
        let outcome = decide(&c, &tree, &host, opts);
        if c.kind == ImageKind::Raw {
            let _ = mount::umount(&tree, Umount::Detach);
        }
        out.push(Decision {
            candidate: c,
            outcome: outcome?,
        });
    }
    Ok(out)
}

/// `merge`: fails if a hierarchy is already merged.
pub fn merge(opts: &Options) -> Result<MergeReport, MergeError> {
    for h in HIERARCHIES {
        let p = opts.root.join(h);
        if is_merged(&p) {
            return Err(MergeError::AlreadyMerged(p));
        }
    }
    merge_inner(opts)
}

/// `refresh`: unmerge what is merged, then merge what is there now.
pub fn refresh(opts: &Options) -> Result<MergeReport, MergeError> {
    unmerge(opts)?;
    merge_inner(opts)
}

fn merge_inner(opts: &Options) -> Result<MergeReport, MergeError> {
    let host = host_release(&opts.root)?;
    let candidates = discover::discover(&opts.root)?;
    if candidates.is_empty() {
        info!("No extensions found.");
        return Ok(MergeReport::default());
    }
    let ws = Workspace::create(&opts.workspace_base)?;
    let mut decisions = Vec::new();
    let mut trees = Vec::new();
    for c in candidates {
        let tree = extension_tree(&ws, &c, &opts.root)?;
        let outcome = decide(&c, &tree, &host, opts)?;
        if outcome == Outcome::Merged {
            trees.push((c.name.clone(), tree));
        }
        decisions.push(Decision { candidate: c, outcome });
    }
    let mut report = MergeReport {
        decisions,
        merged_hierarchies: Vec::new(),
    };
    if trees.is_empty() {
        info!("No suitable extensions found.");
        return Ok(report);
    }
    let names: Vec<String> = trees.iter().map(|(n, _)| n.clone()).collect();
    info!("Using extensions '{}'.", names.join("', '"));
    let mounted = mount_hierarchies(opts, &ws, &trees, &names);
    match mounted {
        Ok(h) => report.merged_hierarchies = h,
        Err((done, e)) => {
            for h in done.iter().rev() {
                let _ = mount::umount(h, Umount::Detach);
            }
            return Err(e);
        }
    }
    drop(ws);
    info!(
        "Merged extensions into '{}'.",
        report
            .merged_hierarchies
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join("', '")
    );
    Ok(report)
}

fn mount_hierarchies(
    opts: &Options,
    ws: &Workspace,
    trees: &[(String, PathBuf)],
    names: &[String],
) -> Result<Vec<PathBuf>, (Vec<PathBuf>, MergeError)> {
    let mut done = Vec::new();
    for h in HIERARCHIES {
        let r = (|| -> Result<Option<PathBuf>, MergeError> {
            let meta = ws.path.join("meta").join(h);
            let marker = meta.join(META_DIR);
            std::fs::create_dir_all(&marker).map_err(io("creating meta layer", &marker))?;
            let ext_file = marker.join("extensions");
            std::fs::write(&ext_file, plan::extensions_file(names)).map_err(io("writing", &ext_file))?;
            let states: Vec<(String, HierarchyState)> = trees
                .iter()
                .map(|(n, t)| (n.clone(), HierarchyState::probe(&t.join(h))))
                .collect();
            let host_h = opts.root.join(h);
            let Some(layers) = plan::plan_layers(&meta, &states, &HierarchyState::probe(&host_h)) else {
                debug!(hierarchy = h, "no extension contributes, not merging");
                return Ok(None);
            };
            if !host_h.exists() {
                std::fs::create_dir_all(&host_h).map_err(io("creating hierarchy", &host_h))?;
            }
            let data = plan::lowerdir_option(&layers);
            mount::mount("sysext", &host_h, "overlay", libc::MS_RDONLY, Some(&data))?;
            let dev = mount::dev_string(&host_h).map_err(io("stat", &host_h))?;
            let dev_file = marker.join("dev");
            std::fs::write(&dev_file, format!("{dev}\n")).map_err(io("writing", &dev_file))?;
            Ok(Some(host_h))
        })();
        match r {
            Ok(Some(p)) => done.push(p),
            Ok(None) => {}
            Err(e) => return Err((done, e)),
        }
    }
    Ok(done)
}

/// `unmerge`: unmounts merged hierarchies (ours or systemd-sysext's); returns what was unmerged.
pub fn unmerge(opts: &Options) -> Result<Vec<PathBuf>, MergeError> {
    let mut out = Vec::new();
    for h in HIERARCHIES {
        let p = opts.root.join(h);
        if is_merged(&p) {
            mount::umount(&p, Umount::Detach)?;
            info!("Unmerged '{}'.", p.display());
            out.push(p);
        }
    }
    Ok(out)
}

/// Merge state of one hierarchy, for `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HierarchyStatus {
    /// The hierarchy path.
    pub hierarchy: PathBuf,
    /// Names merged into it (empty: not merged).
    pub extensions: Vec<String>,
}

/// `status`: what is merged into each hierarchy below the root.
pub fn status(opts: &Options) -> Vec<HierarchyStatus> {
    HIERARCHIES
        .iter()
        .map(|h| {
            let p = opts.root.join(h);
            let extensions = if is_merged(&p) {
                std::fs::read_to_string(p.join(META_DIR).join("extensions"))
                    .map(|s| s.lines().filter(|l| !l.is_empty()).map(str::to_string).collect())
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            HierarchyStatus {
                hierarchy: p,
                extensions,
            }
        })
        .collect()
}
