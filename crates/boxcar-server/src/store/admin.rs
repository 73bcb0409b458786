//! Administration: apps, channels, packages, groups, policies, tokens, retention.

use super::{activity_from_row, add_activity, random_hex, Store, StoreError};
use crate::db::{Conn, Dialect, Row, Val};
use crate::model::{Activity, App, Channel, ExtraFile, Group, Package, Severity};
use crate::policy::{Policy, UpdatesMode};
use boxcar_omaha::{normalize_app_id, FLATCAR_APP_ID};

/// Channels every app starts with.
pub const DEFAULT_CHANNELS: [&str; 4] = ["alpha", "beta", "stable", "lts"];

const PACKAGE_COLS: &str =
    "p.id, p.app_id, p.version, p.arch, p.url, p.filename, p.size, p.sha1, p.sha256, p.extra_files";

pub(crate) fn package_from_row(r: &Row) -> Package {
    Package {
        id: r.text(0),
        app_id: r.text(1),
        version: r.text(2),
        arch: r.text(3),
        url: r.text(4),
        filename: r.text(5),
        size: r.int(6) as u64,
        sha1: r.text(7),
        sha256: r.text(8),
        extra_files: serde_json::from_str::<Vec<ExtraFile>>(&r.text(9)).unwrap_or_default(),
    }
}

pub(crate) fn channel_package(
    c: &mut dyn Conn,
    app_id: &str,
    channel: &str,
    arch: &str,
) -> Result<Option<Package>, StoreError> {
    let rows = c.query(
        &format!(
            "SELECT {PACKAGE_COLS} FROM channel_packages cp JOIN packages p ON p.id = cp.package_id \
             WHERE cp.app_id = $1 AND cp.channel = $2 AND cp.arch = $3"
        ),
        &[app_id.into(), channel.into(), arch.into()],
    )?;
    Ok(rows.first().map(package_from_row))
}

pub(crate) fn group_from_row(r: &Row) -> Result<Group, StoreError> {
    let policy: Policy = serde_json::from_str(&r.text(5)).map_err(|e| crate::db::DbError::Decode {
        what: "group policy",
        message: e.to_string(),
    })?;
    Ok(Group {
        app_id: r.text(0),
        id: r.text(1),
        name: r.text(2),
        channel: r.opt_text(3),
        track: r.text(4),
        policy,
    })
}

const GROUP_COLS: &str = "app_id, id, name, channel, track, policy";

/// Fields a policy/group update may change.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct GroupPatch {
    /// New display name.
    pub name: Option<String>,
    /// New channel (empty string detaches).
    pub channel: Option<String>,
    /// New track alias.
    pub track: Option<String>,
    /// New policy (replaces the whole policy).
    pub policy: Option<Policy>,
}

/// Role of an API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May read everything.
    ReadOnly,
    /// May change everything.
    Admin,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::ReadOnly => "readonly",
            Role::Admin => "admin",
        }
    }
}

/// Hashes a token for storage; tokens are 256-bit random, so one SHA-256 is enough.
pub fn hash_token(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Converts a 64-digit hex SHA-256 to the base64 Omaha wants; base64 input passes through.
pub fn sha256_to_base64(s: &str) -> String {
    use base64::Engine;
    if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        let bytes = hex::decode(s).expect("64 hex digits, checked above");
        base64::engine::general_purpose::STANDARD.encode(bytes)
    } else {
        s.to_string()
    }
}

