//! KYC queries. Personal data and document files are encrypted before they reach the database.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use super::application::{MissingItem, PersonalData};
use super::decision::CLAIM_MINUTES;
use super::documents::DocumentFile;
use super::risk::RiskRating;
use super::{ApplicationKind, ApplicationStatus, DocumentKind, RiskLevel, Tier};
use crate::audit::Actor;
use crate::crypto::FieldCipher;
use crate::db::schema::{
    kyc_applications, kyc_documents, kyc_profiles, ledger_entries, screening_hits,
};
use crate::db::DbConnection;
use crate::error::AppError;

fn context(column: &str, id: &str) -> String {
    format!("kyc_applications.{column}:{id}")
}

fn document_context(id: &str) -> String {
    format!("kyc_documents.content:{id}")
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = kyc_applications)]
struct ApplicationRow {
    id: String,
    user_id: String,
    jurisdiction: String,
    kind: String,
    target_tier: i32,
    status: String,
    personal_data_encrypted: String,
    screening_ids: String,
    risk_level: String,
    risk_factors: String,
    priority: i32,
    submitted_at: NaiveDateTime,
    due_at: NaiveDateTime,
    submitted_by: String,
    based_on: Option<String>,
    assignee_id: Option<String>,
    assignee_name: Option<String>,
    claim_expires_at: Option<NaiveDateTime>,
    first_approver_id: Option<String>,
    first_approver_name: Option<String>,
    first_approved_at: Option<NaiveDateTime>,
    second_approver_id: Option<String>,
    second_approver_name: Option<String>,
    requested_items: Option<String>,
    decision_code: Option<String>,
    decision_text: Option<String>,
    decided_at: Option<NaiveDateTime>,
    updated_at: NaiveDateTime,
}

/// An application as stored, decrypted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Application {
    pub id: String,
    pub user_id: String,
    pub jurisdiction: String,
    #[schema(value_type = String)]
    pub kind: ApplicationKind,
    #[schema(value_type = u8)]
    pub target_tier: Tier,
    #[schema(value_type = String)]
    pub status: ApplicationStatus,
    pub personal_data: PersonalData,
    pub screening_ids: Vec<String>,
    pub risk: RiskRating,
    pub priority: i32,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub submitted_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub due_at: NaiveDateTime,
    pub submitted_by: String,
    pub based_on: Option<String>,
    pub assignee_id: Option<String>,
    pub assignee_name: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub claim_expires_at: Option<NaiveDateTime>,
    pub first_approver_id: Option<String>,
    pub first_approver_name: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub first_approved_at: Option<NaiveDateTime>,
    pub second_approver_id: Option<String>,
    pub second_approver_name: Option<String>,
    pub requested_items: Vec<MissingItem>,
    pub decision_code: Option<String>,
    pub decision_text: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub decided_at: Option<NaiveDateTime>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub updated_at: NaiveDateTime,
}

impl Application {
    /// Whether the review time is past while the application waits for an officer.
    pub fn sla_breached(&self, now: NaiveDateTime) -> bool {
        self.status.is_open() && self.due_at < now
    }
}

fn corrupt(what: &str, id: &str) -> AppError {
    AppError::internal(anyhow::anyhow!(
        "stored {what} of application {id} is invalid"
    ))
}

