//! Documents made from hashgate's records: regulator sandbox reports, each stored once with its
//! SHA-256 and an Ed25519 signature beside the canonical data it was made from; and the PDF
//! layout shared by statements and reports.

pub mod bench;
pub mod goaml;
pub mod pdf;
pub mod routes;
pub mod sandbox;
pub mod schedule;
pub mod service;
pub mod signing;
pub mod store;
pub mod trail;
pub mod xml;

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A reporting period in a jurisdiction's local calendar: a month (`2026-10`) or a quarter
/// (`2026-Q4`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub label: String,
    /// The first local day.
    pub first_day: NaiveDate,
    /// The local day after the last one.
    pub end_day: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    Month,
    Quarter,
}

impl Period {
    pub fn parse(label: &str) -> Result<Period, String> {
        let invalid = || format!("`{label}` is not a month (2026-10) or a quarter (2026-Q4)");
        let (year, rest) = label.split_once('-').ok_or_else(invalid)?;
        if year.len() != 4 {
            return Err(invalid());
        }
        let year: i32 = year.parse().map_err(|_| invalid())?;
        let (first_month, months) = match rest.strip_prefix('Q') {
            Some(quarter) => match quarter {
                "1" | "2" | "3" | "4" => {
                    let quarter: u32 = quarter.parse().map_err(|_| invalid())?;
                    ((quarter - 1) * 3 + 1, 3)
                }
                _ => return Err(invalid()),
            },
            None if rest.len() == 2 => match rest.parse::<u32>() {
                Ok(month @ 1..=12) => (month, 1),
                _ => return Err(invalid()),
            },
            None => return Err(invalid()),
        };
        let first_day = NaiveDate::from_ymd_opt(year, first_month, 1).ok_or_else(invalid)?;
        let end_day = first_day
            .checked_add_months(chrono::Months::new(months))
            .ok_or_else(invalid)?;
        Ok(Period {
            label: label.to_string(),
            first_day,
            end_day,
        })
    }

    pub fn kind(&self) -> PeriodKind {
        if self.label.contains('Q') {
            PeriodKind::Quarter
        } else {
            PeriodKind::Month
        }
    }

    /// The period of `kind` that local day `day` falls in.
    pub fn containing(kind: PeriodKind, day: NaiveDate) -> Period {
        let months = match kind {
            PeriodKind::Month => 1,
            PeriodKind::Quarter => 3,
        };
        let first_month = (day.month() - 1) / months * months + 1;
        let first_day = NaiveDate::from_ymd_opt(day.year(), first_month, 1).unwrap_or(day);
        let end_day = first_day
            .checked_add_months(chrono::Months::new(months))
            .unwrap_or(first_day);
        let label = match kind {
            PeriodKind::Month => format!("{}-{:02}", first_day.year(), first_day.month()),
            PeriodKind::Quarter => format!("{}-Q{}", first_day.year(), first_month / 3 + 1),
        };
        Period {
            label,
            first_day,
            end_day,
        }
    }

    /// The last period of `kind` that has closed by local day `today`.
    pub fn last_closed(kind: PeriodKind, today: NaiveDate) -> Period {
        let current = Period::containing(kind, today);
        Period::containing(
            kind,
            current.first_day.pred_opt().unwrap_or(current.first_day),
        )
    }

    /// The period's bounds in UTC, `[start, end)`, for a jurisdiction's zone.
    pub fn utc_bounds(&self, zone: chrono_tz::Tz) -> (NaiveDateTime, NaiveDateTime) {
        (
            crate::tax::local_midnight_utc(zone, self.first_day),
            crate::tax::local_midnight_utc(zone, self.end_day),
        )
    }

    /// The last local day, for printing.
    pub fn last_day(&self) -> NaiveDate {
        self.end_day.pred_opt().unwrap_or(self.end_day)
    }
}

/// One figure of a report: the unit of the canonical data export. A report's tables are these
/// rows grouped by section; its CSV is these rows in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Figure {
    pub section: String,
    pub metric: String,
    /// What the figure counts within the metric (`tier=1;risk=low`), empty for a total.
    pub breakdown: String,
    pub value: String,
    /// `count`, a currency or asset code, `kWh`, `kgCO2e`, `percent` or `result`.
    pub unit: String,
}

impl Figure {
    pub fn new(
        section: &str,
        metric: &str,
        breakdown: impl Into<String>,
        value: impl ToString,
        unit: &str,
    ) -> Figure {
        Figure {
            section: section.into(),
            metric: metric.into(),
            breakdown: breakdown.into(),
            value: value.to_string(),
            unit: unit.into(),
        }
    }
}

/// A canonical CSV export: a header, then the rows in order (figures in report order, an STR's
/// transactions in ledger order), values as exact decimals. Its SHA-256 is printed in the
/// report so anyone can recompute it.
pub fn csv_bytes<T: Serialize>(rows: &[T]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row)?;
    }
    writer
        .into_inner()
        .map_err(|error| csv::Error::from(error.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn periods_parse_to_local_days() {
        let quarter = Period::parse("2026-Q4").unwrap();
        assert_eq!(
            (quarter.first_day, quarter.end_day),
            (day(2026, 10, 1), day(2027, 1, 1))
        );
        assert_eq!(quarter.kind(), PeriodKind::Quarter);
        let month = Period::parse("2026-02").unwrap();
        assert_eq!(
            (month.first_day, month.last_day()),
            (day(2026, 2, 1), day(2026, 2, 28))
        );
        for bad in [
            "2026", "2026-13", "2026-Q5", "2026-Q0", "26-01", "2026-1", "x-01",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_quarter_in_hong_kong_starts_at_local_midnight() {
        let (start, end) = Period::parse("2026-Q3")
            .unwrap()
            .utc_bounds(chrono_tz::Asia::Hong_Kong);
        assert_eq!(start.to_string(), "2026-06-30 16:00:00");
        assert_eq!(end.to_string(), "2026-09-30 16:00:00");
    }

    #[test]
    fn the_last_closed_period_is_before_today() {
        assert_eq!(
            Period::last_closed(PeriodKind::Quarter, day(2026, 1, 5)).label,
            "2025-Q4"
        );
        assert_eq!(
            Period::last_closed(PeriodKind::Quarter, day(2026, 12, 2)).label,
            "2026-Q3"
        );
        assert_eq!(
            Period::last_closed(PeriodKind::Month, day(2026, 1, 1)).label,
            "2025-12"
        );
        let current = Period::containing(PeriodKind::Quarter, day(2026, 12, 2));
        assert_eq!(
            (current.label.as_str(), current.first_day, current.end_day),
            ("2026-Q4", day(2026, 10, 1), day(2027, 1, 1))
        );
        assert_eq!(
            Period::containing(PeriodKind::Month, day(2026, 2, 28)).label,
            "2026-02"
        );
    }

    #[test]
    fn the_canonical_csv_has_a_header_and_exact_values() {
        let csv = csv_bytes(&[Figure::new("payouts", "fmv", "asset=BTC", "1.50", "USD")]).unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "section,metric,breakdown,value,unit\npayouts,fmv,asset=BTC,1.50,USD\n"
        );
    }
}
