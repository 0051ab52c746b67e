//! The index the service screens against, rebuilt when a list version changes (in this process
//! or in another one, such as `hashgate lists import`).

use std::sync::{Arc, RwLock};

use super::matcher::ScreeningIndex;
use super::store;
use crate::db::DbConnection;
use crate::error::AppError;

/// The list versions an index was built from: (source, version) pairs.
type Versions = Vec<(String, i64)>;

#[derive(Default)]
pub struct Screener {
    current: RwLock<Option<(Versions, Arc<ScreeningIndex>)>>,
}

impl Screener {
    /// The index for the active list versions; one cheap query checks that it is current.
    pub fn index(&self, connection: &mut DbConnection) -> Result<Arc<ScreeningIndex>, AppError> {
        let versions = store::active_versions(connection)?;
        if let Ok(guard) = self.current.read() {
            if let Some((known, index)) = guard.as_ref() {
                if *known == versions {
                    return Ok(index.clone());
                }
            }
        }
        let index = Arc::new(ScreeningIndex::build(store::active_entries(connection)?));
        if let Ok(mut guard) = self.current.write() {
            *guard = Some((versions, index.clone()));
        }
        Ok(index)
    }
}
