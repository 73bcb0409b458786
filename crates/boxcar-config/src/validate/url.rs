//! URL and resource checks: schemes per spec version, data URLs, S3 ARNs,
//! hashes, compression, HTTP headers, proxies.

use crate::dataurl;
use crate::model::Resource;
use crate::path::Path;
use crate::report::Report;
use crate::version::SpecVersion;

/// A URL Go's `net/url` would refuse ("unable to parse url").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadUrl;

/// The parts of a URL the checks need, split the way Go's `net/url` does.
#[derive(Debug, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// Lower-cased.
    pub scheme: String,
    pub opaque: &'a str,
    pub host: &'a str,
    pub query: &'a str,
}

/// Parse like Go's `url.Parse`, with its failure cases (control bytes, bad
/// percent escapes, bad host characters, non-numeric ports).
pub fn parse_url(s: &str) -> Result<UrlParts<'_>, BadUrl> {
    if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(BadUrl);
    }
    let (rest, frag) = match s.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (s, None),
    };
    if let Some(f) = frag {
        check_escapes(f)?;
    }
    let (scheme, rest) = match rest.find(':') {
        Some(0) => return Err(BadUrl),
        Some(i)
            if rest.as_bytes()[0].is_ascii_alphabetic()
                && rest[..i]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            (rest[..i].to_ascii_lowercase(), &rest[i + 1..])
        }
        _ => (String::new(), rest),
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !scheme.is_empty() && !rest.starts_with('/') {
        return Ok(UrlParts {
            scheme,
            opaque: rest,
            host: "",
            query,
        });
    }
    let (host, path) = match rest.strip_prefix("//") {
        Some(a) => {
            let end = a.find('/').unwrap_or(a.len());
            (&a[..end], &a[end..])
        }
        None => ("", rest),
    };
    let hostport = host.rsplit_once('@').map_or(host, |(_, h)| h);
    check_host(hostport)?;
    check_escapes(path)?;
    Ok(UrlParts {
        scheme,
        opaque: "",
        host: hostport,
        query,
    })
}

fn check_escapes(s: &str) -> Result<(), BadUrl> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            match b.get(i + 1..i + 3) {
                Some(h) if h.iter().all(u8::is_ascii_hexdigit) => i += 3,
                _ => return Err(BadUrl),
            }
        } else {
            i += 1;
        }
    }
    Ok(())
}

fn check_host(h: &str) -> Result<(), BadUrl> {
    let (name, port) = if let Some(rest) = h.strip_prefix('[') {
        let end = rest.find(']').ok_or(BadUrl)?;
        (&rest[..end], rest[end + 1..].strip_prefix(':'))
    } else {
        match h.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (h, None),
        }
    };
    if let Some(p) = port {
        if !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadUrl);
        }
    }
    check_escapes(name)?;
    let ok = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80 || b"-._~!$&'()*+,;=:[]<>\"%".contains(&b);
    if name.bytes().all(ok) {
        Ok(())
    } else {
        Err(BadUrl)
    }
}

/// Which URL schemes a spec version accepts for resources.
pub fn scheme_allowed(scheme: &str, v: SpecVersion) -> bool {
    match scheme {
        "http" | "https" | "tftp" | "s3" | "data" => true,
        "gs" => v >= SpecVersion::V3_2,
        "arn" => v >= SpecVersion::V3_4,
        _ => false,
    }
}

/// Validate one URL as a resource source; `Err` is Ignition's message.
pub fn validate_url(s: &str, v: SpecVersion) -> Result<(), String> {
    let u = parse_url(s).map_err(|_| "unable to parse url".to_string())?;
    if !scheme_allowed(&u.scheme, v) {
        return Err("invalid url scheme".into());
    }
    let version_id_empty = || {
        u.query
            .split('&')
            .any(|kv| kv == "versionId" || kv == "versionId=" || kv.starts_with("versionId=&"))
    };
    match u.scheme.as_str() {
        "s3" if version_id_empty() => Err("invalid S3 object VersionId".into()),
        "arn" => validate_arn(s, version_id_empty()),
        "data" => dataurl::decode(s).map(|_| ()),
        _ => Ok(()),
    }
}

fn validate_arn(s: &str, empty_version: bool) -> Result<(), String> {
    let full = s.split(['?', '#']).next().unwrap_or(s);
    let parts: Vec<&str> = full.splitn(6, ':').collect();
    let bad = || Err("invalid S3 ARN format".to_string());
    if parts.len() < 6 || parts[2] != "s3" {
        return bad();
    }
    let segments = full.split('/').count();
    if (parts[5].starts_with("accesspoint/") && segments < 3) || segments < 2 {
        return bad();
    }
    if empty_version {
        return Err("invalid S3 object VersionId".into());
    }
    Ok(())
}

/// `sha512-<128 hex>` or, from 3.1, `sha256-<64 hex>`.
pub fn validate_hash(h: &str, v: SpecVersion) -> Result<(), &'static str> {
    let (func, sum) = h.split_once('-').ok_or("malformed hash specifier")?;
    let len = match func {
        "sha512" => 128,
        "sha256" if v >= SpecVersion::V3_1 => 64,
        _ => return Err("unrecognized hash function"),
    };
    if sum.len() != len {
        return Err("incorrect size for hash sum");
    }
    Ok(())
}

