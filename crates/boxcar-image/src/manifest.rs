//! The image manifest (`images/boxcar.toml`): everything that decides what
//! goes into an image, so that the same manifest and the same package
//! versions give the same /usr image. Strict: unknown keys are refused with
//! the key's place, so a typo never silently changes an image.

use crate::version::{version_for, Channel, Date, Version};
use crate::ImageError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The whole manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub os: Os,
    pub debian: Debian,
    pub binaries: Binaries,
    pub usr: Usr,
    pub initrd: Initrd,
    pub kernel: Kernel,
    pub disk: Disk,
    #[serde(default)]
    pub signing: Signing,
    /// Directory (relative to the manifest) copied over the staging root
    /// before /etc is moved to `/usr/share/boxcar/etc`: units, presets,
    /// network defaults.
    pub rootfs_overlay: PathBuf,
    /// Single files from the repository (e.g. a unit file kept outside the rootfs overlay),
    /// copied after the overlay so they live in one place only.
    #[serde(default)]
    pub files: Vec<FileCopy>,
}

/// One repository file installed into the root.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCopy {
    /// Source, relative to the manifest.
    pub from: PathBuf,
    /// Destination inside the root (relative, no `..`).
    pub to: PathBuf,
}

/// Names and version inputs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Os {
    /// `NAME=` in os-release.
    pub name: String,
    /// `ID=` in os-release; also the prefix of output files.
    pub id: String,
    pub channel: Channel,
    /// `YYYY-MM-DD`: the day the major is cut (gives MAJOR). Also the
    /// default SOURCE_DATE_EPOCH, so timestamps do not depend on build time.
    pub major_date: String,
    pub patch: u32,
    /// `HOME_URL=` in os-release.
    #[serde(default)]
    pub home_url: Option<String>,
}

/// The Debian bootstrap.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Debian {
    pub suite: String,
    pub mirror: String,
    pub components: Vec<String>,
    /// mmdebstrap `--variant` (minbase keeps the image small).
    pub variant: String,
    pub packages: Vec<String>,
    /// dpkg `path-exclude=` globs (docs, man pages, locales).
    #[serde(default)]
    pub path_exclude: Vec<String>,
    /// dpkg `path-include=` globs re-admitted after the excludes (licences).
    #[serde(default)]
    pub path_include: Vec<String>,
}

/// Our own binaries, built with cargo and installed into /usr/bin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binaries {
    pub install: Vec<CargoBinary>,
}

/// One cargo binary.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CargoBinary {
    /// Cargo package (`-p`).
    pub package: String,
    /// Binary name (the file in target/release and in /usr/bin).
    pub bin: String,
}

/// The /usr filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsrFs {
    Erofs,
    Squashfs,
}

impl UsrFs {
    /// The name for `mount.usrfstype=`.
    pub fn fstype(self) -> &'static str {
        match self {
            UsrFs::Erofs => "erofs",
            UsrFs::Squashfs => "squashfs",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usr {
    pub filesystem: UsrFs,
}

/// Initrd compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zstd,
    Gzip,
}

/// The systemd initrd.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Initrd {
    pub compression: Compression,
    /// Programs copied from the staging root with their libraries (names
    /// looked up in usr/bin, usr/sbin, usr/lib/systemd).
    pub programs: Vec<String>,
    /// Programs copied only if the staging root has them.
    #[serde(default)]
    pub optional_programs: Vec<String>,
    /// Extra shared libraries that are dlopen()ed (not in DT_NEEDED).
    #[serde(default)]
    pub libraries: Vec<String>,
    /// Kernel modules (names as modprobe knows them), with dependencies.
    pub modules: Vec<String>,
    /// Directory (relative to the manifest) copied into the initrd last:
    /// the provisioning units, /etc/initrd-release additions, scripts.
    pub overlay: PathBuf,
}

/// Kernel command line parts that are not derived from the build.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    /// Appended after the generated `mount.usr=… usrhash=… root=…`.
    pub cmdline: String,
}

/// Partition sizes in MiB and the whole disk's size.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    pub size_mib: u64,
    pub esp_mib: u64,
    pub usr_mib: u64,
    pub verity_mib: u64,
    pub oem_mib: u64,
    /// Size of the ext4 written into ROOT (the partition takes the rest of
    /// the disk; the filesystem is grown on the node).
    pub root_fs_mib: u64,
    /// Boot attempts for a freshly installed UKI; the first image's UKI
    /// has no counter (it is the known-good version).
    pub boot_tries: u32,
}

/// Payload signing key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signing {
    /// PKCS#8 PEM private key (relative to the manifest). Without it a
    /// development key is generated once and kept in the cache directory.
    #[serde(default)]
    pub key: Option<PathBuf>,
}

