//! Console sessions, kept in the database: the cookie carries a random secret, the table only its
//! hash. A session is refused once it ends, expires, or its token is revoked.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use rand::RngCore;

use crate::auth::{store as tokens, Caller, Role};
use crate::crypto::sha256_hex;
use crate::db::schema::console_sessions;
use crate::db::DbConnection;
use crate::error::AppError;

/// A working day; officers log in again after it.
pub const SESSION_HOURS: i64 = 8;

pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A logged-in officer (or user) and the CSRF token their forms must carry.
#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    pub csrf_token: String,
    pub expires_at: NaiveDateTime,
}

/// Starts a new session for a token; returns the cookie secret. Any session id the browser
/// brought is ignored, so a planted id can never become a logged-in one.
pub fn start(
    connection: &mut DbConnection,
    caller: &Caller,
    now: NaiveDateTime,
) -> QueryResult<String> {
    let secret = random_secret();
    diesel::insert_into(console_sessions::table)
        .values((
            console_sessions::id_hash.eq(sha256_hex(secret.as_bytes())),
            console_sessions::token_id.eq(&caller.token_id),
            console_sessions::csrf_token.eq(random_secret()),
            console_sessions::created_at.eq(now),
            console_sessions::expires_at.eq(now + Duration::hours(SESSION_HOURS)),
        ))
        .execute(connection)?;
    Ok(secret)
}

/// The live session behind a cookie secret, with its caller re-checked against the token.
pub fn find(
    connection: &mut DbConnection,
    secret: &str,
    now: NaiveDateTime,
) -> Result<Option<Session>, AppError> {
    let row: Option<(String, String, NaiveDateTime)> = console_sessions::table
        .find(sha256_hex(secret.as_bytes()))
        .filter(console_sessions::ended_at.is_null())
        .filter(console_sessions::expires_at.gt(now))
        .select((
            console_sessions::token_id,
            console_sessions::csrf_token,
            console_sessions::expires_at,
        ))
        .first(connection)
        .optional()?;
    let Some((token_id, csrf_token, expires_at)) = row else {
        return Ok(None);
    };
    let token = tokens::find(connection, &token_id)?;
    if token.revoked_at.is_some() || !Role::may_use_console(token.role) {
        return Ok(None);
    }
    Ok(Some(Session {
        caller: Caller {
            token_id: token.id,
            name: token.name,
            role: token.role,
            jurisdiction: token.jurisdiction,
            user_id: token.user_id,
        },
        csrf_token,
        expires_at,
    }))
}

pub fn end(connection: &mut DbConnection, secret: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(console_sessions::table.find(sha256_hex(secret.as_bytes())))
        .set(console_sessions::ended_at.eq(now))
        .execute(connection)?;
    Ok(())
}

/// Compares secrets in constant time.
pub fn same_secret(left: &str, right: &str) -> bool {
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}
