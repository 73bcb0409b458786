//! Owner ids for filesystem nodes: `user`/`group` by id or by name, names
//! looked up in the *target's* passwd and group files.

use crate::error::ApplyError;
use crate::passwd_db::{self, GroupEntry, PasswdEntry};
use crate::root::Root;
use boxcar_config::model::NodeOwner;

/// The target's user and group databases, read once per stage step.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    pub users: Vec<PasswdEntry>,
    pub groups: Vec<GroupEntry>,
}

impl Owners {
    /// Read `/etc/passwd` and `/etc/group` inside `root`; missing files are
    /// empty databases (a name lookup then fails with a clear error).
    pub fn load(root: &Root) -> Result<Owners, ApplyError> {
        Ok(Owners {
            users: passwd_db::parse_passwd(&read_db(root, "/etc/passwd")?),
            groups: passwd_db::parse_group(&read_db(root, "/etc/group")?),
        })
    }

    /// Resolve a node's owner: id wins, then name, else the defaults (the
    /// current owner), exactly as Ignition's `ResolveNodeUidAndGid`.
    pub fn resolve(
        &self,
        config_path: &str,
        user: &NodeOwner,
        group: &NodeOwner,
        default: (u32, u32),
    ) -> Result<(u32, u32), ApplyError> {
        let uid = match (&user.id, user.name.as_deref()) {
            (Some(id), _) => *id as u32,
            (None, Some(n)) if !n.is_empty() => {
                passwd_db::find_user(&self.users, n)
                    .ok_or_else(|| ApplyError::NoSuchOwner {
                        path: config_path.to_string(),
                        kind: "user",
                        name: n.to_string(),
                        file: "passwd",
                    })?
                    .uid
            }
            _ => default.0,
        };
        let gid = match (&group.id, group.name.as_deref()) {
            (Some(id), _) => *id as u32,
            (None, Some(n)) if !n.is_empty() => {
                passwd_db::find_group(&self.groups, n)
                    .ok_or_else(|| ApplyError::NoSuchOwner {
                        path: config_path.to_string(),
                        kind: "group",
                        name: n.to_string(),
                        file: "group",
                    })?
                    .gid
            }
            _ => default.1,
        };
        Ok((uid, gid))
    }
}

fn read_db(root: &Root, path: &str) -> Result<String, ApplyError> {
    let host = root.join_follow(path)?;
    match std::fs::read(&host) {
        Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(ApplyError::Database {
            path: host,
            reason: e.to_string(),
        }),
    }
}
