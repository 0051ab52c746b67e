//! Regulator reports through the real service: a sandbox report's figures against independent
//! SQL over the same data, its PDF read back and rendered, signatures and tampering, and a
//! regulator token that reaches its own jurisdiction's reports and nothing else (audited).

use hashgate::auth::Role;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::common::{sql_count, TestApp};
use crate::tax::pdf_text;

backend_tests!(
    sandbox_figures_equal_independent_sql_counts,
    a_regulator_reads_its_own_jurisdiction_only,
    an_altered_byte_fails_verification,
    a_case_str_names_the_subject_and_the_ledger_transactions,
    a_case_str_names_where_a_withdrawal_went,
    the_ledger_integrity_report_states_the_chain_and_its_totals,
    a_schedule_makes_each_closed_period_once_and_tells_the_regulator,
    a_regulator_downloads_its_reports_in_the_console,
    audit_trails_of_an_application_and_a_withdrawal,
);

/// The current quarter in Hong Kong: 2026-Q4 is the quarter of the session's clock; computed so
/// the test keeps working later.
pub(crate) fn current_quarter() -> String {
    use chrono::Datelike;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Hong_Kong)
        .date_naive();
    format!("{}-Q{}", today.year(), (today.month() - 1) / 3 + 1)
}

pub(crate) fn current_month_singapore() -> String {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Singapore)
        .format("%Y-%m")
        .to_string()
}

/// Users in HK and SG, priced payouts in this quarter and last, alerts and cases.
fn seed(app: &TestApp) -> Vec<String> {
    let platform = app.token(Role::Platform, None, None);
    let mut hk_users = Vec::new();
    for n in 0..3 {
        hk_users.push(app.create_user(&platform, &format!("hk-{n}-{}", uuid::Uuid::new_v4())));
    }
    let sg = app.post(
        "/v1/users",
        Some(&platform),
        &json!({"external_ref": format!("sg-{}", uuid::Uuid::new_v4()),
                "email": "sg@example.com", "residence_jurisdiction": "SG"}),
    );
    assert_eq!(sg.status, 201, "{}", sg.body);
    let sg_user = sg.json()["id"].as_str().unwrap().to_string();
    let now = chrono::Utc::now();
    let at = |days: i64| (now - chrono::Duration::days(days)).to_rfc3339();
    let hour_ago = (now - chrono::Duration::hours(1)).to_rfc3339();
    let prices = app.post(
        "/v1/prices",
        Some(&platform),
        &json!({"source": "test-feed", "rates": [
            {"base": "BTC", "quote": "USD", "as_of": hour_ago, "rate": "90000.10"},
            {"base": "USDT", "quote": "USD", "as_of": hour_ago, "rate": "1"}]}),
    );
    assert_eq!(prices.status, 200, "{}", prices.body);
    let payout = |user: &str, id: String, asset: &str, amount: &str, at: String| {
        json!({"user_id": user, "asset": asset, "amount": amount, "occurred_at": at,
               "order_id": "order-1", "facility_id": "qc-1", "external_id": id})
    };
    let mut payouts = Vec::new();
    for (index, user) in hk_users.iter().enumerate() {
        payouts.push(payout(
            user,
            format!("btc-{index}"),
            "BTC",
            "0.00123456",
            at(0),
        ));
        payouts.push(payout(user, format!("usdt-{index}"), "USDT", "12.5", at(0)));
        // Long before this quarter: not counted.
        payouts.push(payout(user, format!("old-{index}"), "BTC", "0.5", at(200)));
    }
    payouts.push(payout(&sg_user, "sg-1".into(), "BTC", "0.1", at(0)));
    let response = app.post(
        "/v1/payouts",
        Some(&platform),
        &json!({ "payouts": payouts }),
    );
    assert_eq!(response.status, 200, "{}", response.body);

    // Monitoring as officers leave it: alerts in cases, one closed with a filed STR.
    let now_utc = now.format("%Y-%m-%d %H:%M:%S").to_string();
    let insert_case = |id: &str, user: &str, outcome: Option<&str>| {
        let (status, outcome, closed) = match outcome {
            Some(outcome) => ("closed", format!("'{outcome}'"), format!("'{now_utc}'")),
            None => ("open", "NULL".into(), "NULL".into()),
        };
        app.execute_sql(&format!(
            "INSERT INTO cases (id, jurisdiction, user_id, title, status, outcome, opened_by, \
             opened_at, closed_by, closed_at, closing_reason) VALUES ('{id}', 'HK', '{user}', \
             'case', '{status}', {outcome}, 'officer', '{now_utc}', NULL, {closed}, NULL)"
        ))
        .unwrap();
    };
    insert_case("c-1", &hk_users[0], Some("str_filed"));
    insert_case("c-2", &hk_users[1], Some("no_action"));
    insert_case("c-3", &hk_users[2], None);
    for (n, (rule, user)) in [
        ("large-withdrawal", &hk_users[0]),
        ("large-withdrawal", &hk_users[1]),
        ("structuring", &hk_users[0]),
        ("large-withdrawal", &sg_user),
    ]
    .iter()
    .enumerate()
    {
        let jurisdiction = if *user == &sg_user { "SG" } else { "HK" };
        app.execute_sql(&format!(
            "INSERT INTO alerts (id, user_id, jurisdiction, origin, rule_id, rule_version, \
             severity, action, message, details, detected_by, dedupe_key, status, created_at) \
             VALUES ('a-{n}', '{user}', '{jurisdiction}', 'rule', '{rule}', 1, 'high', 'hold', \
             'm', '{{}}', 'daily_batch', 'k-{n}', 'open', '{now_utc}')"
        ))
        .unwrap();
    }
    hk_users
}

