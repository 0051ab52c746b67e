//! Sanctions, PEP and crypto-address screening: list files (`lists`), name similarity
//! (`names`), the in-memory index that answers queries (`matcher`), and the matcher's
//! evaluation on labelled pairs (`eval`).

pub mod eval;
pub mod import;
pub mod lists;
pub mod matcher;
pub mod names;
pub mod routes;
pub mod screener;
pub mod store;

/// The score at or above which a name is a hit, where a jurisdiction does not set its own.
pub const DEFAULT_THRESHOLD: f64 = 0.75;
