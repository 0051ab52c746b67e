//! Checking a batch of payouts before anything is written: every bad row is reported at once.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Assets;
use crate::error::FieldError;

pub const MAX_BATCH: usize = 10_000;

/// How far ahead of the server clock a payout may be dated (clock skew).
const FUTURE_TOLERANCE_MINUTES: i64 = 5;

/// A payout as the platform sends it. Amounts are decimal strings, so no float touches them.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutInput {
    pub user_id: String,
    /// Asset code, e.g. BTC or USDT.
    pub asset: String,
    /// Decimal string with at most the asset's scale in decimals, e.g. "0.00012345".
    pub amount: String,
    /// RFC 3339 with a zone, e.g. "2025-12-31T17:00:00Z".
    pub occurred_at: String,
    pub order_id: String,
    pub facility_id: String,
    /// The platform's id of this payout; unique per source.
    pub external_id: String,
}

/// A payout that passed every check that needs no database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPayout {
    pub index: usize,
    pub user_id: String,
    pub asset: String,
    pub amount: i64,
    pub decimal_amount: Decimal,
    pub occurred_at: NaiveDateTime,
    pub order_id: String,
    pub facility_id: String,
    pub external_id: String,
}

/// Parses an RFC 3339 timestamp that carries a zone, as UTC.
pub fn parse_instant(text: &str) -> Result<NaiveDateTime, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|instant| instant.naive_utc())
        .map_err(|_| {
            "must be an RFC 3339 time with a zone, e.g. 2025-12-31T17:00:00Z or 2026-01-01T01:00:00+08:00"
                .to_string()
        })
}

fn identifier(value: &str, max: usize) -> Result<(), String> {
    let length = value.chars().count();
    if length == 0 || length > max || value.trim() != value {
        Err(format!(
            "must be 1 to {max} characters without surrounding spaces"
        ))
    } else {
        Ok(())
    }
}

/// Checks one row. `seen` maps external ids already in the batch to their index.
pub fn validate_row(
    index: usize,
    row: &PayoutInput,
    assets: &Assets,
    now: NaiveDateTime,
    seen: &mut HashMap<String, usize>,
) -> Result<ValidPayout, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, code: &str, message: String| {
        errors.push(FieldError::new(
            format!("payouts[{index}].{field}"),
            code,
            message,
        ));
    };
    let user_id = uuid::Uuid::parse_str(&row.user_id)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| {
            fail(
                "user_id",
                "invalid_uuid",
                format!("`{}` is not a UUID", row.user_id),
            )
        })
        .ok();
    let asset = assets.get(&row.asset);
    if asset.is_none() {
        fail(
            "asset",
            "unknown_asset",
            format!(
                "`{}` is not a known asset ({})",
                row.asset,
                assets.codes().join(", ")
            ),
        );
    }
    let amount = asset.and_then(|asset| match asset.parse_amount(&row.amount) {
        Ok(atoms) => super::parse_plain_decimal(&row.amount).map(|decimal| (atoms, decimal)),
        Err(error) => {
            fail("amount", "invalid_amount", error.to_string());
            None
        }
    });
    let earliest = NaiveDate::from_ymd_opt(2009, 1, 3)
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .unwrap_or(NaiveDateTime::MIN);
    let latest = now + chrono::Duration::minutes(FUTURE_TOLERANCE_MINUTES);
    let occurred_at = match parse_instant(&row.occurred_at) {
        Ok(at) if at < earliest => {
            fail(
                "occurred_at",
                "out_of_range",
                "is before the first Bitcoin block (2009-01-03)".into(),
            );
            None
        }
        Ok(at) if at > latest => {
            fail("occurred_at", "out_of_range", "is in the future".into());
            None
        }
        Ok(at) => Some(at),
        Err(message) => {
            fail("occurred_at", "invalid_time", message);
            None
        }
    };
    for (field, value, max) in [
        ("order_id", &row.order_id, 100),
        ("facility_id", &row.facility_id, 100),
        ("external_id", &row.external_id, 200),
    ] {
        if let Err(message) = identifier(value, max) {
            fail(field, "length", message);
        }
    }
    if let Some(first) = seen.get(&row.external_id) {
        fail(
            "external_id",
            "duplicate",
            format!("repeats the external_id of payouts[{first}]"),
        );
    } else {
        seen.insert(row.external_id.clone(), index);
    }
    match (user_id, amount, occurred_at) {
        (Some(user_id), Some((amount, decimal_amount)), Some(occurred_at)) if errors.is_empty() => {
            Ok(ValidPayout {
                index,
                user_id,
                asset: row.asset.clone(),
                amount,
                decimal_amount,
                occurred_at,
                order_id: row.order_id.clone(),
                facility_id: row.facility_id.clone(),
                external_id: row.external_id.clone(),
            })
        }
        _ => Err(errors),
    }
}

