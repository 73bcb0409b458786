//! `boxcar sysext` end to end, interoperating with the host's systemd-sysext 252: an image
//! built by `boxcar sysext build` is merged by us and unmerged by systemd-sysext, merged by
//! systemd-sysext and seen/unmerged by us. All mounts happen in a private mount namespace
//! (`unshare -m`) over a temporary root.

use std::process::Command;

#[test]
fn build_merge_interop_with_systemd_sysext() {
    let bin = env!("CARGO_BIN_EXE_boxcar");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let root = t.path().join("root");
    std::fs::create_dir_all(src.join("usr/bin")).unwrap();
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("usr/bin/hello"), "hello from ext\n").unwrap();
    std::fs::write(src.join("etc/ignored"), "x").unwrap();
    std::fs::create_dir_all(root.join("usr/lib")).unwrap();
    std::fs::create_dir_all(root.join("etc/extensions")).unwrap();
    std::fs::write(root.join("usr/lib/os-release"), "ID=boxcar\nSYSEXT_LEVEL=1.0\n").unwrap();

    let img = root.join("etc/extensions/hello.raw");
    let out = Command::new(bin)
        .args([
            "sysext",
            "build",
            "--name",
            "hello",
            "--id",
            "boxcar",
            "--sysext-level",
            "1.0",
        ])
        .arg(&src)
        .arg("-o")
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("etc is outside usr/ and opt/"), "{stderr}");
    let sums = std::fs::read_to_string(root.join("etc/extensions/SHA256SUMS")).unwrap();
    assert_eq!(sums, String::from_utf8_lossy(&out.stdout));
    assert!(
        sums.ends_with("  hello.raw\n") && sums.len() == 64 + 2 + 9 + 1,
        "{sums}"
    );

    // Same input, same bytes.
    let again = t.path().join("again.raw");
    let out = Command::new(bin)
        .args([
            "sysext",
            "build",
            "--name",
            "hello",
            "--id",
            "boxcar",
            "--sysext-level",
            "1.0",
        ])
        .arg(&src)
        .arg("-o")
        .arg(&again)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(std::fs::read(&img).unwrap(), std::fs::read(&again).unwrap());

    let script = r#"set -e
mount --make-rshared /; mount -t tmpfs tmpfs /run
"$B" sysext --root "$ROOT" validate
"$B" sysext --root "$ROOT" merge
cat "$ROOT/usr/bin/hello"
if "$B" sysext --root "$ROOT" merge 2>/dev/null; then echo "second merge must fail"; exit 1; fi
systemd-sysext --root="$ROOT" unmerge
test ! -e "$ROOT/usr/bin/hello"
systemd-sysext --root="$ROOT" merge
"$B" sysext --root "$ROOT" status
"$B" sysext --root "$ROOT" refresh
"$B" sysext --root "$ROOT" unmerge
test ! -e "$ROOT/usr/bin/hello"
echo done"#;
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("B", bin)
        .env("ROOT", &root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("hello\t") && stdout.contains("\tok"), "{stdout}");
    assert!(stdout.contains("hello from ext"));
    assert!(
        stdout.contains(&format!("{}\thello", root.join("usr").display())),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("done"));
}

#[test]
fn bakery_update_then_refresh_and_reboot_signal() {
    let bin = env!("CARGO_BIN_EXE_boxcar");
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(root.join("usr/lib")).unwrap();
    std::fs::write(root.join("usr/lib/os-release"), "ID=boxcar\nSYSEXT_LEVEL=1.0\n").unwrap();
    let m = t.path().join("m");
    std::fs::create_dir_all(m.join("hello/usr/bin")).unwrap();
    let script = r#"set -e
mount --make-rshared /; mount -t tmpfs tmpfs /run
bake() {
  echo "$2" > "$M/hello/usr/bin/hello"
  printf '{"base_url":"http://unused/","architecture":"x86-64","extensions":[{"name":"hello","version":"%s","source":"hello","release":{"id":"_any"}}]}' "$1" > "$M/bakery.json"
  "$B" sysext bakery "$M/bakery.json" "$ROOT/srv/ext" >/dev/null
}
mkdir -p "$ROOT/etc/sysupdate.hello.d"
bake 1.0 first
sed -e 's/Type=url-file/Type=regular-file/' -e 's|Path=http://unused/hello/|Path=/srv/ext/hello/|' \
  "$ROOT/srv/ext/hello/hello.conf" > "$ROOT/etc/sysupdate.hello.d/hello.conf"
"$B" sysext --root "$ROOT" update -C hello --then refresh
cat "$ROOT/usr/bin/hello"
bake 1.1 second
"$B" sysext --root "$ROOT" update -C hello --then refresh
cat "$ROOT/usr/bin/hello"
"$B" sysext --root "$ROOT" update -C hello --then reboot-required
test ! -e "$ROOT/run/reboot-required"
bake 1.2 third
"$B" sysext --root "$ROOT" update -C hello --then reboot-required
test -e "$ROOT/run/reboot-required"
readlink "$ROOT/etc/extensions/hello.raw"
"$B" sysext --root "$ROOT" unmerge
echo done"#;
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "bash", "-c", script])
        .env("B", bin)
        .env("ROOT", &root)
        .env("M", &m)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.contains(&"first") && lines.contains(&"second"), "{stdout}");
    let first = lines.iter().position(|l| *l == "first").unwrap();
    let second = lines.iter().position(|l| *l == "second").unwrap();
    assert!(first < second);
    assert!(stdout.contains("1.1 is current"), "{stdout}");
    assert!(
        stdout.contains("/opt/extensions/hello/hello-1.2-x86-64.raw\n"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("done"));
}

#[test]
fn build_from_a_debian_package() {
    let bin = env!("CARGO_BIN_EXE_boxcar");
    let t = tempfile::tempdir().unwrap();
    let pkg = t.path().join("pkg");
    std::fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(pkg.join("usr/bin")).unwrap();
    std::fs::write(
        pkg.join("DEBIAN/control"),
        "Package: hello-ext\nVersion: 2.0\nArchitecture: all\nMaintainer: Boxcar <dev@example.com>\nDescription: test\n",
    )
    .unwrap();
    std::fs::write(pkg.join("usr/bin/hello-ext"), "hi\n").unwrap();
    let deb = t.path().join("hello-ext.deb");
    let st = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&pkg)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));

    let img = t.path().join("out/hello-ext.raw");
    let out = Command::new(bin)
        .args(["sysext", "build", "--name", "hello-ext", "--deb"])
        .arg(&deb)
        .arg("-o")
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list = Command::new("unsquashfs")
        .args(["-l", "-d", "x"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout)
        .lines()
        .any(|l| l == "x/usr/bin/hello-ext"));
    let sums = std::fs::read_to_string(t.path().join("out/SHA256SUMS")).unwrap();
    assert!(sums.contains("hello-ext.raw"), "{sums}");

    // A tree and packages at once is refused before anything is built.
    let both = Command::new(bin)
        .args(["sysext", "build", "--name", "x", "--deb"])
        .arg(&deb)
        .arg(t.path())
        .output()
        .unwrap();
    assert!(!both.status.success());
}
