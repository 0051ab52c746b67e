//! The OpenAPI document, generated from the handlers, and a self-contained page to try it.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hashgate",
        description = "Compliance, KYC and tax-reporting backend for cloud-mining platforms. \
            Authenticate with `Authorization: Bearer <token>`. Errors are RFC 9457 problem details. \
            Mutating requests accept an `Idempotency-Key` header."
    ),
    paths(
        crate::http::health,
        crate::http::ready,
        crate::http::metrics,
        crate::users::routes::create_user,
        crate::users::routes::get_user,
        crate::auth::routes::create_token,
        crate::auth::routes::list_tokens,
        crate::auth::routes::revoke_token,
        crate::audit::routes::list_audit,
        crate::ledger::routes::post_payouts,
        crate::ledger::routes::post_prices,
        crate::ledger::routes::post_fees,
        crate::ledger::routes::get_balances,
        crate::ledger::routes::get_ledger,
        crate::ledger::routes::get_summary,
        crate::aml::routes::screen_person,
        crate::aml::routes::screen_entity,
        crate::aml::routes::screen_address,
        crate::aml::routes::list_versions_handler,
        crate::aml::routes::review_hit,
        crate::aml::routes::approve_hit,
        crate::aml::routes::list_hits,
        crate::aml::list_routes::upload_list,
        crate::aml::list_routes::list_jobs,
        crate::aml::list_routes::get_job,
        crate::aml::list_routes::start_rescreen,
        crate::kyc::routes::submit,
        crate::kyc::routes::queue,
        crate::kyc::routes::application,
        crate::kyc::routes::claim,
        crate::kyc::routes::release,
        crate::kyc::routes::decide,
        crate::kyc::routes::resubmit,
        crate::kyc::routes::document,
        crate::kyc::routes::status,
        crate::withdrawals::routes::request_withdrawal,
        crate::withdrawals::routes::get_withdrawal,
        crate::withdrawals::routes::list_withdrawals,
        crate::withdrawals::routes::release,
        crate::withdrawals::routes::reject,
        crate::withdrawals::routes::settle,
        crate::withdrawals::routes::list_addresses,
        crate::withdrawals::routes::add_address,
        crate::withdrawals::routes::remove_address,
        crate::withdrawals::routes::approve_address,
        crate::aml::monitoring::routes::list_alerts,
        crate::aml::monitoring::routes::open_case,
        crate::aml::monitoring::routes::list_cases,
        crate::aml::monitoring::routes::get_case,
        crate::aml::monitoring::routes::add_alerts,
        crate::aml::monitoring::routes::add_note,
        crate::aml::monitoring::routes::evidence,
        crate::aml::monitoring::routes::close_case,
        crate::aml::monitoring::routes::run_batch,
        crate::tax::routes::list_jurisdictions,
        crate::tax::routes::get_jurisdiction,
        crate::tax::routes::get_tax,
        crate::tax::routes::get_statement_csv,
        crate::tax::routes::get_statement_pdf,
        crate::tax::routes::get_carf,
        crate::carbon::routes::list_factors,
        crate::carbon::routes::post_factors,
        crate::carbon::routes::post_facility,
        crate::carbon::routes::list_facilities,
        crate::carbon::routes::get_facility,
        crate::carbon::routes::post_order,
        crate::carbon::routes::get_order,
        crate::carbon::routes::get_order_hours,
        crate::carbon::routes::get_order_certificate,
        crate::carbon::routes::get_user_footprint,
        crate::carbon::routes::post_certificates,
        crate::carbon::routes::get_certificate,
        crate::carbon::routes::post_certificate_status,
        crate::carbon::routes::post_allocation,
        crate::carbon::routes::post_matching_run,
        crate::carbon::routes::post_retirement,
        crate::carbon::routes::get_public_footprint,
        crate::reports::routes::post_report,
        crate::reports::routes::post_str_report,
        crate::reports::routes::post_integrity_report,
        crate::reports::routes::post_kyc_history,
        crate::reports::routes::post_withdrawal_trace,
        crate::reports::routes::post_schedule,
        crate::reports::routes::list_schedules,
        crate::reports::routes::post_schedule_disable,
        crate::reports::routes::list_reports,
        crate::reports::routes::get_report,
        crate::reports::routes::get_file,
        crate::reports::routes::get_verification,
        crate::reports::routes::post_verification,
        crate::reports::routes::get_public_key,
    ),
    components(schemas(crate::error::Problem, crate::error::FieldError)),
    modifiers(&BearerAuth, &ProblemResponses),
    tags(
        (name = "users", description = "Platform users"),
        (name = "tokens", description = "API tokens and roles (admin)"),
        (name = "audit", description = "The hash-chained audit log"),
        (name = "ledger", description = "Payouts, prices, balances and the hash-chained ledger"),
        (name = "screening", description = "Sanctions, PEP and crypto-address screening"),
        (name = "kyc", description = "KYC applications, the review queue, four-eyes decisions, status"),
        (name = "withdrawals", description = "The withdrawal gate: KYC, limits, balance, screening, travel rule, address book, held-withdrawal review"),
        (name = "monitoring", description = "Transaction monitoring: alerts from rules and screening, cases"),
        (name = "tax", description = "Tax rules per jurisdiction, tax computations and statements"),
        (name = "carbon", description = "Facilities, orders' energy, green certificates, matching, retirement and the footprint"),
        (name = "reports", description = "Regulator reports: generated, signed, verified, delivered per jurisdiction"),
        (name = "service", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Documents the problem responses every operation can give besides its own: 400 (malformed),
/// 401 and 403 (token and role, on secured operations), 404 (an id that names nothing), 413 and
/// 415 (the body's size and type), 422 (validation, including the Idempotency-Key header) and
/// 503 (the database unreachable); every 4xx and 5xx body is `application/problem+json`.
struct ProblemResponses;

const PROBLEM_TYPE: &str = "application/problem+json";

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let secured = operation.security.is_some();
                let has_body = operation.request_body.is_some();
                let mut common = vec![
                    ("400", "The request is malformed"),
                    (
                        "422",
                        "A field, parameter or header is invalid; `errors` names each",
                    ),
                    ("503", "The database cannot be reached"),
                ];
                if secured {
                    common.push(("401", "No token, or an unknown, expired or revoked one"));
                    common.push(("403", "The token's role or scope does not allow this"));
                }
                if path.contains('{') {
                    common.push(("404", "Nothing has this id"));
                }
                let idempotent = operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|parameter| parameter.name.eq_ignore_ascii_case("Idempotency-Key"));
                if idempotent {
                    common.push((
                        "409",
                        "The Idempotency-Key was sent before with another request",
                    ));
                }
                if has_body {
                    common.push(("413", "The body is larger than `max_body_bytes`"));
                    common.push(("415", "The body is not of the documented content type"));
                }
                let responses = &mut operation.responses.responses;
                for (status, description) in common {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| problem_response(description).into());
                }
                for (status, response) in responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if status.starts_with('4') || status.starts_with('5') {
                        if let Some(content) = response.content.shift_remove("application/json") {
                            response.content.insert(PROBLEM_TYPE.to_string(), content);
                        }
                    }
                }
            }
        }
    }
}

fn problem_response(description: &str) -> Response {
    let mut response = Response::new(description);
    response.content.insert(
        PROBLEM_TYPE.to_string(),
        Content::new(Some(Ref::from_schema_name("Problem"))),
    );
    response
}

/// The document is the same for the life of the process: built and serialised once.
pub async fn openapi_json() -> HttpResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let document =
        DOCUMENT.get_or_init(|| serde_json::to_string(&ApiDoc::openapi()).unwrap_or_default());
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.as_str())
}

/// The page loads `/openapi.json` and builds a form per operation; it needs nothing from a CDN.
pub async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_str!("docs.html"))
}
