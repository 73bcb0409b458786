//! systemd-boot entries on the ESP: one UKI per version in `EFI/Linux/`,
//! named `boxcar-<version>[+LEFT[-DONE]].efi` per the Boot Loader Spec's
//! boot counting. A new version is installed with a counter (`+3`);
//! systemd-boot decrements it on each attempt and skips entries at `+0`;
//! blessing drops the counter; pruning removes versions no longer wanted.
//!
//! Name logic is pure ([`EntryName`]); the directory functions only list,
//! copy and rename.

use crate::SlotsError;
use std::cmp::Ordering;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Prefix of every entry Boxcar manages; others on the ESP are left alone.
pub const PREFIX: &str = "boxcar-";
/// Where UKIs (Type #2 entries) live, relative to the ESP.
pub const UKI_DIR: &str = "EFI/Linux";
const EXT: &str = ".efi";

/// Where an entry stands in boot counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// No counter: blessed (or never counted).
    Good,
    /// Counting: `left` attempts left, `done` made (`+LEFT-DONE`).
    Trying { left: u32, done: u32 },
    /// `+0-…`: out of tries; systemd-boot sorts it last.
    Bad { done: u32 },
}

/// A parsed entry file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryName {
    pub version: String,
    pub counting: Counting,
}

impl EntryName {
    /// Parses `boxcar-<version>[+LEFT[-DONE]].efi`; `None` for files we do
    /// not manage.
    pub fn parse(file: &str) -> Option<EntryName> {
        let stem = file.strip_prefix(PREFIX)?.strip_suffix(EXT)?;
        let (version, counting) = match stem.rsplit_once('+') {
            None => (stem, Counting::Good),
            Some((v, counter)) => {
                let (left, done) = match counter.split_once('-') {
                    Some((l, d)) => (l, Some(d)),
                    None => (counter, None),
                };
                let left: u32 = parse_digits(left)?;
                let done: u32 = match done {
                    Some(d) => parse_digits(d)?,
                    None => 0,
                };
                let c = if left == 0 {
                    Counting::Bad { done }
                } else {
                    Counting::Trying { left, done }
                };
                (v, c)
            }
        };
        valid_version(version).then(|| EntryName {
            version: version.to_string(),
            counting,
        })
    }

    /// The file name for this entry.
    pub fn file_name(&self) -> String {
        let counter = match self.counting {
            Counting::Good => String::new(),
            Counting::Trying { left, done: 0 } => format!("+{left}"),
            Counting::Trying { left, done } => format!("+{left}-{done}"),
            Counting::Bad { done: 0 } => "+0".to_string(),
            Counting::Bad { done } => format!("+0-{done}"),
        };
        format!("{PREFIX}{}{counter}{EXT}", self.version)
    }
}

fn parse_digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Versions may hold `[A-Za-z0-9._~^]` (no `+`, which starts the counter).
pub fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'^'))
}

/// Compares versions the way `systemd-boot` and semver-ish version strings
/// need: runs of digits numerically, the rest bytewise.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, dy) = (trim_zeros(&x[..nx]), trim_zeros(&y[..ny]));
                let o = dx.len().cmp(&dy.len()).then(dx.cmp(dy));
                if o != Ordering::Equal {
                    return o;
                }
                x = &x[nx..];
                y = &y[ny..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let z = d.iter().take_while(|&&c| c == b'0').count();
    &d[z..]
}

/// Which entries to delete so only the versions in `keep` remain (plus,
/// always, every entry still counting or good for a kept version).
pub fn plan_prune(entries: &[EntryName], keep: &[&str]) -> Vec<EntryName> {
    entries
        .iter()
        .filter(|e| !keep.contains(&e.version.as_str()))
        .cloned()
        .collect()
}

/// An entry found on the ESP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: EntryName,
    pub path: PathBuf,
}

/// The managed UKI entries in `esp`, newest version first.
pub fn list(esp: &Path) -> Result<Vec<Found>, SlotsError> {
    let dir = esp.join(UKI_DIR);
    let err = |source| SlotsError::BootEntry {
        op: "listing",
        path: dir.clone(),
        source,
    };
    let mut out = Vec::new();
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(err(e)),
    };
    for ent in rd {
        let ent = ent.map_err(err)?;
        if let Some(name) = ent.file_name().to_str().and_then(EntryName::parse) {
            out.push(Found { name, path: ent.path() });
        }
    }
    out.sort_by(|a, b| compare_versions(&b.name.version, &a.name.version));
    Ok(out)
}

