//! Audit log queries.

use std::sync::LazyLock;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::PgConnection;

use super::{AuditEntry, NewAuditEntry};
use crate::chain::{ChainVerifier, Chained, Verification};
use crate::db::schema::{audit_log, chain_heads};
use crate::db::{chain_link, DbConnection};

const CHAIN: &str = "audit";

#[derive(Queryable, Insertable)]
#[diesel(table_name = audit_log)]
struct AuditRow {
    seq: i64,
    occurred_at: NaiveDateTime,
    actor_id: String,
    actor_name: String,
    actor_role: String,
    action: String,
    subject_type: String,
    subject_id: String,
    reason: Option<String>,
    request_id: Option<String>,
    details: String,
    prev_hash: String,
    hash: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(row: AuditRow) -> Self {
        AuditEntry {
            seq: row.seq,
            occurred_at: row.occurred_at,
            actor_id: row.actor_id,
            actor_name: row.actor_name,
            actor_role: row.actor_role,
            action: row.action,
            subject_type: row.subject_type,
            subject_id: row.subject_id,
            reason: row.reason,
            request_id: row.request_id,
            details: row.details,
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }
}

/// The audit chain and its table, for PostgreSQL's link-and-insert statements.
pub(crate) const CHAIN_TABLE: chain_link::ChainTable = chain_link::ChainTable {
    chain: CHAIN,
    table: "audit_log",
    columns: &[
        "occurred_at",
        "actor_id",
        "actor_name",
        "actor_role",
        "action",
        "subject_type",
        "subject_id",
        "reason",
        "request_id",
        "details",
    ],
};

/// The entry as it will be appended now, before it is linked to the chain.
pub(crate) fn unlinked(new: NewAuditEntry) -> AuditEntry {
    AuditEntry {
        seq: 0,
        occurred_at: crate::db::now(),
        actor_id: new.actor.id,
        actor_name: new.actor.name,
        actor_role: new.actor.role,
        action: new.action,
        subject_type: new.subject_type,
        subject_id: new.subject_id,
        reason: new.reason,
        request_id: new.request_id,
        // serde_json's map is sorted, so this string is canonical.
        details: new.details.to_string(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// Appends an entry. Call it inside the transaction that makes the change it records.
pub fn append(connection: &mut DbConnection, new: NewAuditEntry) -> QueryResult<AuditEntry> {
    let mut entry = unlinked(new);
    let connection = match connection {
        DbConnection::Postgresql(inner) => {
            link_and_insert(inner, &mut entry)?;
            return Ok(entry);
        }
        DbConnection::Sqlite(inner) => inner,
    };
    // Write transactions on SQLite already run one at a time.
    let (seq, prev_hash): (i64, String) = diesel::update(chain_heads::table.find(CHAIN))
        .set(chain_heads::seq.eq(chain_heads::seq + 1))
        .returning((chain_heads::seq, chain_heads::hash))
        .get_result(connection)?;
    entry.seq = seq;
    entry.prev_hash = prev_hash;
    entry.hash = entry.compute_hash();
    diesel::insert_into(audit_log::table)
        .values(AuditRow {
            seq: entry.seq,
            occurred_at: entry.occurred_at,
            actor_id: entry.actor_id.clone(),
            actor_name: entry.actor_name.clone(),
            actor_role: entry.actor_role.clone(),
            action: entry.action.clone(),
            subject_type: entry.subject_type.clone(),
            subject_id: entry.subject_id.clone(),
            reason: entry.reason.clone(),
            request_id: entry.request_id.clone(),
            details: entry.details.clone(),
            prev_hash: entry.prev_hash.clone(),
            hash: entry.hash.clone(),
        })
        .execute(connection)?;
    diesel::update(chain_heads::table.find(CHAIN))
        .set(chain_heads::hash.eq(&entry.hash))
        .execute(connection)?;
    Ok(entry)
}

/// PostgreSQL: the entry linked and inserted in one statement; appenders queue on the head's
/// lock, so sequence numbers have no gaps.
fn link_and_insert(connection: &mut PgConnection, entry: &mut AuditEntry) -> QueryResult<()> {
    static STATEMENT: LazyLock<chain_link::Statement> =
        LazyLock::new(|| chain_link::statement(&CHAIN_TABLE));
    chain_link::insert(connection, &STATEMENT, entry)
}

impl chain_link::Placed for AuditEntry {
    fn place(&mut self, seq: i64, prev_hash: String, hash: String) {
        self.seq = seq;
        self.prev_hash = prev_hash;
        self.hash = hash;
    }

    fn bind_columns<'b>(
        &'b self,
        out: &mut diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Nullable, Text, Timestamp};
        crate::db::bind_values!(out;
            Timestamp => &self.occurred_at,
            Text => &self.actor_id,
            Text => &self.actor_name,
            Text => &self.actor_role,
            Text => &self.action,
            Text => &self.subject_type,
            Text => &self.subject_id,
            Nullable<Text> => &self.reason,
            Nullable<Text> => &self.request_id,
            Text => &self.details,
        );
        Ok(())
    }
}

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
    /// Entries before this sequence number (the cursor), newest first.
    pub before_seq: Option<i64>,
    pub limit: i64,
}

pub fn list(connection: &mut DbConnection, filter: &AuditFilter) -> QueryResult<Vec<AuditEntry>> {
    let mut query = audit_log::table.into_boxed();
    if let Some(actor_id) = &filter.actor_id {
        query = query.filter(audit_log::actor_id.eq(actor_id.clone()));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_log::action.eq(action.clone()));
    }
    if let Some(subject_type) = &filter.subject_type {
        query = query.filter(audit_log::subject_type.eq(subject_type.clone()));
    }
    if let Some(subject_id) = &filter.subject_id {
        query = query.filter(audit_log::subject_id.eq(subject_id.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(audit_log::occurred_at.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(audit_log::occurred_at.lt(to));
    }
    if let Some(before) = filter.before_seq {
        query = query.filter(audit_log::seq.lt(before));
    }
    let rows: Vec<AuditRow> = query
        .order(audit_log::seq.desc())
        .limit(filter.limit)
        .load(connection)?;
    Ok(rows.into_iter().map(AuditEntry::from).collect())
}

/// Walks every entry in order, in pages, and checks the links and the recorded head.
pub fn verify_chain(connection: &mut DbConnection) -> QueryResult<Verification> {
    const PAGE: i64 = 1000;
    let mut verifier = ChainVerifier::new("audit");
    let mut after = 0i64;
    loop {
        let rows: Vec<AuditRow> = audit_log::table
            .filter(audit_log::seq.gt(after))
            .order(audit_log::seq.asc())
            .limit(PAGE)
            .load(connection)?;
        let count = rows.len() as i64;
        for row in rows {
            let entry = AuditEntry::from(row);
            if let Err(broken) = verifier.check(&entry) {
                return Ok(Verification::Broken(broken));
            }
            after = entry.seq;
        }
        if count < PAGE {
            break;
        }
    }
    let (head_seq, head_hash): (i64, String) = chain_heads::table
        .find(CHAIN)
        .select((chain_heads::seq, chain_heads::hash))
        .first(connection)?;
    Ok(match verifier.finish(head_seq, &head_hash) {
        Ok(entries) => Verification::Intact {
            entries,
            head: head_hash,
        },
        Err(broken) => Verification::Broken(broken),
    })
}
