//! KYC applications through their whole life on the real service: submission with documents,
//! the queue, claims (and claim races), decisions with four eyes, requests for information and
//! resubmission, periodic review and lapse, e-mail through a real SMTP server, and who may see
//! what.

use std::time::Duration;

use hashgate::auth::Role;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::common::{Response, TestApp};
use crate::smtp::SmtpServer;

backend_tests!(
    an_application_lives_from_submission_to_approval,
    two_officers_claiming_at_once_get_one_claim,
    four_eyes_needs_a_different_senior_officer,
    request_info_then_resubmit_returns_to_the_queue,
    claims_expire_and_reviews_lapse,
    applicants_never_see_documents_or_other_applications,
    invalid_applications_are_refused_field_by_field,
    mail_waits_in_the_outbox_while_smtp_is_down,
);

/// Small but well-formed files: the service checks content, not names.
pub const JPEG: &[u8] =
    b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xFF\xD9";
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde\x00\x00\x00\x00IEND\xaeB`\x82";
pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";
/// Real, viewable files for the applications the console shows.
pub const ID_CARD: &[u8] = include_bytes!("../../src/demo/documents/identity-card.png");
pub const SELFIE: &[u8] = include_bytes!("../../src/demo/documents/selfie.png");
pub const UTILITY_BILL: &[u8] = include_bytes!("../../src/demo/documents/utility-bill.pdf");

/// A `multipart/form-data` body: the JSON in part `application`, then the files.
pub fn multipart(application: &Value, files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("hashgate{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"application\"\r\nContent-Type: application/json\r\n\r\n{application}\r\n"
        )
        .as_bytes(),
    );
    for (field, file_name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub fn personal_data(name: &str, nationality: &str, residence: &str) -> Value {
    json!({
        "legal_name": name,
        "date_of_birth": "1988-04-12",
        "nationality": nationality,
        "residence": residence,
        "address": "12 Harbour Road, Wan Chai",
        "identity_document": {
            "type": "passport",
            "number": "K1234567",
            "issuing_country": nationality,
            "expires_on": "2031-06-30"
        }
    })
}

pub fn tier2_documents() -> Vec<(&'static str, &'static str, &'static [u8])> {
    vec![
        ("identity_document", "identity-card.png", ID_CARD),
        ("selfie", "selfie.png", SELFIE),
        ("proof_of_address", "utility-bill.pdf", UTILITY_BILL),
    ]
}

fn submit(
    app: &TestApp,
    token: &str,
    application: &Value,
    files: &[(&str, &str, &[u8])],
) -> Response {
    let (content_type, body) = multipart(application, files);
    app.request(
        "POST",
        "/v1/kyc/applications",
        Some(token),
        Some((&content_type, body)),
        &[],
    )
}

struct People {
    platform: String,
    officer: String,
    other_officer: String,
    senior: String,
}

fn people(app: &TestApp) -> People {
    People {
        platform: app.token(Role::Platform, None, None),
        officer: app.token(Role::Officer, None, None),
        other_officer: app.token(Role::Officer, None, None),
        senior: app.token(Role::SeniorOfficer, None, None),
    }
}

/// A user with a token of their own and a submitted tier-2 application.
fn applicant(app: &TestApp, people: &People, name: &str, pep: bool) -> (String, String, String) {
    applicant_speaking(app, people, name, pep, "en")
}

/// An applicant whose e-mail comes in `language`.
fn applicant_speaking(
    app: &TestApp,
    people: &People,
    name: &str,
    pep: bool,
    language: &str,
) -> (String, String, String) {
    let external_ref = format!("kyc-{}", uuid::Uuid::new_v4().simple());
    let created = app.post(
        "/v1/users",
        Some(&people.platform),
        &json!({
            "external_ref": external_ref,
            "email": format!("{external_ref}@example.com"),
            "residence_jurisdiction": "HK",
            "preferred_language": language,
        }),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let user_id = created.json()["id"].as_str().unwrap().to_string();
    let token = app.token(Role::User, None, Some(&user_id));
    let mut data = personal_data(name, "GB", "HK");
    data["pep_declared"] = json!(pep);
    let response = submit(
        app,
        &token,
        &json!({ "target_tier": 2, "personal_data": data }),
        &tier2_documents(),
    );
    assert_eq!(response.status, 201, "{}", response.body);
    let id = response.json()["id"].as_str().unwrap().to_string();
    (user_id, token, id)
}

fn post(app: &TestApp, path: &str, token: &str, body: Value) -> Response {
    app.post(path, Some(token), &body)
}

fn claim(app: &TestApp, id: &str, token: &str) -> Response {
    post(
        app,
        &format!("/v1/kyc/applications/{id}/claim"),
        token,
        json!({}),
    )
}

fn decide(app: &TestApp, id: &str, token: &str, body: Value) -> Response {
    post(
        app,
        &format!("/v1/kyc/applications/{id}/decision"),
        token,
        body,
    )
}

fn approve(app: &TestApp, id: &str, token: &str) -> Response {
    decide(
        app,
        id,
        token,
        json!({ "decision": "approve", "reason": "documents match the data" }),
    )
}

fn an_application_lives_from_submission_to_approval(app: &TestApp) {
    let people = people(app);
    let (user_id, user_token, id) = applicant(app, &people, "Seán O'Brien-Müller", false);

    let queue = app.get(
        "/v1/kyc/applications?jurisdiction=HK&tier=2",
        Some(&people.officer),
    );
    assert_eq!(queue.status, 200, "{}", queue.body);
    let items = queue.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["applicant"], "Seán O'Brien-Müller");
    assert_eq!(items[0]["status"], "submitted");
    assert_eq!(items[0]["risk"], "low");
    assert_eq!(items[0]["sla_breached"], false);

    let detail = app
        .get(&format!("/v1/kyc/applications/{id}"), Some(&people.officer))
        .json();
    assert_eq!(
        detail["personal_data"]["identity_document"]["number"],
        "K1234567"
    );
    assert_eq!(detail["documents"].as_array().unwrap().len(), 3);
    assert_eq!(detail["four_eyes"], json!([]));
    assert_eq!(detail["screening_ids"].as_array().unwrap().len(), 1);
    // 48 hours for tier 2 in HK.
    let submitted = chrono::NaiveDateTime::parse_from_str(
        detail["submitted_at"].as_str().unwrap(),
        "%Y-%m-%dT%H:%M:%S%.fZ",
    )
    .unwrap();
    let due = chrono::NaiveDateTime::parse_from_str(
        detail["due_at"].as_str().unwrap(),
        "%Y-%m-%dT%H:%M:%S%.fZ",
    )
    .unwrap();
    assert_eq!(due - submitted, chrono::Duration::hours(48));
    // The personal data is not readable in the database.
    let stored = app.query_text(&format!(
        "SELECT personal_data_encrypted AS value FROM kyc_applications WHERE id = '{id}'"
    ));
    assert!(!stored[0].contains("K1234567") && !stored[0].contains("Brien"));

    // Deciding without a claim is refused.
    assert_eq!(approve(app, &id, &people.officer).status, 409);
    assert_eq!(claim(app, &id, &people.officer).status, 200);
    let decided = approve(app, &id, &people.officer);
    assert_eq!(decided.status, 200, "{}", decided.body);
    assert_eq!(decided.json()["status"], "approved");

    let status = app.get("/v1/kyc/status", Some(&user_token));
    assert_eq!(status.status, 200, "{}", status.body);
    let status = status.json();
    assert_eq!(status["effective_tier"], 2);
    assert_eq!(status["limits"]["single"], "400000");
    assert_eq!(status["currency"], "HKD");
    assert_eq!(status["application"]["status"], "approved");
    assert!(status.get("risk").is_none());

    let history = app
        .get(&format!("/v1/kyc/applications/{id}"), Some(&people.officer))
        .json()["history"]
        .clone();
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["kyc.approve", "kyc.claim", "kyc.submit"]);
    assert_eq!(history[0]["reason"], "documents match the data");
    // A second application for the same tier is refused; the queue no longer lists the first.
    let again = submit(
        app,
        &user_token,
        &json!({ "target_tier": 2, "personal_data": personal_data("Seán O'Brien-Müller", "GB", "HK") }),
        &tier2_documents(),
    );
    again.problem(409);
    let queue = app
        .get("/v1/kyc/applications", Some(&people.officer))
        .json();
    assert!(queue["items"].as_array().unwrap().is_empty());
    let approved = app
        .get(
            "/v1/kyc/applications?status=approved",
            Some(&people.officer),
        )
        .json();
    assert_eq!(approved["items"][0]["user_id"], user_id.as_str());
    // The decision e-mail waits in the outbox (no SMTP host in this test).
    let outbox = app.query_text(&format!(
        "SELECT template AS value FROM email_outbox WHERE related_id = '{id}'"
    ));
    assert_eq!(outbox, vec!["kyc_approved"]);
}

fn two_officers_claiming_at_once_get_one_claim(app: &TestApp) {
    let people = people(app);
    for round in 0..5 {
        let (_, _, id) = applicant(
            app,
            &people,
            &format!("Race Runner {}", ["A", "B", "C", "D", "E"][round]),
            false,
        );
        let barrier = std::sync::Barrier::new(2);
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = [&people.officer, &people.other_officer]
                .into_iter()
                .map(|token| {
                    let barrier = &barrier;
                    let id = &id;
                    scope.spawn(move || {
                        barrier.wait();
                        claim(app, id, token).status
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap())
                .collect()
        });
        let mut sorted = statuses.clone();
        sorted.sort();
        assert_eq!(sorted, vec![200, 409], "round {round}: {statuses:?}");
        let claims = app.query_text(&format!(
            "SELECT action AS value FROM audit_log WHERE subject_id = '{id}' AND action = 'kyc.claim'"
        ));
        assert_eq!(claims.len(), 1);

        // The winner sends two decisions at once (a double click): one counts.
        let winner = if statuses[0] == 200 {
            &people.officer
        } else {
            &people.other_officer
        };
        let decisions: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = ["reject", "approve"]
                .into_iter()
                .map(|decision| {
                    let barrier = &barrier;
                    let id = &id;
                    scope.spawn(move || {
                        barrier.wait();
                        decide(
                            app,
                            id,
                            winner,
                            json!({ "decision": decision, "reason_code": "other", "reason": "concurrent decision" }),
                        )
                        .status
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap())
                .collect()
        });
        let mut sorted = decisions.clone();
        sorted.sort();
        assert_eq!(sorted, vec![200, 409], "round {round}: {decisions:?}");
        let decided = app.query_text(&format!(
            "SELECT action AS value FROM audit_log WHERE subject_id = '{id}' AND action IN ('kyc.approve', 'kyc.reject')"
        ));
        assert_eq!(decided.len(), 1);
    }
}

fn four_eyes_needs_a_different_senior_officer(app: &TestApp) {
    let people = people(app);
    let second_senior = app.token(Role::SeniorOfficer, None, None);
    let (_, user_token, id) = applicant(app, &people, "Margaret Thatcherson", true);
    let detail = app
        .get(&format!("/v1/kyc/applications/{id}"), Some(&people.officer))
        .json();
    assert_eq!(detail["risk"]["level"], "high");
    assert!(
        detail["four_eyes"]
            .as_array()
            .unwrap()
            .contains(&json!("pep")),
        "{}",
        detail["four_eyes"]
    );
    let queue = app
        .get("/v1/kyc/applications?risk=high", Some(&people.officer))
        .json();
    assert_eq!(queue["items"][0]["priority"], 1);

    // The senior officer gives the first approval...
    assert_eq!(claim(app, &id, &people.senior).status, 200);
    let first = approve(app, &id, &people.senior);
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json()["status"], "approval_pending");
    assert_eq!(
        app.get("/v1/kyc/status", Some(&user_token)).json()["effective_tier"],
        0
    );
    // ...and may not give the second; neither may a plain officer.
    claim(app, &id, &people.senior).problem(403);
    claim(app, &id, &people.officer).problem(403);
    // A different senior officer confirms.
    assert_eq!(claim(app, &id, &second_senior).status, 200);
    let second = approve(app, &id, &second_senior);
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.json()["status"], "approved");
    assert_eq!(
        app.get("/v1/kyc/status", Some(&user_token)).json()["effective_tier"],
        2
    );
    let actions = app.query_text(&format!(
        "SELECT action AS value FROM audit_log WHERE subject_id = '{id}' ORDER BY seq"
    ));
    assert_eq!(
        actions,
        vec![
            "kyc.submit",
            "kyc.claim",
            "kyc.first_approval",
            "kyc.claim",
            "kyc.second_approval"
        ]
    );
    // The database itself refuses one officer in both roles.
    let refused = app.execute_sql(&format!(
        "UPDATE kyc_applications SET second_approver_id = first_approver_id WHERE id = '{id}'"
    ));
    assert!(refused.unwrap_err().contains("four_eyes"));
}

fn request_info_then_resubmit_returns_to_the_queue(app: &TestApp) {
    let people = people(app);
    let (_, user_token, id) = applicant(app, &people, "张伟", false);
    assert_eq!(claim(app, &id, &people.officer).status, 200);
    let asked = decide(
        app,
        &id,
        &people.officer,
        json!({
            "decision": "request_info",
            "reason": "the selfie is blurred",
            "items": [{ "item": "selfie", "message": "Please take a new selfie in good light." }]
        }),
    );
    assert_eq!(asked.status, 200, "{}", asked.body);
    let status = app.get("/v1/kyc/status", Some(&user_token)).json();
    assert_eq!(status["application"]["status"], "info_requested");
    assert_eq!(status["application"]["missing"][0]["item"], "selfie");
    let queue = app
        .get("/v1/kyc/applications", Some(&people.officer))
        .json();
    assert!(queue["items"].as_array().unwrap().is_empty());

    // A file that is not what it claims is refused, naming the part.
    let (content_type, body) =
        multipart(&json!({}), &[("selfie", "selfie.png", b"GIF89a not a png")]);
    let refused = app.request(
        "POST",
        &format!("/v1/kyc/applications/{id}/resubmission"),
        Some(&user_token),
        Some((&content_type, body)),
        &[],
    );
    assert_eq!(refused.problem_fields(422), vec!["documents.selfie"]);

    let (content_type, body) = multipart(&json!({}), &[("selfie", "selfie-2.png", PNG)]);
    let key = [("Idempotency-Key", "resubmit-selfie-1")];
    let replay = (content_type.clone(), body.clone());
    let resubmitted = app.request(
        "POST",
        &format!("/v1/kyc/applications/{id}/resubmission"),
        Some(&user_token),
        Some((&content_type, body)),
        &key,
    );
    assert_eq!(resubmitted.status, 200, "{}", resubmitted.body);
    assert_eq!(resubmitted.json()["documents"].as_array().unwrap().len(), 4);
    // A retry with the same key is answered from the first response; nothing is stored twice.
    let retried = app.request(
        "POST",
        &format!("/v1/kyc/applications/{id}/resubmission"),
        Some(&user_token),
        Some((&replay.0, replay.1)),
        &key,
    );
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    assert_eq!(retried.json(), resubmitted.json());
    let documents = app.query_text(&format!(
        "SELECT id AS value FROM kyc_documents WHERE application_id = '{id}'"
    ));
    assert_eq!(documents.len(), 4);
    let queue = app
        .get("/v1/kyc/applications", Some(&people.officer))
        .json();
    assert_eq!(queue["items"][0]["id"], id.as_str());
    assert_eq!(queue["items"][0]["status"], "submitted");
    // A second resubmission is refused: the application is no longer waiting for information.
    let (content_type, body) = multipart(&json!({}), &[("selfie", "selfie-3.png", PNG)]);
    let again = app.request(
        "POST",
        &format!("/v1/kyc/applications/{id}/resubmission"),
        Some(&user_token),
        Some((&content_type, body)),
        &[],
    );
    again.problem(409);
    // The request for information e-mail is in the user's language: Chinese for zh users.
    let outbox = app.query_text(&format!(
        "SELECT template || ':' || language AS value FROM email_outbox WHERE related_id = '{id}'"
    ));
    assert_eq!(outbox, vec!["kyc_info_requested:en"]);
}

fn claims_expire_and_reviews_lapse(app: &TestApp) {
    let people = people(app);
    let (user_id, user_token, id) = applicant(app, &people, "Ada Lovelace", false);
    assert_eq!(claim(app, &id, &people.officer).status, 200);
    claim(app, &id, &people.other_officer).problem(409);
    // The claim runs out: another officer takes the application.
    app.execute_sql(&format!(
        "UPDATE kyc_applications SET claim_expires_at = submitted_at WHERE id = '{id}'"
    ))
    .unwrap();
    assert_eq!(claim(app, &id, &people.other_officer).status, 200);
    approve(app, &id, &people.officer).problem(409);
    assert_eq!(approve(app, &id, &people.other_officer).status, 200);

    // The periodic review falls due: the daily job opens a review in the queue.
    move_review_back(app, &user_id, 1);
    let output = app.command(&["kyc", "review"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("periodic reviews opened: 1"), "{printed}");
    let queue = app
        .get("/v1/kyc/applications", Some(&people.officer))
        .json();
    assert_eq!(queue["items"][0]["kind"], "periodic_review");
    assert_eq!(queue["items"][0]["user_id"], user_id.as_str());
    assert_eq!(
        app.get("/v1/kyc/status", Some(&user_token)).json()["effective_tier"],
        2
    );

    // Left undone past the 30-day grace period, the review lapses: tier 2 falls to HK's tier 1.
    move_review_back(app, &user_id, 40);
    let output = app.command(&["kyc", "review"]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("reviews lapsed: 1"), "{printed}");
    let status = app.get("/v1/kyc/status", Some(&user_token)).json();
    assert_eq!(status["approved_tier"], 2);
    assert_eq!(status["effective_tier"], 1);
    assert_eq!(status["review_lapsed"], true);
    assert_eq!(status["limits"]["single"], "8000");

    // Approving the review restores the tier.
    let review_id = app
        .get("/v1/kyc/applications", Some(&people.officer))
        .json()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(claim(app, &review_id, &people.officer).status, 200);
    assert_eq!(approve(app, &review_id, &people.officer).status, 200);
    let status = app.get("/v1/kyc/status", Some(&user_token)).json();
    assert_eq!(
        (
            status["effective_tier"].clone(),
            status["review_lapsed"].clone()
        ),
        (json!(2), json!(false))
    );

    // The passport expires in ten days: the job opens a renewal and asks the user for a new one.
    let soon = match app.backend {
        hashgate::db::Backend::Sqlite => "date('now', '+10 days')",
        hashgate::db::Backend::Postgres => "CURRENT_DATE + 10",
    };
    app.execute_sql(&format!(
        "UPDATE kyc_profiles SET document_expires_on = {soon} WHERE user_id = '{user_id}'"
    ))
    .unwrap();
    let output = app.command(&["kyc", "review"]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("document renewals opened: 1"), "{printed}");
    let status = app.get("/v1/kyc/status", Some(&user_token)).json();
    assert_eq!(status["application"]["kind"], "document_renewal");
    assert_eq!(status["application"]["status"], "info_requested");
    assert_eq!(
        status["application"]["missing"][0]["item"],
        "identity_document"
    );
    let renewal = status["application"]["id"].as_str().unwrap().to_string();
    let mail = app.query_text(&format!(
        "SELECT template AS value FROM email_outbox WHERE related_id = '{renewal}'"
    ));
    assert_eq!(mail, vec!["kyc_document_expiring"]);
    // One renewal at a time: the next run opens nothing more.
    let output = app.command(&["kyc", "review"]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("document renewals opened: 0"), "{printed}");

    // The user sends the new passport; once approved, it is the one on file.
    let mut renewed = personal_data("Ada Lovelace", "GB", "HK");
    renewed["identity_document"]["number"] = json!("K7654321");
    renewed["identity_document"]["expires_on"] = json!("2036-03-31");
    let (content_type, body) = multipart(
        &json!({ "personal_data": renewed }),
        &[("identity_document", "new-passport.png", ID_CARD)],
    );
    let answered = app.request(
        "POST",
        &format!("/v1/kyc/applications/{renewal}/resubmission"),
        Some(&user_token),
        Some((&content_type, body)),
        &[],
    );
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert_eq!(claim(app, &renewal, &people.officer).status, 200);
    assert_eq!(approve(app, &renewal, &people.officer).status, 200);
    let on_file = app.query_text(&format!(
        "SELECT CAST(document_expires_on AS TEXT) AS value FROM kyc_profiles WHERE user_id = '{user_id}'"
    ));
    assert_eq!(on_file, vec!["2036-03-31"]);
}

/// Makes the user's periodic review due `days` days before their approval.
fn move_review_back(app: &TestApp, user_id: &str, days: u32) {
    // The server's scheduler runs today's review once at start; under load it may start late.
    // Wait for it, so that the review the test triggers is the one it checks.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app
        .query_text(
            "SELECT job AS value FROM scheduled_runs WHERE job = 'kyc_review' AND finished_at IS NOT NULL",
        )
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the server's daily KYC review never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let earlier = match app.backend {
        hashgate::db::Backend::Sqlite => format!("datetime(approved_at, '-{days} days')"),
        hashgate::db::Backend::Postgres => format!("approved_at - INTERVAL '{days} days'"),
    };
    app.execute_sql(&format!(
        "UPDATE kyc_profiles SET next_review_at = {earlier} WHERE user_id = '{user_id}'"
    ))
    .unwrap();
}

fn applicants_never_see_documents_or_other_applications(app: &TestApp) {
    let people = people(app);
    let (_, first_token, first_id) = applicant(app, &people, "First Person", false);
    let (_, second_token, _) = applicant(app, &people, "Second Person", false);
    let detail = app
        .get(
            &format!("/v1/kyc/applications/{first_id}"),
            Some(&people.officer),
        )
        .json();
    let document = &detail["documents"][0];
    let path = format!(
        "/v1/kyc/applications/{first_id}/documents/{}",
        document["id"].as_str().unwrap()
    );

    // Nobody but officers reads an application or a document, not even its applicant.
    for token in [&first_token, &second_token, &people.platform] {
        app.get(&format!("/v1/kyc/applications/{first_id}"), Some(token))
            .problem(403);
        app.get(&path, Some(token)).problem(403);
        app.get("/v1/kyc/applications", Some(token)).problem(403);
    }
    // A user cannot act on another user's application, nor read their status.
    let (content_type, body) = multipart(&json!({}), &[("selfie", "s.png", PNG)]);
    app.request(
        "POST",
        &format!("/v1/kyc/applications/{first_id}/resubmission"),
        Some(&second_token),
        Some((&content_type, body)),
        &[],
    )
    .problem(404);
    let other_user = detail["user_id"].as_str().unwrap();
    app.get(
        &format!("/v1/kyc/status?user_id={other_user}"),
        Some(&second_token),
    )
    .problem(403);
    // A user applies only for themselves.
    let for_other = submit(
        app,
        &second_token,
        &json!({ "user_id": other_user, "target_tier": 1, "personal_data": personal_data("Second Person", "GB", "HK") }),
        &[],
    );
    for_other.problem(403);

    // The officer gets the exact bytes, and the download is audited.
    let file = app.get(&path, Some(&people.officer));
    assert_eq!(file.status, 200);
    assert_eq!(
        file.header("content-type"),
        Some(document["content_type"].as_str().unwrap())
    );
    assert_eq!(file.bytes, ID_CARD);
    assert_eq!(
        file.header("digest"),
        Some(format!("sha-256={}", hashgate::crypto::sha256_hex(ID_CARD)).as_str())
    );
    let views = app.query_text(&format!(
        "SELECT action AS value FROM audit_log WHERE subject_id = '{first_id}' AND action = 'kyc.view_document'"
    ));
    assert_eq!(views.len(), 1);
    // The stored file is encrypted.
    let stored = app.query_text(&format!(
        "SELECT sha256 AS value FROM kyc_documents WHERE application_id = '{first_id}' AND kind = 'identity_document'"
    ));
    assert_eq!(stored, vec![hashgate::crypto::sha256_hex(ID_CARD)]);
}

fn invalid_applications_are_refused_field_by_field(app: &TestApp) {
    let people = people(app);
    let user_id = app.create_user(&people.platform, "kyc-invalid");
    let mut data = personal_data("R2-D2", "XX", "HK");
    data["identity_document"]["expires_on"] = json!("2020-01-01");
    let response = submit(
        app,
        &people.platform,
        &json!({ "user_id": user_id, "target_tier": 2, "personal_data": data }),
        &tier2_documents(),
    );
    let fields = response.problem_fields(422);
    assert!(
        fields.contains(&"personal_data.legal_name".to_string()),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"personal_data.nationality".to_string()),
        "{fields:?}"
    );

    // An expired document and a missing selfie, both named.
    let mut data = personal_data("Zoë Müller", "DE", "HK");
    data["identity_document"]["expires_on"] = json!("2020-01-01");
    let files = vec![
        ("identity_document", "id.jpg", JPEG),
        ("proof_of_address", "bill.pdf", PDF),
    ];
    let response = submit(
        app,
        &people.platform,
        &json!({ "user_id": user_id, "target_tier": 2, "personal_data": data }),
        &files,
    );
    let fields = response.problem_fields(422);
    assert_eq!(
        fields,
        vec![
            "personal_data.identity_document.expires_on",
            "documents.selfie"
        ]
    );

    // A residence hashgate has no rules for.
    let response = submit(
        app,
        &people.platform,
        &json!({ "user_id": user_id, "target_tier": 1, "personal_data": personal_data("Zoë Müller", "DE", "FR") }),
        &[],
    );
    assert_eq!(
        response.problem_fields(422),
        vec!["personal_data.residence"]
    );
    // A renamed text file is not a passport scan.
    let files = vec![
        ("identity_document", "id.jpg", b"just text" as &[u8]),
        ("selfie", "s.png", PNG),
        ("proof_of_address", "b.pdf", PDF),
    ];
    let response = submit(
        app,
        &people.platform,
        &json!({ "user_id": user_id, "target_tier": 2, "personal_data": personal_data("Zoë Müller", "DE", "HK") }),
        &files,
    );
    assert_eq!(
        response.problem_fields(422),
        vec!["documents.identity_document"]
    );
    // Tier 1 needs no documents and may be sent as plain JSON; names in any script pass.
    for (index, name) in ["张伟", "Мария Иванова", "O'Brien"].iter().enumerate() {
        let user = app.create_user(&people.platform, &format!("kyc-script-{index}"));
        let response = app.post("/v1/kyc/applications", Some(&people.platform), &json!({ "user_id": user, "target_tier": 1, "personal_data": personal_data(name, "CN", "SG") }));
        assert_eq!(response.status, 201, "{name}: {}", response.body);
    }
    // Decisions are validated too.
    let id = app
        .get("/v1/kyc/applications", Some(&people.officer))
        .json()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let response = decide(
        app,
        &id,
        &people.officer,
        json!({ "decision": "reject", "reason_code": "because", "reason": "no" }),
    );
    let fields = response.problem_fields(422);
    assert_eq!(fields, vec!["reason", "reason_code"]);
}

fn mail_waits_in_the_outbox_while_smtp_is_down(backend: &TestApp) {
    // This scenario needs its own server pointed at an SMTP server.
    let mut smtp = SmtpServer::start();
    let app = TestApp::spawn_with(
        backend.backend,
        crate::common::TEST_BODY_LIMIT,
        &[
            ("HASHGATE_SMTP_HOST", "127.0.0.1".into()),
            ("HASHGATE_SMTP_PORT", smtp.port.to_string()),
            ("HASHGATE_SMTP_TLS", "none".into()),
            (
                "HASHGATE_MAIL_FROM",
                "Compliance <compliance@hashgate.test>".into(),
            ),
        ],
    );
    let app = &app;
    let people = people(app);
    let (user_id, _, id) = applicant(app, &people, "Grace Hopper", false);
    assert_eq!(claim(app, &id, &people.officer).status, 200);
    assert_eq!(approve(app, &id, &people.officer).status, 200);
    let received = smtp.wait_for(1, Duration::from_secs(20));
    assert_eq!(received.len(), 1, "the decision e-mail did not arrive");
    let mail = &received[0];
    assert!(mail.to[0].contains("@example.com"), "{:?}", mail.to);
    assert!(
        mail.from.contains("compliance@hashgate.test"),
        "{}",
        mail.from
    );
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Your identity verification is approved")
    );
    let body = mail.body();
    assert!(
        body.contains("Grace Hopper") && body.contains(&id),
        "{body}"
    );
    assert!(body.contains("level 2 (verified)"), "{body}");
    let _ = user_id;

    // The SMTP server goes down: the next message waits, and arrives once it is back.
    smtp.stop();
    let (_, _, second) = applicant_speaking(app, &people, "王芳", false, "zh-Hans");
    assert_eq!(claim(app, &second, &people.officer).status, 200);
    let rejected = decide(
        app,
        &second,
        &people.officer,
        json!({
            "decision": "reject", "reason_code": "document_unreadable", "reason": "The passport photo is unreadable."
        }),
    );
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let attempts = app.query_text(&format!(
            "SELECT CAST(attempts AS TEXT) AS value FROM email_outbox WHERE related_id = '{second}' AND status = 'pending' AND last_error IS NOT NULL"
        ));
        if !attempts.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failed delivery attempt was recorded"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(smtp.received().len(), 1);
    smtp.restart();
    let received = smtp.wait_for(2, Duration::from_secs(40));
    assert_eq!(
        received.len(),
        2,
        "the waiting e-mail was not delivered after the server came back"
    );
    // In the applicant's language: Chinese.
    let body = received[1].body();
    assert!(
        body.contains("王芳，您好") && body.contains("The passport photo is unreadable."),
        "{body}"
    );
    assert!(
        received[1]
            .header("Subject")
            .unwrap()
            .starts_with("=?utf-8?"),
        "{:?}",
        received[1].header("Subject")
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.received().len(), 2, "an e-mail was sent twice");
    let sent = app.query_text("SELECT status AS value FROM email_outbox ORDER BY created_at");
    assert_eq!(sent, vec!["sent", "sent"]);
}
