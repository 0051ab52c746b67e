//! Ledger queries: appending chained entries with their balances, ingesting payouts, reading.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::LazyLock;

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::AstPass;
use diesel::sql_types::{BigInt, Text};
use diesel::PgConnection;
use rust_decimal::Decimal;

use super::payouts::ValidPayout;
use super::{
    transfer_accounts, value_at, Account, Asset, Assets, EntryCursor, EntryKind, LedgerEntry,
    PricePoint, Valuation,
};
use crate::audit::{self, store as audit_store, Actor, AuditEntry, NewAuditEntry};
use crate::chain::{ChainVerifier, Chained, Verification};
use crate::db::prepared::{FixedText, Prepared};
use crate::db::riding::{self, RidingWrite, WithRiding};
use crate::db::schema::{assets, balances, chain_heads, ledger_entries, rates, users};
use crate::db::{chain_link, DbConnection, InsertTimestamp};
use crate::error::{AppError, FieldError};

const CHAIN: &str = "ledger";
/// Rows per COPY on PostgreSQL, and per chunk of a large batch hashed ahead of its insert.
const INSERT_CHUNK: usize = 1_000;
/// Rows up to which PostgreSQL gets a multi-row INSERT rather than a COPY.
const SMALL_INSERT: usize = 100;
/// The columns of an entry that its writer sets, in the order the single-entry inserts bind
/// them; `seq`, `prev_hash` and `hash` come from the chain.
const ENTRY_COLUMNS: [&str; 20] = [
    "transaction_id",
    "kind",
    "asset",
    "amount",
    "debit_account",
    "credit_account",
    "user_id",
    "occurred_at",
    "recorded_at",
    "source",
    "external_id",
    "order_id",
    "facility_id",
    "valuation",
    "fmv_usd",
    "usd_price",
    "price_at",
    "reason",
    "actor_id",
    "reverses_seq",
];
/// The ledger chain and its table, for PostgreSQL's link-and-insert statements.
const CHAIN_TABLE: chain_link::ChainTable = chain_link::ChainTable {
    chain: CHAIN,
    table: "ledger_entries",
    columns: &ENTRY_COLUMNS,
};
/// Ids per `IN` lookup (binds on SQLite, one array on PostgreSQL).
const LOOKUP_CHUNK: usize = 5_000;

#[derive(Queryable, Selectable)]
#[diesel(table_name = ledger_entries)]
struct EntryRow {
    seq: i64,
    transaction_id: String,
    kind: String,
    asset: String,
    amount: i64,
    debit_account: String,
    credit_account: String,
    user_id: Option<String>,
    occurred_at: NaiveDateTime,
    recorded_at: NaiveDateTime,
    source: Option<String>,
    external_id: Option<String>,
    order_id: Option<String>,
    facility_id: Option<String>,
    valuation: Option<String>,
    fmv_usd: Option<String>,
    usd_price: Option<String>,
    price_at: Option<NaiveDateTime>,
    reason: Option<String>,
    actor_id: String,
    reverses_seq: Option<i64>,
    prev_hash: String,
    hash: String,
}

impl EntryRow {
    fn into_entry(self) -> Result<LedgerEntry, AppError> {
        let kind = EntryKind::parse(&self.kind).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "ledger entry {} has unknown kind {}",
                self.seq,
                self.kind
            ))
        })?;
        Ok(LedgerEntry {
            seq: self.seq,
            transaction_id: self.transaction_id,
            kind,
            asset: self.asset,
            amount: self.amount,
            debit_account: self.debit_account,
            credit_account: self.credit_account,
            user_id: self.user_id,
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            source: self.source,
            external_id: self.external_id,
            order_id: self.order_id,
            facility_id: self.facility_id,
            valuation: self.valuation,
            fmv_usd: self.fmv_usd,
            usd_price: self.usd_price,
            price_at: self.price_at,
            reason: self.reason,
            actor_id: self.actor_id,
            reverses_seq: self.reverses_seq,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// An entry as PostgreSQL inserts or copies it: borrowed, so a batch is written without copying
/// its strings.
#[derive(Insertable)]
#[diesel(table_name = ledger_entries, treat_none_as_default_value = false)]
struct NewEntryRow<'a> {
    seq: i64,
    transaction_id: &'a str,
    kind: &'a str,
    asset: &'a str,
    amount: i64,
    debit_account: &'a str,
    credit_account: &'a str,
    user_id: Option<&'a str>,
    occurred_at: InsertTimestamp,
    recorded_at: InsertTimestamp,
    source: Option<&'a str>,
    external_id: Option<&'a str>,
    order_id: Option<&'a str>,
    facility_id: Option<&'a str>,
    valuation: Option<&'a str>,
    fmv_usd: Option<&'a str>,
    usd_price: Option<&'a str>,
    price_at: Option<InsertTimestamp>,
    reason: Option<&'a str>,
    actor_id: &'a str,
    reverses_seq: Option<i64>,
    prev_hash: &'a str,
    hash: &'a str,
}

impl<'a> From<&'a LedgerEntry> for NewEntryRow<'a> {
    fn from(entry: &'a LedgerEntry) -> Self {
        NewEntryRow {
            seq: entry.seq,
            transaction_id: &entry.transaction_id,
            kind: entry.kind.as_str(),
            asset: &entry.asset,
            amount: entry.amount,
            debit_account: &entry.debit_account,
            credit_account: &entry.credit_account,
            user_id: entry.user_id.as_deref(),
            occurred_at: InsertTimestamp(entry.occurred_at),
            recorded_at: InsertTimestamp(entry.recorded_at),
            source: entry.source.as_deref(),
            external_id: entry.external_id.as_deref(),
            order_id: entry.order_id.as_deref(),
            facility_id: entry.facility_id.as_deref(),
            valuation: entry.valuation.as_deref(),
            fmv_usd: entry.fmv_usd.as_deref(),
            usd_price: entry.usd_price.as_deref(),
            price_at: entry.price_at.map(InsertTimestamp),
            reason: entry.reason.as_deref(),
            actor_id: &entry.actor_id,
            reverses_seq: entry.reverses_seq,
            prev_hash: &entry.prev_hash,
            hash: &entry.hash,
        }
    }
}

