//! PostgreSQL statements that diesel keeps prepared on each connection, for the writes it would
//! otherwise send as new text every time: diesel never caches an `UPDATE`, an upsert or a
//! `sql_query`, so PostgreSQL parses and plans those anew on every call. On the withdrawal
//! gate's path that was four statements a decision.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::Untyped;
use diesel::{PgConnection, QueryResult, RunQueryDsl};

/// A statement whose text does not depend on its values: walked, it pushes that text and binds
/// its values in order ([`crate::db::bind_values`]).
pub trait FixedText {
    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

/// Runs a [`FixedText`] statement through diesel's statement cache, which keys it by its text.
pub struct Prepared<T>(pub T);

impl<T> QueryId for Prepared<T> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T: FixedText> QueryFragment<Pg> for Prepared<T> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk(&mut out)
    }
}

impl<T> Query for Prepared<T> {
    type SqlType = Untyped;
}

impl<T> RunQueryDsl<PgConnection> for Prepared<T> {}
