//! Monitoring and review on the real service: the address book and its cooling-off, officers'
//! review of held withdrawals (four eyes, ledger settle and release, e-mail and webhook), rule and
//! screening hits as alerts worked in cases, the daily batch, and signed webhooks delivered to a
//! real HTTP receiver with a retry.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hashgate::auth::Role;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::common::{TestApp, TEST_BODY_LIMIT};
use crate::withdrawals::{
    balance, btc, btc_with_beneficiary, decision, setup, verified_user, withdraw, Setup, ADDRESS,
};

backend_tests!(
    the_address_book_guards_against_hijacked_payouts,
    officers_release_or_reject_held_withdrawals_with_four_eyes_above_the_amount,
    rule_and_screening_hits_become_alerts_that_officers_work_in_cases,
    the_daily_batch_judges_withdrawals_again_under_the_current_rules,
    the_daily_batch_judges_each_withdrawal_on_the_balance_before_its_hold,
    officers_work_alerts_cases_and_held_withdrawals_in_the_console,
);

/// BIP-173's mainnet P2WPKH example and a P2PKH address: valid, on no list.
const NEW_ADDRESS: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
const UNLISTED_ADDRESS: &str = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2";

fn templates_for(app: &TestApp, related_id: &str) -> Vec<String> {
    app.query_text(&format!(
        "SELECT template AS value FROM email_outbox WHERE related_id = '{related_id}' ORDER BY created_at"
    ))
}

