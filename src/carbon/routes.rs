//! The carbon API: emission factors, facilities, orders and their footprint, the certificate
//! registry, matching, allocation, retirement, and the public footprint.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::factors::{self, FactorRow};
use super::input::{
    period, thousandths_of, valid_certificate, zone_code_is_valid, CertificateInput,
};
use super::store::{self, NewCertificate, NewFacility, NewOrder, NewRetirement};
use super::views;
use crate::audit::NewAuditEntry;
use crate::auth::{Caller, Role};
use crate::error::{AppError, FieldError};
use crate::http::extract::{parse_uuid, IdempotencyKey, JsonBody, RequestId};
use crate::http::mutation::{self, IdempotentRequest, Outcome};
use crate::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/v1/emission-factors")
                .route(web::get().to(list_factors))
                .route(web::post().to(post_factors)),
        )
        .service(
            web::resource("/v1/facilities")
                .route(web::get().to(list_facilities))
                .route(web::post().to(post_facility)),
        )
        .service(web::resource("/v1/facilities/{id}").route(web::get().to(get_facility)))
        .service(web::resource("/v1/orders").route(web::post().to(post_order)))
        .service(web::resource("/v1/orders/{id}").route(web::get().to(get_order)))
        .service(web::resource("/v1/orders/{id}/hours").route(web::get().to(get_order_hours)))
        .service(
            web::resource("/v1/orders/{id}/certificate.pdf")
                .route(web::get().to(get_order_certificate)),
        )
        .service(web::resource("/v1/users/{id}/footprint").route(web::get().to(get_user_footprint)))
        .service(web::resource("/v1/certificates").route(web::post().to(post_certificates)))
        .service(web::resource("/v1/certificates/{id}").route(web::get().to(get_certificate)))
        .service(
            web::resource("/v1/certificates/{id}/status")
                .route(web::post().to(post_certificate_status)),
        )
        .service(web::resource("/v1/allocations").route(web::post().to(post_allocation)))
        .service(web::resource("/v1/matching/runs").route(web::post().to(post_matching_run)))
        .service(web::resource("/v1/retirements").route(web::post().to(post_retirement)))
        .service(web::resource("/v1/public/footprint").route(web::get().to(get_public_footprint)));
}

/// Compliance staff who manage the certificate registry.
const REGISTRY_STAFF: [Role; 3] = [Role::Officer, Role::SeniorOfficer, Role::Admin];
/// Who may read orders and facilities besides an order's owner.
const CARBON_READERS: [Role; 4] = [
    Role::Platform,
    Role::Officer,
    Role::SeniorOfficer,
    Role::Admin,
];

fn audit(
    connection: &mut crate::db::DbConnection,
    caller: &Caller,
    request_id: &RequestId,
    action: &str,
    (subject_type, subject_id): (&str, &str),
    reason: Option<String>,
    details: serde_json::Value,
) -> Result<(), AppError> {
    crate::audit::store::append(
        connection,
        NewAuditEntry::new(
            caller.actor(),
            action,
            subject_type,
            subject_id,
            Some(request_id.0.clone()),
        )
        .reason(reason)
        .details(details),
    )?;
    Ok(())
}

// ---- emission factors ----

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FactorBatch {
    #[validate(length(min = 1, max = 10000))]
    pub factors: Vec<FactorRow>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FactorImport {
    pub inserted: usize,
    pub unchanged: usize,
}

/// Every stored emission factor (staff and platform).
#[utoipa::path(get, path = "/v1/emission-factors", tag = "carbon",
    responses((status = 200, body = [FactorRow])), security(("bearer" = [])))]
