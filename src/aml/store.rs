//! Screening storage: list versions with their entries and diffs, and stored screenings.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;

use super::lists::{ListEntry, ListSource};
use super::matcher::{Hit, LoadedEntry, SubjectQuery};
use super::names::SubjectKind;
use super::review::{HitStatus, Transition};
use crate::audit::{self, Actor, NewAuditEntry};
use crate::crypto::FieldCipher;
use crate::db::schema::{
    hit_dismissals, hit_reviews, list_changes, list_entries, list_versions, screening_hits,
    screening_jobs, screening_subjects, screenings,
};
use crate::db::DbConnection;
use crate::error::AppError;

/// A load that would drop more than this share of the active entries is refused unless forced:
/// a list that suddenly lost half its entries is far more likely a bad download than a policy.
const MAX_REMOVED_SHARE_PERCENT: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListVersion {
    pub source: ListSource,
    pub version: i64,
    pub checksum: String,
    pub entries: i64,
    pub added: i64,
    pub changed: i64,
    pub removed: i64,
    /// Entry ids by change, for rescreening only what changed.
    #[serde(skip)]
    pub changed_ids: Vec<String>,
    /// True when the file was identical to the active version: nothing was written.
    pub unchanged: bool,
}

/// Stores a parsed list as the next version of its source, with the diff against the active
/// one, in the caller's transaction.
pub fn load_list(
    connection: &mut DbConnection,
    source: ListSource,
    checksum: &str,
    entries: &[ListEntry],
    actor: &Actor,
    force: bool,
) -> Result<ListVersion, AppError> {
    let active: HashMap<String, (i64, String)> = list_entries::table
        .filter(list_entries::source.eq(source.as_str()))
        .filter(list_entries::removed_in.is_null())
        .select((
            list_entries::entry_id,
            list_entries::first_version,
            list_entries::content_hash,
        ))
        .load::<(String, i64, String)>(connection)?
        .into_iter()
        .map(|(id, first, hash)| (id, (first, hash)))
        .collect();
    let current: Option<(i64, String)> = list_versions::table
        .filter(list_versions::source.eq(source.as_str()))
        .order(list_versions::version.desc())
        .select((list_versions::version, list_versions::checksum))
        .first(connection)
        .optional()?;
    let previous_version = current.as_ref().map(|(version, _)| *version).unwrap_or(0);
    if current.as_ref().is_some_and(|(_, known)| known == checksum) {
        return Ok(ListVersion {
            source,
            version: previous_version,
            checksum: checksum.to_string(),
            entries: active.len() as i64,
            added: 0,
            changed: 0,
            removed: 0,
            changed_ids: Vec::new(),
            unchanged: true,
        });
    }
    let version = previous_version + 1;
    let mut added = Vec::new();
    let mut changed = Vec::new();
    let mut incoming = std::collections::HashSet::new();
    for entry in entries {
        let hash = entry.content_hash();
        incoming.insert(entry.entry_id.as_str());
        match active.get(&entry.entry_id) {
            None => added.push((entry, hash)),
            Some((_, known)) if *known == hash => {}
            Some(_) => changed.push((entry, hash)),
        }
    }
    let removed: Vec<&String> = active
        .keys()
        .filter(|id| !incoming.contains(id.as_str()))
        .collect();
    if !force
        && !active.is_empty()
        && removed.len() * 100 > active.len() * MAX_REMOVED_SHARE_PERCENT
    {
        return Err(AppError::bad_field(
            "file",
            format!(
                "this file would remove {} of the {} active {} entries (more than {MAX_REMOVED_SHARE_PERCENT}%): \
                 a truncated download? Load it with force to accept",
                removed.len(),
                active.len(),
                source.as_str()
            ),
        ));
    }
    // Close the versions that change or leave, then add the new ones.
    for id in removed
        .iter()
        .map(|id| id.as_str())
        .chain(changed.iter().map(|(entry, _)| entry.entry_id.as_str()))
    {
        diesel::update(
            list_entries::table
                .filter(list_entries::source.eq(source.as_str()))
                .filter(list_entries::entry_id.eq(id))
                .filter(list_entries::removed_in.is_null()),
        )
        .set(list_entries::removed_in.eq(version))
        .execute(connection)?;
    }
    for (entry, hash) in added.iter().chain(&changed) {
        let data = serde_json::to_string(entry).map_err(AppError::internal)?;
        diesel::insert_into(list_entries::table)
            .values((
                list_entries::source.eq(source.as_str()),
                list_entries::entry_id.eq(&entry.entry_id),
                list_entries::first_version.eq(version),
                list_entries::content_hash.eq(hash),
                list_entries::data.eq(data),
            ))
            .execute(connection)?;
    }
    let changes: Vec<(&str, &str)> = added
        .iter()
        .map(|(entry, _)| (entry.entry_id.as_str(), "added"))
        .chain(
            changed
                .iter()
                .map(|(entry, _)| (entry.entry_id.as_str(), "changed")),
        )
        .chain(removed.iter().map(|id| (id.as_str(), "removed")))
        .collect();
    for (id, change) in &changes {
        diesel::insert_into(list_changes::table)
            .values((
                list_changes::source.eq(source.as_str()),
                list_changes::version.eq(version),
                list_changes::entry_id.eq(id),
                list_changes::change.eq(change),
            ))
            .execute(connection)?;
    }
    let loaded = ListVersion {
        source,
        version,
        checksum: checksum.to_string(),
        entries: entries.len() as i64,
        added: added.len() as i64,
        changed: changed.len() as i64,
        removed: removed.len() as i64,
        changed_ids: changes.iter().map(|(id, _)| id.to_string()).collect(),
        unchanged: false,
    };
    diesel::insert_into(list_versions::table)
        .values((
            list_versions::id.eq(uuid::Uuid::new_v4().to_string()),
            list_versions::source.eq(source.as_str()),
            list_versions::version.eq(version),
            list_versions::checksum.eq(checksum),
            list_versions::entries.eq(loaded.entries),
            list_versions::added.eq(loaded.added),
            list_versions::changed.eq(loaded.changed),
            list_versions::removed.eq(loaded.removed),
            list_versions::loaded_at.eq(crate::db::now()),
            list_versions::loaded_by.eq(&actor.id),
        ))
        .execute(connection)?;
    audit::store::append(
        connection,
        NewAuditEntry::new(actor.clone(), "lists.load", "list", source.as_str(), None).details(
            serde_json::json!({
                "version": version,
                "checksum": checksum,
                "entries": loaded.entries,
                "added": loaded.added,
                "changed": loaded.changed,
                "removed": loaded.removed,
                "forced": force,
            }),
        ),
    )?;
    Ok(loaded)
}

