//! `POST /v1/withdrawals` (the platform asks; the gate answers in the same request) and
//! `GET /v1/withdrawals/{id}`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::address::{self, Network};
use super::service::{Gate, Request, WithdrawalView};
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::http::extract::{parse_uuid, IdempotencyKey, JsonBody, RequestId};
use crate::http::mutation::{self, IdempotentRequest, Outcome};
use crate::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/v1/withdrawals").route(web::post().to(request_withdrawal)))
        .service(web::resource("/v1/withdrawals/{id}").route(web::get().to(get_withdrawal)));
}

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
    let network = Network::parse(&body.network).ok_or_else(|| {
        AppError::invalid_field("network", "one_of", "must be bitcoin, ethereum or tron")
    })?;
    address::validate(&body.asset, network, &body.address).map_err(|error| {
        let field = if matches!(error, address::AddressError::WrongNetwork { .. }) {
            "network"
        } else {
            "address"
        };
        AppError::invalid_field(field, "invalid_address", error.to_string())
    })?;
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
    mutation::run(&state.db, idempotent, move |connection| {
        let request = Request {
            user_id: user_id.clone(),
            asset: body.asset.clone(),
            amount: body.amount.clone(),
            network: network.as_str().to_string(),
            address: body.address.clone(),
            beneficiary: beneficiary.clone(),
            beneficiary_complete,
        };
        let view =
            gate(&app_state).request(connection, &request, &actor, Some(request_id.0.clone()))?;
        Outcome::new(StatusCode::CREATED, &view)
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
            WithdrawalView::from_row(row, &assets)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}
