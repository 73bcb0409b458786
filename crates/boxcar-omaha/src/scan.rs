//! A fast reader for the plain XML that Omaha clients actually send, with [`walk`] as the
//! fallback for everything else.
//!
//! Every update check the server answers is parsed, so parsing is a large share of the cost of a
//! check. update_engine writes a small, regular document: an XML declaration, elements,
//! whitespace between them, and double-quoted attributes that need no unescaping. [`scan`] reads
//! exactly that subset in one pass over the bytes and feeds the same [`Visitor`] as [`walk`]
//! does. Anything outside the subset — comments, processing instructions, DTDs, CDATA, entity
//! or character references, namespace prefixes, text, a limit exceeded, any malformation — makes
//! it give up with [`Unsupported`] before it reports the document, and the caller re-reads the
//! body with the general reader, which accepts the rest of XML or produces the error message.
//!
//! So the subset never needs its own error messages, and its one obligation is equivalence: for
//! every body `scan` accepts, `walk` makes the same visitor calls. The `omaha_request` fuzz
//! target checks that on arbitrary input ([`crate::differential`]).
//!
//! [`walk`]: crate::parse::walk

use crate::parse::{Limits, Visitor};
use std::borrow::Cow;

/// The body is outside the subset [`scan`] reads; read it with [`crate::parse::walk`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unsupported;

type Scan<T> = Result<T, Unsupported>;

/// Reads `body` if it lies in the plain subset, calling `v` as [`crate::parse::walk`] would.
///
/// On [`Unsupported`] the visitor may have seen part of the document: discard it.
pub(crate) fn scan(body: &[u8], limits: &Limits, v: &mut impl Visitor) -> Scan<()> {
    if body.len() > limits.max_body {
        return Err(Unsupported);
    }
    let text = std::str::from_utf8(body).map_err(|_| Unsupported)?;
    let mut c = Cursor { text, at: 0 };
    c.declaration()?;
    // Names of the open elements; the depth is their number.
    let mut open: Vec<&str> = Vec::with_capacity(8);
    let mut attrs: Vec<(&str, Cow<'_, str>)> = Vec::with_capacity(16);
    let (mut seen_root, mut count) = (false, 0usize);
    loop {
        c.skip_space();
        match c.peek() {
            None => break,
            Some(b'<') => c.at += 1,
            // Text (update_engine writes none) goes through the general reader.
            Some(_) => return Err(Unsupported),
        }
        match c.peek() {
            Some(b'/') => {
                c.at += 1;
                let name = c.name()?;
                c.expect(b'>')?;
                if open.pop() != Some(name) {
                    return Err(Unsupported);
                }
                v.close(open.len());
            }
            Some(_) => {
                let name = c.name()?;
                let empty = c.attributes(limits, &mut attrs)?;
                count += 1;
                if count > limits.max_elements || open.len() >= limits.max_depth || (seen_root && open.is_empty()) {
                    return Err(Unsupported);
                }
                seen_root = true;
                let depth = open.len();
                v.open(depth, name, &attrs);
                if empty {
                    v.close(depth);
                } else {
                    open.push(name);
                }
            }
            None => return Err(Unsupported),
        }
    }
    if !open.is_empty() || !seen_root {
        return Err(Unsupported);
    }
    Ok(())
}

/// Position in the document. It only stops on ASCII bytes, so every slice it takes is valid UTF-8.
struct Cursor<'x> {
    text: &'x str,
    at: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// What a byte may be in a name: [`NAME_START`] (a letter or `_`), [`NAME_REST`] (also a digit,
/// `-` or `.`), or neither. A table because names are most of what the reader looks at.
const NAME_BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphabetic() || c == b'_' {
            NAME_START
        } else if c.is_ascii_digit() || c == b'-' || c == b'.' {
            NAME_REST
        } else {
            0
        };
        b += 1;
    }
    t
};
const NAME_START: u8 = 2;
const NAME_REST: u8 = 1;

fn is_name_start(b: u8) -> bool {
    NAME_BYTES[b as usize] == NAME_START
}

fn is_name_byte(b: u8) -> bool {
    NAME_BYTES[b as usize] != 0
}

impl<'x> Cursor<'x> {
    fn bytes(&self) -> &'x [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    /// Skips whitespace; whether there was any.
    fn skip_space(&mut self) -> bool {
        let start = self.at;
        while self.peek().is_some_and(is_space) {
            self.at += 1;
        }
        self.at > start
    }

    fn expect(&mut self, b: u8) -> Scan<()> {
        if self.peek() != Some(b) {
            return Err(Unsupported);
        }
        self.at += 1;
        Ok(())
    }

