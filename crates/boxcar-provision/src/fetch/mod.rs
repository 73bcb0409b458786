//! Getting the bytes behind an Ignition resource: `data:`, `http(s)://`,
//! `tftp://`; gzip decompression; hash verification of the decompressed
//! data. Every URL that reaches a log or an error goes through [`redact`].

pub mod http;
pub mod tftp;
pub mod verify;

use crate::error::FetchError;
use boxcar_config::model::{Config, Resource};
use std::io::Read;
use std::time::Duration;

pub use http::HttpOptions;

/// Whether a stage may use the network (Ignition's fetch-offline vs fetch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Only `data:` sources; anything else is [`FetchError::NeedsNetwork`].
    Offline,
    Online,
}

/// What kind of document is fetched (config fetches send Ignition's
/// `Accept` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Config,
    Contents,
}

/// The `Accept` header Ignition 2.14 sends for configs.
pub const CONFIG_ACCEPT: &str = "application/vnd.coreos.ignition+json;version=3.4.0, */*;q=0.1";

/// Fetches resources with one set of client options.
pub struct Fetcher {
    network: Network,
    opts: HttpOptions,
    client: std::sync::OnceLock<Result<http::HttpClient, String>>,
}

impl Fetcher {
    /// A fetcher with default HTTP options.
    pub fn new(network: Network) -> Fetcher {
        Fetcher::with_options(network, HttpOptions::default())
    }

    /// A fetcher with explicit HTTP options.
    pub fn with_options(network: Network, opts: HttpOptions) -> Fetcher {
        Fetcher {
            network,
            opts,
            client: std::sync::OnceLock::new(),
        }
    }

    /// A fetcher configured from `ignition.{timeouts,proxy,security}`;
    /// certificate authorities are fetched (with `base`) and trusted.
    pub fn for_config(base: &Fetcher, cfg: &Config) -> Result<Fetcher, FetchError> {
        let mut opts = base.opts.clone();
        let t = &cfg.ignition.timeouts;
        if let Some(s) = t.http_response_headers.filter(|s| *s > 0) {
            opts.response_timeout = Duration::from_secs(s as u64);
        }
        if let Some(s) = t.http_total.filter(|s| *s > 0) {
            opts.total_timeout = Some(Duration::from_secs(s as u64));
        }
        let p = &cfg.ignition.proxy;
        opts.http_proxy = p.http_proxy.clone().or(opts.http_proxy);
        opts.https_proxy = p.https_proxy.clone().or(opts.https_proxy);
        opts.no_proxy.extend(p.no_proxy.iter().cloned());
        for ca in &cfg.ignition.security.tls.certificate_authorities {
            let pem = base
                .fetch(ca, Purpose::Contents)
                .map_err(|e| FetchError::CertificateAuthority {
                    url: redact(ca.source.as_deref().unwrap_or("")),
                    reason: e.to_string(),
                })?;
            opts.certificate_authorities.push(pem);
        }
        Ok(Fetcher::with_options(base.network, opts))
    }

    /// The options in effect (for tests and the dry-run plan).
    pub fn options(&self) -> &HttpOptions {
        &self.opts
    }

    /// Fetch a resource: source, headers, decompression, verification.
    pub fn fetch(&self, r: &Resource, purpose: Purpose) -> Result<Vec<u8>, FetchError> {
        let url = r.source.as_deref().ok_or(FetchError::NoSource)?;
        let shown = redact(url);
        let expected = r.verification.hash.as_deref().map(verify::parse).transpose()?;
        let headers: Vec<(String, String)> = r
            .http_headers
            .iter()
            .filter_map(|h| h.value.clone().map(|v| (h.name.clone(), v)))
            .collect();
        let raw = self.fetch_url(url, &headers, purpose)?;
        let data = match r.compression.as_deref().unwrap_or("") {
            "" => raw,
            "gzip" => {
                let mut out = Vec::new();
                flate2::read::MultiGzDecoder::new(&raw[..])
                    .read_to_end(&mut out)
                    .map_err(|source| FetchError::Decompress {
                        url: shown.clone(),
                        compression: "gzip".into(),
                        source,
                    })?;
                out
            }
            other => {
                return Err(FetchError::UnknownCompression {
                    url: shown,
                    compression: other.to_string(),
                });
            }
        };
        if let Some(h) = &expected {
            verify::check(h, &data, &shown)?;
        }
        Ok(data)
    }

