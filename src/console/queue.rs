//! The queue page: the applications waiting for an officer, highest risk and earliest due first,
//! with the same filters as the API.

use std::fmt::Write;

use actix_web::{web, HttpRequest, HttpResponse};

use super::html::{self, escape, format_time};
use super::{parse_form, secure_headers, ConsoleError, Officer};
use crate::kyc::routes::{queue_filter, queue_page, QueueQuery};
use crate::AppState;

/// A filter select: parameter, label, and its (value, label) options.
type Filter<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

pub async fn page(
    state: web::Data<AppState>,
    officer: Officer,
    request: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    // Empty selects mean "any": drop them before parsing.
    let pairs: Vec<(String, String)> = parse_form(request.query_string().as_bytes())?;
    let kept: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
    let encoded = serde_urlencoded::to_string(&kept).unwrap_or_default();
    let query: QueueQuery = parse_form(encoded.as_bytes())?;
    let current = |name: &str| {
        kept.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let filter = queue_filter(query, &officer.0.caller)?;
    let page = queue_page(&state, filter).await?;

    let mut body = String::from(r#"<section class="toolbar"><h1>Review queue</h1>"#);
    body.push_str(r#"<form method="get" action="/console/queue" class="filters" id="filters">"#);
    // Every jurisdiction with a rules file, by code and name.
    let jurisdictions: Vec<(String, String)> = std::iter::once((String::new(), "Any".to_string()))
        .chain(state.jurisdictions.codes().filter_map(|code| {
            let jurisdiction = state.jurisdictions.get(code)?;
            Some((code.to_string(), format!("{code} {}", jurisdiction.name)))
        }))
        .collect();
    let jurisdiction_options: Vec<(&str, &str)> = jurisdictions
        .iter()
        .map(|(code, label)| (code.as_str(), label.as_str()))
        .collect();
    let filters: [Filter; 6] = [
        (
            "status",
            "Status",
            &[
                ("", "Waiting (submitted, approval pending)"),
                ("submitted", "Submitted"),
                ("approval_pending", "Approval pending"),
                ("info_requested", "Info requested"),
                ("approved", "Approved"),
                ("rejected", "Rejected"),
            ],
        ),
        (
            "tier",
            "Tier",
            &[
                ("", "Any"),
                ("1", "1 basic"),
                ("2", "2 verified"),
                ("3", "3 enhanced"),
            ],
        ),
        (
            "risk",
            "Risk",
            &[
                ("", "Any"),
                ("high", "High"),
                ("medium", "Medium"),
                ("low", "Low"),
            ],
        ),
        (
            "sla_breached",
            "SLA",
            &[("", "Any"), ("true", "Breached"), ("false", "Within SLA")],
        ),
        (
            "assignee",
            "Assignee",
            &[("", "Anyone"), ("me", "Me"), ("none", "Unclaimed")],
        ),
        ("jurisdiction", "Jurisdiction", &jurisdiction_options),
    ];
    for (name, label, options) in filters {
        let _ = write!(
            body,
            r#"<label>{label} {}</label>"#,
            html::select(name, options, current(name).as_deref())
        );
    }
    body.push_str(r#"<button type="submit">Filter</button></form></section>"#);

    if page.items.is_empty() {
        body.push_str(r#"<p class="empty">Nothing to review with these filters.</p>"#);
    } else {
        body.push_str(
            r#"<table class="queue" id="queue"><thead><tr><th>Risk</th><th>Applicant</th><th>Jurisdiction</th><th>Tier</th><th>Kind</th><th>Status</th><th>Submitted</th><th>Due</th><th>Assignee</th></tr></thead><tbody>"#,
        );
        for item in &page.items {
            let due_class = if item.sla_breached { "breached" } else { "" };
            let _ = write!(
                body,
                r#"<tr data-href="/console/applications/{id}"><td><span class="risk {risk}">{risk}</span></td><td><a href="/console/applications/{id}">{applicant}</a><div class="sub">{nationality} · resident {residence}</div></td><td>{jurisdiction}</td><td>{tier}</td><td>{kind}</td><td><span class="status {status}">{status_label}</span>{first}</td><td>{submitted}</td><td class="{due_class}">{due}{breach}</td><td>{assignee}</td></tr>"#,
                id = escape(&item.id),
                risk = escape(&item.risk),
                applicant = escape(&item.applicant),
                nationality = escape(&item.nationality),
                residence = escape(&item.residence),
                jurisdiction = escape(&item.jurisdiction),
                tier = item.target_tier,
                kind = escape(&item.kind.replace('_', " ")),
                status = escape(&item.status),
                status_label = escape(&item.status.replace('_', " ")),
                first = item
                    .first_approver_name
                    .as_deref()
                    .map(|name| format!(r#"<div class="sub">1st: {}</div>"#, escape(name)))
                    .unwrap_or_default(),
                submitted = format_time(item.submitted_at),
                due = format_time(item.due_at),
                breach = if item.sla_breached {
                    " · SLA breached"
                } else {
                    ""
                },
                assignee = escape(item.assignee_name.as_deref().unwrap_or("—")),
            );
        }
        body.push_str("</tbody></table>");
    }
    if let Some(cursor) = &page.next_cursor {
        let mut next = kept.clone();
        next.retain(|(key, _)| key != "cursor");
        next.push(("cursor".into(), cursor.clone()));
        let _ = write!(
            body,
            r#"<p class="more"><a href="/console/queue?{}" accesskey="n">Next page →</a></p>"#,
            escape(&serde_urlencoded::to_string(&next).unwrap_or_default())
        );
    }
    body.push_str(r#"<p class="keys">Keys: <kbd>j</kbd>/<kbd>k</kbd> move · <kbd>Enter</kbd> open · <kbd>/</kbd> filters</p>"#);
    Ok(
        secure_headers(HttpResponse::Ok()).body(html::page(
            "Review queue",
            &officer.frame(),
            &body,
        )),
    )
}