impl Store {
    /// Creates Flatcar's application with the standard channels and one group per channel (track =
    /// channel name), so Flatcar nodes get answers out of the box. Idempotent.
    pub fn ensure_defaults(&self, now: i64) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO applications (id, name, description, created_at) VALUES ($1, 'flatcar', \
                 'Flatcar Container Linux', $2) ON CONFLICT DO NOTHING",
                &[FLATCAR_APP_ID.into(), now.into()],
            )?;
            for ch in DEFAULT_CHANNELS {
                c.execute(
                    "INSERT INTO channels (app_id, name, created_at) VALUES ($1,$2,$3) ON CONFLICT DO NOTHING",
                    &[FLATCAR_APP_ID.into(), ch.into(), now.into()],
                )?;
                c.execute(
                    "INSERT INTO fleet_groups (app_id, id, name, channel, track, policy, created_at) \
                     VALUES ($1,$2,$3,$2,$2,$4,$5) ON CONFLICT DO NOTHING",
                    &[
                        FLATCAR_APP_ID.into(),
                        ch.into(),
                        format!("Flatcar {ch}").into(),
                        serde_json::to_string(&Policy::default()).unwrap_or_default().into(),
                        now.into(),
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// Creates an application (id normalised) with the default channels.
    pub fn create_app(&self, now: i64, app: &App) -> Result<App, StoreError> {
        let app = App {
            id: normalize_app_id(&app.id),
            ..app.clone()
        };
        if app.name.is_empty() {
            return Err(StoreError::Invalid("creating app: name must not be empty".into()));
        }
        self.write(|c| {
            c.execute(
                "INSERT INTO applications (id, name, description, created_at) VALUES ($1,$2,$3,$4)",
                &[
                    (&app.id).into(),
                    (&app.name).into(),
                    (&app.description).into(),
                    now.into(),
                ],
            )?;
            for ch in DEFAULT_CHANNELS {
                c.execute(
                    "INSERT INTO channels (app_id, name, created_at) VALUES ($1,$2,$3)",
                    &[(&app.id).into(), ch.into(), now.into()],
                )?;
            }
            Ok(())
        })?;
        Ok(app)
    }

    /// All applications.
    pub fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        let rows = self
            .conn()?
            .query("SELECT id, name, description FROM applications ORDER BY name", &[])?;
        Ok(rows
            .iter()
            .map(|r| App {
                id: r.text(0),
                name: r.text(1),
                description: r.text(2),
            })
            .collect())
    }

    /// Finds an app by id (with or without braces) or by name.
    pub fn resolve_app(&self, key: &str) -> Result<App, StoreError> {
        let rows = self.conn()?.query(
            "SELECT id, name, description FROM applications WHERE id = $1 OR name = $2",
            &[normalize_app_id(key).into(), key.into()],
        )?;
        rows.first()
            .map(|r| App {
                id: r.text(0),
                name: r.text(1),
                description: r.text(2),
            })
            .ok_or_else(|| StoreError::NotFound(format!("app {key}")))
    }

    /// Creates a (custom) channel.
    pub fn create_channel(&self, now: i64, app_id: &str, name: &str) -> Result<(), StoreError> {
        valid_slug("channel name", name)?;
        self.write(|c| {
            c.execute(
                "INSERT INTO channels (app_id, name, created_at) VALUES ($1,$2,$3)",
                &[app_id.into(), name.into(), now.into()],
            )?;
            Ok(())
        })
    }

    /// Channels with their packages per architecture.
    pub fn list_channels(&self, app_id: &str) -> Result<Vec<Channel>, StoreError> {
        let mut c = self.conn()?;
        let names = c.query(
            "SELECT name FROM channels WHERE app_id = $1 ORDER BY name",
            &[app_id.into()],
        )?;
        let pkgs = c.query(
            &format!(
                "SELECT cp.channel, {PACKAGE_COLS} FROM channel_packages cp JOIN packages p ON p.id = cp.package_id \
                 WHERE cp.app_id = $1 ORDER BY p.arch"
            ),
            &[app_id.into()],
        )?;
        Ok(names
            .iter()
            .map(|n| Channel {
                app_id: app_id.to_string(),
                name: n.text(0),
                packages: pkgs
                    .iter()
                    .filter(|p| p.text(0) == n.text(0))
                    .map(|p| package_from_row(&Row(p.0[1..].to_vec())))
                    .collect(),
            })
            .collect())
    }

    /// Adds a package; with `channel`, also points that channel at it (publish).
    pub fn create_package(&self, now: i64, pkg: &Package, channel: Option<&str>) -> Result<Package, StoreError> {
        if pkg.version.is_empty() || pkg.url.is_empty() || pkg.filename.is_empty() || pkg.size == 0 {
            return Err(StoreError::Invalid(
                "creating package: version, url, filename and size are required".into(),
            ));
        }
        if pkg.sha256.is_empty() {
            return Err(StoreError::Invalid(
                "creating package: sha256 is required (update_engine checks it)".into(),
            ));
        }
        let mut pkg = pkg.clone();
        pkg.id = random_hex(8);
        pkg.sha256 = sha256_to_base64(&pkg.sha256);
        if !pkg.url.ends_with('/') {
            pkg.url.push('/');
        }
        if pkg.arch.is_empty() {
            pkg.arch = "amd64".into();
        }
        self.write(|c| {
            c.execute(
                "INSERT INTO packages (id, app_id, version, arch, url, filename, size, sha1, sha256, extra_files, created_at) \
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
                &[
                    (&pkg.id).into(),
                    (&pkg.app_id).into(),
                    (&pkg.version).into(),
                    (&pkg.arch).into(),
                    (&pkg.url).into(),
                    (&pkg.filename).into(),
                    (pkg.size as i64).into(),
                    (&pkg.sha1).into(),
                    (&pkg.sha256).into(),
                    serde_json::to_string(&pkg.extra_files).unwrap_or_else(|_| "[]".into()).into(),
                    now.into(),
                ],
            )?;
            add_activity(
                c,
                &Activity {
                    ts: now,
                    app_id: pkg.app_id.clone(),
                    group_id: None,
                    kind: "package_created".into(),
                    severity: Severity::Info,
                    version: Some(pkg.version.clone()),
                    message: format!("package {} ({}) created", pkg.version, pkg.arch),
                },
            )?;
            if let Some(ch) = channel {
                point_channel(c, now, &pkg.app_id, ch, &pkg)?;
            }
            Ok(())
        })?;
        Ok(pkg)
    }

    /// Packages of an app, newest first.
    pub fn list_packages(&self, app_id: &str) -> Result<Vec<Package>, StoreError> {
        let rows = self.conn()?.query(
            &format!(
                "SELECT {PACKAGE_COLS} FROM packages p WHERE p.app_id = $1 ORDER BY p.created_at DESC, p.version DESC"
            ),
            &[app_id.into()],
        )?;
        Ok(rows.iter().map(package_from_row).collect())
    }

    /// Points `channel` at `version` for every architecture that has a package of that version
    /// (or only `arch`). Returns the packages now in the channel.
    pub fn promote(
        &self,
        now: i64,
        app_id: &str,
        channel: &str,
        version: &str,
        arch: Option<&str>,
    ) -> Result<Vec<Package>, StoreError> {
        self.write(|c| {
            let exists = c.query(
                "SELECT 1 FROM channels WHERE app_id = $1 AND name = $2",
                &[app_id.into(), channel.into()],
            )?;
            if exists.is_empty() {
                return Err(StoreError::NotFound(format!("channel {channel}")));
            }
            let rows = c.query(
                &format!("SELECT {PACKAGE_COLS} FROM packages p WHERE p.app_id = $1 AND p.version = $2"),
                &[app_id.into(), version.into()],
            )?;
            let pkgs: Vec<Package> = rows
                .iter()
                .map(package_from_row)
                .filter(|p| arch.is_none_or(|a| a == p.arch))
                .collect();
            if pkgs.is_empty() {
                return Err(StoreError::NotFound(format!("package {version}")));
            }
            for p in &pkgs {
                point_channel(c, now, app_id, channel, p)?;
            }
            Ok(pkgs)
        })
    }

    /// Creates a group.
    pub fn create_group(&self, now: i64, g: &Group) -> Result<Group, StoreError> {
        valid_slug("group id", &g.id)?;
        g.policy.validate().map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut g = g.clone();
        if g.track.is_empty() {
            g.track = g.id.clone();
        }
        if g.name.is_empty() {
            g.name = g.id.clone();
        }
        self.write(|c| {
            c.execute(
                "INSERT INTO fleet_groups (app_id, id, name, channel, track, policy, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7)",
                &[
                    (&g.app_id).into(),
                    (&g.id).into(),
                    (&g.name).into(),
                    g.channel.clone().into(),
                    (&g.track).into(),
                    serde_json::to_string(&g.policy).unwrap_or_default().into(),
                    now.into(),
                ],
            )?;
            Ok(())
        })?;
        Ok(g)
    }

    /// Groups of an app.
    pub fn list_groups(&self, app_id: &str) -> Result<Vec<Group>, StoreError> {
        let rows = self.conn()?.query(
            &format!("SELECT {GROUP_COLS} FROM fleet_groups WHERE app_id = $1 ORDER BY id"),
            &[app_id.into()],
        )?;
        rows.iter().map(group_from_row).collect()
    }

    /// One group by id or track.
    pub fn get_group(&self, app_id: &str, key: &str) -> Result<Group, StoreError> {
        let rows = self.conn()?.query(
            &format!("SELECT {GROUP_COLS} FROM fleet_groups WHERE app_id = $1 AND (id = $2 OR track = $2)"),
            &[app_id.into(), key.into()],
        )?;
        rows.first()
            .map(group_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("group {key}")))
    }

    /// Changes a group; a policy change that pauses, halts or resumes is logged.
    pub fn update_group(&self, now: i64, app_id: &str, key: &str, patch: &GroupPatch) -> Result<Group, StoreError> {
        if let Some(p) = &patch.policy {
            p.validate().map_err(|e| StoreError::Invalid(e.to_string()))?;
        }
        self.write(|c| {
            let mut g = lock_group(c, app_id, key)?;
            let before = g.policy.updates;
            if let Some(n) = &patch.name {
                g.name = n.clone();
            }
            if let Some(ch) = &patch.channel {
                g.channel = (!ch.is_empty()).then(|| ch.clone());
            }
            if let Some(t) = &patch.track {
                g.track = t.clone();
            }
            if let Some(p) = &patch.policy {
                g.policy = p.clone();
                if g.policy.updates != UpdatesMode::Halted {
                    g.policy.halted_reason = None;
                }
            }
            save_group(c, &g)?;
            if before != g.policy.updates {
                let kind = match g.policy.updates {
                    UpdatesMode::Enabled => "group_resumed",
                    UpdatesMode::Paused => "group_paused",
                    UpdatesMode::Halted => "group_halted",
                };
                add_activity(
                    c,
                    &Activity {
                        ts: now,
                        app_id: app_id.into(),
                        group_id: Some(g.id.clone()),
                        kind: kind.into(),
                        severity: Severity::Info,
                        version: None,
                        message: format!(
                            "group {}: updates {:?} → {:?} by an operator",
                            g.id, before, g.policy.updates
                        ),
                    },
                )?;
            }
            Ok(g)
        })
    }

    /// Sets a group's updates mode (pause/resume).
    pub fn set_updates(&self, now: i64, app_id: &str, key: &str, mode: UpdatesMode) -> Result<Group, StoreError> {
        let mut policy = self.get_group(app_id, key)?.policy;
        policy.updates = mode;
        self.update_group(
            now,
            app_id,
            key,
            &GroupPatch {
                policy: Some(policy),
                ..GroupPatch::default()
            },
        )
    }

    /// The activity log, newest first, optionally for one app.
    pub fn list_activity(&self, app_id: Option<&str>, limit: i64) -> Result<Vec<Activity>, StoreError> {
        let rows = self.conn()?.query(
            "SELECT ts, app_id, group_id, kind, severity, version, message FROM activity \
             WHERE ($1 = '' OR app_id = $1) ORDER BY id DESC LIMIT $2",
            &[app_id.unwrap_or("").into(), limit.into()],
        )?;
        Ok(rows.iter().map(activity_from_row).collect())
    }

    /// Creates a token and returns its plain text (shown once; only its hash is stored).
    pub fn create_token(&self, now: i64, name: &str, role: Role) -> Result<String, StoreError> {
        let token = format!("bxc_{}", random_hex(32));
        self.write(|c| {
            c.execute(
                "INSERT INTO tokens (hash, name, role, created_at) VALUES ($1,$2,$3,$4)",
                &[hash_token(&token).into(), name.into(), role.name().into(), now.into()],
            )?;
            Ok(())
        })?;
        Ok(token)
    }

    /// The role of a presented token, if it is known.
    pub fn token_role(&self, token: &str) -> Result<Option<Role>, StoreError> {
        let rows = self
            .conn()?
            .query("SELECT role FROM tokens WHERE hash = $1", &[hash_token(token).into()])?;
        Ok(rows.first().map(|r| {
            if r.text(0) == "admin" {
                Role::Admin
            } else {
                Role::ReadOnly
            }
        }))
    }

    /// Deletes instances not seen, and events and activity older than, `before` (unix time).
    /// Returns (instances, events, activity) deleted.
    pub fn prune(&self, before: i64) -> Result<(u64, u64, u64), StoreError> {
        self.write(|c| {
            let i = c.execute("DELETE FROM instances WHERE last_check < $1", &[before.into()])?;
            let e = c.execute("DELETE FROM events WHERE ts < $1", &[before.into()])?;
            let a = c.execute("DELETE FROM activity WHERE ts < $1", &[before.into()])?;
            Ok((i, e, a))
        })
    }
}

