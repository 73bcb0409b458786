//! Where the user config comes from: one [`ConfigProvider`] per platform
//! mechanism (afterburn-style). A provider either returns the config
//! bytes, says it has none (`Ok(None)`), or says it is not available on
//! this platform — never a silent empty config.

use crate::error::{ConfigError, FetchError};
use crate::fetch::{Fetcher, Purpose};
use std::path::PathBuf;

/// A source of the user config.
pub trait ConfigProvider {
    /// Short name for logs and errors (`file`, `cmdline`, `qemu`, …).
    fn name(&self) -> String;
    /// Fetch the config. `Ok(None)`: this provider holds no config.
    fn fetch(&self, fetcher: &Fetcher) -> Result<Option<Vec<u8>>, ConfigError>;
}

fn read_opt(provider: &str, path: &std::path::Path) -> Result<Option<Vec<u8>>, ConfigError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::ProviderRead {
            provider: provider.into(),
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A config file given explicitly; missing is an error.
#[derive(Debug, Clone)]
pub struct FileProvider {
    pub path: PathBuf,
}

impl ConfigProvider for FileProvider {
    fn name(&self) -> String {
        format!("file {}", self.path.display())
    }
    fn fetch(&self, _: &Fetcher) -> Result<Option<Vec<u8>>, ConfigError> {
        std::fs::read(&self.path)
            .map(Some)
            .map_err(|source| ConfigError::ProviderRead {
                provider: "file".into(),
                path: self.path.clone(),
                source,
            })
    }
}

/// `ignition.config.url=` or `boxcar.config.url=` on the kernel command
/// line (the `boxcar.` key wins when both are given).
#[derive(Debug, Clone)]
pub struct CmdlineProvider {
    /// Normally `/proc/cmdline`.
    pub cmdline: PathBuf,
}

impl Default for CmdlineProvider {
    fn default() -> Self {
        CmdlineProvider {
            cmdline: "/proc/cmdline".into(),
        }
    }
}

/// The config URL named on a kernel command line, if any.
pub fn cmdline_url(cmdline: &str) -> Option<String> {
    let mut ign = None;
    let mut boxcar = None;
    // The kernel splits its command line with isspace(), which includes \v.
    for arg in cmdline.split(is_kernel_space).filter(|a| !a.is_empty()) {
        if let Some(v) = arg.strip_prefix("boxcar.config.url=") {
            boxcar = Some(v.to_string());
        } else if let Some(v) = arg.strip_prefix("ignition.config.url=") {
            ign = Some(v.to_string());
        }
    }
    boxcar.or(ign).filter(|u| !u.is_empty())
}

/// C `isspace()` in the "C" locale, as the kernel's `next_arg` uses.
pub fn is_kernel_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

impl ConfigProvider for CmdlineProvider {
    fn name(&self) -> String {
        "cmdline".into()
    }
    fn fetch(&self, fetcher: &Fetcher) -> Result<Option<Vec<u8>>, ConfigError> {
        let text = std::fs::read_to_string(&self.cmdline).map_err(|source| ConfigError::ProviderRead {
            provider: "cmdline".into(),
            path: self.cmdline.clone(),
            source,
        })?;
        let Some(url) = cmdline_url(&text) else { return Ok(None) };
        fetcher
            .fetch_url(&url, &[], Purpose::Config)
            .map(Some)
            .map_err(|source| ConfigError::ProviderFetch {
                provider: "cmdline".into(),
                source,
            })
    }
}

/// QEMU's fw_cfg: `opt/org.flatcar-linux/config` (Flatcar) or
/// `opt/com.coreos/config` (upstream Ignition).
#[derive(Debug, Clone)]
pub struct QemuFwCfgProvider {
    /// Normally `/sys/firmware/qemu_fw_cfg`.
    pub base: PathBuf,
}

impl Default for QemuFwCfgProvider {
    fn default() -> Self {
        QemuFwCfgProvider {
            base: "/sys/firmware/qemu_fw_cfg".into(),
        }
    }
}

/// The fw_cfg entries tried, in order.
pub const FW_CFG_NAMES: [&str; 2] = ["opt/org.flatcar-linux/config", "opt/com.coreos/config"];

impl ConfigProvider for QemuFwCfgProvider {
    fn name(&self) -> String {
        "qemu fw_cfg".into()
    }
    fn fetch(&self, _: &Fetcher) -> Result<Option<Vec<u8>>, ConfigError> {
        if !self.base.is_dir() {
            return Err(ConfigError::ProviderNotAvailable {
                provider: format!(
                    "qemu fw_cfg ({} missing; is the qemu_fw_cfg module loaded?)",
                    self.base.display()
                ),
            });
        }
        for n in FW_CFG_NAMES {
            let p = self.base.join("by_name").join(n).join("raw");
            if let Some(b) = read_opt("qemu fw_cfg", &p)? {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }
}

/// A `config.ign` on the OEM partition (mounted by the initrd).
#[derive(Debug, Clone)]
pub struct OemProvider {
    /// Normally `/oem/config.ign` (Flatcar: `/usr/share/oem/config.ign`).
    pub path: PathBuf,
}

impl Default for OemProvider {
    fn default() -> Self {
        OemProvider {
            path: "/oem/config.ign".into(),
        }
    }
}

impl ConfigProvider for OemProvider {
    fn name(&self) -> String {
        format!("oem {}", self.path.display())
    }
    fn fetch(&self, _: &Fetcher) -> Result<Option<Vec<u8>>, ConfigError> {
        read_opt("oem", &self.path)
    }
}

/// Which metadata service layout to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataFlavor {
    /// `<base>/latest/user-data` (EC2, also served by OpenStack).
    Ec2,
    /// `<base>/openstack/latest/user_data`.
    OpenStack,
}

/// User data from a cloud metadata service; a 404 means "no user data".
#[derive(Debug, Clone)]
pub struct MetadataProvider {
    /// Normally `http://169.254.169.254`.
    pub base_url: String,
    pub flavor: MetadataFlavor,
}

impl MetadataProvider {
    /// The URL user data is read from.
    pub fn url(&self) -> String {
        let b = self.base_url.trim_end_matches('/');
        match self.flavor {
            MetadataFlavor::Ec2 => format!("{b}/latest/user-data"),
            MetadataFlavor::OpenStack => format!("{b}/openstack/latest/user_data"),
        }
    }
}

impl ConfigProvider for MetadataProvider {
    fn name(&self) -> String {
        format!("metadata {}", crate::fetch::redact(&self.base_url))
    }
    fn fetch(&self, fetcher: &Fetcher) -> Result<Option<Vec<u8>>, ConfigError> {
        match fetcher.fetch_url(&self.url(), &[], Purpose::Config) {
            Ok(b) => Ok(Some(b)),
            Err(FetchError::HttpStatus { status: 404, .. }) => Ok(None),
            Err(source) => Err(ConfigError::ProviderFetch {
                provider: "metadata".into(),
                source,
            }),
        }
    }
}

/// A platform this build cannot read configs from.
#[derive(Debug, Clone)]
pub struct NotAvailable {
    pub platform: String,
}

impl ConfigProvider for NotAvailable {
    fn name(&self) -> String {
        self.platform.clone()
    }
    fn fetch(&self, _: &Fetcher) -> Result<Option<Vec<u8>>, ConfigError> {
        Err(ConfigError::ProviderNotAvailable {
            provider: self.platform.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_keys() {
        assert_eq!(
            cmdline_url("quiet ignition.config.url=http://a/b rw").as_deref(),
            Some("http://a/b")
        );
        assert_eq!(
            cmdline_url("boxcar.config.url=http://x ignition.config.url=http://a").as_deref(),
            Some("http://x")
        );
        assert_eq!(cmdline_url("quiet ignition.config.url="), None);
        // Found by fuzzing: a vertical tab ends an argument, as in the kernel.
        assert_eq!(
            cmdline_url("ignition.config.url=http://a\x0bquiet").as_deref(),
            Some("http://a")
        );
    }

    #[test]
    fn fw_cfg_prefers_flatcar_name_and_reports_missing_base() {
        let t = tempfile::tempdir().unwrap();
        let f = Fetcher::new(crate::fetch::Network::Offline);
        for (n, body) in [
            ("opt/com.coreos/config", "coreos"),
            ("opt/org.flatcar-linux/config", "flatcar"),
        ] {
            let d = t.path().join("by_name").join(n);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("raw"), body).unwrap();
        }
        let p = QemuFwCfgProvider { base: t.path().into() };
        assert_eq!(p.fetch(&f).unwrap().unwrap(), b"flatcar");
        let p = QemuFwCfgProvider {
            base: t.path().join("nope"),
        };
        assert!(p
            .fetch(&f)
            .unwrap_err()
            .to_string()
            .contains("not available on this platform"));
    }
}
