//! Alerts and cases in the database.

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use serde::Serialize;
use utoipa::ToSchema;

use super::rules::RuleHit;
use crate::db::riding::RidingWrite;
use crate::db::schema::{alerts, case_notes, cases};
use crate::db::DbConnection;

#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable, Insertable)]
#[diesel(table_name = alerts)]
// NULL for absent values keeps the INSERT's text fixed, so it stays prepared (as `WithdrawalRow`).
#[diesel(treat_none_as_default_value = false)]
pub struct Alert {
    pub id: String,
    pub user_id: String,
    pub jurisdiction: String,
    /// `rule` or `screening`.
    pub origin: String,
    pub rule_id: Option<String>,
    pub rule_version: Option<i32>,
    pub severity: String,
    /// What the rule did: `alert`, `hold` or `reject`.
    pub action: String,
    pub withdrawal_id: Option<String>,
    pub screening_hit_id: Option<String>,
    pub message: String,
    /// JSON: the figures that made the rule fire.
    pub details: String,
    /// `withdrawal`, `daily_batch` or `screening`.
    pub detected_by: String,
    #[serde(skip)]
    pub dedupe_key: String,
    /// `open`, `in_case` or `closed`.
    pub status: String,
    pub case_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub created_at: NaiveDateTime,
}

impl Alert {
    /// The alert for a rule hit on a withdrawal: one per rule version and withdrawal, whether the
    /// gate or the daily batch finds it.
    pub fn for_rule_hit(
        hit: &RuleHit,
        user_id: &str,
        jurisdiction: &str,
        withdrawal_id: &str,
        detected_by: &str,
        now: NaiveDateTime,
    ) -> Alert {
        Alert {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_string(),
            jurisdiction: jurisdiction.to_string(),
            origin: "rule".into(),
            rule_id: Some(hit.rule_id.clone()),
            rule_version: i32::try_from(hit.version).ok(),
            severity: hit.severity.as_str().into(),
            action: hit.action.as_str().into(),
            withdrawal_id: Some(withdrawal_id.to_string()),
            screening_hit_id: None,
            message: hit.message.clone(),
            details: hit.details.to_string(),
            detected_by: detected_by.into(),
            dedupe_key: format!(
                "rule:{}:v{}:withdrawal:{withdrawal_id}",
                hit.rule_id, hit.version
            ),
            status: "open".into(),
            case_id: None,
            created_at: now,
        }
    }
}

/// A screening hit on a platform user, as an alert for the officers.
pub struct ScreeningHitAlert<'a> {
    pub hit_id: &'a str,
    pub user_id: &'a str,
    pub jurisdiction: &'a str,
    /// `ofac`, `un`, `pep`, …
    pub source: &'a str,
    pub entry_name: &'a str,
    pub score: f64,
    /// At or above this score the hit is high severity (the jurisdiction's four-eyes score).
    pub high_from: f64,
    pub now: NaiveDateTime,
}

impl Alert {
    pub fn for_screening_hit(hit: &ScreeningHitAlert) -> Alert {
        let severity = if hit.score >= hit.high_from {
            "high"
        } else {
            "medium"
        };
        Alert {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: hit.user_id.to_string(),
            jurisdiction: hit.jurisdiction.to_string(),
            origin: "screening".into(),
            rule_id: None,
            rule_version: None,
            severity: severity.into(),
            action: "alert".into(),
            withdrawal_id: None,
            screening_hit_id: Some(hit.hit_id.to_string()),
            message: format!(
                "screening hit on the {} list: {} (score {:.2})",
                hit.source, hit.entry_name, hit.score
            ),
            details: serde_json::json!({
                "source": hit.source, "entry_name": hit.entry_name, "score": hit.score,
            })
            .to_string(),
            detected_by: "screening".into(),
            dedupe_key: format!("screening_hit:{}", hit.hit_id),
            status: "open".into(),
            case_id: None,
            created_at: hit.now,
        }
    }
}