/// Binds an entry's [`ENTRY_COLUMNS`] in order, for either backend's insert; the timestamps are
/// passed in, since SQLite binds them as [`InsertTimestamp`] text.
macro_rules! bind_entry_columns {
    ($out:ident, $entry:expr, $occurred_at:expr, $recorded_at:expr, $price_at:expr) => {{
        use diesel::sql_types::{Nullable, Timestamp};
        crate::db::bind_values!($out;
            Text => &$entry.transaction_id,
            Text => $entry.kind.as_str(),
            Text => &$entry.asset,
            BigInt => &$entry.amount,
            Text => &$entry.debit_account,
            Text => &$entry.credit_account,
            Nullable<Text> => &$entry.user_id,
            Timestamp => $occurred_at,
            Timestamp => $recorded_at,
            Nullable<Text> => &$entry.source,
            Nullable<Text> => &$entry.external_id,
            Nullable<Text> => &$entry.order_id,
            Nullable<Text> => &$entry.facility_id,
            Nullable<Text> => &$entry.valuation,
            Nullable<Text> => &$entry.fmv_usd,
            Nullable<Text> => &$entry.usd_price,
            Nullable<Timestamp> => $price_at,
            Nullable<Text> => &$entry.reason,
            Text => &$entry.actor_id,
            Nullable<BigInt> => &$entry.reverses_seq,
        );
    }};
}

/// SQLite: one entry's INSERT, prepared once per connection, whose binds diesel collects in one
/// flat pass. Through diesel's generic insert of a 23-column row, walking the row's values (to
/// learn the statement may be cached, then to bind them) cost the single writer about as much
/// as SQLite's own work for the row.
struct SqliteEntryInsert<'a> {
    entry: &'a LedgerEntry,
    occurred_at: InsertTimestamp,
    recorded_at: InsertTimestamp,
    price_at: Option<InsertTimestamp>,
}

impl<'a> SqliteEntryInsert<'a> {
    fn new(entry: &'a LedgerEntry) -> Self {
        SqliteEntryInsert {
            entry,
            occurred_at: InsertTimestamp(entry.occurred_at),
            recorded_at: InsertTimestamp(entry.recorded_at),
            price_at: entry.price_at.map(InsertTimestamp),
        }
    }
}

impl diesel::query_builder::QueryId for SqliteEntryInsert<'_> {
    type QueryId = SqliteEntryInsert<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for SqliteEntryInsert<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        let entry = self.entry;
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "INSERT INTO ledger_entries (seq, {}, prev_hash, hash) VALUES (",
                ENTRY_COLUMNS.join(", ")
            )
        });
        out.push_sql(&SQL);
        crate::db::bind_values!(out; BigInt => &entry.seq);
        out.push_sql(", ");
        bind_entry_columns!(
            out,
            entry,
            &self.occurred_at,
            &self.recorded_at,
            &self.price_at
        );
        out.push_sql(", ");
        crate::db::bind_values!(out; Text => &entry.prev_hash, Text => &entry.hash);
        out.push_sql(")");
        Ok(())
    }
}

impl RunQueryDsl<diesel::SqliteConnection> for SqliteEntryInsert<'_> {}

pub fn load_assets(connection: &mut DbConnection) -> QueryResult<Assets> {
    let rows: Vec<(String, i32)> = assets::table
        .select((assets::code, assets::scale))
        .load(connection)?;
    Ok(Assets::new(rows.into_iter().map(|(code, scale)| Asset {
        code,
        scale: u32::try_from(scale).unwrap_or(0),
    })))
}

/// Appends entries (their seq, hashes and recorded time are assigned here) and applies them to
/// the balances. Call inside the write transaction that makes the change.
pub fn append_entries(
    connection: &mut DbConnection,
    entries: Vec<LedgerEntry>,
) -> QueryResult<Vec<LedgerEntry>> {
    apply_balance_deltas(connection, &super::balance_deltas(&entries), &[])?;
    chain_entries(connection, entries)
}

/// Links entries to the chain and inserts them; their balances are already applied. The chain
/// head is one row that every ledger writer locks on PostgreSQL until it commits, so only the
/// statements that need it come after taking it: one for a single entry, three for a batch.
fn chain_entries(
    connection: &mut DbConnection,
    mut entries: Vec<LedgerEntry>,
) -> QueryResult<Vec<LedgerEntry>> {
    if entries.is_empty() {
        return Ok(entries);
    }
    if let (DbConnection::Postgresql(inner), [entry]) = (&mut *connection, entries.as_mut_slice()) {
        entry.recorded_at = crate::db::now();
        link_and_insert_one(inner, entry)?;
        return Ok(entries);
    }
    let count = i64::try_from(entries.len()).unwrap_or(i64::MAX);
    // Advancing the head first takes its row lock on PostgreSQL, so batches queue here.
    let (last_seq, prev_hash): (i64, String) = diesel::update(chain_heads::table.find(CHAIN))
        .set(chain_heads::seq.eq(chain_heads::seq + count))
        .returning((chain_heads::seq, chain_heads::hash))
        .get_result(connection)?;
    let mut links = ChainLinks {
        next_seq: last_seq - count + 1,
        prev_hash,
        recorded_at: crate::db::now(),
    };
    let entries = if entries.len() <= INSERT_CHUNK {
        links.link(&mut entries);
        insert_rows(connection, &entries)?;
        entries
    } else {
        link_and_insert_pipelined(connection, entries, links)?
    };
    let head_hash = entries.last().map(|entry| entry.hash.as_str());
    diesel::update(chain_heads::table.find(CHAIN))
        .set(chain_heads::hash.eq(head_hash.unwrap_or_default()))
        .execute(connection)?;
    Ok(entries)
}

/// PostgreSQL: one entry linked and inserted in one statement, the only one made under the
/// chain head's lock (a withdrawal's hold, a fee, an adjustment, a reversal).
fn link_and_insert_one(connection: &mut PgConnection, entry: &mut LedgerEntry) -> QueryResult<()> {
    static STATEMENT: LazyLock<chain_link::Statement> =
        LazyLock::new(|| chain_link::statement(&CHAIN_TABLE));
    chain_link::insert(connection, &STATEMENT, entry)
}

impl chain_link::Placed for LedgerEntry {
    fn place(&mut self, seq: i64, prev_hash: String, hash: String) {
        self.seq = seq;
        self.prev_hash = prev_hash;
        self.hash = hash;
    }

    fn bind_columns<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        bind_entry_columns!(
            out,
            self,
            &self.occurred_at,
            &self.recorded_at,
            &self.price_at
        );
        Ok(())
    }
}

/// Where the chain continues: each entry linked gets the next seq and the previous entry's hash.
struct ChainLinks {
    next_seq: i64,
    prev_hash: String,
    recorded_at: NaiveDateTime,
}

impl ChainLinks {
    fn link(&mut self, entries: &mut [LedgerEntry]) {
        for entry in entries {
            entry.seq = self.next_seq;
            entry.recorded_at = self.recorded_at;
            entry.prev_hash = std::mem::take(&mut self.prev_hash);
            entry.hash = entry.compute_hash();
            self.prev_hash.clone_from(&entry.hash);
            self.next_seq += 1;
        }
    }
}

