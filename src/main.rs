use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use hashgate::audit::Actor;
use hashgate::auth::{generate_token, store as tokens, Role, TokenGrant};
use hashgate::chain::Verification;
use hashgate::config::Settings;
use hashgate::db::{self, write_transaction};
use hashgate::ledger::import::ImportOptions;
use hashgate::{AppState, Application};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "hashgate",
    version,
    about = "Compliance, KYC and tax reporting for cloud-mining platforms"
)]
struct Cli {
    /// Configuration file (default: ./hashgate.toml when present, or HASHGATE_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations and serve the HTTP API.
    Serve,
    /// Apply pending database migrations.
    Migrate,
    /// Create a fresh demo database with users and a token per role, print the tokens, and serve.
    Demo {
        /// Database for the demo; it is recreated on every run.
        #[arg(long, default_value = "sqlite://hashgate-demo.db")]
        database: String,
        /// The sanctions data (OFAC and UN files) to load; default ../shared/data/sanctions when
        /// it exists. Without it, screening finds no hits.
        #[arg(long)]
        lists: Option<PathBuf>,
        /// The carbon data (emission factors, ASIC models); default ../shared/data/carbon when
        /// it exists. Without it, the demo has no facilities, orders or certificates.
        #[arg(long)]
        carbon_data: Option<PathBuf>,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Load data from files.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Exports for tax authorities.
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Benchmarks on scratch databases.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Sanctions and PEP lists.
    Lists {
        #[command(subcommand)]
        command: ListsCommand,
    },
    /// Screening: the matcher's accuracy on labelled name pairs.
    Screening {
        #[command(subcommand)]
        command: ScreeningCommand,
    },
    /// Check the audit log's and the ledger's hash chains and the balances; exits non-zero naming
    /// the first broken entry.
    Verify,
    /// Check a report file (PDF, JSON or data CSV, as downloaded) against the stored reports:
    /// its SHA-256 must be a stored file's and the stored Ed25519 signature must verify over its
    /// bytes. Exits non-zero when it does not.
    VerifyReport {
        file: PathBuf,
        /// Only accept the file as part of this report.
        #[arg(long)]
        report: Option<String>,
    },
    /// Reports: generate the scheduled reports that are due now (the service does it by itself
    /// every ten minutes).
    Reports {
        #[command(subcommand)]
        command: ReportsCommand,
    },
    /// KYC: run the periodic review now (the service runs it daily by itself).
    Kyc {
        #[command(subcommand)]
        command: KycCommand,
    },
}

#[derive(Subcommand)]
enum ReportsCommand {
    /// Generate each schedule's report for the last closed period, if not made yet, and queue
    /// the e-mails to its recipients.
    RunSchedules,
}

#[derive(Subcommand)]
enum KycCommand {
    /// Open the reviews that are due, ask for expiring documents, lapse overdue reviews.
    Review,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Every performance target of the issues, measured by the benches below at the sizes the
    /// issues name (100,000 users, 36,500,000 payout entries for the tax year, 50,000
    /// certificates, OFAC + UN), on SQLite and (with a URL) PostgreSQL, then printed as one table
    /// of figure, target, measured, pass/fail and backend. Takes hours at --scale 1; build with
    /// --release. Exits non-zero when a target is missed.
    All {
        /// A fraction of the issues' sizes, for a quicker run (e.g. 0.1).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        #[arg(long, default_value = "../shared/data/sanctions")]
        lists: PathBuf,
        #[arg(long, default_value = "../shared/data/sanctions/name-pairs/cases.csv")]
        cases: PathBuf,
        /// Also write the table (Markdown) to this file.
        #[arg(long)]
        output: Option<PathBuf>,
        #[arg(long, env = "HASHGATE_TEST_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// Withdrawal gating decisions over HTTP from concurrent clients, on a database with many
    /// verified users and a large ledger (SQLite, and PostgreSQL with a URL). Build with --release.
    Withdrawals {
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        /// Payouts in the ledger before the run (one entry each).
        #[arg(long, default_value_t = 10_000_000)]
        payouts: usize,
        #[arg(long, default_value_t = 40_000)]
        requests: usize,
        /// Concurrent clients, each on its own connection, each sending its next request when
        /// the last is answered: at 1,000 decisions/s, 4 clients mean a 4 ms mean latency and
        /// 8 clients an 8 ms one, so the target (p99 < 10 ms) is judged at 4.
        #[arg(long, default_value_t = 4)]
        clients: usize,
        #[arg(long, env = "HASHGATE_TEST_POSTGRES_URL")]
        postgres_url: Option<String>,
        /// Run on PostgreSQL only.
        #[arg(long, requires = "postgres_url")]
        postgres_only: bool,
    },
    /// The KYC review queue with many applications: first-page latency with filters through
    /// the API and the console, on SQLite and (with a URL) PostgreSQL. Build with --release.
    Kyc {
        #[arg(long, default_value_t = 100_000)]
        applications: usize,
        /// Timed requests per filter.
        #[arg(long, default_value_t = 500)]
        requests: usize,
        /// An administrative PostgreSQL URL; a scratch database is created and dropped.
        #[arg(long, env = "HASHGATE_TEST_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// Ingest payouts through the batch path and the CSV import, then verify and read, on SQLite
    /// and (with a URL) PostgreSQL. Build with --release.
    Ledger {
        #[arg(long, default_value_t = 1_000_000)]
        payouts: usize,
        #[arg(long, default_value_t = 1_000)]
        users: usize,
        /// An administrative PostgreSQL URL; a scratch database is created and dropped.
        #[arg(long, env = "HASHGATE_TEST_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// Load the OFAC SDN and UN lists into a scratch database, then time single queries
    /// (in-process and over HTTP) and a bulk rescreen of synthetic customer names.
    Screening {
        #[arg(long, default_value = "../shared/data/sanctions")]
        data: PathBuf,
        #[arg(long, default_value_t = 20_000)]
        queries: usize,
        #[arg(long, default_value_t = 1_000_000)]
        names: usize,
    },
    /// Certificate matching: open orders against the registry in annual mode, then orders
    /// matched hour by hour, on SQLite and (with a URL) PostgreSQL. Build with --release.
    Carbon {
        #[arg(long, default_value_t = 100_000)]
        orders: usize,
        #[arg(long, default_value_t = 50_000)]
        certificates: usize,
        #[arg(long, default_value_t = 10_000)]
        hourly_orders: usize,
        #[arg(long, default_value_t = 30)]
        hourly_days: i64,
        #[arg(long, env = "HASHGATE_TEST_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// A quarterly sandbox report (every section, chains verified, PDF, signatures) over a quarter
    /// of payout entries, on SQLite and (with a URL) PostgreSQL. Build with --release.
    Reports {
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        /// Payout entries within the reported quarter (the target: 1,000,000).
        #[arg(long, default_value_t = 1_000_000)]
        payouts: usize,
        #[arg(long, default_value_t = 3)]
        samples: usize,
        #[arg(long, env = "HASHGATE_TEST_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// The service as its own process under a paced mix of withdrawal decisions, payout batches,
    /// screenings and statement downloads: latency per operation, errors (must be 0), the
    /// service's memory over the run, and the chains, balances and certificate volumes
    /// afterwards. Exits non-zero on any error. Build with --release for figures.
    Load {
        #[arg(long, default_value_t = 1_000)]
        users: usize,
        #[arg(long, default_value_t = 100_000)]
        payouts: usize,
        /// How long the load runs.
        #[arg(long, default_value_t = 300)]
        seconds: u64,
        /// Requests per second over all clients.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// The sanctions data (OFAC and UN) to screen against.
        #[arg(long, default_value = "../shared/data/sanctions")]
        lists: std::path::PathBuf,
        #[arg(long, env = "HASHGATE_TEST_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// One user-year tax statement (JSON and PDF) and the CARF export over every user's year,
    /// on SQLite and (with a URL) PostgreSQL. Build with --release.
    Tax {
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        /// Daily payouts per user in the year (the target: 365).
        #[arg(long, default_value_t = 365)]
        days: usize,
        /// Timed statements of each kind.
        #[arg(long, default_value_t = 200)]
        samples: usize,
        #[arg(long, env = "HASHGATE_TEST_POSTGRES_URL")]
        postgres_url: Option<String>,
        /// Run on PostgreSQL only.
        #[arg(long, requires = "postgres_url")]
        postgres_only: bool,
    },
}

#[derive(Subcommand)]
enum ListsCommand {
    /// Load a new version of a list: `--source ofac-sdn DIR [MORE_REMARKS.csv]`,
    /// `--source un-consolidated FILE.xml` or `--source pep FILE.csv`. Prints the diff against
    /// the active version; a malformed file is refused and changes nothing.
    Import {
        #[arg(long)]
        source: String,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Accept a version that removes more than 20% of the active entries.
        #[arg(long)]
        force: bool,
        /// Do not rescreen monitored subjects against the changed entries afterwards.
        #[arg(long)]
        no_rescreen: bool,
    },
}

#[derive(Subcommand)]
enum ScreeningCommand {
    /// Precision, recall and F1 of the name matcher on labelled pairs, at the configured
    /// threshold and across thresholds.
    Eval {
        #[arg(long, default_value = "../shared/data/sanctions/name-pairs/cases.csv")]
        cases: PathBuf,
        #[arg(long, default_value_t = hashgate::aml::DEFAULT_THRESHOLD)]
        threshold: f64,
        /// Also list every misclassified pair.
        #[arg(long)]
        errors: bool,
    },
    /// Rescreen every monitored subject against every active list entry (after a matcher or
    /// threshold change); new hits become alerts in the review queue.
    Rescreen,
}

#[derive(Subcommand)]
enum ExportCommand {
    /// OECD CARF XML (v1.5) of a jurisdiction's resident users for a calendar year: mining
    /// payouts as CryptoTransferIn / CARF503 per user and asset. Streams in constant memory.
    Carf {
        #[arg(long)]
        jurisdiction: String,
        #[arg(long)]
        year: i32,
        /// Where to write; standard output without it.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Mark the file as test data (DocTypeIndic OECD11).
        #[arg(long)]
        test: bool,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Payouts from a CSV (user_id,asset,amount,occurred_at,order_id,facility_id,external_id).
    /// Streams any size; bad rows go to FILE.rejects.csv; run it again to resume after an
    /// interruption.
    Payouts {
        file: PathBuf,
        /// The settlement system the external ids belong to.
        #[arg(long, default_value = "platform")]
        source: String,
        /// Rows per transaction.
        #[arg(long, default_value_t = hashgate::ledger::import::DEFAULT_BATCH_SIZE)]
        batch_size: usize,
    },
    /// Asset→USD prices and USD→fiat rates from a CSV (base,quote,as_of,rate).
    Prices {
        file: PathBuf,
        #[arg(long, default_value = "import")]
        source: String,
    },
    /// Emission factors: `ember-csv` (Ember via OWID, by country), `nordic-json` (bidding
    /// zones), `canada-provinces` (provincial mix × --per-source factors) or `plain`
    /// (dataset,version,zone,year,basis,g_per_kwh,source: residual mixes and others).
    EmissionFactors {
        file: PathBuf,
        #[arg(long)]
        format: String,
        /// The dataset version to record (e.g. its publication date); `plain` files carry their own.
        #[arg(long, default_value = "unversioned")]
        dataset_version: String,
        #[arg(long)]
        per_source: Option<PathBuf>,
        #[arg(long)]
        year: Option<i32>,
    },
    /// Certificates from a registry export, as a CSV with the API's fields as columns
    /// (scheme,registry,serial,device_id,technology,market_zone,country,generation_start,
    /// generation_end,volume,unit,g_per_kwh,expires_at,supersedes). All or nothing; open orders
    /// are matched afterwards.
    Certificates { file: PathBuf },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it once.
    Create {
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: String,
        /// Required for regulator tokens.
        #[arg(long)]
        jurisdiction: Option<String>,
        /// Required for user tokens.
        #[arg(long)]
        user: Option<String>,
    },
    /// List tokens (active only unless --all).
    List {
        #[arg(long)]
        all: bool,
    },
    /// Revoke a token.
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

/// Rescreens monitored subjects with a progress bar on a terminal, and prints the outcome.
/// Runs a queued rescreen job in the foreground, with a progress bar on a terminal.
fn run_rescreen(
    settings: &Settings,
    db: &db::Db,
    jurisdictions: &hashgate::jurisdiction::Jurisdictions,
    job: &hashgate::aml::store::ScreeningJob,
) -> anyhow::Result<()> {
    let cipher = hashgate::load_cipher(settings)?;
    let bar = indicatif::ProgressBar::new(job.subjects.max(0) as u64);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let runner = hashgate::aml::monitor::Runner {
        db,
        cipher: &cipher,
        jurisdictions,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let show = |job: &hashgate::aml::store::ScreeningJob| {
        bar.set_length(job.subjects.max(job.done) as u64);
        bar.set_position(job.done as u64);
    };
    let finished = match runner
        .run(&job.id, &show)
        .map_err(|error| anyhow::anyhow!(error.problem().detail))?
    {
        Some(finished) => finished,
        // The service's worker took the job first: follow it there.
        None => loop {
            std::thread::sleep(std::time::Duration::from_millis(250));
            let mut connection = db.connection()?;
            let current = hashgate::aml::store::find_job(&mut connection, &job.id)?
                .ok_or_else(|| anyhow::anyhow!("the rescreen job {} vanished", job.id))?;
            show(&current);
            match current.status.as_str() {
                "finished" => break current,
                "failed" => anyhow::bail!(
                    "rescreen job {} failed: {}",
                    current.id,
                    current.error.unwrap_or_default()
                ),
                _ => {}
            }
        },
    };
    bar.finish_and_clear();
    println!(
        "rescreened {} monitored subjects against {} entries: {} new alerts (job {})",
        finished.done, finished.entries, finished.new_hits, finished.id
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("hashgate: {error}");
            return ExitCode::from(2);
        }
    };
    hashgate::init_tracing(&settings);
    match run(cli.command, settings) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("hashgate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, mut settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => {
            let state = AppState::open(&settings)?;
            serve(&settings, state)?;
        }
        Command::Migrate => {
            let factory =
                db::ConnectionFactory::new(&settings.database_url).map_err(anyhow::Error::msg)?;
            let mut connection = factory.connect()?;
            let applied = db::run_migrations(&mut connection)?;
            if applied.is_empty() {
                println!("the database is up to date");
            }
            for version in applied {
                println!("applied {version}");
            }
        }
        Command::Demo {
            database,
            lists,
            carbon_data,
        } => {
            if let Some(path) = db::sqlite_path(&database) {
                for suffix in ["", "-wal", "-shm", ".key"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
            settings.database_url = database;
            let state = AppState::open(&settings)?;
            let mut connection = state.db.connection()?;
            let demo = hashgate::demo::seed(&mut connection, &state.cipher)?;
            drop(connection);
            let actor_of = |role: Role| -> anyhow::Result<Actor> {
                let secret = demo
                    .tokens
                    .iter()
                    .find(|t| t.role == role)
                    .map(|t| t.secret.clone())
                    .unwrap_or_default();
                let mut connection = state.db.connection()?;
                let caller = hashgate::auth::store::authenticate(
                    &mut connection,
                    &hashgate::auth::hash_token(&secret),
                )?
                .ok_or_else(|| anyhow::anyhow!("the demo {role} token is missing"))?;
                Ok(caller.actor())
            };
            let (platform, officer, senior) = (
                actor_of(Role::Platform)?,
                actor_of(Role::Officer)?,
                actor_of(Role::SeniorOfficer)?,
            );
            // Before the lists load: the demo's withdrawing users are not meant to be hits.
            let withdrawals = hashgate::demo::withdrawals::seed(
                &state,
                &demo.user_ids,
                &hashgate::demo::withdrawals::Actors {
                    platform: &platform,
                    officer: &officer,
                    senior: &senior,
                },
            )?;
            let lists = lists.or_else(|| {
                let shared = PathBuf::from("../shared/data/sanctions");
                shared.is_dir().then_some(shared)
            });
            let lists_loaded = match &lists {
                Some(directory) => {
                    hashgate::aml::import::load_standard_lists(&state.db, directory)?;
                    format!(
                        "OFAC SDN and UN consolidated lists from {}",
                        directory.display()
                    )
                }
                None => {
                    "no sanctions lists found (pass --lists DIR): screening finds no hits".into()
                }
            };
            let applications = hashgate::demo::kyc::seed_applications(
                &state.db,
                hashgate::kyc::service::Kyc {
                    cipher: &state.cipher,
                    screener: &state.screener,
                    jurisdictions: &state.jurisdictions,
                },
                (&officer, &senior),
            )?;
            let carbon_data = carbon_data.or_else(|| {
                let shared = PathBuf::from("../shared/data/carbon");
                shared.is_dir().then_some(shared)
            });
            let carbon = match &carbon_data {
                Some(directory) => {
                    let carbon = hashgate::demo::carbon::seed(
                        &state.db,
                        directory,
                        &demo.user_ids,
                        &platform,
                        &officer,
                    )?;
                    format!(
                        "{} emission factors from {}; {} facilities (Québec, Norway, Iceland, Kazakhstan), {} orders ({} kWh), {} certificates, {} kWh matched",
                        carbon.factors,
                        directory.display(),
                        carbon.facilities,
                        carbon.orders,
                        carbon.energy_wh / 1_000,
                        carbon.certificates,
                        carbon.matched_wh / 1_000
                    )
                }
                None => {
                    "no carbon data found (pass --carbon-data DIR): no facilities or orders".into()
                }
            };
            let reports = hashgate::demo::reports::seed(&state, &officer)?;
            let base = format!("http://{}", settings.bind);
            println!("hashgate demo — database {}", settings.database_url);
            println!("\nUsers:");
            for (external_ref, id) in &demo.user_ids {
                println!("  {external_ref:<16} {id}");
            }
            println!(
                "\nLedger: {} days of payouts ({} entries), {} fees, {} simulated prices and FX rates",
                demo.ledger.days, demo.ledger.payouts, demo.ledger.fees, demo.ledger.rates
            );
            println!("\nTokens (shown once; send as `Authorization: Bearer <token>`):");
            for token in &demo.tokens {
                println!(
                    "  {:<15} {:<32} {}",
                    token.role.as_str(),
                    token.name,
                    token.secret
                );
            }
            let user = &demo.user_ids[0].1;
            let officer = demo
                .tokens
                .iter()
                .find(|t| t.role == Role::Officer)
                .map(|t| t.secret.as_str())
                .unwrap_or("");
            println!(
                "\nTry:\n  curl -s {base}/v1/users/{user} -H 'Authorization: Bearer {officer}'"
            );
            println!(
                "  curl -s {base}/v1/users/{user}/balances -H 'Authorization: Bearer {officer}'"
            );
            let today = chrono::Utc::now().date_naive();
            let month_ago = today - chrono::Duration::days(30);
            println!(
                "  curl -s '{base}/v1/ledger/summary?from={month_ago}&to={today}&tz=Asia/Hong_Kong' -H 'Authorization: Bearer {officer}'"
            );
            let user_token = demo
                .tokens
                .iter()
                .find(|t| t.role == Role::User)
                .map(|t| t.secret.as_str())
                .unwrap_or("");
            println!(
                "  curl -s {base}/v1/users/{user}/tax/2026 -H 'Authorization: Bearer {user_token}'   (the user's 2026/27 Hong Kong tax computation)"
            );
            println!(
                "  curl -so statement.pdf {base}/v1/users/{user}/tax/2026/statement.pdf -H 'Authorization: Bearer {user_token}'   (in Chinese: the user chose zh-Hant)"
            );
            println!(
                "  curl -s {base}/v1/users/{user}/footprint -H 'Authorization: Bearer {user_token}'   (the user's orders, certificates and emissions)"
            );
            println!("  curl -s {base}/v1/public/footprint   (the platform's carbon footprint, no token)");
            let regulator = demo
                .tokens
                .iter()
                .find(|t| t.role == Role::Regulator)
                .map(|t| t.secret.as_str())
                .unwrap_or("");
            println!(
                "  curl -s {base}/v1/reports -H 'Authorization: Bearer {regulator}'   (the Hong Kong regulator's reports; the console's Reports page too)"
            );
            for (jurisdiction, period, id) in &reports {
                println!("    {jurisdiction} {period}: {base}/v1/reports/{id}/files/report.pdf");
            }
            println!("  open {base}/docs   (API docs; paste a token at the top)");
            println!(
                "\nKYC: {applications} applications submitted and screened against the {lists_loaded}."
            );
            println!(
                "Withdrawals: {} through the gate, {} held for review, {} open alerts, {} case.",
                withdrawals.withdrawals, withdrawals.held, withdrawals.alerts, withdrawals.cases
            );
            println!("Carbon: {carbon}.");
            println!(
                "  open {base}/console   (the console: officers log in with the officer or senior officer token; the user with the user token sees their tax statements)\n"
            );
            serve(&settings, state)?;
        }
        Command::Token { command } => return token_command(command, &settings),
        Command::Import { command } => import_command(command, &settings)?,
        Command::Export { command } => export_command(command, &settings)?,
        Command::Bench {
            command:
                BenchCommand::All {
                    scale,
                    lists,
                    cases,
                    output,
                    postgres_url,
                },
        } => {
            let missed = hashgate::scorecard::run_all(&hashgate::scorecard::AllOptions {
                scale,
                lists,
                cases,
                postgres_url,
                output,
            })?;
            if missed > 0 {
                anyhow::bail!("{missed} targets were missed: see the table above");
            }
        }
        Command::Bench {
            command:
                BenchCommand::Withdrawals {
                    users,
                    payouts,
                    requests,
                    clients,
                    postgres_url,
                    postgres_only,
                },
        } => {
            print!(
                "{}",
                hashgate::withdrawals::bench::run(
                    &hashgate::withdrawals::bench::GateBenchOptions {
                        users,
                        payouts,
                        requests,
                        clients,
                        postgres_url,
                        postgres_only,
                    }
                )?
            );
        }
        Command::Bench {
            command:
                BenchCommand::Kyc {
                    applications,
                    requests,
                    postgres_url,
                },
        } => {
            print!(
                "{}",
                hashgate::kyc::bench::run(&hashgate::kyc::bench::KycBenchOptions {
                    applications,
                    requests,
                    postgres_url,
                })?
            );
        }
        Command::Bench {
            command:
                BenchCommand::Screening {
                    data,
                    queries,
                    names,
                },
        } => {
            print!(
                "{}",
                hashgate::aml::bench::run(&hashgate::aml::bench::ScreeningBenchOptions {
                    data,
                    queries,
                    names,
                })?
            );
        }
        Command::Bench {
            command:
                BenchCommand::Ledger {
                    payouts,
                    users,
                    postgres_url,
                },
        } => {
            if users == 0 {
                anyhow::bail!("--users must be at least 1");
            }
            hashgate::bench::run(&hashgate::bench::BenchOptions {
                payouts,
                users,
                postgres_url,
            })?;
        }
        Command::Bench {
            command:
                BenchCommand::Carbon {
                    orders,
                    certificates,
                    hourly_orders,
                    hourly_days,
                    postgres_url,
                },
        } => {
            if !(1..=366).contains(&hourly_days) {
                anyhow::bail!("--hourly-days must be 1 to 366");
            }
            hashgate::carbon::bench::run(&hashgate::carbon::bench::CarbonBenchOptions {
                orders,
                certificates,
                hourly_orders,
                hourly_days,
                postgres_url,
            })?;
        }
        Command::Bench {
            command:
                BenchCommand::Reports {
                    users,
                    payouts,
                    samples,
                    postgres_url,
                },
        } => {
            if users == 0 || payouts == 0 || samples == 0 {
                anyhow::bail!("--users, --payouts and --samples must be at least 1");
            }
            hashgate::reports::bench::run(&hashgate::reports::bench::ReportsBenchOptions {
                users,
                payouts,
                samples,
                postgres_url,
            })?;
        }
        Command::Bench {
            command:
                BenchCommand::Load {
                    users,
                    payouts,
                    seconds,
                    rate,
                    clients,
                    lists,
                    postgres_url,
                },
        } => {
            if users == 0 || seconds == 0 || rate == 0 || clients == 0 {
                anyhow::bail!("--users, --seconds, --rate and --clients must be at least 1");
            }
            let report = hashgate::load::run(&hashgate::load::LoadOptions {
                users,
                payouts,
                seconds,
                rate,
                clients,
                lists: Some(lists),
                postgres_url,
            })?;
            print!("{report}");
        }
        Command::Bench {
            command:
                BenchCommand::Tax {
                    users,
                    days,
                    samples,
                    postgres_url,
                    postgres_only,
                },
        } => {
            if users == 0 || days == 0 || samples == 0 {
                anyhow::bail!("--users, --days and --samples must be at least 1");
            }
            hashgate::tax::bench::run(&hashgate::tax::bench::TaxBenchOptions {
                users,
                days,
                samples,
                postgres_url,
                postgres_only,
            })?;
        }
        Command::Lists {
            command:
                ListsCommand::Import {
                    source,
                    paths,
                    force,
                    no_rescreen,
                },
        } => {
            let source = hashgate::aml::lists::ListSource::parse(&source).ok_or_else(|| {
                anyhow::anyhow!("unknown list source `{source}`: ofac-sdn, un-consolidated or pep")
            })?;
            let db = db::Db::open(&settings.database_url, 1)?;
            let jurisdictions = hashgate::jurisdiction::Jurisdictions::load_default()?;
            let loaded = hashgate::aml::import::import_list(
                &db,
                source,
                &paths,
                force,
                (!no_rescreen).then_some(&jurisdictions),
            )?;
            let version = &loaded.version;
            if version.unchanged {
                println!(
                    "{} version {}: identical file (checksum {}), nothing changed",
                    source.as_str(),
                    version.version,
                    version.checksum
                );
            } else {
                println!(
                    "{} version {}: {} entries, {} added, {} changed, {} removed (checksum {})",
                    source.as_str(),
                    version.version,
                    version.entries,
                    version.added,
                    version.changed,
                    version.removed,
                    version.checksum
                );
            }
            if let Some(job) = &loaded.rescreen {
                run_rescreen(&settings, &db, &jurisdictions, job)?;
            }
        }
        Command::Screening {
            command: ScreeningCommand::Rescreen,
        } => {
            let db = db::Db::open(&settings.database_url, 1)?;
            let jurisdictions = hashgate::jurisdiction::Jurisdictions::load_default()?;
            let mut connection = db.connection()?;
            let job = write_transaction(&mut connection, |connection| {
                hashgate::aml::monitor::enqueue(
                    connection,
                    hashgate::aml::monitor::RescreenScope::Everything,
                    &jurisdictions,
                    &Actor::command_line(),
                    Some("hashgate screening rescreen"),
                )
            })
            .map_err(|error| anyhow::anyhow!(describe(&error)))?;
            drop(connection);
            run_rescreen(&settings, &db, &jurisdictions, &job)?;
        }
        Command::Screening {
            command:
                ScreeningCommand::Eval {
                    cases,
                    threshold,
                    errors,
                },
        } => {
            let cases = hashgate::aml::eval::load_cases(&cases)?;
            print!(
                "{}",
                hashgate::aml::eval::report(&cases, threshold, errors)?
            );
        }
        Command::Kyc {
            command: KycCommand::Review,
        } => {
            let state = hashgate::AppState::open(&settings)?;
            let kyc = hashgate::kyc::service::Kyc {
                cipher: &state.cipher,
                screener: &state.screener,
                jurisdictions: &state.jurisdictions,
            };
            let summary = hashgate::kyc::review::run(&state.db, kyc, db::now())?;
            println!(
                "periodic reviews opened: {}; document renewals opened: {}; reviews lapsed: {}",
                summary.periodic_reviews_opened,
                summary.document_renewals_opened,
                summary.reviews_lapsed
            );
        }
        Command::Reports {
            command: ReportsCommand::RunSchedules,
        } => {
            let state = hashgate::AppState::open(&settings)?;
            let mut connection = state.db.connection()?;
            let summary = hashgate::reports::schedule::run_due(
                &mut connection,
                hashgate::reports::service::Keys {
                    signer: &state.signer,
                    cipher: &state.cipher,
                },
                &state.jurisdictions,
                (&state.reporting_entity.name, state.carbon.location_basis),
                db::now(),
            )
            .map_err(|error| anyhow::anyhow!(describe(&error)))?;
            println!(
                "reports generated: {}; recipients notified: {}",
                summary.generated.len(),
                summary.notified
            );
            for id in summary.generated {
                println!("  {id}");
            }
        }
        Command::Verify => {
            let db = db::Db::open(&settings.database_url, 1)?;
            let mut connection = db.connection()?;
            let audit = hashgate::audit::store::verify_chain(&mut connection)?;
            let ledger = hashgate::ledger::store::verify(&mut connection)
                .map_err(|error| anyhow::anyhow!(describe(&error)))?;
            let mut intact = true;
            for (name, outcome) in [("audit log", audit), ("ledger", ledger)] {
                match outcome {
                    Verification::Intact { entries, head } => {
                        println!("{name}: {entries} entries, hash chain intact, head {head}");
                    }
                    Verification::Broken(broken) => {
                        eprintln!("{name}: BROKEN: {broken}");
                        intact = false;
                    }
                    Verification::Inconsistent(problem) => {
                        eprintln!("{name}: INCONSISTENT: {problem}");
                        intact = false;
                    }
                }
            }
            if !intact {
                return Ok(ExitCode::from(1));
            }
        }
        Command::VerifyReport { file, report } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let signer = hashgate::load_signer(&settings)?;
            let db = db::Db::open(&settings.database_url, 1)?;
            let mut connection = db.connection()?;
            let check = hashgate::reports::service::verify_copy(
                &mut connection,
                &signer,
                &bytes,
                report.as_deref(),
            )
            .map_err(|error| anyhow::anyhow!(describe(&error)))?;
            if check.valid {
                println!("OK: {}: {}", file.display(), check.message);
            } else {
                eprintln!("FAILED: {}: {}", file.display(), check.message);
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(settings: &Settings, state: AppState) -> anyhow::Result<()> {
    let backend = state.db.backend().name();
    let application = Application::build(settings, state)?;
    tracing::info!(address = %settings.bind, backend, "hashgate is serving; API docs at /docs");
    actix_web::rt::System::new().block_on(application.run())?;
    Ok(())
}

fn token_command(command: TokenCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let db = db::Db::open(&settings.database_url, 1)?;
    let mut connection = db.connection()?;
    let actor = Actor::command_line();
    match command {
        TokenCommand::Create {
            role,
            name,
            jurisdiction,
            user,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                anyhow::anyhow!("unknown role `{role}`; roles: {}", known.join(", "))
            })?;
            let grant = TokenGrant {
                name,
                role,
                jurisdiction,
                user_id: user,
            };
            let (secret, hash) = generate_token();
            let info = write_transaction(&mut connection, |connection| {
                tokens::create(connection, &grant, &hash, &actor, None)
            })
            .map_err(|error| anyhow::anyhow!(describe(&error)))?;
            println!("{secret}");
            eprintln!(
                "created token {} ({}, {}); the secret above is shown only once",
                info.id, info.name, info.role
            );
        }
        TokenCommand::List { all } => {
            let list = tokens::list(&mut connection, all, None, i64::MAX)
                .map_err(|error| anyhow::anyhow!(describe(&error)))?;
            println!(
                "{:<36}  {:<14}  {:<4}  {:<8}  NAME",
                "ID", "ROLE", "JUR", "STATE"
            );
            for token in list {
                let state = if token.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<36}  {:<14}  {:<4}  {:<8}  {}",
                    token.id,
                    token.role.as_str(),
                    token.jurisdiction.as_deref().unwrap_or("-"),
                    state,
                    token.name
                );
            }
        }
        TokenCommand::Revoke { id, reason } => {
            let info = write_transaction(&mut connection, |connection| {
                tokens::revoke(connection, &id, &reason, &actor, None)
            })
            .map_err(|error| anyhow::anyhow!(describe(&error)))?;
            println!("revoked token {} ({})", info.id, info.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn export_command(command: ExportCommand, settings: &Settings) -> anyhow::Result<()> {
    let ExportCommand::Carf {
        jurisdiction,
        year,
        output,
        test,
    } = command;
    let jurisdictions = hashgate::jurisdiction::Jurisdictions::load_default()?;
    let Some(found) = jurisdictions.get(&jurisdiction) else {
        anyhow::bail!(
            "no jurisdiction `{jurisdiction}`; known: {}",
            jurisdictions.codes().collect::<Vec<_>>().join(", ")
        );
    };
    let cipher = hashgate::load_cipher(settings)?;
    let db = db::Db::open(&settings.database_url, 1)?;
    let mut connection = db.connection()?;
    let request = hashgate::tax::carf::CarfRequest {
        jurisdiction: found,
        year,
        entity: &settings.reporting_entity,
        staleness: chrono::Duration::seconds(settings.price_staleness_seconds),
        now: db::now(),
        test,
    };
    let started = std::time::Instant::now();
    let summary = match &output {
        Some(path) => hashgate::tax::carf::export(
            &mut connection,
            &cipher,
            &request,
            std::fs::File::create(path)
                .map_err(|error| anyhow::anyhow!("cannot write {}: {error}", path.display()))?,
        ),
        None => hashgate::tax::carf::export(
            &mut connection,
            &cipher,
            &request,
            std::io::stdout().lock(),
        ),
    }
    .map_err(|error| anyhow::anyhow!(describe(&error)))?;
    let elapsed = started.elapsed();
    eprintln!(
        "CARF {jurisdiction} {year}: {} users, {} user×asset aggregates from {} payouts ({} without a value, left out; {} users without a birth date); {} s, {} rows/s",
        summary.users,
        summary.aggregates,
        summary.payouts,
        summary.unvalued,
        summary.without_birth_date,
        hashgate::metrics::seconds_text(elapsed),
        hashgate::metrics::per_second(summary.payouts, elapsed)
    );
    Ok(())
}

fn import_command(command: ImportCommand, settings: &Settings) -> anyhow::Result<()> {
    let db = db::Db::open(&settings.database_url, 2)?;
    match command {
        ImportCommand::Payouts {
            file,
            source,
            batch_size,
        } => {
            if batch_size == 0 || batch_size > hashgate::ledger::import::MAX_BATCH_SIZE {
                anyhow::bail!(
                    "--batch-size must be 1 to {}",
                    hashgate::ledger::import::MAX_BATCH_SIZE
                );
            }
            let mut options = ImportOptions::beside(&file, &source);
            options.batch_size = batch_size;
            options.show_progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let staleness = chrono::Duration::seconds(settings.price_staleness_seconds);
            let summary = hashgate::ledger::import::import_payouts(
                &db,
                &file,
                &options,
                &Actor::command_line(),
                staleness,
            )?;
            if let Some(line) = summary.resumed_after_line {
                println!("resumed after line {line}");
            }
            println!(
                "{} rows: {} accepted, {} already stored, {} rejected, {} without a usable price; {} s, {} rows/s",
                summary.rows,
                summary.accepted,
                summary.duplicates,
                summary.rejected,
                summary.unpriced,
                hashgate::metrics::seconds_text(summary.elapsed),
                hashgate::metrics::per_second(summary.rows, summary.elapsed)
            );
            if summary.rejected > 0 {
                println!(
                    "rejected rows and reasons: {}",
                    options.rejects_path.display()
                );
            }
        }
        ImportCommand::Prices { file, source } => {
            let (inserted, unchanged) =
                hashgate::ledger::import::import_rates(&db, &file, &source)?;
            println!("{inserted} rates stored, {unchanged} already stored");
        }
        ImportCommand::EmissionFactors {
            file,
            format,
            dataset_version,
            per_source,
            year,
        } => {
            let format =
                hashgate::carbon::factors::FactorFormat::parse(&format).ok_or_else(|| {
                    anyhow::anyhow!(
                        "--format must be ember-csv, nordic-json, canada-provinces or plain"
                    )
                })?;
            let (inserted, unchanged) = hashgate::carbon::import::import_factors(
                &db,
                &hashgate::carbon::import::FactorSource {
                    path: &file,
                    format,
                    version: &dataset_version,
                    per_source: per_source.as_deref(),
                    year,
                },
            )?;
            println!("{inserted} emission factors stored, {unchanged} already stored");
        }
        ImportCommand::Certificates { file } => {
            let (imported, report) = hashgate::carbon::import::import_certificates(
                &db,
                &file,
                &settings.carbon.vintage,
            )?;
            println!(
                "{imported} certificates imported; matching: {} orders, {} allocations, {} Wh hourly, {} Wh annual",
                report.orders, report.allocations, report.hourly_wh, report.annual_wh
            );
        }
    }
    Ok(())
}

/// The problem detail of an error, for the terminal.
fn describe(error: &hashgate::error::AppError) -> String {
    let problem = error.problem();
    problem.detail
}
