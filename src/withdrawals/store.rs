//! Withdrawal queries: the per-user lock, the amounts already withdrawn in a local window, the
//! user's open screening hits, and the stored requests with their decisions.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamp};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::schema::{screening_hits, screenings, withdrawals};
use crate::db::DbConnection;

/// Withdrawals that count against limits and rules: approved, or held and not (yet) rejected.
pub const COUNTED: [&str; 4] = ["approved", "held", "release_pending", "released"];

/// Local-currency atoms of the user's counted withdrawals requested in the local day and in the
/// local month, in one query: the day lies inside the month.
pub fn spent_in_day_and_month(
    connection: &mut DbConnection,
    user_id: &str,
    (day_start, day_end): (NaiveDateTime, NaiveDateTime),
    (month_start, month_end): (NaiveDateTime, NaiveDateTime),
) -> QueryResult<(i64, i64)> {
    withdrawals::table
        .filter(withdrawals::user_id.eq(user_id))
        .filter(withdrawals::status.eq_any(COUNTED))
        .filter(withdrawals::requested_at.ge(month_start))
        .filter(withdrawals::requested_at.lt(month_end))
        .select((
            diesel::dsl::sql::<BigInt>(
                "CAST(COALESCE(SUM(amount_local) FILTER (WHERE requested_at >= ",
            )
            .bind::<Timestamp, _>(day_start)
            .sql(" AND requested_at < ")
            .bind::<Timestamp, _>(day_end)
            .sql("), 0) AS BIGINT)"),
            diesel::dsl::sql::<BigInt>("CAST(COALESCE(SUM(amount_local), 0) AS BIGINT)"),
        ))
        .first(connection)
}

/// The user's counted withdrawals requested in `[since, before)`: time and local-currency atoms.
pub fn counted_between(
    connection: &mut DbConnection,
    user_id: &str,
    since: NaiveDateTime,
    before: NaiveDateTime,
) -> QueryResult<Vec<(NaiveDateTime, Option<i64>)>> {
    withdrawals::table
        .filter(withdrawals::user_id.eq(user_id))
        .filter(withdrawals::status.eq_any(COUNTED))
        .filter(withdrawals::requested_at.ge(since))
        .filter(withdrawals::requested_at.lt(before))
        .select((withdrawals::requested_at, withdrawals::amount_local))
        .load(connection)
}

/// Every counted withdrawal requested in `[from, to)`, oldest first.
pub fn counted_in_window(
    connection: &mut DbConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<WithdrawalRow>> {
    withdrawals::table
        .filter(withdrawals::status.eq_any(COUNTED))
        .filter(withdrawals::requested_at.ge(from))
        .filter(withdrawals::requested_at.lt(to))
        .order((withdrawals::requested_at.asc(), withdrawals::id.asc()))
        .select(WithdrawalRow::as_select())
        .load(connection)
}

/// Whether the user sent a counted withdrawal to `address` before `before`.
pub fn address_used(
    connection: &mut DbConnection,
    user_id: &str,
    address: &str,
    before: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        withdrawals::table
            .filter(withdrawals::user_id.eq(user_id))
            .filter(withdrawals::address.eq(address))
            .filter(withdrawals::status.eq_any(COUNTED))
            .filter(withdrawals::requested_at.lt(before)),
    ))
    .get_result(connection)
}

/// The user's latest withdrawal request before `before`, whatever its decision.
pub fn last_request_before(
    connection: &mut DbConnection,
    user_id: &str,
    before: NaiveDateTime,
) -> QueryResult<Option<NaiveDateTime>> {
    withdrawals::table
        .filter(withdrawals::user_id.eq(user_id))
        .filter(withdrawals::requested_at.lt(before))
        .select(diesel::dsl::max(withdrawals::requested_at))
        .first(connection)
}

/// The user's sanctions hits that are open, awaiting a dismissal's approval, or confirmed.
pub fn open_sanctions_hits(connection: &mut DbConnection, user_id: &str) -> QueryResult<i64> {
    screening_hits::table
        .inner_join(screenings::table)
        .filter(screenings::subject_ref.eq(user_id))
        .filter(screening_hits::source.ne("pep"))
        .filter(screening_hits::status.eq_any(["open", "dismissal_pending", "confirmed"]))
        .count()
        .get_result(connection)
}

/// A withdrawal as stored and as the platform reads it.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable, Insertable)]
#[diesel(table_name = withdrawals)]
pub struct WithdrawalRow {
    pub id: String,
    pub user_id: String,
    pub jurisdiction: String,
    pub asset: String,
    pub amount: i64,
    pub network: String,
    pub address: String,
    pub decision: String,
    pub reasons: String,
    pub currency: String,
    pub amount_local: Option<i64>,
    pub usd_price: Option<String>,
    pub fx_rate: Option<String>,
    #[serde(with = "crate::utc::option")]
    pub price_at: Option<NaiveDateTime>,
    pub beneficiary_encrypted: Option<String>,
    pub hold_seq: Option<i64>,
    #[serde(with = "crate::utc")]
    pub requested_at: NaiveDateTime,
    pub requested_by: String,
    /// Where the withdrawal is now: the gate's decision, or an officer's review of a held one
    /// (`release_pending`, `released`, `rejected`).
    pub status: String,
    pub first_reviewer: Option<String>,
    #[serde(with = "crate::utc::option")]
    pub first_reviewed_at: Option<NaiveDateTime>,
    pub reviewed_by: Option<String>,
    #[serde(with = "crate::utc::option")]
    pub reviewed_at: Option<NaiveDateTime>,
    pub review_reason: Option<String>,
    /// The ledger entry that settled (released) or returned (rejected) the held funds.
    pub outcome_seq: Option<i64>,
}

pub fn insert(connection: &mut DbConnection, withdrawal: &WithdrawalRow) -> QueryResult<()> {
    diesel::insert_into(withdrawals::table)
        .values(withdrawal)
        .execute(connection)?;
    Ok(())
}

/// The user's latest withdrawals, newest first.
pub fn recent_for_user(
    connection: &mut DbConnection,
    user_id: &str,
    limit: i64,
) -> QueryResult<Vec<WithdrawalRow>> {
    withdrawals::table
        .filter(withdrawals::user_id.eq(user_id))
        .order((withdrawals::requested_at.desc(), withdrawals::id.desc()))
        .limit(limit)
        .select(WithdrawalRow::as_select())
        .load(connection)
}

/// Withdrawals in a status, oldest first (the review queue works from the oldest).
pub fn by_status(
    connection: &mut DbConnection,
    status: &str,
    user_id: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<WithdrawalRow>> {
    let mut query = withdrawals::table
        .filter(withdrawals::status.eq(status.to_string()))
        .select(WithdrawalRow::as_select())
        .into_boxed();
    if let Some(user_id) = user_id {
        query = query.filter(withdrawals::user_id.eq(user_id.to_string()));
    }
    query
        .order((withdrawals::requested_at.asc(), withdrawals::id.asc()))
        .limit(limit)
        .load(connection)
}

pub fn find(connection: &mut DbConnection, id: &str) -> QueryResult<Option<WithdrawalRow>> {
    withdrawals::table
        .find(id)
        .select(WithdrawalRow::as_select())
        .first(connection)
        .optional()
}
