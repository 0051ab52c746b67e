//! `GET /v1/jurisdictions`, `GET /v1/jurisdictions/{code}`, `GET /v1/users/{id}/tax/{year}` and
//! its statements (`statement.csv`, `statement.pdf`).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::rules::{Classification, TaxRules};
use super::store::Holder;
use super::{statement, TaxReport};
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::http::extract::{parse_uuid, QueryParams};
use crate::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/v1/jurisdictions").route(web::get().to(list_jurisdictions)))
        .service(web::resource("/v1/jurisdictions/{code}").route(web::get().to(get_jurisdiction)))
        .service(
            web::resource("/v1/users/{id}/tax/{year}/statement.csv")
                .route(web::get().to(get_statement_csv)),
        )
        .service(
            web::resource("/v1/users/{id}/tax/{year}/statement.pdf")
                .route(web::get().to(get_statement_pdf)),
        )
        .service(web::resource("/v1/users/{id}/tax/{year}").route(web::get().to(get_tax)))
        .service(web::resource("/v1/exports/carf").route(web::get().to(get_carf)));
}

/// Everyone but regulators, whose tokens read their own jurisdiction's reports only.
const RULE_READERS: [Role; 5] = [
    Role::User,
    Role::Platform,
    Role::Officer,
    Role::SeniorOfficer,
    Role::Admin,
];

/// Who may read a user's tax figures besides the user: officers and admins.
const TAX_READERS: [Role; 3] = [Role::Officer, Role::SeniorOfficer, Role::Admin];

/// A jurisdiction in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct JurisdictionSummary {
    pub code: String,
    pub name: String,
    pub currency: String,
    pub time_zone: String,
    /// `MM-DD`.
    pub tax_year_start: String,
    /// The tax years with rules, by the calendar year they start in.
    pub tax_years: Vec<i32>,
    pub classifications: Vec<Classification>,
    pub default_classification: Classification,
}

fn summary(code: &str, name: &str, rules: &TaxRules) -> JurisdictionSummary {
    let mut classifications: Vec<Classification> = rules
        .years
        .iter()
        .flat_map(|year| year.schedules.keys().copied())
        .collect();
    classifications.sort();
    classifications.dedup();
    JurisdictionSummary {
        code: code.to_string(),
        name: name.to_string(),
        currency: rules.currency.clone(),
        time_zone: rules.time_zone.name().to_string(),
        tax_year_start: format!("{:02}-{:02}", rules.year_start.0, rules.year_start.1),
        tax_years: rules.years.iter().map(|year| year.year).collect(),
        classifications,
        default_classification: rules.default_classification,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JurisdictionList {
    pub jurisdictions: Vec<JurisdictionSummary>,
}

/// The jurisdictions hashgate knows, with their tax years.
#[utoipa::path(get, path = "/v1/jurisdictions", tag = "tax",
    responses((status = 200, body = JurisdictionList)), security(("bearer" = [])))]