pub(crate) fn generate(app: &TestApp, jurisdiction: &str, period: &str) -> Value {
    let officer = app.token(Role::Officer, None, None);
    let response = app.post(
        "/v1/reports",
        Some(&officer),
        &json!({"kind": "sandbox", "jurisdiction": jurisdiction, "period": period}),
    );
    assert_eq!(response.status, 201, "{}", response.body);
    response.json()
}

fn download(app: &TestApp, token: &str, report: &Value, name: &str) -> Vec<u8> {
    let id = report["id"].as_str().unwrap();
    let response = app.get(&format!("/v1/reports/{id}/files/{name}"), Some(token));
    assert_eq!(response.status, 200, "{}", response.body);
    response.bytes
}

/// The value of one figure of the report's JSON.
fn figure(document: &Value, section: &str, metric: &str, breakdown: &str) -> String {
    document["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["figures"].as_array().unwrap())
        .find(|f| f["section"] == section && f["metric"] == metric && f["breakdown"] == breakdown)
        .unwrap_or_else(|| panic!("no figure {section}/{metric}/{breakdown}"))["value"]
        .as_str()
        .unwrap()
        .to_string()
}

fn sandbox_figures_equal_independent_sql_counts(app: &TestApp) {
    seed(app);
    let quarter = current_quarter();
    let report = generate(app, "HK", &quarter);
    let officer = app.token(Role::Officer, None, None);
    let document: Value = serde_json::from_slice(&download(app, &officer, &report, "report.json"))
        .expect("report.json is JSON");
    let (start, end) = (
        report["period_start"].as_str().unwrap().replace('T', " "),
        report["period_end"].as_str().unwrap().replace('T', " "),
    );
    let hk_payouts = format!(
        "FROM ledger_entries e JOIN users u ON u.id = e.user_id WHERE e.kind = 'payout' \
         AND u.residence_jurisdiction = 'HK' AND e.occurred_at >= '{start}' AND e.occurred_at < '{end}'"
    );
    assert_eq!(
        figure(&document, "customers", "users", ""),
        sql_count(
            app,
            "SELECT COUNT(*) FROM users WHERE residence_jurisdiction = 'HK'"
        )
    );
    assert_eq!(figure(&document, "customers", "users", ""), "3");
    assert_eq!(
        figure(&document, "customers", "users_by_tier_and_risk", "tier=0"),
        "3",
        "nobody has passed KYC"
    );
    for asset in ["BTC", "USDT"] {
        let breakdown = format!("asset={asset}");
        assert_eq!(
            figure(&document, "payouts", "count", &breakdown),
            sql_count(
                app,
                &format!("SELECT COUNT(*) {hk_payouts} AND e.asset = '{asset}'")
            )
        );
        let atoms = sql_count(
            app,
            &format!("SELECT SUM(e.amount) {hk_payouts} AND e.asset = '{asset}'"),
        );
        let scale = if asset == "BTC" { 8 } else { 6 };
        let volume: rust_decimal::Decimal = figure(&document, "payouts", "volume", &breakdown)
            .parse()
            .unwrap();
        assert_eq!(
            volume,
            rust_decimal::Decimal::from_i128_with_scale(atoms.parse().unwrap(), scale)
        );
    }
    assert_eq!(figure(&document, "payouts", "count", "asset=BTC"), "3");
    assert_eq!(
        figure(&document, "payouts", "volume", "asset=BTC"),
        "0.00370368"
    );
    // 0.00370368 BTC at 90,000.10 USD = 333.3315704, to the cent.
    assert_eq!(figure(&document, "payouts", "fmv", "asset=BTC"), "333.33");
    assert_eq!(figure(&document, "payouts", "unvalued", "asset=BTC"), "0");
    assert_eq!(
        figure(&document, "monitoring", "alerts", "rule=large-withdrawal;status=open"),
        sql_count(
            app,
            "SELECT COUNT(*) FROM alerts WHERE jurisdiction = 'HK' AND rule_id = 'large-withdrawal'"
        )
    );
    assert_eq!(
        figure(
            &document,
            "monitoring",
            "alerts",
            "rule=large-withdrawal;status=open"
        ),
        "2"
    );
    assert_eq!(
        figure(&document, "suspicious_reports", "filed", ""),
        sql_count(
            app,
            "SELECT COUNT(*) FROM cases WHERE jurisdiction = 'HK' AND outcome = 'str_filed'"
        )
    );
    assert_eq!(
        figure(&document, "monitoring", "cases_open_at_period_end", ""),
        "1"
    );
    assert_eq!(
        figure(&document, "incidents", "chain", "chain=ledger"),
        format!(
            "intact ({} entries)",
            sql_count(app, "SELECT COUNT(*) FROM ledger_entries")
        )
    );
    assert_eq!(document["provisional"], true, "the quarter has not closed");

    // The canonical data: the JSON's figures, row by row, with the hash the report names.
    let data = download(app, &officer, &report, "data.csv");
    assert_eq!(
        hashgate::crypto::sha256_hex(&data),
        report["data_sha256"].as_str().unwrap()
    );
    let csv_rows = String::from_utf8(data).unwrap().lines().count() - 1;
    let json_rows: usize = document["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["figures"].as_array().unwrap().len())
        .sum();
    assert_eq!(csv_rows, json_rows);
}

fn a_regulator_reads_its_own_jurisdiction_only(app: &TestApp) {
    let hk_users = seed(app);
    let hk_report = generate(app, "HK", &current_quarter());
    let sg_report = generate(app, "SG", &current_month_singapore());
    let regulator = app.token(Role::Regulator, Some("HK"), None);

    let listed = app.get("/v1/reports", Some(&regulator));
    assert_eq!(listed.status, 200, "{}", listed.body);
    let listed = listed.json();
    let jurisdictions: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["jurisdiction"].as_str().unwrap())
        .collect();
    assert_eq!(jurisdictions, vec!["HK"]);
    let hk_id = hk_report["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/reports/{hk_id}"), Some(&regulator))
            .status,
        200
    );
    let pdf = download(app, &regulator, &hk_report, "report.pdf");
    assert!(pdf.starts_with(b"%PDF"));

    let sg_id = sg_report["id"].as_str().unwrap();
    let refused = [
        ("GET", format!("/v1/reports/{sg_id}")),
        ("GET", format!("/v1/reports/{sg_id}/files/report.pdf")),
        ("GET", format!("/v1/reports/{sg_id}/verify")),
        ("GET", "/v1/reports?jurisdiction=SG".to_string()),
        ("GET", format!("/v1/users/{}", hk_users[0])),
        ("GET", format!("/v1/users/{}/balances", hk_users[0])),
        ("GET", "/v1/audit".to_string()),
        ("GET", "/v1/kyc/applications".to_string()),
        ("POST", "/v1/reports".to_string()),
    ];
    for (method, path) in &refused {
        let body = (*method == "POST").then(|| {
            (
                "application/json",
                json!({"kind": "sandbox", "jurisdiction": "HK", "period": current_quarter()})
                    .to_string()
                    .into_bytes(),
            )
        });
        let response = app.request(method, path, Some(&regulator), body, &[]);
        assert_eq!(response.status, 403, "{method} {path}: {}", response.body);
    }
    // Every refusal is in the audit log under the regulator's token, with the path it tried.
    let denied = app.query_text(
        "SELECT details AS value FROM audit_log WHERE action = 'access.denied' \
         AND actor_role = 'regulator' ORDER BY seq",
    );
    assert_eq!(denied.len(), refused.len(), "{denied:?}");
    for ((_, path), details) in refused.iter().zip(&denied) {
        let details: Value = serde_json::from_str(details).unwrap();
        assert_eq!(details["path"], path.split('?').next().unwrap());
        assert_eq!(details["jurisdiction"], "HK");
    }
    // The download is audited too.
    let downloads = app.query_text(
        "SELECT subject_id AS value FROM audit_log WHERE action = 'report.download' \
         AND actor_role = 'regulator'",
    );
    assert_eq!(downloads, vec![hk_id.to_string()]);
}

