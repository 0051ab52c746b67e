use crate::backend_tests;
use crate::common::TestApp;

backend_tests!(
    health_readiness_metrics_and_docs,
    request_ids_are_assigned_or_kept
);

fn health_readiness_metrics_and_docs(app: &TestApp) {
    let health = app.get("/healthz", None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");

    let ready = app.get("/readyz", None);
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["backend"], app.backend.name());

    let metrics = app.get("/metrics", None);
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert!(metrics
        .body
        .contains("http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"} 1"));
    assert!(metrics
        .body
        .contains(&format!("backend=\"{}\"", app.backend.name())));

    let openapi = app.get("/openapi.json", None).json();
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/users",
        "/v1/users/{id}",
        "/v1/tokens",
        "/v1/tokens/{id}/revoke",
        "/v1/audit",
        "/v1/payouts",
        "/v1/prices",
        "/v1/users/{id}/balances",
        "/v1/users/{id}/ledger",
    ] {
        assert!(
            openapi["paths"][path].is_object(),
            "{path} missing from openapi.json"
        );
    }
    assert!(
        openapi["components"]["schemas"]["CreateUserRequest"]["properties"]["email"].is_object()
    );
    assert!(openapi["components"]["securitySchemes"]["bearer"].is_object());

    let docs = app.get("/docs", None);
    assert_eq!(docs.status, 200);
    assert!(docs
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(docs.body.contains("/openapi.json"));

    let problem = app.get("/problems/conflict", None);
    assert_eq!(problem.status, 200);
    assert!(problem.json()["description"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));
}

fn request_ids_are_assigned_or_kept(app: &TestApp) {
    let first = app.get("/healthz", None);
    let second = app.get("/healthz", None);
    let id = first.header("x-request-id").unwrap();
    assert_eq!(id.len(), 36);
    assert_ne!(Some(id), second.header("x-request-id"));
    let kept = app.request(
        "GET",
        "/healthz",
        None,
        None,
        &[("X-Request-Id", "trace-abc-123")],
    );
    assert_eq!(kept.header("x-request-id"), Some("trace-abc-123"));
    let replaced = app.request(
        "GET",
        "/healthz",
        None,
        None,
        &[("X-Request-Id", "bad id with spaces")],
    );
    assert_ne!(replaced.header("x-request-id"), Some("bad id with spaces"));
}
