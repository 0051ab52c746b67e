//! `hashgate bench ledger`: ingest throughput (batch path and CSV import), verification time,
//! read latency and peak memory, on a fresh database of each backend.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use rand::{Rng, SeedableRng};

use crate::audit::Actor;
use crate::chain::Verification;
use crate::db::{write_transaction, Backend, Db};
use crate::error::AppError;
use crate::ledger::import::{import_payouts, ImportOptions};
use crate::ledger::payouts::{validate_batch, PayoutInput, MAX_BATCH};
use crate::ledger::store::{self, EntryFilter, NewRate};
use crate::metrics::{millis_text, per_second, seconds_text};
use crate::users::NewUser;

pub struct BenchOptions {
    pub payouts: usize,
    pub users: usize,
    pub postgres_url: Option<String>,
}

/// The process's peak resident memory since the last reset, in MiB (Linux only).
pub(crate) fn peak_memory_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// Starts a new peak-memory measurement (Linux: writing 5 to clear_refs resets VmHWM).
pub(crate) fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn describe_memory() -> String {
    peak_memory_mib()
        .map(|mib| format!("{mib} MiB peak RSS"))
        .unwrap_or_else(|| "peak RSS unavailable".to_string())
}

/// A new API token for `role`, as `hashgate token create` makes it; returns its secret.
pub(crate) fn bench_token(
    state: &crate::AppState,
    role: crate::auth::Role,
) -> anyhow::Result<String> {
    let (secret, hash) = crate::auth::generate_token();
    let mut connection = state.db.connection().map_err(problem)?;
    crate::db::write_transaction(&mut connection, |connection| {
        let grant = crate::auth::TokenGrant {
            name: format!("bench {}", role.as_str()),
            role,
            jurisdiction: None,
            user_id: None,
        };
        crate::auth::store::create(
            connection,
            &grant,
            &hash,
            &crate::audit::Actor::command_line(),
            None,
        )
    })
    .map_err(problem)?;
    Ok(secret)
}

pub(crate) fn problem(error: AppError) -> anyhow::Error {
    anyhow::anyhow!(error.problem().detail)
}

pub(crate) fn percentile(sorted: &[Duration], fraction_per_thousand: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = (sorted.len() * fraction_per_thousand / 1000).min(sorted.len() - 1);
    sorted[index]
}

/// The 99th percentile of unsorted samples.
pub(crate) fn p99(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    percentile(&sorted, 990)
}

pub(crate) fn latency_line(label: &str, mut samples: Vec<Duration>) -> String {
    samples.sort();
    format!(
        "{label}: {} queries, p50 {} ms, p99 {} ms, max {} ms",
        samples.len(),
        millis_text(percentile(&samples, 500)),
        millis_text(percentile(&samples, 990)),
        millis_text(samples.last().copied().unwrap_or_default())
    )
}

/// One HTTP/1.1 request on a kept-alive connection, the body read and dropped; returns the
/// status.
pub(crate) fn http_request(
    stream: &mut std::io::BufReader<std::net::TcpStream>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> anyhow::Result<u16> {
    use std::io::{BufRead, Read};
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    match body {
        Some(body) => request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => request.push_str("\r\n"),
    }
    stream.get_mut().write_all(request.as_bytes())?;
    let mut status_line = String::new();
    stream.read_line(&mut status_line)?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("no HTTP status")?;
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        stream.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse()?;
            }
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok(status)
}

/// The service on a loopback port in its own thread, and one kept-alive connection to it.
pub(crate) struct BenchServer {
    pub(crate) stream: std::io::BufReader<std::net::TcpStream>,
    address: std::net::SocketAddr,
    handle: actix_web::dev::ServerHandle,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl BenchServer {
    pub(crate) fn start(
        settings: &crate::config::Settings,
        state: crate::AppState,
    ) -> anyhow::Result<BenchServer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let (sender, receiver) = std::sync::mpsc::channel();
        let server_settings = settings.clone();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let application =
                    crate::Application::with_listener(listener, &server_settings, state)
                        .map_err(std::io::Error::other)?;
                let _ = sender.send(application.handle());
                application.run().await
            })
        });
        let handle = receiver.recv().context("the server did not start")?;
        let stream = std::net::TcpStream::connect(address)?;
        // Without it, each small request waits for the delayed acknowledgement of the last one.
        stream.set_nodelay(true)?;
        Ok(BenchServer {
            stream: std::io::BufReader::new(stream),
            address,
            handle,
            thread,
        })
    }

    /// Another kept-alive connection, for a concurrent client.
    pub(crate) fn connect(&self) -> anyhow::Result<std::io::BufReader<std::net::TcpStream>> {
        let stream = std::net::TcpStream::connect(self.address)?;
        stream.set_nodelay(true)?;
        Ok(std::io::BufReader::new(stream))
    }

    pub(crate) fn stop(self) {
        actix_web::rt::System::new().block_on(self.handle.stop(true));
        let _ = self.thread.join();
    }
}