/// Links and inserts a large batch chunk by chunk, hashing the next chunk on a second thread
/// while this one inserts the last: the hashing was a fifth of a bulk ingest's time.
fn link_and_insert_pipelined(
    connection: &mut DbConnection,
    entries: Vec<LedgerEntry>,
    mut links: ChainLinks,
) -> QueryResult<Vec<LedgerEntry>> {
    let mut inserted = Vec::with_capacity(entries.len());
    let mut remaining = entries.into_iter();
    let linked_chunks = std::iter::from_fn(move || {
        let mut chunk: Vec<LedgerEntry> = remaining.by_ref().take(INSERT_CHUNK).collect();
        if chunk.is_empty() {
            return None;
        }
        links.link(&mut chunk);
        Some(chunk)
    });
    crate::pipeline::run_ahead(linked_chunks, 2, |chunk| -> QueryResult<()> {
        insert_rows(connection, &chunk)?;
        inserted.extend(chunk);
        Ok(())
    })?;
    Ok(inserted)
}

/// Bulk insert: on SQLite a prepared INSERT stepped per entry; on PostgreSQL a small batch as
/// one multi-row INSERT, since COPY waits for the server's answer before it sends the rows (two
/// round trips where an INSERT takes one, under the chain head's lock), and a large one a COPY.
fn insert_rows(connection: &mut DbConnection, entries: &[LedgerEntry]) -> QueryResult<usize> {
    if let DbConnection::Sqlite(inner) = connection {
        return entries.iter().try_fold(0, |inserted, entry| {
            SqliteEntryInsert::new(entry)
                .execute(inner)
                .map(|count| inserted + count)
        });
    }
    let rows: Vec<NewEntryRow> = entries.iter().map(NewEntryRow::from).collect();
    if let DbConnection::Postgresql(inner) = connection {
        if rows.len() <= SMALL_INSERT {
            return diesel::insert_into(ledger_entries::table)
                .values(&rows)
                .execute(inner);
        }
    }
    crate::db::insert_all!(connection, ledger_entries::table, &rows)
}

/// Adds deltas to balances and returns the new balances, keyed by (account, asset): on SQLite
/// one upsert of them all, on PostgreSQL one upsert of three arrays.
fn apply_balance_deltas(
    connection: &mut DbConnection,
    deltas: &BTreeMap<(String, String), i64>,
    riding: &[&dyn RidingWrite],
) -> QueryResult<BTreeMap<(String, String), i64>> {
    #[derive(QueryableByName)]
    struct Balance {
        #[diesel(sql_type = Text)]
        account: String,
        #[diesel(sql_type = Text)]
        asset: String,
        #[diesel(sql_type = BigInt)]
        atoms: i64,
    }
    // On PostgreSQL the riding writes lead the upsert; elsewhere they run first.
    if deltas.is_empty() || matches!(connection, DbConnection::Sqlite(_)) {
        riding::execute_all(connection, riding)?;
    }
    if deltas.is_empty() {
        return Ok(BTreeMap::new());
    }
    let updated: Vec<Balance> = match connection {
        DbConnection::Sqlite(inner) => {
            // One statement for all the deltas, passed as one JSON array: diesel prepares an
            // upsert anew on every run, which for a bulk ingest's thousands of accounts was a
            // tenth of the single writer's time.
            let rows: Vec<(&str, &str, i64)> = deltas
                .iter()
                .map(|((account, asset), delta)| (account.as_str(), asset.as_str(), *delta))
                .collect();
            diesel::sql_query(
                "INSERT INTO balances (account, asset, atoms) \
                 SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) WHERE true \
                 ON CONFLICT (account, asset) DO UPDATE SET atoms = atoms + excluded.atoms \
                 RETURNING account, asset, atoms",
            )
            .bind::<Text, _>(serde_json::to_string(&rows).unwrap_or_default())
            .load(inner)?
        }
        DbConnection::Postgresql(inner) => Prepared(WithRiding::new(
            riding,
            PgBalanceUpsert {
                accounts: deltas.keys().map(|(account, _)| account.as_str()).collect(),
                assets: deltas.keys().map(|(_, asset)| asset.as_str()).collect(),
                deltas: deltas.values().copied().collect(),
            },
        ))
        .load(inner)?,
    };
    Ok(updated
        .into_iter()
        .map(|balance| ((balance.account, balance.asset), balance.atoms))
        .collect())
}

/// PostgreSQL: every delta in one upsert of three arrays, in the map's order (so concurrent
/// writers lock balance rows in the same order). Its text is the same whatever the number of
/// accounts, so it stays prepared, where a VALUES list was a new statement for every write.
struct PgBalanceUpsert<'a> {
    accounts: Vec<&'a str>,
    assets: Vec<&'a str>,
    deltas: Vec<i64>,
}

impl FixedText for PgBalanceUpsert<'_> {
    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use diesel::sql_types::Array;
        out.push_sql("INSERT INTO balances (account, asset, atoms) SELECT * FROM unnest(");
        crate::db::bind_values!(out;
            Array<Text> => &self.accounts,
            Array<Text> => &self.assets,
            Array<BigInt> => &self.deltas,
        );
        out.push_sql(
            ") ON CONFLICT (account, asset) DO UPDATE SET atoms = balances.atoms + excluded.atoms \
             RETURNING account, asset, atoms",
        );
        Ok(())
    }
}

/// A single movement of a user's funds other than a payout.
#[derive(Debug, Clone)]
pub struct Transfer {
    pub kind: EntryKind,
    pub user_id: String,
    pub asset: String,
    pub amount: i64,
    pub occurred_at: NaiveDateTime,
    /// For adjustments: credit the user (true) or debit them (false).
    pub to_user: bool,
    /// Why; required for adjustments.
    pub reason: Option<String>,
}

/// Records a transfer as one entry. A user account it debits may not go below zero.
/// Call inside a write transaction.
pub fn record(
    connection: &mut DbConnection,
    transfer: Transfer,
    actor: &Actor,
) -> Result<LedgerEntry, AppError> {
    record_entry(connection, transfer, actor, None)
}

/// [`record`] under a transaction id chosen by the caller, so that other rows can name the entry
/// before it is written, together with the audit entry that records it. On PostgreSQL the two are
/// linked to their chains in one statement ([`chain_link::insert_pair`]), so the chain heads,
/// which serialise every writer, are held for one round trip fewer. The `riding` writes go with
/// the balance update, before the chain heads are taken ([`crate::db::riding`]).
pub fn record_audited_as(
    connection: &mut DbConnection,
    transfer: Transfer,
    actor: &Actor,
    transaction_id: String,
    audit: NewAuditEntry,
    riding: &[&dyn RidingWrite],
) -> Result<(LedgerEntry, AuditEntry), AppError> {
    static STATEMENT: LazyLock<chain_link::PairStatement> =
        LazyLock::new(|| chain_link::pair_statement(&CHAIN_TABLE, &audit_store::CHAIN_TABLE));
    let (mut entry, debits_user) = transfer_entry(transfer, actor, Some(transaction_id))?;
    apply_checked(connection, &entry, debits_user, riding)?;
    match connection {
        DbConnection::Postgresql(inner) => {
            let mut audit_entry = audit_store::unlinked(audit);
            entry.recorded_at = crate::db::now();
            chain_link::insert_pair(inner, &STATEMENT, &mut entry, &mut audit_entry)?;
            Ok((entry, audit_entry))
        }
        DbConnection::Sqlite(_) => {
            let entry = chain_one(connection, entry)?;
            Ok((entry, audit_store::append(connection, audit)?))
        }
    }
}

