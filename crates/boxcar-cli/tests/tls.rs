//! HTTPS for the two Boxcar HTTP clients of the update server — `boxcar fleet` and the
//! downstream mirror — with a CA made by `openssl` for this test: a rustls front end on loopback
//! terminates TLS for `localhost`/127.0.0.1 and forwards to a real `boxcar-server` on plain HTTP.
//! With the CA file both clients work; without it the certificate is refused.

use boxcar_server::downstream::{ca_certificates, sync_once, Upstream, UpstreamProtocol};
use boxcar_server::service::{Clock, Fleet};
use boxcar_server::store::{Role, Store};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

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

/// A CA and a server certificate for localhost and 127.0.0.1 signed by it.
fn make_pki(dir: &Path) {
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        ]
        .into_iter()
        .chain(["-days", "2", "-subj", "/CN=Boxcar Fleet Test CA"])
        .collect::<Vec<_>>(),
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
    std::fs::write(
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
        ]
        .into_iter()
        .chain(["-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf"])
        .collect::<Vec<_>>(),
    );
}

/// Reads one HTTP/1.1 request (head and Content-Length body) and returns it with
/// `Connection: close` so the backend closes after answering.
fn read_request(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        if !lower.starts_with("connection:") {
            head.extend_from_slice(line.as_bytes());
        }
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    head.extend_from_slice(&body);
    Some(head)
}

/// TLS front end: one request per connection, forwarded to `backend`.
fn tls_front(dir: &Path, backend: SocketAddr) -> u16 {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &std::fs::read(dir.join("srv.pem")).unwrap()[..])
        .collect::<Result<_, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut &std::fs::read(dir.join("srv.key")).unwrap()[..])
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
                let Some(req) = read_request(&mut BufReader::new(&mut tls)) else {
                    return;
                };
                let mut up = TcpStream::connect(backend).unwrap();
                up.write_all(&req).unwrap();
                let mut resp = Vec::new();
                let _ = up.read_to_end(&mut resp);
                let _ = tls.write_all(&resp);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}

struct Server {
    addr: SocketAddr,
    admin: String,
    reader: String,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(boxcar_server::db::open(dir.path().join("fleet.db").to_str().unwrap(), 4).unwrap());
    store.ensure_defaults(Clock::System.now()).unwrap();
    let admin = store.create_token(0, "tls-admin", Role::Admin).unwrap();
    let reader = store.create_token(0, "tls-reader", Role::ReadOnly).unwrap();
    let fleet = Arc::new(Fleet::new(store, Clock::System).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(boxcar_server::server::serve(fleet, listener));
    Server {
        addr,
        admin,
        reader,
        _rt: rt,
        _dir: dir,
    }
}

fn fleet(url: &str, token: &str, ca: Option<&Path>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_boxcar"));
    cmd.arg("fleet").arg("--server").arg(url).env("BOXCAR_TOKEN", token);
    cmd.env_remove("BOXCAR_CA_FILE");
    if let Some(ca) = ca {
        cmd.arg("--ca-file").arg(ca);
    }
    let out = cmd.args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn fleet_cli_and_mirror_speak_https_with_a_ca_file() {
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    let ca = pki.path().join("ca.pem");
    let s = server();
    let port = tls_front(pki.path(), s.addr);

    for (i, host) in ["localhost", "127.0.0.1"].into_iter().enumerate() {
        let url = format!("https://{host}:{port}");
        let name = format!("edge-{i}");
        let (code, out, err) = fleet(&url, &s.admin, Some(&ca), &["create-channel", &name]);
        assert_eq!(code, 0, "{host}: {err}");
        assert!(out.contains(&name), "{out}");
        let (code, out, err) = fleet(&url, &s.reader, Some(&ca), &["channels"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.lines().any(|l| l.starts_with(&format!("{name}\t"))), "{out}");
    }
    // Without the CA the server's certificate is not trusted.
    let url = format!("https://localhost:{port}");
    let (code, _, err) = fleet(&url, &s.reader, None, &["apps"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // A CA file that is not PEM is refused before connecting, naming the file.
    let bogus = pki.path().join("srv.csr.txt");
    std::fs::write(&bogus, "not a certificate\n").unwrap();
    let (code, _, err) = fleet(&url, &s.reader, Some(&bogus), &["apps"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("srv.csr.txt") && err.contains("no PEM certificate"),
        "{err}"
    );

    // The downstream mirror client through the same front end.
    let local = tempfile::tempdir().unwrap();
    let store = Store::new(boxcar_server::db::open(local.path().join("down.db").to_str().unwrap(), 2).unwrap());
    store.ensure_defaults(Clock::System.now()).unwrap();
    let mut up = Upstream {
        url: format!("https://localhost:{port}"),
        protocol: UpstreamProtocol::BoxcarApi {
            token: s.reader.clone(),
        },
        apps: vec!["flatcar".into()],
        interval: Duration::from_secs(3600),
        ca: None,
    };
    let err = sync_once(&store, Clock::System.now(), &up).unwrap_err().to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    up.ca = Some(ca_certificates(&std::fs::read(&ca).unwrap()).unwrap());
    let report = sync_once(&store, Clock::System.now(), &up).unwrap();
    assert_eq!(
        report.channels_created, 2,
        "the custom channels are mirrored: {report:?}"
    );
    let channels = store.list_channels("{e96281a6-d1af-4bde-9a0a-97b76e56dc57}").unwrap();
    assert!(channels.iter().any(|c| c.name == "edge-1"), "{channels:?}");
}
