//! Secrets stay secret: no token, key, password or personal datum in the logs of a full run, and
//! no plaintext personal data in the database's own files.

use std::io::Read as _;

use hashgate::auth::Role;
use hashgate::db::Backend;
use serde_json::json;

use crate::backend_tests;
use crate::common::{free_port, TestApp};
use crate::kyc::{multipart, personal_data, tier2_documents, ID_CARD};
use crate::withdrawals::{btc_with_beneficiary, decision, setup, verified_user, withdraw};

backend_tests!(personal_data_is_not_in_the_raw_database_files);

/// Personal data the flows below store: none of it may appear in clear.
const DOCUMENT_NUMBER: &str = "QX7305518";
const BIRTH_DATE: &str = "1931-07-19";
const EMAIL_LOCAL_PART: &str = "zhuang.mingyue";

fn store_personal_data(app: &TestApp) -> String {
    let platform = app.token(Role::Platform, None, None);
    let created = app.post(
        "/v1/users",
        Some(&platform),
        &json!({
            "external_ref": format!("sec-{}", uuid::Uuid::new_v4().simple()),
            "residence_jurisdiction": "HK",
            "email": format!("{EMAIL_LOCAL_PART}@example.hk"),
            "date_of_birth": BIRTH_DATE,
            "address": "88 Queensway, Admiralty"
        }),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let user_id = created.json()["id"].as_str().unwrap().to_string();
    let mut data = personal_data("Zhuang Mingyue", "CN", "HK");
    data["date_of_birth"] = json!(BIRTH_DATE);
    data["identity_document"]["number"] = json!(DOCUMENT_NUMBER);
    let (content_type, body) = multipart(
        &json!({"user_id": user_id, "target_tier": 2, "personal_data": data}),
        &tier2_documents(),
    );
    let submitted = app.request(
        "POST",
        "/v1/kyc/applications",
        Some(&platform),
        Some((&content_type, body)),
        &[],
    );
    assert_eq!(submitted.status, 201, "{}", submitted.body);
    user_id
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn personal_data_is_not_in_the_raw_database_files(app: &TestApp) {
    let user_id = store_personal_data(app);
    // The rows are there: the check below reads files that hold them.
    assert_eq!(
        app.query_text(&format!(
            "SELECT CAST(COUNT(*) AS TEXT) AS value FROM kyc_applications WHERE user_id = '{user_id}'"
        )),
        vec!["1"]
    );
    let files: Vec<std::path::PathBuf> = match app.backend {
        Backend::Sqlite => std::fs::read_dir(app.directory())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                path.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("test.db")
            })
            .collect(),
        Backend::Postgres => {
            app.execute_sql("CHECKPOINT").unwrap();
            let data_directory =
                app.query_text("SELECT current_setting('data_directory') AS value");
            let database = app.query_text(
                "SELECT oid::text AS value FROM pg_database WHERE datname = current_database()",
            );
            let base = std::path::Path::new(&data_directory[0])
                .join("base")
                .join(&database[0]);
            match std::fs::read_dir(&base) {
                Ok(entries) => entries.map(|entry| entry.unwrap().path()).collect(),
                Err(error) => {
                    eprintln!(
                        "\n*** raw-file check SKIPPED on PostgreSQL: cannot read {} ({error}); \
                         run the suite as a user who can read the data directory ***\n",
                        base.display()
                    );
                    return;
                }
            }
        }
    };
    let mut bytes_read = 0;
    let image_sample = &ID_CARD[ID_CARD.len() / 2..ID_CARD.len() / 2 + 48];
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        bytes_read += bytes.len();
        for (what, needle) in [
            ("document number", DOCUMENT_NUMBER.as_bytes()),
            ("birth date", BIRTH_DATE.as_bytes()),
            ("e-mail", EMAIL_LOCAL_PART.as_bytes()),
            ("address", b"Queensway".as_slice()),
            ("identity document image", image_sample),
        ] {
            assert!(
                !find(&bytes, needle),
                "the {what} is in clear in {}",
                file.display()
            );
        }
        // The user's id is stored in clear, so the scan does read the rows.
    }
    let ids_found = files
        .iter()
        .any(|file| find(&std::fs::read(file).unwrap(), user_id.as_bytes()));
    assert!(
        ids_found,
        "the scan read {bytes_read} bytes without finding the user's row"
    );
}

