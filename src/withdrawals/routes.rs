//! `POST /v1/withdrawals` (the platform asks; the gate answers in the same request) and
//! `GET /v1/withdrawals/{id}`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::address::{self, Network};
use super::addresses::{AddressBook, AddressEntry, NewAddress};
use super::review::{Review, Reviewer, Verdict};
use super::service::{Gate, Request, WithdrawalView};
use crate::auth::{Caller, Role};
use crate::db::Plans;
use crate::error::AppError;
use crate::http::extract::{parse_uuid, IdempotencyKey, JsonBody, QueryParams, RequestId};
use crate::http::mutation::{self, IdempotentRequest, Outcome};
use crate::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/v1/withdrawals")
                .route(web::post().to(request_withdrawal))
                .route(web::get().to(list_withdrawals)),
        )
        .service(web::resource("/v1/withdrawals/{id}").route(web::get().to(get_withdrawal)))
        .service(web::resource("/v1/withdrawals/{id}/release").route(web::post().to(release)))
        .service(web::resource("/v1/withdrawals/{id}/reject").route(web::post().to(reject)))
        .service(web::resource("/v1/withdrawals/{id}/settlement").route(web::post().to(settle)))
        .service(
            web::resource("/v1/users/{id}/addresses")
                .route(web::get().to(list_addresses))
                .route(web::post().to(add_address)),
        )
        .service(
            web::resource("/v1/users/{id}/addresses/{address_id}")
                .route(web::delete().to(remove_address)),
        )
        .service(
            web::resource("/v1/users/{id}/addresses/{address_id}/approval")
                .route(web::post().to(approve_address)),
        );
}

const OFFICERS: &[Role] = &[Role::Officer, Role::SeniorOfficer];

