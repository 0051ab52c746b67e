//! `/v1/kyc/…`: applications with their documents, the officers' queue, claims and decisions,
//! resubmission, and the user's own status.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::application::{MissingItem, PersonalData};
use super::decision::{self, Decision, FourEyesReason};
use super::documents::{self, DocumentFile, MAX_DOCUMENT_BYTES};
use super::service::{Kyc, Submission, SUBJECT_TYPE};
use super::store::{
    self, Application, AssigneeFilter, DocumentSummary, HitWithEntry, QueueCursor, QueueFilter,
};
use super::{effective_tier, ApplicationStatus, DocumentKind, RiskLevel, Tier};
use crate::audit::{store as audit, AuditEntry};
use crate::auth::{Caller, Role};
use crate::error::{AppError, FieldError};
use crate::http::extract::{
    is_multipart, parse_uuid, parse_validated, read_json_payload, read_multipart, IdempotencyKey,
    JsonBody, QueryParams, RequestId,
};
use crate::http::mutation::{self, IdempotentRequest, Outcome};
use crate::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/v1/kyc/applications")
                .route(web::post().to(submit))
                .route(web::get().to(queue)),
        )
        .service(web::resource("/v1/kyc/applications/{id}").route(web::get().to(application)))
        .service(web::resource("/v1/kyc/applications/{id}/claim").route(web::post().to(claim)))
        .service(web::resource("/v1/kyc/applications/{id}/release").route(web::post().to(release)))
        .service(web::resource("/v1/kyc/applications/{id}/decision").route(web::post().to(decide)))
        .service(
            web::resource("/v1/kyc/applications/{id}/resubmission").route(web::post().to(resubmit)),
        )
        .service(
            web::resource("/v1/kyc/applications/{id}/documents/{document_id}")
                .route(web::get().to(document)),
        )
        .service(web::resource("/v1/kyc/status").route(web::get().to(status)));
}

const OFFICERS: &[Role] = &[Role::Officer, Role::SeniorOfficer];
/// Several documents at their limit, and the JSON part.
const MAX_APPLICATION_BYTES: usize = 4 * MAX_DOCUMENT_BYTES + 64 * 1024;
const MAX_FILES: usize = 10;

fn kyc(state: &AppState) -> Kyc<'_> {
    Kyc {
        cipher: &state.cipher,
        screener: &state.screener,
        jurisdictions: &state.jurisdictions,
    }
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationRequest {
    /// The applicant: required when the platform applies on a user's behalf; a user applies
    /// for themselves.
    #[validate(length(equal = 36))]
    pub user_id: Option<String>,
    /// 1 basic, 2 verified, 3 enhanced due diligence.
    #[validate(range(min = 1, max = 3))]
    pub target_tier: u8,
    #[validate(nested)]
    pub personal_data: PersonalData,
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResubmissionRequest {
    /// Replaces the personal data when given.
    #[validate(nested)]
    pub personal_data: Option<PersonalData>,
}

/// The JSON of a request and its files, from a multipart form (a part `application` with the
/// JSON, one part per file named by its document kind) or a plain JSON body.
async fn read_application(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<(Vec<u8>, Vec<DocumentFile>), AppError> {
    if !is_multipart(request) {
        return Ok((
            read_json_payload(request, payload, 256 * 1024).await?,
            Vec::new(),
        ));
    }
    let mut json = None;
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for part in read_multipart(request, payload, MAX_APPLICATION_BYTES).await? {
        if part.name == "application" {
            json = Some(part.bytes);
            continue;
        }
        let field = format!("documents.{}", part.name);
        let Some(kind) = DocumentKind::parse(&part.name) else {
            problems.push(FieldError::new(
                field,
                "unknown_document",
                format!(
                    "a file part must be named after its document kind: {}",
                    DocumentKind::ALL.map(DocumentKind::as_str).join(", ")
                ),
            ));
            continue;
        };
        match documents::sniff(&part.bytes) {
            Ok(content_type) => files.push(DocumentFile {
                kind,
                file_name: part.file_name.unwrap_or_else(|| kind.as_str().to_string()),
                content_type,
                bytes: part.bytes,
            }),
            Err(error) => problems.push(FieldError::new(
                field,
                "invalid_document",
                error.to_string(),
            )),
        }
    }
    if files.len() > MAX_FILES {
        problems.push(FieldError::new(
            "documents",
            "too_many",
            format!("at most {MAX_FILES} files per application"),
        ));
    }
    let json = json.ok_or_else(|| {
        AppError::invalid_field(
            "application",
            "required",
            "the form needs a part named `application` holding the JSON",
        )
    })?;
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    Ok((json, files))
}

/// What makes two uploads the same request: the JSON and each file's kind and hash.
fn fingerprint_body(json: &serde_json::Value, files: &[DocumentFile]) -> serde_json::Value {
    serde_json::json!({
        "application": json,
        "documents": files
            .iter()
            .map(|file| (file.kind.as_str(), crate::crypto::sha256_hex(&file.bytes)))
            .collect::<Vec<_>>(),
    })
}

/// Apply for a KYC tier (the user for themselves, or the platform for a user). Send
/// `multipart/form-data` with a part `application` (JSON) and one part per document file named
/// after its kind (`identity_document`, `selfie`, `proof_of_address`, `source_of_funds`,
/// `source_of_wealth`), or plain JSON when the tier needs no documents. Files must be JPEG, PNG
/// or PDF by content, at most 10 MiB each. The applicant is screened and rated at once and the
/// application queued for review.
#[utoipa::path(post, path = "/v1/kyc/applications", tag = "kyc",
    request_body(content = ApplicationRequest, description = "JSON, or multipart with the JSON in part `application`"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 201, body = super::service::SubmittedApplication),
              (status = 409, body = crate::error::Problem, description = "An application is already in progress"),
              (status = 422, body = crate::error::Problem, description = "Invalid or missing data or documents, each named")),
    security(("bearer" = [])))]
