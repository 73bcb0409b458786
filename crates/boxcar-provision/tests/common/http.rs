//! A tiny real HTTP/1.1 server on 127.0.0.1:0 for tests, with routes that
//! misbehave on purpose (5xx, truncated bodies, hanging).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What a route serves.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Route {
    /// The (uncompressed) body.
    #[serde(default)]
    pub body: String,
    /// Serve `body` gzip-compressed.
    #[serde(default)]
    pub gzip: bool,
    /// Status code (default 200).
    #[serde(default)]
    pub status: Option<u16>,
    /// Answer 500 to the first N requests.
    #[serde(default)]
    pub fail_first: u32,
    /// Announce the full length, send half, close.
    #[serde(default)]
    pub truncate: bool,
    /// Accept and never answer.
    #[serde(default)]
    pub hang: bool,
    /// A header that must be present (`Name: value`), else 403.
    #[serde(default)]
    pub require_header: Option<String>,
}

impl Route {
    /// The bytes a hash in the config is computed over.
    pub fn decoded_body(&self) -> Vec<u8> {
        self.body.as_bytes().to_vec()
    }
    fn wire_body(&self) -> Vec<u8> {
        if self.gzip {
            boxcar_config::dataurl::gzip(self.body.as_bytes())
        } else {
            self.body.as_bytes().to_vec()
        }
    }
}

/// A running server; stopped on drop.
pub struct Server {
    pub base: String,
    stop: Arc<AtomicBool>,
    pub requests: Arc<Mutex<Vec<String>>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(routes: BTreeMap<String, Route>) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let counts: Arc<Mutex<BTreeMap<String, Arc<AtomicU32>>>> = Arc::default();
        let routes = Arc::new(routes);
        let (s2, r2) = (stop.clone(), requests.clone());
        let handle = thread::spawn(move || {
            for conn in l.incoming() {
                if s2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (routes, r2, counts, s3) = (routes.clone(), r2.clone(), counts.clone(), s2.clone());
                thread::spawn(move || serve(conn, &routes, &r2, &counts, &s3));
            }
        });
        Server {
            base: format!("http://{addr}"),
            stop,
            requests,
            handle: Some(handle),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.base.trim_start_matches("http://"));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(
    mut c: TcpStream,
    routes: &BTreeMap<String, Route>,
    log: &Mutex<Vec<String>>,
    counts: &Mutex<BTreeMap<String, Arc<AtomicU32>>>,
    stop: &AtomicBool,
) {
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        headers.push(h.trim_end().to_string());
    }
    log.lock()
        .unwrap()
        .push(format!("{} {}", line.trim_end(), headers.join(" | ")));
    let Some(route) = routes.get(&path) else {
        let _ = c.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    if route.hang {
        while !stop.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(50));
        }
        return;
    }
    let n = counts
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default()
        .clone()
        .fetch_add(1, Ordering::SeqCst);
    if n < route.fail_first {
        let _ = c.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    if let Some(req) = &route.require_header {
        if !headers.iter().any(|h| h.eq_ignore_ascii_case(req)) {
            let _ = c.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
    }
    let body = route.wire_body();
    let status = route.status.unwrap_or(200);
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = c.write_all(head.as_bytes());
    if route.truncate {
        let _ = c.write_all(&body[..body.len() / 2]);
    } else {
        let _ = c.write_all(&body);
    }
    let _ = c.flush();
}
