//! Versions N, N+1, N+2 of the real Boxcar image for the update scenarios,
//! built with `boxcar image build` from the repository's manifest and cached
//! under `<target>/testbed-cache/images/` keyed by every input (our binaries,
//! the manifest and `images/` tree, the patch number, the extra overlay,
//! the kept files; `boxcar_testbed::image`). The
//! Debian root is cached by the image builder itself, so a rebuild after a
//! code change costs one customize + erofs + payload run per version.

use boxcar_testbed::{cargo, BuiltImage, ImageSpec};
use std::path::{Path, PathBuf};

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

/// Our three binaries for the image, built (release) into `<target>/testbed-guest`.
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

/// Builds (or reuses) version `patch` of the manifest through the test bed's
/// shared image cache (`boxcar_testbed::BuiltImage`, also used by
/// tests/scenarios.rs and tests/image.rs); `overlay` adds files (a failing
/// health check for N+2). `keep` lists the file endings kept after the build
/// (the rest is deleted: the host disk is small). The binaries come from the
/// manifest's `[binaries]`, built into the same `<target>/testbed-guest` as
/// [`binaries`].
pub fn build(_bin_dir: &Path, patch: u32, overlay: Option<&Path>, keep: &[&str]) -> Built {
    let spec = ImageSpec {
        patch: Some(patch),
        overlays: overlay.map(|o| vec![o.to_path_buf()]).unwrap_or_default(),
        keep: keep.iter().map(|k| k.to_string()).collect(),
    };
    let b = BuiltImage::get(&spec).unwrap();
    Built {
        version: b.version,
        dir: b.dir,
    }
}
