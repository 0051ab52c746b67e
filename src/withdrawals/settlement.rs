//! The platform's report of an approved or released withdrawal's fate on chain. Broadcast: an
//! approved withdrawal's funds in flight settle to the outside (a released one settled at its
//! release), and the transaction hash is kept for the record and for reports. Failed: the funds
//! return to the user's available balance.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::address::Network;
use super::store::{self, WithdrawalRow};
use crate::audit::{store as audit, Actor, NewAuditEntry};
use crate::db::schema::withdrawal_settlements;
use crate::db::DbConnection;
use crate::error::AppError;
use crate::ledger::store::{self as ledger, Transfer};
use crate::ledger::EntryKind;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Queryable, Selectable, Insertable)]
#[diesel(table_name = withdrawal_settlements)]
pub struct Settlement {
    #[serde(skip)]
    pub withdrawal_id: String,
    /// `broadcast` or `failed`.
    pub outcome: String,
    pub tx_hash: Option<String>,
    pub failure_reason: Option<String>,
    /// The ledger entry the report made, when it moved funds.
    pub ledger_seq: Option<i64>,
    pub reported_by: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::utc")]
    pub reported_at: chrono::NaiveDateTime,
}

pub enum Report {
    Broadcast { tx_hash: String },
    Failed { reason: String },
}

/// A transaction hash in its network's form: 64 hex digits, with `0x` on Ethereum.
pub fn valid_tx_hash(network: Network, hash: &str) -> bool {
    let digits = match network {
        Network::Ethereum => match hash.strip_prefix("0x") {
            Some(digits) => digits,
            None => return false,
        },
        Network::Bitcoin | Network::Tron => hash,
    };
    digits.len() == 64 && digits.bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn find(connection: &mut DbConnection, withdrawal_id: &str) -> QueryResult<Option<Settlement>> {
    withdrawal_settlements::table
        .find(withdrawal_id)
        .select(Settlement::as_select())
        .first(connection)
        .optional()
}

fn move_funds(
    connection: &mut DbConnection,
    row: &WithdrawalRow,
    kind: EntryKind,
    reason: String,
    actor: &Actor,
) -> Result<i64, AppError> {
    let entry = ledger::record(
        connection,
        Transfer {
            kind,
            user_id: row.user_id.clone(),
            asset: row.asset.clone(),
            amount: row.amount,
            occurred_at: crate::db::now(),
            to_user: false,
            reason: Some(reason),
        },
        actor,
    )?;
    Ok(entry.seq)
}

/// Records the platform's report, moving the funds it implies. One report per withdrawal.
pub fn report(
    connection: &mut DbConnection,
    id: &str,
    report: Report,
    actor: &Actor,
    request_id: Option<String>,
) -> Result<(WithdrawalRow, Settlement), AppError> {
    let row = store::find(connection, id)?
        .ok_or_else(|| AppError::NotFound(format!("no withdrawal {id}")))?;
    if !matches!(row.status.as_str(), "approved" | "released") {
        return Err(AppError::Conflict(format!(
            "withdrawal {id} is {}: only an approved or released withdrawal is sent",
            row.status
        )));
    }
    if let Some(existing) = find(connection, id)? {
        return Err(AppError::Conflict(format!(
            "withdrawal {id} was already reported {}",
            existing.outcome
        )));
    }
    let released = row.status == "released";
    let (outcome, tx_hash, failure_reason, ledger_seq) = match report {
        Report::Broadcast { tx_hash } => {
            let network = Network::parse(&row.network).ok_or_else(|| {
                AppError::internal(anyhow::anyhow!(
                    "withdrawal {id} has network {}",
                    row.network
                ))
            })?;
            if !valid_tx_hash(network, &tx_hash) {
                return Err(AppError::invalid_field(
                    "tx_hash",
                    "invalid_tx_hash",
                    format!("not a transaction hash on {}", row.network),
                ));
            }
            // A released withdrawal settled at its release; an approved one settles now.
            let seq = if released {
                None
            } else {
                Some(move_funds(
                    connection,
                    &row,
                    EntryKind::WithdrawalSettle,
                    format!("withdrawal {id} broadcast as {tx_hash}"),
                    actor,
                )?)
            };
            ("broadcast", Some(tx_hash), None, seq)
        }
        Report::Failed { reason } => {
            if released {
                // Undo the settlement made at release, then return the funds.
                let settled = row.outcome_seq.ok_or_else(|| {
                    AppError::internal(anyhow::anyhow!(
                        "released withdrawal {id} has no settlement entry"
                    ))
                })?;
                ledger::reverse(
                    connection,
                    settled,
                    &format!("withdrawal {id} failed on chain: {reason}"),
                    actor,
                )?;
            }
            let seq = move_funds(
                connection,
                &row,
                EntryKind::WithdrawalRelease,
                format!("withdrawal {id} failed on chain: {reason}"),
                actor,
            )?;
            ("failed", None, Some(reason), Some(seq))
        }
    };
    let settlement = Settlement {
        withdrawal_id: id.to_string(),
        outcome: outcome.into(),
        tx_hash,
        failure_reason,
        ledger_seq,
        reported_by: actor.id.clone(),
        reported_at: crate::db::now(),
    };
    diesel::insert_into(withdrawal_settlements::table)
        .values(&settlement)
        .execute(connection)?;
    audit::append(
        connection,
        NewAuditEntry::new(
            actor.clone(),
            "withdrawal.settlement",
            "withdrawal",
            id,
            request_id,
        )
        .details(serde_json::json!({
            "outcome": settlement.outcome,
            "tx_hash": settlement.tx_hash,
            "failure_reason": settlement.failure_reason,
            "ledger_seq": settlement.ledger_seq,
        })),
    )?;
    Ok((row, settlement))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_hashes_follow_their_network() {
        let hex = "a1".repeat(32);
        assert!(valid_tx_hash(Network::Bitcoin, &hex));
        assert!(valid_tx_hash(Network::Tron, &hex));
        assert!(!valid_tx_hash(Network::Ethereum, &hex));
        assert!(valid_tx_hash(Network::Ethereum, &format!("0x{hex}")));
        assert!(!valid_tx_hash(Network::Bitcoin, &hex[1..]));
        assert!(!valid_tx_hash(
            Network::Bitcoin,
            &format!("{}zz", &hex[2..])
        ));
    }
}
