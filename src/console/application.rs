//! The application page: the applicant's data, documents, screening hits beside the list entries
//! they matched, risk factors, earlier applications and the audit trail; and the forms to claim
//! and decide, with the four-eyes flow.

use std::fmt::Write;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use validator::Validate;

use super::html::{self, escape, format_time};
use super::{error_text, parse_form, redirect_with, secure_headers, ConsoleError, Notice, Officer};
use crate::aml::review::ReviewRequest;
use crate::aml::routes::apply_hit_review;
use crate::http::extract::{parse_uuid, validation_problem, RequestId};
use crate::kyc::decision::{Decision, REJECTION_CODES};
use crate::kyc::routes::{
    load_detail, read_document, to_decision, ApplicationDetail, DecisionRequest, RequestedItem,
};
use crate::kyc::service::Kyc;
use crate::kyc::{ApplicationStatus, DocumentKind};
use crate::AppState;

fn kyc(state: &AppState) -> Kyc<'_> {
    Kyc {
        cipher: &state.cipher,
        screener: &state.screener,
        jurisdictions: &state.jurisdictions,
    }
}

pub async fn page(
    state: web::Data<AppState>,
    officer: Officer,
    path: web::Path<String>,
    notice: web::Query<Notice>,
) -> Result<HttpResponse, ConsoleError> {
    let id = parse_uuid("id", &path.into_inner())?;
    let detail = load_detail(&state, id).await?;
    let title = detail.application.personal_data.legal_name.clone();
    let body = render(&detail, &officer, &notice);
    Ok(secure_headers(HttpResponse::Ok()).body(html::page(&title, &officer.frame(), &body)))
}

fn back_to(id: &str, result: Result<String, String>) -> HttpResponse {
    redirect_with(&format!("/console/applications/{id}"), result)
}

