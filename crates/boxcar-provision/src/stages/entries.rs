//! `storage.files`, `storage.directories`, `storage.links`: resolved inside
//! the root, ordered like Ignition (by path depth, hard links last), then
//! created with Ignition 2.14's rules for existing nodes, overwrite,
//! append, default modes and owners.

use crate::error::{ApplyError, FetchError};
use crate::fetch::{redact, Fetcher, Purpose};
use crate::fsops;
use crate::owners::Owners;
use crate::root::{self, Root};
use boxcar_config::model::{Config, Directory, File, Link, Resource};
use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

/// What an entry creates.
#[derive(Debug, Clone, Copy)]
pub enum EntryKind<'a> {
    File(&'a File),
    Directory(&'a Directory),
    Link(&'a Link),
}

/// One planned filesystem entry.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// Where it is in the config, e.g. `$.storage.files.3`.
    pub json_path: String,
    /// The path the config names.
    pub config_path: &'a str,
    /// Where that resolves to on the host, under the root.
    pub host: PathBuf,
    pub kind: EntryKind<'a>,
}

impl Entry<'_> {
    fn overwrite(&self) -> bool {
        match self.kind {
            EntryKind::File(f) => f.overwrite == Some(true),
            EntryKind::Directory(d) => d.overwrite == Some(true),
            EntryKind::Link(l) => l.overwrite == Some(true),
        }
    }

    /// One line for logs and the dry-run plan (no contents, no secrets).
    pub fn describe(&self) -> String {
        match self.kind {
            EntryKind::File(f) => {
                let mut s = format!("file {}", self.config_path);
                if let Some(src) = f.contents.source.as_deref() {
                    s.push_str(&format!(" from {}", redact(src)));
                }
                if !f.append.is_empty() {
                    s.push_str(&format!(" (+{} append)", f.append.len()));
                }
                s.push_str(&format!(" mode {:o}", f.mode.unwrap_or(0o644)));
                s
            }
            EntryKind::Directory(d) => format!("directory {} mode {:o}", self.config_path, d.mode.unwrap_or(0o755)),
            EntryKind::Link(l) => format!(
                "{} link {} -> {}",
                if l.hard == Some(true) { "hard" } else { "symbolic" },
                self.config_path,
                l.target.as_deref().unwrap_or("")
            ),
        }
    }
}

/// Planning failed for the entry at `json_path`.
#[derive(Debug, thiserror::Error)]
#[error("{json_path}: {source}")]
pub struct PlanError {
    pub json_path: String,
    #[source]
    pub source: Box<ApplyError>,
}

fn plan_err(json_path: &str) -> impl FnOnce(ApplyError) -> PlanError + '_ {
    move |e| PlanError {
        json_path: json_path.to_string(),
        source: Box::new(e),
    }
}

/// Resolve and order the config's entries: directories, files, symlinks
/// sorted (stably) by depth, hard links appended last so they may point
/// at deeper files. Two entries resolving to one host path is an error.
pub fn plan<'a>(cfg: &'a Config, root: &Root) -> Result<Vec<Entry<'a>>, PlanError> {
    let mut seen: HashMap<PathBuf, String> = HashMap::new();
    let mut entries = Vec::new();
    let mut hard = Vec::new();
    let add = |e: Entry<'a>, seen: &mut HashMap<PathBuf, String>| -> Result<Option<Entry<'a>>, PlanError> {
        if let Some(other) = seen.get(&e.host) {
            let err = ApplyError::DuplicateResolved {
                config_path: e.config_path.to_string(),
                other: other.clone(),
                resolved: e.host.clone(),
            };
            return Err(PlanError {
                json_path: e.json_path,
                source: Box::new(err),
            });
        }
        seen.insert(e.host.clone(), e.config_path.to_string());
        Ok(Some(e))
    };
    let s = &cfg.storage;
    for (i, d) in s.directories.iter().enumerate() {
        let jp = format!("$.storage.directories.{i}");
        let host = root.join(&d.path).map_err(plan_err(&jp))?;
        let e = Entry {
            json_path: jp,
            config_path: &d.path,
            host,
            kind: EntryKind::Directory(d),
        };
        entries.extend(add(e, &mut seen)?);
    }
    for (i, f) in s.files.iter().enumerate() {
        let jp = format!("$.storage.files.{i}");
        let host = root.join(&f.path).map_err(plan_err(&jp))?;
        let e = Entry {
            json_path: jp,
            config_path: &f.path,
            host,
            kind: EntryKind::File(f),
        };
        entries.extend(add(e, &mut seen)?);
    }
    for (i, l) in s.links.iter().enumerate() {
        let jp = format!("$.storage.links.{i}");
        let host = root.join(&l.path).map_err(plan_err(&jp))?;
        let e = Entry {
            json_path: jp,
            config_path: &l.path,
            host,
            kind: EntryKind::Link(l),
        };
        if let Some(e) = add(e, &mut seen)? {
            if l.hard == Some(true) {
                hard.push(e);
            } else {
                entries.push(e);
            }
        }
    }
    entries.sort_by_key(|e| root::depth(e.config_path));
    entries.extend(hard);
    Ok(entries)
}

