//! `POST /v1/screening/person|entity|address`, `GET /v1/lists`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::matcher::{Hit, ScreeningIndex, SubjectQuery};
use super::names::SubjectKind;
use super::{store, DEFAULT_THRESHOLD};
use crate::auth::{Caller, Role};
use crate::db::schema::list_versions;
use crate::error::AppError;
use crate::http::extract::{IdempotencyKey, JsonBody};
use crate::http::mutation::{self, IdempotentRequest, Outcome};
use crate::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/v1/screening/person").route(web::post().to(screen_person)))
        .service(web::resource("/v1/screening/entity").route(web::post().to(screen_entity)))
        .service(web::resource("/v1/screening/address").route(web::post().to(screen_address)))
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
    /// The user screened, when there is one (their id).
    #[validate(length(min = 1, max = 100))]
    pub subject_ref: Option<String>,
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
    let threshold = body.threshold.unwrap_or(DEFAULT_THRESHOLD);
    let request = IdempotentRequest::new(
        &caller,
        idempotency_key,
        "POST",
        "/v1/screening/person",
        &body,
    );
    let (screening, find_hits) =
        subject_screening(SubjectKind::Person, query, body.subject_ref, threshold);
    screen(state, caller, request, screening, find_hits).await
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
    let threshold = body.threshold.unwrap_or(DEFAULT_THRESHOLD);
    let request = IdempotentRequest::new(
        &caller,
        idempotency_key,
        "POST",
        "/v1/screening/entity",
        &body,
    );
    let (screening, find_hits) =
        subject_screening(SubjectKind::Entity, query, body.subject_ref, threshold);
    screen(state, caller, request, screening, find_hits).await
}

/// What a screening looked for: the stored kind, the subject, the query as stored (encrypted)
/// and the threshold.
struct Screening {
    kind: &'static str,
    subject_ref: Option<String>,
    stored_query: serde_json::Value,
    threshold: f64,
}

async fn screen(
    state: web::Data<AppState>,
    caller: Caller,
    request: IdempotentRequest,
    screening: Screening,
    find_hits: impl Fn(&ScreeningIndex) -> Vec<Hit> + Send + Sync + 'static,
) -> Result<HttpResponse, AppError> {
    let actor = caller.actor();
    let cipher = state.cipher.clone();
    let screener = state.screener.clone();
    mutation::run(&state.db, request, move |connection| {
        let index = screener.index(connection)?;
        let stored = store::record_screening(
            connection,
            &cipher,
            screening.kind,
            screening.subject_ref.as_deref(),
            &screening.stored_query,
            screening.threshold,
            find_hits(&index),
            &actor,
        )?;
        Outcome::new(StatusCode::OK, &stored)
    })
    .await
}

fn subject_screening(
    kind: SubjectKind,
    query: SubjectQuery,
    subject_ref: Option<String>,
    threshold: f64,
) -> (
    Screening,
    impl Fn(&ScreeningIndex) -> Vec<Hit> + Send + Sync + 'static,
) {
    let screening = Screening {
        kind: kind.as_str(),
        subject_ref,
        stored_query: serde_json::json!({
            "name": query.name,
            "date_of_birth": query.date_of_birth,
            "country": query.country,
            "document_number": query.document_number,
        }),
        threshold,
    };
    (screening, move |index: &ScreeningIndex| {
        index.screen(&query, kind, threshold)
    })
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
    let screening = Screening {
        kind: "address",
        subject_ref: body.subject_ref.clone(),
        stored_query: serde_json::json!({ "address": body.address }),
        threshold: 1.0,
    };
    let address = body.address;
    screen(state, caller, request, screening, move |index| {
        index.screen_address(&address)
    })
    .await
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
