//! Tax: mining income recognised per payout at its fair market value in the jurisdiction's
//! currency, assigned to the tax year of its local time, and the tax computed on it by the
//! jurisdiction's rules for that year (`jurisdictions/<CODE>.toml`, section `tax`).

pub mod bench;
pub mod carf;
pub mod compute;
pub mod routes;
pub mod rules;
pub mod service;
pub mod statement;
pub mod store;

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone};
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::ledger::PricePoint;
use compute::{Computation, EnergyUse};
use rules::{Classification, RoundingRule, TaxRules, Texts};

/// A tax year: its local first and last days, and the UTC instants that bound it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TaxYear {
    /// The calendar year in which it starts.
    pub year: i32,
    /// `2026`, or `2026/27` for a year that straddles two calendar years.
    pub label: String,
    #[schema(value_type = String, format = Date)]
    pub first_day: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub last_day: NaiveDate,
    pub time_zone: String,
    /// Inclusive, UTC.
    #[schema(value_type = String)]
    #[serde(with = "crate::utc")]
    pub starts_at: NaiveDateTime,
    /// Exclusive, UTC.
    #[schema(value_type = String)]
    #[serde(with = "crate::utc")]
    pub ends_at: NaiveDateTime,
}

/// The UTC instant at which a local day starts (the first valid local time that day).
pub(crate) fn local_midnight_utc(zone: chrono_tz::Tz, day: NaiveDate) -> NaiveDateTime {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    match zone.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(at) | chrono::LocalResult::Ambiguous(at, _) => at.naive_utc(),
        // Midnight skipped by a clock change: the day starts an hour later.
        chrono::LocalResult::None => zone
            .from_local_datetime(&(midnight + chrono::Duration::hours(1)))
            .earliest()
            .map(|at| at.naive_utc())
            .unwrap_or(midnight),
    }
}

impl TaxYear {
    pub fn of(rules: &TaxRules, year: i32) -> Option<TaxYear> {
        let first_day = rules.first_day(year)?;
        let next = rules.first_day(year + 1)?;
        Some(TaxYear {
            year,
            label: rules.year_label(year),
            first_day,
            last_day: next.pred_opt()?,
            time_zone: rules.time_zone.name().to_string(),
            starts_at: local_midnight_utc(rules.time_zone, first_day),
            ends_at: local_midnight_utc(rules.time_zone, next),
        })
    }

    /// The tax year a UTC instant falls in, by its local date.
    pub fn containing(rules: &TaxRules, at: NaiveDateTime) -> Option<TaxYear> {
        let local = rules.time_zone.from_utc_datetime(&at).date_naive();
        let starts_this_calendar_year = rules.first_day(local.year())?;
        let year = if local >= starts_this_calendar_year {
            local.year()
        } else {
            local.year() - 1
        };
        TaxYear::of(rules, year)
    }
}

/// A payout or fee from the ledger, with what the ledger knows of its value.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerAmount {
    pub seq: i64,
    pub occurred_at: NaiveDateTime,
    pub asset: String,
    pub amount: Decimal,
    /// Its USD value and the price used, when it could be valued.
    pub usd: Option<(Decimal, Decimal, NaiveDateTime)>,
}

/// A payout or fee valued in the jurisdiction's currency.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ValuedLine {
    pub seq: i64,
    /// `payout` or `fee`.
    pub kind: String,
    #[schema(value_type = String)]
    #[serde(with = "crate::utc")]
    pub occurred_at: NaiveDateTime,
    /// The local time in the tax zone, RFC 3339.
    pub local_time: String,
    /// The local month, `YYYY-MM`.
    pub month: String,
    pub asset: String,
    #[schema(value_type = String)]
    pub amount: Decimal,
    #[schema(value_type = Option<String>)]
    pub usd_price: Option<Decimal>,
    #[schema(value_type = Option<String>)]
    #[serde(with = "crate::utc::option")]
    pub price_at: Option<NaiveDateTime>,
    #[schema(value_type = Option<String>)]
    pub fmv_usd: Option<Decimal>,
    /// USD → the jurisdiction's currency.
    #[schema(value_type = Option<String>)]
    pub fx_rate: Option<Decimal>,
    #[schema(value_type = Option<String>)]
    #[serde(with = "crate::utc::option")]
    pub fx_at: Option<NaiveDateTime>,
    /// In the jurisdiction's currency, to the cent; none when it could not be valued.
    #[schema(value_type = Option<String>)]
    pub value: Option<Decimal>,
    /// Why it has no value (`no_price`, `stale_price`, `no_fx_rate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unvalued_reason: Option<String>,
}

