//! The `hashgate` binary: tokens from the command line, migrations, and configuration errors.

use std::process::Command;

use crate::backend_tests;
use crate::common::TestApp;

backend_tests!(
    command_line_tokens_work_against_the_api,
    demo_data_is_a_consistent_ledger
);

fn demo_data_is_a_consistent_ledger(app: &TestApp) {
    let mut connection = app.state_db.connection().unwrap();
    let cipher =
        hashgate::crypto::FieldCipher::from_base64(app.settings.encryption_key.as_deref().unwrap())
            .unwrap();
    let demo = hashgate::demo::seed(&mut connection, &cipher).unwrap();
    drop(connection);
    assert_eq!(demo.ledger.payouts, 6 * 90);
    assert!(demo.ledger.fees >= 6);
    let user = &demo.user_ids[0].1;
    let officer = &demo
        .tokens
        .iter()
        .find(|t| t.role == hashgate::auth::Role::Officer)
        .unwrap()
        .secret;
    let balances = app
        .get(&format!("/v1/users/{user}/balances"), Some(officer))
        .json();
    assert!(
        balances["balances"][0]["available"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 0.0
    );
    let entries = app
        .get(
            &format!("/v1/users/{user}/ledger?kind=payout&limit=5"),
            Some(officer),
        )
        .json();
    assert!(entries["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["valuation"] == "priced"));
    let verify = app.command(&["verify"]);
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "ledger: {} entries, hash chain intact",
            demo.ledger.payouts + demo.ledger.fees
        )),
        "{stdout}"
    );
}

fn command_line_tokens_work_against_the_api(app: &TestApp) {
    let created = app.command(&["token", "create", "--role", "admin", "--name", "ops lead"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let secret = String::from_utf8(created.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert!(secret.starts_with("hgt_"));
    assert_eq!(app.get("/v1/tokens", Some(&secret)).status, 200);

    let refused = app.command(&["token", "create", "--role", "regulator", "--name", "r"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("jurisdiction"));

    let listed = String::from_utf8(app.command(&["token", "list"]).stdout).unwrap();
    let line = listed
        .lines()
        .find(|l| l.contains("ops lead"))
        .expect("listed");
    let id = line.split_whitespace().next().unwrap();
    let revoked = app.command(&["token", "revoke", id, "--reason", "left the team"]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert_eq!(app.get("/v1/tokens", Some(&secret)).status, 401);
    let audit = app.query_text(&format!(
        "SELECT reason AS value FROM audit_log WHERE action = 'token.revoke' AND subject_id = '{id}'"
    ));
    assert_eq!(audit, vec!["left the team"]);
}

fn hashgate(
    arguments: &[&str],
    environment: &[(&str, &str)],
    directory: &std::path::Path,
) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hashgate"));
    command
        .args(arguments)
        .current_dir(directory)
        .env_remove("DATABASE_URL");
    for (key, _) in std::env::vars() {
        if key.starts_with("HASHGATE_") {
            command.env_remove(key);
        }
    }
    command.envs(environment.iter().copied()).output().unwrap()
}

#[test]
fn invalid_configuration_stops_start_up_naming_the_setting() {
    let directory = tempfile::tempdir().unwrap();
    for (environment, setting) in [
        (vec![("HASHGATE_BIND", "not-an-address")], "`bind`"),
        (
            vec![("DATABASE_URL", "mysql://localhost/x")],
            "`database_url`",
        ),
        (vec![("HASHGATE_POOL_SIZE", "many")], "`pool_size`"),
        (vec![("HASHGATE_LOG_FORMAT", "xml")], "`log_format`"),
        (
            vec![("HASHGATE_ENCRYPTION_KEY", "c2hvcnQ=")],
            "`encryption_key`",
        ),
    ] {
        let output = hashgate(&["serve"], &environment, directory.path());
        assert_eq!(output.status.code(), Some(2), "{environment:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(setting), "{stderr}");
    }
    std::fs::write(
        directory.path().join("hashgate.toml"),
        "bind = \"127.0.0.1:1\"\nbnd = 3\n",
    )
    .unwrap();
    let output = hashgate(&["serve"], &[], directory.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("`bnd`"));
}

#[test]
fn postgres_refuses_to_start_without_an_encryption_key() {
    let directory = tempfile::tempdir().unwrap();
    let output = hashgate(
        &["serve"],
        &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")],
        directory.path(),
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains("`encryption_key` is required on PostgreSQL"));
}

#[test]
fn sqlite_default_migrates_and_generates_a_key_beside_the_database() {
    let directory = tempfile::tempdir().unwrap();
    let output = hashgate(&["migrate"], &[], directory.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("applied"));
    assert!(directory.path().join("hashgate.db").exists());
    let again = hashgate(&["migrate"], &[], directory.path());
    assert!(String::from_utf8_lossy(&again.stdout).contains("up to date"));

    let created = hashgate(
        &["token", "create", "--role", "platform", "--name", "p"],
        &[],
        directory.path(),
    );
    assert!(created.status.success());
    let verify = hashgate(&["verify"], &[], directory.path());
    assert!(String::from_utf8_lossy(&verify.stdout).contains("1 entries, hash chain intact"));
    // The key file is created by whatever opens the personal-data store first: serve or demo.
    let key_path = directory.path().join("hashgate.db.key");
    let settings = hashgate::config::Settings::from_layers(
        None,
        &[(
            "HASHGATE_DATABASE_URL".into(),
            format!(
                "sqlite://{}",
                directory.path().join("hashgate.db").display()
            ),
        )],
    )
    .unwrap();
    hashgate::load_cipher(&settings).unwrap();
    let key = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(
        hashgate::crypto::FieldCipher::from_base64(&key).map(|_| ()),
        Ok(())
    );
    hashgate::load_cipher(&settings).unwrap();
    assert_eq!(
        std::fs::read_to_string(&key_path).unwrap(),
        key,
        "the key is kept, not regenerated"
    );
}
