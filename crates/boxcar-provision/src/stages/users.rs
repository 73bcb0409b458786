//! `passwd.groups` and `passwd.users`, applied like Ignition 2.14: the
//! target's shadow-utils semantics via `groupadd`/`useradd`/`usermod`/
//! `userdel`/`groupdel --root`, so uid allocation, private groups, home
//! modes and skeleton copying follow the target's own `/etc/login.defs`.
//! Then SSH keys into `~/.ssh/authorized_keys.d/ignition`.
//!
//! Password hashes are passed to the tools but never logged, and tool
//! output is scrubbed of them before it reaches an error message.

use crate::error::ApplyError;
use crate::fsops;
use crate::owners::Owners;
use crate::passwd_db;
use crate::root::Root;
use boxcar_config::model::{PasswdGroup, PasswdUser};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where SSH keys go (Ignition's `IGNITION_WRITE_AUTHORIZED_KEYS_FRAGMENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeysFile {
    /// `~/.ssh/authorized_keys.d/ignition` (Flatcar/FCOS default).
    #[default]
    Fragment,
    /// `~/.ssh/authorized_keys`.
    AuthorizedKeys,
}

/// Where the shadow-utils binaries are (the initrd may keep them elsewhere).
#[derive(Debug, Clone)]
pub struct ShadowTools {
    pub dir: PathBuf,
}

impl Default for ShadowTools {
    fn default() -> Self {
        ShadowTools {
            dir: PathBuf::from("/usr/sbin"),
        }
    }
}

impl ShadowTools {
    fn run(&self, tool: &str, name: &str, args: &[String], secret: Option<&str>) -> Result<(), ApplyError> {
        let prog = self.dir.join(tool);
        tracing::info!(tool, name, "running {tool} --root <root> for {name:?}");
        let out = Command::new(&prog)
            .args(args)
            .env("LC_ALL", "C")
            .output()
            .map_err(|source| ApplyError::Spawn {
                tool: prog.display().to_string(),
                source,
            })?;
        if out.status.success() {
            return Ok(());
        }
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if let Some(s) = secret.filter(|s| !s.is_empty()) {
            stderr = stderr.replace(s, "<redacted>");
        }
        Err(ApplyError::Tool {
            tool: tool.to_string(),
            name: name.to_string(),
            status: out.status.to_string(),
            stderr,
        })
    }
}

/// Apply one group (`$.passwd.groups.N`).
pub fn group(root: &Root, tools: &ShadowTools, g: &PasswdGroup) -> Result<(), ApplyError> {
    let owners = Owners::load(root)?;
    let exists = passwd_db::find_group(&owners.groups, &g.name).is_some();
    let r = root.base().display().to_string();
    if g.should_exist == Some(false) {
        if exists {
            return tools.run("groupdel", &g.name, &["--root".into(), r, g.name.clone()], None);
        }
        return Ok(());
    }
    let mut args = vec!["--root".to_string(), r];
    if let Some(gid) = g.gid {
        args.extend(["--gid".into(), gid.to_string()]);
    }
    let hash = g
        .password_hash
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "*".into());
    args.extend(["--password".into(), hash.clone()]);
    if g.system == Some(true) {
        args.push("--system".into());
    }
    args.push(g.name.clone());
    tools.run("groupadd", &g.name, &args, Some(&hash))
}

