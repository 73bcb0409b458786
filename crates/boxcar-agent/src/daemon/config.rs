//! The agent's side of `update.conf` (parsed by `boxcar-updateconf`, the one parser both
//! daemons share): which server, which group, and update_engine's other keys.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `SERVER` | Omaha URL (`http://…` or `https://…`); `disabled` switches update checks off | none: checks off until set |
//! | `GROUP` | Omaha `track` (Flatcar channel or Nebraska/Boxcar group) | `stable` |
//! | `MACHINE_ALIAS` | Omaha `machinealias` | unset |
//! | `FLATCAR_RELEASE_APPID` | Omaha app id | Flatcar's `{e96281a6-…}` |
//! | `FLATCAR_RELEASE_BOARD` | Omaha `board` | `amd64-usr` / `arm64-usr` from the build |
//! | `FLATCAR_RELEASE_VERSION` | overrides the os-release version sent | unset |
//! | `DOWNLOAD_USER` / `DOWNLOAD_PASSWORD` | HTTP basic auth for payload downloads (never logged) | unset |
//! | `PCR_POLICY_SERVER` | update_engine's TPM PCR policy upload; accepted, not implemented (warned) | unset |
//!
//! `REBOOT_STRATEGY` and the other reboot keys belong to the reboot coordinator; keys nobody
//! reads are warned about with their `file:line`, never fatal.

use boxcar_updateconf::{ConfigError, Settings};
use std::fmt;
use std::path::Path;

/// Where update checks go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    /// `SERVER=disabled`: the daemon serves its API but never checks.
    Disabled,
    /// No `SERVER` set anywhere: like disabled, but said differently in the logs.
    Unset,
    /// The Omaha endpoint.
    Url(String),
}

/// Basic-auth credentials for payload downloads. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DownloadAuth {
    /// `DOWNLOAD_USER`.
    pub user: String,
    /// `DOWNLOAD_PASSWORD`.
    pub password: String,
}

impl fmt::Debug for DownloadAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DownloadAuth {{ user: {:?}, password: <hidden> }}", self.user)
    }
}

/// What the agent reads from update.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// Where to check.
    pub server: Server,
    /// Omaha `track`.
    pub group: String,
    /// Omaha `appid`.
    pub app_id: String,
    /// Omaha `board`.
    pub board: String,
    /// Version override (`FLATCAR_RELEASE_VERSION`).
    pub version_override: Option<String>,
    /// Omaha `machinealias`.
    pub machine_alias: Option<String>,
    /// Payload download credentials.
    pub download_auth: Option<DownloadAuth>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            server: Server::Unset,
            group: "stable".into(),
            app_id: boxcar_omaha::FLATCAR_APP_ID.into(),
            board: default_board().into(),
            version_override: None,
            machine_alias: None,
            download_auth: None,
        }
    }
}

/// update_engine's board name for the architecture this was built for.
pub fn default_board() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64-usr"
    } else {
        "amd64-usr"
    }
}

/// The config and what is wrong with the files.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Usable config. With errors, only the valid keys were applied and checks stay off unless
    /// `SERVER` itself was valid.
    pub config: AgentConfig,
    /// Invalid lines or values (`file:line: …`): logged as errors.
    pub errors: Vec<ConfigError>,
    /// Unknown keys and accepted-but-unimplemented ones (`file:line: …`): logged as warnings.
    pub warnings: Vec<String>,
}

/// Interprets parsed settings.
pub fn from_settings(s: &Settings) -> (AgentConfig, Vec<ConfigError>, Vec<String>) {
    let mut cfg = AgentConfig::default();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    if let Some(v) = s.pick(&["SERVER"]) {
        if v.value == "disabled" {
            cfg.server = Server::Disabled;
        } else if ["http://", "https://"]
            .iter()
            .any(|p| v.value.starts_with(p) && v.value.len() > p.len())
        {
            cfg.server = Server::Url(v.value.clone());
        } else {
            errors.push(v.error(format!(
                "SERVER {:?}: expected an http:// or https:// URL, or disabled",
                v.value
            )));
        }
    }
    if let Some(g) = s.pick(&["GROUP"]) {
        if g.value.len() <= 256 && !g.value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            cfg.group = g.value.clone();
        } else {
            errors.push(g.error("GROUP: expected 1-256 characters without spaces"));
        }
    }
    if let Some(a) = s.pick(&["FLATCAR_RELEASE_APPID"]) {
        cfg.app_id = boxcar_omaha::normalize_app_id(&a.value);
    }
    if let Some(b) = s.pick(&["FLATCAR_RELEASE_BOARD"]) {
        cfg.board = b.value.clone();
    }
    if let Some(v) = s.pick(&["FLATCAR_RELEASE_VERSION"]) {
        cfg.version_override = Some(v.value.clone());
    }
    if let Some(a) = s.pick(&["MACHINE_ALIAS"]) {
        cfg.machine_alias = Some(a.value.clone());
    }
    match (s.pick(&["DOWNLOAD_USER"]), s.pick(&["DOWNLOAD_PASSWORD"])) {
        (Some(u), Some(p)) => {
            cfg.download_auth = Some(DownloadAuth {
                user: u.value.clone(),
                password: p.value.clone(),
            })
        }
        (Some(u), None) => errors.push(u.error("DOWNLOAD_USER set without DOWNLOAD_PASSWORD")),
        // Name the key only: the value is a secret.
        (None, Some(p)) => errors.push(p.error("DOWNLOAD_PASSWORD set without DOWNLOAD_USER")),
        (None, None) => {}
    }
    if let Some(p) = s.pick(&["PCR_POLICY_SERVER"]) {
        warnings.push(format!(
            "{}: PCR_POLICY_SERVER is accepted but not implemented (no PCR policy is uploaded)",
            p.location()
        ));
    }
    for (key, st) in s.unknown_keys() {
        warnings.push(format!("{}: unknown key {key} (ignored)", st.location()));
    }
    (cfg, errors, warnings)
}