impl Manifest {
    /// Parses and checks a manifest. `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Manifest, ImageError> {
        let m: Manifest = toml::from_str(text).map_err(|e| ImageError::Manifest {
            path: origin.into(),
            why: e.to_string(),
        })?;
        m.check().map_err(|why| ImageError::Manifest {
            path: origin.into(),
            why,
        })?;
        Ok(m)
    }

    /// Reads and parses a manifest file.
    pub fn load(path: &Path) -> Result<Manifest, ImageError> {
        let text = std::fs::read_to_string(path).map_err(|source| ImageError::Read {
            path: path.into(),
            source,
        })?;
        Manifest::parse(&text, path)
    }

    /// The day the major was cut.
    pub fn major_date(&self) -> Date {
        Date::parse(&self.os.major_date).expect("checked by parse")
    }

    /// The version this manifest builds, with an optional patch override.
    pub fn version(&self, patch: Option<u32>) -> Version {
        version_for(self.major_date(), self.os.channel, patch.unwrap_or(self.os.patch)).expect("checked by parse")
    }

    fn check(&self) -> Result<(), String> {
        let date = Date::parse(&self.os.major_date)
            .ok_or_else(|| format!("os.major_date: {:?} is not a date YYYY-MM-DD", self.os.major_date))?;
        version_for(date, self.os.channel, self.os.patch)
            .ok_or_else(|| format!("os.major_date: {} is before 2013-07-01", self.os.major_date))?;
        if self.os.id.is_empty() || !self.os.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            return Err(format!("os.id: {:?} must be lower-case letters and digits", self.os.id));
        }
        for (i, p) in self.debian.packages.iter().enumerate() {
            if !valid_package_name(p) {
                return Err(format!("debian.packages[{i}]: {p:?} is not a Debian package name"));
            }
        }
        if self.debian.packages.is_empty() {
            return Err("debian.packages: empty".into());
        }
        if !(self.debian.mirror.starts_with("http://") || self.debian.mirror.starts_with("https://")) {
            return Err(format!("debian.mirror: {:?} is not an http(s) URL", self.debian.mirror));
        }
        for (i, b) in self.binaries.install.iter().enumerate() {
            if b.bin.is_empty() || b.bin.contains('/') {
                return Err(format!("binaries.install[{i}].bin: {:?} is not a file name", b.bin));
            }
        }
        for (i, p) in self
            .initrd
            .programs
            .iter()
            .chain(&self.initrd.optional_programs)
            .enumerate()
        {
            if p.is_empty() || p.contains('/') {
                return Err(format!("initrd.programs[{i}]: {p:?} is not a program name"));
            }
        }
        for (i, f) in self.files.iter().enumerate() {
            let bad = f.to.is_absolute()
                || f.to.as_os_str().is_empty()
                || f.to.components().any(|c| !matches!(c, std::path::Component::Normal(_)));
            if bad {
                return Err(format!(
                    "files[{i}].to: {} must be a relative path inside the root",
                    f.to.display()
                ));
            }
        }
        let d = &self.disk;
        let fixed = 1 + d.esp_mib + 2 * (d.usr_mib + d.verity_mib) + d.oem_mib + d.root_fs_mib + 1;
        if [d.esp_mib, d.usr_mib, d.verity_mib, d.oem_mib, d.root_fs_mib].contains(&0) {
            return Err("disk: every partition size must be at least 1 MiB".into());
        }
        if d.size_mib < fixed {
            return Err(format!(
                "disk.size_mib: {} MiB is too small for the partitions (needs at least {fixed} MiB)",
                d.size_mib
            ));
        }
        if d.boot_tries == 0 || d.boot_tries > 15 {
            return Err(format!("disk.boot_tries: {} is not in 1..=15", d.boot_tries));
        }
        Ok(())
    }
}

/// Debian policy: lower-case alphanumerics and `+-.`, at least two
/// characters, starting with an alphanumeric.
fn valid_package_name(p: &str) -> bool {
    p.len() >= 2
        && p.as_bytes()[0].is_ascii_alphanumeric()
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = include_str!("../../../images/boxcar.toml");

    fn parse(s: &str) -> Result<Manifest, String> {
        Manifest::parse(s, Path::new("m.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_repository_manifest_parses() {
        let m = parse(SAMPLE).unwrap();
        assert_eq!(m.os.id, "boxcar");
        assert!(m.debian.packages.iter().any(|p| p == "linux-image-amd64"));
        assert_eq!(m.version(Some(7)).patch, 7);
        assert_eq!(m.version(None).minor, m.os.channel.level());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_place() {
        let bad = SAMPLE.replace("[usr]\n", "[usr]\ncompresion = \"lz4\"\n");
        let e = parse(&bad).unwrap_err();
        assert!(e.contains("compresion"), "{e}");
        assert!(e.contains("m.toml"), "{e}");
        let top = format!("{SAMPLE}\nextra = 1\n");
        assert!(parse(&top).unwrap_err().contains("extra"));
    }

    #[test]
    fn bad_values_are_refused() {
        let e = parse(&SAMPLE.replace("channel = \"alpha\"", "channel = \"nightly\"")).unwrap_err();
        assert!(e.contains("nightly"), "{e}");
        let e = parse(&SAMPLE.replace("filesystem = \"erofs\"", "filesystem = \"btrfs\"")).unwrap_err();
        assert!(e.contains("btrfs"), "{e}");
        let m = parse(SAMPLE).unwrap();
        let e = parse(&SAMPLE.replace(&m.os.major_date, "2023-02-29")).unwrap_err();
        assert!(e.contains("os.major_date"), "{e}");
        let e = parse(&SAMPLE.replace(&m.os.major_date, "2001-01-01")).unwrap_err();
        assert!(e.contains("before 2013-07-01"), "{e}");
        let e = parse(&format!("{SAMPLE}\n[[files]]\nfrom = \"a\"\nto = \"../etc/x\"\n")).unwrap_err();
        assert!(e.contains("files["), "{e}");
        let e = parse(&SAMPLE.replace("\"systemd\",", "\"Systemd!\",")).unwrap_err();
        assert!(e.contains("debian.packages["), "{e}");
        let e = parse(&SAMPLE.replace(&format!("size_mib = {}", m.disk.size_mib), "size_mib = 100")).unwrap_err();
        assert!(e.contains("disk.size_mib"), "{e}");
    }

    #[test]
    fn package_names() {
        assert!(valid_package_name("linux-image-amd64"));
        assert!(valid_package_name("g++"));
        assert!(!valid_package_name("a"));
        assert!(!valid_package_name("-x"));
        assert!(!valid_package_name("Foo"));
        assert!(!valid_package_name("foo bar"));
    }
}
