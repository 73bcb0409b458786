//! The node's `update.conf`, read once for everybody: `/usr/share/boxcar/update.conf` (image
//! defaults) overridden key by key by `/etc/boxcar/update.conf` (the operator's), in the
//! `KEY=value` syntax of systemd's `EnvironmentFile=` so Flatcar files work unchanged.
//!
//! This crate only splits the layers into located settings; the update agent
//! (`boxcar-agent`) and the reboot coordinator (`boxcar-reboot`) each interpret the keys they
//! own, so there is one syntax, one precedence rule and one way of naming `file:line` in
//! errors. [`AGENT_KEYS`] and [`REBOOT_KEYS`] list every key either of them reads, so a typo is warned about
//! instead of silently ignored.
//!
//! ```
//! use boxcar_updateconf::Settings;
//! let s = Settings::parse(&[
//!     ("/usr/share/boxcar/update.conf", "GROUP=stable\nSERVER=http://a/v1/update/\n"),
//!     ("/etc/boxcar/update.conf", "GROUP=beta\n"),
//! ]).unwrap();
//! assert_eq!(s.get("GROUP").unwrap().value, "beta");
//! assert_eq!(s.get("GROUP").unwrap().line, 1);
//! assert_eq!(s.get("SERVER").unwrap().path, "/usr/share/boxcar/update.conf");
//! ```

use std::collections::HashMap;
use std::path::Path;

/// Where the image and the operator put the file, lowest precedence first.
pub const DEFAULT_PATHS: [&str; 2] = ["/usr/share/boxcar/update.conf", "/etc/boxcar/update.conf"];

/// Keys read by the update agent (`boxcar-updated`), Flatcar's update_engine names.
pub const AGENT_KEYS: &[&str] = &[
    "GROUP",
    "SERVER",
    "MACHINE_ALIAS",
    "PCR_POLICY_SERVER",
    "DOWNLOAD_USER",
    "DOWNLOAD_PASSWORD",
    "FLATCAR_RELEASE_APPID",
    "FLATCAR_RELEASE_BOARD",
    "FLATCAR_RELEASE_VERSION",
];

/// Keys read by the reboot coordinator (locksmith names and Boxcar additions).
pub const REBOOT_KEYS: &[&str] = &[
    "REBOOT_STRATEGY",
    "LOCKSMITHD_REBOOT_WINDOW_START",
    "REBOOT_WINDOW_START",
    "LOCKSMITHD_REBOOT_WINDOW_LENGTH",
    "REBOOT_WINDOW_LENGTH",
    "REBOOT_WINDOWS",
    "REBOOT_TIME_ZONE",
    "LOCKSMITHD_ENDPOINT",
    "REBOOT_ETCD_ENDPOINTS",
    "LOCKSMITHD_GROUP",
    "REBOOT_GROUP",
    "REBOOT_MAX_HOLDERS",
    "REBOOT_LOCK_TTL",
    "FLEETLOCK_URL",
    "FLEETLOCK_TOKEN_FILE",
    "KURED_SENTINEL",
    "REBOOT_ID",
    // locksmith's TLS settings: accepted (Flatcar files carry them), not used.
    "LOCKSMITHD_ETCD_CAFILE",
    "LOCKSMITHD_ETCD_CERTFILE",
    "LOCKSMITHD_ETCD_KEYFILE",
];

/// Every key some Boxcar component reads from update.conf.
pub fn is_known_key(key: &str) -> bool {
    AGENT_KEYS.contains(&key) || REBOOT_KEYS.contains(&key)
}

/// One problem in a config file, located by file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("reading {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        message: String,
    },
    /// A line or a value is invalid.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong, naming the key.
        message: String,
    },
    /// Keys that are fine alone but not together (e.g. `fleetlock` without `FLEETLOCK_URL`).
    #[error("{0}")]
    Combination(String),
}

/// One `KEY=value` with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value, unquoted; empty means "unset" (so `/etc` can drop an image default).
    pub value: String,
    /// The file it came from.
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// Position over all layers: the higher, the later it was set.
    pub order: usize,
}

