//! Withdrawal queries: the per-user lock, the amounts already withdrawn in a local window, the
//! user's open screening hits, and the stored requests with their decisions.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::schema::{kyc_profiles, screening_hits, screenings, withdrawals};
use crate::db::DbConnection;

/// Serialises one user's withdrawals: a no-op update of their KYC profile row holds its lock
/// until the transaction ends (PostgreSQL; SQLite write transactions already run one at a time).
pub fn lock_user(connection: &mut DbConnection, user_id: &str) -> QueryResult<()> {
    diesel::update(kyc_profiles::table.find(user_id))
        .set(kyc_profiles::updated_at.eq(kyc_profiles::updated_at))
        .execute(connection)?;
    Ok(())
}

/// Local-currency atoms of the user's approved and held withdrawals requested in `[from, to)`.
pub fn spent_between(
    connection: &mut DbConnection,
    user_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<i64> {
    withdrawals::table
        .filter(withdrawals::user_id.eq(user_id))
        .filter(withdrawals::decision.eq_any(["approved", "held"]))
        .filter(withdrawals::requested_at.ge(from))
        .filter(withdrawals::requested_at.lt(to))
        .select(diesel::dsl::sql::<BigInt>(
            "CAST(COALESCE(SUM(amount_local), 0) AS BIGINT)",
        ))
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
    pub price_at: Option<NaiveDateTime>,
    pub beneficiary_encrypted: Option<String>,
    pub hold_seq: Option<i64>,
    pub requested_at: NaiveDateTime,
    pub requested_by: String,
}

pub fn insert(connection: &mut DbConnection, withdrawal: &WithdrawalRow) -> QueryResult<()> {
    diesel::insert_into(withdrawals::table)
        .values(withdrawal)
        .execute(connection)?;
    Ok(())
}

pub fn find(connection: &mut DbConnection, id: &str) -> QueryResult<Option<WithdrawalRow>> {
    withdrawals::table
        .find(id)
        .select(WithdrawalRow::as_select())
        .first(connection)
        .optional()
}
