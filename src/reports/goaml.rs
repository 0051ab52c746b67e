//! A suspicious transaction report for a case: UNODC goAML XML (schema 5.0.1, `report_code`
//! STR) for the financial intelligence unit, a PDF of the case for the file, and the canonical
//! CSV of the transactions both were made from. goAML leaves its lookup codes to each FIU: they
//! are data in `jurisdictions/<CODE>.toml` (`[reports.goaml.codes]`), never code.

use std::io::Write;

use chrono::{NaiveDateTime, TimeZone as _};
use quick_xml::events::{BytesDecl, Event};
use serde::{Deserialize, Serialize};

use super::pdf::{Column, Layout, Metadata};
use super::xml::{end, io, leaf, name_parts, start, XmlWriter};
use crate::aml::monitoring::store::{Alert, Case, CaseNote};
use crate::error::AppError;
use crate::kyc::application::PersonalData;

/// `[reports.goaml]`: the reporting entity at the FIU and the FIU's codes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoamlRules {
    /// The FIU that receives suspicious transaction reports, as printed.
    pub fiu: String,
    /// The reporting entity's id, assigned by the FIU at registration.
    pub rentity_id: u32,
    pub rentity_branch: String,
    /// The city of the reporting entity's address.
    pub city: String,
    pub codes: GoamlCodes,
}

/// The FIU's lookup codes (`-` is the generic schema's "not set").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoamlCodes {
    pub address_type: String,
    /// How a transaction was conducted: for an online crypto platform.
    pub transmode: String,
    pub funds: String,
    /// Our customer's role in a transaction, and the counterparty's.
    pub client_role: String,
    pub counterparty_role: String,
    pub indicators: Vec<String>,
}

impl GoamlRules {
    pub fn validate(&self) -> Result<(), String> {
        if self.rentity_id == 0 {
            return Err("reports.goaml.rentity_id must be the id the FIU assigned (≥ 1)".into());
        }
        if self.codes.indicators.is_empty() {
            return Err("reports.goaml.codes.indicators must list at least one indicator".into());
        }
        Ok(())
    }
}

/// One ledger entry of the subject, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StrTransaction {
    pub seq: i64,
    pub transaction_id: String,
    pub kind: String,
    pub asset: String,
    pub amount: String,
    #[serde(with = "crate::utc")]
    pub occurred_at: NaiveDateTime,
    pub fmv_usd: Option<String>,
    /// In the jurisdiction's currency; none when no usable price or rate existed.
    pub amount_local: Option<String>,
    /// A withdrawal's destination wallet.
    pub counterparty_address: Option<String>,
    pub counterparty_network: Option<String>,
}

/// A case with its alerts and notes, oldest first, as the monitoring module keeps them.
pub struct StrCase {
    pub case: Case,
    pub alerts: Vec<Alert>,
    pub notes: Vec<CaseNote>,
}

/// The rule that raised an alert, or its origin (a screening hit).
fn rule_of(alert: &Alert) -> &str {
    alert.rule_id.as_deref().unwrap_or(&alert.origin)
}

/// Everything a report on a case says.
pub struct StrDocument<'a> {
    pub report_id: &'a str,
    pub case: &'a StrCase,
    pub user_id: &'a str,
    /// The subject's KYC data, when they have applied.
    pub subject: Option<&'a PersonalData>,
    pub subject_reference: &'a str,
    pub transactions: &'a [StrTransaction],
    pub window: (NaiveDateTime, NaiveDateTime),
    pub entity: &'a crate::config::ReportingEntity,
    pub rules: &'a GoamlRules,
    pub currency: &'a str,
    pub generated_at: NaiveDateTime,
    pub generated_by: &'a str,
    pub data_sha256: &'a str,
}

