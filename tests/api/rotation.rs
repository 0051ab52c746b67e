//! Key rotation on a live database: after the encryption and signing keys are replaced, what the
//! old keys wrote and signed still reads and verifies, and new data uses the new keys.

use hashgate::auth::Role;
use hashgate::crypto::FieldCipher;
use hashgate::db::Backend;
use hashgate::reports::signing::ReportSigner;
use serde_json::json;

use crate::common::{free_port, TestApp};

fn user_with_birth_date(app: &TestApp, platform: &str, birth_date: &str) -> String {
    let created = app.post(
        "/v1/users",
        Some(platform),
        &json!({
            "external_ref": format!("rot-{}", uuid::Uuid::new_v4().simple()),
            "residence_jurisdiction": "SG",
            "email": "rotation@example.sg",
            "date_of_birth": birth_date,
        }),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    created.json()["id"].as_str().unwrap().to_string()
}

fn stored_birth_date(app: &TestApp, user_id: &str) -> String {
    app.query_text(&format!(
        "SELECT date_of_birth_encrypted AS value FROM users WHERE id = '{user_id}'"
    ))[0]
        .clone()
}

#[test]
fn rotated_keys_keep_old_data_readable_and_old_reports_verifiable() {
    let mut app = TestApp::spawn(Backend::Sqlite);
    let platform = app.token(Role::Platform, None, None);
    let officer = app.token(Role::Officer, None, None);
    let old_cipher =
        FieldCipher::from_base64(app.settings.encryption_key.as_deref().unwrap()).unwrap();
    let old_signer =
        ReportSigner::from_base64(app.settings.signing_key.as_deref().unwrap()).unwrap();

    // Before the rotation: personal data and a signed report under the old keys.
    let before = user_with_birth_date(&app, &platform, "1970-03-14");
    assert!(stored_birth_date(&app, &before).starts_with(&format!("v2:{}:", old_cipher.key_id())));
    let paid = app.post(
        "/v1/payouts",
        Some(&platform),
        &json!({"payouts": [{
            "user_id": before, "asset": "BTC", "amount": "0.001",
            "occurred_at": "2026-11-30T08:00:00Z", "order_id": "order-1",
            "facility_id": "qc-montreal-1", "external_id": "rotation-1"
        }]}),
    );
    assert_eq!(paid.status, 200, "{}", paid.body);
    let old_report = app.post("/v1/ledger/integrity-reports", Some(&officer), &json!({}));
    assert_eq!(old_report.status, 201, "{}", old_report.body);
    let old_report = old_report.json();
    let old_id = old_report["id"].as_str().unwrap().to_string();
    assert_eq!(old_report["key_id"], old_signer.key_id());
    let old_pdf = app
        .get(
            &format!("/v1/reports/{old_id}/files/report.pdf"),
            Some(&officer),
        )
        .bytes;

    // The rotation, as docs/operations.md describes it: new keys current, the old encryption
    // key and the old signing key's public half retired.
    let new_key = FieldCipher::generate_key();
    let new_seed = ReportSigner::generate_key();
    let new_cipher = FieldCipher::from_base64(&new_key).unwrap();
    let new_signer = ReportSigner::from_base64(&new_seed).unwrap();
    let old_public = old_signer.public_keys().current.public_key;
    let rotated = [
        ("HASHGATE_ENCRYPTION_KEY", new_key.clone()),
        (
            "HASHGATE_ENCRYPTION_RETIRED_KEYS",
            app.settings.encryption_key.clone().unwrap(),
        ),
        ("HASHGATE_SIGNING_KEY", new_seed.clone()),
        ("HASHGATE_SIGNING_RETIRED_PUBLIC_KEYS", old_public.clone()),
    ];
    let service = app.serve_child(free_port(), &rotated, &app.directory().join("rotated.log"));
    let own_base = std::mem::replace(&mut app.base, service.base.clone());

    // Old personal data reads; new personal data is written under the new key.
    let read = app.get(&format!("/v1/users/{before}"), Some(&officer));
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.json()["date_of_birth"], "1970-03-14");
    let after = user_with_birth_date(&app, &platform, "1981-09-30");
    let stored = stored_birth_date(&app, &after);
    assert!(
        stored.starts_with(&format!("v2:{}:", new_cipher.key_id())),
        "{stored}"
    );
    assert!(old_cipher
        .decrypt(&stored, &format!("users.date_of_birth:{after}"))
        .is_err());

    // The old report still verifies, by the retired key it names; new reports use the new key.
    let verified = app.get(&format!("/v1/reports/{old_id}/verify"), Some(&officer));
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.json()["valid"], true, "{}", verified.body);
    assert_eq!(verified.json()["key_id"], old_signer.key_id());
    let new_report = app.post("/v1/ledger/integrity-reports", Some(&officer), &json!({}));
    assert_eq!(new_report.status, 201, "{}", new_report.body);
    let new_id = new_report.json()["id"].as_str().unwrap().to_string();
    assert_eq!(new_report.json()["key_id"], new_signer.key_id());
    let verified = app.get(&format!("/v1/reports/{new_id}/verify"), Some(&officer));
    assert_eq!(verified.json()["valid"], true, "{}", verified.body);

    // Both keys are published: the current one, and the retired one older reports name.
    let published = app.get("/.well-known/hashgate-signing-key", None).json();
    assert_eq!(published["key_id"], new_signer.key_id());
    assert_eq!(published["retired"][0]["key_id"], old_signer.key_id());
    assert_eq!(published["retired"][0]["public_key"], old_public.as_str());
    drop(service);
    app.base = own_base;

    // A copy of the old report checks out from the command line with the rotated keys ...
    let copy = app.directory().join("old-report.pdf");
    std::fs::write(&copy, &old_pdf).unwrap();
    let mut command = app.command_builder(&["verify-report", copy.to_str().unwrap()]);
    for (name, value) in &rotated {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains(&old_signer.key_id()));

    // ... and fails once the retired key is dropped: nothing verifies by a key nobody vouches for.
    let mut command = app.command_builder(&["verify-report", copy.to_str().unwrap()]);
    command
        .env("HASHGATE_SIGNING_KEY", &new_seed)
        .env_remove("HASHGATE_SIGNING_RETIRED_PUBLIC_KEYS");
    let output = command.output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not verify"));
}
