//! `POST /v1/lists/{source}` (list upload, admin) and the rescreen jobs it starts:
//! `GET /v1/screening/jobs`, `GET /v1/screening/jobs/{id}`, `POST /v1/screening/jobs`.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::import::{self, ListFile};
use super::lists::ListSource;
use super::monitor::{self, RescreenScope};
use super::store::{self, ListVersion, ScreeningJob};
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::http::extract::{
    is_multipart, parse_uuid, read_multipart, IdempotencyKey, JsonBody, QueryParams,
};
use crate::http::mutation::{self, IdempotentRequest, Outcome};
use crate::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/v1/lists/{source}").route(web::post().to(upload_list)))
        .service(
            web::resource("/v1/screening/jobs")
                .route(web::get().to(list_jobs))
                .route(web::post().to(start_rescreen)),
        )
        .service(web::resource("/v1/screening/jobs/{id}").route(web::get().to(get_job)));
}

/// A whole OFAC legacy CSV set is about 10 MB; the UN XML about 2 MB.
const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

const JOB_READERS: &[Role] = &[Role::Officer, Role::SeniorOfficer, Role::Admin];

/// Reads every part of a `multipart/form-data` body as a file named by its `filename` (else
/// its field name).
async fn read_files(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<Vec<ListFile>, AppError> {
    if !is_multipart(request) {
        return Err(AppError::UnsupportedMediaType(
            "send the list as multipart/form-data, one part per file".into(),
        ));
    }
    let files = read_multipart(request, payload, MAX_UPLOAD_BYTES)
        .await?
        .into_iter()
        .map(|part| {
            let name = part.file_name.unwrap_or(part.name);
            if name.is_empty() {
                return Err(AppError::bad_field("files", "every part needs a file name"));
            }
            Ok(ListFile {
                name,
                bytes: part.bytes,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if files.is_empty() {
        return Err(AppError::bad_field("files", "the upload holds no file"));
    }
    Ok(files)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Accept a version that removes more than 20% of the active entries.
    force: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedList {
    #[schema(value_type = Object)]
    pub list: ListVersion,
    /// The rescreen of monitored subjects against the added and changed entries; follow it at
    /// `/v1/screening/jobs/{id}`.
    pub rescreen_job: Option<ScreeningJob>,
}

/// Load a new version of a list (admin): `ofac-sdn` takes the OFAC legacy CSV files (`sdn.csv`,
/// and optionally `add.csv`, `alt.csv`, `sdn_comments.csv`), `un-consolidated` the UN XML and
/// `pep` the PEP CSV, as `multipart/form-data` parts. The files are parsed completely first: a
/// malformed file is refused with the line and reason and the active version stays. The new
/// version is stored with its checksum and diff, and a rescreen of the changed entries queued.
#[utoipa::path(post, path = "/v1/lists/{source}", tag = "screening",
    params(("source" = String, Path, description = "ofac-sdn, un-consolidated or pep"),
           ("force" = Option<bool>, Query, description = "Accept removing more than 20% of the entries"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body(content_type = "multipart/form-data", description = "The list files, one part each"),
    responses((status = 201, body = UploadedList, description = "A new version"),
              (status = 200, body = UploadedList, description = "The file is identical to the active version"),
              (status = 415, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn upload_list(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
    query: QueryParams<UploadQuery>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Admin])?;
    let source = ListSource::parse(&path.into_inner())
        .ok_or_else(|| AppError::bad_field("source", "must be ofac-sdn, un-consolidated or pep"))?;
    let force = query.into_inner()?.force.unwrap_or(false);
    let files = read_files(&request, payload).await?;
    let (checksum, entries) = web::block(move || import::parse_files(source, files))
        .await
        .map_err(|_| AppError::internal(anyhow::anyhow!("the list parser panicked")))?
        .map_err(|error| {
            AppError::invalid_field("files", "malformed_list", format!("{error:#}"))
        })?;
    let request = IdempotentRequest::new(
        &caller,
        idempotency_key,
        "POST",
        &format!("/v1/lists/{}", source.as_str()),
        &serde_json::json!({ "checksum": checksum, "force": force }),
    );
    let entries = Arc::new(entries);
    let jurisdictions = state.jurisdictions.clone();
    let actor = caller.actor();
    mutation::run(&state.db, request, move |connection| {
        let loaded = import::store_list(
            connection,
            source,
            (&checksum, &entries),
            force,
            Some(&jurisdictions),
            &actor,
        )?;
        let status = if loaded.version.unchanged {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Outcome::new(
            status,
            &UploadedList {
                list: loaded.version,
                rescreen_job: loaded.rescreen,
            },
        )
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobQuery {
    limit: Option<i64>,
}

/// Rescreen jobs, newest first, with their progress (officers, admin).
#[utoipa::path(get, path = "/v1/screening/jobs", tag = "screening",
    params(("limit" = Option<i64>, Query, description = "1 to 500, default 50")),
    responses((status = 200, body = Vec<ScreeningJob>)),
    security(("bearer" = [])))]
pub async fn list_jobs(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<JobQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require(JOB_READERS)?;
    let limit = query.into_inner()?.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(AppError::bad_field("limit", "must be between 1 and 500"));
    }
    let jobs = state
        .db
        .run(move |connection| Ok(store::recent_jobs(connection, limit)?))
        .await?;
    Ok(HttpResponse::Ok().json(jobs))
}

/// One rescreen job: status, subjects done of the total, alerts raised (officers, admin).
#[utoipa::path(get, path = "/v1/screening/jobs/{id}", tag = "screening",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = ScreeningJob),
              (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_job(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.require(JOB_READERS)?;
    let id = parse_uuid("id", &path.into_inner())?;
    let job = state
        .db
        .run(move |connection| {
            store::find_job(connection, &id)?
                .ok_or_else(|| AppError::NotFound(format!("no screening job {id}")))
        })
        .await?;
    Ok(HttpResponse::Ok().json(job))
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescreenRequest {
    /// Why everyone is rescreened: kept in the audit log.
    #[validate(length(min = 5, max = 2000))]
    pub reason: String,
}

/// Queue a rescreen of every monitored subject against every active entry (senior officers,
/// admin). The service also does this by itself when the matcher configuration changes.
#[utoipa::path(post, path = "/v1/screening/jobs", tag = "screening",
    request_body = RescreenRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 202, body = ScreeningJob, description = "Queued"),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn start_rescreen(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::SeniorOfficer, Role::Admin])?;
    let body: RescreenRequest = body.parse()?;
    let request = IdempotentRequest::new(
        &caller,
        idempotency_key,
        "POST",
        "/v1/screening/jobs",
        &body,
    );
    let jurisdictions = state.jurisdictions.clone();
    let actor = caller.actor();
    mutation::run(&state.db, request, move |connection| {
        let job = monitor::enqueue(
            connection,
            RescreenScope::Everything,
            &jurisdictions,
            &actor,
            Some(&body.reason),
        )?;
        Outcome::new(StatusCode::ACCEPTED, &job)
    })
    .await
}
