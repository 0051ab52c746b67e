//! Stored first responses, keyed by (scope, key).

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};

use crate::db::prepared::{FixedText, Prepared};
use crate::db::riding::RidingWrite;
use crate::db::schema::idempotency_keys;
use crate::db::DbConnection;

pub struct StoredResponse {
    pub request_hash: String,
    pub status_code: i32,
    pub response_body: String,
}

pub fn find(
    connection: &mut DbConnection,
    scope: &str,
    key: &str,
) -> QueryResult<Option<StoredResponse>> {
    idempotency_keys::table
        .find((scope, key))
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::status_code,
            idempotency_keys::response_body,
        ))
        .first::<(String, i32, String)>(connection)
        .optional()
        .map(|found| {
            found.map(
                |(request_hash, status_code, response_body)| StoredResponse {
                    request_hash,
                    status_code,
                    response_body,
                },
            )
        })
}

/// Claims the key for this transaction. `Ok(false)` when it is already stored: a concurrent
/// claim is waited for, and counts once it has committed.
pub fn reserve(
    connection: &mut DbConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
) -> QueryResult<bool> {
    let insert = diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::scope.eq(scope),
            idempotency_keys::idempotency_key.eq(key),
            idempotency_keys::request_hash.eq(request_hash),
            idempotency_keys::status_code.eq(0),
            idempotency_keys::response_body.eq(""),
            idempotency_keys::created_at.eq(crate::db::now()),
        ))
        .on_conflict_do_nothing();
    // Diesel's MultiBackend has no ON CONFLICT: the same statement per backend.
    let inserted = match connection {
        DbConnection::Postgresql(inner) => insert.execute(inner)?,
        DbConnection::Sqlite(inner) => insert.execute(inner)?,
    };
    Ok(inserted == 1)
}

/// Stores the response to a claimed key, for replays: on its own, or riding with another
/// statement ([`RidingWrite`]). On PostgreSQL it is kept prepared (diesel never caches an
/// `UPDATE`): every mutating request makes one.
#[derive(Clone, Copy)]
pub struct StoreResponse<'a> {
    scope: &'a str,
    key: &'a str,
    status_code: i32,
    response_body: &'a str,
}

impl<'a> StoreResponse<'a> {
    pub fn new(scope: &'a str, key: &'a str, status_code: u16, response_body: &'a str) -> Self {
        StoreResponse {
            scope,
            key,
            status_code: i32::from(status_code),
            response_body,
        }
    }
}

impl RidingWrite for StoreResponse<'_> {
    fn postgres(&self) -> Box<dyn QueryFragment<Pg> + '_> {
        Box::new(Prepared(*self))
    }

    fn execute(&self, connection: &mut DbConnection) -> QueryResult<()> {
        match connection {
            DbConnection::Postgresql(inner) => Prepared(*self).execute(inner),
            DbConnection::Sqlite(inner) => {
                diesel::update(idempotency_keys::table.find((self.scope, self.key)))
                    .set((
                        idempotency_keys::status_code.eq(self.status_code),
                        idempotency_keys::response_body.eq(self.response_body),
                    ))
                    .execute(inner)
            }
        }
        .map(|_| ())
    }
}

impl FixedText for StoreResponse<'_> {
    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Integer, Text};
        out.push_sql("UPDATE idempotency_keys SET status_code = ");
        out.push_bind_param::<Integer, _>(&self.status_code)?;
        out.push_sql(", response_body = ");
        out.push_bind_param::<Text, _>(self.response_body)?;
        out.push_sql(" WHERE scope = ");
        out.push_bind_param::<Text, _>(self.scope)?;
        out.push_sql(" AND idempotency_key = ");
        out.push_bind_param::<Text, _>(self.key)?;
        Ok(())
    }
}
