use std::collections::BTreeMap;

use hashgate::auth::Role;
use hashgate::db::write_transaction;
use hashgate::ledger::store::{self, Transfer};
use hashgate::ledger::EntryKind;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::backend_tests;
use crate::common::TestApp;

backend_tests!(
    payouts_are_recorded_valued_and_balanced,
    one_bad_row_rejects_the_batch_and_names_every_bad_row,
    resending_a_payout_is_a_no_op_and_changing_one_conflicts,
    a_full_batch_is_accepted_and_one_more_row_is_refused,
    ledger_tampering_is_refused_or_detected,
    only_the_user_and_staff_read_balances_and_entries,
    random_operations_keep_every_balance_equal_to_its_entries,
    the_summary_groups_by_local_day,
    the_ledger_pages_newest_first_by_receipt_time,
    writers_of_one_chain_or_both_interleave_without_losing_a_link
);

/// Writers of the ledger chain, of the audit chain, and of both in one step (a withdrawal's hold
/// with its audit entry) run at the same time: every write lands once and both chains verify. On
/// PostgreSQL the paired write once advanced only one head when the other had moved since its
/// statement began, and the next writer of that chain hit a duplicate sequence number.
fn writers_of_one_chain_or_both_interleave_without_losing_a_link(app: &TestApp) {
    use hashgate::audit::{store as audit, Actor, NewAuditEntry};
    use hashgate::error::AppError;

    const ROUNDS: usize = 40;
    let platform = app.token(Role::Platform, None, None);
    let user = app.create_user(&platform, "interleave");
    let actor = Actor::command_line();
    let transfer = |kind, amount, to_user| Transfer {
        kind,
        user_id: user.clone(),
        asset: "BTC".into(),
        amount,
        occurred_at: hashgate::db::now(),
        to_user,
        reason: Some("interleaving writers".into()),
    };
    let audited =
        |what: &str| NewAuditEntry::new(actor.clone(), "test.interleave", "ledger", what, None);
    let mut connection = app.state_db.connection().unwrap();
    write_transaction(&mut connection, |connection| {
        store::record(
            connection,
            transfer(EntryKind::Adjustment, 1_000_000, true),
            &actor,
        )
    })
    .unwrap();
    drop(connection);
    std::thread::scope(|scope| {
        for writer in 0..3 {
            let (transfer, audited, actor) = (&transfer, &audited, &actor);
            scope.spawn(move || {
                let mut connection = app.state_db.connection().unwrap();
                for round in 0..ROUNDS {
                    write_transaction(&mut connection, |connection| {
                        match writer {
                            0 => {
                                let hold = transfer(EntryKind::WithdrawalHold, 10, false);
                                let id = format!("interleave-{round}");
                                store::record_audited_as(
                                    connection,
                                    hold,
                                    actor,
                                    id,
                                    audited("paired"),
                                    &[],
                                )?;
                            }
                            1 => {
                                audit::append(connection, audited("audit only"))?;
                            }
                            _ => {
                                let credit = transfer(EntryKind::Adjustment, 1, true);
                                store::record(connection, credit, actor)?;
                            }
                        }
                        Ok::<_, AppError>(())
                    })
                    .unwrap_or_else(|error| panic!("writer {writer}, round {round}: {error:?}"));
                }
            });
        }
    });
    let verified = app.command(&["verify"]);
    assert!(verified.status.success(), "{verified:?}");
    let count = |sql: &str| app.query_text(sql);
    assert_eq!(
        count(&format!(
            "SELECT CAST(COUNT(*) AS TEXT) AS value FROM ledger_entries WHERE user_id = '{user}'"
        )),
        [(1 + 2 * ROUNDS).to_string()]
    );
    assert_eq!(
        count("SELECT CAST(COUNT(*) AS TEXT) AS value FROM audit_log WHERE action = 'test.interleave'"),
        [(2 * ROUNDS).to_string()]
    );
    let available = count(&format!(
        "SELECT CAST(atoms AS TEXT) AS value FROM balances \
         WHERE account = 'user:{user}:available' AND asset = 'BTC'"
    ));
    assert_eq!(available, [(1_000_000 - 10 * ROUNDS + ROUNDS).to_string()]);
}

