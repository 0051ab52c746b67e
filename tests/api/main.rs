//! Integration tests: the real app over HTTP, on SQLite always and on PostgreSQL when
//! `HASHGATE_TEST_POSTGRES_URL` is set. Test names start with the backend they ran on.

mod common;
mod webdriver;

mod access;
mod audit;
mod carbon;
mod cli;
mod console;
mod crash;
mod errors;
mod failover;
mod fuzz;
mod idempotency;
mod import;
mod kyc;
mod ledger;
mod load;
mod monitoring;
mod reports;
mod roles;
mod rotation;
mod screening;
mod security;
mod service;
mod smtp;
mod tax;
mod tax_golden;
mod tls;
mod tokens;
mod users;
mod withdrawals;
