//! Encryption at rest for personal data (AES-256-GCM) and hashing helpers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of a stored text written before key ids: tried with every configured key.
const LEGACY_PREFIX: &str = "v1:";
/// Prefix of a stored text that names its key: `v2:<key id>:<base64>`.
const KEYED_PREFIX: &str = "v2:";
/// Marks an encrypted file that names its key: magic ‖ key id ‖ nonce ‖ ciphertext.
const KEYED_MAGIC: &[u8; 4] = b"HGE2";
const NONCE_BYTES: usize = 12;
const KEY_ID_BYTES: usize = 4;

/// One AES-256-GCM key and its id (the first four bytes of the SHA-256 of the key), so a stored
/// value names the key that wrote it without revealing anything about it.
#[derive(Clone)]
struct Key {
    id: [u8; KEY_ID_BYTES],
    cipher: Aes256Gcm,
}

impl Key {
    fn from_base64(encoded: &str) -> Result<Key, String> {
        let bytes = BASE64
            .decode(encoded.trim())
            .map_err(|_| "the key must be base64 (e.g. `openssl rand -base64 32`)".to_string())?;
        if bytes.len() != 32 {
            return Err(format!(
                "the key must be 32 bytes (AES-256), got {}",
                bytes.len()
            ));
        }
        let digest = Sha256::digest(&bytes);
        let mut id = [0u8; KEY_ID_BYTES];
        id.copy_from_slice(&digest[..KEY_ID_BYTES]);
        Ok(Key {
            id,
            cipher: Aes256Gcm::new_from_slice(&bytes).map_err(|e| e.to_string())?,
        })
    }

    fn decrypt(&self, nonce_and_ciphertext: &[u8], context: &str) -> Option<Vec<u8>> {
        if nonce_and_ciphertext.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = nonce_and_ciphertext.split_at(NONCE_BYTES);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .ok()
    }
}

/// The personal-data keyring: the current key encrypts; retired keys (after a rotation) only
/// decrypt what was written under them, because append-only evidence is never rewritten.
#[derive(Clone)]
pub struct FieldCipher {
    current: Key,
    retired: Arc<[Key]>,
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FieldCipher(current key {})", self.key_id())
    }
}

impl FieldCipher {
    pub fn from_base64(encoded: &str) -> Result<Self, String> {
        Ok(Self {
            current: Key::from_base64(encoded)?,
            retired: Arc::new([]),
        })
    }

    /// Adds the keys of earlier rotations, for decryption only.
    pub fn with_retired(self, retired: &[String]) -> Result<Self, String> {
        let retired = retired
            .iter()
            .enumerate()
            .map(|(position, key)| {
                Key::from_base64(key).map_err(|message| format!("key {}: {message}", position + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            current: self.current,
            retired: retired.into(),
        })
    }

    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        BASE64.encode(key)
    }

    /// The current key's id, hex: stored values written now name it.
    pub fn key_id(&self) -> String {
        hex::encode(self.current.id)
    }

    /// The ids of the retired keys still configured, hex.
    pub fn retired_key_ids(&self) -> Vec<String> {
        self.retired.iter().map(|key| hex::encode(key.id)).collect()
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.current).chain(self.retired.iter())
    }

    fn key(&self, id: &[u8]) -> Option<&Key> {
        self.keys().find(|key| key.id == id)
    }

    /// Encrypts `plaintext`, binding it to `context` (table, column and row id) so a ciphertext
    /// copied into another row or column fails to decrypt.
    pub fn encrypt(&self, plaintext: &str, context: &str) -> Result<String, EncryptionError> {
        let sealed = self.seal(plaintext.as_bytes(), context)?;
        Ok(format!(
            "{KEYED_PREFIX}{}:{}",
            hex::encode(self.current.id),
            BASE64.encode(sealed)
        ))
    }

