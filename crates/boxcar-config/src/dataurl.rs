//! RFC 2397 `data:` URLs: decoding with the same acceptance rules as the Go
//! library Ignition uses (so a config valid here is valid there), and
//! Butane's encoder, which picks the shortest of three encodings.

use base64::Engine;

/// Decode a `data:` URL into its bytes. Acceptance and error texts follow
/// the Go lexer Ignition uses (`missing media type slash`, `invalid data
/// character`, …), checked in the same order.
pub fn decode(url: &str) -> Result<Vec<u8>, String> {
    let rest = url.strip_prefix("data:").ok_or("missing data prefix")?;
    let b = rest.as_bytes();
    let mut i = 0;
    let at = |i: usize| b.get(i).copied();
    let err = |m: &str| Err(m.to_string());
    // Media type.
    match at(0) {
        None => return err("missing comma before data"),
        Some(b';' | b',') => {}
        Some(c) if is_token(c) => {
            let xtoken = (c == b'x' || c == b'X') && at(1) == Some(b'-');
            while let Some(c) = at(i) {
                if c == b'/' {
                    break;
                }
                if !is_token(c) {
                    return err("invalid character for media type");
                }
                i += 1;
            }
            if at(i).is_none() {
                return err("missing media type slash");
            }
            let t = &rest[..i];
            let known = ["text", "image", "audio", "video", "application", "message", "multipart"];
            if !xtoken && !known.iter().any(|k| t.starts_with(k)) {
                return err("invalid media type");
            }
            i += 1;
            loop {
                match at(i) {
                    None => return err("incomplete media type"),
                    Some(b';' | b',') => break,
                    Some(c) if is_token(c) => i += 1,
                    Some(_) => return err("invalid character for media subtype"),
                }
            }
        }
        Some(_) => return err("invalid character after data prefix"),
    }
    // Parameters, possibly ending in `;base64`.
    let mut base64 = false;
    while at(i) == Some(b';') {
        i += 1;
        match at(i) {
            None | Some(b'=' | b',') => return err("unterminated parameter sequence"),
            Some(c) if is_token(c) => {}
            Some(_) => return err("invalid character for parameter attribute"),
        }
        let a = i;
        loop {
            match at(i) {
                Some(b'=') => break,
                Some(b',') => {
                    if &rest[a..i] != "base64" {
                        return Err(format!("expected base64, got {}", &rest[a..i]));
                    }
                    base64 = true;
                    break;
                }
                None => return err("unterminated parameter sequence"),
                Some(c) if is_token(c) => i += 1,
                Some(_) => return err("invalid character for parameter attribute"),
            }
        }
        if base64 {
            break;
        }
        i += 1; // '='
        match at(i) {
            Some(b'"') => {
                i += 1;
                loop {
                    match at(i) {
                        None => return err("unclosed quoted string"),
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(c) if c.is_ascii() => i += 1,
                        Some(_) => return err("invalid character for parameter value"),
                    }
                }
                i += 1;
            }
            None => return err("missing comma before data"),
            Some(c) if is_token(c) => {
                let v = i;
                loop {
                    match at(i) {
                        Some(b';' | b',') => break,
                        None => return err("missing comma before data"),
                        Some(c) if is_token(c) => i += 1,
                        Some(_) => return err("invalid character for parameter value"),
                    }
                }
                unescape(&rest[v..i])?;
            }
            Some(_) => return err("invalid character for parameter value"),
        }
        match at(i) {
            Some(b';' | b',') => {}
            None => return err("missing comma before data"),
            Some(_) => return err("expected semicolon or comma"),
        }
    }
    if at(i) != Some(b',') {
        return err("missing comma before data");
    }
    let data = &rest[i + 1..];
    if base64 {
        if !data.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=\n".contains(&b)) {
            return err("invalid data character");
        }
        let clean: String = data.chars().filter(|&c| c != '\n').collect();
        base64::engine::general_purpose::STANDARD
            .decode(&clean)
            .map_err(|e| go_base64_error(&clean, e))
    } else {
        if !data.bytes().all(is_url_char) {
            return err("invalid data character");
        }
        unescape(data)
    }
}

/// Go reports the offset of the first bad quantum.
fn go_base64_error(data: &str, e: base64::DecodeError) -> String {
    let at = match e {
        base64::DecodeError::InvalidByte(i, _) => i,
        base64::DecodeError::InvalidLastSymbol(i, _) => i,
        _ => data.len() / 4 * 4,
    };
    let at = if data.len() % 4 != 0 { data.len() / 4 * 4 } else { at };
    format!("illegal base64 data at input byte {at}")
}

fn is_token(b: u8) -> bool {
    b.is_ascii() && !b.is_ascii_control() && b != b' ' && !b"()<>@,;:\\\"/[]?=".contains(&b)
}

fn is_url_char(b: u8) -> bool {
    b > 0x1f && b != 0x7f && b < 0x80 && !b" <>#\"{}|\\^[]`".contains(&b)
}

fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .ok_or("rfc2396: unexpected end of unescape sequence")?;
            let h = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .filter(|_| hex.iter().all(u8::is_ascii_hexdigit))
                .ok_or("rfc2396: invalid char 0x25 in unescape sequence")?;
            out.push(h);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// RFC 2396 escaping as Butane does it: unreserved bytes stay, the rest
/// become `%XX` (upper-case hex).
pub fn escape(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len());
    for &b in data {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// A generated data URL and the compression to declare next to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub url: String,
    /// `""` or `"gzip"`; always set so a parent config's compression is not
    /// inherited through a merge.
    pub compression: String,
}

/// Whether the encoder may gzip (never when the user already compressed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCompress {
    Allowed,
    Forbidden,
}

/// Butane's choice: the shortest of percent-escaped, base64, and
/// gzip+base64 (the latter charged 4 bytes for the `"gzip"` it needs).
pub fn encode(data: &[u8], compress: AutoCompress) -> Encoded {
    let plain = format!(",{}", escape(data));
    let b64 = format!(";base64,{}", base64::engine::general_purpose::STANDARD.encode(data));
    let mut best = if b64.len() < plain.len() { b64 } else { plain };
    let mut compression = String::new();
    if compress == AutoCompress::Allowed {
        let gz = format!(
            ";base64,{}",
            base64::engine::general_purpose::STANDARD.encode(gzip(data))
        );
        if gz.len() + 4 < best.len() {
            best = gz;
            compression = "gzip".into();
        }
    }
    Encoded {
        url: format!("data:{best}"),
        compression,
    }
}

/// Deterministic gzip at the best level (no timestamp, no file name).
///
/// The deflate state is kept per thread and reset between calls: Butane
/// configs gzip-probe every file, and allocating a fresh best-level
/// compressor each time dominated translation time.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    thread_local! {
        static DEFLATE: std::cell::RefCell<flate2::Compress> =
            std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::best(), false));
    }
    // Header: magic, deflate, no flags, mtime 0, "best" (2), OS unknown (255).
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255];
    out.reserve(data.len() / 2 + 64);
    DEFLATE.with(|d| {
        let mut d = d.borrow_mut();
        d.reset();
        loop {
            let consumed = d.total_in() as usize;
            let status = d
                .compress_vec(&data[consumed..], &mut out, flate2::FlushCompress::Finish)
                .expect("deflate into memory");
            if status == flate2::Status::StreamEnd {
                break;
            }
            out.reserve(out.capacity().max(1024));
        }
    });
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_ignition_accepts() {
        assert_eq!(decode("data:,hello%20world%0A").unwrap(), b"hello world\n");
        assert_eq!(decode("data:;base64,aGk=").unwrap(), b"hi");
        assert_eq!(decode("data:text/plain;charset=utf-8;base64,aGk=").unwrap(), b"hi");
        assert_eq!(decode("data:,").unwrap(), b"");
        assert_eq!(decode("data:,a b").unwrap_err(), "invalid data character");
        assert_eq!(
            decode("data:;base64,YQ").unwrap_err(),
            "illegal base64 data at input byte 0"
        );
        assert!(decode("data:hello").is_err());
        assert!(decode("data:,%zz").is_err());
        assert!(decode("data:foo/bar,x").is_err());
    }

    #[test]
    fn encoder_picks_the_shortest() {
        // Text stays readable.
        assert_eq!(encode(b"hello", AutoCompress::Allowed).url, "data:,hello");
        // A newline costs 3 bytes escaped: "a\n" → ",a%0A" (5) vs ";base64,YQo=" (12).
        assert_eq!(encode(b"a\n", AutoCompress::Allowed).url, "data:,a%0A");
        // Binary: base64 wins over %XX.
        // Four bytes escape shorter (13) than they encode (16)…
        assert_eq!(
            encode(&[0xff, 0xfe, 0xfd, 0xfc], AutoCompress::Allowed).url,
            "data:,%FF%FE%FD%FC"
        );
        // …but 30 binary bytes do not: 91 escaped vs 48 in base64.
        let bin: Vec<u8> = (0u8..30).map(|i| i.wrapping_mul(97) | 0x80).collect();
        assert!(encode(&bin, AutoCompress::Forbidden).url.starts_with("data:;base64,"));
        // Repetitive text: gzip wins, and says so.
        let big = "line of text\n".repeat(200);
        let mut round = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gzip(big.as_bytes())[..]), &mut round).unwrap();
        assert_eq!(round, big.as_bytes(), "gzip round-trips");
        let e = encode(big.as_bytes(), AutoCompress::Allowed);
        assert_eq!(e.compression, "gzip");
        let e2 = encode(big.as_bytes(), AutoCompress::Forbidden);
        assert_eq!(e2.compression, "");
        assert!(e2.url.starts_with("data:;base64,bGluZSBvZiB0ZXh0"), "{}", e2.url);
    }
}
