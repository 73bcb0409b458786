//! Turning the Debian root into a Boxcar /usr: our binaries, units and
//! presets, os-release with the version and channel, the update key, and
//! /etc moved under `/usr/share/boxcar/etc` (the lower layer of the /etc
//! overlay mounted in the initrd). Host-side file operations only.

use crate::cmd::run;
use crate::error::{rd, wr};
use crate::manifest::Os;
use crate::version::Version;
use crate::ImageError;
use std::path::{Path, PathBuf};

/// Where the image's /etc defaults live inside /usr.
pub const ETC_DEFAULTS: &str = "usr/share/boxcar/etc";
/// Where the trusted update key lives (covered by dm-verity).
pub const UPDATE_KEY: &str = "usr/share/boxcar/update-key.pub.pem";

/// The os-release file for a build.
pub fn os_release(os: &Os, version: Version) -> String {
    let mut s = String::new();
    let mut kv = |k: &str, v: &str| {
        let escaped = v.replace('\\', "\\\\").replace('"', "\\\"");
        s.push_str(&format!("{k}=\"{escaped}\"\n"));
    };
    kv("NAME", &os.name);
    kv("ID", &os.id);
    kv("ID_LIKE", "debian");
    kv("VERSION", &format!("{version} ({})", os.channel.name()));
    kv("VERSION_ID", &version.to_string());
    kv("PRETTY_NAME", &format!("{} {version} ({})", os.name, os.channel.name()));
    kv("BOXCAR_CHANNEL", os.channel.name());
    kv("IMAGE_ID", &os.id);
    kv("IMAGE_VERSION", &version.to_string());
    if let Some(u) = &os.home_url {
        kv("HOME_URL", u);
    }
    s
}

/// A built binary to install into usr/bin.
#[derive(Debug, Clone)]
pub struct InstallBinary {
    pub name: String,
    pub from: PathBuf,
}

/// What `customize` needs besides the root.
#[derive(Debug, Clone)]
pub struct Customization<'a> {
    pub os: &'a Os,
    pub version: Version,
    pub binaries: &'a [InstallBinary],
    /// Copied over the root in order (the manifest's, then extra ones).
    pub overlays: &'a [PathBuf],
    /// Single files: (source, destination relative to the root), mode kept.
    pub files: &'a [(PathBuf, PathBuf)],
    pub update_key_pem: &'a [u8],
}

pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), ImageError> {
    if !from.is_dir() {
        return Err(ImageError::Read {
            path: from.into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "overlay directory missing"),
        });
    }
    let mut src = from.as_os_str().to_owned();
    src.push("/.");
    // Files from the repository belong to root in the image, whoever checked them out.
    run(
        "cp",
        [
            "-r".as_ref(),
            "--no-preserve=ownership,timestamps".as_ref(),
            "--preserve=mode,links".as_ref(),
            src.as_os_str(),
            to.as_os_str(),
        ],
        &[],
    )?;
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<(), ImageError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).map_err(wr(path)),
        Ok(_) => std::fs::remove_file(path).map_err(wr(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(rd(path)(e)),
    }
}

/// Files that are per machine or per build and must not be in the image.
const PER_MACHINE: &[&str] = &[
    "etc/hostname",
    "etc/ssh/ssh_host_rsa_key",
    "etc/ssh/ssh_host_rsa_key.pub",
    "etc/ssh/ssh_host_ecdsa_key",
    "etc/ssh/ssh_host_ecdsa_key.pub",
    "etc/ssh/ssh_host_ed25519_key",
    "etc/ssh/ssh_host_ed25519_key.pub",
    "var/lib/dbus/machine-id",
    "var/cache/ldconfig/aux-cache",
];

