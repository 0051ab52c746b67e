//! Writes that travel with another module's next statement. On PostgreSQL they become that
//! statement's data-modifying WITH clauses and cost no round trip of their own: a withdrawal
//! decision's row, its alerts and its stored response ride with the ledger's balance update. On
//! SQLite, where a statement is a function call, they simply run first, one by one.
//!
//! Every clause of one statement sees the same snapshot, so a riding write must not depend on
//! the host statement's effects, nor the host on the write's. PostgreSQL runs each
//! data-modifying clause to completion whether the host reads it or not, and checks foreign keys
//! at the end of the whole statement, so a row and the rows naming it can ride together.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::{QueryResult, RunQueryDsl};

use super::prepared::{FixedText, Prepared};
use super::DbConnection;

pub trait RidingWrite {
    /// The write as a WITH clause runs it: an INSERT, UPDATE or DELETE without RETURNING, whose
    /// text does not depend on its values (so that the host statement stays prepared).
    fn postgres(&self) -> Box<dyn QueryFragment<Pg> + '_>;
    /// The write on its own.
    fn execute(&self, connection: &mut DbConnection) -> QueryResult<()>;
}

/// `host` led by `writes` as its WITH clauses. The host must not begin with a WITH of its own.
pub struct WithRiding<'a, T> {
    writes: Vec<Box<dyn QueryFragment<Pg> + 'a>>,
    host: T,
}

impl<'a, T> WithRiding<'a, T> {
    pub fn new(writes: &'a [&'a dyn RidingWrite], host: T) -> Self {
        WithRiding {
            writes: writes.iter().map(|write| write.postgres()).collect(),
            host,
        }
    }
}

impl<T: FixedText> FixedText for WithRiding<'_, T> {
    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        for (index, write) in self.writes.iter().enumerate() {
            out.push_sql(if index == 0 { "WITH " } else { ", " });
            out.push_sql(&format!("riding_{index} AS ("));
            write.walk_ast(out.reborrow())?;
            out.push_sql(") ");
        }
        self.host.walk(out)
    }
}

/// A riding write as the host of the others.
struct Host<'a>(Box<dyn QueryFragment<Pg> + 'a>);

impl FixedText for Host<'_> {
    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(out.reborrow())
    }
}

/// Runs `writes` when no statement of the caller's is left to carry them: on PostgreSQL as one
/// statement, the last write hosting the others; on SQLite one by one.
pub fn execute_all(connection: &mut DbConnection, writes: &[&dyn RidingWrite]) -> QueryResult<()> {
    match (connection, writes.split_last()) {
        (_, None) => Ok(()),
        (DbConnection::Postgresql(inner), Some((last, riding))) => {
            Prepared(WithRiding::new(riding, Host(last.postgres())))
                .execute(inner)
                .map(|_| ())
        }
        (connection, Some(_)) => writes
            .iter()
            .try_for_each(|write| write.execute(connection)),
    }
}