fn the_summary_groups_by_local_day(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let officer = app.token(Role::Officer, None, None);
    let user = app.create_user(&platform, "summary");
    app.post(
        "/v1/prices",
        Some(&platform),
        &json!({"source": "t", "rates": [
        {"base": "BTC", "quote": "USD", "as_of": "2025-12-31T00:00:00Z", "rate": "90000"}]}),
    );
    let batch = json!({"payouts": [
        payout(&user, "s-1", "0.001", "2025-12-31T17:00:00Z"),
        payout(&user, "s-2", "0.002", "2025-12-31T15:00:00Z"),
    ]});
    assert_eq!(app.post("/v1/payouts", Some(&platform), &batch).status, 200);
    let path = "/v1/ledger/summary?from=2025-12-31&to=2026-01-01";
    let shanghai = app
        .get(&format!("{path}&tz=Asia/Shanghai"), Some(&officer))
        .json();
    let days = shanghai["days"].as_array().unwrap();
    assert_eq!(days.len(), 2);
    assert_eq!(
        (days[0]["date"].clone(), days[0]["payout_total"].clone()),
        (json!("2025-12-31"), json!("0.00200000"))
    );
    assert_eq!(
        (days[1]["date"].clone(), days[1]["payout_fmv_usd"].clone()),
        (json!("2026-01-01"), json!("90"))
    );
    let utc = app.get(path, Some(&officer)).json();
    assert_eq!(utc["days"].as_array().unwrap().len(), 1);
    assert_eq!(utc["days"][0]["payouts"], 2);
    assert_eq!(
        app.get(&format!("{path}&tz=Mars/Olympus"), Some(&officer))
            .problem_fields(400),
        vec!["tz"]
    );
    assert_eq!(
        app.get(
            "/v1/ledger/summary?from=2026-01-02&to=2026-01-01",
            Some(&officer)
        )
        .problem_fields(400),
        vec!["to"]
    );
    assert_eq!(
        app.get("/v1/ledger/summary?to=2026-01-01", Some(&officer))
            .problem_fields(400),
        vec!["from"]
    );
    app.get(path, Some(&platform)).problem(403);
}

fn payout(user_id: &str, external_id: &str, amount: &str, occurred_at: &str) -> Value {
    json!({
        "user_id": user_id, "asset": "BTC", "amount": amount, "occurred_at": occurred_at,
        "order_id": "order-7", "facility_id": "qc-montreal-1", "external_id": external_id
    })
}

fn ledger_count(app: &TestApp) -> String {
    app.query_text("SELECT CAST(COUNT(*) AS TEXT) AS value FROM ledger_entries")[0].clone()
}