/// Apply one user (`$.passwd.users.N`): create or modify, or delete.
pub fn user(root: &Root, tools: &ShadowTools, u: &PasswdUser, keys: KeysFile) -> Result<(), ApplyError> {
    let owners = Owners::load(root)?;
    let exists = passwd_db::find_user(&owners.users, &u.name).is_some();
    let r = root.base().display().to_string();
    if u.should_exist == Some(false) {
        if exists {
            return tools.run(
                "userdel",
                &u.name,
                &["--remove".into(), "--root".into(), r, u.name.clone()],
                None,
            );
        }
        return Ok(());
    }
    let mut args = vec!["--root".to_string(), r];
    let tool = if exists {
        if let Some(h) = u.home_dir.as_deref().filter(|h| !h.is_empty()) {
            args.extend(["--home".into(), h.into(), "--move-home".into()]);
        }
        "usermod"
    } else {
        if let Some(h) = u.home_dir.as_deref().filter(|h| !h.is_empty()) {
            args.extend(["--home-dir".into(), h.into()]);
        }
        args.push(
            if u.no_create_home == Some(true) {
                "--no-create-home"
            } else {
                "--create-home"
            }
            .into(),
        );
        for (flag, on) in [
            ("--no-user-group", u.no_user_group),
            ("--system", u.system),
            ("--no-log-init", u.no_log_init),
        ] {
            if on == Some(true) {
                args.push(flag.into());
            }
        }
        "useradd"
    };
    let hash = match u.password_hash.as_deref() {
        Some("") => Some("*".to_string()),
        Some(h) => Some(h.to_string()),
        None if !exists => Some("*".to_string()),
        None => None,
    };
    if let Some(h) = &hash {
        args.extend(["--password".into(), h.clone()]);
    }
    if let Some(uid) = u.uid {
        args.extend(["--uid".into(), uid.to_string()]);
    }
    if let Some(g) = u.gecos.as_deref().filter(|s| !s.is_empty()) {
        args.extend(["--comment".into(), g.into()]);
    }
    if let Some(g) = u.primary_group.as_deref().filter(|s| !s.is_empty()) {
        args.extend(["--gid".into(), g.into()]);
    }
    if !u.groups.is_empty() {
        args.extend(["--groups".into(), u.groups.join(",")]);
    }
    if let Some(s) = u.shell.as_deref().filter(|s| !s.is_empty()) {
        args.extend(["--shell".into(), s.into()]);
    }
    args.push(u.name.clone());
    tools.run(tool, &u.name, &args, hash.as_deref())?;
    // Ignition runs `usermod --password` again after useradd; for a user
    // useradd just created with that hash it changes nothing, so we skip it.
    if exists {
        if let Some(h) = u.password_hash.as_deref() {
            let h = if h.is_empty() { "*" } else { h };
            let r = root.base().display().to_string();
            tools.run(
                "usermod",
                &u.name,
                &["--root".into(), r, "--password".into(), h.into(), u.name.clone()],
                Some(h),
            )?;
        }
    }
    if !u.ssh_authorized_keys.is_empty() {
        ssh_keys(root, u, keys)?;
    }
    Ok(())
}

/// Write the user's keys, joined by newlines with a trailing newline;
/// missing directories are created 0700 and the file 0600, all owned by
/// the user (Ignition creates them as that user).
pub fn ssh_keys(root: &Root, u: &PasswdUser, keys: KeysFile) -> Result<(), ApplyError> {
    let owners = Owners::load(root)?;
    let pw = passwd_db::find_user(&owners.users, &u.name).ok_or_else(|| ApplyError::NoSuchOwner {
        path: format!("ssh keys of {}", u.name),
        kind: "user",
        name: u.name.clone(),
        file: "passwd",
    })?;
    let rel = match keys {
        KeysFile::Fragment => format!("{}/.ssh/authorized_keys.d/ignition", pw.home),
        KeysFile::AuthorizedKeys => format!("{}/.ssh/authorized_keys", pw.home),
    };
    let path = root.join(&rel)?;
    let mut text = u.ssh_authorized_keys.join("\n");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    if let Some(parent) = path.parent() {
        mkdir_all_owned(root.base(), parent, pw.uid, pw.gid)?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(ApplyError::io("opening authorized keys file", &path))?;
    f.write_all(text.as_bytes())
        .map_err(ApplyError::io("writing authorized keys file", &path))?;
    fsops::lchown(&path, pw.uid, pw.gid)?;
    tracing::info!(
        user = u.name,
        keys = u.ssh_authorized_keys.len(),
        "wrote SSH authorized keys"
    );
    Ok(())
}

/// Whether `uid:gid` (not root) may create entries in `dir`.
fn may_write(dir: &Path, uid: u32, gid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = fs::metadata(dir) else { return false };
    if uid == 0 {
        return true;
    }
    let mode = m.mode();
    let (w, x) = if m.uid() == uid {
        (0o200, 0o100)
    } else if m.gid() == gid {
        (0o020, 0o010)
    } else {
        (0o002, 0o001)
    };
    mode & w != 0 && mode & x != 0
}

/// Create the missing directories of `dir` (below `base`) with 0700,
/// owned by `uid:gid`, as Go's `MkdirAll` run as that user would.
fn mkdir_all_owned(base: &Path, dir: &Path, uid: u32, gid: u32) -> Result<(), ApplyError> {
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.exists() && cur.starts_with(base) && cur != base {
        missing.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    for d in missing.iter().rev() {
        // Ignition creates these as the user, so the kernel refuses when
        // the user may not write the parent; check the same way.
        if let Some(parent) = d.parent() {
            if !may_write(parent, uid, gid) {
                return Err(ApplyError::Io {
                    op: "creating directory as the key's owner",
                    path: d.clone(),
                    source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
                });
            }
        }
        fs::DirBuilder::new()
            .mode(0o700)
            .create(d)
            .map_err(ApplyError::io("creating directory", d))?;
        fsops::lchown(d, uid, gid)?;
    }
    Ok(())
}
