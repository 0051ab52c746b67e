//! Making and checking reports: figures → canonical data → JSON and PDF → signatures → one
//! write; and the verification of a file against what was stored.

use chrono::NaiveDateTime;
use serde::Serialize;
use utoipa::ToSchema;

use super::sandbox::{self, PeriodView, SandboxDocument};
use super::signing::ReportSigner;
use super::store::{self, ReportRow, Scope};
use super::{csv_bytes, Period};
use crate::audit::{Actor, NewAuditEntry};
use crate::crypto::{sha256_hex, FieldCipher};
use crate::db::DbConnection;
use crate::error::AppError;
use crate::jurisdiction::Jurisdiction;

pub const PDF: &str = "report.pdf";
pub const JSON: &str = "report.json";
pub const DATA: &str = "data.csv";
pub const GOAML: &str = "str.xml";

/// The keys a stored report needs: the signature's, and the encryption at rest's.
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    pub signer: &'a ReportSigner,
    pub cipher: &'a FieldCipher,
}

/// What a generator says of its report; the key, the author and the time are added when it is
/// sealed.
struct Draft {
    id: String,
    kind: String,
    jurisdiction: Option<String>,
    period_label: String,
    period_start: NaiveDateTime,
    period_end: NaiveDateTime,
    language: String,
    title: String,
    data_sha256: String,
}

/// Signs each file, stores the report and its files (encrypted) and audits the generation:
/// one call inside the caller's transaction.
fn seal_and_store(
    connection: &mut DbConnection,
    keys: Keys,
    draft: Draft,
    files: Vec<(&str, &str, Vec<u8>)>,
    (actor, request_id): (Actor, Option<String>),
    now: NaiveDateTime,
) -> Result<ReportRow, AppError> {
    let report = ReportRow {
        id: draft.id,
        kind: draft.kind,
        jurisdiction: draft.jurisdiction,
        period_label: draft.period_label,
        period_start: draft.period_start,
        period_end: draft.period_end,
        language: draft.language,
        title: draft.title,
        data_sha256: draft.data_sha256,
        key_id: keys.signer.key_id(),
        generated_by: actor.name.clone(),
        generated_at: now,
    };
    let files: Vec<store::NewFile> = files
        .into_iter()
        .map(|(name, content_type, content)| store::NewFile {
            name: name.into(),
            content_type: content_type.into(),
            sha256: sha256_hex(&content),
            signature: keys.signer.sign(&content),
            content,
        })
        .collect();
    store::insert_report(connection, keys.cipher, &report, &files)?;
    crate::audit::store::append(
        connection,
        NewAuditEntry::new(actor, "report.generate", "report", &report.id, request_id).details(
            serde_json::json!({
                "kind": report.kind,
                "jurisdiction": report.jurisdiction,
                "period": report.period_label,
                "data_sha256": report.data_sha256,
                "files": files
                    .iter()
                    .map(|f| serde_json::json!({"name": f.name, "sha256": f.sha256}))
                    .collect::<Vec<_>>(),
            }),
        ),
    )?;
    Ok(report)
}

/// What a sandbox report is made for and by.
pub struct SandboxRequest<'a> {
    pub jurisdiction: &'a Jurisdiction,
    pub period: Period,
    pub reporting_entity: &'a str,
    pub carbon_basis: crate::carbon::Basis,
    pub actor: Actor,
    pub request_id: Option<String>,
}