pub async fn list_factors(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, AppError> {
    caller.require(&CARBON_READERS)?;
    let rows = state.db.run(store::load_factors).await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// Load emission factors (admin): grid averages by basis, residual mixes. A dataset version is
/// never changed: the same key with another value is a 409.
#[utoipa::path(post, path = "/v1/emission-factors", tag = "carbon", request_body = FactorBatch,
    responses((status = 200, body = FactorImport), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_factors(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    request_id: RequestId,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Admin])?;
    let batch: FactorBatch = body.parse()?;
    let errors: Vec<FieldError> = batch
        .factors
        .iter()
        .enumerate()
        .flat_map(|(index, row)| {
            factors::check(row).into_iter().map(move |message| {
                FieldError::new(format!("factors[{index}]"), "invalid_factor", message)
            })
        })
        .collect();
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let request = IdempotentRequest::new(
        &caller,
        idempotency_key,
        "POST",
        "/v1/emission-factors",
        &batch,
    );
    let caller = caller.clone();
    mutation::run(&state.db, request, move |connection| {
        let (inserted, unchanged) =
            store::insert_factors(connection, &batch.factors, crate::db::now())?;
        audit(
            connection,
            &caller,
            &request_id,
            "emission_factors.load",
            ("emission_factors", "emission_factors"),
            None,
            serde_json::json!({"inserted": inserted, "unchanged": unchanged}),
        )?;
        Outcome::new(
            StatusCode::OK,
            &FactorImport {
                inserted,
                unchanged,
            },
        )
    })
    .await
}

// ---- facilities ----

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MinerInput {
    #[validate(length(min = 1, max = 100))]
    pub model: String,
    /// TH/s per unit, a decimal string.
    pub hashrate_ths: String,
    #[validate(range(min = 1, max = 100000))]
    pub power_w: i64,
    #[validate(range(min = 1, max = 1000000))]
    pub units: i32,
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FacilityInput {
    #[validate(length(min = 1, max = 200))]
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// The electricity market zone: `CA-QC`, `NO2`, `IS`, `KZ`.
    pub market_zone: String,
    /// Power usage effectiveness, 1.000 to 3.000.
    pub pue: String,
    #[validate(length(min = 1, max = 50), nested)]
    pub miners: Vec<MinerInput>,
}

fn valid_facility(input: &FacilityInput) -> Result<NewFacility, AppError> {
    let mut errors = Vec::new();
    if !crate::jurisdiction::is_country_code(&input.country) {
        errors.push(FieldError::new(
            "country",
            "invalid_country",
            "must be an ISO 3166-1 alpha-2 code",
        ));
    }
    if !zone_code_is_valid(&input.market_zone) || !input.market_zone.starts_with(&input.country) {
        errors.push(FieldError::new(
            "market_zone",
            "invalid_zone",
            "must be the country code, optionally followed by a zone (CA-QC, NO2)",
        ));
    }
    let pue = thousandths_of("pue", &input.pue)
        .and_then(|pue| {
            i32::try_from(pue)
                .ok()
                .filter(|pue| (1_000..=3_000).contains(pue))
                .ok_or_else(|| FieldError::new("pue", "out_of_range", "must be 1.000 to 3.000"))
        })
        .map_err(|error| errors.push(error))
        .ok();
    let mut miners = Vec::new();
    for (index, miner) in input.miners.iter().enumerate() {
        match thousandths_of(
            &format!("miners[{index}].hashrate_ths"),
            &miner.hashrate_ths,
        ) {
            Ok(hashrate) => {
                miners.push((miner.model.clone(), hashrate, miner.power_w, miner.units))
            }
            Err(error) => errors.push(error),
        }
    }
    match pue {
        Some(pue_permille) if errors.is_empty() => Ok(NewFacility {
            name: input.name.clone(),
            country: input.country.clone(),
            market_zone: input.market_zone.clone(),
            pue_permille,
            miners,
        }),
        _ => Err(AppError::Validation(errors)),
    }
}

/// Register a hosting facility with its ASIC fleet and PUE (admin, platform). Its zone or
/// country must have a grid emission factor.
#[utoipa::path(post, path = "/v1/facilities", tag = "carbon", request_body = FacilityInput,
    responses((status = 201, body = store::Facility), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_facility(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    request_id: RequestId,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Admin, Role::Platform])?;
    let input: FacilityInput = body.parse()?;
    let facility = valid_facility(&input)?;
    let request =
        IdempotentRequest::new(&caller, idempotency_key, "POST", "/v1/facilities", &input);
    let basis = state.carbon.location_basis;
    let caller = caller.clone();
    mutation::run(&state.db, request, move |connection| {
        let factors = store::load_factors(connection)?;
        if super::footprint::pick(
            &factors,
            basis,
            &facility.market_zone,
            &facility.country,
            9999,
        )
        .is_none()
        {
            return Err(AppError::invalid_field(
                "market_zone",
                "unknown_zone",
                format!(
                    "no {} emission factor for zone {} or country {}: import one first",
                    basis.as_str(),
                    facility.market_zone,
                    facility.country
                ),
            ));
        }
        let created = store::create_facility(connection, &facility, crate::db::now())?;
        audit(
            connection,
            &caller,
            &request_id,
            "facility.create",
            ("facility", &created.id),
            None,
            serde_json::json!({"name": created.name, "market_zone": created.market_zone}),
        )?;
        Outcome::new(StatusCode::CREATED, &created)
    })
    .await
}

#[utoipa::path(get, path = "/v1/facilities", tag = "carbon",
    responses((status = 200, body = [store::Facility])), security(("bearer" = [])))]
