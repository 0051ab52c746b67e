//! The generated access sweep: every secured operation of the OpenAPI document, called with no
//! token, a revoked token and a token of every role, against the tables below of what each
//! caller may reach. A user's own-record routes are called with their own and another user's ids
//! (IDOR), a regulator's report routes with a report of its own jurisdiction and of another;
//! every refusal of an authenticated caller is in the audit log.

use hashgate::auth::Role;
use serde_json::json;

use crate::backend_tests;
use crate::common::TestApp;
use crate::kyc::{multipart, personal_data, tier2_documents};
use crate::reports::{current_month_singapore, current_quarter, generate};

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

/// What the staff roles may call: every secured operation, with the staff roles it admits (a
/// user and a regulator are checked against the tables above). Only regulator tokens are bound
/// to a jurisdiction; staff tokens reach every jurisdiction by design (DESIGN.md, roles).
const STAFF: &[(&str, &str, &[&str])] = &[
    ("GET", "/v1/alerts", &["officer", "senior_officer"]),
    (
        "POST",
        "/v1/allocations",
        &["officer", "senior_officer", "admin"],
    ),
    ("GET", "/v1/audit", &["officer", "senior_officer", "admin"]),
    ("GET", "/v1/cases", &["officer", "senior_officer"]),
    ("POST", "/v1/cases", &["officer", "senior_officer"]),
    ("GET", "/v1/cases/{id}", &["officer", "senior_officer"]),
    (
        "POST",
        "/v1/cases/{id}/alerts",
        &["officer", "senior_officer"],
    ),
    (
        "POST",
        "/v1/cases/{id}/close",
        &["officer", "senior_officer"],
    ),
    (
        "POST",
        "/v1/cases/{id}/notes",
        &["officer", "senior_officer"],
    ),
    (
        "GET",
        "/v1/cases/{id}/notes/{note_id}/file",
        &["officer", "senior_officer"],
    ),
    (
        "POST",
        "/v1/cases/{id}/str-report",
        &["officer", "senior_officer"],
    ),
    (
        "POST",
        "/v1/certificates",
        &["officer", "senior_officer", "admin"],
    ),
    (
        "GET",
        "/v1/certificates/{id}",
        &["officer", "senior_officer", "admin"],
    ),
    (
        "POST",
        "/v1/certificates/{id}/status",
        &["officer", "senior_officer", "admin"],
    ),
    (
        "GET",
        "/v1/emission-factors",
        &["platform", "officer", "senior_officer", "admin"],
    ),
    ("POST", "/v1/emission-factors", &["admin"]),
    ("GET", "/v1/exports/carf", &["admin"]),
    (
        "GET",
        "/v1/facilities",
        &["platform", "officer", "senior_officer", "admin"],
    ),
    ("POST", "/v1/facilities", &["platform", "admin"]),
    (
        "GET",
        "/v1/facilities/{id}",
        &["platform", "officer", "senior_officer", "admin"],
    ),
    ("POST", "/v1/fees", &["platform"]),
    (
        "GET",
        "/v1/jurisdictions",
        &["platform", "officer", "senior_officer", "admin"],
    ),
    (
        "GET",
        "/v1/jurisdictions/{code}",
        &["platform", "officer", "senior_officer", "admin"],
    ),
    (
        "GET",
        "/v1/kyc/applications",
        &["officer", "senior_officer"],
    ),
    ("POST", "/v1/kyc/applications", &["platform"]),
    (
        "GET",
        "/v1/kyc/applications/{id}",
        &["officer", "senior_officer"],
    ),
    (
        "POST",
        "/v1/kyc/applications/{id}/audit-report",
        &["officer", "senior_officer"],
    ),
    (
        "POST",
        "/v1/kyc/applications/{id}/claim",
        &["officer", "senior_officer"],
    ),
    (
        "POST",
        "/v1/kyc/applications/{id}/decision",
        &["officer", "senior_officer"],
    ),
    (
        "GET",
        "/v1/kyc/applications/{id}/documents/{document_id}",
        &["officer", "senior_officer"],
    ),
    (
        "POST",
        "/v1/kyc/applications/{id}/release",
        &["officer", "senior_officer"],
    ),
    (
        "POST",
        "/v1/kyc/applications/{id}/resubmission",
        &["platform"],
    ),
    (
        "GET",
        "/v1/kyc/status",
        &["platform", "officer", "senior_officer"],
    ),
    (
        "POST",
        "/v1/ledger/integrity-reports",
        &["officer", "senior_officer", "admin"],
    ),
    (
        "GET",
        "/v1/ledger/summary",
        &["officer", "senior_officer", "admin"],
    ),
    ("GET", "/v1/lists", &["officer", "senior_officer", "admin"]),
    ("POST", "/v1/lists/{source}", &["admin"]),
    (
        "POST",
        "/v1/matching/runs",
        &["officer", "senior_officer", "admin"],
    ),
    ("POST", "/v1/monitoring/batch", &["senior_officer", "admin"]),
    ("POST", "/v1/orders", &["platform"]),
    (
        "GET",
        "/v1/orders/{id}",
        &["platform", "officer", "senior_officer", "admin"],
    ),
    (
        "GET",
        "/v1/orders/{id}/certificate.pdf",
        &["platform", "officer", "senior_officer", "admin"],
    ),
    (
        "GET",
        "/v1/orders/{id}/hours",
        &["platform", "officer", "senior_officer", "admin"],
    ),
    ("POST", "/v1/payouts", &["platform"]),
    ("POST", "/v1/prices", &["platform", "admin"]),
    ("GET", "/v1/report-schedules", &["admin"]),
    ("POST", "/v1/report-schedules", &["admin"]),
    ("POST", "/v1/report-schedules/{id}/disable", &["admin"]),
    (
        "GET",
        "/v1/reports",
        &["officer", "senior_officer", "admin"],
    ),
    (
        "POST",
        "/v1/reports",
        &["officer", "senior_officer", "admin"],
    ),
    (
        "GET",
        "/v1/reports/{id}",
        &["officer", "senior_officer", "admin"],
    ),
    (
        "GET",
        "/v1/reports/{id}/files/{name}",
        &["officer", "senior_officer", "admin"],
    ),
    (
        "GET",
        "/v1/reports/{id}/verify",
        &["officer", "senior_officer", "admin"],
    ),
    (
        "POST",
        "/v1/reports/{id}/verify",
        &["officer", "senior_officer", "admin"],
    ),
    (
        "POST",
        "/v1/retirements",
        &["officer", "senior_officer", "admin"],
    ),
    (
        "POST",
        "/v1/screening/address",
        &["platform", "officer", "senior_officer"],
    ),
    (
        "POST",
        "/v1/screening/entity",
        &["platform", "officer", "senior_officer"],
    ),
    ("GET", "/v1/screening/hits", &["officer", "senior_officer"]),
    (
        "POST",
        "/v1/screening/hits/{id}/approval",
        &["senior_officer"],
    ),
    (
        "POST",
        "/v1/screening/hits/{id}/review",
        &["officer", "senior_officer"],
    ),
    (
        "GET",
        "/v1/screening/jobs",
        &["officer", "senior_officer", "admin"],
    ),
    ("POST", "/v1/screening/jobs", &["senior_officer", "admin"]),
    (
        "GET",
        "/v1/screening/jobs/{id}",
        &["officer", "senior_officer", "admin"],
    ),
    (
        "POST",
        "/v1/screening/person",
        &["platform", "officer", "senior_officer"],
    ),
    ("GET", "/v1/tokens", &["admin"]),
    ("POST", "/v1/tokens", &["admin"]),
    ("POST", "/v1/tokens/{id}/revoke", &["admin"]),
    ("POST", "/v1/users", &["platform"]),
    (
        "GET",
        "/v1/users/{id}",
        &["officer", "senior_officer", "admin"],
    ),
    (
        "GET",
        "/v1/users/{id}/addresses",
        &["platform", "officer", "senior_officer"],
    ),
    ("POST", "/v1/users/{id}/addresses", &["platform"]),
    (
        "DELETE",
        "/v1/users/{id}/addresses/{address_id}",
        &["platform"],
    ),
    (
        "POST",
        "/v1/users/{id}/addresses/{address_id}/approval",
        &["officer", "senior_officer"],
    ),
    (
        "GET",
        "/v1/users/{id}/balances",
        &["platform", "officer", "senior_officer", "admin"],
    ),
    (
        "GET",
        "/v1/users/{id}/footprint",
        &["officer", "senior_officer", "admin"],
    ),
    (
        "GET",
        "/v1/users/{id}/ledger",
        &["platform", "officer", "senior_officer", "admin"],
    ),
    (
        "GET",
        "/v1/users/{id}/tax/{year}",
        &["officer", "senior_officer", "admin"],
    ),
    (
        "GET",
        "/v1/users/{id}/tax/{year}/statement.csv",
        &["officer", "senior_officer", "admin"],
    ),
    (
        "GET",
        "/v1/users/{id}/tax/{year}/statement.pdf",
        &["officer", "senior_officer", "admin"],
    ),
    ("GET", "/v1/withdrawals", &["officer", "senior_officer"]),
    ("POST", "/v1/withdrawals", &["platform"]),
    (
        "GET",
        "/v1/withdrawals/{id}",
        &["platform", "officer", "senior_officer"],
    ),
    (
        "POST",
        "/v1/withdrawals/{id}/audit-report",
        &["officer", "senior_officer"],
    ),
    (
        "POST",
        "/v1/withdrawals/{id}/reject",
        &["officer", "senior_officer"],
    ),
    (
        "POST",
        "/v1/withdrawals/{id}/release",
        &["officer", "senior_officer"],
    ),
    ("POST", "/v1/withdrawals/{id}/settlement", &["platform"]),
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

/// The records a path's `{id}` may name.
struct Subjects<'a> {
    user: &'a str,
    order: &'a str,
    report: &'a str,
}

