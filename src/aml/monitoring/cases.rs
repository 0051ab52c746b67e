//! Cases: officers group one user's alerts, build the case file (notes and evidence, append-only)
//! and close it with an outcome. Every step is audited with who, when and why.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store::{self, Alert, Case, CaseNote};
use crate::audit::{store as audit, Actor, NewAuditEntry};
use crate::crypto::FieldCipher;
use crate::db::DbConnection;
use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    NoAction,
    UserOffboarded,
    /// A suspicious transaction report was filed with the financial intelligence unit.
    StrFiled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NoAction => "no_action",
            Outcome::UserOffboarded => "user_offboarded",
            Outcome::StrFiled => "str_filed",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "no_action" => Some(Outcome::NoAction),
            "user_offboarded" => Some(Outcome::UserOffboarded),
            "str_filed" => Some(Outcome::StrFiled),
            _ => None,
        }
    }
}

/// A note as officers read it: evidence files are listed, not inlined.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NoteView {
    pub id: String,
    /// `note`, `evidence`, `alerts_added` or `closed`.
    pub kind: String,
    pub body: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub file_sha256: Option<String>,
    pub author: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub created_at: chrono::NaiveDateTime,
}

impl From<CaseNote> for NoteView {
    fn from(note: CaseNote) -> Self {
        NoteView {
            id: note.id,
            kind: note.kind,
            body: note.body,
            file_name: note.file_name,
            content_type: note.content_type,
            file_sha256: note.file_sha256,
            author: note.author,
            created_at: note.created_at,
        }
    }
}

/// A case with its alerts and its file.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseDetail {
    #[serde(flatten)]
    pub case: Case,
    pub alerts: Vec<Alert>,
    pub notes: Vec<NoteView>,
}