pub async fn submit(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::User, Role::Platform])?;
    let (json, files) = read_application(&request, payload).await?;
    let body: ApplicationRequest = parse_validated(&json)?;
    let user_id = applicant(&caller, body.user_id.as_deref())?;
    let target_tier = Tier::new(body.target_tier)
        .ok_or_else(|| AppError::bad_field("target_tier", "must be 1, 2 or 3"))?;
    let fingerprint = fingerprint_body(
        &serde_json::to_value(&body).map_err(AppError::internal)?,
        &files,
    );
    let idempotent = IdempotentRequest::new(
        &caller,
        idempotency_key,
        "POST",
        "/v1/kyc/applications",
        &fingerprint,
    );
    let submission = Arc::new(Submission {
        user_id,
        target_tier,
        personal_data: body.personal_data,
        documents: files,
    });
    let actor = caller.actor();
    let app_state = state.clone();
    mutation::run(&state.db, idempotent, move |connection| {
        let submitted =
            kyc(&app_state).submit(connection, &submission, &actor, Some(request_id.0.clone()))?;
        Outcome::new(StatusCode::CREATED, &submitted)
    })
    .await
}

/// The user an application is for: a user applies for themselves only.
fn applicant(caller: &Caller, requested: Option<&str>) -> Result<String, AppError> {
    match caller.role {
        Role::User => {
            let own = caller
                .user_id
                .clone()
                .ok_or_else(|| AppError::Forbidden("this user token is bound to no user".into()))?;
            if requested.is_some_and(|requested| requested != own) {
                return Err(AppError::Forbidden(
                    "a user may only apply for themselves".into(),
                ));
            }
            Ok(own)
        }
        _ => requested.map(str::to_string).ok_or_else(|| {
            AppError::invalid_field(
                "user_id",
                "required",
                "the platform must name the user it applies for",
            )
        }),
    }
}