/// The template with its parameters filled: `{id}` with the subject's user, order or report on
/// those routes, otherwise an unknown id.
fn fill(template: &str, subjects: &Subjects) -> String {
    let unknown = uuid::Uuid::new_v4().to_string();
    let id = if template.starts_with("/v1/users/") {
        subjects.user
    } else if template.starts_with("/v1/orders/") {
        subjects.order
    } else if template.starts_with("/v1/reports/") {
        subjects.report
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
    // Enough of the body to tell the answer, not a page of records.
    let body = response.body.chars().take(300).collect();
    (response.status, body)
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
    let officer = app.token(Role::Officer, None, None);
    let alice = app.create_user(&platform, "access-alice");
    let bob = app.create_user(&platform, "access-bob");
    let site = facility(app, &platform);
    let alice_order = order_of(app, &platform, &site, &alice);
    let bob_order = order_of(app, &platform, &site, &bob);
    let hk_report = generate(app, "HK", &current_quarter())["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sg_report = generate(app, "SG", &current_month_singapore())["id"]
        .as_str()
        .unwrap()
        .to_string();
    let user = app.token(Role::User, None, Some(&alice));
    let regulator = app.token(Role::Regulator, Some("HK"), None);
    let revoked = app.revoked_token();
    let staff = [
        ("platform", platform.clone()),
        ("officer", officer.clone()),
        ("senior_officer", app.token(Role::SeniorOfficer, None, None)),
        ("admin", app.token(Role::Admin, None, None)),
    ];
    // Bob's records, and the report of the regulator's own jurisdiction (HK) or another's (SG).
    let bobs = Subjects {
        user: &bob,
        order: &bob_order,
        report: &sg_report,
    };
    let own = Subjects {
        user: &alice,
        order: &alice_order,
        report: &hk_report,
    };

    let is = |table: &[(&str, &str)], method: &str, path: &str| {
        table.iter().any(|(m, p)| *m == method && *p == path)
    };
    let operations = secured_operations(app);
    let mut wrong = Vec::new();
    for (method, path, _) in STAFF {
        if !operations.iter().any(|(m, p)| m == method && p == path) {
            wrong.push(format!(
                "{method} {path} is in the table but not in the document"
            ));
        }
    }
    let mut refused_authenticated = 0;
    for (method, template) in &operations {
        let (method, template) = (method.as_str(), template.as_str());
        let against_bob = fill(template, &bobs);
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

        // Staff: exactly the roles the table names, on any subject and jurisdiction.
        let Some((_, _, admitted)) = STAFF
            .iter()
            .find(|(m, p, _)| *m == method && *p == template)
        else {
            wrong.push(format!(
                "{method} {template} is missing from the STAFF table"
            ));
            continue;
        };
        for (role, token) in &staff {
            let (status, body) = call(app, method, &against_bob, Some(token));
            let refused = status == 403;
            if admitted.contains(role) == refused || status == 401 {
                wrong.push(format!("{method} {against_bob} as {role}: {status} {body}"));
            }
            refused_authenticated += usize::from(refused);
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
            let own = fill(template, &own);
            let (status, body) = call(app, method, &own, Some(&user));
            if status == 401 || status == 403 {
                wrong.push(format!("{method} {own} as its owner: {status} {body}"));
            }
        }

        // The HK regulator: HK's reports, not SG's, and nothing else.
        let (status, body) = call(app, method, &against_bob, Some(&regulator));
        let refused = status == 403 || (template.contains('{') && status == 404);
        // Only the report list names no record; with SG's report or Bob's ids, all is refused.
        let the_report_list = is(&REGULATOR, method, template) && !template.contains('{');
        if !refused && !the_report_list {
            wrong.push(format!(
                "{method} {against_bob} as the HK regulator: {status} {body}"
            ));
        }
        refused_authenticated += usize::from(status == 403);
        if is(&REGULATOR, method, template) {
            let own = fill(template, &own);
            let (status, body) = call(app, method, &own, Some(&regulator));
            if status == 401 || status == 403 || status == 404 {
                wrong.push(format!(
                    "{method} {own} as the HK regulator: {status} {body}"
                ));
            }
        }
    }
    // A token revoked mid-session: admitted up to its revocation, refused from the next request.
    let admin = &staff[3].1;
    let made = app
        .post(
            "/v1/tokens",
            Some(admin),
            &json!({"name": "mid-session", "role": "officer"}),
        )
        .json();
    let secret = made["token"].as_str().unwrap();
    let before = app.get("/v1/alerts", Some(secret)).status;
    let revoked = app.post(
        &format!("/v1/tokens/{}/revoke", made["id"].as_str().unwrap()),
        Some(admin),
        &json!({"reason": "left the team"}),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let after = app.get("/v1/alerts", Some(secret)).status;
    if (before, after) != (200, 401) {
        wrong.push(format!(
            "a token revoked mid-session: {before} then {after}"
        ));
    }
    // A regulator cannot list another jurisdiction's reports.
    let listed = app.get("/v1/reports?jurisdiction=SG", Some(&regulator));
    if listed.status != 403 {
        wrong.push(format!(
            "the HK regulator listed SG's reports: {}",
            listed.status
        ));
    }
    refused_authenticated += 1;
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