fn find(esp: &Path, version: &str) -> Result<Option<Found>, SlotsError> {
    Ok(list(esp)?.into_iter().find(|f| f.name.version == version))
}

fn sync_dir(dir: &Path) -> Result<(), SlotsError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| SlotsError::BootEntry {
            op: "syncing",
            path: dir.into(),
            source,
        })
}

/// Installs the UKI for `version` with `tries` boot attempts (`+tries`),
/// atomically: copied to a temporary name, synced, renamed, directory
/// synced. Any previous entry of the same version is replaced.
pub fn install(esp: &Path, version: &str, uki: &[u8], tries: u32) -> Result<PathBuf, SlotsError> {
    if !valid_version(version) {
        return Err(SlotsError::BadEntryName(version.to_string()));
    }
    let dir = esp.join(UKI_DIR);
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| SlotsError::BootEntry { op, path, source }
    };
    fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let name = EntryName {
        version: version.to_string(),
        counting: if tries == 0 {
            Counting::Good
        } else {
            Counting::Trying { left: tries, done: 0 }
        },
    };
    let target = dir.join(name.file_name());
    let tmp = dir.join(format!(".{}.tmp", name.file_name()));
    {
        let mut f = fs::File::create(&tmp).map_err(io("creating", &tmp))?;
        f.write_all(uki).map_err(io("writing", &tmp))?;
        f.sync_all().map_err(io("syncing", &tmp))?;
    }
    let old = find(esp, version)?;
    fs::rename(&tmp, &target).map_err(io("renaming", &tmp))?;
    if let Some(old) = old.filter(|o| o.path != target) {
        fs::remove_file(&old.path).map_err(io("removing", &old.path))?;
    }
    sync_dir(&dir)?;
    tracing::info!(version, tries, path = %target.display(), "installed boot entry");
    Ok(target)
}

/// Where a UKI is written while it is still being downloaded and checked:
/// a hidden name in the same directory (so the final rename is atomic) that
/// systemd-boot ignores.
pub fn staging_path(esp: &Path, version: &str) -> PathBuf {
    esp.join(UKI_DIR).join(format!(".{PREFIX}{version}{EXT}.staging"))
}

/// Installs an already written UKI at [`staging_path`] as the entry for
/// `version` with `tries` boot attempts: syncs it, renames it into place
/// (the commit point: from here on systemd-boot can pick it) and removes
/// any older entry of the same version. Idempotent: when the staged file is
/// gone and the counted entry exists, it was installed before.
pub fn install_staged(esp: &Path, version: &str, tries: u32) -> Result<PathBuf, SlotsError> {
    if !valid_version(version) {
        return Err(SlotsError::BadEntryName(version.to_string()));
    }
    let dir = esp.join(UKI_DIR);
    let staged = staging_path(esp, version);
    let name = EntryName {
        version: version.to_string(),
        counting: if tries == 0 {
            Counting::Good
        } else {
            Counting::Trying { left: tries, done: 0 }
        },
    };
    let target = dir.join(name.file_name());
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| SlotsError::BootEntry { op, path, source }
    };
    match fs::File::open(&staged) {
        Ok(f) => f.sync_all().map_err(io("syncing", &staged))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && target.exists() => return Ok(target),
        Err(e) => return Err(io("opening", &staged)(e)),
    }
    let old = find(esp, version)?;
    fs::rename(&staged, &target).map_err(io("renaming", &staged))?;
    if let Some(old) = old.filter(|o| o.path != target) {
        fs::remove_file(&old.path).map_err(io("removing", &old.path))?;
    }
    sync_dir(&dir)?;
    tracing::info!(version, tries, path = %target.display(), "installed staged boot entry");
    Ok(target)
}

/// Removes every entry of `version` and its staging file, if any (to
/// unstage an update). Returns what was removed.
pub fn remove(esp: &Path, version: &str) -> Result<Vec<PathBuf>, SlotsError> {
    let mut removed = Vec::new();
    let staged = staging_path(esp, version);
    let mut doomed: Vec<PathBuf> = list(esp)?
        .into_iter()
        .filter(|f| f.name.version == version)
        .map(|f| f.path)
        .collect();
    if staged.exists() {
        doomed.push(staged);
    }
    for p in doomed {
        fs::remove_file(&p).map_err(|source| SlotsError::BootEntry {
            op: "removing",
            path: p.clone(),
            source,
        })?;
        removed.push(p);
    }
    if !removed.is_empty() {
        sync_dir(&esp.join(UKI_DIR))?;
    }
    Ok(removed)
}

