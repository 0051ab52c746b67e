//! Prices and FX rates as the platform sends them.

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::payouts::{parse_instant, MAX_BATCH};
use super::store::NewRate;
use super::{parse_plain_decimal, Assets};
use crate::error::FieldError;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateInput {
    /// e.g. BTC (priced in USD), or USD (for a USD→fiat rate).
    pub base: String,
    /// USD for asset prices; the fiat currency for FX rates.
    pub quote: String,
    /// RFC 3339 with a zone.
    pub as_of: String,
    /// 1 base = rate quote, as a decimal string.
    pub rate: String,
}

/// Checks rate rows: known codes, USD on one side, a positive decimal, a zoned past time.
pub fn validate_rates(
    rows: &[RateInput],
    assets: &Assets,
    now: NaiveDateTime,
) -> Result<Vec<NewRate>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut valid = Vec::new();
    if rows.is_empty() || rows.len() > MAX_BATCH {
        return Err(vec![FieldError::new(
            "rates",
            "batch_size",
            format!("must hold 1 to {} rates", MAX_BATCH),
        )]);
    }
    for (index, row) in rows.iter().enumerate() {
        let mut fail = |field: &str, code: &str, message: String| {
            errors.push(FieldError::new(
                format!("rates[{index}].{field}"),
                code,
                message,
            ));
        };
        for (field, code) in [("base", &row.base), ("quote", &row.quote)] {
            if assets.get(code).is_none() {
                fail(
                    field,
                    "unknown_asset",
                    format!("`{code}` is not a known asset"),
                );
            }
        }
        if row.base != "USD" && row.quote != "USD" || row.base == row.quote {
            fail(
                "quote",
                "unsupported_pair",
                "one side must be USD: asset/USD or USD/fiat".into(),
            );
        }
        let rate = match parse_plain_decimal(&row.rate) {
            Some(rate) if rate > Decimal::ZERO => Some(rate),
            _ => {
                fail(
                    "rate",
                    "invalid_rate",
                    "must be a positive decimal string".into(),
                );
                None
            }
        };
        let as_of = match parse_instant(&row.as_of) {
            Ok(at) if at <= now + chrono::Duration::minutes(5) => Some(at),
            Ok(_) => {
                fail("as_of", "out_of_range", "is in the future".into());
                None
            }
            Err(message) => {
                fail("as_of", "invalid_time", message);
                None
            }
        };
        if let (Some(rate), Some(as_of)) = (rate, as_of) {
            valid.push(NewRate {
                base: row.base.clone(),
                quote: row.quote.clone(),
                as_of,
                rate,
            });
        }
    }
    if errors.is_empty() {
        Ok(valid)
    } else {
        Err(errors)
    }
}
