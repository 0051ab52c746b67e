//! `POST /v1/users`, `GET /v1/users/{id}`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::store::{self, User};
use super::{validate_country, validate_language, NewUser, DEFAULT_LANGUAGE};
use crate::audit::{self, NewAuditEntry};
use crate::auth::{Caller, Role};
use crate::db::write_transaction;
use crate::error::AppError;
use crate::http::extract::{parse_uuid, IdempotencyKey, JsonBody, RequestId};
use crate::http::mutation::{self, IdempotentRequest, Outcome};
use crate::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/v1/users").route(web::post().to(create_user)))
        .service(web::resource("/v1/users/{id}").route(web::get().to(get_user)));
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// The platform's own id for the user; unique.
    #[validate(length(min = 1, max = 100))]
    pub external_ref: String,
    #[validate(email, length(max = 254))]
    pub email: String,
    /// ISO 3166-1 alpha-2 code of the country of residence.
    #[validate(custom(function = "validate_country"))]
    pub residence_jurisdiction: String,
    /// BCP 47 tag for statements and e-mail (default `en`).
    #[validate(custom(function = "validate_language"))]
    pub preferred_language: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub date_of_birth: Option<NaiveDate>,
    #[validate(length(min = 1, max = 500))]
    pub address: Option<String>,
}

/// Register a platform user (platform role). Email, birth date and address are encrypted at rest.
#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = CreateUserRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 201, body = User), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create_user(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Platform])?;
    let body: CreateUserRequest = body.parse()?;
    if let Some(date) = &body.date_of_birth {
        super::validate_birth_date(date, chrono::Utc::now().date_naive()).map_err(|error| {
            AppError::invalid_field("date_of_birth", error.code.to_string(), error.to_string())
        })?;
    }
    let new_user = NewUser {
        external_ref: body.external_ref.trim().to_string(),
        email: body.email.trim().to_string(),
        residence_jurisdiction: body.residence_jurisdiction.clone(),
        preferred_language: body
            .preferred_language
            .clone()
            .unwrap_or_else(|| DEFAULT_LANGUAGE.to_string()),
        date_of_birth: body.date_of_birth,
        address: body.address.clone(),
    };
    let request = IdempotentRequest::new(&caller, idempotency_key, "POST", "/v1/users", &body);
    let actor = caller.actor();
    let cipher = state.cipher.clone();
    mutation::run(&state.db, request, move |connection| {
        let user = store::insert(connection, &cipher, &new_user)?;
        audit::store::append(
            connection,
            NewAuditEntry::new(
                actor.clone(),
                "user.create",
                "user",
                &user.id,
                Some(request_id.0.clone()),
            )
            .details(serde_json::json!({
                "external_ref": user.external_ref,
                "residence_jurisdiction": user.residence_jurisdiction,
            })),
        )?;
        Outcome::new(StatusCode::CREATED, &user)
    })
    .await
}

/// Read a user: the user themself, officers and admins. Staff reads are audited.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = User), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub async fn get_user(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_uuid("id", &path.into_inner())?;
    caller.require_self_or(&id, &[Role::Officer, Role::SeniorOfficer, Role::Admin])?;
    let cipher = state.cipher.clone();
    let user = state
        .db
        .run(move |connection| {
            if caller.role == Role::User {
                return store::find(connection, &cipher, &id);
            }
            // Staff reading personal data leaves a trace.
            write_transaction(connection, |connection| {
                let user = store::find(connection, &cipher, &id)?;
                audit::store::append(
                    connection,
                    NewAuditEntry::new(
                        caller.actor(),
                        "user.view",
                        "user",
                        &id,
                        Some(request_id.0),
                    ),
                )?;
                Ok::<User, AppError>(user)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(user))
}
