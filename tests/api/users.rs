use hashgate::auth::Role;
use serde_json::json;

use crate::backend_tests;
use crate::common::TestApp;

backend_tests!(
    platform_registers_a_user_with_personal_data_encrypted_at_rest,
    a_user_reads_only_their_own_record,
    duplicate_external_references_conflict,
    names_in_any_script_are_accepted
);

fn platform_registers_a_user_with_personal_data_encrypted_at_rest(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let officer = app.token(Role::Officer, None, None);
    let created = app.post(
        "/v1/users",
        Some(&platform),
        &json!({
            "external_ref": "plat-u-1",
            "email": "wei.zhang@example.hk",
            "residence_jurisdiction": "HK",
            "preferred_language": "zh-Hant-HK",
            "date_of_birth": "1988-04-12",
            "address": "Flat 12B, 88 Queen's Road Central"
        }),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_string();

    let read = app.get(&format!("/v1/users/{id}"), Some(&officer));
    assert_eq!(read.status, 200);
    let user = read.json();
    assert_eq!(user["email"], "wei.zhang@example.hk");
    assert_eq!(user["date_of_birth"], "1988-04-12");
    assert_eq!(user["address"], "Flat 12B, 88 Queen's Road Central");
    assert_eq!(user["preferred_language"], "zh-Hant-HK");
    assert_eq!(user["residence_jurisdiction"], "HK");

    let stored = app.query_text(&format!(
        "SELECT email_encrypted || '|' || date_of_birth_encrypted || '|' || address_encrypted AS value \
         FROM users WHERE id = '{id}'"
    ));
    assert_eq!(stored.len(), 1);
    for plaintext in ["wei.zhang", "1988-04-12", "Queen"] {
        assert!(
            !stored[0].contains(plaintext),
            "{plaintext} stored in clear: {}",
            stored[0]
        );
    }
    assert!(
        stored[0].starts_with("v2:"),
        "each value names its key: {}",
        stored[0]
    );

    // The officer's read of personal data is in the audit log.
    let admin = app.token(Role::Admin, None, None);
    let views = app
        .get(
            &format!("/v1/audit?action=user.view&subject_id={id}"),
            Some(&admin),
        )
        .json();
    assert_eq!(views["items"].as_array().unwrap().len(), 1);
    assert_eq!(views["items"][0]["actor_role"], "officer");
}

fn a_user_reads_only_their_own_record(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let own = app.create_user(&platform, "own");
    let other = app.create_user(&platform, "other");
    let user_token = app.token(Role::User, None, Some(&own));
    let read = app.get(&format!("/v1/users/{own}"), Some(&user_token));
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["external_ref"], "own");
    app.get(&format!("/v1/users/{other}"), Some(&user_token))
        .problem(403);
    let missing = uuid::Uuid::new_v4();
    let admin = app.token(Role::Admin, None, None);
    app.get(&format!("/v1/users/{missing}"), Some(&admin))
        .problem(404);
}

fn duplicate_external_references_conflict(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    app.create_user(&platform, "dup");
    let again = app.post(
        "/v1/users",
        Some(&platform),
        &json!({"external_ref": "dup", "email": "x@example.com", "residence_jurisdiction": "SG"}),
    );
    let problem = again.problem(409);
    assert!(problem["detail"].as_str().unwrap().contains("dup"));
}

fn names_in_any_script_are_accepted(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let admin = app.token(Role::Admin, None, None);
    let created = app.post(
        "/v1/users",
        Some(&platform),
        &json!({"external_ref": "张伟-Müller-O'Brien", "email": "m@example.de",
                "residence_jurisdiction": "DE", "address": "Königstraße 1, 70173 Stuttgart"}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let user = app.get(&format!("/v1/users/{id}"), Some(&admin)).json();
    assert_eq!(user["external_ref"], "张伟-Müller-O'Brien");
    assert_eq!(user["address"], "Königstraße 1, 70173 Stuttgart");
}
