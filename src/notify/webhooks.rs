//! Signed webhooks to the platform. An event is a row of the webhook outbox written in the
//! transaction that decided it; a worker POSTs it after commit and retries with backoff until the
//! platform answers 2xx. Each delivery carries `Hashgate-Signature: t=<unix time>,v1=<hex>`, the
//! HMAC-SHA256 of `<t>.<body>` under the shared secret, and `Hashgate-Delivery`, the event id the
//! platform can deduplicate on (a retry after a lost answer sends the same id again).

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::outbox::backoff;
use crate::config::WebhookSettings;
use crate::db::schema::webhook_outbox;
use crate::db::{Db, DbConnection};
use crate::error::AppError;

const BATCH: i64 = 50;
const POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Queues an event in the caller's transaction.
pub fn enqueue(
    connection: &mut DbConnection,
    event: &str,
    subject_id: &str,
    data: &serde_json::Value,
) -> Result<String, AppError> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = crate::db::now();
    let payload = serde_json::json!({
        "id": id,
        "type": event,
        "created_at": now.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": data,
    });
    diesel::insert_into(webhook_outbox::table)
        .values((
            webhook_outbox::id.eq(&id),
            webhook_outbox::event.eq(event),
            webhook_outbox::subject_id.eq(subject_id),
            webhook_outbox::payload.eq(payload.to_string()),
            webhook_outbox::status.eq("pending"),
            webhook_outbox::attempts.eq(0),
            webhook_outbox::next_attempt_at.eq(now),
            webhook_outbox::created_at.eq(now),
        ))
        .execute(connection)?;
    Ok(id)
}

/// The signature header's value for `body` sent at `timestamp` (Unix seconds).
pub fn signature(
    secret: &str,
    timestamp: i64,
    body: &str,
) -> Result<String, hmac::digest::InvalidLength> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Ok(format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

struct Due {
    id: String,
    event: String,
    payload: String,
    attempts: i32,
}

/// Leases up to `limit` due events to this worker, as the e-mail outbox does.
fn take_due(
    connection: &mut DbConnection,
    now: NaiveDateTime,
    lease: Duration,
) -> QueryResult<Vec<Due>> {
    let free = webhook_outbox::locked_until
        .is_null()
        .or(webhook_outbox::locked_until.lt(now));
    let ids: Vec<String> = webhook_outbox::table
        .filter(webhook_outbox::status.eq("pending"))
        .filter(webhook_outbox::next_attempt_at.le(now))
        .filter(free)
        .order(webhook_outbox::next_attempt_at)
        .select(webhook_outbox::id)
        .limit(BATCH)
        .load(connection)?;
    let mut taken = Vec::new();
    for id in ids {
        let leased = diesel::update(
            webhook_outbox::table
                .filter(webhook_outbox::id.eq(&id))
                .filter(webhook_outbox::status.eq("pending"))
                .filter(free),
        )
        .set(webhook_outbox::locked_until.eq(now + lease))
        .execute(connection)?;
        if leased == 1 {
            let (event, payload, attempts) = webhook_outbox::table
                .find(&id)
                .select((
                    webhook_outbox::event,
                    webhook_outbox::payload,
                    webhook_outbox::attempts,
                ))
                .first(connection)?;
            taken.push(Due {
                id,
                event,
                payload,
                attempts,
            });
        }
    }
    Ok(taken)
}

fn post(agent: &ureq::Agent, settings: (&str, &str), due: &Due) -> anyhow::Result<()> {
    let (url, secret) = settings;
    let timestamp = chrono::Utc::now().timestamp();
    let response = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("Hashgate-Event", &due.event)
        .header("Hashgate-Delivery", &due.id)
        .header(
            "Hashgate-Signature",
            &signature(secret, timestamp, &due.payload)?,
        )
        .send(due.payload.as_str())?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        anyhow::bail!("the platform answered {status}")
    }
}

/// Delivers one batch of due events; returns how many were delivered.
pub fn deliver_due(
    db: &Db,
    settings: &WebhookSettings,
    lease: Duration,
) -> Result<usize, AppError> {
    let (Some(url), Some(secret)) = (&settings.url, &settings.secret) else {
        return Ok(0);
    };
    let mut connection = db.connection()?;
    let due = take_due(&mut connection, crate::db::now(), lease)?;
    if due.is_empty() {
        return Ok(0);
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut delivered = 0;
    for due in due {
        let outcome = post(&agent, (url, secret), &due);
        let finished = crate::db::now();
        match outcome {
            Ok(()) => {
                diesel::update(webhook_outbox::table.find(&due.id))
                    .set((
                        webhook_outbox::status.eq("delivered"),
                        webhook_outbox::delivered_at.eq(finished),
                        webhook_outbox::attempts.eq(due.attempts + 1),
                        webhook_outbox::locked_until.eq(None::<NaiveDateTime>),
                        webhook_outbox::last_error.eq(None::<String>),
                    ))
                    .execute(&mut **connection)?;
                delivered += 1;
            }
            Err(error) => {
                tracing::warn!(event = %due.id, attempts = due.attempts + 1, error = %error, "webhook delivery failed; will retry");
                diesel::update(webhook_outbox::table.find(&due.id))
                    .set((
                        webhook_outbox::attempts.eq(due.attempts + 1),
                        webhook_outbox::next_attempt_at.eq(finished + backoff(due.attempts)),
                        webhook_outbox::locked_until.eq(None::<NaiveDateTime>),
                        webhook_outbox::last_error.eq(error
                            .to_string()
                            .chars()
                            .take(1000)
                            .collect::<String>()),
                    ))
                    .execute(&mut **connection)?;
            }
        }
    }
    Ok(delivered)
}

/// The webhook worker: runs until the server stops.
pub async fn work(state: actix_web::web::Data<crate::AppState>) {
    if state.webhook.url.is_none() {
        tracing::warn!("no webhook_url configured: webhooks stay in the outbox until one is");
        return;
    }
    loop {
        let db = state.db.clone();
        let settings = state.webhook.clone();
        let lease = state.outbox_lease;
        match actix_web::web::block(move || deliver_due(&db, &settings, lease)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "the webhook outbox could not be read")
            }
            Err(_) => tracing::error!("the webhook sender panicked"),
        }
        actix_web::rt::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_time_and_body() {
        // RFC 4231 test case 2 shape: key "Jefe", message "what do ya want for nothing?".
        let signature = signature("Jefe", 0, "what do ya want for nothing?").unwrap();
        // HMAC over "0.what do ya want for nothing?": recomputed independently below.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"0.what do ya want for nothing?");
        assert_eq!(
            signature,
            format!("t=0,v1={}", hex::encode(mac.finalize().into_bytes()))
        );
        let mut rfc = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        rfc.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(rfc.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
