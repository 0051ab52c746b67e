//! Demo carbon data: the public emission factors and ASIC models from the shared data
//! directory, four hosting facilities (Québec, southern Norway, Iceland, Kazakhstan), rental
//! orders for the demo users from 90 days ago to 30 days ahead, certificates from each zone's
//! registry (some hourly), matched, and one retirement, so the footprint shows real numbers.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use chrono::{Duration, DurationRound, NaiveDateTime};
use rust_decimal::Decimal;

use crate::audit::Actor;
use crate::carbon::factors::FactorFormat;
use crate::carbon::import::{import_factors, FactorSource};
use crate::carbon::matching::VintageRules;
use crate::carbon::store::{self, NewCertificate, NewFacility, NewOrder, NewRetirement};
use crate::carbon::Scheme;
use crate::db::{write_transaction, Db};
use crate::error::AppError;

/// What the demo's carbon part holds.
pub struct DemoCarbon {
    pub factors: usize,
    pub facilities: usize,
    pub orders: usize,
    pub certificates: usize,
    pub energy_wh: i64,
    pub matched_wh: i64,
}

struct Site {
    name: &'static str,
    country: &'static str,
    zone: &'static str,
    pue_permille: i32,
    model: &'static str,
    units: i32,
    /// The zone's registry, scheme, generator and technology, and the g CO2e/kWh it conveys.
    registry: &'static str,
    scheme: Scheme,
    device: &'static str,
    technology: &'static str,
    g_per_kwh: &'static str,
    /// Share of the zone's energy the platform bought certificates for, in per cent.
    covered_percent: i64,
}

const SITES: [Site; 4] = [
    Site {
        name: "qc-montreal-1",
        country: "CA",
        zone: "CA-QC",
        pue_permille: 1_100,
        model: "Antminer S19 XP",
        units: 1_200,
        registry: "NAR",
        scheme: Scheme::Rec,
        device: "HQ-BEAUHARNOIS",
        technology: "hydro",
        g_per_kwh: "0",
        covered_percent: 100,
    },
    Site {
        name: "no2-kristiansand",
        country: "NO",
        zone: "NO2",
        pue_permille: 1_050,
        model: "Antminer S21",
        units: 2_000,
        registry: "Elhub",
        scheme: Scheme::Go,
        device: "SIRA-KVINA-TONSTAD",
        technology: "hydro",
        g_per_kwh: "0",
        covered_percent: 90,
    },
    Site {
        name: "is-reykjanes-1",
        country: "IS",
        zone: "IS",
        pue_permille: 1_040,
        model: "Antminer S21 Pro",
        units: 1_500,
        registry: "Landsnet",
        scheme: Scheme::Go,
        device: "HS-ORKA-SVARTSENGI",
        technology: "geothermal",
        // The per-source life-cycle factor for geothermal in the shared data.
        g_per_kwh: "38",
        covered_percent: 100,
    },
    Site {
        name: "kz-ekibastuz-2",
        country: "KZ",
        zone: "KZ",
        pue_permille: 1_120,
        model: "Antminer S19j Pro",
        units: 3_000,
        registry: "Evident",
        scheme: Scheme::Irec,
        device: "KZ-ERMENTAU-WIND",
        technology: "wind",
        g_per_kwh: "0",
        covered_percent: 40,
    },
];

/// Reads `model,hashrate_ths,power_w,…` into hashrate (thousandths of TH/s) and W per model.
fn asic_models(path: &Path) -> anyhow::Result<HashMap<String, (i64, i64)>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut models = HashMap::new();
    for record in reader.records() {
        let record = record?;
        let hashrate: Decimal = record.get(1).unwrap_or_default().parse()?;
        let power: i64 = record.get(2).unwrap_or_default().parse()?;
        let hashrate_mths = i64::try_from(hashrate * Decimal::from(1_000))?;
        models.insert(
            record.get(0).unwrap_or_default().to_string(),
            (hashrate_mths, power),
        );
    }
    Ok(models)
}

fn load_factors(db: &Db, directory: &Path) -> anyhow::Result<usize> {
    let sources = [
        (
            "grid_emission_factors.csv",
            FactorFormat::EmberCsv,
            "codecarbon-2024",
            None,
        ),
        (
            "nordic_zones.json",
            FactorFormat::NordicJson,
            "2026-01-24",
            None,
        ),
        (
            "canada_provinces_energy_mix_2023.json",
            FactorFormat::CanadaProvinces,
            "2023",
            Some(2023),
        ),
    ];
    let per_source = directory.join("carbon_intensity_per_source.json");
    let mut stored = 0;
    for (file, format, version, year) in sources {
        let (inserted, _) = import_factors(
            db,
            &FactorSource {
                path: &directory.join(file),
                format,
                version,
                per_source: Some(&per_source),
                year,
            },
        )?;
        stored += inserted;
    }
    Ok(stored)
}