/// Blesses `version`: drops the counter, so systemd-boot treats it as good
/// (what `systemd-bless-boot good` does). Returns the new path.
pub fn bless(esp: &Path, version: &str) -> Result<PathBuf, SlotsError> {
    rename_counting(esp, version, |_| Counting::Good)
}

/// Marks `version` bad (`+0`, keeping the attempts made), like
/// `systemd-bless-boot bad`: systemd-boot then prefers other entries.
pub fn mark_bad(esp: &Path, version: &str) -> Result<PathBuf, SlotsError> {
    rename_counting(esp, version, |c| match c {
        Counting::Trying { done, .. } | Counting::Bad { done } => Counting::Bad { done },
        Counting::Good => Counting::Bad { done: 0 },
    })
}

fn rename_counting(esp: &Path, version: &str, f: impl FnOnce(Counting) -> Counting) -> Result<PathBuf, SlotsError> {
    let found = find(esp, version)?.ok_or_else(|| SlotsError::BootEntry {
        op: "finding",
        path: esp.join(UKI_DIR).join(format!("{PREFIX}{version}*{EXT}")),
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    let new = EntryName {
        version: version.to_string(),
        counting: f(found.name.counting),
    };
    let dir = esp.join(UKI_DIR);
    let target = dir.join(new.file_name());
    if target != found.path {
        fs::rename(&found.path, &target).map_err(|source| SlotsError::BootEntry {
            op: "renaming",
            path: found.path.clone(),
            source,
        })?;
        sync_dir(&dir)?;
    }
    Ok(target)
}

/// Removes every managed entry whose version is not in `keep` (typically
/// the booted version and the staged one). Returns what was removed.
pub fn prune(esp: &Path, keep: &[&str]) -> Result<Vec<PathBuf>, SlotsError> {
    let found = list(esp)?;
    let names: Vec<EntryName> = found.iter().map(|f| f.name.clone()).collect();
    let doomed = plan_prune(&names, keep);
    let mut removed = Vec::new();
    for f in found.iter().filter(|f| doomed.contains(&f.name)) {
        fs::remove_file(&f.path).map_err(|source| SlotsError::BootEntry {
            op: "removing",
            path: f.path.clone(),
            source,
        })?;
        removed.push(f.path.clone());
    }
    if !removed.is_empty() {
        sync_dir(&esp.join(UKI_DIR))?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_with_counters() {
        let cases = [
            ("boxcar-4799.0.0.efi", "4799.0.0", Counting::Good),
            (
                "boxcar-4799.0.0+3.efi",
                "4799.0.0",
                Counting::Trying { left: 3, done: 0 },
            ),
            (
                "boxcar-4799.0.0+2-1.efi",
                "4799.0.0",
                Counting::Trying { left: 2, done: 1 },
            ),
            ("boxcar-1.2+0-3.efi", "1.2", Counting::Bad { done: 3 }),
        ];
        for (file, version, counting) in cases {
            let n = EntryName::parse(file).unwrap();
            assert_eq!((n.version.as_str(), n.counting), (version, counting), "{file}");
            assert_eq!(n.file_name(), file);
        }
        for junk in [
            "other-1.efi",
            "boxcar-.efi",
            "boxcar-1+x.efi",
            "boxcar-1+-2.efi",
            "boxcar-1.conf",
            "boxcar-1+3-.efi",
        ] {
            assert_eq!(EntryName::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn version_order_is_numeric() {
        assert_eq!(compare_versions("4799.0.0", "4800.0.0"), Ordering::Less);
        assert_eq!(compare_versions("10.0.0", "9.9.9"), Ordering::Greater);
        assert_eq!(compare_versions("1.02", "1.2"), Ordering::Equal);
        assert_eq!(compare_versions("1.2.3", "1.2"), Ordering::Greater);
    }

    #[test]
    fn prune_plan_keeps_only_listed_versions() {
        let e = |v: &str| EntryName {
            version: v.into(),
            counting: Counting::Good,
        };
        let plan = plan_prune(&[e("1"), e("2"), e("3")], &["3", "2"]);
        assert_eq!(plan, vec![e("1")]);
    }
}
