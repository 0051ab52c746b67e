//! What a tax computation reads: the user, their payouts and fees of a tax year (without the
//! reversed ones), and the prices and FX rates to value them.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use rust_decimal::Decimal;

use super::{LedgerAmount, TaxYear};
use crate::crypto::FieldCipher;
use crate::db::schema::ledger_entries;
use crate::db::DbConnection;
use crate::error::AppError;
use crate::ledger::{store as ledger, value_at, EntryKind, PricePoint, Valuation};

/// Who a statement is for.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub user_id: String,
    pub jurisdiction: String,
    pub language: String,
    /// The legal name from the user's KYC application (approved first), else their reference.
    pub name: String,
    pub address: Option<String>,
}

pub fn holder(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    user_id: &str,
) -> Result<Holder, AppError> {
    let user = crate::users::store::find(connection, cipher, user_id)?;
    let identity =
        crate::kyc::store::identities(connection, cipher, std::slice::from_ref(&user.id))?
            .remove(&user.id);
    let name = identity
        .as_ref()
        .map(|data| data.legal_name.clone())
        .unwrap_or_else(|| user.external_ref.clone());
    let address = user
        .address
        .clone()
        .or_else(|| identity.and_then(|data| data.address));
    Ok(Holder {
        user_id: user.id,
        jurisdiction: user.residence_jurisdiction,
        language: user.preferred_language,
        name,
        address,
    })
}

/// An entry as the tax computation reads it: sequence, kind, time, asset, atoms, the USD
/// valuation recorded with it (FMV, price, price time) and, for a reversal, the entry it cancels.
type EntryValues = (
    i64,
    String,
    NaiveDateTime,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<NaiveDateTime>,
    Option<i64>,
);

/// The earliest date of a reversal that cancels an entry dated at or after `start`. A reversal is
/// dated when it is made (`ledger::store::reverse`), after the entry it cancels was recorded, and
/// no payout or fee is dated more than a few minutes after it is recorded; the day allows for the
/// clocks of several service instances.
pub(super) fn earliest_reversal(start: NaiveDateTime) -> NaiveDateTime {
    start - chrono::Duration::days(1)
}

/// The user's payouts and fees of the tax year and the reversals that may cancel them, in ledger
/// order: one walk of the user's entries from [`earliest_reversal`] of the year's start on, so
/// the user's earlier years are not read (on SQLite each entry walked is a table row).
fn entries_of_year(
    connection: &mut DbConnection,
    user_id: &str,
    year: &TaxYear,
) -> Result<Vec<EntryValues>, AppError> {
    let in_year = ledger_entries::kind
        .eq_any([EntryKind::Payout.as_str(), EntryKind::Fee.as_str()])
        .and(ledger_entries::occurred_at.ge(year.starts_at))
        .and(ledger_entries::occurred_at.lt(year.ends_at));
    let mut rows: Vec<EntryValues> = ledger_entries::table
        .filter(ledger_entries::user_id.eq(user_id))
        .filter(ledger_entries::occurred_at.ge(earliest_reversal(year.starts_at)))
        .filter(in_year.or(ledger_entries::kind.eq(EntryKind::Reversal.as_str())))
        .select((
            ledger_entries::seq,
            ledger_entries::kind,
            ledger_entries::occurred_at,
            ledger_entries::asset,
            ledger_entries::amount,
            ledger_entries::fmv_usd,
            ledger_entries::usd_price,
            ledger_entries::price_at,
            ledger_entries::reverses_seq,
        ))
        .load(connection)?;
    // Sorted here: PostgreSQL reads them by receipt time (`ledger_entries_user_time`), and
    // sorting a few hundred rows in its executor took a third of the read.
    rows.sort_unstable_by_key(|row| row.0);
    Ok(rows)
}

fn parse_decimal(text: &str) -> Result<Decimal, AppError> {
    text.parse::<Decimal>().map_err(AppError::internal)
}

/// The year's payouts (valued in USD as the ledger recorded at receipt) and fees (valued at the
/// asset's USD price at their time), both without reversed entries.
pub fn year_amounts(
    connection: &mut DbConnection,
    user_id: &str,
    year: &TaxYear,
    staleness: chrono::Duration,
) -> Result<(Vec<LedgerAmount>, Vec<LedgerAmount>), AppError> {
    let assets = ledger::load_assets(connection)?;
    let entries = entries_of_year(connection, user_id, year)?;
    let reversed: HashSet<i64> = entries.iter().filter_map(|entry| entry.8).collect();
    let scale = |code: &str, atoms: i64| -> Result<Decimal, AppError> {
        assets
            .get(code)
            .map(|asset| asset.from_atoms(atoms))
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("unknown asset {code}")))
    };
    let mut prices: BTreeMap<String, Vec<PricePoint>> = BTreeMap::new();
    let mut payouts = Vec::with_capacity(entries.len());
    let mut fees = Vec::new();
    for (seq, kind, occurred_at, asset, atoms, fmv, price, price_at, _) in entries {
        if reversed.contains(&seq) {
            continue;
        }
        let amount = scale(&asset, atoms)?;
        if kind == EntryKind::Payout.as_str() {
            let usd = match (fmv, price, price_at) {
                (Some(fmv), Some(price), Some(price_at)) => {
                    Some((parse_decimal(&fmv)?, parse_decimal(&price)?, price_at))
                }
                _ => None,
            };
            payouts.push(LedgerAmount {
                seq,
                occurred_at,
                asset,
                amount,
                usd,
            });
        } else if kind == EntryKind::Fee.as_str() {
            // Fees carry no valuation of their own: the asset's USD price at their time.
            if !prices.contains_key(&asset) {
                let points =
                    ledger::rate_points(connection, &asset, "USD", year.starts_at, year.ends_at)?;
                prices.insert(asset.clone(), points);
            }
            let usd = match value_at(amount, occurred_at, &prices[&asset], staleness) {
                Valuation::Priced {
                    fmv_usd,
                    usd_price,
                    price_at,
                } => Some((fmv_usd, usd_price, price_at)),
                _ => None,
            };
            fees.push(LedgerAmount {
                seq,
                occurred_at,
                asset,
                amount,
                usd,
            });
        }
    }
    Ok((payouts, fees))
}

/// USD → `currency` observations covering the tax year.
pub fn fx_points(
    connection: &mut DbConnection,
    currency: &str,
    year: &TaxYear,
) -> Result<Vec<PricePoint>, AppError> {
    if currency == "USD" {
        return Ok(Vec::new());
    }
    ledger::rate_points(connection, "USD", currency, year.starts_at, year.ends_at)
}
