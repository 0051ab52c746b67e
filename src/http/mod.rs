//! HTTP plumbing shared by every capability: extractors, middleware, paging, service endpoints.

pub mod docs;
pub mod extract;
pub mod middleware;
pub mod mutation;
pub mod tls;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AppError, PROBLEM_TYPES};
use crate::AppState;

pub const DEFAULT_PAGE_SIZE: i64 = 100;
pub const MAX_PAGE_SIZE: i64 = 500;

/// One page of a list. `next_cursor` is absent on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A full page may have a successor; its cursor is the last item's key.
    pub fn new(items: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Page<T> {
        let full = i64::try_from(items.len()).unwrap_or(i64::MAX) >= limit;
        let next_cursor = if full {
            items.last().map(cursor_of)
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

pub fn page_limit(requested: Option<i64>) -> Result<i64, AppError> {
    match requested {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(limit) if (1..=MAX_PAGE_SIZE).contains(&limit) => Ok(limit),
        Some(_) => Err(AppError::bad_field(
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        )),
    }
}

/// A stored file for download: its SHA-256 in `Digest`, never cached, never sniffed.
pub fn file_response(
    content_type: &str,
    sha256: &str,
    file_name: &str,
    disposition: &str,
    bytes: Vec<u8>,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Digest", format!("sha-256={sha256}")))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((
            "Content-Disposition",
            format!(
                "{disposition}; filename=\"{}\"",
                file_name.replace(['"', '\\'], "_")
            ),
        ))
        .body(bytes)
}

/// A page's `cursor` read with `parse`; one it cannot read names the field.
pub fn parse_cursor<T>(
    cursor: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, AppError> {
    cursor
        .map(|cursor| {
            parse(cursor).ok_or_else(|| {
                AppError::bad_field("cursor", "use the next_cursor of the previous page")
            })
        })
        .transpose()
}

/// A cursor that is the sequence number of the last item of the previous page.
pub fn parse_seq_cursor(cursor: Option<&str>) -> Result<Option<i64>, AppError> {
    parse_cursor(cursor, |cursor| {
        cursor.parse::<i64>().ok().filter(|seq| *seq > 0)
    })
}

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/healthz").route(web::get().to(health)))
        .service(web::resource("/readyz").route(web::get().to(ready)))
        .service(web::resource("/metrics").route(web::get().to(metrics)))
        .service(web::resource("/openapi.json").route(web::get().to(docs::openapi_json)))
        .service(web::resource("/docs").route(web::get().to(docs::docs_page)))
        .service(web::resource("/problems/{code}").route(web::get().to(problem_type)));
}

#[derive(Serialize, ToSchema)]
pub struct Status {
    pub status: &'static str,
    pub backend: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, body = Status)))]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(Status {
        status: "ok",
        backend: state.db.backend().name(),
    })
}

/// Readiness: the database answers a query.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses((status = 200, body = Status), (status = 503, body = crate::error::Problem)))]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    state.db.run(crate::db::ping).await.map_err(|error| {
        tracing::warn!(%error, "readiness check failed");
        AppError::ServiceUnavailable("the database is not reachable".into())
    })?;
    Ok(HttpResponse::Ok().json(Status {
        status: "ready",
        backend: state.db.backend().name(),
    }))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let (connections, idle) = state.db.pool_state();
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; version=0.0.4"))
        .body(
            state
                .metrics
                .render(connections, idle, state.db.backend().name()),
        )
}

async fn problem_type(path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let code = path.into_inner();
    let (_, description) = PROBLEM_TYPES
        .iter()
        .find(|(known, _)| *known == code)
        .ok_or_else(|| AppError::NotFound(format!("no problem type `{code}`")))?;
    Ok(HttpResponse::Ok().json(
        serde_json::json!({ "type": format!("/problems/{code}"), "description": description }),
    ))
}

pub async fn not_found(request: actix_web::HttpRequest) -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound(format!(
        "no route for {}",
        request.path()
    )))
}