impl Setting {
    /// An error about this setting, located at its file and line.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Line {
            path: self.path.clone(),
            line: self.line,
            message: message.into(),
        }
    }

    /// A `file:line` location for warnings.
    pub fn location(&self) -> String {
        format!("{}:{}", self.path, self.line)
    }
}

/// The merged layers: the last setting of each key wins.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    map: HashMap<String, Setting>,
}

impl Settings {
    /// Parses the layers (lowest precedence first). All syntax errors are collected; on any
    /// error nothing is returned, so a half-read file is never acted on.
    pub fn parse(layers: &[(&str, &str)]) -> Result<Settings, Vec<ConfigError>> {
        let (settings, errors) = Settings::parse_lenient(layers);
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(errors)
        }
    }

    /// Like [`Settings::parse`] but keeps the lines that were valid next to the errors, for
    /// callers that report every problem at once after interpreting the rest.
    pub fn parse_lenient(layers: &[(&str, &str)]) -> (Settings, Vec<ConfigError>) {
        let mut settings = Settings::default();
        let mut order = 0;
        let mut errors = Vec::new();
        for (path, text) in layers {
            errors.extend(parse_lines(path, text, &mut order, &mut settings.map));
        }
        (settings, errors)
    }

    /// Reads the layer files (missing files are skipped) and parses them leniently; read errors
    /// come first in the returned list.
    pub fn load(paths: &[&Path]) -> (Settings, Vec<ConfigError>) {
        let mut texts = Vec::new();
        let mut errors = Vec::new();
        for p in paths {
            match std::fs::read_to_string(p) {
                Ok(t) => texts.push((p.display().to_string(), t)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => errors.push(ConfigError::Read {
                    path: p.display().to_string(),
                    message: e.to_string(),
                }),
            }
        }
        let layers: Vec<(&str, &str)> = texts.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
        let (settings, more) = Settings::parse_lenient(&layers);
        errors.extend(more);
        (settings, errors)
    }

    /// The setting of `key`, even when its value is empty.
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.map.get(key)
    }

    /// The last-set, non-empty value among `keys` (aliases): later layers and later lines win.
    pub fn pick(&self, keys: &[&str]) -> Option<&Setting> {
        keys.iter()
            .filter_map(|k| self.map.get(*k))
            .max_by_key(|x| x.order)
            .filter(|x| !x.value.is_empty())
    }

    /// Keys that no Boxcar component reads, with their location, in file order; the daemons
    /// warn about them (a typo such as `GRUOP=beta` would otherwise go unnoticed).
    pub fn unknown_keys(&self) -> Vec<(&str, &Setting)> {
        let mut v: Vec<(&str, &Setting)> = self
            .map
            .iter()
            .filter(|(k, _)| !is_known_key(k))
            .map(|(k, s)| (k.as_str(), s))
            .collect();
        v.sort_by_key(|(_, s)| s.order);
        v
    }
}

/// Splits `KEY=value` lines (EnvironmentFile syntax: `#`/`;` comments, optional quotes).
fn parse_lines(path: &str, text: &str, order: &mut usize, out: &mut HashMap<String, Setting>) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let err = |message: String| ConfigError::Line {
            path: path.to_string(),
            line: i + 1,
            message,
        };
        let Some((key, value)) = line.split_once('=') else {
            errors.push(err(format!("expected KEY=value, found {line:?}")));
            continue;
        };
        let key = key.trim();
        if key.is_empty()
            || key.starts_with(|c: char| c.is_ascii_digit())
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            errors.push(err(format!("invalid key {key:?}: expected letters, digits and _")));
            continue;
        }
        let value = value.trim();
        let Some(value) = unquote(value) else {
            errors.push(err(format!("{key}: unterminated quote in {value:?}")));
            continue;
        };
        *order += 1;
        out.insert(
            key.to_string(),
            Setting {
                value,
                path: path.to_string(),
                line: i + 1,
                order: *order,
            },
        );
    }
    errors
}

