//! The dashboard in real headless Chromium (driven through chromedriver's WebDriver API): pages
//! render, a policy edit through the form takes effect. Screenshots go to
//! target/test-artefacts/dashboard/.

mod common;
use base64::Engine;
use common::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        for bin in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            assert!(
                std::path::Path::new(bin).exists(),
                "{bin} is required: run scripts/setup.sh"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut driver = Driver {
            child,
            addr,
            session: String::new(),
            _profile: profile,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(addr).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,2000",
                     format!("--user-data-dir={}", driver._profile.path().display())]}}}});
        let v = driver.call("POST", "/session", Some(caps));
        driver.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        driver
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, text) = http(
            self.addr,
            method,
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: {status} {text}"));
        assert_eq!(status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn s(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({ "url": url })));
    }

    fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            &self.s("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().unwrap().to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call("POST", &self.s(&format!("/element/{e}/clear")), Some(json!({})));
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/value")),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &self.s(&format!("/element/{e}/click")), Some(json!({})));
    }

    fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Polls a JavaScript condition (the page loads data asynchronously).
    fn wait_for(&self, what: &str, script: &str) {
        for _ in 0..300 {
            if self.js(script) == Value::Bool(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let html = self.js("return document.body.innerText");
        panic!("timed out waiting for {what}; page text: {html}");
    }

    fn screenshot(&self, name: &str) {
        let b64 = self.call("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "screenshot is a PNG");
        std::fs::write(artefact_dir("dashboard").join(name), png).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(self.addr, "DELETE", &format!("/session/{}", self.session), &[], b"");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn dashboard_renders_and_a_policy_edit_takes_effect() {
    let db = TestDb::new(Backend::Sqlite);
    let s = TestServer::start(&db);
    s.policy("stable", json!({"safe_mode": "off", "max_updates_per_period": 3}));
    s.publish("3100.0.0", "stable");
    for (m, v) in [("node-a", "3000.0.0"), ("node-b", "3000.0.0"), ("node-c", "3100.0.0")] {
        s.omaha(&check(m, v, "stable", "0.0.0.0"));
    }
    s.omaha(&event("node-b", "3000.0.0", "stable", 3, 0, Some(10)));
    s.flush();

    let d = Driver::start();
    d.goto(&format!("http://{}/", s.addr));
    d.wait_for("the sign-in form", "return !!document.querySelector('#token')");
    d.type_into("#token", "bxc_not_a_token");
    d.click("#login-button");
    d.wait_for(
        "the sign-in error",
        "return document.querySelector('#login-error').textContent.includes('unknown token')",
    );
    d.type_into("#token", &s.reader);
    d.click("#login-button");
    d.wait_for("data", "return document.body.dataset.ready === '1'");
    d.screenshot("overview.png");

    let text = d.js("return document.body.innerText").as_str().unwrap().to_string();
    assert!(text.contains("3100.0.0"), "channel version shown: {text}");
    assert!(
        d.js("return document.querySelector('#channels').innerText.includes('stable\\tamd64\\t3100.0.0')")
            == json!(true)
    );
    let progress = d.js("return document.querySelector('tr[data-group=stable] .progress').innerText");
    assert!(
        progress.as_str().unwrap().contains("granted 2 · complete 0 · error 1"),
        "{progress}"
    );
    assert_eq!(
        d.js("return document.querySelectorAll('#instances tbody tr').length"),
        json!(3)
    );
    let bars = d.js("return document.querySelectorAll('#chart rect').length");
    assert!(bars.as_u64().unwrap() >= 1, "version chart drawn");
    assert!(d.js("return document.querySelector('#activity').innerText.includes('rollout_started')") == json!(true));

    // Instance search.
    d.type_into("#q-version", "3100.0.0");
    d.click("#search-button");
    d.wait_for(
        "filtered instances",
        "return document.querySelectorAll('#instances tbody tr').length === 1",
    );
    assert!(d.js("return document.querySelector('#instances tbody').innerText.includes('node-c')") == json!(true));

    // A read-only token cannot save.
    d.type_into("#policy-stable input[name=max_updates_per_period]", "42");
    d.click("#policy-stable button");
    d.wait_for(
        "refusal",
        "return document.querySelector('#policy-stable .status').textContent.includes('read-only')",
    );

    // Sign in as admin and pause the group with a new limit through the form.
    d.js("sessionStorage.clear(); return true");
    d.goto(&format!("http://{}/", s.addr));
    d.wait_for(
        "the sign-in form",
        "return !!document.querySelector('#token') && !document.querySelector('#login').hidden",
    );
    d.type_into("#token", &s.admin);
    d.click("#login-button");
    d.wait_for("data", "return document.body.dataset.ready === '1'");
    d.type_into("#policy-stable input[name=max_updates_per_period]", "42");
    d.js("const s = document.querySelector('#policy-stable select[name=updates]'); s.value = 'paused'; return true");
    d.type_into("#policy-stable textarea[name=windows]", "sat,sun 02:00 240");
    d.click("#policy-stable button");
    d.wait_for(
        "saved",
        "return (document.querySelector('#policy-stable .status') || {}).textContent === 'saved'",
    );
    d.screenshot("policy-saved.png");

    let (_, g) = s.api("GET", "/apps/flatcar/groups/stable", None);
    assert_eq!(g["policy"]["max_updates_per_period"], 42);
    assert_eq!(g["policy"]["updates"], "paused");
    assert_eq!(
        g["policy"]["windows"],
        json!([{"days": ["sat", "sun"], "start": "02:00", "length_minutes": 240}])
    );
    // It takes effect on the Omaha side: no new grants.
    assert_eq!(
        status_of(s.omaha(&check("node-d", "3000.0.0", "stable", "0.0.0.0"))),
        "noupdate"
    );
    assert!(
        d.js("return document.querySelector('tr[data-group=stable] .updates').innerText.includes('paused')")
            == json!(true)
    );
}
