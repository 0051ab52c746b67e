//! The `Caller` extractor and the admin token API.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::store::{self, TokenInfo};
use super::{generate_token, hash_token, Caller, Role, TokenGrant};
use crate::error::AppError;
use crate::http::extract::QueryParams;
use crate::http::extract::{parse_uuid, IdempotencyKey, JsonBody, RequestId};
use crate::http::mutation::{self, IdempotentRequest, Outcome};
use crate::http::Page;
use crate::AppState;
use actix_web::HttpMessage as _;

impl FromRequest for Caller {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, AppError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let secret = bearer_token(request);
        let request = request.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal(anyhow::anyhow!("no app state")))?;
            let secret = secret?;
            let token_hash = hash_token(&secret);
            let caller = state
                .db
                .run(move |connection| store::authenticate(connection, &token_hash))
                .await?
                .ok_or_else(|| AppError::Unauthorized("the token is unknown or revoked".into()))?;
            // The middleware audits a refusal under the caller it was refused to.
            request.extensions_mut().insert(caller.clone());
            Ok(caller)
        })
    }
}

fn bearer_token(request: &HttpRequest) -> Result<String, AppError> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            AppError::Unauthorized("send an API token: Authorization: Bearer <token>".into())
        })?
        .to_str()
        .map_err(|_| AppError::Unauthorized("the Authorization header is not readable".into()))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_string())
        }
        _ => Err(AppError::Unauthorized(
            "the Authorization header must be `Bearer <token>`".into(),
        )),
    }
}

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/v1/tokens")
                .route(web::get().to(list_tokens))
                .route(web::post().to(create_token)),
        )
        .service(web::resource("/v1/tokens/{id}/revoke").route(web::post().to(revoke_token)));
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// Who or what holds the token, e.g. "Platform backend (prod)" or "Jane Doe, compliance".
    #[validate(length(min = 1, max = 100))]
    pub name: String,
    pub role: Role,
    /// Required for `regulator` tokens: the ISO 3166-1 alpha-2 jurisdiction they may read.
    pub jurisdiction: Option<String>,
    /// Required for `user` tokens: the user the token belongs to.
    pub user_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The secret, shown only in this response. Send it as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    #[serde(flatten)]
    pub info: TokenInfo,
}

/// Create an API token (admin). The secret appears once; only its SHA-256 is stored.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = CreateTokenRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 201, body = CreatedToken), (status = 401), (status = 403), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create_token(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Admin])?;
    let body: CreateTokenRequest = body.parse()?;
    let user_id = body
        .user_id
        .as_deref()
        .map(|id| parse_uuid("user_id", id))
        .transpose()?;
    let grant = TokenGrant {
        name: body.name.clone(),
        role: body.role,
        jurisdiction: body.jurisdiction.clone(),
        user_id,
    };
    grant.validate()?;
    let request = IdempotentRequest::new(&caller, idempotency_key, "POST", "/v1/tokens", &body);
    let actor = caller.actor();
    mutation::run(&state.db, request, move |connection| {
        let (secret, token_hash) = generate_token();
        let info = store::create(
            connection,
            &grant,
            &token_hash,
            &actor,
            Some(request_id.0.clone()),
        )?;
        let replay = CreatedToken {
            token: None,
            info: info.clone(),
        };
        let created = CreatedToken {
            token: Some(secret),
            info,
        };
        Ok(Outcome::new(StatusCode::CREATED, &created)?
            .replayed_as(serde_json::to_value(replay).map_err(AppError::internal)?))
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TokenListQuery {
    /// Include revoked tokens (default false).
    pub include_revoked: Option<bool>,
    /// 1 to 500, default 100.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List API tokens (admin): metadata only, never secrets or hashes.
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", params(TokenListQuery),
    responses((status = 200, body = Page<TokenInfo>), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn list_tokens(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<TokenListQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Admin])?;
    let query = query.into_inner()?;
    let limit = crate::http::page_limit(query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .map(|cursor| parse_uuid("cursor", cursor))
        .transpose()?;
    let include_revoked = query.include_revoked.unwrap_or(false);
    let tokens = state
        .db
        .run(move |connection| store::list(connection, include_revoked, after.as_deref(), limit))
        .await?;
    Ok(HttpResponse::Ok().json(Page::new(tokens, limit, |token| token.id.clone())))
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeTokenRequest {
    /// Why the token is revoked; kept in the audit log.
    #[validate(length(min = 3, max = 500))]
    pub reason: String,
}

/// Revoke an API token (admin). It stops working at once.
#[utoipa::path(post, path = "/v1/tokens/{id}/revoke", tag = "tokens", request_body = RevokeTokenRequest,
    params(("id" = String, Path, description = "Token id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 200, body = TokenInfo), (status = 404), (status = 409)),
    security(("bearer" = [])))]
pub async fn revoke_token(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Admin])?;
    let id = parse_uuid("id", &path.into_inner())?;
    let body: RevokeTokenRequest = body.parse()?;
    let resource = format!("/v1/tokens/{id}/revoke");
    let request = IdempotentRequest::new(&caller, idempotency_key, "POST", &resource, &body);
    let actor = caller.actor();
    mutation::run(&state.db, request, move |connection| {
        let info = store::revoke(
            connection,
            &id,
            &body.reason,
            &actor,
            Some(request_id.0.clone()),
        )?;
        Outcome::new(StatusCode::OK, &info)
    })
    .await
}
