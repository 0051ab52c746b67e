//! One withdrawal request through the gate, inside the caller's transaction: the facts are
//! gathered under the user's lock, the decision taken, and the decision stored with, for an
//! approved or held withdrawal, the amount moved to "withdrawal in flight" in the ledger in the
//! same transaction (by the returned [`DecisionWrites`], which the caller writes last).

use chrono::NaiveDateTime;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::gate::{self, Decision, Facts, Reason};
use super::store::{self, GateReads, WithdrawalRow};
use crate::aml::monitoring::service::{self as monitoring, History, Subject};
use crate::aml::monitoring::store::Alert;
use crate::audit::{store as audit, Actor, NewAuditEntry};
use crate::crypto::FieldCipher;
use crate::db::riding::{execute_all, RidingWrite};
use crate::db::DbConnection;
use crate::error::AppError;
use crate::jurisdiction::Jurisdictions;
use crate::kyc::{effective_tier, Tier};
use crate::ledger::store::{self as ledger, Transfer};
use crate::ledger::{Account, Asset, Assets, EntryKind};

/// What the gate needs beyond the connection.
#[derive(Clone, Copy)]
pub struct Gate<'a> {
    pub cipher: &'a FieldCipher,
    pub screener: &'a crate::aml::screener::Screener,
    pub jurisdictions: &'a Jurisdictions,
    pub price_staleness: chrono::Duration,
}

/// A request whose address passed its checks; the amount is parsed against the asset's scale.
pub struct Request {
    pub user_id: String,
    pub asset: String,
    /// In the asset's units, as sent.
    pub amount: String,
    pub network: String,
    pub address: String,
    /// The beneficiary's data as JSON, when sent.
    pub beneficiary: Option<serde_json::Value>,
    pub beneficiary_complete: bool,
}

/// The decision as the platform reads it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WithdrawalView {
    pub id: String,
    pub user_id: String,
    #[schema(value_type = String)]
    pub decision: Decision,
    pub reasons: Vec<Reason>,
    pub asset: String,
    /// In the asset's units.
    pub amount: String,
    pub network: String,
    pub address: String,
    pub jurisdiction: String,
    pub currency: String,
    /// The amount in the jurisdiction's currency, as the limits counted it.
    pub amount_local: Option<String>,
    pub usd_price: Option<String>,
    pub fx_rate: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub requested_at: NaiveDateTime,
    /// Where the withdrawal is now: `approved`, `held`, `release_pending` (one of two officers
    /// released it), `released` or `rejected`.
    pub status: String,
    /// The officer's review of a held withdrawal, once done.
    pub review: Option<ReviewView>,
    /// The platform's report of the withdrawal on chain, once sent.
    pub settlement: Option<super::settlement::Settlement>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    pub first_reviewer: Option<String>,
    pub reviewed_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub reviewed_at: Option<NaiveDateTime>,
    pub reason: Option<String>,
    pub ledger_seq: Option<i64>,
}

impl WithdrawalView {
    pub fn from_row(row: WithdrawalRow, assets: &Assets) -> Result<Self, AppError> {
        let decimal = |code: &str, atoms: i64| {
            assets
                .get(code)
                .map(|asset| asset.from_atoms(atoms).to_string())
                .unwrap_or_else(|| atoms.to_string())
        };
        Ok(WithdrawalView {
            decision: match row.decision.as_str() {
                "approved" => Decision::Approved,
                "held" => Decision::Held,
                _ => Decision::Rejected,
            },
            reasons: serde_json::from_str(&row.reasons).map_err(AppError::internal)?,
            amount: decimal(&row.asset, row.amount),
            amount_local: row.amount_local.map(|atoms| decimal(&row.currency, atoms)),
            id: row.id,
            user_id: row.user_id,
            asset: row.asset,
            network: row.network,
            address: row.address,
            jurisdiction: row.jurisdiction,
            currency: row.currency,
            usd_price: row.usd_price,
            fx_rate: row.fx_rate,
            requested_at: row.requested_at,
            review: (row.first_reviewer.is_some() || row.reviewed_by.is_some()).then_some(
                ReviewView {
                    first_reviewer: row.first_reviewer,
                    reviewed_by: row.reviewed_by,
                    reviewed_at: row.reviewed_at,
                    reason: row.review_reason,
                    ledger_seq: row.outcome_seq,
                },
            ),
            status: row.status,
            settlement: None,
        })
    }
}