fn unquote(v: &str) -> Option<String> {
    for q in ['"', '\''] {
        if let Some(rest) = v.strip_prefix(q) {
            return rest.strip_suffix(q).map(str::to_string);
        }
    }
    Some(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const USR: &str = "/usr/share/boxcar/update.conf";
    const ETC: &str = "/etc/boxcar/update.conf";

    #[test]
    fn later_layer_wins_and_empty_unsets() {
        let s = Settings::parse(&[
            (USR, "GROUP=stable\nSERVER=http://a/\nREBOOT_WINDOWS=Sun 03:00 1h\n"),
            (ETC, "# operator\nGROUP='beta'\nREBOOT_WINDOWS=\n"),
        ])
        .unwrap();
        let g = s.pick(&["GROUP"]).unwrap();
        assert_eq!((g.value.as_str(), g.path.as_str(), g.line), ("beta", ETC, 2));
        assert!(s.pick(&["REBOOT_WINDOWS"]).is_none(), "empty value unsets");
        assert_eq!(s.get("REBOOT_WINDOWS").unwrap().value, "");
        assert_eq!(s.pick(&["SERVER"]).unwrap().value, "http://a/");
    }

    #[test]
    fn aliases_last_set_wins() {
        let s = Settings::parse(&[(USR, "LOCKSMITHD_GROUP=a\n"), (ETC, "REBOOT_GROUP=b\n")]).unwrap();
        assert_eq!(s.pick(&["LOCKSMITHD_GROUP", "REBOOT_GROUP"]).unwrap().value, "b");
        let s = Settings::parse(&[(USR, "REBOOT_GROUP=b\n"), (ETC, "LOCKSMITHD_GROUP=a\n")]).unwrap();
        assert_eq!(s.pick(&["LOCKSMITHD_GROUP", "REBOOT_GROUP"]).unwrap().value, "a");
    }

    #[test]
    fn errors_name_file_and_line_and_nothing_is_returned() {
        let errs = Settings::parse(&[(ETC, "GROUP=x\nnot a setting\n1A=2\nB=\"open\n")]).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            [
                "/etc/boxcar/update.conf:2: expected KEY=value, found \"not a setting\"",
                "/etc/boxcar/update.conf:3: invalid key \"1A\": expected letters, digits and _",
                "/etc/boxcar/update.conf:4: B: unterminated quote in \"\\\"open\"",
            ]
        );
        let (s, errs) = Settings::parse_lenient(&[(ETC, "GROUP=x\nnot a setting\n")]);
        assert_eq!(errs.len(), 1);
        assert_eq!(s.pick(&["GROUP"]).unwrap().value, "x");
    }

    #[test]
    fn unknown_keys_are_listed_in_file_order() {
        let s = Settings::parse(&[
            (USR, "GRUOP=beta\nGROUP=stable\n"),
            (ETC, "REBOOT_STRATGY=off\nSERVER=disabled\n"),
        ])
        .unwrap();
        let unknown: Vec<(String, String)> = s
            .unknown_keys()
            .iter()
            .map(|(k, st)| (k.to_string(), st.location()))
            .collect();
        assert_eq!(
            unknown,
            [
                ("GRUOP".to_string(), format!("{USR}:1")),
                ("REBOOT_STRATGY".to_string(), format!("{ETC}:1"))
            ]
        );
    }

    #[test]
    fn load_skips_missing_and_reports_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("update.conf");
        std::fs::write(&etc, "GROUP=alpha\n").unwrap();
        let missing = dir.path().join("missing.conf");
        let (s, errs) = Settings::load(&[&missing, &etc]);
        assert!(errs.is_empty());
        assert_eq!(s.pick(&["GROUP"]).unwrap().value, "alpha");
        // A directory cannot be read as a file.
        let (_, errs) = Settings::load(&[dir.path()]);
        assert!(matches!(&errs[0], ConfigError::Read { path, .. } if path == &dir.path().display().to_string()));
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
            "A=\u{feff}",
        ] {
            let _ = Settings::parse(&[(ETC, text)]);
        }
    }
}