fn decode(cipher: &FieldCipher, row: ApplicationRow) -> Result<Application, AppError> {
    let id = row.id.clone();
    let personal_json = cipher
        .decrypt(&row.personal_data_encrypted, &context("personal_data", &id))
        .map_err(AppError::internal)?;
    let personal_data: PersonalData =
        serde_json::from_str(&personal_json).map_err(|_| corrupt("personal data", &id))?;
    let level = RiskLevel::parse(&row.risk_level).ok_or_else(|| corrupt("risk level", &id))?;
    Ok(Application {
        kind: ApplicationKind::parse(&row.kind).ok_or_else(|| corrupt("kind", &id))?,
        target_tier: u8::try_from(row.target_tier)
            .ok()
            .and_then(Tier::new)
            .ok_or_else(|| corrupt("tier", &id))?,
        status: ApplicationStatus::parse(&row.status).ok_or_else(|| corrupt("status", &id))?,
        personal_data,
        screening_ids: serde_json::from_str(&row.screening_ids)
            .map_err(|_| corrupt("screenings", &id))?,
        risk: RiskRating {
            level,
            factors: serde_json::from_str(&row.risk_factors)
                .map_err(|_| corrupt("risk factors", &id))?,
        },
        requested_items: match &row.requested_items {
            Some(items) => {
                serde_json::from_str(items).map_err(|_| corrupt("requested items", &id))?
            }
            None => Vec::new(),
        },
        id: row.id,
        user_id: row.user_id,
        jurisdiction: row.jurisdiction,
        priority: row.priority,
        submitted_at: row.submitted_at,
        due_at: row.due_at,
        submitted_by: row.submitted_by,
        based_on: row.based_on,
        assignee_id: row.assignee_id,
        assignee_name: row.assignee_name,
        claim_expires_at: row.claim_expires_at,
        first_approver_id: row.first_approver_id,
        first_approver_name: row.first_approver_name,
        first_approved_at: row.first_approved_at,
        second_approver_id: row.second_approver_id,
        second_approver_name: row.second_approver_name,
        decision_code: row.decision_code,
        decision_text: row.decision_text,
        decided_at: row.decided_at,
        updated_at: row.updated_at,
    })
}

/// What a new application holds when it is written.
pub struct NewApplication<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub jurisdiction: &'a str,
    pub kind: ApplicationKind,
    pub target_tier: Tier,
    pub personal_data: &'a PersonalData,
    pub screening_ids: &'a [String],
    pub risk: &'a RiskRating,
    pub submitted_at: NaiveDateTime,
    pub due_at: NaiveDateTime,
    pub submitted_by: &'a Actor,
    pub based_on: Option<&'a str>,
}

fn to_json(value: &impl Serialize) -> Result<String, AppError> {
    serde_json::to_string(value).map_err(AppError::internal)
}

pub fn insert_application(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    new: &NewApplication,
) -> Result<(), AppError> {
    diesel::insert_into(kyc_applications::table)
        .values((
            kyc_applications::id.eq(new.id),
            kyc_applications::user_id.eq(new.user_id),
            kyc_applications::jurisdiction.eq(new.jurisdiction),
            kyc_applications::kind.eq(new.kind.as_str()),
            kyc_applications::target_tier.eq(i32::from(new.target_tier.number())),
            kyc_applications::status.eq(ApplicationStatus::Submitted.as_str()),
            kyc_applications::personal_data_encrypted.eq(cipher.encrypt(
                &to_json(new.personal_data)?,
                &context("personal_data", new.id),
            )?),
            kyc_applications::pep_declared.eq(new.personal_data.pep_declared),
            kyc_applications::screening_ids.eq(to_json(&new.screening_ids)?),
            kyc_applications::risk_level.eq(new.risk.level.as_str()),
            kyc_applications::risk_factors.eq(to_json(&new.risk.factors)?),
            kyc_applications::priority.eq(new.risk.level.priority()),
            kyc_applications::submitted_at.eq(new.submitted_at),
            kyc_applications::due_at.eq(new.due_at),
            kyc_applications::submitted_by.eq(&new.submitted_by.id),
            kyc_applications::based_on.eq(new.based_on),
            kyc_applications::updated_at.eq(new.submitted_at),
        ))
        .execute(connection)?;
    Ok(())
}

/// What the applicant sees of a stored document; officers also get the download link.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentSummary {
    pub id: String,
    pub application_id: String,
    #[schema(value_type = String)]
    pub kind: String,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub uploaded_at: NaiveDateTime,
}

pub fn insert_document(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    application_id: &str,
    file: &DocumentFile,
) -> Result<DocumentSummary, AppError> {
    let summary = DocumentSummary {
        id: uuid::Uuid::new_v4().to_string(),
        application_id: application_id.to_string(),
        kind: file.kind.as_str().to_string(),
        file_name: file.file_name.clone(),
        content_type: file.content_type.to_string(),
        size_bytes: i64::try_from(file.bytes.len()).map_err(AppError::internal)?,
        sha256: crate::crypto::sha256_hex(&file.bytes),
        uploaded_at: crate::db::now(),
    };
    diesel::insert_into(kyc_documents::table)
        .values((
            kyc_documents::id.eq(&summary.id),
            kyc_documents::application_id.eq(application_id),
            kyc_documents::kind.eq(&summary.kind),
            kyc_documents::file_name.eq(&summary.file_name),
            kyc_documents::content_type.eq(&summary.content_type),
            kyc_documents::size_bytes.eq(summary.size_bytes),
            kyc_documents::sha256.eq(&summary.sha256),
            kyc_documents::content_encrypted
                .eq(cipher.encrypt_bytes(&file.bytes, &document_context(&summary.id))?),
            kyc_documents::uploaded_at.eq(summary.uploaded_at),
        ))
        .execute(connection)?;
    Ok(summary)
}

