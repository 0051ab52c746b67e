//! The platform's report signature: Ed25519 over a file's bytes. The public key is published at a
//! well-known URL, so anyone holding a report can check it without trusting the server that
//! handed it out.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use rand::RngCore;
use serde::Serialize;
use utoipa::ToSchema;

pub struct ReportSigner {
    key: SigningKey,
}

impl std::fmt::Debug for ReportSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReportSigner({})", self.key_id())
    }
}

/// The published half of the signing key.
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
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| "must be base64 (e.g. `openssl rand -base64 32`)".to_string())?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "must be the base64 of exactly 32 bytes".to_string())?;
        Ok(ReportSigner {
            key: SigningKey::from_bytes(&seed),
        })
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

    pub fn public_key(&self) -> PublicKey {
        let verifying = self.key.verifying_key();
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(verifying.as_bytes());
        PublicKey {
            algorithm: "Ed25519",
            key_id: self.key_id(),
            public_key: STANDARD.encode(verifying.as_bytes()),
            pem: format!(
                "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                STANDARD.encode(der)
            ),
        }
    }

    /// Whether `signature` (base64) is this key's signature of `bytes`.
    pub fn verifies(&self, bytes: &[u8], signature: &str) -> bool {
        let Ok(raw) = STANDARD.decode(signature) else {
            return false;
        };
        let Ok(signature) = Signature::from_slice(&raw) else {
            return false;
        };
        self.key.verifying_key().verify(bytes, &signature).is_ok()
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
        assert!(signer.verifies(b"report bytes", &signature));
        assert!(!signer.verifies(b"report bytez", &signature));
        let other = ReportSigner::from_base64(&ReportSigner::generate_key()).unwrap();
        assert!(!other.verifies(b"report bytes", &signature));
        assert!(!signer.verifies(b"report bytes", "not base64!"));
    }

    #[test]
    fn the_key_must_be_32_bytes_of_base64() {
        assert!(ReportSigner::from_base64("c2hvcnQ=").is_err());
        assert!(ReportSigner::from_base64("%%%").is_err());
    }

    #[test]
    fn the_pem_carries_the_raw_public_key() {
        let signer = ReportSigner::from_base64(&ReportSigner::generate_key()).unwrap();
        let published = signer.public_key();
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
