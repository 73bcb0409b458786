//! The SBOM: every installed Debian package (name, version, architecture,
//! source) from the staging root's dpkg database, and our own binaries
//! with their digests.

use serde::Serialize;

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub source: String,
}

/// Parses `var/lib/dpkg/status`, keeping packages whose status is
/// `install ok installed`, sorted by name.
pub fn parse_dpkg_status(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for para in text.split("\n\n") {
        let field = |k: &str| {
            para.lines().find_map(|l| {
                l.strip_prefix(k)
                    .and_then(|r| r.strip_prefix(':'))
                    .map(|v| v.trim().to_string())
            })
        };
        if field("Status").as_deref() != Some("install ok installed") {
            continue;
        }
        let (Some(name), Some(version)) = (field("Package"), field("Version")) else {
            continue;
        };
        let source = field("Source")
            .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
            .unwrap_or_else(|| name.clone());
        out.push(Package {
            name,
            version,
            architecture: field("Architecture").unwrap_or_default(),
            source,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name).then(a.architecture.cmp(&b.architecture)));
    out
}

/// One of our binaries in the image.
#[derive(Debug, Clone, Serialize)]
pub struct Binary {
    pub path: String,
    pub sha256: String,
}

/// The SBOM document.
#[derive(Debug, Clone, Serialize)]
pub struct Sbom {
    pub os: String,
    pub version: String,
    pub debian_suite: String,
    pub kernel: String,
    pub packages: Vec<Package>,
    pub binaries: Vec<Binary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_installed_packages_only() {
        let s = "Package: udev\nStatus: install ok installed\nArchitecture: amd64\nSource: systemd (252.39-1~deb12u1)\nVersion: 252.39-1~deb12u1\n\n\
Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u11\nDescription: x\n multi\n";
        let p = parse_dpkg_status(s);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "base-files");
        assert_eq!(p[0].source, "base-files");
        assert_eq!(p[1].source, "systemd");
        assert_eq!(p[1].version, "252.39-1~deb12u1");
    }
}