type DocumentColumns = (
    kyc_documents::id,
    kyc_documents::application_id,
    kyc_documents::kind,
    kyc_documents::file_name,
    kyc_documents::content_type,
    kyc_documents::size_bytes,
    kyc_documents::sha256,
    kyc_documents::uploaded_at,
);

const DOCUMENT_COLUMNS: DocumentColumns = (
    kyc_documents::id,
    kyc_documents::application_id,
    kyc_documents::kind,
    kyc_documents::file_name,
    kyc_documents::content_type,
    kyc_documents::size_bytes,
    kyc_documents::sha256,
    kyc_documents::uploaded_at,
);

type DocumentTuple = (
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    NaiveDateTime,
);

fn summary(
    (id, application_id, kind, file_name, content_type, size_bytes, sha256, uploaded_at): DocumentTuple,
) -> DocumentSummary {
    DocumentSummary {
        id,
        application_id,
        kind,
        file_name,
        content_type,
        size_bytes,
        sha256,
        uploaded_at,
    }
}

/// The documents of the given applications, oldest first.
pub fn documents(
    connection: &mut DbConnection,
    application_ids: &[&str],
) -> QueryResult<Vec<DocumentSummary>> {
    Ok(kyc_documents::table
        .filter(kyc_documents::application_id.eq_any(application_ids))
        .order((kyc_documents::uploaded_at, kyc_documents::id))
        .select(DOCUMENT_COLUMNS)
        .load::<DocumentTuple>(connection)?
        .into_iter()
        .map(summary)
        .collect())
}

/// One document with its decrypted content.
pub fn document_content(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    document_id: &str,
) -> Result<Option<(DocumentSummary, Vec<u8>)>, AppError> {
    let found: Option<(DocumentTuple, Vec<u8>)> = kyc_documents::table
        .find(document_id)
        .select((DOCUMENT_COLUMNS, kyc_documents::content_encrypted))
        .first(connection)
        .optional()?;
    let Some((tuple, encrypted)) = found else {
        return Ok(None);
    };
    let content = cipher
        .decrypt_bytes(&encrypted, &document_context(document_id))
        .map_err(AppError::internal)?;
    Ok(Some((summary(tuple), content)))
}

pub fn find(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    id: &str,
) -> Result<Option<Application>, AppError> {
    kyc_applications::table
        .find(id)
        .select(ApplicationRow::as_select())
        .first(connection)
        .optional()?
        .map(|row| decode(cipher, row))
        .transpose()
}

pub fn require(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    id: &str,
) -> Result<Application, AppError> {
    find(connection, cipher, id)?
        .ok_or_else(|| AppError::NotFound(format!("no KYC application {id}")))
}

const OPEN_STATUSES: [&str; 3] = ["submitted", "info_requested", "approval_pending"];

/// The user's application still in progress, if any: a user has one at a time.
pub fn open_application_of(
    connection: &mut DbConnection,
    user_id: &str,
) -> QueryResult<Option<String>> {
    kyc_applications::table
        .filter(kyc_applications::user_id.eq(user_id))
        .filter(kyc_applications::status.eq_any(OPEN_STATUSES))
        .select(kyc_applications::id)
        .first(connection)
        .optional()
}

/// The user's latest applications, newest first.
pub fn applications_of(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    user_id: &str,
    limit: i64,
) -> Result<Vec<Application>, AppError> {
    kyc_applications::table
        .filter(kyc_applications::user_id.eq(user_id))
        .order((
            kyc_applications::submitted_at.desc(),
            kyc_applications::id.desc(),
        ))
        .limit(limit)
        .select(ApplicationRow::as_select())
        .load(connection)?
        .into_iter()
        .map(|row| decode(cipher, row))
        .collect()
}

