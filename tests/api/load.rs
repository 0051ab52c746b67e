//! The load suite in its short form: `hashgate bench load` starts the service as its own process,
//! sends a paced mix of withdrawal decisions, payout batches, screenings and statement downloads,
//! and checks the chains, balances and certificate volumes afterwards (on PostgreSQL too when
//! `HASHGATE_TEST_POSTGRES_URL` is set). The full five-minute run is in BENCHMARKS.md.

#[test]
fn a_short_mixed_load_gets_no_error_and_keeps_every_invariant() {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/sanctions");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hashgate"))
        .args(["bench", "load", "--users", "40", "--payouts", "2000"])
        .args(["--seconds", "15", "--rate", "30", "--clients", "3"])
        .arg("--lists")
        .arg(&shared)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{report}\n{errors}");
    eprintln!("{report}");
    let backends = report.matches("== ").count();
    assert!(backends >= 1, "{report}");
    assert_eq!(report.matches("errors: 0").count(), backends, "{report}");
    assert_eq!(
        report.matches("ledger chain and balances: intact").count(),
        backends
    );
    assert_eq!(report.matches("audit chain: intact").count(), backends);
    assert_eq!(
        report
            .matches("certificates allocated beyond their volume: 0")
            .count(),
        backends
    );
    // The mix really ran: every operation answered.
    for operation in [
        "withdrawal decision",
        "payout batch",
        "person screening",
        "tax statement",
    ] {
        assert!(report.contains(&format!("| {operation}")), "{report}");
    }
}
