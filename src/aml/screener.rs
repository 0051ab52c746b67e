//! The index the service screens against, rebuilt when a list version changes (in this process
//! or in another one, such as `hashgate lists import`), and the screening call the HTTP API, KYC
//! onboarding and withdrawal checks share.

use std::sync::{Arc, RwLock};

use diesel::RunQueryDsl;

use super::matcher::{ScreeningIndex, SubjectQuery};
use super::names::SubjectKind;
use super::store::{self, ScreeningRecord, StoredQuery, StoredScreening};
use crate::audit::Actor;
use crate::crypto::FieldCipher;
use crate::db::DbConnection;
use crate::error::AppError;
use crate::jurisdiction::ScreeningRules;

/// Who or what to screen.
#[derive(Debug, Clone)]
pub enum Subject {
    /// A person, or with [`SubjectKind::Entity`] a company, vessel or aircraft.
    Named {
        kind: SubjectKind,
        query: SubjectQuery,
    },
    /// A crypto address: only an exact match with a listed one is a hit.
    Address(String),
}

/// One screening as a caller asks for it.
#[derive(Debug, Clone)]
pub struct ScreeningRequest {
    pub subject: Subject,
    /// The user screened; a person or entity screened with one is monitored from then on.
    pub subject_ref: Option<String>,
    pub jurisdiction: Option<String>,
    pub rules: ScreeningRules,
}

#[derive(Default)]
pub struct Screener {
    /// The index and how many list versions had been loaded when it was built.
    current: RwLock<Option<(i64, Arc<ScreeningIndex>)>>,
}

impl Screener {
    /// Screens against the active list versions and stores the screening with its hits in the
    /// caller's transaction (hits dismissed before for the subject come back dismissed).
    pub fn screen(
        &self,
        connection: &mut DbConnection,
        cipher: &FieldCipher,
        request: &ScreeningRequest,
        actor: &Actor,
    ) -> Result<StoredScreening, AppError> {
        let index = self.index(connection)?;
        let (kind, stored_query, hits) = match &request.subject {
            Subject::Named { kind, query } => (
                kind.as_str(),
                serde_json::json!(StoredQuery::from(query)),
                index.screen(query, *kind, request.rules.threshold),
            ),
            Subject::Address(address) => (
                "address",
                serde_json::json!({ "address": address }),
                index.screen_address(address),
            ),
        };
        let record = ScreeningRecord {
            subject_kind: kind,
            subject_ref: request.subject_ref.as_deref(),
            jurisdiction: request.jurisdiction.as_deref(),
            query: &stored_query,
            threshold: request.rules.threshold,
            four_eyes_score: request.rules.four_eyes_score,
            trigger: "request",
        };
        store::record_screening(connection, cipher, &record, hits, actor)
    }

    /// The index for the active list versions; one cheap query checks that it is current.
    pub fn index(&self, connection: &mut DbConnection) -> Result<Arc<ScreeningIndex>, AppError> {
        let loaded = store::lists_loaded().get_result(connection)?;
        self.index_at(connection, loaded)
    }

    /// The index for the lists as they stood when `loaded` versions had been loaded: a count the
    /// caller read with [`store::lists_loaded`] inside a statement of its own (the withdrawal
    /// gate's one read).
    pub fn index_at(
        &self,
        connection: &mut DbConnection,
        loaded: i64,
    ) -> Result<Arc<ScreeningIndex>, AppError> {
        if let Ok(guard) = self.current.read() {
            if let Some((known, index)) = guard.as_ref() {
                if *known == loaded {
                    return Ok(index.clone());
                }
            }
        }
        let index = Arc::new(ScreeningIndex::build(store::active_entries(connection)?));
        if let Ok(mut guard) = self.current.write() {
            *guard = Some((loaded, index.clone()));
        }
        Ok(index)
    }
}
