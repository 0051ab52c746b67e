//! A real hashgate server per test, on a fresh database, driven over HTTP on loopback.

use std::net::TcpListener;
use std::sync::mpsc;
use std::thread::JoinHandle;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use hashgate::auth::{generate_token, store as tokens, Role, TokenGrant};
use hashgate::config::Settings;
use hashgate::crypto::FieldCipher;
use hashgate::db::{write_transaction, Backend};
use hashgate::{AppState, Application};
use serde_json::Value;

/// Generates `mod sqlite` and `mod postgres`, each with one `#[test]` per scenario.
#[macro_export]
macro_rules! backend_tests {
    ($($scenario:ident),+ $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $scenario() {
                super::$scenario(&$crate::common::TestApp::spawn(hashgate::db::Backend::Sqlite));
            })+
        }
        mod postgres {
            $(#[test]
            #[cfg_attr(not(hashgate_postgres_tests), ignore = "PostgreSQL suite SKIPPED: HASHGATE_TEST_POSTGRES_URL is not set")]
            fn $scenario() {
                super::$scenario(&$crate::common::TestApp::spawn(hashgate::db::Backend::Postgres));
            })+
        }
    };
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy where it is binary); `bytes` holds it exactly.
    pub body: String,
    pub bytes: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Asserts an RFC 9457 problem with this status, and returns its body.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let body = self.json();
        assert_eq!(body["status"], status);
        assert!(body["type"].as_str().unwrap().starts_with("/problems/"));
        assert!(!body["title"].as_str().unwrap().is_empty());
        assert!(!body["detail"].as_str().unwrap().is_empty());
        body
    }

    /// The fields named in a problem's `errors`.
    pub fn problem_fields(&self, status: u16) -> Vec<String> {
        self.problem(status)["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["field"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub struct TestApp {
    pub backend: Backend,
    pub base: String,
    pub settings: Settings,
    pub state_db: hashgate::db::Db,
    agent: ureq::Agent,
    server: Option<(actix_web::dev::ServerHandle, JoinHandle<()>)>,
    postgres_database: Option<(String, String)>,
    _directory: tempfile::TempDir,
}

pub const TEST_BODY_LIMIT: usize = 64 * 1024;

impl TestApp {
    pub fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with_body_limit(backend, TEST_BODY_LIMIT)
    }

    pub fn spawn_with_body_limit(backend: Backend, body_limit: usize) -> TestApp {
        Self::spawn_with(backend, body_limit, &[])
    }

    /// A server with more settings, e.g. `("HASHGATE_SMTP_HOST", "127.0.0.1")`.
    pub fn spawn_with(backend: Backend, body_limit: usize, extra: &[(&str, String)]) -> TestApp {
        let admin_url = (backend == Backend::Postgres).then(|| {
            std::env::var("HASHGATE_TEST_POSTGRES_URL")
                .expect("HASHGATE_TEST_POSTGRES_URL must be set for the PostgreSQL suite")
        });
        Self::spawn_at(admin_url, body_limit, extra)
    }

    /// A server on a new database of the PostgreSQL server at `postgres_admin_url`, or on a
    /// new SQLite file when it is `None`.
    pub fn spawn_at(
        postgres_admin_url: Option<String>,
        body_limit: usize,
        extra: &[(&str, String)],
    ) -> TestApp {
        let directory = tempfile::tempdir().unwrap();
        let backend = if postgres_admin_url.is_some() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let (database_url, postgres_database) = match postgres_admin_url {
            None => (
                format!("sqlite://{}", directory.path().join("test.db").display()),
                None,
            ),
            Some(admin_url) => {
                let name = format!("hashgate_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = PgConnection::establish(&admin_url)
                    .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {admin_url}: {e}"));
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .unwrap();
                let base = admin_url.rsplit_once('/').map(|(base, _)| base).unwrap();
                (format!("{base}/{name}"), Some((admin_url, name)))
            }
        };
        let key = FieldCipher::generate_key();
        let mut layers = vec![
            ("HASHGATE_DATABASE_URL".to_string(), database_url),
            ("HASHGATE_BIND".into(), "127.0.0.1:0".into()),
            ("HASHGATE_ENCRYPTION_KEY".into(), key),
            (
                "HASHGATE_SIGNING_KEY".into(),
                hashgate::reports::signing::ReportSigner::generate_key(),
            ),
            ("HASHGATE_WORKERS".into(), "2".into()),
            ("HASHGATE_MAX_BODY_BYTES".into(), body_limit.to_string()),
        ];
        layers.extend(
            extra
                .iter()
                .map(|(name, value)| (name.to_string(), value.clone())),
        );
        let settings = Settings::from_layers(None, &layers).unwrap();
        let state = AppState::open(&settings).unwrap();
        let state_db = state.db.clone();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, receiver) = mpsc::channel();
        let server_settings = settings.clone();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let application =
                    Application::with_listener(listener, &server_settings, state).unwrap();
                sender.send(application.handle()).unwrap();
                application.run().await.unwrap();
            })
        });
        let handle = receiver.recv().unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        TestApp {
            backend,
            base: format!("http://127.0.0.1:{port}"),
            settings,
            state_db,
            agent,
            server: Some((handle, thread)),
            postgres_database,
            _directory: directory,
        }
    }

    /// A token created the way `hashgate token create` does it.
    pub fn token(&self, role: Role, jurisdiction: Option<&str>, user_id: Option<&str>) -> String {
        let grant = TokenGrant {
            name: format!("test {role}"),
            role,
            jurisdiction: jurisdiction.map(str::to_string),
            user_id: user_id.map(str::to_string),
        };
        let (secret, hash) = generate_token();
        let mut connection = self.state_db.connection().unwrap();
        write_transaction(&mut connection, |connection| {
            tokens::create(
                connection,
                &grant,
                &hash,
                &hashgate::audit::Actor::command_line(),
                None,
            )
        })
        .unwrap();
        secret
    }

    /// Registers a user through the API and returns its id.
    pub fn create_user(&self, platform_token: &str, external_ref: &str) -> String {
        let response = self.post(
            "/v1/users",
            Some(platform_token),
            &serde_json::json!({
                "external_ref": external_ref,
                "email": format!("{external_ref}@example.com"),
                "residence_jurisdiction": "HK",
            }),
        );
        assert_eq!(response.status, 201, "{}", response.body);
        response.json()["id"].as_str().unwrap().to_string()
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let bytes = match body {
            Some((content_type, bytes)) => {
                builder = builder.header("Content-Type", content_type);
                bytes
            }
            None => Vec::new(),
        };
        let request = builder.body(bytes).unwrap();
        let mut response = self.agent.run(request).unwrap();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .unwrap();
        Response {
            status: response.status().as_u16(),
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request("GET", path, token, None, &[])
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.post_with(path, token, body, &[])
    }

    pub fn post_with(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Response {
        self.request(
            "POST",
            path,
            token,
            Some(("application/json", body.to_string().into_bytes())),
            headers,
        )
    }

    /// Runs SQL directly against the test database, as an intruder with database access would.
    pub fn execute_sql(&self, sql: &str) -> Result<(), String> {
        let mut connection = self.state_db.connection().unwrap();
        connection.batch_execute(sql).map_err(|e| e.to_string())
    }

    /// One text column of the first row of a query, read directly.
    pub fn query_text(&self, sql: &str) -> Vec<String> {
        use diesel::sql_types::Text;
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            value: String,
        }
        let mut connection = self.state_db.connection().unwrap();
        diesel::sql_query(sql)
            .load::<Row>(&mut **connection)
            .unwrap()
            .into_iter()
            .map(|row| row.value)
            .collect()
    }

    /// Runs the `hashgate` binary against this test's database.
    pub fn command(&self, arguments: &[&str]) -> std::process::Output {
        self.command_builder(arguments).output().unwrap()
    }

    /// The `hashgate` binary set up for this test's database, not yet started.
    pub fn command_builder(&self, arguments: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hashgate"));
        command
            .args(arguments)
            .env_remove("DATABASE_URL")
            .env("HASHGATE_DATABASE_URL", &self.settings.database_url)
            .env(
                "HASHGATE_ENCRYPTION_KEY",
                self.settings.encryption_key.as_deref().unwrap(),
            )
            .env(
                "HASHGATE_SIGNING_KEY",
                self.settings.signing_key.as_deref().unwrap(),
            )
            .env("HASHGATE_LOG_LEVEL", "warn")
            .current_dir(self._directory.path());
        command
    }

    /// Logs `token` into the console as a browser would (login page, CSRF cookie, form);
    /// returns the session cookie's value.
    pub fn console_session(&self, token: &str) -> String {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let cookie = |response: &ureq::http::Response<ureq::Body>, name: &str| {
            response
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .find(|value| value.starts_with(&format!("{name}=")))
                .map(|value| value.split(';').next().unwrap()[name.len() + 1..].to_string())
        };
        let page = agent
            .get(&format!("{}/console/login", self.base))
            .call()
            .unwrap();
        let csrf = cookie(&page, "hg_login_csrf").unwrap();
        let response = agent
            .post(&format!("{}/console/login", self.base))
            .header("Cookie", &format!("hg_login_csrf={csrf}"))
            .content_type("application/x-www-form-urlencoded")
            .send(serde_urlencoded::to_string([("csrf", csrf.as_str()), ("token", token)]).unwrap())
            .unwrap();
        assert_eq!(response.status().as_u16(), 303, "console login");
        cookie(&response, "hg_session").unwrap()
    }

    /// An admin token made through the API and revoked through it; returns its secret.
    pub fn revoked_token(&self) -> String {
        let admin = self.token(Role::Admin, None, None);
        let made = self
            .post(
                "/v1/tokens",
                Some(&admin),
                &serde_json::json!({"name": "gone", "role": "admin"}),
            )
            .json();
        let revoked = self.post(
            &format!("/v1/tokens/{}/revoke", made["id"].as_str().unwrap()),
            Some(&admin),
            &serde_json::json!({"reason": "left the company"}),
        );
        assert_eq!(revoked.status, 200, "{}", revoked.body);
        made["token"].as_str().unwrap().to_string()
    }

    /// The test's own scratch directory.
    pub fn directory(&self) -> &std::path::Path {
        self._directory.path()
    }

    /// `hashgate serve` as a process of its own on this test's database, with `settings` added
    /// (they win over the test's), logging to `log`. Requests reach it once `base` is swapped.
    pub fn serve_child(
        &self,
        port: u16,
        settings: &[(&str, String)],
        log: &std::path::Path,
    ) -> ChildService {
        let mut command = self.command_builder(&["serve"]);
        command
            .env("HASHGATE_BIND", format!("127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .unwrap(),
            );
        for (name, value) in settings {
            command.env(name, value);
        }
        let process = command.spawn().unwrap();
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed().as_secs() < 30,
                "the service did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        ChildService {
            process,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

/// The single value of `sql` (a count, say) as text, on either backend.
pub fn sql_count(app: &TestApp, sql: &str) -> String {
    app.query_text(&format!("SELECT CAST(({sql}) AS TEXT) AS value"))[0].clone()
}

/// A free local port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A service process started by [`TestApp::serve_child`]; killed (SIGKILL) when dropped.
pub struct ChildService {
    process: std::process::Child,
    pub base: String,
}

impl Drop for ChildService {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((handle, thread)) = self.server.take() {
            actix_web::rt::System::new().block_on(handle.stop(false));
            let _ = thread.join();
        }
        if let Some((admin_url, name)) = self.postgres_database.take() {
            if let Ok(mut admin) = PgConnection::establish(&admin_url) {
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}
