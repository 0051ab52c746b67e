//! `hashgate bench carbon`: a matching run over many open orders and certificates, annual mode
//! and hourly mode, timed on a fresh database of each backend.

use std::fmt::Write as _;
use std::time::Instant;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

use super::factors::FactorRow;
use super::matching::VintageRules;
use super::store::{self, NewCertificate, NewFacility, NewOrder};
use super::{Basis, Scheme};
use crate::bench::{on_each_backend, problem};
use crate::db::{write_transaction, Backend, Db, DbConnection};
use crate::error::AppError;
use crate::metrics::{per_second, seconds_text};
use crate::users::NewUser;

pub struct CarbonBenchOptions {
    /// Open orders of 30 days matched in annual mode.
    pub orders: usize,
    pub certificates: usize,
    /// Orders matched hour by hour, each running `hourly_days` days.
    pub hourly_orders: usize,
    pub hourly_days: i64,
    pub postgres_url: Option<String>,
}

pub fn run(options: &CarbonBenchOptions) -> anyhow::Result<String> {
    on_each_backend(options.postgres_url.as_deref(), 2, true, |db, backend| {
        bench_backend(db, backend, options)
    })
}

fn start_of_2026() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 1, 1)
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

/// Users, the zone factors and one facility per zone (not timed).
fn set_up(
    connection: &mut DbConnection,
    zones: &[&str],
) -> Result<(Vec<String>, Vec<String>), AppError> {
    let cipher =
        crate::crypto::FieldCipher::from_base64(&crate::crypto::FieldCipher::generate_key())
            .map_err(|e| AppError::internal(anyhow::anyhow!(e)))?;
    write_transaction(connection, |connection| {
        let factors: Vec<FactorRow> = zones
            .iter()
            .map(|zone| FactorRow {
                dataset: "bench".into(),
                version: "1".into(),
                zone: (*zone).into(),
                year: 2025,
                basis: Basis::Lifecycle,
                g_per_kwh: Decimal::from(100),
                source: "bench".into(),
            })
            .collect();
        store::insert_factors(connection, &factors, crate::db::now())?;
        let users = (0..1_000)
            .map(|index| {
                crate::users::store::insert(
                    connection,
                    &cipher,
                    &NewUser {
                        external_ref: format!("carbon-bench-{index}"),
                        email: format!("carbon-bench-{index}@example.com"),
                        residence_jurisdiction: "KZ".into(),
                        preferred_language: "en".into(),
                        date_of_birth: None,
                        address: None,
                    },
                )
                .map(|user| user.id)
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        let facilities = zones
            .iter()
            .map(|zone| {
                store::create_facility(
                    connection,
                    &NewFacility {
                        name: format!("bench-{zone}"),
                        country: zone[..2].into(),
                        market_zone: (*zone).into(),
                        pue_permille: 1_080,
                        miners: vec![("Antminer S19j Pro".into(), 100_000, 3_050, 1_000)],
                    },
                    crate::db::now(),
                )
                .map(|facility| facility.id)
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        Ok((users, facilities))
    })
}

fn insert_orders(
    connection: &mut DbConnection,
    prefix: &str,
    count: usize,
    (users, facilities): (&[String], &[String]),
    period_of: impl Fn(usize) -> (NaiveDateTime, NaiveDateTime),
) -> Result<(), AppError> {
    let mut random = rand::rngs::StdRng::seed_from_u64(11);
    for chunk in (0..count).collect::<Vec<_>>().chunks(5_000) {
        write_transaction(connection, |connection| {
            for &index in chunk {
                let (starts_at, ends_at) = period_of(index);
                store::insert_order(
                    connection,
                    &NewOrder {
                        external_id: format!("{prefix}-{index}"),
                        user_id: users[index % users.len()].clone(),
                        facility_id: facilities[index % facilities.len()].clone(),
                        hashrate_mths: random.gen_range(50..300) * 1_000,
                        starts_at,
                        ends_at,
                        metered_wh: None,
                    },
                    crate::db::now(),
                )?;
            }
            Ok::<_, AppError>(())
        })?;
    }
    Ok(())
}

fn insert_certificates(
    connection: &mut DbConnection,
    certificates: Vec<NewCertificate>,
) -> Result<(), AppError> {
    for chunk in certificates.chunks(5_000) {
        write_transaction(connection, |connection| {
            store::insert_certificates(connection, chunk, "bench", crate::db::now()).map(|_| ())
        })?;
    }
    Ok(())
}

fn certificate(
    serial: String,
    zone: &str,
    scheme: Scheme,
    generation: (NaiveDateTime, NaiveDateTime),
    volume_wh: i64,
    expires_at: Option<NaiveDateTime>,
) -> NewCertificate {
    NewCertificate {
        scheme,
        registry: "bench".into(),
        device_id: serial.clone(),
        serial,
        technology: "hydro".into(),
        market_zone: zone.into(),
        country: zone[..2].into(),
        generation_start: generation.0,
        generation_end: generation.1,
        volume_wh,
        g_per_kwh: Decimal::ZERO,
        expires_at,
        supersedes: None,
    }
}

/// Runs the matcher once, over one zone or all of them, writes its line and returns how long
/// it took.
fn timed_match(
    connection: &mut DbConnection,
    out: &mut String,
    (label, zone): (&str, Option<&str>),
) -> anyhow::Result<std::time::Duration> {
    let started = Instant::now();
    let report = write_transaction(connection, |connection| {
        let (vintage, now) = (VintageRules::default(), crate::db::now());
        match zone {
            Some(zone) => store::match_zone(connection, zone, &vintage, "bench", now),
            None => store::match_all(connection, &vintage, "bench", now),
        }
    })
    .map_err(problem)?;
    let elapsed = started.elapsed();
    writeln!(
        out,
        "{label}: {} orders, {} allocations ({} Wh annual, {} Wh hourly) in {} s = {} allocations/s",
        report.orders,
        report.allocations,
        report.annual_wh,
        report.hourly_wh,
        seconds_text(elapsed),
        per_second(report.allocations as u64, elapsed)
    )?;
    Ok(elapsed)
}

fn bench_backend(
    db: &Db,
    backend: Backend,
    options: &CarbonBenchOptions,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let name = backend.name();
    let mut connection = db.connection().map_err(problem)?;
    // Annual matching in three zones; hourly in the fourth (NO2), so each run times one mode.
    let zones = ["KZ", "NO2", "IS", "CA-QC"];
    let annual_zones = ["KZ", "IS", "CA-QC"];
    let started = Instant::now();
    let (users, facilities) = set_up(&mut connection, &zones).map_err(problem)?;

    // Annual: 30-day orders starting across 2026, I-REC certificates of 1 to 5 MWh generated
    // in a month of 2026 and expiring within two years.
    let year = start_of_2026();
    insert_orders(
        &mut connection,
        "annual",
        options.orders,
        (
            &users,
            &[
                facilities[0].clone(),
                facilities[2].clone(),
                facilities[3].clone(),
            ],
        ),
        |index| {
            let start = year + Duration::days((index % 330) as i64);
            (start, start + Duration::days(30))
        },
    )
    .map_err(problem)?;
    let mut random = rand::rngs::StdRng::seed_from_u64(5);
    let certificates: Vec<NewCertificate> = (0..options.certificates)
        .map(|index| {
            let month = year + Duration::days(30 * random.gen_range(0..11));
            certificate(
                format!("IREC-{index:08}"),
                annual_zones[index % annual_zones.len()],
                Scheme::Irec,
                (month, month + Duration::days(30)),
                random.gen_range(1_000..5_000) * 1_000,
                Some(month + Duration::days(random.gen_range(365..730))),
            )
        })
        .collect();
    insert_certificates(&mut connection, certificates).map_err(problem)?;
    if backend == Backend::Postgres {
        diesel::connection::SimpleConnection::batch_execute(&mut **connection, "ANALYZE")?;
    }
    writeln!(
        out,
        "{name}: set-up: {} orders, {} certificates in {} s",
        options.orders,
        options.certificates,
        seconds_text(started.elapsed())
    )?;
    let annual = timed_match(
        &mut connection,
        &mut out,
        (
            &format!(
                "{name}: annual matching of {} orders against {} certificates",
                options.orders, options.certificates
            ),
            None,
        ),
    )?;
    crate::scorecard::record(
        8,
        &format!(
            "annual matching, {} orders × {} certificates",
            options.orders, options.certificates
        ),
        name,
        crate::scorecard::Target::AtMost(30.0),
        annual.as_secs_f64(),
        "s",
    );

    // Hourly: orders in one zone over the same days, a one-hour certificate per hour covering
    // about half of that hour's consumption.
    let hourly_start = year + Duration::days(340);
    let days = options.hourly_days;
    insert_orders(
        &mut connection,
        "hourly",
        options.hourly_orders,
        (&users, &facilities[1..2]),
        |_| (hourly_start, hourly_start + Duration::days(days)),
    )
    .map_err(problem)?;
    // 175 TH/s on average × 30.5 J/TH × 1.08 ≈ 5.8 kW per order.
    let per_hour = options.hourly_orders as i64 * 2_900;
    let certificates: Vec<NewCertificate> = (0..days * 24)
        .map(|hour| {
            let start = hourly_start + Duration::hours(hour);
            certificate(
                format!("GC-NO2-{hour:06}"),
                "NO2",
                Scheme::Hourly,
                (start, start + Duration::hours(1)),
                per_hour.max(1),
                None,
            )
        })
        .collect();
    insert_certificates(&mut connection, certificates).map_err(problem)?;
    let hourly = timed_match(
        &mut connection,
        &mut out,
        // Only the hourly zone: the annual orders left open in the others are not this run's.
        (
            &format!(
                "{name}: hourly matching of {} orders × {days} days against {} one-hour certificates",
                options.hourly_orders,
                days * 24
            ),
            Some("NO2"),
        ),
    )?;
    // The target is 60 s for 10,000 orders × 30 days; a smaller run gets its share of it.
    let share = options.hourly_orders as f64 * days as f64 / 300_000.0;
    crate::scorecard::record(
        8,
        &format!(
            "hourly matching, {} orders × {days} days",
            options.hourly_orders
        ),
        name,
        crate::scorecard::Target::AtMost(60.0 * share),
        hourly.as_secs_f64(),
        "s",
    );
    Ok(out)
}
