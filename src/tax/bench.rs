//! `hashgate bench tax`: one user-year statement (365 payouts) as JSON and as PDF, and the CARF
//! export over every user's year, with its rows per second and peak memory, on a fresh database
//! of each backend.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::bench::{latency_line, on_each_backend, peak_memory_mib, problem, reset_peak_memory};
use crate::db::{write_transaction, Backend, Db};
use crate::jurisdiction::Jurisdictions;
use crate::ledger::payouts::PayoutInput;
use crate::ledger::store::{self, NewRate};
use crate::metrics::{per_second, seconds_text};

pub struct TaxBenchOptions {
    pub users: usize,
    /// Daily payouts per user in the year (at most 365).
    pub days: usize,
    /// Timed statements of each kind.
    pub samples: usize,
    pub postgres_url: Option<String>,
    /// Skip SQLite (the full-size PostgreSQL run alone takes half an hour to set up).
    pub postgres_only: bool,
}

/// The benchmark year: complete, in the past.
const YEAR: i32 = 2025;

/// Prices and USD→HKD for every day of the year and the day before.
fn year_rates() -> Vec<NewRate> {
    let first = chrono::NaiveDate::from_ymd_opt(YEAR, 1, 1).unwrap_or_default();
    (-1..366)
        .flat_map(|day| {
            let as_of = (first + chrono::Duration::days(day))
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default();
            [
                NewRate {
                    base: "BTC".into(),
                    quote: "USD".into(),
                    as_of,
                    rate: rust_decimal::Decimal::new(9_000_000 + day * 1_000, 2),
                },
                NewRate {
                    base: "USD".into(),
                    quote: "HKD".into(),
                    as_of,
                    rate: rust_decimal::Decimal::new(78_000 + day % 50, 4),
                },
            ]
        })
        .collect()
}

/// Each user's daily payout at a time of day that differs by user, day after day.
fn year_payouts(users: &[String], days: usize) -> impl Iterator<Item = PayoutInput> + '_ {
    let mut random = rand::rngs::StdRng::seed_from_u64(7);
    let first = chrono::NaiveDate::from_ymd_opt(YEAR, 1, 1).unwrap_or_default();
    (0..days).flat_map(move |day| {
        let date = first + chrono::Duration::days(day as i64);
        let amounts: Vec<u32> = (0..users.len())
            .map(|_| random.gen_range(1_000..90_000))
            .collect();
        users
            .iter()
            .enumerate()
            .map(move |(index, user)| PayoutInput {
                user_id: user.clone(),
                asset: "BTC".into(),
                amount: format!("0.{:08}", amounts[index]),
                occurred_at: format!("{date}T{:02}:{:02}:00Z", 1 + index % 20, index % 60),
                order_id: format!("order-{index}"),
                facility_id: "facility-1".into(),
                external_id: format!("tax-{day}-{index}"),
            })
    })
}

pub fn run(options: &TaxBenchOptions) -> anyhow::Result<String> {
    on_each_backend(
        options.postgres_url.as_deref(),
        2,
        !options.postgres_only,
        |db, backend| bench_backend(db, backend, options),
    )
}