fn record_entry(
    connection: &mut DbConnection,
    transfer: Transfer,
    actor: &Actor,
    transaction_id: Option<String>,
) -> Result<LedgerEntry, AppError> {
    let (entry, debits_user) = transfer_entry(transfer, actor, transaction_id)?;
    append_checked(connection, entry, debits_user)
}

/// The entry a transfer makes, and whether it debits the user.
fn transfer_entry(
    transfer: Transfer,
    actor: &Actor,
    transaction_id: Option<String>,
) -> Result<(LedgerEntry, bool), AppError> {
    if transfer.kind == EntryKind::Reversal {
        return Err(AppError::bad_field(
            "kind",
            "reverse an entry with `reverse`",
        ));
    }
    if transfer.kind == EntryKind::Adjustment
        && transfer.reason.as_deref().is_none_or(str::is_empty)
    {
        return Err(AppError::invalid_field(
            "reason",
            "required",
            "an adjustment needs a reason",
        ));
    }
    if transfer.amount <= 0 {
        return Err(AppError::invalid_field(
            "amount",
            "invalid_amount",
            "must be greater than zero",
        ));
    }
    let accounts = transfer_accounts(transfer.kind, &transfer.user_id, transfer.to_user);
    let debits_user = accounts.0.user().is_some();
    let mut entry = LedgerEntry::transfer(
        transfer.kind,
        &transfer.asset,
        transfer.amount,
        accounts,
        transfer.occurred_at,
        &actor.id,
    );
    entry.reason = transfer.reason;
    if let Some(transaction_id) = transaction_id {
        entry.transaction_id = transaction_id;
    }
    Ok((entry, debits_user))
}

/// Reverses a stored entry with a new entry that swaps its accounts. An entry is reversed at most
/// once, and a reversal is not itself reversed (record a new transfer instead).
pub fn reverse(
    connection: &mut DbConnection,
    seq: i64,
    reason: &str,
    actor: &Actor,
) -> Result<LedgerEntry, AppError> {
    let original = ledger_entries::table
        .find(seq)
        .select(EntryRow::as_select())
        .first(connection)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no ledger entry {seq}")))?
        .into_entry()?;
    if original.kind == EntryKind::Reversal {
        return Err(AppError::Conflict(format!(
            "entry {seq} is itself a reversal"
        )));
    }
    let already: i64 = ledger_entries::table
        .filter(ledger_entries::reverses_seq.eq(seq))
        .count()
        .get_result(connection)?;
    if already > 0 {
        return Err(AppError::Conflict(format!(
            "entry {seq} is already reversed"
        )));
    }
    let debits_user = original.credit_account.starts_with("user:");
    let entry = LedgerEntry {
        seq: 0,
        transaction_id: original.transaction_id.clone(),
        kind: EntryKind::Reversal,
        debit_account: original.credit_account.clone(),
        credit_account: original.debit_account.clone(),
        occurred_at: crate::db::now(),
        source: None,
        external_id: None,
        order_id: original.order_id.clone(),
        facility_id: original.facility_id.clone(),
        valuation: None,
        fmv_usd: None,
        usd_price: None,
        price_at: None,
        reason: Some(reason.to_string()),
        actor_id: actor.id.clone(),
        reverses_seq: Some(seq),
        ..original
    };
    append_checked(connection, entry, debits_user)
}

/// Appends one entry; if it debits a user account, that account must not end below zero (the
/// balance row is updated first, so concurrent debits queue on its lock).
fn append_checked(
    connection: &mut DbConnection,
    entry: LedgerEntry,
    debits_user: bool,
) -> Result<LedgerEntry, AppError> {
    apply_checked(connection, &entry, debits_user, &[])?;
    chain_one(connection, entry)
}

/// Applies the entry to the balances; a user account it debits may not go below zero. Checked
/// before the entry takes the chain head, which serialises every ledger writer.
fn apply_checked(
    connection: &mut DbConnection,
    entry: &LedgerEntry,
    debits_user: bool,
    riding: &[&dyn RidingWrite],
) -> Result<(), AppError> {
    let balances_after = apply_balance_deltas(
        connection,
        &super::balance_deltas(std::slice::from_ref(entry)),
        riding,
    )?;
    if debits_user {
        let remaining = balances_after
            .get(&(entry.debit_account.clone(), entry.asset.clone()))
            .copied()
            .unwrap_or(0);
        if remaining < 0 {
            return Err(AppError::invalid_field(
                "amount",
                "insufficient_balance",
                format!("{} holds too little {}", entry.debit_account, entry.asset),
            ));
        }
    }
    Ok(())
}

fn chain_one(connection: &mut DbConnection, entry: LedgerEntry) -> Result<LedgerEntry, AppError> {
    chain_entries(connection, vec![entry])?
        .pop()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("entry not appended")))
}

/// Every balance, keyed by (account, asset).
pub fn all_balances(connection: &mut DbConnection) -> QueryResult<BTreeMap<(String, String), i64>> {
    let rows: Vec<(String, String, i64)> = balances::table
        .select((balances::account, balances::asset, balances::atoms))
        .load(connection)?;
    Ok(rows
        .into_iter()
        .map(|(account, asset, atoms)| ((account, asset), atoms))
        .collect())
}

/// What a payout batch did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct IngestReport {
    /// Payouts written now.
    pub accepted: usize,
    /// Payouts already stored with identical content: nothing written.
    pub duplicates: usize,
    /// Accepted payouts without a usable price: stored, flagged, not valued.
    pub unpriced: usize,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
}

/// What a batch does with a row naming an unknown user, or reusing a stored external id for a
/// different payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRows {
    /// Nothing of the batch is written (the API: a batch is atomic).
    RefuseBatch,
    /// The row is left out and returned, named; the rest is written (the CSV import).
    LeaveOut,
}

/// Writes a validated batch: all of it, or nothing if any row names an unknown user or reuses a
/// stored external id for a different payout. Call inside a write transaction.
pub fn ingest_payouts(
    connection: &mut DbConnection,
    source: &str,
    payouts: Vec<ValidPayout>,
    actor: &Actor,
    request_id: Option<String>,
    staleness: chrono::Duration,
) -> Result<IngestReport, AppError> {
    let batch = PayoutBatch {
        source,
        actor,
        request_id: request_id.as_deref(),
        staleness,
    };
    batch
        .ingest(connection, payouts, BadRows::RefuseBatch)
        .map(|(report, _)| report)
}

