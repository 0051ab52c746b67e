//! `hashgate bench withdrawals`: gating decisions over HTTP on a database with many verified
//! users and a large ledger. Target: p99 < 10 ms and ≥ 1,000 decisions/s on PostgreSQL on a
//! 2-core machine (100,000 users, 10,000,000 ledger entries); SQLite: report what it reaches.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};

use crate::audit::Actor;
use crate::auth::Role;
use crate::bench::{
    bench_rates, bench_token, http_request, on_scratch_backends, payout_rows, payout_rows_within,
    percentile, problem, BenchServer,
};
use crate::config::Settings;
use crate::db::write_transaction;
use crate::kyc::application::PersonalData;
use crate::kyc::risk::RiskRating;
use crate::kyc::store::{self as kyc_store, NewApplication, Profile};
use crate::kyc::{ApplicationKind, RiskLevel, Tier};
use crate::ledger::payouts::{validate_batch, MAX_BATCH};
use crate::ledger::store::{self as ledger, NewRate};
use crate::metrics::{millis_text, per_second, seconds_text};
use crate::users::NewUser;

pub struct GateBenchOptions {
    pub users: usize,
    pub payouts: usize,
    pub requests: usize,
    pub clients: usize,
    pub postgres_url: Option<String>,
    pub postgres_only: bool,
}

const ADDRESS: &str = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";

/// The tables [`gate_fixture`] fills.
const FILLED_TABLES: [&str; 7] = [
    "users",
    "kyc_applications",
    "kyc_profiles",
    "withdrawal_addresses",
    "rates",
    "ledger_entries",
    "balances",
];

pub fn run(options: &GateBenchOptions) -> anyhow::Result<String> {
    on_scratch_backends(
        options.postgres_url.as_deref(),
        !options.postgres_only,
        |settings, state, out| bench_backend(settings, state, options, out),
    )
}

/// Verified users with funded wallets, today's BTC rates and a platform token: what the gate
/// needs to approve withdrawals.
pub(crate) struct GateFixture {
    pub users: Vec<String>,
    pub platform_token: String,
}

pub(crate) fn gate_fixture(
    state: &crate::AppState,
    users: usize,
    payouts: usize,
    out: &mut String,
) -> anyhow::Result<GateFixture> {
    let started = Instant::now();
    let users = verified_users(state, users)?;
    writeln!(
        out,
        "{} verified users in {} s",
        users.len(),
        seconds_text(started.elapsed())
    )?;

    let mut connection = state.db.connection().map_err(problem)?;
    let now = crate::db::now();
    let mut rates = bench_rates();
    // Daily prices over the last days value the recent payouts; the last, a minute old, values
    // the withdrawals.
    for as_of in [3, 2, 1]
        .map(|days| now - chrono::Duration::days(days))
        .into_iter()
        .chain([now - chrono::Duration::minutes(1)])
    {
        for (base, quote, rate) in [
            ("BTC", "USD", 100_000),
            ("USDT", "USD", 1),
            ("USD", "HKD", 8),
        ] {
            rates.push(NewRate {
                base: base.into(),
                quote: quote.into(),
                as_of,
                rate: rust_decimal::Decimal::from(rate),
            });
        }
    }
    write_transaction(&mut connection, |connection| {
        ledger::insert_rates(connection, &rates, "bench")
    })
    .map_err(problem)?;
    let assets = ledger::load_assets(&mut connection)?;
    let actor = Actor::command_line();
    let started = Instant::now();
    // A tenth of the payouts arrived in the last two days, as a platform's daily payouts do, so
    // the monitoring rules' look-back (rapid in-out) reads real payouts.
    let recent = payouts / 10;
    let two_days_ago = (now - chrono::Duration::days(2)).and_utc().timestamp();
    let mut source = payout_rows(&users, "gate", payouts - recent)
        .chain(payout_rows_within(
            &users,
            "gate-recent",
            recent,
            (two_days_ago, 2),
        ))
        .peekable();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while source.peek().is_some() {
        batch.clear();
        batch.extend(source.by_ref().take(MAX_BATCH));
        let valid = validate_batch(&batch, &assets, now)
            .map_err(|errors| anyhow::anyhow!("bench rows invalid: {:?}", errors.first()))?;
        write_transaction(&mut connection, |connection| {
            ledger::ingest_payouts(
                connection,
                "bench",
                valid,
                &actor,
                None,
                chrono::Duration::days(1),
            )
        })
        .map_err(problem)?;
    }
    drop(source);
    // Only what the set-up filled: analysed empty, the withdrawals table would keep the gate's
    // cached plans scanning it whole while the run fills it (345 decisions/s against 700).
    crate::bench::settle_after_load(&mut connection, Some(&FILLED_TABLES))?;
    writeln!(
        out,
        "{payouts} payouts ({payouts} ledger entries, {recent} of them in the last two days) in {} s, vacuumed",
        seconds_text(started.elapsed())
    )?;
    Ok(GateFixture {
        users,
        platform_token: bench_token(state, Role::Platform)?,
    })
}

