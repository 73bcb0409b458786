//! A Boxcar disk image built by the tests themselves, cached by its inputs.
//!
//! Scenario tests must not depend on an image someone built by hand: they
//! call [`BuiltImage::get`], which builds the guest binaries the manifest
//! installs (`[binaries] install`), hashes every input (the manifest, the
//! overlay trees under `images/`, the binaries, extra overlays, the patch
//! number) and runs `boxcar image build` only when no image with that key
//! is cached in `<cache>/images/<key>/`. A changed unit file or binary
//! therefore gives a new image; an unchanged tree reuses the old one
//! (the first build takes minutes, mostly the Debian bootstrap, which
//! `boxcar image build` itself caches in `/var/cache/boxcar-image`).

use crate::error::{Result, TestbedError};
use crate::{cargo, paths, tool};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// One built image version and the files next to it.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The output directory of `boxcar image build`.
    pub dir: PathBuf,
    /// `<prefix>.raw`, the bootable disk (present unless `keep` dropped it).
    pub raw: PathBuf,
    /// `VERSION_ID` of the image (from `build.json`).
    pub version: String,
    /// Directory holding the guest binaries (`boxcar`, `boxcar-provision`, …)
    /// the image was built with; also usable on the host.
    pub bin_dir: PathBuf,
}

impl BuiltImage {
    /// `<dir>/boxcar-<version><ext>`, e.g. `file(".bxp")` for the payload.
    pub fn file(&self, ext: &str) -> PathBuf {
        self.dir.join(format!("boxcar-{}{ext}", self.version))
    }
}

/// Which variant of the image to build.
#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    /// `--patch N` (N+1 images for update scenarios); `None`: the manifest's.
    pub patch: Option<u32>,
    /// `--overlay DIR`s copied over the root after the manifest's overlay.
    pub overlays: Vec<PathBuf>,
    /// File name endings kept after the build (`build.json` always is);
    /// empty keeps everything. The host disk is small: a boot test needs
    /// `.raw`, an update test the `.bxp` payload, rarely both.
    pub keep: Vec<String>,
}

impl ImageSpec {
    /// Version N as the scenario tests share it: the manifest's patch 0,
    /// no overlay, only the raw disk kept.
    pub fn boot_disk() -> ImageSpec {
        ImageSpec {
            patch: Some(0),
            overlays: Vec::new(),
            keep: vec![".raw".into()],
        }
    }

    /// `p<patch>-` (or `pm-` for the manifest's): a new build of the same
    /// patch replaces older ones in the cache.
    fn tag(&self) -> String {
        match self.patch {
            Some(p) => format!("p{p}-"),
            None => "pm-".into(),
        }
    }
}

/// Serialises builds inside one test process (two tests asking for the same
/// image build it once).
static BUILD: Mutex<()> = Mutex::new(());

impl BuiltImage {
    /// The image for `spec`, built now if not cached.
    pub fn get(spec: &ImageSpec) -> Result<BuiltImage> {
        let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
        let workspace = workspace_root();
        let manifest = workspace.join("images/boxcar.toml");
        let text = read(&manifest)?;
        let bins = manifest_binaries(&String::from_utf8_lossy(&text)).map_err(|cause| TestbedError::Invalid {
            what: "images/boxcar.toml [binaries]",
            cause,
        })?;
        let cargo_manifest = workspace.join("Cargo.toml");
        let mut bin_dir = None;
        for (package, bin) in &bins {
            let exe = cargo::build_bin(&cargo_manifest, package, bin)?;
            bin_dir = exe.parent().map(Path::to_path_buf);
        }
        let bin_dir = bin_dir.ok_or_else(|| TestbedError::Invalid {
            what: "images/boxcar.toml [binaries]",
            cause: "no binaries listed".into(),
        })?;
        // The CLI that runs the build is one of them (package boxcar-cli).
        let boxcar = cargo::build_bin(&cargo_manifest, "boxcar-cli", "boxcar")?;

        let mut h = Sha256::new();
        h.update(b"boxcar-testbed image v1\0");
        h.update(&text);
        hash_tree(&mut h, &workspace.join("images"))?;
        for (_, bin) in &bins {
            h.update(bin.as_bytes());
            h.update(read(&bin_dir.join(bin))?);
        }
        h.update(read(&boxcar)?);
        for o in &spec.overlays {
            h.update(o.to_string_lossy().as_bytes());
            hash_tree(&mut h, o)?;
        }
        h.update(format!("patch={:?} keep={:?}", spec.patch, spec.keep).as_bytes());
        let key = format!("{}{}", spec.tag(), hex::encode(&h.finalize()[..12]));

        let root = paths::cache_dir().join("images");
        std::fs::create_dir_all(&root).map_err(|source| io("create", &root, source))?;
        // Other test processes (nextest) wait for a build in progress.
        let lock_path = root.join("build.lock");
        let lock = std::fs::File::create(&lock_path).map_err(|source| io("create", &lock_path, source))?;
        {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a file descriptor we own; released when `lock` is dropped.
            if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(io("lock", &lock_path, std::io::Error::last_os_error()));
            }
        }
        let dir = root.join(&key);
        if !dir.join("build.json").is_file() {
            let tmp = root.join(format!("{key}.partial"));
            let _ = std::fs::remove_dir_all(&tmp);
            let mut cmd = Command::new(&boxcar);
            cmd.args(["image", "build", "-m"])
                .arg(&manifest)
                .arg("-o")
                .arg(&tmp)
                .arg("--bin-dir")
                .arg(&bin_dir)
                .arg("--no-qcow2")
                .current_dir(&workspace);
            if let Some(p) = spec.patch {
                cmd.args(["--patch", &p.to_string()]);
            }
            for o in &spec.overlays {
                cmd.arg("--overlay").arg(o);
            }
            let started = std::time::Instant::now();
            tool::run(&mut cmd)?;
            eprintln!(
                "boxcar-testbed: built image {key} in {:.0} s",
                started.elapsed().as_secs_f64()
            );
            if !spec.keep.is_empty() {
                for e in std::fs::read_dir(&tmp)
                    .map_err(|source| io("list", &tmp, source))?
                    .flatten()
                {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name != "build.json" && !spec.keep.iter().any(|k| name.ends_with(k.as_str())) {
                        std::fs::remove_file(e.path()).map_err(|source| io("remove", &e.path(), source))?;
                    }
                }
            }
            // Only complete builds get the key's name.
            prune_old(&root, &key, &spec.tag());
            std::fs::rename(&tmp, &dir).map_err(|source| io("rename", &tmp, source))?;
        }
        let build: serde_json::Value =
            serde_json::from_slice(&read(&dir.join("build.json"))?).map_err(|e| TestbedError::Invalid {
                what: "build.json",
                cause: e.to_string(),
            })?;
        let version = build["version"].as_str().unwrap_or_default().to_string();
        let raw = std::fs::read_dir(&dir)
            .map_err(|source| io("list", &dir, source))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "raw"))
            .unwrap_or_else(|| dir.join(format!("boxcar-{version}.raw")));
        if spec.keep.iter().any(|k| k == ".raw") && !raw.is_file() {
            return Err(TestbedError::Missing {
                path: raw,
                hint: "boxcar image build left no raw disk image",
            });
        }
        drop(lock);
        Ok(BuiltImage {
            dir,
            raw,
            version,
            bin_dir,
        })
    }
}

