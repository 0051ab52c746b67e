//! The payout ledger: assets and exact amounts, double-entry transfers, hash-chained entries,
//! balances and fair market values.

pub mod fees;
pub mod import;
pub mod payouts;
pub mod rates;
pub mod routes;
pub mod store;
pub mod summary;

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::chain::{Canonical, Chained};

/// An asset and the number of decimals its ledger amounts may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub code: String,
    pub scale: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("must be greater than zero")]
    NotPositive,
    #[error("has more than {scale} decimal places, the most {asset} allows")]
    TooManyDecimals { asset: String, scale: u32 },
    #[error("is too large")]
    TooLarge,
    #[error("must be a decimal number written as a string, e.g. \"0.00012345\"")]
    NotADecimal,
}

impl Asset {
    /// Converts to integer atoms; an amount finer than the asset's scale is refused, not rounded.
    pub fn to_atoms(&self, amount: Decimal) -> Result<i64, AmountError> {
        if amount <= Decimal::ZERO {
            return Err(AmountError::NotPositive);
        }
        if amount.normalize().scale() > self.scale {
            return Err(AmountError::TooManyDecimals {
                asset: self.code.clone(),
                scale: self.scale,
            });
        }
        let factor = Decimal::from_i128_with_scale(10i128.pow(self.scale), 0);
        amount
            .checked_mul(factor)
            .and_then(|atoms| atoms.to_i64())
            .ok_or(AmountError::TooLarge)
    }

    pub fn from_atoms(&self, atoms: i64) -> Decimal {
        Decimal::from_i128_with_scale(i128::from(atoms), self.scale)
    }

    /// Parses a decimal string exactly (no float on the way) and converts it.
    pub fn parse_amount(&self, text: &str) -> Result<i64, AmountError> {
        self.to_atoms(parse_plain_decimal(text).ok_or(AmountError::NotADecimal)?)
    }
}

/// Parses `123`, `-0.5`, `0.00012345`: plain notation only (no exponent, no `+`, no spaces), so
/// what the caller wrote is exactly what is stored.
pub fn parse_plain_decimal(text: &str) -> Option<Decimal> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(digits.contains('.') && fraction.is_empty());
    if plain {
        text.parse().ok()
    } else {
        None
    }
}

/// The known assets, loaded from the `assets` table.
#[derive(Debug, Clone, Default)]
pub struct Assets(BTreeMap<String, Asset>);

impl Assets {
    pub fn new(assets: impl IntoIterator<Item = Asset>) -> Self {
        Assets(assets.into_iter().map(|a| (a.code.clone(), a)).collect())
    }

    pub fn get(&self, code: &str) -> Option<&Asset> {
        self.0.get(code)
    }

    pub fn codes(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Payout,
    Fee,
    WithdrawalHold,
    WithdrawalSettle,
    WithdrawalRelease,
    Adjustment,
    Reversal,
}

impl EntryKind {
    pub const ALL: [EntryKind; 7] = [
        EntryKind::Payout,
        EntryKind::Fee,
        EntryKind::WithdrawalHold,
        EntryKind::WithdrawalSettle,
        EntryKind::WithdrawalRelease,
        EntryKind::Adjustment,
        EntryKind::Reversal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Payout => "payout",
            EntryKind::Fee => "fee",
            EntryKind::WithdrawalHold => "withdrawal_hold",
            EntryKind::WithdrawalSettle => "withdrawal_settle",
            EntryKind::WithdrawalRelease => "withdrawal_release",
            EntryKind::Adjustment => "adjustment",
            EntryKind::Reversal => "reversal",
        }
    }