pub async fn list_facilities(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, AppError> {
    caller.require(&CARBON_READERS)?;
    let rows = state.db.run(store::list_facilities).await?;
    Ok(HttpResponse::Ok().json(rows))
}

#[utoipa::path(get, path = "/v1/facilities/{id}", tag = "carbon", params(("id" = String, Path)),
    responses((status = 200, body = store::Facility), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_facility(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.require(&CARBON_READERS)?;
    let id = parse_uuid("id", &path)?;
    let facility = state
        .db
        .run(move |connection| store::find_facility(connection, &id))
        .await?;
    Ok(HttpResponse::Ok().json(facility))
}

// ---- orders ----

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    /// The platform's order id.
    #[validate(length(min = 1, max = 100))]
    pub order_id: String,
    pub user_id: String,
    pub facility_id: String,
    /// Rented hashrate in TH/s, at most 3 decimals.
    pub hashrate_ths: String,
    /// RFC 3339 with a zone.
    pub starts_at: String,
    pub ends_at: String,
    /// Energy metered at the facility for this order, in Wh; modelled when absent.
    #[validate(range(min = 1))]
    pub metered_wh: Option<i64>,
}

/// The longest order: ten years.
const MAX_ORDER_SECONDS: i64 = 10 * 366 * 24 * 3_600;

fn valid_order(input: &OrderInput) -> Result<NewOrder, AppError> {
    let mut errors = Vec::new();
    let user_id = parse_uuid("user_id", &input.user_id)
        .map_err(|_| errors.push(FieldError::new("user_id", "invalid_id", "not a UUID")))
        .ok();
    let facility_id = parse_uuid("facility_id", &input.facility_id)
        .map_err(|_| errors.push(FieldError::new("facility_id", "invalid_id", "not a UUID")))
        .ok();
    let hashrate = thousandths_of("hashrate_ths", &input.hashrate_ths)
        .map_err(|error| errors.push(error))
        .ok();
    let span = period(
        ("starts_at", "ends_at"),
        (&input.starts_at, &input.ends_at),
        &mut errors,
    );
    if let Some((start, end)) = span {
        if (end - start).num_seconds() > MAX_ORDER_SECONDS {
            errors.push(FieldError::new(
                "ends_at",
                "too_long",
                "an order runs at most ten years",
            ));
        }
    }
    match (user_id, facility_id, hashrate, span) {
        (Some(user_id), Some(facility_id), Some(hashrate_mths), Some((starts_at, ends_at)))
            if errors.is_empty() =>
        {
            Ok(NewOrder {
                external_id: input.order_id.clone(),
                user_id,
                facility_id,
                hashrate_mths,
                starts_at,
                ends_at,
                metered_wh: input.metered_wh,
            })
        }
        _ => Err(AppError::Validation(errors)),
    }
}

/// Record a hashrate-rental order (platform). Its energy is the metered Wh when given, else
/// hashrate × the facility fleet's J/TH × PUE × hours, rounded up to the Wh. Certificates are
/// matched at once: hour by hour first, then volumetrically. The same `order_id` sent again
/// returns the recorded order (200); with other details it is a 422.
#[utoipa::path(post, path = "/v1/orders", tag = "carbon", request_body = OrderInput,
    responses((status = 201, body = views::OrderView), (status = 200, body = views::OrderView),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_order(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Platform])?;
    let input: OrderInput = body.parse()?;
    let order = valid_order(&input)?;
    let request = IdempotentRequest::new(&caller, idempotency_key, "POST", "/v1/orders", &input);
    let (vintage, basis) = (state.carbon.vintage, state.carbon.location_basis);
    let actor = caller.actor().id;
    mutation::run(&state.db, request, move |connection| {
        let now = crate::db::now();
        let (row, created) = store::insert_order(connection, &order, now)?;
        if created {
            store::match_orders(
                connection,
                &row.market_zone,
                std::slice::from_ref(&row.id),
                &vintage,
                &actor,
                now,
            )?;
        }
        let order = store::find_order(connection, &row.id)?;
        let view = views::order_views(connection, vec![order], basis)?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Outcome::new(status, &view.first())
    })
    .await
}

