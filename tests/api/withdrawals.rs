//! The withdrawal gate on the real service: decisions with their reasons, money moved to
//! "withdrawal in flight" only for approved and held requests, idempotent retries, refused input,
//! and 200 simultaneous requests against a balance that covers 50.

use hashgate::auth::Role;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::common::{Response, TestApp};
use crate::kyc::{multipart, personal_data, tier2_documents};

backend_tests!(
    decisions_carry_every_reason_and_move_money_only_when_allowed,
    a_retry_returns_the_same_decision_and_moves_no_money,
    bad_requests_are_refused_and_write_nothing,
    two_hundred_simultaneous_withdrawals_never_overdraw,
    the_platform_reports_each_withdrawal_on_chain,
);

/// Bitcoin addresses for tests: real mainnet formats, not on any list.
pub const ADDRESS: &str = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";
const LISTED_ADDRESS: &str = "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h";

pub struct Setup {
    pub platform: String,
    pub officer: String,
}

pub fn setup(app: &TestApp) -> Setup {
    let platform = app.token(Role::Platform, None, None);
    let officer = app.token(Role::Officer, None, None);
    // BTC at 100,000 USD, 7.8 HKD to the dollar: 0.01 BTC is 7,800 HKD.
    let as_of = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let prices = app.post(
        "/v1/prices",
        Some(&platform),
        &json!({"source": "test", "rates": [
            {"base": "BTC", "quote": "USD", "as_of": as_of, "rate": "100000"},
            {"base": "USD", "quote": "HKD", "as_of": as_of, "rate": "7.8"}
        ]}),
    );
    assert_eq!(prices.status, 200, "{}", prices.body);
    Setup { platform, officer }
}

/// A Hong Kong user approved for tier 2 (single 400,000, daily 800,000 HKD), paid `btc`.
pub fn verified_user(app: &TestApp, setup: &Setup, btc: &str) -> String {
    let user_id = app.create_user(
        &setup.platform,
        &format!("w-{}", uuid::Uuid::new_v4().simple()),
    );
    let (content_type, body) = multipart(
        &json!({ "user_id": user_id, "target_tier": 2, "personal_data": personal_data("Ada Lovelace", "GB", "HK") }),
        &tier2_documents(),
    );
    let submitted = app.request(
        "POST",
        "/v1/kyc/applications",
        Some(&setup.platform),
        Some((&content_type, body)),
        &[],
    );
    assert_eq!(submitted.status, 201, "{}", submitted.body);
    let id = submitted.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.post(
            &format!("/v1/kyc/applications/{id}/claim"),
            Some(&setup.officer),
            &json!({})
        )
        .status,
        200
    );
    let approved = app.post(
        &format!("/v1/kyc/applications/{id}/decision"),
        Some(&setup.officer),
        &json!({"decision": "approve", "reason": "verified"}),
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    fund(app, setup, &user_id, btc);
    book(app, setup, &user_id, "bitcoin", ADDRESS);
    user_id
}