/// Runs `bench` on a scratch SQLite database (unless `sqlite` is false) and, given a URL, a
/// scratch PostgreSQL one, each with the service's state opened on it; returns the report with a
/// heading per backend.
pub(crate) fn on_scratch_backends(
    postgres_url: Option<&str>,
    sqlite: bool,
    mut bench: impl FnMut(&crate::config::Settings, crate::AppState, &mut String) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut backends = Vec::new();
    if sqlite {
        backends.push(Backend::Sqlite);
    }
    if postgres_url.is_some() {
        backends.push(Backend::Postgres);
    }
    for backend in backends {
        let scratch = Scratch::new(backend, postgres_url)?;
        writeln!(out, "== {} ==", backend.name())?;
        let settings = crate::config::Settings::from_layers(
            None,
            &[
                ("HASHGATE_DATABASE_URL".into(), scratch.url.clone()),
                (
                    "HASHGATE_ENCRYPTION_KEY".into(),
                    crate::crypto::FieldCipher::generate_key(),
                ),
                (
                    "HASHGATE_SIGNING_KEY".into(),
                    crate::reports::signing::ReportSigner::generate_key(),
                ),
                ("HASHGATE_BIND".into(), "127.0.0.1:0".into()),
                ("HASHGATE_LOG_LEVEL".into(), "warn".into()),
            ],
        )?;
        let state = crate::AppState::open(&settings)?;
        bench(&settings, state, &mut out)?;
    }
    Ok(out)
}

/// A fresh database for one backend, dropped (PostgreSQL) or deleted (SQLite) afterwards.
pub(crate) struct Scratch {
    pub(crate) url: String,
    postgres: Option<(String, String)>,
    _directory: Option<tempfile_dir::Directory>,
}

mod tempfile_dir {
    /// A directory removed on drop, without a dev-only crate.
    pub struct Directory(pub std::path::PathBuf);

    impl Drop for Directory {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Scratch {
    pub(crate) fn new(backend: Backend, postgres_url: Option<&str>) -> anyhow::Result<Scratch> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let directory = std::env::temp_dir().join(format!("hashgate-bench-{id}"));
                std::fs::create_dir_all(&directory)?;
                Ok(Scratch {
                    url: format!("sqlite://{}", directory.join("bench.db").display()),
                    postgres: None,
                    _directory: Some(tempfile_dir::Directory(directory)),
                })
            }
            Backend::Postgres => {
                let admin_url = postgres_url.context("no PostgreSQL URL")?;
                let name = format!("hashgate_bench_{id}");
                diesel::PgConnection::establish(admin_url)?
                    .batch_execute(&format!("CREATE DATABASE {name}"))?;
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(base, _)| base)
                    .unwrap_or(admin_url);
                Ok(Scratch {
                    url: format!("{base}/{name}"),
                    postgres: Some((admin_url.to_string(), name)),
                    _directory: None,
                })
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.postgres {
            if let Ok(mut admin) = diesel::PgConnection::establish(admin_url) {
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

const START: i64 = 1_735_689_600; // 2025-01-01T00:00:00Z

/// The `index`th of `total` instants spread evenly over `days` days from `first` (Unix seconds).
fn payout_time(index: usize, total: usize, (first, days): (i64, i64)) -> NaiveDateTime {
    let span = days * 86_400;
    let offset = (index as i64 * span) / (total.max(1) as i64);
    chrono::DateTime::from_timestamp(first + offset, 0)
        .unwrap_or_default()
        .naive_utc()
}

/// Synthetic payouts for `users`: three in four BTC, one in four USDT, over 300 days of 2025
/// (so each payout has a daily price from [`bench_rates`]).
pub(crate) fn payout_rows<'a>(
    users: &'a [String],
    prefix: &str,
    count: usize,
) -> impl Iterator<Item = PayoutInput> + 'a {
    payout_rows_within(users, prefix, count, (START, 300))
}

/// The same over `days` days from `first` (Unix seconds), within the 300 days priced.
pub(crate) fn payout_rows_within<'a>(
    users: &'a [String],
    prefix: &str,
    count: usize,
    window: (i64, i64),
) -> impl Iterator<Item = PayoutInput> + 'a {
    let prefix = prefix.to_string();
    let mut random = rand::rngs::StdRng::seed_from_u64(42);
    (0..count).map(move |index| {
        let (asset, amount) = if index % 4 == 0 {
            (
                "USDT",
                format!(
                    "{}.{:06}",
                    random.gen_range(0..20),
                    random.gen_range(0..1_000_000)
                ),
            )
        } else {
            ("BTC", format!("0.{:08}", random.gen_range(1_000..90_000)))
        };
        PayoutInput {
            user_id: users[index % users.len()].clone(),
            asset: asset.to_string(),
            amount,
            occurred_at: format!(
                "{}Z",
                payout_time(index, count, window).format("%Y-%m-%dT%H:%M:%S")
            ),
            order_id: format!("order-{}", index % 5_000),
            facility_id: format!("facility-{}", index % 7),
            external_id: format!("{prefix}-{index}"),
        }
    })
}

