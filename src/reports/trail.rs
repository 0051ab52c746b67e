//! Audit PDFs of one record: a KYC application's full history (its data, documents with their
//! hashes, screening, every decision and who made it) and a withdrawal's decision trace (the
//! checks and their reasons, the rates used, the review, the settlement). Each is made from a
//! canonical JSONL export (the record, then each related row and audit entry, keys sorted),
//! whose SHA-256 it prints.

use chrono::NaiveDateTime;
use serde::Serialize;

use super::pdf::{Column, Layout, Metadata};
use crate::audit::store::AuditFilter;
use crate::audit::AuditEntry;
use crate::crypto::FieldCipher;
use crate::db::DbConnection;
use crate::error::AppError;

/// One table of the document.
pub struct Section {
    pub heading: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<String>>,
    pub empty: &'static str,
}

/// An audit trail ready to render: what it is about, its cover and tables, and the rows of its
/// canonical export.
pub struct Trail {
    pub kind: &'static str,
    pub jurisdiction: String,
    pub title: String,
    pub cover: Vec<(String, String)>,
    pub sections: Vec<Section>,
    pub records: Vec<serde_json::Value>,
    /// When the record's story starts and ends (for the report's period).
    pub span: (NaiveDateTime, NaiveDateTime),
}

fn record(kind: &str, value: impl Serialize) -> Result<serde_json::Value, AppError> {
    Ok(serde_json::json!({
        "record": kind,
        "data": serde_json::to_value(value).map_err(AppError::internal)?,
    }))
}

/// One JSON object per line, keys sorted (serde_json's maps are ordered).
pub fn jsonl(records: &[serde_json::Value]) -> Result<Vec<u8>, AppError> {
    let mut out = Vec::new();
    for value in records {
        serde_json::to_writer(&mut out, value).map_err(AppError::internal)?;
        out.push(b'\n');
    }
    Ok(out)
}

fn when(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn or_dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "—".to_string(), |v| v.to_string())
}

/// Every audit entry about one subject, oldest first.
fn audit_of(
    connection: &mut DbConnection,
    subject_type: &str,
    subject_id: &str,
) -> Result<Vec<AuditEntry>, AppError> {
    let mut entries = crate::audit::store::list(
        connection,
        &AuditFilter {
            subject_type: Some(subject_type.into()),
            subject_id: Some(subject_id.into()),
            limit: 10_000,
            ..AuditFilter::default()
        },
    )?;
    entries.reverse();
    Ok(entries)
}

fn audit_section(entries: &[AuditEntry]) -> Section {
    Section {
        heading: "Every action, in order (from the hash-chained audit log)".into(),
        columns: vec![
            Column::right("Seq", 14.0),
            Column::left("When (UTC)", 32.0),
            Column::left("Who", 40.0),
            Column::left("Action", 36.0),
            Column::left("Why", 56.0),
        ],
        rows: entries
            .iter()
            .map(|entry| {
                vec![
                    entry.seq.to_string(),
                    when(entry.occurred_at),
                    format!("{} ({})", entry.actor_name, entry.actor_role),
                    entry.action.clone(),
                    entry.reason.clone().unwrap_or_default(),
                ]
            })
            .collect(),
        empty: "No audit entries",
    }
}

