//! Ongoing monitoring: when a list version changes, every monitored subject is screened again
//! against the changed entries only; when the matcher configuration changes (matcher version or a
//! jurisdiction's threshold), against everything. Rescreens are queued jobs that a worker runs
//! page by page, recording progress after each page, so a job interrupted by a crash resumes
//! where it stopped. New hits are stored as open hits of a `rescreen:…` screening: the alerts
//! officers see in the queue. Hits dismissed before for the same entry version stay dismissed.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::lists::ListSource;
use super::matcher::{Hit, ScreeningIndex};
use super::store::{self, MonitoredSubject, ScreeningJob, ScreeningRecord, StoredQuery};
use crate::audit::Actor;
use crate::crypto::FieldCipher;
use crate::db::{write_transaction, Db, DbConnection};
use crate::error::AppError;
use crate::jurisdiction::{Jurisdictions, ScreeningRules};

/// Names the matcher's normalisation and scoring; change it whenever they change, so every
/// monitored subject is rescreened with the new matcher.
pub const MATCHER_VERSION: &str = "names-1";

/// Subjects screened and written per transaction.
const PAGE: i64 = 1_000;

/// A running job whose heartbeat is older than this is taken over by another worker.
const STALE_AFTER: Duration = Duration::from_secs(120);

/// How much to rescreen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RescreenScope {
    /// The entries one list version added or changed.
    Changed { source: ListSource, version: i64 },
    /// Every active entry, on request.
    Everything,
    /// Every active entry, because the matcher configuration changed.
    ConfigChanged,
}

impl RescreenScope {
    pub fn reason(self) -> String {
        match self {
            RescreenScope::Changed { source, version } => {
                format!("rescreen:{}:{version}", source.as_str())
            }
            RescreenScope::Everything => "rescreen:all".to_string(),
            RescreenScope::ConfigChanged => "rescreen:config".to_string(),
        }
    }

    pub fn parse(reason: &str) -> Option<RescreenScope> {
        match reason.strip_prefix("rescreen:")? {
            "all" => Some(RescreenScope::Everything),
            "config" => Some(RescreenScope::ConfigChanged),
            changed => {
                let (source, version) = changed.rsplit_once(':')?;
                Some(RescreenScope::Changed {
                    source: ListSource::parse(source)?,
                    version: version.parse().ok()?,
                })
            }
        }
    }
}

/// Reasons of the jobs that screen against every entry.
const FULL_RESCREENS: [&str; 2] = ["rescreen:all", "rescreen:config"];

/// Fingerprint of everything that decides whether a name is a hit: the matcher version and the
/// threshold of every jurisdiction (and of screenings that name none).
pub fn matcher_config(jurisdictions: &Jurisdictions) -> String {
    let mut described = format!(
        "matcher={MATCHER_VERSION};default={}",
        super::DEFAULT_RULES.threshold
    );
    for code in jurisdictions.codes() {
        if let Some(jurisdiction) = jurisdictions.get(code) {
            described.push_str(&format!(";{code}={}", jurisdiction.screening.threshold));
        }
    }
    hex::encode(&Sha256::digest(described.as_bytes())[..8])
}

/// Queues a rescreen in the caller's transaction.
pub fn enqueue(
    connection: &mut DbConnection,
    scope: RescreenScope,
    jurisdictions: &Jurisdictions,
    actor: &Actor,
    why: Option<&str>,
) -> Result<ScreeningJob, AppError> {
    store::enqueue_job(
        connection,
        &scope.reason(),
        &matcher_config(jurisdictions),
        actor,
        why,
    )
}

/// Queues a full rescreen when no full rescreen was made (or is under way) with the current
/// matcher configuration; checked when the service starts.
pub fn enqueue_if_config_changed(
    db: &Db,
    jurisdictions: &Jurisdictions,
) -> Result<Option<ScreeningJob>, AppError> {
    let current = matcher_config(jurisdictions);
    let mut connection = db.connection()?;
    write_transaction(&mut connection, |connection| {
        if store::last_full_rescreen_config(connection, &FULL_RESCREENS)?.as_deref()
            == Some(current.as_str())
        {
            return Ok(None);
        }
        enqueue(
            connection,
            RescreenScope::ConfigChanged,
            jurisdictions,
            &monitoring_actor(),
            Some("the matcher configuration changed"),
        )
        .map(Some)
    })
}

/// Who rescreens: the service itself.
fn monitoring_actor() -> Actor {
    Actor {
        id: "system:monitoring".into(),
        name: "ongoing monitoring".into(),
        role: "system".into(),
    }
}

/// What a job runner needs.
pub struct Runner<'a> {
    pub db: &'a Db,
    pub cipher: &'a FieldCipher,
    pub jurisdictions: &'a Jurisdictions,
    /// Threads that match a page in parallel.
    pub threads: usize,
}

fn stale_before() -> chrono::NaiveDateTime {
    crate::db::now() - chrono::Duration::from_std(STALE_AFTER).unwrap_or_default()
}

