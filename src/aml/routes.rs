//! `POST /v1/screening/person|entity|address`, `GET /v1/lists`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::matcher::SubjectQuery;
use super::names::SubjectKind;
use super::review::{self, HitStatus, ReviewRequest};
use super::screener::{ScreeningRequest, Subject};
use super::store;
use crate::auth::{Caller, Role};
use crate::db::schema::list_versions;
use crate::error::AppError;
use crate::http::extract::{parse_uuid, IdempotencyKey, JsonBody, QueryParams, RequestId};
use crate::http::mutation::{self, IdempotentRequest, Outcome};
use crate::jurisdiction::rules::ScreeningRules;
use crate::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/v1/screening/person").route(web::post().to(screen_person)))
        .service(web::resource("/v1/screening/entity").route(web::post().to(screen_entity)))
        .service(web::resource("/v1/screening/address").route(web::post().to(screen_address)))
        .service(web::resource("/v1/screening/hits").route(web::get().to(list_hits)))
        .service(web::resource("/v1/screening/hits/{id}/review").route(web::post().to(review_hit)))
        .service(
            web::resource("/v1/screening/hits/{id}/approval").route(web::post().to(approve_hit)),
        )
        .service(web::resource("/v1/lists").route(web::get().to(list_versions_handler)));
}

const SCREENERS: &[Role] = &[Role::Officer, Role::SeniorOfficer, Role::Platform];