/// Who writes a batch of payouts, and how they are valued.
pub struct PayoutBatch<'a> {
    pub source: &'a str,
    pub actor: &'a Actor,
    pub request_id: Option<&'a str>,
    pub staleness: chrono::Duration,
}

impl PayoutBatch<'_> {
    /// Writes a batch of valid payouts: the new ones are appended, the ones stored with the same
    /// content are counted as duplicates, and bad rows are handled per `bad_rows`. Returns what was
    /// written and the rows left out. Call inside a write transaction.
    ///
    /// Most batches are all new, so they are first written without looking up each external id
    /// (an index probe per row was a third of a bulk import's time on PostgreSQL), under a
    /// savepoint: the unique index on (source, external id) refuses a stored one, the savepoint
    /// takes the attempt back, and only then is the batch sorted against what is stored.
    pub fn ingest(
        &self,
        connection: &mut DbConnection,
        payouts: Vec<ValidPayout>,
        bad_rows: BadRows,
    ) -> Result<(IngestReport, Vec<FieldError>), AppError> {
        let (payouts, unknown_users) = with_known_users(connection, payouts)?;
        if !unknown_users.is_empty() && bad_rows == BadRows::RefuseBatch {
            return Err(AppError::Validation(unknown_users));
        }
        let attempt = connection.transaction(|connection| self.write(connection, &payouts, 0));
        match attempt {
            Ok(report) => return Ok((report, unknown_users)),
            Err(WriteError::StoredExternalId) => {}
            Err(WriteError::Failed(error)) => return Err(error),
        }
        let sorted = sort_out_stored(connection, self.source, payouts)?;
        if !sorted.conflicts.is_empty() && bad_rows == BadRows::RefuseBatch {
            return Err(AppError::ConflictingRows(sorted.conflicts));
        }
        let report = self.write(connection, &sorted.fresh, sorted.duplicates)?;
        let mut left_out = unknown_users;
        left_out.extend(sorted.conflicts);
        Ok((report, left_out))
    }

    /// Values and appends payouts believed new, and audits the batch.
    fn write(
        &self,
        connection: &mut DbConnection,
        fresh: &[ValidPayout],
        duplicates: usize,
    ) -> Result<IngestReport, WriteError> {
        let prices = load_usd_prices(connection, fresh, self.staleness)?;
        let mut unpriced = 0;
        let entries: Vec<LedgerEntry> = fresh
            .iter()
            .map(|payout| {
                let points = prices.get(&payout.asset).map(Vec::as_slice).unwrap_or(&[]);
                let valuation = value_at(
                    payout.decimal_amount,
                    payout.occurred_at,
                    points,
                    self.staleness,
                );
                if !matches!(valuation, Valuation::Priced { .. }) {
                    unpriced += 1;
                }
                payout_entry(payout, self.source, valuation, &self.actor.id)
            })
            .collect();
        let entries = append_entries(connection, entries)?;
        let report = IngestReport {
            accepted: entries.len(),
            duplicates,
            unpriced,
            first_seq: entries.first().map(|e| e.seq),
            last_seq: entries.last().map(|e| e.seq),
        };
        if report.accepted > 0 {
            audit::store::append(
                connection,
                NewAuditEntry::new(
                    self.actor.clone(),
                    "payouts.ingest",
                    "ledger",
                    self.source,
                    self.request_id.map(str::to_string),
                )
                .details(serde_json::json!({
                    "accepted": report.accepted,
                    "duplicates": report.duplicates,
                    "unpriced": report.unpriced,
                    "first_seq": report.first_seq,
                    "last_seq": report.last_seq,
                })),
            )?;
        }
        Ok(report)
    }
}

/// The payouts whose user exists, and an error for each of the others.
fn with_known_users(
    connection: &mut DbConnection,
    payouts: Vec<ValidPayout>,
) -> Result<(Vec<ValidPayout>, Vec<FieldError>), AppError> {
    let known_users = existing_users(connection, payouts.iter().map(|p| p.user_id.as_str()))?;
    let (known, unknown): (Vec<ValidPayout>, Vec<ValidPayout>) = payouts
        .into_iter()
        .partition(|payout| known_users.contains(&payout.user_id));
    let errors = unknown
        .iter()
        .map(|payout| {
            FieldError::new(
                format!("payouts[{}].user_id", payout.index),
                "unknown_user",
                format!("no user with id {}", payout.user_id),
            )
        })
        .collect();
    Ok((known, errors))
}

/// A batch sorted against the stored payouts of its source.
struct SortedPayouts {
    fresh: Vec<ValidPayout>,
    duplicates: usize,
    /// Rows reusing a stored external id for a different payout.
    conflicts: Vec<FieldError>,
}

fn sort_out_stored(
    connection: &mut DbConnection,
    source: &str,
    payouts: Vec<ValidPayout>,
) -> Result<SortedPayouts, AppError> {
    let stored = stored_payouts(
        connection,
        source,
        payouts.iter().map(|p| p.external_id.as_str()),
    )?;
    let mut sorted = SortedPayouts {
        fresh: Vec::with_capacity(payouts.len()),
        duplicates: 0,
        conflicts: Vec::new(),
    };
    for payout in payouts {
        match stored.get(&payout.external_id) {
            None => sorted.fresh.push(payout),
            Some(existing) if existing.same_as(&payout) => sorted.duplicates += 1,
            Some(_) => sorted.conflicts.push(FieldError::new(
                format!("payouts[{}].external_id", payout.index),
                "conflict",
                format!(
                    "external_id `{}` is already stored with different content",
                    payout.external_id
                ),
            )),
        }
    }
    Ok(sorted)
}

/// Why writing new payouts failed: an external id was stored after all, or anything else.
enum WriteError {
    StoredExternalId,
    Failed(AppError),
}

impl From<diesel::result::Error> for WriteError {
    fn from(error: diesel::result::Error) -> Self {
        match error {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => WriteError::StoredExternalId,
            other => WriteError::Failed(other.into()),
        }
    }
}

impl From<AppError> for WriteError {
    fn from(error: AppError) -> Self {
        WriteError::Failed(error)
    }
}

impl From<WriteError> for AppError {
    /// After the batch was sorted, a stored id means a concurrent writer stored it meanwhile.
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::StoredExternalId => AppError::Conflict(
                "a payout of this batch was stored concurrently; send the batch again".into(),
            ),
            WriteError::Failed(error) => error,
        }
    }
}

