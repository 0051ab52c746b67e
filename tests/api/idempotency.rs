use hashgate::auth::Role;
use serde_json::json;

use crate::backend_tests;
use crate::common::TestApp;

backend_tests!(
    a_repeat_returns_the_first_response,
    a_different_body_under_the_same_key_conflicts,
    concurrent_repeats_act_once,
    token_secrets_are_not_replayed
);

fn user_count(app: &TestApp) -> String {
    app.query_text("SELECT CAST(COUNT(*) AS TEXT) AS value FROM users")[0].clone()
}

fn a_repeat_returns_the_first_response(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let body =
        json!({"external_ref": "idem-1", "email": "i@example.com", "residence_jurisdiction": "CH"});
    let key = [("Idempotency-Key", "0b9d7c2e-first")];
    let first = app.post_with("/v1/users", Some(&platform), &body, &key);
    assert_eq!(first.status, 201);
    let second = app.post_with("/v1/users", Some(&platform), &body, &key);
    assert_eq!(second.status, 201);
    assert_eq!(second.json(), first.json());
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(user_count(app), "1");

    // Keys belong to the token that sent them.
    let other_platform = app.token(Role::Platform, None, None);
    app.post_with("/v1/users", Some(&other_platform), &body, &key)
        .problem(409);

    let bad_key = app.post_with(
        "/v1/users",
        Some(&platform),
        &body,
        &[("Idempotency-Key", "")],
    );
    assert_eq!(bad_key.problem_fields(422), vec!["Idempotency-Key"]);
}

fn a_different_body_under_the_same_key_conflicts(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let key = [("Idempotency-Key", "reused-key")];
    let first = app.post_with(
        "/v1/users",
        Some(&platform),
        &json!({"external_ref": "idem-2", "email": "i@example.com", "residence_jurisdiction": "CH"}),
        &key,
    );
    assert_eq!(first.status, 201);
    let conflict = app.post_with(
        "/v1/users",
        Some(&platform),
        &json!({"external_ref": "idem-3", "email": "i@example.com", "residence_jurisdiction": "CH"}),
        &key,
    );
    assert!(conflict.problem(409)["detail"]
        .as_str()
        .unwrap()
        .contains("reused-key"));
    assert_eq!(user_count(app), "1");
}

fn concurrent_repeats_act_once(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let body =
        json!({"external_ref": "race", "email": "r@example.com", "residence_jurisdiction": "KZ"});
    let responses: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    let response = app.post_with(
                        "/v1/users",
                        Some(&platform),
                        &body,
                        &[("Idempotency-Key", "race-key")],
                    );
                    (response.status, response.body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ids: Vec<String> = responses
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 201, "{body}");
            serde_json::from_str::<serde_json::Value>(body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(user_count(app), "1");
}

fn token_secrets_are_not_replayed(app: &TestApp) {
    let admin = app.token(Role::Admin, None, None);
    let key = [("Idempotency-Key", "token-once")];
    let body = json!({"name": "nightly export", "role": "platform"});
    let first = app
        .post_with("/v1/tokens", Some(&admin), &body, &key)
        .json();
    assert!(first["token"].as_str().unwrap().starts_with("hgt_"));
    let replay = app.post_with("/v1/tokens", Some(&admin), &body, &key);
    assert_eq!(replay.status, 201);
    let replay = replay.json();
    assert!(replay["token"].is_null());
    assert_eq!(replay["id"], first["id"]);
}