/// Puts an address in the user's book and has an officer waive the cooling-off period.
pub fn book(app: &TestApp, setup: &Setup, user_id: &str, network: &str, address: &str) -> String {
    let added = app.post(
        &format!("/v1/users/{user_id}/addresses"),
        Some(&setup.platform),
        &json!({"network": network, "address": address, "label": "own wallet"}),
    );
    assert!(added.status == 201 || added.status == 200, "{}", added.body);
    let id = added.json()["id"].as_str().unwrap().to_string();
    let approved = app.post(
        &format!("/v1/users/{user_id}/addresses/{id}/approval"),
        Some(&setup.officer),
        &json!({"reason": "called the user back on the number on file"}),
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    id
}

pub fn fund(app: &TestApp, setup: &Setup, user_id: &str, btc: &str) {
    let occurred_at = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let paid = app.post(
        "/v1/payouts",
        Some(&setup.platform),
        &json!({"payouts": [{
            "user_id": user_id, "asset": "BTC", "amount": btc, "occurred_at": occurred_at,
            "order_id": "order-1", "facility_id": "qc-montreal-1",
            "external_id": format!("fund-{}", uuid::Uuid::new_v4().simple())
        }]}),
    );
    assert_eq!(paid.status, 200, "{}", paid.body);
}

pub fn withdraw(app: &TestApp, setup: &Setup, body: Value) -> Response {
    let key = uuid::Uuid::new_v4().to_string();
    app.post_with(
        "/v1/withdrawals",
        Some(&setup.platform),
        &body,
        &[("Idempotency-Key", &key)],
    )
}

/// A BTC withdrawal to the booked address with the beneficiary data the travel rule asks for at
/// or above its threshold.
pub fn btc_with_beneficiary(user_id: &str, amount: &str) -> Value {
    let mut body = btc(user_id, amount, ADDRESS);
    body["beneficiary"] = beneficiary();
    body
}

pub fn btc(user_id: &str, amount: &str, address: &str) -> Value {
    json!({"user_id": user_id, "asset": "BTC", "amount": amount, "network": "bitcoin", "address": address})
}

/// (decision, reason codes) of a 201 answer.
pub fn decision(response: &Response) -> (String, Vec<String>) {
    assert_eq!(response.status, 201, "{}", response.body);
    let body = response.json();
    let codes = body["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reason| reason["code"].as_str().unwrap().to_string())
        .collect();
    (body["decision"].as_str().unwrap().to_string(), codes)
}

/// (available, held) BTC of a user.
pub fn balance(app: &TestApp, setup: &Setup, user_id: &str) -> (String, String) {
    let balances = app
        .get(
            &format!("/v1/users/{user_id}/balances"),
            Some(&setup.officer),
        )
        .json();
    let btc = balances["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == "BTC")
        .cloned()
        .unwrap_or(json!({"available": "0", "held": "0"}));
    (
        btc["available"].as_str().unwrap().to_string(),
        btc["held"].as_str().unwrap().to_string(),
    )
}

pub fn beneficiary() -> Value {
    json!({"name": "Grace Hopper", "wallet": "hosted", "vasp_name": "Example Exchange Ltd", "country": "SG"})
}

fn decisions_carry_every_reason_and_move_money_only_when_allowed(app: &TestApp) {
    let setup = setup(app);
    let user = verified_user(app, &setup, "2");

    // 0.01 BTC = 7,800 HKD: under every limit and the 8,000 HKD travel-rule threshold.
    let approved = withdraw(app, &setup, btc(&user, "0.01", ADDRESS));
    assert_eq!(decision(&approved), ("approved".into(), vec![]));
    assert_eq!(approved.json()["amount_local"], "7800.00");
    assert_eq!(approved.json()["currency"], "HKD");
    assert_eq!(
        balance(app, &setup, &user),
        ("1.99000000".into(), "0.01000000".into())
    );

    // 0.0103 BTC = 8,034 HKD: the travel rule applies, and without beneficiary data it is refused.
    let missing = withdraw(app, &setup, btc(&user, "0.0103", ADDRESS));
    assert_eq!(
        decision(&missing),
        ("rejected".into(), vec!["travel_rule_data_missing".into()])
    );
    let with_data = btc_with_beneficiary(&user, "0.0103");
    assert_eq!(decision(&withdraw(app, &setup, with_data)).0, "approved");

    // 0.52 BTC = 405,600 HKD: over tier 2's single limit of 400,000 HKD; 0.51 is not, but at
    // 397,800 HKD it is a large withdrawal (HK rule: at least 120,000 HKD), held for an officer.
    let over = btc_with_beneficiary(&user, "0.52");
    assert_eq!(
        decision(&withdraw(app, &setup, over)),
        (
            "rejected".into(),
            vec![
                "single_limit_exceeded".into(),
                "aml_rule:large-withdrawal".into()
            ]
        )
    );
    let under = btc_with_beneficiary(&user, "0.51");
    let held = withdraw(app, &setup, under);
    assert_eq!(
        decision(&held),
        ("held".into(), vec!["aml_rule:large-withdrawal".into()])
    );
    assert_eq!(held.json()["status"], "held");

    // More than is left: refused, and nothing moves.
    let before = balance(app, &setup, &user);
    let too_much = btc_with_beneficiary(&user, "1.5");
    let (verdict, codes) = decision(&withdraw(app, &setup, too_much));
    assert_eq!(verdict, "rejected");
    assert!(
        codes.contains(&"insufficient_balance".to_string()),
        "{codes:?}"
    );
    assert_eq!(balance(app, &setup, &user), before);

    // Today's approved and held withdrawals count against the daily limit of 800,000 HKD, the
    // refused ones do not: 7,800 + 8,034 + 397,800 = 413,634 HKD so far.
    let over_the_day = btc_with_beneficiary(&user, "0.5");
    assert_eq!(
        decision(&withdraw(app, &setup, over_the_day)),
        (
            "rejected".into(),
            vec![
                "daily_limit_exceeded".into(),
                "aml_rule:large-withdrawal".into()
            ]
        ),
        "390,000 HKD more is 803,634 HKD in the day"
    );
    let within_the_day = btc_with_beneficiary(&user, "0.49");
    assert_eq!(
        decision(&withdraw(app, &setup, within_the_day)),
        ("held".into(), vec!["aml_rule:large-withdrawal".into()]),
        "382,200 HKD more is 795,834 HKD in the day"
    );

    // A user without KYC cannot withdraw at all.
    let unverified = app.create_user(&setup.platform, "w-unverified");
    fund(app, &setup, &unverified, "1");
    book(app, &setup, &unverified, "bitcoin", ADDRESS);
    assert_eq!(
        decision(&withdraw(app, &setup, btc(&unverified, "0.001", ADDRESS))),
        ("rejected".into(), vec!["kyc_tier_insufficient".into()])
    );

    // Without a USDT price the limits cannot be counted: held for an officer.
    book(
        app,
        &setup,
        &user,
        "tron",
        "TBHTJqAy4DhHhmT3dNceJYNRz4SdLofLre",
    );
    let usdt = json!({"user_id": user, "asset": "USDT", "amount": "10", "network": "tron",
                      "address": "TBHTJqAy4DhHhmT3dNceJYNRz4SdLofLre"});
    let (verdict, codes) = decision(&withdraw(app, &setup, usdt));
    assert_eq!(verdict, "rejected", "no USDT balance either");
    assert_eq!(codes, vec!["valuation_unavailable", "insufficient_balance"]);

    // A sanctioned destination.
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
    // A sanctioned destination (never booked: Hong Kong rejects unlisted addresses too).
    assert_eq!(
        decision(&withdraw(app, &setup, btc(&user, "0.001", LISTED_ADDRESS))),
        (
            "rejected".into(),
            vec!["sanctioned_address".into(), "address_not_in_book".into()]
        )
    );

    // Every decision is stored with its reasons, readable by id, and audited.
    let id = approved.json()["id"].as_str().unwrap().to_string();
    let read = app.get(&format!("/v1/withdrawals/{id}"), Some(&setup.platform));
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), approved.json());
    let audited =
        app.query_text("SELECT action AS value FROM audit_log WHERE action = 'withdrawal.request'");
    assert_eq!(audited.len(), 11);
    let user_token = app.token(Role::User, None, Some(&user));
    app.get(&format!("/v1/withdrawals/{id}"), Some(&user_token))
        .problem(403);
}

fn a_retry_returns_the_same_decision_and_moves_no_money(app: &TestApp) {
    let setup = setup(app);
    let user = verified_user(app, &setup, "1");
    let body = btc(&user, "0.01", ADDRESS);
    let key = [("Idempotency-Key", "withdraw-7")];
    let first = app.post_with("/v1/withdrawals", Some(&setup.platform), &body, &key);
    let second = app.post_with("/v1/withdrawals", Some(&setup.platform), &body, &key);
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(second.status, 201);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.json(), second.json());
    assert_eq!(
        balance(app, &setup, &user),
        ("0.99000000".into(), "0.01000000".into())
    );
    let stored = app.query_text("SELECT id AS value FROM withdrawals");
    assert_eq!(stored.len(), 1);
    // The same key with another body is a conflict.
    let other = app.post_with(
        "/v1/withdrawals",
        Some(&setup.platform),
        &btc(&user, "0.02", ADDRESS),
        &key,
    );
    other.problem(409);
}