fn valid_slug(what: &str, s: &str) -> Result<(), StoreError> {
    if s.is_empty() || s.len() > 64 || !s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(StoreError::Invalid(format!(
            "{what} {s:?} must be 1-64 characters of [A-Za-z0-9._-]"
        )));
    }
    Ok(())
}

fn point_channel(c: &mut dyn Conn, now: i64, app_id: &str, channel: &str, p: &Package) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO channel_packages (app_id, channel, arch, package_id) VALUES ($1,$2,$3,$4) \
         ON CONFLICT (app_id, channel, arch) DO UPDATE SET package_id = excluded.package_id",
        &[app_id.into(), channel.into(), (&p.arch).into(), (&p.id).into()],
    )?;
    add_activity(
        c,
        &Activity {
            ts: now,
            app_id: app_id.into(),
            group_id: None,
            kind: "channel_promoted".into(),
            severity: Severity::Info,
            version: Some(p.version.clone()),
            message: format!("channel {channel} ({}) now serves {}", p.arch, p.version),
        },
    )?;
    Ok(())
}

/// Reads a group inside a write transaction, locking its row on PostgreSQL.
pub(crate) fn lock_group(c: &mut dyn Conn, app_id: &str, key: &str) -> Result<Group, StoreError> {
    let rows = c.query(
        &format!(
            "SELECT {GROUP_COLS} FROM fleet_groups WHERE app_id = $1 AND (id = $2 OR track = $2){}",
            if c.dialect() == Dialect::Postgres {
                " FOR UPDATE"
            } else {
                ""
            }
        ),
        &[app_id.into(), key.into()],
    )?;
    rows.first()
        .map(group_from_row)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("group {key}")))
}

pub(crate) fn save_group(c: &mut dyn Conn, g: &Group) -> Result<(), StoreError> {
    c.execute(
        "UPDATE fleet_groups SET name = $3, channel = $4, track = $5, policy = $6 WHERE app_id = $1 AND id = $2",
        &[
            (&g.app_id).into(),
            (&g.id).into(),
            (&g.name).into(),
            g.channel.clone().into(),
            (&g.track).into(),
            Val::Text(serde_json::to_string(&g.policy).unwrap_or_default()),
        ],
    )?;
    Ok(())
}
