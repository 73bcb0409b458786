//! The layered `update.conf` as far as reboots go: `/usr/share/boxcar/update.conf` (image
//! defaults) overridden key by key by `/etc/boxcar/update.conf` (the operator's), in the
//! `KEY=value` syntax of systemd's `EnvironmentFile=` so Flatcar files work unchanged.
//!
//! Keys (Flatcar/locksmith names first, Boxcar additions after):
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `REBOOT_STRATEGY` | `off`, `reboot`, `windowed`, `etcd-lock`, `fleetlock`, `kured`; also `best-effort` (etcd-lock if an endpoint is set, else reboot), Zincati's `immediate`/`periodic`/`fleet_lock` | `reboot` |
//! | `LOCKSMITHD_REBOOT_WINDOW_START` / `REBOOT_WINDOW_START` | `Thu 04:00` or `04:00` (daily) | none |
//! | `LOCKSMITHD_REBOOT_WINDOW_LENGTH` / `REBOOT_WINDOW_LENGTH` | `1h30m` | none |
//! | `REBOOT_WINDOWS` | several windows: `Mon-Fri 22:00 2h; Sat,Sun 04:00 6h` | none |
//! | `REBOOT_TIME_ZONE` | IANA name, `UTC` or `localtime` | `UTC` |
//! | `LOCKSMITHD_ENDPOINT` / `REBOOT_ETCD_ENDPOINTS` | comma-separated `http://host:2379` | `http://127.0.0.1:2379` |
//! | `LOCKSMITHD_GROUP` / `REBOOT_GROUP` | lock group (etcd and FleetLock) | `default` |
//! | `REBOOT_MAX_HOLDERS` | slots when this node creates the etcd semaphore | `1` |
//! | `REBOOT_LOCK_TTL` | evict etcd holders older than this (`24h`); unset = only explicit unlock | unset |
//! | `FLEETLOCK_URL` | FleetLock base URL | none (required for `fleetlock`) |
//! | `FLEETLOCK_TOKEN_FILE` | file holding a read-only API token of a Boxcar server, so `status` can list FleetLock holders (the protocol has no read call) | unset |
//! | `KURED_SENTINEL` | file kured watches | `/var/run/reboot-required` |
//! | `REBOOT_ID` | lock holder id | `/etc/machine-id` |
//!
//! The syntax, layering and `file:line` errors come from `boxcar-updateconf`, the one parser
//! of update.conf (the update agent reads the same layers). Keys neither reads are warned
//! about by the daemons; here they are ignored: the file also carries the agent's `SERVER=`...
//! Among aliases the one set last wins (the `/etc` layer comes after `/usr`). An empty value
//! unsets a key, so `/etc` can drop an image-default window with `REBOOT_WINDOWS=`.

use crate::window::{self, Schedule, Window};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the image and the operator put the file, lowest precedence first.
pub use boxcar_updateconf::DEFAULT_PATHS;

/// kured's default sentinel.
pub const DEFAULT_KURED_SENTINEL: &str = "/var/run/reboot-required";

/// etcd's default client URL, as locksmith assumed.
pub const DEFAULT_ETCD_ENDPOINT: &str = "http://127.0.0.1:2379";

/// Which strategy decides when the node reboots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyKind {
    /// Never reboot automatically; the staged update waits for a manual reboot.
    Off,
    /// Reboot as soon as an update is staged (inside the windows, if any are configured).
    Reboot,
    /// Reboot only inside the configured windows (at least one is required).
    Windowed,
    /// Take a slot of a counting semaphore in etcd v3 first.
    EtcdLock,
    /// Take a slot from a FleetLock server first.
    FleetLock,
    /// Write kured's sentinel and let kured drain and reboot.
    Kured,
}