fn date(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Text fields of goAML are at most 4,000 or 8,000 characters.
fn clip(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}

/// The case summary that goes in `reason`: the title, what raised it, and what was found.
fn reason(document: &StrDocument) -> String {
    let case = &document.case.case;
    let mut text = format!("Case {}: {}.", case.id, case.title);
    for alert in &document.case.alerts {
        text.push_str(&format!(
            " Alert {} ({}, {}): {}.",
            rule_of(alert),
            alert.severity,
            date(alert.created_at),
            alert.message
        ));
    }
    clip(&text, 8_000)
}

fn person<W: Write>(writer: &mut XmlWriter<W>, document: &StrDocument) -> Result<(), AppError> {
    let (first, last) = match document.subject {
        Some(data) => name_parts(&data.legal_name),
        None => ("NFN".into(), document.subject_reference.to_string()),
    };
    leaf(writer, "first_name", &[], &clip(&first, 100))?;
    leaf(writer, "last_name", &[], &clip(&last, 100))?;
    if let Some(data) = document.subject {
        leaf(
            writer,
            "birthdate",
            &[],
            &format!("{}T00:00:00", data.date_of_birth),
        )?;
        if let Some(id) = &data.identity_document {
            leaf(writer, "id_number", &[], &clip(&id.number, 255))?;
        }
        leaf(writer, "nationality1", &[], &data.nationality)?;
        leaf(writer, "residence", &[], &data.residence)?;
        if let Some(occupation) = &data.occupation {
            leaf(writer, "occupation", &[], &clip(occupation, 255))?;
        }
    }
    Ok(())
}

fn residence(document: &StrDocument) -> String {
    document
        .subject
        .map(|data| data.residence.clone())
        .unwrap_or_else(|| document.case.case.jurisdiction.clone())
}

/// The subject's wallet at the platform (or a withdrawal's destination) as a `t_account`.
fn account<W: Write>(
    writer: &mut XmlWriter<W>,
    institution: (&str, &str),
    number: &str,
    name: Option<&str>,
) -> Result<(), AppError> {
    leaf(writer, "institution_name", &[], &clip(institution.0, 255))?;
    leaf(writer, "institution_code", &[], &clip(institution.1, 50))?;
    leaf(writer, "non_bank_institution", &[], "true")?;
    leaf(writer, "account", &[], &clip(number, 50))?;
    if let Some(name) = name {
        leaf(writer, "account_name", &[], &clip(name, 255))?;
    }
    Ok(())
}

/// goAML 5.0.1 XML: the reporting entity, one `transaction` per ledger entry with the subject's
/// platform wallet (and a withdrawal's destination wallet) as accounts, and an `activity` naming
/// the subject.
pub fn xml(document: &StrDocument) -> Result<Vec<u8>, AppError> {
    let rules = document.rules;
    let codes = &rules.codes;
    let mut writer = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 1);
    writer
        .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .map_err(io)?;
    start(
        &mut writer,
        "report",
        &[
            ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
            ("xsi:noNamespaceSchemaLocation", "goAMLSchema.xsd"),
        ],
    )?;
    leaf(
        &mut writer,
        "rentity_id",
        &[],
        &rules.rentity_id.to_string(),
    )?;
    leaf(
        &mut writer,
        "rentity_branch",
        &[],
        &clip(&rules.rentity_branch, 255),
    )?;
    leaf(&mut writer, "submission_code", &[], "E")?;
    leaf(&mut writer, "report_code", &[], "STR")?;
    leaf(&mut writer, "entity_reference", &[], document.report_id)?;
    leaf(
        &mut writer,
        "submission_date",
        &[],
        &date(document.generated_at),
    )?;
    leaf(&mut writer, "currency_code_local", &[], document.currency)?;
    start(&mut writer, "reporting_person", &[])?;
    let (first, last) = name_parts(document.generated_by);
    leaf(&mut writer, "first_name", &[], &clip(&first, 100))?;
    leaf(&mut writer, "last_name", &[], &clip(&last, 100))?;
    end(&mut writer, "reporting_person")?;
    start(&mut writer, "location", &[])?;
    leaf(&mut writer, "address_type", &[], &codes.address_type)?;
    leaf(
        &mut writer,
        "address",
        &[],
        &clip(&document.entity.address, 100),
    )?;
    leaf(&mut writer, "city", &[], &clip(&rules.city, 255))?;
    leaf(&mut writer, "country_code", &[], &document.entity.country)?;
    end(&mut writer, "location")?;
    leaf(&mut writer, "reason", &[], &reason(document))?;
    let action = match (
        &document.case.case.outcome,
        &document.case.case.closing_reason,
    ) {
        (Some(outcome), Some(why)) => format!("Case closed: {outcome}. {why}"),
        (Some(outcome), None) => format!("Case closed: {outcome}."),
        _ => "Case open: under review.".to_string(),
    };
    leaf(&mut writer, "action", &[], &clip(&action, 8_000))?;
    let institution = document.entity.name.clone();
    let institution_code = rules.rentity_id.to_string();
    let country = residence(document);
    for transaction in document.transactions {
        start(&mut writer, "transaction", &[])?;
        leaf(
            &mut writer,
            "transactionnumber",
            &[],
            &transaction.seq.to_string(),
        )?;
        leaf(
            &mut writer,
            "internal_ref_number",
            &[],
            &transaction.transaction_id,
        )?;
        leaf(
            &mut writer,
            "transaction_location",
            &[],
            &clip(&format!("Online: {}", document.entity.name), 255),
        )?;
        let mut description = format!(
            "{} of {} {}",
            transaction.kind, transaction.amount, transaction.asset
        );
        if let Some(fmv) = &transaction.fmv_usd {
            description.push_str(&format!(" (fair market value {fmv} USD)"));
        }
        if transaction.amount_local.is_none() {
            description.push_str("; no usable price: the local amount is not known");
        }
        leaf(
            &mut writer,
            "transaction_description",
            &[],
            &clip(&description, 4_000),
        )?;
        leaf(
            &mut writer,
            "date_transaction",
            &[],
            &date(transaction.occurred_at),
        )?;
        leaf(&mut writer, "transmode_code", &[], &codes.transmode)?;
        leaf(
            &mut writer,
            "amount_local",
            &[],
            transaction.amount_local.as_deref().unwrap_or("0"),
        )?;
        start(&mut writer, "involved_parties", &[])?;
        start(&mut writer, "party", &[])?;
        leaf(&mut writer, "role", &[], &codes.client_role)?;
        start(&mut writer, "account", &[])?;
        account(
            &mut writer,
            (&institution, &institution_code),
            &format!("{}:{}", document.user_id, transaction.asset),
            Some(document.subject_reference),
        )?;
        end(&mut writer, "account")?;
        leaf(&mut writer, "funds_code", &[], &codes.funds)?;
        leaf(&mut writer, "country", &[], &country)?;
        end(&mut writer, "party")?;
        if let Some(address) = &transaction.counterparty_address {
            start(&mut writer, "party", &[])?;
            leaf(&mut writer, "role", &[], &codes.counterparty_role)?;
            start(&mut writer, "account", &[])?;
            let network = transaction
                .counterparty_network
                .as_deref()
                .unwrap_or("crypto");
            account(
                &mut writer,
                (&format!("External wallet ({network})"), "-"),
                address,
                None,
            )?;
            end(&mut writer, "account")?;
            leaf(&mut writer, "funds_code", &[], &codes.funds)?;
            // The destination's country is not known: the placeholder code.
            leaf(&mut writer, "country", &[], "-")?;
            end(&mut writer, "party")?;
        }
        end(&mut writer, "involved_parties")?;
        end(&mut writer, "transaction")?;
    }
    start(&mut writer, "activity", &[])?;
    start(&mut writer, "report_parties", &[])?;
    start(&mut writer, "report_party", &[])?;
    start(&mut writer, "person", &[])?;
    person(&mut writer, document)?;
    end(&mut writer, "person")?;
    leaf(&mut writer, "country", &[], &country)?;
    leaf(&mut writer, "is_suspected", &[], "true")?;
    leaf(
        &mut writer,
        "reason",
        &[],
        &clip(
            &format!(
                "Subject of case {}: {}",
                document.case.case.id, document.case.case.title
            ),
            8_000,
        ),
    )?;
    end(&mut writer, "report_party")?;
    end(&mut writer, "report_parties")?;
    end(&mut writer, "activity")?;
    start(&mut writer, "report_indicators", &[])?;
    for indicator in &codes.indicators {
        leaf(&mut writer, "indicator", &[], indicator)?;
    }
    end(&mut writer, "report_indicators")?;
    end(&mut writer, "report")?;
    Ok(writer.into_inner())
}

