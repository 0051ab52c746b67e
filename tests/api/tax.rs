//! Tax computations and statements through the real service: income from the ledger in local
//! tax years, deductions from fees, who may read them, the CSV whose hash the PDF prints, and the
//! PDF read back by an independent reader (poppler's pdftotext).

use hashgate::auth::Role;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::backend_tests;
use crate::common::TestApp;

backend_tests!(
    a_uk_computation_follows_the_local_tax_year_and_the_fees,
    only_the_user_and_officers_read_a_statement,
    unknown_years_and_jurisdictions_are_named,
    a_carf_export_reports_each_residents_mining_per_asset,
);

fn register(app: &TestApp, platform: &str, residence: &str, language: &str) -> String {
    let external_ref = format!("tax-{}", uuid::Uuid::new_v4().simple());
    let response = app.post(
        "/v1/users",
        Some(platform),
        &json!({
            "external_ref": external_ref,
            "email": format!("{external_ref}@example.com"),
            "residence_jurisdiction": residence,
            "preferred_language": language,
            "address": "1 Market Street, Sample Town",
        }),
    );
    assert_eq!(response.status, 201, "{}", response.body);
    response.json()["id"].as_str().unwrap().to_string()
}

fn load(app: &TestApp, platform: &str, rates: Value, payouts: Value) {
    for chunk in rates.as_array().unwrap().chunks(200) {
        let prices = app.post(
            "/v1/prices",
            Some(platform),
            &json!({"source": "test", "rates": chunk}),
        );
        assert_eq!(prices.status, 200, "{}", prices.body);
    }
    for chunk in payouts.as_array().unwrap().chunks(100) {
        let response = app.post("/v1/payouts", Some(platform), &json!({ "payouts": chunk }));
        assert_eq!(response.status, 200, "{}", response.body);
    }
}

fn payout(user: &str, id: &str, amount: &str, at: &str) -> Value {
    json!({"user_id": user, "asset": "BTC", "amount": amount, "occurred_at": at,
           "order_id": "order-1", "facility_id": "qc-1", "external_id": id})
}

/// Reverses a ledger entry as an officer's correction does (there is no HTTP route for it).
fn reverse(app: &TestApp, seq: i64, reason: &str) {
    let mut connection = app.state_db.connection().unwrap();
    hashgate::db::write_transaction(&mut connection, |connection| {
        hashgate::ledger::store::reverse(
            connection,
            seq,
            reason,
            &hashgate::audit::Actor::command_line(),
        )
    })
    .unwrap();
}

/// A GB user with three payouts around the 6 April boundary and a fee.
fn uk_miner(app: &TestApp, platform: &str) -> String {
    let user = register(app, platform, "GB", "en");
    load(
        app,
        platform,
        json!([
            {"base": "BTC", "quote": "USD", "as_of": "2026-04-05T00:00:00Z", "rate": "80000"},
            {"base": "USD", "quote": "GBP", "as_of": "2026-04-05T00:00:00Z", "rate": "0.75"},
            {"base": "BTC", "quote": "USD", "as_of": "2026-06-01T00:00:00Z", "rate": "80000"},
            {"base": "USD", "quote": "GBP", "as_of": "2026-06-01T00:00:00Z", "rate": "0.75"}
        ]),
        json!([
            // 22:30 UTC on 5 April is 23:30 BST: still 2025/26.
            payout(&user, "uk-1", "0.02", "2026-04-05T22:30:00Z"),
            // 23:30 UTC on 5 April is 00:30 BST on 6 April: 2026/27.
            payout(&user, "uk-2", "0.01", "2026-04-05T23:30:00Z"),
            payout(&user, "uk-3", "0.5", "2026-06-01T12:00:00Z"),
        ]),
    );
    let fee = app.post(
        "/v1/fees",
        Some(platform),
        &json!({"fees": [{"user_id": user, "asset": "BTC", "amount": "0.025",
                          "occurred_at": "2026-06-01T13:00:00Z", "purpose": "electricity"}]}),
    );
    assert_eq!(fee.status, 200, "{}", fee.body);
    user
}