impl StrategyKind {
    /// The canonical config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::Off => "off",
            StrategyKind::Reboot => "reboot",
            StrategyKind::Windowed => "windowed",
            StrategyKind::EtcdLock => "etcd-lock",
            StrategyKind::FleetLock => "fleetlock",
            StrategyKind::Kured => "kured",
        }
    }

    /// Whether this strategy needs someone else's permission before rebooting.
    pub fn is_lock(self) -> bool {
        matches!(self, StrategyKind::EtcdLock | StrategyKind::FleetLock)
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use boxcar_updateconf::ConfigError;
use boxcar_updateconf::{Setting, Settings};

/// All problems found in the layered config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reboot configuration:\n  {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "))]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// The reboot side of the node's configuration.
#[derive(Debug, Clone)]
pub struct RebootConfig {
    /// The strategy.
    pub strategy: StrategyKind,
    /// Maintenance windows (empty = any time).
    pub schedule: Schedule,
    /// Lock group (etcd and FleetLock).
    pub group: String,
    /// etcd client URLs.
    pub etcd_endpoints: Vec<String>,
    /// Slots when this node creates the etcd semaphore.
    pub max_holders: u32,
    /// Holders older than this are evicted by the next locker (etcd only).
    pub lock_ttl: Option<Duration>,
    /// FleetLock base URL.
    pub fleetlock_url: Option<String>,
    /// A Boxcar server's read-only API token (file), for listing FleetLock holders.
    pub fleetlock_token_file: Option<PathBuf>,
    /// kured's sentinel file.
    pub kured_sentinel: PathBuf,
    /// Explicit holder id (else the machine id).
    pub node_id: Option<String>,
}

impl Default for RebootConfig {
    fn default() -> Self {
        RebootConfig {
            strategy: StrategyKind::Reboot,
            schedule: Schedule::always(),
            group: "default".into(),
            etcd_endpoints: vec![DEFAULT_ETCD_ENDPOINT.into()],
            max_holders: 1,
            lock_ttl: None,
            fleetlock_url: None,
            fleetlock_token_file: None,
            kured_sentinel: DEFAULT_KURED_SENTINEL.into(),
            node_id: None,
        }
    }
}

/// A config as loaded for the daemon: always usable, with the problems that were found.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The config to act on. When `errors` is non-empty this is the safe fallback: strategy
    /// `off`, so a broken config never reboots a node without permission.
    pub config: RebootConfig,
    /// Problems found; log them loudly.
    pub errors: Vec<ConfigError>,
}

/// Parses the layers (lowest precedence first) into a config, or every problem found.
pub fn parse_layers(layers: &[(&str, &str)]) -> Result<RebootConfig, ConfigErrors> {
    let (settings, mut errors) = Settings::parse_lenient(layers);
    let cfg = build(&settings, &mut errors);
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigErrors(errors))
    }
}

fn at(setting: &Setting, message: String) -> ConfigError {
    setting.error(message)
}