fn bad_requests_are_refused_and_write_nothing(app: &TestApp) {
    let setup = setup(app);
    let user = verified_user(app, &setup, "1");
    let entries = app.query_text("SELECT CAST(COUNT(*) AS TEXT) AS value FROM ledger_entries");
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            btc(&user, "0.01", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdr"),
            422,
            "address",
        ),
        (
            btc(&user, "0.01", "0x7F367cC41522cE07553e823bf3be79A889DEbe1B"),
            422,
            "address",
        ),
        (
            json!({"user_id": user, "asset": "BTC", "amount": "0.01", "network": "tron", "address": "TBHTJqAy4DhHhmT3dNceJYNRz4SdLofLre"}),
            422,
            "network",
        ),
        (btc(&user, "0.000000001", ADDRESS), 422, "amount"),
        (btc(&user, "-1", ADDRESS), 422, "amount"),
        (
            btc("00000000-0000-0000-0000-000000000000", "0.01", ADDRESS),
            422,
            "user_id",
        ),
        (
            json!({"user_id": user, "asset": "DOGE", "amount": "1", "network": "bitcoin", "address": ADDRESS}),
            422,
            "network",
        ),
    ];
    for (body, status, field) in cases {
        let response = withdraw(app, &setup, body.clone());
        let fields = response.problem_fields(status);
        let named = fields.iter().any(|f| f == field)
            || response.json()["detail"]
                .as_str()
                .unwrap_or("")
                .contains(field);
        assert!(named, "{body}: {}", response.body);
    }
    // Without an Idempotency-Key.
    let response = app.post(
        "/v1/withdrawals",
        Some(&setup.platform),
        &btc(&user, "0.01", ADDRESS),
    );
    let problem = response.problem(400);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{problem}"
    );
    // Only the platform asks.
    let officer = app.post_with(
        "/v1/withdrawals",
        Some(&setup.officer),
        &btc(&user, "0.01", ADDRESS),
        &[("Idempotency-Key", "k-1")],
    );
    officer.problem(403);
    assert!(app
        .query_text("SELECT id AS value FROM withdrawals")
        .is_empty());
    assert_eq!(
        app.query_text("SELECT CAST(COUNT(*) AS TEXT) AS value FROM ledger_entries"),
        entries
    );
}

