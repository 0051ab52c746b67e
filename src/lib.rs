//! hashgate: compliance, KYC and tax reporting for cloud-mining platforms.

pub mod aml;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod carbon;
pub mod chain;
pub mod config;
pub mod console;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod jurisdiction;
pub mod kyc;
pub mod ledger;
pub mod load;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod reports;
pub mod scorecard;
pub mod tax;
pub mod users;
pub mod utc;
pub mod withdrawals;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{middleware::from_fn, web, App, HttpServer};
use anyhow::Context;

use crate::config::Settings;
use crate::crypto::FieldCipher;
use crate::db::{Backend, Db};
use crate::http::extract::BodyLimit;
use crate::metrics::Metrics;

/// What every handler can reach.
pub struct AppState {
    pub db: Db,
    pub cipher: FieldCipher,
    pub metrics: Arc<Metrics>,
    pub price_staleness: chrono::Duration,
    pub screener: Arc<aml::screener::Screener>,
    pub jurisdictions: Arc<jurisdiction::Jurisdictions>,
    /// Delivers the e-mail outbox; `None` without a configured SMTP host.
    pub mailer: Option<Arc<notify::mailer::Mailer>>,
    pub webhook: config::WebhookSettings,
    /// How long an outbox sender holds what it is delivering.
    pub outbox_lease: chrono::Duration,
    pub reporting_entity: config::ReportingEntity,
    pub carbon: config::CarbonSettings,
    pub signer: Arc<reports::signing::ReportSigner>,
}

/// A key setting: its name, the configured value or file, and the suffix of the file the
/// embedded default generates beside the database.
struct KeySetting<'a> {
    name: &'static str,
    value: Option<&'a String>,
    file: Option<&'a std::path::PathBuf>,
    suffix: &'static str,
    purpose: &'static str,
}