fn validate_threshold(threshold: f64) -> Result<(), validator::ValidationError> {
    if (0.5..=1.0).contains(&threshold) {
        Ok(())
    } else {
        Err(validator::ValidationError::new("range")
            .with_message("must be between 0.5 and 1.0".into()))
    }
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonScreeningRequest {
    #[validate(length(min = 1, max = 300))]
    pub name: String,
    #[schema(value_type = Option<String>, format = Date)]
    pub date_of_birth: Option<NaiveDate>,
    /// ISO 3166-1 alpha-2.
    #[validate(custom(function = "crate::users::validate_country"))]
    pub nationality: Option<String>,
    #[validate(length(min = 1, max = 64))]
    pub document_number: Option<String>,
    /// The user screened, when there is one (their id); they are then rescreened whenever a
    /// list changes.
    #[validate(length(min = 1, max = 100))]
    pub subject_ref: Option<String>,
    /// The jurisdiction whose screening rules apply (`jurisdictions/<CODE>.toml`).
    #[validate(length(equal = 2))]
    pub jurisdiction: Option<String>,
    #[validate(custom(function = "validate_threshold"))]
    pub threshold: Option<f64>,
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityScreeningRequest {
    #[validate(length(min = 1, max = 300))]
    pub name: String,
    /// ISO 3166-1 alpha-2 country of registration.
    #[validate(custom(function = "crate::users::validate_country"))]
    pub country: Option<String>,
    #[validate(length(min = 1, max = 100))]
    pub subject_ref: Option<String>,
    #[validate(length(equal = 2))]
    pub jurisdiction: Option<String>,
    #[validate(custom(function = "validate_threshold"))]
    pub threshold: Option<f64>,
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressScreeningRequest {
    #[validate(length(min = 10, max = 128))]
    pub address: String,
    #[validate(length(min = 1, max = 100))]
    pub subject_ref: Option<String>,
}

/// Screen a person against the sanctions and PEP lists (officers, platform). The screening and
/// its hits are stored for review; each hit explains its score.
#[utoipa::path(post, path = "/v1/screening/person", tag = "screening",
    request_body = PersonScreeningRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 200, description = "The stored screening with its hits"),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn screen_person(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(SCREENERS)?;
    let body: PersonScreeningRequest = body.parse()?;
    let query = SubjectQuery {
        name: body.name.clone(),
        date_of_birth: body.date_of_birth,
        country: body.nationality.clone(),
        document_number: body.document_number.clone(),
    };
    let rules = rules_for(&state, body.jurisdiction.as_deref(), body.threshold)?;
    let request = IdempotentRequest::new(
        &caller,
        idempotency_key,
        "POST",
        "/v1/screening/person",
        &body,
    );
    let screening = ScreeningRequest {
        subject: Subject::Named {
            kind: SubjectKind::Person,
            query,
        },
        subject_ref: body.subject_ref,
        jurisdiction: body.jurisdiction,
        rules,
    };
    screen(state, caller, request, screening).await
}

/// Screen a company, vessel or aircraft name (officers, platform).
#[utoipa::path(post, path = "/v1/screening/entity", tag = "screening",
    request_body = EntityScreeningRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 200, description = "The stored screening with its hits"),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn screen_entity(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(SCREENERS)?;
    let body: EntityScreeningRequest = body.parse()?;
    let query = SubjectQuery {
        name: body.name.clone(),
        country: body.country.clone(),
        ..SubjectQuery::default()
    };
    let rules = rules_for(&state, body.jurisdiction.as_deref(), body.threshold)?;
    let request = IdempotentRequest::new(
        &caller,
        idempotency_key,
        "POST",
        "/v1/screening/entity",
        &body,
    );
    let screening = ScreeningRequest {
        subject: Subject::Named {
            kind: SubjectKind::Entity,
            query,
        },
        subject_ref: body.subject_ref,
        jurisdiction: body.jurisdiction,
        rules,
    };
    screen(state, caller, request, screening).await
}

/// The rules of the named jurisdiction, with a per-request threshold override.
fn rules_for(
    state: &AppState,
    jurisdiction: Option<&str>,
    threshold: Option<f64>,
) -> Result<ScreeningRules, AppError> {
    let mut rules = match jurisdiction {
        Some(code) => {
            state
                .jurisdictions
                .get(code)
                .ok_or_else(|| {
                    AppError::invalid_field(
                        "jurisdiction",
                        "unknown_jurisdiction",
                        format!("no rules for jurisdiction `{code}`"),
                    )
                })?
                .screening
        }
        None => super::DEFAULT_RULES,
    };
    if let Some(threshold) = threshold {
        rules.threshold = threshold;
        rules.four_eyes_score = rules.four_eyes_score.max(threshold);
    }
    Ok(rules)
}

async fn screen(
    state: web::Data<AppState>,
    caller: Caller,
    request: IdempotentRequest,
    screening: ScreeningRequest,
) -> Result<HttpResponse, AppError> {
    let actor = caller.actor();
    let cipher = state.cipher.clone();
    let screener = state.screener.clone();
    mutation::run(&state.db, request, move |connection| {
        let stored = screener.screen(connection, &cipher, &screening, &actor)?;
        Outcome::new(StatusCode::OK, &stored)
    })
    .await
}

/// Screen a crypto address: an exact match with a listed address (case-insensitive only where
/// the format is) scores 1.0; nothing else is a hit.
#[utoipa::path(post, path = "/v1/screening/address", tag = "screening",
    request_body = AddressScreeningRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 200, description = "The stored screening with its hits"),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn screen_address(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(SCREENERS)?;
    let body: AddressScreeningRequest = body.parse()?;
    if body
        .address
        .chars()
        .any(|c| !c.is_ascii_alphanumeric() && c != ':')
    {
        return Err(AppError::bad_field(
            "address",
            "a crypto address has only letters and digits",
        ));
    }
    let request = IdempotentRequest::new(
        &caller,
        idempotency_key,
        "POST",
        "/v1/screening/address",
        &body,
    );
    let screening = ScreeningRequest {
        subject: Subject::Address(body.address),
        subject_ref: body.subject_ref,
        jurisdiction: None,
        rules: ScreeningRules {
            threshold: 1.0,
            four_eyes_score: 1.0,
        },
    };
    screen(state, caller, request, screening).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListVersionView {
    pub source: String,
    pub version: i64,
    pub checksum: String,
    pub entries: i64,
    pub added: i64,
    pub changed: i64,
    pub removed: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub loaded_at: chrono::NaiveDateTime,
    pub loaded_by: String,
}

/// Every loaded list version, newest first, with its checksum and diff counts (officers, admin).
#[utoipa::path(get, path = "/v1/lists", tag = "screening",
    responses((status = 200, body = Vec<ListVersionView>)),
    security(("bearer" = [])))]
