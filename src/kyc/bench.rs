//! `hashgate bench kyc`: the review queue with 100,000 applications. The first page, with and
//! without filters, through the HTTP API and the console page, on SQLite and (with a URL)
//! PostgreSQL. Target: p99 under 50 ms.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};

use super::application::{IdentityDocument, PersonalData};
use super::risk::{RiskFactor, RiskRating};
use super::store::{self, NewApplication};
use super::{ApplicationKind, ApplicationStatus, RiskLevel, Tier};
use crate::audit::Actor;
use crate::auth::{Role, TokenGrant};
use crate::bench::{
    http_request, latency_line, on_scratch_backends, percentile, problem, BenchServer,
};
use crate::config::Settings;
use crate::db::schema::kyc_applications;
use crate::db::write_transaction;
use crate::metrics::seconds_text;
use crate::users::NewUser;

pub struct KycBenchOptions {
    pub applications: usize,
    pub requests: usize,
    pub postgres_url: Option<String>,
}

const JURISDICTIONS: [&str; 11] = [
    "CN", "HK", "SG", "US", "GB", "DE", "CH", "KZ", "JP", "AU", "CA",
];
const TARGET: Duration = Duration::from_millis(50);

pub fn run(options: &KycBenchOptions) -> anyhow::Result<String> {
    on_scratch_backends(
        options.postgres_url.as_deref(),
        true,
        |settings, state, out| bench_backend(settings, state, options, out),
    )
}

fn bench_backend(
    settings: &Settings,
    state: crate::AppState,
    options: &KycBenchOptions,
    out: &mut String,
) -> anyhow::Result<()> {
    let started = Instant::now();
    fill(&state, options.applications)?;
    writeln!(
        out,
        "filled {} applications (users, encrypted personal data) in {} s",
        options.applications,
        seconds_text(started.elapsed())
    )?;

    let (secret, hash) = crate::auth::generate_token();
    let mut connection = state.db.connection().map_err(problem)?;
    let officer = write_transaction(&mut connection, |connection| {
        let grant = TokenGrant {
            name: "bench officer".into(),
            role: Role::Officer,
            jurisdiction: None,
            user_id: None,
        };
        crate::auth::store::create(connection, &grant, &hash, &Actor::command_line(), None)?;
        crate::auth::store::authenticate(connection, &hash)?
            .ok_or_else(|| crate::error::AppError::bad_request("no token"))
    })
    .map_err(problem)?;
    let console_session = write_transaction(&mut connection, |connection| {
        crate::console::session::start(connection, &officer, crate::db::now())
    })?;
    drop(connection);

    let backend = state.db.backend().name();
    let mut server = BenchServer::start(settings, state)?;
    let stream = &mut server.stream;
    let bearer = format!("Bearer {secret}");
    let cookie = format!("hg_session={console_session}");
    let cases: [(&str, &str, (&str, &str)); 7] = [
        (
            "API, waiting (no filter)",
            "/v1/kyc/applications",
            ("Authorization", &bearer),
        ),
        (
            "API, jurisdiction HK",
            "/v1/kyc/applications?jurisdiction=HK",
            ("Authorization", &bearer),
        ),
        (
            "API, high risk, SLA breached",
            "/v1/kyc/applications?risk=high&sla_breached=true",
            ("Authorization", &bearer),
        ),
        (
            "API, tier 2 in SG, unclaimed",
            "/v1/kyc/applications?tier=2&jurisdiction=SG&assignee=none",
            ("Authorization", &bearer),
        ),
        (
            "API, rejected, 200 a page",
            "/v1/kyc/applications?status=rejected&limit=200",
            ("Authorization", &bearer),
        ),
        ("console queue page", "/console/queue", ("Cookie", &cookie)),
        (
            "console, DE, medium risk",
            "/console/queue?jurisdiction=DE&risk=medium",
            ("Cookie", &cookie),
        ),
    ];
    let mut worst = Duration::ZERO;
    for (label, path, header) in cases {
        for _ in 0..20 {
            http_request(stream, "GET", path, &[header], None)?;
        }
        let mut samples = Vec::with_capacity(options.requests);
        for _ in 0..options.requests {
            let started = Instant::now();
            let status = http_request(stream, "GET", path, &[header], None)?;
            samples.push(started.elapsed());
            anyhow::ensure!(status == 200, "HTTP {status} for {path}");
        }
        samples.sort();
        worst = worst.max(percentile(&samples, 990));
        writeln!(out, "{}", latency_line(label, samples))?;
    }
    crate::scorecard::record_millis(
        5,
        &format!(
            "KYC queue first page, {} applications, worst filter p99",
            options.applications
        ),
        backend,
        TARGET.as_secs_f64() * 1000.0,
        worst,
    );
    writeln!(
        out,
        "first page p99, worst case: {} ms (target < {} ms): {}",
        crate::metrics::millis_text(worst),
        TARGET.as_millis(),
        if worst < TARGET { "PASS" } else { "FAIL" }
    )?;
    server.stop();
    Ok(())
}