/// A KYC application's full history.
pub fn kyc_history(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    application_id: &str,
) -> Result<Trail, AppError> {
    let application = crate::kyc::store::require(connection, cipher, application_id)?;
    let documents = crate::kyc::store::documents(connection, &[application_id])?;
    let hits = crate::kyc::store::hits_with_entries(connection, &application.screening_ids)?;
    let audit = audit_of(
        connection,
        crate::kyc::service::SUBJECT_TYPE,
        application_id,
    )?;
    let data = &application.personal_data;
    let mut records = vec![record("application", &application)?];
    for document in &documents {
        records.push(record("document", document)?);
    }
    for hit in &hits {
        records.push(record("screening_hit", hit)?);
    }
    for entry in &audit {
        records.push(record("audit_entry", entry)?);
    }
    let approvals = [
        (
            "First approval",
            &application.first_approver_name,
            application.first_approved_at,
        ),
        (
            "Final decision",
            &application.second_approver_name,
            application.decided_at,
        ),
    ];
    Ok(Trail {
        kind: "kyc_history",
        jurisdiction: application.jurisdiction.clone(),
        title: format!("KYC application history — {}", application.id),
        cover: vec![
            ("Application".into(), application.id.clone()),
            ("User".into(), application.user_id.clone()),
            ("Jurisdiction".into(), application.jurisdiction.clone()),
            (
                "Kind and tier".into(),
                format!("{:?}, tier {:?}", application.kind, application.target_tier),
            ),
            ("Status".into(), format!("{:?}", application.status)),
            (
                "Risk".into(),
                serde_json::to_string(&application.risk).unwrap_or_default(),
            ),
            ("Legal name".into(), data.legal_name.clone()),
            ("Date of birth".into(), data.date_of_birth.to_string()),
            (
                "Nationality / residence".into(),
                format!("{} / {}", data.nationality, data.residence),
            ),
            (
                "Identity document".into(),
                or_dash(data.identity_document.as_ref().map(|id| {
                    format!(
                        "{} {} ({})",
                        id.document_type, id.number, id.issuing_country
                    )
                })),
            ),
            ("PEP declared".into(), data.pep_declared.to_string()),
            (
                "Submitted".into(),
                format!(
                    "{} UTC by {}",
                    when(application.submitted_at),
                    application.submitted_by
                ),
            ),
            (
                "Review due".into(),
                format!("{} UTC", when(application.due_at)),
            ),
            (
                "Decision".into(),
                format!(
                    "{} {}",
                    or_dash(application.decision_code.as_ref()),
                    application.decision_text.clone().unwrap_or_default()
                ),
            ),
        ],
        sections: vec![
            Section {
                heading: "Decisions and who made them".into(),
                columns: vec![
                    Column::left("Step", 40.0),
                    Column::left("Officer", 70.0),
                    Column::left("When (UTC)", 68.0),
                ],
                rows: approvals
                    .iter()
                    .map(|(step, who, at)| {
                        vec![
                            step.to_string(),
                            or_dash(who.as_ref()),
                            or_dash(at.map(when)),
                        ]
                    })
                    .collect(),
                empty: "No decision yet",
            },
            Section {
                heading: "Documents (content encrypted at rest; SHA-256 of the original)".into(),
                // The full hash fits on one line: it is what a copy is checked against.
                columns: vec![
                    Column::left("Kind", 26.0),
                    Column::left("File", 30.0),
                    Column::right("Bytes", 14.0),
                    Column::left("SHA-256", 108.0),
                ],
                rows: documents
                    .iter()
                    .map(|document| {
                        vec![
                            document.kind.clone(),
                            document.file_name.clone(),
                            document.size_bytes.to_string(),
                            document.sha256.clone(),
                        ]
                    })
                    .collect(),
                empty: "No documents",
            },
            Section {
                heading: "Screening hits and their resolution".into(),
                columns: vec![
                    Column::left("List", 36.0),
                    Column::right("Score", 20.0),
                    Column::left("Status", 36.0),
                    Column::left("Hit", 86.0),
                ],
                rows: hits
                    .iter()
                    .map(|hit| {
                        vec![
                            hit.source.clone(),
                            hit.score.clone(),
                            hit.status.clone(),
                            hit.id.clone(),
                        ]
                    })
                    .collect(),
                empty: "No screening hits",
            },
            audit_section(&audit),
        ],
        span: (
            application.submitted_at,
            application.updated_at.max(application.submitted_at) + chrono::Duration::seconds(1),
        ),
        records,
    })
}

