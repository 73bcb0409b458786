//! Extensions from Debian packages: two `.deb`s made by the real `dpkg-deb --build` are
//! unpacked into one tree and imaged; the image holds both packages' files and the
//! release file, and nothing of the packages' control data.

use boxcar_sysext::build::{self, BuildSpec, Format, ReleaseSpec};
use std::path::{Path, PathBuf};
use std::process::Command;

fn make_deb(dir: &Path, name: &str, file: &str, contents: &str) -> PathBuf {
    let tree = dir.join(format!("{name}-tree"));
    std::fs::create_dir_all(tree.join("DEBIAN")).unwrap();
    std::fs::write(
        tree.join("DEBIAN/control"),
        format!("Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: Boxcar <dev@example.com>\nDescription: test\n"),
    )
    .unwrap();
    // A maintainer script that would leave a mark if anything ran it.
    let postinst = tree.join("DEBIAN/postinst");
    std::fs::write(
        &postinst,
        format!("#!/bin/sh\ntouch {}\n", dir.join("postinst-ran").display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&postinst, std::fs::Permissions::from_mode(0o755)).unwrap();
    let f = tree.join(file);
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(&f, contents).unwrap();
    let deb = dir.join(format!("{name}.deb"));
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&tree)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    deb
}

#[test]
fn two_packages_become_one_extension_image() {
    let t = tempfile::tempdir().unwrap();
    let a = make_deb(t.path(), "tool-a", "usr/bin/tool-a", "a\n");
    let b = make_deb(t.path(), "tool-b", "usr/share/tool-b/data", "b\n");
    let tree = t.path().join("unpacked");
    build::unpack_debs(&[a, b], &tree).unwrap();
    let img = t.path().join("tools.raw");
    build::build(&BuildSpec {
        name: "tools".into(),
        source: tree,
        output: img.clone(),
        format: Format::Squashfs,
        release: ReleaseSpec {
            id: "_any".into(),
            version_id: None,
            sysext_level: None,
            architecture: None,
            scope: None,
            reload_manager: Default::default(),
        },
    })
    .unwrap();
    let out = Command::new("unsquashfs")
        .args(["-l", "-d", "x"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.success());
    let list = String::from_utf8_lossy(&out.stdout);
    for want in [
        "x/usr/bin/tool-a",
        "x/usr/share/tool-b/data",
        "x/usr/lib/extension-release.d/extension-release.tools",
    ] {
        assert!(list.lines().any(|l| l == want), "{want} missing from:\n{list}");
    }
    assert!(!list.contains("DEBIAN"), "control data leaked into the image:\n{list}");
    assert!(!t.path().join("postinst-ran").exists(), "a maintainer script ran");
}

#[test]
fn a_broken_package_is_a_clear_error() {
    let t = tempfile::tempdir().unwrap();
    let bad = t.path().join("broken.deb");
    std::fs::write(&bad, b"not a deb").unwrap();
    let err = build::unpack_debs(&[bad], &t.path().join("u")).unwrap_err().to_string();
    assert!(err.contains("dpkg-deb") && err.contains("broken.deb"), "{err}");
    assert!(build::unpack_debs(&[], &t.path().join("u")).is_err());
}