fn a_uk_computation_follows_the_local_tax_year_and_the_fees(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let user = uk_miner(app, &platform);
    let token = app.token(Role::User, None, Some(&user));

    let response = app.get(&format!("/v1/users/{user}/tax/2026"), Some(&token));
    assert_eq!(response.status, 200, "{}", response.body);
    let report = response.json();
    assert_eq!(report["tax_year"]["label"], "2026/27");
    assert_eq!(report["tax_year"]["starts_at"], "2026-04-05T23:00:00Z");
    assert_eq!(report["classification"], "miscellaneous");
    assert_eq!(report["rules_version"], "GB-2026/27.1");
    // 0.01 + 0.5 BTC × 80,000 × 0.75 = 600 + 30,000.
    assert_eq!(report["income"], "30600.00");
    assert_eq!(
        report["income_by_month"],
        json!([
            {"month": "2026-04", "asset": "BTC", "payouts": 1, "amount": "0.01000000", "value": "600.00"},
            {"month": "2026-06", "asset": "BTC", "payouts": 1, "amount": "0.50000000", "value": "30000.00"}
        ])
    );
    // The fee: 0.025 × 80,000 × 0.75 = 1,500, more than the £1,000 allowance.
    assert_eq!(report["costs"], "1500.00");
    let computation = &report["computation"];
    assert_eq!(computation["net_income"], "29100.00");
    // 29,100 − 12,570 = 16,530 × 20% = 3,306.
    assert_eq!(computation["taxable_income"], "16530");
    assert_eq!(computation["total_tax"], "3306.00");
    assert_eq!(report["complete"], true);
    assert!(report["sources"].as_array().unwrap().len() >= 3);
    assert!(!report["disclaimers"].as_array().unwrap().is_empty());

    let earlier = app
        .get(&format!("/v1/users/{user}/tax/2025"), Some(&token))
        .json();
    assert_eq!(earlier["tax_year"]["label"], "2025/26");
    assert_eq!(earlier["income"], "1200.00");

    // The CSV is the data behind the figures: its SHA-256 is the report's.
    let csv = app.get(
        &format!("/v1/users/{user}/tax/2026/statement.csv"),
        Some(&token),
    );
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert_eq!(
        hex::encode(Sha256::digest(csv.body.as_bytes())),
        report["data_sha256"].as_str().unwrap()
    );
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 4, "{}", csv.body);
    assert!(lines[1].starts_with("payout,"), "{}", lines[1]);
    assert!(
        lines[1].contains("2026-04-06T00:30:00+01:00"),
        "{}",
        lines[1]
    );
    assert!(
        lines[3].starts_with("fee,") && lines[3].ends_with(",1500.00,"),
        "{}",
        lines[3]
    );

    // Trading income adds Class 4 NIC: (29,100 − 12,570) × 6% = 991.80.
    let trading = app
        .get(
            &format!("/v1/users/{user}/tax/2026?classification=business"),
            Some(&token),
        )
        .json();
    assert_eq!(trading["computation"]["surtaxes"][0]["amount"], "991.80");
    assert_eq!(trading["computation"]["total_tax"], "4297.80");

    // A reversed entry is left out: with the fee reversed, the £1,000 allowance applies again.
    // 30,600 − 1,000 − 12,570 = 17,030 × 20% = 3,406.
    reverse(
        app,
        report["fees"][0]["seq"].as_i64().unwrap(),
        "charged twice",
    );
    let corrected = app
        .get(&format!("/v1/users/{user}/tax/2026"), Some(&token))
        .json();
    assert_eq!(corrected["fees"], json!([]));
    assert_eq!(corrected["computation"]["costs"]["amount"], "1000");
    assert_eq!(corrected["computation"]["total_tax"], "3406.00");

    // A payout of 2025/26 reversed today, in a later tax year: its own year leaves it out.
    let payout_seq = earlier["payouts"][0]["seq"].as_i64().unwrap();
    reverse(app, payout_seq, "paid to the wrong user");
    let earlier = app
        .get(&format!("/v1/users/{user}/tax/2025"), Some(&token))
        .json();
    assert_eq!(
        (earlier["income"].clone(), earlier["payouts"].clone()),
        (json!("0.00"), json!([]))
    );
    let later = app
        .get(&format!("/v1/users/{user}/tax/2026"), Some(&token))
        .json();
    assert_eq!(later["computation"]["total_tax"], "3406.00");
}