/// Checks a whole batch; any bad row fails it, and every bad row is listed.
pub fn validate_batch(
    rows: &[PayoutInput],
    assets: &Assets,
    now: NaiveDateTime,
) -> Result<Vec<ValidPayout>, Vec<FieldError>> {
    if rows.is_empty() || rows.len() > MAX_BATCH {
        return Err(vec![FieldError::new(
            "payouts",
            "batch_size",
            format!("must hold 1 to {MAX_BATCH} payouts, got {}", rows.len()),
        )]);
    }
    let mut seen = HashMap::with_capacity(rows.len());
    let mut errors = Vec::new();
    let mut valid = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        match validate_row(index, row, assets, now, &mut seen) {
            Ok(payout) => valid.push(payout),
            Err(row_errors) => errors.extend(row_errors),
        }
    }
    if errors.is_empty() {
        Ok(valid)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Asset;

    fn assets() -> Assets {
        Assets::new([
            Asset {
                code: "BTC".into(),
                scale: 8,
            },
            Asset {
                code: "USDT".into(),
                scale: 6,
            },
        ])
    }

    fn row(external_id: &str) -> PayoutInput {
        PayoutInput {
            user_id: "8f0e6c1a-2b7d-4c55-9a43-0c9f3f2b1e77".into(),
            asset: "BTC".into(),
            amount: "0.00012345".into(),
            occurred_at: "2025-12-31T17:00:00Z".into(),
            order_id: "order-1".into(),
            facility_id: "facility-qc-1".into(),
            external_id: external_id.into(),
        }
    }

    fn now() -> NaiveDateTime {
        parse_instant("2026-11-24T12:00:00Z").unwrap()
    }

    fn fields(result: Result<Vec<ValidPayout>, Vec<FieldError>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_good_row_is_converted_to_atoms_and_utc() {
        let mut shanghai = row("p1");
        shanghai.occurred_at = "2026-01-01T01:00:00+08:00".into();
        let valid = validate_batch(&[shanghai], &assets(), now()).unwrap();
        assert_eq!(valid[0].amount, 12_345);
        assert_eq!(
            valid[0].occurred_at,
            parse_instant("2025-12-31T17:00:00Z").unwrap()
        );
    }

    #[test]
    fn every_bad_row_is_named_by_index_and_field() {
        let mut rows: Vec<PayoutInput> = (0..6).map(|i| row(&format!("p{i}"))).collect();
        rows[0].amount = "-1".into();
        rows[1].amount = "0".into();
        rows[2].amount = "0.000000001".into();
        rows[3].asset = "DOGE".into();
        rows[4].occurred_at = "2025-12-31T17:00:00".into();
        rows[5].occurred_at = "2099-01-01T00:00:00Z".into();
        assert_eq!(
            fields(validate_batch(&rows, &assets(), now())),
            vec![
                "payouts[0].amount",
                "payouts[1].amount",
                "payouts[2].amount",
                "payouts[3].asset",
                "payouts[4].occurred_at",
                "payouts[5].occurred_at"
            ]
        );
    }

    #[test]
    fn duplicate_external_ids_and_oversize_batches_are_refused() {
        let rows = vec![row("same"), row("other"), row("same")];
        assert_eq!(
            fields(validate_batch(&rows, &assets(), now())),
            vec!["payouts[2].external_id"]
        );
        let rows: Vec<PayoutInput> = (0..=MAX_BATCH).map(|i| row(&format!("p{i}"))).collect();
        assert_eq!(
            fields(validate_batch(&rows, &assets(), now())),
            vec!["payouts"]
        );
        assert_eq!(
            fields(validate_batch(&[], &assets(), now())),
            vec!["payouts"]
        );
    }
}
