//! Idempotency keys: a repeated mutating request returns the first response instead of acting twice.

pub mod store;

use serde::Serialize;

use crate::crypto::sha256_hex;
use crate::error::{AppError, FieldError};

/// The longest key accepted; keys are opaque to hashgate (UUIDs are typical).
const MAX_KEY_LENGTH: usize = 255;

pub fn validate_key(key: &str) -> Result<(), AppError> {
    let printable = key.chars().all(|c| c.is_ascii_graphic());
    if key.is_empty() || key.len() > MAX_KEY_LENGTH || !printable {
        return Err(invalid_key());
    }
    Ok(())
}

pub fn invalid_key() -> AppError {
    AppError::Validation(vec![FieldError::new(
        "Idempotency-Key",
        "invalid_header",
        format!("must be 1 to {MAX_KEY_LENGTH} printable ASCII characters without spaces"),
    )])
}

/// What identifies "the same request": method, path and the parsed body.
pub fn fingerprint(method: &str, path: &str, body: &impl Serialize) -> String {
    let body = serde_json::to_string(body).unwrap_or_default();
    sha256_hex(format!("{method} {path}\n{body}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_printable_and_bounded() {
        assert!(validate_key("8f0e6c1a-2b7d-4c55-9a43-0c9f3f2b1e77").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("has space").is_err());
        assert!(validate_key(&"k".repeat(256)).is_err());
    }

    #[test]
    fn fingerprints_differ_by_body_and_path() {
        let a = fingerprint("POST", "/v1/users", &serde_json::json!({"a": 1}));
        assert_eq!(
            a,
            fingerprint("POST", "/v1/users", &serde_json::json!({"a": 1}))
        );
        assert_ne!(
            a,
            fingerprint("POST", "/v1/users", &serde_json::json!({"a": 2}))
        );
        assert_ne!(
            a,
            fingerprint("POST", "/v1/tokens", &serde_json::json!({"a": 1}))
        );
    }
}
