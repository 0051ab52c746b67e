use hashgate::auth::Role;
use serde_json::json;

use crate::backend_tests;
use crate::common::TestApp;

backend_tests!(
    every_mutation_is_audited_with_actor_and_request_id,
    the_audit_log_pages_and_filters,
    tampering_is_refused_or_detected_by_verify
);

fn every_mutation_is_audited_with_actor_and_request_id(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let admin = app.token(Role::Admin, None, None);
    let created = app.post_with(
        "/v1/users",
        Some(&platform),
        &json!({"external_ref": "a1", "email": "a@b.co", "residence_jurisdiction": "SG"}),
        &[("X-Request-Id", "req-create-a1")],
    );
    let user_id = created.json()["id"].as_str().unwrap().to_string();
    let entries = app
        .get(
            &format!("/v1/audit?subject_type=user&subject_id={user_id}"),
            Some(&admin),
        )
        .json();
    let entry = &entries["items"][0];
    assert_eq!(entry["action"], "user.create");
    assert_eq!(entry["actor_role"], "platform");
    assert_eq!(entry["actor_name"], "test platform");
    assert_eq!(entry["request_id"], "req-create-a1");
    assert_eq!(entry["hash"].as_str().unwrap().len(), 64);
    // The personal data itself is not copied into the audit log.
    assert!(!entry["details"].as_str().unwrap().contains("a@b.co"));

    // A failed mutation leaves no entry: the change and its audit share one transaction.
    let before = app.query_text("SELECT CAST(COUNT(*) AS TEXT) AS value FROM audit_log");
    app.post(
        "/v1/users",
        Some(&platform),
        &json!({"external_ref": "a1", "email": "a@b.co", "residence_jurisdiction": "SG"}),
    )
    .problem(409);
    assert_eq!(
        before,
        app.query_text("SELECT CAST(COUNT(*) AS TEXT) AS value FROM audit_log")
    );
}

fn the_audit_log_pages_and_filters(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    let officer = app.token(Role::Officer, None, None);
    for index in 0..5 {
        app.create_user(&platform, &format!("page-{index}"));
    }
    let first = app
        .get("/v1/audit?action=user.create&limit=2", Some(&officer))
        .json();
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(
            &format!("/v1/audit?action=user.create&limit=2&cursor={cursor}"),
            Some(&officer),
        )
        .json();
    let third_cursor = second["next_cursor"].as_str().unwrap();
    let third = app
        .get(
            &format!("/v1/audit?action=user.create&limit=2&cursor={third_cursor}"),
            Some(&officer),
        )
        .json();
    let mut seqs: Vec<i64> = [&first, &second, &third]
        .iter()
        .flat_map(|page| {
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(seqs.len(), 5);
    assert!(third["next_cursor"].is_null());
    let sorted = {
        let mut copy = seqs.clone();
        copy.sort_unstable_by(|a, b| b.cmp(a));
        copy
    };
    assert_eq!(seqs, sorted, "newest first");
    seqs.dedup();
    assert_eq!(seqs.len(), 5);

    let future = app
        .get("/v1/audit?from=2999-01-01T00:00:00Z", Some(&officer))
        .json();
    assert!(future["items"].as_array().unwrap().is_empty());
    let past = app
        .get("/v1/audit?to=2000-01-01T00:00:00Z", Some(&officer))
        .json();
    assert!(past["items"].as_array().unwrap().is_empty());
    let all = app
        .get("/v1/audit?from=2000-01-01T00:00:00Z", Some(&officer))
        .json();
    assert!(all["items"].as_array().unwrap().len() >= 7);
}

fn tampering_is_refused_or_detected_by_verify(app: &TestApp) {
    let platform = app.token(Role::Platform, None, None);
    for index in 0..3 {
        app.create_user(&platform, &format!("t-{index}"));
    }
    let intact = app.command(&["verify"]);
    assert!(
        intact.status.success(),
        "{}",
        String::from_utf8_lossy(&intact.stderr)
    );
    assert!(String::from_utf8_lossy(&intact.stdout).contains("4 entries, hash chain intact"));
    // The printed head is the last entry's hash: what a backup records and its restore must show.
    let head = app.query_text("SELECT hash AS value FROM audit_log WHERE seq = 4");
    assert!(
        String::from_utf8_lossy(&intact.stdout).contains(&format!(
            "audit log: 4 entries, hash chain intact, head {}",
            head[0]
        )),
        "{}",
        String::from_utf8_lossy(&intact.stdout)
    );

    let tamper = "UPDATE audit_log SET actor_name = 'someone else' WHERE seq = 3";
    let refused = app.execute_sql(tamper).unwrap_err();
    assert!(refused.contains("append-only"), "{refused}");
    app.execute_sql("DELETE FROM audit_log WHERE seq = 4")
        .unwrap_err();

    // An intruder able to switch the guard off still cannot hide the change from verify.
    match app.backend {
        hashgate::db::Backend::Postgres => app
            .execute_sql(&format!(
                "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only; {tamper}"
            ))
            .unwrap(),
        hashgate::db::Backend::Sqlite => app
            .execute_sql(&format!("DROP TRIGGER audit_log_no_update; {tamper}"))
            .unwrap(),
    }
    let broken = app.command(&["verify"]);
    assert_eq!(broken.status.code(), Some(1));
    let message = String::from_utf8_lossy(&broken.stderr);
    assert!(message.contains("audit entry 3"), "{message}");
    assert!(message.contains("altered"), "{message}");
}