fn payouts_are_recorded_valued_and_balanced(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let officer = app.token(Role::Officer, None, None);
    let user = app.create_user(&platform, "miner-1");
    let prices = app.post(
        "/v1/prices",
        Some(&platform),
        &json!({"source": "test-feed", "rates": [
            {"base": "BTC", "quote": "USD", "as_of": "2025-12-31T00:00:00Z", "rate": "94000.50"},
            {"base": "BTC", "quote": "USD", "as_of": "2026-01-01T00:00:00Z", "rate": "95000"},
            {"base": "USD", "quote": "HKD", "as_of": "2026-01-01T00:00:00Z", "rate": "7.7812"}
        ]}),
    );
    assert_eq!(prices.status, 200, "{}", prices.body);
    assert_eq!(prices.json()["inserted"], 3);

    let response = app.post(
        "/v1/payouts",
        Some(&platform),
        &json!({"payouts": [
            payout(&user, "p-1", "0.00012345", "2026-01-01T01:00:00+08:00"),
            payout(&user, "p-2", "0.001", "2026-01-01T12:00:00Z"),
            payout(&user, "p-3", "0.5", "2025-12-30T12:00:00Z"),
        ]}),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let report = response.json();
    assert_eq!(report["accepted"], 3);
    assert_eq!(report["duplicates"], 0);
    assert_eq!(report["unpriced"], 1);

    let balances = app
        .get(&format!("/v1/users/{user}/balances"), Some(&officer))
        .json();
    assert_eq!(balances["balances"][0]["asset"], "BTC");
    assert_eq!(balances["balances"][0]["available"], "0.50112345");
    assert_eq!(balances["balances"][0]["held"], "0.00000000");

    let entries = app
        .get(&format!("/v1/users/{user}/ledger"), Some(&officer))
        .json();
    let items = entries["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let by_id = |id: &str| {
        items
            .iter()
            .find(|e| e["external_id"] == id)
            .unwrap()
            .clone()
    };
    // 01:00 in UTC+8 is 17:00 UTC the day before: valued at that day's price.
    let first = by_id("p-1");
    assert_eq!(first["occurred_at"], "2025-12-31T17:00:00Z");
    assert_eq!(first["usd_price"], "94000.5");
    assert_eq!(first["fmv_usd"], "11.604361725");
    assert_eq!(first["amount"], "0.00012345");
    assert_eq!(by_id("p-2")["fmv_usd"], "95");
    let unpriced = by_id("p-3");
    assert_eq!(unpriced["valuation"], "no_price");
    assert!(unpriced["fmv_usd"].is_null());

    let filtered = app
        .get(
            &format!("/v1/users/{user}/ledger?from=2026-01-01T00:00:00Z&kind=payout"),
            Some(&officer),
        )
        .json();
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);

    let verify = app.command(&["verify"]);
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        stdout.contains("ledger: 3 entries, hash chain intact"),
        "{stdout}"
    );
}

/// A backfilled batch is recorded after newer payouts, and several payouts share a time: pages
/// list each entry once, by receipt time and then ledger order, and a bad cursor is named.
fn the_ledger_pages_newest_first_by_receipt_time(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let user = app.create_user(&platform, "pager");
    let batches = [
        vec![
            payout(&user, "recent-1", "0.1", "2026-03-02T00:00:00Z"),
            payout(&user, "recent-2", "0.1", "2026-03-03T00:00:00Z"),
            payout(&user, "recent-3", "0.1", "2026-03-03T00:00:00Z"),
        ],
        vec![
            payout(&user, "backfill-1", "0.1", "2026-01-05T00:00:00Z"),
            payout(&user, "backfill-2", "0.1", "2026-03-03T00:00:00Z"),
            payout(&user, "backfill-3", "0.1", "2026-02-01T00:00:00Z"),
            payout(&user, "backfill-4", "0.1", "2026-03-04T00:00:00Z"),
        ],
    ];
    for batch in batches {
        let response = app.post("/v1/payouts", Some(&platform), &json!({ "payouts": batch }));
        assert_eq!(response.status, 200, "{}", response.body);
    }
    let mut listed: Vec<(String, i64, String)> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let query = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page = app
            .get(
                &format!("/v1/users/{user}/ledger?limit=2{query}"),
                Some(&platform),
            )
            .json();
        for item in page["items"].as_array().unwrap() {
            listed.push((
                item["occurred_at"].as_str().unwrap().to_string(),
                item["seq"].as_i64().unwrap(),
                item["external_id"].as_str().unwrap().to_string(),
            ));
        }
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    let names: Vec<&str> = listed.iter().map(|(_, _, id)| id.as_str()).collect();
    assert_eq!(
        names,
        [
            "backfill-4",
            "backfill-2",
            "recent-3",
            "recent-2",
            "recent-1",
            "backfill-3",
            "backfill-1"
        ]
    );
    let mut expected = listed.clone();
    expected.sort_by(|a, b| (&b.0, b.1).cmp(&(&a.0, a.1)));
    assert_eq!(listed, expected);

    for bad in ["17", "x_3", "1767225600000000_0", "1767225600000000_"] {
        let response = app.get(
            &format!("/v1/users/{user}/ledger?cursor={bad}"),
            Some(&platform),
        );
        assert_eq!(response.problem_fields(400), vec!["cursor"], "{bad}");
    }
}

