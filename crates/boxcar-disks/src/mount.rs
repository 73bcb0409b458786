//! The mount and umount stages: the configured filesystems that have a
//! `path` are mounted under the target root so the files stage can write
//! into them, parents before children, and unmounted in reverse.
//!
//! Like Ignition, swap, `none` and entries without a format are skipped, a
//! mount point whose existing components are not all directories (a
//! symlink, a file) is refused, and missing directories are created with
//! mode 0755. Unlike Ignition's plain path join, `..` can never climb out
//! of the root.

use crate::cmd::Cmd;
use crate::error::DisksError;
use crate::run::Run;
use boxcar_config::model::Filesystem;
use std::path::{Component, Path, PathBuf};

/// Filesystems to mount, as (index, entry), parents first (stable by depth).
pub fn mount_order(fss: &[Filesystem]) -> Vec<(usize, &Filesystem)> {
    let mut v: Vec<(usize, &Filesystem)> = fss
        .iter()
        .enumerate()
        .filter(|(_, f)| f.path.as_deref().is_some_and(|p| !p.is_empty()))
        .filter(|(_, f)| matches!(f.format.as_deref(), Some(t) if !t.is_empty() && t != "swap" && t != "none"))
        .collect();
    v.sort_by_key(|(_, f)| depth(f.path.as_deref().unwrap_or_default()));
    v
}

fn depth(p: &str) -> usize {
    p.split('/').filter(|c| !c.is_empty() && *c != ".").count()
}

/// `path` inside `root`, with `.` and `..` resolved lexically and never
/// above the root.
pub fn within_root(root: &Path, path: &str) -> PathBuf {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    let mut out = root.to_path_buf();
    out.extend(parts);
    out
}

/// Refuses a mount point below `root` with an existing non-directory
/// component; returns the first missing directory, if any.
pub(crate) fn check_components(root: &Path, target: &Path) -> Result<Option<PathBuf>, String> {
    let rel = target.strip_prefix(root).map_err(|_| "outside the root".to_string())?;
    let mut p = root.to_path_buf();
    for c in rel.components() {
        p.push(c);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(format!("{} is not a directory", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Some(p)),
            Err(e) => return Err(format!("{}: {e}", p.display())),
        }
    }
    Ok(None)
}

pub(crate) fn mount_all(run: &mut Run, fss: &[Filesystem]) -> Result<(), DisksError> {
    for (index, fs) in mount_order(fss) {
        let path = format!("$.storage.filesystems.{index}");
        let target = within_root(&run.ctx.root, fs.path.as_deref().unwrap_or_default());
        let missing = check_components(&run.ctx.root, &target).map_err(|reason| DisksError::MountPoint {
            path: path.clone(),
            target: target.clone(),
            reason,
        })?;
        let device = run
            .device_or_planned(&path, &fs.device)?
            .unwrap_or_else(|| fs.device.clone());
        if missing.is_some() {
            if run.applying() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(&target)
                    .map_err(|source| DisksError::CreateMountPoint {
                        path: path.clone(),
                        target: target.clone(),
                        source,
                    })?;
            }
            run.note(&path, format!("create mount point {}", target.display()));
        }
        let format = fs.format.as_deref().unwrap_or_default();
        let mut cmd = Cmd::new("mount");
        if !fs.mount_options.is_empty() {
            cmd = cmd.arg("-o").arg(fs.mount_options.join(","));
        }
        let cmd = cmd
            .args(["-t", format, &device])
            .arg(target.to_string_lossy().into_owned());
        run.exec(&path, format!("mount {device} ({format}) at {}", target.display()), cmd)
            .map_err(|source| DisksError::Mount {
                path: path.clone(),
                device: device.clone(),
                target: target.clone(),
                source,
            })?;
    }
    Ok(())
}

pub(crate) fn umount_all(run: &mut Run, fss: &[Filesystem]) -> Result<(), DisksError> {
    for (index, fs) in mount_order(fss).into_iter().rev() {
        let path = format!("$.storage.filesystems.{index}");
        let target = within_root(&run.ctx.root, fs.path.as_deref().unwrap_or_default());
        let cmd = Cmd::new("umount").arg(target.to_string_lossy().into_owned());
        run.exec(&path, format!("unmount {}", target.display()), cmd)
            .map_err(|source| DisksError::Umount {
                path: path.clone(),
                target: target.clone(),
                source,
            })?;
    }
    Ok(())
}

use std::os::unix::fs::DirBuilderExt;

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(path: Option<&str>, format: Option<&str>) -> Filesystem {
        Filesystem {
            device: "/dev/x".into(),
            path: path.map(Into::into),
            format: format.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn parents_first_and_skips() {
        let fss = vec![
            fs(Some("/var/lib/docker"), Some("xfs")),
            fs(Some("/var"), Some("ext4")),
            fs(Some("/swap"), Some("swap")),
            fs(Some("/raw"), Some("none")),
            fs(None, Some("ext4")),
            fs(Some("/nofmt"), None),
            fs(Some("/"), Some("ext4")),
            fs(Some("/home"), Some("btrfs")),
        ];
        let order: Vec<usize> = mount_order(&fss).into_iter().map(|(i, _)| i).collect();
        assert_eq!(order, [6, 1, 7, 0]);
    }

    #[test]
    fn paths_stay_in_the_root() {
        let r = Path::new("/sysroot");
        assert_eq!(within_root(r, "/var/lib"), PathBuf::from("/sysroot/var/lib"));
        assert_eq!(within_root(r, "/../../etc"), PathBuf::from("/sysroot/etc"));
        assert_eq!(within_root(r, "/var/./../srv/"), PathBuf::from("/sysroot/srv"));
        assert_eq!(within_root(r, "/"), PathBuf::from("/sysroot"));
    }

    #[test]
    fn non_directory_components_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir(root.join("var")).unwrap();
        std::fs::write(root.join("file"), b"").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        assert_eq!(check_components(root, &root.join("var")), Ok(None));
        assert_eq!(
            check_components(root, &root.join("var/lib/x")),
            Ok(Some(root.join("var/lib")))
        );
        assert!(check_components(root, &root.join("file/x"))
            .unwrap_err()
            .contains("not a directory"));
        assert!(check_components(root, &root.join("link/x")).is_err());
    }
}