fn only_the_user_and_officers_read_a_statement(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let user = uk_miner(app, &platform);
    let other = register(app, &platform, "GB", "en");
    let other_token = app.token(Role::User, None, Some(&other));
    for suffix in ["", "/statement.csv", "/statement.pdf"] {
        let path = format!("/v1/users/{user}/tax/2026{suffix}");
        app.get(&path, Some(&other_token)).problem(403);
        app.get(&path, Some(&platform)).problem(403);
        let regulator = app.token(Role::Regulator, Some("GB"), None);
        app.get(&path, Some(&regulator)).problem(403);
    }
    let officer = app.token(Role::Officer, None, None);
    assert_eq!(
        app.get(&format!("/v1/users/{user}/tax/2026"), Some(&officer))
            .status,
        200
    );
    // The user's own empty year is fine: no payouts, no tax.
    let empty = app
        .get(&format!("/v1/users/{other}/tax/2026"), Some(&other_token))
        .json();
    assert_eq!(empty["computation"]["total_tax"], "0.00");
}

fn unknown_years_and_jurisdictions_are_named(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let officer = app.token(Role::Officer, None, None);
    let user = register(app, &platform, "CH", "de-CH");
    let token = app.token(Role::User, None, Some(&user));
    let problem = app
        .get(&format!("/v1/users/{user}/tax/2019"), Some(&token))
        .problem(422);
    assert_eq!(problem["errors"][0]["field"], "year");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("CH has no tax rules for the tax year 2019"),
        "{problem}"
    );
    assert_eq!(
        app.get(&format!("/v1/users/{user}/tax/last-year"), Some(&token))
            .problem_fields(400),
        vec!["year"]
    );
    assert_eq!(
        app.get(
            &format!("/v1/users/{user}/tax/2025?classification=hobby"),
            Some(&token)
        )
        .problem_fields(400),
        vec!["classification"]
    );
    let nobody = uuid::Uuid::new_v4();
    app.get(&format!("/v1/users/{nobody}/tax/2025"), Some(&officer))
        .problem(404);
    // A user in a country without rules.
    let french = register(app, &platform, "FR", "fr");
    let problem = app
        .get(&format!("/v1/users/{french}/tax/2025"), Some(&officer))
        .problem(422);
    assert_eq!(problem["errors"][0]["field"], "jurisdiction");

    let list = app.get("/v1/jurisdictions", Some(&token)).json();
    let codes: Vec<&str> = list["jurisdictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|jurisdiction| jurisdiction["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["AU", "CA", "CH", "CN", "DE", "GB", "HK", "JP", "KZ", "SG", "US"]
    );
    let germany = app.get("/v1/jurisdictions/DE", Some(&token)).json();
    assert_eq!(germany["tax"]["years"][1]["version"], "DE-2026.1");
    assert_eq!(
        germany["tax"]["years"][1]["schedules"]["miscellaneous"]["exempt_below"],
        "256"
    );
    let missing = app.get("/v1/jurisdictions/XX", Some(&token)).problem(404);
    assert!(missing["detail"].as_str().unwrap().contains("XX"));
    let regulator = app.token(Role::Regulator, Some("HK"), None);
    app.get("/v1/jurisdictions", Some(&regulator)).problem(403);
}

