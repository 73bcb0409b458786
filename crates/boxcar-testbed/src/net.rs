//! Host side of user-mode networking: free loopback ports for forwards and
//! a tiny HTTP/1.0 client for fetching what the guest serves.

use crate::error::{Result, TestbedError};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A TCP port on 127.0.0.1 that was free a moment ago (bound and released;
/// QEMU binds it right after).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(TestbedError::io("binding", "127.0.0.1:0"))?;
    let port = l
        .local_addr()
        .map_err(TestbedError::io("binding", "127.0.0.1:0"))?
        .port();
    Ok(port)
}

/// An HTTP response: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Splits a raw HTTP/1.x response into status and body.
pub fn parse_response(raw: &[u8]) -> std::result::Result<Response, String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let status_line = head.lines().next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    Ok(Response {
        status,
        body: raw[head_end + 4..].to_vec(),
    })
}

fn get_once(port: u16, path: &str) -> std::result::Result<Response, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    parse_response(&raw)
}

/// GETs `http://127.0.0.1:<port><path>`, retrying until `timeout` while the
/// connection fails or the reply is empty (QEMU accepts forwarded
/// connections before the guest listens and then closes them).
pub fn http_get(port: u16, path: &str, timeout: Duration) -> Result<Response> {
    let start = Instant::now();
    loop {
        match get_once(port, path) {
            Ok(r) => return Ok(r),
            Err(e) if start.elapsed() >= timeout => {
                return Err(TestbedError::Http {
                    url: format!("http://127.0.0.1:{port}{path}"),
                    cause: e,
                })
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let r = parse_response(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<p>hi</p>").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"<p>hi</p>");
        assert!(parse_response(b"").unwrap_err().contains("headers"));
        assert!(parse_response(b"garbage\r\n\r\n").unwrap_err().contains("status"));
    }

    #[test]
    fn fetches_from_a_local_server() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0u8; 512];
            let n = c.read(&mut buf).unwrap();
            assert!(String::from_utf8_lossy(&buf[..n]).starts_with("GET /x HTTP/1.0"));
            c.write_all(b"HTTP/1.0 404 Not Found\r\n\r\nnope").unwrap();
        });
        let r = http_get(port, "/x", Duration::from_secs(5)).unwrap();
        t.join().unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"nope"[..]));
    }
}