/// The case file: the case, its alerts and notes, the subject and the transactions reported.
pub fn pdf(document: &StrDocument, zone: chrono_tz::Tz) -> Result<Vec<u8>, AppError> {
    let case = &document.case.case;
    let title = format!("Suspicious transaction report — case {}", case.id);
    let mut layout = Layout::new(&title)?;
    layout.paragraph(&title, 15.0);
    layout.space(2.0);
    let local = |at: NaiveDateTime| {
        format!(
            "{} ({} UTC)",
            zone.from_utc_datetime(&at).format("%Y-%m-%d %H:%M %:z"),
            at.format("%Y-%m-%d %H:%M")
        )
    };
    let subject_name = document
        .subject
        .map(|data| data.legal_name.clone())
        .unwrap_or_else(|| document.subject_reference.to_string());
    layout.pairs(
        &[
            (
                "Financial intelligence unit".into(),
                document.rules.fiu.clone(),
            ),
            ("Reporting entity".into(), document.entity.name.clone()),
            ("Report id".into(), document.report_id.to_string()),
            ("Case".into(), format!("{} — {}", case.id, case.title)),
            (
                "Status".into(),
                match &case.outcome {
                    Some(outcome) => format!("{} ({outcome})", case.status),
                    None => case.status.clone(),
                },
            ),
            (
                "Opened".into(),
                format!("{} by {}", local(case.opened_at), case.opened_by),
            ),
            (
                "Closed".into(),
                match (case.closed_at, &case.closed_by) {
                    (Some(at), Some(by)) => format!("{} by {by}", local(at)),
                    _ => "—".into(),
                },
            ),
            (
                "Subject".into(),
                format!("{subject_name} (user {})", document.user_id),
            ),
            (
                "Transactions window".into(),
                format!(
                    "{} – {}",
                    local(document.window.0),
                    local(document.window.1)
                ),
            ),
            (
                "Generated".into(),
                format!(
                    "{} by {}",
                    local(document.generated_at),
                    document.generated_by
                ),
            ),
            (
                "Data SHA-256 (data.csv)".into(),
                document.data_sha256.to_string(),
            ),
        ],
        9.0,
    );
    layout.paragraph(
        "Confidential: tipping off is an offence. This file and the goAML XML beside it are \
         made from data.csv (the transactions below) and the case record; both are signed with \
         the platform's Ed25519 key.",
        8.0,
    );
    if let Some(why) = &case.closing_reason {
        layout.heading("Officer's conclusion");
        layout.paragraph(why, 9.0);
    }
    layout.heading("Alerts");
    let alerts: Vec<Vec<String>> = document
        .case
        .alerts
        .iter()
        .map(|alert| {
            vec![
                date(alert.created_at).replace('T', " "),
                rule_of(alert).to_string(),
                alert.severity.clone(),
                alert.message.clone(),
            ]
        })
        .collect();
    layout.table(
        &[
            Column::left("Raised (UTC)", 34.0),
            Column::left("Rule", 34.0),
            Column::left("Severity", 18.0),
            Column::left("What was seen", 92.0),
        ],
        &alerts,
        8.0,
        "No alerts",
    );
    layout.heading("Notes and evidence");
    let notes: Vec<Vec<String>> = document
        .case
        .notes
        .iter()
        .map(|note| {
            vec![
                date(note.created_at).replace('T', " "),
                note.author.clone(),
                match &note.file_name {
                    Some(file) => format!("{} [{file}]", note.body),
                    None => note.body.clone(),
                },
            ]
        })
        .collect();
    layout.table(
        &[
            Column::left("Added (UTC)", 34.0),
            Column::left("By", 34.0),
            Column::left("Note", 110.0),
        ],
        &notes,
        8.0,
        "No notes",
    );
    layout.heading("Transactions reported");
    let rows: Vec<Vec<String>> = document
        .transactions
        .iter()
        .map(|t| {
            vec![
                t.seq.to_string(),
                date(t.occurred_at).replace('T', " "),
                t.kind.clone(),
                format!("{} {}", t.amount, t.asset),
                t.amount_local
                    .as_ref()
                    .map(|value| format!("{value} {}", document.currency))
                    .unwrap_or_else(|| "unknown".into()),
                t.counterparty_address.clone().unwrap_or_default(),
            ]
        })
        .collect();
    layout.table(
        &[
            Column::right("Entry", 14.0),
            Column::left("When (UTC)", 30.0),
            Column::left("Kind", 26.0),
            Column::right("Amount", 32.0),
            Column::right("Local amount", 30.0),
            Column::left("Counterparty wallet", 46.0),
        ],
        &rows,
        7.5,
        "No transactions in the window",
    );
    let header = format!("{} · STR · case {}", document.entity.name, case.id);
    let hash = format!("Data SHA-256 {}", document.data_sha256);
    Ok(layout.finish(
        Metadata {
            title: title.clone(),
            subject: format!("STR case {}", case.id),
            author: document.entity.name.clone(),
            identifier: document.data_sha256.to_string(),
            dated: document.generated_at.and_utc().timestamp(),
            language: "en".into(),
        },
        &header,
        |page, total| {
            vec![
                format!("Confidential: suspicious transaction report · Page {page} / {total}"),
                hash.clone(),
            ]
        },
    ))
}
