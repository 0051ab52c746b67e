//! `hashgate bench load`: the service in a process of its own, under a paced mix of withdrawal
//! decisions, payout batches, screenings and statement downloads from concurrent clients. It
//! reports p50/p99 per operation, every error, the service's resident memory over the run, and
//! afterwards the database's invariants: both chains intact, balances equal to their entries, no
//! certificate allocated beyond its volume. Any error or broken invariant fails the run.

use std::fmt::Write as _;
use std::io::BufReader;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use diesel::prelude::*;

use crate::auth::Role;
use crate::bench::{bench_token, http_request, on_scratch_backends, percentile, problem};
use crate::chain::Verification;
use crate::config::Settings;
use crate::metrics::{millis_text, per_second};
use crate::withdrawals::bench::{gate_fixture, GateFixture};

pub struct LoadOptions {
    pub users: usize,
    pub payouts: usize,
    pub seconds: u64,
    /// Requests per second over all clients.
    pub rate: u32,
    pub clients: usize,
    /// The OFAC and UN lists to screen against (the shared data's `sanctions` directory).
    pub lists: Option<std::path::PathBuf>,
    pub postgres_url: Option<String>,
}

const ADDRESS: &str = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";
const NAMES: [&str; 6] = [
    "Chen Wei",
    "Maria Garcia",
    "Ahmed Hassan",
    "Olga Ivanova",
    "Kim Jong Un",
    "Tanaka Hiroshi",
];

/// What the clients send, in proportion: four decisions, three payout batches, two screenings
/// and one statement in every ten requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Operation {
    Withdrawal,
    Payouts,
    Screening,
    Statement,
}

const MIX: [Operation; 10] = [
    Operation::Withdrawal,
    Operation::Payouts,
    Operation::Screening,
    Operation::Withdrawal,
    Operation::Payouts,
    Operation::Statement,
    Operation::Withdrawal,
    Operation::Payouts,
    Operation::Screening,
    Operation::Withdrawal,
];

impl Operation {
    fn label(self) -> &'static str {
        match self {
            Operation::Withdrawal => "withdrawal decision",
            Operation::Payouts => "payout batch (10)",
            Operation::Screening => "person screening",
            Operation::Statement => "tax statement (PDF or CSV)",
        }
    }
}

/// One request's outcome: its operation, its latency, and its status (0: no answer).
type Sample = (Operation, Duration, u16);

/// Runs the load on each backend; `Ok(report)` only when every backend ran without an error and
/// kept its invariants.
pub fn run(options: &LoadOptions) -> anyhow::Result<String> {
    let mut failed = Vec::new();
    let report = on_scratch_backends(
        options.postgres_url.as_deref(),
        true,
        |settings, state, out| {
            if !load_backend(settings, state, options, out)? {
                failed.push(settings.backend().name());
            }
            Ok(())
        },
    )?;
    anyhow::ensure!(
        failed.is_empty(),
        "{report}\nFAILED on {}",
        failed.join(", ")
    );
    Ok(report)
}

/// The service as a child process on the scratch database; killed when dropped.
struct Service {
    child: Child,
    port: u16,
}