fn payout_entry(
    payout: &ValidPayout,
    source: &str,
    valuation: Valuation,
    actor_id: &str,
) -> LedgerEntry {
    let (fmv_usd, usd_price, price_at) = match &valuation {
        Valuation::Priced {
            fmv_usd,
            usd_price,
            price_at,
        } => (
            Some(fmv_usd.to_string()),
            Some(usd_price.to_string()),
            Some(*price_at),
        ),
        Valuation::StalePrice { price_at } => (None, None, Some(*price_at)),
        Valuation::NoPrice => (None, None, None),
    };
    let accounts = transfer_accounts(EntryKind::Payout, &payout.user_id, true);
    LedgerEntry {
        source: Some(source.to_string()),
        external_id: Some(payout.external_id.clone()),
        order_id: Some(payout.order_id.clone()),
        facility_id: Some(payout.facility_id.clone()),
        valuation: Some(valuation.label().to_string()),
        fmv_usd,
        usd_price,
        price_at,
        ..LedgerEntry::transfer(
            EntryKind::Payout,
            &payout.asset,
            payout.amount,
            accounts,
            payout.occurred_at,
            actor_id,
        )
    }
}

fn existing_users<'a>(
    connection: &mut DbConnection,
    ids: impl Iterator<Item = &'a str>,
) -> QueryResult<HashSet<String>> {
    let wanted: Vec<&str> = ids.collect::<HashSet<_>>().into_iter().collect();
    let mut found = HashSet::with_capacity(wanted.len());
    for chunk in wanted.chunks(LOOKUP_CHUNK) {
        let rows: Vec<String> = users::table
            .filter(users::id.eq_any(chunk))
            .select(users::id)
            .load(connection)?;
        found.extend(rows);
    }
    Ok(found)
}

/// The fields that make two payouts "the same payout".
#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = ledger_entries)]
struct StoredPayout {
    external_id: Option<String>,
    user_id: Option<String>,
    asset: String,
    amount: i64,
    occurred_at: NaiveDateTime,
    order_id: Option<String>,
    facility_id: Option<String>,
}

impl StoredPayout {
    fn same_as(&self, payout: &ValidPayout) -> bool {
        self.user_id.as_deref() == Some(payout.user_id.as_str())
            && self.asset == payout.asset
            && self.amount == payout.amount
            && self.occurred_at == payout.occurred_at
            && self.order_id.as_deref() == Some(payout.order_id.as_str())
            && self.facility_id.as_deref() == Some(payout.facility_id.as_str())
    }
}

/// One index probe per id, whatever the planner's statistics say. During a bulk load they lag
/// behind the table, and both `external_id = ANY(...)` and a plain join were then planned as a
/// scan of every row of the source: ingest slowed down as the ledger grew. `OFFSET 0` keeps the
/// lateral subquery from being flattened into such a join.
const STORED_PAYOUTS_PG: &str = "SELECT e.external_id, e.user_id, e.asset, e.amount, \
     e.occurred_at, e.order_id, e.facility_id \
     FROM unnest($1::text[]) AS wanted(id) CROSS JOIN LATERAL ( \
         SELECT * FROM ledger_entries WHERE source = $2 AND external_id = wanted.id OFFSET 0 \
     ) AS e";

const STORED_PAYOUTS_SQLITE: &str = "SELECT external_id, user_id, asset, amount, occurred_at, \
     order_id, facility_id FROM ledger_entries \
     WHERE source = ? AND external_id IN (SELECT value FROM json_each(?))";

fn stored_payouts<'a>(
    connection: &mut DbConnection,
    source: &str,
    external_ids: impl Iterator<Item = &'a str>,
) -> QueryResult<HashMap<String, StoredPayout>> {
    let wanted: Vec<&str> = external_ids.collect();
    let mut found = HashMap::new();
    for chunk in wanted.chunks(LOOKUP_CHUNK) {
        let rows: Vec<StoredPayout> = match connection {
            // The ids as one JSON array: one statement for the chunk (a statement per id spent
            // more in binding and stepping than in the index probes), and cheaper to parse
            // than an `IN` list of thousands of binds.
            DbConnection::Sqlite(inner) => diesel::sql_query(STORED_PAYOUTS_SQLITE)
                .bind::<Text, _>(source)
                .bind::<Text, _>(serde_json::to_string(chunk).unwrap_or_default())
                .load(inner)?,
            DbConnection::Postgresql(inner) => diesel::sql_query(STORED_PAYOUTS_PG)
                .bind::<diesel::sql_types::Array<Text>, _>(chunk)
                .bind::<Text, _>(source)
                .load(inner)?,
        };
        found.extend(
            rows.into_iter()
                .filter_map(|row| Some((row.external_id.clone()?, row))),
        );
    }
    Ok(found)
}

/// USD prices per asset covering the payouts' times (and the staleness window before them).
fn load_usd_prices(
    connection: &mut DbConnection,
    payouts: &[ValidPayout],
    staleness: chrono::Duration,
) -> Result<HashMap<String, Vec<PricePoint>>, AppError> {
    let mut windows: HashMap<&str, (NaiveDateTime, NaiveDateTime)> = HashMap::new();
    for payout in payouts {
        let window = windows
            .entry(payout.asset.as_str())
            .or_insert((payout.occurred_at, payout.occurred_at));
        window.0 = window.0.min(payout.occurred_at);
        window.1 = window.1.max(payout.occurred_at);
    }
    let mut prices = HashMap::new();
    for (asset, (from, to)) in windows {
        prices.insert(
            asset.to_string(),
            rate_points(connection, asset, "USD", from - staleness, to)?,
        );
    }
    Ok(prices)
}

/// Observations of `base`/`quote` in [from, to], plus the latest one before `from`.
pub fn rate_points(
    connection: &mut DbConnection,
    base: &str,
    quote: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<PricePoint>, AppError> {
    let pair = rates::table
        .filter(rates::base.eq(base))
        .filter(rates::quote.eq(quote));
    let before: Option<(NaiveDateTime, String)> = pair
        .filter(rates::as_of.lt(from))
        .order(rates::as_of.desc())
        .select((rates::as_of, rates::rate))
        .first(connection)
        .optional()?;
    let within: Vec<(NaiveDateTime, String)> = pair
        .filter(rates::as_of.ge(from))
        .filter(rates::as_of.le(to))
        .order(rates::as_of.asc())
        .select((rates::as_of, rates::rate))
        .load(connection)?;
    before
        .into_iter()
        .chain(within)
        .map(|(as_of, rate)| {
            let rate = rate.parse::<Decimal>().map_err(AppError::internal)?;
            Ok(PricePoint { as_of, rate })
        })
        .collect()
}

/// The latest usable `base`→`quote` rate at `at` (one query): the newest observation at or
/// before `at`, unless it is older than `staleness`. A currency against itself is 1.
pub fn current_rate(
    connection: &mut DbConnection,
    base: &str,
    quote: &str,
    at: NaiveDateTime,
    staleness: chrono::Duration,
) -> Result<Option<(Decimal, NaiveDateTime)>, AppError> {
    if base == quote {
        return Ok(Some((Decimal::ONE, at)));
    }
    let latest: Option<(NaiveDateTime, String)> = rates_up_to(base, quote, at)
        .select((rates::as_of, rates::rate))
        .first(connection)
        .optional()?;
    rate_in_force(base, quote, latest, at, staleness)
}

/// The rates of `base` in `quote` observed at or before `at`, newest first: the first is the
/// one in force at `at`, if it is not stale.
#[diesel::dsl::auto_type]
pub fn rates_up_to<'a>(base: &'a str, quote: &'a str, at: NaiveDateTime) -> _ {
    rates::table
        .filter(rates::base.eq(base))
        .filter(rates::quote.eq(quote))
        .filter(rates::as_of.le(at))
        .order(rates::as_of.desc())
}

