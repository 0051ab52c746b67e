//! The append-only, hash-chained audit log: who did what, to what, when and why.

pub mod routes;
pub mod store;

use chrono::NaiveDateTime;
use serde::Serialize;
use utoipa::ToSchema;

use crate::crypto::sha256_hex;

/// The hash before the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who acted: a token, or an operator at the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub name: String,
    pub role: String,
}

impl Actor {
    /// An operator running a `hashgate` command on the server.
    pub fn command_line() -> Actor {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".to_string());
        Actor {
            id: format!("cli:{user}"),
            name: format!("command line ({user})"),
            role: "operator".to_string(),
        }
    }
}

/// An entry to append; sequence, time and hashes are assigned when it is written.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub actor: Actor,
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

impl NewAuditEntry {
    pub fn new(
        actor: Actor,
        action: &str,
        subject_type: &str,
        subject_id: &str,
        request_id: Option<String>,
    ) -> Self {
        Self {
            actor,
            action: action.to_string(),
            subject_type: subject_type.to_string(),
            subject_id: subject_id.to_string(),
            reason: None,
            request_id,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn reason(mut self, reason: Option<String>) -> Self {
        self.reason = reason;
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: NaiveDateTime,
    pub actor_id: String,
    pub actor_name: String,
    pub actor_role: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    /// Canonical JSON (keys sorted), exactly as hashed.
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    /// The bytes the hash covers: every field but the hashes, as a JSON array in a fixed order.
    pub fn canonical(&self) -> String {
        serde_json::json!([
            self.seq,
            self.occurred_at
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string(),
            self.actor_id,
            self.actor_name,
            self.actor_role,
            self.action,
            self.subject_type,
            self.subject_id,
            self.reason,
            self.request_id,
            self.details,
        ])
        .to_string()
    }

    /// `SHA-256(prev_hash || canonical entry)`, hex.
    pub fn compute_hash(&self) -> String {
        let mut bytes = self.prev_hash.as_bytes().to_vec();
        bytes.extend_from_slice(self.canonical().as_bytes());
        sha256_hex(&bytes)
    }
}

/// Why the chain does not verify, naming the first entry at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("audit entry {seq}: its content does not match its hash (altered)")]
    HashMismatch { seq: i64 },
    #[error("audit entry {seq}: prev_hash does not match the hash of entry {previous}")]
    LinkBroken { seq: i64, previous: i64 },
    #[error("audit entry {expected} is missing (next present is {found})")]
    Gap { expected: i64, found: i64 },
    #[error("the chain ends at entry {last} but its head records entry {head} (entries removed)")]
    Truncated { last: i64, head: i64 },
    #[error("the last entry's hash differs from the recorded chain head")]
    HeadMismatch,
}

/// Checks entries in sequence order, one at a time, so any number of rows can be streamed through.
pub struct ChainVerifier {
    previous_seq: i64,
    previous_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            previous_seq: 0,
            previous_hash: GENESIS_HASH.to_string(),
        }
    }
}

impl ChainVerifier {
    pub fn check(&mut self, entry: &AuditEntry) -> Result<(), ChainBreak> {
        let expected = self.previous_seq + 1;
        if entry.seq != expected {
            return Err(ChainBreak::Gap {
                expected,
                found: entry.seq,
            });
        }
        if entry.prev_hash != self.previous_hash {
            return Err(ChainBreak::LinkBroken {
                seq: entry.seq,
                previous: self.previous_seq,
            });
        }
        if entry.compute_hash() != entry.hash {
            return Err(ChainBreak::HashMismatch { seq: entry.seq });
        }
        self.previous_seq = entry.seq;
        self.previous_hash = entry.hash.clone();
        Ok(())
    }

    /// After the last entry: the chain must reach the recorded head.
    pub fn finish(&self, head_seq: i64, head_hash: &str) -> Result<i64, ChainBreak> {
        if self.previous_seq != head_seq {
            return Err(ChainBreak::Truncated {
                last: self.previous_seq,
                head: head_seq,
            });
        }
        if self.previous_hash != head_hash {
            return Err(ChainBreak::HeadMismatch);
        }
        Ok(self.previous_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(length: i64) -> Vec<AuditEntry> {
        let mut previous = GENESIS_HASH.to_string();
        (1..=length)
            .map(|seq| {
                let mut entry = AuditEntry {
                    seq,
                    occurred_at: chrono::DateTime::from_timestamp(1_700_000_000 + seq, 0)
                        .unwrap()
                        .naive_utc(),
                    actor_id: "t1".into(),
                    actor_name: "Alice".into(),
                    actor_role: "officer".into(),
                    action: "user.create".into(),
                    subject_type: "user".into(),
                    subject_id: format!("u{seq}"),
                    reason: None,
                    request_id: None,
                    details: "{}".into(),
                    prev_hash: previous.clone(),
                    hash: String::new(),
                };
                entry.hash = entry.compute_hash();
                previous = entry.hash.clone();
                entry
            })
            .collect()
    }

    fn verify(entries: &[AuditEntry]) -> Result<i64, ChainBreak> {
        let mut verifier = ChainVerifier::default();
        for entry in entries {
            verifier.check(entry)?;
        }
        let last = chain(3).pop().unwrap();
        verifier.finish(last.seq, &last.hash)
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(3)), Ok(3));
    }

    #[test]
    fn any_alteration_names_the_entry() {
        let mut entries = chain(3);
        entries[1].reason = Some("changed".into());
        assert_eq!(verify(&entries), Err(ChainBreak::HashMismatch { seq: 2 }));

        let mut entries = chain(3);
        entries.remove(1);
        assert_eq!(
            verify(&entries),
            Err(ChainBreak::Gap {
                expected: 2,
                found: 3
            })
        );

        let mut entries = chain(3);
        entries.pop();
        assert_eq!(
            verify(&entries),
            Err(ChainBreak::Truncated { last: 2, head: 3 })
        );
    }

    #[test]
    fn rehashing_an_altered_entry_breaks_the_next_link() {
        let mut entries = chain(3);
        entries[0].actor_name = "Mallory".into();
        entries[0].hash = entries[0].compute_hash();
        assert_eq!(
            verify(&entries),
            Err(ChainBreak::LinkBroken {
                seq: 2,
                previous: 1
            })
        );
    }
}