/// The personal data each user gave in KYC: from their latest approved application, else their
/// latest one. Users without an application are absent.
pub fn identities(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    user_ids: &[String],
) -> Result<std::collections::HashMap<String, PersonalData>, AppError> {
    let rows: Vec<(String, String, String, String)> = kyc_applications::table
        .filter(kyc_applications::user_id.eq_any(user_ids))
        .order((
            kyc_applications::user_id.asc(),
            kyc_applications::submitted_at.desc(),
        ))
        .select((
            kyc_applications::user_id,
            kyc_applications::id,
            kyc_applications::status,
            kyc_applications::personal_data_encrypted,
        ))
        .load(connection)?;
    let mut chosen: std::collections::HashMap<String, (bool, String)> =
        std::collections::HashMap::new();
    for (user_id, id, status, encrypted) in rows {
        let approved = status == ApplicationStatus::Approved.as_str();
        // Each user's latest application comes first; an older approved one replaces it once.
        let take = match chosen.get(&user_id) {
            None => true,
            Some((had_approved, _)) => approved && !had_approved,
        };
        if take {
            let json = cipher
                .decrypt(&encrypted, &context("personal_data", &id))
                .map_err(AppError::internal)?;
            chosen.insert(user_id, (approved, json));
        }
    }
    chosen
        .into_iter()
        .map(|(user_id, (_, json))| {
            let data: PersonalData =
                serde_json::from_str(&json).map_err(|_| corrupt("personal data", &user_id))?;
            Ok((user_id, data))
        })
        .collect()
}

/// Filters of the review queue.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    /// Empty: the applications waiting for an officer (submitted, approval pending).
    pub statuses: Vec<ApplicationStatus>,
    pub tier: Option<Tier>,
    pub jurisdiction: Option<String>,
    pub risk: Option<RiskLevel>,
    pub sla_breached: Option<bool>,
    pub assignee: Option<AssigneeFilter>,
    pub after: Option<QueueCursor>,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeFilter {
    Nobody,
    Token(String),
}

/// The position after the last row of a page, in queue order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueCursor {
    pub priority: i32,
    pub due_at: NaiveDateTime,
    pub id: String,
}

impl QueueCursor {
    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            "{}|{}|{}",
            self.priority,
            self.due_at.and_utc().timestamp_micros(),
            self.id
        ))
    }

    pub fn decode(text: &str) -> Option<QueueCursor> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, '|');
        let priority = parts.next()?.parse().ok()?;
        let micros: i64 = parts.next()?.parse().ok()?;
        let due_at = chrono::DateTime::from_timestamp_micros(micros)?.naive_utc();
        let id = parts.next()?.to_string();
        Some(QueueCursor {
            priority,
            due_at,
            id,
        })
    }
}

/// The review queue in working order: priority, then due time. One indexed query per status,
/// merged: an `IN` over several statuses would make PostgreSQL sort every waiting application.
pub fn queue(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    filter: &QueueFilter,
    now: NaiveDateTime,
) -> Result<Vec<Application>, AppError> {
    let statuses = if filter.statuses.is_empty() {
        vec![
            ApplicationStatus::Submitted,
            ApplicationStatus::ApprovalPending,
        ]
    } else {
        filter.statuses.clone()
    };
    let mut rows = Vec::new();
    for status in statuses {
        rows.extend(
            queue_query(filter, status, now)
                .order((
                    kyc_applications::priority,
                    kyc_applications::due_at,
                    kyc_applications::id,
                ))
                .limit(filter.limit)
                .select(ApplicationRow::as_select())
                .load(connection)?,
        );
    }
    rows.sort_by(|a, b| (a.priority, a.due_at, &a.id).cmp(&(b.priority, b.due_at, &b.id)));
    rows.truncate(usize::try_from(filter.limit).unwrap_or(0));
    rows.into_iter().map(|row| decode(cipher, row)).collect()
}

