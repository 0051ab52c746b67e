//! Every kind of bad input gets a 4xx problem naming what is wrong; none gets a 500.

use hashgate::auth::Role;
use serde_json::json;

use crate::backend_tests;
use crate::common::{TestApp, TEST_BODY_LIMIT};

backend_tests!(
    malformed_json_is_a_bad_request,
    wrong_content_type_is_unsupported,
    oversize_bodies_are_refused,
    unknown_fields_are_named,
    bad_uuids_are_named,
    bad_enum_values_are_named,
    invalid_fields_are_all_listed,
    bad_query_parameters_are_named,
    unknown_routes_and_methods_are_problems,
    missing_and_malformed_authorization_is_unauthorized
);

fn malformed_json_is_a_bad_request(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    for body in [
        &b"{\"external_ref\": "[..],
        b"not json",
        b"",
        b"{\"external_ref\":\"a\",\"email\":\"a@b.co\",\"residence_jurisdiction\":\"HK\"} {}",
    ] {
        let response = app.request(
            "POST",
            "/v1/users",
            Some(&platform),
            Some(("application/json", body.to_vec())),
            &[],
        );
        let problem = response.problem(400);
        assert_eq!(problem["type"], "/problems/bad-request");
    }
    let response = app.request(
        "POST",
        "/v1/users",
        Some(&platform),
        Some(("application/json", b"{\"email\": \"a@b.co\",}".to_vec())),
        &[],
    );
    assert!(response.problem(400)["detail"]
        .as_str()
        .unwrap()
        .contains("line 1"));
}

fn wrong_content_type_is_unsupported(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let body = json!({"external_ref": "a", "email": "a@b.co", "residence_jurisdiction": "HK"});
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        let response = app.request(
            "POST",
            "/v1/users",
            Some(&platform),
            Some((content_type, body.to_string().into_bytes())),
            &[],
        );
        assert_eq!(
            response.problem(415)["type"],
            "/problems/unsupported-media-type"
        );
    }
    let missing = app.request("POST", "/v1/users", Some(&platform), None, &[]);
    missing.problem(415);
    let charset = app.request(
        "POST",
        "/v1/users",
        Some(&platform),
        Some((
            "application/json; charset=utf-8",
            body.to_string().into_bytes(),
        )),
        &[],
    );
    assert_eq!(charset.status, 201, "{}", charset.body);
}

fn oversize_bodies_are_refused(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let padding = "x".repeat(TEST_BODY_LIMIT + 1);
    let body = json!({"external_ref": "a", "email": "a@b.co", "residence_jurisdiction": "HK", "address": padding});
    let response = app.post("/v1/users", Some(&platform), &body);
    let problem = response.problem(413);
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains(&TEST_BODY_LIMIT.to_string()));
}

fn unknown_fields_are_named(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let response = app.post(
        "/v1/users",
        Some(&platform),
        &json!({"external_ref": "a", "email": "a@b.co", "residence_jurisdiction": "HK", "nickname": "x"}),
    );
    assert_eq!(response.problem_fields(422), vec!["nickname"]);
    assert_eq!(response.json()["errors"][0]["code"], "unknown_field");
}

fn bad_uuids_are_named(app: &TestApp) {
    let admin = app.token(Role::Admin, None, None);
    let response = app.get("/v1/users/not-a-uuid", Some(&admin));
    assert_eq!(response.problem_fields(400), vec!["id"]);
    let response = app.post(
        "/v1/tokens/123/revoke",
        Some(&admin),
        &json!({"reason": "left the company"}),
    );
    assert_eq!(response.problem_fields(400), vec!["id"]);
    let response = app.post(
        "/v1/tokens",
        Some(&admin),
        &json!({"name": "u", "role": "user", "user_id": "nope"}),
    );
    assert_eq!(response.problem_fields(400), vec!["user_id"]);
}

fn bad_enum_values_are_named(app: &TestApp) {
    let admin = app.token(Role::Admin, None, None);
    let response = app.post(
        "/v1/tokens",
        Some(&admin),
        &json!({"name": "x", "role": "superuser"}),
    );
    assert_eq!(response.problem_fields(422), vec!["role"]);
    assert_eq!(response.json()["errors"][0]["code"], "invalid_enum");
    let response = app.post("/v1/tokens", Some(&admin), &json!({"name": "x", "role": 7}));
    assert_eq!(response.problem_fields(422), vec!["role"]);
}

fn invalid_fields_are_all_listed(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let response = app.post(
        "/v1/users",
        Some(&platform),
        &json!({"external_ref": "", "email": "not-an-email", "residence_jurisdiction": "XX",
                "preferred_language": "English"}),
    );
    assert_eq!(
        response.problem_fields(422),
        vec![
            "email",
            "external_ref",
            "preferred_language",
            "residence_jurisdiction"
        ]
    );
    let response = app.post(
        "/v1/users",
        Some(&platform),
        &json!({"external_ref": "a", "email": "a@b.co", "residence_jurisdiction": "HK", "date_of_birth": "2999-01-01"}),
    );
    assert_eq!(response.problem_fields(422), vec!["date_of_birth"]);
    let response = app.post(
        "/v1/users",
        Some(&platform),
        &json!({"external_ref": "a", "email": "a@b.co", "residence_jurisdiction": "HK", "date_of_birth": "1990-02-30"}),
    );
    assert_eq!(response.problem_fields(422), vec!["date_of_birth"]);
    let response = app.post("/v1/users", Some(&platform), &json!({"email": "a@b.co"}));
    let fields = response.problem_fields(422);
    assert_eq!(fields.len(), 1);
    assert!(fields[0] == "external_ref" || fields[0] == "residence_jurisdiction");
    let response = app.post("/v1/users", Some(&platform), &json!([1, 2]));
    response.problem(422);
}

fn bad_query_parameters_are_named(app: &TestApp) {
    let admin = app.token(Role::Admin, None, None);
    for (query, field) in [
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("cursor=-5", "cursor"),
        ("from=yesterday", "from"),
        ("colour=blue", "colour"),
    ] {
        let response = app.get(&format!("/v1/audit?{query}"), Some(&admin));
        assert_eq!(response.problem_fields(400), vec![field], "{query}");
    }
    let response = app.get("/v1/tokens?include_revoked=maybe", Some(&admin));
    assert_eq!(response.problem_fields(400), vec!["include_revoked"]);
}

fn unknown_routes_and_methods_are_problems(app: &TestApp) {
    app.get("/v1/nothing-here", None).problem(404);
    let response = app.request("DELETE", "/v1/users", None, None, &[]);
    assert_eq!(
        response.problem(405)["type"],
        "/problems/method-not-allowed"
    );
    app.request("PUT", "/healthz", None, None, &[]).problem(405);
}

fn missing_and_malformed_authorization_is_unauthorized(app: &TestApp) {
    for header in [
        None,
        Some("Basic dXNlcjpwYXNz"),
        Some("Bearer"),
        Some("Bearer hgt_unknown"),
    ] {
        let headers: Vec<(&str, &str)> = header.map(|h| ("Authorization", h)).into_iter().collect();
        let response = app.request("GET", "/v1/audit", None, None, &headers);
        response.problem(401);
        assert!(response
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer"));
    }
}