/// Applies the customization to the staging root at `root`.
pub fn customize(root: &Path, c: &Customization) -> Result<(), ImageError> {
    let bin = root.join("usr/bin");
    for b in c.binaries {
        let dest = bin.join(&b.name);
        std::fs::copy(&b.from, &dest).map_err(rd(&b.from))?;
        set_mode(&dest, 0o755)?;
        // Debug info stays on the build host; the image gets lean binaries.
        run("strip", ["--strip-debug".as_ref(), dest.as_os_str()], &[])?;
    }
    for o in c.overlays {
        copy_tree(o, root)?;
    }
    for (from, to) in c.files {
        let dest = root.join(to);
        mkdir_p(dest.parent().expect("relative path has a parent"))?;
        std::fs::copy(from, &dest).map_err(rd(from))?;
    }
    let key = root.join(UPDATE_KEY);
    mkdir_p(key.parent().expect("has parent"))?;
    std::fs::write(&key, c.update_key_pem).map_err(wr(&key))?;
    let osr = root.join("usr/lib/os-release");
    remove_if_present(&osr)?;
    std::fs::write(&osr, os_release(c.os, c.version)).map_err(wr(&osr))?;
    let etc_osr = root.join("etc/os-release");
    remove_if_present(&etc_osr)?;
    std::os::unix::fs::symlink("../usr/lib/os-release", &etc_osr).map_err(wr(&etc_osr))?;
    for p in PER_MACHINE {
        remove_if_present(&root.join(p))?;
    }
    // "uninitialized": systemd treats the boot as the first one, applies
    // presets and commits a fresh machine id into the /etc overlay.
    let mid = root.join("etc/machine-id");
    std::fs::write(&mid, "uninitialized\n").map_err(wr(&mid))?;
    // Enable exactly what the presets say (Debian enables everything a
    // package ships unless told otherwise; our 99-boxcar-default.preset
    // turns that into an explicit list).
    run(
        "systemctl",
        ["--root".as_ref(), root.as_os_str(), "preset-all".as_ref()],
        &[],
    )?;
    let defaults = root.join(ETC_DEFAULTS);
    remove_if_present(&defaults)?;
    mkdir_p(defaults.parent().expect("has parent"))?;
    run(
        "cp",
        ["-a".as_ref(), root.join("etc").as_os_str(), defaults.as_os_str()],
        &[],
    )?;
    Ok(())
}

pub(crate) fn mkdir_p(p: &Path) -> Result<(), ImageError> {
    std::fs::create_dir_all(p).map_err(wr(p))
}

pub(crate) fn set_mode(p: &Path, mode: u32) -> Result<(), ImageError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(wr(p))
}

/// The skeleton of the ROOT filesystem: mount points, merged-/usr links,
/// an empty /etc (the overlay's upper layer) and its work directory.
pub fn root_skeleton(dir: &Path) -> Result<(), ImageError> {
    let dirs: &[(&str, u32)] = &[
        ("boot", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        (".etc-work", 0o700),
        ("home", 0o755),
        ("media", 0o755),
        ("mnt", 0o755),
        ("oem", 0o755),
        ("opt", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("run", 0o755),
        ("srv", 0o755),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("usr", 0o755),
        ("var", 0o755),
        ("var/tmp", 0o1777),
        ("var/log", 0o755),
        ("var/lib", 0o755),
    ];
    for (d, mode) in dirs {
        let p = dir.join(d);
        mkdir_p(&p)?;
        set_mode(&p, *mode)?;
    }
    for (link, target) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        let p = dir.join(link);
        std::os::unix::fs::symlink(target, &p).map_err(wr(&p))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::Channel;

    #[test]
    fn os_release_names_version_and_channel() {
        let os = Os {
            name: "Boxcar".into(),
            id: "boxcar".into(),
            channel: Channel::Beta,
            major_date: "2026-11-22".into(),
            patch: 2,
            home_url: Some("https://x/\"q\"".into()),
        };
        let v = Version {
            major: 4892,
            minor: 1,
            patch: 2,
        };
        let s = os_release(&os, v);
        assert!(s.contains("VERSION_ID=\"4892.1.2\"\n"), "{s}");
        assert!(s.contains("BOXCAR_CHANNEL=\"beta\"\n"), "{s}");
        assert!(s.contains("ID=\"boxcar\"\n"), "{s}");
        assert!(s.contains("HOME_URL=\"https://x/\\\"q\\\"\"\n"), "{s}");
    }

    #[test]
    fn skeleton_has_merged_usr_links() {
        let t = tempfile::tempdir().unwrap();
        root_skeleton(t.path()).unwrap();
        assert_eq!(
            std::fs::read_link(t.path().join("sbin")).unwrap(),
            Path::new("usr/sbin")
        );
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(t.path().join("tmp")).unwrap().permissions().mode();
        assert_eq!(m & 0o7777, 0o1777);
    }
}
