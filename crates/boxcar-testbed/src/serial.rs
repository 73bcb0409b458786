//! Scanning the serial console log for markers while QEMU writes it.
//!
//! QEMU appends the guest's serial output to a file; the scanner reads what
//! is new, splits it into lines (`\r\n` or `\n`; firmware writes partial
//! lines and ANSI escapes, which are dropped) and matches markers as
//! substrings of whole lines.

use crate::error::{Result, TestbedError};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Turns a byte stream into complete lines, keeping the unfinished tail.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes; returns the lines completed by them, without `\r\n`.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            lines.push(clean(&line));
        }
        lines
    }

    /// The unfinished last line, if any.
    pub fn pending(&self) -> String {
        clean(&self.pending)
    }
}

/// Lossy text of one console line without line endings, control characters
/// and CSI escape sequences (systemd's colours, firmware's cursor moves:
/// `ESC [` parameters, then a final byte in `@`..`~`).
fn clean(b: &[u8]) -> String {
    let text = String::from_utf8_lossy(b);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            let mut rest = chars.clone();
            if rest.next() == Some('[') {
                chars = rest;
                for p in chars.by_ref() {
                    if ('@'..='~').contains(&p) {
                        break;
                    }
                }
            }
        } else if !c.is_control() || c == '\t' {
            out.push(c);
        }
    }
    out
}

/// Reads a growing log file from a position.
#[derive(Debug, Default)]
pub struct LogCursor {
    pos: u64,
    lines: LineSplitter,
}

impl LogCursor {
    /// Starts at `pos` bytes into the file.
    pub fn at(pos: u64) -> Self {
        Self {
            pos,
            lines: LineSplitter::default(),
        }
    }

    /// Lines completed since the last call (none if the file is missing yet).
    pub fn poll(&mut self, path: &Path) -> Result<Vec<String>> {
        let mut f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(TestbedError::io("reading", path)(e)),
        };
        f.seek(SeekFrom::Start(self.pos))
            .map_err(TestbedError::io("reading", path))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).map_err(TestbedError::io("reading", path))?;
        self.pos += buf.len() as u64;
        Ok(self.lines.feed(&buf))
    }

    /// The unfinished last line.
    pub fn pending(&self) -> String {
        self.lines.pending()
    }
}

/// The last `n` lines of a log file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return format!("({} unreadable)", path.display());
    };
    let mut s = LineSplitter::default();
    let mut lines = s.feed(&bytes);
    let p = s.pending();
    if !p.is_empty() {
        lines.push(p);
    }
    let start = lines.len().saturating_sub(n);
    let mut out = lines[start..].join("\n");
    if out.is_empty() {
        out = "(empty)".into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn splits_crlf_and_keeps_partial_lines() {
        let mut s = LineSplitter::default();
        assert_eq!(s.feed(b"Booting from ROM..\x1b[2J"), Vec::<String>::new());
        assert_eq!(s.feed(b"BOXCAR_MARK up\r\nsec"), ["Booting from ROM..BOXCAR_MARK up"]);
        assert_eq!(s.pending(), "sec");
        assert_eq!(s.feed(b"ond\n"), ["second"]);
    }

    #[test]
    fn colours_go_and_text_stays() {
        let mut s = LineSplitter::default();
        assert_eq!(
            s.feed("[\x1b[0;32m  OK  \x1b[0m] Welcome to \x1b[1mBoxcar\x1b[0m \u{e9}\x07[x]\n".as_bytes()),
            ["[  OK  ] Welcome to Boxcar \u{e9}[x]"]
        );
        // A lone ESC (not a CSI sequence) is dropped like any control character.
        assert_eq!(s.feed(b"a\x1bb\n"), ["ab"]);
    }

    #[test]
    fn cursor_reads_only_new_bytes_and_tail_limits() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("serial.log");
        let mut c = LogCursor::at(0);
        assert!(c.poll(&p).unwrap().is_empty());
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(b"a\nb\nc").unwrap();
        assert_eq!(c.poll(&p).unwrap(), ["a", "b"]);
        f.write_all(b"\nd\n").unwrap();
        assert_eq!(c.poll(&p).unwrap(), ["c", "d"]);
        assert_eq!(tail(&p, 2), "c\nd");
        assert!(tail(&dir.path().join("none"), 2).contains("unreadable"));
    }
}