    pub fn parse(text: &str) -> Option<EntryKind> {
        EntryKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// Ledger accounts. A balance is credits minus debits, per asset.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Account {
    /// What a user may withdraw.
    Available(String),
    /// A user's funds on hold for a withdrawal in flight.
    Held(String),
    /// The platform's source of mining payouts.
    PayoutPool,
    /// Fees the platform earned.
    Fees,
    /// Outside the platform: settled withdrawals go here.
    External,
}

impl Account {
    pub fn key(&self) -> String {
        match self {
            Account::Available(user) => format!("user:{user}:available"),
            Account::Held(user) => format!("user:{user}:held"),
            Account::PayoutPool => "platform:payout_pool".to_string(),
            Account::Fees => "platform:fees".to_string(),
            Account::External => "external".to_string(),
        }
    }

    pub fn user(&self) -> Option<&str> {
        match self {
            Account::Available(user) | Account::Held(user) => Some(user),
            _ => None,
        }
    }
}

/// Which accounts a user-facing entry of `kind` moves funds between, as (debit, credit).
/// Adjustments credit the user when `to_user`, and debit them otherwise.
pub fn transfer_accounts(kind: EntryKind, user: &str, to_user: bool) -> (Account, Account) {
    let user = user.to_string();
    match kind {
        EntryKind::Payout => (Account::PayoutPool, Account::Available(user)),
        EntryKind::Fee => (Account::Available(user), Account::Fees),
        EntryKind::WithdrawalHold => (Account::Available(user.clone()), Account::Held(user)),
        EntryKind::WithdrawalSettle => (Account::Held(user), Account::External),
        EntryKind::WithdrawalRelease => (Account::Held(user.clone()), Account::Available(user)),
        EntryKind::Adjustment if to_user => (Account::PayoutPool, Account::Available(user)),
        EntryKind::Adjustment => (Account::Available(user), Account::PayoutPool),
        // A reversal swaps the accounts of the entry it reverses; callers use `reversal_of`.
        EntryKind::Reversal => (Account::Available(user), Account::PayoutPool),
    }
}

/// How a payout was valued at receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Valuation {
    /// amount × `usd_price` of `price_at`, the latest price at or before receipt.
    Priced {
        fmv_usd: Decimal,
        usd_price: Decimal,
        price_at: NaiveDateTime,
    },
    /// The latest price is older than the staleness limit: flagged, not valued.
    StalePrice { price_at: NaiveDateTime },
    /// No price at or before receipt: flagged, never valued at zero.
    NoPrice,
}

impl Valuation {
    pub fn label(&self) -> &'static str {
        match self {
            Valuation::Priced { .. } => "priced",
            Valuation::StalePrice { .. } => "stale_price",
            Valuation::NoPrice => "no_price",
        }
    }
}

/// A price or FX rate observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PricePoint {
    pub as_of: NaiveDateTime,
    pub rate: Decimal,
}

/// Values `amount` at `at` from `prices` sorted by time: the latest price at or before `at`,
/// if it is no older than `staleness`.
pub fn value_at(
    amount: Decimal,
    at: NaiveDateTime,
    prices: &[PricePoint],
    staleness: chrono::Duration,
) -> Valuation {
    let index = prices.partition_point(|point| point.as_of <= at);
    if index == 0 {
        return Valuation::NoPrice;
    }
    let point = prices[index - 1];
    if at - point.as_of > staleness {
        return Valuation::StalePrice {
            price_at: point.as_of,
        };
    }
    match amount.checked_mul(point.rate) {
        Some(fmv_usd) => Valuation::Priced {
            fmv_usd: fmv_usd.normalize(),
            usd_price: point.rate,
            price_at: point.as_of,
        },
        None => Valuation::NoPrice,
    }
}

/// Where a page of a ledger listing ends: its last entry's receipt time and sequence number.
/// Written `<microseconds since 1970 UTC>_<seq>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryCursor {
    pub occurred_at: NaiveDateTime,
    pub seq: i64,
}

impl EntryCursor {
    pub fn of(occurred_at: NaiveDateTime, seq: i64) -> EntryCursor {
        EntryCursor { occurred_at, seq }
    }

    pub fn parse(text: &str) -> Option<EntryCursor> {
        let (micros, seq) = text.split_once('_')?;
        let occurred_at = chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?;
        let seq = seq.parse().ok().filter(|seq: &i64| *seq > 0)?;
        Some(EntryCursor::of(occurred_at.naive_utc(), seq))
    }
}