/// Checks a group name like FleetLock does: `^[a-zA-Z0-9.-]+$`.
pub fn valid_group(g: &str) -> bool {
    !g.is_empty() && g.len() <= 64 && g.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

fn build(s: &Settings, errors: &mut Vec<ConfigError>) -> RebootConfig {
    let mut cfg = RebootConfig::default();

    // Time zone first: windows are meaningless without it.
    if let Some(tz) = s.pick(&["REBOOT_TIME_ZONE"]) {
        match window::time_zone(&tz.value) {
            Ok(z) => {
                cfg.schedule.tz = z;
                cfg.schedule.tz_name = tz.value.clone();
            }
            Err(e) => errors.push(at(tz, format!("REBOOT_TIME_ZONE: {e}"))),
        }
    }
    let start = s.pick(&["LOCKSMITHD_REBOOT_WINDOW_START", "REBOOT_WINDOW_START"]);
    let length = s.pick(&["LOCKSMITHD_REBOOT_WINDOW_LENGTH", "REBOOT_WINDOW_LENGTH"]);
    match (start, length) {
        (Some(st), Some(len)) => match Window::from_locksmith(&st.value, &len.value) {
            Ok(w) => cfg.schedule.windows.push(w),
            Err(e) => errors.push(at(st, format!("reboot window: {e}"))),
        },
        (Some(st), None) => errors.push(at(
            st,
            "reboot window start set without LOCKSMITHD_REBOOT_WINDOW_LENGTH".into(),
        )),
        (None, Some(len)) => errors.push(at(
            len,
            "reboot window length set without LOCKSMITHD_REBOOT_WINDOW_START".into(),
        )),
        (None, None) => {}
    }
    if let Some(ws) = s.pick(&["REBOOT_WINDOWS"]) {
        for part in ws.value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            match Window::parse(part) {
                Ok(w) => cfg.schedule.windows.push(w),
                Err(e) => errors.push(at(ws, format!("REBOOT_WINDOWS: {e}"))),
            }
        }
    }
    if let Some(g) = s.pick(&["LOCKSMITHD_GROUP", "REBOOT_GROUP"]) {
        if valid_group(&g.value) {
            cfg.group = g.value.clone();
        } else {
            errors.push(at(g, format!("group {:?}: expected 1-64 of [a-zA-Z0-9.-]", g.value)));
        }
    }
    let endpoint = s.pick(&["LOCKSMITHD_ENDPOINT", "REBOOT_ETCD_ENDPOINTS"]);
    if let Some(e) = endpoint {
        let list: Vec<String> = e
            .value
            .split(',')
            .map(|x| x.trim().trim_end_matches('/').to_string())
            .filter(|x| !x.is_empty())
            .collect();
        match list.iter().find(|u| !u.starts_with("http://")) {
            Some(bad) => errors.push(at(e, format!("etcd endpoint {bad:?}: only http:// URLs are supported"))),
            None => cfg.etcd_endpoints = list,
        }
    }
    if let Some(m) = s.pick(&["REBOOT_MAX_HOLDERS"]) {
        match m.value.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => cfg.max_holders = n,
            _ => errors.push(at(
                m,
                format!("REBOOT_MAX_HOLDERS {:?}: expected a number from 1 to 1000", m.value),
            )),
        }
    }
    if let Some(t) = s.pick(&["REBOOT_LOCK_TTL"]) {
        match window::parse_duration(&t.value) {
            Ok(d) if !d.is_zero() => cfg.lock_ttl = Some(d),
            _ => errors.push(at(
                t,
                format!("REBOOT_LOCK_TTL {:?}: expected a duration like 24h", t.value),
            )),
        }
    }
    if let Some(u) = s.pick(&["FLEETLOCK_URL"]) {
        if u.value.starts_with("http://") {
            cfg.fleetlock_url = Some(u.value.trim_end_matches('/').to_string());
        } else {
            errors.push(at(
                u,
                format!("FLEETLOCK_URL {:?}: only http:// URLs are supported", u.value),
            ));
        }
    }
    if let Some(t) = s.pick(&["FLEETLOCK_TOKEN_FILE"]) {
        if Path::new(&t.value).is_absolute() {
            cfg.fleetlock_token_file = Some(t.value.clone().into());
        } else {
            errors.push(at(
                t,
                format!("FLEETLOCK_TOKEN_FILE {:?}: expected an absolute path", t.value),
            ));
        }
    }
    if let Some(k) = s.pick(&["KURED_SENTINEL"]) {
        if Path::new(&k.value).is_absolute() {
            cfg.kured_sentinel = k.value.clone().into();
        } else {
            errors.push(at(
                k,
                format!("KURED_SENTINEL {:?}: expected an absolute path", k.value),
            ));
        }
    }
    if let Some(id) = s.pick(&["REBOOT_ID"]) {
        if id.value.len() <= 256 && !id.value.chars().any(char::is_whitespace) {
            cfg.node_id = Some(id.value.clone());
        } else {
            errors.push(at(id, "REBOOT_ID: expected 1-256 characters without spaces".into()));
        }
    }
    if let Some(st) = s.pick(&["REBOOT_STRATEGY"]) {
        let kind = match st.value.as_str() {
            "off" => Some(StrategyKind::Off),
            "reboot" | "immediate" => Some(StrategyKind::Reboot),
            "windowed" | "periodic" => Some(StrategyKind::Windowed),
            "etcd-lock" => Some(StrategyKind::EtcdLock),
            // locksmith's old default: use etcd when one is configured.
            "best-effort" if endpoint.is_some() => Some(StrategyKind::EtcdLock),
            "best-effort" => Some(StrategyKind::Reboot),
            "fleetlock" | "fleet_lock" | "fleet-lock" => Some(StrategyKind::FleetLock),
            "kured" => Some(StrategyKind::Kured),
            _ => None,
        };
        match kind {
            Some(k) => cfg.strategy = k,
            None => errors.push(at(
                st,
                format!(
                    "REBOOT_STRATEGY {:?}: expected off, reboot, windowed, etcd-lock, best-effort, fleetlock or kured",
                    st.value
                ),
            )),
        }
    }
    if cfg.strategy == StrategyKind::Windowed && cfg.schedule.windows.is_empty() {
        errors.push(ConfigError::Combination(
            "REBOOT_STRATEGY=windowed needs a window: set REBOOT_WINDOWS or LOCKSMITHD_REBOOT_WINDOW_START/_LENGTH"
                .into(),
        ));
    }
    if cfg.strategy == StrategyKind::FleetLock && cfg.fleetlock_url.is_none() {
        errors.push(ConfigError::Combination(
            "REBOOT_STRATEGY=fleetlock needs FLEETLOCK_URL".into(),
        ));
    }
    cfg
}

