//! Ongoing monitoring: when a list version changes, every monitored subject is screened again
//! against the changed entries only (against everything when asked, e.g. after the matcher or a
//! threshold changed). New hits are stored as open hits of a `rescreen:…` screening: the alerts
//! officers see in the queue. Hits dismissed before for the same entry version stay dismissed.

use super::lists::ListSource;
use super::matcher::ScreeningIndex;
use super::store::{self, ScreeningRecord, StoredQuery};
use crate::audit::Actor;
use crate::crypto::FieldCipher;
use crate::db::{write_transaction, Db};
use crate::error::AppError;
use crate::jurisdiction::Jurisdictions;

/// How much to rescreen.
#[derive(Debug, Clone, Copy)]
pub enum RescreenScope {
    /// The entries one list version added or changed.
    Changed { source: ListSource, version: i64 },
    /// Every active entry.
    Everything,
}

impl RescreenScope {
    fn trigger(self) -> String {
        match self {
            RescreenScope::Changed { source, version } => {
                format!("rescreen:{}:{version}", source.as_str())
            }
            RescreenScope::Everything => "rescreen:all".to_string(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RescreenSummary {
    pub job_id: Option<String>,
    pub subjects: u64,
    /// Entries screened against.
    pub entries: u64,
    /// Open hits raised (alerts); hits covered by an earlier dismissal are not counted.
    pub new_alerts: u64,
}

/// Progress is recorded in the job row every this many subjects.
const PROGRESS_EVERY: u64 = 500;

pub fn rescreen(
    db: &Db,
    cipher: &FieldCipher,
    jurisdictions: &Jurisdictions,
    scope: RescreenScope,
    actor: &Actor,
    progress: &dyn Fn(u64, u64),
) -> Result<RescreenSummary, AppError> {
    let mut connection = db.connection()?;
    let mut entries = store::active_entries(&mut connection)?;
    if let RescreenScope::Changed { source, version } = scope {
        let changed: std::collections::HashSet<String> =
            store::changed_entry_ids(&mut connection, source, version)?
                .into_iter()
                .collect();
        entries
            .retain(|loaded| loaded.source == source && changed.contains(&loaded.entry.entry_id));
    }
    let subjects = store::monitored_subjects(&mut connection, cipher)?;
    let mut summary = RescreenSummary {
        job_id: None,
        subjects: subjects.len() as u64,
        entries: entries.len() as u64,
        new_alerts: 0,
    };
    if entries.is_empty() || subjects.is_empty() {
        return Ok(summary);
    }
    let index = ScreeningIndex::build(entries);
    let trigger = scope.trigger();
    let job_id = store::start_job(&mut connection, &trigger, summary.subjects as i64)?;
    summary.job_id = Some(job_id.clone());
    let reached = std::cell::Cell::new(0u64);
    let outcome = (|| -> Result<(), AppError> {
        for (done, subject) in (1u64..).zip(&subjects) {
            reached.set(done - 1);
            let rules = subject
                .jurisdiction
                .as_deref()
                .and_then(|code| jurisdictions.get(code))
                .map(|jurisdiction| jurisdiction.screening)
                .unwrap_or(super::DEFAULT_RULES);
            let hits = index.screen(&subject.query, subject.kind, rules.threshold);
            if !hits.is_empty() {
                let query = serde_json::json!(StoredQuery::from(&subject.query));
                let record = ScreeningRecord {
                    subject_kind: subject.kind.as_str(),
                    subject_ref: Some(&subject.subject_ref),
                    jurisdiction: subject.jurisdiction.as_deref(),
                    query: &query,
                    threshold: rules.threshold,
                    four_eyes_score: rules.four_eyes_score,
                    trigger: &trigger,
                };
                let stored = write_transaction(&mut connection, |connection| {
                    store::record_screening(connection, cipher, &record, hits, actor)
                })?;
                summary.new_alerts += stored.open_hits() as u64;
            }
            if done % PROGRESS_EVERY == 0 || done == summary.subjects {
                store::record_progress(
                    &mut connection,
                    &job_id,
                    done as i64,
                    summary.new_alerts as i64,
                    (done == summary.subjects).then_some("finished"),
                )?;
                progress(done, summary.subjects);
            }
        }
        Ok(())
    })();
    if outcome.is_err() {
        let _ = store::record_progress(
            &mut connection,
            &job_id,
            reached.get() as i64,
            summary.new_alerts as i64,
            Some("failed"),
        );
    }
    outcome.map(|()| summary)
}