async fn readable_order(
    state: &AppState,
    caller: &Caller,
    id: String,
) -> Result<store::OrderRow, AppError> {
    let order = state
        .db
        .run(move |connection| store::find_order(connection, &id))
        .await?;
    caller.require_self_or(&order.user_id, &CARBON_READERS)?;
    Ok(order)
}

/// An order with its energy, certificates and emissions (its user, staff, the platform).
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "carbon", params(("id" = String, Path)),
    responses((status = 200, body = views::OrderView), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_order(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let order = readable_order(&state, &caller, parse_uuid("id", &path)?).await?;
    let basis = state.carbon.location_basis;
    let view = state
        .db
        .run(move |connection| views::order_views(connection, vec![order], basis))
        .await?;
    Ok(HttpResponse::Ok().json(view.first()))
}

/// The order's green-energy certificate as a PDF: the order, its energy, the certificates with
/// their serials, both methods' emissions and factors, and the SHA-256 of the order's JSON.
#[utoipa::path(get, path = "/v1/orders/{id}/certificate.pdf", tag = "carbon", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_order_certificate(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let order = readable_order(&state, &caller, parse_uuid("id", &path)?).await?;
    certificate_response(&state, order).await
}

/// The order's certificate PDF as a download (the API and the console).
pub(crate) async fn certificate_response(
    state: &AppState,
    order: store::OrderRow,
) -> Result<HttpResponse, AppError> {
    let basis = state.carbon.location_basis;
    let cipher = state.cipher.clone();
    let (holder, facility, view) = state
        .db
        .run(move |connection| {
            let holder = crate::tax::store::holder(connection, &cipher, &order.user_id)?;
            let facility = store::find_facility(connection, &order.facility_id)?;
            let view = views::order_views(connection, vec![order], basis)?;
            let view = view
                .into_iter()
                .next()
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("the order vanished")))?;
            Ok((holder.name, facility.name, view))
        })
        .await?;
    let hash = super::certificate::data_sha256(&view)?;
    let disposition = format!(
        "attachment; filename=\"green-certificate-{}.pdf\"",
        view.order_id.replace(['"', '\\', '/'], "-")
    );
    let generated_at = crate::db::now();
    let pdf = web::block(move || super::certificate::pdf(&holder, &facility, &view, generated_at))
        .await
        .map_err(AppError::internal)??;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header(("Content-Disposition", disposition))
        .insert_header(("X-Data-SHA256", hash))
        .body(pdf))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HourView {
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub hour_start: NaiveDateTime,
    pub consumption_wh: i64,
    pub matched_wh: i64,
}