/// All checks of one resource at `p`.
pub fn check_resource(r: &mut Report, res: &Resource, p: &Path, v: SpecVersion) {
    if let Some(c) = &res.compression {
        if !c.is_empty() && c != "gzip" {
            r.error(p.key("compression"), "invalid compression method").help =
                Some(format!("{c:?} is not supported; the only compression is \"gzip\""));
        }
    }
    if res.verification.hash.is_some() && res.source.is_none() {
        r.error(
            p.keys(&["verification", "hash"]),
            "source must be specified if verification is specified",
        );
    } else if let Some(h) = &res.verification.hash {
        if let Err(m) = validate_hash(h, v) {
            r.error(p.keys(&["verification", "hash"]), m);
        }
    }
    if let Some(src) = res.source.as_deref().filter(|s| !s.is_empty()) {
        if let Err(m) = validate_url(src, v) {
            r.error(p.key("source"), m);
        }
    }
    if !res.http_headers.is_empty() {
        let scheme = res.source.as_deref().and_then(|s| parse_url(s).ok()).map(|u| u.scheme);
        match scheme.as_deref() {
            Some("http" | "https") => {}
            Some(_) if res.source.as_deref().is_some_and(|s| !s.is_empty()) => {
                r.error(p.key("httpHeaders"), "cannot use HTTP headers with this source scheme");
            }
            _ => {
                r.error(p.key("httpHeaders"), "unable to parse url");
            }
        }
        for (i, h) in res.http_headers.iter().enumerate() {
            let hp = p.key("httpHeaders").index(i);
            if h.name.is_empty() {
                r.error(hp.key("name"), "HTTP header name can't be empty");
            }
            if h.value.as_deref() == Some("") {
                r.error(hp.key("value"), "unable to parse HTTP header");
            }
        }
    }
}

/// A resource that must name a source (merge, replace when set, CAs).
pub fn check_required_source(r: &mut Report, res: &Resource, p: &Path, v: SpecVersion) {
    match res.source.as_deref() {
        None | Some("") => {
            r.error(p.clone(), "source is required");
        }
        Some(s) => {
            if let Err(m) = validate_url(s, v) {
                r.error(p.clone(), m);
            }
        }
    }
}

/// Proxies must be http(s); a plain-HTTP proxy for HTTPS traffic is a warning.
pub fn check_proxy(r: &mut Report, url: Option<&str>, p: Path, http_ok: bool) {
    let Some(s) = url else { return };
    match parse_url(s) {
        Err(_) => {
            r.error(p, "unable to parse url");
        }
        Ok(u) if u.scheme != "http" && u.scheme != "https" => {
            r.error(p, "proxies must be http(s)");
        }
        Ok(u) if u.scheme == "http" && !http_ok => {
            r.warning(p, "insecure plaintext HTTP proxy specified for HTTPS resources");
        }
        Ok(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SpecVersion::*;

    #[test]
    fn schemes_by_version() {
        assert!(validate_url("https://example.com/a", V3_0).is_ok());
        assert_eq!(validate_url("gs://b/o", V3_1).unwrap_err(), "invalid url scheme");
        assert!(validate_url("gs://b/o", V3_2).is_ok());
        assert_eq!(
            validate_url("arn:aws:s3:::b/k", V3_3).unwrap_err(),
            "invalid url scheme"
        );
        assert!(validate_url("arn:aws:s3:::b/k", V3_4).is_ok());
        assert_eq!(
            validate_url("arn:aws:iam:::b/k", V3_4).unwrap_err(),
            "invalid S3 ARN format"
        );
        assert_eq!(validate_url("ftp://x/y", V3_4).unwrap_err(), "invalid url scheme");
        assert_eq!(validate_url("http://x/%zz", V3_4).unwrap_err(), "unable to parse url");
        assert_eq!(validate_url("http://a b/", V3_4).unwrap_err(), "unable to parse url");
        assert_eq!(validate_url("http://h:port/", V3_4).unwrap_err(), "unable to parse url");
        assert_eq!(
            validate_url("s3://b/k?versionId=", V3_4).unwrap_err(),
            "invalid S3 object VersionId"
        );
        assert_eq!(validate_url("/etc/x", V3_4).unwrap_err(), "invalid url scheme");
        assert!(validate_url("HTTP://example.com", V3_4).is_ok());
    }

    #[test]
    fn hashes() {
        let h512 = format!("sha512-{}", "a".repeat(128));
        let h256 = format!("sha256-{}", "a".repeat(64));
        assert!(validate_hash(&h512, SpecVersion::V3_0).is_ok());
        assert_eq!(
            validate_hash(&h256, SpecVersion::V3_0),
            Err("unrecognized hash function")
        );
        assert!(validate_hash(&h256, SpecVersion::V3_1).is_ok());
        assert_eq!(
            validate_hash("sha512-abc", SpecVersion::V3_1),
            Err("incorrect size for hash sum")
        );
        assert_eq!(
            validate_hash("sha512", SpecVersion::V3_1),
            Err("malformed hash specifier")
        );
        assert_eq!(
            validate_hash("md5-00", SpecVersion::V3_1),
            Err("unrecognized hash function")
        );
    }
}
