//! Console pages for transaction monitoring: the alerts list (select alerts, open a case), cases
//! (file, notes, closing), the held-withdrawal queue (release or reject), and the user's 360° view.

use std::fmt::Write;

use actix_web::{web, HttpRequest, HttpResponse};

use super::html::{self, escape, format_time};
use super::{error_text, parse_form, redirect_with, secure_headers, ConsoleError, Notice, Officer};
use crate::aml::monitoring::cases::{self, Outcome};
use crate::aml::monitoring::store::{self, AlertFilter};
use crate::error::AppError;
use crate::http::extract::{parse_uuid, RequestId};
use crate::ledger::store::EntryFilter;
use crate::withdrawals::review::{Review, Reviewer, Verdict};
use crate::AppState;

type Pairs = Vec<(String, String)>;

fn value<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .filter(|value| !value.is_empty())
}

/// Reads a console form and checks its CSRF token and origin.
fn checked_form(
    officer: &Officer,
    request: &HttpRequest,
    body: &[u8],
) -> Result<Pairs, ConsoleError> {
    let pairs: Pairs = parse_form(body)?;
    officer.check_form(request, value(&pairs, "csrf"))?;
    Ok(pairs)
}

fn page(officer: &Officer, title: &str, body: &str) -> HttpResponse {
    secure_headers(HttpResponse::Ok()).body(html::page(title, &officer.frame(), body))
}

fn csrf_input(officer: &Officer) -> String {
    format!(
        r#"<input type="hidden" name="csrf" value="{}">"#,
        escape(&officer.0.csrf_token)
    )
}

fn user_link(user_id: &str) -> String {
    format!(
        r#"<a href="/console/users/{id}">{short}…</a>"#,
        id = escape(user_id),
        short = escape(&user_id.chars().take(8).collect::<String>())
    )
}

/// Runs an officer's action in one write transaction; the outcome becomes the page's notice.
async fn act<F>(
    state: &web::Data<AppState>,
    work: F,
) -> Result<Result<String, String>, ConsoleError>
where
    F: FnOnce(&mut crate::db::DbConnection, &AppState) -> Result<String, AppError> + Send + 'static,
{
    let app_state = state.clone();
    Ok(state
        .db
        .run(move |connection| {
            Ok(
                crate::db::write_transaction(connection, |connection| work(connection, &app_state))
                    .map_err(|error| error_text(&error)),
            )
        })
        .await?)
}

