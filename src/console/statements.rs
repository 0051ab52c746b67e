//! A platform user's own page: their tax years, each downloadable as a PDF or CSV statement
//! under the treatment they pick.

use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::html::{self, escape, Frame};
use super::session::{self, Session};
use super::{secure_headers, ConsoleError, SESSION_COOKIE};
use crate::auth::Role;
use crate::tax::rules::Classification;
use crate::tax::{statement, TaxYear};
use crate::AppState;

/// The logged-in platform user of a console request.
pub struct Member {
    session: Session,
    user_id: String,
}

impl FromRequest for Member {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Member, ConsoleError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let secret = request
            .cookie(SESSION_COOKIE)
            .map(|c| c.value().to_string());
        Box::pin(async move {
            let state = state.ok_or_else(|| ConsoleError::Internal(anyhow::anyhow!("no state")))?;
            let secret = secret.ok_or(ConsoleError::LoginRequired)?;
            let session = state
                .db
                .run(move |connection| session::find(connection, &secret, crate::db::now()))
                .await?
                .ok_or(ConsoleError::LoginRequired)?;
            match (session.caller.role, session.caller.user_id.clone()) {
                (Role::User, Some(user_id)) => Ok(Member { session, user_id }),
                _ => Err(ConsoleError::Forbidden(
                    "this page shows a platform user's own statements".into(),
                )),
            }
        })
    }
}

impl Member {
    fn frame(&self) -> Frame<'_> {
        Frame {
            officer: Some((&self.session.caller.name, self.session.caller.role.as_str())),
            csrf_token: Some(&self.session.csrf_token),
        }
    }
}

fn classification_label(class: Classification) -> &'static str {
    match class {
        Classification::Miscellaneous => "Miscellaneous / private income",
        Classification::Business => "Business income",
    }
}

/// `/console/me`: the tax years of the user's jurisdiction up to the current one.
pub async fn page(
    state: web::Data<AppState>,
    member: Member,
) -> Result<HttpResponse, ConsoleError> {
    let jurisdictions = state.jurisdictions.clone();
    let cipher = state.cipher.clone();
    let user_id = member.user_id.clone();
    let holder = state
        .db
        .run(move |connection| crate::tax::store::holder(connection, &cipher, &user_id))
        .await?;
    let mut body = format!(
        r#"<section class="card"><h1>Tax statements</h1><p>{name} · resident in {jurisdiction}</p>"#,
        name = escape(&holder.name),
        jurisdiction = escape(&holder.jurisdiction),
    );
    let Some(jurisdiction) = jurisdictions.get(&holder.jurisdiction) else {
        body.push_str(
            "<p>hashgate has no tax rules for your country of residence yet: no statement can be made.</p></section>",
        );
        return Ok(secure_headers(HttpResponse::Ok()).body(html::page(
            "Tax statements",
            &member.frame(),
            &body,
        )));
    };
    let rules = &jurisdiction.tax;
    let today = crate::db::now();
    body.push_str(
        r#"<p>Each statement values every payout at its fair market value when received and computes the tax by the rules of the year shown. Pick the treatment that applies to you.</p>
<table id="statements"><thead><tr><th>Tax year</th><th>Period</th><th>Rules</th><th>Treatment</th><th>Download</th></tr></thead><tbody>"#,
    );
    for year_rules in rules.years.iter().rev() {
        let Some(tax_year) = TaxYear::of(rules, year_rules.year) else {
            continue;
        };
        if tax_year.starts_at > today {
            continue;
        }
        let options: Vec<(&str, &str)> = year_rules
            .schedules
            .keys()
            .map(|class| (class.as_str(), classification_label(*class)))
            .collect();
        let _ = write!(
            body,
            r#"<tr><td>{label}</td><td>{first} – {last} ({zone})</td><td>{version}</td>
<td colspan="2"><form method="get" action="/console/me/statement" class="inline">
<input type="hidden" name="year" value="{year}">{select}
<button type="submit" name="format" value="pdf">PDF</button> <button type="submit" name="format" value="csv">CSV</button></form></td></tr>"#,
            label = escape(&tax_year.label),
            first = tax_year.first_day,
            last = tax_year.last_day,
            zone = escape(&tax_year.time_zone),
            version = escape(&year_rules.version),
            year = year_rules.year,
            select = html::select(
                "classification",
                &options,
                Some(rules.default_classification.as_str())
            ),
        );
    }
    body.push_str("</tbody></table></section>");
    Ok(secure_headers(HttpResponse::Ok()).body(html::page(
        "Tax statements",
        &member.frame(),
        &body,
    )))
}

#[derive(Deserialize)]
pub struct StatementQuery {
    year: i32,
    classification: Option<Classification>,
    format: String,
}

/// `/console/me/statement?year=…&classification=…&format=pdf|csv`: the user's own statement.
pub async fn download(
    state: web::Data<AppState>,
    member: Member,
    query: web::Query<StatementQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let query = query.into_inner();
    if !matches!(query.format.as_str(), "pdf" | "csv") {
        return Err(ConsoleError::BadRequest("format must be pdf or csv".into()));
    }
    let (holder, report) = crate::tax::routes::build_report(
        &state,
        member.user_id.clone(),
        query.year,
        query.classification,
    )
    .await?;
    let response = if query.format == "csv" {
        HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "Content-Disposition",
                crate::tax::routes::attachment(&report, "csv"),
            ))
            .body(statement::detail_csv(&report.payouts, &report.fees))
    } else {
        let generated_at = crate::db::now();
        let disposition = crate::tax::routes::attachment(&report, "pdf");
        let pdf = web::block(move || statement::pdf(&holder, &report, generated_at))
            .await
            .map_err(|error| ConsoleError::Internal(error.into()))??;
        HttpResponse::Ok()
            .content_type("application/pdf")
            .insert_header(("Content-Disposition", disposition))
            .body(pdf)
    };
    Ok(response)
}