/// Values each ledger amount in `currency` at the FX rate of its time.
pub fn value_lines(
    kind: &str,
    amounts: &[LedgerAmount],
    currency: &str,
    zone: chrono_tz::Tz,
    usd_to_currency: &[PricePoint],
    staleness: chrono::Duration,
) -> Vec<ValuedLine> {
    amounts
        .iter()
        .map(|item| {
            let local = zone.from_utc_datetime(&item.occurred_at);
            let mut line = ValuedLine {
                seq: item.seq,
                kind: kind.to_string(),
                occurred_at: item.occurred_at,
                local_time: local.to_rfc3339(),
                month: format!("{:04}-{:02}", local.year(), local.month()),
                asset: item.asset.clone(),
                amount: item.amount,
                usd_price: item.usd.map(|(_, price, _)| price),
                price_at: item.usd.map(|(_, _, at)| at),
                fmv_usd: item.usd.map(|(fmv, _, _)| fmv),
                fx_rate: None,
                fx_at: None,
                value: None,
                unvalued_reason: None,
            };
            let Some((fmv_usd, _, _)) = item.usd else {
                line.unvalued_reason = Some("no_price".into());
                return line;
            };
            let fx = if currency == "USD" {
                crate::ledger::Valuation::Priced {
                    fmv_usd,
                    usd_price: Decimal::ONE,
                    price_at: item.occurred_at,
                }
            } else {
                crate::ledger::value_at(fmv_usd, item.occurred_at, usd_to_currency, staleness)
            };
            match fx {
                crate::ledger::Valuation::Priced {
                    fmv_usd: value,
                    usd_price: rate,
                    price_at,
                } => {
                    line.fx_rate = Some(rate);
                    line.fx_at = Some(price_at);
                    line.value = Some(RoundingRule::CENTS.apply(value));
                }
                _ => line.unvalued_reason = Some("no_fx_rate".into()),
            }
            line
        })
        .collect()
}

/// Income of one local month and asset.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MonthAsset {
    pub month: String,
    pub asset: String,
    pub payouts: u64,
    #[schema(value_type = String)]
    pub amount: Decimal,
    #[schema(value_type = String)]
    pub value: Decimal,
}

/// Per asset over the year.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AssetTotal {
    pub asset: String,
    pub payouts: u64,
    #[schema(value_type = String)]
    pub amount: Decimal,
    #[schema(value_type = String)]
    pub value: Decimal,
    /// Payouts that could not be valued (kept out of the income, listed in the detail).
    pub unvalued: u64,
}

/// Everything a statement shows, computed from the ledger and the rules.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TaxReport {
    pub user_id: String,
    pub jurisdiction: String,
    pub currency: String,
    pub tax_year: TaxYear,
    pub classification: Classification,
    pub classification_label: Texts,
    pub rules_version: String,
    pub sources: Vec<String>,
    pub income_by_month: Vec<MonthAsset>,
    pub income_by_asset: Vec<AssetTotal>,
    #[schema(value_type = String)]
    pub income: Decimal,
    #[schema(value_type = String)]
    pub costs: Decimal,
    pub computation: Computation,
    /// Whether every payout and fee could be valued. When not, the figures leave out the
    /// unvalued ones and say so.
    pub complete: bool,
    pub notes: Vec<Texts>,
    pub disclaimers: Vec<Texts>,
    /// SHA-256 of the statement CSV (`statement.csv`): the data the figures are made from.
    pub data_sha256: String,
    pub payouts: Vec<ValuedLine>,
    pub fees: Vec<ValuedLine>,
}

/// The disclaimers printed on every computation.
fn disclaimers() -> Vec<Texts> {
    vec![
        Texts {
            en: "An estimate of the tax on your mining income from this platform alone, as if you had no other income: other income, reliefs and elections change the figure. Not tax advice.".into(),
            zh: Some("本估算仅针对您在本平台取得的挖矿收入，假定您没有其他收入；其他收入、扣除及选择会改变结果。本文件不构成税务建议。".into()),
        },
        Texts {
            en: "Each payout is income at its fair market value when received (ledger price × FX rate at that time), in the tax year of its local date in the zone shown.".into(),
            zh: Some("每笔收益按到账时的公允市场价值（账本价格 × 当时汇率）计入收入，并按所示时区的当地日期归入纳税年度。".into()),
        },
    ]
}

/// What goes into a report besides the ledger lines.
pub struct ReportInput<'a> {
    pub user_id: &'a str,
    pub jurisdiction: &'a str,
    pub rules: &'a TaxRules,
    pub tax_year: TaxYear,
    pub classification: Classification,
    pub payouts: Vec<ValuedLine>,
    pub fees: Vec<ValuedLine>,
    pub energy: Option<EnergyUse>,
}

