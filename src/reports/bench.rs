//! `hashgate bench reports`: a quarterly sandbox report over a quarter holding many payout
//! entries (every section, the chains verified, PDF rendered, files signed and stored), timed on
//! a fresh database of each backend.

use std::fmt::Write as _;
use std::time::Instant;

use crate::audit::Actor;
use crate::bench::{on_each_backend, peak_memory_mib, problem, reset_peak_memory};
use crate::db::{write_transaction, Backend, Db};
use crate::jurisdiction::Jurisdictions;
use crate::metrics::seconds_text;

pub struct ReportsBenchOptions {
    pub users: usize,
    /// Payout entries within the reported quarter.
    pub payouts: usize,
    /// Timed reports.
    pub samples: usize,
    pub postgres_url: Option<String>,
}

/// 2025-Q3 in Hong Kong (UTC+8): 2025-06-30T16:00Z, 92 days, within the priced days.
const QUARTER: &str = "2025-Q3";
const QUARTER_START: i64 = 1_751_299_200;

pub fn run(options: &ReportsBenchOptions) -> anyhow::Result<String> {
    on_each_backend(options.postgres_url.as_deref(), 2, true, |db, backend| {
        bench_backend(db, backend, options)
    })
}

fn bench_backend(
    db: &Db,
    backend: Backend,
    options: &ReportsBenchOptions,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let name = backend.name();
    let cipher =
        crate::crypto::FieldCipher::from_base64(&crate::crypto::FieldCipher::generate_key())
            .map_err(anyhow::Error::msg)?;
    let signer =
        super::signing::ReportSigner::from_base64(&super::signing::ReportSigner::generate_key())
            .map_err(anyhow::Error::msg)?;
    let jurisdictions = Jurisdictions::load_default()?;
    let hong_kong = jurisdictions
        .get("HK")
        .ok_or_else(|| anyhow::anyhow!("no HK jurisdiction"))?;
    let mut connection = db.connection().map_err(problem)?;

    let started = Instant::now();
    let users = crate::bench::insert_users(
        &mut connection,
        &cipher,
        "report-bench",
        options.users,
        "HK",
    )
    .map_err(problem)?;
    let rates = crate::bench::bench_rates();
    write_transaction(&mut connection, |connection| {
        crate::ledger::store::insert_rates(connection, &rates, "bench")
    })
    .map_err(problem)?;
    let rows =
        crate::bench::payout_rows_within(&users, "report", options.payouts, (QUARTER_START, 92));
    let written = crate::bench::ingest_all(&mut connection, rows, chrono::Duration::days(2))?;
    crate::bench::settle_after_load(&mut connection, None)?;
    writeln!(
        out,
        "{name}: set-up: {} users, {written} payouts in {QUARTER} in {} s",
        users.len(),
        seconds_text(started.elapsed())
    )?;

    for sample in 1..=options.samples {
        reset_peak_memory();
        let started = Instant::now();
        let report = write_transaction(&mut connection, |connection| {
            super::service::generate_sandbox(
                connection,
                super::service::Keys {
                    signer: &signer,
                    cipher: &cipher,
                },
                super::service::SandboxRequest {
                    jurisdiction: hong_kong,
                    period: super::Period::parse(QUARTER).map_err(anyhow::Error::msg)?,
                    reporting_entity: "bench platform",
                    carbon_basis: crate::carbon::Basis::Lifecycle,
                    actor: Actor::command_line(),
                    request_id: None,
                },
                crate::db::now(),
            )
            .map_err(problem)
        })?;
        let elapsed = started.elapsed();
        crate::scorecard::record(
            9,
            &format!("quarterly sandbox report over {written} payout entries, run {sample}"),
            name,
            crate::scorecard::Target::AtMost(10.0),
            elapsed.as_secs_f64(),
            "s",
        );
        let size: usize = super::store::files_of(&mut connection, &report.id)
            .map_err(problem)?
            .iter()
            .map(|file| file.content.len())
            .sum();
        writeln!(
            out,
            "{name}: quarterly sandbox report #{sample} over {written} payout entries \
             (all sections, both chains verified, {size} bytes signed and stored) in {} s; \
             peak memory {} MiB (target < 10 s)",
            seconds_text(elapsed),
            peak_memory_mib().map_or("?".into(), |mib| mib.to_string())
        )?;
    }
    Ok(out)
}