fn an_altered_byte_fails_verification(app: &TestApp) {
    seed(app);
    let report = generate(app, "HK", &current_quarter());
    let id = report["id"].as_str().unwrap();
    let officer = app.token(Role::Officer, None, None);

    // The public key verifies the signature the API lists, independently of the service.
    let key = app.get("/.well-known/hashgate-signing-key", None).json();
    assert_eq!(key["key_id"], report["key_id"]);
    let pdf = download(app, &officer, &report, "report.pdf");
    let listed = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "report.pdf")
        .unwrap()
        .clone();
    let signature = {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        let raw_key: [u8; 32] = engine
            .decode(key["public_key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let key = ed25519_dalek::VerifyingKey::from_bytes(&raw_key).unwrap();
        let signature = ed25519_dalek::Signature::from_slice(
            &engine
                .decode(listed["signature"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        use ed25519_dalek::Verifier as _;
        assert!(key.verify(&pdf, &signature).is_ok());
        let mut altered = pdf.clone();
        altered[pdf.len() / 2] ^= 1;
        assert!(key.verify(&altered, &signature).is_err());
        signature
    };
    assert_eq!(signature.to_bytes().len(), 64);

    let check = |bytes: Vec<u8>| {
        let response = app.request(
            "POST",
            &format!("/v1/reports/{id}/verify"),
            Some(&officer),
            Some(("application/octet-stream", bytes)),
            &[],
        );
        assert_eq!(response.status, 200, "{}", response.body);
        response.json()
    };
    assert_eq!(check(pdf.clone())["valid"], true);
    let mut altered = pdf.clone();
    altered[pdf.len() / 2] ^= 1;
    // A copy larger than actix's default payload limit is checked, not refused.
    let mut padded = pdf.clone();
    padded.resize(300 * 1024, b' ');
    assert_eq!(check(padded)["valid"], false);
    let verdict = check(altered.clone());
    assert_eq!(verdict["valid"], false);
    assert!(verdict["message"].as_str().unwrap().contains("altered"));

    // The command line, on the original and on the altered copy.
    let directory = app.directory();
    std::fs::write(directory.join("good.pdf"), &pdf).unwrap();
    std::fs::write(directory.join("bad.pdf"), &altered).unwrap();
    let good = app.command(&["verify-report", "good.pdf"]);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).contains(id));
    let bad = app.command(&["verify-report", "bad.pdf"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("FAILED"));

    // The stored report itself: intact, then one byte of its data changed behind the
    // append-only guard (as an intruder with database access would) fails the re-check.
    let stored = app
        .get(&format!("/v1/reports/{id}/verify"), Some(&officer))
        .json();
    assert_eq!(stored["valid"], true, "{stored}");
    let postgres = app.settings.database_url.starts_with("postgres");
    assert!(
        app.execute_sql("UPDATE report_files SET sha256 = sha256 WHERE name = 'data.csv'")
            .is_err(),
        "stored reports are append-only"
    );
    // Files are encrypted at rest: one byte of the stored ciphertext changes.
    let tamper = if postgres {
        "ALTER TABLE report_files DISABLE TRIGGER report_files_append_only; \
         UPDATE report_files SET content = set_byte(content, 20, (get_byte(content, 20) + 1) % 256) \
         WHERE name = 'data.csv'"
    } else {
        "DROP TRIGGER report_files_no_update; UPDATE report_files SET content = \
         CAST(substr(content, 1, 20) || CASE WHEN substr(content, 21, 1) = X'00' THEN X'01' \
         ELSE X'00' END || substr(content, 22) AS BLOB) WHERE name = 'data.csv'"
    };
    app.execute_sql(tamper).unwrap();
    let stored = app
        .get(&format!("/v1/reports/{id}/verify"), Some(&officer))
        .json();
    assert_eq!(stored["valid"], false, "{stored}");
    assert_eq!(stored["data_matches_report"], false);
    let data = stored["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "data.csv")
        .unwrap();
    assert_eq!(data["sha256_matches"], false);
    assert_eq!(data["signature_valid"], false);
}

#[test]
#[cfg_attr(
    not(hashgate_pdf_tests),
    ignore = "PDF suite SKIPPED: pdftotext not found (apt-get install poppler-utils)"
)]
fn a_sandbox_report_pdf_reads_back_and_renders() {
    let app = TestApp::spawn(hashgate::db::Backend::Sqlite);
    seed(&app);
    let report = generate(&app, "HK", &current_quarter());
    let officer = app.token(Role::Officer, None, None);
    // The PDF, read back by poppler: Chinese (HK's report language), the figures, the hash on
    // every page; and every page renders.
    let pdf = download(&app, &officer, &report, "report.pdf");
    let text = pdf_text(&pdf);
    assert!(text.contains("沙盒定期报告"), "{text}");
    assert!(text.contains("挖矿收益发放"));
    assert!(text.contains("0.00370368"));
    assert!(text.contains("333.33"));
    let pages = text
        .split('\u{c}')
        .filter(|page| !page.trim().is_empty())
        .count();
    assert!(pages >= 1);
    assert!(
        text.matches(report["data_sha256"].as_str().unwrap())
            .count()
            >= pages,
        "the data hash is in every footer"
    );
    assert!(text.contains(&format!("1 / {pages}")), "page numbers");
    assert_eq!(rendered_pages(&pdf), pages);
}

/// A closed case on the first HK user (who applied for KYC), with two alerts and a note;
/// returns (case id, user id).
fn str_case(app: &TestApp) -> (String, String) {
    let hk_users = seed(app);
    let user = hk_users[0].clone();
    let token = app.token(Role::User, None, Some(&user));
    let application = json!({
        "target_tier": 2,
        "personal_data": crate::kyc::personal_data("Tai Man Chan", "HK", "HK"),
    });
    let (content_type, body) = crate::kyc::multipart(&application, &crate::kyc::tier2_documents());
    let submitted = app.request(
        "POST",
        "/v1/kyc/applications",
        Some(&token),
        Some((&content_type, body)),
        &[],
    );
    assert_eq!(submitted.status, 201, "{}", submitted.body);
    let case = uuid::Uuid::new_v4().to_string();
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S");
    app.execute_sql(&format!(
        "INSERT INTO cases (id, jurisdiction, user_id, title, status, outcome, opened_by, \
         opened_at, closed_by, closed_at, closing_reason) VALUES ('{case}', 'HK', '{user}', \
         'Payouts withdrawn within hours', 'closed', 'str_filed', 'officer-1', '{now}', \
         'officer-2', '{now}', 'Pattern consistent with layering; STR filed')"
    ))
    .unwrap();
    app.execute_sql(&format!(
        "UPDATE alerts SET case_id = '{case}', status = 'in_case' WHERE user_id = '{user}'"
    ))
    .unwrap();
    app.execute_sql(&format!(
        "INSERT INTO case_notes (id, case_id, kind, body, author, created_at) VALUES \
         ('{}', '{case}', 'note', 'Called the customer; no explanation given', 'officer-1', '{now}')",
        uuid::Uuid::new_v4()
    ))
    .unwrap();
    (case, user)
}

fn a_case_str_names_the_subject_and_the_ledger_transactions(app: &TestApp) {
    let (case, user) = str_case(app);
    let officer = app.token(Role::Officer, None, None);
    let regulator = app.token(Role::Regulator, Some("HK"), None);
    let path = format!("/v1/cases/{case}/str-report");
    assert_eq!(app.post(&path, Some(&regulator), &json!({})).status, 403);
    let response = app.post(&path, Some(&officer), &json!({}));
    assert_eq!(response.status, 201, "{}", response.body);
    let report = response.json();
    assert_eq!(report["kind"], "str");
    let names: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["data.csv", "report.pdf", "str.xml"]);

    let xml = String::from_utf8(download(app, &officer, &report, "str.xml")).unwrap();
    assert!(xml.contains("<report_code>STR</report_code>"));
    assert!(xml.contains("<first_name>Tai Man</first_name>"), "{xml}");
    assert!(xml.contains("<last_name>Chan</last_name>"));
    assert!(xml.contains("<id_number>K1234567</id_number>"));
    assert!(xml.contains("Payouts withdrawn within hours"));
    assert!(xml.contains("large-withdrawal") && xml.contains("structuring"));
    // One <transaction> per ledger entry of the subject in the window (the old payout, 200
    // days back, is outside the 90 days before the case).
    let (start, end) = (
        report["period_start"].as_str().unwrap().replace('T', " "),
        report["period_end"].as_str().unwrap().replace('T', " "),
    );
    let entries = sql_count(
        app,
        &format!(
            "SELECT COUNT(*) FROM ledger_entries WHERE user_id = '{user}' \
             AND occurred_at >= '{start}' AND occurred_at < '{end}'"
        ),
    );
    assert_eq!(xml.matches("<transaction>").count().to_string(), entries);
    assert_eq!(entries, "2");
    // The payouts have a USD value but no USD→HKD rate exists: each local amount is flagged
    // as unknown, never silently valued.
    assert_eq!(xml.matches("the local amount is not known").count(), 2);
    assert_eq!(xml.matches("<amount_local>0</amount_local>").count(), 2);
    assert_eq!(xml.matches("(fair market value ").count(), 2);

    // The subject's identity is in the stored files only encrypted.
    let plaintext_hits = if app.settings.database_url.starts_with("postgres") {
        sql_count(
            app,
            "SELECT COUNT(*) FROM report_files WHERE position(convert_to('K1234567', 'UTF8') in content) > 0",
        )
    } else {
        sql_count(
            app,
            "SELECT COUNT(*) FROM report_files WHERE instr(content, CAST('K1234567' AS BLOB)) > 0",
        )
    };
    assert_eq!(plaintext_hits, "0");
    // Generating it is audited with the file hashes.
    let audited = app.query_text(&format!(
        "SELECT details AS value FROM audit_log WHERE action = 'report.generate' AND subject_id = '{}'",
        report["id"].as_str().unwrap()
    ));
    assert_eq!(audited.len(), 1);
    assert!(audited[0].contains("str.xml"));
}

fn a_case_str_names_where_a_withdrawal_went(app: &TestApp) {
    use crate::withdrawals::{btc, decision, setup, verified_user, withdraw, ADDRESS};
    let setup = setup(app);
    let user = verified_user(app, &setup, "1");
    let approved = withdraw(app, &setup, btc(&user, "0.01", ADDRESS));
    assert_eq!(decision(&approved).0, "approved");
    let case = uuid::Uuid::new_v4().to_string();
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S");
    app.execute_sql(&format!(
        "INSERT INTO cases (id, jurisdiction, user_id, title, status, outcome, opened_by, \
         opened_at, closed_by, closed_at, closing_reason) VALUES ('{case}', 'HK', '{user}', \
         'Withdrawn on arrival', 'closed', 'str_filed', 'officer-1', '{now}', 'officer-2', \
         '{now}', 'STR filed')"
    ))
    .unwrap();
    let officer = app.token(Role::Officer, None, None);
    let response = app.post(
        &format!("/v1/cases/{case}/str-report"),
        Some(&officer),
        &json!({}),
    );
    assert_eq!(response.status, 201, "{}", response.body);
    let xml = String::from_utf8(download(app, &officer, &response.json(), "str.xml")).unwrap();
    // The payout that funded the user has no counterparty; the withdrawal's hold names the
    // address it went to.
    assert_eq!(xml.matches("<transaction>").count(), 2, "{xml}");
    assert_eq!(xml.matches(ADDRESS).count(), 1, "{xml}");
    assert!(xml.contains("External wallet (bitcoin)"), "{xml}");
}

#[test]
#[cfg_attr(
    not(all(hashgate_xml_tests, hashgate_pdf_tests)),
    ignore = "XML/PDF suite SKIPPED: xmllint or pdftotext not found (apt-get install libxml2-utils poppler-utils)"
)]
fn a_case_str_validates_against_the_goaml_schema_and_its_pdf_reads_back() {
    let app = TestApp::spawn(hashgate::db::Backend::Sqlite);
    let (case, _) = str_case(&app);
    let officer = app.token(Role::Officer, None, None);
    let report = app
        .post(
            &format!("/v1/cases/{case}/str-report"),
            Some(&officer),
            &json!({}),
        )
        .json();
    let xml = download(&app, &officer, &report, "str.xml");
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("str.xml");
    std::fs::write(&file, &xml).unwrap();
    let schema = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/schemas/goaml/5.0.1-generic/goAMLSchema.xsd"
    );
    let validated = std::process::Command::new("xmllint")
        .args(["--noout", "--schema", schema])
        .arg(&file)
        .output()
        .expect("run xmllint");
    assert!(
        validated.status.success(),
        "goAML 5.0.1: {}",
        String::from_utf8_lossy(&validated.stderr)
    );
    let text = pdf_text(&download(&app, &officer, &report, "report.pdf"));
    assert!(text.contains("Suspicious transaction report"));
    assert!(text.contains("Tai Man Chan"));
    assert!(text.contains("Called the customer; no explanation given"));
    assert!(text.contains("Pattern consistent with layering"));
    assert!(text.contains(report["data_sha256"].as_str().unwrap()));
}

