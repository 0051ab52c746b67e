//! Emissions by the GHG Protocol's two Scope 2 methods, reported side by side:
//! location-based = all energy × the grid's average factor (certificates cannot lower it);
//! market-based = matched energy × each certificate's factor + the rest × the residual-mix
//! factor, or, flagged, the grid average where no residual mix is known.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use utoipa::ToSchema;

use super::factors::FactorRow;

/// A factor as a figure names it: enough to find it again and recompute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FactorUsed {
    pub dataset: String,
    pub version: String,
    pub zone: String,
    pub year: i32,
    pub basis: String,
    pub g_per_kwh: String,
    pub source: String,
}

impl From<&FactorRow> for FactorUsed {
    fn from(row: &FactorRow) -> Self {
        FactorUsed {
            dataset: row.dataset.clone(),
            version: row.version.clone(),
            zone: row.zone.clone(),
            year: row.year,
            basis: row.basis.as_str().into(),
            g_per_kwh: row.g_per_kwh.to_string(),
            source: row.source.clone(),
        }
    }
}

/// Energy and what covers it, for one order or summed over many.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    pub energy_wh: i64,
    /// Live and retired allocations: Wh and the certificate's g CO2e/kWh.
    pub matched: Vec<(i64, Decimal)>,
    pub hourly_matched_wh: i64,
}

/// Grams of CO2e for `wh` at `g_per_kwh`, exact.
fn grams(wh: i64, g_per_kwh: Decimal) -> Decimal {
    Decimal::from(wh) * g_per_kwh / Decimal::from(1_000)
}

/// Kilograms to the gram, halves away from zero.
pub fn kilograms(grams: Decimal) -> String {
    (grams / Decimal::from(1_000))
        .round_dp_with_strategy(3, RoundingStrategy::MidpointAwayFromZero)
        .to_string()
}

/// A share as a fraction with four decimals (0.8125 = 81.25 %), halves away from zero.
pub fn share(part: i64, whole: i64) -> String {
    if whole == 0 {
        return "0".into();
    }
    (Decimal::from(part) / Decimal::from(whole))
        .round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
        .to_string()
}

/// The two methods' emissions, in grams (exact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emissions {
    pub location_g: Decimal,
    pub market_g: Decimal,
    pub matched_wh: i64,
    /// The market-based figure used the grid average for unmatched energy.
    pub residual_mix_missing: bool,
}

pub fn emissions(coverage: &Coverage, grid: Decimal, residual_mix: Option<Decimal>) -> Emissions {
    let matched_wh: i64 = coverage.matched.iter().map(|(wh, _)| wh).sum();
    let certified: Decimal = coverage
        .matched
        .iter()
        .map(|(wh, factor)| grams(*wh, *factor))
        .sum();
    let unmatched_wh = (coverage.energy_wh - matched_wh).max(0);
    Emissions {
        location_g: grams(coverage.energy_wh, grid),
        market_g: certified + grams(unmatched_wh, residual_mix.unwrap_or(grid)),
        matched_wh,
        residual_mix_missing: residual_mix.is_none() && unmatched_wh > 0,
    }
}

/// Picks, among `factors` of one basis, the one for `zone` (else `country`) of the latest year
/// not after `year` (else the earliest there is).
pub fn pick<'a>(
    factors: &'a [FactorRow],
    basis: super::Basis,
    zone: &str,
    country: &str,
    year: i32,
) -> Option<&'a FactorRow> {
    [zone, country].into_iter().find_map(|place| {
        let mut candidates: Vec<&FactorRow> = factors
            .iter()
            .filter(|f| f.basis == basis && f.zone == place)
            .collect();
        candidates.sort_by_key(|f| (f.year, f.dataset.clone(), f.version.clone()));
        candidates
            .iter()
            .rev()
            .find(|f| f.year <= year)
            .or(candidates.first())
            .copied()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carbon::Basis;

    fn decimal(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn location_and_market_based_by_hand() {
        // 79,056 Wh in Kazakhstan (grid 821.391 g/kWh, residual mix 900 g/kWh), 50,000 Wh
        // matched with wind certificates (0 g/kWh) and 10,000 Wh with a biomass one (230 g/kWh).
        let coverage = Coverage {
            energy_wh: 79_056,
            matched: vec![(50_000, Decimal::ZERO), (10_000, decimal("230"))],
            hourly_matched_wh: 0,
        };
        let result = emissions(&coverage, decimal("821.391"), Some(decimal("900")));
        // Location: 79.056 kWh × 821.391 = 64,935.887… g → 64.936 kg.
        assert_eq!(kilograms(result.location_g), "64.936");
        // Market: 10 kWh × 230 = 2,300 g + 19.056 kWh × 900 = 17,150.4 g → 19.450 kg.
        assert_eq!(kilograms(result.market_g), "19.450");
        assert_eq!(share(result.matched_wh, coverage.energy_wh), "0.7590");
        assert!(!result.residual_mix_missing);
        // Without a residual mix the grid average stands in, flagged:
        // 2,300 + 19.056 × 821.391 = 2,300 + 15,652.427… = 17,952.427 g → 17.952 kg.
        let fallback = emissions(&coverage, decimal("821.391"), None);
        assert_eq!(kilograms(fallback.market_g), "17.952");
        assert!(fallback.residual_mix_missing);
    }

    #[test]
    fn the_zone_factor_wins_then_the_latest_year_not_after() {
        let row = |zone: &str, year, g: &str| FactorRow {
            dataset: "d".into(),
            version: "v".into(),
            zone: zone.into(),
            year,
            basis: Basis::Lifecycle,
            g_per_kwh: decimal(g),
            source: "s".into(),
        };
        let factors = vec![
            row("NO", 2023, "30.08"),
            row("NO2", 2024, "18"),
            row("KZ", 2022, "800"),
            row("KZ", 2023, "821.391"),
        ];
        let pick = |zone, country, year| {
            pick(&factors, Basis::Lifecycle, zone, country, year).map(|f| f.g_per_kwh.to_string())
        };
        assert_eq!(pick("NO2", "NO", 2026).as_deref(), Some("18"));
        assert_eq!(pick("NO1", "NO", 2026).as_deref(), Some("30.08"));
        assert_eq!(pick("KZ", "KZ", 2022).as_deref(), Some("800"));
        assert_eq!(pick("KZ", "KZ", 2030).as_deref(), Some("821.391"));
        assert_eq!(pick("KZ", "KZ", 2000).as_deref(), Some("800"));
        assert_eq!(pick("CA-QC", "CA", 2026), None);
    }
}