/// Stores an alert unless one with the same dedupe key exists; true when it was new.
pub fn insert_alert(connection: &mut DbConnection, alert: &Alert) -> QueryResult<bool> {
    // ON CONFLICT is typed per backend: diesel's MultiBackend cannot express it.
    let insert = diesel::insert_into(alerts::table)
        .values(alert)
        .on_conflict(alerts::dedupe_key)
        .do_nothing();
    let inserted = match connection {
        DbConnection::Sqlite(inner) => insert.execute(inner)?,
        DbConnection::Postgresql(inner) => insert.execute(inner)?,
    };
    Ok(inserted == 1)
}

/// An alert riding with the statement that stores what it is about (the gate's withdrawal).
impl RidingWrite for Alert {
    fn postgres(&self) -> Box<dyn QueryFragment<Pg> + '_> {
        Box::new(
            diesel::insert_into(alerts::table)
                .values(self)
                .on_conflict(alerts::dedupe_key)
                .do_nothing(),
        )
    }

    fn execute(&self, connection: &mut DbConnection) -> QueryResult<()> {
        insert_alert(connection, self).map(|_| ())
    }
}

/// Filters for the alert list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub status: Option<String>,
    pub user_id: Option<String>,
    pub severity: Option<String>,
    pub withdrawal_id: Option<String>,
    pub case_id: Option<String>,
    pub jurisdiction: Option<String>,
    pub limit: i64,
}

/// Alerts, newest first.
pub fn list_alerts(connection: &mut DbConnection, filter: &AlertFilter) -> QueryResult<Vec<Alert>> {
    let mut query = alerts::table.select(Alert::as_select()).into_boxed();
    if let Some(status) = &filter.status {
        query = query.filter(alerts::status.eq(status.clone()));
    }
    if let Some(user_id) = &filter.user_id {
        query = query.filter(alerts::user_id.eq(user_id.clone()));
    }
    if let Some(severity) = &filter.severity {
        query = query.filter(alerts::severity.eq(severity.clone()));
    }
    if let Some(withdrawal_id) = &filter.withdrawal_id {
        query = query.filter(alerts::withdrawal_id.eq(withdrawal_id.clone()));
    }
    if let Some(case_id) = &filter.case_id {
        query = query.filter(alerts::case_id.eq(case_id.clone()));
    }
    if let Some(jurisdiction) = &filter.jurisdiction {
        query = query.filter(alerts::jurisdiction.eq(jurisdiction.clone()));
    }
    query
        .order((alerts::created_at.desc(), alerts::id.desc()))
        .limit(filter.limit)
        .load(connection)
}