fn render(detail: &ApplicationDetail, officer: &Officer, notice: &Notice) -> String {
    let application = &detail.application;
    let data = &application.personal_data;
    let now = crate::db::now();
    let mine = application.assignee_id.as_deref() == Some(officer.0.caller.token_id.as_str())
        && application
            .claim_expires_at
            .is_some_and(|until| until > now);
    let mut body = notice.html();
    let status = application.status.as_str();
    let _ = write!(
        body,
        r#"<section class="card summary"><h1>{name}</h1>
<p class="badges"><span class="status {status}" id="status">{status_label}</span> <span class="tier">tier {tier} · {tier_name}</span> <span class="kind">{kind}</span> <span class="risk {risk}">{risk} risk</span> <span class="jurisdiction">{jurisdiction}</span></p>
<dl class="facts"><dt>Submitted</dt><dd>{submitted}</dd><dt>Due</dt><dd class="{due_class}">{due}{breach}</dd><dt>Assignee</dt><dd id="assignee">{assignee}</dd><dt>First approval</dt><dd>{first}</dd><dt>Second approval</dt><dd>{second}</dd></dl>"#,
        name = escape(&data.legal_name),
        status_label = escape(&status.replace('_', " ")),
        tier = application.target_tier.number(),
        tier_name = application.target_tier.name(),
        kind = escape(&application.kind.as_str().replace('_', " ")),
        risk = application.risk.level.as_str(),
        jurisdiction = escape(&application.jurisdiction),
        submitted = format_time(application.submitted_at),
        due = format_time(application.due_at),
        due_class = if detail.sla_breached { "breached" } else { "" },
        breach = if detail.sla_breached {
            " · SLA breached"
        } else {
            ""
        },
        assignee = match (&application.assignee_name, application.claim_expires_at) {
            (Some(name), Some(until)) if until > now =>
                format!("{} until {}", escape(name), format_time(until)),
            _ => "nobody".into(),
        },
        first = match (
            &application.first_approver_name,
            application.first_approved_at
        ) {
            (Some(name), Some(at)) => format!("{} at {}", escape(name), format_time(at)),
            _ => "—".into(),
        },
        second = escape(application.second_approver_name.as_deref().unwrap_or("—")),
    );
    if !detail.four_eyes.is_empty() {
        let reasons: Vec<String> = detail
            .four_eyes
            .iter()
            .map(|reason| {
                serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                    .unwrap_or_default()
            })
            .collect();
        let _ = write!(
            body,
            r#"<p class="four-eyes" id="four-eyes">Four eyes: approval needs a second, different senior officer ({}).</p>"#,
            escape(&reasons.join(", "))
        );
    }
    body.push_str("</section>");
    body.push_str(&actions(detail, officer, mine));

    body.push_str(
        r#"<div class="columns"><section class="card"><h2>Personal data</h2><table class="kv">"#,
    );
    let document = data.identity_document.as_ref();
    for (label, value) in [
        ("Legal name", Some(data.legal_name.clone())),
        ("Latin name", data.latin_name.clone()),
        ("Date of birth", Some(data.date_of_birth.to_string())),
        ("Nationality", Some(data.nationality.clone())),
        ("Residence", Some(data.residence.clone())),
        ("Address", data.address.clone()),
        ("Occupation", data.occupation.clone()),
        (
            "Identity document",
            document.map(|d| {
                format!(
                    "{} {} ({}), expires {}",
                    d.document_type.replace('_', " "),
                    d.number,
                    d.issuing_country,
                    d.expires_on
                )
            }),
        ),
        (
            "Declared PEP",
            Some(if data.pep_declared { "yes" } else { "no" }.to_string()),
        ),
        ("Source of funds", data.source_of_funds.clone()),
        ("Source of wealth", data.source_of_wealth.clone()),
    ] {
        if let Some(value) = value {
            let _ = write!(body, "<tr><th>{label}</th><td>{}</td></tr>", escape(&value));
        }
    }
    body.push_str(r#"</table></section><section class="card"><h2>Risk</h2>"#);
    if application.risk.factors.is_empty() {
        body.push_str("<p>No risk factor: rated low.</p>");
    } else {
        body.push_str(r#"<ul class="factors">"#);
        for factor in &application.risk.factors {
            let _ = write!(
                body,
                r#"<li><span class="risk {level}">{level}</span> {text}</li>"#,
                level = factor.level.as_str(),
                text = escape(&factor.explanation)
            );
        }
        body.push_str("</ul>");
    }
    if !application.requested_items.is_empty() {
        body.push_str("<h3>Information requested</h3><ul>");
        for item in &application.requested_items {
            let _ = write!(
                body,
                "<li><b>{}</b>: {}</li>",
                escape(&item.item),
                escape(&item.message)
            );
        }
        body.push_str("</ul>");
    }
    body.push_str("</section></div>");

    let _ = write!(
        body,
        r#"<section class="card"><h2>Documents ({})</h2><div class="documents">"#,
        detail.documents.len()
    );
    for document in &detail.documents {
        let url = format!(
            "/console/applications/{}/documents/{}",
            escape(&application.id),
            escape(&document.id)
        );
        let viewer = if document.content_type.starts_with("image/") {
            format!(
                r#"<a href="{url}" target="_blank" rel="noopener"><img src="{url}" alt="{}" loading="lazy"></a>"#,
                escape(&document.kind)
            )
        } else {
            format!(
                r#"<iframe src="{url}" title="{}"></iframe>"#,
                escape(&document.kind)
            )
        };
        let earlier = if document.application_id != application.id {
            " · from the approved application"
        } else {
            ""
        };
        let _ = write!(
            body,
            r#"<figure>{viewer}<figcaption><b>{kind}</b>{earlier}<br>{file} · {size} KB<br><code title="SHA-256">{sha}</code></figcaption></figure>"#,
            kind = escape(&document.kind.replace('_', " ")),
            file = escape(&document.file_name),
            size = (document.size_bytes + 1023) / 1024,
            sha = escape(&document.sha256),
        );
    }
    body.push_str("</div></section>");

    let _ = write!(
        body,
        r#"<section class="card"><h2>Screening hits ({})</h2>"#,
        detail.hits.len()
    );
    if detail.hits.is_empty() {
        body.push_str("<p>No hit on the sanctions and PEP lists.</p>");
    }
    for hit in &detail.hits {
        let explanation = &hit.explanation;
        let _ = write!(
            body,
            r#"<div class="hit"><p><span class="status {status}">{status_label}</span> <b>{source}</b> entry {entry} · score {score}</p>
<table class="side-by-side"><thead><tr><th></th><th>Applicant</th><th>List entry</th></tr></thead><tbody>
<tr><th>Name</th><td>{name}</td><td>{listed}</td></tr>
<tr><th>Birth date</th><td>{dob}</td><td>{listed_dob}</td></tr>
<tr><th>Nationality</th><td>{nationality}</td><td>{listed_nationality}</td></tr>
<tr><th>Documents</th><td>{document}</td><td>{listed_documents}</td></tr>
<tr><th>Programmes</th><td></td><td>{programs}</td></tr>
<tr><th>Why</th><td colspan="2">{why}</td></tr></tbody></table>{review}</div>"#,
            status = escape(&hit.status),
            status_label = escape(&hit.status.replace('_', " ")),
            source = escape(&hit.source),
            entry = escape(explanation["entry_id"].as_str().unwrap_or("")),
            score = escape(&hit.score),
            name = escape(&data.legal_name),
            listed = escape(&json_list(hit.entry.as_ref().map(|e| &e["names"]))),
            dob = data.date_of_birth,
            listed_dob = escape(&birth_dates(hit.entry.as_ref().map(|e| &e["birth_dates"]))),
            nationality = escape(&data.nationality),
            listed_nationality =
                escape(&json_list(hit.entry.as_ref().map(|e| &e["nationalities"]))),
            document = escape(&document.map(|d| d.number.clone()).unwrap_or_default()),
            listed_documents = escape(&json_list(hit.entry.as_ref().map(|e| &e["documents"]))),
            programs = escape(&json_list(Some(&explanation["programs"]))),
            why = escape(&explain(explanation)),
            review = hit_review_form(&hit.id, &hit.status, &application.id, officer),
        );
    }
    body.push_str("</section>");

    if !detail.earlier_applications.is_empty() {
        body.push_str(r#"<section class="card"><h2>Earlier applications</h2><table><tbody>"#);
        for earlier in &detail.earlier_applications {
            let _ = write!(
                body,
                r#"<tr><td><a href="/console/applications/{id}">{kind}</a></td><td>tier {tier}</td><td><span class="status {status}">{status}</span></td><td>{at}</td></tr>"#,
                id = escape(&earlier.id),
                kind = escape(&earlier.kind.replace('_', " ")),
                tier = earlier.target_tier,
                status = escape(&earlier.status),
                at = format_time(earlier.submitted_at),
            );
        }
        body.push_str("</tbody></table></section>");
    }

    body.push_str(r#"<section class="card"><h2>History</h2><table class="history" id="history"><thead><tr><th>When</th><th>Who</th><th>What</th><th>Why</th></tr></thead><tbody>"#);
    for entry in &detail.history {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{} <span class=\"sub\">{}</span></td><td>{}</td><td>{}</td></tr>",
            format_time(entry.occurred_at),
            escape(&entry.actor_name),
            escape(&entry.actor_role),
            escape(&entry.action),
            escape(entry.reason.as_deref().unwrap_or("")),
        );
    }
    body.push_str("</tbody></table></section>");
    body
}

/// A JSON array (of strings or objects) as one line.
fn json_list(value: Option<&serde_json::Value>) -> String {
    let Some(serde_json::Value::Array(items)) = value else {
        return String::new();
    };
    items
        .iter()
        .map(|item| match item {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Object(fields) => fields
                .values()
                .filter(|value| !value.is_null())
                .map(|value| {
                    value
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| value.to_string())
                })
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Listed birth dates as dates, years or ranges (`c.` when approximate).
fn birth_dates(value: Option<&serde_json::Value>) -> String {
    let Some(serde_json::Value::Array(dates)) = value else {
        return String::new();
    };
    dates
        .iter()
        .map(|date| {
            let year = date["year"].as_i64().unwrap_or_default();
            let year_to = date["year_to"].as_i64().unwrap_or(year);
            let text = match (date["month"].as_u64(), date["day"].as_u64()) {
                _ if year_to != year => format!("{year}–{year_to}"),
                (Some(month), Some(day)) => format!("{year}-{month:02}-{day:02}"),
                (Some(month), None) => format!("{year}-{month:02}"),
                _ => year.to_string(),
            };
            if date["approximate"].as_bool() == Some(true) {
                format!("c. {text}")
            } else {
                text
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Confirm or dismiss an open hit; a senior officer approves or rejects a proposed dismissal.
fn hit_review_form(hit_id: &str, status: &str, application_id: &str, officer: &Officer) -> String {
    let buttons = match status {
        "open" => {
            r#"<button type="submit" name="decision" value="confirm" class="secondary">Confirm: true match</button> <button type="submit" name="decision" value="dismiss">Dismiss: false positive</button>"#
        }
        "dismissal_pending" => {
            r#"<button type="submit" name="decision" value="approve">Approve the dismissal</button> <button type="submit" name="decision" value="reject" class="secondary">Reject the dismissal</button>"#
        }
        _ => return String::new(),
    };
    format!(
        r#"<form method="post" action="/console/hits/{hit}/review" class="hit-review">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="application" value="{application}">
<label for="hit-reason-{hit}">Why</label><input type="text" id="hit-reason-{hit}" name="reason" required minlength="5" placeholder="e.g. date of birth and nationality differ from the listed person">
<div class="row">{buttons}</div></form>"#,
        hit = escape(hit_id),
        csrf = escape(&officer.0.csrf_token),
        application = escape(application_id),
    )
}

/// Reviews a screening hit from the application page, then returns to it.
pub async fn review_hit(
    state: web::Data<AppState>,
    officer: Officer,
    request: HttpRequest,
    request_id: RequestId,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let hit_id = parse_uuid("hit", &path.into_inner())?;
    let pairs: Vec<(String, String)> = parse_form(&body)?;
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    officer.check_form(&request, Some(&value("csrf")))?;
    let application_id = parse_uuid("application", &value("application"))?;
    let reason = value("reason");
    let decision = match value("decision").as_str() {
        "confirm" => ReviewRequest::Confirm,
        "dismiss" => ReviewRequest::Dismiss,
        "approve" => ReviewRequest::Approve,
        "reject" => ReviewRequest::Reject,
        _ => {
            return Ok(back_to(
                &application_id,
                Err("choose how to review the hit".into()),
            ))
        }
    };
    if reason.trim().chars().count() < 5 {
        return Ok(back_to(
            &application_id,
            Err("say why, in at least 5 characters".into()),
        ));
    }
    let caller = officer.0.caller.clone();
    let result = state
        .db
        .run(move |connection| {
            Ok(crate::db::write_transaction(connection, |connection| {
                apply_hit_review(
                    connection,
                    &hit_id,
                    decision,
                    &reason,
                    &caller.actor(),
                    caller.role,
                    Some(request_id.0),
                )
            })
            .map(|transition| {
                format!(
                    "Hit reviewed: {}.",
                    transition.status.as_str().replace('_', " ")
                )
            })
            .map_err(|error| error_text(&error)))
        })
        .await?;
    Ok(back_to(&application_id, result))
}

/// The matcher's reasons in a sentence.
fn explain(explanation: &serde_json::Value) -> String {
    let matched = &explanation["matched_on"];
    let mut parts = Vec::new();
    if let Some(name) = matched["name"].as_str() {
        parts.push(format!(
            "matched the {} name “{}”",
            matched["alias"]
                .as_str()
                .unwrap_or("listed")
                .replace('_', " "),
            name
        ));
    }
    if let Some(qualifiers) = explanation["qualifiers"].as_array() {
        for qualifier in qualifiers {
            if let Some(detail) = qualifier["detail"].as_str() {
                parts.push(detail.to_string());
            }
        }
    }
    parts.join("; ")
}

fn actions(detail: &ApplicationDetail, officer: &Officer, mine: bool) -> String {
    let application = &detail.application;
    let csrf = escape(&officer.0.csrf_token);
    let id = escape(&application.id);
    let mut html = String::from(r#"<section class="card actions" id="actions"><h2>Decision</h2>"#);
    if !application.status.is_open() {
        let _ = write!(
            html,
            "<p>This application is {}.{}</p></section>",
            escape(&application.status.as_str().replace('_', " ")),
            application
                .decision_text
                .as_deref()
                .map(|text| format!(" Reason: “{}”", escape(text)))
                .unwrap_or_default()
        );
        return html;
    }
    if !mine {
        let _ = write!(
            html,
            r#"<form method="post" action="/console/applications/{id}/claim"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" id="claim" accesskey="c">Claim to work on it</button></form></section>"#
        );
        return html;
    }
    let pending = application.status == ApplicationStatus::ApprovalPending;
    let approve_label = if pending {
        "Confirm approval (second officer)"
    } else if detail.four_eyes.is_empty() {
        "Approve"
    } else {
        "Approve (first of two)"
    };
    let codes: Vec<(&str, &str)> = std::iter::once(("", "— reason code for a rejection —"))
        .chain(REJECTION_CODES.iter().map(|code| (*code, *code)))
        .collect();
    let mut items = String::new();
    for kind in DocumentKind::ALL {
        let _ = write!(
            items,
            r#"<label class="check"><input type="checkbox" name="item" value="{0}"> {1}</label>"#,
            kind.as_str(),
            kind.as_str().replace('_', " ")
        );
    }
    for field in [
        "address",
        "identity_document",
        "date_of_birth",
        "legal_name",
    ] {
        let _ = write!(
            items,
            r#"<label class="check"><input type="checkbox" name="item" value="{field}"> {}</label>"#,
            field.replace('_', " ")
        );
    }
    let _ = write!(
        html,
        r#"<form method="post" action="/console/applications/{id}/decision" id="decision-form">
<input type="hidden" name="csrf" value="{csrf}">
<fieldset class="choices">
<label><input type="radio" name="decision" value="approve" id="decide-approve" accesskey="a"> {approve_label}</label>
<label><input type="radio" name="decision" value="reject" id="decide-reject" accesskey="r"> Reject</label>
<label><input type="radio" name="decision" value="request_info" id="decide-request-info" accesskey="i"> Request information</label>
</fieldset>
<label for="reason">Reason (kept in the audit log; for a rejection the user reads it unless the code is confidential)</label>
<textarea name="reason" id="reason" rows="3" required minlength="5"></textarea>
<div class="row">{codes}</div>
<details><summary>Information to request</summary><div class="items">{items}</div>
<label for="message">Message to the user</label><input type="text" name="message" id="message" placeholder="Please upload …"></details>
<button type="submit" id="submit-decision">Submit decision</button>
</form>
<form method="post" action="/console/applications/{id}/release" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" class="secondary" id="release">Release claim</button></form>
</section>"#,
        codes = html::select("reason_code", &codes, None),
    );
    html
}

/// What a console form asks for.
enum Step {
    Claim,
    Release,
    Decide(Decision, String),
}

/// The decision form as a validated decision and its reason, or what is wrong with it.
fn decision_from_form(pairs: &[(String, String)]) -> Result<(Decision, String), String> {
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.clone())
    };
    let message = value("message");
    let items: Vec<RequestedItem> = pairs
        .iter()
        .filter(|(key, _)| key == "item")
        .map(|(_, item)| RequestedItem {
            message: message
                .clone()
                .unwrap_or_else(|| match DocumentKind::parse(item) {
                    Some(kind) => format!("Please provide {}.", kind.description()),
                    None => format!("Please provide your {}.", item.replace('_', " ")),
                }),
            item: item.clone(),
        })
        .collect();
    let request = DecisionRequest {
        decision: value("decision").ok_or("choose approve, reject or request information")?,
        reason_code: value("reason_code"),
        reason: value("reason").unwrap_or_default(),
        items: (!items.is_empty()).then_some(items),
    };
    request
        .validate()
        .map_err(|errors| error_text(&validation_problem(errors)))?;
    let decision = to_decision(&request).map_err(|error| error_text(&error))?;
    Ok((decision, request.reason))
}

/// `claim`, `release` or `decision`, then back to the page saying what happened.
pub async fn act(
    state: web::Data<AppState>,
    officer: Officer,
    request: HttpRequest,
    request_id: RequestId,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (id, action) = path.into_inner();
    let id = parse_uuid("id", &id)?;
    let pairs: Vec<(String, String)> = parse_form(&body)?;
    let csrf = pairs
        .iter()
        .find(|(key, _)| key == "csrf")
        .map(|(_, value)| value.as_str());
    officer.check_form(&request, csrf)?;
    let step = match action.as_str() {
        "claim" => Step::Claim,
        "release" => Step::Release,
        "decision" => match decision_from_form(&pairs) {
            Ok((decision, reason)) => Step::Decide(decision, reason),
            Err(message) => return Ok(back_to(&id, Err(message))),
        },
        other => {
            return Err(ConsoleError::NotFound(format!(
                "no console action `{other}`"
            )))
        }
    };
    let caller = officer.0.caller.clone();
    let result = state
        .db
        .run({
            let state = state.clone();
            let id = id.clone();
            move |connection| {
                Ok(crate::db::write_transaction(connection, |connection| {
                    let kyc = kyc(&state);
                    let actor = caller.actor();
                    let request_id = Some(request_id.0);
                    match &step {
                        Step::Claim => kyc
                            .claim(connection, &id, &actor, caller.role, request_id)
                            .map(|until| format!("Claimed until {}.", format_time(until))),
                        Step::Release => kyc
                            .release(connection, &id, &actor, request_id)
                            .map(|()| "Claim released.".to_string()),
                        Step::Decide(decision, reason) => kyc
                            .decide(connection, &id, decision, reason, &actor, caller.role, request_id)
                            .map(|status| match status {
                                ApplicationStatus::ApprovalPending => "First approval recorded: a different senior officer must now confirm it.".to_string(),
                                other => format!("Decision recorded: the application is {}.", other.as_str().replace('_', " ")),
                            }),
                    }
                })
                .map_err(|error| error_text(&error)))
            }
        })
        .await?;
    Ok(back_to(&id, result))
}

/// A document, shown inline to an officer (and audited like an API download).
pub async fn document(
    state: web::Data<AppState>,
    officer: Officer,
    request_id: RequestId,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ConsoleError> {
    let (id, document_id) = path.into_inner();
    let id = parse_uuid("id", &id)?;
    let document_id = parse_uuid("document_id", &document_id)?;
    let (summary, content) = read_document(
        &state,
        officer.0.caller.actor(),
        id,
        document_id,
        request_id,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(summary.content_type.as_str())
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("X-Frame-Options", "SAMEORIGIN"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; frame-ancestors 'self'",
        ))
        .body(content))
}