/// The rate in force at `at`, given the latest observation at or before it: none when there is
/// none or it is older than `staleness`; one when base and quote are the same.
pub fn rate_in_force(
    base: &str,
    quote: &str,
    latest: Option<(NaiveDateTime, String)>,
    at: NaiveDateTime,
    staleness: chrono::Duration,
) -> Result<Option<(Decimal, NaiveDateTime)>, AppError> {
    if base == quote {
        return Ok(Some((Decimal::ONE, at)));
    }
    let Some((as_of, rate)) = latest else {
        return Ok(None);
    };
    let point = PricePoint {
        as_of,
        rate: rate.parse::<Decimal>().map_err(AppError::internal)?,
    };
    Ok(
        match super::value_at(Decimal::ONE, at, &[point], staleness) {
            super::Valuation::Priced {
                usd_price,
                price_at,
                ..
            } => Some((usd_price, price_at)),
            _ => None,
        },
    )
}

/// The atoms of `asset` on an account, by its [`Account::key`] (no row: none yet).
#[diesel::dsl::auto_type]
pub fn account_atoms<'a>(account: String, asset: &'a str) -> _ {
    balances::table
        .filter(balances::account.eq(account))
        .filter(balances::asset.eq(asset))
        .select(balances::atoms)
}

/// A rate observation to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRate {
    pub base: String,
    pub quote: String,
    pub as_of: NaiveDateTime,
    pub rate: Decimal,
}

/// Stores rates; an observation already stored with the same value is skipped, a different value
/// for the same pair and time is a conflict (corrections are new observations).
pub fn insert_rates(
    connection: &mut DbConnection,
    new_rates: &[NewRate],
    source: &str,
) -> Result<(usize, usize), AppError> {
    let recorded_at = crate::db::now();
    let mut inserted = 0;
    let mut unchanged = 0;
    for rate in new_rates {
        let existing: Option<String> = rates::table
            .find((&rate.base, &rate.quote, rate.as_of))
            .select(rates::rate)
            .first(connection)
            .optional()?;
        match existing {
            Some(stored) if stored.parse::<Decimal>().ok() == Some(rate.rate) => unchanged += 1,
            Some(stored) => {
                return Err(AppError::Conflict(format!(
                    "{}/{} at {} is already stored as {stored}",
                    rate.base, rate.quote, rate.as_of
                )))
            }
            None => {
                diesel::insert_into(rates::table)
                    .values((
                        rates::base.eq(&rate.base),
                        rates::quote.eq(&rate.quote),
                        rates::as_of.eq(rate.as_of),
                        rates::rate.eq(rate.rate.normalize().to_string()),
                        rates::source.eq(source),
                        rates::recorded_at.eq(recorded_at),
                    ))
                    .execute(connection)?;
                inserted += 1;
            }
        }
    }
    Ok((inserted, unchanged))
}

/// Stores rates and audits the load when anything new was stored. Call inside a write
/// transaction.
pub fn load_rates(
    connection: &mut DbConnection,
    new_rates: &[NewRate],
    source: &str,
    actor: &Actor,
    request_id: Option<String>,
) -> Result<(usize, usize), AppError> {
    let (inserted, unchanged) = insert_rates(connection, new_rates, source)?;
    if inserted > 0 {
        audit::store::append(
            connection,
            NewAuditEntry::new(actor.clone(), "rates.load", "rates", source, request_id)
                .details(serde_json::json!({ "inserted": inserted, "unchanged": unchanged })),
        )?;
    }
    Ok((inserted, unchanged))
}

/// A user's balances per asset, in atoms: (asset, available, held).
pub fn user_balances(
    connection: &mut DbConnection,
    user_id: &str,
) -> QueryResult<Vec<(String, i64, i64)>> {
    let available = Account::Available(user_id.to_string()).key();
    let held = Account::Held(user_id.to_string()).key();
    let rows: Vec<(String, String, i64)> = balances::table
        .filter(balances::account.eq_any([&available, &held]))
        .select((balances::account, balances::asset, balances::atoms))
        .load(connection)?;
    let mut per_asset: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (account, asset, atoms) in rows {
        let slot = per_asset.entry(asset).or_default();
        if account == available {
            slot.0 += atoms;
        } else {
            slot.1 += atoms;
        }
    }
    Ok(per_asset
        .into_iter()
        .map(|(asset, (available, held))| (asset, available, held))
        .collect())
}

#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    pub user_id: Option<String>,
    pub asset: Option<String>,
    pub kind: Option<EntryKind>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
    /// Only entries after this one in the listing's order (the previous page's last).
    pub after: Option<EntryCursor>,
    pub limit: i64,
}

/// Entries newest first by the time they occurred, then by ledger order. Receipt time, not
/// `seq`: on PostgreSQL a user's entries are indexed by user and receipt time (see migration
/// `2026-12-04-000003_ledger_user_by_time`), so a page reads only its own rows there.
pub fn entries(
    connection: &mut DbConnection,
    filter: &EntryFilter,
) -> Result<Vec<LedgerEntry>, AppError> {
    let mut query = ledger_entries::table
        .select(EntryRow::as_select())
        .into_boxed();
    if let Some(user_id) = &filter.user_id {
        query = query.filter(ledger_entries::user_id.eq(user_id.clone()));
    }
    if let Some(asset) = &filter.asset {
        query = query.filter(ledger_entries::asset.eq(asset.clone()));
    }
    if let Some(kind) = filter.kind {
        query = query.filter(ledger_entries::kind.eq(kind.as_str()));
    }
    if let Some(from) = filter.from {
        query = query.filter(ledger_entries::occurred_at.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(ledger_entries::occurred_at.lt(to));
    }
    if let Some(after) = filter.after {
        // `(occurred_at, seq) < (after.occurred_at, after.seq)`, with a bound on the indexed
        // column alone so that the index scan starts there.
        query = query
            .filter(ledger_entries::occurred_at.le(after.occurred_at))
            .filter(
                ledger_entries::occurred_at
                    .lt(after.occurred_at)
                    .or(ledger_entries::seq.lt(after.seq)),
            );
    }
    query
        .order((
            ledger_entries::occurred_at.desc(),
            ledger_entries::seq.desc(),
        ))
        .limit(filter.limit)
        .load::<EntryRow>(connection)?
        .into_iter()
        .map(EntryRow::into_entry)
        .collect()
}

/// Payouts of `asset` the user received in `(since, before]`. By the receipt time, not the
/// recording time: a backfilled import is not fresh money.
#[diesel::dsl::auto_type]
pub fn payouts_received<'a>(
    user_id: &'a str,
    asset: &'a str,
    since: NaiveDateTime,
    before: NaiveDateTime,
) -> _ {
    let payout: &'static str = EntryKind::Payout.as_str();
    ledger_entries::table
        .filter(ledger_entries::user_id.eq(user_id))
        .filter(ledger_entries::kind.eq(payout))
        .filter(ledger_entries::asset.eq(asset))
        .filter(ledger_entries::occurred_at.gt(since))
        .filter(ledger_entries::occurred_at.le(before))
}

