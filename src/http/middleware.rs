//! One middleware for every request: request id, tracing span, access log, metrics, and a
//! problem+json body for errors that actix produces itself (unknown route, wrong method).

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};
use tracing::Instrument;

use super::extract::RequestId;
use crate::error::AppError;
use crate::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            !value.is_empty()
                && value.len() <= 64
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let method = request.method().to_string();
    let path = request.path().to_string();
    let span = tracing::info_span!("request", request_id = %request_id, %method, %path);
    let started = Instant::now();

    let response = next.call(request).instrument(span.clone()).await?;

    let status = response.status();
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    if status == StatusCode::FORBIDDEN {
        let caller = response
            .request()
            .extensions()
            .get::<crate::auth::Caller>()
            .cloned();
        if let (Some(state), Some(caller)) = (&state, caller) {
            audit_refusal(state, caller, &request_id, (&method, &path, &route)).await;
        }
    }
    let elapsed = started.elapsed();
    if let Some(state) = &state {
        state
            .metrics
            .record(&method, &route, status.as_u16(), elapsed);
    }
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            route = %route,
            elapsed_ms = elapsed.as_millis() as u64,
            "request finished"
        )
    });

    let needs_problem_body = status.is_client_error()
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_none_or(|value| value.as_bytes() != b"application/problem+json");
    let mut response = if needs_problem_body {
        let error = match status {
            StatusCode::NOT_FOUND => AppError::NotFound(format!("no route for {path}")),
            StatusCode::METHOD_NOT_ALLOWED => {
                AppError::MethodNotAllowed(format!("{method} is not allowed on {path}"))
            }
            other => AppError::bad_request(
                other
                    .canonical_reason()
                    .unwrap_or("the request was refused")
                    .to_string(),
            ),
        };
        let mut replacement = error.error_response();
        *replacement.status_mut() = status;
        response.into_response(replacement).map_into_right_body()
    } else {
        response.map_into_left_body()
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// Writes an `access.denied` audit entry for an authenticated caller refused with a 403: who
/// tried what. A failure to write it is logged, never turned into the response.
async fn audit_refusal(
    state: &web::Data<AppState>,
    caller: crate::auth::Caller,
    request_id: &str,
    (method, path, route): (&str, &str, &str),
) {
    let entry = crate::audit::NewAuditEntry::new(
        caller.actor(),
        "access.denied",
        "route",
        route,
        Some(request_id.to_string()),
    )
    .details(serde_json::json!({
        "method": method,
        "path": path,
        "role": caller.role.as_str(),
        "jurisdiction": caller.jurisdiction,
    }));
    let written = state
        .db
        .run_writer(move |connection| {
            crate::db::write_transaction(connection, |connection| {
                crate::audit::store::append(connection, entry).map_err(crate::error::AppError::from)
            })
        })
        .await;
    if let Err(error) = written {
        tracing::error!(%error, "cannot audit a refused request");
    }
}
