use hashgate::auth::Role;
use serde_json::json;

use crate::backend_tests;
use crate::common::TestApp;

backend_tests!(
    admin_creates_lists_and_revokes_tokens,
    only_the_hash_of_a_token_is_stored,
    token_grants_are_validated
);

fn admin_creates_lists_and_revokes_tokens(app: &TestApp) {
    let admin = app.token(Role::Admin, None, None);
    let created = app.post(
        "/v1/tokens",
        Some(&admin),
        &json!({"name": "SFC examiner", "role": "regulator", "jurisdiction": "HK"}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    let secret = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(secret.starts_with("hgt_"));
    assert_eq!(created["role"], "regulator");
    assert_eq!(created["jurisdiction"], "HK");

    // The new token authenticates: a regulator may not read tokens, so 403, not 401.
    app.get("/v1/tokens", Some(&secret)).problem(403);

    let listed = app.get("/v1/tokens", Some(&admin)).json();
    let entry = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .expect("new token listed");
    assert!(entry.get("token").is_none() && entry.get("token_hash").is_none());

    let revoked = app.post(
        &format!("/v1/tokens/{id}/revoke"),
        Some(&admin),
        &json!({"reason": "examination finished"}),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(revoked.json()["revoke_reason"], "examination finished");
    app.get("/v1/tokens", Some(&secret)).problem(401);
    app.post(
        &format!("/v1/tokens/{id}/revoke"),
        Some(&admin),
        &json!({"reason": "again"}),
    )
    .problem(409);
    let missing = uuid::Uuid::new_v4();
    app.post(
        &format!("/v1/tokens/{missing}/revoke"),
        Some(&admin),
        &json!({"reason": "none"}),
    )
    .problem(404);

    let active = app.get("/v1/tokens", Some(&admin)).json();
    assert!(active["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["id"] != id.as_str()));
    let all = app
        .get("/v1/tokens?include_revoked=true", Some(&admin))
        .json();
    assert!(all["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == id.as_str()));

    let audit = app
        .get(&format!("/v1/audit?subject_id={id}"), Some(&admin))
        .json();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["token.revoke", "token.create"]);
    assert_eq!(audit["items"][0]["reason"], "examination finished");
}

fn only_the_hash_of_a_token_is_stored(app: &TestApp) {
    let admin = app.token(Role::Admin, None, None);
    let created = app
        .post(
            "/v1/tokens",
            Some(&admin),
            &json!({"name": "ops", "role": "officer"}),
        )
        .json();
    let secret = created["token"].as_str().unwrap();
    let stored = app.query_text("SELECT token_hash AS value FROM api_tokens");
    assert!(stored
        .iter()
        .all(|hash| !hash.contains(secret) && hash.len() == 64));
    assert!(stored.contains(&hashgate::auth::hash_token(secret)));
    let responses = app.query_text("SELECT response_body AS value FROM idempotency_keys");
    assert!(responses.iter().all(|body| !body.contains(secret)));
}

fn token_grants_are_validated(app: &TestApp) {
    let admin = app.token(Role::Admin, None, None);
    let cases = [
        (json!({"name": "r", "role": "regulator"}), "jurisdiction"),
        (
            json!({"name": "r", "role": "regulator", "jurisdiction": "ZZ"}),
            "jurisdiction",
        ),
        (
            json!({"name": "o", "role": "officer", "jurisdiction": "HK"}),
            "jurisdiction",
        ),
        (json!({"name": "u", "role": "user"}), "user_id"),
        (
            json!({"name": "u", "role": "user", "user_id": uuid::Uuid::new_v4().to_string()}),
            "user_id",
        ),
        (json!({"name": "", "role": "admin"}), "name"),
    ];
    for (body, field) in cases {
        let response = app.post("/v1/tokens", Some(&admin), &body);
        assert_eq!(response.problem_fields(422), vec![field], "{body}");
    }
}
