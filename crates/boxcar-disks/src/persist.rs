//! Keeping LUKS keys in the target, as Ignition's files stage does: each
//! non-clevis volume's key goes to `/etc/luks/<name>` (mode 0600, directory
//! 0700) and every volume gets an `/etc/crypttab` line
//! `<name> UUID=<uuid> <keyfile|none> luks[,_netdev]`.

use crate::error::DisksError;
use crate::luks::LuksVolume;
use crate::mount::{check_components, within_root};
use crate::run::Run;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// The crypttab line for one volume.
pub fn crypttab_line(v: &LuksVolume) -> String {
    let keyfile = if v.key.is_some() {
        format!("/etc/luks/{}", v.name)
    } else {
        "none".to_string()
    };
    let uuid = v.uuid.as_deref().unwrap_or("<uuid>");
    let netdev = if v.needs_network { ",_netdev" } else { "" };
    format!("{} UUID={uuid} {keyfile} luks{netdev}\n", v.name)
}

pub(crate) fn persist(run: &mut Run, volumes: &[LuksVolume]) -> Result<(), DisksError> {
    if volumes.is_empty() {
        return Ok(());
    }
    let root = run.ctx.root.clone();
    let luks_dir = within_root(&root, "/etc/luks");
    let crypttab = within_root(&root, "/etc/crypttab");
    for v in volumes {
        let path = "$.storage.luks".to_string();
        if v.key.is_some() {
            let target = luks_dir.join(&v.name);
            run.note(
                &path,
                format!("write the key of {} to {} (mode 0600)", v.name, target.display()),
            );
            if run.applying() {
                write_key(&root, &luks_dir, v).map_err(|source| DisksError::PersistKey {
                    name: v.name.clone(),
                    target: target.clone(),
                    source,
                })?;
            }
        }
        let line = crypttab_line(v);
        run.note(&path, format!("add {} to {}", line.trim_end(), crypttab.display()));
        if run.applying() {
            append(&root, &crypttab, &line).map_err(|source| DisksError::Crypttab {
                target: crypttab.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

fn no_symlinks(root: &Path, p: &Path) -> std::io::Result<()> {
    check_components(root, p).map(|_| ()).map_err(std::io::Error::other)
}

fn write_key(root: &Path, dir: &Path, v: &LuksVolume) -> std::io::Result<()> {
    no_symlinks(root, dir)?;
    if let Some(parent) = dir.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o755).create(parent)?;
    }
    if !dir.exists() {
        std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    }
    let target = dir.join(&v.name);
    if std::fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::other("refusing to write through a symlink"));
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&target)?;
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    f.write_all(v.key.as_ref().map(|k| k.expose()).unwrap_or_default())?;
    f.sync_all()
}

fn append(root: &Path, file: &Path, line: &str) -> std::io::Result<()> {
    if let Some(parent) = file.parent() {
        no_symlinks(root, parent)?;
        std::fs::DirBuilder::new().recursive(true).mode(0o755).create(parent)?;
    }
    if std::fs::symlink_metadata(file).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::other("refusing to write through a symlink"));
    }
    let mut f = OpenOptions::new().append(true).create(true).mode(0o600).open(file)?;
    f.write_all(line.as_bytes())
}
