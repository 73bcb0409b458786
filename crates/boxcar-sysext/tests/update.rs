//! Updates from sysupdate transfer files against a local HTTP server started by the test:
//! new versions installed and linked, N versions kept, corrupted payloads and bad SHA256SUMS
//! refused with nothing switched, interrupted downloads leave the current version in place.

mod common;
use boxcar_sysext::build::Format;
use boxcar_sysext::merge::{self, Options};
use boxcar_sysext::transfer::Transfer;
use boxcar_sysext::update::{self, UpdateError, UpdateOutcome};
use common::*;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A minimal HTTP/1.1 file server over `dir`; names in `truncate` are cut off halfway after
/// announcing their full length (a dropped connection).
struct Server {
    base: String,
    truncate: Arc<Mutex<HashSet<String>>>,
}

fn serve(dir: PathBuf) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/ext/", l.local_addr().unwrap());
    let truncate: Arc<Mutex<HashSet<String>>> = Default::default();
    let tr = truncate.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            if r.read_line(&mut first).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let path = first
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches("/ext/")
                .to_string();
            match std::fs::read(dir.join(&path)) {
                Ok(body) => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let n = if tr.lock().unwrap().contains(&path) {
                        body.len() / 2
                    } else {
                        body.len()
                    };
                    let _ = s.write_all(&body[..n]);
                }
                Err(_) => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            }
        }
    });
    Server { base, truncate }
}

fn transfer(base: &str) -> Transfer {
    let text = format!(
        "[Transfer]\nVerify=false\n[Source]\nType=url-file\nPath={base}\nMatchPattern=hello-@v-%a.raw\n\
         [Target]\nInstancesMax=2\nType=regular-file\nPath=/opt/extensions/hello\nMatchPattern=hello-@v-%a.raw\n\
         CurrentSymlink=/etc/extensions/hello.raw\n"
    );
    Transfer::parse(&text, "x86-64").unwrap()
}

/// Publishes version `v` of the `hello` extension (a real squashfs image) and rewrites SHA256SUMS.
fn publish(work: &Path, publish_dir: &Path, v: &str) {
    let root_like = work.join(format!("pub-{v}/root"));
    std::fs::create_dir_all(&root_like).unwrap();
    place_image(
        &root_like,
        ".",
        "img.raw",
        "hello",
        rel("_any"),
        Format::Squashfs,
        &format!("v{v}"),
    );
    let name = format!("hello-{v}-x86-64.raw");
    std::fs::copy(root_like.join("img.raw"), publish_dir.join(&name)).unwrap();
    rewrite_sums(publish_dir);
}

fn rewrite_sums(dir: &Path) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".raw"))
        .collect();
    names.sort();
    let text: String = names
        .iter()
        .map(|n| boxcar_sysext::sums::line(&boxcar_sysext::sums::sha256_file(&dir.join(n)).unwrap(), n))
        .collect();
    std::fs::write(dir.join("SHA256SUMS"), text).unwrap();
}

fn link(root: &Path) -> PathBuf {
    std::fs::read_link(root.join("etc/extensions/hello.raw")).unwrap()
}

