//! Report schedules: a jurisdiction's sandbox report made by itself once each period closes (in
//! the jurisdiction's local calendar), and its recipients told by e-mail through the outbox.
//! A run generates every due report at most once, whichever instance runs it.

use chrono::{NaiveDateTime, TimeZone as _};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::service::{self, Keys, SandboxRequest};
use super::Period;
use crate::audit::Actor;
use crate::crypto::FieldCipher;
use crate::db::schema::{report_schedules, scheduled_reports};
use crate::db::{write_transaction, DbConnection};
use crate::error::AppError;
use crate::jurisdiction::Jurisdictions;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleView {
    pub id: String,
    pub kind: String,
    pub jurisdiction: String,
    pub recipients: Vec<String>,
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub disabled_at: Option<NaiveDateTime>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = report_schedules)]
struct ScheduleRow {
    id: String,
    kind: String,
    jurisdiction: String,
    recipients_encrypted: String,
    created_by: String,
    created_at: NaiveDateTime,
    disabled_at: Option<NaiveDateTime>,
}

fn recipients_context(id: &str) -> String {
    format!("report_schedules.recipients:{id}")
}

fn view(cipher: &FieldCipher, row: ScheduleRow) -> Result<ScheduleView, AppError> {
    let recipients = cipher
        .decrypt(&row.recipients_encrypted, &recipients_context(&row.id))
        .map_err(AppError::internal)?;
    Ok(ScheduleView {
        recipients: serde_json::from_str(&recipients).map_err(AppError::internal)?,
        id: row.id,
        kind: row.kind,
        jurisdiction: row.jurisdiction,
        created_by: row.created_by,
        created_at: row.created_at,
        disabled_at: row.disabled_at,
    })
}

/// A new schedule; a jurisdiction has at most one active schedule per kind.
pub fn create(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    (kind, jurisdiction): (&str, &str),
    recipients: &[String],
    actor: &str,
) -> Result<ScheduleView, AppError> {
    let active: i64 = report_schedules::table
        .filter(report_schedules::kind.eq(kind))
        .filter(report_schedules::jurisdiction.eq(jurisdiction))
        .filter(report_schedules::disabled_at.is_null())
        .count()
        .get_result(connection)?;
    if active > 0 {
        return Err(AppError::Conflict(format!(
            "{jurisdiction} already has an active {kind} schedule: disable it first"
        )));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let encrypted = cipher
        .encrypt(
            &serde_json::to_string(recipients).map_err(AppError::internal)?,
            &recipients_context(&id),
        )
        .map_err(AppError::internal)?;
    let now = crate::db::now();
    diesel::insert_into(report_schedules::table)
        .values((
            report_schedules::id.eq(&id),
            report_schedules::kind.eq(kind),
            report_schedules::jurisdiction.eq(jurisdiction),
            report_schedules::recipients_encrypted.eq(&encrypted),
            report_schedules::created_by.eq(actor),
            report_schedules::created_at.eq(now),
        ))
        .execute(connection)?;
    find(connection, cipher, &id)
}

pub fn find(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    id: &str,
) -> Result<ScheduleView, AppError> {
    let row: ScheduleRow = report_schedules::table
        .find(id)
        .select(ScheduleRow::as_select())
        .first(connection)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no report schedule {id}")))?;
    view(cipher, row)
}

pub fn list(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
) -> Result<Vec<ScheduleView>, AppError> {
    let rows: Vec<ScheduleRow> = report_schedules::table
        .select(ScheduleRow::as_select())
        .order((report_schedules::created_at, report_schedules::id))
        .load(connection)?;
    rows.into_iter().map(|row| view(cipher, row)).collect()
}

pub fn disable(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    id: &str,
    actor: &str,
) -> Result<ScheduleView, AppError> {
    let changed = diesel::update(
        report_schedules::table
            .find(id)
            .filter(report_schedules::disabled_at.is_null()),
    )
    .set((
        report_schedules::disabled_by.eq(actor),
        report_schedules::disabled_at.eq(crate::db::now()),
    ))
    .execute(connection)?;
    if changed == 0 {
        find(connection, cipher, id)?;
        return Err(AppError::Conflict(format!(
            "report schedule {id} is already disabled"
        )));
    }
    find(connection, cipher, id)
}

fn scheduler_actor() -> Actor {
    Actor {
        id: "system:report-scheduler".into(),
        name: "report scheduler".into(),
        role: "system".into(),
    }
}

/// What a run of the schedules made.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub generated: Vec<String>,
    pub notified: usize,
}

