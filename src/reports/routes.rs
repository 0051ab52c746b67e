//! Report endpoints. Officers and admins generate and read every report; a regulator token is
//! bound to one jurisdiction and reads that jurisdiction's reports only. Every download is in
//! the audit log; a refused attempt is audited by the request middleware.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::service::{self, Keys, SandboxRequest};
use super::store::{self, ReportRow};
use super::Period;
use crate::audit::NewAuditEntry;
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::http::extract::{parse_uuid, IdempotencyKey, JsonBody, QueryParams, RequestId};
use crate::http::mutation::{self, IdempotentRequest, Outcome};
use crate::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/v1/reports")
                .route(web::get().to(list_reports))
                .route(web::post().to(post_report)),
        )
        .service(web::resource("/v1/reports/{id}").route(web::get().to(get_report)))
        .service(web::resource("/v1/cases/{id}/str-report").route(web::post().to(post_str_report)))
        .service(
            web::resource("/v1/ledger/integrity-reports")
                .route(web::post().to(post_integrity_report)),
        )
        .service(
            web::resource("/v1/kyc/applications/{id}/audit-report")
                .route(web::post().to(post_kyc_history)),
        )
        .service(
            web::resource("/v1/withdrawals/{id}/audit-report")
                .route(web::post().to(post_withdrawal_trace)),
        )
        .service(
            web::resource("/v1/report-schedules")
                .route(web::get().to(list_schedules))
                .route(web::post().to(post_schedule)),
        )
        .service(
            web::resource("/v1/report-schedules/{id}/disable")
                .route(web::post().to(post_schedule_disable)),
        )
        .service(
            web::resource("/v1/reports/{id}/verify")
                // A copy to check is a whole report file: more than actix's 256 KiB default.
                .app_data(web::PayloadConfig::new(MAX_COPY_BYTES))
                .route(web::get().to(get_verification))
                .route(web::post().to(post_verification)),
        )
        .service(web::resource("/v1/reports/{id}/files/{name}").route(web::get().to(get_file)))
        .service(
            web::resource("/.well-known/hashgate-signing-key").route(web::get().to(get_public_key)),
        );
}

/// The largest copy `POST /v1/reports/{id}/verify` accepts.
const MAX_COPY_BYTES: usize = 64 * 1024 * 1024;

