//! The local API: newline-delimited JSON ([`super::proto`]) on a Unix socket, one thread per
//! connection. Requests are answered from the agent's state at once; `watch` streams.

use super::proto::{self, ErrorKind, Method, Request, Response, MAX_REQUEST_LINE};
use super::runner::Agent;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// The listening socket; dropping it does not stop the accept thread, [`ApiServer::stop`] does.
pub struct ApiServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Binds `path` (mode 0660, parent created, a stale socket replaced) and serves `agent`.
pub fn serve(path: &Path, agent: Arc<Agent>) -> std::io::Result<ApiServer> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::Builder::new()
        .name("boxcar-updated-api".into())
        .spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                match conn {
                    Ok(stream) => {
                        let agent = agent.clone();
                        let _ = std::thread::Builder::new()
                            .name("boxcar-updated-client".into())
                            .spawn(move || handle(stream, &agent));
                    }
                    Err(e) => tracing::warn!(error = %e, "accepting an API connection"),
                }
            }
        })?;
    Ok(ApiServer {
        path: path.to_path_buf(),
        stop,
        thread: Some(thread),
    })
}

impl ApiServer {
    /// Stops accepting and removes the socket file.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn send(w: &mut impl Write, r: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

/// Reads one line of at most `MAX_REQUEST_LINE` bytes; `Ok(None)` at end of stream.
fn read_line(r: &mut impl BufRead) -> std::io::Result<Option<Result<String, String>>> {
    let mut buf = Vec::new();
    let n = r.take(MAX_REQUEST_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') && buf.len() > MAX_REQUEST_LINE {
        return Ok(Some(Err(format!("request line longer than {MAX_REQUEST_LINE} bytes"))));
    }
    Ok(Some(
        String::from_utf8(buf)
            .map(|s| s.trim_end().to_string())
            .map_err(|_| "request is not UTF-8".to_string()),
    ))
}

fn handle(stream: UnixStream, agent: &Arc<Agent>) {
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let line = match read_line(&mut reader) {
            Ok(Some(l)) => l,
            _ => return,
        };
        let req = match line.and_then(|l| proto::parse_request(&l)) {
            Ok(r) => r,
            Err(msg) => {
                let oversized = msg.starts_with("request line longer");
                if send(&mut writer, &Response::error(ErrorKind::BadRequest, msg)).is_err() || oversized {
                    return;
                }
                continue;
            }
        };
        let resp = match req {
            Request {
                method: Method::Status, ..
            } => Response::status(agent.status()),
            Request {
                method: Method::Check, ..
            } => match agent.request_check() {
                Ok(s) => Response::status(s),
                Err(r) => Response::error(r.kind, r.message),
            },
            Request {
                method: Method::Reset, ..
            } => match agent.reset() {
                Ok(s) => Response::status(s),
                Err(r) => Response::error(r.kind, r.message),
            },
            Request {
                method: Method::Rollback,
                ..
            } => match agent.rollback() {
                Ok(v) => Response::rollback(v),
                Err(r) => Response::error(r.kind, r.message),
            },
            Request {
                method: Method::Watch, ..
            } => {
                watch(reader, writer, agent);
                return;
            }
        };
        if send(&mut writer, &resp).is_err() {
            return;
        }
    }
}

/// Streams the status now and after every change, until the client hangs up or the agent stops.
fn watch(mut reader: BufReader<UnixStream>, mut writer: UnixStream, agent: &Arc<Agent>) {
    let rx = agent.subscribe();
    if send(&mut writer, &Response::status(agent.status())).is_err() {
        return;
    }
    // The client says nothing more; end of its stream means it left.
    let gone = Arc::new(AtomicBool::new(false));
    let g = gone.clone();
    let _ = std::thread::Builder::new()
        .name("boxcar-updated-watch".into())
        .spawn(move || {
            let mut sink = [0u8; 256];
            while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
            g.store(true, Ordering::SeqCst);
        });
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(view) => {
                if send(&mut writer, &Response::status(view)).is_err() {
                    return;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if gone.load(Ordering::SeqCst) || agent.stopping() {
                    return;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}
