//! HTTP(S) GETs with Ignition's client behaviour: `User-Agent`, custom CAs
//! on top of the system/webpki roots, per-scheme proxies with `noProxy`,
//! the response-header and total timeouts, and retries with exponential
//! backoff (200 ms doubling, capped at 5 s) on 5xx and transport errors.

use crate::error::FetchError;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest body accepted; a runaway server must not exhaust the initrd's RAM.
const MAX_BODY: u64 = 1 << 30;

/// Everything that shapes HTTP requests, taken from `ignition.*`.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `timeouts.httpResponseHeaders` (default 10 s): bounds connecting and
    /// each wait for data, so a hanging server gives an error.
    pub response_timeout: Duration,
    /// `timeouts.httpTotal`; `None` means no overall limit.
    pub total_timeout: Option<Duration>,
    /// How many attempts before giving up (Ignition retries without limit
    /// until `httpTotal`; we stop after this many so a boot cannot hang
    /// forever without saying why).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubled each time, capped at 5 s.
    pub initial_backoff: Duration,
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: Vec<String>,
    /// PEM bundles to trust in addition to the system roots.
    pub certificate_authorities: Vec<Vec<u8>>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            response_timeout: Duration::from_secs(10),
            total_timeout: None,
            max_attempts: 10,
            initial_backoff: Duration::from_millis(200),
            http_proxy: None,
            https_proxy: None,
            no_proxy: Vec::new(),
            certificate_authorities: Vec::new(),
        }
    }
}

/// A reusable client (one agent per proxy choice).
pub struct HttpClient {
    opts: HttpOptions,
    tls: Arc<rustls::ClientConfig>,
}

