//! `hashgate bench screening`: single-query latency against the loaded OFAC SDN and UN lists,
//! in-process and over HTTP (the stored screening included), and bulk rescreen throughput.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use rand::{Rng, SeedableRng};

use super::lists::ListSource;
use super::matcher::{ScreeningIndex, SubjectQuery};
use super::names::SubjectKind;
use crate::auth::{Role, TokenGrant};
use crate::bench::{http_request, latency_line, BenchServer};
use crate::config::Settings;
use crate::db::write_transaction;
use crate::metrics::{per_second, seconds_text};

pub struct ScreeningBenchOptions {
    /// `../shared/data/sanctions` or another directory of the same layout.
    pub data: PathBuf,
    pub queries: usize,
    pub names: usize,
}

/// Query names: both sides of the labelled pairs (many scripts, hard cases, mostly names taken
/// from the lists themselves), cycled.
fn query_names(data: &Path, count: usize) -> anyhow::Result<Vec<(SubjectKind, String)>> {
    let cases = super::eval::load_cases(&data.join("name-pairs/cases.csv"))?;
    let names: Vec<(SubjectKind, String)> = cases
        .into_iter()
        .flat_map(|case| [(case.kind, case.name1), (case.kind, case.name2)])
        .collect();
    Ok(names.iter().cycle().take(count).cloned().collect())
}

/// Plausible customer names, nearly all of them not listed.
fn synthetic_customers(count: usize) -> Vec<String> {
    const GIVEN: &[&str] = &[
        "Wei", "Li", "Ming", "Anna", "Maria", "John", "David", "Mohammed", "Ahmed", "Olga", "Ivan",
        "Sergei", "Yuki", "Hiroshi", "Kenji", "Emma", "Lucas", "Sofia", "Arjun", "Priya", "Chen",
        "Jia", "Hana", "Omar", "Fatima", "Lars", "Ingrid", "Pierre", "Chloe", "Diego", "Ana",
    ];
    const FAMILY: &[&str] = &[
        "Wang", "Zhang", "Liu", "Chen", "Smith", "Johnson", "Garcia", "Muller", "Schmidt",
        "Ivanov", "Petrov", "Sato", "Suzuki", "Tanaka", "Kim", "Lee", "Park", "Nguyen", "Singh",
        "Kumar", "Hassan", "Ali", "Khan", "Rossi", "Bianchi", "Dubois", "Martin", "Silva",
        "Santos", "Novak", "Horvat", "Larsen", "Nielsen", "Kowalski", "Tan", "Lim", "Wong",
    ];
    let mut random = rand::rngs::StdRng::seed_from_u64(7);
    (0..count)
        .map(|_| {
            let given = GIVEN[random.gen_range(0..GIVEN.len())];
            let family = FAMILY[random.gen_range(0..FAMILY.len())];
            if random.gen_bool(0.3) {
                let middle = GIVEN[random.gen_range(0..GIVEN.len())];
                format!("{given} {middle} {family}")
            } else {
                format!("{given} {family}")
            }
        })
        .collect()
}

