//! The load generator: keep-alive HTTP/1.1 connections on loopback sending pre-built requests.
//!
//! The same code drives the bare server and the update server, so the client's own cost per
//! request is the same for both apart from reading a longer body (a noupdate answer is ~300 bytes,
//! the bare one 6).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Keep-alive connections per run.
pub const CONNECTIONS: usize = 64;

/// How requests are sent.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Each connection sends its next request as soon as the previous answer arrived.
    Closed,
    /// Requests are scheduled at this many per second in total; latency counts from the
    /// scheduled send time (no coordinated omission).
    Rate(f64),
}

/// When a run ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// After this long.
    After(Duration),
    /// When every request of the list was sent once, or after this long.
    OnePass(Duration),
}

/// Figures of one run (or several merged).
#[derive(Default)]
pub struct Run {
    /// Latency of every answered request that matched.
    pub latencies: Vec<Duration>,
    /// Answers that did not match, and broken connections.
    pub errors: usize,
    /// Wall time of the run(s).
    pub elapsed: Duration,
}

impl Run {
    /// Matched answers per second.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// Latency percentile in milliseconds.
    pub fn pct(&mut self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
        self.latencies[i].as_secs_f64() * 1000.0
    }

    /// Adds another run's figures (interleaved rounds).
    pub fn merge(&mut self, other: Run) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.elapsed += other.elapsed;
    }

    /// One line of the report.
    pub fn line(&mut self, label: &str) -> String {
        format!(
            "{label:<34} {:>9.0} req/s   p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
            self.rate(),
            self.pct(0.5),
            self.pct(0.99),
            self.errors
        )
    }
}

/// Wraps an Omaha body in a POST.
pub fn http_request(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Substring search (SIMD): the client's own cost per answer should not grow with the answer's
/// length more than reading it does, or the longer Omaha answer would be charged to the server.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// Content-Length of a response head, case-insensitively, without allocating.
fn content_length(head: &[u8]) -> usize {
    head.split(|&b| b == b'\n')
        .find_map(|line| {
            let (name, value) = line.split_at(line.iter().position(|&b| b == b':')?);
            name.eq_ignore_ascii_case(b"content-length").then(|| {
                std::str::from_utf8(&value[1..])
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0)
}

/// Reads one Content-Length framed response; whether it was a 200 whose body contains `expect`.
async fn read_response(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>, expect: &[u8]) -> std::io::Result<bool> {
    buf.clear();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let len = content_length(&buf[..end]);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = &buf[end + 4..end + 4 + len];
            return Ok(buf.starts_with(b"HTTP/1.1 200") && find(body, expect).is_some());
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Drives `requests` (connection `c` sends entries `c`, `c + CONNECTIONS`, … round robin) on a
/// one-thread client runtime.
pub fn load(addr: SocketAddr, requests: Arc<Vec<Vec<u8>>>, expect: &'static [u8], pace: Pace, stop: Stop) -> Run {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (limit, one_pass) = match stop {
        Stop::After(d) => (d, false),
        Stop::OnePass(d) => (d, true),
    };
    rt.block_on(async move {
        let start = Instant::now();
        let deadline = start + limit;
        let mut tasks = Vec::new();
        for c in 0..CONNECTIONS {
            let requests = requests.clone();
            tasks.push(tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                s.set_nodelay(true).unwrap();
                let mut run = Run::default();
                let mut buf = Vec::with_capacity(4096);
                let interval = match pace {
                    Pace::Rate(r) => Some(Duration::from_secs_f64(CONNECTIONS as f64 / r)),
                    Pace::Closed => None,
                };
                let offset = interval
                    .map(|i| i.mul_f64(c as f64 / CONNECTIONS as f64))
                    .unwrap_or_default();
                let mut k = 0usize;
                loop {
                    let index = c + k * CONNECTIONS;
                    if one_pass && index >= requests.len() {
                        break;
                    }
                    let scheduled = match interval {
                        Some(i) => start + offset + i * k as u32,
                        None => Instant::now(),
                    };
                    if scheduled >= deadline {
                        break;
                    }
                    if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
                        tokio::time::sleep(wait).await;
                    }
                    s.write_all(&requests[index % requests.len()]).await.unwrap();
                    match read_response(&mut s, &mut buf, expect).await {
                        Ok(true) => run.latencies.push(scheduled.elapsed()),
                        Ok(false) => run.errors += 1,
                        Err(_) => {
                            run.errors += 1;
                            break;
                        }
                    }
                    k += 1;
                }
                run
            }));
        }
        let mut total = Run::default();
        for t in tasks {
            total.merge(t.await.unwrap());
        }
        total.elapsed = start.elapsed().min(limit);
        total
    })
}
