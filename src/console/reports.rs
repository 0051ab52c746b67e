//! The reports page: a regulator sees and downloads their jurisdiction's reports; officers see
//! every report. Downloads go through the same checks and audit entry as the API.

use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage as _, HttpRequest, HttpResponse};

use super::html::{self, escape};
use super::session::Session;
use super::{frame_of, live_session, secure_headers, ConsoleError};
use crate::auth::Role;
use crate::http::extract::RequestId;
use crate::AppState;

/// A logged-in officer or regulator.
pub struct Reader(Session);

impl FromRequest for Reader {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Reader, ConsoleError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = live_session(request);
        let request = request.clone();
        Box::pin(async move {
            let session = session.await?;
            // A refusal further on is audited under this caller, as on the API.
            request.extensions_mut().insert(session.caller.clone());
            if session.caller.role == Role::Regulator
                || Role::OFFICERS.contains(&session.caller.role)
            {
                Ok(Reader(session))
            } else {
                Err(ConsoleError::Forbidden(
                    "reports are for officers and regulators".into(),
                ))
            }
        })
    }
}

/// `/console/reports`: the reports this reader may see, newest first, with their files.
pub async fn page(
    state: web::Data<AppState>,
    reader: Reader,
) -> Result<HttpResponse, ConsoleError> {
    let caller = &reader.0.caller;
    let reports = crate::reports::routes::readable_reports(&state, caller, None, 200).await?;
    let scope = match &caller.jurisdiction {
        Some(code) if caller.role == Role::Regulator => format!("Reports for {}", escape(code)),
        _ => "All reports".to_string(),
    };
    let mut body = format!(
        r#"<section class="card"><h1>{scope}</h1><p>Each file is signed with the platform's Ed25519 key (<a href="/.well-known/hashgate-signing-key">public key</a>); the data hash is printed in every report.</p>"#
    );
    if reports.is_empty() {
        body.push_str("<p>No reports yet.</p></section>");
    } else {
        body.push_str(
            r#"<table><thead><tr><th>Report</th><th>Jurisdiction</th><th>Period</th><th>Generated</th><th>Files</th></tr></thead><tbody>"#,
        );
        for report in &reports {
            let files: Vec<String> = report
                .files
                .iter()
                .map(|file| {
                    format!(
                        r#"<a href="/console/reports/{id}/{name}">{name}</a>"#,
                        id = escape(&report.id),
                        name = escape(&file.name)
                    )
                })
                .collect();
            let _ = write!(
                body,
                r#"<tr><td>{title}<br><small>data SHA-256 {hash}</small></td><td>{jurisdiction}</td><td>{period}</td><td>{generated} UTC<br><small>{by}</small></td><td>{files}</td></tr>"#,
                title = escape(&report.title),
                hash = escape(&report.data_sha256),
                jurisdiction = escape(report.jurisdiction.as_deref().unwrap_or("—")),
                period = escape(&report.period),
                generated = report.generated_at.format("%Y-%m-%d %H:%M"),
                by = escape(&report.generated_by),
                files = files.join(" · "),
            );
        }
        body.push_str("</tbody></table></section>");
    }
    Ok(secure_headers(HttpResponse::Ok()).body(html::page("Reports", &frame_of(&reader.0), &body)))
}

/// `/console/reports/{id}/{name}`: a file of a report the reader may see.
pub async fn download(
    state: web::Data<AppState>,
    reader: Reader,
    request_id: RequestId,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ConsoleError> {
    let (id, name) = path.into_inner();
    let id = crate::http::extract::parse_uuid("id", &id)?;
    Ok(crate::reports::routes::download(&state, &reader.0.caller, request_id.0, id, name).await?)
}
