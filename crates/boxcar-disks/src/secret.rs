//! Key material that must never reach a log: LUKS keys.

use std::fmt;
use std::io::Read;

/// Secret bytes. `Debug` prints a placeholder, the bytes are zeroed when
/// dropped, and there is deliberately no `Display` or `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    /// The key bytes, for writing them to a file with restrictive mode.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// A fresh key like Ignition's: 4096 random bytes, hex encoded (clevis
    /// rejects some binary key files, so Ignition settled on hex text).
    pub fn generate() -> std::io::Result<Self> {
        let mut raw = vec![0u8; 4096];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = Vec::with_capacity(raw.len() * 2);
        for b in &raw {
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        }
        raw.iter_mut().for_each(|b| *b = 0);
        Ok(Secret(out))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // Volatile so the zeroing is not optimised away.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_hex_and_distinct() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        assert_eq!(a.expose().len(), 8192);
        assert!(a.expose().iter().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Secret(<7 bytes redacted>)");
    }
}
