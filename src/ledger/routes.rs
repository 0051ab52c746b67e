//! `POST /v1/payouts`, `POST /v1/prices`, `GET /v1/users/{id}/balances`, `GET /v1/users/{id}/ledger`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::fees::{validate_fees, FeeInput};
use super::payouts::{validate_batch, PayoutInput};
use super::rates::{validate_rates, RateInput};
use super::store::{self, EntryFilter, IngestReport};
use super::{Assets, EntryCursor, EntryKind, LedgerEntry};
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::http::extract::{parse_uuid, IdempotencyKey, JsonBody, QueryParams, RequestId};
use crate::http::mutation::{self, IdempotentRequest, Outcome};
use crate::http::Page;
use crate::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/v1/payouts").route(web::post().to(post_payouts)))
        .service(web::resource("/v1/prices").route(web::post().to(post_prices)))
        .service(web::resource("/v1/fees").route(web::post().to(post_fees)))
        .service(web::resource("/v1/users/{id}/balances").route(web::get().to(get_balances)))
        .service(web::resource("/v1/users/{id}/ledger").route(web::get().to(get_ledger)))
        .service(web::resource("/v1/ledger/summary").route(web::get().to(get_summary)));
}

/// Who may read a user's money: the user, the platform, officers and admins.
const LEDGER_READERS: [Role; 4] = [
    Role::Platform,
    Role::Officer,
    Role::SeniorOfficer,
    Role::Admin,
];

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutBatch {
    /// The settlement system the external ids belong to (default `platform`).
    #[validate(length(min = 1, max = 100))]
    pub source: Option<String>,
    /// 1 to 10,000 payouts, written all or nothing.
    pub payouts: Vec<PayoutInput>,
}

/// Record a batch of payouts (platform). All rows are checked first; one bad row rejects the
/// batch and every bad row is listed. Re-sending a stored payout is a no-op.
#[utoipa::path(post, path = "/v1/payouts", tag = "ledger", request_body = PayoutBatch,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 200, body = IngestReport), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_payouts(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Platform])?;
    let batch: PayoutBatch = body.parse()?;
    let request = IdempotentRequest::new(&caller, idempotency_key, "POST", "/v1/payouts", &batch);
    let source = batch
        .source
        .clone()
        .unwrap_or_else(|| "platform".to_string());
    let assets = assets(&state).await?;
    let payouts =
        validate_batch(&batch.payouts, &assets, crate::db::now()).map_err(AppError::Validation)?;
    let actor = caller.actor();
    let staleness = state.price_staleness;
    mutation::run(&state.db, request, move |connection| {
        let report = store::ingest_payouts(
            connection,
            &source,
            payouts.clone(),
            &actor,
            Some(request_id.0.clone()),
            staleness,
        )?;
        Outcome::new(StatusCode::OK, &report)
    })
    .await
}

/// The user id of the path, if the caller may read that user's money.
fn readable_user(caller: &Caller, path: web::Path<String>) -> Result<String, AppError> {
    let user_id = parse_uuid("id", &path.into_inner())?;
    caller.require_self_or(&user_id, &LEDGER_READERS)?;
    Ok(user_id)
}

/// Runs a read about an existing user (404 otherwise), with the asset scales to render it.
async fn read_for_user<T, F>(
    state: &AppState,
    user_id: &str,
    read: F,
) -> Result<(Assets, T), AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut crate::db::DbConnection) -> Result<T, AppError> + Send + 'static,
{
    let user_id = user_id.to_string();
    state
        .db
        .run(move |connection| {
            crate::users::store::require_exists(connection, &user_id)?;
            Ok((store::load_assets(connection)?, read(connection)?))
        })
        .await
}