/// How the amount was valued in the local currency.
struct LocalValue {
    amount: Decimal,
    usd_price: Decimal,
    fx_rate: Decimal,
    price_at: NaiveDateTime,
}

impl Gate<'_> {
    fn value(
        &self,
        asset_amount: Decimal,
        asset: &str,
        currency: (&str, u32),
        reads: &GateReads,
        now: NaiveDateTime,
    ) -> Result<Option<LocalValue>, AppError> {
        let staleness = self.price_staleness;
        let Some((usd_price, price_at)) =
            ledger::rate_in_force(asset, "USD", reads.usd_price.clone(), now, staleness)?
        else {
            return Ok(None);
        };
        let Some((fx_rate, _)) =
            ledger::rate_in_force("USD", currency.0, reads.fx_rate.clone(), now, staleness)?
        else {
            return Ok(None);
        };
        let amount = (asset_amount * usd_price * fx_rate)
            .round_dp_with_strategy(currency.1, RoundingStrategy::MidpointAwayFromZero);
        Ok(Some(LocalValue {
            amount,
            usd_price,
            fx_rate,
            price_at,
        }))
    }

    /// Decides the request; the caller then writes the returned decision in the same
    /// transaction, as its last writes. The gate's reads find rows by key, so the caller's
    /// transaction caches their plans ([`crate::db::Plans::Cached`]): planned anew for each
    /// request, planning took 1.0 ms of PostgreSQL's time a decision against 1.1 ms of execution
    /// (pg_stat_statements).
    pub fn request(
        &self,
        connection: &mut DbConnection,
        request: &Request,
        actor: &Actor,
        request_id: Option<String>,
    ) -> Result<(WithdrawalView, DecisionWrites), AppError> {
        let user = store::lock_user(connection, &request.user_id)?.ok_or_else(|| {
            AppError::invalid_field(
                "user_id",
                "unknown_user",
                format!("no user {}", request.user_id),
            )
        })?;
        let (profile, account_opened_at) = (user.profile, user.account_opened_at);
        let now = crate::db::now();
        let code = profile
            .as_ref()
            .map(|profile| profile.jurisdiction.clone())
            .unwrap_or(user.residence);
        let jurisdiction = self.jurisdictions.get(&code).ok_or_else(|| {
            AppError::invalid_field(
                "user_id",
                "unsupported_jurisdiction",
                format!("hashgate has no rules for the user's jurisdiction {code}"),
            )
        })?;
        let reads = store::gate_reads(
            connection,
            &request.user_id,
            (&request.asset, &jurisdiction.currency),
            (&request.network, &request.address),
            now,
        )?;
        let asset = Asset {
            code: request.asset.clone(),
            scale: reads.asset_scale.ok_or_else(|| {
                AppError::invalid_field(
                    "asset",
                    "unknown_asset",
                    format!("`{}` is not a known asset", request.asset),
                )
            })?,
        };
        let amount = asset.parse_amount(&request.amount).map_err(|error| {
            AppError::invalid_field("amount", "invalid_amount", error.to_string())
        })?;
        let currency_scale = reads.currency_scale.unwrap_or(2);
        let approved = profile
            .as_ref()
            .map(|profile| profile.approved_tier())
            .unwrap_or(Tier::REGISTERED);
        let lapsed = profile
            .as_ref()
            .is_some_and(|p| p.review_lapsed_at.is_some());
        let tier = effective_tier(approved, lapsed, jurisdiction.kyc.lapsed_tier);
        let asset_amount = asset.from_atoms(amount);
        let local = self.value(
            asset_amount,
            &request.asset,
            (&jurisdiction.currency, currency_scale),
            &reads,
            now,
        )?;
        // One read serves the limits (local day and month) and the rules (their look-back).
        let (day, month) = gate::local_windows(now, jurisdiction.time_zone);
        let look_back = now - jurisdiction.monitoring.look_back();
        let past = store::past_activity(
            connection,
            &request.user_id,
            &request.asset,
            (look_back.min(month.0), month.1.max(now)),
            (look_back, now),
        )?;
        let (spent_today, spent_this_month) = gate::spent_in_windows(&past.withdrawals, day, month);
        let from_atoms =
            |atoms: i64| Decimal::from_i128_with_scale(i128::from(atoms), currency_scale);
        let (spent_today, spent_this_month) =
            (from_atoms(spent_today), from_atoms(spent_this_month));
        let available_atoms = reads.available_atoms;
        let address_sanctioned = !self
            .screener
            .index_at(connection, reads.lists_loaded)?
            .screen_address(&request.address)
            .is_empty();
        let address_book = reads.address_book;
        let rule_hits = monitoring::rule_hits(
            jurisdiction,
            currency_scale,
            &Subject {
                user_id: &request.user_id,
                asset: &request.asset,
                address: &request.address,
                amount_local: local.as_ref().map(|value| value.amount),
                amount_atoms: amount,
                available_atoms,
                requested_at: now,
                account_opened_at,
                risk_level: profile.as_ref().map(|p| p.risk_level.as_str()),
                next_review_at: profile.as_ref().map(|p| p.next_review_at),
            },
            &History {
                counted: past.withdrawals,
                payouts: past.payouts,
                address_used_before: reads.address_used_before,
                last_request_at: reads.last_request_at,
            },
        );
        let amount_text = asset_amount.to_string();
        let available_text = asset.from_atoms(available_atoms).to_string();
        let (decision, reasons) = gate::decide(&Facts {
            effective_tier: tier,
            review_lapsed: lapsed,
            limits: jurisdiction.kyc.tier(tier).limits,
            currency: &jurisdiction.currency,
            amount_local: local.as_ref().map(|value| value.amount),
            spent_today,
            spent_this_month,
            available_atoms,
            amount_atoms: amount,
            amount_text: &amount_text,
            available_text: &available_text,
            asset: &request.asset,
            address_sanctioned,
            user_hits: usize::try_from(reads.open_sanctions_hits).unwrap_or(usize::MAX),
            travel_rule_threshold: jurisdiction.withdrawals.travel_rule_threshold,
            beneficiary_given: request.beneficiary_complete,
            address_book,
            unlisted_address: jurisdiction.withdrawals.unlisted_address,
            rule_hits: &rule_hits,
        });
        let id = uuid::Uuid::new_v4().to_string();
        // The hold is written last (see `DecisionWrites`); the row names it by its transaction.
        let hold = (decision != Decision::Rejected).then(|| Hold {
            transfer: Transfer {
                kind: EntryKind::WithdrawalHold,
                user_id: request.user_id.clone(),
                asset: request.asset.clone(),
                amount,
                occurred_at: now,
                to_user: false,
                reason: Some(format!("withdrawal {id}")),
            },
            transaction_id: uuid::Uuid::new_v4().to_string(),
        });
        let amount_local = local
            .as_ref()
            .map(|value| {
                (value.amount * Decimal::from(10i64.pow(currency_scale)))
                    .trunc()
                    .try_into()
                    .map_err(|_| AppError::bad_field("amount", "too large"))
            })
            .transpose()?;
        let row = WithdrawalRow {
            id: id.clone(),
            user_id: request.user_id.clone(),
            jurisdiction: jurisdiction.code.clone(),
            asset: request.asset.clone(),
            amount,
            network: request.network.clone(),
            address: request.address.clone(),
            decision: decision.as_str().to_string(),
            reasons: serde_json::to_string(&reasons).map_err(AppError::internal)?,
            currency: jurisdiction.currency.clone(),
            amount_local,
            usd_price: local.as_ref().map(|value| value.usd_price.to_string()),
            fx_rate: local.as_ref().map(|value| value.fx_rate.to_string()),
            price_at: local.as_ref().map(|value| value.price_at),
            beneficiary_encrypted: request
                .beneficiary
                .as_ref()
                .map(|data| {
                    self.cipher
                        .encrypt(&data.to_string(), &format!("withdrawals.beneficiary:{id}"))
                })
                .transpose()?,
            hold_transaction_id: hold.as_ref().map(|hold| hold.transaction_id.clone()),
            requested_at: now,
            requested_by: actor.id.clone(),
            status: decision.as_str().to_string(),
            first_reviewer: None,
            first_reviewed_at: None,
            reviewed_by: None,
            reviewed_at: None,
            review_reason: None,
            outcome_seq: None,
        };
        let alerts = monitoring::alerts_for(
            &rule_hits,
            &request.user_id,
            &jurisdiction.code,
            &id,
            "withdrawal",
        );
        let audit = NewAuditEntry::new(
            actor.clone(),
            "withdrawal.request",
            "withdrawal",
            &id,
            request_id,
        )
        .details(serde_json::json!({
            "user_id": request.user_id,
            "asset": request.asset,
            "amount": amount_text,
            "decision": decision,
            "reasons": reasons.iter().map(|reason| &reason.code).collect::<Vec<_>>(),
            "held_account": hold.as_ref().map(|_| Account::Held(request.user_id.clone()).key()),
        }));
        let currency = Asset {
            code: jurisdiction.currency.clone(),
            scale: currency_scale,
        };
        let view = WithdrawalView::from_row(row.clone(), &Assets::new([asset, currency]))?;
        Ok((
            view,
            DecisionWrites {
                row,
                alerts,
                hold,
                actor: actor.clone(),
                audit,
            },
        ))
    }
}