impl std::fmt::Display for EntryCursor {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            out,
            "{}_{}",
            self.occurred_at.and_utc().timestamp_micros(),
            self.seq
        )
    }
}

/// A stored ledger entry: one balanced transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub seq: i64,
    pub transaction_id: String,
    pub kind: EntryKind,
    pub asset: String,
    pub amount: i64,
    pub debit_account: String,
    pub credit_account: String,
    pub user_id: Option<String>,
    pub occurred_at: NaiveDateTime,
    pub recorded_at: NaiveDateTime,
    pub source: Option<String>,
    pub external_id: Option<String>,
    pub order_id: Option<String>,
    pub facility_id: Option<String>,
    pub valuation: Option<String>,
    pub fmv_usd: Option<String>,
    pub usd_price: Option<String>,
    pub price_at: Option<NaiveDateTime>,
    pub reason: Option<String>,
    pub actor_id: String,
    pub reverses_seq: Option<i64>,
    pub prev_hash: String,
    pub hash: String,
}

impl LedgerEntry {
    /// A transfer not yet appended: no sequence, hashes or payout details. `append_entries`
    /// assigns the sequence, the recording time and the hashes.
    pub fn transfer(
        kind: EntryKind,
        asset: &str,
        amount: i64,
        (debit, credit): (Account, Account),
        occurred_at: NaiveDateTime,
        actor_id: &str,
    ) -> LedgerEntry {
        LedgerEntry {
            seq: 0,
            // A v4 id from the thread's CSPRNG: `new_v4` asks the kernel for every id, which
            // showed up in bulk ingest.
            transaction_id: uuid::Builder::from_random_bytes(rand::random())
                .into_uuid()
                .to_string(),
            kind,
            asset: asset.to_string(),
            amount,
            user_id: credit.user().or_else(|| debit.user()).map(str::to_string),
            debit_account: debit.key(),
            credit_account: credit.key(),
            occurred_at,
            recorded_at: occurred_at,
            source: None,
            external_id: None,
            order_id: None,
            facility_id: None,
            valuation: None,
            fmv_usd: None,
            usd_price: None,
            price_at: None,
            reason: None,
            actor_id: actor_id.to_string(),
            reverses_seq: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }
}

impl Chained for LedgerEntry {
    fn seq(&self) -> i64 {
        self.seq
    }

    fn prev_hash(&self) -> &str {
        &self.prev_hash
    }

    fn hash(&self) -> &str {
        &self.hash
    }