async fn assets(state: &AppState) -> Result<Assets, AppError> {
    state
        .db
        .run(|connection| Ok(store::load_assets(connection)?))
        .await
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateBatch {
    /// Where the rates come from, e.g. `coingecko` or `ecb`.
    #[validate(length(min = 1, max = 100))]
    pub source: String,
    pub rates: Vec<RateInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RateReport {
    pub inserted: usize,
    pub unchanged: usize,
}

/// Load asset→USD prices and USD→fiat rates (platform, admin).
#[utoipa::path(post, path = "/v1/prices", tag = "ledger", request_body = RateBatch,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 200, body = RateReport), (status = 409), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_prices(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Platform, Role::Admin])?;
    let batch: RateBatch = body.parse()?;
    let request = IdempotentRequest::new(&caller, idempotency_key, "POST", "/v1/prices", &batch);
    let assets = assets(&state).await?;
    let rates =
        validate_rates(&batch.rates, &assets, crate::db::now()).map_err(AppError::Validation)?;
    let actor = caller.actor();
    let source = batch.source.clone();
    mutation::run(&state.db, request, move |connection| {
        let (inserted, unchanged) = store::insert_rates(connection, &rates, &source)?;
        if inserted > 0 {
            crate::audit::store::append(
                connection,
                crate::audit::NewAuditEntry::new(
                    actor.clone(),
                    "rates.load",
                    "rates",
                    &source,
                    Some(request_id.0.clone()),
                )
                .details(serde_json::json!({ "inserted": inserted, "unchanged": unchanged })),
            )?;
        }
        Outcome::new(
            StatusCode::OK,
            &RateReport {
                inserted,
                unchanged,
            },
        )
    })
    .await
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeBatch {
    /// 1 to 1,000 fees, written all or nothing.
    pub fees: Vec<FeeInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeeReport {
    /// The ledger sequence numbers of the fee entries, in the order sent.
    pub entries: Vec<i64>,
}

/// Charge fees to users' wallets (platform): electricity, maintenance or hashrate rental. Each
/// is a `fee` entry from the user's available balance to the platform's fees account; a fee
/// larger than the balance rejects the batch, naming the row.
#[utoipa::path(post, path = "/v1/fees", tag = "ledger", request_body = FeeBatch,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 200, body = FeeReport), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn post_fees(
    state: web::Data<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Platform])?;
    let batch: FeeBatch = body.parse()?;
    let request = IdempotentRequest::new(&caller, idempotency_key, "POST", "/v1/fees", &batch);
    let assets = assets(&state).await?;
    let fees =
        validate_fees(&batch.fees, &assets, crate::db::now()).map_err(AppError::Validation)?;
    let actor = caller.actor();
    mutation::run(&state.db, request, move |connection| {
        let mut entries = Vec::with_capacity(fees.len());
        for (index, fee) in fees.iter().cloned().enumerate() {
            let rename = |error: AppError| match error {
                AppError::Validation(errors) => AppError::Validation(
                    errors
                        .into_iter()
                        .map(|mut error| {
                            error.field = format!("fees[{index}].{}", error.field);
                            error
                        })
                        .collect(),
                ),
                AppError::NotFound(detail) => AppError::invalid_field(
                    format!("fees[{index}].user_id"),
                    "unknown_user",
                    detail,
                ),
                other => other,
            };
            crate::users::store::require_exists(connection, &fee.user_id).map_err(rename)?;
            let transfer = store::Transfer {
                kind: EntryKind::Fee,
                user_id: fee.user_id,
                asset: fee.asset,
                amount: fee.amount,
                occurred_at: fee.occurred_at,
                to_user: false,
                reason: Some(fee.purpose),
            };
            entries.push(
                store::record(connection, transfer, &actor)
                    .map_err(rename)?
                    .seq,
            );
        }
        Outcome::new(StatusCode::OK, &FeeReport { entries })
    })
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Balance {
    pub asset: String,
    /// Withdrawable now.
    pub available: String,
    /// On hold for withdrawals in flight.
    pub held: String,
    pub total: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Balances {
    pub user_id: String,
    pub balances: Vec<Balance>,
}

/// A user's balances per asset (the user, the platform, officers, admins).
#[utoipa::path(get, path = "/v1/users/{id}/balances", tag = "ledger",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = Balances), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub async fn get_balances(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let user_id = readable_user(&caller, path)?;
    let id = user_id.clone();
    let (assets, rows) = read_for_user(&state, &user_id, move |connection| {
        Ok(store::user_balances(connection, &id)?)
    })
    .await?;
    let balances = rows
        .into_iter()
        .filter_map(|(code, available, held)| {
            let asset = assets.get(&code)?;
            Some(Balance {
                available: asset.from_atoms(available).to_string(),
                held: asset.from_atoms(held).to_string(),
                total: asset.from_atoms(available + held).to_string(),
                asset: code,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(Balances { user_id, balances }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    pub asset: Option<String>,
    pub kind: Option<EntryKind>,
    /// RFC 3339, inclusive, on the time the entry occurred.
    pub from: Option<DateTime<Utc>>,
    /// RFC 3339, exclusive.
    pub to: Option<DateTime<Utc>>,
    /// 1 to 500, default 100.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One entry as a user's statement shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    pub seq: i64,
    pub transaction_id: String,
    pub kind: EntryKind,
    pub asset: String,
    /// Positive when it adds to the user's balance, negative when it takes from it.
    pub amount: String,
    pub debit_account: String,
    pub credit_account: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub occurred_at: NaiveDateTime,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub recorded_at: NaiveDateTime,
    pub external_id: Option<String>,
    pub order_id: Option<String>,
    pub facility_id: Option<String>,
    /// `priced`, `stale_price` or `no_price` for payouts.
    pub valuation: Option<String>,
    pub fmv_usd: Option<String>,
    pub usd_price: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub price_at: Option<NaiveDateTime>,
    pub reason: Option<String>,
    pub reverses_seq: Option<i64>,
    pub hash: String,
}

fn entry_view(entry: LedgerEntry, assets: &Assets, user_id: &str) -> EntryView {
    let scale = assets.get(&entry.asset).map(|a| a.scale).unwrap_or(0);
    let owned_prefix = format!("user:{user_id}:");
    let signed = if entry.debit_account.starts_with(&owned_prefix)
        && !entry.credit_account.starts_with(&owned_prefix)
    {
        -entry.amount
    } else {
        entry.amount
    };
    EntryView {
        seq: entry.seq,
        transaction_id: entry.transaction_id,
        kind: entry.kind,
        amount: Decimal::from_i128_with_scale(i128::from(signed), scale).to_string(),
        asset: entry.asset,
        debit_account: entry.debit_account,
        credit_account: entry.credit_account,
        occurred_at: entry.occurred_at,
        recorded_at: entry.recorded_at,
        external_id: entry.external_id,
        order_id: entry.order_id,
        facility_id: entry.facility_id,
        valuation: entry.valuation,
        fmv_usd: entry.fmv_usd,
        usd_price: entry.usd_price,
        price_at: entry.price_at,
        reason: entry.reason,
        reverses_seq: entry.reverses_seq,
        hash: entry.hash,
    }
}

/// A user's ledger entries, newest first by the time they occurred, with their valuation (the
/// user, the platform, officers, admins).
#[utoipa::path(get, path = "/v1/users/{id}/ledger", tag = "ledger",
    params(("id" = String, Path, description = "User id"), LedgerQuery),
    responses((status = 200, body = Page<EntryView>), (status = 400), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub async fn get_ledger(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: QueryParams<LedgerQuery>,
) -> Result<HttpResponse, AppError> {
    let user_id = readable_user(&caller, path)?;
    let query = query.into_inner()?;
    let limit = crate::http::page_limit(query.limit)?;
    let after = crate::http::parse_cursor(query.cursor.as_deref(), EntryCursor::parse)?;
    let filter = EntryFilter {
        user_id: Some(user_id.clone()),
        asset: query.asset,
        kind: query.kind,
        from: query.from.map(|t| t.naive_utc()),
        to: query.to.map(|t| t.naive_utc()),
        after,
        limit,
    };
    let (assets, entries) = read_for_user(&state, &user_id, move |connection| {
        store::entries(connection, &filter)
    })
    .await?;
    let views: Vec<EntryView> = entries
        .into_iter()
        .map(|entry| entry_view(entry, &assets, &user_id))
        .collect();
    Ok(HttpResponse::Ok().json(Page::new(views, limit, |view| {
        EntryCursor::of(view.occurred_at, view.seq).to_string()
    })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    /// First local date, inclusive (YYYY-MM-DD).
    #[param(value_type = String, format = Date)]
    pub from: chrono::NaiveDate,
    /// Last local date, inclusive; at most 366 days after `from`.
    #[param(value_type = String, format = Date)]
    pub to: chrono::NaiveDate,
    /// IANA time zone that decides the days, e.g. Asia/Hong_Kong (default UTC).
    pub tz: Option<String>,
    pub asset: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerSummary {
    pub time_zone: String,
    #[schema(value_type = String, format = Date)]
    pub from: chrono::NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: chrono::NaiveDate,
    pub days: Vec<super::summary::DaySummary>,
}

/// Ledger totals per asset and local day (officers, admins).
#[utoipa::path(get, path = "/v1/ledger/summary", tag = "ledger", params(SummaryQuery),
    responses((status = 200, body = LedgerSummary), (status = 400, body = crate::error::Problem), (status = 403)),
    security(("bearer" = [])))]
pub async fn get_summary(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<SummaryQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Officer, Role::SeniorOfficer, Role::Admin])?;
    let query = query.into_inner()?;
    let zone_name = query.tz.unwrap_or_else(|| "UTC".to_string());
    let zone: chrono_tz::Tz = zone_name.parse().map_err(|_| {
        AppError::bad_field("tz", format!("`{zone_name}` is not an IANA time zone"))
    })?;
    if query.to < query.from || (query.to - query.from).num_days() > 366 {
        return Err(AppError::bad_field(
            "to",
            "must be on or after `from` and at most 366 days later",
        ));
    }
    // The UTC instants bounding the local days (the earliest instant of each local date).
    let start_of = |date: chrono::NaiveDate| -> Result<NaiveDateTime, AppError> {
        use chrono::TimeZone;
        let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
        zone.from_local_datetime(&midnight)
            .earliest()
            .map(|local| local.naive_utc())
            .ok_or_else(|| AppError::bad_request("the day has no start in this zone"))
    };
    let from = start_of(query.from)?;
    let to = start_of(query.to.succ_opt().unwrap_or(query.to))?;
    let asset = query.asset.clone();
    let (assets, rows) = state
        .db
        .run(move |connection| {
            Ok((
                store::load_assets(connection)?,
                store::summary_rows(connection, from, to, asset.as_deref())?,
            ))
        })
        .await?;
    Ok(HttpResponse::Ok().json(LedgerSummary {
        time_zone: zone_name,
        from: query.from,
        to: query.to,
        days: super::summary::summarize(rows, zone, &assets),
    }))
}