/// What creating entries needs from the outside world.
pub struct Context<'a> {
    pub root: &'a Root,
    pub fetcher: &'a Fetcher,
    pub owners: &'a Owners,
}

/// Below this many entries of one depth, threads cost more than they save.
const PARALLEL_MIN: usize = 64;

/// Create all planned entries in order. Entries of equal depth never
/// contain one another (duplicates were refused in [`plan`]), so a run of
/// them is spread over `threads` threads; depths still complete in order
/// and hard links come last, as in Ignition. On failure the error of the
/// first failing entry (in plan order) is returned.
pub fn apply_all(plan: &[Entry], cx: &Context, threads: usize) -> Result<(), PlanError> {
    let fail = |e: &Entry, err| PlanError {
        json_path: e.json_path.clone(),
        source: Box::new(err),
    };
    let mut i = 0;
    while i < plan.len() {
        let d = run_key(&plan[i]);
        let mut j = i + 1;
        while j < plan.len() && d.is_some() && run_key(&plan[j]) == d {
            j += 1;
        }
        let run = &plan[i..j];
        if threads <= 1 || run.len() < PARALLEL_MIN {
            for e in run {
                tracing::debug!(entry = e.describe(), "creating");
                apply(e, cx).map_err(|err| fail(e, err))?;
            }
        } else {
            let chunk = run.len().div_ceil(threads);
            let results: Vec<Result<(), Box<(usize, ApplyError)>>> = std::thread::scope(|s| {
                let handles: Vec<_> = run
                    .chunks(chunk)
                    .enumerate()
                    .map(|(ci, part)| {
                        s.spawn(move || {
                            for (k, e) in part.iter().enumerate() {
                                apply(e, cx).map_err(|err| Box::new((ci * chunk + k, err)))?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(Box::new((0, ApplyError::WorkerPanicked))))
                    })
                    .collect()
            });
            if let Some((k, err)) = results
                .into_iter()
                .filter_map(Result::err)
                .map(|b| *b)
                .min_by_key(|(k, _)| *k)
            {
                return Err(fail(&run[k], err));
            }
        }
        i = j;
    }
    Ok(())
}

/// Entries that may run concurrently share a key: same depth, not a hard
/// link (hard links run one by one, last).
fn run_key(e: &Entry) -> Option<usize> {
    match e.kind {
        EntryKind::Link(l) if l.hard == Some(true) => None,
        _ => Some(root::depth(e.config_path)),
    }
}

/// Create one entry (after removing what is there if `overwrite`).
pub fn apply(e: &Entry, cx: &Context) -> Result<(), ApplyError> {
    if e.overwrite() {
        fsops::remove_all(&e.host)?;
    }
    match e.kind {
        EntryKind::File(f) => file(e, f, cx),
        EntryKind::Directory(d) => directory(e, d, cx),
        EntryKind::Link(l) => link(e, l, cx),
    }
}

fn fetch(cx: &Context, e: &Entry, r: &Resource) -> Result<Vec<u8>, ApplyError> {
    cx.fetcher
        .fetch(r, Purpose::Contents)
        .map_err(|source: FetchError| ApplyError::Fetch {
            path: e.config_path.to_string(),
            source,
        })
}

fn file(e: &Entry, f: &File, cx: &Context) -> Result<(), ApplyError> {
    let path = &e.host;
    let existing = fs::symlink_metadata(path).ok();
    let has_source = f.contents.source.is_some();
    match &existing {
        Some(m) if !m.file_type().is_file() => return Err(ApplyError::NonRegularExists { path: path.clone() }),
        Some(_) if has_source => return Err(ApplyError::FileExists { path: path.clone() }),
        _ => {}
    }
    // Fetch (and verify) everything before writing anything.
    let base = if existing.is_none() {
        Some(if has_source {
            fetch(cx, e, &f.contents)?
        } else {
            Vec::new()
        })
    } else {
        None
    };
    let appends = f
        .append
        .iter()
        .map(|r| fetch(cx, e, r))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(data) = base {
        fsops::mkdir_for_file(path)?;
        fsops::write_new(path, &data)?;
    }
    for data in &appends {
        fsops::mkdir_for_file(path)?;
        fsops::append(path, data)?;
    }
    set_permissions(e, f.mode, &f.user, &f.group, cx)
}

fn directory(e: &Entry, d: &Directory, cx: &Context) -> Result<(), ApplyError> {
    match fs::symlink_metadata(&e.host) {
        Err(_) => fsops::mkdir_all(&e.host, fsops::DEFAULT_DIR_MODE)?,
        Ok(m) if !m.file_type().is_dir() => return Err(ApplyError::NonDirectoryExists { path: e.host.clone() }),
        Ok(_) => {}
    }
    set_permissions(e, d.mode, &d.user, &d.group, cx)
}

fn link(e: &Entry, l: &Link, cx: &Context) -> Result<(), ApplyError> {
    let path = &e.host;
    let target = l.target.as_deref().unwrap_or("");
    let hard = l.hard == Some(true);
    if let Ok(st) = fs::symlink_metadata(path) {
        if hard {
            let tp = cx.root.join(target)?;
            let tst = fs::symlink_metadata(&tp).map_err(|source| ApplyError::HardlinkTarget {
                path: path.clone(),
                target: tp.clone(),
                source,
            })?;
            use std::os::unix::fs::MetadataExt;
            if st.dev() != tst.dev() || st.ino() != tst.ino() {
                return Err(ApplyError::HardlinkMismatch { path: path.clone() });
            }
            tracing::info!(path = e.config_path, "hard link already exists, doing nothing");
            return Ok(());
        }
        if st.file_type().is_symlink() {
            let actual = fs::read_link(path).map_err(ApplyError::io("reading link", path))?;
            let actual = actual.to_string_lossy().into_owned();
            if clean(&actual) != clean(target) {
                return Err(ApplyError::SymlinkMismatch {
                    path: path.clone(),
                    actual,
                    expected: target.to_string(),
                });
            }
            tracing::info!(path = e.config_path, "symlink already exists, doing nothing");
            return Ok(());
        }
        return Err(ApplyError::NonSymlinkExists { path: path.clone() });
    }
    fsops::mkdir_for_file(path)?;
    if hard {
        let tp = cx.root.join(target)?;
        return fs::hard_link(&tp, path).map_err(|source| ApplyError::HardlinkTarget {
            path: path.clone(),
            target: tp,
            source,
        });
    }
    std::os::unix::fs::symlink(target, path).map_err(ApplyError::io("creating symlink", path))?;
    // Default owner root: Ignition stats the link, which follows the target
    // on the *host* (not the root), where it is root's or missing (0:0).
    // We never follow a link out of the root, so we take root directly.
    let (uid, gid) = cx.owners.resolve(e.config_path, &l.user, &l.group, (0, 0))?;
    fsops::lchown(path, uid, gid)
}

fn set_permissions(
    e: &Entry,
    mode: Option<i64>,
    user: &boxcar_config::model::NodeOwner,
    group: &boxcar_config::model::NodeOwner,
    cx: &Context,
) -> Result<(), ApplyError> {
    if let Some(m) = mode {
        // Ignition before spec 3.6 ignores setuid/setgid/sticky (measured:
        // 2.14 applies only the permission bits).
        fsops::chmod(&e.host, m as u32 & 0o777)?;
    }
    let default = fsops::owner_or_root(&e.host);
    let (uid, gid) = cx.owners.resolve(e.config_path, user, group, default)?;
    fsops::lchown(&e.host, uid, gid)
}

/// Go's `filepath.Clean`, enough to compare link targets.
fn clean(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." if out.last().is_some_and(|l| *l != "..") => {
                out.pop();
            }
            ".." if abs => {}
            c => out.push(c),
        }
    }
    let j = out.join("/");
    match (abs, j.is_empty()) {
        (true, _) => format!("/{j}"),
        (false, true) => ".".into(),
        (false, false) => j,
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn clean_like_go() {
        assert_eq!(clean("/a//b/../c/"), "/a/c");
        assert_eq!(clean("../x/./y"), "../x/y");
        assert_eq!(clean("/../a"), "/a");
    }
}
