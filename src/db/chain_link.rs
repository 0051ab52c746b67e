//! PostgreSQL: one statement that links a row to its hash chain and inserts it. Every writer of a
//! chain waits for the head row's lock and holds it until its transaction commits, so each round
//! trip made while holding it lowers the rate of every writer; linking in the insert takes the
//! three (advance the head, insert the row, record its hash) down to one. The database computes
//! the hash with the formula of [`crate::chain::link_hash`]; [`insert`] checks it before commit.

use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{BigInt, Text};
use diesel::{PgConnection, QueryResult, RunQueryDsl};

use crate::chain::{unlinked_tail, Chained};

/// A chained row that takes the place the database gives it.
pub trait Placed: Chained {
    fn place(&mut self, seq: i64, prev_hash: String, hash: String);
}

/// Where the database placed the row.
#[derive(diesel::QueryableByName)]
struct Link {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    prev_hash: String,
    #[diesel(sql_type = Text)]
    hash: String,
}

/// The statement for `table` on chain `chain`: `columns` are bound as `$1…$n` in that order and
/// the row's [`crate::chain::unlinked_tail`] as `$n+1`; it returns where the row was placed. The head
/// is locked, read and advanced once (`link` is referenced twice, so PostgreSQL materialises it).
pub fn statement(chain: &str, table: &str, columns: &[&str]) -> String {
    let values: Vec<String> = (1..=columns.len()).map(|n| format!("${n}")).collect();
    format!(
        "WITH head AS (SELECT seq + 1 AS seq, hash AS prev_hash FROM chain_heads \
                       WHERE name = '{chain}' FOR UPDATE), \
              link AS (SELECT seq, prev_hash, encode(sha256(convert_to(\
                           prev_hash || '[' || seq::text || ${tail}, 'UTF8')), 'hex') AS hash \
                       FROM head), \
              advanced AS (UPDATE chain_heads SET seq = link.seq, hash = link.hash FROM link \
                           WHERE chain_heads.name = '{chain}') \
         INSERT INTO {table} ({columns}, seq, prev_hash, hash) \
         SELECT {values}, link.seq, link.prev_hash, link.hash FROM link \
         RETURNING seq, prev_hash, hash",
        tail = columns.len() + 1,
        columns = columns.join(", "),
        values = values.join(", "),
    )
}

/// Runs a [`statement`] for `row`: `bind` binds its columns in the statement's order, the row's
/// tail is bound after them, and the row takes the place the database gave it once the hash the
/// database computed is the one `hashgate verify` computes. A difference (a canonical form changed
/// on one side only, a database whose encoding is not UTF-8) fails the write, so the transaction
/// rolls back instead of breaking the chain.
pub fn insert<R: Placed>(
    connection: &mut PgConnection,
    statement: &str,
    row: &mut R,
    bind: impl for<'r> FnOnce(BoxedSqlQuery<'r, Pg, SqlQuery>, &'r R) -> BoxedSqlQuery<'r, Pg, SqlQuery>,
) -> QueryResult<()> {
    let tail = unlinked_tail(row);
    let link: Link = bind(diesel::sql_query(statement).into_boxed(), row)
        .bind::<Text, _>(tail)
        .get_result(connection)?;
    row.place(link.seq, link.prev_hash, link.hash);
    if row.compute_hash() == row.hash() {
        Ok(())
    } else {
        Err(diesel::result::Error::QueryBuilderError(
            format!(
                "the database linked entry {} with a hash hashgate does not compute",
                row.seq()
            )
            .into(),
        ))
    }
}
