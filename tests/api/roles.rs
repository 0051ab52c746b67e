//! The role matrix: every endpoint × every role, plus no token and a revoked token.

use hashgate::auth::Role;
use serde_json::json;

use crate::backend_tests;
use crate::common::TestApp;

backend_tests!(every_endpoint_admits_exactly_its_roles);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Nobody,
    Revoked,
    As(Role),
}

fn every_endpoint_admits_exactly_its_roles(app: &TestApp) {
    let admin = app.token(Role::Admin, None, None);
    let platform = app.token(Role::Platform, None, None);
    let user_id = app.create_user(&platform, "matrix-user");
    let tokens: Vec<(Who, Option<String>)> = {
        let mut list = vec![(Who::Nobody, None)];
        list.push((Who::Revoked, Some(app.revoked_token())));
        for role in Role::ALL {
            let token = match role {
                Role::Regulator => app.token(role, Some("HK"), None),
                Role::User => app.token(role, None, Some(&user_id)),
                _ => app.token(role, None, None),
            };
            list.push((Who::As(role), Some(token)));
        }
        list
    };

    let mut counter = 0;
    let mut checked = 0;
    for (who, token) in &tokens {
        let token = token.as_deref();
        let allowed = |roles: &[Role]| matches!(who, Who::As(role) if roles.contains(role));
        let denied = match who {
            Who::Nobody | Who::Revoked => 401,
            Who::As(_) => 403,
        };
        let expect = |name: &str, status: u16, allowed_status: u16, ok: bool, body: &str| {
            let wanted = if ok { allowed_status } else { denied };
            assert_eq!(status, wanted, "{name} as {who:?}: {body}");
        };

        counter += 1;
        let response = app.post(
            "/v1/users",
            token,
            &json!({"external_ref": format!("m-{counter}"), "email": "m@example.com", "residence_jurisdiction": "HK"}),
        );
        expect(
            "POST /v1/users",
            response.status,
            201,
            allowed(&[Role::Platform]),
            &response.body,
        );

        let response = app.get(&format!("/v1/users/{user_id}"), token);
        let may_read = allowed(&[Role::User, Role::Officer, Role::SeniorOfficer, Role::Admin]);
        expect(
            "GET /v1/users/{id}",
            response.status,
            200,
            may_read,
            &response.body,
        );

        let response = app.get("/v1/tokens", token);
        expect(
            "GET /v1/tokens",
            response.status,
            200,
            allowed(&[Role::Admin]),
            &response.body,
        );

        let response = app.post(
            "/v1/tokens",
            token,
            &json!({"name": "made", "role": "officer"}),
        );
        expect(
            "POST /v1/tokens",
            response.status,
            201,
            allowed(&[Role::Admin]),
            &response.body,
        );

        let victim = app
            .post(
                "/v1/tokens",
                Some(&admin),
                &json!({"name": "victim", "role": "officer"}),
            )
            .json();
        let response = app.post(
            &format!("/v1/tokens/{}/revoke", victim["id"].as_str().unwrap()),
            token,
            &json!({"reason": "matrix test"}),
        );
        expect(
            "POST /v1/tokens/{id}/revoke",
            response.status,
            200,
            allowed(&[Role::Admin]),
            &response.body,
        );

        // The role is checked before the body is validated.
        let response = app.post("/v1/tokens", token, &json!({"role": "emperor"}));
        let status = if allowed(&[Role::Admin]) { 422 } else { denied };
        assert_eq!(
            response.status, status,
            "invalid POST /v1/tokens as {who:?}"
        );

        let response = app.get("/v1/audit", token);
        let may_audit = allowed(&[Role::Admin, Role::Officer, Role::SeniorOfficer]);
        expect(
            "GET /v1/audit",
            response.status,
            200,
            may_audit,
            &response.body,
        );

        let carbon_readers = [
            Role::Platform,
            Role::Officer,
            Role::SeniorOfficer,
            Role::Admin,
        ];
        for path in ["/v1/facilities", "/v1/emission-factors"] {
            let response = app.get(path, token);
            expect(
                path,
                response.status,
                200,
                allowed(&carbon_readers),
                &response.body,
            );
        }
        let response = app.post("/v1/matching/runs", token, &json!({}));
        expect(
            "POST /v1/matching/runs",
            response.status,
            200,
            allowed(&[Role::Officer, Role::SeniorOfficer, Role::Admin]),
            &response.body,
        );

        let report_readers = [
            Role::Officer,
            Role::SeniorOfficer,
            Role::Admin,
            Role::Regulator,
        ];
        let response = app.get("/v1/reports", token);
        expect(
            "GET /v1/reports",
            response.status,
            200,
            allowed(&report_readers),
            &response.body,
        );
        let response = app.get("/v1/report-schedules", token);
        expect(
            "GET /v1/report-schedules",
            response.status,
            200,
            allowed(&[Role::Admin]),
            &response.body,
        );
        let response = app.post(
            "/v1/reports",
            token,
            &json!({"kind": "sandbox", "jurisdiction": "HK", "period": "2026-Q1"}),
        );
        expect(
            "POST /v1/reports",
            response.status,
            201,
            allowed(&[Role::Officer, Role::SeniorOfficer, Role::Admin]),
            &response.body,
        );

        for open in [
            "/.well-known/hashgate-signing-key",
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
            "/docs",
            "/v1/public/footprint",
        ] {
            assert_eq!(app.get(open, token).status, 200, "{open} as {who:?}");
        }
        checked += 1;
    }
    assert_eq!(checked, 8);
}