pub async fn list_versions_handler(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Officer, Role::SeniorOfficer, Role::Admin])?;
    let rows = state
        .db
        .run(|connection| {
            list_versions::table
                .order((list_versions::loaded_at.desc(), list_versions::source))
                .select((
                    list_versions::source,
                    list_versions::version,
                    list_versions::checksum,
                    list_versions::entries,
                    list_versions::added,
                    list_versions::changed,
                    list_versions::removed,
                    list_versions::loaded_at,
                    list_versions::loaded_by,
                ))
                .load::<(
                    String,
                    i64,
                    String,
                    i64,
                    i64,
                    i64,
                    i64,
                    chrono::NaiveDateTime,
                    String,
                )>(connection)
                .map_err(AppError::from)
        })
        .await?;
    let versions: Vec<ListVersionView> = rows
        .into_iter()
        .map(
            |(
                source,
                version,
                checksum,
                entries,
                added,
                changed,
                removed,
                loaded_at,
                loaded_by,
            )| {
                ListVersionView {
                    source,
                    version,
                    checksum,
                    entries,
                    added,
                    changed,
                    removed,
                    loaded_at,
                    loaded_by,
                }
            },
        )
        .collect();
    Ok(HttpResponse::Ok().json(versions))
}

const REVIEWERS: &[Role] = &[Role::Officer, Role::SeniorOfficer];

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewHitRequest {
    /// `confirm` (a true match) or `dismiss` (a false positive).
    #[validate(custom(function = "validate_decision"))]
    pub decision: String,
    /// Why: kept in the review record and the audit log.
    #[validate(length(min = 5, max = 2000))]
    pub reason: String,
}

