use std::fmt::Write as _;
use std::time::{Duration, Instant};

use hashgate::auth::Role;

use crate::backend_tests;
use crate::common::TestApp;

backend_tests!(
    payout_import_rejects_bad_rows_with_reasons_and_is_idempotent,
    an_interrupted_import_resumes_without_duplicates,
    price_import_stores_rates_or_names_every_bad_line
);

const HEADER: &str = "user_id,asset,amount,occurred_at,order_id,facility_id,external_id\n";

fn count(app: &TestApp, table: &str) -> u64 {
    app.query_text(&format!(
        "SELECT CAST(COUNT(*) AS TEXT) AS value FROM {table}"
    ))[0]
        .parse()
        .unwrap()
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// Writes `csv` to `name` in the test's directory and imports it: what the command printed, and
/// the rejects file beside it.
fn import_csv(app: &TestApp, name: &str, csv: &str) -> (String, String) {
    let path = app.directory().join(name);
    std::fs::write(&path, csv).unwrap();
    let output = stdout(&app.command(&["import", "payouts", path.to_str().unwrap()]));
    let rejects = std::fs::read_to_string(app.directory().join(format!("{name}.rejects.csv")));
    (output, rejects.unwrap_or_default())
}

fn payout_import_rejects_bad_rows_with_reasons_and_is_idempotent(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let user = app.create_user(&platform, "csv-1");
    let unknown = uuid::Uuid::new_v4();
    let mut csv = HEADER.to_string();
    for i in 0..20 {
        writeln!(
            csv,
            "{user},BTC,0.0001,2026-01-{:02}T00:00:00Z,o-1,f-1,csv-{i}",
            i + 1
        )
        .unwrap();
    }
    writeln!(
        csv,
        "{user},BTC,0.000000001,2026-01-01T00:00:00Z,o-1,f-1,too-fine"
    )
    .unwrap(); // line 22
    writeln!(csv, "{unknown},BTC,1,2026-01-01T00:00:00Z,o-1,f-1,nobody").unwrap(); // line 23
    writeln!(csv, "{user},USDT,5,2026-01-01T00:00:00,o-1,f-1,no-zone").unwrap(); // line 24
    writeln!(csv, "{user},BTC,0.0001,2026-01-01T00:00:00Z,o-1,f-1,csv-3").unwrap(); // line 25
    writeln!(csv, "only,three,columns").unwrap(); // line 26
    let (output, rejects) = import_csv(app, "payouts.csv", &csv);
    assert!(
        output.contains("25 rows: 20 accepted, 0 already stored, 5 rejected"),
        "{output}"
    );
    let lines: Vec<&str> = rejects.lines().collect();
    assert_eq!(lines[0], "line,external_id,field,code,message");
    let expect = [
        ("22,\"too-fine\",\"amount\"", "more than 8 decimal places"),
        ("23,\"nobody\",\"user_id\"", "no user with id"),
        ("24,\"no-zone\",\"occurred_at\"", "with a zone"),
        ("25,\"csv-3\",\"external_id\"", "repeats the external_id"),
        ("26,", "malformed"),
    ];
    for (start, reason) in expect {
        assert!(
            lines
                .iter()
                .any(|line| line.starts_with(start) && line.contains(reason)),
            "{start} / {reason} not in\n{rejects}"
        );
    }
    assert_eq!(count(app, "ledger_entries"), 20);
    assert!(!app.directory().join("payouts.csv.checkpoint").exists());

    let (again, _) = import_csv(app, "payouts.csv", &csv);
    assert!(
        again.contains("25 rows: 0 accepted, 20 already stored, 5 rejected"),
        "{again}"
    );
    assert_eq!(count(app, "ledger_entries"), 20);
    let available = || {
        app.get(&format!("/v1/users/{user}/balances"), Some(&platform))
            .json()["balances"][0]["available"]
            .clone()
    };
    assert_eq!(available(), "0.00200000");

    // A file mixing a new payout with a stored id sent with another amount: the new one is
    // written, the changed one is rejected as a conflict and the stored one left as it was.
    let mixed = format!(
        "{HEADER}{user},BTC,0.0001,2026-02-01T00:00:00Z,o-1,f-1,csv-20\n\
         {user},BTC,0.0009,2026-01-01T00:00:00Z,o-1,f-1,csv-0\n"
    );
    let (output, rejects) = import_csv(app, "mixed.csv", &mixed);
    assert!(
        output.contains("2 rows: 1 accepted, 0 already stored, 1 rejected"),
        "{output}"
    );
    assert!(
        rejects
            .lines()
            .any(|line| line.starts_with("3,\"csv-0\",\"external_id\",\"conflict\"")),
        "{rejects}"
    );
    assert_eq!(count(app, "ledger_entries"), 21);
    assert_eq!(available(), "0.00210000");
}

fn an_interrupted_import_resumes_without_duplicates(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let users: Vec<String> = (0..5)
        .map(|i| app.create_user(&platform, &format!("kill-{i}")))
        .collect();
    const ROWS: u64 = 60_000;
    let mut csv = String::with_capacity(ROWS as usize * 120);
    csv.push_str(HEADER);
    for i in 0..ROWS {
        let user = &users[i as usize % users.len()];
        writeln!(
            csv,
            "{user},USDT,1.25,2026-02-01T00:00:00Z,o-{},qc-1,k-{i}",
            i % 97
        )
        .unwrap();
    }
    let path = app.directory().join("big.csv");
    std::fs::write(&path, csv).unwrap();
    let checkpoint = app.directory().join("big.csv.checkpoint");

    let arguments = [
        "import",
        "payouts",
        path.to_str().unwrap(),
        "--batch-size",
        "500",
    ];
    let mut child = app.command_builder(&arguments).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !checkpoint.exists() {
        assert!(
            Instant::now() < deadline,
            "the import never committed a batch"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    child.kill().unwrap();
    child.wait().unwrap();
    let written_before_resume = count(app, "ledger_entries");
    assert!(
        written_before_resume > 0 && written_before_resume < ROWS,
        "killed after {written_before_resume} of {ROWS} rows"
    );

    let output = stdout(&app.command(&arguments));
    assert!(output.contains("resumed after line"), "{output}");
    assert_eq!(
        count(app, "ledger_entries"),
        ROWS,
        "exactly one copy of every row"
    );
    let distinct = app.query_text(
        "SELECT CAST(COUNT(DISTINCT external_id) AS TEXT) AS value FROM ledger_entries",
    );
    assert_eq!(distinct, vec![ROWS.to_string()]);
    let verify = stdout(&app.command(&["verify"]));
    assert!(
        verify.contains(&format!("ledger: {ROWS} entries, hash chain intact")),
        "{verify}"
    );
    let balance = app
        .get(&format!("/v1/users/{}/balances", users[0]), Some(&platform))
        .json();
    assert_eq!(balance["balances"][0]["available"], "15000.000000");
}

fn price_import_stores_rates_or_names_every_bad_line(app: &TestApp) {
    let good = "base,quote,as_of,rate\nBTC,USD,2026-01-01T00:00:00Z,95000.12\nUSD,HKD,2026-01-01T00:00:00Z,7.78\n";
    let path = app.directory().join("prices.csv");
    std::fs::write(&path, good).unwrap();
    let output = stdout(&app.command(&["import", "prices", path.to_str().unwrap()]));
    assert!(output.contains("2 rates stored"), "{output}");
    let again = stdout(&app.command(&["import", "prices", path.to_str().unwrap()]));
    assert!(
        again.contains("0 rates stored, 2 already stored"),
        "{again}"
    );

    let bad = "base,quote,as_of,rate\nETH,USD,2026-01-01T00:00:00Z,3000\nDOGE,USD,2026-01-01T00:00:00Z,1\nBTC,USD,2026-01-01,5\nBTC,USD,2026-01-02T00:00:00Z,-1\n";
    std::fs::write(&path, bad).unwrap();
    let output = app.command(&["import", "prices", path.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in ["line 3", "line 4", "line 5"] {
        assert!(stderr.contains(expected), "{expected} missing: {stderr}");
    }
    assert_eq!(
        count(app, "rates"),
        2,
        "nothing from the bad file is stored"
    );
}