const READERS: &[Role] = &[
    Role::Officer,
    Role::SeniorOfficer,
    Role::Admin,
    Role::Regulator,
];
const GENERATORS: &[Role] = &[Role::Officer, Role::SeniorOfficer, Role::Admin];

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportInput {
    /// `sandbox`: the periodic report of a jurisdiction.
    #[validate(length(min = 1, max = 32))]
    pub kind: String,
    #[validate(length(equal = 2))]
    pub jurisdiction: String,
    /// `2026-Q3` or `2026-10`, in the jurisdiction's local calendar.
    #[validate(length(min = 7, max = 7))]
    pub period: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileView {
    pub name: String,
    pub content_type: String,
    pub sha256: String,
    /// Ed25519 over the file's bytes, base64.
    pub signature: String,
    pub href: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportView {
    pub id: String,
    pub kind: String,
    /// None for platform-wide evidence (the ledger integrity report).
    pub jurisdiction: Option<String>,
    pub period: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub period_start: chrono::NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub period_end: chrono::NaiveDateTime,
    pub language: String,
    pub title: String,
    pub data_sha256: String,
    pub key_id: String,
    pub generated_by: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub generated_at: chrono::NaiveDateTime,
    pub files: Vec<FileView>,
}

/// The reports `caller` may read, newest first: a regulator's own jurisdiction's only.
pub(crate) async fn readable_reports(
    state: &AppState,
    caller: &Caller,
    jurisdiction: Option<String>,
    limit: i64,
) -> Result<Vec<ReportView>, AppError> {
    caller.require(READERS)?;
    // A regulator lists their own jurisdiction; asking for another is refused, not narrowed.
    let jurisdiction = match (&caller.role, jurisdiction) {
        (Role::Regulator, Some(code)) => {
            require_reader(caller, Some(&code))?;
            Some(code)
        }
        // Never "no filter": a regulator token without a jurisdiction reads nothing.
        (Role::Regulator, None) => Some(caller.jurisdiction.clone().ok_or_else(|| {
            AppError::Forbidden("this regulator token is bound to no jurisdiction".into())
        })?),
        (_, code) => code,
    };
    state
        .db
        .run(move |connection| {
            let rows = store::list_reports(connection, jurisdiction.as_deref(), limit)?;
            report_views(connection, rows)
        })
        .await
}

fn report_views(
    connection: &mut crate::db::DbConnection,
    rows: Vec<ReportRow>,
) -> Result<Vec<ReportView>, AppError> {
    let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
    let files = store::file_infos(connection, &ids)?;
    Ok(rows
        .into_iter()
        .map(|row| ReportView {
            files: files
                .iter()
                .filter(|file| file.report_id == row.id)
                .map(|file| FileView {
                    href: format!("/v1/reports/{}/files/{}", file.report_id, file.name),
                    name: file.name.clone(),
                    content_type: file.content_type.clone(),
                    sha256: file.sha256.clone(),
                    signature: file.signature.clone(),
                })
                .collect(),
            id: row.id,
            kind: row.kind,
            jurisdiction: row.jurisdiction,
            period: row.period_label,
            period_start: row.period_start,
            period_end: row.period_end,
            language: row.language,
            title: row.title,
            data_sha256: row.data_sha256,
            key_id: row.key_id,
            generated_by: row.generated_by,
            generated_at: row.generated_at,
        })
        .collect())
}

/// 403 unless the caller may read reports of `jurisdiction` (a regulator: only their own;
/// platform-wide reports are for staff).
fn require_reader(caller: &Caller, jurisdiction: Option<&str>) -> Result<(), AppError> {
    caller.require(READERS)?;
    if caller.role == Role::Regulator
        && (jurisdiction.is_none() || caller.jurisdiction.as_deref() != jurisdiction)
    {
        return Err(AppError::Forbidden(format!(
            "this regulator token reads reports of {} only",
            caller.jurisdiction.as_deref().unwrap_or("no jurisdiction")
        )));
    }
    Ok(())
}

/// Generate a report (officers, admin): a jurisdiction's sandbox report for a month or quarter of
/// its local calendar, signed and stored once with its PDF, JSON and canonical data export.
#[utoipa::path(post, path = "/v1/reports", tag = "reports", request_body = ReportInput,
    responses((status = 201, body = ReportView), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_report(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    request_id: RequestId,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(GENERATORS)?;
    let input: ReportInput = body.parse()?;
    if input.kind != "sandbox" {
        return Err(AppError::invalid_field(
            "kind",
            "unknown_kind",
            format!("`{}` is not a report kind: sandbox", input.kind),
        ));
    }
    let jurisdiction = state
        .jurisdictions
        .get(&input.jurisdiction)
        .cloned()
        .ok_or_else(|| {
            AppError::invalid_field(
                "jurisdiction",
                "unknown_jurisdiction",
                format!("no jurisdiction {}", input.jurisdiction),
            )
        })?;
    let period = Period::parse(&input.period)
        .map_err(|message| AppError::invalid_field("period", "invalid_period", message))?;
    let request = IdempotentRequest::new(&caller, idempotency_key, "POST", "/v1/reports", &input);
    let (signer, cipher) = (state.signer.clone(), state.cipher.clone());
    let entity = state.reporting_entity.name.clone();
    let basis = state.carbon.location_basis;
    mutation::run(&state.db, request, move |connection| {
        let report = service::generate_sandbox(
            connection,
            Keys {
                signer: &signer,
                cipher: &cipher,
            },
            SandboxRequest {
                jurisdiction: &jurisdiction,
                period: period.clone(),
                reporting_entity: &entity,
                carbon_basis: basis,
                actor: caller.actor(),
                request_id: Some(request_id.0.clone()),
            },
            crate::db::now(),
        )?;
        let view = report_views(connection, vec![report])?;
        Outcome::new(StatusCode::CREATED, &view[0])
    })
    .await
}

/// Prepare the suspicious transaction report of a case (officers): goAML XML for the FIU, the
/// case PDF for the file, and the transactions as CSV, signed and stored like every report.
#[utoipa::path(post, path = "/v1/cases/{id}/str-report", tag = "reports",
    params(("id" = String, Path)),
    responses((status = 201, body = ReportView), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_str_report(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    request_id: RequestId,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.require(&Role::OFFICERS)?;
    let case_id = parse_uuid("id", &path)?;
    let request = IdempotentRequest::new(
        &caller,
        idempotency_key,
        "POST",
        &format!("/v1/cases/{case_id}/str-report"),
        &serde_json::Value::Null,
    );
    let (signer, cipher) = (state.signer.clone(), state.cipher.clone());
    let jurisdictions = state.jurisdictions.clone();
    let entity = state.reporting_entity.clone();
    let staleness = state.price_staleness;
    mutation::run(&state.db, request, move |connection| {
        let report = service::generate_str(
            connection,
            Keys {
                signer: &signer,
                cipher: &cipher,
            },
            service::StrRequest {
                case_id: &case_id,
                jurisdictions: &jurisdictions,
                entity: &entity,
                staleness,
                actor: caller.actor(),
                request_id: Some(request_id.0.clone()),
            },
            crate::db::now(),
        )?;
        let view = report_views(connection, vec![report])?;
        Outcome::new(StatusCode::CREATED, &view[0])
    })
    .await
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrityInput {
    /// The first entry covered (default 1).
    #[validate(range(min = 1))]
    pub from_seq: Option<i64>,
    /// The last entry covered (default: the head).
    #[validate(range(min = 1))]
    pub to_seq: Option<i64>,
}

/// Generate the ledger integrity report (officers, admin): the hash chain verified from the
/// first entry to the head, the root hash of the range, counts and totals per asset and kind.
#[utoipa::path(post, path = "/v1/ledger/integrity-reports", tag = "reports",
    request_body = IntegrityInput,
    responses((status = 201, body = ReportView), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_integrity_report(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    request_id: RequestId,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(GENERATORS)?;
    let input: IntegrityInput = body.parse()?;
    let request = IdempotentRequest::new(
        &caller,
        idempotency_key,
        "POST",
        "/v1/ledger/integrity-reports",
        &input,
    );
    let (signer, cipher) = (state.signer.clone(), state.cipher.clone());
    mutation::run(&state.db, request, move |connection| {
        let report = service::generate_ledger_integrity(
            connection,
            Keys {
                signer: &signer,
                cipher: &cipher,
            },
            (input.from_seq, input.to_seq),
            (caller.actor(), Some(request_id.0.clone())),
            crate::db::now(),
        )?;
        let view = report_views(connection, vec![report])?;
        Outcome::new(StatusCode::CREATED, &view[0])
    })
    .await
}

/// Generate the audit PDF of a KYC application (officers): its data, documents with hashes,
/// screening, every decision and who made it; with the JSONL it was made from.
#[utoipa::path(post, path = "/v1/kyc/applications/{id}/audit-report", tag = "reports",
    params(("id" = String, Path)),
    responses((status = 201, body = ReportView), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_kyc_history(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    request_id: RequestId,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_uuid("id", &path)?;
    let route = format!("/v1/kyc/applications/{id}/audit-report");
    trail_report(
        &state,
        caller,
        (idempotency_key, request_id),
        route,
        move |c, cipher| super::trail::kyc_history(c, cipher, &id),
    )
    .await
}

/// Generate the decision trace of a withdrawal (officers): the gate's reasons, the rates used,
/// the review and every audit entry; with the JSONL it was made from.
#[utoipa::path(post, path = "/v1/withdrawals/{id}/audit-report", tag = "reports",
    params(("id" = String, Path)),
    responses((status = 201, body = ReportView), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_withdrawal_trace(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    request_id: RequestId,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_uuid("id", &path)?;
    let route = format!("/v1/withdrawals/{id}/audit-report");
    trail_report(
        &state,
        caller,
        (idempotency_key, request_id),
        route,
        move |c, _| super::trail::withdrawal_trace(c, &id),
    )
    .await
}

/// An audit-trail report made by `trail`, signed and stored (officers only).
async fn trail_report(
    state: &AppState,
    caller: Caller,
    (idempotency_key, request_id): (IdempotencyKey, RequestId),
    route: String,
    trail: impl Fn(
            &mut crate::db::DbConnection,
            &crate::crypto::FieldCipher,
        ) -> Result<super::trail::Trail, AppError>
        + Send
        + Sync
        + 'static,
) -> Result<HttpResponse, AppError> {
    caller.require(&Role::OFFICERS)?;
    let request = IdempotentRequest::new(
        &caller,
        idempotency_key,
        "POST",
        &route,
        &serde_json::Value::Null,
    );
    let (signer, cipher) = (state.signer.clone(), state.cipher.clone());
    mutation::run(&state.db, request, move |connection| {
        let trail = trail(connection, &cipher)?;
        let report = service::generate_trail(
            connection,
            Keys {
                signer: &signer,
                cipher: &cipher,
            },
            trail,
            (caller.actor(), Some(request_id.0.clone())),
            crate::db::now(),
        )?;
        let view = report_views(connection, vec![report])?;
        Outcome::new(StatusCode::CREATED, &view[0])
    })
    .await
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    /// `sandbox`.
    #[validate(length(min = 1, max = 32))]
    pub kind: String,
    #[validate(length(equal = 2))]
    pub jurisdiction: String,
    /// Who is e-mailed when a report is ready (the regulator's addresses).
    #[validate(length(min = 1, max = 20), custom(function = "valid_emails"))]
    pub recipients: Vec<String>,
}

fn valid_emails(recipients: &[String]) -> Result<(), validator::ValidationError> {
    use validator::ValidateEmail as _;
    if recipients
        .iter()
        .all(|address| address.len() <= 254 && address.validate_email())
    {
        Ok(())
    } else {
        Err(validator::ValidationError::new("email")
            .with_message("every recipient must be an e-mail address".into()))
    }
}

/// Schedule a jurisdiction's periodic report (admin): made by itself once each period closes,
/// its recipients e-mailed through the outbox.
#[utoipa::path(post, path = "/v1/report-schedules", tag = "reports", request_body = ScheduleInput,
    responses((status = 201, body = super::schedule::ScheduleView),
              (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_schedule(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    request_id: RequestId,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Admin])?;
    let input: ScheduleInput = body.parse()?;
    if input.kind != "sandbox" {
        return Err(AppError::invalid_field(
            "kind",
            "unknown_kind",
            "only sandbox reports are scheduled",
        ));
    }
    let has_reports = state
        .jurisdictions
        .get(&input.jurisdiction)
        .is_some_and(|jurisdiction| jurisdiction.reports.is_some());
    if !has_reports {
        return Err(AppError::invalid_field(
            "jurisdiction",
            "no_sandbox_report",
            format!("{} has no sandbox report configured", input.jurisdiction),
        ));
    }
    let request = IdempotentRequest::new(
        &caller,
        idempotency_key,
        "POST",
        "/v1/report-schedules",
        &input,
    );
    let cipher = state.cipher.clone();
    mutation::run(&state.db, request, move |connection| {
        let schedule = super::schedule::create(
            connection,
            &cipher,
            (&input.kind, &input.jurisdiction),
            &input.recipients,
            &caller.name,
        )?;
        crate::audit::store::append(
            connection,
            NewAuditEntry::new(
                caller.actor(),
                "report_schedule.create",
                "report_schedule",
                &schedule.id,
                Some(request_id.0.clone()),
            )
            .details(serde_json::json!({
                "kind": schedule.kind,
                "jurisdiction": schedule.jurisdiction,
                "recipients": schedule.recipients.len(),
            })),
        )?;
        Outcome::new(StatusCode::CREATED, &schedule)
    })
    .await
}

/// The report schedules (admin), with their recipients.
#[utoipa::path(get, path = "/v1/report-schedules", tag = "reports",
    responses((status = 200, body = ScheduleList)),
    security(("bearer" = [])))]
pub async fn list_schedules(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Admin])?;
    let cipher = state.cipher.clone();
    let schedules = state
        .db
        .run(move |connection| super::schedule::list(connection, &cipher))
        .await?;
    Ok(HttpResponse::Ok().json(ScheduleList { items: schedules }))
}

/// Every report schedule, enabled or not.
#[derive(Serialize, ToSchema)]
pub struct ScheduleList {
    pub items: Vec<super::schedule::ScheduleView>,
}

/// Stop a schedule (admin); reports already made stay.
#[utoipa::path(post, path = "/v1/report-schedules/{id}/disable", tag = "reports",
    params(("id" = String, Path)),
    responses((status = 200, body = super::schedule::ScheduleView),
              (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_schedule_disable(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    request_id: RequestId,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Admin])?;
    let id = parse_uuid("id", &path)?;
    let request = IdempotentRequest::new(
        &caller,
        idempotency_key,
        "POST",
        &format!("/v1/report-schedules/{id}/disable"),
        &serde_json::Value::Null,
    );
    let cipher = state.cipher.clone();
    mutation::run(&state.db, request, move |connection| {
        let schedule = super::schedule::disable(connection, &cipher, &id, &caller.name)?;
        crate::audit::store::append(
            connection,
            NewAuditEntry::new(
                caller.actor(),
                "report_schedule.disable",
                "report_schedule",
                &id,
                Some(request_id.0.clone()),
            ),
        )?;
        Outcome::new(StatusCode::OK, &schedule)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub jurisdiction: Option<String>,
    pub limit: Option<i64>,
}

/// Reports, newest first. A regulator token lists its own jurisdiction's only.
#[utoipa::path(get, path = "/v1/reports", tag = "reports",
    params(("jurisdiction" = Option<String>, Query, description = "ISO code"),
           ("limit" = Option<i64>, Query, description = "1 to 500")),
    responses((status = 200, body = ReportList), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_reports(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<ListQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require(READERS)?;
    let query = query.into_inner()?;
    let limit = crate::http::page_limit(query.limit)?;
    let items = readable_reports(&state, &caller, query.jurisdiction, limit).await?;
    Ok(HttpResponse::Ok().json(ReportList { items }))
}

/// The newest reports, up to the limit asked for.
#[derive(Serialize, ToSchema)]
pub struct ReportList {
    pub items: Vec<ReportView>,
}

async fn readable_report(
    state: &AppState,
    caller: &Caller,
    id: String,
) -> Result<ReportRow, AppError> {
    caller.require(READERS)?;
    let report = state
        .db
        .run(move |connection| store::find_report(connection, &id))
        .await?;
    require_reader(caller, report.jurisdiction.as_deref())?;
    Ok(report)
}

/// A report's description: period, data hash, and its files with hashes and signatures.
#[utoipa::path(get, path = "/v1/reports/{id}", tag = "reports",
    params(("id" = String, Path)),
    responses((status = 200, body = ReportView), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_report(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let report = readable_report(&state, &caller, parse_uuid("id", &path)?).await?;
    let view = state
        .db
        .run(move |connection| report_views(connection, vec![report]))
        .await?;
    Ok(HttpResponse::Ok().json(&view[0]))
}

/// Download a file of a report (`report.pdf`, `report.json`, `data.csv`); audited. The
/// `Digest` header carries its SHA-256 and `X-Hashgate-Signature` its Ed25519 signature.
#[utoipa::path(get, path = "/v1/reports/{id}/files/{name}", tag = "reports",
    params(("id" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "The file as stored: the PDF, the JSON, the data as \
               CSV or JSON lines, or the goAML XML",
               content(("application/pdf"), ("application/json"), ("text/csv; charset=utf-8"),
                       ("application/x-ndjson"), ("application/xml"))),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_file(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, name) = path.into_inner();
    download(&state, &caller, request_id.0, parse_uuid("id", &id)?, name).await
}

/// A report file as a download, for the API and the console: the caller must be allowed the
/// report's jurisdiction; the download is audited.
pub(crate) async fn download(
    state: &AppState,
    caller: &Caller,
    request_id: String,
    id: String,
    name: String,
) -> Result<HttpResponse, AppError> {
    let report = readable_report(state, caller, id).await?;
    let actor = caller.actor();
    let cipher = state.cipher.clone();
    let (file, content) = state
        .db
        .run_writer(move |connection| {
            crate::db::write_transaction(connection, |connection| {
                let file = store::find_file(connection, &report.id, &name)?;
                let content = file.plaintext(&cipher)?;
                crate::audit::store::append(
                    connection,
                    NewAuditEntry::new(
                        actor,
                        "report.download",
                        "report",
                        &report.id,
                        Some(request_id),
                    )
                    .details(serde_json::json!({"file": file.name, "sha256": file.sha256})),
                )?;
                Ok::<_, AppError>((file, content))
            })
        })
        .await?;
    let disposition = if file.name.ends_with(".pdf") {
        "inline"
    } else {
        "attachment"
    };
    let mut response = crate::http::file_response(
        &file.content_type,
        &file.sha256,
        &format!("{}-{}", file.report_id, file.name),
        disposition,
        content,
    );
    // The download carries its own proof: the Ed25519 signature of its bytes.
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&file.signature) {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-hashgate-signature"),
            value,
        );
    }
    Ok(response)
}

/// Re-check the stored report: every file's bytes against its SHA-256 and signature, and the
/// data export against the hash printed in the report.
#[utoipa::path(get, path = "/v1/reports/{id}/verify", tag = "reports",
    params(("id" = String, Path)),
    responses((status = 200, body = service::Verification)),
    security(("bearer" = [])))]
pub async fn get_verification(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let report = readable_report(&state, &caller, parse_uuid("id", &path)?).await?;
    let (signer, cipher) = (state.signer.clone(), state.cipher.clone());
    let verification = state
        .db
        .run(move |connection| {
            let keys = Keys {
                signer: &signer,
                cipher: &cipher,
            };
            service::verify_stored(connection, keys, &report)
        })
        .await?;
    Ok(HttpResponse::Ok().json(verification))
}

/// Check a copy: send a downloaded file of the report as the body; it is valid only if it is
/// byte for byte a stored file of this report with a valid signature.
#[utoipa::path(post, path = "/v1/reports/{id}/verify", tag = "reports",
    params(("id" = String, Path)), request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = service::CopyCheck)),
    security(("bearer" = [])))]
pub async fn post_verification(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let report = readable_report(&state, &caller, parse_uuid("id", &path)?).await?;
    if body.is_empty() {
        return Err(AppError::invalid_field(
            "body",
            "empty",
            "send the file to check as the request body",
        ));
    }
    let signer = state.signer.clone();
    let check = state
        .db
        .run(move |connection| service::verify_copy(connection, &signer, &body, Some(&report.id)))
        .await?;
    Ok(HttpResponse::Ok().json(check))
}

/// The public half of the report-signing key (no token needed).
#[utoipa::path(get, path = "/.well-known/hashgate-signing-key", tag = "reports",
    responses((status = 200, body = super::signing::PublishedKeys)))]
pub async fn get_public_key(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .json(state.signer.public_keys())
}
