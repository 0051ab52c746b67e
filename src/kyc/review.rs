//! Periodic re-review: a daily job that opens a review for every approved user whose review is
//! due, asks users whose identity document expires soon for a new one, and lapses reviews left
//! undone past the jurisdiction's grace period (lowering the effective tier).

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;

use super::service::{Kyc, SUBJECT_TYPE};
use super::{store, ApplicationKind};
use crate::audit::{store as audit, Actor, NewAuditEntry};
use crate::db::{write_transaction, Db, DbConnection};
use crate::error::AppError;

const JOB: &str = "kyc_review";
/// Users handled per transaction.
const PAGE: i64 = 200;

pub fn review_actor() -> Actor {
    Actor {
        id: "system:kyc-review".into(),
        name: "periodic KYC review".into(),
        role: "system".into(),
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewSummary {
    pub periodic_reviews_opened: usize,
    pub document_renewals_opened: usize,
    pub reviews_lapsed: usize,
}

/// One run of the job at `now`. Each review is opened in its own transaction, so a failure
/// leaves the others done and the next run picks up the rest.
pub fn run(db: &Db, kyc: Kyc, now: NaiveDateTime) -> Result<ReviewSummary, AppError> {
    let actor = review_actor();
    let mut summary = ReviewSummary::default();
    let mut connection = db.connection()?;
    loop {
        let due = store::reviews_due(&mut connection, now, PAGE)?;
        if due.is_empty() {
            break;
        }
        for profile in &due {
            write_transaction(&mut connection, |connection| {
                kyc.open_review(connection, profile, ApplicationKind::PeriodicReview, &actor)
            })?;
            summary.periodic_reviews_opened += 1;
        }
    }
    let longest_notice = kyc
        .jurisdictions
        .codes()
        .filter_map(|code| kyc.jurisdictions.get(code))
        .map(|jurisdiction| jurisdiction.kyc.document_expiry_notice_days)
        .max()
        .unwrap_or(0);
    let horizon = now.date() + Duration::days(i64::from(longest_notice));
    for profile in store::documents_expiring(&mut connection, horizon, 10_000)? {
        let notice = kyc
            .jurisdictions
            .get(&profile.jurisdiction)
            .map(|jurisdiction| jurisdiction.kyc.document_expiry_notice_days)
            .unwrap_or(longest_notice);
        let Some(expires_on) = profile.document_expires_on else {
            continue;
        };
        if expires_on > now.date() + Duration::days(i64::from(notice)) {
            continue;
        }
        write_transaction(&mut connection, |connection| {
            let id = kyc.open_review(
                connection,
                &profile,
                ApplicationKind::DocumentRenewal,
                &actor,
            )?;
            let application = store::require(connection, kyc.cipher, &id)?;
            kyc.notify(
                connection,
                &application,
                "kyc_document_expiring",
                &[("expires_on", expires_on.to_string())],
                now,
            )
        })?;
        summary.document_renewals_opened += 1;
    }
    summary.reviews_lapsed = lapse_overdue(&mut connection, kyc, now, &actor)?;
    Ok(summary)
}

fn lapse_overdue(
    connection: &mut DbConnection,
    kyc: Kyc,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<usize, AppError> {
    let grace: BTreeMap<&str, i64> = kyc
        .jurisdictions
        .codes()
        .filter_map(|code| kyc.jurisdictions.get(code))
        .map(|jurisdiction| {
            (
                jurisdiction.code.as_str(),
                i64::from(jurisdiction.kyc.review_grace_days),
            )
        })
        .collect();
    let shortest = grace.values().copied().min().unwrap_or(0);
    let mut lapsed = 0;
    for profile in store::reviews_to_lapse(connection, now - Duration::days(shortest))? {
        let days = grace
            .get(profile.jurisdiction.as_str())
            .copied()
            .unwrap_or(shortest);
        if profile.next_review_at + Duration::days(days) >= now {
            continue;
        }
        let lapsed_tier = kyc
            .jurisdictions
            .get(&profile.jurisdiction)
            .map(|jurisdiction| jurisdiction.kyc.lapsed_tier.number());
        write_transaction(connection, |connection| {
            store::mark_lapsed(connection, &profile.user_id, now)?;
            audit::append(
                connection,
                NewAuditEntry::new(
                    actor.clone(),
                    "kyc.review_lapsed",
                    SUBJECT_TYPE,
                    &profile.approved_application_id,
                    None,
                )
                .details(serde_json::json!({
                    "user_id": profile.user_id,
                    "due_at": profile.next_review_at,
                    "grace_days": days,
                    "approved_tier": profile.approved_tier,
                    "effective_tier": lapsed_tier,
                })),
            )
            .map_err(AppError::from)
        })?;
        lapsed += 1;
    }
    Ok(lapsed)
}

/// The in-process scheduler: once per UTC day (the first instance to claim the day runs it).
pub async fn schedule(state: actix_web::web::Data<crate::AppState>) {
    loop {
        let job_state = state.clone();
        let result = actix_web::web::block(move || -> Result<Option<ReviewSummary>, AppError> {
            let now = crate::db::now();
            let mut connection = job_state.db.connection()?;
            if !crate::db::schedule::claim(&mut connection, JOB, now)? {
                return Ok(None);
            }
            let kyc = Kyc {
                cipher: &job_state.cipher,
                screener: &job_state.screener,
                jurisdictions: &job_state.jurisdictions,
            };
            let summary = run(&job_state.db, kyc, now)?;
            crate::db::schedule::finish(
                &mut connection,
                JOB,
                now,
                &serde_json::to_string(&summary).unwrap_or_default(),
            )?;
            Ok(Some(summary))
        })
        .await;
        match result {
            Ok(Ok(Some(summary))) => tracing::info!(?summary, "daily KYC review done"),
            Ok(Ok(None)) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "daily KYC review failed; retried tomorrow or by `hashgate kyc review`")
            }
            Err(_) => tracing::error!("the daily KYC review panicked"),
        }
        actix_web::rt::time::sleep(std::time::Duration::from_secs(300)).await;
    }
}
