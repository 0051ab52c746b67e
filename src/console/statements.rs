//! A platform user's own page: their tax years, each downloadable as a PDF or CSV statement
//! under the treatment they pick, and their rental orders' green certificates.

use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::html::{self, escape, Frame};
use super::session::Session;
use super::{frame_of, live_session, secure_headers, ConsoleError};
use crate::auth::Role;
use crate::tax::rules::Classification;
use crate::tax::TaxYear;
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
        let session = live_session(request);
        Box::pin(async move {
            let session = session.await?;
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
        frame_of(&self.session)
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
    body.push_str(&certificates_card(&state, &member.user_id).await?);
    Ok(secure_headers(HttpResponse::Ok()).body(html::page(
        "Tax statements",
        &member.frame(),
        &body,
    )))
}

/// The user's rental orders with their energy, matched share and emissions, each with its green
/// certificate to download.
async fn certificates_card(state: &AppState, user_id: &str) -> Result<String, ConsoleError> {
    let basis = state.carbon.location_basis;
    let user_id = user_id.to_string();
    let footprint = state
        .db
        .run(move |connection| crate::carbon::views::user_footprint(connection, &user_id, basis))
        .await?;
    let mut card = String::from(
        r#"<section class="card"><h1>Green energy certificates</h1><p>Each hashrate rental order's energy, the certificates matched to it and its emissions by the location- and market-based methods.</p>
<table id="orders"><thead><tr><th>Order</th><th>Period (UTC)</th><th>Zone</th><th>Energy</th><th>Matched</th><th>kg CO2e (location / market)</th><th>Certificate</th></tr></thead><tbody>"#,
    );
    for order in &footprint.orders {
        let emissions = &order.emissions;
        let _ = write!(
            card,
            r#"<tr><td>{order_id}</td><td>{start} – {end}</td><td>{zone}</td><td>{energy} kWh</td><td>{share}</td><td>{location} / {market}</td><td><a href="/console/me/orders/{id}/certificate.pdf">PDF</a></td></tr>"#,
            order_id = escape(&order.order_id),
            start = order.starts_at.format("%Y-%m-%d"),
            end = order.ends_at.format("%Y-%m-%d"),
            zone = escape(&order.market_zone),
            energy = crate::carbon::store::thousandths(emissions.energy_wh),
            share = escape(&emissions.share_matched),
            location = escape(&emissions.location_based_kg),
            market = escape(&emissions.market_based_kg),
            id = escape(&order.id),
        );
    }
    if footprint.orders.is_empty() {
        card.push_str(r#"<tr><td colspan="7">No rental orders yet.</td></tr>"#);
    }
    card.push_str("</tbody></table></section>");
    Ok(card)
}

/// `/console/me/orders/{id}/certificate.pdf`: the green certificate of one of the user's orders.
pub async fn certificate(
    state: web::Data<AppState>,
    member: Member,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let id = crate::http::extract::parse_uuid("id", &path)?;
    let order = state
        .db
        .run(move |connection| crate::carbon::store::find_order(connection, &id))
        .await?;
    if order.user_id != member.user_id {
        return Err(ConsoleError::Forbidden(
            "this certificate belongs to another user".into(),
        ));
    }
    Ok(crate::carbon::routes::certificate_response(&state, order).await?)
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
    if query.format == "csv" {
        Ok(crate::tax::routes::csv_response(&report))
    } else {
        Ok(crate::tax::routes::pdf_response(holder, report).await?)
    }
}