pub async fn list_jurisdictions(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, AppError> {
    caller.require(&RULE_READERS)?;
    let jurisdictions = state
        .jurisdictions
        .codes()
        .filter_map(|code| state.jurisdictions.get(code))
        .map(|jurisdiction| summary(&jurisdiction.code, &jurisdiction.name, &jurisdiction.tax))
        .collect();
    Ok(HttpResponse::Ok().json(JurisdictionList { jurisdictions }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JurisdictionDetail {
    #[serde(flatten)]
    pub summary: JurisdictionSummary,
    /// The tax rules in full, per year and classification, with their sources.
    pub tax: TaxRules,
}

/// One jurisdiction's tax rules in full.
#[utoipa::path(get, path = "/v1/jurisdictions/{code}", tag = "tax",
    params(("code" = String, Path, description = "ISO 3166-1 alpha-2, e.g. HK")),
    responses((status = 200, body = JurisdictionDetail), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_jurisdiction(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.require(&RULE_READERS)?;
    let code = path.into_inner();
    let jurisdiction = state.jurisdictions.get(&code).ok_or_else(|| {
        AppError::NotFound(format!(
            "no jurisdiction `{code}`; known: {}",
            state.jurisdictions.codes().collect::<Vec<_>>().join(", ")
        ))
    })?;
    Ok(HttpResponse::Ok().json(JurisdictionDetail {
        summary: summary(&jurisdiction.code, &jurisdiction.name, &jurisdiction.tax),
        tax: jurisdiction.tax.clone(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TaxQuery {
    /// `miscellaneous` or `business`, where the jurisdiction offers both; default: the
    /// jurisdiction's usual treatment.
    pub classification: Option<Classification>,
}

/// The path's user and year, checked: the caller may read the user's figures.
fn tax_path(caller: &Caller, path: web::Path<(String, String)>) -> Result<(String, i32), AppError> {
    let (id, year) = path.into_inner();
    let user_id = parse_uuid("id", &id)?;
    let year = year
        .parse::<i32>()
        .ok()
        .filter(|year| (1970..=2100).contains(year))
        .ok_or_else(|| {
            AppError::bad_field(
                "year",
                format!(
                    "`{year}` is not a tax year: give the calendar year it starts in, e.g. 2026"
                ),
            )
        })?;
    caller.require_self_or(&user_id, &TAX_READERS)?;
    Ok((user_id, year))
}

/// Computes the report of a user's tax year from the ledger.
pub(crate) async fn build_report(
    state: &AppState,
    user_id: String,
    year: i32,
    classification: Option<Classification>,
) -> Result<(Holder, TaxReport), AppError> {
    let jurisdictions = state.jurisdictions.clone();
    let cipher = state.cipher.clone();
    let staleness = state.price_staleness;
    state
        .db
        .run(move |connection| {
            super::service::user_report(
                connection,
                &cipher,
                &jurisdictions,
                staleness,
                (&user_id, year),
                classification,
            )
        })
        .await
}

/// A user's tax computation for a tax year: income by month and asset, deductions, taxable
/// amount, tax by band, surtaxes, total and effective rate, the rule version and sources, the
/// disclaimers, and every payout behind it.
#[utoipa::path(get, path = "/v1/users/{id}/tax/{year}", tag = "tax",
    params(("id" = String, Path), ("year" = i32, Path, description = "The calendar year the tax year starts in"), TaxQuery),
    responses((status = 200, body = TaxReport), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_tax(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: QueryParams<TaxQuery>,
) -> Result<HttpResponse, AppError> {
    let (user_id, year) = tax_path(&caller, path)?;
    let (_, report) =
        build_report(&state, user_id, year, query.into_inner()?.classification).await?;
    Ok(HttpResponse::Ok().json(report))
}

fn attachment(report: &TaxReport, extension: &str) -> String {
    format!(
        "attachment; filename=\"tax-statement-{}-{}.{extension}\"",
        report.jurisdiction,
        report.tax_year.label.replace('/', "-")
    )
}

/// The statement CSV as a download (the API and the console).
pub(crate) fn csv_response(report: &TaxReport) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", attachment(report, "csv")))
        .insert_header(("X-Data-SHA256", report.data_sha256.clone()))
        .body(statement::detail_csv(&report.payouts, &report.fees))
}

/// The statement PDF as a download, rendered off the async workers (the API and the console).
pub(crate) async fn pdf_response(
    holder: Holder,
    report: TaxReport,
) -> Result<HttpResponse, AppError> {
    let disposition = attachment(&report, "pdf");
    let hash = report.data_sha256.clone();
    let generated_at = crate::db::now();
    let pdf = web::block(move || statement::pdf(&holder, &report, generated_at))
        .await
        .map_err(AppError::internal)??;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header(("Content-Disposition", disposition))
        .insert_header(("X-Data-SHA256", hash))
        .body(pdf))
}

/// The statement as CSV: every payout and fee of the year with its valuation. Its SHA-256 is
/// the `data_sha256` printed on the PDF.
#[utoipa::path(get, path = "/v1/users/{id}/tax/{year}/statement.csv", tag = "tax",
    params(("id" = String, Path), ("year" = i32, Path), TaxQuery),
    responses((status = 200, content_type = "text/csv", body = String),
              (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_statement_csv(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: QueryParams<TaxQuery>,
) -> Result<HttpResponse, AppError> {
    let (user_id, year) = tax_path(&caller, path)?;
    let (_, report) =
        build_report(&state, user_id, year, query.into_inner()?.classification).await?;
    Ok(csv_response(&report))
}

/// The statement as PDF, in the user's language.
#[utoipa::path(get, path = "/v1/users/{id}/tax/{year}/statement.pdf", tag = "tax",
    params(("id" = String, Path), ("year" = i32, Path), TaxQuery),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>),
              (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_statement_pdf(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: QueryParams<TaxQuery>,
) -> Result<HttpResponse, AppError> {
    let (user_id, year) = tax_path(&caller, path)?;
    let (holder, report) =
        build_report(&state, user_id, year, query.into_inner()?.classification).await?;
    pdf_response(holder, report).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CarfQuery {
    /// The jurisdiction whose resident users are reported, e.g. HK.
    pub jurisdiction: String,
    /// The calendar year reported.
    pub year: i32,
    /// Mark the file as test data (DocTypeIndic OECD11).
    #[serde(default)]
    pub test: bool,
}

/// The OECD CARF XML (v1.5) of a jurisdiction and calendar year (admin): mining payouts as
/// `CryptoTransferIn` / `CARF503`, aggregated per user and asset. Spooled to disk and streamed.
#[utoipa::path(get, path = "/v1/exports/carf", tag = "tax", params(CarfQuery),
    responses((status = 200, content_type = "application/xml", body = String),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_carf(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<CarfQuery>,
) -> Result<HttpResponse, AppError> {
    use std::io::{Read, Seek};

    caller.require(&[Role::Admin])?;
    let query = query.into_inner()?;
    if state.jurisdictions.get(&query.jurisdiction).is_none() {
        return Err(AppError::NotFound(format!(
            "no jurisdiction `{}`",
            query.jurisdiction
        )));
    }
    if !(2000..=2100).contains(&query.year) {
        return Err(AppError::bad_field(
            "year",
            "must be a year between 2000 and 2100",
        ));
    }
    let db = state.db.clone();
    let cipher = state.cipher.clone();
    let jurisdictions = state.jurisdictions.clone();
    let entity = state.reporting_entity.clone();
    let staleness = state.price_staleness;
    let actor = caller.actor();
    let name = format!("carf-{}-{}.xml", query.jurisdiction, query.year);
    let file = web::block(move || -> Result<std::fs::File, AppError> {
        let jurisdiction = jurisdictions
            .get(&query.jurisdiction)
            .ok_or_else(|| AppError::NotFound(query.jurisdiction.clone()))?;
        let mut connection = db.connection()?;
        let mut file = tempfile::tempfile().map_err(AppError::internal)?;
        let request = super::carf::CarfRequest {
            jurisdiction,
            year: query.year,
            entity: &entity,
            staleness,
            now: crate::db::now(),
            test: query.test,
        };
        let summary = super::carf::export(&mut connection, &cipher, &request, &mut file)?;
        crate::db::write_transaction(&mut connection, |connection| {
            crate::audit::store::append(
                connection,
                crate::audit::NewAuditEntry::new(
                    actor,
                    "carf.export",
                    "jurisdiction",
                    &query.jurisdiction,
                    None,
                )
                .details(serde_json::json!({ "year": query.year, "summary": summary })),
            )
        })?;
        file.rewind().map_err(AppError::internal)?;
        Ok(file)
    })
    .await
    .map_err(AppError::internal)??;
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let read = web::block(move || {
            let mut buffer = vec![0u8; 256 * 1024];
            let length = file.read(&mut buffer)?;
            buffer.truncate(length);
            Ok::<_, std::io::Error>((file, buffer))
        })
        .await;
        match read {
            Ok(Ok((_, buffer))) if buffer.is_empty() => None,
            Ok(Ok((file, buffer))) => Some((Ok(web::Bytes::from(buffer)), Some(file))),
            Ok(Err(error)) => Some((Err(actix_web::error::ErrorInternalServerError(error)), None)),
            Err(error) => Some((Err(actix_web::error::ErrorInternalServerError(error)), None)),
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/xml")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .streaming(chunks))
}