fn the_address_book_guards_against_hijacked_payouts(app: &TestApp) {
    let setup = setup(app);
    let user = verified_user(app, &setup, "1");
    let added = app.post(
        &format!("/v1/users/{user}/addresses"),
        Some(&setup.platform),
        &json!({"network": "bitcoin", "address": NEW_ADDRESS}),
    );
    assert_eq!(added.status, 201, "{}", added.body);
    let entry = added.json();
    let entry_id = entry["id"].as_str().unwrap().to_string();
    // Hong Kong's cooling-off is 48 hours.
    let added_at = chrono::NaiveDateTime::parse_from_str(
        entry["added_at"].as_str().unwrap(),
        "%Y-%m-%dT%H:%M:%S%.fZ",
    )
    .unwrap();
    let usable_from = chrono::NaiveDateTime::parse_from_str(
        entry["usable_from"].as_str().unwrap(),
        "%Y-%m-%dT%H:%M:%S%.fZ",
    )
    .unwrap();
    assert_eq!(usable_from - added_at, chrono::Duration::hours(48));
    assert_eq!(templates_for(app, &entry_id), vec!["address_added"]);

    // Adding it again is the same entry.
    let again = app.post(
        &format!("/v1/users/{user}/addresses"),
        Some(&setup.platform),
        &json!({"network": "bitcoin", "address": NEW_ADDRESS}),
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["id"], entry_id.as_str());

    // Cooling off: refused until then; an address outside the book is refused (Hong Kong).
    assert_eq!(
        decision(&withdraw(app, &setup, btc(&user, "0.001", NEW_ADDRESS))),
        ("rejected".into(), vec!["address_cooling_off".into()])
    );
    assert_eq!(
        decision(&withdraw(
            app,
            &setup,
            btc(&user, "0.001", UNLISTED_ADDRESS)
        )),
        ("rejected".into(), vec!["address_not_in_book".into()])
    );
    assert_eq!(balance(app, &setup, &user).1, "0.00000000");

    // The user reads their own book; nobody else's.
    let own = app.token(Role::User, None, Some(&user));
    let book = app.get(&format!("/v1/users/{user}/addresses"), Some(&own));
    assert_eq!(book.status, 200, "{}", book.body);
    assert_eq!(book.json().as_array().unwrap().len(), 2);
    let stranger_id = app.create_user(&setup.platform, "stranger");
    let stranger = app.token(Role::User, None, Some(&stranger_id));
    app.get(&format!("/v1/users/{user}/addresses"), Some(&stranger))
        .problem(403);
    app.post(
        &format!("/v1/users/{user}/addresses"),
        Some(&stranger),
        &json!({"network": "bitcoin", "address": UNLISTED_ADDRESS}),
    )
    .problem(403);

    // Only officers waive the cooling-off, and with a reason.
    let approval = format!("/v1/users/{user}/addresses/{entry_id}/approval");
    app.post(
        &approval,
        Some(&setup.platform),
        &json!({"reason": "asked"}),
    )
    .problem(403);
    let fields = app
        .post(&approval, Some(&setup.officer), &json!({"reason": ""}))
        .problem_fields(422);
    assert_eq!(fields, vec!["reason"]);
    let approved = app.post(
        &approval,
        Some(&setup.officer),
        &json!({"reason": "the user confirmed by video call"}),
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(
        decision(&withdraw(app, &setup, btc(&user, "0.001", NEW_ADDRESS))).0,
        "approved"
    );

    // Removal (by the user) is e-mailed, and the address is outside the book again.
    let removed = app.request(
        "DELETE",
        &format!("/v1/users/{user}/addresses/{entry_id}"),
        Some(&own),
        None,
        &[],
    );
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(
        templates_for(app, &entry_id),
        vec!["address_added", "address_removed"]
    );
    assert_eq!(
        decision(&withdraw(app, &setup, btc(&user, "0.001", NEW_ADDRESS))),
        ("rejected".into(), vec!["address_not_in_book".into()])
    );

    // Bad addresses are refused by field; each change is audited.
    let bad = app.post(
        &format!("/v1/users/{user}/addresses"),
        Some(&setup.platform),
        &json!({"network": "bitcoin", "address": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5"}),
    );
    assert_eq!(bad.problem_fields(422), vec!["address"]);
    let bad = app.post(
        &format!("/v1/users/{user}/addresses"),
        Some(&setup.platform),
        &json!({"network": "dogecoin", "address": UNLISTED_ADDRESS}),
    );
    assert_eq!(bad.problem_fields(422), vec!["network"]);
    let audited = app.query_text(&format!(
        "SELECT action AS value FROM audit_log WHERE subject_id = '{entry_id}' ORDER BY seq"
    ));
    assert_eq!(
        audited,
        vec![
            "withdrawal_address.add",
            "withdrawal_address.approve",
            "withdrawal_address.remove"
        ]
    );
}

fn review(
    app: &TestApp,
    token: &str,
    id: &str,
    verdict: &str,
    reason: &str,
) -> crate::common::Response {
    app.post(
        &format!("/v1/withdrawals/{id}/{verdict}"),
        Some(token),
        &json!({ "reason": reason }),
    )
}

fn large_held(app: &TestApp, setup: &Setup, user: &str) -> String {
    // 0.2 BTC = 156,000 HKD: a large withdrawal (HK: from 120,000 HKD), above the 78,000 HKD
    // four-eyes amount.
    let body = btc_with_beneficiary(user, "0.2");
    let held = withdraw(app, setup, body);
    assert_eq!(
        decision(&held),
        ("held".into(), vec!["aml_rule:large-withdrawal".into()])
    );
    held.json()["id"].as_str().unwrap().to_string()
}

fn officers_release_or_reject_held_withdrawals_with_four_eyes_above_the_amount(app: &TestApp) {
    let setup = setup(app);
    let user = verified_user(app, &setup, "2");
    let second_officer = app.token(Role::Officer, None, None);
    let senior = app.token(Role::SeniorOfficer, None, None);
    let id = large_held(app, &setup, &user);
    assert_eq!(
        balance(app, &setup, &user),
        ("1.80000000".into(), "0.20000000".into())
    );
    let queue = app.get("/v1/withdrawals?status=held", Some(&setup.officer));
    assert_eq!(queue.status, 200, "{}", queue.body);
    assert!(queue
        .json()
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["id"] == id.as_str()));

    review(app, &setup.platform, &id, "release", "fine").problem(403);
    let first = review(
        app,
        &setup.officer,
        &id,
        "release",
        "source of funds is mining income",
    );
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json()["status"], "release_pending");
    assert_eq!(
        balance(app, &setup, &user).1,
        "0.20000000",
        "nothing settles on one approval"
    );
    review(app, &setup.officer, &id, "release", "again").problem(409);
    review(app, &second_officer, &id, "release", "agree").problem(403);
    let released = review(
        app,
        &senior,
        &id,
        "release",
        "agree: payouts match the orders",
    );
    assert_eq!(released.status, 200, "{}", released.body);
    let body = released.json();
    assert_eq!(body["status"], "released");
    assert_eq!(
        body["decision"], "held",
        "the gate's decision stays as it was"
    );
    assert!(body["review"]["ledger_seq"].as_i64().is_some());
    assert_eq!(
        balance(app, &setup, &user),
        ("1.80000000".into(), "0.00000000".into())
    );
    review(app, &senior, &id, "release", "twice").problem(409);
    assert_eq!(templates_for(app, &id), vec!["withdrawal_released"]);
    let events = app.query_text(&format!(
        "SELECT event AS value FROM webhook_outbox WHERE subject_id = '{id}'"
    ));
    assert_eq!(events, vec!["withdrawal.released"]);
    let settled = app.query_text(&format!(
        "SELECT kind AS value FROM ledger_entries WHERE user_id = '{user}' ORDER BY seq DESC LIMIT 1"
    ));
    assert_eq!(settled, vec!["withdrawal_settle"]);

    // Rejection returns the funds.
    let id = large_held(app, &setup, &user);
    let rejected = review(
        app,
        &setup.officer,
        &id,
        "reject",
        "could not verify the beneficiary",
    );
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    assert_eq!(rejected.json()["status"], "rejected");
    assert_eq!(
        balance(app, &setup, &user),
        ("1.80000000".into(), "0.00000000".into())
    );
    assert_eq!(templates_for(app, &id), vec!["withdrawal_rejected"]);
    let events = app.query_text(&format!(
        "SELECT event AS value FROM webhook_outbox WHERE subject_id = '{id}'"
    ));
    assert_eq!(events, vec!["withdrawal.rejected"]);
    review(app, &setup.officer, &id, "release", "changed my mind").problem(409);

    // Below the four-eyes amount one officer releases: three withdrawals of 7,800 HKD are
    // structuring, and the third is held.
    let small: Vec<_> = (0..3)
        .map(|_| withdraw(app, &setup, btc(&user, "0.01", ADDRESS)))
        .collect();
    assert_eq!(
        decision(&small[2]),
        ("held".into(), vec!["aml_rule:structuring".into()])
    );
    let id = small[2].json()["id"].as_str().unwrap().to_string();
    let released = review(
        app,
        &setup.officer,
        &id,
        "release",
        "one-off, explained by the user",
    );
    assert_eq!(released.status, 200, "{}", released.body);
    assert_eq!(released.json()["status"], "released");
    // The platform could not send it: the settlement made at release is reversed and the
    // funds return.
    let before = balance(app, &setup, &user);
    let failed = app.post_with(
        &format!("/v1/withdrawals/{id}/settlement"),
        Some(&setup.platform),
        &json!({"outcome": "failed", "reason": "destination wallet rejected the transfer"}),
        &[("Idempotency-Key", "failed-after-release")],
    );
    assert_eq!(failed.status, 200, "{}", failed.body);
    let available = |pair: (String, String)| pair.0.parse::<rust_decimal::Decimal>().unwrap();
    assert_eq!(
        available(balance(app, &setup, &user)) - available(before),
        rust_decimal::Decimal::new(1, 2)
    );

    let audited = app.query_text(
        "SELECT action AS value FROM audit_log WHERE action LIKE 'withdrawal.re%' AND action <> 'withdrawal.request' ORDER BY seq",
    );
    assert_eq!(
        audited,
        vec![
            "withdrawal.release_first_approval",
            "withdrawal.release",
            "withdrawal.reject",
            "withdrawal.release"
        ]
    );
    let verify = app.command(&["verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

fn rule_and_screening_hits_become_alerts_that_officers_work_in_cases(app: &TestApp) {
    let setup = setup(app);
    let user = verified_user(app, &setup, "1");
    for _ in 0..3 {
        withdraw(app, &setup, btc(&user, "0.01", ADDRESS));
    }
    large_held(app, &setup, &user);
    let alerts = app.get(&format!("/v1/alerts?user_id={user}"), Some(&setup.officer));
    assert_eq!(alerts.status, 200, "{}", alerts.body);
    let alerts = alerts.json();
    let rules: Vec<&str> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| alert["rule_id"].as_str().unwrap())
        .collect();
    // Each withdrawal is paid from the payout that arrived a minute before: rapid in-out, an
    // alert that does not change the decision.
    let (rapid, others): (Vec<&str>, Vec<&str>) =
        rules.iter().partition(|rule| **rule == "rapid-in-out");
    assert_eq!(rapid.len(), 4, "{rules:?}");
    assert_eq!(
        others,
        vec!["large-withdrawal", "structuring"],
        "newest first"
    );
    let rapid_alert = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|alert| alert["rule_id"] == "rapid-in-out")
        .unwrap();
    assert_eq!(rapid_alert["action"], "alert");
    assert_eq!(rapid_alert["severity"], "low");
    let structuring = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|alert| alert["rule_id"] == "structuring")
        .unwrap();
    assert_eq!(structuring["rule_version"], 1);
    assert_eq!(structuring["severity"], "high");
    assert_eq!(structuring["action"], "hold");
    assert_eq!(structuring["detected_by"], "withdrawal");
    assert_eq!(structuring["status"], "open");
    assert!(structuring["message"]
        .as_str()
        .unwrap()
        .contains("just under"));

    // A sanctions screening hit on the user is an alert too.
    let ofac = format!("{}/ofac", crate::screening::sanctions_dir());
    let imported = app.command(&[
        "lists",
        "import",
        "--source",
        "ofac-sdn",
        "--no-rescreen",
        &ofac,
    ]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let screened = app.post(
        "/v1/screening/person",
        Some(&setup.officer),
        &json!({"name": "Talal Muhammad Rashid Naji", "subject_ref": user}),
    );
    assert_eq!(screened.status, 200, "{}", screened.body);
    let screening_alerts = app
        .get(
            &format!("/v1/alerts?user_id={user}&status=open"),
            Some(&setup.officer),
        )
        .json();
    let screening_alert = screening_alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|alert| alert["origin"] == "screening")
        .cloned()
        .expect("a screening alert");
    assert!(screening_alert["message"]
        .as_str()
        .unwrap()
        .contains("ofac"));

    // Officers group the user's alerts into a case.
    let ids: Vec<String> = screening_alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| alert["id"].as_str().unwrap().to_string())
        .collect();
    let opened = app.post(
        "/v1/cases",
        Some(&setup.officer),
        &json!({"title": "Structuring below the travel-rule threshold", "alert_ids": ids}),
    );
    assert_eq!(opened.status, 201, "{}", opened.body);
    let case = opened.json();
    let case_id = case["id"].as_str().unwrap().to_string();
    assert_eq!(case["alerts"].as_array().unwrap().len(), ids.len());
    assert!(case["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["status"] == "in_case"));
    let again = app.post(
        "/v1/cases",
        Some(&setup.officer),
        &json!({"title": "Twice", "alert_ids": [ids[0]]}),
    );
    assert_eq!(again.problem_fields(422), vec!["alert_ids[0]"]);

    // An alert about another user does not belong in this case.
    let other = verified_user(app, &setup, "1");
    large_held(app, &setup, &other);
    let other_alert = app
        .get(&format!("/v1/alerts?user_id={other}"), Some(&setup.officer))
        .json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mixed = app.post(
        &format!("/v1/cases/{case_id}/alerts"),
        Some(&setup.officer),
        &json!({"alert_ids": [other_alert]}),
    );
    let problem = mixed.problem(422);
    assert!(problem.to_string().contains("other_user"), "{problem}");
    // Nor can a new case mix two users' alerts.
    withdraw(app, &setup, btc(&user, "0.01", ADDRESS));
    let fresh = app
        .get(
            &format!("/v1/alerts?user_id={user}&status=open"),
            Some(&setup.officer),
        )
        .json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mixed = app.post(
        "/v1/cases",
        Some(&setup.officer),
        &json!({"title": "Two users", "alert_ids": [fresh, other_alert]}),
    );
    assert_eq!(mixed.problem_fields(422), vec!["alert_ids[1]"]);

    // Notes and an evidence file (stored encrypted, read back as sent, the read audited).
    let note = app.post(
        &format!("/v1/cases/{case_id}/notes"),
        Some(&setup.officer),
        &json!({"body": "Called the user: says they split withdrawals to stay under limits."}),
    );
    assert_eq!(note.status, 201, "{}", note.body);
    let pdf = crate::kyc::tier2_documents()[2].2;
    let boundary = "evidence-boundary";
    let mut form = Vec::new();
    write!(
        form,
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\nContent-Type: application/json\r\n\r\n{}\r\n",
        json!({"body": "Bank statement supplied by the user"})
    )
    .unwrap();
    write!(
        form,
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"statement.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
    )
    .unwrap();
    form.extend_from_slice(pdf);
    write!(form, "\r\n--{boundary}--\r\n").unwrap();
    let evidence = app.request(
        "POST",
        &format!("/v1/cases/{case_id}/notes"),
        Some(&setup.officer),
        Some((&format!("multipart/form-data; boundary={boundary}"), form)),
        &[],
    );
    assert_eq!(evidence.status, 201, "{}", evidence.body);
    let evidence = evidence.json();
    assert_eq!(evidence["kind"], "evidence");
    assert_eq!(evidence["content_type"], "application/pdf");
    let note_id = evidence["id"].as_str().unwrap();
    let file = app.request(
        "GET",
        &format!("/v1/cases/{case_id}/notes/{note_id}/file"),
        Some(&setup.officer),
        None,
        &[],
    );
    assert_eq!(file.status, 200);
    assert_eq!(file.bytes, pdf);
    assert_eq!(
        file.header("digest").unwrap(),
        format!("sha-256={}", evidence["file_sha256"].as_str().unwrap())
    );
    assert!(app
        .execute_sql(&format!(
            "UPDATE case_notes SET body = 'changed' WHERE id = '{note_id}'"
        ))
        .is_err());

    // Closing with an outcome closes the alerts; a closed case takes nothing more.
    let closed = app.post(
        &format!("/v1/cases/{case_id}/close"),
        Some(&setup.officer),
        &json!({"outcome": "str_filed", "reason": "STR filed with the JFIU, reference 2026-1141"}),
    );
    assert_eq!(closed.status, 200, "{}", closed.body);
    let closed = closed.json();
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["outcome"], "str_filed");
    assert!(closed["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["status"] == "closed"));
    let kinds: Vec<&str> = closed["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|note| note["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["alerts_added", "note", "evidence", "closed"]);
    app.post(
        &format!("/v1/cases/{case_id}/close"),
        Some(&setup.officer),
        &json!({"outcome": "no_action", "reason": "again"}),
    )
    .problem(409);
    app.post(
        &format!("/v1/cases/{case_id}/notes"),
        Some(&setup.officer),
        &json!({"body": "late"}),
    )
    .problem(409);
    for (body, field) in [
        (
            json!({"outcome": "shrug", "reason": "no longer relevant"}),
            "outcome",
        ),
        (json!({"outcome": "no_action", "reason": "x"}), "reason"),
    ] {
        let bad = app.post(
            &format!("/v1/cases/{case_id}/close"),
            Some(&setup.officer),
            &body,
        );
        assert_eq!(bad.problem_fields(422), vec![field], "{body}");
    }

    // Only officers work alerts and cases.
    let own = app.token(Role::User, None, Some(&user));
    app.get("/v1/alerts", Some(&own)).problem(403);
    app.get(&format!("/v1/cases/{case_id}"), Some(&setup.platform))
        .problem(403);
    let audited = app.query_text(&format!(
        "SELECT action AS value FROM audit_log WHERE subject_id = '{case_id}' ORDER BY seq"
    ));
    assert_eq!(
        audited,
        vec![
            "case.open",
            "case.add_note",
            "case.add_note",
            "case.read_evidence",
            "case.close"
        ]
    );
}

fn the_daily_batch_judges_withdrawals_again_under_the_current_rules(app: &TestApp) {
    let setup = setup(app);
    let user = verified_user(app, &setup, "1");
    for _ in 0..2 {
        assert_eq!(
            decision(&withdraw(app, &setup, btc(&user, "0.01", ADDRESS))).0,
            "approved"
        );
    }
    let structuring_alerts = || {
        app.query_text(
            "SELECT CAST(COUNT(*) AS TEXT) AS value FROM alerts WHERE rule_id = 'structuring'",
        )[0]
        .parse::<usize>()
        .unwrap()
    };
    assert_eq!(structuring_alerts(), 0);

    // Today's run under the rules in force finds nothing new.
    let admin = app.token(Role::Admin, None, None);
    let today = chrono::Utc::now().date_naive().to_string();
    app.post(
        "/v1/monitoring/batch",
        Some(&setup.officer),
        &json!({ "date": today }),
    )
    .problem(403);
    let run = app.post(
        "/v1/monitoring/batch",
        Some(&admin),
        &json!({ "date": today }),
    );
    assert_eq!(run.status, 200, "{}", run.body);
    assert_eq!(run.json()["withdrawals"], 2);
    assert_eq!(run.json()["new_alerts"], 0);

    // Tightened: structuring from two withdrawals (version 2). The batch flags the second
    // withdrawal, once however often it runs.
    let tightened = jurisdictions_with_hk_edits(&[
        (
            "id = \"structuring\"\nversion = 1",
            "id = \"structuring\"\nversion = 2",
        ),
        ("min_count = 3", "min_count = 2"),
    ]);
    let start = chrono::Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let window = (start, start + chrono::Duration::days(1));
    let summary =
        hashgate::aml::monitoring::batch::run(&app.state_db, &tightened, window.0, window.1)
            .unwrap();
    assert_eq!((summary.withdrawals, summary.new_alerts), (2, 1));
    let again =
        hashgate::aml::monitoring::batch::run(&app.state_db, &tightened, window.0, window.1)
            .unwrap();
    assert_eq!(again.new_alerts, 0);
    assert_eq!(structuring_alerts(), 1);
    let alerts = app
        .get(&format!("/v1/alerts?user_id={user}"), Some(&setup.officer))
        .json();
    let alert = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|alert| alert["rule_id"] == "structuring")
        .unwrap();
    assert_eq!(alert["rule_version"], 2);
    assert_eq!(alert["detected_by"], "daily_batch");
}

/// The shipped jurisdictions, with Hong Kong's file edited by `edits` (text replacements).
fn jurisdictions_with_hk_edits(edits: &[(&str, &str)]) -> hashgate::jurisdiction::Jurisdictions {
    let directory = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jurisdictions");
    std::fs::create_dir(directory.path().join("lists")).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let mut text = std::fs::read_to_string(&path).unwrap();
            if path.ends_with("HK.toml") {
                for (from, to) in edits {
                    assert!(text.contains(from), "HK.toml has no `{from}`");
                    text = text.replace(from, to);
                }
            }
            std::fs::write(directory.path().join(path.file_name().unwrap()), text).unwrap();
        }
    }
    std::fs::copy(
        source.join("lists/fatf.toml"),
        directory.path().join("lists/fatf.toml"),
    )
    .unwrap();
    hashgate::jurisdiction::Jurisdictions::load(directory.path()).unwrap()
}