fn listing(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("opt/extensions/hello"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn installs_keeps_n_and_refuses_bad_payloads() {
    let t = tempfile::tempdir().unwrap();
    let root = host_root(t.path(), "ID=boxcar\nSYSEXT_LEVEL=1.0\n");
    let pubdir = t.path().join("pub");
    std::fs::create_dir_all(&pubdir).unwrap();
    let work = t.path().join("w");
    let srv = serve(pubdir.clone());
    let tr = transfer(&srv.base);

    publish(&work, &pubdir, "1.0");
    publish(&work, &pubdir, "1.1");
    let o = update::apply(&tr, &root).unwrap();
    assert!(
        matches!(&o, UpdateOutcome::Installed { version, symlink_changed: true, .. } if version == "1.1"),
        "{o:?}"
    );
    assert_eq!(link(&root), PathBuf::from("/opt/extensions/hello/hello-1.1-x86-64.raw"));
    // Installed bytes are the published ones.
    assert_eq!(
        std::fs::read(root.join("opt/extensions/hello/hello-1.1-x86-64.raw")).unwrap(),
        std::fs::read(pubdir.join("hello-1.1-x86-64.raw")).unwrap()
    );
    // Second run: nothing to do.
    assert_eq!(
        update::apply(&tr, &root).unwrap(),
        UpdateOutcome::UpToDate {
            version: "1.1".into(),
            symlink_changed: false
        }
    );

    publish(&work, &pubdir, "1.2");
    update::apply(&tr, &root).unwrap();
    publish(&work, &pubdir, "1.10");
    let o = update::apply(&tr, &root).unwrap();
    // 1.10 > 1.2 (version order, not string order); InstancesMax=2 removed 1.1.
    assert!(
        matches!(&o, UpdateOutcome::Installed { version, removed, .. } if version == "1.10" && removed == &vec!["1.1".to_string()]),
        "{o:?}"
    );
    assert_eq!(
        listing(&root),
        vec!["hello-1.10-x86-64.raw".to_string(), "hello-1.2-x86-64.raw".into()]
    );

    // Corrupted payload: SHA256SUMS names other bytes.
    publish(&work, &pubdir, "1.11");
    std::fs::write(pubdir.join("hello-1.11-x86-64.raw"), b"corrupted").unwrap();
    let e = update::apply(&tr, &root).unwrap_err();
    assert!(matches!(e, UpdateError::ChecksumMismatch { .. }), "{e}");
    assert_eq!(
        link(&root),
        PathBuf::from("/opt/extensions/hello/hello-1.10-x86-64.raw")
    );
    assert_eq!(
        listing(&root),
        vec!["hello-1.10-x86-64.raw".to_string(), "hello-1.2-x86-64.raw".into()]
    );

    // Malformed SHA256SUMS line.
    std::fs::write(pubdir.join("SHA256SUMS"), "deadbeef hello-1.11-x86-64.raw\n").unwrap();
    let e = update::apply(&tr, &root).unwrap_err();
    assert!(matches!(e, UpdateError::Sums { .. }), "{e}");
    assert_eq!(
        link(&root),
        PathBuf::from("/opt/extensions/hello/hello-1.10-x86-64.raw")
    );

    // Interrupted download of a valid version.
    std::fs::remove_file(pubdir.join("hello-1.11-x86-64.raw")).unwrap();
    publish(&work, &pubdir, "1.12");
    srv.truncate.lock().unwrap().insert("hello-1.12-x86-64.raw".into());
    let e = update::apply(&tr, &root).unwrap_err();
    assert!(matches!(e, UpdateError::Fetch { .. }), "{e}");
    assert_eq!(
        link(&root),
        PathBuf::from("/opt/extensions/hello/hello-1.10-x86-64.raw")
    );
    assert_eq!(
        listing(&root),
        vec!["hello-1.10-x86-64.raw".to_string(), "hello-1.2-x86-64.raw".into()],
        "no partial file left"
    );

    // Connection restored: the update goes through, and the linked image merges.
    srv.truncate.lock().unwrap().clear();
    update::apply(&tr, &root).unwrap();
    assert_eq!(
        link(&root),
        PathBuf::from("/opt/extensions/hello/hello-1.12-x86-64.raw")
    );
    private_mount_ns();
    let ws = t.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let mut opts = Options::new(&root);
    opts.workspace_base = ws;
    let _g = MergedGuard(opts.clone());
    let r = merge::merge(&opts).unwrap();
    assert_eq!(r.merged_names(), vec!["hello".to_string()]);
    assert_eq!(
        std::fs::read_to_string(root.join("usr/bin/tool")).unwrap(),
        "tool from v1.12\n"
    );
}

#[test]
fn signature_verification_is_refused_not_skipped() {
    let t = tempfile::tempdir().unwrap();
    let text = "[Source]\nType=url-file\nPath=http://127.0.0.1:9/\nMatchPattern=a-@v.raw\n[Target]\nType=regular-file\nPath=/opt/a\nMatchPattern=a-@v.raw\n";
    let tr = Transfer::parse(text, "x86-64").unwrap();
    assert!(matches!(
        update::apply(&tr, t.path()),
        Err(UpdateError::SignatureUnsupported)
    ));
}

#[test]
fn bakery_publishes_a_directory_clients_update_from() {
    let t = tempfile::tempdir().unwrap();
    let root = host_root(t.path(), "ID=boxcar\nSYSEXT_LEVEL=1.0\n");
    let out = t.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let srv = serve(out.clone());
    let m = t.path().join("m");
    for n in ["alpha", "beta"] {
        std::fs::create_dir_all(m.join(n).join("usr/bin")).unwrap();
        std::fs::write(m.join(n).join("usr/bin").join(n), n).unwrap();
    }
    let manifest = |v: &str| {
        format!(
            r#"{{"base_url":"{}","architecture":"x86-64","instances_max":2,"extensions":[
            {{"name":"alpha","version":"{v}","source":"alpha","release":{{"id":"_any"}}}},
            {{"name":"beta","version":"{v}","source":"beta","release":{{"id":"boxcar","sysext_level":"1.0"}}}}]}}"#,
            srv.base.trim_end_matches('/')
        )
    };
    std::fs::write(m.join("bakery.json"), manifest("1.0")).unwrap();
    assert_eq!(
        boxcar_sysext::bakery::bake(&m.join("bakery.json"), &out).unwrap().len(),
        2
    );
    std::fs::write(m.join("bakery.json"), manifest("1.1")).unwrap();
    boxcar_sysext::bakery::bake(&m.join("bakery.json"), &out).unwrap();
    let sums = std::fs::read_to_string(out.join("beta/SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 2, "both published versions listed: {sums}");

    for n in ["alpha", "beta"] {
        let conf = std::fs::read_to_string(out.join(n).join(format!("{n}.conf"))).unwrap();
        let tr = Transfer::parse(&conf, "x86-64").unwrap();
        let o = update::apply(&tr, &root).unwrap();
        assert!(
            matches!(&o, UpdateOutcome::Installed { version, .. } if version == "1.1"),
            "{o:?}"
        );
    }
    private_mount_ns();
    let ws = t.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let mut opts = Options::new(&root);
    opts.workspace_base = ws;
    let _g = MergedGuard(opts.clone());
    let r = merge::merge(&opts).unwrap();
    assert_eq!(r.merged_names(), vec!["alpha".to_string(), "beta".into()]);
    assert_eq!(std::fs::read_to_string(root.join("usr/bin/beta")).unwrap(), "beta");
}