    /// Fetch the raw bytes behind a URL.
    pub fn fetch_url(&self, url: &str, headers: &[(String, String)], purpose: Purpose) -> Result<Vec<u8>, FetchError> {
        let shown = redact(url);
        let scheme = url
            .split_once(':')
            .map(|x| x.0.to_ascii_lowercase())
            .unwrap_or_default();
        match scheme.as_str() {
            "data" => boxcar_config::dataurl::decode(url).map_err(FetchError::DataUrl),
            "" => Ok(Vec::new()), // an empty source means empty contents (units, empty files)
            "http" | "https" | "tftp" if self.network == Network::Offline => {
                Err(FetchError::NeedsNetwork { url: shown })
            }
            "http" | "https" => {
                let mut hs: Vec<(String, String)> = Vec::new();
                if purpose == Purpose::Config {
                    hs.push(("Accept".into(), CONFIG_ACCEPT.into()));
                }
                hs.extend(headers.iter().cloned());
                self.client()?.get(url, &shown, &hs)
            }
            "tftp" => {
                let rest = url.get(5..).unwrap_or("").trim_start_matches('/');
                let (auth, path) = rest.split_once('/').unwrap_or((rest, ""));
                let (host, port) = match auth.rsplit_once(':') {
                    Some((h, p)) => (
                        h,
                        p.parse::<u16>().map_err(|_| FetchError::BadUrl {
                            url: shown.clone(),
                            reason: "bad port".into(),
                        })?,
                    ),
                    None => (auth, 69),
                };
                tftp::read(host, port, path, self.opts.response_timeout)
                    .map_err(|reason| FetchError::Tftp { url: shown, reason })
            }
            "s3" | "gs" | "arn" => Err(FetchError::UnsupportedScheme { scheme }),
            _ => Err(FetchError::BadUrl {
                url: shown,
                reason: "invalid url scheme".into(),
            }),
        }
    }

    fn client(&self) -> Result<&http::HttpClient, FetchError> {
        self.client
            .get_or_init(|| http::HttpClient::new(self.opts.clone()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| FetchError::Client(e.clone()))
    }
}

/// Whether fetching `url` needs the network.
pub fn needs_network(url: &str) -> bool {
    let l = url.to_ascii_lowercase();
    l.starts_with("http:") || l.starts_with("https:") || l.starts_with("tftp:")
}

/// Whether `url` is a `data:` URL (case-insensitive scheme).
pub fn is_data_url(url: &str) -> bool {
    url.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data:"))
}

/// A URL as it may appear in logs and errors: `data:` URLs are reduced to
/// their length, userinfo and query strings (tokens, signatures) dropped.
pub fn redact(url: &str) -> String {
    if is_data_url(url) {
        return format!("data:<{} bytes>", url.len());
    }
    let (main, had_query) = match url.find(['?', '#']) {
        Some(i) => (&url[..i], true),
        None => (url, false),
    };
    let main = match main.split_once("://") {
        Some((scheme, rest)) => {
            let (auth, path) = rest
                .split_once('/')
                .map(|(a, p)| (a, format!("/{p}")))
                .unwrap_or((rest, String::new()));
            let auth = auth.rsplit_once('@').map(|x| x.1).unwrap_or(auth);
            format!("{scheme}://{auth}{path}")
        }
        None => main.to_string(),
    };
    if had_query {
        format!("{main}?<redacted>")
    } else {
        main
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boxcar_config::model::Verification;

    #[test]
    fn redaction() {
        assert_eq!(redact("data:,secret"), "data:<12 bytes>");
        assert_eq!(redact("https://u:pw@h/p?token=x"), "https://h/p?<redacted>");
        assert_eq!(redact("http://h:8/a/b"), "http://h:8/a/b");
        assert_eq!(redact("dat\u{e9}x"), "dat\u{e9}x", "no panic on a char boundary");
    }

    #[test]
    fn data_gzip_and_verify() {
        let gz = boxcar_config::dataurl::gzip(b"hello\n");
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &gz);
        let r = Resource {
            source: Some(format!("data:;base64,{b64}")),
            compression: Some("gzip".into()),
            verification: Verification {
                hash: Some(format!(
                    "sha256-{}",
                    verify::digest(verify::HashAlgorithm::Sha256, b"hello\n")
                )),
            },
            ..Default::default()
        };
        let f = Fetcher::new(Network::Offline);
        assert_eq!(f.fetch(&r, Purpose::Contents).unwrap(), b"hello\n");
        let mut bad = r.clone();
        bad.verification.hash = Some(format!("sha256-{}", "0".repeat(64)));
        assert!(matches!(
            f.fetch(&bad, Purpose::Contents),
            Err(FetchError::HashMismatch { .. })
        ));
    }

    #[test]
    fn offline_refuses_network_and_cloud_schemes_are_explicit() {
        let f = Fetcher::new(Network::Offline);
        assert!(matches!(
            f.fetch_url("http://x/y", &[], Purpose::Contents),
            Err(FetchError::NeedsNetwork { .. })
        ));
        let f = Fetcher::new(Network::Online);
        let e = f.fetch_url("s3://bucket/key", &[], Purpose::Contents).unwrap_err();
        assert_eq!(e.to_string(), "s3:// sources are not supported on this platform");
    }
}