fn the_daily_batch_judges_each_withdrawal_on_the_balance_before_its_hold(app: &TestApp) {
    let setup = setup(app);
    // 0.05 BTC paid a minute ago (fresh), and 0.10 BTC two days ago (old).
    let user = verified_user(app, &setup, "0.05");
    let two_days_ago = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    let old = app.post(
        "/v1/payouts",
        Some(&setup.platform),
        &json!({"payouts": [{
            "user_id": user, "asset": "BTC", "amount": "0.1", "occurred_at": two_days_ago,
            "order_id": "order-1", "facility_id": "qc-montreal-1", "external_id": "old-payout"
        }]}),
    );
    assert_eq!(old.status, 200, "{}", old.body);
    let send = |amount: &str| {
        let body = btc_with_beneficiary(&user, amount);
        let response = withdraw(app, &setup, body);
        assert_eq!(decision(&response), ("approved".into(), vec![]));
        response.json()["id"].as_str().unwrap().to_string()
    };
    // The old 0.10 covers the first 0.04 of 0.15: nothing fresh is spent.
    send("0.04");
    // The second 0.09 of the 0.11 left spends 0.03 of the fresh payout: a third, under 90 %.
    let second = send("0.09");
    // At 30 % the batch flags the second only. Judged on what is left now (0.02 BTC), both
    // would look mostly fresh.
    let tightened = jurisdictions_with_hk_edits(&[
        (
            "id = \"rapid-in-out\"\nversion = 1",
            "id = \"rapid-in-out\"\nversion = 2",
        ),
        ("min_share_percent = \"90\"", "min_share_percent = \"30\""),
    ]);
    let now = chrono::Utc::now().naive_utc();
    let summary = hashgate::aml::monitoring::batch::run(
        &app.state_db,
        &tightened,
        now - chrono::Duration::days(1),
        now + chrono::Duration::days(1),
    )
    .unwrap();
    assert_eq!((summary.withdrawals, summary.new_alerts), (2, 1));
    let flagged = app.query_text(
        "SELECT withdrawal_id AS value FROM alerts WHERE rule_id = 'rapid-in-out' AND rule_version = 2",
    );
    assert_eq!(flagged, vec![second]);
}