/// How many list versions have been loaded. Versions are only ever added, so the count changes
/// exactly when a list does: it is the screening index's version stamp.
#[diesel::dsl::auto_type]
pub fn lists_loaded() -> _ {
    list_versions::table.count()
}

/// Every active entry of every source, for building the index.
pub fn active_entries(connection: &mut DbConnection) -> Result<Vec<LoadedEntry>, AppError> {
    let rows: Vec<(String, i64, String, String)> = list_entries::table
        .filter(list_entries::removed_in.is_null())
        .order((list_entries::source, list_entries::entry_id))
        .select((
            list_entries::source,
            list_entries::first_version,
            list_entries::content_hash,
            list_entries::data,
        ))
        .load(connection)?;
    rows.into_iter()
        .map(|(source, version, hash, data)| {
            Ok(LoadedEntry {
                source: ListSource::parse(&source).ok_or_else(|| {
                    AppError::internal(anyhow::anyhow!("unknown list source {source}"))
                })?,
                list_version: version,
                content_hash: hash,
                entry: serde_json::from_str(&data).map_err(AppError::internal)?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredScreening {
    pub id: String,
    pub subject_kind: String,
    pub subject_ref: Option<String>,
    pub jurisdiction: Option<String>,
    pub threshold: f64,
    pub trigger: String,
    #[serde(with = "crate::utc")]
    pub screened_at: chrono::NaiveDateTime,
    pub hits: Vec<StoredHit>,
}

impl StoredScreening {
    /// Hits that need an officer: not covered by an earlier dismissal.
    pub fn open_hits(&self) -> usize {
        self.hits.iter().filter(|hit| hit.status == "open").count()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredHit {
    pub id: String,
    pub status: String,
    /// The earlier hit whose dismissal covers this one (same subject, entry and entry version).
    pub suppressed_by: Option<String>,
    #[serde(flatten)]
    pub hit: Hit,
}

/// What a screening looked for, as it is stored.
pub struct ScreeningRecord<'a> {
    pub subject_kind: &'a str,
    pub subject_ref: Option<&'a str>,
    pub jurisdiction: Option<&'a str>,
    /// The query as asked; personal data, stored encrypted.
    pub query: &'a serde_json::Value,
    pub threshold: f64,
    pub four_eyes_score: f64,
    /// `request`, or `rescreen:…` for ongoing monitoring.
    pub trigger: &'a str,
}

/// Records a screening and its hits in the caller's transaction. A hit whose subject, entry and
/// entry version were dismissed before is stored as dismissed, naming that dismissal. A subject
/// screened on request is remembered for ongoing rescreening.
pub fn record_screening(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    record: &ScreeningRecord,
    hits: Vec<Hit>,
    actor: &Actor,
) -> Result<StoredScreening, AppError> {
    let id = uuid::Uuid::new_v4().to_string();
    let screened_at = crate::db::now();
    let query_text = record.query.to_string();
    diesel::insert_into(screenings::table)
        .values((
            screenings::id.eq(&id),
            screenings::subject_kind.eq(record.subject_kind),
            screenings::subject_ref.eq(record.subject_ref),
            screenings::jurisdiction.eq(record.jurisdiction),
            screenings::query.eq(cipher.encrypt(&query_text, &format!("screenings.query:{id}"))?),
            screenings::threshold.eq(record.threshold.to_string()),
            screenings::four_eyes_score.eq(record.four_eyes_score.to_string()),
            screenings::hit_count.eq(hits.len() as i64),
            screenings::trigger.eq(record.trigger),
            screenings::screened_at.eq(screened_at),
            screenings::screened_by.eq(&actor.id),
        ))
        .execute(connection)?;
    // Hits on a platform user become alerts for the officers.
    let user_jurisdiction = match record.subject_ref {
        Some(subject) => crate::users::store::residence(connection, subject)?
            .map(|(residence, _)| record.jurisdiction.map_or(residence, str::to_string)),
        None => None,
    };
    let mut stored = Vec::with_capacity(hits.len());
    for hit in hits {
        let hit_id = uuid::Uuid::new_v4().to_string();
        let suppressed_by = match record.subject_ref {
            Some(subject) => hit_dismissals::table
                .find((
                    subject,
                    hit.source.as_str(),
                    hit.entry_id.as_str(),
                    hit.entry_version.as_str(),
                ))
                .select(hit_dismissals::hit_id)
                .first::<String>(connection)
                .optional()?,
            None => None,
        };
        let status = if suppressed_by.is_some() {
            HitStatus::Dismissed
        } else {
            HitStatus::Open
        };
        diesel::insert_into(screening_hits::table)
            .values((
                screening_hits::id.eq(&hit_id),
                screening_hits::screening_id.eq(&id),
                screening_hits::source.eq(hit.source.as_str()),
                screening_hits::entry_id.eq(&hit.entry_id),
                screening_hits::entry_version.eq(&hit.entry_version),
                screening_hits::score.eq(hit.score.to_string()),
                screening_hits::explanation
                    .eq(serde_json::to_string(&hit).map_err(AppError::internal)?),
                screening_hits::status.eq(status.as_str()),
                screening_hits::suppressed_by.eq(&suppressed_by),
                screening_hits::created_at.eq(screened_at),
            ))
            .execute(connection)?;
        if let (Some(user_id), Some(jurisdiction), HitStatus::Open) =
            (record.subject_ref, &user_jurisdiction, status)
        {
            crate::aml::monitoring::store::insert_alert(
                connection,
                &crate::aml::monitoring::store::Alert::for_screening_hit(
                    &crate::aml::monitoring::store::ScreeningHitAlert {
                        hit_id: &hit_id,
                        user_id,
                        jurisdiction,
                        source: hit.source.as_str(),
                        entry_name: &hit.primary_name,
                        score: hit.score,
                        high_from: record.four_eyes_score,
                        now: screened_at,
                    },
                ),
            )?;
        }
        stored.push(StoredHit {
            id: hit_id,
            status: status.as_str().to_string(),
            suppressed_by,
            hit,
        });
    }
    if let (Some(subject), "request", "person" | "entity") =
        (record.subject_ref, record.trigger, record.subject_kind)
    {
        remember_subjects(
            connection,
            cipher,
            &[(
                subject,
                record.subject_kind,
                record.jurisdiction,
                &query_text,
            )],
        )?;
    }
    Ok(StoredScreening {
        id,
        subject_kind: record.subject_kind.to_string(),
        subject_ref: record.subject_ref.map(String::from),
        jurisdiction: record.jurisdiction.map(String::from),
        threshold: record.threshold,
        trigger: record.trigger.to_string(),
        screened_at,
        hits: stored,
    })
}

/// Drops the hits a subject already has in the queue or confirmed (same list entry and entry
/// version, not dismissed): a rescreen raises each match once, not on every run. Dismissed ones
/// are kept: `record_screening` stores them as dismissed, naming the dismissal.
pub fn drop_known_hits(
    connection: &mut DbConnection,
    subject_ref: &str,
    hits: Vec<Hit>,
) -> QueryResult<Vec<Hit>> {
    let known: std::collections::HashSet<(String, String, String)> = screening_hits::table
        .inner_join(screenings::table)
        .filter(screenings::subject_ref.eq(subject_ref))
        .filter(screening_hits::status.ne(HitStatus::Dismissed.as_str()))
        .select((
            screening_hits::source,
            screening_hits::entry_id,
            screening_hits::entry_version,
        ))
        .load(connection)?
        .into_iter()
        .collect();
    Ok(hits
        .into_iter()
        .filter(|hit| {
            !known.contains(&(
                hit.source.as_str().to_string(),
                hit.entry_id.clone(),
                hit.entry_version.clone(),
            ))
        })
        .collect())
}

/// A hit with what a review needs to know about its screening.
pub struct HitRecord {
    pub id: String,
    pub status: HitStatus,
    pub score: f64,
    pub four_eyes_score: f64,
    pub subject_ref: Option<String>,
    pub source: String,
    pub entry_id: String,
    pub entry_version: String,
    pub proposed_by: Option<String>,
}

pub fn find_hit(connection: &mut DbConnection, id: &str) -> Result<Option<HitRecord>, AppError> {
    #[derive(Queryable)]
    struct HitRow {
        status: String,
        score: String,
        source: String,
        entry_id: String,
        entry_version: String,
        four_eyes_score: String,
        subject_ref: Option<String>,
    }
    let row: Option<HitRow> = screening_hits::table
        .inner_join(screenings::table)
        .filter(screening_hits::id.eq(id))
        .select((
            screening_hits::status,
            screening_hits::score,
            screening_hits::source,
            screening_hits::entry_id,
            screening_hits::entry_version,
            screenings::four_eyes_score,
            screenings::subject_ref,
        ))
        .first(connection)
        .optional()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let proposed_by = hit_reviews::table
        .filter(hit_reviews::hit_id.eq(id))
        .filter(hit_reviews::action.eq("propose_dismissal"))
        .order(hit_reviews::at.desc())
        .select(hit_reviews::actor_id)
        .first::<String>(connection)
        .optional()?;
    let number = |text: &str| text.parse::<f64>().map_err(AppError::internal);
    Ok(Some(HitRecord {
        id: id.to_string(),
        status: HitStatus::parse(&row.status).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("hit {id} has status {}", row.status))
        })?,
        score: number(&row.score)?,
        four_eyes_score: number(&row.four_eyes_score)?,
        subject_ref: row.subject_ref,
        source: row.source,
        entry_id: row.entry_id,
        entry_version: row.entry_version,
        proposed_by,
    }))
}

/// Applies a review in the caller's transaction: the new status, the review record, the
/// dismissal memory and the audit entry.
pub fn apply_review(
    connection: &mut DbConnection,
    hit: &HitRecord,
    transition: Transition,
    reason: &str,
    actor: &Actor,
    request_id: Option<String>,
) -> Result<(), AppError> {
    let now = crate::db::now();
    diesel::update(screening_hits::table.find(&hit.id))
        .set(screening_hits::status.eq(transition.status.as_str()))
        .execute(connection)?;
    diesel::insert_into(hit_reviews::table)
        .values((
            hit_reviews::id.eq(uuid::Uuid::new_v4().to_string()),
            hit_reviews::hit_id.eq(&hit.id),
            hit_reviews::action.eq(transition.action),
            hit_reviews::reason.eq(reason),
            hit_reviews::actor_id.eq(&actor.id),
            hit_reviews::actor_role.eq(&actor.role),
            hit_reviews::at.eq(now),
        ))
        .execute(connection)?;
    if let (HitStatus::Dismissed, Some(subject)) = (transition.status, &hit.subject_ref) {
        let key = (
            subject.as_str(),
            hit.source.as_str(),
            hit.entry_id.as_str(),
            hit.entry_version.as_str(),
        );
        let known = hit_dismissals::table
            .find(key)
            .count()
            .get_result::<i64>(connection)?;
        if known == 0 {
            diesel::insert_into(hit_dismissals::table)
                .values((
                    hit_dismissals::subject_ref.eq(key.0),
                    hit_dismissals::source.eq(key.1),
                    hit_dismissals::entry_id.eq(key.2),
                    hit_dismissals::entry_version.eq(key.3),
                    hit_dismissals::hit_id.eq(&hit.id),
                    hit_dismissals::dismissed_at.eq(now),
                ))
                .execute(connection)?;
        }
    }
    audit::store::append(
        connection,
        NewAuditEntry::new(
            actor.clone(),
            &format!("screening.hit.{}", transition.action),
            "screening_hit",
            &hit.id,
            request_id,
        )
        .details(serde_json::json!({
            "reason": reason,
            "status": transition.status.as_str(),
            "score": hit.score,
            "source": hit.source,
            "entry_id": hit.entry_id,
        })),
    )?;
    Ok(())
}

/// A stored hit for the review queue.
#[derive(Debug, Clone, Serialize)]
pub struct QueuedHit {
    pub id: String,
    pub screening_id: String,
    pub subject_ref: Option<String>,
    pub trigger: String,
    pub status: String,
    #[serde(with = "crate::utc")]
    pub created_at: chrono::NaiveDateTime,
    pub hit: serde_json::Value,
}

/// Hits by status, newest first; `alerts_only` keeps those raised by ongoing monitoring.
pub fn queued_hits(
    connection: &mut DbConnection,
    status: HitStatus,
    alerts_only: bool,
    limit: i64,
) -> Result<Vec<QueuedHit>, AppError> {
    let mut query = screening_hits::table
        .inner_join(screenings::table)
        .filter(screening_hits::status.eq(status.as_str()))
        .into_boxed();
    if alerts_only {
        query = query.filter(screenings::trigger.ne("request"));
    }
    #[derive(Queryable)]
    struct QueuedRow {
        id: String,
        screening_id: String,
        subject_ref: Option<String>,
        trigger: String,
        status: String,
        created_at: chrono::NaiveDateTime,
        explanation: String,
    }
    let rows: Vec<QueuedRow> = query
        .order((screening_hits::created_at.desc(), screening_hits::id))
        .limit(limit)
        .select((
            screening_hits::id,
            screening_hits::screening_id,
            screenings::subject_ref,
            screenings::trigger,
            screening_hits::status,
            screening_hits::created_at,
            screening_hits::explanation,
        ))
        .load(connection)?;
    rows.into_iter()
        .map(|row| {
            Ok(QueuedHit {
                hit: serde_json::from_str(&row.explanation).map_err(AppError::internal)?,
                id: row.id,
                screening_id: row.screening_id,
                subject_ref: row.subject_ref,
                trigger: row.trigger,
                status: row.status,
                created_at: row.created_at,
            })
        })
        .collect()
}

/// A subject under ongoing monitoring.
pub struct MonitoredSubject {
    pub subject_ref: String,
    pub kind: SubjectKind,
    pub jurisdiction: Option<String>,
    pub query: SubjectQuery,
}

/// Puts subjects under ongoing monitoring, or updates what is known of them: (subject_ref, kind,
/// jurisdiction, query as JSON). The query is personal data, stored encrypted.
pub fn remember_subjects(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    subjects: &[(&str, &str, Option<&str>, &str)],
) -> Result<(), AppError> {
    let updated_at = crate::db::now();
    let refs: Vec<&str> = subjects.iter().map(|(subject, ..)| *subject).collect();
    diesel::delete(screening_subjects::table.filter(screening_subjects::subject_ref.eq_any(&refs)))
        .execute(connection)?;
    // One row per statement: diesel's multi-backend connection has no batch insert.
    for (subject, kind, jurisdiction, query) in subjects {
        diesel::insert_into(screening_subjects::table)
            .values((
                screening_subjects::subject_ref.eq(*subject),
                screening_subjects::subject_kind.eq(*kind),
                screening_subjects::jurisdiction.eq(*jurisdiction),
                screening_subjects::query
                    .eq(cipher.encrypt(query, &format!("screening_subjects.query:{subject}"))?),
                screening_subjects::updated_at.eq(updated_at),
            ))
            .execute(connection)?;
    }
    Ok(())
}

/// Up to `limit` monitored subjects after `after` in subject order: one page of a rescreen.
pub fn monitored_subjects_page(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<MonitoredSubject>, AppError> {
    let mut query = screening_subjects::table
        .order(screening_subjects::subject_ref)
        .select((
            screening_subjects::subject_ref,
            screening_subjects::subject_kind,
            screening_subjects::jurisdiction,
            screening_subjects::query,
        ))
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(screening_subjects::subject_ref.gt(after));
    }
    let rows: Vec<(String, String, Option<String>, String)> = query.load(connection)?;
    rows.into_iter()
        .map(|(subject_ref, kind, jurisdiction, query)| {
            let text = cipher
                .decrypt(&query, &format!("screening_subjects.query:{subject_ref}"))
                .map_err(AppError::internal)?;
            let stored: StoredQuery = serde_json::from_str(&text).map_err(AppError::internal)?;
            Ok(MonitoredSubject {
                kind: SubjectKind::parse(&kind).unwrap_or(SubjectKind::Person),
                subject_ref,
                jurisdiction,
                query: SubjectQuery {
                    name: stored.name,
                    date_of_birth: stored.date_of_birth,
                    country: stored.country,
                    document_number: stored.document_number,
                },
            })
        })
        .collect()
}

pub fn monitored_subject_count(connection: &mut DbConnection) -> QueryResult<i64> {
    screening_subjects::table.count().get_result(connection)
}

/// The stored form of a name query.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct StoredQuery {
    pub name: String,
    pub date_of_birth: Option<chrono::NaiveDate>,
    pub country: Option<String>,
    pub document_number: Option<String>,
}

impl From<&SubjectQuery> for StoredQuery {
    fn from(query: &SubjectQuery) -> Self {
        StoredQuery {
            name: query.name.clone(),
            date_of_birth: query.date_of_birth,
            country: query.country.clone(),
            document_number: query.document_number.clone(),
        }
    }
}

/// Entry ids added or changed by one list version: what a rescreen must look at.
pub fn changed_entry_ids(
    connection: &mut DbConnection,
    source: ListSource,
    version: i64,
) -> QueryResult<Vec<String>> {
    list_changes::table
        .filter(list_changes::source.eq(source.as_str()))
        .filter(list_changes::version.eq(version))
        .filter(list_changes::change.ne("removed"))
        .select(list_changes::entry_id)
        .load(connection)
}

/// A rescreen job and its progress.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = screening_jobs)]
pub struct ScreeningJob {
    pub id: String,
    /// `rescreen:<source>:<version>` (entries a list version changed), `rescreen:all`, or
    /// `rescreen:config` (the matcher configuration changed).
    pub reason: String,
    pub requested_by: String,
    /// Fingerprint of the matcher version and thresholds the job screens with.
    pub matcher_config: String,
    /// queued, running, finished or failed.
    pub status: String,
    /// Monitored subjects when the job started.
    pub subjects: i64,
    /// List entries screened against.
    pub entries: i64,
    pub done: i64,
    /// Open hits raised: the alerts for officers.
    pub new_hits: i64,
    #[serde(skip)]
    pub last_subject_ref: Option<String>,
    pub error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub created_at: chrono::NaiveDateTime,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub started_at: Option<chrono::NaiveDateTime>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub heartbeat_at: Option<chrono::NaiveDateTime>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::utc::option")]
    pub finished_at: Option<chrono::NaiveDateTime>,
}

/// Queues a job in the caller's transaction; a worker picks it up.
pub fn enqueue_job(
    connection: &mut DbConnection,
    reason: &str,
    matcher_config: &str,
    actor: &Actor,
    why: Option<&str>,
) -> Result<ScreeningJob, AppError> {
    let job = ScreeningJob {
        id: uuid::Uuid::new_v4().to_string(),
        reason: reason.to_string(),
        requested_by: actor.id.clone(),
        matcher_config: matcher_config.to_string(),
        status: "queued".to_string(),
        subjects: monitored_subject_count(connection)?,
        entries: 0,
        done: 0,
        new_hits: 0,
        last_subject_ref: None,
        error: None,
        created_at: crate::db::now(),
        started_at: None,
        heartbeat_at: None,
        finished_at: None,
    };
    diesel::insert_into(screening_jobs::table)
        .values(&job)
        .execute(connection)?;
    // What a person asked for is audited; the service's own jobs are recorded in the job row.
    if actor.role != "system" {
        audit::store::append(
            connection,
            NewAuditEntry::new(
                actor.clone(),
                "screening.rescreen_queued",
                "screening_job",
                &job.id,
                None,
            )
            .reason(why.map(String::from))
            .details(serde_json::json!({ "scope": reason, "matcher_config": matcher_config })),
        )?;
    }
    Ok(job)
}

pub fn find_job(connection: &mut DbConnection, id: &str) -> QueryResult<Option<ScreeningJob>> {
    screening_jobs::table
        .find(id)
        .select(ScreeningJob::as_select())
        .first(connection)
        .optional()
}

/// The newest jobs first.
pub fn recent_jobs(connection: &mut DbConnection, limit: i64) -> QueryResult<Vec<ScreeningJob>> {
    screening_jobs::table
        .order(screening_jobs::created_at.desc())
        .select(ScreeningJob::as_select())
        .limit(limit)
        .load(connection)
}

/// A job a worker may take: queued, or running with a heartbeat older than `stale_before`
/// (its runner died).
#[diesel::dsl::auto_type]
fn claimable(stale_before: chrono::NaiveDateTime) -> _ {
    let queued: &'static str = "queued";
    let running: &'static str = "running";
    screening_jobs::status.eq(queued).or(screening_jobs::status
        .eq(running)
        .and(screening_jobs::heartbeat_at.lt(stale_before)))
}

/// The oldest job a worker may take.
pub fn next_claimable_job(
    connection: &mut DbConnection,
    stale_before: chrono::NaiveDateTime,
) -> QueryResult<Option<String>> {
    screening_jobs::table
        .filter(claimable(stale_before))
        .order(screening_jobs::created_at)
        .select(screening_jobs::id)
        .first(connection)
        .optional()
}

/// Takes a job for this runner; false when another runner holds it (or it is over).
pub fn claim_job(
    connection: &mut DbConnection,
    id: &str,
    stale_before: chrono::NaiveDateTime,
) -> QueryResult<bool> {
    let now = crate::db::now();
    let claimed = diesel::update(
        screening_jobs::table
            .find(id)
            .filter(claimable(stale_before)),
    )
    .set((
        screening_jobs::status.eq("running"),
        screening_jobs::heartbeat_at.eq(now),
    ))
    .execute(connection)?;
    if claimed == 1 {
        diesel::update(
            screening_jobs::table
                .find(id)
                .filter(screening_jobs::started_at.is_null()),
        )
        .set((
            screening_jobs::started_at.eq(now),
            screening_jobs::subjects.eq(monitored_subject_count(connection)?),
        ))
        .execute(connection)?;
    }
    Ok(claimed == 1)
}

pub fn record_job_entries(
    connection: &mut DbConnection,
    id: &str,
    entries: i64,
) -> QueryResult<()> {
    diesel::update(screening_jobs::table.find(id))
        .set(screening_jobs::entries.eq(entries))
        .execute(connection)?;
    Ok(())
}

/// Records a finished page: how far the job got, in the page's transaction.
pub fn record_progress(
    connection: &mut DbConnection,
    id: &str,
    done: i64,
    new_hits: i64,
    last_subject_ref: &str,
) -> QueryResult<()> {
    diesel::update(screening_jobs::table.find(id))
        .set((
            screening_jobs::done.eq(done),
            screening_jobs::new_hits.eq(new_hits),
            screening_jobs::last_subject_ref.eq(last_subject_ref),
            screening_jobs::heartbeat_at.eq(crate::db::now()),
        ))
        .execute(connection)?;
    Ok(())
}

pub fn finish_job(connection: &mut DbConnection, id: &str, error: Option<&str>) -> QueryResult<()> {
    let now = crate::db::now();
    diesel::update(screening_jobs::table.find(id))
        .set((
            screening_jobs::status.eq(if error.is_some() {
                "failed"
            } else {
                "finished"
            }),
            screening_jobs::error.eq(error),
            screening_jobs::heartbeat_at.eq(now),
            screening_jobs::finished_at.eq(now),
        ))
        .execute(connection)?;
    Ok(())
}

/// The configuration fingerprint of the latest full rescreen that did not fail.
pub fn last_full_rescreen_config(
    connection: &mut DbConnection,
    reasons: &[&str],
) -> QueryResult<Option<String>> {
    screening_jobs::table
        .filter(screening_jobs::reason.eq_any(reasons))
        .filter(screening_jobs::status.ne("failed"))
        .order(screening_jobs::created_at.desc())
        .select(screening_jobs::matcher_config)
        .first(connection)
        .optional()
}
