//! The generated access sweep: every secured operation of the OpenAPI document, called with no
//! token, a revoked token, a user's token and a regulator's token, against the table below of
//! what those callers may reach. A user's own-record routes are called with another user's id
//! (IDOR) and must refuse it; every refusal of an authenticated caller is in the audit log.

use hashgate::auth::Role;
use serde_json::json;

use crate::backend_tests;
use crate::common::TestApp;
use crate::kyc::{multipart, personal_data, tier2_documents};

backend_tests!(every_operation_admits_only_its_callers_and_no_user_reads_another);

/// What a user's token may reach, for their own id only.
const USER_OWN: [(&str, &str); 10] = [
    ("GET", "/v1/users/{id}"),
    ("GET", "/v1/users/{id}/balances"),
    ("GET", "/v1/users/{id}/ledger"),
    ("GET", "/v1/users/{id}/footprint"),
    ("GET", "/v1/users/{id}/tax/{year}"),
    ("GET", "/v1/users/{id}/tax/{year}/statement.csv"),
    ("GET", "/v1/users/{id}/tax/{year}/statement.pdf"),
    ("GET", "/v1/orders/{id}"),
    ("GET", "/v1/orders/{id}/certificate.pdf"),
    ("GET", "/v1/orders/{id}/hours"),
];

/// What a user's token may reach that names no record in its path: the tax rules, their own
/// KYC status, and submitting their own KYC application (checked for Bob's id below).
const USER_GENERAL: [(&str, &str); 4] = [
    ("GET", "/v1/jurisdictions"),
    ("GET", "/v1/jurisdictions/{code}"),
    ("GET", "/v1/kyc/status"),
    ("POST", "/v1/kyc/applications"),
];

/// What a regulator's token may reach: its own jurisdiction's reports, nothing else.
const REGULATOR: [(&str, &str); 5] = [
    ("GET", "/v1/reports"),
    ("GET", "/v1/reports/{id}"),
    ("GET", "/v1/reports/{id}/files/{name}"),
    ("GET", "/v1/reports/{id}/verify"),
    ("POST", "/v1/reports/{id}/verify"),
];

/// The secured operations of the document, as (method, path template).
fn secured_operations(app: &TestApp) -> Vec<(String, String)> {
    let document = app.get("/openapi.json", None).json();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation.get("security").is_some() {
                operations.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(
        operations.len() > 80,
        "{} secured operations",
        operations.len()
    );
    operations
}

/// The template with its parameters filled: `{id}` with `subject` on user routes and a record
/// of `subject` elsewhere where one is given, otherwise an unknown id.
fn fill(template: &str, subject: &str, order: &str) -> String {
    let unknown = uuid::Uuid::new_v4().to_string();
    let id = if template.starts_with("/v1/users/") {
        subject
    } else if template.starts_with("/v1/orders/") {
        order
    } else {
        &unknown
    };
    template
        .replace("{id}", id)
        .replace("{year}", "2026")
        .replace("{code}", "HK")
        .replace("{name}", "report.pdf")
        .replace("{source}", "ofac")
        .replace("{document_id}", &unknown)
        .replace("{note_id}", &unknown)
        .replace("{address_id}", &unknown)
}

fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let body =
        (method != "GET" && method != "DELETE").then(|| ("application/json", b"{}".to_vec()));
    let key = uuid::Uuid::new_v4().to_string();
    let response = app.request(method, path, token, body, &[("Idempotency-Key", &key)]);
    (response.status, response.body)
}

/// A Norwegian facility, once per test database.
fn facility(app: &TestApp, platform: &str) -> String {
    let admin = app.token(Role::Admin, None, None);
    let loaded = app.post(
        "/v1/emission-factors",
        Some(&admin),
        &json!({"factors": [{"dataset": "test-factors", "version": "1", "zone": "NO2",
            "year": 2023, "basis": "lifecycle", "g_per_kwh": "18", "source": "tests"}]}),
    );
    assert_eq!(loaded.status, 200, "{}", loaded.body);
    let facility = app.post(
        "/v1/facilities",
        Some(platform),
        &json!({"name": "Access test", "country": "NO", "market_zone": "NO2", "pue": "1.1",
                "miners": [{"model": "Antminer S19j Pro", "hashrate_ths": "100",
                            "power_w": 3050, "units": 10}]}),
    );
    assert_eq!(facility.status, 201, "{}", facility.body);
    facility.json()["id"].as_str().unwrap().to_string()
}

