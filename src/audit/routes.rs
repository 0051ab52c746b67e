//! `GET /v1/audit`: the audit log, newest first, filtered and paged.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use super::store::{self, AuditFilter};
use super::AuditEntry;
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::http::extract::QueryParams;
use crate::http::Page;
use crate::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config.service(web::resource("/v1/audit").route(web::get().to(list_audit)));
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Token id (or `cli:<user>`) of the actor.
    pub actor_id: Option<String>,
    /// e.g. `user.create`, `token.revoke`.
    pub action: Option<String>,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    /// RFC 3339, inclusive.
    pub from: Option<DateTime<Utc>>,
    /// RFC 3339, exclusive.
    pub to: Option<DateTime<Utc>>,
    /// 1 to 500, default 100.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Read the audit log (admins and officers).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditEntry>), (status = 400, body = crate::error::Problem),
              (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn list_audit(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Admin, Role::Officer, Role::SeniorOfficer])?;
    let query = query.into_inner()?;
    let limit = crate::http::page_limit(query.limit)?;
    let before_seq = crate::http::parse_seq_cursor(query.cursor.as_deref())?;
    let filter = AuditFilter {
        actor_id: query.actor_id,
        action: query.action,
        subject_type: query.subject_type,
        subject_id: query.subject_id,
        from: query.from.map(|t| t.naive_utc()),
        to: query.to.map(|t| t.naive_utc()),
        before_seq,
        limit,
    };
    let entries = state
        .db
        .run(move |connection| Ok(store::list(connection, &filter)?))
        .await?;
    Ok(HttpResponse::Ok().json(Page::new(entries, limit, |entry| entry.seq.to_string())))
}