/// A received request: lower-cased header names with values, and the body.
pub type Received = (Vec<(String, String)>, String);

/// A platform webhook endpoint on loopback, keeping each request's headers and body.
pub struct Receiver {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Answers 200, or with `fail_first` the first request 500 and later ones 200.
    pub fn start(fail_first: bool) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/hashgate", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<Received>>> = Arc::default();
        let kept = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = Vec::new();
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                loop {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    let trimmed = line.trim_end();
                    if trimmed.is_empty() {
                        break;
                    }
                    let (name, value) = trimmed.split_once(':').unwrap();
                    headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
                }
                let length: usize = headers
                    .iter()
                    .find(|(name, _)| name == "content-length")
                    .map(|(_, value)| value.parse().unwrap())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let first = {
                    let mut all = kept.lock().unwrap();
                    all.push((headers, String::from_utf8(body).unwrap()));
                    all.len() == 1
                };
                let status = if first && fail_first {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver { url, requests }
    }
}

#[test]
fn sqlite_webhooks_are_signed_and_retried_until_the_platform_takes_them() {
    let receiver = Receiver::start(true);
    let secret = "whsec-test-0123456789abcdef0123456789";
    let app = TestApp::spawn_with(
        hashgate::db::Backend::Sqlite,
        TEST_BODY_LIMIT,
        &[
            ("HASHGATE_WEBHOOK_URL", receiver.url.clone()),
            ("HASHGATE_WEBHOOK_SECRET", secret.to_string()),
        ],
    );
    let setup = setup(&app);
    let user = verified_user(&app, &setup, "1");
    let id = large_held(&app, &setup, &user);
    assert_eq!(
        review(
            &app,
            &setup.officer,
            &id,
            "reject",
            "unverifiable beneficiary"
        )
        .status,
        200
    );
    // The first attempt gets a 500; the retry (after 5 s) is taken.
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.requests.lock().unwrap().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let requests = receiver.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "one failure and one retry: {requests:?}");
    let header = |index: usize, name: &str| {
        requests[index]
            .0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        header(0, "hashgate-delivery"),
        header(1, "hashgate-delivery")
    );
    assert_eq!(header(1, "hashgate-event"), "withdrawal.rejected");
    let body = &requests[1].1;
    let signature = header(1, "hashgate-signature");
    let timestamp: i64 = signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        signature,
        hashgate::notify::webhooks::signature(secret, timestamp, body).unwrap()
    );
    assert_ne!(
        signature,
        hashgate::notify::webhooks::signature("another secret of enough length!!", timestamp, body)
            .unwrap()
    );
    let payload: Value = serde_json::from_str(body).unwrap();
    assert_eq!(payload["type"], "withdrawal.rejected");
    assert_eq!(payload["data"]["withdrawal_id"], id.as_str());
    assert_eq!(payload["data"]["status"], "rejected");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let row = app.query_text(&format!(
            "SELECT status || ':' || CAST(attempts AS TEXT) AS value FROM webhook_outbox WHERE subject_id = '{id}'"
        ));
        if row == vec!["delivered:2"] || Instant::now() > deadline {
            assert_eq!(row, vec!["delivered:2"]);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A logged-in console session over plain HTTP, redirects not followed.
struct Console<'a> {
    app: &'a TestApp,
    agent: ureq::Agent,
    session: String,
}

