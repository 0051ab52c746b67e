//! PostgreSQL: one statement that links a row to its hash chain and inserts it. Every writer of a
//! chain waits for the head row's lock and holds it until its transaction commits, so each round
//! trip made while holding it lowers the rate of every writer; linking in the insert takes the
//! three (advance the head, insert the row, record its hash) down to one. The database computes
//! the hash with the formula of [`crate::chain::link_hash`]; [`insert`] checks it before commit.

use diesel::pg::Pg;
use diesel::query_builder::AstPass;
use diesel::sql_types::{BigInt, Text};
use diesel::{PgConnection, QueryResult, RunQueryDsl};

use super::prepared::{FixedText, Prepared};
use crate::chain::{unlinked_tail, Chained};

/// A chained row that takes the place the database gives it.
pub trait Placed: Chained {
    fn place(&mut self, seq: i64, prev_hash: String, hash: String);

    /// Binds the row's columns in the order of the [`statement`]'s `columns`, with
    /// [`crate::db::bind_values`].
    fn bind_columns<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
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

/// The statement for one table's chain, in the three pieces around its binds: the row's
/// [`crate::chain::unlinked_tail`], then its columns.
pub struct Statement {
    before_tail: String,
    before_columns: String,
    after_columns: &'static str,
}

/// The statement for `table` on chain `chain`, inserting `columns` (bound by
/// [`Placed::bind_columns`] in that order); it returns where the row was placed. The head is
/// locked, read and advanced once (`link` is referenced twice, so PostgreSQL materialises it).
pub fn statement(chain: &str, table: &str, columns: &[&str]) -> Statement {
    Statement {
        before_tail: format!(
            "WITH head AS (SELECT seq + 1 AS seq, hash AS prev_hash FROM chain_heads \
                           WHERE name = '{chain}' FOR UPDATE), \
                  link AS (SELECT seq, prev_hash, encode(sha256(convert_to(\
                               prev_hash || '[' || seq::text || "
        ),
        before_columns: format!(
            ", 'UTF8')), 'hex') AS hash FROM head), \
                  advanced AS (UPDATE chain_heads SET seq = link.seq, hash = link.hash FROM link \
                               WHERE chain_heads.name = '{chain}') \
             INSERT INTO {table} ({columns}, seq, prev_hash, hash) SELECT ",
            columns = columns.join(", "),
        ),
        after_columns: ", link.seq, link.prev_hash, link.hash FROM link \
                        RETURNING seq, prev_hash, hash",
    }
}

/// One row's link-and-insert, kept prepared on each connection: a withdrawal decision makes two.
struct LinkInsert<'a, R> {
    statement: &'a Statement,
    row: &'a R,
    tail: String,
}

impl<R: Placed> FixedText for LinkInsert<'_, R> {
    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(&self.statement.before_tail);
        out.push_bind_param::<Text, _>(&self.tail)?;
        out.push_sql(&self.statement.before_columns);
        self.row.bind_columns(out)?;
        out.push_sql(self.statement.after_columns);
        Ok(())
    }
}

/// Runs a [`statement`] for `row`, and the row takes the place the database gave it once the hash
/// the database computed is the one `hashgate verify` computes. A difference (a canonical form
/// changed on one side only, a database whose encoding is not UTF-8) fails the write, so the
/// transaction rolls back instead of breaking the chain.
pub fn insert<R: Placed>(
    connection: &mut PgConnection,
    statement: &Statement,
    row: &mut R,
) -> QueryResult<()> {
    let link: Link = Prepared(LinkInsert {
        statement,
        row: &*row,
        tail: unlinked_tail(row),
    })
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
