//! A small JSON parser that keeps positions.
//!
//! `serde_json` cannot tell where a value was, and Ignition users deserve
//! `line:col` on every error. Positions follow Ignition's reporting so the
//! two tools point at the same place: a scalar is reported at its first byte
//! (the opening quote of a string), an object or list one column after its
//! opening bracket, a key at its opening quote. Columns count bytes.

use crate::tree::{Entry, Node, Pos, Value};

/// Nesting deeper than this is rejected instead of exhausting the stack.
pub const MAX_DEPTH: usize = 128;

/// A syntax error with the position of the offending byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {} col {}: {message}", pos.line, pos.col)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Parse one JSON document.
pub fn parse(input: &[u8]) -> Result<Node, SyntaxError> {
    let text = std::str::from_utf8(input).map_err(|e| {
        let good = &input[..e.valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
        let col = good.iter().rev().take_while(|&&b| b != b'\n').count() as u32 + 1;
        SyntaxError {
            pos: Pos::new(line, col),
            message: "input is not valid UTF-8".into(),
        }
    })?;
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        line: 1,
        line_start: 0,
    };
    p.skip_ws();
    if p.i >= p.s.len() {
        return Err(p.err("not a config (empty)"));
    }
    let node = p.value(0)?;
    p.skip_ws();
    if p.i < p.s.len() {
        return Err(p.err("unexpected data after the top-level value"));
    }
    Ok(node)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    line: u32,
    line_start: usize,
}

impl<'a> Parser<'a> {
    fn pos(&self) -> Pos {
        Pos::new(self.line, (self.i - self.line_start) as u32 + 1)
    }

