//! Carbon through the real service: order energy computed by hand, certificates matched
//! (annual and hourly, zone and vintage refusals), revocation and retirement, the footprint by
//! both methods, the public endpoint, bad input, and concurrent allocations.

use hashgate::auth::Role;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::common::TestApp;

backend_tests!(
    energy_matching_and_footprint_follow_the_hand_computation,
    hourly_and_volumetric_shares_are_reported_apart,
    zone_and_vintage_refusals,
    bad_certificates_and_orders_write_nothing,
    revocation_releases_and_retirement_is_final,
    concurrent_allocations_never_exceed_a_certificate,
);

struct Carbon {
    platform: String,
    officer: String,
    user_id: String,
    user: String,
}

fn factor(zone: &str, basis: &str, g: &str) -> Value {
    json!({"dataset": "test-factors", "version": "1", "zone": zone, "year": 2023,
           "basis": basis, "g_per_kwh": g, "source": "hand-made for tests"})
}

fn set_up(app: &TestApp) -> Carbon {
    let admin = app.token(Role::Admin, None, None);
    let response = app.post(
        "/v1/emission-factors",
        Some(&admin),
        &json!({"factors": [
            factor("KZ", "lifecycle", "821.391"),
            factor("KZ", "residual_mix", "900"),
            factor("NO", "lifecycle", "30.08"),
            factor("NO2", "lifecycle", "18"),
        ]}),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["inserted"], 4);
    let platform = app.token(Role::Platform, None, None);
    let user_id = app.create_user(&platform, &format!("miner-{}", uuid::Uuid::new_v4()));
    Carbon {
        officer: app.token(Role::Officer, None, None),
        user: app.token(Role::User, None, Some(&user_id)),
        platform,
        user_id,
    }
}

fn facility(app: &TestApp, carbon: &Carbon, name: &str, zone: &str, pue: &str) -> String {
    let response = app.post(
        "/v1/facilities",
        Some(&carbon.platform),
        &json!({"name": name, "country": &zone[..2], "market_zone": zone, "pue": pue,
                "miners": [{"model": "Antminer S19j Pro", "hashrate_ths": "100",
                            "power_w": 3050, "units": 400}]}),
    );
    assert_eq!(response.status, 201, "{}", response.body);
    assert_eq!(response.json()["j_per_th"], "30.5");
    response.json()["id"].as_str().unwrap().to_string()
}

