//! Ed25519 key files in the standard PEM encodings (PKCS#8 private key,
//! SPKI public key), so keys interoperate with openssl and HSM tooling.

use crate::PayloadError;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes};
use ed25519_dalek::{SigningKey, VerifyingKey};
use std::io::Read;
use std::path::Path;

pub use ed25519_dalek::{SigningKey as PrivateKey, VerifyingKey as PublicKey};

/// A fresh key pair from the kernel's random source.
pub fn generate() -> std::io::Result<SigningKey> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    Ok(SigningKey::from_bytes(&seed))
}

fn key_err(path: &Path, why: impl ToString) -> PayloadError {
    PayloadError::Key {
        path: path.into(),
        why: why.to_string(),
    }
}

/// Writes the private key (mode 0600, refusing to overwrite) and the public key.
pub fn save(key: &SigningKey, private: &Path, public: &Path) -> Result<(), PayloadError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // PKCS#8 v1 (seed only): what openssl writes and reads for Ed25519.
    let pem = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(Default::default())
    .map_err(|e| key_err(private, e))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(private)
        .map_err(|e| key_err(private, e))?;
    f.write_all(pem.as_bytes()).map_err(|e| key_err(private, e))?;
    let pubpem = key
        .verifying_key()
        .to_public_key_pem(Default::default())
        .map_err(|e| key_err(public, e))?;
    std::fs::write(public, pubpem).map_err(|e| key_err(public, e))
}

/// Loads a PKCS#8 PEM private key.
pub fn load_private(path: &Path) -> Result<SigningKey, PayloadError> {
    let pem = std::fs::read_to_string(path).map_err(|e| key_err(path, e))?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|e| key_err(path, e))
}

/// Loads an SPKI PEM public key (the node's trusted key in /usr).
pub fn load_public(path: &Path) -> Result<VerifyingKey, PayloadError> {
    let pem = std::fs::read_to_string(path).map_err(|e| key_err(path, e))?;
    VerifyingKey::from_public_key_pem(&pem).map_err(|e| key_err(path, e))
}
