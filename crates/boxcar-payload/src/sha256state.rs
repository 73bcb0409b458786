//! A SHA-256 whose intermediate state can be saved and restored, so a
//! download interrupted in the middle of a section can resume without
//! re-reading what was already hashed. `sha2` keeps its state private, but
//! exposes the compression function; this wraps it with the standard
//! padding (FIPS 180-4 §5.1.1) and a serialisable state.

use serde::{Deserialize, Serialize};
use sha2::digest::generic_array::GenericArray;

const BLOCK: usize = 64;
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// Running SHA-256: the eight state words, the byte count and the bytes of
/// an incomplete block. Serialises to JSON for the agent's checkpoint journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sha256State {
    /// Chaining state after the last whole block.
    h: [u32; 8],
    /// Bytes hashed so far, including `partial`.
    len: u64,
    /// Bytes of the current, incomplete block (fewer than 64), hex.
    #[serde(with = "hex_bytes")]
    partial: Vec<u8>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

impl Default for Sha256State {
    fn default() -> Self {
        Self::new()
    }
}

type Block = GenericArray<u8, sha2::digest::consts::U64>;

/// Runs the compression function over whole 64-byte blocks, copying them
/// in batches into `GenericArray`s (a memcpy is far cheaper than the hash,
/// and it keeps this module free of `unsafe`).
fn compress(h: &mut [u32; 8], blocks: &[u8]) {
    debug_assert_eq!(blocks.len() % BLOCK, 0);
    const BATCH: usize = 64;
    let mut batch: [Block; BATCH] = std::array::from_fn(|_| Block::default());
    for chunk in blocks.chunks(BLOCK * BATCH) {
        let n = chunk.len() / BLOCK;
        for (dst, src) in batch.iter_mut().zip(chunk.chunks_exact(BLOCK)) {
            dst.copy_from_slice(src);
        }
        sha2::compress256(h, &batch[..n]);
    }
}

impl Sha256State {
    /// The state of a fresh hash.
    pub fn new() -> Self {
        Sha256State {
            h: IV,
            len: 0,
            partial: Vec::with_capacity(BLOCK),
        }
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a restored state is internally consistent (the partial block
    /// is shorter than a block and agrees with the length).
    pub fn is_consistent(&self) -> bool {
        self.partial.len() < BLOCK && self.len % BLOCK as u64 == self.partial.len() as u64
    }

    /// Hashes `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if !self.partial.is_empty() {
            let take = (BLOCK - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() < BLOCK {
                return;
            }
            let block = std::mem::take(&mut self.partial);
            compress(&mut self.h, &block);
            self.partial = block;
            self.partial.clear();
        }
        let whole = data.len() / BLOCK * BLOCK;
        if whole > 0 {
            compress(&mut self.h, &data[..whole]);
        }
        self.partial.extend_from_slice(&data[whole..]);
    }

    /// The digest of everything hashed so far (the state is not consumed).
    pub fn finalize(&self) -> [u8; 32] {
        let mut h = self.h;
        let mut tail = self.partial.clone();
        tail.push(0x80);
        while tail.len() % BLOCK != BLOCK - 8 {
            tail.push(0);
        }
        tail.extend_from_slice(&(self.len.wrapping_mul(8)).to_be_bytes());
        compress(&mut h, &tail);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(h) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// The digest as lower-case hex.
    pub fn finalize_hex(&self) -> String {
        hex::encode(self.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + i / 7) as u8).collect()
    }

    #[test]
    fn known_vectors() {
        assert_eq!(
            Sha256State::new().finalize_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut s = Sha256State::new();
        s.update(b"abc");
        assert_eq!(
            s.finalize_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn equals_sha2_for_many_lengths_and_split_points() {
        let all = data(4 * BLOCK + 300);
        for len in (0..=200).chain([255, 256, 257, 300, 511, 512, 513, 4 * BLOCK + 300]) {
            let d = &all[..len];
            let want = hex::encode(Sha256::digest(d));
            let mut one = Sha256State::new();
            one.update(d);
            assert_eq!(one.finalize_hex(), want, "len {len}");
            for split in [0, 1, 55, 56, 63, 64, 65, 127, len / 2, len] {
                let split = split.min(len);
                let mut a = Sha256State::new();
                a.update(&d[..split]);
                // Round trip the state through JSON, as the journal does.
                let saved = serde_json::to_string(&a).unwrap();
                let mut b: Sha256State = serde_json::from_str(&saved).unwrap();
                assert!(b.is_consistent());
                b.update(&d[split..]);
                assert_eq!(b.finalize_hex(), want, "len {len} split {split}");
                assert_eq!(b.len(), len as u64);
            }
        }
    }

    #[test]
    fn inconsistent_states_are_detected() {
        let mut s = Sha256State::new();
        s.update(&data(70));
        assert!(s.is_consistent());
        s.len = 71;
        assert!(!s.is_consistent());
    }
}
