//! Emission factors as versioned data: each one names its dataset, version, zone, year and basis,
//! and is read from the public files it was published in (Ember via Our World in Data, the
//! Nordic bidding zones, Canadian provincial mixes) or from a plain CSV (residual mixes).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Basis;
use crate::error::FieldError;

/// One factor, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FactorRow {
    pub dataset: String,
    pub version: String,
    /// A market zone (`CA-QC`, `NO2`) or an ISO 3166-1 alpha-2 country (`KZ`).
    pub zone: String,
    pub year: i32,
    #[schema(value_type = String)]
    pub basis: Basis,
    /// Grams of CO2e per kWh, as a decimal string.
    #[schema(value_type = String)]
    pub g_per_kwh: Decimal,
    pub source: String,
}

/// The file formats `hashgate import emission-factors` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorFormat {
    /// `iso3,country,year,g_co2e_per_kwh,basis,…,source` (Ember via OWID, as codecarbon ships it).
    EmberCsv,
    /// codecarbon's `nordic_zones.json`: `data.<zone>.emission_factor` and `.year`.
    NordicJson,
    /// codecarbon's Canadian provincial mix (per cent by source), weighted by the per-source
    /// life-cycle factors given separately.
    CanadaProvinces,
    /// `dataset,version,zone,year,basis,g_per_kwh,source`: residual mixes and anything else.
    Plain,
}

impl FactorFormat {
    pub fn parse(text: &str) -> Option<FactorFormat> {
        match text {
            "ember-csv" => Some(FactorFormat::EmberCsv),
            "nordic-json" => Some(FactorFormat::NordicJson),
            "canada-provinces" => Some(FactorFormat::CanadaProvinces),
            "plain" => Some(FactorFormat::Plain),
            _ => None,
        }
    }
}

fn decimal_of(value: f64) -> Option<Decimal> {
    // The JSON datasets print factors with at most a few decimals; three keep them exact.
    Decimal::from_f64_retain(value).map(|decimal| decimal.round_dp(3).normalize())
}

fn bad(line: usize, message: impl Into<String>) -> FieldError {
    FieldError::new(format!("line {line}"), "invalid_row", message)
}