/// The value of a figure in a flat list of figures.
fn flat_figure(figures: &Value, section: &str, metric: &str, breakdown: &str) -> String {
    figures
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["section"] == section && f["metric"] == metric && f["breakdown"] == breakdown)
        .unwrap_or_else(|| panic!("no figure {section}/{metric}/{breakdown}"))["value"]
        .as_str()
        .unwrap()
        .to_string()
}

fn the_ledger_integrity_report_states_the_chain_and_its_totals(app: &TestApp) {
    seed(app);
    let officer = app.token(Role::Officer, None, None);
    let path = "/v1/ledger/integrity-reports";
    let response = app.post(path, Some(&officer), &json!({}));
    assert_eq!(response.status, 201, "{}", response.body);
    let report = response.json();
    assert_eq!(report["kind"], "ledger_integrity");
    assert_eq!(report["jurisdiction"], Value::Null);
    let document: Value =
        serde_json::from_slice(&download(app, &officer, &report, "report.json")).unwrap();
    let figures = &document["figures"];
    let entries = sql_count(app, "SELECT COUNT(*) FROM ledger_entries");
    assert_eq!(
        flat_figure(figures, "integrity", "chain", "genesis..head"),
        format!("intact ({entries} entries)")
    );
    assert_eq!(
        flat_figure(
            figures,
            "integrity",
            "root_hash",
            &format!("entry {entries}")
        ),
        app.query_text(&format!(
            "SELECT hash AS value FROM ledger_entries WHERE seq = {entries}"
        ))[0]
    );
    let counts = app.query_text(
        "SELECT asset || ' ' || kind || ' ' || CAST(COUNT(*) AS TEXT) AS value \
         FROM ledger_entries GROUP BY asset, kind ORDER BY asset, kind",
    );
    assert!(!counts.is_empty());
    for row in counts {
        let parts: Vec<&str> = row.split(' ').collect();
        assert_eq!(
            flat_figure(
                figures,
                "totals",
                "entries",
                &format!("asset={};kind={}", parts[0], parts[1])
            ),
            parts[2]
        );
    }

    // A range: anchored at the hash of the entry before it.
    let ranged = app.post(path, Some(&officer), &json!({"from_seq": 2, "to_seq": 3}));
    assert_eq!(ranged.status, 201, "{}", ranged.body);
    let ranged: Value =
        serde_json::from_slice(&download(app, &officer, &ranged.json(), "report.json")).unwrap();
    assert_eq!(
        flat_figure(&ranged["figures"], "integrity", "anchor_hash", "entry 1"),
        app.query_text("SELECT hash AS value FROM ledger_entries WHERE seq = 1")[0]
    );
    let in_range: i64 = ranged["figures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["section"] == "totals" && f["metric"] == "entries")
        .map(|f| f["value"].as_str().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(in_range, 2);

    // Bad ranges name their field; a regulator may not read platform-wide evidence.
    assert_eq!(
        app.post(path, Some(&officer), &json!({"from_seq": 0}))
            .problem_fields(422),
        vec!["from_seq"]
    );
    assert_eq!(
        app.post(path, Some(&officer), &json!({"to_seq": 1_000_000_000}))
            .problem_fields(422),
        vec!["to_seq"]
    );
    let regulator = app.token(Role::Regulator, Some("HK"), None);
    let id = report["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/reports/{id}"), Some(&regulator))
            .status,
        403
    );
    assert_eq!(app.post(path, Some(&regulator), &json!({})).status, 403);
}

