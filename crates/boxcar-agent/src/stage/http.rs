//! HTTP(S) for payload downloads (ureq, blocking): whole-file and ranged
//! GETs with the checks a resuming client needs — the status, the
//! `Content-Range` the server claims, and the announced size.

use super::content_range::{digits, parse_content_range};
use super::errors::{code, fail};
use crate::StageFailure;
use std::io::Read;
use std::time::Duration;

/// A response body being read, and what the server said about it.
pub struct Body {
    pub reader: Box<dyn Read + Send>,
    /// Whether the server sent the whole file or the range asked for.
    pub served: Served,
}

/// What a server answered to a GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// 200: the whole file from byte 0 (a ranged request was ignored).
    Whole,
    /// 206: exactly the range asked for.
    Range,
}

/// The HTTP side of a download.
pub struct Http {
    agent: ureq::Agent,
}

/// What part of the file to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The whole file.
    Whole,
    /// `Range: bytes=START-` or `bytes=START-END`.
    Range { start: u64, end: Option<u64> },
}

impl Http {
    /// An agent with a connect timeout and a per-read (stall) timeout.
    pub fn new(connect: Duration, read: Duration) -> Http {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(connect))
            .timeout_recv_response(Some(read.max(connect)))
            .timeout_per_read(Some(read))
            .http_status_as_error(false)
            .user_agent(concat!("boxcar-agent/", env!("CARGO_PKG_VERSION")))
            .build();
        Http {
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// GETs `url`. A 200 answer is the whole file (also when a range was
    /// asked for: the server ignored it, and the caller starts over); a
    /// 206 must carry a `Content-Range` starting where asked, within
    /// `size`. A `Content-Length` larger than announced is refused before
    /// any body byte is read.
    pub fn get(&self, url: &str, want: Want, size: u64) -> Result<Body, StageFailure> {
        let mut req = self.agent.get(url);
        if let Want::Range { start, end } = want {
            let end = end.map(|e| e.to_string()).unwrap_or_default();
            req = req.header("Range", format!("bytes={start}-{end}"));
        }
        let resp = req
            .call()
            .map_err(|e| fail(code::DOWNLOAD_TRANSFER, format!("downloading {url}: {e}")))?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let length = header("content-length").map(|v| {
            digits(v.trim()).ok_or_else(|| fail(code::DOWNLOAD_TRANSFER, format!("{url}: bad Content-Length {v:?}")))
        });
        let length = length.transpose()?;
        let served = match status {
            200 => {
                if let Some(l) = length.filter(|&l| l != size) {
                    return Err(fail(
                        code::PAYLOAD_SIZE_MISMATCH,
                        format!("{url}: server sends {l} bytes, the update offer announced {size}"),
                    ));
                }
                Served::Whole
            }
            206 => {
                let Want::Range { start, end } = want else {
                    return Err(fail(
                        code::DOWNLOAD_TRANSFER,
                        format!("{url}: 206 Partial Content to a request without Range"),
                    ));
                };
                let raw = header("content-range").unwrap_or_default();
                let cr = parse_content_range(&raw).ok_or_else(|| {
                    fail(
                        code::DOWNLOAD_TRANSFER,
                        format!("{url}: 206 with unusable Content-Range {raw:?}"),
                    )
                })?;
                let want_end = end.unwrap_or(size.saturating_sub(1));
                if cr.start != start || cr.end != want_end || cr.total.is_some_and(|t| t != size) {
                    return Err(fail(
                        code::PAYLOAD_SIZE_MISMATCH,
                        format!("{url}: asked for bytes {start}-{want_end} of {size}, server sent {raw:?}"),
                    ));
                }
                if let Some(l) = length.filter(|&l| l != cr.end - cr.start + 1) {
                    return Err(fail(
                        code::PAYLOAD_SIZE_MISMATCH,
                        format!("{url}: Content-Length {l} disagrees with Content-Range {raw:?}"),
                    ));
                }
                Served::Range
            }
            s => return Err(fail(code::http(s), format!("downloading {url}: HTTP status {s}"))),
        };
        Ok(Body {
            reader: Box::new(resp.into_body().into_reader()),
            served,
        })
    }
}