fn bench_backend(db: &Db, backend: Backend, options: &TaxBenchOptions) -> anyhow::Result<String> {
    let mut out = String::new();
    let name = backend.name();
    let staleness = chrono::Duration::days(2);
    let cipher =
        crate::crypto::FieldCipher::from_base64(&crate::crypto::FieldCipher::generate_key())
            .map_err(anyhow::Error::msg)?;
    let jurisdictions = Jurisdictions::load_default()?;
    let mut connection = db.connection().map_err(problem)?;

    // Set-up (not timed): users in Hong Kong, a year of rates, a year of daily payouts.
    let started = Instant::now();
    let users =
        crate::bench::insert_users(&mut connection, &cipher, "tax-bench", options.users, "HK")
            .map_err(problem)?;
    let rates = year_rates();
    write_transaction(&mut connection, |connection| {
        store::insert_rates(connection, &rates, "bench")
    })
    .map_err(problem)?;
    let days = options.days.min(365);
    let written = crate::bench::ingest_all(&mut connection, year_payouts(&users, days), staleness)?;
    crate::bench::settle_after_load(&mut connection, None)?;
    writeln!(
        out,
        "{name}: set-up: {} users × {days} payouts = {written} ledger rows in {} s",
        users.len(),
        seconds_text(started.elapsed())
    )?;

    // 1. One user-year statement: the JSON computation, then the PDF.
    let user = users.first().cloned().unwrap_or_default();
    let report_for = |connection: &mut crate::db::DbConnection, user: &str| {
        super::service::user_report(
            connection,
            &cipher,
            &jurisdictions,
            staleness,
            (user, YEAR),
            None,
        )
        .map_err(problem)
    };
    let report_of = |connection: &mut crate::db::DbConnection| report_for(connection, &user);
    let mut compute_samples = Vec::with_capacity(options.samples);
    let mut json_bytes = 0;
    for _ in 0..options.samples {
        let started = Instant::now();
        let (_, report) = report_of(&mut connection)?;
        json_bytes = serde_json::to_vec(&report)?.len();
        compute_samples.push(started.elapsed());
    }
    crate::scorecard::record_millis(
        7,
        &format!(
            "tax statement JSON, p99, {} users × {days} payouts",
            options.users
        ),
        name,
        5.0,
        crate::bench::p99(&compute_samples),
    );
    writeln!(
        out,
        "{name}: {}",
        latency_line(
            &format!("statement as JSON ({days} payouts, {json_bytes} bytes)"),
            compute_samples
        )
    )?;
    // The same computation for many users, each for the first time: their entries are not yet
    // in the database's cache.
    let stride = (users.len() / options.samples).max(1);
    let first_statements = users
        .iter()
        .step_by(stride)
        .skip(1)
        .take(options.samples)
        .map(|user| {
            let started = Instant::now();
            report_for(&mut connection, user)?;
            Ok(started.elapsed())
        })
        .collect::<anyhow::Result<Vec<Duration>>>()?;
    writeln!(
        out,
        "{name}: {}",
        latency_line(
            &format!(
                "statement as JSON, each of {} users' first",
                first_statements.len()
            ),
            first_statements
        )
    )?;
    let (holder, report) = report_of(&mut connection)?;
    let started = Instant::now();
    let first = super::statement::pdf(&holder, &report, crate::db::now()).map_err(problem)?;
    let first_pdf = started.elapsed();
    let mut pdf_samples: Vec<Duration> = Vec::with_capacity(options.samples);
    for _ in 0..options.samples {
        let started = Instant::now();
        super::statement::pdf(&holder, &report, crate::db::now()).map_err(problem)?;
        pdf_samples.push(started.elapsed());
    }
    writeln!(
        out,
        "{name}: {} (first, with the font parse: {} ms)",
        latency_line(
            &format!("statement as PDF ({} bytes)", first.len()),
            pdf_samples
        ),
        crate::metrics::millis_text(first_pdf)
    )?;
    let mut with_pdf = Vec::with_capacity(options.samples);
    for _ in 0..options.samples {
        let started = Instant::now();
        let (holder, report) = report_of(&mut connection)?;
        super::statement::pdf(&holder, &report, crate::db::now()).map_err(problem)?;
        with_pdf.push(started.elapsed());
    }
    crate::scorecard::record_millis(
        7,
        "tax statement PDF from the database, p99",
        name,
        50.0,
        crate::bench::p99(&with_pdf),
    );
    writeln!(
        out,
        "{name}: {}",
        latency_line("statement as PDF from the database", with_pdf)
    )?;

    // 2. The CARF export of every user's year.
    let hong_kong = jurisdictions
        .get("HK")
        .ok_or_else(|| anyhow::anyhow!("no HK rules"))?;
    let entity = crate::config::ReportingEntity {
        name: "bench platform".into(),
        tin: None,
        country: "HK".into(),
        address: "1 Harbour Road".into(),
    };
    let request = super::carf::CarfRequest {
        jurisdiction: hong_kong,
        year: YEAR,
        entity: &entity,
        staleness,
        now: crate::db::now(),
        test: true,
    };
    let mut sink = CountingSink(0);
    reset_peak_memory();
    let started = Instant::now();
    let summary =
        super::carf::export(&mut connection, &cipher, &request, &mut sink).map_err(problem)?;
    let elapsed = started.elapsed();
    crate::scorecard::record(
        7,
        &format!("CARF export, {} payout rows", summary.payouts),
        name,
        crate::scorecard::Target::AtLeast(500_000.0),
        per_second(summary.payouts, elapsed) as f64,
        "rows/s",
    );
    // The whole bench process during the export: an upper bound on what the export holds.
    if let Some(peak) = peak_memory_mib() {
        crate::scorecard::record(
            7,
            "CARF export, peak resident memory of the process",
            name,
            crate::scorecard::Target::AtMost(200.0),
            peak as f64,
            "MiB",
        );
    }
    writeln!(
        out,
        "{name}: CARF export: {} rows, {} users, {} KB of XML in {} s = {} rows/s, {}",
        summary.payouts,
        summary.users,
        sink.0 / 1_000,
        seconds_text(elapsed),
        per_second(summary.payouts, elapsed),
        peak_memory_mib()
            .map(|mib| format!("{mib} MiB peak RSS (the whole process)"))
            .unwrap_or_else(|| "peak RSS unavailable".into())
    )?;
    Ok(out)
}

/// Discards what is written, counting the bytes.
struct CountingSink(u64);

impl std::io::Write for CountingSink {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        self.0 += buffer.len() as u64;
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