fn gate(state: &AppState) -> Gate<'_> {
    Gate {
        cipher: &state.cipher,
        screener: &state.screener,
        jurisdictions: &state.jurisdictions,
        price_staleness: state.price_staleness,
    }
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequest {
    #[validate(length(equal = 36))]
    pub user_id: String,
    /// BTC, ETH or USDT.
    #[validate(length(min = 2, max = 10))]
    pub asset: String,
    /// In the asset's units, as a decimal string with no more decimals than the asset has.
    #[validate(length(min = 1, max = 40))]
    pub amount: String,
    /// `bitcoin`, `ethereum` (ETH, ERC-20 USDT) or `tron` (TRC-20 USDT).
    #[validate(length(min = 1, max = 20))]
    pub network: String,
    #[validate(length(min = 14, max = 100))]
    pub address: String,
    /// IVMS101 beneficiary data, required at or above the jurisdiction's travel-rule threshold.
    #[validate(nested)]
    pub beneficiary: Option<Beneficiary>,
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Beneficiary {
    /// The beneficiary's full name (IVMS101 naturalPerson.name).
    #[validate(custom(function = "crate::kyc::application::validate_person_name"))]
    pub name: String,
    /// `hosted` (at a virtual-asset service provider) or `self_hosted`.
    #[validate(custom(function = "validate_wallet"))]
    pub wallet: String,
    /// The beneficiary's provider, required for a hosted wallet.
    #[validate(length(min = 2, max = 200))]
    pub vasp_name: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[validate(custom(function = "crate::users::validate_country"))]
    pub country: Option<String>,
}

fn validate_wallet(wallet: &str) -> Result<(), validator::ValidationError> {
    match wallet {
        "hosted" | "self_hosted" => Ok(()),
        _ => Err(validator::ValidationError::new("one_of")
            .with_message("must be hosted or self_hosted".into())),
    }
}

/// Ask to withdraw (platform; `Idempotency-Key` required). The answer, in the same request, is
/// `approved`, `held` (for an officer) or `rejected`, with every reason as a code and a
/// sentence. Approved and held amounts move to "withdrawal in flight" in the ledger at once.
#[utoipa::path(post, path = "/v1/withdrawals", tag = "withdrawals",
    request_body = WithdrawalRequest,
    params(("Idempotency-Key" = String, Header, description = "Required: a retry returns the same decision and moves no money")),
    responses((status = 201, body = WithdrawalView),
              (status = 400, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn request_withdrawal(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Platform])?;
    if idempotency_key.0.is_none() {
        return Err(AppError::bad_field(
            "Idempotency-Key",
            "a withdrawal needs an Idempotency-Key header, so that a retry never moves money twice",
        ));
    }
    let body: WithdrawalRequest = body.parse()?;
    let user_id = parse_uuid("user_id", &body.user_id)?;
    let network = parse_network(&body.network)?;
    check_address(Some(&body.asset), network, &body.address)?;
    let beneficiary_complete = body.beneficiary.as_ref().is_some_and(|beneficiary| {
        beneficiary.wallet == "self_hosted" || beneficiary.vasp_name.is_some()
    });
    let idempotent =
        IdempotentRequest::new(&caller, idempotency_key, "POST", "/v1/withdrawals", &body);
    let actor = caller.actor();
    let app_state = state.clone();
    let beneficiary = body
        .beneficiary
        .as_ref()
        .map(|beneficiary| serde_json::to_value(beneficiary).map_err(AppError::internal))
        .transpose()?;
    mutation::run_planned(&state.db, idempotent, Plans::Cached, move |connection| {
        let request = Request {
            user_id: user_id.clone(),
            asset: body.asset.clone(),
            amount: body.amount.clone(),
            network: network.as_str().to_string(),
            address: body.address.clone(),
            beneficiary: beneficiary.clone(),
            beneficiary_complete,
        };
        let (view, writes) =
            gate(&app_state).request(connection, &request, &actor, Some(request_id.0.clone()))?;
        Ok(
            Outcome::new(StatusCode::CREATED, &view)?.with_last_writes(Box::new(
                move |connection, riding| writes.write(connection, riding),
            )),
        )
    })
    .await
}

/// A withdrawal and its decision (platform, officers).
#[utoipa::path(get, path = "/v1/withdrawals/{id}", tag = "withdrawals",
    params(("id" = String, Path, description = "Withdrawal id")),
    responses((status = 200, body = WithdrawalView), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_withdrawal(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Platform, Role::Officer, Role::SeniorOfficer])?;
    let id = parse_uuid("id", &path.into_inner())?;
    let view = state
        .db
        .run(move |connection| {
            let row = super::store::find(connection, &id)?
                .ok_or_else(|| AppError::NotFound(format!("no withdrawal {id}")))?;
            let assets = crate::ledger::store::load_assets(connection)?;
            let mut view = WithdrawalView::from_row(row, &assets)?;
            view.settlement = super::settlement::find(connection, &id)?;
            Ok(view)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

fn parse_network(network: &str) -> Result<Network, AppError> {
    Network::parse(network).ok_or_else(|| {
        AppError::invalid_field("network", "one_of", "must be bitcoin, ethereum or tron")
    })
}

/// The address's checksum for its network, and (for a withdrawal) the asset on that network.
fn check_address(asset: Option<&str>, network: Network, text: &str) -> Result<(), AppError> {
    let checked = match asset {
        Some(asset) => address::validate(asset, network, text),
        None => address::validate_format(network, text),
    };
    checked.map_err(|error| {
        let field = if matches!(error, address::AddressError::WrongNetwork { .. }) {
            "network"
        } else {
            "address"
        };
        AppError::invalid_field(field, "invalid_address", error.to_string())
    })
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalListQuery {
    /// `held` (the default: the review queue), `release_pending`, `approved`, `released`,
    /// `rejected`.
    pub status: Option<String>,
    pub user_id: Option<String>,
    pub limit: Option<i64>,
}

/// Withdrawals by status, oldest first: the officers' queue of held withdrawals.
#[utoipa::path(get, path = "/v1/withdrawals", tag = "withdrawals",
    params(("status" = Option<String>, Query, description = "held (default), release_pending, approved, released, rejected"),
           ("user_id" = Option<String>, Query, description = "One user's withdrawals"),
           ("limit" = Option<i64>, Query, description = "At most this many (default 100, at most 500)")),
    responses((status = 200, body = [WithdrawalView])),
    security(("bearer" = [])))]
pub async fn list_withdrawals(
    state: web::Data<AppState>,
    caller: Caller,
    query: QueryParams<WithdrawalListQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require(OFFICERS)?;
    let query = query.into_inner()?;
    let status = query.status.unwrap_or_else(|| "held".into());
    if ![
        "held",
        "release_pending",
        "approved",
        "released",
        "rejected",
    ]
    .contains(&status.as_str())
    {
        return Err(AppError::invalid_field(
            "status",
            "one_of",
            "must be held, release_pending, approved, released or rejected",
        ));
    }
    let user_id = query
        .user_id
        .map(|id| parse_uuid("user_id", &id))
        .transpose()?;
    let limit = crate::http::page_limit(query.limit)?;
    let views = state
        .db
        .run(move |connection| {
            let assets = crate::ledger::store::load_assets(connection)?;
            super::store::by_status(connection, &status, user_id.as_deref(), limit)?
                .into_iter()
                .map(|row| WithdrawalView::from_row(row, &assets))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(HttpResponse::Ok().json(views))
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    /// Why: recorded in the audit log and on the withdrawal.
    #[validate(length(min = 3, max = 2000))]
    pub reason: String,
}

/// Release a held withdrawal (officers). Above the jurisdiction's four-eyes amount the first
/// release makes it `release_pending` and a second, senior officer completes it. Release settles
/// the funds in flight; the user is e-mailed and the platform gets `withdrawal.released`.
#[utoipa::path(post, path = "/v1/withdrawals/{id}/release", tag = "withdrawals",
    params(("id" = String, Path, description = "Withdrawal id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = ReviewBody,
    responses((status = 200, body = WithdrawalView), (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn release(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    review(
        state,
        caller,
        request_id,
        idempotency_key,
        path,
        body,
        Verdict::Release,
    )
    .await
}

/// Reject a held withdrawal (officers): the funds return to the user's available balance; the
/// user is e-mailed (without the reason) and the platform gets `withdrawal.rejected`.
#[utoipa::path(post, path = "/v1/withdrawals/{id}/reject", tag = "withdrawals",
    params(("id" = String, Path, description = "Withdrawal id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = ReviewBody,
    responses((status = 200, body = WithdrawalView), (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn reject(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    review(
        state,
        caller,
        request_id,
        idempotency_key,
        path,
        body,
        Verdict::Reject,
    )
    .await
}

async fn review(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
    body: JsonBody,
    verdict: Verdict,
) -> Result<HttpResponse, AppError> {
    caller.require(OFFICERS)?;
    let id = parse_uuid("id", &path.into_inner())?;
    let body: ReviewBody = body.parse()?;
    let action = match verdict {
        Verdict::Release => "release",
        Verdict::Reject => "reject",
    };
    let path = format!("/v1/withdrawals/{id}/{action}");
    let idempotent = IdempotentRequest::new(&caller, idempotency_key, "POST", &path, &body);
    let app_state = state.clone();
    mutation::run(&state.db, idempotent, move |connection| {
        let review = Review {
            cipher: &app_state.cipher,
            jurisdictions: &app_state.jurisdictions,
        };
        let actor = caller.actor();
        let row = review.decide(
            connection,
            &id,
            verdict,
            &Reviewer {
                actor: &actor,
                role: caller.role,
                reason: &body.reason,
                request_id: Some(request_id.0.clone()),
            },
        )?;
        let assets = crate::ledger::store::load_assets(connection)?;
        Outcome::new(StatusCode::OK, &WithdrawalView::from_row(row, &assets)?)
    })
    .await
}

fn address_book(state: &AppState) -> AddressBook<'_> {
    AddressBook {
        cipher: &state.cipher,
        jurisdictions: &state.jurisdictions,
    }
}

/// A user's withdrawal address book, current entries first (platform, the user, officers).
#[utoipa::path(get, path = "/v1/users/{id}/addresses", tag = "withdrawals",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = [AddressEntry])),
    security(("bearer" = [])))]
pub async fn list_addresses(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let user_id = parse_uuid("id", &path.into_inner())?;
    caller.require_self_or(
        &user_id,
        &[Role::Platform, Role::Officer, Role::SeniorOfficer],
    )?;
    let entries = state
        .db
        .run(move |connection| Ok(super::addresses::list(connection, &user_id)?))
        .await?;
    Ok(HttpResponse::Ok().json(entries))
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    /// `bitcoin`, `ethereum` or `tron`.
    #[validate(length(min = 1, max = 20))]
    pub network: String,
    #[validate(length(min = 14, max = 100))]
    pub address: String,
    #[validate(length(min = 1, max = 100))]
    pub label: Option<String>,
}

/// Add a withdrawal address (platform, or the user). It can receive withdrawals after the
/// jurisdiction's cooling-off period, or once an officer approves it; the user is e-mailed.
#[utoipa::path(post, path = "/v1/users/{id}/addresses", tag = "withdrawals",
    params(("id" = String, Path, description = "User id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = AddressBody,
    responses((status = 201, body = AddressEntry), (status = 200, body = AddressEntry, description = "Already in the book"),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn add_address(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    let user_id = parse_uuid("id", &path.into_inner())?;
    caller.require_self_or(&user_id, &[Role::Platform])?;
    let body: AddressBody = body.parse()?;
    let network = parse_network(&body.network)?;
    check_address(None, network, &body.address)?;
    let path = format!("/v1/users/{user_id}/addresses");
    let idempotent = IdempotentRequest::new(&caller, idempotency_key, "POST", &path, &body);
    let app_state = state.clone();
    mutation::run(&state.db, idempotent, move |connection| {
        let (entry, added) = address_book(&app_state).add(
            connection,
            NewAddress {
                user_id: user_id.clone(),
                network: network.as_str().to_string(),
                address: body.address.clone(),
                label: body.label.clone(),
            },
            &caller.actor(),
            Some(request_id.0.clone()),
        )?;
        let status = if added {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Outcome::new(status, &entry)
    })
    .await
}

/// Remove an address from the book (platform, or the user); the user is e-mailed.
#[utoipa::path(delete, path = "/v1/users/{id}/addresses/{address_id}", tag = "withdrawals",
    params(("id" = String, Path, description = "User id"), ("address_id" = String, Path, description = "Entry id")),
    responses((status = 200, body = AddressEntry), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn remove_address(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (user_id, address_id) = path.into_inner();
    let user_id = parse_uuid("id", &user_id)?;
    let address_id = parse_uuid("address_id", &address_id)?;
    caller.require_self_or(&user_id, &[Role::Platform])?;
    let path = format!("/v1/users/{user_id}/addresses/{address_id}");
    let idempotent = IdempotentRequest::new(&caller, idempotency_key, "DELETE", &path, &());
    let app_state = state.clone();
    mutation::run(&state.db, idempotent, move |connection| {
        let entry = address_book(&app_state).remove(
            connection,
            &user_id,
            &address_id,
            &caller.actor(),
            Some(request_id.0.clone()),
        )?;
        Outcome::new(StatusCode::OK, &entry)
    })
    .await
}

/// Let an address receive withdrawals before its cooling-off period ends (officers, with a
/// reason, e.g. after calling the user back).
#[utoipa::path(post, path = "/v1/users/{id}/addresses/{address_id}/approval", tag = "withdrawals",
    params(("id" = String, Path, description = "User id"), ("address_id" = String, Path, description = "Entry id")),
    request_body = ReviewBody,
    responses((status = 200, body = AddressEntry), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn approve_address(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<(String, String)>,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(OFFICERS)?;
    let (user_id, address_id) = path.into_inner();
    let user_id = parse_uuid("id", &user_id)?;
    let address_id = parse_uuid("address_id", &address_id)?;
    let body: ReviewBody = body.parse()?;
    let path = format!("/v1/users/{user_id}/addresses/{address_id}/approval");
    let idempotent = IdempotentRequest::new(&caller, idempotency_key, "POST", &path, &body);
    let app_state = state.clone();
    mutation::run(&state.db, idempotent, move |connection| {
        let entry = address_book(&app_state).approve(
            connection,
            &user_id,
            &address_id,
            &body.reason,
            &caller.actor(),
            Some(request_id.0.clone()),
        )?;
        Outcome::new(StatusCode::OK, &entry)
    })
    .await
}

#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettlementBody {
    /// `broadcast` (with `tx_hash`) or `failed` (with `reason`).
    pub outcome: String,
    /// The transaction hash on the withdrawal's network.
    #[validate(length(min = 64, max = 66))]
    pub tx_hash: Option<String>,
    #[validate(length(min = 3, max = 500))]
    pub reason: Option<String>,
}

/// Report what happened on chain to an approved or released withdrawal (platform;
/// `Idempotency-Key` required). `broadcast` settles an approved withdrawal's funds in flight and
/// keeps the transaction hash; `failed` returns the funds to the user's available balance.
#[utoipa::path(post, path = "/v1/withdrawals/{id}/settlement", tag = "withdrawals",
    params(("id" = String, Path, description = "Withdrawal id"),
           ("Idempotency-Key" = String, Header, description = "Required: a retry moves no money")),
    request_body = SettlementBody,
    responses((status = 200, body = WithdrawalView), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn settle(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, AppError> {
    caller.require(&[Role::Platform])?;
    if idempotency_key.0.is_none() {
        return Err(AppError::bad_field(
            "Idempotency-Key",
            "a settlement report needs an Idempotency-Key header, so that a retry never moves money twice",
        ));
    }
    let id = parse_uuid("id", &path.into_inner())?;
    let body: SettlementBody = body.parse()?;
    let path = format!("/v1/withdrawals/{id}/settlement");
    let idempotent = IdempotentRequest::new(&caller, idempotency_key, "POST", &path, &body);
    mutation::run(&state.db, idempotent, move |connection| {
        let report = match (body.outcome.as_str(), &body.tx_hash, &body.reason) {
            ("broadcast", Some(tx_hash), _) => super::settlement::Report::Broadcast {
                tx_hash: tx_hash.clone(),
            },
            ("broadcast", None, _) => {
                return Err(AppError::invalid_field(
                    "tx_hash",
                    "required",
                    "a broadcast withdrawal needs its transaction hash",
                ))
            }
            ("failed", _, Some(reason)) => super::settlement::Report::Failed {
                reason: reason.clone(),
            },
            ("failed", _, None) => {
                return Err(AppError::invalid_field(
                    "reason",
                    "required",
                    "say why the withdrawal failed",
                ))
            }
            _ => {
                return Err(AppError::invalid_field(
                    "outcome",
                    "one_of",
                    "must be broadcast or failed",
                ))
            }
        };
        let (row, settlement) = super::settlement::report(
            connection,
            &id,
            report,
            &caller.actor(),
            Some(request_id.0.clone()),
        )?;
        let assets = crate::ledger::store::load_assets(connection)?;
        let mut view = WithdrawalView::from_row(row, &assets)?;
        view.settlement = Some(settlement);
        Outcome::new(StatusCode::OK, &view)
    })
    .await
}
