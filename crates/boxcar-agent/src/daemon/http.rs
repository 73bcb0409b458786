//! Posting Omaha documents: blocking HTTP/1.1 (ureq) with a whole-request timeout and a
//! bounded read, so a stalled or flooding server costs one failed check, never the daemon.

use super::omaha::{codes, CheckError};
use std::io::Read;
use std::time::Duration;

/// Largest response body read; Omaha answers are a few KiB (the parser's own limit is 64 KiB).
pub const MAX_RESPONSE: usize = 64 * 1024;

/// The Omaha endpoint client.
#[derive(Debug, Clone)]
pub struct OmahaHttp {
    agent: ureq::Agent,
    url: String,
}

impl OmahaHttp {
    /// A client for `url` whose every request ends after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> OmahaHttp {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent(super::omaha::UPDATER_VERSION)
            .build()
            .into();
        OmahaHttp {
            agent,
            url: url.to_string(),
        }
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// POSTs `xml`; returns the body of a 2xx answer (at most [`MAX_RESPONSE`] bytes).
    /// Failures carry update_engine's codes: 2000+status for HTTP errors, 2 when no answer
    /// came, 31 for a body over the limit.
    pub fn post(&self, xml: &str) -> Result<Vec<u8>, CheckError> {
        let mut resp = self
            .agent
            .post(&self.url)
            .header("content-type", "text/xml")
            .send(xml)
            .map_err(|e| CheckError {
                code: codes::OMAHA_REQUEST_ERROR,
                message: format!("POST {}: {e}", self.url),
            })?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        let read = resp
            .body_mut()
            .as_reader()
            .take(MAX_RESPONSE as u64 + 1)
            .read_to_end(&mut body);
        if !(200..300).contains(&status) {
            return Err(CheckError {
                code: codes::http(status),
                message: format!("POST {}: HTTP {status}", self.url),
            });
        }
        read.map_err(|e| CheckError {
            code: codes::OMAHA_REQUEST_ERROR,
            message: format!("POST {}: reading the answer: {e}", self.url),
        })?;
        if body.len() > MAX_RESPONSE {
            return Err(CheckError {
                code: codes::XML_PARSE_ERROR,
                message: format!(
                    "POST {}: answer larger than {MAX_RESPONSE} bytes, not read further",
                    self.url
                ),
            });
        }
        Ok(body)
    }
}
