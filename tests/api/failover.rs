//! PostgreSQL restarted under the service. While the database is down the service reports
//! not-ready and answers 503 problems (never a 500); once the database is back the service
//! recovers by itself, with no restart, and nothing it acknowledged is lost. The test runs its own
//! PostgreSQL cluster (initdb in a scratch directory), so the server the other tests share is
//! never stopped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{free_port, sql_count, TestApp, TEST_BODY_LIMIT};
use crate::withdrawals::{setup, verified_user};

/// A PostgreSQL cluster of the test's own, stopped and deleted when dropped.
struct PrivateCluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// Root may not run PostgreSQL: the cluster then runs as the `postgres` account.
    as_postgres: bool,
    directory: tempfile::TempDir,
}

impl PrivateCluster {
    fn start() -> PrivateCluster {
        let bin = server_binaries().expect(
            "the PostgreSQL suite needs the server's own binaries (initdb, pg_ctl) on this host",
        );
        let directory = tempfile::tempdir().unwrap();
        let as_postgres = output_of(Command::new("id").arg("-u")).trim() == "0";
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(directory.path()));
            run(Command::new("chmod").args(["755"]).arg(directory.path()));
        }
        let cluster = PrivateCluster {
            bin,
            data: directory.path().join("data"),
            port: free_port(),
            as_postgres,
            directory,
        };
        let data = cluster.data.display().to_string();
        run(&mut cluster.command(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        ));
        cluster.start_server();
        cluster
    }

    fn command(&self, program: &str, arguments: &[&str]) -> Command {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.args(arguments);
        command
    }

    /// `pg_ctl -D <data> ARGUMENTS`, which must succeed.
    fn pg_ctl(&self, arguments: &[&str]) {
        let data = self.data.display().to_string();
        run(&mut self.command("pg_ctl", &[&["-D", data.as_str()], arguments].concat()));
    }

    fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.directory.path().display()
        );
        let log = self.directory.path().join("postgres.log");
        let log = log.display().to_string();
        self.pg_ctl(&["-l", &log, "-o", &options, "-w", "-t", "60", "start"]);
    }

    /// Stops the server as a crash does: no checkpoint, every connection cut.
    fn crash(&self) {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self
            .command(
                "pg_ctl",
                &[
                    "-D",
                    &self.data.display().to_string(),
                    "-m",
                    "immediate",
                    "stop",
                ],
            )
            .output();
    }
}

/// The newest installed server's binary directory (Debian keeps them out of PATH).
fn server_binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).or_else(|| {
        let found = output_of(Command::new("sh").args(["-c", "command -v pg_ctl"]));
        Path::new(found.trim()).parent().map(Path::to_path_buf)
    })
}