/// Answer a request for information (the applicant or the platform): optionally replaced
/// personal data and more documents, in the same form as an application.
#[utoipa::path(post, path = "/v1/kyc/applications/{id}/resubmission", tag = "kyc",
    request_body(content = ResubmissionRequest, description = "JSON, or multipart with the JSON in part `application`"),
    params(("id" = String, Path, description = "Application id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 200, body = super::service::SubmittedApplication),
              (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn resubmit(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::User, Role::Platform])?;
    let id = parse_uuid("id", &path.into_inner())?;
    let (json, files) = read_application(&request, payload).await?;
    let body: ResubmissionRequest = parse_validated(&json)?;
    let fingerprint = fingerprint_body(
        &serde_json::to_value(&body).map_err(AppError::internal)?,
        &files,
    );
    let path = format!("/v1/kyc/applications/{id}/resubmission");
    let idempotent = IdempotentRequest::new(&caller, idempotency_key, "POST", &path, &fingerprint);
    let body = Arc::new((body, files));
    let actor = caller.actor();
    let app_state = state.clone();
    mutation::run(&state.db, idempotent, move |connection| {
        let kyc = kyc(&app_state);
        let application = owned_application(connection, kyc, &caller, &id)?;
        let (request, files) = body.as_ref();
        let submitted = kyc.resubmit(
            connection,
            &application,
            request.personal_data.clone(),
            files,
            &actor,
            Some(request_id.0.clone()),
        )?;
        Outcome::new(StatusCode::OK, &submitted)
    })
    .await
}

/// The application, if the caller may act on it as its applicant: a user reaches their own only
/// (others look absent), the platform every one.
fn owned_application(
    connection: &mut crate::db::DbConnection,
    kyc: Kyc,
    caller: &Caller,
    id: &str,
) -> Result<Application, AppError> {
    let application = store::require(connection, kyc.cipher, id)?;
    if caller.role == Role::User && caller.user_id.as_deref() != Some(application.user_id.as_str())
    {
        return Err(AppError::NotFound(format!("no KYC application {id}")));
    }
    Ok(application)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    /// Comma-separated statuses; default `submitted,approval_pending`.
    pub status: Option<String>,
    pub tier: Option<u8>,
    pub jurisdiction: Option<String>,
    pub risk: Option<String>,
    pub sla_breached: Option<bool>,
    /// `me`, `none`, or an officer's token id.
    pub assignee: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// One line of the queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueItem {
    pub id: String,
    pub user_id: String,
    pub applicant: String,
    pub nationality: String,
    pub residence: String,
    pub jurisdiction: String,
    pub kind: String,
    pub target_tier: u8,
    pub status: String,
    pub risk: String,
    pub priority: i32,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub submitted_at: chrono::NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub due_at: chrono::NaiveDateTime,
    pub sla_breached: bool,
    pub assignee_name: Option<String>,
    pub first_approver_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueuePage {
    pub items: Vec<QueueItem>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

impl QueueItem {
    pub fn from_application(application: &Application, now: chrono::NaiveDateTime) -> Self {
        let claimed = application
            .claim_expires_at
            .is_some_and(|until| until > now);
        QueueItem {
            id: application.id.clone(),
            user_id: application.user_id.clone(),
            applicant: application.personal_data.legal_name.clone(),
            nationality: application.personal_data.nationality.clone(),
            residence: application.personal_data.residence.clone(),
            jurisdiction: application.jurisdiction.clone(),
            kind: application.kind.as_str().to_string(),
            target_tier: application.target_tier.number(),
            status: application.status.as_str().to_string(),
            risk: application.risk.level.as_str().to_string(),
            priority: application.priority,
            submitted_at: application.submitted_at,
            due_at: application.due_at,
            sla_breached: application.sla_breached(now),
            assignee_name: application.assignee_name.clone().filter(|_| claimed),
            first_approver_name: application.first_approver_name.clone(),
        }
    }
}

/// Turns query parameters into a queue filter, naming the parameter at fault.
pub fn queue_filter(query: QueueQuery, caller: &Caller) -> Result<QueueFilter, AppError> {
    let statuses = match &query.status {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|text| {
                ApplicationStatus::parse(text.trim()).ok_or_else(|| {
                    AppError::bad_field(
                        "status",
                        "statuses are submitted, info_requested, approval_pending, approved, rejected",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let tier = query
        .tier
        .map(|tier| {
            Tier::new(tier)
                .filter(|tier| *tier > Tier::REGISTERED)
                .ok_or_else(|| AppError::bad_field("tier", "must be 1, 2 or 3"))
        })
        .transpose()?;
    let risk = query
        .risk
        .as_deref()
        .map(|text| {
            RiskLevel::parse(text)
                .ok_or_else(|| AppError::bad_field("risk", "must be low, medium or high"))
        })
        .transpose()?;
    if let Some(code) = &query.jurisdiction {
        if !crate::jurisdiction::is_country_code(code) {
            return Err(AppError::bad_field(
                "jurisdiction",
                "must be an ISO 3166-1 alpha-2 code",
            ));
        }
    }
    let assignee = query.assignee.map(|text| match text.as_str() {
        "none" => AssigneeFilter::Nobody,
        "me" => AssigneeFilter::Token(caller.token_id.clone()),
        other => AssigneeFilter::Token(other.to_string()),
    });
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(AppError::bad_field("limit", "must be between 1 and 200"));
    }
    let after = query
        .cursor
        .as_deref()
        .map(|text| {
            QueueCursor::decode(text)
                .ok_or_else(|| AppError::bad_field("cursor", "is not a cursor this API returned"))
        })
        .transpose()?;
    Ok(QueueFilter {
        statuses,
        tier,
        jurisdiction: query.jurisdiction,
        risk,
        sla_breached: query.sla_breached,
        assignee,
        after,
        limit,
    })
}

/// The review queue (officers): highest risk first, then the earliest due; filter by status,
/// tier, jurisdiction, risk, SLA breached and assignee (`me`, `none` or a token id).
#[utoipa::path(get, path = "/v1/kyc/applications", tag = "kyc",
    params(("status" = Option<String>, Query, description = "Comma-separated; default submitted,approval_pending"),
           ("tier" = Option<u8>, Query), ("jurisdiction" = Option<String>, Query),
           ("risk" = Option<String>, Query, description = "low, medium, high"),
           ("sla_breached" = Option<bool>, Query), ("assignee" = Option<String>, Query, description = "me, none or a token id"),
           ("limit" = Option<i64>, Query, description = "1 to 200, default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = QueuePage)),
    security(("bearer" = [])))]
pub async fn queue(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<QueueQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require(OFFICERS)?;
    let filter = queue_filter(query.into_inner()?, &caller)?;
    Ok(HttpResponse::Ok().json(queue_page(&state, filter).await?))
}

/// The first (or next) page of the queue.
pub async fn queue_page(
    state: &web::Data<AppState>,
    filter: QueueFilter,
) -> Result<QueuePage, AppError> {
    let app_state = state.clone();
    let now = crate::db::now();
    let limit = filter.limit;
    let applications = state
        .db
        .run(move |connection| store::queue(connection, &app_state.cipher, &filter, now))
        .await?;
    let next_cursor = (applications.len() as i64 == limit)
        .then(|| applications.last())
        .flatten()
        .map(|last| {
            QueueCursor {
                priority: last.priority,
                due_at: last.due_at,
                id: last.id.clone(),
            }
            .encode()
        });
    Ok(QueuePage {
        items: applications
            .iter()
            .map(|application| QueueItem::from_application(application, now))
            .collect(),
        next_cursor,
    })
}

/// Everything an officer needs to decide.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationDetail {
    #[serde(flatten)]
    pub application: Application,
    pub sla_breached: bool,
    /// Why an approval needs a second senior officer now; empty when one officer decides.
    pub four_eyes: Vec<FourEyesReason>,
    /// This application's documents, and for a review those of the approved applications it
    /// follows (oldest first).
    pub documents: Vec<DocumentSummary>,
    pub hits: Vec<HitWithEntry>,
    /// The user's earlier applications, newest first.
    pub earlier_applications: Vec<QueueItem>,
    /// Every step, newest first: submission, screening, claims, decisions.
    pub history: Vec<AuditEntry>,
}

pub async fn load_detail(
    state: &web::Data<AppState>,
    id: String,
) -> Result<ApplicationDetail, AppError> {
    let app_state = state.clone();
    state
        .db
        .run(move |connection| application_detail(connection, &app_state, &id))
        .await
}

fn application_detail(
    connection: &mut crate::db::DbConnection,
    state: &AppState,
    id: &str,
) -> Result<ApplicationDetail, AppError> {
    let kyc = kyc(state);
    let application = store::require(connection, kyc.cipher, id)?;
    let now = crate::db::now();
    let four_eyes = if application.status.is_final() {
        Vec::new()
    } else {
        kyc.four_eyes_reasons(connection, &application)?
    };
    let lineage = store::lineage(connection, &application.id)?;
    let document_sources: Vec<&str> = lineage.iter().map(String::as_str).collect();
    let documents = store::documents(connection, &document_sources)?;
    let hits = store::hits_with_entries(connection, &application.screening_ids)?;
    let earlier_applications =
        store::applications_of(connection, kyc.cipher, &application.user_id, 20)?
            .iter()
            .filter(|earlier| earlier.id != application.id)
            .map(|earlier| QueueItem::from_application(earlier, now))
            .collect();
    let history = audit::list(
        connection,
        &audit::AuditFilter {
            subject_type: Some(SUBJECT_TYPE.into()),
            subject_id: Some(application.id.clone()),
            limit: 500,
            ..Default::default()
        },
    )?;
    Ok(ApplicationDetail {
        sla_breached: application.sla_breached(now),
        application,
        four_eyes,
        documents,
        hits,
        earlier_applications,
        history,
    })
}

/// One application with its data, documents, screening hits beside their list entries, risk
/// factors, four-eyes state and history (officers).
#[utoipa::path(get, path = "/v1/kyc/applications/{id}", tag = "kyc",
    params(("id" = String, Path, description = "Application id")),
    responses((status = 200, body = ApplicationDetail), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn application(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.require(OFFICERS)?;
    let id = parse_uuid("id", &path.into_inner())?;
    Ok(HttpResponse::Ok().json(load_detail(&state, id).await?))
}

/// Claim an application to work it (officers); a claim lasts 30 minutes and is renewed by
/// claiming again. Of two officers claiming at once exactly one wins; the other gets 409.
#[utoipa::path(post, path = "/v1/kyc/applications/{id}/claim", tag = "kyc",
    params(("id" = String, Path, description = "Application id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 200, description = "Claimed until the time returned"),
              (status = 409, body = crate::error::Problem, description = "Claimed by another officer")),
    security(("bearer" = [])))]
pub async fn claim(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    claim_or_release(state, caller, request_id, idempotency_key, path, true).await
}

/// Give up a claim (its holder).
#[utoipa::path(post, path = "/v1/kyc/applications/{id}/release", tag = "kyc",
    params(("id" = String, Path, description = "Application id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 200, description = "Released"), (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn release(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    claim_or_release(state, caller, request_id, idempotency_key, path, false).await
}

async fn claim_or_release(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
    claiming: bool,
) -> Result<HttpResponse, AppError> {
    caller.require(OFFICERS)?;
    let id = parse_uuid("id", &path.into_inner())?;
    let action = if claiming { "claim" } else { "release" };
    let path = format!("/v1/kyc/applications/{id}/{action}");
    let idempotent = IdempotentRequest::new(&caller, idempotency_key, "POST", &path, &());
    let app_state = state.clone();
    mutation::run(&state.db, idempotent, move |connection| {
        let kyc = kyc(&app_state);
        let actor = caller.actor();
        let request_id = Some(request_id.0.clone());
        let body = if claiming {
            let until = kyc.claim(connection, &id, &actor, caller.role, request_id)?;
            serde_json::json!({ "id": id, "assignee": caller.name, "claim_expires_at": until })
        } else {
            kyc.release(connection, &id, &actor, request_id)?;
            serde_json::json!({ "id": id, "released": true })
        };
        Outcome::new(StatusCode::OK, &body)
    })
    .await
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// `approve`, `reject` or `request_info`.
    #[validate(custom(function = "validate_decision"))]
    pub decision: String,
    /// For `reject`: one of the stable rejection codes.
    #[validate(custom(function = "validate_rejection_code"))]
    pub reason_code: Option<String>,
    /// Why, in words: kept in the history and audit log; for a rejection with a code the user
    /// may be told, it is the sentence they read.
    #[validate(length(min = 5, max = 2000))]
    pub reason: String,
    /// For `request_info`: what the user must provide.
    #[validate(length(min = 1, max = 20), nested)]
    pub items: Option<Vec<RequestedItem>>,
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestedItem {
    /// A document kind (`selfie`) or personal-data field (`address`).
    #[validate(custom(function = "validate_requested_item"))]
    pub item: String,
    /// The sentence the user reads.
    #[validate(length(min = 5, max = 500))]
    pub message: String,
}

fn validate_decision(decision: &str) -> Result<(), validator::ValidationError> {
    match decision {
        "approve" | "reject" | "request_info" => Ok(()),
        _ => Err(validator::ValidationError::new("one_of")
            .with_message("must be approve, reject or request_info".into())),
    }
}

fn validate_rejection_code(code: &str) -> Result<(), validator::ValidationError> {
    if decision::REJECTION_CODES.contains(&code) {
        Ok(())
    } else {
        Err(validator::ValidationError::new("one_of").with_message(
            format!("must be one of {}", decision::REJECTION_CODES.join(", ")).into(),
        ))
    }
}

const REQUESTABLE_FIELDS: [&str; 8] = [
    "legal_name",
    "latin_name",
    "date_of_birth",
    "nationality",
    "residence",
    "address",
    "identity_document",
    "occupation",
];

fn validate_requested_item(item: &str) -> Result<(), validator::ValidationError> {
    if DocumentKind::parse(item).is_some()
        || REQUESTABLE_FIELDS.contains(&item)
        || item == "source_of_funds"
        || item == "source_of_wealth"
    {
        Ok(())
    } else {
        Err(validator::ValidationError::new("one_of")
            .with_message("must be a document kind or a personal-data field".into()))
    }
}

/// Decide a claimed application (officers): approve, reject with a code, or ask the user for
/// more information. Approvals that need four eyes move to `approval_pending`; a different
/// senior officer then claims and approves. The user is e-mailed in their language.
#[utoipa::path(post, path = "/v1/kyc/applications/{id}/decision", tag = "kyc",
    request_body = DecisionRequest,
    params(("id" = String, Path, description = "Application id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 200, description = "The application's new status"),
              (status = 403, body = crate::error::Problem, description = "Four eyes refused"),
              (status = 409, body = crate::error::Problem, description = "Not claimed, or not decidable")),
    security(("bearer" = [])))]
pub async fn decide(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(OFFICERS)?;
    let id = parse_uuid("id", &path.into_inner())?;
    let body: DecisionRequest = body.parse()?;
    let decision = to_decision(&body)?;
    let path = format!("/v1/kyc/applications/{id}/decision");
    let idempotent = IdempotentRequest::new(&caller, idempotency_key, "POST", &path, &body);
    let app_state = state.clone();
    mutation::run(&state.db, idempotent, move |connection| {
        let status = kyc(&app_state).decide(
            connection,
            &id,
            &decision,
            &body.reason,
            &caller.actor(),
            caller.role,
            Some(request_id.0.clone()),
        )?;
        Outcome::new(
            StatusCode::OK,
            &serde_json::json!({ "id": id, "decision": body.decision, "status": status }),
        )
    })
    .await
}

pub fn to_decision(body: &DecisionRequest) -> Result<Decision, AppError> {
    Ok(match body.decision.as_str() {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject {
            code: body.reason_code.clone().ok_or_else(|| {
                AppError::invalid_field(
                    "reason_code",
                    "required",
                    "a rejection needs a reason_code",
                )
            })?,
        },
        _ => Decision::RequestInfo {
            items: body
                .items
                .as_ref()
                .filter(|items| !items.is_empty())
                .ok_or_else(|| {
                    AppError::invalid_field("items", "required", "say what the user must provide")
                })?
                .iter()
                .map(|item| MissingItem::new(&item.item, item.message.clone()))
                .collect(),
        },
    })
}

/// Download a document (officers only; never the applicant). Each download is in the audit log.
#[utoipa::path(get, path = "/v1/kyc/applications/{id}/documents/{document_id}", tag = "kyc",
    params(("id" = String, Path, description = "Application id"), ("document_id" = String, Path)),
    responses((status = 200, description = "The file, decrypted, with its SHA-256 in `Digest`"),
              (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn document(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    caller.require(OFFICERS)?;
    let (id, document_id) = path.into_inner();
    let id = parse_uuid("id", &id)?;
    let document_id = parse_uuid("document_id", &document_id)?;
    let (summary, content) =
        read_document(&state, caller.actor(), id, document_id, request_id).await?;
    Ok(crate::http::file_response(
        &summary.content_type,
        &summary.sha256,
        &summary.file_name,
        "inline",
        content,
    ))
}

/// Reads a document for an officer, auditing the read (the API and the console share it).
pub async fn read_document(
    state: &web::Data<AppState>,
    actor: crate::audit::Actor,
    application_id: String,
    document_id: String,
    request_id: RequestId,
) -> Result<(DocumentSummary, Vec<u8>), AppError> {
    let app_state = state.clone();
    state
        .db
        .run(move |connection| {
            crate::db::write_transaction(connection, |connection| {
                kyc(&app_state).document_for_officer(
                    connection,
                    &application_id,
                    &document_id,
                    &actor,
                    Some(request_id.0),
                )
            })
        })
        .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// For the platform and officers: whose status.
    user_id: Option<String>,
}

/// A user's KYC standing, as they may see it: never the risk rating or screening.
#[derive(Debug, Serialize, ToSchema)]
pub struct KycStatus {
    pub user_id: String,
    /// The tier the user may act on now.
    pub effective_tier: u8,
    pub approved_tier: u8,
    pub tier_name: String,
    pub jurisdiction: Option<String>,
    /// Withdrawal limits of the effective tier in the jurisdiction's currency.
    #[schema(value_type = Option<Object>)]
    pub limits: Option<super::rules::Limits>,
    pub currency: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub next_review_at: Option<chrono::NaiveDateTime>,
    pub review_lapsed: bool,
    /// The application in progress or last decided.
    pub application: Option<ApplicationStatusView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationStatusView {
    pub id: String,
    pub kind: String,
    pub target_tier: u8,
    pub status: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub submitted_at: chrono::NaiveDateTime,
    /// What the user still has to provide (when the status is `info_requested`).
    pub missing: Vec<MissingItem>,
    /// The reason a rejection gives the user (none for confidential codes).
    pub rejection_reason: Option<String>,
}

/// The caller's own KYC status and what is missing (a user token); the platform and officers
/// pass `user_id`.
#[utoipa::path(get, path = "/v1/kyc/status", tag = "kyc",
    params(("user_id" = Option<String>, Query, description = "For the platform and officers")),
    responses((status = 200, body = KycStatus),
              (status = 404, description = "No such user", body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn status(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<StatusQuery>,
) -> Result<HttpResponse, AppError> {
    let user_id = match caller.role {
        Role::User => {
            let own = caller
                .user_id
                .clone()
                .ok_or_else(|| AppError::Forbidden("this user token is bound to no user".into()))?;
            if query
                .into_inner()?
                .user_id
                .as_ref()
                .is_some_and(|requested| *requested != own)
            {
                return Err(AppError::Forbidden(
                    "a user may only read their own records".into(),
                ));
            }
            own
        }
        _ => {
            caller.require(&[Role::Platform, Role::Officer, Role::SeniorOfficer])?;
            let requested = query
                .into_inner()?
                .user_id
                .ok_or_else(|| AppError::bad_field("user_id", "name the user"))?;
            parse_uuid("user_id", &requested)?
        }
    };
    let app_state = state.clone();
    let view = state
        .db
        .run(move |connection| {
            crate::users::store::require_exists(connection, &user_id)?;
            let profile = store::profile(connection, &user_id)?;
            let latest = store::applications_of(connection, &app_state.cipher, &user_id, 1)?
                .into_iter()
                .next();
            let jurisdiction_code = profile
                .as_ref()
                .map(|profile| profile.jurisdiction.clone())
                .or_else(|| {
                    latest
                        .as_ref()
                        .map(|application| application.jurisdiction.clone())
                });
            let jurisdiction = jurisdiction_code
                .as_deref()
                .and_then(|code| app_state.jurisdictions.get(code));
            let approved = profile
                .as_ref()
                .map(|p| p.approved_tier())
                .unwrap_or(Tier::REGISTERED);
            let lapsed = profile
                .as_ref()
                .is_some_and(|p| p.review_lapsed_at.is_some());
            let effective = jurisdiction
                .map(|j| effective_tier(approved, lapsed, j.kyc.lapsed_tier))
                .unwrap_or(approved);
            Ok(KycStatus {
                user_id: user_id.clone(),
                effective_tier: effective.number(),
                approved_tier: approved.number(),
                tier_name: effective.name().to_string(),
                jurisdiction: jurisdiction_code.clone(),
                limits: jurisdiction.map(|j| j.kyc.tier(effective).limits),
                currency: jurisdiction.map(|j| j.currency.clone()),
                next_review_at: profile.as_ref().map(|p| p.next_review_at),
                review_lapsed: lapsed,
                application: latest.map(|application| ApplicationStatusView {
                    missing: if application.status == ApplicationStatus::InfoRequested {
                        application.requested_items.clone()
                    } else {
                        Vec::new()
                    },
                    rejection_reason: (application.status == ApplicationStatus::Rejected)
                        .then(|| {
                            application
                                .decision_code
                                .as_deref()
                                .filter(|code| !decision::is_confidential(code))
                                .and(application.decision_text.clone())
                        })
                        .flatten(),
                    id: application.id,
                    kind: application.kind.as_str().to_string(),
                    target_tier: application.target_tier.number(),
                    status: application.status.as_str().to_string(),
                    submitted_at: application.submitted_at,
                }),
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}