pub fn run(options: &ScreeningBenchOptions) -> anyhow::Result<String> {
    let mut out = String::new();
    let directory = tempfile_directory()?;
    let database = directory.join("bench.db");
    let key = crate::crypto::FieldCipher::generate_key();
    let settings = Settings::from_layers(
        None,
        &[
            (
                "HASHGATE_DATABASE_URL".into(),
                format!("sqlite://{}", database.display()),
            ),
            ("HASHGATE_ENCRYPTION_KEY".into(), key),
            ("HASHGATE_WORKERS".into(), "2".into()),
            ("HASHGATE_LOG_LEVEL".into(), "warn".into()),
        ],
    )?;
    let state = crate::AppState::open(&settings)?;
    // The rescreen's own handle, opened before the server takes `state`.
    let monitoring = crate::AppState::open(&settings)?;

    // Load the lists (timed, for the record).
    let started = Instant::now();
    let mut loaded_entries = 0;
    for (source, paths) in [
        (
            ListSource::OfacSdn,
            vec![
                options.data.join("ofac"),
                options.data.join("ofac-addresses/sdn_comments.csv"),
            ],
        ),
        (
            ListSource::UnConsolidated,
            vec![options.data.join("un/UN_consolidated.xml")],
        ),
    ] {
        let loaded = super::import::import_list(&state.db, source, &paths, false, None)?;
        loaded_entries += loaded.version.entries;
    }
    writeln!(
        out,
        "lists: {loaded_entries} entries (OFAC SDN + UN) parsed and stored in {} s",
        seconds_text(started.elapsed())
    )?;
    let mut connection = state
        .db
        .connection()
        .map_err(|e| anyhow::anyhow!(e.problem().detail))?;
    let started = Instant::now();
    let index = ScreeningIndex::build(
        super::store::active_entries(&mut connection)
            .map_err(|e| anyhow::anyhow!(e.problem().detail))?,
    );
    writeln!(
        out,
        "index: {} entries, {} names built in {} s",
        index.entry_count(),
        index.name_count(),
        seconds_text(started.elapsed())
    )?;

    // 1. In-process.
    let queries = query_names(&options.data, options.queries)?;
    let mut samples = Vec::with_capacity(queries.len());
    let mut hits = 0usize;
    for (kind, name) in &queries {
        let query = SubjectQuery {
            name: name.clone(),
            ..SubjectQuery::default()
        };
        let started = Instant::now();
        hits += index.screen(&query, *kind, super::DEFAULT_THRESHOLD).len();
        samples.push(started.elapsed());
    }
    crate::scorecard::record_millis(
        4,
        "one screening in-process, p99, list-style names",
        "in-process",
        1.0,
        crate::bench::p99(&samples),
    );
    writeln!(
        out,
        "{} ({hits} hits in all)",
        latency_line("in-process query, listed-style names", samples)
    )?;
    let mut samples = Vec::with_capacity(options.queries);
    let mut hits = 0usize;
    for name in synthetic_customers(options.queries) {
        let query = SubjectQuery {
            name,
            ..SubjectQuery::default()
        };
        let started = Instant::now();
        hits += index
            .screen(&query, SubjectKind::Person, super::DEFAULT_THRESHOLD)
            .len();
        samples.push(started.elapsed());
    }
    writeln!(
        out,
        "{} ({hits} hits in all)",
        latency_line("in-process query, customer names", samples)
    )?;

    // 2. Over HTTP, one client on a kept-alive connection; each screening is stored.
    let (secret, hash) = crate::auth::generate_token();
    write_transaction(&mut connection, |connection| {
        crate::auth::store::create(
            connection,
            &TokenGrant {
                name: "bench".into(),
                role: Role::Officer,
                jurisdiction: None,
                user_id: None,
            },
            &hash,
            &crate::audit::Actor::command_line(),
            None,
        )
    })
    .map_err(|e| anyhow::anyhow!(e.problem().detail))?;
    drop(connection);
    let mut server = BenchServer::start(&settings, state)?;
    let stream = &mut server.stream;
    let http_queries = queries.len().min(5_000);
    let mut samples = Vec::with_capacity(http_queries);
    for (kind, name) in queries.iter().take(http_queries) {
        let path = match kind {
            SubjectKind::Person => "/v1/screening/person",
            _ => "/v1/screening/entity",
        };
        let body = serde_json::json!({ "name": name }).to_string();
        let started = Instant::now();
        let status = http_request(
            stream,
            "POST",
            path,
            &[("Authorization", &format!("Bearer {secret}"))],
            Some(&body),
        )?;
        samples.push(started.elapsed());
        anyhow::ensure!(status == 200, "HTTP {status} for {name}");
    }
    crate::scorecard::record_millis(
        4,
        "one screening over HTTP, stored, p99",
        "sqlite",
        5.0,
        crate::bench::p99(&samples),
    );
    writeln!(
        out,
        "{}",
        latency_line("HTTP query (stored, SQLite)", samples)
    )?;
    server.stop();

    // 3. A full rescreen of monitored customers: the job the service runs after a matcher
    // change, storing every hit, on all cores.
    let state = monitoring;
    let started = Instant::now();
    let codes: Vec<&str> = state.jurisdictions.codes().collect();
    let customers = synthetic_customers(options.names);
    let mut connection = state
        .db
        .connection()
        .map_err(|e| anyhow::anyhow!(e.problem().detail))?;
    for (page, names) in customers.chunks(1_000).enumerate() {
        let subjects: Vec<(String, &str, String)> = names
            .iter()
            .enumerate()
            .map(|(offset, name)| {
                let number = page * 1_000 + offset;
                (
                    format!("customer-{number:07}"),
                    codes[number % codes.len()],
                    serde_json::json!({ "name": name }).to_string(),
                )
            })
            .collect();
        let rows: Vec<(&str, &str, Option<&str>, &str)> = subjects
            .iter()
            .map(|(id, code, query)| (id.as_str(), "person", Some(*code), query.as_str()))
            .collect();
        write_transaction(&mut connection, |connection| {
            super::store::remember_subjects(connection, &state.cipher, &rows)
        })
        .map_err(|e| anyhow::anyhow!(e.problem().detail))?;
    }
    writeln!(
        out,
        "monitoring: {} customers stored in {} s",
        customers.len(),
        seconds_text(started.elapsed())
    )?;
    let job = write_transaction(&mut connection, |connection| {
        super::monitor::enqueue(
            connection,
            super::monitor::RescreenScope::Everything,
            &state.jurisdictions,
            &crate::audit::Actor::command_line(),
            Some("bench"),
        )
    })
    .map_err(|e| anyhow::anyhow!(e.problem().detail))?;
    drop(connection);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    let finished = super::monitor::Runner {
        db: &state.db,
        cipher: &state.cipher,
        jurisdictions: &state.jurisdictions,
        threads,
    }
    .run(&job.id, &|_| {})
    .map_err(|e| anyhow::anyhow!(e.problem().detail))?
    .context("the rescreen job was taken by another runner")?;
    let elapsed = started.elapsed();
    crate::scorecard::record(
        4,
        &format!("rescreen {} customers against OFAC + UN", finished.done),
        "sqlite",
        crate::scorecard::Target::AtMost(600.0 * finished.done as f64 / 1_000_000.0),
        elapsed.as_secs_f64(),
        "s",
    );
    writeln!(
        out,
        "full rescreen: {} customers against {} entries in {} s = {} names/s on {threads} threads ({} hits stored)",
        finished.done,
        finished.entries,
        seconds_text(elapsed),
        per_second(finished.done as u64, elapsed),
        finished.new_hits
    )?;
    let _ = std::fs::remove_dir_all(&directory);
    Ok(out)
}

fn tempfile_directory() -> anyhow::Result<PathBuf> {
    let directory = std::env::temp_dir().join(format!(
        "hashgate-bench-screening-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&directory)?;
    Ok(directory)
}