/// A user account's balance of `asset` just before entry `before_seq`: what it was when that
/// entry was made.
pub fn balance_before(
    connection: &mut DbConnection,
    user_id: &str,
    account: &Account,
    asset: &str,
    before_seq: i64,
) -> QueryResult<i64> {
    let key = account.key();
    let sum = diesel::dsl::sql::<BigInt>("CAST(COALESCE(SUM(amount), 0) AS BIGINT)");
    let earlier = ledger_entries::table
        .filter(ledger_entries::user_id.eq(user_id))
        .filter(ledger_entries::asset.eq(asset))
        .filter(ledger_entries::seq.lt(before_seq));
    let credits: i64 = earlier
        .filter(ledger_entries::credit_account.eq(&key))
        .select(sum.clone())
        .first(connection)?;
    let debits: i64 = earlier
        .filter(ledger_entries::debit_account.eq(&key))
        .select(sum)
        .first(connection)?;
    Ok(credits - debits)
}

/// The sequence number of the user's first entry in a transaction.
pub fn transaction_seq(
    connection: &mut DbConnection,
    user_id: &str,
    transaction_id: &str,
) -> QueryResult<Option<i64>> {
    ledger_entries::table
        .filter(ledger_entries::user_id.eq(user_id))
        .filter(ledger_entries::transaction_id.eq(transaction_id))
        .select(diesel::dsl::min(ledger_entries::seq))
        .first(connection)
}

/// Walks the ledger chain, then checks every stored balance against the entries' sums.
pub fn verify(connection: &mut DbConnection) -> Result<Verification, AppError> {
    const PAGE: i64 = 10_000;
    let mut verifier = ChainVerifier::new(CHAIN);
    // asset → account → credits minus debits; looked up by &str so known keys are not copied.
    let mut sums: HashMap<String, HashMap<String, i64>> = HashMap::new();
    let mut add = |asset: &str, account: &str, delta: i64| {
        let accounts = match sums.get_mut(asset) {
            Some(accounts) => accounts,
            None => sums.entry(asset.to_string()).or_default(),
        };
        match accounts.get_mut(account) {
            Some(sum) => *sum += delta,
            None => {
                accounts.insert(account.to_string(), delta);
            }
        }
    };
    // One thread loads the next page while this one hashes the current page.
    let broken = crate::db::read_ahead(
        connection,
        0,
        |connection, after| {
            Ok(ledger_entries::table
                .filter(ledger_entries::seq.gt(after))
                .order(ledger_entries::seq.asc())
                .limit(PAGE)
                .select(EntryRow::as_select())
                .load(connection)?)
        },
        |rows| {
            let full = i64::try_from(rows.len()).unwrap_or(0) == PAGE;
            rows.last().filter(|_| full).map(|row| row.seq)
        },
        |page| {
            for row in page {
                let entry = row.into_entry()?;
                if let Err(broken) = verifier.check(&entry) {
                    return Ok(ControlFlow::Break(broken));
                }
                add(&entry.asset, &entry.credit_account, entry.amount);
                add(&entry.asset, &entry.debit_account, -entry.amount);
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    if let Some(broken) = broken {
        return Ok(Verification::Broken(broken));
    }
    let (head_seq, head_hash): (i64, String) = chain_heads::table
        .find(CHAIN)
        .select((chain_heads::seq, chain_heads::hash))
        .first(connection)?;
    let entries = match verifier.finish(head_seq, &head_hash) {
        Ok(entries) => entries,
        Err(broken) => return Ok(Verification::Broken(broken)),
    };
    let stored: Vec<(String, String, i64)> = balances::table
        .select((balances::account, balances::asset, balances::atoms))
        .load(connection)?;
    for (account, asset, atoms) in stored {
        let expected = sums
            .get_mut(&asset)
            .and_then(|accounts| accounts.remove(&account))
            .unwrap_or(0);
        if expected != atoms {
            return Ok(Verification::Inconsistent(format!(
                "balance of {account} in {asset} is {atoms} atoms but its entries sum to {expected}"
            )));
        }
    }
    for (asset, accounts) in sums {
        if let Some((account, expected)) = accounts.into_iter().find(|(_, sum)| *sum != 0) {
            return Ok(Verification::Inconsistent(format!(
                "balance of {account} in {asset} is missing; its entries sum to {expected}"
            )));
        }
    }
    Ok(Verification::Intact {
        entries,
        head: head_hash,
    })
}

/// Streams the summary columns of entries that occurred in [from, to), in pages.
pub fn summary_rows(
    connection: &mut DbConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
    asset: Option<&str>,
) -> Result<Vec<super::summary::SummaryRow>, AppError> {
    const PAGE: i64 = 50_000;
    let mut rows = Vec::new();
    let mut after = 0i64;
    loop {
        let mut query = ledger_entries::table
            .filter(ledger_entries::occurred_at.ge(from))
            .filter(ledger_entries::occurred_at.lt(to))
            .filter(ledger_entries::seq.gt(after))
            .into_boxed();
        if let Some(asset) = asset {
            query = query.filter(ledger_entries::asset.eq(asset.to_string()));
        }
        let page: Vec<(i64, String, String, i64, NaiveDateTime, Option<String>)> = query
            .order(ledger_entries::seq.asc())
            .limit(PAGE)
            .select((
                ledger_entries::seq,
                ledger_entries::kind,
                ledger_entries::asset,
                ledger_entries::amount,
                ledger_entries::occurred_at,
                ledger_entries::fmv_usd,
            ))
            .load(connection)?;
        let count = page.len();
        for (seq, kind, asset, amount, occurred_at, fmv_usd) in page {
            after = seq;
            let kind = EntryKind::parse(&kind).ok_or_else(|| {
                AppError::internal(anyhow::anyhow!(
                    "ledger entry {seq} has unknown kind {kind}"
                ))
            })?;
            rows.push(super::summary::SummaryRow {
                kind,
                asset,
                amount,
                occurred_at,
                fmv_usd,
            });
        }
        if i64::try_from(count).unwrap_or(0) < PAGE {
            return Ok(rows);
        }
    }
}
