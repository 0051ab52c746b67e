//! The officers' console: a real browser (headless Chromium over WebDriver) logs in, works the
//! queue and approves under four eyes; and without a browser, forged forms, planted sessions,
//! revoked tokens and non-officers are refused.

use hashgate::auth::Role;
use serde_json::json;

use crate::backend_tests;
use crate::common::TestApp;
use crate::kyc::{multipart, personal_data, tier2_documents};

backend_tests!(the_console_refuses_forged_forms_planted_sessions_and_revoked_tokens);

/// A token made through the API, with a display name: (id, secret).
fn named_token(app: &TestApp, admin: &str, name: &str, role: &str) -> (String, String) {
    let created = app.post(
        "/v1/tokens",
        Some(admin),
        &json!({ "name": name, "role": role }),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    (
        created["id"].as_str().unwrap().to_string(),
        created["token"].as_str().unwrap().to_string(),
    )
}

/// Submits an application through the API for a new user; returns its id.
fn application(
    app: &TestApp,
    platform: &str,
    name: &str,
    nationality: &str,
    residence: &str,
    pep: bool,
) -> String {
    let mut data = personal_data(name, nationality, residence);
    data["pep_declared"] = json!(pep);
    submit_for_new_user(app, platform, data)
}

fn submit_for_new_user(app: &TestApp, platform: &str, data: serde_json::Value) -> String {
    let user_id = app.create_user(
        platform,
        &format!("console-{}", uuid::Uuid::new_v4().simple()),
    );
    let (content_type, body) = multipart(
        &json!({ "user_id": user_id, "target_tier": 2, "personal_data": data }),
        &tier2_documents(),
    );
    let response = app.request(
        "POST",
        "/v1/kyc/applications",
        Some(platform),
        Some((&content_type, body)),
        &[],
    );
    assert_eq!(response.status, 201, "{}", response.body);
    response.json()["id"].as_str().unwrap().to_string()
}

#[test]
#[cfg_attr(
    not(hashgate_browser_tests),
    ignore = "browser suite SKIPPED: chromedriver not found (apt-get install chromium chromium-driver, or set HASHGATE_TEST_CHROMEDRIVER)"
)]
fn an_officer_works_the_queue_in_a_browser_with_four_eyes() {
    let app = TestApp::spawn(hashgate::db::Backend::Sqlite);
    let admin = app.token(Role::Admin, None, None);
    let platform = app.token(Role::Platform, None, None);
    let (_, alice) = named_token(&app, &admin, "Alice Chan", "senior_officer");
    let (_, bob) = named_token(&app, &admin, "Bob Keller", "senior_officer");
    let ofac = format!("{}/ofac", crate::screening::sanctions_dir());
    let imported = app.command(&["lists", "import", "--source", "ofac-sdn", &ofac]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let pep = application(&app, &platform, "Margaret Thatcherson", "GB", "HK", true);
    let mut listed = personal_data("Victor Anatolyevich Bout", "RU", "KZ");
    listed["date_of_birth"] = json!("1967-01-13");
    let near_match = submit_for_new_user(&app, &platform, listed);
    application(&app, &platform, "张伟", "CN", "SG", false);
    application(&app, &platform, "Nguyễn Văn An", "VN", "SG", false);
    application(&app, &platform, "Zoë Müller", "DE", "CH", false);

    let browser = crate::webdriver::Browser::start();
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../console-screenshots");
    let login = |token: &str| {
        browser.go(&format!("{}/console", app.base));
        assert!(
            browser.url().ends_with("/console/login"),
            "{}",
            browser.url()
        );
        browser.find("#token").type_text(token);
        browser.find("#login").click();
        browser.find("#queue");
    };

    // A planted session id is never adopted: logging in issues a new one.
    browser.go(&format!("{}/console/login", app.base));
    browser.set_cookie("hg_session", "planted-by-an-attacker", "/console");
    login(&alice);
    let session = browser.cookie("hg_session").expect("a session cookie");
    assert_ne!(session, "planted-by-an-attacker");

    // The queue: the PEP first (high risk), every script rendered, SLA and risk shown.
    let queue = browser.find("#queue").text();
    assert!(
        queue.contains("Margaret Thatcherson")
            && queue.contains("张伟")
            && queue.contains("Nguyễn Văn An"),
        "{queue}"
    );
    let first_row = browser.find("#queue tbody tr").text();
    assert!(first_row.starts_with("high"), "{first_row}");
    browser.screenshot(&shots.join("queue.png"));

    // Keyboard: j moves down, k back up, Enter opens the selected application.
    browser.press("j");
    browser.press("k");
    browser.press("\u{E007}");
    browser.find("#actions");
    assert!(
        browser
            .url()
            .ends_with(&format!("/console/applications/{pep}")),
        "{}",
        browser.url()
    );
    assert!(browser.find("#four-eyes").text().contains("pep"));

    browser.find("#claim").click();
    browser.wait_text("#notice", "Claimed until");
    browser.find("#decide-approve").click();
    browser
        .find("#reason")
        .type_text("Passport, selfie and address verified; PEP status documented.");
    browser.find("#submit-decision").click();
    browser.wait_text("#notice", "a different senior officer must now confirm");
    browser.wait_text("#status", "approval pending");
    browser.screenshot(&shots.join("application.png"));
    // The first approver cannot also be the second.
    browser.find("#claim").click();
    browser.wait_text("#error", "four eyes");

    browser.find("header form button").click();
    login(&bob);
    browser.go(&format!("{}/console/applications/{pep}", app.base));
    browser.find("#claim").click();
    browser.find("#decide-approve").click();
    browser
        .find("#reason")
        .type_text("Second review: agree with the first approval.");
    browser.find("#submit-decision").click();
    browser.wait_text("#notice", "approved");
    browser.wait_text("#status", "approved");
    let history = browser.find("#history").text();
    assert!(
        history.contains("kyc.second_approval")
            && history.contains("Bob Keller")
            && history.contains("Alice Chan"),
        "{history}"
    );
    // Documents are shown inline to the officer.
    assert!(browser.has(".documents img"));
    browser.screenshot(&shots.join("approved.png"));

    // A near-match of a listed person: the hit beside the list entry, confirmed, then rejected
    // with a code the applicant is not told.
    browser.go(&format!("{}/console/applications/{near_match}", app.base));
    let hit = browser.find(".hit").text();
    assert!(
        hit.contains("BOUT, Viktor Anatolijevitch") && hit.contains("1967-01-13"),
        "{hit}"
    );
    browser
        .find(".hit-review input[name=reason]")
        .type_text("Same name, birth date and nationality as the listed arms dealer.");
    browser.find(".hit-review button[value=confirm]").click();
    browser.wait_text("#notice", "confirmed");
    browser.find("#claim").click();
    browser.find("#decide-reject").click();
    browser
        .find("#reason")
        .type_text("Confirmed sanctions match (OFAC SDN 8279).");
    browser
        .find("select[name=reason_code] option[value=sanctions_match]")
        .click();
    browser.find("#submit-decision").click();
    browser.wait_text("#status", "rejected");
    let mail = app.query_text(&format!(
        "SELECT template AS value FROM email_outbox WHERE related_id = '{near_match}'"
    ));
    assert_eq!(mail, vec!["kyc_rejected"]);
}

fn the_console_refuses_forged_forms_planted_sessions_and_revoked_tokens(app: &TestApp) {
    let admin = app.token(Role::Admin, None, None);
    let platform = app.token(Role::Platform, None, None);
    let (officer_id, officer) = named_token(app, &admin, "Olga Officer", "officer");
    let id = application(app, &platform, "Ada Lovelace", "GB", "HK", false);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let cookie_of = |response: &ureq::http::Response<ureq::Body>, name: &str| -> Option<String> {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with(&format!("{name}=")))
            .map(|value| value.split(';').next().unwrap()[name.len() + 1..].to_string())
    };
    let login = |token: &str, planted: Option<&str>| -> (u16, Option<String>) {
        let mut page = agent
            .get(&format!("{}/console/login", app.base))
            .call()
            .unwrap();
        let login_csrf = cookie_of(&page, "hg_login_csrf").unwrap();
        let html = page.body_mut().read_to_string().unwrap();
        assert!(html.contains(&login_csrf));
        let mut cookies = format!("hg_login_csrf={login_csrf}");
        if let Some(planted) = planted {
            cookies.push_str(&format!("; hg_session={planted}"));
        }
        let response = agent
            .post(&format!("{}/console/login", app.base))
            .header("Cookie", &cookies)
            .content_type("application/x-www-form-urlencoded")
            .send(
                serde_urlencoded::to_string([("csrf", login_csrf.as_str()), ("token", token)])
                    .unwrap(),
            )
            .unwrap();
        (
            response.status().as_u16(),
            cookie_of(&response, "hg_session"),
        )
    };
    let get = |path: &str, session: &str| {
        agent
            .get(&format!("{}{path}", app.base))
            .header("Cookie", &format!("hg_session={session}"))
            .call()
            .unwrap()
    };

    // Not logged in: the pages send you to the login.
    let anonymous = agent
        .get(&format!("{}/console/queue", app.base))
        .call()
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 303);
    // Users, the platform and admins have no console; unknown tokens neither.
    for token in [
        platform.clone(),
        admin.clone(),
        "hgt_not-a-token".to_string(),
    ] {
        assert_eq!(login(&token, None), (401, None));
    }
    // A planted session id is ignored and replaced.
    let (status, session) = login(&officer, Some("planted"));
    assert_eq!(status, 303);
    let session = session.unwrap();
    assert_ne!(session, "planted");
    assert_eq!(get("/console/queue", "planted").status().as_u16(), 303);
    let mut queue = get("/console/queue", &session);
    assert_eq!(queue.status().as_u16(), 200);
    assert_eq!(queue.headers().get("x-frame-options").unwrap(), "DENY");
    assert!(queue
        .body_mut()
        .read_to_string()
        .unwrap()
        .contains("Ada Lovelace"));

    // A form without the session's CSRF token, or from another origin, changes nothing.
    let mut page = get(&format!("/console/applications/{id}"), &session);
    let html = page.body_mut().read_to_string().unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let post = |body: String, origin: Option<&str>| {
        let mut request = agent
            .post(&format!("{}/console/applications/{id}/claim", app.base))
            .header("Cookie", &format!("hg_session={session}"))
            .content_type("application/x-www-form-urlencoded");
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        request.send(body).unwrap().status().as_u16()
    };
    assert_eq!(post(String::new(), None), 403);
    assert_eq!(post("csrf=forged".into(), None), 403);
    assert_eq!(
        post(format!("csrf={csrf}"), Some("https://evil.example")),
        403
    );
    let unclaimed = app.query_text(&format!(
        "SELECT COALESCE(assignee_id, 'nobody') AS value FROM kyc_applications WHERE id = '{id}'"
    ));
    assert_eq!(unclaimed, vec!["nobody"]);
    assert_eq!(post(format!("csrf={csrf}"), Some(&app.base)), 303);
    let claimed = app.query_text(&format!(
        "SELECT assignee_id AS value FROM kyc_applications WHERE id = '{id}'"
    ));
    assert_eq!(claimed, vec![officer_id.clone()]);

    // A platform user logs in to their own statements, and to nothing else.
    let user_id = app.create_user(&platform, "console-user");
    let (status, user_session) = login(&app.token(Role::User, None, Some(&user_id)), None);
    assert_eq!(status, 303);
    let user_session = user_session.unwrap();
    // …and to their rental orders' green certificates.
    let factors = app.post(
        "/v1/emission-factors",
        Some(&admin),
        &json!({"factors": [{"dataset": "test", "version": "1", "zone": "IS", "year": 2023,
                             "basis": "lifecycle", "g_per_kwh": "27.68", "source": "test"}]}),
    );
    assert_eq!(factors.status, 200, "{}", factors.body);
    let facility = app.post(
        "/v1/facilities",
        Some(&platform),
        &json!({"name": "Reykjanes", "country": "IS", "market_zone": "IS", "pue": "1.04",
                "miners": [{"model": "Antminer S21", "hashrate_ths": "200", "power_w": 3500, "units": 10}]}),
    );
    assert_eq!(facility.status, 201, "{}", facility.body);
    let order = app.post(
        "/v1/orders",
        Some(&platform),
        &json!({"order_id": "console-order-1", "user_id": user_id,
                "facility_id": facility.json()["id"], "hashrate_ths": "100",
                "starts_at": "2026-03-01T00:00:00Z", "ends_at": "2026-03-31T00:00:00Z"}),
    );
    assert_eq!(order.status, 201, "{}", order.body);
    let order_id = order.json()["id"].as_str().unwrap().to_string();
    let mut statements = get("/console/me", &user_session);
    assert_eq!(statements.status().as_u16(), 200);
    let html = statements.body_mut().read_to_string().unwrap();
    assert!(
        html.contains("HK-2025/26.1") && html.contains("2026/27"),
        "{html}"
    );
    // 100 TH/s × 17.5 J/TH × PUE 1.04 × 720 h = 1,310.4 kWh.
    assert!(
        html.contains("console-order-1") && html.contains("1310.4 kWh"),
        "{html}"
    );
    let certificate = get(
        &format!("/console/me/orders/{order_id}/certificate.pdf"),
        &user_session,
    );
    assert_eq!(
        certificate.headers().get("content-type").unwrap(),
        "application/pdf"
    );
    let mut csv = get(
        "/console/me/statement?year=2025&classification=business&format=csv",
        &user_session,
    );
    assert_eq!(csv.status().as_u16(), 200);
    assert!(csv
        .body_mut()
        .read_to_string()
        .unwrap()
        .starts_with("kind,ledger_seq,"));
    let pdf = get("/console/me/statement?year=2025&format=pdf", &user_session);
    assert_eq!(
        pdf.headers().get("content-type").unwrap(),
        "application/pdf"
    );
    assert_eq!(get("/console/queue", &user_session).status().as_u16(), 403);
    assert_eq!(get("/console/me", &session).status().as_u16(), 403);
    let (_, other_session) = login(
        &app.token(Role::User, None, Some(&app.create_user(&platform, "other"))),
        None,
    );
    assert_eq!(
        get(
            &format!("/console/me/orders/{order_id}/certificate.pdf"),
            &other_session.unwrap()
        )
        .status()
        .as_u16(),
        403
    );

    // Revoking the token ends its console session at the next request.
    let revoked = app.post(
        &format!("/v1/tokens/{officer_id}/revoke"),
        Some(&admin),
        &json!({ "reason": "left the team" }),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(get("/console/queue", &session).status().as_u16(), 303);
    let logins = app.query_text(&format!("SELECT action AS value FROM audit_log WHERE subject_id = '{officer_id}' AND action = 'console.login'"));
    assert_eq!(logins.len(), 1);
}
