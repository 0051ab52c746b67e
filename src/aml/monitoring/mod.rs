//! Transaction monitoring: rules as data per jurisdiction, run on every withdrawal and as a daily
//! batch over the ledger; their hits and screening hits become alerts, which officers group into
//! cases and close with an outcome.

pub mod batch;
pub mod cases;
pub mod routes;
pub mod rules;
pub mod service;
pub mod store;
