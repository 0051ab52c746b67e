//! The daily monitoring batch: every withdrawal of the previous UTC day is judged again by the
//! jurisdiction's current rules, on the ledger and withdrawal history as it stood when the
//! withdrawal was requested. A rule added or tightened since, or a hit the gate could not see,
//! becomes an alert; hits already alerted (same rule version and withdrawal) are not repeated.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use serde::Serialize;

use super::service::{record_alerts, rule_hits, History, Subject};
use crate::db::{write_transaction, Db};
use crate::error::AppError;
use crate::jurisdiction::Jurisdictions;
use crate::ledger::Account;
use crate::withdrawals::store as withdrawals;

const JOB: &str = "monitoring-daily";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchSummary {
    #[serde(with = "crate::utc::option")]
    pub from: Option<NaiveDateTime>,
    #[serde(with = "crate::utc::option")]
    pub to: Option<NaiveDateTime>,
    pub withdrawals: usize,
    pub new_alerts: usize,
}

/// Runs the rules over the withdrawals requested in `[from, to)`.
pub fn run(
    db: &Db,
    jurisdictions: &Jurisdictions,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<BatchSummary, AppError> {
    let mut connection = db.connection()?;
    let mut summary = BatchSummary {
        from: Some(from),
        to: Some(to),
        ..BatchSummary::default()
    };
    let rows = withdrawals::counted_in_window(&mut connection, from, to)?;
    let assets = crate::ledger::store::load_assets(&mut connection)?;
    for row in rows {
        let Some(jurisdiction) = jurisdictions.get(&row.jurisdiction) else {
            continue;
        };
        let currency_scale = assets.get(&row.currency).map_or(2, |asset| asset.scale);
        summary.withdrawals += 1;
        // One transaction per withdrawal: a long batch never holds the write lock for long.
        summary.new_alerts += write_transaction(&mut connection, |connection| {
            // The balance just before the hold; a rejected withdrawal has none.
            let hold_seq = match &row.hold_transaction_id {
                Some(transaction_id) => {
                    crate::ledger::store::transaction_seq(connection, &row.user_id, transaction_id)?
                }
                None => None,
            }
            .unwrap_or(i64::MAX);
            let available_atoms = crate::ledger::store::balance_before(
                connection,
                &row.user_id,
                &Account::Available(row.user_id.clone()),
                &row.asset,
                hold_seq,
            )?;
            let (_, account_opened_at) = crate::users::store::residence(connection, &row.user_id)?
                .ok_or_else(|| AppError::NotFound(format!("no user {}", row.user_id)))?;
            let profile = crate::kyc::store::profile(connection, &row.user_id)?;
            let history = History::read_before(
                connection,
                jurisdiction,
                &row.user_id,
                (&row.asset, &row.address),
                row.requested_at,
            )?;
            let hits = rule_hits(
                jurisdiction,
                currency_scale,
                &Subject {
                    user_id: &row.user_id,
                    asset: &row.asset,
                    address: &row.address,
                    amount_local: row.amount_local.map(|atoms| {
                        Decimal::from_i128_with_scale(i128::from(atoms), currency_scale)
                    }),
                    amount_atoms: row.amount,
                    available_atoms,
                    requested_at: row.requested_at,
                    account_opened_at,
                    risk_level: profile.as_ref().map(|p| p.risk_level.as_str()),
                    next_review_at: profile.as_ref().map(|p| p.next_review_at),
                },
                &history,
            );
            record_alerts(
                connection,
                &hits,
                &row.user_id,
                &row.jurisdiction,
                &row.id,
                "daily_batch",
            )
        })?;
    }
    Ok(summary)
}

/// The UTC bounds of the day before `today`.
pub fn previous_day(today: NaiveDate) -> (NaiveDateTime, NaiveDateTime) {
    let start = today.and_hms_opt(0, 0, 0).unwrap_or_default();
    (start - Duration::days(1), start)
}

/// The in-process scheduler: once per UTC day, over the day before (the first instance to claim
/// the day runs it).
pub async fn schedule(state: actix_web::web::Data<crate::AppState>) {
    loop {
        let job_state = state.clone();
        let result = actix_web::web::block(move || -> Result<Option<BatchSummary>, AppError> {
            let now = crate::db::now();
            let mut connection = job_state.db.connection()?;
            if !crate::db::schedule::claim(&mut connection, JOB, now)? {
                return Ok(None);
            }
            let (from, to) = previous_day(now.date());
            let summary = run(&job_state.db, &job_state.jurisdictions, from, to)?;
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
            Ok(Ok(Some(summary))) => tracing::info!(?summary, "daily monitoring batch done"),
            Ok(Ok(None)) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "daily monitoring batch failed; run it with POST /v1/monitoring/batch")
            }
            Err(_) => tracing::error!("the daily monitoring batch panicked"),
        }
        actix_web::rt::time::sleep(std::time::Duration::from_secs(300)).await;
    }
}