fn a_schedule_makes_each_closed_period_once_and_tells_the_regulator(app: &TestApp) {
    seed(app);
    let admin = app.token(Role::Admin, None, None);
    let officer = app.token(Role::Officer, None, None);
    let path = "/v1/report-schedules";
    let schedule = json!({"kind": "sandbox", "jurisdiction": "HK",
                          "recipients": ["sandbox-desk@sfc.example"]});
    assert_eq!(app.post(path, Some(&officer), &schedule).status, 403);
    assert_eq!(
        app.post(
            path,
            Some(&admin),
            &json!({"kind": "sandbox", "jurisdiction": "HK", "recipients": ["not an address"]})
        )
        .problem_fields(422),
        vec!["recipients"]
    );
    assert_eq!(
        app.post(
            path,
            Some(&admin),
            &json!({"kind": "sandbox", "jurisdiction": "US", "recipients": ["a@b.example"]})
        )
        .problem_fields(422),
        vec!["jurisdiction"]
    );
    let created = app.post(path, Some(&admin), &schedule);
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_string();
    assert_eq!(app.post(path, Some(&admin), &schedule).status, 409);
    let listed = app.get(path, Some(&admin)).json();
    assert_eq!(
        listed["items"][0]["recipients"][0],
        "sandbox-desk@sfc.example"
    );

    let run = app.command(&["reports", "run-schedules"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stdout).contains("reports generated: 1"));
    let made = app.query_text(
        "SELECT id || ' ' || period_label AS value FROM reports WHERE kind = 'sandbox' \
         AND generated_by = 'report scheduler'",
    );
    assert_eq!(made.len(), 1);
    let (report_id, period) = made[0].split_once(' ').unwrap();
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Hong_Kong)
        .date_naive();
    assert_eq!(
        period,
        hashgate::reports::Period::last_closed(hashgate::reports::PeriodKind::Quarter, today).label
    );
    // One e-mail to the regulator, about that report, through the outbox.
    let queued = app.query_text(&format!(
        "SELECT template || ' ' || status AS value FROM email_outbox \
         WHERE related_type = 'report' AND related_id = '{report_id}'"
    ));
    assert_eq!(queued, vec!["report_ready pending".to_string()]);
    // A second run finds nothing due.
    let again = app.command(&["reports", "run-schedules"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("reports generated: 0"));

    let disabled = app.post(&format!("{path}/{id}/disable"), Some(&admin), &json!({}));
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert!(disabled.json()["disabled_at"].is_string());
    assert_eq!(
        app.post(&format!("{path}/{id}/disable"), Some(&admin), &json!({}))
            .status,
        409
    );
}