/// Reads Ember's country factors; zones become alpha-2 codes.
pub fn read_ember_csv(text: &str, version: &str) -> Result<Vec<FactorRow>, Vec<FieldError>> {
    #[derive(Deserialize)]
    struct Row {
        iso3: String,
        year: i32,
        g_co2e_per_kwh: String,
        basis: String,
        source: String,
    }
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (index, record) in reader.deserialize::<Row>().enumerate() {
        let line = index + 2;
        let row = match record {
            Ok(row) => row,
            Err(error) => {
                errors.push(bad(line, error.to_string()));
                continue;
            }
        };
        let Some(zone) = super::countries::alpha2(&row.iso3) else {
            errors.push(bad(line, format!("unknown country `{}`", row.iso3)));
            continue;
        };
        let (Some(basis), Ok(g_per_kwh)) = (
            Basis::parse(&row.basis),
            row.g_co2e_per_kwh.parse::<Decimal>(),
        ) else {
            errors.push(bad(line, "basis or g_co2e_per_kwh is not valid"));
            continue;
        };
        rows.push(FactorRow {
            dataset: "ember-owid".into(),
            version: version.into(),
            zone: zone.into(),
            year: row.year,
            basis,
            g_per_kwh,
            source: row.source,
        });
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// Reads the Nordic bidding-zone factors (life-cycle basis, per the dataset's notes).
pub fn read_nordic_json(text: &str, version: &str) -> Result<Vec<FactorRow>, Vec<FieldError>> {
    #[derive(Deserialize)]
    struct Zone {
        emission_factor: f64,
        year: i32,
    }
    #[derive(Deserialize)]
    struct Metadata {
        source: String,
    }
    #[derive(Deserialize)]
    struct File {
        data: BTreeMap<String, Zone>,
        metadata: Metadata,
    }
    let file: File =
        serde_json::from_str(text).map_err(|error| vec![bad(error.line(), error.to_string())])?;
    file.data
        .into_iter()
        .map(|(zone, factor)| {
            Ok(FactorRow {
                dataset: "codecarbon-nordic".into(),
                version: version.into(),
                g_per_kwh: decimal_of(factor.emission_factor)
                    .ok_or_else(|| vec![bad(1, format!("{zone}: not a number"))])?,
                zone,
                year: factor.year,
                basis: Basis::Lifecycle,
                source: file.metadata.source.clone(),
            })
        })
        .collect()
}

/// Provinces by the names the mix file uses, with their ISO 3166-2 codes.
const PROVINCES: [(&str, &str); 13] = [
    ("alberta", "CA-AB"),
    ("british columbia", "CA-BC"),
    ("manitoba", "CA-MB"),
    ("new brunswick", "CA-NB"),
    ("newfoundland and labrador", "CA-NL"),
    ("northwest territories", "CA-NT"),
    ("nova scotia", "CA-NS"),
    ("nunavut", "CA-NU"),
    ("ontario", "CA-ON"),
    ("prince edward island", "CA-PE"),
    ("quebec", "CA-QC"),
    ("saskatchewan", "CA-SK"),
    ("yukon", "CA-YT"),
];

/// The mix file's source names and the per-source file's.
const SOURCES: [(&str, &str); 7] = [
    ("coal", "coal"),
    ("naturalGas", "natural_gas"),
    ("petroleum", "petroleum"),
    ("hydro", "hydroelectricity"),
    ("nuclear", "nuclear"),
    ("solar", "solar"),
    ("wind", "wind"),
];

/// A province's factor is its generation mix weighted by per-source life-cycle factors:
/// Σ share × factor / Σ share over the sources that have a factor. Sources without one
/// (biomass, tidal, other) are left out, and the source text says which and how much.
pub fn read_canada_provinces(
    mix_text: &str,
    per_source_text: &str,
    year: i32,
    version: &str,
) -> Result<Vec<FactorRow>, Vec<FieldError>> {
    let mixes: BTreeMap<String, BTreeMap<String, f64>> = serde_json::from_str(mix_text)
        .map_err(|error| vec![bad(error.line(), format!("mix file: {error}"))])?;
    let per_source: BTreeMap<String, serde_json::Value> = serde_json::from_str(per_source_text)
        .map_err(|error| vec![bad(error.line(), format!("per-source file: {error}"))])?;
    let mut rows = Vec::new();
    for (province, mix) in &mixes {
        let Some((_, zone)) = PROVINCES.iter().find(|(name, _)| name == province) else {
            return Err(vec![bad(1, format!("unknown province `{province}`"))]);
        };
        let mut weighted = Decimal::ZERO;
        let mut covered = Decimal::ZERO;
        let mut left_out = Vec::new();
        for (source, share) in mix.iter().filter(|(source, _)| *source != "total") {
            let share = decimal_of(*share).unwrap_or_default();
            if share.is_zero() {
                continue;
            }
            let factor = SOURCES
                .iter()
                .find(|(name, _)| name == source)
                .and_then(|(_, key)| per_source.get(*key))
                .and_then(serde_json::Value::as_f64)
                .and_then(decimal_of);
            match factor {
                Some(factor) => {
                    weighted += share * factor;
                    covered += share;
                }
                None => left_out.push(format!("{source} {share}%")),
            }
        }
        if covered.is_zero() {
            return Err(vec![bad(1, format!("{province}: no source has a factor"))]);
        }
        let mut source = "codecarbon canada_energy_mix × carbon_intensity_per_source".to_string();
        if !left_out.is_empty() {
            source.push_str(&format!(
                "; without a per-source factor, left out: {}",
                left_out.join(", ")
            ));
        }
        rows.push(FactorRow {
            dataset: "codecarbon-canada-provinces".into(),
            version: version.into(),
            zone: (*zone).into(),
            year,
            basis: Basis::Lifecycle,
            g_per_kwh: (weighted / covered).round_dp(3),
            source,
        });
    }
    Ok(rows)
}

/// Reads `dataset,version,zone,year,basis,g_per_kwh,source` rows.
pub fn read_plain_csv(text: &str) -> Result<Vec<FactorRow>, Vec<FieldError>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (index, record) in reader.deserialize::<FactorRow>().enumerate() {
        match record {
            Ok(row) => rows.push(row),
            Err(error) => errors.push(bad(index + 2, error.to_string())),
        }
    }
    errors.extend(
        rows.iter()
            .enumerate()
            .flat_map(|(index, row)| check(row).into_iter().map(move |e| (index, e)))
            .map(|(index, message)| bad(index + 2, message)),
    );
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// What is wrong with a factor, if anything.
pub fn check(row: &FactorRow) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, value) in [
        ("dataset", &row.dataset),
        ("version", &row.version),
        ("zone", &row.zone),
        ("source", &row.source),
    ] {
        if value.trim().is_empty() || value.len() > 200 {
            problems.push(format!("{name} must be 1 to 200 characters"));
        }
    }
    if !(1990..=2100).contains(&row.year) {
        problems.push("year must be between 1990 and 2100".into());
    }
    if row.g_per_kwh.is_sign_negative() || row.g_per_kwh > Decimal::from(2_000) {
        problems.push("g_per_kwh must be between 0 and 2000".into());
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ember_rows_become_alpha2_zones() {
        let text = "iso3,country,year,g_co2e_per_kwh,basis,total_twh,renewables_twh,source\n\
                    KAZ,Kazakhstan,2023,821.391,lifecycle,113.88,14.53,\"Ember (via Our World in Data), CC-BY-4.0\"\n";
        let rows = read_ember_csv(text, "2024-06").unwrap();
        assert_eq!(rows[0].zone, "KZ");
        assert_eq!(rows[0].g_per_kwh, "821.391".parse::<Decimal>().unwrap());
        assert_eq!(rows[0].basis, Basis::Lifecycle);
        let unknown = text.replace("KAZ", "XXX");
        assert!(read_ember_csv(&unknown, "v").is_err());
    }

    #[test]
    fn a_province_is_its_mix_weighted_by_per_source_factors() {
        // Québec 2023: (92.1 × 26 + 6.7 × 26 + 0.2 × 743 + 0.3 × 816 + 0.01 × 48)
        // / (92.1 + 6.7 + 0.2 + 0.3 + 0.01) = 2,962.68 / 99.31 = 29.8326… → 29.833 g/kWh; biomass (0.7 %)
        // has no per-source factor and is named as left out.
        let mix = r#"{"quebec": {"naturalGas": 0.2, "nuclear": 0.0, "petroleum": 0.3,
            "biomass": 0.7, "coal": 0.0, "solar": 0.01, "total": 100.01, "wind": 6.7, "hydro": 92.1}}"#;
        let per_source = r#"{"coal": 995, "natural_gas": 743, "petroleum": 816,
            "hydroelectricity": 26, "nuclear": 29, "solar": 48, "wind": 26, "unit": "g/kWh"}"#;
        let rows = read_canada_provinces(mix, per_source, 2023, "v1").unwrap();
        assert_eq!(rows[0].zone, "CA-QC");
        assert_eq!(rows[0].g_per_kwh, "29.833".parse::<Decimal>().unwrap());
        assert!(rows[0].source.contains("biomass 0.7%"));
    }

    #[test]
    fn plain_rows_are_checked() {
        let text = "dataset,version,zone,year,basis,g_per_kwh,source\n\
                    aib-residual,2024,NO,2024,residual_mix,501.5,AIB European Residual Mixes 2024\n\
                    aib-residual,2024,SE,2024,residual_mix,-1,x\n";
        let errors = read_plain_csv(text).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "line 3");
    }
}