/// The applications of one status that pass the filter, after the cursor.
fn queue_query<'a>(
    filter: &QueueFilter,
    status: ApplicationStatus,
    now: NaiveDateTime,
) -> kyc_applications::BoxedQuery<'a, crate::db::MultiBackend> {
    let mut query = kyc_applications::table
        .filter(kyc_applications::status.eq(status.as_str()))
        .into_boxed();
    if let Some(tier) = filter.tier {
        query = query.filter(kyc_applications::target_tier.eq(i32::from(tier.number())));
    }
    if let Some(jurisdiction) = &filter.jurisdiction {
        query = query.filter(kyc_applications::jurisdiction.eq(jurisdiction.clone()));
    }
    if let Some(risk) = filter.risk {
        // The priority follows from the risk: naming it lets the queue index serve the filter.
        query = query
            .filter(kyc_applications::priority.eq(risk.priority()))
            .filter(kyc_applications::risk_level.eq(risk.as_str()));
    }
    match filter.sla_breached {
        Some(true) => query = query.filter(kyc_applications::due_at.lt(now)),
        Some(false) => query = query.filter(kyc_applications::due_at.ge(now)),
        None => {}
    }
    match &filter.assignee {
        Some(AssigneeFilter::Nobody) => {
            query = query.filter(
                kyc_applications::assignee_id
                    .is_null()
                    .or(kyc_applications::claim_expires_at.lt(now)),
            )
        }
        Some(AssigneeFilter::Token(id)) => {
            query = query
                .filter(kyc_applications::assignee_id.eq(id.clone()))
                .filter(kyc_applications::claim_expires_at.ge(now))
        }
        None => {}
    }
    if let Some(after) = &filter.after {
        query = query.filter(
            kyc_applications::priority
                .gt(after.priority)
                .or(kyc_applications::priority.eq(after.priority).and(
                    kyc_applications::due_at
                        .gt(after.due_at)
                        .or(kyc_applications::due_at
                            .eq(after.due_at)
                            .and(kyc_applications::id.gt(after.id.clone()))),
                )),
        );
    }
    query
}

/// Takes the claim for `actor` if nobody else holds a live one. One conditional update: of two
/// officers claiming at once exactly one changes the row.
pub fn claim(
    connection: &mut DbConnection,
    id: &str,
    actor: &Actor,
    now: NaiveDateTime,
) -> QueryResult<Option<NaiveDateTime>> {
    let until = now + chrono::Duration::minutes(CLAIM_MINUTES);
    let changed = diesel::update(
        kyc_applications::table
            .filter(kyc_applications::id.eq(id))
            .filter(kyc_applications::status.eq_any(["submitted", "approval_pending"]))
            .filter(
                kyc_applications::assignee_id
                    .is_null()
                    .or(kyc_applications::claim_expires_at.lt(now))
                    .or(kyc_applications::assignee_id.eq(&actor.id)),
            ),
    )
    .set((
        kyc_applications::assignee_id.eq(&actor.id),
        kyc_applications::assignee_name.eq(&actor.name),
        kyc_applications::claim_expires_at.eq(until),
        kyc_applications::updated_at.eq(now),
    ))
    .execute(connection)?;
    Ok((changed == 1).then_some(until))
}

pub fn release(connection: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(kyc_applications::table.find(id))
        .set((
            kyc_applications::assignee_id.eq(None::<String>),
            kyc_applications::assignee_name.eq(None::<String>),
            kyc_applications::claim_expires_at.eq(None::<NaiveDateTime>),
            kyc_applications::updated_at.eq(now),
        ))
        .execute(connection)?;
    Ok(())
}

/// Takes the application for one step: only while it is still in `from` (and, for an officer's
/// decision, still claimed by `holder`). Of two concurrent steps exactly one changes the row; on
/// PostgreSQL the other waits for it and then finds nothing to change.
pub fn take_for_step(
    connection: &mut DbConnection,
    id: &str,
    from: ApplicationStatus,
    holder: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let mut statement = diesel::update(kyc_applications::table)
        .set(kyc_applications::updated_at.eq(now))
        .filter(kyc_applications::id.eq(id.to_string()))
        .filter(kyc_applications::status.eq(from.as_str()))
        .into_boxed();
    if let Some(holder) = holder {
        statement = statement
            .filter(kyc_applications::assignee_id.eq(holder.to_string()))
            .filter(kyc_applications::claim_expires_at.gt(now));
    }
    Ok(statement.execute(connection)? == 1)
}