fn a_regulator_downloads_its_reports_in_the_console(app: &TestApp) {
    seed(app);
    let hk_report = generate(app, "HK", &current_quarter());
    let sg_report = generate(app, "SG", &current_month_singapore());
    let regulator = app.token(Role::Regulator, Some("HK"), None);
    let session = app.console_session(&regulator);
    let cookie = format!("hg_session={session}");
    let get = |path: &str| app.request("GET", path, None, None, &[("Cookie", &cookie)]);

    let page = get("/console/reports");
    assert_eq!(page.status, 200, "{}", page.body);
    let hk_id = hk_report["id"].as_str().unwrap();
    let sg_id = sg_report["id"].as_str().unwrap();
    assert!(page.body.contains(hk_id));
    assert!(
        !page.body.contains(sg_id),
        "another jurisdiction's report is not listed"
    );
    let pdf = get(&format!("/console/reports/{hk_id}/report.pdf"));
    assert_eq!(pdf.status, 200);
    assert!(pdf.bytes.starts_with(b"%PDF"));
    assert_eq!(
        pdf.bytes.len(),
        download(
            app,
            &app.token(Role::Officer, None, None),
            &hk_report,
            "report.pdf"
        )
        .len()
    );
    assert_eq!(
        get(&format!("/console/reports/{sg_id}/report.pdf")).status,
        403
    );
    // The officers' pages stay closed to a regulator.
    assert_eq!(get("/console/queue").status, 403);
    let refused = app.query_text(
        "SELECT details AS value FROM audit_log WHERE action = 'access.denied' \
         AND actor_role = 'regulator' ORDER BY seq",
    );
    assert!(
        refused.iter().any(|details| details.contains(sg_id)),
        "the console refusal is audited: {refused:?}"
    );
    let downloads = app.query_text(&format!(
        "SELECT subject_id AS value FROM audit_log WHERE action = 'report.download' \
         AND actor_role = 'regulator' AND subject_id = '{hk_id}'"
    ));
    assert_eq!(downloads.len(), 1);
}

