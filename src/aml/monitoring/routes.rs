//! Alerts, cases and the monitoring batch over HTTP (officers).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::cases::{self, CaseDetail, Evidence, NoteView, Outcome as CaseOutcome};
use super::store::{self, Alert, AlertFilter, Case};
use crate::auth::{Caller, Role};
use crate::error::{AppError, FieldError};
use crate::http::extract::{
    is_multipart, parse_uuid, parse_validated, read_json_payload, read_multipart, IdempotencyKey,
    JsonBody, QueryParams, RequestId,
};
use crate::http::mutation::{self, IdempotentRequest, Outcome};
use crate::AppState;

const OFFICERS: &[Role] = &[Role::Officer, Role::SeniorOfficer];
const MAX_EVIDENCE_BYTES: usize = 10 * 1024 * 1024 + 64 * 1024;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/v1/alerts").route(web::get().to(list_alerts)))
        .service(
            web::resource("/v1/cases")
                .route(web::get().to(list_cases))
                .route(web::post().to(open_case)),
        )
        .service(web::resource("/v1/cases/{id}").route(web::get().to(get_case)))
        .service(web::resource("/v1/cases/{id}/alerts").route(web::post().to(add_alerts)))
        .service(web::resource("/v1/cases/{id}/notes").route(web::post().to(add_note)))
        .service(
            web::resource("/v1/cases/{id}/notes/{note_id}/file").route(web::get().to(evidence)),
        )
        .service(web::resource("/v1/cases/{id}/close").route(web::post().to(close_case)))
        .service(web::resource("/v1/monitoring/batch").route(web::post().to(run_batch)));
}

fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), AppError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(AppError::invalid_field(
            field,
            "one_of",
            format!("must be one of {}", allowed.join(", ")),
        ))
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    pub status: Option<String>,
    pub user_id: Option<String>,
    pub severity: Option<String>,
    pub withdrawal_id: Option<String>,
    pub jurisdiction: Option<String>,
    pub limit: Option<i64>,
}

/// Alerts from monitoring rules and screening, newest first (officers).
#[utoipa::path(get, path = "/v1/alerts", tag = "monitoring",
    params(("status" = Option<String>, Query, description = "open, in_case, closed"),
           ("user_id" = Option<String>, Query), ("severity" = Option<String>, Query, description = "low, medium, high"),
           ("withdrawal_id" = Option<String>, Query), ("jurisdiction" = Option<String>, Query),
           ("limit" = Option<i64>, Query, description = "At most this many")),
    responses((status = 200, body = [Alert])),
    security(("bearer" = [])))]
pub async fn list_alerts(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<AlertQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require(OFFICERS)?;
    let query = query.into_inner()?;
    if let Some(status) = &query.status {
        one_of("status", status, &["open", "in_case", "closed"])?;
    }
    if let Some(severity) = &query.severity {
        one_of("severity", severity, &["low", "medium", "high"])?;
    }
    let filter = AlertFilter {
        status: query.status,
        user_id: query
            .user_id
            .map(|id| parse_uuid("user_id", &id))
            .transpose()?,
        severity: query.severity,
        withdrawal_id: query
            .withdrawal_id
            .map(|id| parse_uuid("withdrawal_id", &id))
            .transpose()?,
        case_id: None,
        jurisdiction: query.jurisdiction,
        limit: crate::http::page_limit(query.limit)?,
    };
    let alerts = state
        .db
        .run(move |connection| Ok(store::list_alerts(connection, &filter)?))
        .await?;
    Ok(HttpResponse::Ok().json(alerts))
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenCaseBody {
    #[validate(length(min = 3, max = 200))]
    pub title: String,
    /// Open alerts, all about one user.
    #[validate(length(min = 1, max = 200))]
    pub alert_ids: Vec<String>,
}

fn parse_ids(ids: &[String]) -> Result<Vec<String>, AppError> {
    let mut problems = Vec::new();
    let mut parsed = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        match parse_uuid(&format!("alert_ids[{index}]"), id) {
            Ok(id) if parsed.contains(&id) => problems.push(FieldError::new(
                format!("alert_ids[{index}]"),
                "duplicate",
                "named twice",
            )),
            Ok(id) => parsed.push(id),
            Err(AppError::Validation(errors)) => problems.extend(errors),
            Err(other) => return Err(other),
        }
    }
    if problems.is_empty() {
        Ok(parsed)
    } else {
        Err(AppError::Validation(problems))
    }
}

