//! Withdrawal queries: the user's earlier withdrawals, the gate's other reads in one statement,
//! and the stored requests with their decisions.

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::riding::RidingWrite;
use crate::db::schema::{
    assets, kyc_profiles, ledger_entries, rates, screening_hits, screenings, users,
    withdrawal_addresses, withdrawals,
};
use crate::db::DbConnection;
use crate::kyc::store::Profile;
use crate::ledger::store::{account_atoms, payouts_received, rates_up_to};
use crate::ledger::Account;
use crate::withdrawals::addresses::{current_entry, BookStatus};

/// Withdrawals that count against limits and rules: approved, or held and not (yet) rejected.
pub const COUNTED: [&str; 4] = ["approved", "held", "release_pending", "released"];

/// What the monitoring rules read of a user's past, in one statement: the counted withdrawals
/// requested in `withdrawn` = `[since, before)` (time, local-currency atoms), and the payouts of
/// `asset` received in `received` = `(since, before]` (time, atoms).
pub fn past_activity(
    connection: &mut DbConnection,
    user_id: &str,
    asset: &str,
    withdrawn: (NaiveDateTime, NaiveDateTime),
    received: (NaiveDateTime, NaiveDateTime),
) -> QueryResult<PastActivity> {
    use diesel::sql_types::Bool;
    let withdrawals = withdrawals::table
        .filter(withdrawals::user_id.eq(user_id))
        .filter(withdrawals::status.eq_any(COUNTED))
        .filter(withdrawals::requested_at.ge(withdrawn.0))
        .filter(withdrawals::requested_at.lt(withdrawn.1))
        .select((
            false.into_sql::<Bool>(),
            withdrawals::requested_at,
            withdrawals::amount_local,
        ));
    let payouts = payouts_received(user_id, asset, received.0, received.1).select((
        true.into_sql::<Bool>(),
        ledger_entries::occurred_at,
        ledger_entries::amount.nullable(),
    ));
    // diesel's MultiBackend has no UNION: the statement is built for the backend at hand.
    let both = withdrawals.union_all(payouts);
    let rows: Vec<(bool, NaiveDateTime, Option<i64>)> = match connection {
        DbConnection::Postgresql(inner) => both.load(inner)?,
        DbConnection::Sqlite(inner) => both.load(inner)?,
    };
    let mut activity = PastActivity::default();
    for (is_payout, at, amount) in rows {
        if is_payout {
            // A payout's amount is never null: it is read as nullable only to share the column.
            activity.payouts.extend(amount.map(|atoms| (at, atoms)));
        } else {
            activity.withdrawals.push((at, amount));
        }
    }
    Ok(activity)
}

/// A user's counted withdrawals and received payouts, as [`past_activity`] reads them.
#[derive(Debug, Default)]
pub struct PastActivity {
    pub withdrawals: Vec<(NaiveDateTime, Option<i64>)>,
    pub payouts: Vec<(NaiveDateTime, i64)>,
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

/// The user's counted withdrawals to `address` requested before `before`.
#[diesel::dsl::auto_type]
fn sent_to_address<'a>(user_id: &'a str, address: &'a str, before: NaiveDateTime) -> _ {
    let counted: [&'static str; 4] = COUNTED;
    withdrawals::table
        .filter(withdrawals::user_id.eq(user_id))
        .filter(withdrawals::address.eq(address))
        .filter(withdrawals::status.eq_any(counted))
        .filter(withdrawals::requested_at.lt(before))
}

/// The times of the user's withdrawal requests before `before`, whatever their decision, latest
/// first.
#[diesel::dsl::auto_type]
fn requests_before<'a>(user_id: &'a str, before: NaiveDateTime) -> _ {
    withdrawals::table
        .filter(withdrawals::user_id.eq(user_id))
        .filter(withdrawals::requested_at.lt(before))
        .order(withdrawals::requested_at.desc())
        .select(withdrawals::requested_at)
}

