//! Withdrawals: the gate every withdrawal request passes — KYC tier, the jurisdiction's limits
//! in its currency and local day and month, the ledger balance, screening of the destination and
//! the user, the address format, and the travel rule — and its decision with every reason.

pub mod address;
pub mod bench;
pub mod gate;
pub mod routes;
pub mod service;
pub mod store;

use rust_decimal::Decimal;
use serde::Deserialize;

/// The `[withdrawals]` section of a jurisdiction file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRules {
    /// At or above this amount in the jurisdiction's currency, the beneficiary's data is required.
    #[serde(with = "rust_decimal::serde::str")]
    pub travel_rule_threshold: Decimal,
}
