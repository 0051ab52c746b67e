//! Sanctions, PEP and crypto-address screening.

pub mod eval;
pub mod names;

/// The score at or above which a name is a hit, where a jurisdiction does not set its own.
pub const DEFAULT_THRESHOLD: f64 = 0.75;