    pub fn decrypt(&self, stored: &str, context: &str) -> anyhow::Result<String> {
        let plaintext = if let Some(rest) = stored.strip_prefix(KEYED_PREFIX) {
            let (id, encoded) = rest
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("malformed ciphertext for {context}"))?;
            let key = hex::decode(id)
                .ok()
                .and_then(|id| self.key(&id))
                .ok_or_else(|| unknown_key(id, context))?;
            key.decrypt(&BASE64.decode(encoded)?, context)
                .ok_or_else(|| altered(context))?
        } else if let Some(encoded) = stored.strip_prefix(LEGACY_PREFIX) {
            let sealed = BASE64.decode(encoded)?;
            self.keys()
                .find_map(|key| key.decrypt(&sealed, context))
                .ok_or_else(|| altered(context))?
        } else {
            anyhow::bail!("unknown ciphertext format for {context}");
        };
        Ok(String::from_utf8(plaintext)?)
    }

    /// Encrypts a file: magic ‖ key id ‖ nonce ‖ ciphertext, bound to `context` like
    /// [`FieldCipher::encrypt`].
    pub fn encrypt_bytes(
        &self,
        plaintext: &[u8],
        context: &str,
    ) -> Result<Vec<u8>, EncryptionError> {
        let mut combined = KEYED_MAGIC.to_vec();
        combined.extend_from_slice(&self.current.id);
        combined.extend(self.seal(plaintext, context)?);
        Ok(combined)
    }

    pub fn decrypt_bytes(&self, combined: &[u8], context: &str) -> anyhow::Result<Vec<u8>> {
        let header = KEYED_MAGIC.len() + KEY_ID_BYTES;
        if combined.len() >= header && combined.starts_with(KEYED_MAGIC) {
            let id = &combined[KEYED_MAGIC.len()..header];
            if let Some(plaintext) = self
                .key(id)
                .and_then(|key| key.decrypt(&combined[header..], context))
            {
                return Ok(plaintext);
            }
        }
        // Written before key ids (nonce ‖ ciphertext): the authentication tag tells the key.
        self.keys()
            .find_map(|key| key.decrypt(combined, context))
            .ok_or_else(|| altered(context))
    }

    /// nonce ‖ ciphertext under the current key.
    fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, EncryptionError> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .current
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
}

fn unknown_key(id: &str, context: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{context} was encrypted under key {id}, which is not configured \
         (add it to encryption_retired_keys)"
    )
}

fn altered(context: &str) -> anyhow::Error {
    anyhow::anyhow!("cannot decrypt {context}: wrong key or altered ciphertext")
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
    fn a_rotated_keyring_reads_what_every_configured_key_wrote() {
        let old_key = FieldCipher::generate_key();
        let old = FieldCipher::from_base64(&old_key).unwrap();
        let text = old.encrypt("P1234567", "kyc:a1").unwrap();
        let file = old.encrypt_bytes(b"passport scan", "doc:d1").unwrap();
        let legacy = format!(
            "v1:{}",
            BASE64.encode(old.seal(b"1990-02-03", "dob:u1").unwrap())
        );
        let legacy_file = old.seal(b"old scan", "doc:d0").unwrap();

        let rotated = FieldCipher::from_base64(&FieldCipher::generate_key())
            .unwrap()
            .with_retired(std::slice::from_ref(&old_key))
            .unwrap();
        assert_ne!(rotated.key_id(), old.key_id());
        assert_eq!(rotated.retired_key_ids(), vec![old.key_id()]);
        assert_eq!(rotated.decrypt(&text, "kyc:a1").unwrap(), "P1234567");
        assert_eq!(
            rotated.decrypt_bytes(&file, "doc:d1").unwrap(),
            b"passport scan"
        );
        assert_eq!(rotated.decrypt(&legacy, "dob:u1").unwrap(), "1990-02-03");
        assert_eq!(
            rotated.decrypt_bytes(&legacy_file, "doc:d0").unwrap(),
            b"old scan"
        );
        // New values are written under the new key, which the old keyring cannot read.
        let fresh = rotated.encrypt("P7654321", "kyc:a2").unwrap();
        assert!(fresh.starts_with(&format!("v2:{}:", rotated.key_id())));
        assert!(old.decrypt(&fresh, "kyc:a2").is_err());

        // Without the retired key, its values are refused with the key's id named.
        let forgotten = FieldCipher::from_base64(&FieldCipher::generate_key()).unwrap();
        let error = forgotten.decrypt(&text, "kyc:a1").unwrap_err().to_string();
        assert!(error.contains(&old.key_id()), "{error}");
        assert!(forgotten.decrypt_bytes(&file, "doc:d1").is_err());
    }

    #[test]
    fn rejects_keys_of_the_wrong_size() {
        assert!(FieldCipher::from_base64(&BASE64.encode([1u8; 16])).is_err());
        assert!(FieldCipher::from_base64("not base64!").is_err());
    }
}
