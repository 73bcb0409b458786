//! Versions N, N+1, N+2 of the real Boxcar image for the update scenarios,
//! built with `boxcar image build` from the repository's manifest and cached
//! under `<target>/scenario-images/` keyed by every input (our binaries, the
//! manifest and `images/` tree, the patch number, the extra overlay). The
//! Debian root is cached by the image builder itself, so a rebuild after a
//! code change costs one customize + erofs + payload run per version.

use boxcar_testbed::{cargo, paths, tool};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One built version: its version string and where its files are.
#[derive(Debug, Clone)]
pub struct Built {
    pub version: String,
    pub dir: PathBuf,
}

impl Built {
    /// `<dir>/boxcar-<version>.<ext>`.
    pub fn file(&self, ext: &str) -> PathBuf {
        self.dir.join(format!("boxcar-{}{ext}", self.version))
    }
}

/// The workspace root (two levels above this crate).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Our three binaries for the image, built (debug) into `<target>/testbed-guest`.
pub fn binaries() -> PathBuf {
    let manifest = workspace().join("Cargo.toml");
    let mut dir = None;
    for (package, bin) in [
        ("boxcar-cli", "boxcar"),
        ("boxcar-provision", "boxcar-provision"),
        ("boxcar-agent", "boxcar-updated"),
    ] {
        let exe = cargo::build_bin(&manifest, package, bin).unwrap();
        dir = exe.parent().map(Path::to_path_buf);
    }
    dir.unwrap()
}

/// sha256 over the files under `p` (names and contents, sorted), or of one file.
fn hash_tree(h: &mut Sha256, p: &Path) {
    if p.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(p).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for n in names {
            h.update(n.file_name().unwrap().as_encoded_bytes());
            hash_tree(h, &n);
        }
    } else {
        h.update(std::fs::read(p).unwrap_or_default());
    }
}

/// Builds (or reuses) version `patch` of the manifest; `overlay` adds files
/// (a failing health check for N+2). `keep` lists the file extensions kept
/// after the build (the rest is deleted: the host disk is small).
pub fn build(bin_dir: &Path, patch: u32, overlay: Option<&Path>, keep: &[&str]) -> Built {
    let ws = workspace();
    let mut h = Sha256::new();
    for b in ["boxcar", "boxcar-provision", "boxcar-updated"] {
        hash_tree(&mut h, &bin_dir.join(b));
    }
    hash_tree(&mut h, &ws.join("images"));
    h.update(patch.to_le_bytes());
    if let Some(o) = overlay {
        hash_tree(&mut h, o);
    }
    h.update(keep.join(",").as_bytes());
    let key = hex::encode(&h.finalize()[..8]);
    let root = paths::target_dir().join("scenario-images");
    let tag = format!("p{patch}-");
    let dir = root.join(format!("{tag}{key}"));
    let done = dir.join(".done");
    if !done.exists() {
        // Older builds of this patch are stale: drop them (GBs each).
        if let Ok(rd) = std::fs::read_dir(&root) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&tag) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        std::fs::create_dir_all(&dir).unwrap();
        let t = std::time::Instant::now();
        let mut cmd = Command::new(bin_dir.join("boxcar"));
        cmd.current_dir(&ws)
            .args(["image", "build", "-m", "images/boxcar.toml", "--no-qcow2", "--patch"])
            .arg(patch.to_string())
            .arg("-o")
            .arg(&dir)
            .arg("--bin-dir")
            .arg(bin_dir);
        if let Some(o) = overlay {
            cmd.arg("--overlay").arg(o);
        }
        tool::run(&mut cmd).unwrap();
        eprintln!("scenario: built patch {patch} in {:.0} s", t.elapsed().as_secs_f64());
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name != "build.json" && !keep.iter().any(|k| name.ends_with(k)) {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        std::fs::write(&done, b"").unwrap();
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("build.json")).unwrap()).unwrap();
    let version = report["version"].as_str().expect("build.json version").to_string();
    Built { version, dir }
}