/// Reads the layers from disk (missing files are skipped) and parses them.
pub fn load(paths: &[&Path]) -> Result<RebootConfig, ConfigErrors> {
    let (settings, mut errors) = Settings::load(paths);
    let cfg = build(&settings, &mut errors);
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Like [`load`], but always yields something to act on: on any error the strategy is `off`
/// (the staged update waits for the operator), never "reboot anyway".
pub fn load_or_safe(paths: &[&Path]) -> Loaded {
    match load(paths) {
        Ok(config) => Loaded {
            config,
            errors: Vec::new(),
        },
        Err(ConfigErrors(errors)) => Loaded {
            config: RebootConfig {
                strategy: StrategyKind::Off,
                ..RebootConfig::default()
            },
            errors,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USR: &str = "/usr/share/boxcar/update.conf";
    const ETC: &str = "/etc/boxcar/update.conf";

    #[test]
    fn flatcar_file_parses() {
        let cfg = parse_layers(&[(
            ETC,
            "GROUP=stable\nSERVER=https://example.com/v1/update/\n# comment\n\nREBOOT_STRATEGY=etcd-lock\n\
             LOCKSMITHD_REBOOT_WINDOW_START=\"Thu 04:00\"\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h30m\n\
             LOCKSMITHD_ENDPOINT=http://10.0.0.1:2379,http://10.0.0.2:2379/\nLOCKSMITHD_GROUP=workers\n",
        )])
        .unwrap();
        assert_eq!(cfg.strategy, StrategyKind::EtcdLock);
        assert_eq!(cfg.schedule.windows.len(), 1);
        assert_eq!(cfg.schedule.windows[0].to_string(), "Thu 04:00 1h30m");
        assert_eq!(cfg.etcd_endpoints, ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]);
        assert_eq!(cfg.group, "workers");
    }

    #[test]
    fn etc_overrides_usr_and_empty_unsets() {
        let cfg = parse_layers(&[
            (
                USR,
                "REBOOT_STRATEGY=off\nREBOOT_WINDOWS=Sun 03:00 1h\nLOCKSMITHD_GROUP=a\n",
            ),
            (
                ETC,
                "REBOOT_STRATEGY=fleetlock\nREBOOT_WINDOWS=\nREBOOT_GROUP=b\nFLEETLOCK_URL=http://lock:3333/\n\
                 REBOOT_TIME_ZONE=Europe/Berlin\nREBOOT_MAX_HOLDERS=3\nREBOOT_LOCK_TTL=12h\nREBOOT_ID=node-7\n",
            ),
        ])
        .unwrap();
        assert_eq!(cfg.strategy, StrategyKind::FleetLock);
        assert!(cfg.schedule.windows.is_empty());
        assert_eq!(cfg.group, "b", "alias set later wins");
        assert_eq!(cfg.fleetlock_url.as_deref(), Some("http://lock:3333"));
        assert_eq!(cfg.schedule.tz_name, "Europe/Berlin");
        assert_eq!(cfg.max_holders, 3);
        assert_eq!(cfg.lock_ttl, Some(Duration::from_secs(12 * 3600)));
        assert_eq!(cfg.node_id.as_deref(), Some("node-7"));
    }

    #[test]
    fn strategy_aliases() {
        let kind = |v: &str, extra: &str| {
            parse_layers(&[(ETC, &format!("REBOOT_STRATEGY={v}\n{extra}"))])
                .unwrap()
                .strategy
        };
        assert_eq!(kind("best-effort", ""), StrategyKind::Reboot);
        assert_eq!(
            kind("best-effort", "LOCKSMITHD_ENDPOINT=http://e:2379"),
            StrategyKind::EtcdLock
        );
        assert_eq!(kind("immediate", ""), StrategyKind::Reboot);
        assert_eq!(kind("periodic", "REBOOT_WINDOWS=Sat 01:00 1h"), StrategyKind::Windowed);
        assert_eq!(kind("kured", ""), StrategyKind::Kured);
        assert_eq!(kind("fleet_lock", "FLEETLOCK_URL=http://x"), StrategyKind::FleetLock);
        assert_eq!(parse_layers(&[]).unwrap().strategy, StrategyKind::Reboot);
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = parse_layers(&[
            (USR, "REBOOT_STRATEGY=reboot\n"),
            (
                ETC,
                "# header\nREBOOT_STRATEGY=sometimes\nnot a setting\nLOCKSMITHD_REBOOT_WINDOW_START=Thx 04:00\n\
                 LOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\nREBOOT_TIME_ZONE=Nowhere/Land\n",
            ),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("/etc/boxcar/update.conf:2: REBOOT_STRATEGY \"sometimes\""),
            "{text}"
        );
        assert!(text.contains("/etc/boxcar/update.conf:3: expected KEY=value"), "{text}");
        assert!(
            text.contains("/etc/boxcar/update.conf:4: reboot window: parsing window days"),
            "{text}"
        );
        assert!(text.contains("/etc/boxcar/update.conf:6: REBOOT_TIME_ZONE"), "{text}");
        assert_eq!(err.0.len(), 4);
    }

    #[test]
    fn combinations_are_checked() {
        let e = parse_layers(&[(ETC, "REBOOT_STRATEGY=windowed\n")]).unwrap_err();
        assert!(e.to_string().contains("needs a window"));
        let e = parse_layers(&[(ETC, "REBOOT_STRATEGY=fleetlock\n")]).unwrap_err();
        assert!(e.to_string().contains("needs FLEETLOCK_URL"));
        let e = parse_layers(&[(ETC, "LOCKSMITHD_REBOOT_WINDOW_START=04:00\n")]).unwrap_err();
        assert!(e.to_string().contains(":1: reboot window start set without"));
        let e = parse_layers(&[(ETC, "REBOOT_GROUP=bad group!\nFLEETLOCK_URL=https://x\n")]).unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
    }

    #[test]
    fn broken_config_falls_back_to_off() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("update.conf");
        std::fs::write(
            &etc,
            "REBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_REBOOT_WINDOW_START=Thu 4am\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\n",
        )
        .unwrap();
        let missing = dir.path().join("missing.conf");
        let loaded = load_or_safe(&[&missing, &etc]);
        assert_eq!(loaded.config.strategy, StrategyKind::Off);
        assert_eq!(loaded.errors.len(), 1);
        assert!(loaded.errors[0].to_string().contains("update.conf:2:"));
        std::fs::write(&etc, "REBOOT_STRATEGY=etcd-lock\n").unwrap();
        let loaded = load_or_safe(&[&missing, &etc]);
        assert!(loaded.errors.is_empty());
        assert_eq!(loaded.config.strategy, StrategyKind::EtcdLock);
    }

    #[test]
    fn hostile_lines_do_not_panic() {
        for text in [
            "=",
            "=x",
            "\"",
            "A=\"",
            "A='x\"",
            "1A=2",
            "A B=c",
            "é=1",
            "A=\u{0}",
            "REBOOT_WINDOWS=;;;",
        ] {
            let _ = parse_layers(&[(ETC, text)]);
        }
        assert!(parse_layers(&[(ETC, "A=\"unterminated")]).is_err());
    }
}