    fn err(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            pos: self.pos(),
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' => self.i += 1,
                b'\n' => {
                    self.i += 1;
                    self.line += 1;
                    self.line_start = self.i;
                }
                _ => break,
            }
        }
    }

    fn unexpected(&self, what: &str) -> SyntaxError {
        match self.peek() {
            None => self.err(format!("unexpected end of input, expected {what}")),
            Some(c) => {
                let ch = std::str::from_utf8(&self.s[self.i..])
                    .ok()
                    .and_then(|r| r.chars().next())
                    .unwrap_or(c as char);
                self.err(format!("expected {what}, found {ch:?}"))
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let start = self.pos();
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.list(depth),
            Some(b'"') => Ok(Node::new(Value::Str(self.string()?), start)),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.unexpected("a value")),
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Node, SyntaxError> {
        let start = self.pos();
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(Node::new(v, start))
        } else {
            Err(self.unexpected("a value"))
        }
    }

    fn object(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        self.i += 1;
        let pos = self.pos(); // one past the brace, as Ignition reports
        let mut entries = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Node::new(Value::Map(entries), pos));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                if self.peek() == Some(b'}') && !entries.is_empty() {
                    return Err(self.err("trailing comma before '}'"));
                }
                return Err(self.unexpected("a string key"));
            }
            let key_pos = self.pos();
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.unexpected("':' after the key"));
            }
            self.i += 1;
            self.skip_ws();
            let value = self.value(depth + 1)?;
            entries.push(Entry {
                written: key.clone(),
                key,
                key_pos,
                value,
            });
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Node::new(Value::Map(entries), pos));
                }
                _ => return Err(self.unexpected("',' or '}'")),
            }
        }
    }

    fn list(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        self.i += 1;
        let pos = self.pos();
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Node::new(Value::List(items), pos));
        }
        loop {
            self.skip_ws();
            if self.peek() == Some(b']') {
                return Err(self.err("trailing comma before ']'"));
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Node::new(Value::List(items), pos));
                }
                _ => return Err(self.unexpected("',' or ']'")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err("invalid \\u escape in string"))?;
        self.i += 4;
        Ok(h)
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let start = self.pos();
        self.i += 1;
        let mut out = String::new();
        loop {
            let run = self.i;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.i += 1;
            }
            // The input is valid UTF-8 and we only stop at ASCII bytes.
            out.push_str(std::str::from_utf8(&self.s[run..self.i]).unwrap_or_default());
            match self.peek() {
                None => {
                    return Err(SyntaxError {
                        pos: start,
                        message: "unterminated string".into(),
                    })
                }
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let e = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi) && self.s[self.i..].starts_with(b"\\u") {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                                } else {
                                    self.i = save;
                                    None
                                }
                            } else {
                                char::from_u32(hi)
                            };
                            // Lone surrogates become U+FFFD, as in Go.
                            out.push(c.unwrap_or('\u{FFFD}'));
                        }
                        _ => {
                            self.i -= 1;
                            return Err(self.err("invalid escape in string"));
                        }
                    }
                }
                Some(b'\n') => {
                    return Err(SyntaxError {
                        pos: start,
                        message: "unterminated string (raw newline in string)".into(),
                    })
                }
                Some(_) => return Err(self.err("control character in string")),
            }
        }
    }

    fn number(&mut self) -> Result<Node, SyntaxError> {
        let pos = self.pos();
        let start = self.i;
        let digits = |p: &mut Self| {
            let b = p.i;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            p.i - b
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let int_start = self.i;
        if digits(self) == 0 {
            return Err(self.unexpected("a digit"));
        }
        if self.s[int_start] == b'0' && self.i - int_start > 1 {
            return Err(SyntaxError {
                pos,
                message: "invalid number: leading zeros are not allowed in JSON (modes are decimal: 0644 is 420)"
                    .into(),
            });
        }
        let mut integral = true;
        if self.peek() == Some(b'.') {
            self.i += 1;
            integral = false;
            if digits(self) == 0 {
                return Err(self.unexpected("a digit after '.'"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            integral = false;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.unexpected("a digit in the exponent"));
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("0");
        let value = match (integral, text.parse::<i64>()) {
            (true, Ok(n)) => Value::Int(n),
            _ => Value::Float(text.parse::<f64>().unwrap_or(f64::INFINITY)),
        };
        Ok(Node::new(value, pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_ignition() {
        // Ignition reports `"rel"` at its quote and the object one past `{`.
        let n = parse(b"{\"a\":[\n  {\"path\":\"rel\"}]}").unwrap();
        assert_eq!(n.pos, Pos::new(1, 2));
        let list = n.get("a").unwrap();
        assert_eq!(list.pos, Pos::new(1, 7));
        let Value::List(items) = &list.value else { panic!() };
        assert_eq!(items[0].pos, Pos::new(2, 4));
        assert_eq!(items[0].get("path").unwrap().pos, Pos::new(2, 11));
        assert_eq!(items[0].entries().unwrap()[0].key_pos, Pos::new(2, 4));
    }

    #[test]
    fn numbers() {
        let n = parse(b"[1, -2, 1.5, 1e3, 99999999999999999999]").unwrap();
        let Value::List(v) = n.value else { panic!() };
        let vals: Vec<_> = v.into_iter().map(|n| n.value).collect();
        assert_eq!(vals[0], Value::Int(1));
        assert_eq!(vals[1], Value::Int(-2));
        assert_eq!(vals[2], Value::Float(1.5));
        assert_eq!(vals[3], Value::Float(1000.0));
        assert!(matches!(vals[4], Value::Float(_)));
    }

    #[test]
    fn errors_name_the_place() {
        let e = parse(b"{\"a\": 1,}").unwrap_err();
        assert_eq!((e.pos, e.message.contains("trailing comma")), (Pos::new(1, 9), true));
        let e = parse(b"{\"a\": \"x}").unwrap_err();
        assert_eq!(e.pos, Pos::new(1, 7));
        assert!(e.message.contains("unterminated string"));
        let e = parse(b"{\"mode\": 0644}").unwrap_err();
        assert!(e.message.contains("leading zeros"));
        assert!(parse(b"").unwrap_err().message.contains("empty"));
        let deep = "[".repeat(MAX_DEPTH + 5);
        assert!(parse(deep.as_bytes()).unwrap_err().message.contains("nesting"));
    }

    #[test]
    fn escapes_and_duplicates() {
        let n = parse(br#"{"k":"a\u00e9\ud83d\ude00\n","k":"last"}"#).unwrap();
        assert_eq!(n.get("k").unwrap().as_str(), Some("last"));
        assert_eq!(n.entries().unwrap()[0].value.as_str(), Some("a\u{e9}\u{1F600}\n"));
    }
}
