//! Ledger totals per asset and local day, for officers.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Assets, EntryKind};

/// The columns a summary needs from one entry.
pub struct SummaryRow {
    pub kind: EntryKind,
    pub asset: String,
    pub amount: i64,
    pub occurred_at: NaiveDateTime,
    pub fmv_usd: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DaySummary {
    /// The local date in the requested zone.
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    pub asset: String,
    pub payouts: u64,
    pub payout_total: String,
    /// Sum of the payouts' FMV in USD; payouts without a usable price are counted in `unpriced`.
    pub payout_fmv_usd: String,
    pub unpriced: u64,
    pub fees_total: String,
    pub withdrawals_settled_total: String,
    pub entries: u64,
}

#[derive(Default)]
struct Totals {
    payouts: u64,
    payout_atoms: i64,
    fmv_usd: Decimal,
    unpriced: u64,
    fee_atoms: i64,
    settled_atoms: i64,
    entries: u64,
}

/// The local date of a UTC instant in `zone`.
pub fn local_date(instant: NaiveDateTime, zone: Tz) -> NaiveDate {
    zone.from_utc_datetime(&instant).date_naive()
}

/// Totals per (local date, asset), in date then asset order.
pub fn summarize(
    rows: impl IntoIterator<Item = SummaryRow>,
    zone: Tz,
    assets: &Assets,
) -> Vec<DaySummary> {
    let mut days: BTreeMap<(NaiveDate, String), Totals> = BTreeMap::new();
    for row in rows {
        let totals = days
            .entry((local_date(row.occurred_at, zone), row.asset))
            .or_default();
        totals.entries += 1;
        match row.kind {
            EntryKind::Payout => {
                totals.payouts += 1;
                totals.payout_atoms += row.amount;
                match row
                    .fmv_usd
                    .as_deref()
                    .and_then(|v| v.parse::<Decimal>().ok())
                {
                    Some(fmv) => totals.fmv_usd += fmv,
                    None => totals.unpriced += 1,
                }
            }
            EntryKind::Fee => totals.fee_atoms += row.amount,
            EntryKind::WithdrawalSettle => totals.settled_atoms += row.amount,
            _ => {}
        }
    }
    days.into_iter()
        .map(|((date, asset), totals)| {
            let scale = assets.get(&asset).map(|a| a.scale).unwrap_or(0);
            let amount =
                |atoms: i64| Decimal::from_i128_with_scale(i128::from(atoms), scale).to_string();
            DaySummary {
                date,
                payouts: totals.payouts,
                payout_total: amount(totals.payout_atoms),
                payout_fmv_usd: totals.fmv_usd.normalize().to_string(),
                unpriced: totals.unpriced,
                fees_total: amount(totals.fee_atoms),
                withdrawals_settled_total: amount(totals.settled_atoms),
                entries: totals.entries,
                asset,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Asset;

    fn row(kind: EntryKind, amount: i64, at: &str, fmv: Option<&str>) -> SummaryRow {
        SummaryRow {
            kind,
            asset: "BTC".into(),
            amount,
            occurred_at: NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M").unwrap(),
            fmv_usd: fmv.map(str::to_string),
        }
    }

    #[test]
    fn days_are_local_to_the_zone() {
        let assets = Assets::new([Asset {
            code: "BTC".into(),
            scale: 8,
        }]);
        let rows = || {
            vec![
                row(EntryKind::Payout, 100, "2025-12-31 17:00", Some("0.095")),
                row(EntryKind::Payout, 50, "2025-12-31 15:59", None),
                row(EntryKind::Fee, 10, "2025-12-31 16:30", None),
            ]
        };
        let shanghai = summarize(rows(), chrono_tz::Asia::Shanghai, &assets);
        assert_eq!(shanghai.len(), 2);
        assert_eq!(shanghai[0].date.to_string(), "2025-12-31");
        assert_eq!(shanghai[0].unpriced, 1);
        assert_eq!(shanghai[1].date.to_string(), "2026-01-01");
        assert_eq!(shanghai[1].payout_total, "0.00000100");
        assert_eq!(shanghai[1].fees_total, "0.00000010");
        assert_eq!(shanghai[1].payout_fmv_usd, "0.095");
        let utc = summarize(rows(), chrono_tz::UTC, &assets);
        assert_eq!(utc.len(), 1);
        assert_eq!(utc[0].payouts, 2);
        assert_eq!(utc[0].entries, 3);
    }
}