/// A day's order of `user`.
fn order_of(app: &TestApp, platform: &str, facility: &str, user: &str) -> String {
    let order = app.post(
        "/v1/orders",
        Some(platform),
        &json!({"order_id": format!("access-{user}"), "user_id": user, "facility_id": facility,
            "hashrate_ths": "100", "starts_at": "2026-11-01T00:00:00Z",
            "ends_at": "2026-11-02T00:00:00Z"}),
    );
    assert_eq!(order.status, 201, "{}", order.body);
    order.json()["id"].as_str().unwrap().to_string()
}

fn every_operation_admits_only_its_callers_and_no_user_reads_another(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let alice = app.create_user(&platform, "access-alice");
    let bob = app.create_user(&platform, "access-bob");
    let site = facility(app, &platform);
    let alice_order = order_of(app, &platform, &site, &alice);
    let bob_order = order_of(app, &platform, &site, &bob);
    let user = app.token(Role::User, None, Some(&alice));
    let regulator = app.token(Role::Regulator, Some("HK"), None);
    let revoked = app.revoked_token();

    let is = |table: &[(&str, &str)], method: &str, path: &str| {
        table.iter().any(|(m, p)| *m == method && *p == path)
    };
    let mut wrong = Vec::new();
    let mut refused_authenticated = 0;
    for (method, template) in secured_operations(app) {
        let (method, template) = (method.as_str(), template.as_str());
        let against_bob = fill(template, &bob, &bob_order);
        for (who, token) in [
            ("no token", None),
            ("a revoked token", Some(revoked.as_str())),
        ] {
            let (status, body) = call(app, method, &against_bob, token);
            if status != 401 {
                wrong.push(format!(
                    "{method} {against_bob} with {who}: {status} {body}"
                ));
            }
        }

        // The user: their own records, general reads, and nothing of Bob's.
        let (status, body) = call(app, method, &against_bob, Some(&user));
        let general = is(&USER_GENERAL, method, template);
        let refused = status == 403 || (template.contains('{') && status == 404);
        if general {
            if status == 401 || status == 403 {
                wrong.push(format!(
                    "{method} {against_bob} as a user: refused {status}"
                ));
            }
        } else if !refused {
            wrong.push(format!("{method} {against_bob} as Alice: {status} {body}"));
        }
        refused_authenticated += usize::from(status == 403);
        if is(&USER_OWN, method, template) {
            let own = fill(template, &alice, &alice_order);
            let (status, body) = call(app, method, &own, Some(&user));
            if status == 401 || status == 403 {
                wrong.push(format!("{method} {own} as its owner: {status} {body}"));
            }
        }

        // The regulator: its reports, and nothing else.
        let (status, body) = call(app, method, &against_bob, Some(&regulator));
        if is(&REGULATOR, method, template) {
            if status == 401 || status == 403 {
                wrong.push(format!(
                    "{method} {against_bob} as a regulator: refused {status}"
                ));
            }
        } else if !(status == 403 || (template.contains('{') && status == 404)) {
            wrong.push(format!(
                "{method} {against_bob} as a regulator: {status} {body}"
            ));
        }
        refused_authenticated += usize::from(status == 403);
    }
    // A user cannot apply for KYC, or read the status, in another user's name.
    let (content_type, body) = multipart(
        &json!({"user_id": bob, "target_tier": 2,
                "personal_data": personal_data("Bob Builder", "GB", "HK")}),
        &tier2_documents(),
    );
    let applied = app.request(
        "POST",
        "/v1/kyc/applications",
        Some(&user),
        Some((&content_type, body)),
        &[],
    );
    if applied.status != 403 {
        wrong.push(format!(
            "Alice applied for Bob's KYC: {} {}",
            applied.status, applied.body
        ));
    }
    refused_authenticated += 1;
    let status = app.get(&format!("/v1/kyc/status?user_id={bob}"), Some(&user));
    if status.status != 403 {
        wrong.push(format!("Alice read Bob's KYC status: {}", status.status));
    }
    refused_authenticated += 1;
    assert!(
        wrong.is_empty(),
        "{} wrong answers:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // Every refusal of a known caller is in the audit log, with the path it tried.
    let audited: usize = app.query_text(
        "SELECT CAST(COUNT(*) AS TEXT) AS value FROM audit_log WHERE action = 'access.denied'",
    )[0]
    .parse()
    .unwrap();
    assert!(
        audited >= refused_authenticated,
        "{audited} audited refusals for {refused_authenticated} refused requests"
    );
}