pub fn record_first_approval(
    connection: &mut DbConnection,
    id: &str,
    actor: &Actor,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(kyc_applications::table.find(id))
        .set((
            kyc_applications::status.eq(ApplicationStatus::ApprovalPending.as_str()),
            kyc_applications::first_approver_id.eq(&actor.id),
            kyc_applications::first_approver_name.eq(&actor.name),
            kyc_applications::first_approved_at.eq(now),
        ))
        .execute(connection)?;
    release(connection, id, now)
}

/// A final decision (approved or rejected); `second_approver` when four eyes applied.
pub fn record_final_decision(
    connection: &mut DbConnection,
    id: &str,
    status: ApplicationStatus,
    code: Option<&str>,
    text: &str,
    second_approver: Option<&Actor>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(kyc_applications::table.find(id))
        .set((
            kyc_applications::status.eq(status.as_str()),
            kyc_applications::decision_code.eq(code),
            kyc_applications::decision_text.eq(text),
            kyc_applications::decided_at.eq(now),
            kyc_applications::second_approver_id.eq(second_approver.map(|actor| &actor.id)),
            kyc_applications::second_approver_name.eq(second_approver.map(|actor| &actor.name)),
        ))
        .execute(connection)?;
    release(connection, id, now)
}

pub fn record_info_request(
    connection: &mut DbConnection,
    id: &str,
    items: &[MissingItem],
    now: NaiveDateTime,
) -> Result<(), AppError> {
    diesel::update(kyc_applications::table.find(id))
        .set((
            kyc_applications::status.eq(ApplicationStatus::InfoRequested.as_str()),
            kyc_applications::requested_items.eq(to_json(&items)?),
            // A pending first approval does not survive new information.
            kyc_applications::first_approver_id.eq(None::<String>),
            kyc_applications::first_approver_name.eq(None::<String>),
            kyc_applications::first_approved_at.eq(None::<NaiveDateTime>),
        ))
        .execute(connection)?;
    Ok(release(connection, id, now)?)
}

/// The applicant's answer to a request for information: new data, a new screening and rating,
/// back in the queue with a new due time.
pub struct Resubmission<'a> {
    pub personal_data: &'a PersonalData,
    pub screening_ids: &'a [String],
    pub risk: &'a RiskRating,
    pub due_at: NaiveDateTime,
}

pub fn record_resubmission(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    id: &str,
    resubmission: &Resubmission,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    diesel::update(kyc_applications::table.find(id))
        .set((
            kyc_applications::status.eq(ApplicationStatus::Submitted.as_str()),
            kyc_applications::personal_data_encrypted.eq(cipher.encrypt(
                &to_json(resubmission.personal_data)?,
                &context("personal_data", id),
            )?),
            kyc_applications::pep_declared.eq(resubmission.personal_data.pep_declared),
            kyc_applications::screening_ids.eq(to_json(&resubmission.screening_ids)?),
            kyc_applications::risk_level.eq(resubmission.risk.level.as_str()),
            kyc_applications::risk_factors.eq(to_json(&resubmission.risk.factors)?),
            kyc_applications::priority.eq(resubmission.risk.level.priority()),
            kyc_applications::due_at.eq(resubmission.due_at),
            kyc_applications::requested_items.eq(None::<String>),
            kyc_applications::updated_at.eq(now),
        ))
        .execute(connection)?;
    Ok(())
}

/// Hits of the given screenings by whether they still count: `(sanctions, pep, unresolved)`
/// where the first two count open, pending and confirmed hits and the last open and pending ones.
pub fn hit_counts(
    connection: &mut DbConnection,
    screening_ids: &[String],
) -> QueryResult<(usize, usize, usize)> {
    let rows: Vec<(String, String, String)> = screening_hits::table
        .filter(screening_hits::screening_id.eq_any(screening_ids))
        .filter(screening_hits::status.eq_any(["open", "dismissal_pending", "confirmed"]))
        .select((
            screening_hits::source,
            screening_hits::entry_id,
            screening_hits::status,
        ))
        .load(connection)?;
    // The legal and the Latin name may both hit one entry: count each entry once.
    let mut entries: std::collections::BTreeMap<(String, String), bool> = Default::default();
    for (source, entry_id, status) in rows {
        *entries.entry((source, entry_id)).or_default() |= status != "confirmed";
    }
    let pep = entries.keys().filter(|(source, _)| source == "pep").count();
    let unresolved = entries.values().filter(|open| **open).count();
    Ok((entries.len() - pep, pep, unresolved))
}

