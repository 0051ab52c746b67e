//! Demo reports: each sandbox jurisdiction's report for its current period (provisional: the demo's
//! users and payouts are recent), so a regulator token finds one with real numbers at once.

use chrono::TimeZone as _;

use crate::audit::Actor;
use crate::db::write_transaction;
use crate::error::AppError;
use crate::reports::service::{self, Keys, SandboxRequest};
use crate::reports::Period;
use crate::AppState;

/// (jurisdiction, period, report id) of each report made.
pub fn seed(state: &AppState, officer: &Actor) -> Result<Vec<(String, String, String)>, AppError> {
    let mut connection = state.db.connection()?;
    let now = crate::db::now();
    let mut made = Vec::new();
    for code in ["HK", "SG"] {
        let Some(jurisdiction) = state.jurisdictions.get(code) else {
            continue;
        };
        let Some(rules) = &jurisdiction.reports else {
            continue;
        };
        let today = jurisdiction.time_zone.from_utc_datetime(&now).date_naive();
        let period = Period::containing(rules.period, today);
        let report = write_transaction(&mut connection, |connection| {
            service::generate_sandbox(
                connection,
                Keys {
                    signer: &state.signer,
                    cipher: &state.cipher,
                },
                SandboxRequest {
                    jurisdiction,
                    period: period.clone(),
                    reporting_entity: &state.reporting_entity.name,
                    carbon_basis: state.carbon.location_basis,
                    actor: officer.clone(),
                    request_id: None,
                },
                now,
            )
        })?;
        made.push((code.to_string(), period.label, report.id));
    }
    Ok(made)
}