    fn canonical(&self) -> String {
        Canonical::default()
            .int(self.seq)
            .text(&self.transaction_id)
            .text(self.kind.as_str())
            .text(&self.asset)
            .int(self.amount)
            .text(&self.debit_account)
            .text(&self.credit_account)
            .opt_text(self.user_id.as_deref())
            .time(&self.occurred_at)
            .time(&self.recorded_at)
            .opt_text(self.source.as_deref())
            .opt_text(self.external_id.as_deref())
            .opt_text(self.order_id.as_deref())
            .opt_text(self.facility_id.as_deref())
            .opt_text(self.valuation.as_deref())
            .opt_text(self.fmv_usd.as_deref())
            .opt_text(self.usd_price.as_deref())
            .opt_time(self.price_at.as_ref())
            .opt_text(self.reason.as_deref())
            .text(&self.actor_id)
            .opt_int(self.reverses_seq)
            .finish()
    }
}

/// Per (account, asset), the change a set of entries makes: credits minus debits.
pub fn balance_deltas<'a>(
    entries: impl IntoIterator<Item = &'a LedgerEntry>,
) -> BTreeMap<(String, String), i64> {
    let mut deltas: BTreeMap<(String, String), i64> = BTreeMap::new();
    for entry in entries {
        *deltas
            .entry((entry.credit_account.clone(), entry.asset.clone()))
            .or_default() += entry.amount;
        *deltas
            .entry((entry.debit_account.clone(), entry.asset.clone()))
            .or_default() -= entry.amount;
    }
    deltas.retain(|_, delta| *delta != 0);
    deltas
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn btc() -> Asset {
        Asset {
            code: "BTC".into(),
            scale: 8,
        }
    }

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn amounts_convert_exactly_or_are_refused() {
        assert_eq!(btc().to_atoms(d("0.00012345")), Ok(12_345));
        assert_eq!(btc().to_atoms(d("1.50000000000")), Ok(150_000_000));
        assert_eq!(btc().to_atoms(d("21000000")), Ok(2_100_000_000_000_000));
        assert!(matches!(
            btc().to_atoms(d("0.000000001")),
            Err(AmountError::TooManyDecimals { scale: 8, .. })
        ));
        assert_eq!(btc().to_atoms(d("0")), Err(AmountError::NotPositive));
        assert_eq!(btc().to_atoms(d("-1")), Err(AmountError::NotPositive));
        assert_eq!(
            btc().to_atoms(d("100000000000000")),
            Err(AmountError::TooLarge)
        );
        for text in ["1e-3", "+1", " 1", "1.", ".5", "", "1,5", "NaN"] {
            assert_eq!(
                btc().parse_amount(text),
                Err(AmountError::NotADecimal),
                "{text}"
            );
        }
        assert_eq!(btc().from_atoms(12_345).to_string(), "0.00012345");
        let jpy = Asset {
            code: "JPY".into(),
            scale: 0,
        };
        assert_eq!(jpy.parse_amount("1500"), Ok(1500));
        assert!(jpy.parse_amount("1500.5").is_err());
    }

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn payouts_are_valued_at_the_latest_price_at_or_before_receipt() {
        let prices = [
            PricePoint {
                as_of: at("2025-12-31 00:00"),
                rate: d("94000.50"),
            },
            PricePoint {
                as_of: at("2026-01-01 00:00"),
                rate: d("95000"),
            },
        ];
        let day = chrono::Duration::days(1);
        assert_eq!(
            value_at(d("0.001"), at("2025-12-31 17:00"), &prices, day),
            Valuation::Priced {
                fmv_usd: d("94.0005"),
                usd_price: d("94000.50"),
                price_at: at("2025-12-31 00:00")
            }
        );
        assert!(matches!(
            value_at(d("0.001"), at("2026-01-01 00:00"), &prices, day),
            Valuation::Priced { price_at, .. } if price_at == at("2026-01-01 00:00")
        ));
        assert_eq!(
            value_at(d("0.001"), at("2025-12-30 23:59"), &prices, day),
            Valuation::NoPrice
        );
        assert_eq!(
            value_at(d("0.001"), at("2026-01-03 00:00"), &prices, day),
            Valuation::StalePrice {
                price_at: at("2026-01-01 00:00")
            }
        );
    }

    #[test]
    fn every_transfer_balances_to_zero() {
        let entry = |kind, to_user| {
            LedgerEntry::transfer(
                kind,
                "BTC",
                500,
                transfer_accounts(kind, "u1", to_user),
                at("2026-01-01 00:00"),
                "a",
            )
        };
        let entries: Vec<LedgerEntry> = vec![
            entry(EntryKind::Payout, true),
            entry(EntryKind::Fee, true),
            entry(EntryKind::WithdrawalHold, true),
            entry(EntryKind::WithdrawalRelease, true),
            entry(EntryKind::Adjustment, false),
        ];
        let deltas = balance_deltas(&entries);
        assert_eq!(deltas.values().sum::<i64>(), 0);
        assert_eq!(
            deltas[&("platform:fees".to_string(), "BTC".to_string())],
            500
        );
        assert_eq!(
            deltas.get(&("user:u1:held".to_string(), "BTC".to_string())),
            None,
            "hold then release nets to zero"
        );
        assert_eq!(
            deltas[&("user:u1:available".to_string(), "BTC".to_string())],
            -500
        );
    }
}
