//! Withdrawals: the gate every withdrawal request passes (KYC tier, limits, balance, screening,
//! address, travel rule, monitoring rules) and the review of held withdrawals. So far: the
//! destination address checks.

pub mod address;
