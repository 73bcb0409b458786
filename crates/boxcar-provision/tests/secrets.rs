//! Secrets never reach logs, console reports or the result file: data
//! URLs, password hashes, SSH key material, HTTP header values and URL
//! query tokens. Checked at TRACE level, on success and on failure, both
//! in-process (captured `tracing` output) and through the binary.

mod common;

use boxcar_provision::provider::FileProvider;
use boxcar_provision::{Engine, Stage};
use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

const SECRETS: [&str; 6] = [
    "SECRET-DATA-1f2e",
    "SECRETHASH9x",
    "SECRETKEYMATERIAL",
    "SECRET-TOKEN-77",
    "SECRET-QUERY-55",
    "U0VDUkVU",
];

#[derive(Clone)]
struct Buf(Arc<Mutex<Vec<u8>>>);
impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn config(base: &str, fail: bool) -> String {
    let hash = if fail {
        format!("sha512-{}", "0".repeat(128))
    } else {
        String::new()
    };
    let verification = if fail {
        format!(r#","verification":{{"hash":"{hash}"}}"#)
    } else {
        String::new()
    };
    format!(
        r#"{{"ignition":{{"version":"3.3.0"}},
  "passwd":{{"users":[{{"name":"core","passwordHash":"$6$SECRETHASH9x$abc","sshAuthorizedKeys":["ssh-ed25519 SECRETKEYMATERIAL core"]}}]}},
  "storage":{{"files":[
    {{"path":"/etc/a","contents":{{"source":"data:,SECRET-DATA-1f2e"}}}},
    {{"path":"/etc/b","contents":{{"source":"data:;base64,U0VDUkVU"}}}},
    {{"path":"/etc/c","contents":{{"source":"{base}/tok?token=SECRET-QUERY-55","httpHeaders":[{{"name":"Authorization","value":"SECRET-TOKEN-77"}}]{verification}}}}}
  ]}}}}"#
    )
}

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} contains secret {s:?}:\n{text}");
    }
}

#[test]
fn no_secret_in_logs_reports_or_result_file() {
    let mut routes = BTreeMap::new();
    routes.insert(
        "/tok?token=SECRET-QUERY-55".to_string(),
        http::Route {
            body: "remote\n".into(),
            require_header: Some("Authorization: SECRET-TOKEN-77".into()),
            ..Default::default()
        },
    );
    let server = http::Server::start(routes);
    for fail in [false, true] {
        let t = scratch();
        let root = t.path().join("root");
        let case: Case = serde_json::from_str(r#"{"description":"","config":{}}"#).unwrap();
        make_tree(&root, &case);
        let cfg = t.path().join("config.ign");
        fs::write(&cfg, config(&server.base, fail)).unwrap();

        let buf = Arc::new(Mutex::new(Vec::new()));
        let b2 = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || Buf(b2.clone()))
            .finish();
        let mut e = Engine::new(&root, t.path().join("run"));
        e.providers = vec![Box::new(FileProvider { path: cfg.clone() })];
        e.http.max_attempts = 1;
        let r = tracing::subscriber::with_default(sub, || e.run(&Stage::ALL));
        let logs = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("files"), "nothing was logged: {logs}");
        assert_clean("tracing output", &logs);
        match (&r, fail) {
            (Ok(_), false) => {
                assert_eq!(fs::read_to_string(root.join("etc/a")).unwrap(), "SECRET-DATA-1f2e");
                assert_eq!(fs::read_to_string(root.join("etc/c")).unwrap(), "remote\n");
            }
            (Err((_, f)), true) => {
                assert!(f.cause.contains("verification of"), "{f}");
                assert_clean("failure report", &f.to_string());
            }
            (other, _) => panic!(
                "unexpected outcome (fail={fail}): {:?}",
                other.as_ref().err().map(|e| &e.1)
            ),
        }
        let result = fs::read_to_string(root.join("etc/.boxcar-provision-result.json")).unwrap();
        assert_clean("result file", &result);
        assert_clean(
            "run state",
            &fs::read_to_string(t.path().join("run/state.json")).unwrap(),
        );
        // The cache necessarily holds the secrets: only root may read it.
        let mode = fs::metadata(t.path().join("run/config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        // The binary, at trace level, on its console.
        let root2 = t.path().join("root2");
        make_tree(&root2, &case);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_boxcar-provision"))
            .arg("--root")
            .arg(&root2)
            .arg("--config")
            .arg(&cfg)
            .arg("--run-dir")
            .arg(t.path().join("run2"))
            .args(["--log", "trace", "--http-attempts", "1"])
            .output()
            .unwrap();
        assert_eq!(out.status.success(), !fail, "{}", String::from_utf8_lossy(&out.stderr));
        let console = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(console.contains("stage files"), "{console}");
        assert_clean("binary console", &console);
    }
}
