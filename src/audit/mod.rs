//! The append-only, hash-chained audit log: who did what, to what, when and why.

pub mod routes;
pub mod store;

use chrono::NaiveDateTime;
use serde::Serialize;
use utoipa::ToSchema;

use crate::chain::{Canonical, Chained};

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
    #[serde(with = "crate::utc")]
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

impl Chained for AuditEntry {
    fn seq(&self) -> i64 {
        self.seq
    }

    fn prev_hash(&self) -> &str {
        &self.prev_hash
    }

    fn hash(&self) -> &str {
        &self.hash
    }

    /// Every field but the hashes, as a JSON array in a fixed order.
    fn canonical(&self) -> String {
        Canonical::default()
            .int(self.seq)
            .time(&self.occurred_at)
            .text(&self.actor_id)
            .text(&self.actor_name)
            .text(&self.actor_role)
            .text(&self.action)
            .text(&self.subject_type)
            .text(&self.subject_id)
            .opt_text(self.reason.as_deref())
            .opt_text(self.request_id.as_deref())
            .text(&self.details)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_field() {
        let entry = AuditEntry {
            seq: 1,
            occurred_at: chrono::DateTime::from_timestamp(1_700_000_000, 123_456_000)
                .unwrap()
                .naive_utc(),
            actor_id: "t1".into(),
            actor_name: "Alice".into(),
            actor_role: "officer".into(),
            action: "user.create".into(),
            subject_type: "user".into(),
            subject_id: "u1".into(),
            reason: None,
            request_id: None,
            details: "{}".into(),
            prev_hash: crate::chain::GENESIS_HASH.into(),
            hash: String::new(),
        };
        assert!(entry.canonical().contains("2023-11-14T22:13:20.123456Z"));
        let original = entry.compute_hash();
        let changes: [fn(&mut AuditEntry); 5] = [
            |e| e.actor_name = "Mallory".into(),
            |e| e.reason = Some("why".into()),
            |e| e.details = "{\"a\":1}".into(),
            |e| e.occurred_at += chrono::Duration::microseconds(1),
            |e| e.prev_hash = "1".repeat(64),
        ];
        for change in changes {
            let mut altered = entry.clone();
            change(&mut altered);
            assert_ne!(altered.compute_hash(), original);
        }
    }
}