impl Runner<'_> {
    /// Runs every job there is to run, oldest first; returns how many it ran.
    pub fn run_pending(&self) -> Result<usize, AppError> {
        let mut ran = 0;
        loop {
            let next = {
                let mut connection = self.db.connection()?;
                store::next_claimable_job(&mut connection, stale_before())?
            };
            let Some(id) = next else {
                return Ok(ran);
            };
            if self.run(&id, &|_| {})?.is_some() {
                ran += 1;
            }
        }
    }

    /// Claims and runs one job to its end; `None` when another runner holds it. A failure is
    /// recorded in the job and returned.
    pub fn run(
        &self,
        id: &str,
        progress: &dyn Fn(&ScreeningJob),
    ) -> Result<Option<ScreeningJob>, AppError> {
        let mut connection = self.db.connection()?;
        if !write_transaction(&mut connection, |connection| {
            store::claim_job(connection, id, stale_before())
        })? {
            return Ok(None);
        }
        let outcome = self.work(&mut connection, id, progress);
        let error = outcome.as_ref().err().map(|error| error.problem().detail);
        if let Some(detail) = &error {
            tracing::error!(job = id, error = %detail, "rescreen failed");
        }
        store::finish_job(&mut connection, id, error.as_deref())?;
        outcome?;
        Ok(store::find_job(&mut connection, id)?)
    }

    fn work(
        &self,
        connection: &mut DbConnection,
        id: &str,
        progress: &dyn Fn(&ScreeningJob),
    ) -> Result<(), AppError> {
        let mut job = store::find_job(connection, id)?
            .ok_or_else(|| AppError::NotFound(format!("no screening job {id}")))?;
        let scope = RescreenScope::parse(&job.reason).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("unknown rescreen reason {}", job.reason))
        })?;
        let mut entries = store::active_entries(connection)?;
        if let RescreenScope::Changed { source, version } = scope {
            let changed: std::collections::HashSet<String> =
                store::changed_entry_ids(connection, source, version)?
                    .into_iter()
                    .collect();
            entries.retain(|loaded| {
                loaded.source == source && changed.contains(&loaded.entry.entry_id)
            });
        }
        job.entries = entries.len() as i64;
        store::record_job_entries(connection, id, job.entries)?;
        let index = ScreeningIndex::build(entries);
        let actor = monitoring_actor();
        let reason = job.reason.clone();
        loop {
            let page = store::monitored_subjects_page(
                connection,
                self.cipher,
                job.last_subject_ref.as_deref(),
                PAGE,
            )?;
            let Some(last) = page.last().map(|subject| subject.subject_ref.clone()) else {
                return Ok(());
            };
            let matched = self.screen_page(&index, &page);
            let new_hits = write_transaction(connection, |connection| {
                let mut new_hits = 0;
                for (subject, rules, hits) in matched {
                    let hits = store::drop_known_hits(connection, &subject.subject_ref, hits)?;
                    if hits.is_empty() {
                        continue;
                    }
                    let query = serde_json::json!(StoredQuery::from(&subject.query));
                    let record = ScreeningRecord {
                        subject_kind: subject.kind.as_str(),
                        subject_ref: Some(&subject.subject_ref),
                        jurisdiction: subject.jurisdiction.as_deref(),
                        query: &query,
                        threshold: rules.threshold,
                        four_eyes_score: rules.four_eyes_score,
                        trigger: &reason,
                    };
                    let stored =
                        store::record_screening(connection, self.cipher, &record, hits, &actor)?;
                    new_hits += stored.open_hits() as i64;
                }
                job.done += page.len() as i64;
                job.new_hits += new_hits;
                store::record_progress(connection, id, job.done, job.new_hits, &last)?;
                Ok::<_, AppError>(new_hits)
            })?;
            if new_hits > 0 {
                tracing::info!(job = id, new_hits, "rescreen raised alerts");
            }
            job.last_subject_ref = Some(last);
            progress(&job);
        }
    }

    /// Screens a page on `threads` threads; returns the subjects with hits.
    fn screen_page<'s>(
        &self,
        index: &ScreeningIndex,
        page: &'s [MonitoredSubject],
    ) -> Vec<(&'s MonitoredSubject, ScreeningRules, Vec<Hit>)> {
        let screen_one = |subject: &'s MonitoredSubject| {
            let rules = subject
                .jurisdiction
                .as_deref()
                .and_then(|code| self.jurisdictions.get(code))
                .map(|jurisdiction| jurisdiction.screening)
                .unwrap_or(super::DEFAULT_RULES);
            let hits = index.screen(&subject.query, subject.kind, rules.threshold);
            (!hits.is_empty()).then_some((subject, rules, hits))
        };
        if index.entry_count() == 0 {
            return Vec::new();
        }
        let chunk = page.len().div_ceil(self.threads.max(1)).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = page
                .chunks(chunk)
                .map(|subjects| {
                    scope.spawn(move || subjects.iter().filter_map(screen_one).collect())
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().unwrap_or_else(|_| Vec::new()))
                .collect()
        })
    }
}

/// The service's job worker: on start, queues a full rescreen if the matcher configuration
/// changed; then runs queued (or abandoned) jobs as they come, until the server stops.
pub async fn work(state: actix_web::web::Data<crate::AppState>) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get() / 2)
        .max(1);
    let checking = state.clone();
    let checked = actix_web::web::block(move || {
        enqueue_if_config_changed(&checking.db, &checking.jurisdictions)
    })
    .await
    .unwrap_or_else(|_| Err(AppError::internal(anyhow::anyhow!("the check panicked"))));
    match checked {
        Ok(Some(job)) => tracing::info!(
            job = job.id,
            matcher_config = job.matcher_config,
            "the matcher configuration changed: full rescreen queued"
        ),
        Ok(None) => {}
        Err(error) => {
            tracing::error!(error = %error.problem().detail, "cannot check the matcher configuration")
        }
    }
    loop {
        let state = state.clone();
        let ran = actix_web::web::block(move || {
            Runner {
                db: &state.db,
                cipher: &state.cipher,
                jurisdictions: &state.jurisdictions,
                threads,
            }
            .run_pending()
        })
        .await;
        if let Ok(Err(error)) = ran {
            tracing::error!(error = %error.problem().detail, "screening job worker");
        }
        actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    }
}