/// The JSONL export's records of one kind.
fn records<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|line| line["record"] == kind)
        .map(|line| &line["data"])
        .collect()
}

fn audit_trails_of_an_application_and_a_withdrawal(app: &TestApp) {
    use crate::withdrawals::{btc, decision, setup, verified_user, withdraw, ADDRESS};
    let setup = setup(app);
    let user = verified_user(app, &setup, "1");
    // 0.6 BTC = 468,000 HKD: over tier 2's single limit, refused with its reason.
    let refused = withdraw(app, &setup, btc(&user, "0.6", ADDRESS));
    assert_eq!(decision(&refused).0, "rejected");
    let withdrawal = refused.json()["id"].as_str().unwrap().to_string();
    let application = app.query_text(&format!(
        "SELECT id AS value FROM kyc_applications WHERE user_id = '{user}'"
    ))[0]
        .clone();
    let officer = app.token(Role::Officer, None, None);
    let regulator = app.token(Role::Regulator, Some("HK"), None);

    let path = format!("/v1/kyc/applications/{application}/audit-report");
    assert_eq!(app.post(&path, Some(&regulator), &json!({})).status, 403);
    let response = app.post(&path, Some(&officer), &json!({}));
    assert_eq!(response.status, 201, "{}", response.body);
    let report = response.json();
    assert_eq!(report["kind"], "kyc_history");
    assert_eq!(report["jurisdiction"], "HK");
    let data = download(app, &officer, &report, "data.jsonl");
    assert_eq!(
        hashgate::crypto::sha256_hex(&data),
        report["data_sha256"].as_str().unwrap()
    );
    let lines: Vec<Value> = String::from_utf8(data)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let applications = records(&lines, "application");
    assert_eq!(
        applications[0]["personal_data"]["legal_name"],
        "Ada Lovelace"
    );
    // Every document with the hash the database holds, every decision from the audit log.
    let documents: Vec<String> = records(&lines, "document")
        .iter()
        .map(|d| d["sha256"].as_str().unwrap().to_string())
        .collect();
    let mut stored = app.query_text(&format!(
        "SELECT sha256 AS value FROM kyc_documents WHERE application_id = '{application}'"
    ));
    let mut listed = documents.clone();
    stored.sort();
    listed.sort();
    assert_eq!(listed, stored);
    assert_eq!(listed.len(), 3);
    let actions: Vec<&str> = records(&lines, "audit_entry")
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    let audited = app.query_text(&format!(
        "SELECT action AS value FROM audit_log WHERE subject_type = 'kyc_application' \
         AND subject_id = '{application}' ORDER BY seq"
    ));
    assert_eq!(
        actions,
        audited.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(actions.contains(&"kyc.submit"));

    let response = app.post(
        &format!("/v1/withdrawals/{withdrawal}/audit-report"),
        Some(&officer),
        &json!({}),
    );
    assert_eq!(response.status, 201, "{}", response.body);
    let trace = response.json();
    assert_eq!(trace["kind"], "withdrawal_trace");
    let lines: Vec<Value> = String::from_utf8(download(app, &officer, &trace, "data.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let recorded = records(&lines, "withdrawal");
    assert_eq!(recorded[0]["decision"], "rejected");
    assert_eq!(recorded[0]["amount_local"], "468000.00");
    assert!(recorded[0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|reason| reason["code"] == "single_limit_exceeded"));
    // The regulator of HK may read both (their jurisdiction's evidence, once generated).
    let trace_id = trace["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/reports/{trace_id}"), Some(&regulator))
            .status,
        200
    );
    let stored = app
        .get(&format!("/v1/reports/{trace_id}/verify"), Some(&officer))
        .json();
    assert_eq!(stored["valid"], true, "{stored}");
}

/// Renders every page of a PDF to PNG with poppler's pdftoppm; returns how many it rendered.
fn rendered_pages(pdf: &[u8]) -> usize {
    let directory = tempfile::tempdir().unwrap();
    std::fs::write(directory.path().join("report.pdf"), pdf).unwrap();
    let rendered = std::process::Command::new("pdftoppm")
        .args(["-png", "-r", "50", "report.pdf", "page"])
        .current_dir(directory.path())
        .output()
        .expect("run pdftoppm");
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    std::fs::read_dir(directory.path())
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .and_then(|e| e.to_str())
                == Some("png")
        })
        .count()
}

