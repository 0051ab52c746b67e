//! Fees the platform charges a user's wallet (electricity, maintenance, hashrate rental): costs
//! the tax computation may deduct.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::payouts::parse_instant;
use super::Assets;
use crate::error::FieldError;

pub const MAX_FEES: usize = 1_000;

/// What a fee is for, printed on statements.
const PURPOSES: [&str; 4] = ["electricity", "maintenance", "hashrate_rental", "platform"];

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeInput {
    pub user_id: String,
    pub asset: String,
    /// Decimal string with at most the asset's scale in decimals.
    pub amount: String,
    /// RFC 3339 with a zone.
    pub occurred_at: String,
    /// `electricity`, `maintenance`, `hashrate_rental` or `platform`.
    pub purpose: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidFee {
    pub user_id: String,
    pub asset: String,
    pub amount: i64,
    pub occurred_at: NaiveDateTime,
    pub purpose: String,
}

/// Checks every fee; the errors name each bad row's field (`fees[3].amount`).
pub fn validate_fees(
    rows: &[FeeInput],
    assets: &Assets,
    now: NaiveDateTime,
) -> Result<Vec<ValidFee>, Vec<FieldError>> {
    if rows.is_empty() || rows.len() > MAX_FEES {
        return Err(vec![FieldError::new(
            "fees",
            "batch_size",
            format!("must hold 1 to {MAX_FEES} fees, got {}", rows.len()),
        )]);
    }
    let mut errors = Vec::new();
    let mut valid = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let field = |name: &str| format!("fees[{index}].{name}");
        let before = errors.len();
        if uuid::Uuid::parse_str(&row.user_id).is_err() {
            errors.push(FieldError::new(
                field("user_id"),
                "invalid_id",
                "not a UUID",
            ));
        }
        let amount = match assets.get(&row.asset) {
            None => {
                errors.push(FieldError::new(
                    field("asset"),
                    "unknown_asset",
                    format!("unknown asset `{}`", row.asset),
                ));
                None
            }
            Some(asset) => match asset.parse_amount(&row.amount) {
                Ok(atoms) => Some(atoms),
                Err(error) => {
                    errors.push(FieldError::new(
                        field("amount"),
                        "invalid_amount",
                        error.to_string(),
                    ));
                    None
                }
            },
        };
        let occurred_at = match parse_instant(&row.occurred_at) {
            Ok(at) if at <= now => Some(at),
            Ok(_) => {
                errors.push(FieldError::new(
                    field("occurred_at"),
                    "in_future",
                    "is in the future",
                ));
                None
            }
            Err(message) => {
                errors.push(FieldError::new(
                    field("occurred_at"),
                    "invalid_time",
                    message,
                ));
                None
            }
        };
        if !PURPOSES.contains(&row.purpose.as_str()) {
            errors.push(FieldError::new(
                field("purpose"),
                "unknown_purpose",
                format!("must be one of {}", PURPOSES.join(", ")),
            ));
        }
        if let (Some(amount), Some(occurred_at), true) =
            (amount, occurred_at, errors.len() == before)
        {
            valid.push(ValidFee {
                user_id: row.user_id.to_lowercase(),
                asset: row.asset.clone(),
                amount,
                occurred_at,
                purpose: row.purpose.clone(),
            });
        }
    }
    if errors.is_empty() {
        Ok(valid)
    } else {
        Err(errors)
    }
}