fn order(
    app: &TestApp,
    carbon: &Carbon,
    facility: &str,
    period: (&str, &str),
    extra: Value,
) -> Value {
    let mut body = json!({
        "order_id": format!("order-{}", uuid::Uuid::new_v4()),
        "user_id": carbon.user_id,
        "facility_id": facility,
        "hashrate_ths": "100",
        "starts_at": period.0,
        "ends_at": period.1,
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let response = app.post("/v1/orders", Some(&carbon.platform), &body);
    assert_eq!(response.status, 201, "{}", response.body);
    response.json()
}

fn certificate(
    serial: &str,
    zone: &str,
    generated: (&str, &str),
    volume: &str,
    extra: Value,
) -> Value {
    let mut body = json!({
        "scheme": "irec", "registry": "Evident", "serial": serial,
        "device_id": format!("device-{serial}"), "technology": "wind",
        "market_zone": zone, "country": &zone[..2],
        "generation_start": generated.0, "generation_end": generated.1,
        "volume": volume, "unit": "kWh",
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

/// A Norwegian hourly certificate of `wh` for the UTC hour starting at `hour` (`2026-03-10T10`).
fn hourly_certificate(serial: &str, hour: &str, wh: i64) -> Value {
    let start =
        chrono::NaiveDateTime::parse_from_str(&format!("{hour}:00"), "%Y-%m-%dT%H:%M").unwrap();
    let end = start + chrono::Duration::hours(1);
    certificate(
        serial,
        "NO2",
        (
            &format!("{}Z", start.format("%Y-%m-%dT%H:%M:%S")),
            &format!("{}Z", end.format("%Y-%m-%dT%H:%M:%S")),
        ),
        &wh.to_string(),
        json!({"scheme": "hourly", "registry": "Granular", "unit": "Wh"}),
    )
}

fn import(app: &TestApp, carbon: &Carbon, certificates: Value) -> Value {
    let response = app.post(
        "/v1/certificates",
        Some(&carbon.officer),
        &json!({"certificates": certificates}),
    );
    assert_eq!(response.status, 201, "{}", response.body);
    response.json()
}

const DAY: (&str, &str) = ("2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z");
const MARCH: (&str, &str) = ("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z");

fn count(app: &TestApp, table: &str) -> String {
    app.query_text(&format!(
        "SELECT CAST(COUNT(*) AS TEXT) AS value FROM {table}"
    ))[0]
        .clone()
}

fn energy_matching_and_footprint_follow_the_hand_computation(app: &TestApp) {
    let carbon = set_up(app);
    let site = facility(app, &carbon, "Ekibastuz", "KZ", "1.08");
    // 100 TH/s × 30.5 J/TH = 3,050 W; × PUE 1.08 = 3,294 W; × 24 h = 79,056 Wh.
    let first = order(app, &carbon, &site, DAY, json!({}));
    assert_eq!(first["emissions"]["energy_wh"], 79_056);
    assert_eq!(first["energy_source"], "modelled");
    assert_eq!(first["consumption_hours"], 24);
    assert_eq!(first["emissions"]["matched_wh"], 0);
    // Unmatched: market-based uses the residual mix: 79.056 kWh × 900 = 71.150 kg.
    assert_eq!(first["emissions"]["market_based_kg"], "71.150");

    // Wind (0 g/kWh) expiring later, biomass (230 g/kWh) expiring sooner: the biomass goes first.
    let imported = import(
        app,
        &carbon,
        json!([
            certificate(
                "KZ-WIND-1",
                "KZ",
                MARCH,
                "50",
                json!({"expires_at": "2027-06-30T00:00:00Z"})
            ),
            certificate(
                "KZ-BIO-1",
                "KZ",
                MARCH,
                "10",
                json!({"technology": "biomass", "g_per_kwh": "230", "expires_at": "2027-01-31T00:00:00Z"})
            ),
        ]),
    );
    assert_eq!(imported["matching"]["annual_wh"], 60_000);
    let id = first["id"].as_str().unwrap();
    let view = app
        .get(&format!("/v1/orders/{id}"), Some(&carbon.user))
        .json();
    let serials: Vec<&str> = view["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["serial"].as_str().unwrap())
        .collect();
    assert_eq!(serials, ["KZ-BIO-1", "KZ-WIND-1"]);
    let emissions = &view["emissions"];
    assert_eq!(emissions["matched_wh"], 60_000);
    // Location: 79.056 kWh × 821.391 g/kWh = 64,935.887 g.
    assert_eq!(emissions["location_based_kg"], "64.936");
    // Market: 10 kWh × 230 + 19.056 kWh × 900 (residual mix) = 2,300 + 17,150.4 g.
    assert_eq!(emissions["market_based_kg"], "19.450");
    assert_eq!(emissions["share_matched"], "0.7590");
    assert_eq!(emissions["share_hourly_matched"], "0");
    assert_eq!(emissions["location_factor"]["g_per_kwh"], "821.391");
    assert_eq!(emissions["residual_mix_factor"]["basis"], "residual_mix");

    // Metered energy wins over the model, and says so.
    let metered = order(app, &carbon, &site, DAY, json!({"metered_wh": 81_000}));
    assert_eq!(metered["energy_source"], "metered");
    assert_eq!(metered["emissions"]["energy_wh"], 81_000);

    // The user's footprint sums both orders; another user may not read it.
    let footprint = app
        .get(
            &format!("/v1/users/{}/footprint", carbon.user_id),
            Some(&carbon.user),
        )
        .json();
    assert_eq!(footprint["energy_wh"], 79_056 + 81_000);
    assert_eq!(footprint["matched_wh"], 60_000);
    // Location: 64,935.887 g + 81 kWh × 821.391 = 66,532.671 g → 131.469 kg.
    // Market: 19,450.4 g + 81 kWh × 900 (nothing matched) = 72,900 g → 92.350 kg.
    assert_eq!(footprint["location_based_kg"], "131.469");
    assert_eq!(footprint["market_based_kg"], "92.350");
    let stranger_id = app.create_user(&carbon.platform, "stranger");
    let stranger = app.token(Role::User, None, Some(&stranger_id));
    app.get(
        &format!("/v1/users/{}/footprint", carbon.user_id),
        Some(&stranger),
    )
    .problem(403);
    app.get(&format!("/v1/orders/{id}"), Some(&stranger))
        .problem(403);

    // Sending the same order again returns it; with other details it is refused.
    let same = app.post(
        "/v1/orders",
        Some(&carbon.platform),
        &json!({"order_id": view["order_id"], "user_id": carbon.user_id, "facility_id": site,
                "hashrate_ths": "100", "starts_at": DAY.0, "ends_at": DAY.1}),
    );
    assert_eq!(same.status, 200, "{}", same.body);
    assert_eq!(same.json()["id"], view["id"]);
    let changed = app.post(
        "/v1/orders",
        Some(&carbon.platform),
        &json!({"order_id": view["order_id"], "user_id": carbon.user_id, "facility_id": site,
                "hashrate_ths": "200", "starts_at": DAY.0, "ends_at": DAY.1}),
    );
    assert_eq!(changed.problem_fields(422), ["order_id"]);

    // The public footprint needs no token, is cacheable, and names its factors.
    let public = app.get("/v1/public/footprint", None);
    assert_eq!(public.status, 200, "{}", public.body);
    assert_eq!(public.header("Cache-Control"), Some("public, max-age=60"));
    let body = public.json();
    assert!(body["factors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["g_per_kwh"] == "821.391"));
    assert!(body["this_year"]["energy_wh"].as_i64().is_some());
}

fn hourly_and_volumetric_shares_are_reported_apart(app: &TestApp) {
    let carbon = set_up(app);
    let site = facility(app, &carbon, "Sauda", "NO2", "1.05");
    // Two hours: 100 TH/s × 30.5 × 1.05 = 3,202.5 W × 2 h = 6,405 Wh, split 3,202 / 3,203
    // (halves: the earlier hour takes the extra Wh when remainders tie).
    let two_hours = ("2026-03-10T10:00:00Z", "2026-03-10T12:00:00Z");
    // Hour 10 has an hourly certificate of 1,000 Wh; a GO covers 4,000 Wh volumetrically.
    let hourly = hourly_certificate("NO-GC-10", "2026-03-10T10", 1_000);
    let go = certificate(
        "NO-GO-1",
        "NO2",
        ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"),
        "4",
        json!({"scheme": "go", "registry": "Statnett", "technology": "hydro"}),
    );
    import(app, &carbon, json!([hourly, go]));
    let created = order(app, &carbon, &site, two_hours, json!({}));
    let emissions = &created["emissions"];
    assert_eq!(emissions["energy_wh"], 6_405);
    assert_eq!(emissions["hourly_matched_wh"], 1_000);
    assert_eq!(emissions["matched_wh"], 5_000);
    // 1,000 / 6,405 = 0.15613 and 5,000 / 6,405 = 0.78064.
    assert_eq!(emissions["share_hourly_matched"], "0.1561");
    assert_eq!(emissions["share_matched"], "0.7806");
    // No residual mix for NO2: the grid average stands in, flagged.
    assert_eq!(emissions["residual_mix_missing"], true);
    let id = created["id"].as_str().unwrap();
    let hours = app
        .get(&format!("/v1/orders/{id}/hours"), Some(&carbon.user))
        .json();
    assert_eq!(
        hours,
        json!([
            {"hour_start": "2026-03-10T10:00:00Z", "consumption_wh": 3_203, "matched_wh": 1_000},
            {"hour_start": "2026-03-10T11:00:00Z", "consumption_wh": 3_202, "matched_wh": 0},
        ])
    );

    // Two orders left open, then one hourly certificate for their first hour: the run it starts
    // allocates it to both, and its history records that as one event of the total.
    let later = ("2026-03-10T12:00:00Z", "2026-03-10T14:00:00Z");
    let open: Vec<Value> = (0..2)
        .map(|_| order(app, &carbon, &site, later, json!({}))["id"].clone())
        .collect();
    let shared = hourly_certificate("NO-GC-12", "2026-03-10T12", 6_406);
    let imported = import(app, &carbon, json!([shared]));
    let detail = app
        .get(
            &format!("/v1/certificates/{}", imported["ids"][0].as_str().unwrap()),
            Some(&carbon.officer),
        )
        .json();
    // Each order's hour 12 is 3,203 Wh of its 6,405 Wh: the certificate covers both exactly.
    assert_eq!(detail["allocated_wh"], 6_406);
    let events = detail["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1]["kind"], "allocated");
    assert_eq!(events[1]["wh"], 6_406);
    assert_eq!(events[1]["order_id"], Value::Null);
    assert_eq!(
        events[1]["reason"],
        "2 allocations to 2 orders in one matching run"
    );
    for id in &open {
        let hours = app
            .get(
                &format!("/v1/orders/{}/hours", id.as_str().unwrap()),
                Some(&carbon.user),
            )
            .json();
        assert_eq!(hours[0]["matched_wh"], 3_203, "{hours}");
    }
}

fn zone_and_vintage_refusals(app: &TestApp) {
    let carbon = set_up(app);
    let kazakh = facility(app, &carbon, "Pavlodar", "KZ", "1.1");
    facility(app, &carbon, "Sauda", "NO2", "1.05");
    // Norwegian and too-old Kazakh certificates, kept for allocation by hand.
    let response = app.post(
        "/v1/certificates",
        Some(&carbon.officer),
        &json!({"match_open_orders": false, "certificates": [
            certificate("NO-1", "NO2", MARCH, "100", json!({})),
            certificate("KZ-OLD", "KZ", ("2025-06-01T00:00:00Z", "2025-07-01T00:00:00Z"), "100", json!({})),
        ]}),
    );
    assert_eq!(response.status, 201, "{}", response.body);
    let ids = response.json()["ids"].clone();
    let created = order(app, &carbon, &kazakh, DAY, json!({}));
    // Neither is matched automatically: wrong zone, and generated more than 6 months before.
    assert_eq!(created["emissions"]["matched_wh"], 0);
    let allocate = |certificate: &Value| {
        app.post(
            "/v1/allocations",
            Some(&carbon.officer),
            &json!({"certificate_id": certificate, "order_id": created["id"], "wh": 1000}),
        )
    };
    let zone = allocate(&ids[0]).problem(422);
    assert_eq!(zone["errors"][0]["code"], "zone_mismatch");
    let vintage = allocate(&ids[1]).problem(422);
    assert_eq!(vintage["errors"][0]["code"], "outside_vintage_window");

    // A certificate past its expiry is refused, and the next matching run marks it expired.
    let response = app.post(
        "/v1/certificates",
        Some(&carbon.officer),
        &json!({"match_open_orders": false, "certificates": [
            certificate("KZ-EXPIRED", "KZ", MARCH, "100", json!({"expires_at": "2026-06-30T00:00:00Z"})),
        ]}),
    );
    let expired = response.json()["ids"][0].clone();
    let refused = allocate(&expired).problem(422);
    assert_eq!(refused["errors"][0]["code"], "not_active");
    assert!(refused["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
    let run = app.post("/v1/matching/runs", Some(&carbon.officer), &json!({}));
    assert_eq!(run.status, 200, "{}", run.body);
    assert_eq!(run.json()["allocations"], 0);
    let detail = app
        .get(
            &format!("/v1/certificates/{}", expired.as_str().unwrap()),
            Some(&carbon.officer),
        )
        .json();
    assert_eq!(detail["status"], "expired");
    assert_eq!(detail["available_wh"], 0);
    assert_eq!(count(app, "allocations"), "0");
}

fn bad_certificates_and_orders_write_nothing(app: &TestApp) {
    let carbon = set_up(app);
    let site = facility(app, &carbon, "Ekibastuz", "KZ", "1.08");
    import(
        app,
        &carbon,
        json!([certificate("KZ-1", "KZ", MARCH, "100", json!({}))]),
    );
    let before = (count(app, "certificates"), count(app, "certificate_events"));
    let reject = |rows: Value| {
        app.post(
            "/v1/certificates",
            Some(&carbon.officer),
            &json!({"certificates": rows}),
        )
        .problem_fields(422)
    };
    // A good row next to a bad one: the batch is refused whole, the bad field named.
    let good = certificate("KZ-2", "KZ", MARCH, "100", json!({}));
    assert_eq!(
        reject(json!([
            good,
            certificate("KZ-3", "KZ", (MARCH.1, MARCH.0), "1", json!({}))
        ])),
        ["certificates[1].generation_end"]
    );
    assert_eq!(
        reject(json!([certificate("KZ-4", "XX", MARCH, "1", json!({}))])),
        ["certificates[0].market_zone", "certificates[0].country"]
    );
    assert_eq!(
        reject(json!([certificate("KZ-5", "NO9", MARCH, "1", json!({}))])),
        ["certificates[0].market_zone"]
    );
    assert_eq!(
        reject(json!([certificate("KZ-6", "KZ", MARCH, "0", json!({}))])),
        ["certificates[0].volume"]
    );
    // 0.4 Wh rounds down to nothing.
    assert_eq!(
        reject(json!([certificate(
            "KZ-7",
            "KZ",
            MARCH,
            "0.0004",
            json!({})
        )])),
        ["certificates[0].volume"]
    );
    assert_eq!(
        reject(json!([certificate(
            "KZ-1",
            "KZ",
            MARCH,
            "5",
            json!({"device_id": "other"})
        )])),
        ["certificates[0].serial"]
    );
    // The same device cannot be certified twice for overlapping hours.
    assert_eq!(
        reject(json!([certificate(
            "KZ-8",
            "KZ",
            ("2026-03-31T00:00:00Z", "2026-04-30T00:00:00Z"),
            "5",
            json!({"device_id": "device-KZ-1"})
        )])),
        ["certificates[0].generation_start"]
    );
    assert_eq!(
        (count(app, "certificates"), count(app, "certificate_events")),
        before
    );

    let orders_before = count(app, "orders");
    let bad_order = |body: Value| {
        app.post("/v1/orders", Some(&carbon.platform), &body)
            .problem_fields(422)
    };
    let body = |starts: &str, ends: &str, hashrate: &str, facility: &str| {
        json!({"order_id": "bad-order", "user_id": carbon.user_id, "facility_id": facility,
               "hashrate_ths": hashrate, "starts_at": starts, "ends_at": ends})
    };
    assert_eq!(bad_order(body(DAY.1, DAY.0, "100", &site)), ["ends_at"]);
    assert_eq!(bad_order(body(DAY.0, DAY.0, "100", &site)), ["ends_at"]);
    assert_eq!(bad_order(body(DAY.0, DAY.1, "-1", &site)), ["hashrate_ths"]);
    assert_eq!(
        bad_order(body(DAY.0, DAY.1, "1.0001", &site)),
        ["hashrate_ths"]
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        bad_order(body(DAY.0, DAY.1, "1", &unknown)),
        ["facility_id"]
    );
    assert_eq!(count(app, "orders"), orders_before);

    // A facility in a zone without any emission factor is refused.
    let response = app.post(
        "/v1/facilities",
        Some(&carbon.platform),
        &json!({"name": "Nowhere", "country": "IS", "market_zone": "IS", "pue": "1.1",
                "miners": [{"model": "S21", "hashrate_ths": "200", "power_w": 3500, "units": 1}]}),
    );
    assert_eq!(response.problem_fields(422), ["market_zone"]);
}

fn revocation_releases_and_retirement_is_final(app: &TestApp) {
    let carbon = set_up(app);
    let site = facility(app, &carbon, "Ekibastuz", "KZ", "1.08");
    let imported = import(
        app,
        &carbon,
        json!([
            certificate(
                "KZ-A",
                "KZ",
                MARCH,
                "50",
                json!({"expires_at": "2027-01-01T00:00:00Z"})
            ),
            certificate(
                "KZ-B",
                "KZ",
                MARCH,
                "50",
                json!({"expires_at": "2027-02-01T00:00:00Z"})
            ),
        ]),
    );
    let (first, second) = (imported["ids"][0].clone(), imported["ids"][1].clone());
    let created = order(app, &carbon, &site, DAY, json!({}));
    // 79,056 Wh: 50,000 from A (expires first), 29,056 from B.
    assert_eq!(created["emissions"]["matched_wh"], 79_056);
    let order_id = created["id"].as_str().unwrap();

    // Revoking B releases its live allocation: the order is unmatched for that volume again.
    let revoke = |id: &Value| {
        app.post(
            &format!("/v1/certificates/{}/status", id.as_str().unwrap()),
            Some(&carbon.officer),
            &json!({"status": "revoked", "reason": "issuer revoked the device's registration"}),
        )
    };
    let revoked = revoke(&second);
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(revoked.json()["released_wh"], 29_056);
    let view = app
        .get(&format!("/v1/orders/{order_id}"), Some(&carbon.user))
        .json();
    assert_eq!(view["emissions"]["matched_wh"], 50_000);
    assert_eq!(revoke(&second).status, 409);

    // Retire A for the user, against one registry redemption.
    let retire = |reference: &str| {
        app.post(
            "/v1/retirements",
            Some(&carbon.officer),
            &json!({"user_id": carbon.user_id, "beneficiary": "Miner Ltd",
                    "period_start": MARCH.0, "period_end": MARCH.1,
                    "registry_reference": reference}),
        )
    };
    let retired = retire("EVIDENT-REDEMPTION-1");
    assert_eq!(retired.status, 201, "{}", retired.body);
    assert_eq!(retired.json()["retired_wh"], 50_000);
    // Nothing left to retire, and one redemption is claimed once.
    assert_eq!(
        retire("EVIDENT-REDEMPTION-2").problem_fields(422),
        ["period_start"]
    );
    assert_eq!(
        retire("EVIDENT-REDEMPTION-1").problem_fields(422),
        ["registry_reference"]
    );
    let detail = app
        .get(
            &format!("/v1/certificates/{}", first.as_str().unwrap()),
            Some(&carbon.officer),
        )
        .json();
    assert_eq!(detail["retired_wh"], 50_000);
    assert_eq!(detail["allocated_wh"], 0);
    let kinds: Vec<&str> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["imported", "allocated", "retired"]);

    // Revoking a retired certificate leaves the retirement standing and says so.
    let after = revoke(&first);
    assert_eq!(after.json()["retired_wh_kept"], 50_000);
    assert_eq!(after.json()["released_wh"], 0);
    // The database refuses to undo a retirement or rewrite history, whoever asks.
    assert!(app
        .execute_sql("UPDATE certificates SET retired_wh = 0")
        .is_err());
    assert!(app.execute_sql("DELETE FROM certificate_events").is_err());
    // Allocations, hours and events refer to orders and certificates, which stay.
    assert!(app.execute_sql("DELETE FROM certificates").is_err());
    assert!(app.execute_sql("DELETE FROM orders").is_err());
    assert!(app
        .execute_sql("UPDATE certificates SET allocated_wh = volume_wh + 1")
        .is_err());
    // Every officer action is in the audit log.
    let actions = app.query_text(
        "SELECT action AS value FROM audit_log WHERE action LIKE 'certificate%' ORDER BY seq",
    );
    assert_eq!(
        actions,
        [
            "certificates.import",
            "certificate.revoked",
            "certificate.retire",
            "certificate.revoked"
        ]
    );
}

fn concurrent_allocations_never_exceed_a_certificate(app: &TestApp) {
    let carbon = set_up(app);
    let site = facility(app, &carbon, "Ekibastuz", "KZ", "1.08");
    let orders: Vec<Value> = (0..2)
        .map(|_| order(app, &carbon, &site, DAY, json!({}))["id"].clone())
        .collect();
    let response = app.post(
        "/v1/certificates",
        Some(&carbon.officer),
        &json!({"match_open_orders": false,
                "certificates": [certificate("KZ-ONE", "KZ", MARCH, "1", json!({}))]}),
    );
    let id = response.json()["ids"][0].clone();
    // Two allocations of 600 Wh each against 1,000 Wh, at the same moment: one succeeds.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = orders
            .iter()
            .map(|order| {
                let body = json!({"certificate_id": id, "order_id": order, "wh": 600});
                let officer = carbon.officer.clone();
                scope.spawn(move || app.post("/v1/allocations", Some(&officer), &body).status)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(sorted, [201, 409], "{statuses:?}");
    let id = id.as_str().unwrap();
    assert_eq!(
        app.query_text(&format!(
            "SELECT CAST(allocated_wh AS TEXT) AS value FROM certificates WHERE id = '{id}'"
        )),
        ["600"]
    );
    assert_eq!(count(app, "allocations"), "1");
}

#[test]
#[cfg_attr(
    not(hashgate_pdf_tests),
    ignore = "PDF suite SKIPPED: pdftotext not found (apt-get install poppler-utils)"
)]
fn an_order_certificate_lists_serials_emissions_and_the_data_hash() {
    let app = TestApp::spawn(hashgate::db::Backend::Sqlite);
    let carbon = set_up(&app);
    let site = facility(&app, &carbon, "Ekibastuz", "KZ", "1.08");
    import(
        &app,
        &carbon,
        json!([certificate("KZ-WIND-77", "KZ", MARCH, "60", json!({}))]),
    );
    let created = order(&app, &carbon, &site, DAY, json!({}));
    let id = created["id"].as_str().unwrap();
    let json = app.get(&format!("/v1/orders/{id}"), Some(&carbon.user));
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(json.body.as_bytes()));
    let response = app.get(
        &format!("/v1/orders/{id}/certificate.pdf"),
        Some(&carbon.user),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("content-type"), Some("application/pdf"));
    assert_eq!(response.header("x-data-sha256"), Some(hash.as_str()));
    let text = crate::tax::pdf_text(&response.bytes);
    assert!(text.contains("KZ-WIND-77"), "{text}");
    // 79.056 kWh, 60 kWh of it matched; location 64.936 kg, market 60 × 0 + 19.056 × 900 g.
    assert!(text.contains("79.056 kWh"), "{text}");
    assert!(text.contains("64.936 kg CO2e"), "{text}");
    assert!(text.contains("17.150 kg CO2e"), "{text}");
    assert!(text.contains(&hash), "{text}");
    let stranger_id = app.create_user(&carbon.platform, "stranger");
    let stranger = app.token(Role::User, None, Some(&stranger_id));
    app.get(&format!("/v1/orders/{id}/certificate.pdf"), Some(&stranger))
        .problem(403);
}