#[test]
#[cfg_attr(
    not(hashgate_pdf_tests),
    ignore = "PDF suite SKIPPED: pdftotext not found (apt-get install poppler-utils)"
)]
fn audit_pdfs_read_back_and_render() {
    use crate::withdrawals::{btc, setup, verified_user, withdraw, ADDRESS};
    let app = TestApp::spawn(hashgate::db::Backend::Sqlite);
    let setup = setup(&app);
    let user = verified_user(&app, &setup, "1");
    let withdrawal = withdraw(&app, &setup, btc(&user, "0.6", ADDRESS)).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let application = app.query_text(&format!(
        "SELECT id AS value FROM kyc_applications WHERE user_id = '{user}'"
    ))[0]
        .clone();
    let officer = app.token(Role::Officer, None, None);
    let post = |path: String| {
        let response = app.post(&path, Some(&officer), &json!({}));
        assert_eq!(response.status, 201, "{}", response.body);
        response.json()
    };
    let history = post(format!("/v1/kyc/applications/{application}/audit-report"));
    let pdf = download(&app, &officer, &history, "report.pdf");
    let text = pdf_text(&pdf);
    assert!(text.contains("KYC application history"));
    assert!(text.contains("Ada Lovelace"));
    assert!(text.contains("kyc.submit"));
    let a_document_hash = app.query_text(&format!(
        "SELECT sha256 AS value FROM kyc_documents WHERE application_id = '{application}'"
    ))[0]
        .clone();
    assert!(text.contains(&a_document_hash));
    assert!(rendered_pages(&pdf) >= 1);

    let integrity = post("/v1/ledger/integrity-reports".into());
    let trace = post(format!("/v1/withdrawals/{withdrawal}/audit-report"));
    for (report, expected) in [(&trace, "single_limit_exceeded"), (&integrity, "Root hash")] {
        let pdf = download(&app, &officer, report, "report.pdf");
        let text = pdf_text(&pdf);
        assert!(text.contains(expected), "{text}");
        assert!(text.contains(report["data_sha256"].as_str().unwrap()));
        assert!(rendered_pages(&pdf) >= 1);
    }
}