fn two_hundred_simultaneous_withdrawals_never_overdraw(app: &TestApp) {
    let setup = setup(app);
    // 0.5 BTC covers 50 withdrawals of 0.01 (7,800 HKD each, 390,000 HKD in all: within limits).
    let user = verified_user(app, &setup, "0.5");
    let barrier = std::sync::Barrier::new(200);
    let outcomes: Vec<(String, Vec<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..200)
            .map(|_| {
                let barrier = &barrier;
                let setup = &setup;
                let user = &user;
                scope.spawn(move || {
                    barrier.wait();
                    decision(&withdraw(app, setup, btc(user, "0.01", ADDRESS)))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    // 7,800 HKD each is just under the 8,000 HKD travel-rule threshold: from the third, the
    // structuring rule holds them for an officer (held funds are debited all the same).
    let approved = outcomes.iter().filter(|(d, _)| d == "approved").count();
    let held: Vec<_> = outcomes.iter().filter(|(d, _)| d == "held").collect();
    let rejected: Vec<_> = outcomes.iter().filter(|(d, _)| d == "rejected").collect();
    assert_eq!(approved + held.len(), 50);
    assert_eq!(approved, 2, "the first two are not yet structuring");
    assert!(held
        .iter()
        .all(|(_, codes)| codes == &vec!["aml_rule:structuring".to_string()]));
    assert_eq!(rejected.len(), 150);
    assert!(
        rejected.iter().all(|(_, codes)| codes
            == &vec![
                "insufficient_balance".to_string(),
                "aml_rule:structuring".to_string()
            ]),
        "{rejected:?}"
    );
    assert_eq!(
        balance(app, &setup, &user),
        ("0.00000000".into(), "0.50000000".into())
    );
    let negative = app.query_text(
        "SELECT account AS value FROM balances WHERE atoms < 0 AND account LIKE 'user:%'",
    );
    assert!(negative.is_empty(), "{negative:?}");
    let verify = app.command(&["verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

fn settle(app: &TestApp, setup: &Setup, id: &str, body: Value, key: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = key
        .map(|key| ("Idempotency-Key", key))
        .into_iter()
        .collect();
    app.post_with(
        &format!("/v1/withdrawals/{id}/settlement"),
        Some(&setup.platform),
        &body,
        &headers,
    )
}

fn the_platform_reports_each_withdrawal_on_chain(app: &TestApp) {
    let setup = setup(app);
    let user = verified_user(app, &setup, "1");
    let sent = withdraw(app, &setup, btc(&user, "0.01", ADDRESS));
    assert_eq!(decision(&sent).0, "approved");
    let id = sent.json()["id"].as_str().unwrap().to_string();
    let tx_hash = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";
    let broadcast = json!({"outcome": "broadcast", "tx_hash": tx_hash});

    settle(app, &setup, &id, broadcast.clone(), None).problem(400);
    for (body, field) in [
        (json!({"outcome": "broadcast"}), "tx_hash"),
        (
            json!({"outcome": "broadcast", "tx_hash": format!("0x{}", &tx_hash[2..])}),
            "tx_hash",
        ),
        (json!({"outcome": "failed"}), "reason"),
        (json!({"outcome": "lost", "reason": "gone"}), "outcome"),
    ] {
        let fields = settle(app, &setup, &id, body, Some("bad")).problem_fields(422);
        assert_eq!(fields, vec![field]);
    }
    let own = app.token(Role::User, None, Some(&user));
    app.post_with(
        &format!("/v1/withdrawals/{id}/settlement"),
        Some(&own),
        &broadcast,
        &[("Idempotency-Key", "u-1")],
    )
    .problem(403);
    assert_eq!(
        balance(app, &setup, &user),
        ("0.99000000".into(), "0.01000000".into())
    );

    // Broadcast: the funds in flight leave; a retry moves nothing; a second report is refused.
    let settled = settle(app, &setup, &id, broadcast.clone(), Some("s-1"));
    assert_eq!(settled.status, 200, "{}", settled.body);
    assert_eq!(settled.json()["settlement"]["outcome"], "broadcast");
    assert_eq!(settled.json()["settlement"]["tx_hash"], tx_hash);
    let again = settle(app, &setup, &id, broadcast.clone(), Some("s-1"));
    assert_eq!(again.json(), settled.json());
    settle(app, &setup, &id, broadcast, Some("s-2")).problem(409);
    assert_eq!(
        balance(app, &setup, &user),
        ("0.99000000".into(), "0.00000000".into())
    );
    let read = app.get(&format!("/v1/withdrawals/{id}"), Some(&setup.platform));
    assert_eq!(read.json()["settlement"]["tx_hash"], tx_hash);

    // Failed: the funds return.
    let failing = withdraw(app, &setup, btc(&user, "0.01", ADDRESS));
    let failing_id = failing.json()["id"].as_str().unwrap().to_string();
    let failed = settle(
        app,
        &setup,
        &failing_id,
        json!({"outcome": "failed", "reason": "fee too low, dropped from the mempool"}),
        Some("f-1"),
    );
    assert_eq!(failed.status, 200, "{}", failed.body);
    assert_eq!(
        balance(app, &setup, &user),
        ("0.99000000".into(), "0.00000000".into())
    );

    // A rejected withdrawal was never sent.
    let refused = withdraw(app, &setup, btc(&user, "5", ADDRESS));
    assert_eq!(decision(&refused).0, "rejected");
    let refused_id = refused.json()["id"].as_str().unwrap().to_string();
    settle(
        app,
        &setup,
        &refused_id,
        json!({"outcome": "broadcast", "tx_hash": tx_hash}),
        Some("r-1"),
    )
    .problem(409);
    let verify = app.command(&["verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