/// The FMV in USD of the user's payouts since `since`.
pub fn payouts_usd_since(
    connection: &mut DbConnection,
    user_id: &str,
    since: NaiveDateTime,
) -> QueryResult<Decimal> {
    let values: Vec<Option<String>> = ledger_entries::table
        .filter(ledger_entries::user_id.eq(user_id))
        .filter(ledger_entries::kind.eq("payout"))
        .filter(ledger_entries::occurred_at.ge(since))
        .select(ledger_entries::fmv_usd)
        .load(connection)?;
    Ok(values
        .iter()
        .flatten()
        .filter_map(|value| value.parse::<Decimal>().ok())
        .sum())
}

/// A user's KYC standing.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = kyc_profiles)]
pub struct Profile {
    pub user_id: String,
    pub jurisdiction: String,
    pub approved_tier: i32,
    pub approved_application_id: String,
    pub risk_level: String,
    pub pep: bool,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub approved_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub next_review_at: NaiveDateTime,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub review_lapsed_at: Option<NaiveDateTime>,
    #[schema(value_type = Option<String>, format = Date)]
    pub document_expires_on: Option<NaiveDate>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub updated_at: NaiveDateTime,
}

impl Profile {
    pub fn approved_tier(&self) -> Tier {
        u8::try_from(self.approved_tier)
            .ok()
            .and_then(Tier::new)
            .unwrap_or(Tier::REGISTERED)
    }
}

pub fn profile(connection: &mut DbConnection, user_id: &str) -> QueryResult<Option<Profile>> {
    kyc_profiles::table
        .find(user_id)
        .select(Profile::as_select())
        .first(connection)
        .optional()
}

/// Writes the user's standing after an approval.
pub fn save_profile(connection: &mut DbConnection, profile: &Profile) -> QueryResult<()> {
    let values = (
        kyc_profiles::jurisdiction.eq(&profile.jurisdiction),
        kyc_profiles::approved_tier.eq(profile.approved_tier),
        kyc_profiles::approved_application_id.eq(&profile.approved_application_id),
        kyc_profiles::risk_level.eq(&profile.risk_level),
        kyc_profiles::pep.eq(profile.pep),
        kyc_profiles::approved_at.eq(profile.approved_at),
        kyc_profiles::next_review_at.eq(profile.next_review_at),
        kyc_profiles::review_lapsed_at.eq(profile.review_lapsed_at),
        kyc_profiles::document_expires_on.eq(profile.document_expires_on),
        kyc_profiles::updated_at.eq(profile.updated_at),
    );
    let updated = diesel::update(kyc_profiles::table.find(&profile.user_id))
        .set(values)
        .execute(connection)?;
    if updated == 0 {
        diesel::insert_into(kyc_profiles::table)
            .values((kyc_profiles::user_id.eq(&profile.user_id), values))
            .execute(connection)?;
    }
    Ok(())
}

