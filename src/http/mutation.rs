//! Runs a mutating request in one transaction together with its idempotency record, so a crash
//! leaves either both or neither.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;

use crate::db::riding::{execute_all, RidingWrite};
use crate::db::{write_transaction_planned, Db, DbConnection, Plans};
use crate::error::AppError;
use crate::idempotency::store;

/// Writes that a mutation leaves for last in its transaction. They are handed the stored
/// response (when the request has a key) and must write it: riding with their first statement
/// ([`crate::db::riding`]), or on its own.
pub type LastWrites =
    Box<dyn FnOnce(&mut DbConnection, &[&dyn RidingWrite]) -> Result<(), AppError> + Send>;

/// The result of a mutation: the response, and what to keep for replays (secrets removed).
pub struct Outcome {
    pub status: StatusCode,
    pub body: serde_json::Value,
    pub stored_body: serde_json::Value,
    /// Run with the stored response, just before the commit.
    last_writes: Option<LastWrites>,
}

impl Outcome {
    pub fn new(status: StatusCode, body: &impl Serialize) -> Result<Outcome, AppError> {
        let body = serde_json::to_value(body).map_err(AppError::internal)?;
        Ok(Outcome {
            status,
            stored_body: body.clone(),
            body,
            last_writes: None,
        })
    }

    /// Leaves `writes` for last: chain appends, whose chain head stays locked until the commit
    /// and serialises every writer of that chain, so nothing else should come between them and
    /// the commit.
    pub fn with_last_writes(mut self, writes: LastWrites) -> Outcome {
        self.last_writes = Some(writes);
        self
    }

    /// A replay returns `stored_body` instead of `body` (e.g. a token secret is shown only once).
    pub fn replayed_as(mut self, stored_body: serde_json::Value) -> Outcome {
        self.stored_body = stored_body;
        self
    }
}

/// Identifies one request for idempotency purposes.
pub struct IdempotentRequest {
    pub scope: String,
    pub key: Option<String>,
    pub fingerprint: String,
}

impl IdempotentRequest {
    /// Keys are scoped to the caller's token; the fingerprint covers method, path and body.
    pub fn new(
        caller: &crate::auth::Caller,
        key: crate::http::extract::IdempotencyKey,
        method: &str,
        path: &str,
        body: &impl Serialize,
    ) -> Self {
        IdempotentRequest {
            scope: caller.idempotency_scope(),
            key: key.0,
            fingerprint: crate::idempotency::fingerprint(method, path, body),
        }
    }
}

enum Attempt {
    Fresh(Outcome),
    Replay { status: i32, body: String },
}

enum Failure {
    App(AppError),
    /// The key's holder went away between claiming it and reading it: look again.
    KeyTaken,
}

impl From<diesel::result::Error> for Failure {
    fn from(error: diesel::result::Error) -> Self {
        Failure::App(error.into())
    }
}

impl From<AppError> for Failure {
    fn from(error: AppError) -> Self {
        Failure::App(error)
    }
}

pub async fn run<F>(db: &Db, request: IdempotentRequest, work: F) -> Result<HttpResponse, AppError>
where
    F: Fn(&mut DbConnection) -> Result<Outcome, AppError> + Send + Sync + 'static,
{
    run_planned(db, request, Plans::PerParameters, work).await
}

/// [`run`] with the transaction's statements planned as `plans` says.
pub async fn run_planned<F>(
    db: &Db,
    request: IdempotentRequest,
    plans: Plans,
    work: F,
) -> Result<HttpResponse, AppError>
where
    F: Fn(&mut DbConnection) -> Result<Outcome, AppError> + Send + Sync + 'static,
{
    let work = std::sync::Arc::new(work);
    let request = std::sync::Arc::new(request);
    // A second attempt is needed only when a concurrent twin held the key.
    for _ in 0..2 {
        let work = work.clone();
        let request = request.clone();
        let attempt = db
            .run_writer(move |connection| {
                Ok(write_transaction_planned(connection, plans, |connection| {
                    attempt(connection, &request, work.as_ref())
                }))
            })
            .await?;
        match attempt {
            Ok(Attempt::Fresh(outcome)) => {
                return Ok(HttpResponse::build(outcome.status).json(outcome.body))
            }
            Ok(Attempt::Replay { status, body }) => {
                let status = u16::try_from(status)
                    .ok()
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .unwrap_or(StatusCode::OK);
                return Ok(HttpResponse::build(status)
                    .insert_header(("Idempotent-Replayed", "true"))
                    .content_type("application/json")
                    .body(body));
            }
            Err(Failure::App(error)) => return Err(error),
            Err(Failure::KeyTaken) => continue,
        }
    }
    Err(AppError::Conflict(
        "a request with this Idempotency-Key is still in progress; retry shortly".into(),
    ))
}

fn attempt<F>(
    connection: &mut DbConnection,
    request: &IdempotentRequest,
    work: &F,
) -> Result<Attempt, Failure>
where
    F: Fn(&mut DbConnection) -> Result<Outcome, AppError>,
{
    // Claimed first: a fresh key, the common case, then costs one statement.
    if let Some(key) = &request.key {
        if !store::reserve(connection, &request.scope, key, &request.fingerprint)? {
            let Some(stored) = store::find(connection, &request.scope, key)? else {
                return Err(Failure::KeyTaken);
            };
            if stored.request_hash != request.fingerprint {
                return Err(Failure::App(AppError::Conflict(format!(
                    "Idempotency-Key `{key}` was already used with a different request"
                ))));
            }
            return Ok(Attempt::Replay {
                status: stored.status_code,
                body: stored.response_body,
            });
        }
    }
    let mut outcome = work(connection)?;
    // Serialised only when there is a key to store it under.
    let stored = request
        .key
        .as_deref()
        .map(|key| (key, outcome.stored_body.to_string()));
    let response = stored.as_ref().map(|(key, body)| {
        store::StoreResponse::new(&request.scope, key, outcome.status.as_u16(), body)
    });
    let riding = response
        .as_ref()
        .map(|response| response as &dyn RidingWrite);
    match outcome.last_writes.take() {
        Some(writes) => writes(connection, riding.as_slice())?,
        None => execute_all(connection, riding.as_slice())?,
    }
    Ok(Attempt::Fresh(outcome))
}