/// An order's consumption hour by hour (UTC), with what hourly matching covered.
#[utoipa::path(get, path = "/v1/orders/{id}/hours", tag = "carbon", params(("id" = String, Path)),
    responses((status = 200, body = [HourView]), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_order_hours(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let order = readable_order(&state, &caller, parse_uuid("id", &path)?).await?;
    let id = order.id.clone();
    let matched = state
        .db
        .run(move |connection| store::matched_hours(connection, &id))
        .await?;
    let hours: Vec<HourView> =
        super::hourly_consumption(order.starts_at, order.ends_at, order.energy_wh)
            .into_iter()
            .map(|hour| HourView {
                hour_start: hour.hour_start,
                consumption_wh: hour.wh,
                matched_wh: matched.get(&hour.hour_start).copied().unwrap_or(0),
            })
            .collect();
    Ok(HttpResponse::Ok().json(hours))
}

/// A user's orders and their footprint by both methods (the user, staff).
#[utoipa::path(get, path = "/v1/users/{id}/footprint", tag = "carbon", params(("id" = String, Path)),
    responses((status = 200, body = views::UserFootprint), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_user_footprint(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let user_id = parse_uuid("id", &path)?;
    caller.require_self_or(&user_id, &REGISTRY_STAFF)?;
    let basis = state.carbon.location_basis;
    let footprint = state
        .db
        .run(move |connection| views::user_footprint(connection, &user_id, basis))
        .await?;
    Ok(HttpResponse::Ok().json(footprint))
}

// ---- certificates ----

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateBatch {
    #[validate(length(min = 1, max = 10000), nested)]
    pub certificates: Vec<CertificateInput>,
    /// Match open orders against the registry afterwards (default true); false keeps the
    /// volume for allocation by hand.
    pub match_open_orders: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateImport {
    pub imported: usize,
    pub ids: Vec<String>,
    /// What matching the open orders then allocated.
    pub matching: store::MatchReport,
}

/// Import certificates from a registry (officers, admin): all or nothing. A duplicate serial,
/// a period overlapping another certificate of the same device, an unknown zone or a volume
/// under 1 Wh rejects the batch with every bad row named. Open orders are matched afterwards.
#[utoipa::path(post, path = "/v1/certificates", tag = "carbon", request_body = CertificateBatch,
    responses((status = 201, body = CertificateImport), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_certificates(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    request_id: RequestId,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&REGISTRY_STAFF)?;
    let batch: CertificateBatch = body.parse()?;
    let mut errors = Vec::new();
    let certificates: Vec<NewCertificate> = batch
        .certificates
        .iter()
        .enumerate()
        .filter_map(|(index, input)| valid_certificate(index, input, &mut errors))
        .collect();
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let request =
        IdempotentRequest::new(&caller, idempotency_key, "POST", "/v1/certificates", &batch);
    let vintage = state.carbon.vintage;
    let caller = caller.clone();
    let match_open_orders = batch.match_open_orders.unwrap_or(true);
    mutation::run(&state.db, request, move |connection| {
        let actor = caller.actor().id;
        let now = crate::db::now();
        let ids = store::insert_certificates(connection, &certificates, &actor, now)?;
        let matching = if match_open_orders {
            store::match_all(connection, &vintage, &actor, now)?
        } else {
            store::MatchReport::default()
        };
        audit(
            connection,
            &caller,
            &request_id,
            "certificates.import",
            ("certificates", "certificates"),
            None,
            serde_json::json!({"imported": ids.len(), "allocations": matching.allocations}),
        )?;
        Outcome::new(
            StatusCode::CREATED,
            &CertificateImport {
                imported: ids.len(),
                ids,
                matching,
            },
        )
    })
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateDetail {
    #[serde(flatten)]
    pub certificate: store::CertificateRow,
    pub available_wh: i64,
    pub events: Vec<store::CertificateEvent>,
}

/// A certificate with its volume by state and every event in its life (staff).
#[utoipa::path(get, path = "/v1/certificates/{id}", tag = "carbon", params(("id" = String, Path)),
    responses((status = 200, body = CertificateDetail), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_certificate(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.require(&REGISTRY_STAFF)?;
    let id = parse_uuid("id", &path)?;
    let detail = state
        .db
        .run(move |connection| {
            let certificate = store::find_certificate(connection, &id)?;
            let events = store::certificate_events(connection, &id)?;
            Ok(CertificateDetail {
                available_wh: if certificate.status == "active" {
                    certificate.volume_wh - certificate.allocated_wh - certificate.retired_wh
                } else {
                    0
                },
                certificate,
                events,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(detail))
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusInput {
    /// `revoked` (by the issuer), `withdrawn` (by the registry) or `expired`.
    pub status: String,
    #[validate(length(min = 3, max = 2000))]
    pub reason: String,
}

/// Revoke, withdraw or expire a certificate (officers, admin). Its live allocations are
/// released back to their orders; retired volume stays retired (reported as kept).
#[utoipa::path(post, path = "/v1/certificates/{id}/status", tag = "carbon", params(("id" = String, Path)),
    request_body = StatusInput,
    responses((status = 200, body = store::StatusChange), (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_certificate_status(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    request_id: RequestId,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&REGISTRY_STAFF)?;
    let id = parse_uuid("id", &path)?;
    let input: StatusInput = body.parse()?;
    if !["revoked", "withdrawn", "expired"].contains(&input.status.as_str()) {
        return Err(AppError::invalid_field(
            "status",
            "invalid_enum",
            "must be revoked, withdrawn or expired",
        ));
    }
    let path_text = format!("/v1/certificates/{id}/status");
    let request = IdempotentRequest::new(&caller, idempotency_key, "POST", &path_text, &input);
    let caller = caller.clone();
    mutation::run(&state.db, request, move |connection| {
        let change = store::change_status(
            connection,
            &id,
            &input.status,
            &input.reason,
            &caller.actor().id,
            crate::db::now(),
        )?;
        audit(
            connection,
            &caller,
            &request_id,
            &format!("certificate.{}", input.status),
            ("certificate", &id),
            Some(input.reason.clone()),
            serde_json::to_value(&change).map_err(AppError::internal)?,
        )?;
        Outcome::new(StatusCode::OK, &change)
    })
    .await
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocationInput {
    pub certificate_id: String,
    pub order_id: String,
    #[validate(range(min = 1))]
    pub wh: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AllocationCreated {
    pub id: String,
}

/// Allocate part of a certificate to an order by hand (officers, admin), with the matcher's
/// checks. Volume beyond what is left of the certificate or the order is a 409.
#[utoipa::path(post, path = "/v1/allocations", tag = "carbon", request_body = AllocationInput,
    responses((status = 201, body = AllocationCreated), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_allocation(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    request_id: RequestId,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&REGISTRY_STAFF)?;
    let input: AllocationInput = body.parse()?;
    let certificate_id = parse_uuid("certificate_id", &input.certificate_id)?;
    let order_id = parse_uuid("order_id", &input.order_id)?;
    let request =
        IdempotentRequest::new(&caller, idempotency_key, "POST", "/v1/allocations", &input);
    let vintage = state.carbon.vintage;
    let caller = caller.clone();
    mutation::run(&state.db, request, move |connection| {
        let id = store::allocate(
            connection,
            &certificate_id,
            &order_id,
            input.wh,
            &vintage,
            &caller.actor().id,
            crate::db::now(),
        )?;
        audit(
            connection,
            &caller,
            &request_id,
            "certificate.allocate",
            ("certificate", &certificate_id),
            None,
            serde_json::json!({"allocation": id, "order": order_id, "wh": input.wh}),
        )?;
        Outcome::new(StatusCode::CREATED, &AllocationCreated { id })
    })
    .await
}

/// Match every order with unmatched energy against the registry (officers, admin).
#[utoipa::path(post, path = "/v1/matching/runs", tag = "carbon",
    responses((status = 200, body = store::MatchReport)), security(("bearer" = [])))]
pub async fn post_matching_run(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    caller.require(&REGISTRY_STAFF)?;
    let request =
        IdempotentRequest::new(&caller, idempotency_key, "POST", "/v1/matching/runs", &());
    let vintage = state.carbon.vintage;
    let caller = caller.clone();
    mutation::run(&state.db, request, move |connection| {
        let report = store::match_all(connection, &vintage, &caller.actor().id, crate::db::now())?;
        audit(
            connection,
            &caller,
            &request_id,
            "matching.run",
            ("orders", "orders"),
            None,
            serde_json::to_value(&report).map_err(AppError::internal)?,
        )?;
        Outcome::new(StatusCode::OK, &report)
    })
    .await
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetirementInput {
    pub user_id: String,
    /// Who may claim the energy: the user's name or company, as on the redemption statement.
    #[validate(length(min = 1, max = 300))]
    pub beneficiary: String,
    /// The claim period: orders running within it are retired.
    pub period_start: String,
    pub period_end: String,
    /// The external registry's redemption or cancellation statement id.
    #[validate(length(min = 1, max = 200))]
    pub registry_reference: String,
}

/// Retire, on the user's behalf, the certificates matched to their orders within a period,
/// against one registry redemption (officers, admin). Final: it cannot be undone.
#[utoipa::path(post, path = "/v1/retirements", tag = "carbon", request_body = RetirementInput,
    responses((status = 201, body = store::Retirement), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_retirement(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    request_id: RequestId,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&REGISTRY_STAFF)?;
    let input: RetirementInput = body.parse()?;
    let mut errors = Vec::new();
    let user_id = parse_uuid("user_id", &input.user_id)
        .map_err(|_| errors.push(FieldError::new("user_id", "invalid_id", "not a UUID")))
        .ok();
    let span = period(
        ("period_start", "period_end"),
        (&input.period_start, &input.period_end),
        &mut errors,
    );
    let (Some(user_id), Some((period_start, period_end)), true) =
        (user_id, span, errors.is_empty())
    else {
        return Err(AppError::Validation(errors));
    };
    let retirement = NewRetirement {
        user_id,
        beneficiary: input.beneficiary.clone(),
        period_start,
        period_end,
        registry_reference: input.registry_reference.clone(),
    };
    let request =
        IdempotentRequest::new(&caller, idempotency_key, "POST", "/v1/retirements", &input);
    let caller = caller.clone();
    mutation::run(&state.db, request, move |connection| {
        crate::users::store::require_exists(connection, &retirement.user_id)
            .map_err(|e| AppError::invalid_field("user_id", "unknown_user", e.to_string()))?;
        let retired = store::retire(
            connection,
            &retirement,
            &caller.actor().id,
            crate::db::now(),
        )?;
        audit(
            connection,
            &caller,
            &request_id,
            "certificate.retire",
            ("retirement", &retired.id),
            None,
            serde_json::to_value(&retired).map_err(AppError::internal)?,
        )?;
        Outcome::new(StatusCode::CREATED, &retired)
    })
    .await
}

/// The platform's real-time carbon footprint: current power, energy and emissions today and
/// this year by both methods, the share matched (hourly and volumetric), and the factor
/// datasets behind them. Public, no token; cacheable for a minute.
#[utoipa::path(get, path = "/v1/public/footprint", tag = "carbon",
    responses((status = 200, body = views::PublicFootprint)))]
pub async fn get_public_footprint(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let basis = state.carbon.location_basis;
    let footprint = state
        .db
        .run(move |connection| views::public_footprint(connection, basis, crate::db::now()))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=60"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .json(footprint))
}