/// Generates, signs and stores a sandbox report in one transaction (the caller's); the audit
/// entry is written in it too.
pub fn generate_sandbox(
    connection: &mut DbConnection,
    keys: Keys,
    request: SandboxRequest,
    now: NaiveDateTime,
) -> Result<ReportRow, AppError> {
    let jurisdiction = request.jurisdiction;
    let rules = jurisdiction.reports.as_ref().ok_or_else(|| {
        AppError::invalid_field(
            "jurisdiction",
            "no_sandbox_report",
            format!(
                "{} has no sandbox report configured (jurisdictions/{}.toml [reports])",
                jurisdiction.code, jurisdiction.code
            ),
        )
    })?;
    if request.period.kind() != rules.period {
        return Err(AppError::invalid_field(
            "period",
            "wrong_period_kind",
            format!(
                "{} reports cover a {}: e.g. {}",
                jurisdiction.code,
                match rules.period {
                    super::PeriodKind::Month => "month",
                    super::PeriodKind::Quarter => "quarter",
                },
                Period::last_closed(rules.period, now.date()).label
            ),
        ));
    }
    let (start, end) = request.period.utc_bounds(jurisdiction.time_zone);
    if start > now {
        return Err(AppError::invalid_field(
            "period",
            "period_not_started",
            format!("{} has not started yet", request.period.label),
        ));
    }
    let scope = Scope {
        jurisdiction: &jurisdiction.code,
        start,
        end,
        currency: &jurisdiction.currency,
        carbon_basis: request.carbon_basis,
    };
    let figures = store::sandbox_figures(connection, &scope, &rules.sections)?;
    let data = csv_bytes(&figures).map_err(AppError::internal)?;
    let id = uuid::Uuid::new_v4().to_string();
    let document = SandboxDocument {
        report_id: id.clone(),
        jurisdiction: jurisdiction.code.clone(),
        jurisdiction_name: jurisdiction.name.clone(),
        regulator: rules.regulator.clone(),
        reporting_entity: request.reporting_entity.to_string(),
        currency: jurisdiction.currency.clone(),
        language: rules.language.clone(),
        period: PeriodView {
            label: request.period.label.clone(),
            first_day: request.period.first_day,
            last_day: request.period.last_day(),
            time_zone: jurisdiction.time_zone.name().to_string(),
            start_utc: start,
            end_utc: end,
        },
        provisional: end > now,
        generated_at: now,
        generated_by: request.actor.name.clone(),
        data_sha256: sha256_hex(&data),
        signing_key_id: keys.signer.key_id(),
        sections: sandbox::sections_of(&figures, &rules.sections, &rules.language),
    };
    let json = serde_json::to_vec_pretty(&document).map_err(AppError::internal)?;
    let pdf = sandbox::render_pdf(&document, jurisdiction.time_zone)?;
    let draft = Draft {
        id: id.clone(),
        kind: "sandbox".into(),
        jurisdiction: Some(jurisdiction.code.clone()),
        period_label: request.period.label.clone(),
        period_start: start,
        period_end: end,
        language: rules.language.clone(),
        title: document.title(),
        data_sha256: document.data_sha256.clone(),
    };
    seal_and_store(
        connection,
        keys,
        draft,
        vec![
            (DATA, "text/csv; charset=utf-8", data),
            (JSON, "application/json", json),
            (PDF, "application/pdf", pdf),
        ],
        (request.actor, request.request_id),
        now,
    )
}

/// How far before a case was opened its STR reports the subject's transactions.
const STR_LOOKBACK_DAYS: i64 = 90;

/// What a suspicious transaction report is made for and by.
pub struct StrRequest<'a> {
    pub case_id: &'a str,
    pub jurisdictions: &'a crate::jurisdiction::Jurisdictions,
    pub entity: &'a crate::config::ReportingEntity,
    pub staleness: chrono::Duration,
    pub actor: Actor,
    pub request_id: Option<String>,
}