/// Reads a key (base64 of 32 bytes): configured as a value or a file, or on the embedded
/// default generated into a file beside the database. PostgreSQL never runs without a
/// configured key. `parse` checks the key and builds what uses it.
fn load_key<T>(
    settings: &Settings,
    key: KeySetting,
    parse: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<T> {
    let name = key.name;
    if let Some(value) = key.value {
        return parse(value).map_err(anyhow::Error::msg);
    }
    if let Some(path) = key.file {
        let value = std::fs::read_to_string(path).with_context(|| {
            format!(
                "invalid configuration: setting `{name}_file`: cannot read {}",
                path.display()
            )
        })?;
        return parse(&value).map_err(|message| {
            anyhow::anyhow!(
                "invalid configuration: setting `{name}_file` ({}): {message}",
                path.display()
            )
        });
    }
    match settings.backend() {
        Backend::Postgres => anyhow::bail!(
            "invalid configuration: setting `{name}` is required on PostgreSQL \
             (set HASHGATE_{} to `openssl rand -base64 32`, or {name}_file)",
            name.to_uppercase()
        ),
        Backend::Sqlite => {
            let database = db::sqlite_path(&settings.database_url).unwrap_or("hashgate.db");
            let path = crypto::key_file_beside(std::path::Path::new(database), key.suffix);
            let (value, created) = crypto::load_or_create_key_file(&path).with_context(|| {
                format!("cannot read or create the key file {}", path.display())
            })?;
            let purpose = key.purpose;
            if created {
                tracing::warn!(path = %path.display(), "generated a new {purpose} key beside the database; back it up with the database");
            } else {
                tracing::info!(path = %path.display(), "using the {purpose} key beside the database");
            }
            parse(&value).map_err(|message| {
                anyhow::anyhow!("the key file {} is invalid: {message}", path.display())
            })
        }
    }
}

/// The personal-data key.
pub fn load_cipher(settings: &Settings) -> anyhow::Result<FieldCipher> {
    load_key(
        settings,
        KeySetting {
            name: "encryption_key",
            value: settings.encryption_key.as_ref(),
            file: settings.encryption_key_file.as_ref(),
            suffix: ".key",
            purpose: "personal-data encryption",
        },
        |key| FieldCipher::from_base64(key)?.with_retired(&settings.encryption_retired_keys),
    )
}

/// The report-signing key.
pub fn load_signer(settings: &Settings) -> anyhow::Result<reports::signing::ReportSigner> {
    load_key(
        settings,
        KeySetting {
            name: "signing_key",
            value: settings.signing_key.as_ref(),
            file: settings.signing_key_file.as_ref(),
            suffix: ".signing-key",
            purpose: "report-signing",
        },
        |key| {
            reports::signing::ReportSigner::from_base64(key)?
                .with_retired(&settings.signing_retired_public_keys)
        },
    )
}

impl AppState {
    /// Opens (and migrates) the database and loads the key.
    pub fn open(settings: &Settings) -> anyhow::Result<AppState> {
        let cipher = load_cipher(settings)?;
        let signer = Arc::new(load_signer(settings)?);
        let jurisdictions = jurisdiction::Jurisdictions::load_default()?;
        let db = Db::open(&settings.database_url, settings.pool_size)?;
        Ok(AppState {
            db,
            cipher,
            metrics: Arc::new(Metrics::default()),
            price_staleness: chrono::Duration::seconds(settings.price_staleness_seconds),
            screener: Arc::default(),
            jurisdictions: Arc::new(jurisdictions),
            mailer: notify::mailer::Mailer::from_settings(&settings.smtp)?.map(Arc::new),
            webhook: settings.webhook.clone(),
            outbox_lease: chrono::Duration::seconds(settings.outbox_lease_seconds),
            reporting_entity: settings.reporting_entity.clone(),
            carbon: settings.carbon.clone(),
            signer,
        })
    }
}

/// Registers every route; shared by the server and the tests.
pub fn configure(config: &mut web::ServiceConfig) {
    http::configure(config);
    users::routes::configure(config);
    auth::routes::configure(config);
    audit::routes::configure(config);
    ledger::routes::configure(config);
    aml::routes::configure(config);
    aml::list_routes::configure(config);
    kyc::routes::configure(config);
    withdrawals::routes::configure(config);
    tax::routes::configure(config);
    carbon::routes::configure(config);
    reports::routes::configure(config);
    aml::monitoring::routes::configure(config);
    console::configure(config);
}

/// A bound, not yet running server.
pub struct Application {
    server: Server,
    port: u16,
    state: web::Data<AppState>,
}

impl Application {
    pub fn build(settings: &Settings, state: AppState) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(settings.bind)
            .with_context(|| format!("cannot listen on {} (setting `bind`)", settings.bind))?;
        Self::with_listener(listener, settings, state)
    }

    pub fn with_listener(
        listener: TcpListener,
        settings: &Settings,
        state: AppState,
    ) -> anyhow::Result<Application> {
        let port = listener.local_addr()?.port();
        let state = web::Data::new(state);
        let body_limit = BodyLimit(settings.max_body_bytes);
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(body_limit)
                .wrap(from_fn(http::middleware::observe))
                .configure(configure)
                .default_service(web::to(http::not_found))
        })
        .workers(settings.workers);
        let server = match &settings.tls {
            Some(tls) => server.listen_rustls_0_23(listener, http::tls::server_config(tls)?)?,
            None => server.listen(listener)?,
        }
        .run();
        Ok(Application {
            server,
            port,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped, with the background workers beside the server: screening jobs,
    /// the e-mail and webhook outboxes, the daily monitoring batch, scheduled reports and the
    /// daily KYC review.
    pub async fn run(self) -> std::io::Result<()> {
        let workers = [
            actix_web::rt::spawn(aml::monitor::work(self.state.clone())),
            actix_web::rt::spawn(notify::mailer::work(self.state.clone())),
            actix_web::rt::spawn(notify::webhooks::work(self.state.clone())),
            actix_web::rt::spawn(aml::monitoring::batch::schedule(self.state.clone())),
            actix_web::rt::spawn(reports::schedule::work(self.state.clone())),
            actix_web::rt::spawn(kyc::review::schedule(self.state)),
        ];
        let served = self.server.await;
        for worker in workers {
            worker.abort();
        }
        served
    }
}

/// Logs to stderr as text or JSON lines.
pub fn init_tracing(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.log_format {
        config::LogFormat::Json => builder.json().try_init(),
        config::LogFormat::Text => builder.try_init(),
    };
}
