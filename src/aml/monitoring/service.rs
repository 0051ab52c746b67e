//! Gathering what the monitoring rules look at for one withdrawal, at the gate and in the daily
//! batch, and recording their hits as alerts.

use chrono::NaiveDateTime;
use rust_decimal::Decimal;

use super::rules::{evaluate, Activity, PastWithdrawal, RuleHit};
use super::store::{self, Alert};
use crate::db::DbConnection;
use crate::error::AppError;
use crate::jurisdiction::Jurisdiction;
use crate::withdrawals::store as withdrawals;

/// One withdrawal as the rules see it, at the moment it was requested.
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub asset: &'a str,
    pub address: &'a str,
    pub amount_local: Option<Decimal>,
    pub amount_atoms: i64,
    /// The user's available balance of the asset just before the withdrawal.
    pub available_atoms: i64,
    pub requested_at: NaiveDateTime,
    pub account_opened_at: NaiveDateTime,
    pub risk_level: Option<&'a str>,
    pub next_review_at: Option<NaiveDateTime>,
}

/// The user's withdrawals before the one judged, as the rules see them.
pub struct History {
    /// Counted withdrawals (time, local-currency atoms), from at least the rules' look-back
    /// before the request; any at or after the request are not looked at.
    pub counted: Vec<(NaiveDateTime, Option<i64>)>,
    /// Payouts of the withdrawal's asset received within the rules' look-back before the
    /// request (time, atoms).
    pub payouts: Vec<(NaiveDateTime, i64)>,
    pub address_used_before: bool,
    /// The user's latest earlier request, whatever its decision.
    pub last_request_at: Option<NaiveDateTime>,
}

impl History {
    /// The history before a withdrawal stored earlier (the daily batch): what the gate saw.
    pub fn read_before(
        connection: &mut DbConnection,
        jurisdiction: &Jurisdiction,
        user_id: &str,
        (asset, address): (&str, &str),
        requested_at: NaiveDateTime,
    ) -> Result<History, AppError> {
        let window = (
            requested_at - jurisdiction.monitoring.look_back(),
            requested_at,
        );
        let past = withdrawals::past_activity(connection, user_id, asset, window, window)?;
        let (address_used_before, last_request_at) =
            withdrawals::address_and_last_request(connection, user_id, address, requested_at)?;
        Ok(History {
            counted: past.withdrawals,
            payouts: past.payouts,
            address_used_before,
            last_request_at,
        })
    }
}

/// The jurisdiction's rules that the withdrawal triggers, judged on the history before it.
pub fn rule_hits(
    jurisdiction: &Jurisdiction,
    currency_scale: u32,
    subject: &Subject,
    history: &History,
) -> Vec<RuleHit> {
    let rules = &jurisdiction.monitoring;
    if rules.rules.is_empty() {
        return Vec::new();
    }
    let now = subject.requested_at;
    let since = now - rules.look_back();
    let to_local = |atoms: i64| Decimal::from_i128_with_scale(i128::from(atoms), currency_scale);
    let recent_withdrawals: Vec<PastWithdrawal> = history
        .counted
        .iter()
        .filter(|(requested_at, _)| (since..now).contains(requested_at))
        .map(|&(requested_at, amount_local)| PastWithdrawal {
            requested_at,
            amount_local: amount_local.map(to_local),
        })
        .collect();
    let activity = Activity {
        now,
        currency: &jurisdiction.currency,
        amount_local: subject.amount_local,
        amount_atoms: subject.amount_atoms,
        available_atoms: subject.available_atoms,
        recent_withdrawals: &recent_withdrawals,
        recent_payouts: &history.payouts,
        address_used_before: history.address_used_before,
        last_withdrawal_at: history.last_request_at,
        account_opened_at: subject.account_opened_at,
        risk_level: subject.risk_level,
        review_due: subject.next_review_at.is_some_and(|due| due <= now),
    };
    evaluate(rules, &activity)
}

/// Records each hit as an alert on the withdrawal (once per rule version); returns how many were
/// new.
pub fn record_alerts(
    connection: &mut DbConnection,
    hits: &[RuleHit],
    user_id: &str,
    jurisdiction: &str,
    withdrawal_id: &str,
    detected_by: &str,
) -> Result<usize, AppError> {
    let mut created = 0;
    for alert in alerts_for(hits, user_id, jurisdiction, withdrawal_id, detected_by) {
        if store::insert_alert(connection, &alert)? {
            created += 1;
        }
    }
    Ok(created)
}

/// The alerts of the hits on a withdrawal, detected now.
pub fn alerts_for(
    hits: &[RuleHit],
    user_id: &str,
    jurisdiction: &str,
    withdrawal_id: &str,
    detected_by: &str,
) -> Vec<Alert> {
    let now = crate::db::now();
    hits.iter()
        .map(|hit| Alert::for_rule_hit(hit, user_id, jurisdiction, withdrawal_id, detected_by, now))
        .collect()
}