/// The ledger hold of an approved or held withdrawal.
struct Hold {
    transfer: Transfer,
    transaction_id: String,
}

/// What a decision writes, left for last (`Outcome::with_last_writes`): its row and alerts, then
/// its appends to the ledger and the audit chains. Each append locks its chain's head until the
/// commit, and every ledger writer waits for that lock, so the appends come last: the head is
/// then held for them and the commit only. The row, the alerts and the stored response ride with
/// the hold's balance update ([`crate::db::riding`]): on PostgreSQL one round trip where there
/// were three.
pub struct DecisionWrites {
    row: WithdrawalRow,
    alerts: Vec<Alert>,
    hold: Option<Hold>,
    actor: Actor,
    audit: NewAuditEntry,
}

impl DecisionWrites {
    /// Writes the decision, with `riding` (the stored response) taken along.
    pub fn write(
        self,
        connection: &mut DbConnection,
        riding: &[&dyn RidingWrite],
    ) -> Result<(), AppError> {
        let DecisionWrites {
            row,
            alerts,
            hold,
            actor,
            audit,
        } = self;
        let writes: Vec<&dyn RidingWrite> = std::iter::once(&row as &dyn RidingWrite)
            .chain(alerts.iter().map(|alert| alert as &dyn RidingWrite))
            .chain(riding.iter().copied())
            .collect();
        match hold {
            Some(Hold {
                transfer,
                transaction_id,
            }) => {
                ledger::record_audited_as(
                    connection,
                    transfer,
                    &actor,
                    transaction_id,
                    audit,
                    &writes,
                )?;
            }
            None => {
                execute_all(connection, &writes)?;
                audit::append(connection, audit)?;
            }
        }
        Ok(())
    }
}