fn output_of(command: &mut Command) -> String {
    command
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// (status, content type, body) of one request; the agent waits longer than the pool does.
fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: &str,
    body: Option<(&Value, &str)>,
) -> (u16, String, Value) {
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Authorization", format!("Bearer {token}"));
    let mut response = match body {
        Some((body, key)) => agent
            .run(
                request
                    .header("Content-Type", "application/json")
                    .header("Idempotency-Key", key)
                    .body(body.to_string())
                    .unwrap(),
            )
            .unwrap(),
        None => agent.run(request.body(()).unwrap()).unwrap(),
    };
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        content_type,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn payouts(user: &str, prefix: &str) -> Value {
    let rows: Vec<Value> = (0..10)
        .map(|n| {
            json!({
                "user_id": user, "asset": "BTC", "amount": "0.0001",
                "occurred_at": "2026-12-01T08:00:00Z", "order_id": "o-1",
                "facility_id": "qc-1", "external_id": format!("{prefix}-{n}")
            })
        })
        .collect();
    json!({ "payouts": rows })
}

/// Polls `/readyz` until it answers `status`.
fn until_ready_is(agent: &ureq::Agent, base: &str, status: u16, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (seen, _, _) = send(agent, "GET", &format!("{base}/readyz"), "", None);
        if seen == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "/readyz still answers {seen}, not {status}, after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[cfg_attr(
    not(hashgate_postgres_tests),
    ignore = "PostgreSQL suite SKIPPED: HASHGATE_TEST_POSTGRES_URL is not set"
)]
fn postgres_restarted_under_the_service_reports_not_ready_recovers_and_loses_nothing() {
    let cluster = PrivateCluster::start();
    let app = TestApp::spawn_at(Some(cluster.admin_url()), TEST_BODY_LIMIT, &[]);
    let setup = setup(&app);
    let user = verified_user(&app, &setup, "1");
    let port = free_port();
    let log = app.directory().join("service.log");
    let service = app.serve_child(port, &[], &log);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let url = format!("{}/v1/payouts", service.base);
    let balances = format!("{}/v1/users/{user}/balances", service.base);

    until_ready_is(&agent, &service.base, 200, Duration::from_secs(10));
    let before = payouts(&user, "before");
    let (status, _, body) = send(
        &agent,
        "POST",
        &url,
        &setup.platform,
        Some((&before, "before")),
    );
    assert_eq!(status, 200, "{body}");

    cluster.crash();
    until_ready_is(&agent, &service.base, 503, Duration::from_secs(15));
    // While the database is down, writes and reads are refused as retryable problems.
    let during = payouts(&user, "during");
    for (method, url, body) in [
        ("POST", &url, Some((&during, "during"))),
        ("GET", &balances, None),
    ] {
        let (status, content_type, problem) = send(&agent, method, url, &setup.platform, body);
        assert_eq!(status, 503, "{method} {url}: {problem}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(problem["status"], 503);
    }

    cluster.start_server();
    let recovered = until_ready_is(&agent, &service.base, 200, Duration::from_secs(30));
    eprintln!("the service was ready again {recovered:?} after PostgreSQL was");
    // The refused batch is sent again under its key and written once; a replay changes nothing.
    let (status, _, first) = send(
        &agent,
        "POST",
        &url,
        &setup.platform,
        Some((&during, "during")),
    );
    assert_eq!(status, 200, "{first}");
    let (status, _, replay) = send(
        &agent,
        "POST",
        &url,
        &setup.platform,
        Some((&during, "during")),
    );
    assert_eq!(status, 200, "{replay}");
    assert_eq!(first, replay);
    let (status, _, balance) = send(&agent, "GET", &balances, &setup.platform, None);
    assert_eq!(status, 200, "{balance}");

    // Nothing acknowledged is lost, nothing is doubled, and both chains verify.
    for (prefix, expected) in [("before", "10"), ("during", "10")] {
        assert_eq!(
            sql_count(
                &app,
                &format!("SELECT COUNT(*) FROM ledger_entries WHERE external_id LIKE '{prefix}-%'")
            ),
            expected,
            "{prefix}"
        );
    }
    let verified = app.command(&["verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    drop(service);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("internal error"), "{log}");
}

/// A pooled connection handed back moments ago is lent again without a test query. If its
/// server session ended meanwhile (killed, or lost in a fail-over), the one piece of work it is
/// lent to fails as a retryable 503, never a 500, and the next one gets a tested connection.
#[test]
#[cfg_attr(
    not(hashgate_postgres_tests),
    ignore = "PostgreSQL suite SKIPPED: HASHGATE_TEST_POSTGRES_URL is not set"
)]
fn a_pooled_connection_whose_session_ended_fails_one_request_at_most() {
    use diesel::RunQueryDsl;
    use hashgate::db::{Backend, Db, DbConnection};
    use hashgate::error::AppError;

    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    fn session_pid(connection: &mut DbConnection) -> Result<i32, AppError> {
        let row: Pid =
            diesel::sql_query("SELECT pg_backend_pid() AS pid").get_result(connection)?;
        Ok(row.pid)
    }

    let app = TestApp::spawn(Backend::Postgres);
    // One connection, so every piece of work below is lent the same one while it lives.
    let db = Db::open(&app.settings.database_url, 1).unwrap();
    actix_web::rt::System::new().block_on(async {
        let first = db.run(session_pid).await.unwrap();
        assert_eq!(db.run(session_pid).await.unwrap(), first);

        app.execute_sql(&format!("SELECT pg_terminate_backend({first})"))
            .unwrap();
        let ended = Instant::now();
        let alive = format!("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = {first}");
        while sql_count(&app, &alive) != "0" {
            assert!(
                ended.elapsed() < Duration::from_secs(10),
                "session {first} lives on"
            );
            std::thread::sleep(Duration::from_millis(5));
        }

        match db.run(session_pid).await {
            // Lent untested: the work fails, retryably.
            Err(AppError::ServiceUnavailable(_)) => {}
            // Tested first (it was handed back longer ago than the pool trusts), and replaced.
            Ok(pid) => assert_ne!(pid, first),
            Err(other) => panic!("work on a lost connection failed with {other:?}"),
        }
        let replaced = db.run(session_pid).await.unwrap();
        assert_ne!(replaced, first);
        assert_eq!(db.run(session_pid).await.unwrap(), replaced);
    });
}
