//! Delivery: the outbox worker, beside the HTTP server, sends due messages over SMTP.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};

use super::outbox::{self, Outgoing};
use crate::config::{SmtpSettings, SmtpTls};
use crate::crypto::FieldCipher;
use crate::db::Db;
use crate::error::AppError;

/// How often the worker looks for due messages.
const POLL: Duration = Duration::from_secs(1);
const BATCH: i64 = 20;

pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
}

impl Mailer {
    /// `None` when no SMTP host is configured: mail then waits in the outbox.
    pub fn from_settings(settings: &SmtpSettings) -> anyhow::Result<Option<Mailer>> {
        let Some(host) = &settings.host else {
            return Ok(None);
        };
        let builder = match settings.tls {
            SmtpTls::None => SmtpTransport::builder_dangerous(host),
            SmtpTls::Starttls => SmtpTransport::starttls_relay(host)?,
            SmtpTls::Tls => SmtpTransport::relay(host)?,
        };
        let mut builder = builder
            .port(settings.port)
            .timeout(Some(Duration::from_secs(15)));
        if let (Some(username), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(username.clone(), password.clone()));
        }
        Ok(Some(Mailer {
            transport: builder.build(),
            from: settings.from.parse()?,
        }))
    }

    /// Sends one message. Its Message-ID is derived from the outbox row, so should a crash
    /// between the server's acceptance and the outbox update cause a second delivery, the
    /// recipient's mail system sees the same message twice and can drop the copy.
    pub fn send(&self, message: &Outgoing) -> anyhow::Result<()> {
        let email = Message::builder()
            .from(self.from.clone())
            .to(message.recipient.parse()?)
            .subject(&message.subject)
            .message_id(Some(format!("<{}@hashgate>", message.id)))
            .header(ContentType::TEXT_PLAIN)
            .body(message.body.clone())?;
        self.transport.send(&email)?;
        Ok(())
    }
}

/// Delivers one batch of due messages; returns how many were sent.
pub fn deliver_due(
    db: &Db,
    cipher: &FieldCipher,
    mailer: &Mailer,
    lease: chrono::Duration,
) -> Result<usize, AppError> {
    let mut connection = db.connection()?;
    let due = outbox::take_due(&mut connection, cipher, BATCH, crate::db::now(), lease)?;
    let mut sent = 0;
    for message in due {
        match mailer.send(&message) {
            Ok(()) => {
                outbox::mark_sent(&mut connection, &message.id)?;
                sent += 1;
            }
            Err(error) => {
                tracing::warn!(message = %message.id, attempts = message.attempts + 1, error = %error, "e-mail delivery failed; will retry");
                outbox::mark_failed(
                    &mut connection,
                    &message.id,
                    message.attempts,
                    &error.to_string(),
                )?;
            }
        }
    }
    Ok(sent)
}

/// The outbox worker: runs until the server stops.
pub async fn work(state: actix_web::web::Data<crate::AppState>) {
    let Some(mailer) = state.mailer.clone() else {
        tracing::warn!("no smtp_host configured: e-mail stays in the outbox until one is");
        return;
    };
    loop {
        let db = state.db.clone();
        let cipher = state.cipher.clone();
        let mailer = mailer.clone();
        let lease = state.outbox_lease;
        let result = actix_web::web::block(move || deliver_due(&db, &cipher, &mailer, lease)).await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(error = %error, "the e-mail outbox could not be read"),
            Err(_) => tracing::error!("the e-mail sender panicked"),
        }
        actix_web::rt::time::sleep(POLL).await;
    }
}
