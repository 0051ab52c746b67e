//! Sanctions, PEP and crypto-address screening: list files (`lists`), name similarity
//! (`names`), the in-memory index that answers queries (`matcher`), and the matcher's
//! evaluation on labelled pairs (`eval`). Transaction monitoring — rules, alerts and cases — is
//! `monitoring`; ongoing rescreening after list changes is `monitor`.

pub mod bench;
pub mod eval;
pub mod import;
pub mod list_routes;
pub mod lists;
pub mod matcher;
pub mod monitor;
pub mod monitoring;
pub mod names;
pub mod review;
pub mod routes;
pub mod screener;
pub mod store;

use crate::jurisdiction::rules::ScreeningRules;

/// The score at or above which a name is a hit, where no jurisdiction is named.
pub const DEFAULT_THRESHOLD: f64 = 0.75;

/// The rules where no jurisdiction is named.
pub const DEFAULT_RULES: ScreeningRules = ScreeningRules {
    threshold: DEFAULT_THRESHOLD,
    four_eyes_score: 0.9,
};
