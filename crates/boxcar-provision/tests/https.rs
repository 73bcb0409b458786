//! HTTPS sources trusted through `ignition.security.tls.certificateAuthorities`:
//! a real TLS server (rustls) on loopback with a certificate from a CA made
//! by `openssl` for this test. Without the CA the fetch must fail.

mod common;

use boxcar_provision::provider::FileProvider;
use boxcar_provision::{Engine, Stage};
use common::*;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// CA + server certificate for `localhost`/127.0.0.1.
fn make_pki(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Boxcar Test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

/// Serve `body` over TLS to each connection until the listener is dropped.
fn tls_server(dir: &Path, body: &'static str) -> u16 {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &fs::read(dir.join("srv.pem")).unwrap()[..])
        .collect::<Result<_, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut &fs::read(dir.join("srv.key")).unwrap()[..])
        .unwrap()
        .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let cfg = Arc::new(cfg);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(cfg).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, s);
                let mut r = BufReader::new(&mut tls);
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}

#[test]
fn https_with_custom_ca() {
    let t = scratch();
    make_pki(t.path());
    let port = tls_server(t.path(), "over tls\n");
    let ca = fs::read(t.path().join("ca.pem")).unwrap();
    let ca_url = format!(
        "data:;base64,{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &ca)
    );
    for (with_ca, name) in [(true, "with-ca"), (false, "without-ca")] {
        let security = if with_ca {
            format!(r#","security":{{"tls":{{"certificateAuthorities":[{{"source":"{ca_url}"}}]}}}}"#)
        } else {
            String::new()
        };
        let cfg = format!(
            r#"{{"ignition":{{"version":"3.3.0"{security}}},"storage":{{"files":[{{"path":"/etc/tls.txt","contents":{{"source":"https://localhost:{port}/x"}}}}]}}}}"#
        );
        let path = t.path().join(format!("{name}.ign"));
        fs::write(&path, cfg).unwrap();
        let root = t.path().join(name);
        make_tree(
            &root,
            &serde_json::from_str(r#"{"description":"","config":{}}"#).unwrap(),
        );
        let mut e = Engine::new(&root, t.path().join(format!("run-{name}")));
        e.providers = vec![Box::new(FileProvider { path })];
        e.http.max_attempts = 1;
        let r = e.run(&Stage::ALL);
        if with_ca {
            r.map_err(|(_, f)| f).unwrap();
            assert_eq!(fs::read_to_string(root.join("etc/tls.txt")).unwrap(), "over tls\n");
        } else {
            let (_, f) = r.unwrap_err();
            assert_eq!(f.json_path.as_deref(), Some("$.storage.files.0"));
            assert!(f.cause.to_lowercase().contains("certificate"), "{f}");
            assert!(!root.join("etc/tls.txt").exists());
        }
    }
}