#[test]
fn a_full_run_logs_no_token_key_password_or_personal_datum() {
    let mut app = TestApp::spawn(Backend::Sqlite);
    let smtp_password = "smtp-Pa55word-never-logged";
    let webhook_secret = "whsec-0123456789abcdef0123456789abcdef";
    let log_path = app.directory().join("service.log");
    // The service as operators run it, at debug level, with mail and webhooks that fail (their
    // errors are logged) on the same database as the test's own server.
    let service = app.serve_child(
        free_port(),
        &[
            ("HASHGATE_LOG_LEVEL", "debug".to_string()),
            ("HASHGATE_LOG_FORMAT", "json".to_string()),
            ("HASHGATE_SMTP_HOST", "127.0.0.1".to_string()),
            ("HASHGATE_SMTP_PORT", free_port().to_string()),
            ("HASHGATE_SMTP_TLS", "none".to_string()),
            ("HASHGATE_SMTP_USERNAME", "hashgate".to_string()),
            ("HASHGATE_SMTP_PASSWORD", smtp_password.to_string()),
            (
                "HASHGATE_WEBHOOK_URL",
                format!("http://127.0.0.1:{}/hook", free_port()),
            ),
            ("HASHGATE_WEBHOOK_SECRET", webhook_secret.to_string()),
        ],
        &log_path,
    );
    let own_base = std::mem::replace(&mut app.base, service.base.clone());

    // A working day: users, KYC with documents, payouts, withdrawals with travel-rule data,
    // the console, refused and malformed requests.
    let setup = setup(&app);
    store_personal_data(&app);
    let user = verified_user(&app, &setup, "1");
    let travel = btc_with_beneficiary(&user, "0.02");
    let withdrawn = withdraw(&app, &setup, travel);
    assert_eq!(decision(&withdrawn).0, "approved", "{}", withdrawn.body);
    let session = app.console_session(&setup.officer);
    let queue = app.request(
        "GET",
        "/console/queue",
        None,
        None,
        &[("Cookie", &format!("hg_session={session}"))],
    );
    assert_eq!(queue.status, 200, "{}", queue.body);
    let forged = format!("hg_{}", "f".repeat(40));
    assert_eq!(app.get("/v1/audit", Some(&forged)).status, 401);
    let echoed = app.post(
        "/v1/users",
        Some(&setup.platform),
        &json!({"external_ref": "x", "residence_jurisdiction": "HK", "email": DOCUMENT_NUMBER}),
    );
    assert_eq!(echoed.status, 422, "{}", echoed.body);
    let user_token = app.token(Role::User, None, Some(&user));
    assert_eq!(app.get("/v1/audit", Some(&user_token)).status, 403);
    // Let the outboxes try (and fail) their first deliveries.
    std::thread::sleep(std::time::Duration::from_secs(3));
    drop(service);
    app.base = own_base;

    let mut logged = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut logged)
        .unwrap();
    let requests_logged = logged.matches("request finished").count();
    assert!(
        requests_logged >= 15,
        "the log holds {requests_logged} requests: the scan would prove nothing\n{logged}"
    );
    assert!(
        logged.contains("delivery failed"),
        "the outbox errors were not logged:\n{logged}"
    );
    let secrets = [
        ("platform token", setup.platform.as_str()),
        ("officer token", setup.officer.as_str()),
        ("user token", user_token.as_str()),
        ("forged token", forged.as_str()),
        ("console session", session.as_str()),
        (
            "encryption key",
            app.settings.encryption_key.as_deref().unwrap(),
        ),
        ("signing key", app.settings.signing_key.as_deref().unwrap()),
        ("SMTP password", smtp_password),
        ("webhook secret", webhook_secret),
        ("document number", DOCUMENT_NUMBER),
        ("document number", "K1234567"),
        ("birth date", BIRTH_DATE),
        ("birth date", "1988-04-12"),
        ("e-mail", EMAIL_LOCAL_PART),
        ("legal name", "Zhuang Mingyue"),
        ("legal name", "Ada Lovelace"),
        ("beneficiary", "Grace Hopper"),
        ("address", "Harbour Road"),
    ];
    for (what, secret) in secrets {
        assert!(
            !logged.contains(secret),
            "the {what} is in the service's log:\n{}",
            logged
                .lines()
                .filter(|line| line.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