pub async fn alerts(
    state: web::Data<AppState>,
    officer: Officer,
    request: HttpRequest,
    notice: web::Query<Notice>,
) -> Result<HttpResponse, ConsoleError> {
    let pairs: Pairs = parse_form(request.query_string().as_bytes())?;
    let status = value(&pairs, "status").unwrap_or("open").to_string();
    let severity = value(&pairs, "severity").map(str::to_string);
    let filter = AlertFilter {
        status: Some(status.clone()).filter(|s| s != "any"),
        severity: severity.clone(),
        limit: 200,
        ..AlertFilter::default()
    };
    let alerts = state
        .db
        .run(move |connection| Ok(store::list_alerts(connection, &filter)?))
        .await?;
    let mut body = notice.html();
    body.push_str(r#"<section class="toolbar"><h1>Alerts</h1><form method="get" action="/console/alerts" class="filters">"#);
    let _ = write!(
        body,
        r#"<label>Status {}</label><label>Severity {}</label><button type="submit">Filter</button></form></section>"#,
        html::select(
            "status",
            &[
                ("open", "Open"),
                ("in_case", "In a case"),
                ("closed", "Closed"),
                ("any", "Any")
            ],
            Some(&status)
        ),
        html::select(
            "severity",
            &[
                ("", "Any"),
                ("high", "High"),
                ("medium", "Medium"),
                ("low", "Low")
            ],
            severity.as_deref()
        ),
    );
    if alerts.is_empty() {
        body.push_str(r#"<p class="empty">No alerts with these filters.</p>"#);
        return Ok(page(&officer, "Alerts", &body));
    }
    let _ = write!(
        body,
        r#"<form method="post" action="/console/cases" id="open-case">{}<table class="queue" id="alerts"><thead><tr><th></th><th>Severity</th><th>Rule</th><th>What happened</th><th>User</th><th>Jurisdiction</th><th>Action</th><th>Status</th><th>Detected</th></tr></thead><tbody>"#,
        csrf_input(&officer)
    );
    for alert in &alerts {
        let selectable = if alert.status == "open" {
            format!(
                r#"<input type="checkbox" name="alert_id" value="{}" aria-label="select">"#,
                escape(&alert.id)
            )
        } else {
            String::new()
        };
        let rule = match (&alert.rule_id, alert.rule_version) {
            (Some(id), Some(version)) => format!("{id} v{version}"),
            _ => alert.origin.clone(),
        };
        let status = match &alert.case_id {
            Some(case_id) => format!(
                r#"<a href="/console/cases/{}">{}</a>"#,
                escape(case_id),
                escape(&alert.status.replace('_', " "))
            ),
            None => escape(&alert.status),
        };
        let _ = write!(
            body,
            r#"<tr><td>{selectable}</td><td><span class="risk {severity}">{severity}</span></td><td>{rule}</td><td>{message}</td><td>{user}</td><td>{jurisdiction}</td><td>{action}</td><td>{status}</td><td>{created} · {by}</td></tr>"#,
            severity = escape(&alert.severity),
            rule = escape(&rule),
            message = escape(&alert.message),
            user = user_link(&alert.user_id),
            jurisdiction = escape(&alert.jurisdiction),
            action = escape(&alert.action),
            created = format_time(alert.created_at),
            by = escape(&alert.detected_by.replace('_', " ")),
        );
    }
    body.push_str(
        r#"</tbody></table><fieldset><legend>Open a case with the selected alerts (one user)</legend><label for="title">Title</label><input id="title" name="title" required minlength="3" maxlength="200"><button type="submit" id="open">Open case</button></fieldset></form>"#,
    );
    Ok(page(&officer, "Alerts", &body))
}

pub async fn open_case(
    state: web::Data<AppState>,
    officer: Officer,
    request: HttpRequest,
    request_id: RequestId,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let pairs = checked_form(&officer, &request, &body)?;
    let title = value(&pairs, "title")
        .unwrap_or_default()
        .trim()
        .to_string();
    let alert_ids: Vec<String> = pairs
        .iter()
        .filter(|(key, _)| key == "alert_id")
        .map(|(_, id)| id.clone())
        .collect();
    if title.chars().count() < 3 || alert_ids.is_empty() {
        return Ok(redirect_with(
            "/console/alerts",
            Err("select at least one alert and give the case a title".into()),
        ));
    }
    let actor = officer.0.caller.actor();
    let opened = state
        .db
        .run(move |connection| {
            Ok(crate::db::write_transaction(connection, |connection| {
                cases::open(connection, &title, &alert_ids, &actor, Some(request_id.0))
            })
            .map_err(|error| error_text(&error)))
        })
        .await?;
    Ok(match opened {
        Ok(detail) => redirect_with(
            &format!("/console/cases/{}", detail.case.id),
            Ok("Case opened.".into()),
        ),
        Err(message) => redirect_with("/console/alerts", Err(message)),
    })
}

pub async fn cases_page(
    state: web::Data<AppState>,
    officer: Officer,
    request: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let pairs: Pairs = parse_form(request.query_string().as_bytes())?;
    let status = value(&pairs, "status").unwrap_or("open").to_string();
    let filter_status = Some(status.clone()).filter(|s| s != "any");
    let found = state
        .db
        .run(move |connection| {
            Ok(store::list_cases(
                connection,
                filter_status.as_deref(),
                None,
                200,
            )?)
        })
        .await?;
    let mut body = format!(
        r#"<section class="toolbar"><h1>Cases</h1><form method="get" action="/console/cases" class="filters"><label>Status {}</label><button type="submit">Filter</button></form></section>"#,
        html::select(
            "status",
            &[("open", "Open"), ("closed", "Closed"), ("any", "Any")],
            Some(&status)
        )
    );
    if found.is_empty() {
        body.push_str(r#"<p class="empty">No cases.</p>"#);
    } else {
        body.push_str(r#"<table class="queue" id="cases"><thead><tr><th>Case</th><th>User</th><th>Jurisdiction</th><th>Status</th><th>Outcome</th><th>Opened</th></tr></thead><tbody>"#);
        for case in &found {
            let _ = write!(
                body,
                r#"<tr><td><a href="/console/cases/{id}">{title}</a></td><td>{user}</td><td>{jurisdiction}</td><td>{status}</td><td>{outcome}</td><td>{opened}</td></tr>"#,
                id = escape(&case.id),
                title = escape(&case.title),
                user = user_link(&case.user_id),
                jurisdiction = escape(&case.jurisdiction),
                status = escape(&case.status),
                outcome = escape(&case.outcome.clone().unwrap_or_default().replace('_', " ")),
                opened = format_time(case.opened_at),
            );
        }
        body.push_str("</tbody></table>");
    }
    Ok(page(&officer, "Cases", &body))
}

pub async fn case_page(
    state: web::Data<AppState>,
    officer: Officer,
    path: web::Path<String>,
    notice: web::Query<Notice>,
) -> Result<HttpResponse, ConsoleError> {
    let id = parse_uuid("id", &path.into_inner())?;
    let detail = state
        .db
        .run(move |connection| cases::detail(connection, &id))
        .await?;
    let case = &detail.case;
    let mut body = notice.html();
    let _ = write!(
        body,
        r#"<section class="card"><h1>{title}</h1><p>User {user} · {jurisdiction} · opened {opened} · <span class="status {status}">{status}</span>{outcome}</p></section>"#,
        title = escape(&case.title),
        user = user_link(&case.user_id),
        jurisdiction = escape(&case.jurisdiction),
        opened = format_time(case.opened_at),
        status = escape(&case.status),
        outcome = case
            .outcome
            .as_deref()
            .map(|outcome| format!(
                " · outcome: <strong>{}</strong>",
                escape(&outcome.replace('_', " "))
            ))
            .unwrap_or_default(),
    );
    body.push_str(r#"<section class="card"><h2>Alerts</h2><ul id="case-alerts">"#);
    for alert in &detail.alerts {
        let _ = write!(
            body,
            r#"<li><span class="risk {}">{}</span> {} — {}</li>"#,
            escape(&alert.severity),
            escape(&alert.severity),
            escape(alert.rule_id.as_deref().unwrap_or(&alert.origin)),
            escape(&alert.message)
        );
    }
    body.push_str(r#"</ul></section><section class="card"><h2>Case file</h2><ol id="notes">"#);
    for note in &detail.notes {
        let file = match (&note.file_name, &note.file_sha256) {
            (Some(name), Some(sha)) => format!(
                r#" · <a href="/console/cases/{}/notes/{}">{}</a> <code>{}</code>"#,
                escape(&case.id),
                escape(&note.id),
                escape(name),
                escape(&sha[..sha.len().min(16)])
            ),
            _ => String::new(),
        };
        let _ = write!(
            body,
            r#"<li><span class="sub">{} · {} · {}</span><p>{}</p>{file}</li>"#,
            format_time(note.created_at),
            escape(&note.kind.replace('_', " ")),
            escape(&note.author),
            escape(&note.body)
        );
    }
    body.push_str("</ol></section>");
    if case.status == "open" {
        let csrf = csrf_input(&officer);
        let _ = write!(
            body,
            r#"<section class="card"><h2>Add a note</h2><form method="post" action="/console/cases/{id}/notes">{csrf}<textarea name="body" id="note" required rows="3"></textarea><button type="submit" id="add-note">Add note</button></form></section>
<section class="card"><h2>Close the case</h2><form method="post" action="/console/cases/{id}/close">{csrf}<label>Outcome {outcomes}</label><label for="reason">Reason</label><textarea name="reason" id="reason" required rows="2"></textarea><button type="submit" id="close">Close case</button></form></section>"#,
            id = escape(&case.id),
            outcomes = html::select(
                "outcome",
                &[
                    ("no_action", "No action"),
                    ("user_offboarded", "User offboarded"),
                    ("str_filed", "Suspicious transaction report filed"),
                ],
                None
            ),
        );
    }
    Ok(page(&officer, &case.title, &body))
}

pub async fn case_action(
    state: web::Data<AppState>,
    officer: Officer,
    request: HttpRequest,
    request_id: RequestId,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (id, action) = path.into_inner();
    let id = parse_uuid("id", &id)?;
    let pairs = checked_form(&officer, &request, &body)?;
    let actor = officer.0.caller.actor();
    let location = format!("/console/cases/{id}");
    let result = match action.as_str() {
        "notes" => {
            let text = value(&pairs, "body").unwrap_or_default().to_string();
            if text.trim().is_empty() {
                return Ok(redirect_with(&location, Err("write the note first".into())));
            }
            act(&state, move |connection, app| {
                cases::add_note(
                    connection,
                    &app.cipher,
                    &id,
                    &text,
                    None,
                    &actor,
                    Some(request_id.0),
                )
                .map(|_| "Note added.".to_string())
            })
            .await?
        }
        "close" => {
            let outcome = value(&pairs, "outcome").and_then(Outcome::parse);
            let reason = value(&pairs, "reason")
                .unwrap_or_default()
                .trim()
                .to_string();
            let (Some(outcome), true) = (outcome, reason.chars().count() >= 3) else {
                return Ok(redirect_with(
                    &location,
                    Err("choose an outcome and say why".into()),
                ));
            };
            act(&state, move |connection, _| {
                cases::close(
                    connection,
                    &id,
                    outcome,
                    &reason,
                    &actor,
                    Some(request_id.0),
                )
                .map(|_| "Case closed.".to_string())
            })
            .await?
        }
        other => return Err(ConsoleError::NotFound(format!("no case action `{other}`"))),
    };
    Ok(redirect_with(&location, result))
}

/// An evidence file of a case (the read is audited, as through the API).
pub async fn evidence(
    state: web::Data<AppState>,
    officer: Officer,
    request_id: RequestId,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ConsoleError> {
    let (id, note_id) = path.into_inner();
    let id = parse_uuid("id", &id)?;
    let note_id = parse_uuid("note_id", &note_id)?;
    Ok(crate::aml::monitoring::routes::evidence_download(
        &state,
        officer.0.caller.actor(),
        id,
        note_id,
        request_id,
    )
    .await?)
}

pub async fn withdrawals(
    state: web::Data<AppState>,
    officer: Officer,
    notice: web::Query<Notice>,
) -> Result<HttpResponse, ConsoleError> {
    let rows = state
        .db
        .run(|connection| {
            let mut rows =
                crate::withdrawals::store::by_status(connection, "release_pending", None, 200)?;
            rows.extend(crate::withdrawals::store::by_status(
                connection, "held", None, 200,
            )?);
            let assets = crate::ledger::store::load_assets(connection)?;
            Ok((rows, assets))
        })
        .await?;
    let (rows, assets) = rows;
    let mut body = notice.html();
    body.push_str(r#"<section class="toolbar"><h1>Held withdrawals</h1></section>"#);
    if rows.is_empty() {
        body.push_str(r#"<p class="empty">No withdrawal waits for review.</p>"#);
        return Ok(page(&officer, "Held withdrawals", &body));
    }
    body.push_str(r#"<table class="queue" id="held"><thead><tr><th>Requested</th><th>User</th><th>Amount</th><th>Destination</th><th>Why held</th><th>Status</th><th>Review</th></tr></thead><tbody>"#);
    let csrf = csrf_input(&officer);
    for row in &rows {
        let reasons: Vec<crate::withdrawals::gate::Reason> =
            serde_json::from_str(&row.reasons).unwrap_or_default();
        let why: Vec<String> = reasons
            .iter()
            .map(|reason| {
                format!(
                    "<li><code>{}</code> {}</li>",
                    escape(&reason.code),
                    escape(&reason.message)
                )
            })
            .collect();
        let amount = assets.get(&row.asset).map_or_else(
            || row.amount.to_string(),
            |asset| asset.from_atoms(row.amount).to_string(),
        );
        let local = row
            .amount_local
            .map(|atoms| {
                let scale = assets.get(&row.currency).map_or(2, |asset| asset.scale);
                format!(
                    r#"<div class="sub">{} {}</div>"#,
                    rust_decimal::Decimal::from_i128_with_scale(i128::from(atoms), scale),
                    escape(&row.currency)
                )
            })
            .unwrap_or_default();
        let pending = row
            .first_reviewer
            .as_deref()
            .map(|first| format!(r#"<div class="sub">1st release: {}</div>"#, escape(first)))
            .unwrap_or_default();
        let _ = write!(
            body,
            r#"<tr><td>{requested}</td><td>{user}</td><td>{amount} {asset}{local}</td><td><code>{address}</code><div class="sub">{network}</div></td><td><ul>{why}</ul></td><td>{status}{pending}</td><td><form method="post" action="/console/withdrawals/{id}/review">{csrf}<input name="reason" required minlength="3" placeholder="Reason" aria-label="reason"><button type="submit" name="verdict" value="release">Release</button><button type="submit" name="verdict" value="reject" class="danger">Reject</button></form></td></tr>"#,
            requested = format_time(row.requested_at),
            user = user_link(&row.user_id),
            amount = escape(&amount),
            asset = escape(&row.asset),
            address = escape(&row.address),
            network = escape(&row.network),
            why = why.join(""),
            status = escape(&row.status.replace('_', " ")),
            id = escape(&row.id),
        );
    }
    body.push_str("</tbody></table>");
    Ok(page(&officer, "Held withdrawals", &body))
}

pub async fn review_withdrawal(
    state: web::Data<AppState>,
    officer: Officer,
    request: HttpRequest,
    request_id: RequestId,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let id = parse_uuid("id", &path.into_inner())?;
    let pairs = checked_form(&officer, &request, &body)?;
    let verdict = match value(&pairs, "verdict") {
        Some("release") => Verdict::Release,
        Some("reject") => Verdict::Reject,
        _ => {
            return Ok(redirect_with(
                "/console/withdrawals",
                Err("choose release or reject".into()),
            ))
        }
    };
    let reason = value(&pairs, "reason")
        .unwrap_or_default()
        .trim()
        .to_string();
    if reason.chars().count() < 3 {
        return Ok(redirect_with("/console/withdrawals", Err("say why".into())));
    }
    let caller = officer.0.caller.clone();
    let result = act(&state, move |connection, app| {
        let review = Review {
            cipher: &app.cipher,
            jurisdictions: &app.jurisdictions,
        };
        let actor = caller.actor();
        review
            .decide(
                connection,
                &id,
                verdict,
                &Reviewer {
                    actor: &actor,
                    role: caller.role,
                    reason: &reason,
                    request_id: Some(request_id.0),
                },
            )
            .map(|row| match row.status.as_str() {
                "release_pending" => format!(
                    "Withdrawal {id}: first release recorded; a senior officer must confirm it."
                ),
                status => format!("Withdrawal {id} is {status}."),
            })
    })
    .await?;
    Ok(redirect_with("/console/withdrawals", result))
}

/// Everything about one user on one page: KYC, balances, ledger, withdrawals, address book,
/// alerts and cases.
pub async fn user_view(
    state: web::Data<AppState>,
    officer: Officer,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let id = parse_uuid("id", &path.into_inner())?;
    let app_state = state.clone();
    let body = state
        .db
        .run(move |connection| user_sections(connection, &app_state, &id))
        .await?;
    Ok(page(&officer, "User", &body))
}

fn user_sections(
    connection: &mut crate::db::DbConnection,
    state: &AppState,
    id: &str,
) -> Result<String, AppError> {
    let user = crate::users::store::find(connection, &state.cipher, id)?;
    let profile = crate::kyc::store::profile(connection, id)?;
    let assets = crate::ledger::store::load_assets(connection)?;
    let decimal = |asset: &str, atoms: i64| {
        assets.get(asset).map_or_else(
            || atoms.to_string(),
            |found| found.from_atoms(atoms).to_string(),
        )
    };
    let mut body = format!(
        r#"<section class="card" id="user"><h1>User {id}</h1><p>Reference {reference} · resident {residence} · language {language} · since {since}</p>"#,
        id = escape(&user.id),
        reference = escape(&user.external_ref),
        residence = escape(&user.residence_jurisdiction),
        language = escape(&user.preferred_language),
        since = format_time(user.created_at),
    );
    match &profile {
        Some(profile) => {
            let _ = write!(
                body,
                r#"<p id="kyc">KYC tier <strong>{tier}</strong> in {jurisdiction} · risk <span class="risk {risk}">{risk}</span>{pep} · next review {review}{lapsed} · <a href="/console/applications/{application}">application</a></p>"#,
                tier = profile.approved_tier,
                jurisdiction = escape(&profile.jurisdiction),
                risk = escape(&profile.risk_level),
                pep = if profile.pep { " · PEP" } else { "" },
                review = format_time(profile.next_review_at),
                lapsed = if profile.review_lapsed_at.is_some() {
                    " · <strong>lapsed</strong>"
                } else {
                    ""
                },
                application = escape(&profile.approved_application_id),
            );
        }
        None => body.push_str(r#"<p id="kyc">No approved KYC tier.</p>"#),
    }
    body.push_str("</section>");

    body.push_str(r#"<section class="card"><h2>Balances</h2><table id="balances"><thead><tr><th>Asset</th><th>Available</th><th>In flight</th></tr></thead><tbody>"#);
    for (asset, available, held) in crate::ledger::store::user_balances(connection, id)? {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&asset),
            decimal(&asset, available),
            decimal(&asset, held)
        );
    }
    body.push_str("</tbody></table></section>");

    body.push_str(r#"<section class="card"><h2>Withdrawals</h2><table id="withdrawals"><thead><tr><th>Requested</th><th>Amount</th><th>Destination</th><th>Decision</th><th>Status</th></tr></thead><tbody>"#);
    for row in crate::withdrawals::store::recent_for_user(connection, id, 20)? {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{} {}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            format_time(row.requested_at),
            decimal(&row.asset, row.amount),
            escape(&row.asset),
            escape(&row.address),
            escape(&row.decision),
            escape(&row.status.replace('_', " "))
        );
    }
    body.push_str("</tbody></table></section>");

    body.push_str(r#"<section class="card"><h2>Address book</h2><table id="addresses"><thead><tr><th>Address</th><th>Network</th><th>Added</th><th>Usable from</th><th>State</th></tr></thead><tbody>"#);
    for entry in crate::withdrawals::addresses::list(connection, id)? {
        let state = if entry.removed_at.is_some() {
            "removed"
        } else if entry.approved_at.is_some() {
            "approved by an officer"
        } else {
            "cooling off / usable"
        };
        let _ = write!(
            body,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&entry.address),
            escape(&entry.network),
            format_time(entry.added_at),
            format_time(entry.usable_from),
            state
        );
    }
    body.push_str("</tbody></table></section>");

    body.push_str(r#"<section class="card"><h2>Alerts</h2><ul id="user-alerts">"#);
    let alerts = store::list_alerts(
        connection,
        &AlertFilter {
            user_id: Some(id.to_string()),
            limit: 50,
            ..AlertFilter::default()
        },
    )?;
    for alert in &alerts {
        let _ = write!(
            body,
            r#"<li>{} <span class="risk {}">{}</span> {} — {} ({})</li>"#,
            format_time(alert.created_at),
            escape(&alert.severity),
            escape(&alert.severity),
            escape(alert.rule_id.as_deref().unwrap_or(&alert.origin)),
            escape(&alert.message),
            escape(&alert.status.replace('_', " "))
        );
    }
    body.push_str(r#"</ul><h2>Cases</h2><ul id="user-cases">"#);
    for case in store::list_cases(connection, None, Some(id), 50)? {
        let _ = write!(
            body,
            r#"<li><a href="/console/cases/{}">{}</a> · {}</li>"#,
            escape(&case.id),
            escape(&case.title),
            escape(&case.status)
        );
    }
    body.push_str("</ul></section>");

    body.push_str(r#"<section class="card"><h2>Ledger (latest 20)</h2><table id="ledger"><thead><tr><th>#</th><th>When</th><th>Kind</th><th>Amount</th><th>FMV USD</th></tr></thead><tbody>"#);
    let entries = crate::ledger::store::entries(
        connection,
        &EntryFilter {
            user_id: Some(id.to_string()),
            limit: 20,
            ..EntryFilter::default()
        },
    )?;
    for entry in entries {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td></tr>",
            entry.seq,
            format_time(entry.occurred_at),
            escape(entry.kind.as_str()),
            decimal(&entry.asset, entry.amount),
            escape(&entry.asset),
            escape(entry.fmv_usd.as_deref().unwrap_or("—"))
        );
    }
    body.push_str("</tbody></table></section>");
    Ok(body)
}