/// Seeds the carbon demo from the shared carbon data directory.
pub fn seed(
    db: &Db,
    directory: &Path,
    user_ids: &[(String, String)],
    platform: &Actor,
    officer: &Actor,
) -> anyhow::Result<DemoCarbon> {
    let factors = load_factors(db, directory)?;
    let models = asic_models(&directory.join("asic_models.csv"))?;
    let now = crate::db::now();
    let today = now.duration_trunc(Duration::days(1)).unwrap_or(now);
    let mut connection = db.connection()?;
    let summary = write_transaction(&mut connection, |connection| {
        let mut facility_ids = Vec::new();
        for site in &SITES {
            let (hashrate_mths, power_w) = models.get(site.model).copied().ok_or_else(|| {
                AppError::NotFound(format!("{} is not in asic_models.csv", site.model))
            })?;
            let facility = store::create_facility(
                connection,
                &NewFacility {
                    name: site.name.into(),
                    country: site.country.into(),
                    market_zone: site.zone.into(),
                    pue_permille: site.pue_permille,
                    miners: vec![(site.model.into(), hashrate_mths, power_w, site.units)],
                },
                now,
            )?;
            facility_ids.push(facility.id);
        }
        // Each user rents at one site in 30-day orders from 90 days ago to 30 days ahead.
        let mut orders = 0;
        let mut zone_energy: HashMap<usize, (i64, NaiveDateTime)> = HashMap::new();
        for (index, (external_ref, user_id)) in user_ids.iter().enumerate() {
            let site = index % SITES.len();
            for month in 0..4 {
                let starts_at = today + Duration::days(30 * month - 90);
                let ends_at = starts_at + Duration::days(30);
                let (order, _) = store::insert_order(
                    connection,
                    &NewOrder {
                        external_id: format!("{external_ref}-rental-{month}"),
                        user_id: user_id.clone(),
                        facility_id: facility_ids[site].clone(),
                        hashrate_mths: 100_000 + 50_000 * (index as i64 % 4),
                        starts_at,
                        ends_at,
                        metered_wh: None,
                    },
                    now,
                )?;
                orders += 1;
                let entry = zone_energy.entry(site).or_insert((0, starts_at));
                entry.0 += order.energy_wh;
                entry.1 = entry.1.min(starts_at);
            }
        }
        // Each zone's certificates: monthly issues from its registry for the three months
        // generated so far, covering the bought share of all four months (the scheme's vintage
        // window lets them cover the month ahead), and in Norway hourly certificates for the
        // last two days.
        let mut certificates = Vec::new();
        for (site_index, (energy_wh, first)) in &zone_energy {
            let site = &SITES[*site_index];
            let covered = energy_wh * site.covered_percent / 100;
            let issues = 3;
            for issue in 0..issues {
                let generation_start = *first + Duration::days(30 * issue);
                certificates.push(NewCertificate {
                    scheme: site.scheme,
                    registry: site.registry.into(),
                    serial: format!("{}-{}-{:04}", site.registry, site.device, issue + 1),
                    device_id: site.device.into(),
                    technology: site.technology.into(),
                    market_zone: site.zone.into(),
                    country: site.country.into(),
                    generation_start,
                    generation_end: generation_start + Duration::days(30),
                    volume_wh: covered / issues,
                    g_per_kwh: site.g_per_kwh.parse().unwrap_or_default(),
                    expires_at: Some(generation_start + Duration::days(365)),
                    supersedes: None,
                });
            }
            if site.zone == "NO2" {
                for hour in 0..48 {
                    let generation_start = today - Duration::hours(48 - hour);
                    certificates.push(NewCertificate {
                        scheme: Scheme::Hourly,
                        registry: "Granular".into(),
                        serial: format!("GC-NO2-SAUDA-{}", generation_start.format("%Y%m%d%H")),
                        device_id: "SAUDA-HYDRO".into(),
                        technology: "hydro".into(),
                        market_zone: site.zone.into(),
                        country: site.country.into(),
                        generation_start,
                        generation_end: generation_start + Duration::hours(1),
                        volume_wh: 5_000,
                        g_per_kwh: Decimal::ZERO,
                        expires_at: None,
                        supersedes: None,
                    });
                }
            }
        }
        store::insert_certificates(connection, &certificates, &officer.id, now)?;
        let report = store::match_all(connection, &VintageRules::default(), &platform.id, now)?;
        // The first user's finished months are retired on their behalf.
        if let Some((_, user_id)) = user_ids.first() {
            store::retire(
                connection,
                &NewRetirement {
                    user_id: user_id.clone(),
                    beneficiary: "Wei Zhang".into(),
                    period_start: today - Duration::days(90),
                    period_end: today - Duration::days(30),
                    registry_reference: "NAR-RET-DEMO-000123".into(),
                },
                &officer.id,
                now,
            )?;
        }
        Ok::<_, AppError>(DemoCarbon {
            factors,
            facilities: SITES.len(),
            orders,
            certificates: certificates.len(),
            energy_wh: zone_energy.values().map(|(wh, _)| wh).sum(),
            matched_wh: report.annual_wh + report.hourly_wh,
        })
    })?;
    Ok(summary)
}
