//! Differential tests: the same trees merged by the host's systemd-sysext 252 and by Boxcar
//! must give the same decision (exit status, merged names) and the same merged /usr and /opt
//! (modes, owners, sizes, symlinks, file contents), ignoring the meta layer's device number.
//! Every mount happens in a private mount namespace over a temporary `--root`.

mod common;
use boxcar_sysext::build::{Format, ReleaseSpec};
use boxcar_sysext::merge::{self, Options};
use common::*;
use std::path::Path;
use std::process::Command;

/// What a merge produced, in comparable form.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    ok: bool,
    extensions: Option<String>,
    tree: String,
}

const DUMP: &str = r#"cd "$ROOT" && for h in usr opt; do [ -d $h ] || continue; find $h -path '*/.systemd-sysext/dev' -prune -o -printf '%M %U:%G %s %p %l\n'; find $h -type f ! -path '*/.systemd-sysext/dev' -exec md5sum {} +; done | sort; [ -f usr/.systemd-sysext/dev ] && echo has-dev; cat usr/bin/tool"#;

fn systemd(root: &Path) -> Observed {
    let script = format!(
        r#"mount --make-rshared / && mount -t tmpfs tmpfs /run || exit 99
systemd-sysext --root="$ROOT" merge >/dev/null 2>&1; echo "rc=$?"
echo "ext=$(cat "$ROOT/usr/.systemd-sysext/extensions" "$ROOT/opt/.systemd-sysext/extensions" 2>/dev/null | sort -u | tr '\n' ' ')"
{DUMP}
systemd-sysext --root="$ROOT" unmerge >/dev/null 2>&1"#
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("ROOT", root)
        .output()
        .expect("run unshare/systemd-sysext");
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        s.starts_with("rc="),
        "systemd-sysext harness failed: {s} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = s.lines();
    let ok = lines.next().unwrap() == "rc=0";
    let ext = lines.next().unwrap().trim_start_matches("ext=").trim().to_string();
    Observed {
        ok,
        extensions: (!ext.is_empty()).then_some(ext),
        tree: lines.collect::<Vec<_>>().join("\n"),
    }
}

fn ours(root: &Path, ws: &Path) -> Observed {
    let mut opts = Options::new(root);
    opts.workspace_base = ws.to_path_buf();
    let _guard = MergedGuard(opts.clone());
    let r = merge::merge(&opts);
    let ok = r.is_ok();
    let ext = [
        root.join("usr/.systemd-sysext/extensions"),
        root.join("opt/.systemd-sysext/extensions"),
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .flat_map(|s| s.lines().map(str::to_string).collect::<Vec<_>>())
    .collect::<std::collections::BTreeSet<_>>()
    .into_iter()
    .collect::<Vec<_>>()
    .join(" ");
    let out = Command::new("sh")
        .args(["-c", DUMP])
        .env("ROOT", root)
        .output()
        .unwrap();
    Observed {
        ok,
        extensions: (!ext.is_empty()).then_some(ext),
        tree: String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
    }
}

/// Runs both tools over the tree built by `setup` and compares; returns the observation.
fn differential(os_release: &str, setup: impl FnOnce(&Path)) -> Observed {
    private_mount_ns();
    let t = tempfile::tempdir().unwrap();
    let root = host_root(t.path(), os_release);
    setup(&root);
    let ws = t.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let theirs = systemd(&root);
    let mine = ours(&root, &ws);
    assert_eq!(mine, theirs, "Boxcar and systemd-sysext 252 disagree");
    // Both cleaned up: the host hierarchy is back.
    assert!(!root.join("usr/.systemd-sysext").exists());
    theirs
}

const HOST: &str = "ID=boxcar\nVERSION_ID=1.2\nSYSEXT_LEVEL=1.0\n";
const HOST_NOLEVEL: &str = "ID=boxcar\nVERSION_ID=1.2\n";

fn assert_merged(o: &Observed, names: &str) {
    assert!(o.ok);
    assert_eq!(o.extensions.as_deref(), Some(names));
}

#[test]
fn d01_matching_id_and_version_dir() {
    let o = differential(HOST_NOLEVEL, |r| {
        place_dir(r, "etc/extensions", "a", "ID=boxcar\nVERSION_ID=1.2\n")
    });
    assert_merged(&o, "a");
    assert!(o.tree.contains("usr/bin/a"));
}

#[test]
fn d02_wrong_id_rejected() {
    let o = differential(HOST, |r| {
        place_dir(r, "etc/extensions", "a", "ID=fedora\nSYSEXT_LEVEL=1.0\n")
    });
    assert!(o.ok);
    assert_eq!(o.extensions, None);
}

#[test]
fn d03_any_id_squashfs_image_built_by_us() {
    let o = differential(HOST, |r| {
        place_image(
            r,
            "var/lib/extensions",
            "b.raw",
            "b",
            rel("_any"),
            Format::Squashfs,
            "b",
        )
    });
    assert_merged(&o, "b");
    assert!(o.tree.contains("tool from b"), "{}", o.tree);
}

#[test]
fn d04_levels() {
    let o = differential(HOST, |r| {
        place_dir(
            r,
            "etc/extensions",
            "same",
            "ID=boxcar\nSYSEXT_LEVEL=1.0\nVERSION_ID=99\n",
        );
        place_dir(r, "etc/extensions", "other", "ID=boxcar\nSYSEXT_LEVEL=2.0\n");
    });
    assert_merged(&o, "same");
}

#[test]
fn d05_version_id_rules() {
    let o = differential(HOST_NOLEVEL, |r| {
        place_dir(r, "etc/extensions", "lvl", "ID=boxcar\nSYSEXT_LEVEL=1.0\n");
        place_dir(r, "etc/extensions", "oldos", "ID=boxcar\nVERSION_ID=1.1\n");
        place_dir(r, "etc/extensions", "good", "ID=boxcar\nVERSION_ID=1.2\n");
    });
    assert_merged(&o, "good");
}

#[test]
fn d06_architectures() {
    let o = differential(HOST, |r| {
        place_dir(r, "etc/extensions", "arm", "ID=_any\nARCHITECTURE=arm64\n");
        place_dir(r, "etc/extensions", "x86", "ID=_any\nARCHITECTURE=x86-64\n");
        place_dir(
            r,
            "etc/extensions",
            "anyarch",
            "ID=boxcar\nSYSEXT_LEVEL=1.0\nARCHITECTURE=_any\n",
        );
    });
    assert_merged(&o, "anyarch x86");
}

#[test]
fn d07_renamed_image_fails_merge() {
    let o = differential(HOST, |r| {
        place_image(
            r,
            "etc/extensions",
            "renamed.raw",
            "original",
            rel("_any"),
            Format::Squashfs,
            "ren",
        );
        place_dir(r, "etc/extensions", "fine", "ID=_any\n");
    });
    assert!(
        !o.ok,
        "systemd 252 aborts the merge on an image without matching release file"
    );
    assert_eq!(o.extensions, None);
}

#[test]
fn d08_renamed_directory_ignored() {
    let o = differential(HOST, |r| {
        place_dir(r, "etc/extensions", "fine", "ID=_any\n");
        let work = r.parent().unwrap().join("work");
        let src = ext_tree(&work, "original", "ID=_any\n", "renamed");
        std::fs::rename(src, r.join("etc/extensions/renamed")).unwrap();
    });
    assert_merged(&o, "fine");
}

#[test]
fn d09_shadowing_and_layer_order() {
    let o = differential(HOST, |r| {
        // Same name in two search directories: /etc wins over /var/lib.
        place_dir(r, "var/lib/extensions", "zeta", "ID=_any\n");
        std::fs::write(r.join("var/lib/extensions/zeta/usr/bin/tool"), "shadowed zeta\n").unwrap();
        place_dir(r, "etc/extensions", "zeta", "ID=_any\n");
        place_dir(r, "run/extensions", "alpha", "ID=_any\n");
        place_image(
            r,
            "usr/lib/extensions",
            "mid.raw",
            "mid",
            rel("_any"),
            Format::Erofs,
            "mid",
        );
    });
    assert_merged(&o, "alpha mid zeta");
    assert!(
        o.tree.contains("tool from zeta"),
        "alphabetically last wins a conflicting file"
    );
    assert!(!o.tree.contains("shadowed zeta"));
}

#[test]
fn d10_masked_by_empty_dir() {
    let o = differential(HOST, |r| {
        place_image(
            r,
            "var/lib/extensions",
            "masked.raw",
            "masked",
            rel("_any"),
            Format::Squashfs,
            "masked",
        );
        std::fs::create_dir_all(r.join("etc/extensions/masked")).unwrap();
        place_dir(r, "etc/extensions", "visible", "ID=_any\n");
    });
    assert_merged(&o, "visible");
}

#[test]
fn d11_opt_hierarchy_erofs() {
    let o = differential(HOST, |r| {
        place_image(r, "etc/extensions", "o.raw", "o", rel("_any"), Format::Erofs, "o");
        let src = r.parent().unwrap().join("work/src-opt");
        std::fs::create_dir_all(src.join("opt/vendor")).unwrap();
        std::fs::create_dir_all(src.join("usr/lib/extension-release.d")).unwrap();
        std::fs::write(src.join("opt/vendor/bin"), "vendor\n").unwrap();
        std::fs::write(
            src.join("usr/lib/extension-release.d/extension-release.withopt"),
            "ID=_any\n",
        )
        .unwrap();
        std::fs::create_dir_all(r.join("opt")).unwrap();
        std::fs::rename(src, r.join("etc/extensions/withopt")).unwrap();
    });
    assert_merged(&o, "o withopt");
    assert!(o.tree.contains("opt/vendor/bin"));
}

#[test]
fn d12_scope_and_missing_fields() {
    let o = differential(HOST, |r| {
        place_dir(r, "etc/extensions", "initrdonly", "ID=_any\nSYSEXT_SCOPE=initrd\n");
        place_dir(r, "etc/extensions", "both", "ID=_any\nSYSEXT_SCOPE=initrd system\n");
        place_dir(r, "etc/extensions", "noid", "VERSION_ID=1.2\n");
        place_dir(r, "etc/extensions", "empty", "");
    });
    assert_merged(&o, "both");
}

#[test]
fn d13_hidden_names_and_non_images() {
    let o = differential(HOST, |r| {
        std::fs::create_dir_all(r.join("etc/extensions")).unwrap();
        std::fs::write(r.join("etc/extensions/notanimage.img"), "x").unwrap();
        std::fs::write(r.join("etc/extensions/garbage.raw"), "").unwrap();
        place_dir(r, "etc/extensions", ".hidden", "ID=_any\n");
    });
    // An empty .raw is not a file system: both tools fail the merge.
    assert!(!o.ok);
}

#[test]
fn d16_hidden_directory_is_an_extension() {
    let o = differential(HOST, |r| {
        std::fs::create_dir_all(r.join("etc/extensions")).unwrap();
        std::fs::write(r.join("etc/extensions/notanimage.img"), "x").unwrap();
        place_dir(r, "etc/extensions", ".hidden", "ID=_any\n");
    });
    assert_merged(&o, ".hidden");
}

#[test]
fn d14_nothing_to_merge() {
    let o = differential(HOST, |_| {});
    assert!(o.ok);
    assert_eq!(o.extensions, None);
}

#[test]
fn d15_image_with_our_fields_full() {
    let o = differential(HOST, |r| {
        let f = ReleaseSpec {
            sysext_level: Some("1.0".into()),
            architecture: Some("x86-64".into()),
            scope: Some("system".into()),
            ..rel("boxcar")
        };
        place_image(r, "etc/extensions", "k.raw", "k", f.clone(), Format::Erofs, "k");
        place_image(
            r,
            "etc/extensions",
            "j.raw",
            "j",
            ReleaseSpec {
                sysext_level: Some("3".into()),
                ..f
            },
            Format::Squashfs,
            "j",
        );
    });
    assert_merged(&o, "k");
}

fn set_strict_xattr(p: &Path, value: &str) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid strings and buffer.
    let r = unsafe {
        libc::setxattr(
            c.as_ptr(),
            c"user.extension-release.strict".as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(r, 0, "setxattr on {}: {}", p.display(), std::io::Error::last_os_error());
}

#[test]
fn d17_renamed_directory_with_strict_false_xattr() {
    let o = differential(HOST, |r| {
        let work = r.parent().unwrap().join("work");
        // Renamed, xattr strict=false: accepted under its new name.
        let src = ext_tree(&work, "orig", "ID=_any\n", "relaxed");
        set_strict_xattr(&src.join("usr/lib/extension-release.d/extension-release.orig"), "0");
        std::fs::create_dir_all(r.join("etc/extensions")).unwrap();
        std::fs::rename(src, r.join("etc/extensions/relaxed")).unwrap();
        // Renamed, xattr strict=true: ignored.
        let src = ext_tree(&work, "orig2", "ID=_any\n", "strict");
        set_strict_xattr(&src.join("usr/lib/extension-release.d/extension-release.orig2"), "1");
        std::fs::rename(src, r.join("etc/extensions/strict")).unwrap();
    });
    assert_merged(&o, "relaxed");
}

#[test]
fn d18_ext4_image_from_mkfs_ext4() {
    let o = differential(HOST, |r| {
        let work = r.parent().unwrap().join("work");
        let src = ext_tree(&work, "e4", "ID=boxcar\nSYSEXT_LEVEL=1.0\n", "e4");
        std::fs::create_dir_all(r.join("etc/extensions")).unwrap();
        let st = Command::new("mkfs.ext4")
            .args(["-q", "-E", "root_owner=0:0", "-d"])
            .arg(&src)
            .arg(r.join("etc/extensions/e4.raw"))
            .arg("8M")
            .status()
            .unwrap();
        assert!(st.success());
    });
    assert_merged(&o, "e4");
    assert!(o.tree.ends_with("tool from e4"));
}