/// Generates, signs and stores the STR of a case: goAML XML, the case PDF and the transactions
/// as CSV, in the caller's transaction.
pub fn generate_str(
    connection: &mut DbConnection,
    keys: Keys,
    request: StrRequest,
    now: NaiveDateTime,
) -> Result<ReportRow, AppError> {
    let case_file = store::str_case(connection, request.case_id)?;
    let (case, user_id) = (&case_file.case, case_file.case.user_id.clone());
    let jurisdiction = request
        .jurisdictions
        .get(&case.jurisdiction)
        .ok_or_else(|| {
            AppError::Conflict(format!("case {} names no known jurisdiction", case.id))
        })?;
    let rules = jurisdiction
        .reports
        .as_ref()
        .and_then(|reports| reports.goaml.as_ref())
        .ok_or_else(|| {
            AppError::Conflict(format!(
                "{} has no goAML settings (jurisdictions/{}.toml [reports.goaml]): its FIU's \
                 codes are needed for an STR",
                jurisdiction.code, jurisdiction.code
            ))
        })?;
    let window = (
        case.opened_at - chrono::Duration::days(STR_LOOKBACK_DAYS),
        case.closed_at.unwrap_or(now).max(case.opened_at) + chrono::Duration::seconds(1),
    );
    let transactions = store::str_transactions(
        connection,
        &user_id,
        window,
        &jurisdiction.currency,
        request.staleness,
    )?;
    let subject =
        crate::kyc::store::identities(connection, keys.cipher, std::slice::from_ref(&user_id))?
            .remove(&user_id);
    let reference = crate::users::store::find(connection, keys.cipher, &user_id)?.external_ref;
    let data = super::csv_bytes(&transactions).map_err(AppError::internal)?;
    let data_sha256 = sha256_hex(&data);
    let id = uuid::Uuid::new_v4().to_string();
    let document = super::goaml::StrDocument {
        report_id: &id,
        case: &case_file,
        user_id: &user_id,
        subject: subject.as_ref(),
        subject_reference: &reference,
        transactions: &transactions,
        window,
        entity: request.entity,
        rules,
        currency: &jurisdiction.currency,
        generated_at: now,
        generated_by: &request.actor.name,
        data_sha256: &data_sha256,
    };
    let xml = super::goaml::xml(&document)?;
    let pdf = super::goaml::pdf(&document, jurisdiction.time_zone)?;
    let draft = Draft {
        id: id.clone(),
        kind: "str".into(),
        jurisdiction: Some(jurisdiction.code.clone()),
        period_label: format!("case {}", case.id),
        period_start: window.0,
        period_end: window.1,
        language: "en".into(),
        title: format!("Suspicious transaction report — case {}", case.id),
        data_sha256,
    };
    seal_and_store(
        connection,
        keys,
        draft,
        vec![
            (DATA, "text/csv; charset=utf-8", data),
            (GOAML, "application/xml", xml),
            (PDF, "application/pdf", pdf),
        ],
        (request.actor, request.request_id),
        now,
    )
}