/// Generates each active schedule's report for the last closed period of its jurisdiction, if
/// not made yet, and queues an e-mail to each recipient; one transaction per report.
pub fn run_due(
    connection: &mut DbConnection,
    keys: Keys,
    jurisdictions: &Jurisdictions,
    (entity, carbon_basis): (&str, crate::carbon::Basis),
    now: NaiveDateTime,
) -> Result<RunSummary, AppError> {
    let mut summary = RunSummary::default();
    let active: Vec<ScheduleRow> = report_schedules::table
        .filter(report_schedules::disabled_at.is_null())
        .select(ScheduleRow::as_select())
        .order(report_schedules::id)
        .load(connection)?;
    for row in active {
        let schedule = view(keys.cipher, row)?;
        let Some(jurisdiction) = jurisdictions.get(&schedule.jurisdiction) else {
            continue;
        };
        let Some(rules) = &jurisdiction.reports else {
            continue;
        };
        let today = jurisdiction.time_zone.from_utc_datetime(&now).date_naive();
        let period = Period::last_closed(rules.period, today);
        let done: i64 = scheduled_reports::table
            .filter(scheduled_reports::schedule_id.eq(&schedule.id))
            .filter(scheduled_reports::period_label.eq(&period.label))
            .count()
            .get_result(connection)?;
        if done > 0 {
            continue;
        }
        let made = write_transaction(connection, |connection| {
            let report = service::generate_sandbox(
                connection,
                keys,
                SandboxRequest {
                    jurisdiction,
                    period: period.clone(),
                    reporting_entity: entity,
                    carbon_basis,
                    actor: scheduler_actor(),
                    request_id: None,
                },
                now,
            )?;
            diesel::insert_into(scheduled_reports::table)
                .values((
                    scheduled_reports::schedule_id.eq(&schedule.id),
                    scheduled_reports::period_label.eq(&period.label),
                    scheduled_reports::report_id.eq(&report.id),
                ))
                .execute(connection)?;
            let values = std::collections::BTreeMap::from([
                ("title", report.title.clone()),
                ("kind", "sandbox".to_string()),
                ("jurisdiction", jurisdiction.name.clone()),
                ("period", period.label.clone()),
                ("report_id", report.id.clone()),
                (
                    "path",
                    format!("/v1/reports/{}/files/{}", report.id, service::PDF),
                ),
                ("data_sha256", report.data_sha256.clone()),
                ("key_id", report.key_id.clone()),
            ]);
            for recipient in &schedule.recipients {
                crate::notify::outbox::enqueue(
                    connection,
                    keys.cipher,
                    "report_ready",
                    (recipient, &rules.language),
                    &values,
                    crate::notify::outbox::Related {
                        kind: "report",
                        id: &report.id,
                    },
                )?;
            }
            Ok::<_, AppError>(report.id)
        });
        match made {
            Ok(id) => {
                summary.notified += schedule.recipients.len();
                summary.generated.push(id);
            }
            // Another instance made it first: its row won the primary key.
            Err(AppError::Conflict(_)) if already_made(connection, &schedule.id, &period)? => {}
            Err(error) => return Err(error),
        }
    }
    Ok(summary)
}

fn already_made(
    connection: &mut DbConnection,
    schedule_id: &str,
    period: &Period,
) -> Result<bool, AppError> {
    let done: i64 = scheduled_reports::table
        .filter(scheduled_reports::schedule_id.eq(schedule_id))
        .filter(scheduled_reports::period_label.eq(&period.label))
        .count()
        .get_result(connection)?;
    Ok(done > 0)
}

/// The background worker: every ten minutes, the due reports.
pub async fn work(state: actix_web::web::Data<crate::AppState>) {
    loop {
        let job_state = state.clone();
        let result = actix_web::web::block(move || -> Result<RunSummary, AppError> {
            let mut connection = job_state.db.connection()?;
            run_due(
                &mut connection,
                Keys {
                    signer: &job_state.signer,
                    cipher: &job_state.cipher,
                },
                &job_state.jurisdictions,
                (
                    &job_state.reporting_entity.name,
                    job_state.carbon.location_basis,
                ),
                crate::db::now(),
            )
        })
        .await;
        match result {
            Ok(Ok(summary)) if !summary.generated.is_empty() => {
                tracing::info!(?summary, "scheduled reports generated")
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(error = %error, "scheduled reports failed; retried"),
            Err(_) => tracing::error!("the report scheduler panicked"),
        }
        actix_web::rt::time::sleep(std::time::Duration::from_secs(600)).await;
    }
}