fn validate_decision(decision: &str) -> Result<(), validator::ValidationError> {
    match decision {
        "confirm" | "dismiss" => Ok(()),
        _ => Err(validator::ValidationError::new("one_of")
            .with_message("must be `confirm` or `dismiss`".into())),
    }
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveHitRequest {
    /// `true` dismisses the hit as proposed; `false` sends it back to the queue.
    pub approve: bool,
    #[validate(length(min = 5, max = 2000))]
    pub reason: String,
}

/// Review a hit (officers): confirm it, or dismiss it as a false positive. Dismissing a hit at or
/// above the jurisdiction's four-eyes score only proposes the dismissal; a different senior
/// officer decides. A dismissal holds for this subject and this version of the list entry.
#[utoipa::path(post, path = "/v1/screening/hits/{id}/review", tag = "screening",
    request_body = ReviewHitRequest,
    params(("id" = String, Path, description = "Hit id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 200, description = "The hit's new status"),
              (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn review_hit(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(REVIEWERS)?;
    let id = parse_uuid("id", &path.into_inner())?;
    let body: ReviewHitRequest = body.parse()?;
    let decision = if body.decision == "confirm" {
        ReviewRequest::Confirm
    } else {
        ReviewRequest::Dismiss
    };
    let path = format!("/v1/screening/hits/{id}/review");
    let request = IdempotentRequest::new(&caller, idempotency_key, "POST", &path, &body);
    decide(
        state,
        caller,
        request,
        request_id,
        id,
        decision,
        body.reason,
    )
    .await
}

/// Approve or reject a proposed dismissal (senior officers other than the proposer).
#[utoipa::path(post, path = "/v1/screening/hits/{id}/approval", tag = "screening",
    request_body = ApproveHitRequest,
    params(("id" = String, Path, description = "Hit id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 200, description = "The hit's new status"),
              (status = 403, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn approve_hit(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::SeniorOfficer])?;
    let id = parse_uuid("id", &path.into_inner())?;
    let body: ApproveHitRequest = body.parse()?;
    let decision = if body.approve {
        ReviewRequest::Approve
    } else {
        ReviewRequest::Reject
    };
    let path = format!("/v1/screening/hits/{id}/approval");
    let request = IdempotentRequest::new(&caller, idempotency_key, "POST", &path, &body);
    decide(
        state,
        caller,
        request,
        request_id,
        id,
        decision,
        body.reason,
    )
    .await
}

async fn decide(
    state: web::Data<AppState>,
    caller: Caller,
    request: IdempotentRequest,
    request_id: RequestId,
    id: String,
    decision: ReviewRequest,
    reason: String,
) -> Result<HttpResponse, AppError> {
    let actor = caller.actor();
    let role = caller.role;
    mutation::run(&state.db, request, move |connection| {
        let transition = apply_hit_review(
            connection,
            &id,
            decision,
            &reason,
            &actor,
            role,
            Some(request_id.0.clone()),
        )?;
        Outcome::new(
            StatusCode::OK,
            &serde_json::json!({
                "id": id,
                "status": transition.status.as_str(),
                "action": transition.action,
            }),
        )
    })
    .await
}

/// Reviews a hit in the caller's transaction (the API and the console share it).
pub fn apply_hit_review(
    connection: &mut crate::db::DbConnection,
    id: &str,
    decision: ReviewRequest,
    reason: &str,
    actor: &crate::audit::Actor,
    role: Role,
    request_id: Option<String>,
) -> Result<review::Transition, AppError> {
    let hit = store::find_hit(connection, id)?
        .ok_or_else(|| AppError::NotFound(format!("no screening hit {id}")))?;
    let under_review = review::HitUnderReview {
        status: hit.status,
        score: hit.score,
        four_eyes_score: hit.four_eyes_score,
        proposed_by: hit.proposed_by.as_deref(),
    };
    let transition =
        review::review(&under_review, decision, &actor.id, role).map_err(|error| match error {
            review::ReviewError::SameOfficer | review::ReviewError::NotSenior => {
                AppError::Forbidden(error.to_string())
            }
            _ => AppError::Conflict(error.to_string()),
        })?;
    store::apply_review(connection, &hit, transition, reason, actor, request_id)?;
    Ok(transition)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HitQuery {
    status: Option<String>,
    /// Only hits raised by ongoing monitoring (rescreens after a list change).
    alerts: Option<bool>,
    limit: Option<i64>,
}

/// The review queue (officers): hits by status (default `open`), newest first, with their
/// explanations; `alerts=true` keeps those raised by ongoing monitoring.
#[utoipa::path(get, path = "/v1/screening/hits", tag = "screening",
    params(("status" = Option<String>, Query, description = "open, dismissal_pending, confirmed, dismissed"),
           ("alerts" = Option<bool>, Query, description = "Only hits from rescreens"),
           ("limit" = Option<i64>, Query, description = "1 to 500, default 100")),
    responses((status = 200, description = "Hits")),
    security(("bearer" = [])))]
pub async fn list_hits(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<HitQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require(REVIEWERS)?;
    let query = query.into_inner()?;
    let status = match query.status.as_deref() {
        None => HitStatus::Open,
        Some(text) => HitStatus::parse(text).ok_or_else(|| {
            AppError::bad_field(
                "status",
                "must be one of open, dismissal_pending, confirmed, dismissed",
            )
        })?,
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(AppError::bad_field("limit", "must be between 1 and 500"));
    }
    let alerts_only = query.alerts.unwrap_or(false);
    let hits = state
        .db
        .run(move |connection| store::queued_hits(connection, status, alerts_only, limit))
        .await?;
    Ok(HttpResponse::Ok().json(hits))
}