/// Generates, signs and stores the ledger integrity report for entries `from..=to` (default:
/// all): the chain walked from genesis to the head, the range's anchor and root hashes, and its
/// totals per asset and kind. Platform-wide evidence: no jurisdiction.
pub fn generate_ledger_integrity(
    connection: &mut DbConnection,
    keys: Keys,
    (from, to): (Option<i64>, Option<i64>),
    (actor, request_id): (Actor, Option<String>),
    now: NaiveDateTime,
) -> Result<ReportRow, AppError> {
    let (head, _) = store::ledger_head(connection)?;
    if head == 0 {
        return Err(AppError::Conflict("the ledger has no entries yet".into()));
    }
    let (from, to) = (from.unwrap_or(1), to.unwrap_or(head));
    if !(1..=head).contains(&from) {
        return Err(AppError::invalid_field(
            "from_seq",
            "out_of_range",
            format!("must be between 1 and the head, {head}"),
        ));
    }
    if !(from..=head).contains(&to) {
        return Err(AppError::invalid_field(
            "to_seq",
            "out_of_range",
            format!("must be between from_seq ({from}) and the head, {head}"),
        ));
    }
    let figures = store::ledger_integrity_figures(connection, (from, to))?;
    let data = csv_bytes(&figures).map_err(AppError::internal)?;
    let data_sha256 = sha256_hex(&data);
    let id = uuid::Uuid::new_v4().to_string();
    let title = format!("Ledger integrity report — entries {from} to {to}");
    let json = serde_json::to_vec_pretty(&serde_json::json!({
        "report_id": id,
        "title": title,
        "range": {"from_seq": from, "to_seq": to},
        "generated_at": crate::utc::text(&now),
        "generated_by": actor.name,
        "data_sha256": data_sha256,
        "signing_key_id": keys.signer.key_id(),
        "figures": figures,
    }))
    .map_err(AppError::internal)?;
    let sections = [
        ("integrity", "Hash chain"),
        ("totals", "Totals per asset and kind"),
    ]
    .iter()
    .map(|(key, heading)| {
        (
            heading.to_string(),
            figures
                .iter()
                .filter(|f| f.section == *key)
                .cloned()
                .collect(),
        )
    })
    .collect();
    let pdf = sandbox::figures_pdf(sandbox::FiguresPdf {
        title: title.clone(),
        language: "en".into(),
        cover: vec![
            ("Report id".into(), id.clone()),
            (
                "Entries covered".into(),
                format!("{from} to {to} (head: {head})"),
            ),
            (
                "Generated".into(),
                format!("{} UTC by {}", now.format("%Y-%m-%d %H:%M:%S"), actor.name),
            ),
            ("Data SHA-256 (data.csv)".into(), data_sha256.clone()),
            (
                "Signing key".into(),
                format!("Ed25519 {}", keys.signer.key_id()),
            ),
        ],
        notes: vec![
            "The chain was walked from the first entry to the recorded head: each entry's link to \
             the one before, its own SHA-256, and every balance against the sum of its entries. \
             The root hash commits to every entry up to the end of the range; anyone holding a \
             copy of the ledger can recompute it."
                .into(),
        ],
        sections,
        header: format!("Ledger integrity · entries {from}–{to}"),
        scope: format!("Entries {from}–{to}"),
        data_sha256: data_sha256.clone(),
        confidential: "Confidential: audit evidence".into(),
        author: actor.name.clone(),
        subject: format!("ledger entries {from}-{to}"),
        dated: now.and_utc().timestamp(),
    })?;
    let (period_start, period_end) = store::ledger_time_span(connection, (from, to))?;
    let draft = Draft {
        id,
        kind: "ledger_integrity".into(),
        jurisdiction: None,
        period_label: format!("entries {from}-{to}"),
        period_start,
        period_end,
        language: "en".into(),
        title,
        data_sha256,
    };
    seal_and_store(
        connection,
        keys,
        draft,
        vec![
            (DATA, "text/csv; charset=utf-8", data),
            (JSON, "application/json", json),
            (PDF, "application/pdf", pdf),
        ],
        (actor, request_id),
        now,
    )
}

pub const DATA_JSONL: &str = "data.jsonl";

/// Signs and stores an audit trail (a KYC application's history, a withdrawal's decision
/// trace) as its PDF and canonical JSONL, in the caller's transaction.
pub fn generate_trail(
    connection: &mut DbConnection,
    keys: Keys,
    trail: super::trail::Trail,
    (actor, request_id): (Actor, Option<String>),
    now: NaiveDateTime,
) -> Result<ReportRow, AppError> {
    let data = super::trail::jsonl(&trail.records)?;
    let data_sha256 = sha256_hex(&data);
    let id = uuid::Uuid::new_v4().to_string();
    let pdf = super::trail::pdf(&trail, (&id, &data_sha256), (&actor.name, now))?;
    let draft = Draft {
        id,
        kind: trail.kind.into(),
        jurisdiction: Some(trail.jurisdiction.clone()),
        period_label: trail.title.clone(),
        period_start: trail.span.0,
        period_end: trail.span.1,
        language: "en".into(),
        title: trail.title.clone(),
        data_sha256,
    };
    seal_and_store(
        connection,
        keys,
        draft,
        vec![
            (DATA_JSONL, "application/x-ndjson", data),
            (PDF, "application/pdf", pdf),
        ],
        (actor, request_id),
        now,
    )
}