/// A daily BTC and USDT price in USD for the 300 days the synthetic payouts span, and a little
/// before.
pub(crate) fn bench_rates() -> Vec<NewRate> {
    (0..310)
        .flat_map(|day| {
            let as_of = chrono::DateTime::from_timestamp(START - 86_400 + day * 86_400, 0)
                .unwrap_or_default()
                .naive_utc();
            [
                NewRate {
                    base: "BTC".into(),
                    quote: "USD".into(),
                    as_of,
                    rate: rust_decimal::Decimal::new(9_000_000 + day * 1_000, 2),
                },
                NewRate {
                    base: "USDT".into(),
                    quote: "USD".into(),
                    as_of,
                    rate: rust_decimal::Decimal::new(10_001, 4),
                },
            ]
        })
        .collect()
}

/// Registers `count` users resident in `jurisdiction` (not timed by the benches).
pub(crate) fn insert_users(
    connection: &mut crate::db::DbConnection,
    cipher: &crate::crypto::FieldCipher,
    prefix: &str,
    count: usize,
    jurisdiction: &str,
) -> Result<Vec<String>, AppError> {
    write_transaction(connection, |connection| {
        (0..count)
            .map(|index| {
                crate::users::store::insert(
                    connection,
                    cipher,
                    &NewUser {
                        external_ref: format!("{prefix}-{index}"),
                        email: format!("{prefix}-{index}@example.com"),
                        residence_jurisdiction: jurisdiction.into(),
                        preferred_language: "en".into(),
                        date_of_birth: chrono::NaiveDate::from_ymd_opt(1980, 1, 1),
                        address: Some(format!("{index} Nathan Road, Kowloon")),
                    },
                )
                .map(|user| user.id)
            })
            .collect()
    })
}

/// Ingests payouts through the batch path, a batch per transaction; returns how many.
pub(crate) fn ingest_all(
    connection: &mut crate::db::DbConnection,
    rows: impl Iterator<Item = PayoutInput>,
    staleness: chrono::Duration,
) -> anyhow::Result<u64> {
    let actor = Actor::command_line();
    let assets = store::load_assets(connection)?;
    let mut rows = rows.peekable();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut written = 0u64;
    while rows.peek().is_some() {
        batch.clear();
        batch.extend(rows.by_ref().take(MAX_BATCH));
        let valid = validate_batch(&batch, &assets, crate::db::now())
            .map_err(|errors| anyhow::anyhow!("bench rows invalid: {:?}", errors.first()))?;
        write_transaction(connection, |connection| {
            store::ingest_payouts(connection, "bench", valid, &actor, None, staleness)
        })
        .map_err(problem)?;
        written += batch.len() as u64;
    }
    Ok(written)
}

