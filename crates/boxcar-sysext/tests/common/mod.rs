//! Shared helpers for tests that mount: a private mount namespace per test thread, tree
//! builders, and a Drop guard that unmerges.
#![allow(dead_code)]

use boxcar_sysext::build::{self, BuildSpec, Format, ReleaseSpec, ReloadManager};
use boxcar_sysext::merge::{self, Options};
use std::path::{Path, PathBuf};

/// Moves the calling test thread into its own private mount namespace, so nothing it mounts
/// is visible to (or can harm) the host, and everything disappears when the thread ends.
pub fn private_mount_ns() {
    // SAFETY: plain syscalls; unshare(CLONE_NEWNS) affects only this thread.
    unsafe {
        assert_eq!(
            libc::unshare(libc::CLONE_NEWNS),
            0,
            "unshare: {}",
            std::io::Error::last_os_error()
        );
        let r = libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        );
        assert_eq!(r, 0, "make-rprivate: {}", std::io::Error::last_os_error());
    }
}

/// Unmerges on drop (and ignores errors: the namespace dies with the thread anyway).
pub struct MergedGuard(pub Options);
impl Drop for MergedGuard {
    fn drop(&mut self) {
        let _ = merge::unmerge(&self.0);
    }
}

/// A fake host tree: os-release plus a few host files in usr/.
pub fn host_root(dir: &Path, os_release: &str) -> PathBuf {
    let root = dir.join("root");
    for d in ["usr/lib", "usr/bin", "usr/share/host", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("usr/lib/os-release"), os_release).unwrap();
    std::fs::write(root.join("usr/bin/host-tool"), "host\n").unwrap();
    std::fs::write(root.join("usr/bin/tool"), "host version\n").unwrap();
    std::fs::write(root.join("usr/share/host/data"), "data\n").unwrap();
    root
}

/// An extension source tree with a release file named `release_name` and files naming `tag`.
pub fn ext_tree(dir: &Path, release_name: &str, release: &str, tag: &str) -> PathBuf {
    let t = dir.join(format!("src-{tag}"));
    std::fs::create_dir_all(t.join("usr/lib/extension-release.d")).unwrap();
    std::fs::create_dir_all(t.join("usr/bin")).unwrap();
    std::fs::write(
        t.join(format!("usr/lib/extension-release.d/extension-release.{release_name}")),
        release,
    )
    .unwrap();
    std::fs::write(t.join(format!("usr/bin/{tag}")), format!("{tag}\n")).unwrap();
    std::fs::write(t.join("usr/bin/tool"), format!("tool from {tag}\n")).unwrap();
    t
}

/// Places a directory extension at `root/<dir>/<name>`.
pub fn place_dir(root: &Path, dir: &str, name: &str, release: &str) {
    let work = root.parent().unwrap().join("work");
    let src = ext_tree(&work, name, release, name);
    let dst = root.join(dir).join(name);
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::rename(src, dst).unwrap();
}

/// Builds an image with our builder, from a tree whose release file says `release_name`,
/// and places it at `root/<dir>/<file>`.
pub fn place_image(
    root: &Path,
    dir: &str,
    file: &str,
    release_name: &str,
    fields: ReleaseSpec,
    format: Format,
    tag: &str,
) {
    let work = root.parent().unwrap().join("work");
    let src = ext_tree(&work, "unused", "", tag);
    std::fs::remove_file(src.join("usr/lib/extension-release.d/extension-release.unused")).unwrap();
    let out = root.join(dir).join(file);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    build::build(&BuildSpec {
        name: release_name.into(),
        source: src,
        output: out,
        format,
        release: fields,
    })
    .unwrap();
}

/// Release fields shorthand.
pub fn rel(id: &str) -> ReleaseSpec {
    ReleaseSpec {
        id: id.into(),
        version_id: None,
        sysext_level: None,
        architecture: None,
        scope: None,
        reload_manager: ReloadManager::No,
    }
}