/// An evidence file to attach.
pub struct Evidence {
    pub file_name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

fn file_context(note_id: &str) -> String {
    format!("case_notes.file:{note_id}")
}

pub fn detail(connection: &mut DbConnection, id: &str) -> Result<CaseDetail, AppError> {
    let case = store::find_case(connection, id)?
        .ok_or_else(|| AppError::NotFound(format!("no case {id}")))?;
    let alerts = store::list_alerts(
        connection,
        &store::AlertFilter {
            case_id: Some(id.to_string()),
            limit: 1_000,
            ..Default::default()
        },
    )?;
    let notes = store::notes(connection, id)?
        .into_iter()
        .map(NoteView::from)
        .collect();
    Ok(CaseDetail {
        case,
        alerts,
        notes,
    })
}

fn open_case(connection: &mut DbConnection, id: &str) -> Result<Case, AppError> {
    let case = store::find_case(connection, id)?
        .ok_or_else(|| AppError::NotFound(format!("no case {id}")))?;
    if case.status != "open" {
        return Err(AppError::Conflict(format!("case {id} is closed")));
    }
    Ok(case)
}

/// Checks that the alerts exist, are open and are about the case's user.
fn attachable(
    connection: &mut DbConnection,
    alert_ids: &[String],
    user_id: Option<&str>,
) -> Result<Vec<Alert>, AppError> {
    if alert_ids.is_empty() {
        return Err(AppError::invalid_field(
            "alert_ids",
            "required",
            "name at least one alert",
        ));
    }
    let alerts = store::find_alerts(connection, alert_ids)?;
    // A new case is about the user of the first alert named.
    let first_user = alert_ids
        .first()
        .and_then(|first| alerts.iter().find(|alert| &alert.id == first))
        .map(|alert| alert.user_id.clone());
    let expected = user_id.map(str::to_string).or(first_user);
    for (index, id) in alert_ids.iter().enumerate() {
        let field = format!("alert_ids[{index}]");
        let alert = alerts.iter().find(|alert| &alert.id == id).ok_or_else(|| {
            AppError::invalid_field(&field, "unknown_alert", format!("no alert {id}"))
        })?;
        if alert.status != "open" {
            return Err(AppError::invalid_field(
                &field,
                "not_open",
                format!("alert {id} is {}", alert.status),
            ));
        }
        if expected.as_deref() != Some(alert.user_id.as_str()) {
            return Err(AppError::invalid_field(
                &field,
                "other_user",
                format!("alert {id} is about another user: a case is about one user"),
            ));
        }
    }
    Ok(alerts)
}

fn note(
    connection: &mut DbConnection,
    case_id: &str,
    kind: &str,
    body: &str,
    actor: &Actor,
) -> Result<CaseNote, AppError> {
    let note = CaseNote {
        id: uuid::Uuid::new_v4().to_string(),
        case_id: case_id.to_string(),
        kind: kind.to_string(),
        body: body.to_string(),
        file_name: None,
        content_type: None,
        file_sha256: None,
        file_encrypted: None,
        author: actor.id.clone(),
        created_at: crate::db::now(),
    };
    store::insert_note(connection, &note)?;
    Ok(note)
}

fn audit_case(
    connection: &mut DbConnection,
    actor: &Actor,
    action: &str,
    case_id: &str,
    reason: Option<&str>,
    details: serde_json::Value,
    request_id: Option<String>,
) -> Result<(), AppError> {
    audit::append(
        connection,
        NewAuditEntry::new(actor.clone(), action, "case", case_id, request_id)
            .reason(reason.map(str::to_string))
            .details(details),
    )?;
    Ok(())
}

/// Opens a case over one or more open alerts of one user.
pub fn open(
    connection: &mut DbConnection,
    title: &str,
    alert_ids: &[String],
    actor: &Actor,
    request_id: Option<String>,
) -> Result<CaseDetail, AppError> {
    let alerts = attachable(connection, alert_ids, None)?;
    let Some(first) = alerts.first() else {
        return Err(AppError::invalid_field(
            "alert_ids",
            "required",
            "name at least one alert",
        ));
    };
    let case = Case {
        id: uuid::Uuid::new_v4().to_string(),
        jurisdiction: first.jurisdiction.clone(),
        user_id: first.user_id.clone(),
        title: title.to_string(),
        status: "open".into(),
        outcome: None,
        opened_by: actor.id.clone(),
        opened_at: crate::db::now(),
        closed_by: None,
        closed_at: None,
        closing_reason: None,
    };
    store::insert_case(connection, &case)?;
    attach(
        connection,
        &case.id,
        alert_ids,
        actor,
        request_id,
        "case.open",
    )?;
    detail(connection, &case.id)
}

/// Adds more open alerts of the case's user.
pub fn add_alerts(
    connection: &mut DbConnection,
    case_id: &str,
    alert_ids: &[String],
    actor: &Actor,
    request_id: Option<String>,
) -> Result<CaseDetail, AppError> {
    let case = open_case(connection, case_id)?;
    attachable(connection, alert_ids, Some(&case.user_id))?;
    attach(
        connection,
        case_id,
        alert_ids,
        actor,
        request_id,
        "case.add_alerts",
    )?;
    detail(connection, case_id)
}

fn attach(
    connection: &mut DbConnection,
    case_id: &str,
    alert_ids: &[String],
    actor: &Actor,
    request_id: Option<String>,
    action: &str,
) -> Result<(), AppError> {
    let moved = store::attach_alerts(connection, alert_ids, case_id)?;
    if moved != alert_ids.len() {
        return Err(AppError::Conflict(
            "an alert was put into another case meanwhile".into(),
        ));
    }
    note(
        connection,
        case_id,
        "alerts_added",
        &format!("alerts added: {}", alert_ids.join(", ")),
        actor,
    )?;
    audit_case(
        connection,
        actor,
        action,
        case_id,
        None,
        serde_json::json!({ "alert_ids": alert_ids }),
        request_id,
    )
}

/// Adds a note, with an evidence file when given (stored encrypted with its SHA-256).
pub fn add_note(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    case_id: &str,
    body: &str,
    evidence: Option<Evidence>,
    actor: &Actor,
    request_id: Option<String>,
) -> Result<NoteView, AppError> {
    open_case(connection, case_id)?;
    let id = uuid::Uuid::new_v4().to_string();
    let (kind, file_name, content_type, sha256, encrypted) = match evidence {
        Some(file) => (
            "evidence",
            Some(file.file_name),
            Some(file.content_type.to_string()),
            Some(crate::crypto::sha256_hex(&file.bytes)),
            Some(cipher.encrypt_bytes(&file.bytes, &file_context(&id))?),
        ),
        None => ("note", None, None, None, None),
    };
    let note = CaseNote {
        id,
        case_id: case_id.to_string(),
        kind: kind.into(),
        body: body.to_string(),
        file_name,
        content_type,
        file_sha256: sha256,
        file_encrypted: encrypted,
        author: actor.id.clone(),
        created_at: crate::db::now(),
    };
    store::insert_note(connection, &note)?;
    audit_case(
        connection,
        actor,
        "case.add_note",
        case_id,
        None,
        serde_json::json!({ "note_id": note.id, "kind": note.kind, "file_sha256": note.file_sha256 }),
        request_id,
    )?;
    Ok(NoteView::from(note))
}

/// An evidence file, decrypted, for an officer; the read is audited.
pub fn read_evidence(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    case_id: &str,
    note_id: &str,
    actor: &Actor,
    request_id: Option<String>,
) -> Result<(NoteView, Vec<u8>), AppError> {
    let mut note = store::evidence_file(connection, case_id, note_id)?.ok_or_else(|| {
        AppError::NotFound(format!("no evidence file {note_id} in case {case_id}"))
    })?;
    let encrypted = note.file_encrypted.take().unwrap_or_default();
    let bytes = cipher
        .decrypt_bytes(&encrypted, &file_context(note_id))
        .map_err(AppError::internal)?;
    audit_case(
        connection,
        actor,
        "case.read_evidence",
        case_id,
        None,
        serde_json::json!({ "note_id": note_id }),
        request_id,
    )?;
    Ok((NoteView::from(note), bytes))
}

/// Closes the case with an outcome; its alerts close with it.
pub fn close(
    connection: &mut DbConnection,
    case_id: &str,
    outcome: Outcome,
    reason: &str,
    actor: &Actor,
    request_id: Option<String>,
) -> Result<CaseDetail, AppError> {
    open_case(connection, case_id)?;
    let now = crate::db::now();
    if !store::close_case(
        connection,
        case_id,
        outcome.as_str(),
        reason,
        &actor.id,
        now,
    )? {
        return Err(AppError::Conflict(format!(
            "case {case_id} was closed meanwhile"
        )));
    }
    store::close_case_alerts(connection, case_id)?;
    note(
        connection,
        case_id,
        "closed",
        &format!("closed: {}: {reason}", outcome.as_str()),
        actor,
    )?;
    audit_case(
        connection,
        actor,
        "case.close",
        case_id,
        Some(reason),
        serde_json::json!({ "outcome": outcome.as_str() }),
        request_id,
    )?;
    detail(connection, case_id)
}
