//! The platform's report signature: Ed25519 over a file's bytes. The public key is published at a
//! well-known URL, so anyone holding a report can check it without trusting the server that
//! handed it out.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use rand::RngCore;
use serde::Serialize;
use utoipa::ToSchema;

/// The current signing key, and the public halves of the keys it replaced: a report names the
/// key that signed it, and stays verifiable after a rotation.
pub struct ReportSigner {
    key: SigningKey,
    retired: Vec<VerifyingKey>,
}

impl std::fmt::Debug for ReportSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReportSigner({})", self.key_id())
    }
}

/// What the well-known URL publishes: the current key, and the retired keys older reports name.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublishedKeys {
    #[serde(flatten)]
    pub current: PublicKey,
    pub retired: Vec<PublicKey>,
}

/// The published half of a signing key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicKey {
    pub algorithm: &'static str,
    /// The first 16 hex digits of the SHA-256 of the raw public key: names the key in reports.
    pub key_id: String,
    /// The raw 32-byte public key, base64.
    pub public_key: String,
    /// The same key as a PEM SubjectPublicKeyInfo, for `openssl pkeyutl -verify`.
    pub pem: String,
}

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the raw key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl ReportSigner {
    /// A signer from the base64 of a 32-byte seed.
    pub fn from_base64(encoded: &str) -> Result<ReportSigner, String> {
        let seed = decode_32(encoded, "exactly 32 bytes (e.g. `openssl rand -base64 32`)")?;
        Ok(ReportSigner {
            key: SigningKey::from_bytes(&seed),
            retired: Vec::new(),
        })
    }

    /// Adds the public keys of earlier rotations (base64 of 32 bytes), for verification only.
    pub fn with_retired(mut self, public_keys: &[String]) -> Result<ReportSigner, String> {
        self.retired = public_keys
            .iter()
            .enumerate()
            .map(|(position, key)| {
                parse_public_key(key).map_err(|message| format!("key {}: {message}", position + 1))
            })
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// A new random seed, base64.
    pub fn generate_key() -> String {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        STANDARD.encode(seed)
    }

    /// The signature of `bytes`, base64.
    pub fn sign(&self, bytes: &[u8]) -> String {
        STANDARD.encode(self.key.sign(bytes).to_bytes())
    }

    pub fn key_id(&self) -> String {
        key_id_of(&self.key.verifying_key())
    }

    pub fn public_keys(&self) -> PublishedKeys {
        PublishedKeys {
            current: published(&self.key.verifying_key()),
            retired: self.retired.iter().map(published).collect(),
        }
    }

    /// Whether `signature` (base64) is the signature of `bytes` by the key named `key_id`, current
    /// or retired.
    pub fn verifies(&self, key_id: &str, bytes: &[u8], signature: &str) -> bool {
        let current = self.key.verifying_key();
        let Some(key) = std::iter::once(&current)
            .chain(&self.retired)
            .find(|key| key_id_of(key) == key_id)
        else {
            return false;
        };
        let Ok(raw) = STANDARD.decode(signature) else {
            return false;
        };
        let Ok(signature) = Signature::from_slice(&raw) else {
            return false;
        };
        key.verify(bytes, &signature).is_ok()
    }
}

/// A public key from the base64 of its 32 raw bytes.
pub fn parse_public_key(encoded: &str) -> Result<VerifyingKey, String> {
    let raw = decode_32(encoded, "a 32-byte Ed25519 public key")?;
    VerifyingKey::from_bytes(&raw).map_err(|_| "is not a valid Ed25519 public key".to_string())
}

/// 32 bytes from base64; `what` says what they should be.
fn decode_32(encoded: &str, what: &str) -> Result<[u8; 32], String> {
    STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| format!("must be the base64 of {what}"))
}

fn published(verifying: &VerifyingKey) -> PublicKey {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(verifying.as_bytes());
    PublicKey {
        algorithm: "Ed25519",
        key_id: key_id_of(verifying),
        public_key: STANDARD.encode(verifying.as_bytes()),
        pem: format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(der)
        ),
    }
}

fn key_id_of(key: &VerifyingKey) -> String {
    crate::crypto::sha256_hex(key.as_bytes())[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_the_signed_bytes_and_key() {
        let signer = ReportSigner::from_base64(&ReportSigner::generate_key()).unwrap();
        let signature = signer.sign(b"report bytes");
        let id = signer.key_id();
        assert!(signer.verifies(&id, b"report bytes", &signature));
        assert!(!signer.verifies(&id, b"report bytez", &signature));
        let other = ReportSigner::from_base64(&ReportSigner::generate_key()).unwrap();
        assert!(!other.verifies(&other.key_id(), b"report bytes", &signature));
        assert!(!signer.verifies(&id, b"report bytes", "not base64!"));
        assert!(!signer.verifies("0000000000000000", b"report bytes", &signature));
    }

    #[test]
    fn a_retired_key_still_verifies_what_it_signed_and_is_published() {
        let old = ReportSigner::from_base64(&ReportSigner::generate_key()).unwrap();
        let signature = old.sign(b"last quarter's report");
        let old_public = old.public_keys().current;
        let rotated = ReportSigner::from_base64(&ReportSigner::generate_key())
            .unwrap()
            .with_retired(std::slice::from_ref(&old_public.public_key))
            .unwrap();
        assert!(rotated.verifies(&old.key_id(), b"last quarter's report", &signature));
        assert!(!rotated.verifies(&rotated.key_id(), b"last quarter's report", &signature));
        let published = rotated.public_keys();
        assert_eq!(published.current.key_id, rotated.key_id());
        assert_eq!(published.retired.len(), 1);
        assert_eq!(published.retired[0].key_id, old.key_id());
        assert!(rotated.with_retired(&["c2hvcnQ=".to_string()]).is_err());
    }

    #[test]
    fn the_key_must_be_32_bytes_of_base64() {
        assert!(ReportSigner::from_base64("c2hvcnQ=").is_err());
        assert!(ReportSigner::from_base64("%%%").is_err());
    }

    #[test]
    fn the_pem_carries_the_raw_public_key() {
        let signer = ReportSigner::from_base64(&ReportSigner::generate_key()).unwrap();
        let published = signer.public_keys().current;
        let body: String = published
            .pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let der = STANDARD.decode(body).unwrap();
        assert_eq!(der.len(), 44);
        assert_eq!(
            STANDARD.encode(&der[12..]),
            published.public_key,
            "the SPKI ends with the raw key"
        );
    }
}
