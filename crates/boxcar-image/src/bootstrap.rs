//! The Debian root: mmdebstrap into a staging directory without mounting
//! anything on the host. `--mode=unshare` does its mounts (/proc, /dev for
//! maintainer scripts) inside a private user and mount namespace, so the
//! host sees only files appearing in the output directory.
//!
//! Downloaded .debs are kept in a cache directory and synced in and out of
//! the build (mmdebstrap's `sync-in`/`sync-out` hooks), and the finished
//! root is kept keyed by the exact bootstrap inputs: a rebuild with another
//! patch number or changed overlay files does not bootstrap again.

use crate::cmd::run;
use crate::error::{rd, wr};
use crate::manifest::Debian;
use crate::ImageError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Where bootstrap inputs and results are cached.
#[derive(Debug, Clone)]
pub struct Cache {
    pub dir: PathBuf,
}

impl Cache {
    /// The .deb cache (apt's archives directory content).
    pub fn apt(&self) -> PathBuf {
        self.dir.join("apt")
    }
    /// Finished roots, one per bootstrap key.
    pub fn roots(&self) -> PathBuf {
        self.dir.join("roots")
    }
}

/// The mmdebstrap arguments for `debian` (everything but the output path).
/// `apt_cache` is synced in before the download and out after install.
pub fn mmdebstrap_args(debian: &Debian, apt_cache: &Path) -> Vec<String> {
    let cache = apt_cache.display();
    let mut a = vec![
        "--mode=unshare".to_string(),
        format!("--variant={}", debian.variant),
        "--format=directory".to_string(),
        format!("--components={}", debian.components.join(",")),
        format!("--include={}", debian.packages.join(",")),
        // Keep the .debs between builds: do not require an empty archive
        // directory, do not delete the essential set's files early.
        "--skip=download/empty".to_string(),
        "--skip=essential/unlink".to_string(),
        "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/".to_string(),
        format!("--setup-hook=sync-in {cache} /var/cache/apt/archives/"),
        format!("--customize-hook=sync-out /var/cache/apt/archives {cache}"),
    ];
    for p in &debian.path_exclude {
        a.push(format!("--dpkgopt=path-exclude={p}"));
    }
    for p in &debian.path_include {
        a.push(format!("--dpkgopt=path-include={p}"));
    }
    a
}

/// A key naming a bootstrap result: the inputs that change the root.
pub fn bootstrap_key(debian: &Debian, source_date_epoch: i64) -> String {
    let mut h = Sha256::new();
    let doc = serde_json::json!({
        "suite": debian.suite,
        "mirror": debian.mirror,
        "components": debian.components,
        "variant": debian.variant,
        "packages": debian.packages,
        "path_exclude": debian.path_exclude,
        "path_include": debian.path_include,
        "source_date_epoch": source_date_epoch,
        "layout": 1,
    });
    h.update(doc.to_string().as_bytes());
    hex::encode(&h.finalize()[..12])
}

/// Whether an existing cached root may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Use a cached root for the same inputs if there is one.
    Cached,
    /// Always bootstrap again (e.g. to pick up new package versions).
    Fresh,
}

/// Produces the staging root at `dest` (which must not exist): from the
/// cache, or bootstrapped and then cached.
pub fn staging_root(
    debian: &Debian,
    cache: &Cache,
    source_date_epoch: i64,
    reuse: Reuse,
    dest: &Path,
) -> Result<(), ImageError> {
    let key = bootstrap_key(debian, source_date_epoch);
    let cached = cache.roots().join(&key);
    let done = cache.roots().join(format!("{key}.done"));
    if reuse == Reuse::Fresh || !done.exists() {
        std::fs::create_dir_all(cache.apt()).map_err(wr(&cache.apt()))?;
        if cached.exists() {
            std::fs::remove_dir_all(&cached).map_err(wr(&cached))?;
        }
        let _ = std::fs::remove_file(&done);
        std::fs::create_dir_all(cache.roots()).map_err(wr(&cache.roots()))?;
        let started = std::time::Instant::now();
        let mut args = mmdebstrap_args(debian, &cache.apt());
        args.push(debian.suite.clone());
        args.push(cached.display().to_string());
        args.push(debian.mirror.clone());
        let sde = source_date_epoch.to_string();
        tracing::info!(key, "bootstrapping the Debian root with mmdebstrap");
        run("mmdebstrap", &args, &[("SOURCE_DATE_EPOCH", &sde)])?;
        std::fs::write(&done, format!("{}\n", debian.packages.join(" "))).map_err(wr(&done))?;
        tracing::info!(key, secs = started.elapsed().as_secs_f64(), "bootstrap done");
    } else {
        tracing::info!(key, "reusing the cached Debian root");
    }
    if !cached.join("usr").is_dir() {
        return Err(ImageError::Root {
            root: cached,
            why: "cached root has no usr/ (remove it to bootstrap again)".into(),
        });
    }
    // cp -a keeps owners, modes, links and xattrs; reflinks where possible.
    run(
        "cp",
        [
            "-a".as_ref(),
            "--reflink=auto".as_ref(),
            cached.as_os_str(),
            dest.as_os_str(),
        ],
        &[],
    )?;
    std::fs::metadata(dest.join("usr")).map_err(rd(dest))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debian() -> Debian {
        Debian {
            suite: "bookworm".into(),
            mirror: "http://deb.debian.org/debian".into(),
            components: vec!["main".into()],
            variant: "minbase".into(),
            packages: vec!["systemd".into(), "udev".into()],
            path_exclude: vec!["/usr/share/doc/*".into()],
            path_include: vec![],
        }
    }

    #[test]
    fn args_never_mount_on_the_host() {
        let a = mmdebstrap_args(&debian(), Path::new("/c/apt"));
        assert!(a.contains(&"--mode=unshare".to_string()));
        assert!(!a.iter().any(|x| x.contains("--mode=root")));
        assert!(a.contains(&"--include=systemd,udev".to_string()));
        assert!(a.contains(&"--setup-hook=sync-in /c/apt /var/cache/apt/archives/".to_string()));
        assert!(a.contains(&"--dpkgopt=path-exclude=/usr/share/doc/*".to_string()));
    }

    #[test]
    fn key_follows_the_inputs() {
        let k = bootstrap_key(&debian(), 1);
        assert_eq!(k, bootstrap_key(&debian(), 1));
        assert_ne!(k, bootstrap_key(&debian(), 2));
        let mut d = debian();
        d.packages.push("podman".into());
        assert_ne!(k, bootstrap_key(&d, 1));
    }
}