/// Users with an application in progress.
#[diesel::dsl::auto_type]
fn users_in_progress() -> _ {
    let open: [&'static str; 3] = OPEN_STATUSES;
    kyc_applications::table
        .filter(kyc_applications::status.eq_any(open))
        .select(kyc_applications::user_id)
}

/// Profiles whose periodic review is due by `now` and that have no application in progress.
pub fn reviews_due(
    connection: &mut DbConnection,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Profile>> {
    kyc_profiles::table
        .filter(kyc_profiles::next_review_at.le(now))
        .filter(kyc_profiles::user_id.ne_all(users_in_progress()))
        .order(kyc_profiles::next_review_at)
        .limit(limit)
        .select(Profile::as_select())
        .load(connection)
}

/// Profiles whose identity document expires by `by` and that have no application in progress.
pub fn documents_expiring(
    connection: &mut DbConnection,
    by: NaiveDate,
    limit: i64,
) -> QueryResult<Vec<Profile>> {
    kyc_profiles::table
        .filter(kyc_profiles::document_expires_on.le(by))
        .filter(kyc_profiles::user_id.ne_all(users_in_progress()))
        .order(kyc_profiles::document_expires_on)
        .limit(limit)
        .select(Profile::as_select())
        .load(connection)
}

/// Profiles overdue past their grace period and not yet marked lapsed.
pub fn reviews_to_lapse(
    connection: &mut DbConnection,
    due_before: NaiveDateTime,
) -> QueryResult<Vec<Profile>> {
    kyc_profiles::table
        .filter(kyc_profiles::next_review_at.lt(due_before))
        .filter(kyc_profiles::review_lapsed_at.is_null())
        .select(Profile::as_select())
        .load(connection)
}

pub fn mark_lapsed(
    connection: &mut DbConnection,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(kyc_profiles::table.find(user_id))
        .set((
            kyc_profiles::review_lapsed_at.eq(now),
            kyc_profiles::updated_at.eq(now),
        ))
        .execute(connection)?;
    Ok(())
}

/// The application and those it reviews, newest first: a review is based on the approved
/// application before it, which may itself be a review.
pub fn lineage(connection: &mut DbConnection, id: &str) -> QueryResult<Vec<String>> {
    let mut chain = vec![id.to_string()];
    // Bounded: a chain is one link per review, and a cycle cannot be written (ids are new).
    while chain.len() < 100 {
        let current = chain.last().map(String::as_str).unwrap_or(id);
        let based_on: Option<Option<String>> = kyc_applications::table
            .find(current)
            .select(kyc_applications::based_on)
            .first(connection)
            .optional()?;
        match based_on.flatten() {
            Some(previous) => chain.push(previous),
            None => break,
        }
    }
    Ok(chain)
}

/// The kinds of the documents of the given applications, for the requirement check.
pub fn document_kinds(
    connection: &mut DbConnection,
    application_ids: &[&str],
) -> QueryResult<Vec<DocumentKind>> {
    let kinds: Vec<String> = kyc_documents::table
        .filter(kyc_documents::application_id.eq_any(application_ids))
        .select(kyc_documents::kind)
        .load(connection)?;
    Ok(kinds
        .iter()
        .filter_map(|kind| DocumentKind::parse(kind))
        .collect())
}

/// A screening hit of an application with the list entry it matched, for side-by-side review.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HitWithEntry {
    pub id: String,
    pub screening_id: String,
    pub source: String,
    pub status: String,
    pub score: String,
    /// The matcher's explanation: names compared, qualifiers, programs.
    #[schema(value_type = Object)]
    pub explanation: serde_json::Value,
    /// The list entry as loaded (names, aliases, birth dates, nationalities, remarks).
    #[schema(value_type = Option<Object>)]
    pub entry: Option<serde_json::Value>,
}

/// id, screening, source, entry id, entry version, status, score, explanation.
type HitRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

pub fn hits_with_entries(
    connection: &mut DbConnection,
    screening_ids: &[String],
) -> Result<Vec<HitWithEntry>, AppError> {
    use crate::db::schema::list_entries;
    let rows: Vec<HitRow> = screening_hits::table
        .filter(screening_hits::screening_id.eq_any(screening_ids))
        .order((screening_hits::score.desc(), screening_hits::id))
        .select((
            screening_hits::id,
            screening_hits::screening_id,
            screening_hits::source,
            screening_hits::entry_id,
            screening_hits::entry_version,
            screening_hits::status,
            screening_hits::score,
            screening_hits::explanation,
        ))
        .load(connection)?;
    let mut seen = std::collections::BTreeSet::new();
    rows.into_iter()
        // The legal and the Latin name may both hit one entry: show it once, best score first.
        .filter(|row| seen.insert((row.2.clone(), row.3.clone())))
        .map(
            |(id, screening_id, source, entry_id, entry_version, status, score, explanation)| {
                let entry: Option<String> = list_entries::table
                    .filter(list_entries::source.eq(&source))
                    .filter(list_entries::entry_id.eq(&entry_id))
                    .filter(list_entries::content_hash.eq(&entry_version))
                    .select(list_entries::data)
                    .first(connection)
                    .optional()?;
                Ok(HitWithEntry {
                    explanation: serde_json::from_str(&explanation).map_err(AppError::internal)?,
                    entry: entry.and_then(|data| serde_json::from_str(&data).ok()),
                    id,
                    screening_id,
                    source,
                    status,
                    score,
                })
            },
        )
        .collect()
}