impl HttpClient {
    /// Build the TLS config once (system roots + webpki roots + config CAs).
    pub fn new(opts: HttpOptions) -> Result<HttpClient, FetchError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Ok(sys) = std::fs::read("/etc/ssl/certs/ca-certificates.crt") {
            for c in rustls_pemfile::certs(&mut &sys[..]).flatten() {
                let _ = roots.add(c);
            }
        }
        for (i, pem) in opts.certificate_authorities.iter().enumerate() {
            let certs: Vec<_> = rustls_pemfile::certs(&mut &pem[..])
                .collect::<Result<_, _>>()
                .map_err(|e| FetchError::CertificateAuthority {
                    url: format!("#{i}"),
                    reason: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(FetchError::CertificateAuthority {
                    url: format!("#{i}"),
                    reason: "no PEM certificate found".into(),
                });
            }
            for c in certs {
                roots.add(c).map_err(|e| FetchError::CertificateAuthority {
                    url: format!("#{i}"),
                    reason: e.to_string(),
                })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| FetchError::Client(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(HttpClient {
            opts,
            tls: Arc::new(tls),
        })
    }

    fn agent(&self, url: &str) -> Result<ureq::Agent, FetchError> {
        let mut b = ureq::AgentBuilder::new()
            .timeout_connect(self.opts.response_timeout)
            .timeout_read(self.opts.response_timeout)
            .user_agent(concat!("Ignition/2.14.0 boxcar-provision/", env!("CARGO_PKG_VERSION")))
            .tls_config(self.tls.clone())
            .try_proxy_from_env(false);
        if let Some(t) = self.opts.total_timeout {
            b = b.timeout(t);
        }
        if let Some(p) = self.proxy_for(url) {
            let proxy = ureq::Proxy::new(&p).map_err(|e| FetchError::Client(format!("proxy: {e}")))?;
            b = b.proxy(proxy);
        }
        Ok(b.build())
    }

    /// The proxy URL for `url`, honouring `noProxy`.
    fn proxy_for(&self, url: &str) -> Option<String> {
        let https = url.starts_with("https://");
        let p = if https {
            &self.opts.https_proxy
        } else {
            &self.opts.http_proxy
        };
        let p = p.as_ref()?;
        let host = host_of(url);
        let excluded = self.opts.no_proxy.iter().any(|n| {
            let n = n.trim().trim_start_matches('.');
            n == "*" || host == n || host.ends_with(&format!(".{n}"))
        });
        (!excluded).then(|| p.clone())
    }

    /// GET `url` with extra headers. `shown` is the redacted URL used in
    /// logs and errors.
    pub fn get(&self, url: &str, shown: &str, headers: &[(String, String)]) -> Result<Vec<u8>, FetchError> {
        let agent = self.agent(url)?;
        let start = Instant::now();
        let mut backoff = self.opts.initial_backoff;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            tracing::debug!(url = shown, attempt, "GET");
            let mut req = agent.get(url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            let retryable: FetchError = match req.call() {
                Ok(resp) => {
                    let mut body = Vec::new();
                    resp.into_reader()
                        .take(MAX_BODY)
                        .read_to_end(&mut body)
                        .map_err(|source| FetchError::HttpBody {
                            url: shown.to_string(),
                            source,
                        })?;
                    tracing::debug!(url = shown, bytes = body.len(), "GET result: OK");
                    return Ok(body);
                }
                Err(ureq::Error::Status(code, _)) if code >= 500 => FetchError::HttpStatus {
                    url: shown.to_string(),
                    status: code,
                    attempts: attempt,
                },
                Err(ureq::Error::Status(code, _)) => {
                    return Err(FetchError::HttpStatus {
                        url: shown.to_string(),
                        status: code,
                        attempts: attempt,
                    })
                }
                Err(ureq::Error::Transport(t))
                    if matches!(t.kind(), ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme) =>
                {
                    // A malformed URL will not get better by retrying.
                    return Err(FetchError::BadUrl {
                        url: shown.to_string(),
                        reason: transport_reason(&t),
                    });
                }
                Err(ureq::Error::Transport(t)) => FetchError::HttpTransport {
                    url: shown.to_string(),
                    reason: transport_reason(&t),
                    attempts: attempt,
                },
            };
            let out_of_time = self.opts.total_timeout.is_some_and(|t| start.elapsed() + backoff >= t);
            if attempt >= self.opts.max_attempts || out_of_time {
                return Err(retryable);
            }
            tracing::info!(url = shown, attempt, error = %retryable, "retrying after {:?}", backoff);
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// A transport error without the URL (which may hold secrets in its query).
fn transport_reason(t: &ureq::Transport) -> String {
    let mut s = format!("{:?}", t.kind());
    if let Some(m) = t.message() {
        s.push_str(": ");
        s.push_str(m);
    }
    if let Some(src) = std::error::Error::source(t) {
        s.push_str(": ");
        s.push_str(&src.to_string());
    }
    s
}

/// The host part of an http(s) URL (no port, no userinfo).
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map(|x| x.1).unwrap_or(url);
    let auth = rest.split(['/', '?', '#']).next().unwrap_or("");
    let auth = auth.rsplit_once('@').map(|x| x.1).unwrap_or(auth);
    if let Some(v6) = auth.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("").to_string();
    }
    auth.split(':').next().unwrap_or("").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_matching() {
        let c = HttpClient::new(HttpOptions {
            http_proxy: Some("http://proxy:3128".into()),
            no_proxy: vec!["example.com".into(), ".internal".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.proxy_for("http://other.org/x").as_deref(), Some("http://proxy:3128"));
        assert_eq!(c.proxy_for("http://a.example.com/x"), None);
        assert_eq!(c.proxy_for("http://user@svc.internal:80/x"), None);
        assert_eq!(c.proxy_for("https://other.org/x"), None);
    }

    #[test]
    fn malformed_url_is_not_retried() {
        let c = HttpClient::new(HttpOptions {
            max_attempts: 50,
            ..Default::default()
        })
        .unwrap();
        let e = c.get("http://[::1/x", "http://[::1/x", &[]).unwrap_err();
        assert!(matches!(e, FetchError::BadUrl { .. }), "{e}");
    }
}