fn bench_backend(
    settings: &Settings,
    state: crate::AppState,
    options: &GateBenchOptions,
    out: &mut String,
) -> anyhow::Result<()> {
    let GateFixture {
        users,
        platform_token: secret,
    } = gate_fixture(&state, options.users, options.payouts, out)?;
    let backend = state.db.backend().name();
    let db = state.db.clone();
    let server = BenchServer::start(settings, state)?;
    let bearer = format!("Bearer {secret}");
    let per_client = options.requests.div_ceil(options.clients);
    let started = Instant::now();
    let results: Vec<anyhow::Result<Vec<(Duration, u16)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..options.clients)
            .map(|client| {
                let server = &server;
                let users = &users;
                let bearer = &bearer;
                scope.spawn(move || -> anyhow::Result<Vec<(Duration, u16)>> {
                    let mut stream = server.connect()?;
                    let mut random = rand::rngs::StdRng::seed_from_u64(client as u64);
                    let mut samples = Vec::with_capacity(per_client);
                    for index in 0..per_client {
                        let user = &users[random.gen_range(0..users.len())];
                        let body = serde_json::json!({
                            "user_id": user, "asset": "BTC", "amount": "0.0001",
                            "network": "bitcoin", "address": ADDRESS,
                        })
                        .to_string();
                        let key = format!("bench-{client}-{index}");
                        let begun = Instant::now();
                        let status = http_request(
                            &mut stream,
                            "POST",
                            "/v1/withdrawals",
                            &[("Authorization", bearer), ("Idempotency-Key", &key)],
                            Some(&body),
                        )?;
                        samples.push((begun.elapsed(), status));
                    }
                    Ok(samples)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a client panicked")))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    server.stop();
    let mut latencies = Vec::new();
    for result in results {
        for (latency, status) in result? {
            anyhow::ensure!(status == 201, "HTTP {status} from the gate");
            latencies.push(latency);
        }
    }
    latencies.sort();
    let p99 = percentile(&latencies, 990);
    crate::scorecard::record(
        6,
        &format!("withdrawal decisions, {} clients", options.clients),
        backend,
        crate::scorecard::Target::AtLeast(1_000.0),
        per_second(latencies.len() as u64, elapsed) as f64,
        "/s",
    );
    crate::scorecard::record_millis(6, "withdrawal decision, p99", backend, 10.0, p99);
    writeln!(
        out,
        "{} decisions from {} clients in {} s = {} decisions/s; p50 {} ms, p99 {} ms, max {} ms",
        latencies.len(),
        options.clients,
        seconds_text(elapsed),
        per_second(latencies.len() as u64, elapsed),
        millis_text(percentile(&latencies, 500)),
        millis_text(p99),
        millis_text(latencies.last().copied().unwrap_or_default())
    )?;
    let mut connection = db.connection().map_err(problem)?;
    let mix: Vec<(String, i64)> = {
        use crate::db::schema::withdrawals;
        use diesel::prelude::*;
        withdrawals::table
            .group_by(withdrawals::decision)
            .select((withdrawals::decision, diesel::dsl::count_star()))
            .order_by(withdrawals::decision)
            .load(&mut **connection)?
    };
    let mix: Vec<String> = mix
        .iter()
        .map(|(decision, count)| format!("{count} {decision}"))
        .collect();
    writeln!(out, "decisions: {}", mix.join(", "))?;
    // The decisions appended to both chains from concurrent requests: they must still verify.
    for (chain, verification) in [
        ("audit", crate::audit::store::verify_chain(&mut connection)?),
        ("ledger", ledger::verify(&mut connection).map_err(problem)?),
    ] {
        anyhow::ensure!(
            matches!(verification, crate::chain::Verification::Intact { .. }),
            "the {chain} chain does not verify after the run: {verification:?}"
        );
    }
    writeln!(out, "audit and ledger chains verify after the run")?;
    Ok(())
}

/// Hong Kong users approved for tier 2, 1,000 per transaction.
fn verified_users(state: &crate::AppState, count: usize) -> anyhow::Result<Vec<String>> {
    let actor = Actor::command_line();
    let mut connection = state.db.connection().map_err(problem)?;
    let mut users = Vec::with_capacity(count);
    for page in 0..count.div_ceil(1_000) {
        let ids = write_transaction(&mut connection, |connection| {
            let mut ids = Vec::new();
            for number in page * 1_000..((page + 1) * 1_000).min(count) {
                let user = crate::users::store::insert(
                    connection,
                    &state.cipher,
                    &NewUser {
                        external_ref: format!("gate-{number:07}"),
                        email: format!("user{number}@example.com"),
                        residence_jurisdiction: "HK".into(),
                        preferred_language: "en".into(),
                        date_of_birth: None,
                        address: None,
                    },
                )?;
                let application = uuid::Uuid::new_v4().to_string();
                let now = crate::db::now();
                kyc_store::insert_application(
                    connection,
                    &state.cipher,
                    &NewApplication {
                        id: &application,
                        user_id: &user.id,
                        jurisdiction: "HK",
                        kind: ApplicationKind::Onboarding,
                        target_tier: Tier::VERIFIED,
                        personal_data: &PersonalData {
                            legal_name: format!("Miner {number}"),
                            latin_name: None,
                            date_of_birth: NaiveDate::from_ymd_opt(1985, 5, 5).unwrap_or_default(),
                            nationality: "HK".into(),
                            residence: "HK".into(),
                            address: None,
                            identity_document: None,
                            pep_declared: false,
                            occupation: None,
                            source_of_funds: None,
                            source_of_wealth: None,
                        },
                        screening_ids: &[],
                        risk: &RiskRating {
                            level: RiskLevel::Low,
                            factors: Vec::new(),
                        },
                        submitted_at: now,
                        due_at: now,
                        submitted_by: &actor,
                        based_on: None,
                    },
                )?;
                kyc_store::save_profile(
                    connection,
                    &Profile {
                        user_id: user.id.clone(),
                        jurisdiction: "HK".into(),
                        approved_tier: 2,
                        approved_application_id: application,
                        risk_level: "low".into(),
                        pep: false,
                        approved_at: now,
                        next_review_at: now + chrono::Duration::days(365),
                        review_lapsed_at: None,
                        document_expires_on: None,
                        updated_at: now,
                    },
                )?;
                // The bench address, approved in the user's book.
                super::addresses::insert(
                    connection,
                    &super::addresses::AddressEntry {
                        id: uuid::Uuid::new_v4().to_string(),
                        user_id: user.id.clone(),
                        network: "bitcoin".into(),
                        address: ADDRESS.into(),
                        label: None,
                        added_by: actor.id.clone(),
                        added_at: now,
                        usable_from: now,
                        approved_by: Some(actor.id.clone()),
                        approved_at: Some(now),
                        approval_reason: Some("bench".into()),
                        removed_by: None,
                        removed_at: None,
                    },
                )?;
                ids.push(user.id);
            }
            Ok::<_, crate::error::AppError>(ids)
        })
        .map_err(problem)?;
        users.extend(ids);
    }
    Ok(users)
}