fn one_bad_row_rejects_the_batch_and_names_every_bad_row(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let user = app.create_user(&platform, "miner-2");
    let unknown_user = uuid::Uuid::new_v4().to_string();
    let mut rows = vec![
        payout(&user, "ok-0", "0.1", "2026-01-01T00:00:00Z"),
        payout(&user, "neg", "-0.1", "2026-01-01T00:00:00Z"),
        payout(&user, "zero", "0", "2026-01-01T00:00:00Z"),
        payout(&user, "fine", "0.000000001", "2026-01-01T00:00:00Z"),
        payout(&user, "nozone", "0.1", "2026-01-01T00:00:00"),
        payout(&user, "future", "0.1", "2099-01-01T00:00:00Z"),
        payout(&user, "ok-0", "0.1", "2026-01-01T00:00:00Z"),
    ];
    let mut doge = payout(&user, "doge", "1", "2026-01-01T00:00:00Z");
    doge["asset"] = json!("DOGE");
    rows.push(doge);
    let mut as_number = payout(&user, "number", "1", "2026-01-01T00:00:00Z");
    as_number["amount"] = json!(0.1);
    let response = app.post(
        "/v1/payouts",
        Some(&platform),
        &json!({"payouts": [as_number]}),
    );
    assert_eq!(response.problem_fields(422), vec!["payouts[0].amount"]);

    let response = app.post("/v1/payouts", Some(&platform), &json!({"payouts": rows}));
    assert_eq!(
        response.problem_fields(422),
        vec![
            "payouts[1].amount",
            "payouts[2].amount",
            "payouts[3].amount",
            "payouts[4].occurred_at",
            "payouts[5].occurred_at",
            "payouts[6].external_id",
            "payouts[7].asset",
        ]
    );
    let response = app.post(
        "/v1/payouts",
        Some(&platform),
        &json!({"payouts": [payout(&user, "a", "0.1", "2026-01-01T00:00:00Z"),
                            payout(&unknown_user, "b", "0.1", "2026-01-01T00:00:00Z")]}),
    );
    assert_eq!(response.problem_fields(422), vec!["payouts[1].user_id"]);
    assert_eq!(
        ledger_count(app),
        "0",
        "nothing is written from a rejected batch"
    );
}