/// The user's sanctions hits that are open, awaiting a dismissal's approval, or confirmed.
#[diesel::dsl::auto_type]
fn open_sanctions_hits<'a>(user_id: &'a str) -> _ {
    let pep: &'static str = "pep";
    let open: [&'static str; 3] = ["open", "dismissal_pending", "confirmed"];
    screening_hits::table
        .inner_join(screenings::table)
        .filter(screenings::subject_ref.eq(user_id))
        .filter(screening_hits::source.ne(pep))
        .filter(screening_hits::status.eq_any(open))
        .count()
}

/// Whether the user sent a counted withdrawal to `address` before `before`, and when the user
/// last requested one at all.
pub fn address_and_last_request(
    connection: &mut DbConnection,
    user_id: &str,
    address: &str,
    before: NaiveDateTime,
) -> QueryResult<(bool, Option<NaiveDateTime>)> {
    diesel::select((
        diesel::dsl::exists(sent_to_address(user_id, address, before)),
        requests_before(user_id, before).single_value(),
    ))
    .get_result(connection)
}

/// The requesting user as the gate sees them, their KYC profile locked until the transaction ends.
pub struct LockedUser {
    pub profile: Option<Profile>,
    pub residence: String,
    pub account_opened_at: NaiveDateTime,
}

/// Reads the user and locks their KYC profile, so that a user's concurrent withdrawals are decided
/// one after another (on SQLite write transactions already run one at a time). A user with a
/// profile, the common case, costs one statement: the user's columns come as subqueries, which
/// the lock does not cover (the lock is the profile's alone, as it was before they were folded in).
/// `None` for an unknown user.
pub fn lock_user(connection: &mut DbConnection, user_id: &str) -> QueryResult<Option<LockedUser>> {
    let user = || users::table.filter(users::id.eq(user_id));
    let profile = kyc_profiles::table.find(user_id);
    let user_columns = || {
        (
            user().select(users::residence_jurisdiction).single_value(),
            user().select(users::created_at).single_value(),
        )
    };
    // The user's residence and account opening; `None` only if the profile had no user.
    type UserColumns = (Option<String>, Option<NaiveDateTime>);
    // The profile's selection is typed per backend.
    let locked: Option<(Profile, UserColumns)> = match connection {
        DbConnection::Postgresql(inner) => profile
            .select((Profile::as_select(), user_columns()))
            .for_update()
            .first(inner)
            .optional()?,
        DbConnection::Sqlite(inner) => profile
            .select((Profile::as_select(), user_columns()))
            .first(inner)
            .optional()?,
    };
    if let Some((profile, (residence, opened_at))) = locked {
        return Ok(residence
            .zip(opened_at)
            .map(|(residence, account_opened_at)| LockedUser {
                profile: Some(profile),
                residence,
                account_opened_at,
            }));
    }
    Ok(crate::users::store::residence(connection, user_id)?.map(
        |(residence, account_opened_at)| LockedUser {
            profile: None,
            residence,
            account_opened_at,
        },
    ))
}

/// What a withdrawal request is judged on besides the user's profile.
pub struct GateReads {
    /// The asset's latest USD price at or before the request, and when it was observed.
    pub usd_price: Option<(NaiveDateTime, String)>,
    /// The latest USD rate in the jurisdiction's currency at or before the request.
    pub fx_rate: Option<(NaiveDateTime, String)>,
    pub available_atoms: i64,
    pub open_sanctions_hits: i64,
    pub address_used_before: bool,
    pub last_request_at: Option<NaiveDateTime>,
    /// The ledger scale of the asset (`None`: an unknown asset) and of the local currency.
    pub asset_scale: Option<u32>,
    pub currency_scale: Option<u32>,
    /// How many list versions have been loaded: the screening index's version stamp.
    pub lists_loaded: i64,
    /// Where the destination stands in the user's address book.
    pub address_book: BookStatus,
}

/// The reads of [`GateReads`] as one statement of scalar subqueries.
pub fn gate_reads(
    connection: &mut DbConnection,
    user_id: &str,
    (asset, currency): (&str, &str),
    (network, address): (&str, &str),
    now: NaiveDateTime,
) -> QueryResult<GateReads> {
    let price = || rates_up_to(asset, "USD", now);
    let fx = || rates_up_to("USD", currency, now);
    let scale = |code| {
        assets::table
            .filter(assets::code.eq(code))
            .select(assets::scale)
    };
    let book = || current_entry(user_id, network, address);
    let available = Account::Available(user_id.to_string()).key();
    type Row = (
        (
            Option<NaiveDateTime>,
            Option<String>,
            Option<NaiveDateTime>,
            Option<String>,
        ),
        (Option<i64>, Option<i64>, bool, Option<NaiveDateTime>),
        (Option<i32>, Option<i32>, Option<i64>),
        (Option<NaiveDateTime>, Option<NaiveDateTime>),
    );
    let row: Row = diesel::select((
        (
            price().select(rates::as_of).single_value(),
            price().select(rates::rate).single_value(),
            fx().select(rates::as_of).single_value(),
            fx().select(rates::rate).single_value(),
        ),
        (
            account_atoms(available, asset).single_value(),
            open_sanctions_hits(user_id).single_value(),
            diesel::dsl::exists(sent_to_address(user_id, address, now)),
            requests_before(user_id, now).single_value(),
        ),
        (
            scale(asset).single_value(),
            scale(currency).single_value(),
            crate::aml::store::lists_loaded().single_value(),
        ),
        (
            book()
                .select(withdrawal_addresses::usable_from)
                .single_value(),
            book()
                .select(withdrawal_addresses::approved_at)
                .single_value(),
        ),
    ))
    .get_result(connection)?;
    let (
        (price_at, price, fx_at, fx),
        (available_atoms, hits, address_used_before, last_request_at),
        (asset_scale, currency_scale, lists_loaded),
        (usable_from, approved_at),
    ) = row;
    let scale = |scale: Option<i32>| scale.and_then(|scale| u32::try_from(scale).ok());
    Ok(GateReads {
        usd_price: price_at.zip(price),
        fx_rate: fx_at.zip(fx),
        available_atoms: available_atoms.unwrap_or(0),
        open_sanctions_hits: hits.unwrap_or(0),
        address_used_before,
        last_request_at,
        asset_scale: scale(asset_scale),
        currency_scale: scale(currency_scale),
        lists_loaded: lists_loaded.unwrap_or(0),
        address_book: usable_from.map_or(BookStatus::Unlisted, |usable_from| {
            BookStatus::of_current(usable_from, approved_at.is_some(), now)
        }),
    })
}

/// A withdrawal as stored and as the platform reads it.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable, Insertable)]
#[diesel(table_name = withdrawals)]
// Absent values are inserted as NULL, not as DEFAULT, so the INSERT's text is always the same
// and diesel keeps it prepared (a DEFAULT keyword makes it a new statement every time).
#[diesel(treat_none_as_default_value = false)]
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
    /// The transaction id of the ledger hold of an approved or held withdrawal.
    pub hold_transaction_id: Option<String>,
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

/// A new withdrawal's row, riding with the ledger's hold of its amount (or with its stored
/// response, for a rejected one).
impl RidingWrite for WithdrawalRow {
    fn postgres(&self) -> Box<dyn QueryFragment<Pg> + '_> {
        Box::new(diesel::insert_into(withdrawals::table).values(self))
    }

    fn execute(&self, connection: &mut DbConnection) -> QueryResult<()> {
        diesel::insert_into(withdrawals::table)
            .values(self)
            .execute(connection)
            .map(|_| ())
    }
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
