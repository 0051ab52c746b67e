//! The e-mail outbox: a message is a row written in the transaction that decided to send it, so
//! it is sent only if that transaction commits, and never lost once it has.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::Rendered;
use crate::crypto::FieldCipher;
use crate::db::schema::email_outbox;
use crate::db::DbConnection;
use crate::error::AppError;

fn context(column: &str, id: &str) -> String {
    format!("email_outbox.{column}:{id}")
}

/// What a message is about, for tracing it back.
pub struct Related<'a> {
    pub kind: &'a str,
    pub id: &'a str,
}

/// Renders `template` for the recipient and queues it in the caller's transaction.
pub fn enqueue(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    template: &str,
    recipient: (&str, &str),
    values: &BTreeMap<&str, String>,
    related: Related,
) -> Result<String, AppError> {
    let (address, preferred_language) = recipient;
    let rendered: Rendered =
        super::render(template, preferred_language, values).map_err(AppError::internal)?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = crate::db::now();
    diesel::insert_into(email_outbox::table)
        .values((
            email_outbox::id.eq(&id),
            email_outbox::template.eq(template),
            email_outbox::language.eq(rendered.language),
            email_outbox::recipient_encrypted
                .eq(cipher.encrypt(address, &context("recipient", &id))?),
            email_outbox::subject.eq(&rendered.subject),
            email_outbox::body_encrypted.eq(cipher.encrypt(&rendered.body, &context("body", &id))?),
            email_outbox::related_type.eq(related.kind),
            email_outbox::related_id.eq(related.id),
            email_outbox::status.eq("pending"),
            email_outbox::attempts.eq(0),
            email_outbox::next_attempt_at.eq(now),
            email_outbox::created_at.eq(now),
        ))
        .execute(connection)?;
    Ok(id)
}

/// A message taken for sending.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub attempts: i32,
}

/// Takes up to `limit` due messages, each leased to this sender for `lease` by a conditional
/// update, so two senders never hold the same message.
pub fn take_due(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    limit: i64,
    now: NaiveDateTime,
    lease: Duration,
) -> Result<Vec<Outgoing>, AppError> {
    let due: Vec<String> = email_outbox::table
        .filter(email_outbox::status.eq("pending"))
        .filter(email_outbox::next_attempt_at.le(now))
        .filter(
            email_outbox::locked_until
                .is_null()
                .or(email_outbox::locked_until.lt(now)),
        )
        .order(email_outbox::next_attempt_at)
        .select(email_outbox::id)
        .limit(limit)
        .load(connection)?;
    let mut taken = Vec::new();
    for id in due {
        let leased = diesel::update(
            email_outbox::table
                .filter(email_outbox::id.eq(&id))
                .filter(email_outbox::status.eq("pending"))
                .filter(
                    email_outbox::locked_until
                        .is_null()
                        .or(email_outbox::locked_until.lt(now)),
                ),
        )
        .set(email_outbox::locked_until.eq(now + lease))
        .execute(connection)?;
        if leased == 0 {
            continue;
        }
        let (recipient, subject, body, attempts): (String, String, String, i32) =
            email_outbox::table
                .find(&id)
                .select((
                    email_outbox::recipient_encrypted,
                    email_outbox::subject,
                    email_outbox::body_encrypted,
                    email_outbox::attempts,
                ))
                .first(connection)?;
        let open = |column: &str, value: &str| {
            cipher
                .decrypt(value, &context(column, &id))
                .map_err(AppError::internal)
        };
        taken.push(Outgoing {
            recipient: open("recipient", &recipient)?,
            body: open("body", &body)?,
            subject,
            attempts,
            id,
        });
    }
    Ok(taken)
}

pub fn mark_sent(connection: &mut DbConnection, id: &str) -> QueryResult<()> {
    let now = crate::db::now();
    diesel::update(email_outbox::table.find(id))
        .set((
            email_outbox::status.eq("sent"),
            email_outbox::sent_at.eq(now),
            email_outbox::locked_until.eq(None::<NaiveDateTime>),
            email_outbox::attempts.eq(email_outbox::attempts + 1),
            email_outbox::last_error.eq(None::<String>),
        ))
        .execute(connection)?;
    Ok(())
}

/// Waits before the next attempt: 5 s, 10 s, 20 s … up to 15 minutes. A message is never given
/// up on: it waits in the outbox, with its last error, until the server takes it.
pub fn backoff(attempts: i32) -> Duration {
    let exponent = attempts.clamp(0, 16) as u32;
    Duration::seconds((5i64 << exponent).min(15 * 60))
}

pub fn mark_failed(
    connection: &mut DbConnection,
    id: &str,
    attempts: i32,
    error: &str,
) -> QueryResult<()> {
    let now = crate::db::now();
    diesel::update(email_outbox::table.find(id))
        .set((
            email_outbox::attempts.eq(attempts + 1),
            email_outbox::next_attempt_at.eq(now + backoff(attempts)),
            email_outbox::locked_until.eq(None::<NaiveDateTime>),
            email_outbox::last_error.eq(error.chars().take(1000).collect::<String>()),
        ))
        .execute(connection)?;
    Ok(())
}

/// Messages still to be delivered.
pub fn pending_count(connection: &mut DbConnection) -> QueryResult<i64> {
    email_outbox::table
        .filter(email_outbox::status.eq("pending"))
        .count()
        .get_result(connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_ceiling() {
        assert_eq!(backoff(0), Duration::seconds(5));
        assert_eq!(backoff(1), Duration::seconds(10));
        assert_eq!(backoff(3), Duration::seconds(40));
        assert_eq!(backoff(30), Duration::minutes(15));
    }
}