/// Open a case over one user's open alerts (officers).
#[utoipa::path(post, path = "/v1/cases", tag = "monitoring",
    request_body = OpenCaseBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 201, body = CaseDetail), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn open_case(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(OFFICERS)?;
    let body: OpenCaseBody = body.parse()?;
    let alert_ids = parse_ids(&body.alert_ids)?;
    let idempotent = IdempotentRequest::new(&caller, idempotency_key, "POST", "/v1/cases", &body);
    mutation::run(&state.db, idempotent, move |connection| {
        let detail = cases::open(
            connection,
            &body.title,
            &alert_ids,
            &caller.actor(),
            Some(request_id.0.clone()),
        )?;
        Outcome::new(StatusCode::CREATED, &detail)
    })
    .await
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CaseQuery {
    pub status: Option<String>,
    pub user_id: Option<String>,
    pub limit: Option<i64>,
}

/// Cases, newest first (officers).
#[utoipa::path(get, path = "/v1/cases", tag = "monitoring",
    params(("status" = Option<String>, Query, description = "open or closed"), ("user_id" = Option<String>, Query),
           ("limit" = Option<i64>, Query, description = "At most this many")),
    responses((status = 200, body = [Case])),
    security(("bearer" = [])))]
pub async fn list_cases(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<CaseQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require(OFFICERS)?;
    let query = query.into_inner()?;
    if let Some(status) = &query.status {
        one_of("status", status, &["open", "closed"])?;
    }
    let user_id = query
        .user_id
        .map(|id| parse_uuid("user_id", &id))
        .transpose()?;
    let limit = crate::http::page_limit(query.limit)?;
    let cases = state
        .db
        .run(move |connection| {
            Ok(store::list_cases(
                connection,
                query.status.as_deref(),
                user_id.as_deref(),
                limit,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(cases))
}

/// A case with its alerts and its file (officers).
#[utoipa::path(get, path = "/v1/cases/{id}", tag = "monitoring",
    params(("id" = String, Path, description = "Case id")),
    responses((status = 200, body = CaseDetail), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_case(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.require(OFFICERS)?;
    let id = parse_uuid("id", &path.into_inner())?;
    let detail = state
        .db
        .run(move |connection| cases::detail(connection, &id))
        .await?;
    Ok(HttpResponse::Ok().json(detail))
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertIdsBody {
    #[validate(length(min = 1, max = 200))]
    pub alert_ids: Vec<String>,
}

/// Add open alerts of the case's user to an open case (officers).
#[utoipa::path(post, path = "/v1/cases/{id}/alerts", tag = "monitoring",
    params(("id" = String, Path, description = "Case id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = AlertIdsBody,
    responses((status = 200, body = CaseDetail), (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn add_alerts(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(OFFICERS)?;
    let id = parse_uuid("id", &path.into_inner())?;
    let body: AlertIdsBody = body.parse()?;
    let alert_ids = parse_ids(&body.alert_ids)?;
    let path = format!("/v1/cases/{id}/alerts");
    let idempotent = IdempotentRequest::new(&caller, idempotency_key, "POST", &path, &body);
    mutation::run(&state.db, idempotent, move |connection| {
        let detail = cases::add_alerts(
            connection,
            &id,
            &alert_ids,
            &caller.actor(),
            Some(request_id.0.clone()),
        )?;
        Outcome::new(StatusCode::OK, &detail)
    })
    .await
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    #[validate(length(min = 1, max = 10_000))]
    pub body: String,
}

/// Add a note to an open case (officers): JSON `{"body": …}`, or `multipart/form-data` with the
/// JSON in part `note` and an evidence file (PDF, PNG or JPEG, at most 10 MiB) in part `file`.
/// The case file is append-only.
#[utoipa::path(post, path = "/v1/cases/{id}/notes", tag = "monitoring",
    params(("id" = String, Path, description = "Case id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body(content = NoteBody, description = "JSON, or multipart with the JSON in part `note` and the file in part `file`"),
    responses((status = 201, body = NoteView), (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn add_note(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    caller.require(OFFICERS)?;
    let id = parse_uuid("id", &path.into_inner())?;
    let (json, evidence) = if is_multipart(&request) {
        let mut json = None;
        let mut evidence = None;
        for part in read_multipart(&request, payload, MAX_EVIDENCE_BYTES).await? {
            match part.name.as_str() {
                "note" => json = Some(part.bytes),
                "file" => {
                    let content_type =
                        crate::kyc::documents::sniff(&part.bytes).map_err(|error| {
                            AppError::invalid_field("file", "invalid_file", error.to_string())
                        })?;
                    evidence = Some(Evidence {
                        file_name: part.file_name.unwrap_or_else(|| "evidence".into()),
                        content_type,
                        bytes: part.bytes,
                    });
                }
                other => {
                    return Err(AppError::invalid_field(
                        other,
                        "unknown_part",
                        "the form takes a part `note` (JSON) and a part `file`",
                    ))
                }
            }
        }
        let json = json.ok_or_else(|| {
            AppError::invalid_field("note", "required", "the form needs a part `note`")
        })?;
        (json, evidence)
    } else {
        (read_json_payload(&request, payload, 64 * 1024).await?, None)
    };
    let body: NoteBody = parse_validated(&json)?;
    let fingerprint = serde_json::json!({
        "body": body.body,
        "file_sha256": evidence.as_ref().map(|file| crate::crypto::sha256_hex(&file.bytes)),
    });
    let path = format!("/v1/cases/{id}/notes");
    let idempotent = IdempotentRequest::new(&caller, idempotency_key, "POST", &path, &fingerprint);
    let app_state = state.clone();
    let evidence = std::sync::Mutex::new(evidence);
    mutation::run(&state.db, idempotent, move |connection| {
        let file = evidence.lock().ok().and_then(|mut slot| slot.take());
        let note = cases::add_note(
            connection,
            &app_state.cipher,
            &id,
            &body.body,
            file,
            &caller.actor(),
            Some(request_id.0.clone()),
        )?;
        Outcome::new(StatusCode::CREATED, &note)
    })
    .await
}

/// An evidence file of a case, decrypted (officers; the read is audited).
#[utoipa::path(get, path = "/v1/cases/{id}/notes/{note_id}/file", tag = "monitoring",
    params(("id" = String, Path, description = "Case id"), ("note_id" = String, Path)),
    responses((status = 200, description = "The file, with its SHA-256 in `Digest`"),
              (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn evidence(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    caller.require(OFFICERS)?;
    let (id, note_id) = path.into_inner();
    let id = parse_uuid("id", &id)?;
    let note_id = parse_uuid("note_id", &note_id)?;
    evidence_download(&state, caller.actor(), id, note_id, request_id).await
}

/// Reads an evidence file for an officer, audits the read, and sends it (API and console).
pub async fn evidence_download(
    state: &web::Data<AppState>,
    actor: crate::audit::Actor,
    case_id: String,
    note_id: String,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    let app_state = state.clone();
    let (note, bytes) = state
        .db
        .run(move |connection| {
            crate::db::write_transaction(connection, |connection| {
                cases::read_evidence(
                    connection,
                    &app_state.cipher,
                    &case_id,
                    &note_id,
                    &actor,
                    Some(request_id.0.clone()),
                )
            })
        })
        .await?;
    Ok(crate::http::file_response(
        &note.content_type.unwrap_or_default(),
        &note.file_sha256.unwrap_or_default(),
        &note.file_name.unwrap_or_default(),
        "attachment",
        bytes,
    ))
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    /// `no_action`, `user_offboarded` or `str_filed`.
    pub outcome: String,
    #[validate(length(min = 3, max = 2000))]
    pub reason: String,
}

/// Close a case with an outcome (officers); its alerts close with it.
#[utoipa::path(post, path = "/v1/cases/{id}/close", tag = "monitoring",
    params(("id" = String, Path, description = "Case id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = CloseBody,
    responses((status = 200, body = CaseDetail), (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn close_case(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(OFFICERS)?;
    let id = parse_uuid("id", &path.into_inner())?;
    let body: CloseBody = body.parse()?;
    let outcome = CaseOutcome::parse(&body.outcome).ok_or_else(|| {
        AppError::invalid_field(
            "outcome",
            "one_of",
            "must be no_action, user_offboarded or str_filed",
        )
    })?;
    let path = format!("/v1/cases/{id}/close");
    let idempotent = IdempotentRequest::new(&caller, idempotency_key, "POST", &path, &body);
    mutation::run(&state.db, idempotent, move |connection| {
        let detail = cases::close(
            connection,
            &id,
            outcome,
            &body.reason,
            &caller.actor(),
            Some(request_id.0.clone()),
        )?;
        Outcome::new(StatusCode::OK, &detail)
    })
    .await
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// The UTC day to run over (YYYY-MM-DD); yesterday when absent.
    pub date: Option<chrono::NaiveDate>,
}

/// Run the monitoring rules over one UTC day's withdrawals now (admins and senior officers; the
/// scheduler runs it daily). New hits become alerts; known ones are not repeated.
#[utoipa::path(post, path = "/v1/monitoring/batch", tag = "monitoring",
    request_body = BatchBody,
    responses((status = 200, body = Object, description = "What the batch looked at and found")),
    security(("bearer" = [])))]
pub async fn run_batch(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Admin, Role::SeniorOfficer])?;
    let body: BatchBody = body.parse()?;
    let (from, to) = match body.date {
        Some(date) => {
            let start = date.and_hms_opt(0, 0, 0).unwrap_or_default();
            (start, start + chrono::Duration::days(1))
        }
        None => super::batch::previous_day(crate::db::now().date()),
    };
    let app_state = state.clone();
    let summary =
        web::block(move || super::batch::run(&app_state.db, &app_state.jurisdictions, from, to))
            .await
            .map_err(AppError::internal)??;
    Ok(HttpResponse::Ok().json(summary))
}