/// Users and their applications, in pages of 1,000 per transaction: every jurisdiction, tiers
/// 1–3, 10% high and 25% medium risk, most waiting, some decided, due times around now.
fn fill(state: &crate::AppState, count: usize) -> anyhow::Result<()> {
    let mut random = rand::rngs::StdRng::seed_from_u64(11);
    let actor = Actor::command_line();
    let now = crate::db::now();
    let mut connection = state.db.connection().map_err(problem)?;
    for page in 0..count.div_ceil(1_000) {
        write_transaction(&mut connection, |connection| {
            for number in page * 1_000..((page + 1) * 1_000).min(count) {
                let jurisdiction = JURISDICTIONS[number % JURISDICTIONS.len()];
                let user = crate::users::store::insert(
                    connection,
                    &state.cipher,
                    &NewUser {
                        external_ref: format!("bench-{number:07}"),
                        email: format!("applicant{number}@example.com"),
                        residence_jurisdiction: jurisdiction.into(),
                        preferred_language: "en".into(),
                        date_of_birth: None,
                        address: None,
                    },
                )?;
                let level = match random.gen_range(0..100) {
                    0..10 => RiskLevel::High,
                    10..35 => RiskLevel::Medium,
                    _ => RiskLevel::Low,
                };
                let factors = if level == RiskLevel::Low {
                    Vec::new()
                } else {
                    vec![RiskFactor {
                        code: "fatf_increased_monitoring".into(),
                        level,
                        explanation: "synthetic".into(),
                    }]
                };
                let tier = Tier::new(random.gen_range(1..=3)).unwrap_or(Tier::BASIC);
                let data = PersonalData {
                    legal_name: format!("Applicant {number}"),
                    latin_name: None,
                    date_of_birth: NaiveDate::from_ymd_opt(1980, 1, 1).unwrap_or_default(),
                    nationality: jurisdiction.into(),
                    residence: jurisdiction.into(),
                    address: Some("1 Bench Street".into()),
                    identity_document: Some(IdentityDocument {
                        document_type: "passport".into(),
                        number: format!("B{number:08}"),
                        issuing_country: jurisdiction.into(),
                        expires_on: NaiveDate::from_ymd_opt(2031, 1, 1).unwrap_or_default(),
                    }),
                    pep_declared: false,
                    occupation: None,
                    source_of_funds: None,
                    source_of_wealth: None,
                };
                let submitted_at = now - chrono::Duration::minutes(random.gen_range(0..14_400));
                let id = uuid::Uuid::new_v4().to_string();
                store::insert_application(
                    connection,
                    &state.cipher,
                    &NewApplication {
                        id: &id,
                        user_id: &user.id,
                        jurisdiction,
                        kind: ApplicationKind::Onboarding,
                        target_tier: tier,
                        personal_data: &data,
                        screening_ids: &[],
                        risk: &RiskRating { level, factors },
                        submitted_at,
                        due_at: submitted_at + chrono::Duration::hours(48),
                        submitted_by: &actor,
                        based_on: None,
                    },
                )?;
                let status = match random.gen_range(0..100) {
                    0..55 => ApplicationStatus::Submitted,
                    55..60 => ApplicationStatus::ApprovalPending,
                    60..70 => ApplicationStatus::InfoRequested,
                    70..90 => ApplicationStatus::Approved,
                    _ => ApplicationStatus::Rejected,
                };
                if status != ApplicationStatus::Submitted {
                    use diesel::prelude::*;
                    diesel::update(kyc_applications::table.find(&id))
                        .set(kyc_applications::status.eq(status.as_str()))
                        .execute(connection)?;
                }
            }
            Ok::<_, crate::error::AppError>(())
        })
        .map_err(problem)?;
    }
    Ok(())
}
