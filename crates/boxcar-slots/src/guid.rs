//! GPT GUIDs: textual form as everyone prints them, on-disk form in GPT's
//! mixed endianness (first three fields little endian).

use std::fmt;
use std::str::FromStr;

/// A GUID as it is written in text (`8484680c-9521-48c6-9c11-b0720656f69e`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The all-zero GUID marks an unused partition entry.
    pub const NIL: Guid = Guid([0; 16]);

    /// From GPT's on-disk byte order.
    pub fn from_disk(b: &[u8; 16]) -> Guid {
        let mut g = *b;
        g[0..4].reverse();
        g[4..6].reverse();
        g[6..8].reverse();
        Guid(g)
    }

    /// To GPT's on-disk byte order.
    pub fn to_disk(self) -> [u8; 16] {
        // The swap is its own inverse.
        Guid::from_disk(&self.0).0
    }

    /// Whether this is the nil GUID.
    pub fn is_nil(self) -> bool {
        self == Guid::NIL
    }

    /// A random (version 4) GUID, from the kernel's random source.
    pub fn random() -> std::io::Result<Guid> {
        use std::io::Read;
        let mut b = [0u8; 16];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Ok(Guid(b))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

/// A malformed textual GUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid GUID {0:?}")]
pub struct BadGuid(pub String);

impl FromStr for Guid {
    type Err = BadGuid;
    fn from_str(s: &str) -> Result<Guid, BadGuid> {
        let bad = || BadGuid(s.to_string());
        let parts: Vec<&str> = s.split('-').collect();
        let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
        if lens != [8, 4, 4, 4, 12] {
            return Err(bad());
        }
        let hex: String = parts.concat();
        let mut g = [0u8; 16];
        for (i, out) in g.iter_mut().enumerate() {
            *out = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
        }
        Ok(Guid(g))
    }
}

/// Parses a GUID constant; only for literals known to be valid.
pub(crate) const fn guid(s: &str) -> Guid {
    let b = s.as_bytes();
    let mut out = [0u8; 16];
    let (mut i, mut o) = (0, 0);
    while o < 16 {
        if b[i] == b'-' {
            i += 1;
            continue;
        }
        out[o] = hexval(b[i]) << 4 | hexval(b[i + 1]);
        i += 2;
        o += 1;
    }
    Guid(out)
}

const fn hexval(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("bad hex digit in GUID literal"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_disk_forms() {
        let g: Guid = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b".parse().unwrap();
        assert_eq!(g, guid("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"));
        assert_eq!(g.to_string(), "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
        assert_eq!(&g.to_disk()[..4], &[0x28, 0x73, 0x2a, 0xc1]);
        assert_eq!(Guid::from_disk(&g.to_disk()), g);
        assert!("c12a7328-f81f-11d2-ba4b-00a0c93ec93".parse::<Guid>().is_err());
        assert!("c12a7328f81f-11d2-ba4b-00a0c93ec93bb".parse::<Guid>().is_err());
        assert!("g12a7328-f81f-11d2-ba4b-00a0c93ec93b".parse::<Guid>().is_err());
        let r = Guid::random().unwrap();
        assert_eq!(r.0[6] >> 4, 4);
    }
}
