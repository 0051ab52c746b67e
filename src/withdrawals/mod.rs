//! Withdrawals: the gate every withdrawal request passes — KYC tier, the jurisdiction's limits
//! in its currency and local day and month, the ledger balance, screening of the destination and
//! the user, the address format, and the travel rule — and its decision with every reason.

pub mod address;
pub mod addresses;
pub mod bench;
pub mod gate;
pub mod review;
pub mod routes;
pub mod service;
pub mod settlement;
pub mod store;

use rust_decimal::Decimal;
use serde::Deserialize;

/// The `[withdrawals]` section of a jurisdiction file. Amounts are in the jurisdiction's currency.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRules {
    /// At or above this amount the beneficiary's data is required.
    #[serde(with = "rust_decimal::serde::str")]
    pub travel_rule_threshold: Decimal,
    /// Releasing a held withdrawal above this amount needs a second officer.
    #[serde(with = "rust_decimal::serde::str")]
    pub four_eyes_above: Decimal,
    /// Hours before a new address-book entry can receive withdrawals, unless an officer approves
    /// it earlier.
    pub address_cooling_off_hours: u32,
    /// What a withdrawal to an address outside the user's address book gets.
    pub unlisted_address: UnlistedAddress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnlistedAddress {
    Hold,
    Reject,
}

impl WithdrawalRules {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.travel_rule_threshold < Decimal::ZERO {
            return Err("withdrawals.travel_rule_threshold must not be negative".into());
        }
        if self.four_eyes_above < Decimal::ZERO {
            return Err("withdrawals.four_eyes_above must not be negative".into());
        }
        if self.address_cooling_off_hours > 24 * 30 {
            return Err(
                "withdrawals.address_cooling_off_hours must be at most 720 (30 days)".into(),
            );
        }
        Ok(())
    }
}
