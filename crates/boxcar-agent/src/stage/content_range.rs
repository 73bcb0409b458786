//! `Content-Range` of a 206 answer (RFC 9110 §14.4): network input, parsed
//! strictly and without panics. Pure and dependency-free, so the fuzz
//! target includes this file directly.

/// A parsed `Content-Range: bytes START-END/TOTAL` (inclusive end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    pub start: u64,
    pub end: u64,
    /// `None` for `*` (unknown total).
    pub total: Option<u64>,
}

/// Decimal digits only (no sign, no spaces), at most 20, as a u64.
pub fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a `Content-Range` header value of a 206 response (RFC 9110
/// §14.4). Network input: never panics; refuses anything but a satisfied
/// byte range with `start <= end < total`.
pub fn parse_content_range(v: &str) -> Option<ContentRange> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end) = (digits(start)?, digits(end)?);
    let total = if total == "*" { None } else { Some(digits(total)?) };
    if start > end || total.is_some_and(|t| end >= t) {
        return None;
    }
    Some(ContentRange { start, end, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_table() {
        let ok =
            |s, start, end, total| assert_eq!(parse_content_range(s), Some(ContentRange { start, end, total }), "{s}");
        ok("bytes 0-0/1", 0, 0, Some(1));
        ok("bytes 100-199/1000", 100, 199, Some(1000));
        ok(" bytes 5-9/* ", 5, 9, None);
        ok(
            "bytes 0-18446744073709551614/18446744073709551615",
            0,
            u64::MAX - 1,
            Some(u64::MAX),
        );
        for bad in [
            "",
            "bytes",
            "bytes */1000",
            "bytes 5-4/10",
            "bytes 0-10/10",
            "bytes -1-5/10",
            "bytes +1-5/10",
            "bytes 1-5",
            "bytes 1-5/",
            "bytes 1 -5/10",
            "items 1-5/10",
            "bytes 0x1-5/10",
            "bytes 0-99999999999999999999999/1",
            "bytes 0-18446744073709551616/*",
            "bytes 1-2/3/4",
            "bytes ١-2/3",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad:?}");
        }
    }
}