/// A withdrawal's decision trace.
pub fn withdrawal_trace(
    connection: &mut DbConnection,
    withdrawal_id: &str,
) -> Result<Trail, AppError> {
    let assets = crate::ledger::store::load_assets(connection)?;
    let row = crate::withdrawals::store::find(connection, withdrawal_id)?
        .ok_or_else(|| AppError::NotFound(format!("no withdrawal {withdrawal_id}")))?;
    let view = crate::withdrawals::service::WithdrawalView::from_row(row.clone(), &assets)?;
    let audit = audit_of(connection, "withdrawal", withdrawal_id)?;
    let mut records = vec![record("withdrawal", &view)?];
    for entry in &audit {
        records.push(record("audit_entry", entry)?);
    }
    let reasons: Vec<Vec<String>> = serde_json::from_str::<Vec<serde_json::Value>>(&row.reasons)
        .map_err(AppError::internal)?
        .iter()
        .map(|reason| {
            vec![
                reason["code"].as_str().unwrap_or_default().to_string(),
                reason["message"].as_str().unwrap_or_default().to_string(),
            ]
        })
        .collect();
    Ok(Trail {
        kind: "withdrawal_trace",
        jurisdiction: row.jurisdiction.clone(),
        title: format!("Withdrawal decision trace — {}", row.id),
        cover: vec![
            ("Withdrawal".into(), row.id.clone()),
            ("User".into(), row.user_id.clone()),
            ("Jurisdiction".into(), row.jurisdiction.clone()),
            ("Amount".into(), format!("{} {}", view.amount, row.asset)),
            (
                "In local currency".into(),
                format!("{} {}", or_dash(view.amount_local.as_ref()), row.currency),
            ),
            (
                "Rates used".into(),
                format!(
                    "{} USD per {} at {}; USD→{} {}",
                    or_dash(row.usd_price.as_ref()),
                    row.asset,
                    or_dash(row.price_at.map(when)),
                    row.currency,
                    or_dash(row.fx_rate.as_ref())
                ),
            ),
            (
                "Destination".into(),
                format!("{} ({})", row.address, row.network),
            ),
            (
                "Requested".into(),
                format!("{} UTC by {}", when(row.requested_at), row.requested_by),
            ),
            ("Decision".into(), row.decision.clone()),
            ("Status".into(), row.status.clone()),
            (
                "Review".into(),
                match (&row.reviewed_by, row.reviewed_at) {
                    (Some(by), Some(at)) => format!(
                        "{} UTC by {by}{}: {}",
                        when(at),
                        row.first_reviewer
                            .as_ref()
                            .map(|first| format!(" (first: {first})"))
                            .unwrap_or_default(),
                        row.review_reason.clone().unwrap_or_default()
                    ),
                    _ => "—".into(),
                },
            ),
        ],
        sections: vec![
            Section {
                heading: "The gate's reasons".into(),
                columns: vec![Column::left("Code", 50.0), Column::left("Reason", 128.0)],
                rows: reasons,
                empty: "Every check passed",
            },
            audit_section(&audit),
        ],
        span: (
            row.requested_at,
            row.reviewed_at
                .unwrap_or(row.requested_at)
                .max(row.requested_at)
                + chrono::Duration::seconds(1),
        ),
        records,
    })
}

/// The trail as a PDF with the data hash on every page.
pub fn pdf(
    trail: &Trail,
    (report_id, data_sha256): (&str, &str),
    (generated_by, now): (&str, NaiveDateTime),
) -> Result<Vec<u8>, AppError> {
    let mut layout = Layout::new(&trail.title)?;
    layout.paragraph(&trail.title, 15.0);
    layout.space(2.0);
    let mut cover = trail.cover.clone();
    cover.push(("Report id".into(), report_id.into()));
    cover.push((
        "Generated".into(),
        format!("{} UTC by {generated_by}", when(now)),
    ));
    cover.push(("Data SHA-256 (data.jsonl)".into(), data_sha256.into()));
    layout.pairs(&cover, 9.0);
    for section in &trail.sections {
        layout.heading(&section.heading);
        layout.table(&section.columns, &section.rows, 8.0, section.empty);
    }
    let hash = format!("Data SHA-256 {data_sha256}");
    Ok(layout.finish(
        Metadata {
            title: trail.title.clone(),
            subject: trail.kind.into(),
            author: generated_by.into(),
            identifier: data_sha256.into(),
            dated: now.and_utc().timestamp(),
            language: "en".into(),
        },
        &trail.title,
        |page, total| {
            vec![
                format!("Confidential: audit evidence · Page {page} / {total}"),
                hash.clone(),
            ]
        },
    ))
}