impl<'a> Console<'a> {
    fn login(app: &'a TestApp, token: &str) -> Console<'a> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let page = agent
            .get(&format!("{}/console/login", app.base))
            .call()
            .unwrap();
        let cookie = |response: &ureq::http::Response<ureq::Body>, name: &str| {
            response
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .find(|value| value.starts_with(&format!("{name}=")))
                .map(|value| value.split(';').next().unwrap()[name.len() + 1..].to_string())
                .unwrap()
        };
        let login_csrf = cookie(&page, "hg_login_csrf");
        let response = agent
            .post(&format!("{}/console/login", app.base))
            .header("Cookie", &format!("hg_login_csrf={login_csrf}"))
            .content_type("application/x-www-form-urlencoded")
            .send(
                serde_urlencoded::to_string([("csrf", login_csrf.as_str()), ("token", token)])
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(response.status().as_u16(), 303);
        let session = cookie(&response, "hg_session");
        Console {
            app,
            agent,
            session,
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut response = self
            .agent
            .get(&format!("{}{path}", self.app.base))
            .header("Cookie", &format!("hg_session={}", self.session))
            .call()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }

    /// Posts a form with the CSRF token found on `from`; returns the status and the Location.
    fn post(&self, from: &str, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let (_, page) = self.get(from);
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        let mut pairs = vec![("csrf", csrf.as_str())];
        pairs.extend_from_slice(fields);
        self.post_raw(path, &serde_urlencoded::to_string(&pairs).unwrap())
    }

    fn post_raw(&self, path: &str, form: &str) -> (u16, String) {
        let response = self
            .agent
            .post(&format!("{}{path}", self.app.base))
            .header("Cookie", &format!("hg_session={}", self.session))
            .content_type("application/x-www-form-urlencoded")
            .send(form.to_string())
            .unwrap();
        let location = response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (response.status().as_u16(), location)
    }
}

fn officers_work_alerts_cases_and_held_withdrawals_in_the_console(app: &TestApp) {
    let setup = setup(app);
    let user = verified_user(app, &setup, "1");
    let held = large_held(app, &setup, &user);
    let console = Console::login(app, &setup.officer);

    let (status, alerts) = console.get("/console/alerts");
    assert_eq!(status, 200);
    assert!(alerts.contains("large-withdrawal v1"), "{alerts}");
    let open_ids: Vec<String> = app
        .get(
            &format!("/v1/alerts?user_id={user}&status=open"),
            Some(&setup.officer),
        )
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| alert["id"].as_str().unwrap().to_string())
        .collect();
    let mut fields = vec![("title", "Large withdrawal right after payouts")];
    fields.extend(open_ids.iter().map(|id| ("alert_id", id.as_str())));
    let (status, location) = console.post("/console/alerts", "/console/cases", &fields);
    assert_eq!(status, 303, "{location}");
    assert!(location.starts_with("/console/cases/"), "{location}");
    let case_path = location.split('?').next().unwrap().to_string();
    let (_, case_page) = console.get(&case_path);
    assert!(case_page.contains("Large withdrawal right after payouts"));
    let (status, _) = console.post(
        &case_path,
        &format!("{case_path}/notes"),
        &[("body", "Mining income matches the rented hashrate.")],
    );
    assert_eq!(status, 303);
    let (status, location) = console.post(
        &case_path,
        &format!("{case_path}/close"),
        &[
            ("outcome", "no_action"),
            ("reason", "explained by the payouts"),
        ],
    );
    assert_eq!(status, 303);
    assert!(location.contains("notice="), "{location}");
    let (_, closed) = console.get(&case_path);
    assert!(closed.contains("Mining income matches"), "{closed}");
    assert!(closed.contains("no action"), "{closed}");

    // The held queue: a forged form changes nothing; a real one rejects.
    let (_, queue) = console.get("/console/withdrawals");
    assert!(queue.contains(&held), "{queue}");
    let review_path = format!("/console/withdrawals/{held}/review");
    let (status, _) = console.post_raw(&review_path, "verdict=reject&reason=forged");
    assert_eq!(status, 403);
    let (status, location) = console.post(
        "/console/withdrawals",
        &review_path,
        &[
            ("verdict", "reject"),
            ("reason", "beneficiary could not be verified"),
        ],
    );
    assert_eq!(status, 303);
    assert!(location.contains("rejected"), "{location}");
    let read = app.get(&format!("/v1/withdrawals/{held}"), Some(&setup.platform));
    assert_eq!(read.json()["status"], "rejected");

    // The user's 360° view.
    let (status, view) = console.get(&format!("/console/users/{user}"));
    assert_eq!(status, 200);
    for expected in [
        "KYC tier <strong>2</strong>",
        "Balances",
        ADDRESS,
        "large-withdrawal",
        "Large withdrawal right after payouts",
        "withdrawal_release",
    ] {
        assert!(view.contains(expected), "{expected} missing from {view}");
    }
}