/// Brings a freshly bulk-loaded PostgreSQL database to the state of one that has been running:
/// `tables` (every table when `None`) vacuumed and analysed, the dirty pages written. Otherwise
/// autovacuum works through the load during the timed runs, on the same two cores; the covering
/// indexes cannot answer alone until the visibility map is set; and the next checkpoint writes
/// what the load and the vacuum dirtied (at full size, gigabytes) while the timed runs share the
/// disk with it. SQLite has no such after-work: nothing to do there.
pub(crate) fn settle_after_load(
    connection: &mut crate::db::DbConnection,
    tables: Option<&[&str]>,
) -> anyhow::Result<()> {
    if let crate::db::DbConnection::Postgresql(inner) = connection {
        let vacuum = match tables {
            Some(tables) => format!("VACUUM ANALYZE {}", tables.join(", ")),
            None => "VACUUM ANALYZE".to_string(),
        };
        // Two statements: sent together they would form one transaction, which VACUUM refuses.
        for statement in [vacuum.as_str(), "CHECKPOINT"] {
            inner.batch_execute(statement)?;
        }
    }
    Ok(())
}

/// Runs `bench` on a scratch database of each backend (PostgreSQL when a URL is given), printing
/// each backend's lines as soon as they are done; returns them all.
pub(crate) fn on_each_backend(
    postgres_url: Option<&str>,
    pool_size: u32,
    with_sqlite: bool,
    mut bench: impl FnMut(&Db, Backend) -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    let mut report = String::new();
    let mut backends = Vec::new();
    if with_sqlite {
        backends.push(Backend::Sqlite);
    }
    if postgres_url.is_some() {
        backends.push(Backend::Postgres);
    } else {
        writeln!(
            report,
            "postgres: SKIPPED (pass --postgres-url or set HASHGATE_TEST_POSTGRES_URL)"
        )?;
    }
    print!("{report}");
    for backend in backends {
        let scratch = Scratch::new(backend, postgres_url)?;
        let db = Db::open(&scratch.url, pool_size)?;
        let section = bench(&db, backend)?;
        print!("{section}");
        std::io::stdout().flush()?;
        report.push_str(&section);
    }
    Ok(report)
}

pub fn run(options: &BenchOptions) -> anyhow::Result<String> {
    on_each_backend(options.postgres_url.as_deref(), 4, true, |db, backend| {
        bench_backend(db, backend, options)
    })
}

