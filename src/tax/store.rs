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

/// An entry's sequence, time, asset, atoms and the USD valuation recorded with it (FMV, price,
/// price time).
type EntryValues = (
    i64,
    NaiveDateTime,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<NaiveDateTime>,
);

/// The user's entries of `kind` in the tax year, in ledger order (reversed ones included: the
/// caller drops them).
fn entries_of_year(
    connection: &mut DbConnection,
    user_id: &str,
    kind: EntryKind,
    year: &TaxYear,
) -> Result<Vec<EntryValues>, AppError> {
    let rows = ledger_entries::table
        .filter(ledger_entries::user_id.eq(user_id))
        .filter(ledger_entries::kind.eq(kind.as_str()))
        .filter(ledger_entries::occurred_at.ge(year.starts_at))
        .filter(ledger_entries::occurred_at.lt(year.ends_at))
        .order(ledger_entries::seq.asc())
        .select((
            ledger_entries::seq,
            ledger_entries::occurred_at,
            ledger_entries::asset,
            ledger_entries::amount,
            ledger_entries::fmv_usd,
            ledger_entries::usd_price,
            ledger_entries::price_at,
        ))
        .load(connection)?;
    Ok(rows)
}

fn reversed_seqs(connection: &mut DbConnection, user_id: &str) -> QueryResult<HashSet<i64>> {
    let seqs: Vec<Option<i64>> = ledger_entries::table
        .filter(ledger_entries::user_id.eq(user_id))
        .filter(ledger_entries::kind.eq(EntryKind::Reversal.as_str()))
        .select(ledger_entries::reverses_seq)
        .load(connection)?;
    Ok(seqs.into_iter().flatten().collect())
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
    let reversed = reversed_seqs(connection, user_id)?;
    let scale = |code: &str, atoms: i64| -> Result<Decimal, AppError> {
        assets
            .get(code)
            .map(|asset| asset.from_atoms(atoms))
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("unknown asset {code}")))
    };
    let mut payouts = Vec::new();
    for (seq, occurred_at, asset, atoms, fmv, price, price_at) in
        entries_of_year(connection, user_id, EntryKind::Payout, year)?
    {
        if reversed.contains(&seq) {
            continue;
        }
        let usd = match (fmv, price, price_at) {
            (Some(fmv), Some(price), Some(price_at)) => {
                Some((parse_decimal(&fmv)?, parse_decimal(&price)?, price_at))
            }
            _ => None,
        };
        payouts.push(LedgerAmount {
            seq,
            occurred_at,
            amount: scale(&asset, atoms)?,
            asset,
            usd,
        });
    }
    let fee_rows: Vec<_> = entries_of_year(connection, user_id, EntryKind::Fee, year)?
        .into_iter()
        .filter(|row| !reversed.contains(&row.0))
        .collect();
    let mut prices: BTreeMap<String, Vec<PricePoint>> = BTreeMap::new();
    let mut fees = Vec::with_capacity(fee_rows.len());
    for (seq, occurred_at, asset, atoms, ..) in fee_rows {
        if !prices.contains_key(&asset) {
            let points =
                ledger::rate_points(connection, &asset, "USD", year.starts_at, year.ends_at)?;
            prices.insert(asset.clone(), points);
        }
        let amount = scale(&asset, atoms)?;
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