pub fn find_alerts(connection: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<Alert>> {
    alerts::table
        .filter(alerts::id.eq_any(ids))
        .select(Alert::as_select())
        .load(connection)
}

/// Puts open alerts into a case; returns how many moved (an alert already in a case stays).
pub fn attach_alerts(
    connection: &mut DbConnection,
    ids: &[String],
    case_id: &str,
) -> QueryResult<usize> {
    diesel::update(
        alerts::table
            .filter(alerts::id.eq_any(ids))
            .filter(alerts::status.eq("open")),
    )
    .set((alerts::status.eq("in_case"), alerts::case_id.eq(case_id)))
    .execute(connection)
}

/// Closes a case's alerts with it.
pub fn close_case_alerts(connection: &mut DbConnection, case_id: &str) -> QueryResult<usize> {
    diesel::update(alerts::table.filter(alerts::case_id.eq(case_id)))
        .set(alerts::status.eq("closed"))
        .execute(connection)
}

#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable, Insertable)]
#[diesel(table_name = cases)]
pub struct Case {
    pub id: String,
    pub jurisdiction: String,
    pub user_id: String,
    pub title: String,
    /// `open` or `closed`.
    pub status: String,
    /// `no_action`, `user_offboarded` or `str_filed`, once closed.
    pub outcome: Option<String>,
    pub opened_by: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub opened_at: NaiveDateTime,
    pub closed_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub closed_at: Option<NaiveDateTime>,
    pub closing_reason: Option<String>,
}

pub fn insert_case(connection: &mut DbConnection, case: &Case) -> QueryResult<()> {
    diesel::insert_into(cases::table)
        .values(case)
        .execute(connection)?;
    Ok(())
}

pub fn find_case(connection: &mut DbConnection, id: &str) -> QueryResult<Option<Case>> {
    cases::table
        .find(id)
        .select(Case::as_select())
        .first(connection)
        .optional()
}

pub fn list_cases(
    connection: &mut DbConnection,
    status: Option<&str>,
    user_id: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<Case>> {
    let mut query = cases::table.select(Case::as_select()).into_boxed();
    if let Some(status) = status {
        query = query.filter(cases::status.eq(status.to_string()));
    }
    if let Some(user_id) = user_id {
        query = query.filter(cases::user_id.eq(user_id.to_string()));
    }
    query
        .order((cases::opened_at.desc(), cases::id.desc()))
        .limit(limit)
        .load(connection)
}

/// Closes an open case; false when it was already closed (a concurrent close won).
pub fn close_case(
    connection: &mut DbConnection,
    id: &str,
    outcome: &str,
    reason: &str,
    officer: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(cases::table.find(id).filter(cases::status.eq("open")))
        .set((
            cases::status.eq("closed"),
            cases::outcome.eq(outcome),
            cases::closing_reason.eq(reason),
            cases::closed_by.eq(officer),
            cases::closed_at.eq(now),
        ))
        .execute(connection)?;
    Ok(updated == 1)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = case_notes)]
pub struct CaseNote {
    pub id: String,
    pub case_id: String,
    /// `note`, `evidence`, `alerts_added` or `closed`.
    pub kind: String,
    pub body: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub file_sha256: Option<String>,
    pub file_encrypted: Option<Vec<u8>>,
    pub author: String,
    pub created_at: NaiveDateTime,
}

pub fn insert_note(connection: &mut DbConnection, note: &CaseNote) -> QueryResult<()> {
    diesel::insert_into(case_notes::table)
        .values(note)
        .execute(connection)?;
    Ok(())
}

/// A note without its file's content, for listing.
#[derive(Queryable, Selectable)]
#[diesel(table_name = case_notes)]
struct NoteSummary {
    id: String,
    case_id: String,
    kind: String,
    body: String,
    file_name: Option<String>,
    content_type: Option<String>,
    file_sha256: Option<String>,
    author: String,
    created_at: NaiveDateTime,
}

/// A case's notes, oldest first, without the files' contents.
pub fn notes(connection: &mut DbConnection, case_id: &str) -> QueryResult<Vec<CaseNote>> {
    let rows: Vec<NoteSummary> = case_notes::table
        .filter(case_notes::case_id.eq(case_id))
        .order((case_notes::created_at.asc(), case_notes::id.asc()))
        .select(NoteSummary::as_select())
        .load(connection)?;
    Ok(rows
        .into_iter()
        .map(|note| CaseNote {
            id: note.id,
            case_id: note.case_id,
            kind: note.kind,
            body: note.body,
            file_name: note.file_name,
            content_type: note.content_type,
            file_sha256: note.file_sha256,
            file_encrypted: None,
            author: note.author,
            created_at: note.created_at,
        })
        .collect())
}

/// One evidence file's encrypted content.
pub fn evidence_file(
    connection: &mut DbConnection,
    case_id: &str,
    note_id: &str,
) -> QueryResult<Option<CaseNote>> {
    case_notes::table
        .find(note_id)
        .filter(case_notes::case_id.eq(case_id))
        .filter(case_notes::file_encrypted.is_not_null())
        .select(CaseNote::as_select())
        .first(connection)
        .optional()
}