fn resending_a_payout_is_a_no_op_and_changing_one_conflicts(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let user = app.create_user(&platform, "miner-3");
    let batch = json!({"payouts": [payout(&user, "r-1", "0.2", "2026-02-01T00:00:00Z")]});
    assert_eq!(
        app.post("/v1/payouts", Some(&platform), &batch).json()["accepted"],
        1
    );
    let again = app.post("/v1/payouts", Some(&platform), &batch).json();
    assert_eq!(
        (again["accepted"].clone(), again["duplicates"].clone()),
        (json!(0), json!(1))
    );
    let changed = json!({"payouts": [
        payout(&user, "r-2", "0.3", "2026-02-02T00:00:00Z"),
        payout(&user, "r-1", "0.25", "2026-02-01T00:00:00Z"),
    ]});
    let response = app.post("/v1/payouts", Some(&platform), &changed);
    assert_eq!(response.problem_fields(409), vec!["payouts[1].external_id"]);
    assert_eq!(ledger_count(app), "1");
    // A batch of a new payout and a resent one: the new one is written, the resent one counted;
    // the attempt to write both, taken back, leaves no trace in the balances or the chain.
    let mixed = json!({"payouts": [
        payout(&user, "r-3", "0.05", "2026-02-03T00:00:00Z"),
        payout(&user, "r-1", "0.2", "2026-02-01T00:00:00Z"),
    ]});
    let report = app.post("/v1/payouts", Some(&platform), &mixed).json();
    assert_eq!(
        (report["accepted"].clone(), report["duplicates"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(ledger_count(app), "2");
    // Another source may use the same external id.
    let other = json!({"source": "pool-b", "payouts": [payout(&user, "r-1", "0.25", "2026-02-01T00:00:00Z")]});
    assert_eq!(
        app.post("/v1/payouts", Some(&platform), &other).json()["accepted"],
        1
    );
    let balance = app
        .get(&format!("/v1/users/{user}/balances"), Some(&platform))
        .json();
    assert_eq!(balance["balances"][0]["available"], "0.50000000");
    let verify = app.command(&["verify"]);
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("ledger: 3 entries, hash chain intact"),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

fn a_full_batch_is_accepted_and_one_more_row_is_refused(app: &TestApp) {
    let app = &TestApp::spawn_with_body_limit(app.backend, 4 * 1024 * 1024);
    let platform = app.token(Role::Platform, None, None);
    let users: Vec<String> = (0..20)
        .map(|i| app.create_user(&platform, &format!("bulk-{i}")))
        .collect();
    let rows: Vec<Value> = (0..10_001)
        .map(|i| {
            payout(
                &users[i % users.len()],
                &format!("bulk-{i}"),
                "0.00000100",
                "2026-03-01T00:00:00Z",
            )
        })
        .collect();
    let response = app.post("/v1/payouts", Some(&platform), &json!({"payouts": rows}));
    assert_eq!(response.problem_fields(422), vec!["payouts"]);
    let response = app.post(
        "/v1/payouts",
        Some(&platform),
        &json!({"payouts": rows[..10_000]}),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["accepted"], 10_000);
    let balance = app
        .get(&format!("/v1/users/{}/balances", users[0]), Some(&platform))
        .json();
    assert_eq!(balance["balances"][0]["available"], "0.00050000");
    let verify = app.command(&["verify"]);
    assert!(String::from_utf8_lossy(&verify.stdout)
        .contains("ledger: 10000 entries, hash chain intact"));
}

fn ledger_tampering_is_refused_or_detected(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let user = app.create_user(&platform, "miner-4");
    let rows: Vec<Value> = (0..3)
        .map(|i| payout(&user, &format!("t-{i}"), "0.01", "2026-01-05T00:00:00Z"))
        .collect();
    app.post("/v1/payouts", Some(&platform), &json!({"payouts": rows}));

    app.execute_sql("UPDATE balances SET atoms = atoms + 1 WHERE account LIKE 'user:%'")
        .unwrap();
    let inconsistent = app.command(&["verify"]);
    assert_eq!(inconsistent.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&inconsistent.stderr).contains("INCONSISTENT"));
    app.execute_sql("UPDATE balances SET atoms = atoms - 1 WHERE account LIKE 'user:%'")
        .unwrap();

    let tamper = "UPDATE ledger_entries SET amount = 2000000 WHERE seq = 2";
    assert!(app.execute_sql(tamper).unwrap_err().contains("append-only"));
    match app.backend {
        hashgate::db::Backend::Postgres => app
            .execute_sql(&format!(
                "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only; {tamper}"
            ))
            .unwrap(),
        hashgate::db::Backend::Sqlite => app
            .execute_sql(&format!("DROP TRIGGER ledger_entries_no_update; {tamper}"))
            .unwrap(),
    }
    let broken = app.command(&["verify"]);
    assert_eq!(broken.status.code(), Some(1));
    let message = String::from_utf8_lossy(&broken.stderr);
    assert!(message.contains("ledger entry 2"), "{message}");
}

fn only_the_user_and_staff_read_balances_and_entries(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let owner = app.create_user(&platform, "owner");
    let other = app.create_user(&platform, "other");
    let owner_token = app.token(Role::User, None, Some(&owner));
    let other_token = app.token(Role::User, None, Some(&other));
    let regulator = app.token(Role::Regulator, Some("HK"), None);
    for path in [
        format!("/v1/users/{owner}/balances"),
        format!("/v1/users/{owner}/ledger"),
    ] {
        assert_eq!(app.get(&path, Some(&owner_token)).status, 200, "{path}");
        assert_eq!(app.get(&path, Some(&platform)).status, 200, "{path}");
        app.get(&path, Some(&other_token)).problem(403);
        app.get(&path, Some(&regulator)).problem(403);
        app.get(&path, None).problem(401);
    }
    let missing = uuid::Uuid::new_v4();
    app.get(&format!("/v1/users/{missing}/balances"), Some(&platform))
        .problem(404);
    let batch = json!({"payouts": [payout(&owner, "x", "1", "2026-01-01T00:00:00Z")]});
    app.post("/v1/payouts", Some(&owner_token), &batch)
        .problem(403);
    app.post("/v1/payouts", Some(&regulator), &batch)
        .problem(403);
}

/// A reason with quotes, a backslash, a control character and non-ASCII text: on PostgreSQL the
/// database hashes each single entry as it links it, and `verify` recomputes that hash in Rust.
const PROPERTY_REASON: &str = "property test: \"réglage\" \\ 调整\n€";

/// Runs a seeded random mix of payouts, fees, holds, settlements, releases, adjustments and
/// reversals, checking after each step that the balances equal the sums of the entries.
fn run_random_operations(app: &TestApp, seed: u64) -> BTreeMap<(String, String), i64> {
    let platform = app.token(Role::Platform, None, None);
    let users: Vec<String> = (0..3)
        .map(|i| app.create_user(&platform, &format!("prop-{i}")))
        .collect();
    let actor = hashgate::audit::Actor::command_line();
    let mut random = rand::rngs::StdRng::seed_from_u64(seed);
    let mut connection = app.state_db.connection().unwrap();
    let at = chrono::DateTime::from_timestamp(1_767_225_600, 0)
        .unwrap()
        .naive_utc();
    let assets = ["BTC", "USDT"];
    for step in 0..300 {
        let user = random.gen_range(0..users.len());
        let asset = assets[random.gen_range(0..assets.len())];
        let amount = random.gen_range(1..5_000_000i64);
        let choice = random.gen_range(0..8);
        let result = write_transaction(&mut connection, |connection| {
            if choice == 0 {
                let last: i64 = hashgate::ledger::store::entries(
                    connection,
                    &hashgate::ledger::store::EntryFilter {
                        limit: 1,
                        ..Default::default()
                    },
                )?
                .first()
                .map(|e| e.seq)
                .unwrap_or(0);
                if last == 0 {
                    return Ok(());
                }
                let seq = random.gen_range(1..=last);
                return store::reverse(connection, seq, PROPERTY_REASON, &actor).map(|_| ());
            }
            let kind = match choice {
                1 | 2 => EntryKind::Payout,
                3 => EntryKind::Fee,
                4 => EntryKind::WithdrawalHold,
                5 => EntryKind::WithdrawalSettle,
                6 => EntryKind::WithdrawalRelease,
                _ => EntryKind::Adjustment,
            };
            let transfer = Transfer {
                kind,
                user_id: users[user].clone(),
                asset: asset.to_string(),
                amount,
                occurred_at: at + chrono::Duration::minutes(step),
                to_user: random.gen_bool(0.5),
                reason: Some(PROPERTY_REASON.to_string()),
            };
            if kind == EntryKind::Payout {
                let (debit, credit) = hashgate::ledger::transfer_accounts(kind, &users[user], true);
                assert_eq!(debit.key(), "platform:payout_pool");
                assert!(credit.key().ends_with(":available"));
            }
            store::record(connection, transfer, &actor).map(|_| ())
        });
        // Overdrawing is refused (and rolled back); anything else must succeed.
        if let Err(error) = result {
            let text = format!("{:?}", error.problem());
            assert!(
                text.contains("insufficient_balance")
                    || text.contains("already reversed")
                    || text.contains("itself a reversal"),
                "step {step}: {text}"
            );
        }
        let balances = store::all_balances(&mut connection).unwrap();
        for asset in assets {
            let total: i64 = balances
                .iter()
                .filter(|((_, a), _)| a == asset)
                .map(|(_, v)| v)
                .sum();
            assert_eq!(total, 0, "step {step}: {asset} does not balance");
        }
        assert!(
            balances
                .iter()
                .filter(|((account, _), _)| account.starts_with("user:"))
                .all(|(_, v)| *v >= 0),
            "step {step}: a user account is negative"
        );
    }
    match store::verify(&mut connection).unwrap() {
        hashgate::chain::Verification::Intact { entries, .. } => assert!(entries > 50, "{entries}"),
        other => panic!("{other:?}"),
    }
    // Keyed by user index rather than generated id, so two databases can be compared.
    store::all_balances(&mut connection)
        .unwrap()
        .into_iter()
        .map(|((account, asset), atoms)| {
            let account = users
                .iter()
                .enumerate()
                .fold(account, |account, (index, id)| {
                    account.replace(id.as_str(), &format!("#{index}"))
                });
            ((account, asset), atoms)
        })
        .collect()
}

fn random_operations_keep_every_balance_equal_to_its_entries(app: &TestApp) {
    let seed = 20_261_124;
    let here = run_random_operations(app, seed);
    assert!(!here.is_empty());
    if app.backend == hashgate::db::Backend::Postgres {
        let embedded = TestApp::spawn(hashgate::db::Backend::Sqlite);
        assert_eq!(
            here,
            run_random_operations(&embedded, seed),
            "the backends disagree"
        );
    }
}

/// PostgreSQL: a transaction that caches its plans (the withdrawal gate's) sets that for itself
/// alone, in the round trip of its `BEGIN`: the pooled connection goes back to planning each
/// statement for its parameters, after a commit and after a rollback.
#[test]
#[cfg_attr(
    not(hashgate_postgres_tests),
    ignore = "PostgreSQL suite SKIPPED: HASHGATE_TEST_POSTGRES_URL is not set"
)]
fn postgres_caches_plans_for_one_transaction_only() {
    use diesel::RunQueryDsl;
    use hashgate::db::{write_transaction_planned, DbConnection, Plans};
    use hashgate::error::AppError;

    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    fn plan_cache_mode(connection: &mut DbConnection) -> Result<String, AppError> {
        let DbConnection::Postgresql(inner) = connection else {
            panic!("a PostgreSQL connection");
        };
        let setting: Setting =
            diesel::sql_query("SELECT current_setting('plan_cache_mode') AS value")
                .get_result(inner)?;
        Ok(setting.value)
    }
    let app = TestApp::spawn(hashgate::db::Backend::Postgres);
    let mut connection = app.state_db.connection().unwrap();
    let cached = write_transaction_planned(&mut connection, Plans::Cached, plan_cache_mode);
    assert_eq!(cached.unwrap(), "force_generic_plan");
    assert_eq!(
        plan_cache_mode(&mut connection).unwrap(),
        "force_custom_plan"
    );
    let per_parameters = write_transaction(&mut connection, plan_cache_mode);
    assert_eq!(per_parameters.unwrap(), "force_custom_plan");
    let failed = write_transaction_planned(&mut connection, Plans::Cached, |connection| {
        assert_eq!(plan_cache_mode(connection)?, "force_generic_plan");
        Err::<(), _>(AppError::bad_field("work", "refused"))
    });
    assert!(failed.is_err());
    assert_eq!(
        plan_cache_mode(&mut connection).unwrap(),
        "force_custom_plan"
    );
}

/// PostgreSQL: the writes every withdrawal decision makes under the chain heads' locks (the ledger
/// and audit appends, alone or paired, the balance upsert, alone or led by riding writes) and its
/// stored response are prepared once per connection and reused: after two rounds each is one named statement of the session, where a
/// `sql_query` or a diesel `UPDATE` leaves none (it is parsed and planned on every call).
#[test]
#[cfg_attr(
    not(hashgate_postgres_tests),
    ignore = "PostgreSQL suite SKIPPED: HASHGATE_TEST_POSTGRES_URL is not set"
)]
fn postgres_keeps_the_decision_writes_prepared() {
    use diesel::RunQueryDsl;
    use hashgate::audit::{store as audit, Actor, NewAuditEntry};
    use hashgate::db::riding::RidingWrite;
    use hashgate::idempotency::store as idempotency;

    #[derive(diesel::QueryableByName)]
    struct Statement {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement: String,
    }
    let app = TestApp::spawn(hashgate::db::Backend::Postgres);
    let platform = app.token(Role::Platform, None, None);
    let user = app.create_user(&platform, "prepared");
    let actor = Actor::command_line();
    let mut connection = app.state_db.connection().unwrap();
    for round in 0..2 {
        write_transaction(&mut connection, |connection| {
            let key = format!("prepared-{round}");
            assert!(idempotency::reserve(connection, "test", &key, "hash")?);
            let adjustment = Transfer {
                kind: EntryKind::Adjustment,
                user_id: user.clone(),
                asset: "BTC".into(),
                amount: 1_000 + round,
                occurred_at: hashgate::db::now(),
                to_user: true,
                reason: Some("prepared statements".into()),
            };
            let entry = store::record(connection, adjustment, &actor)?;
            audit::append(
                connection,
                NewAuditEntry::new(actor.clone(), "test.prepared", "ledger", &key, None),
            )?;
            idempotency::StoreResponse::new("test", &key, 200, &entry.hash).execute(connection)?;
            // A withdrawal's hold and its audit entry, linked in one statement.
            let hold = Transfer {
                kind: EntryKind::WithdrawalHold,
                user_id: user.clone(),
                asset: "BTC".into(),
                amount: 100,
                occurred_at: hashgate::db::now(),
                to_user: false,
                reason: None,
            };
            let audited = NewAuditEntry::new(actor.clone(), "test.paired", "ledger", &key, None);
            let transaction_id = format!("paired-{round}");
            // A second key's response rides with the hold's balance update.
            let riding_key = format!("riding-{round}");
            assert!(idempotency::reserve(
                connection,
                "test",
                &riding_key,
                "hash"
            )?);
            let response = idempotency::StoreResponse::new("test", &riding_key, 201, "{}");
            let (held, audit_entry) = store::record_audited_as(
                connection,
                hold,
                &actor,
                transaction_id,
                audited,
                &[&response],
            )?;
            assert_eq!(held.transaction_id, format!("paired-{round}"));
            assert_eq!(held.seq, entry.seq + 1, "the hold follows the adjustment");
            assert_eq!(audit_entry.action, "test.paired");
            assert!(!held.hash.is_empty() && !audit_entry.hash.is_empty());
            Ok::<_, hashgate::error::AppError>(())
        })
        .unwrap();
    }
    let statements: Vec<String> = diesel::sql_query("SELECT statement FROM pg_prepared_statements")
        .load::<Statement>(&mut **connection)
        .unwrap()
        .into_iter()
        .map(|row| row.statement)
        .collect();
    let prepared = |starts: &str, contains: &str| {
        statements
            .iter()
            .filter(|text| text.starts_with(starts) && text.contains(contains))
            .count()
    };
    assert_eq!(
        prepared("WITH head AS", "INSERT INTO ledger_entries"),
        1,
        "{statements:#?}"
    );
    assert_eq!(
        prepared("WITH head AS", "INSERT INTO audit_log"),
        1,
        "{statements:#?}"
    );
    assert_eq!(
        prepared("WITH heads AS", "INSERT INTO audit_log"),
        1,
        "{statements:#?}"
    );
    assert_eq!(
        prepared("INSERT INTO balances", "unnest"),
        1,
        "{statements:#?}"
    );
    assert_eq!(
        prepared(
            "WITH riding_0 AS (UPDATE idempotency_keys",
            ") INSERT INTO balances"
        ),
        1,
        "{statements:#?}"
    );
    assert_eq!(
        prepared("UPDATE idempotency_keys", ""),
        1,
        "{statements:#?}"
    );
    // The entries are linked and the balance is both rounds' credit.
    let verified = app.command(&["verify"]);
    assert!(verified.status.success(), "{verified:?}");
    let balance = app.query_text(&format!(
        "SELECT CAST(atoms AS TEXT) AS value FROM balances \
         WHERE account = 'user:{user}:available' AND asset = 'BTC'"
    ));
    assert_eq!(balance, ["1801"], "both rounds' credit less both holds");
    let riding_responses = app.query_text(
        "SELECT CAST(count(*) AS TEXT) AS value FROM idempotency_keys \
         WHERE idempotency_key LIKE 'riding-%' AND status_code = 201 AND response_body = '{}'",
    );
    assert_eq!(riding_responses, ["2"], "each riding response is stored");
}