/// Keeps the cache small: removes older builds of the same patch (`tag`),
/// complete images other than `keep` whose build is older than a day, and
/// stale partial builds. Disk space on CI runners is short and every image
/// is ~1 GB of real data.
fn prune_old(root: &Path, keep: &str, tag: &str) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(keep) || name == "build.lock" {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 24 * 3600);
        if old || name.ends_with(".partial") || name.starts_with(tag) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The workspace root: two levels above this crate.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|source| io("read", p, source))
}

fn io(what: &'static str, path: &Path, source: std::io::Error) -> TestbedError {
    TestbedError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Hashes relative paths, modes and contents (symlink targets) of a tree,
/// in sorted order.
fn hash_tree(h: &mut Sha256, root: &Path) -> Result<()> {
    let mut stack = vec![root.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|source| io("list", &d, source))? {
            let e = e.map_err(|source| io("list", &d, source))?;
            let p = e.path();
            let t = e.file_type().map_err(|source| io("stat", &p, source))?;
            if t.is_dir() {
                stack.push(p.clone());
            }
            files.push(p);
        }
    }
    files.sort();
    for p in files {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::symlink_metadata(&p).map_err(|source| io("stat", &p, source))?;
        let rel = p.strip_prefix(root).unwrap_or(&p);
        h.update(rel.to_string_lossy().as_bytes());
        h.update(m.permissions().mode().to_le_bytes());
        if m.file_type().is_symlink() {
            let t = std::fs::read_link(&p).map_err(|source| io("readlink", &p, source))?;
            h.update(t.to_string_lossy().as_bytes());
        } else if m.is_file() {
            h.update(read(&p)?);
        }
        h.update(b"\0");
    }
    Ok(())
}

/// `(package, bin)` pairs of the manifest's `[binaries] install` list, e.g.
/// `{ package = "boxcar-provision", bin = "boxcar-provision" }`.
pub fn manifest_binaries(manifest: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut inside = false;
    for (n, line) in manifest.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') && !t.starts_with("[[") && t.ends_with(']') && !t.contains('=') {
            inside = t == "[binaries]";
            continue;
        }
        if !inside || !t.contains("package") {
            continue;
        }
        let value = |key: &str| -> Option<String> {
            let at = t.find(&format!("{key} = \""))? + key.len() + 4;
            let end = t[at..].find('"')?;
            Some(t[at..at + end].to_string())
        };
        match (value("package"), value("bin")) {
            (Some(p), Some(b)) => out.push((p, b)),
            _ => return Err(format!("line {}: expected {{ package = \"…\", bin = \"…\" }}", n + 1)),
        }
    }
    if out.is_empty() {
        return Err("no `{ package, bin }` entries under [binaries]".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_of_the_manifest_format() {
        let m = "[os]\nname = \"x\"\n[binaries]\ninstall = [\n  { package = \"boxcar-provision\", bin = \"boxcar-provision\" },\n  { package = \"boxcar-cli\", bin = \"boxcar\" },\n]\n[usr]\nfilesystem = \"erofs\"\n";
        assert_eq!(
            manifest_binaries(m).unwrap(),
            vec![
                ("boxcar-provision".to_string(), "boxcar-provision".to_string()),
                ("boxcar-cli".to_string(), "boxcar".to_string())
            ]
        );
        assert!(manifest_binaries("[binaries]\ninstall = [ { package = \"x\" } ]\n")
            .unwrap_err()
            .contains("line 2"));
        assert!(manifest_binaries("[os]\n").is_err());
    }

    #[test]
    fn the_repository_manifest_installs_the_provisioner() {
        let text = std::fs::read_to_string(workspace_root().join("images/boxcar.toml")).unwrap();
        let bins = manifest_binaries(&text).unwrap();
        assert!(bins.iter().any(|(_, b)| b == "boxcar-provision"), "{bins:?}");
    }
}