impl Service {
    fn start(settings: &Settings, log: &std::path::Path) -> anyhow::Result<Service> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("serve")
            .env_remove("DATABASE_URL")
            .env("HASHGATE_DATABASE_URL", &settings.database_url)
            .env("HASHGATE_BIND", format!("127.0.0.1:{port}"))
            .env("HASHGATE_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?);
        for (name, value) in [
            ("HASHGATE_ENCRYPTION_KEY", &settings.encryption_key),
            ("HASHGATE_SIGNING_KEY", &settings.signing_key),
        ] {
            if let Some(value) = value {
                command.env(name, value);
            }
        }
        let service = Service {
            child: command.spawn().context("cannot start `hashgate serve`")?,
            port,
        };
        let started = Instant::now();
        loop {
            let ready = service
                .connect()
                .and_then(|mut stream| http_request(&mut stream, "GET", "/readyz", &[], None));
            if matches!(ready, Ok(200)) {
                return Ok(service);
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "the service did not become ready: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn connect(&self) -> anyhow::Result<BufReader<TcpStream>> {
        let stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_nodelay(true)?;
        // A hung service counts as an error instead of stopping the run.
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(BufReader::new(stream))
    }

    /// The service's resident memory now, in KiB (Linux).
    fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn load_backend(
    settings: &Settings,
    state: crate::AppState,
    options: &LoadOptions,
    out: &mut String,
) -> anyhow::Result<bool> {
    let GateFixture {
        users,
        platform_token,
    } = gate_fixture(&state, options.users, options.payouts, out)?;
    let officer_token = bench_token(&state, Role::Officer)?;
    if let Some(lists) = options.lists.as_deref().filter(|path| path.is_dir()) {
        crate::aml::import::load_standard_lists(&state.db, lists)?;
        writeln!(out, "lists loaded from {}", lists.display())?;
    }
    let database_url = settings.database_url.clone();
    drop(state);

    let log = std::env::temp_dir().join(format!("hashgate-load-{}.log", uuid::Uuid::new_v4()));
    let service = Service::start(settings, &log)?;
    let platform = format!("Bearer {platform_token}");
    let officer = format!("Bearer {officer_token}");
    let interval = Duration::from_secs_f64(options.clients as f64 / f64::from(options.rate));
    let running = AtomicBool::new(true);
    let mut memory = Vec::new();
    let started = Instant::now();
    let samples: Vec<Sample> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..options.clients)
            .map(|client| {
                let (service, users, running) = (&service, &users, &running);
                let (platform, officer) = (&platform, &officer);
                scope.spawn(move || {
                    let mut samples = Vec::new();
                    let mut stream = service.connect().ok();
                    let mut next = Instant::now() + interval.mul_f64(client as f64 / 4.0);
                    let mut index = client;
                    while running.load(Ordering::Relaxed) {
                        // Paced: each client sends at its share of the rate.
                        if let Some(wait) = next.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        next += interval;
                        let operation = MIX[index % MIX.len()];
                        let user = &users[(index * 7919) % users.len()];
                        let (method, path, token, body) =
                            request(operation, client, index, user, platform, officer);
                        let key = format!("load-{client}-{index}");
                        let begun = Instant::now();
                        let status = match stream.as_mut() {
                            Some(connection) => http_request(
                                connection,
                                method,
                                &path,
                                &[("Authorization", token), ("Idempotency-Key", &key)],
                                body.as_deref(),
                            )
                            .unwrap_or(0),
                            None => 0,
                        };
                        samples.push((operation, begun.elapsed(), status));
                        if status == 0 {
                            stream = service.connect().ok();
                        }
                        index += options.clients;
                    }
                    samples
                })
            })
            .collect();
        while started.elapsed() < Duration::from_secs(options.seconds) {
            if let Some(kib) = service.rss_kib() {
                memory.push((started.elapsed().as_secs_f64(), kib));
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        running.store(false, Ordering::Relaxed);
        clients
            .into_iter()
            .flat_map(|client| client.join().unwrap_or_default())
            .collect()
    });
    let elapsed = started.elapsed();
    drop(service);

    let errors = report_latencies(&samples, elapsed, options, out)?;
    let growth = report_memory(&memory, out)?;
    let intact = check_invariants(&database_url, out)?;
    let backend = settings.backend().name();
    let load = format!(
        "mixed load, {} s at {} requests/s",
        options.seconds, options.rate
    );
    crate::scorecard::record(
        10,
        &format!("{load}: errors"),
        backend,
        crate::scorecard::Target::AtMost(0.0),
        errors as f64,
        "",
    );
    if let Some(growth) = growth {
        // Flat: the last fifth of the run within a quarter of the first fifth. A run of less
        // than two minutes is mostly warm-up (list index, caches, pool), so it only reports.
        let target = if options.seconds >= 120 {
            crate::scorecard::Target::AtMost(1.25)
        } else {
            crate::scorecard::Target::Informational
        };
        crate::scorecard::record(
            10,
            &format!("{load}: service RSS, last fifth ÷ first fifth"),
            backend,
            target,
            growth,
            "×",
        );
    }
    crate::scorecard::record(
        10,
        "after the load: chains, balances and certificate volumes intact",
        backend,
        crate::scorecard::Target::AtLeast(1.0),
        f64::from(u8::from(intact)),
        "(1 = intact)",
    );
    if errors > 0 {
        writeln!(
            out,
            "FAILED: {errors} requests got an error; the service's log: {}",
            log.display()
        )?;
    } else {
        let _ = std::fs::remove_file(&log);
    }
    Ok(errors == 0 && intact)
}

/// The method, path, bearer and body of the `index`th request of `client`.
fn request<'a>(
    operation: Operation,
    client: usize,
    index: usize,
    user: &str,
    platform: &'a str,
    officer: &'a str,
) -> (&'static str, String, &'a str, Option<String>) {
    match operation {
        Operation::Withdrawal => (
            "POST",
            "/v1/withdrawals".into(),
            platform,
            Some(
                serde_json::json!({"user_id": user, "asset": "BTC", "amount": "0.0001",
                    "network": "bitcoin", "address": ADDRESS})
                .to_string(),
            ),
        ),
        Operation::Payouts => {
            let occurred_at = (chrono::Utc::now() - chrono::Duration::seconds(30)).to_rfc3339();
            let payouts: Vec<serde_json::Value> = (0..10)
                .map(|n| {
                    serde_json::json!({"user_id": user, "asset": "BTC", "amount": "0.00001",
                        "occurred_at": occurred_at, "order_id": "load", "facility_id": "load",
                        "external_id": format!("load-{client}-{index}-{n}")})
                })
                .collect();
            (
                "POST",
                "/v1/payouts".into(),
                platform,
                Some(serde_json::json!({ "payouts": payouts }).to_string()),
            )
        }
        Operation::Screening => (
            "POST",
            "/v1/screening/person".into(),
            platform,
            Some(serde_json::json!({"name": NAMES[index % NAMES.len()]}).to_string()),
        ),
        Operation::Statement => {
            let format = if index.is_multiple_of(2) {
                "pdf"
            } else {
                "csv"
            };
            (
                "GET",
                format!("/v1/users/{user}/tax/2025/statement.{format}"),
                officer,
                None,
            )
        }
    }
}

/// Prints the latency table; returns the number of errors (no answer, or not 2xx).
fn report_latencies(
    samples: &[Sample],
    elapsed: Duration,
    options: &LoadOptions,
    out: &mut String,
) -> anyhow::Result<usize> {
    writeln!(
        out,
        "{} requests in {:.1} s = {} requests/s (paced at {}/s by {} clients)",
        samples.len(),
        elapsed.as_secs_f64(),
        per_second(samples.len() as u64, elapsed),
        options.rate,
        options.clients
    )?;
    writeln!(
        out,
        "| operation | requests | errors | p50 ms | p99 ms | max ms |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    let mut operations: Vec<Operation> = samples.iter().map(|sample| sample.0).collect();
    operations.sort();
    operations.dedup();
    let mut total_errors = 0;
    for operation in operations.into_iter().map(Some).chain([None]) {
        let chosen: Vec<&Sample> = samples
            .iter()
            .filter(|sample| operation.is_none_or(|operation| sample.0 == operation))
            .collect();
        let errors: Vec<u16> = chosen
            .iter()
            .map(|sample| sample.2)
            .filter(|status| !(200..300).contains(status))
            .collect();
        let mut latencies: Vec<Duration> = chosen.iter().map(|sample| sample.1).collect();
        latencies.sort();
        writeln!(
            out,
            "| {} | {} | {}{} | {} | {} | {} |",
            operation.map_or("all", Operation::label),
            chosen.len(),
            errors.len(),
            if errors.is_empty() {
                String::new()
            } else {
                format!(" (statuses {errors:?})")
            },
            millis_text(percentile(&latencies, 500)),
            millis_text(percentile(&latencies, 990)),
            millis_text(latencies.last().copied().unwrap_or_default())
        )?;
        if operation.is_none() {
            total_errors = errors.len();
        }
    }
    writeln!(out, "errors: {total_errors}")?;
    Ok(total_errors)
}

/// The service's memory: the mean of the first and last fifths of the run, and the peak. A leak
/// shows as the last fifth well above the first; returns last ÷ first.
fn report_memory(memory: &[(f64, u64)], out: &mut String) -> anyhow::Result<Option<f64>> {
    if memory.len() < 5 {
        writeln!(out, "service RSS: too few samples")?;
        return Ok(None);
    }
    let fifth = memory.len() / 5;
    let mean = |window: &[(f64, u64)]| {
        window.iter().map(|(_, kib)| *kib).sum::<u64>() / window.len() as u64 / 1024
    };
    let (first, last) = (
        mean(&memory[..fifth]),
        mean(&memory[memory.len() - fifth..]),
    );
    let peak = memory.iter().map(|(_, kib)| kib / 1024).max().unwrap_or(0);
    writeln!(
        out,
        "service RSS: first fifth {first} MiB, last fifth {last} MiB, peak {peak} MiB \
         ({} samples, one a second)",
        memory.len()
    )?;
    Ok(Some(last as f64 / first.max(1) as f64))
}

/// Both chains and the balances (as `hashgate verify`), and certificate volumes; true when all
/// hold.
fn check_invariants(database_url: &str, out: &mut String) -> anyhow::Result<bool> {
    let db = crate::db::Db::open(database_url, 1)?;
    let mut connection = db.connection().map_err(problem)?;
    let mut intact = true;
    for (name, verification) in [
        (
            "audit chain",
            crate::audit::store::verify_chain(&mut connection)?,
        ),
        (
            "ledger chain and balances",
            crate::ledger::store::verify(&mut connection).map_err(problem)?,
        ),
    ] {
        match verification {
            Verification::Intact { entries, .. } => {
                writeln!(out, "{name}: intact ({entries} entries)")?
            }
            broken => {
                intact = false;
                writeln!(out, "{name}: BROKEN: {broken:?}")?
            }
        }
    }
    use crate::db::schema::certificates::dsl as certificate;
    let over_allocated: i64 = certificate::certificates
        .filter((certificate::allocated_wh + certificate::retired_wh).gt(certificate::volume_wh))
        .count()
        .get_result(&mut **connection)?;
    writeln!(
        out,
        "certificates allocated beyond their volume: {over_allocated}"
    )?;
    Ok(intact && over_allocated == 0)
}