/// Reads and interprets the layers (missing files skipped).
pub fn load(paths: &[&Path]) -> Loaded {
    let (settings, mut errors) = boxcar_updateconf::Settings::load(paths);
    let (config, more, warnings) = from_settings(&settings);
    errors.extend(more);
    Loaded {
        config,
        errors,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USR: &str = "/usr/share/boxcar/update.conf";
    const ETC: &str = "/etc/boxcar/update.conf";

    fn parse(layers: &[(&str, &str)]) -> (AgentConfig, Vec<String>, Vec<String>) {
        let (s, syntax) = Settings::parse_lenient(layers);
        let (c, e, w) = from_settings(&s);
        let mut errs: Vec<String> = syntax.iter().map(|e| e.to_string()).collect();
        errs.extend(e.iter().map(|e| e.to_string()));
        (c, errs, w)
    }

    #[test]
    fn flatcar_file_with_etc_override() {
        let (c, e, w) = parse(&[
            (
                USR,
                "GROUP=stable\nSERVER=http://update.example/v1/update/\nREBOOT_STRATEGY=reboot\n",
            ),
            (
                ETC,
                "GROUP=canary\nMACHINE_ALIAS=rack-7\nLOCKSMITHD_REBOOT_WINDOW_START=Thu 04:00\n",
            ),
        ]);
        assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
        assert_eq!(c.server, Server::Url("http://update.example/v1/update/".into()));
        assert_eq!(c.group, "canary");
        assert_eq!(c.machine_alias.as_deref(), Some("rack-7"));
        assert_eq!(c.app_id, boxcar_omaha::FLATCAR_APP_ID);
    }

    #[test]
    fn server_disabled_and_unset() {
        assert_eq!(parse(&[(ETC, "SERVER=disabled\n")]).0.server, Server::Disabled);
        assert_eq!(parse(&[]).0.server, Server::Unset);
        // /etc can turn an image default off again by emptying it.
        assert_eq!(
            parse(&[(USR, "SERVER=http://a/\n"), (ETC, "SERVER=\n")]).0.server,
            Server::Unset
        );
    }

    #[test]
    fn bad_values_name_file_and_line_and_unknown_keys_warn() {
        let (c, e, w) = parse(&[(
            ETC,
            "GRUOP=beta\nSERVER=ftp://x\nGROUP=a b\nDOWNLOAD_PASSWORD=hunter2\nPCR_POLICY_SERVER=http://p/\n",
        )]);
        assert_eq!(c.server, Server::Unset, "a bad SERVER never enables checks");
        assert_eq!(
            e,
            [
                "/etc/boxcar/update.conf:2: SERVER \"ftp://x\": expected an http:// or https:// URL, or disabled",
                "/etc/boxcar/update.conf:3: GROUP: expected 1-256 characters without spaces",
                "/etc/boxcar/update.conf:4: DOWNLOAD_PASSWORD set without DOWNLOAD_USER",
            ]
        );
        assert!(!e.iter().any(|x| x.contains("hunter2")), "secrets never reach messages");
        assert_eq!(
            w,
            [
                "/etc/boxcar/update.conf:5: PCR_POLICY_SERVER is accepted but not implemented (no PCR policy is uploaded)",
                "/etc/boxcar/update.conf:1: unknown key GRUOP (ignored)",
            ]
        );
    }

    #[test]
    fn download_auth_debug_hides_the_password() {
        let (c, e, _) = parse(&[(ETC, "DOWNLOAD_USER=bob\nDOWNLOAD_PASSWORD=hunter2\n")]);
        assert!(e.is_empty());
        let dbg = format!("{c:?}");
        assert!(dbg.contains("bob") && !dbg.contains("hunter2"), "{dbg}");
    }
}
