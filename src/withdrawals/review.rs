//! Officers' review of held withdrawals: release (four eyes above the jurisdiction's amount)
//! settles the funds in flight to the outside; rejection returns them to the user's available
//! balance. The user is e-mailed and the platform gets a signed webhook, both through outboxes
//! written in the same transaction.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use rust_decimal::Decimal;

use super::store::{self, WithdrawalRow};
use crate::audit::{store as audit, Actor, NewAuditEntry};
use crate::auth::Role;
use crate::crypto::FieldCipher;
use crate::db::schema::withdrawals;
use crate::db::DbConnection;
use crate::error::AppError;
use crate::jurisdiction::Jurisdictions;
use crate::ledger::store::{self as ledger, Transfer};
use crate::ledger::{Assets, EntryKind};
use crate::notify::outbox::{self, Related};
use crate::notify::webhooks;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Release,
    Reject,
}

pub struct Review<'a> {
    pub cipher: &'a FieldCipher,
    pub jurisdictions: &'a Jurisdictions,
}

/// Who reviews, and why.
pub struct Reviewer<'a> {
    pub actor: &'a Actor,
    pub role: Role,
    pub reason: &'a str,
    pub request_id: Option<String>,
}

impl Review<'_> {
    /// Whether releasing needs a second officer: above the jurisdiction's amount, or when the
    /// withdrawal could not be valued.
    fn needs_four_eyes(&self, row: &WithdrawalRow, currency_scale: u32) -> bool {
        let threshold = self
            .jurisdictions
            .get(&row.jurisdiction)
            .map(|jurisdiction| jurisdiction.withdrawals.four_eyes_above)
            .unwrap_or(Decimal::ZERO);
        match row.amount_local {
            Some(atoms) => {
                Decimal::from_i128_with_scale(i128::from(atoms), currency_scale) > threshold
            }
            None => true,
        }
    }

    pub fn decide(
        &self,
        connection: &mut DbConnection,
        id: &str,
        verdict: Verdict,
        reviewer: &Reviewer,
    ) -> Result<WithdrawalRow, AppError> {
        let row = store::find(connection, id)?
            .ok_or_else(|| AppError::NotFound(format!("no withdrawal {id}")))?;
        if !matches!(row.status.as_str(), "held" | "release_pending") {
            return Err(AppError::Conflict(format!(
                "withdrawal {id} is {}, not held for review",
                row.status
            )));
        }
        let assets = ledger::load_assets(connection)?;
        let currency_scale = assets.get(&row.currency).map_or(2, |asset| asset.scale);
        let now = crate::db::now();
        match verdict {
            Verdict::Reject => self.finish(connection, row, verdict, reviewer, (&assets, now)),
            Verdict::Release if !self.needs_four_eyes(&row, currency_scale) => {
                self.finish(connection, row, verdict, reviewer, (&assets, now))
            }
            Verdict::Release if row.status == "held" => {
                self.first_approval(connection, row, reviewer, now)
            }
            Verdict::Release => {
                if row.first_reviewer.as_deref() == Some(reviewer.actor.id.as_str()) {
                    return Err(AppError::Conflict(
                        "four eyes: the second approval must come from another officer".into(),
                    ));
                }
                if reviewer.role != Role::SeniorOfficer {
                    return Err(AppError::Forbidden(
                        "four eyes: the second approval needs a senior officer".into(),
                    ));
                }
                self.finish(connection, row, verdict, reviewer, (&assets, now))
            }
        }
    }

    fn first_approval(
        &self,
        connection: &mut DbConnection,
        mut row: WithdrawalRow,
        reviewer: &Reviewer,
        now: NaiveDateTime,
    ) -> Result<WithdrawalRow, AppError> {
        let updated = diesel::update(
            withdrawals::table
                .find(&row.id)
                .filter(withdrawals::status.eq("held")),
        )
        .set((
            withdrawals::status.eq("release_pending"),
            withdrawals::first_reviewer.eq(&reviewer.actor.id),
            withdrawals::first_reviewed_at.eq(now),
        ))
        .execute(connection)?;
        if updated == 0 {
            return Err(AppError::Conflict(format!(
                "withdrawal {} was reviewed by someone else meanwhile",
                row.id
            )));
        }
        row.status = "release_pending".into();
        row.first_reviewer = Some(reviewer.actor.id.clone());
        row.first_reviewed_at = Some(now);
        self.audit(
            connection,
            &row,
            "withdrawal.release_first_approval",
            reviewer,
        )?;
        Ok(row)
    }

    fn finish(
        &self,
        connection: &mut DbConnection,
        mut row: WithdrawalRow,
        verdict: Verdict,
        reviewer: &Reviewer,
        (assets, now): (&Assets, NaiveDateTime),
    ) -> Result<WithdrawalRow, AppError> {
        let (status, kind, action, template, event) = match verdict {
            Verdict::Release => (
                "released",
                EntryKind::WithdrawalSettle,
                "withdrawal.release",
                "withdrawal_released",
                "withdrawal.released",
            ),
            Verdict::Reject => (
                "rejected",
                EntryKind::WithdrawalRelease,
                "withdrawal.reject",
                "withdrawal_rejected",
                "withdrawal.rejected",
            ),
        };
        // Conditioned on the status read, so of two concurrent reviews one counts.
        let updated = diesel::update(
            withdrawals::table
                .find(&row.id)
                .filter(withdrawals::status.eq(&row.status)),
        )
        .set((
            withdrawals::status.eq(status),
            withdrawals::reviewed_by.eq(&reviewer.actor.id),
            withdrawals::reviewed_at.eq(now),
            withdrawals::review_reason.eq(reviewer.reason),
        ))
        .execute(connection)?;
        if updated == 0 {
            return Err(AppError::Conflict(format!(
                "withdrawal {} was reviewed by someone else meanwhile",
                row.id
            )));
        }
        let entry = ledger::record(
            connection,
            Transfer {
                kind,
                user_id: row.user_id.clone(),
                asset: row.asset.clone(),
                amount: row.amount,
                occurred_at: now,
                to_user: false,
                reason: Some(format!("withdrawal {}: {}", row.id, reviewer.reason)),
            },
            reviewer.actor,
        )?;
        diesel::update(withdrawals::table.find(&row.id))
            .set(withdrawals::outcome_seq.eq(entry.seq))
            .execute(connection)?;
        row.status = status.into();
        row.reviewed_by = Some(reviewer.actor.id.clone());
        row.reviewed_at = Some(now);
        row.review_reason = Some(reviewer.reason.to_string());
        row.outcome_seq = Some(entry.seq);
        self.notify_user(connection, &row, template, (assets, now))?;
        webhooks::enqueue(
            connection,
            event,
            &row.id,
            &serde_json::json!({
                "withdrawal_id": row.id,
                "user_id": row.user_id,
                "status": row.status,
                "asset": row.asset,
                "amount_atoms": row.amount,
                "network": row.network,
                "address": row.address,
                "decided_at": now,
            }),
        )?;
        self.audit(connection, &row, action, reviewer)?;
        Ok(row)
    }

    fn notify_user(
        &self,
        connection: &mut DbConnection,
        row: &WithdrawalRow,
        template: &str,
        (assets, now): (&Assets, NaiveDateTime),
    ) -> Result<(), AppError> {
        let user = crate::users::store::find(connection, self.cipher, &row.user_id)?;
        let amount = assets.get(&row.asset).map_or_else(
            || row.amount.to_string(),
            |asset| asset.from_atoms(row.amount).to_string(),
        );
        let zone = self
            .jurisdictions
            .get(&row.jurisdiction)
            .map_or(chrono_tz::UTC, |jurisdiction| jurisdiction.time_zone);
        let values: BTreeMap<&str, String> = BTreeMap::from([
            ("amount", amount),
            ("asset", row.asset.clone()),
            ("address", row.address.clone()),
            ("withdrawal_id", row.id.clone()),
            (
                "date",
                now.and_utc().with_timezone(&zone).date_naive().to_string(),
            ),
        ]);
        outbox::enqueue(
            connection,
            self.cipher,
            template,
            (&user.email, &user.preferred_language),
            &values,
            Related {
                kind: "withdrawal",
                id: &row.id,
            },
        )?;
        Ok(())
    }

    fn audit(
        &self,
        connection: &mut DbConnection,
        row: &WithdrawalRow,
        action: &str,
        reviewer: &Reviewer,
    ) -> Result<(), AppError> {
        audit::append(
            connection,
            NewAuditEntry::new(
                reviewer.actor.clone(),
                action,
                "withdrawal",
                &row.id,
                reviewer.request_id.clone(),
            )
            .reason(Some(reviewer.reason.to_string()))
            .details(serde_json::json!({
                "user_id": row.user_id,
                "status": row.status,
                "first_reviewer": row.first_reviewer,
                "outcome_seq": row.outcome_seq,
            })),
        )?;
        Ok(())
    }
}
