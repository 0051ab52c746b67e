//! Screening storage: list versions with their entries and diffs, and stored screenings.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;

use super::lists::{ListEntry, ListSource};
use super::matcher::{Hit, LoadedEntry};
use crate::audit::{self, Actor, NewAuditEntry};
use crate::crypto::FieldCipher;
use crate::db::schema::{list_changes, list_entries, list_versions, screening_hits, screenings};
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

/// The latest version of every source: (source, version) pairs; cheap, so the service can
/// notice a load made by another process.
pub fn active_versions(connection: &mut DbConnection) -> QueryResult<Vec<(String, i64)>> {
    list_versions::table
        .group_by(list_versions::source)
        .select((
            list_versions::source,
            diesel::dsl::max(list_versions::version),
        ))
        .load::<(String, Option<i64>)>(connection)
        .map(|rows| {
            let mut rows: Vec<(String, i64)> = rows
                .into_iter()
                .filter_map(|(source, version)| Some((source, version?)))
                .collect();
            rows.sort();
            rows
        })
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
    pub threshold: f64,
    pub screened_at: chrono::NaiveDateTime,
    pub hits: Vec<StoredHit>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredHit {
    pub id: String,
    pub status: String,
    #[serde(flatten)]
    pub hit: Hit,
}

/// Records a screening and its hits (all open) in the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub fn record_screening(
    connection: &mut DbConnection,
    cipher: &FieldCipher,
    subject_kind: &str,
    subject_ref: Option<&str>,
    query: &serde_json::Value,
    threshold: f64,
    hits: Vec<Hit>,
    actor: &Actor,
) -> Result<StoredScreening, AppError> {
    let id = uuid::Uuid::new_v4().to_string();
    let screened_at = crate::db::now();
    let encrypted = cipher.encrypt(&query.to_string(), &format!("screenings.query:{id}"));
    diesel::insert_into(screenings::table)
        .values((
            screenings::id.eq(&id),
            screenings::subject_kind.eq(subject_kind),
            screenings::subject_ref.eq(subject_ref),
            screenings::query.eq(encrypted),
            screenings::threshold.eq(threshold.to_string()),
            screenings::hit_count.eq(hits.len() as i64),
            screenings::screened_at.eq(screened_at),
            screenings::screened_by.eq(&actor.id),
        ))
        .execute(connection)?;
    let mut stored = Vec::with_capacity(hits.len());
    for hit in hits {
        let hit_id = uuid::Uuid::new_v4().to_string();
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
                screening_hits::status.eq("open"),
            ))
            .execute(connection)?;
        stored.push(StoredHit {
            id: hit_id,
            status: "open".into(),
            hit,
        });
    }
    Ok(StoredScreening {
        id,
        subject_kind: subject_kind.to_string(),
        subject_ref: subject_ref.map(String::from),
        threshold,
        screened_at,
        hits: stored,
    })
}