/// Text of a PDF, read by poppler's pdftotext.
pub(crate) fn pdf_text(bytes: &[u8]) -> String {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("statement.pdf");
    std::fs::write(&path, bytes).unwrap();
    let output = std::process::Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("run pdftotext");
    assert!(output.status.success(), "pdftotext failed");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
#[cfg_attr(
    not(hashgate_pdf_tests),
    ignore = "PDF suite SKIPPED: pdftotext not found (apt-get install poppler-utils)"
)]
fn a_chinese_statement_shows_the_name_totals_and_hash_on_every_page() {
    let app = TestApp::spawn(hashgate::db::Backend::Sqlite);
    let platform = app.token(Role::Platform, None, None);
    let user = register(&app, &platform, "CN", "zh-Hans");
    let token = app.token(Role::User, None, Some(&user));
    let application = json!({
        "target_tier": 2,
        "personal_data": crate::kyc::personal_data("张伟", "CN", "CN"),
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
    // 400 daily payouts: enough for the appendix to run over several pages.
    let start = chrono::NaiveDate::from_ymd_opt(2024, 12, 1).unwrap();
    let mut rates = Vec::new();
    let mut payouts = Vec::new();
    for day in 0..400 {
        let date = start + chrono::Duration::days(day);
        rates.push(json!({"base": "BTC", "quote": "USD", "as_of": format!("{date}T00:00:00Z"), "rate": "100000"}));
        rates.push(json!({"base": "USD", "quote": "CNY", "as_of": format!("{date}T00:00:00Z"), "rate": "7.1"}));
        payouts.push(payout(
            &user,
            &format!("cn-{day}"),
            "0.001",
            &format!("{date}T16:30:00Z"),
        ));
    }
    load(&app, &platform, json!(rates), json!(payouts));

    let report = app
        .get(&format!("/v1/users/{user}/tax/2025"), Some(&token))
        .json();
    // 16:30 UTC is 00:30 the next day in Shanghai: the payout of 2024-12-31 is 2025 income,
    // and 2025 ends with the payout of 2025-12-30. 365 × 0.001 × 100,000 × 7.1 = 259,150.
    assert_eq!(report["income"], "259150.00");
    assert_eq!(report["payouts"][0]["month"], "2025-01");
    assert_eq!(report["payouts"].as_array().unwrap().len(), 365);
    // 259,150 − 60,000 = 199,150: 1,500 + 6,000 + 109,150 × 20% = 29,330.
    assert_eq!(report["computation"]["total_tax"], "29330.00");
    let hash = report["data_sha256"].as_str().unwrap().to_string();

    let response = app.get(
        &format!("/v1/users/{user}/tax/2025/statement.pdf"),
        Some(&token),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("content-type"), Some("application/pdf"));
    let bytes = response.bytes.clone();
    assert!(bytes.starts_with(b"%PDF-"));
    let text = pdf_text(&bytes);
    assert!(text.contains("张伟"), "the name is missing:\n{text}");
    assert!(text.contains("挖矿收入纳税估算表"), "{text}");
    assert!(text.contains("259,150.00 CNY"), "{text}");
    assert!(text.contains("29,330.00 CNY"), "{text}");
    assert!(text.contains("2025-01-01 – 2025-12-31"), "{text}");
    let pages: Vec<&str> = text
        .split('\u{c}')
        .filter(|page| !page.trim().is_empty())
        .collect();
    assert!(pages.len() >= 5, "{} pages", pages.len());
    for (index, page) in pages.iter().enumerate() {
        assert!(page.contains(&hash), "page {} has no hash", index + 1);
        assert!(
            page.contains(&format!("第 {} 页，共 {} 页", index + 1, pages.len())),
            "page {}",
            index + 1
        );
    }
    // The font is embedded as a subset, not whole (the full face is megabytes).
    assert!(bytes.len() < 400_000, "{} bytes", bytes.len());
}

/// The elements of an XML document as `path=text` lines (attributes as `path@name=value`), read
/// by a real XML parser: a malformed document fails here.
fn xml_lines(xml: &str) -> Vec<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(element) => {
                path.push(element.name().0.to_string());
                for attribute in element.attributes() {
                    let attribute = attribute.unwrap();
                    lines.push(format!(
                        "{}@{}={}",
                        path.join("/"),
                        attribute.key.0,
                        attribute
                            .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                            .unwrap()
                    ));
                }
            }
            Event::Text(text) => {
                let text = text.xml10_content().trim().to_string();
                if !text.is_empty() {
                    lines.push(format!("{}={text}", path.join("/")));
                }
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(path.is_empty(), "unclosed elements: {path:?}");
    lines
}

fn a_carf_export_reports_each_residents_mining_per_asset(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let admin = app.token(Role::Admin, None, None);
    let alice = register(app, &platform, "HK", "en");
    let bob = register(app, &platform, "HK", "zh-Hant");
    let singapore = register(app, &platform, "SG", "en");
    let usdt = |user: &str, id: &str, amount: &str, at: &str| {
        let mut row = payout(user, id, amount, at);
        row["asset"] = json!("USDT");
        row
    };
    load(
        app,
        &platform,
        json!([
            {"base": "BTC", "quote": "USD", "as_of": "2024-12-31T00:00:00Z", "rate": "100000"},
            {"base": "USD", "quote": "HKD", "as_of": "2024-12-31T00:00:00Z", "rate": "7.8"},
            {"base": "BTC", "quote": "USD", "as_of": "2025-05-31T12:00:00Z", "rate": "100000"},
            {"base": "USDT", "quote": "USD", "as_of": "2025-05-31T12:00:00Z", "rate": "1.0"},
            {"base": "USD", "quote": "HKD", "as_of": "2025-05-31T12:00:00Z", "rate": "7.8"},
            {"base": "BTC", "quote": "USD", "as_of": "2025-12-31T00:00:00Z", "rate": "100000"},
            {"base": "USD", "quote": "HKD", "as_of": "2025-12-31T00:00:00Z", "rate": "7.8"}
        ]),
        json!([
            // 16:30 UTC on 31 Dec 2024 is 00:30 on 1 Jan 2025 in Hong Kong: reported for 2025.
            payout(&alice, "a-1", "0.01", "2024-12-31T16:30:00Z"),
            payout(&alice, "a-2", "0.02", "2025-06-01T00:00:00Z"),
            usdt(&alice, "a-3", "100", "2025-06-01T00:00:00Z"),
            payout(&bob, "b-1", "0.05", "2025-06-01T00:00:00Z"),
            // 2026 in Hong Kong: not reported for 2025.
            payout(&bob, "b-2", "0.1", "2025-12-31T16:30:00Z"),
            payout(&singapore, "s-1", "0.5", "2025-06-01T00:00:00Z"),
            // Reversed today, in a later year: left out of 2025's report.
            payout(&alice, "a-4", "0.04", "2025-06-01T00:00:00Z"),
        ]),
    );
    let reversed_seq = app.query_text(
        "SELECT CAST(seq AS TEXT) AS value FROM ledger_entries WHERE external_id = 'a-4'",
    );
    reverse(app, reversed_seq[0].parse().unwrap(), "paid twice");

    let response = app.get("/v1/exports/carf?jurisdiction=HK&year=2025", Some(&admin));
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("content-type"), Some("application/xml"));
    let lines = xml_lines(&response.body);
    let has = |line: &str| lines.iter().any(|candidate| candidate == line);
    for expected in [
        "CARF_OECD@version=1.5",
        "CARF_OECD@xmlns=urn:oecd:ties:carf:v1",
        "CARF_OECD/MessageSpec/ReceivingCountry=HK",
        "CARF_OECD/MessageSpec/MessageType=CARF",
        "CARF_OECD/MessageSpec/MessageTypeIndic=CARF701",
        "CARF_OECD/MessageSpec/ReportingPeriod=2025-12-31",
        "CARF_OECD/CARFBody/RCASP/Nexus=CARF901",
        "CARF_OECD/CARFBody/RCASP/DocSpec/stf:DocTypeIndic=OECD1",
    ] {
        assert!(has(expected), "{expected} missing from {lines:#?}");
    }
    let users = lines
        .iter()
        .filter(|line| {
            line.starts_with("CARF_OECD/CARFBody/CryptoUsers/UserID/Individual/ResCountryCode=")
        })
        .count();
    assert_eq!(users, 2, "{lines:#?}");
    // Per user and asset, in user-id order: each block's type, count, value and units.
    let transfers: Vec<&str> = lines
        .iter()
        .filter_map(|line| {
            line.strip_prefix("CARF_OECD/CARFBody/CryptoUsers/RelevantTransactions/")
        })
        .collect();
    let alice_blocks = [
        "CryptoAsset=BTC",
        "CryptoTransferIn/TransferType=CARF503",
        "CryptoTransferIn/NumberofTransactions=2",
        "CryptoTransferIn/Amount@currCode=HKD",
        "CryptoTransferIn/Amount=23400.00",
        "CryptoTransferIn/NumberofUnits=0.03",
        "CryptoAsset=USDT",
        "CryptoTransferIn/TransferType=CARF503",
        "CryptoTransferIn/NumberofTransactions=1",
        "CryptoTransferIn/Amount@currCode=HKD",
        "CryptoTransferIn/Amount=780.00",
        "CryptoTransferIn/NumberofUnits=100",
    ];
    let bob_blocks = [
        "CryptoAsset=BTC",
        "CryptoTransferIn/TransferType=CARF503",
        "CryptoTransferIn/NumberofTransactions=1",
        "CryptoTransferIn/Amount@currCode=HKD",
        "CryptoTransferIn/Amount=39000.00",
        "CryptoTransferIn/NumberofUnits=0.05",
    ];
    let expected: Vec<&str> = if alice < bob {
        alice_blocks.iter().chain(&bob_blocks).copied().collect()
    } else {
        bob_blocks.iter().chain(&alice_blocks).copied().collect()
    };
    assert_eq!(transfers, expected);
    assert_eq!(
        app.query_text("SELECT action AS value FROM audit_log WHERE action = 'carf.export'"),
        vec!["carf.export"]
    );

    // The command line writes the same report.
    let path = app.directory().join("carf.xml");
    let output = app.command(&[
        "export",
        "carf",
        "--jurisdiction",
        "HK",
        "--year",
        "2025",
        "--test",
        "--output",
        path.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file_lines = xml_lines(&std::fs::read_to_string(&path).unwrap());
    assert!(file_lines
        .contains(&"CARF_OECD/CARFBody/RCASP/DocSpec/stf:DocTypeIndic=OECD11".to_string()));
    let file_transfers: Vec<&str> = file_lines
        .iter()
        .filter_map(|line| {
            line.strip_prefix("CARF_OECD/CARFBody/CryptoUsers/RelevantTransactions/")
        })
        .collect();
    assert_eq!(file_transfers, expected);
    assert!(String::from_utf8_lossy(&output.stderr).contains("2 users"));

    app.get(
        "/v1/exports/carf?jurisdiction=HK&year=2025",
        Some(&platform),
    )
    .problem(403);
    app.get("/v1/exports/carf?jurisdiction=XX&year=2025", Some(&admin))
        .problem(404);
    assert_eq!(
        app.get("/v1/exports/carf?jurisdiction=HK", Some(&admin))
            .problem_fields(400),
        vec!["year"]
    );
}