/// Builds the report for a year whose rules exist (the caller checked).
pub fn report(input: ReportInput<'_>) -> Option<TaxReport> {
    let year_rules = input.rules.year(input.tax_year.year)?;
    let schedule = year_rules.schedules.get(&input.classification)?;
    let mut by_month: BTreeMap<(String, String), MonthAsset> = BTreeMap::new();
    let mut by_asset: BTreeMap<String, AssetTotal> = BTreeMap::new();
    for line in &input.payouts {
        let total = by_asset
            .entry(line.asset.clone())
            .or_insert_with(|| AssetTotal {
                asset: line.asset.clone(),
                payouts: 0,
                amount: Decimal::ZERO,
                value: Decimal::ZERO,
                unvalued: 0,
            });
        let Some(value) = line.value else {
            total.unvalued += 1;
            continue;
        };
        total.payouts += 1;
        total.amount += line.amount;
        total.value += value;
        let month = by_month
            .entry((line.month.clone(), line.asset.clone()))
            .or_insert_with(|| MonthAsset {
                month: line.month.clone(),
                asset: line.asset.clone(),
                payouts: 0,
                amount: Decimal::ZERO,
                value: Decimal::ZERO,
            });
        month.payouts += 1;
        month.amount += line.amount;
        month.value += value;
    }
    // Sums of cent amounts; rounded only to keep the cents of an empty year ("0.00", not "0").
    let income = RoundingRule::CENTS.apply(by_asset.values().map(|total| total.value).sum());
    let costs = RoundingRule::CENTS.apply(input.fees.iter().filter_map(|line| line.value).sum());
    let complete = input
        .payouts
        .iter()
        .chain(&input.fees)
        .all(|line| line.value.is_some());
    let computation = compute::compute(schedule, income, costs, input.energy);
    let mut notes = input.rules.notes.clone();
    notes.extend(schedule.notes.iter().cloned());
    let data_sha256 = hex::encode(Sha256::digest(statement::detail_csv(
        &input.payouts,
        &input.fees,
    )));
    Some(TaxReport {
        user_id: input.user_id.to_string(),
        jurisdiction: input.jurisdiction.to_string(),
        currency: input.rules.currency.clone(),
        tax_year: input.tax_year,
        classification: input.classification,
        classification_label: schedule.label.clone(),
        rules_version: year_rules.version.clone(),
        sources: year_rules.sources.clone(),
        income_by_month: by_month.into_values().collect(),
        income_by_asset: by_asset.into_values().collect(),
        income,
        costs,
        computation,
        complete,
        notes,
        disclaimers: disclaimers(),
        data_sha256,
        payouts: input.payouts,
        fees: input.fees,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(code: &str) -> TaxRules {
        crate::jurisdiction::Jurisdictions::load_default()
            .unwrap()
            .get(code)
            .unwrap()
            .tax
            .clone()
    }

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").unwrap()
    }

    #[test]
    fn tax_years_follow_local_time() {
        // 23:30 UTC on 5 April 2026 is 00:30 BST on 6 April: the 2026/27 UK tax year.
        let gb = rules("GB");
        let year = TaxYear::containing(&gb, at("2026-04-05T23:30")).unwrap();
        assert_eq!((year.year, year.label.as_str()), (2026, "2026/27"));
        assert_eq!(year.starts_at, at("2026-04-05T23:00"));
        assert_eq!(year.ends_at, at("2027-04-05T23:00"));
        assert_eq!(
            TaxYear::containing(&gb, at("2026-04-05T22:59"))
                .unwrap()
                .year,
            2025
        );
        // 16:30 UTC on 31 December 2025 is 00:30 on 1 January 2026 in Shanghai.
        let cn = rules("CN");
        assert_eq!(
            TaxYear::containing(&cn, at("2025-12-31T16:30"))
                .unwrap()
                .year,
            2026
        );
        assert_eq!(
            TaxYear::containing(&cn, at("2025-12-31T15:59"))
                .unwrap()
                .year,
            2025
        );
        // Australia's year starts on 1 July, Sydney time (UTC+10 in winter).
        let au = rules("AU");
        let year = TaxYear::of(&au, 2026).unwrap();
        assert_eq!(year.label, "2026/27");
        assert_eq!(year.starts_at, at("2026-06-30T14:00"));
        assert_eq!(year.last_day, NaiveDate::from_ymd_opt(2027, 6, 30).unwrap());
    }
}