    /// An element or attribute name without a namespace prefix.
    fn name(&mut self) -> Scan<&'x str> {
        let start = self.at;
        if !self.peek().is_some_and(is_name_start) {
            return Err(Unsupported);
        }
        let rest = &self.bytes()[start + 1..];
        self.at = start + 1 + rest.iter().position(|&b| !is_name_byte(b)).unwrap_or(rest.len());
        Ok(&self.text[start..self.at])
    }

    /// `<?xml version="1.0" encoding="UTF-8"?>` at the very start, made only of the characters
    /// such a declaration needs (the general reader does not check its content either).
    fn declaration(&mut self) -> Scan<()> {
        let b = self.bytes();
        if !b.starts_with(b"<?xml") || !b.get(5).copied().is_some_and(is_space) {
            return Ok(());
        }
        let end = memchr::memmem::find(&b[5..], b"?>").ok_or(Unsupported)? + 5;
        let plain = |c: &u8| c.is_ascii_alphanumeric() || is_space(*c) || b"=\"'.-_".contains(c);
        if !b[5..end].iter().all(plain) {
            return Err(Unsupported);
        }
        self.at = end + 2;
        Ok(())
    }

    /// The attributes of a start tag up to and including its `>` or `/>`, into `out`; whether the
    /// element is empty (`/>`). Values are taken as written: one with `&` (which would need
    /// unescaping) or `<` goes to the general reader, as does a repeated name.
    fn attributes(&mut self, limits: &Limits, out: &mut Vec<(&'x str, Cow<'x, str>)>) -> Scan<bool> {
        out.clear();
        loop {
            let spaced = self.skip_space();
            match self.peek() {
                Some(b'>') => {
                    self.at += 1;
                    return Ok(false);
                }
                Some(b'/') => {
                    self.at += 1;
                    self.expect(b'>')?;
                    return Ok(true);
                }
                Some(_) if spaced => {
                    let key = self.name()?;
                    self.expect(b'=')?;
                    let quote = self.peek().filter(|q| matches!(q, b'"' | b'\'')).ok_or(Unsupported)?;
                    let start = self.at + 1;
                    let len = memchr::memchr(quote, &self.bytes()[start..]).ok_or(Unsupported)?;
                    let value = &self.text[start..start + len];
                    if len > limits.max_attribute_len
                        || memchr::memchr2(b'&', b'<', value.as_bytes()).is_some()
                        || out.iter().any(|(k, _)| *k == key)
                    {
                        return Err(Unsupported);
                    }
                    out.push((key, Cow::Borrowed(value)));
                    self.at = start + len + 1;
                }
                _ => return Err(Unsupported),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{walk, Attrs};

    /// Records visitor calls so that the two readers can be compared.
    #[derive(Default, Debug, PartialEq)]
    struct Trace(Vec<String>);

    impl Visitor for Trace {
        fn open(&mut self, depth: usize, name: &str, attrs: &Attrs<'_>) {
            self.0.push(format!("open {depth} {name} {attrs:?}"));
        }
        fn close(&mut self, depth: usize) {
            self.0.push(format!("close {depth}"));
        }
    }

    fn fast(doc: &str) -> Option<Trace> {
        let mut t = Trace::default();
        scan(doc.as_bytes(), &Limits::default(), &mut t).ok().map(|()| t)
    }

    fn general(doc: &str) -> Option<Trace> {
        let mut t = Trace::default();
        walk(doc.as_bytes(), &Limits::default(), &mut t).ok().map(|()| t)
    }

    #[test]
    fn update_engine_documents_take_the_fast_path_with_the_same_calls() {
        let doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<request protocol=\"3.0\">\n  \
                   <os version=\"Chateau\"></os>\n  <app appid=\"{x}\" machinealias=\"\" >\n    \
                   <ping active='1'/>\n    <event eventtype=\"3\" eventresult=\"2\"></event>\n  </app>\n</request>\n";
        let t = fast(doc).expect("plain document read by the fast path");
        assert_eq!(Some(&t), general(doc).as_ref());
        assert_eq!(t.0.len(), 10, "{t:?}");
        assert_eq!(t.0[3], r#"open 1 app [("appid", "{x}"), ("machinealias", "")]"#);
    }

    #[test]
    fn anything_outside_the_subset_is_left_to_the_general_reader() {
        for doc in [
            "<!DOCTYPE r [<!ENTITY a \"b\">]><r/>",
            "<r><!-- c --></r>",
            "<r a=\"&amp;\"/>",
            "<r a=\"&#60;\"/>",
            "<r>text</r>",
            "<r><![CDATA[x]]></r>",
            "<?xml-stylesheet x?><r/>",
            "<r/><?pi?>",
            "<ns:r/>",
            "<r ns:a=\"1\"/>",
            "<r a = \"1\"/>",
            "<r a=\"1\"b=\"2\"/>",
            "<r a=\"1\" a=\"2\"/>",
            "<r a=1/>",
            "<r a=\"1/>",
            "<r></s>",
            "<r></r >",
            "<r>",
            "</r>",
            "<r/><r/>",
            "",
            "   ",
            "\u{feff}<r/>",
            "<r / >",
            "<r a=\"<\"/>",
            "<?xml version=\"1.0\" standalone=\"yes\"?>",
            "<?xml version=\"1.0\"?><!DOCTYPE r><r/>",
        ] {
            assert_eq!(fast(doc), None, "{doc:?}");
        }
    }

    #[test]
    fn limits_send_the_document_to_the_general_reader_which_reports_them() {
        let tight = Limits {
            max_elements: 2,
            max_attribute_len: 3,
            max_depth: 2,
            max_body: 40,
        };
        for doc in [
            "<r><a/><b/></r>",
            "<r a=\"1234\"/>",
            "<r><a><b/></a></r>",
            &format!("<r a=\"{}\"/>", "x".repeat(40)),
        ] {
            let mut t = Trace::default();
            assert_eq!(scan(doc.as_bytes(), &tight, &mut t), Err(Unsupported), "{doc}");
            assert!(walk(doc.as_bytes(), &tight, &mut Trace::default()).is_err(), "{doc}");
        }
    }

    #[test]
    fn single_quotes_empty_elements_and_odd_values_read_alike() {
        for doc in [
            "<r a='x\"y' b=\"it's\"/>",
            "<r\n\ta=\"multi\nline\"\r\n/>",
            "<r a=\"&gt\" />",
            "<r><a/><b></b></r>",
            "<r a=\"é ü 🚂\"></r>",
            "<r a=\">\"></r>",
        ] {
            let g = general(doc);
            let f = fast(doc);
            assert!(f.is_none() || f == g, "{doc:?}: {f:?} vs {g:?}");
        }
        assert!(fast("<r a='x\"y' b=\"it's\"/>").is_some());
        assert!(fast("<r a=\">\"></r>").is_some());
    }
}
