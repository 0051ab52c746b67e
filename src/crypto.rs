//! Encryption at rest for personal data (AES-256-GCM) and hashing helpers.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Version prefix of stored ciphertexts, so the format or key can change later.
const CIPHERTEXT_PREFIX: &str = "v1:";
const NONCE_BYTES: usize = 12;

#[derive(Clone)]
pub struct FieldCipher {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FieldCipher(..)")
    }
}

impl FieldCipher {
    pub fn from_base64(encoded: &str) -> Result<Self, String> {
        let bytes = BASE64
            .decode(encoded.trim())
            .map_err(|_| "the key must be base64 (e.g. `openssl rand -base64 32`)".to_string())?;
        if bytes.len() != 32 {
            return Err(format!(
                "the key must be 32 bytes (AES-256), got {}",
                bytes.len()
            ));
        }
        Ok(Self {
            cipher: Aes256Gcm::new_from_slice(&bytes).map_err(|e| e.to_string())?,
        })
    }

    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        BASE64.encode(key)
    }

    /// Encrypts `plaintext`, binding it to `context` (table, column and row id) so a ciphertext
    /// copied into another row or column fails to decrypt.
    pub fn encrypt(&self, plaintext: &str, context: &str) -> Result<String, EncryptionError> {
        let combined = self.encrypt_bytes(plaintext.as_bytes(), context)?;
        Ok(format!("{CIPHERTEXT_PREFIX}{}", BASE64.encode(combined)))
    }

    pub fn decrypt(&self, stored: &str, context: &str) -> anyhow::Result<String> {
        let encoded = stored
            .strip_prefix(CIPHERTEXT_PREFIX)
            .ok_or_else(|| anyhow::anyhow!("unknown ciphertext format for {context}"))?;
        let plaintext = self.decrypt_bytes(&BASE64.decode(encoded)?, context)?;
        Ok(String::from_utf8(plaintext)?)
    }

    /// Encrypts a file: nonce ‖ ciphertext, bound to `context` like [`FieldCipher::encrypt`].
    pub fn encrypt_bytes(
        &self,
        plaintext: &[u8],
        context: &str,
    ) -> Result<Vec<u8>, EncryptionError> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| EncryptionError(context.to_string()))?;
        let mut combined = nonce.to_vec();
        combined.extend_from_slice(&ciphertext);
        Ok(combined)
    }

    pub fn decrypt_bytes(&self, combined: &[u8], context: &str) -> anyhow::Result<Vec<u8>> {
        if combined.len() < NONCE_BYTES {
            anyhow::bail!("ciphertext too short for {context}");
        }
        let (nonce, ciphertext) = combined.split_at(NONCE_BYTES);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| {
                anyhow::anyhow!("cannot decrypt {context}: wrong key or altered ciphertext")
            })
    }
}

/// AES-GCM refused to encrypt (only beyond its 64 GiB message limit).
#[derive(Debug, thiserror::Error)]
#[error("cannot encrypt {0}")]
pub struct EncryptionError(String);

/// Where the embedded default keeps a generated key: beside the database file, named by
/// `suffix` (`.key` for personal data, `.signing-key` for reports).
pub fn key_file_beside(database_path: &Path, suffix: &str) -> PathBuf {
    let mut name = database_path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Reads the key file, or creates it with a new key (readable by the owner only).
pub fn load_or_create_key_file(path: &Path) -> anyhow::Result<(String, bool)> {
    if path.exists() {
        return Ok((std::fs::read_to_string(path)?.trim().to_string(), false));
    }
    let key = FieldCipher::generate_key();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    options.open(path)?.write_all(key.as_bytes())?;
    Ok((key, true))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_the_context() {
        let cipher = FieldCipher::from_base64(&FieldCipher::generate_key()).unwrap();
        let stored = cipher
            .encrypt("1990-02-03", "users.date_of_birth:u1")
            .unwrap();
        assert!(!stored.contains("1990"));
        assert_eq!(
            cipher.decrypt(&stored, "users.date_of_birth:u1").unwrap(),
            "1990-02-03"
        );
        assert!(cipher.decrypt(&stored, "users.date_of_birth:u2").is_err());
        let other = FieldCipher::from_base64(&FieldCipher::generate_key()).unwrap();
        assert!(other.decrypt(&stored, "users.date_of_birth:u1").is_err());
    }

    #[test]
    fn rejects_keys_of_the_wrong_size() {
        assert!(FieldCipher::from_base64(&BASE64.encode([1u8; 16])).is_err());
        assert!(FieldCipher::from_base64("not base64!").is_err());
    }
}