fn bench_backend(db: &Db, backend: Backend, options: &BenchOptions) -> anyhow::Result<String> {
    let mut out = String::new();
    let name = backend.name();
    let actor = Actor::command_line();
    let staleness = chrono::Duration::days(1);
    let cipher =
        crate::crypto::FieldCipher::from_base64(&crate::crypto::FieldCipher::generate_key())
            .map_err(anyhow::Error::msg)?;
    let mut connection = db.connection().map_err(problem)?;

    // Set-up (not timed): users and a daily price per asset.
    let users: Vec<String> = write_transaction(&mut connection, |connection| {
        (0..options.users)
            .map(|index| {
                crate::users::store::insert(
                    connection,
                    &cipher,
                    &NewUser {
                        external_ref: format!("bench-{index}"),
                        email: format!("bench-{index}@example.com"),
                        residence_jurisdiction: "HK".into(),
                        preferred_language: "en".into(),
                        date_of_birth: None,
                        address: None,
                    },
                )
                .map(|user| user.id)
            })
            .collect::<Result<Vec<_>, AppError>>()
    })
    .map_err(problem)?;
    let rates = bench_rates();
    write_transaction(&mut connection, |connection| {
        store::insert_rates(connection, &rates, "bench")
    })
    .map_err(problem)?;
    let assets = store::load_assets(&mut connection)?;

    // 1. The batch path: the checks and writes of POST /v1/payouts, 10,000 rows a transaction.
    // As in the service, where concurrent requests are parsed and validated on other workers
    // while one of them writes, the next batch is made and validated on a second thread.
    reset_peak_memory();
    let started = Instant::now();
    let mut written = 0usize;
    let mut source_rows = payout_rows(&users, "batch", options.payouts).peekable();
    let validated_batches = std::iter::from_fn(|| {
        source_rows.peek()?;
        let batch: Vec<PayoutInput> = source_rows.by_ref().take(MAX_BATCH).collect();
        Some(
            validate_batch(&batch, &assets, crate::db::now())
                .map_err(|errors| anyhow::anyhow!("bench rows invalid: {:?}", errors.first())),
        )
    });
    crate::pipeline::run_ahead(validated_batches, 1, |valid| -> anyhow::Result<()> {
        let valid = valid?;
        let report = write_transaction(&mut connection, |connection| {
            store::ingest_payouts(connection, "bench-batch", valid, &actor, None, staleness)
        })
        .map_err(problem)?;
        written += report.accepted;
        Ok(())
    })?;
    let elapsed = started.elapsed();
    let ingest_target = crate::scorecard::Target::AtLeast(match backend {
        Backend::Sqlite => 100_000.0,
        Backend::Postgres => 50_000.0,
    });
    crate::scorecard::record(
        3,
        &format!("payout ingest, batch path, {written} payouts, hash chain on"),
        name,
        ingest_target,
        per_second(written as u64, elapsed) as f64,
        "/s",
    );
    writeln!(
        out,
        "{name}: batch path: {written} payouts in {} s = {} entries/s, {}",
        seconds_text(elapsed),
        per_second(written as u64, elapsed),
        describe_memory()
    )?;

    // 2. The CSV import (the file is written first, untimed).
    let directory = std::env::temp_dir().join(format!(
        "hashgate-bench-csv-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&directory)?;
    let _cleanup = tempfile_dir::Directory(directory.clone());
    let csv_path = directory.join("payouts.csv");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&csv_path)?);
        writeln!(
            file,
            "user_id,asset,amount,occurred_at,order_id,facility_id,external_id"
        )?;
        for row in payout_rows(&users, "csv", options.payouts) {
            writeln!(
                file,
                "{},{},{},{},{},{},{}",
                row.user_id,
                row.asset,
                row.amount,
                row.occurred_at,
                row.order_id,
                row.facility_id,
                row.external_id
            )?;
        }
    }
    drop(connection);
    reset_peak_memory();
    let mut import_options = ImportOptions::beside(&csv_path, "bench-csv");
    import_options.show_progress = false;
    let summary = import_payouts(db, &csv_path, &import_options, &actor, staleness)?;
    crate::scorecard::record(
        3,
        &format!("payout ingest, CSV import, {} payouts", summary.accepted),
        name,
        ingest_target,
        per_second(summary.accepted, summary.elapsed) as f64,
        "/s",
    );
    writeln!(
        out,
        "{name}: CSV import: {} payouts in {} s = {} entries/s, {} rejected, {}",
        summary.accepted,
        seconds_text(summary.elapsed),
        per_second(summary.accepted, summary.elapsed),
        summary.rejected,
        describe_memory()
    )?;

    // 3. Verification of the whole ledger.
    let mut connection = db.connection().map_err(problem)?;
    reset_peak_memory();
    let started = Instant::now();
    let verification = store::verify(&mut connection).map_err(problem)?;
    let elapsed = started.elapsed();
    let entries = match verification {
        Verification::Intact { entries, .. } => entries,
        other => anyhow::bail!("{name}: the bench ledger does not verify: {other:?}"),
    };
    crate::scorecard::record(
        3,
        &format!("`hashgate verify` per 1,000,000 entries (of {entries})"),
        name,
        crate::scorecard::Target::AtMost(10.0),
        elapsed.as_secs_f64() * 1_000_000.0 / entries.max(1) as f64,
        "s",
    );
    writeln!(
        out,
        "{name}: verify: {entries} entries in {} s, {}",
        seconds_text(elapsed),
        describe_memory()
    )?;

    // 4. A user's balances and last 100 entries, for random users.
    let mut random = rand::rngs::StdRng::seed_from_u64(7);
    let mut latencies: Vec<Duration> = (0..1_000)
        .map(|_| {
            let user = users[random.gen_range(0..users.len())].clone();
            let started = Instant::now();
            store::user_balances(&mut connection, &user)?;
            store::entries(
                &mut connection,
                &EntryFilter {
                    user_id: Some(user),
                    limit: 100,
                    ..Default::default()
                },
            )
            .map_err(problem)?;
            Ok(started.elapsed())
        })
        .collect::<anyhow::Result<_>>()?;
    latencies.sort();
    let percentile = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    crate::scorecard::record_millis(
        3,
        &format!("balance + last 100 entries, p99, {entries} entries"),
        name,
        5.0,
        percentile(99),
    );
    writeln!(
        out,
        "{name}: balance + last 100 entries with {entries} entries: p50 {} ms, p99 {} ms",
        millis_text(percentile(50)),
        millis_text(percentile(99))
    )?;
    Ok(out)
}