/// The check of one file: its bytes against the stored hash, and the signature against the
/// platform's key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileCheck {
    pub name: String,
    pub sha256: String,
    pub sha256_matches: bool,
    pub signature_valid: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Verification {
    pub report_id: String,
    pub valid: bool,
    pub key_id: String,
    pub files: Vec<FileCheck>,
    /// The stored data export hashes to the value printed in the report.
    pub data_matches_report: bool,
}

/// Re-checks every stored file of a report: a changed byte anywhere fails it.
pub fn verify_stored(
    connection: &mut DbConnection,
    keys: Keys,
    report: &ReportRow,
) -> Result<Verification, AppError> {
    let files = store::files_of(connection, &report.id)?;
    let mut data_matches_report = false;
    let checks: Vec<FileCheck> = files
        .iter()
        .map(|file| {
            // A stored file that no longer decrypts was changed: it fails both checks.
            let content = file.plaintext(keys.cipher).ok();
            let sha256_matches = content
                .as_ref()
                .is_some_and(|bytes| sha256_hex(bytes) == file.sha256);
            if file.name == DATA || file.name == DATA_JSONL {
                data_matches_report = content
                    .as_ref()
                    .is_some_and(|bytes| sha256_hex(bytes) == report.data_sha256);
            }
            FileCheck {
                name: file.name.clone(),
                sha256: file.sha256.clone(),
                sha256_matches,
                signature_valid: content.as_ref().is_some_and(|bytes| {
                    keys.signer.verifies(&report.key_id, bytes, &file.signature)
                }),
            }
        })
        .collect();
    Ok(Verification {
        report_id: report.id.clone(),
        valid: !checks.is_empty()
            && data_matches_report
            && checks
                .iter()
                .all(|check| check.sha256_matches && check.signature_valid),
        key_id: report.key_id.clone(),
        files: checks,
        data_matches_report,
    })
}

/// Which stored report file, if any, a copy is: found by its SHA-256, with the stored signature
/// checked against the copy's bytes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CopyCheck {
    pub valid: bool,
    pub sha256: String,
    pub report_id: Option<String>,
    pub name: Option<String>,
    pub message: String,
}

pub fn verify_copy(
    connection: &mut DbConnection,
    signer: &ReportSigner,
    bytes: &[u8],
    report_id: Option<&str>,
) -> Result<CopyCheck, AppError> {
    let sha256 = sha256_hex(bytes);
    let found = store::files_with_hash(connection, &sha256)?
        .into_iter()
        .find(|file| report_id.is_none_or(|id| id == file.report_id));
    // The key that signed it is the one its report names, current or retired.
    let signed_by = match &found {
        Some(file) => Some(store::find_report(connection, &file.report_id)?.key_id),
        None => None,
    };
    Ok(match (found, signed_by) {
        (Some(file), Some(key_id)) if signer.verifies(&key_id, bytes, &file.signature) => {
            CopyCheck {
                valid: true,
                message: format!(
                    "{} of report {}: SHA-256 and Ed25519 signature (key {key_id}) match",
                    file.name, file.report_id,
                ),
                sha256,
                report_id: Some(file.report_id),
                name: Some(file.name),
            }
        }
        (Some(file), _) => CopyCheck {
            valid: false,
            message: format!(
                "the SHA-256 matches {} of report {}, but its stored signature does not verify \
                 with the key the report names",
                file.name, file.report_id
            ),
            sha256,
            report_id: Some(file.report_id),
            name: Some(file.name),
        },
        (None, _) => CopyCheck {
            valid: false,
            message: match report_id {
                Some(id) => format!(
                    "no file of report {id} has SHA-256 {sha256}: the copy was altered or is \
                     another document"
                ),
                None => format!(
                    "no stored report file has SHA-256 {sha256}: the copy was altered or is not \
                     a hashgate report"
                ),
            },
            sha256,
            report_id: None,
            name: None,
        },
    })
}
