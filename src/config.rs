//! Settings: built-in defaults < `hashgate.toml` < environment (`DATABASE_URL`, `HASHGATE_*`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::db::Backend;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://hashgate.db";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub database_url: String,
    pub pool_size: u32,
    /// Base64 of 32 bytes: the AES-256-GCM key for personal data.
    pub encryption_key: Option<String>,
    pub encryption_key_file: Option<PathBuf>,
    /// Base64 of 32 bytes: the Ed25519 seed reports are signed with.
    pub signing_key: Option<String>,
    pub signing_key_file: Option<PathBuf>,
    /// Earlier personal-data keys, base64: they only decrypt what was written under them.
    pub encryption_retired_keys: Vec<String>,
    /// Public halves of earlier signing keys, base64: reports signed with them still verify.
    pub signing_retired_public_keys: Vec<String>,
    /// When set, the service terminates TLS itself instead of serving plain HTTP.
    pub tls: Option<TlsSettings>,
    pub max_body_bytes: usize,
    pub workers: usize,
    pub log_format: LogFormat,
    pub log_level: String,
    /// A payout whose latest price is older than this is flagged instead of valued.
    pub price_staleness_seconds: i64,
    /// How long an outbox sender holds a message or event before another may retry it (a
    /// sender killed mid-delivery releases nothing).
    pub outbox_lease_seconds: i64,
    /// Where the e-mail outbox delivers; without a host, mail waits in the outbox.
    pub smtp: SmtpSettings,
    /// Where the platform receives signed webhooks; without a URL, they wait in the outbox.
    pub webhook: WebhookSettings,
    /// The platform as the reporting crypto-asset service provider in tax-authority exports.
    pub reporting_entity: ReportingEntity,
    pub carbon: CarbonSettings,
}

/// The service's own TLS listener: a PEM certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub min_version: TlsVersion,
}

/// The oldest protocol version the listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// How certificates are matched and emissions computed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CarbonSettings {
    /// Per scheme, how far generation may lie before and after the consumption period.
    pub vintage: crate::carbon::matching::VintageRules,
    /// The basis of location-based figures (`lifecycle` or `direct`).
    pub location_basis: crate::carbon::Basis,
}

/// The platform's identity in CARF exports (the RCASP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportingEntity {
    pub name: String,
    /// The platform's tax identification number; none is reported as unknown.
    pub tin: Option<String>,
    /// ISO 3166-1 alpha-2 country of tax residence.
    pub country: String,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookSettings {
    pub url: Option<String>,
    /// The shared HMAC-SHA256 key the platform verifies signatures with.
    pub secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: Option<String>,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender, e.g. `Compliance <compliance@example.com>`.
    pub from: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP: loopback relays and tests only.
    None,
    /// Upgrade with STARTTLS (port 587); refuses to send if the server does not offer it.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: setting `{setting}` ({source_name}): {message}")]
pub struct ConfigError {
    pub setting: String,
    pub source_name: String,
    pub message: String,
}

impl ConfigError {
    fn new(setting: &str, source_name: &str, message: impl Into<String>) -> Self {
        Self {
            setting: setting.to_string(),
            source_name: source_name.to_string(),
            message: message.into(),
        }
    }
}

/// The file layer: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    bind: Option<String>,
    database_url: Option<String>,
    pool_size: Option<u32>,
    encryption_key: Option<String>,
    encryption_key_file: Option<PathBuf>,
    signing_key: Option<String>,
    signing_key_file: Option<PathBuf>,
    encryption_retired_keys: Option<String>,
    signing_retired_public_keys: Option<String>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    tls_min_version: Option<String>,
    max_body_bytes: Option<usize>,
    workers: Option<usize>,
    log_format: Option<String>,
    log_level: Option<String>,
    price_staleness_seconds: Option<i64>,
    outbox_lease_seconds: Option<i64>,
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    smtp_tls: Option<String>,
    smtp_username: Option<String>,
    smtp_password: Option<String>,
    mail_from: Option<String>,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    reporting_entity_name: Option<String>,
    reporting_entity_tin: Option<String>,
    reporting_entity_country: Option<String>,
    reporting_entity_address: Option<String>,
    carbon_vintage_months: Option<String>,
    carbon_location_basis: Option<String>,
}

/// Environment variables that are not settings but are read by hashgate or its tests.
const NON_SETTING_VARIABLES: &[&str] = &[
    "HASHGATE_CONFIG",
    "HASHGATE_TEST_POSTGRES_URL",
    "HASHGATE_TEST_CHROMEDRIVER",
    "HASHGATE_FUZZ_SECONDS",
    crate::scorecard::FIGURES_FILE_VARIABLE,
];
const SETTING_NAMES: &[&str] = &[
    "bind",
    "database_url",
    "pool_size",
    "encryption_key",
    "encryption_key_file",
    "signing_key",
    "signing_key_file",
    "encryption_retired_keys",
    "signing_retired_public_keys",
    "tls_cert_file",
    "tls_key_file",
    "tls_min_version",
    "max_body_bytes",
    "workers",
    "log_format",
    "log_level",
    "price_staleness_seconds",
    "outbox_lease_seconds",
    "smtp_host",
    "smtp_port",
    "smtp_tls",
    "smtp_username",
    "smtp_password",
    "mail_from",
    "webhook_url",
    "webhook_secret",
    "reporting_entity_name",
    "reporting_entity_tin",
    "reporting_entity_country",
    "reporting_entity_address",
    "carbon_vintage_months",
    "carbon_location_basis",
];

impl Settings {
    /// Loads from the given file (or `HASHGATE_CONFIG`, or `./hashgate.toml` when present) and the
    /// process environment.
    pub fn load(config_path: Option<&Path>) -> Result<Settings, ConfigError> {
        let explicit = config_path
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("HASHGATE_CONFIG").map(PathBuf::from));
        let file = match explicit {
            Some(path) => Some((read_file(&path)?, path)),
            None => {
                let default = PathBuf::from("hashgate.toml");
                if default.exists() {
                    Some((read_file(&default)?, default))
                } else {
                    None
                }
            }
        };
        let environment: Vec<(String, String)> = std::env::vars().collect();
        Self::from_layers(file, &environment)
    }

    /// Merges the layers; pure, so tests can drive it without touching the process environment.
    pub fn from_layers(
        file: Option<(String, PathBuf)>,
        environment: &[(String, String)],
    ) -> Result<Settings, ConfigError> {
        let (file_settings, file_name) = match &file {
            Some((text, path)) => {
                let name = path.display().to_string();
                let parsed: FileSettings = toml::from_str(text).map_err(|error| {
                    ConfigError::new(
                        &unknown_or_bad_key(error.message()),
                        &name,
                        error.message().to_string(),
                    )
                })?;
                (parsed, name)
            }
            None => (FileSettings::default(), String::new()),
        };

        let env = |name: &str| -> Option<(String, String)> {
            let variable = format!("HASHGATE_{}", name.to_uppercase());
            environment
                .iter()
                .find(|(key, _)| *key == variable)
                .map(|(_, value)| (value.clone(), variable))
        };
        for (key, _) in environment {
            if let Some(rest) = key.strip_prefix("HASHGATE_") {
                let name = rest.to_lowercase();
                if !SETTING_NAMES.contains(&name.as_str())
                    && !NON_SETTING_VARIABLES.contains(&key.as_str())
                {
                    return Err(ConfigError::new(
                        &name,
                        key,
                        format!(
                            "unknown setting; known settings: {}",
                            SETTING_NAMES.join(", ")
                        ),
                    ));
                }
            }
        }

        // Picks the highest layer that sets a value and remembers where it came from.
        let pick = |name: &str, from_file: Option<String>| -> Option<(String, String)> {
            if let Some(found) = env(name) {
                return Some(found);
            }
            if name == "database_url" {
                if let Some((_, value)) = environment.iter().find(|(key, _)| key == "DATABASE_URL")
                {
                    return Some((value.clone(), "DATABASE_URL".to_string()));
                }
            }
            from_file.map(|value| (value, file_name.clone()))
        };

        let bind_raw = pick("bind", file_settings.bind)
            .unwrap_or((DEFAULT_BIND.to_string(), "default".into()));
        let bind: SocketAddr = bind_raw.0.parse().map_err(|_| {
            ConfigError::new(
                "bind",
                &bind_raw.1,
                format!("`{}` is not an address like 127.0.0.1:8080", bind_raw.0),
            )
        })?;

        let (database_url, database_source) = pick("database_url", file_settings.database_url)
            .unwrap_or((DEFAULT_DATABASE_URL.to_string(), "default".into()));
        let backend = Backend::from_url(&database_url)
            .map_err(|message| ConfigError::new("database_url", &database_source, message))?;

        let pool_size = parse_number(
            "pool_size",
            pick("pool_size", file_settings.pool_size.map(|v| v.to_string())),
        )?
        .unwrap_or(match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 10,
        });
        if pool_size == 0 || pool_size > 200 {
            return Err(ConfigError::new(
                "pool_size",
                "value",
                "must be between 1 and 200",
            ));
        }

        let max_body_bytes = parse_number(
            "max_body_bytes",
            pick(
                "max_body_bytes",
                file_settings.max_body_bytes.map(|v| v.to_string()),
            ),
        )?
        .unwrap_or(4 * 1024 * 1024);
        if max_body_bytes < 1024 {
            return Err(ConfigError::new(
                "max_body_bytes",
                "value",
                "must be at least 1024",
            ));
        }

        let workers = parse_number(
            "workers",
            pick("workers", file_settings.workers.map(|v| v.to_string())),
        )?
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
        if workers == 0 {
            return Err(ConfigError::new("workers", "value", "must be at least 1"));
        }

        let log_format = match pick("log_format", file_settings.log_format) {
            None => LogFormat::Text,
            Some((value, source)) => match value.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(ConfigError::new(
                        "log_format",
                        &source,
                        format!("`{other}` is not one of text, json"),
                    ))
                }
            },
        };
        let log_level = match pick("log_level", file_settings.log_level) {
            None => "info".to_string(),
            Some((value, source)) => {
                tracing_subscriber::EnvFilter::try_new(&value).map_err(|error| {
                    ConfigError::new("log_level", &source, format!("`{value}`: {error}"))
                })?;
                value
            }
        };

        let price_staleness_seconds = parse_number(
            "price_staleness_seconds",
            pick(
                "price_staleness_seconds",
                file_settings.price_staleness_seconds.map(|v| v.to_string()),
            ),
        )?
        .unwrap_or(86_400);
        if !(60..=31 * 86_400).contains(&price_staleness_seconds) {
            return Err(ConfigError::new(
                "price_staleness_seconds",
                "value",
                "must be between 60 and 2678400 (31 days)",
            ));
        }

        let outbox_lease_seconds = parse_number(
            "outbox_lease_seconds",
            pick(
                "outbox_lease_seconds",
                file_settings.outbox_lease_seconds.map(|v| v.to_string()),
            ),
        )?
        .unwrap_or(120);
        // Longer than the SMTP (15 s) and webhook (10 s) timeouts, so a live sender keeps it.
        if !(30..=3600).contains(&outbox_lease_seconds) {
            return Err(ConfigError::new(
                "outbox_lease_seconds",
                "value",
                "must be between 30 and 3600",
            ));
        }

        let encryption_key = pick("encryption_key", file_settings.encryption_key);
        if let Some((value, source)) = &encryption_key {
            crate::crypto::FieldCipher::from_base64(value)
                .map_err(|message| ConfigError::new("encryption_key", source, message))?;
        }
        let encryption_key_file = pick(
            "encryption_key_file",
            file_settings
                .encryption_key_file
                .map(|p| p.display().to_string()),
        )
        .map(|(value, _)| PathBuf::from(value));

        let signing_key = pick("signing_key", file_settings.signing_key);
        if let Some((value, source)) = &signing_key {
            crate::reports::signing::ReportSigner::from_base64(value)
                .map_err(|message| ConfigError::new("signing_key", source, message))?;
        }
        let signing_key_file = pick(
            "signing_key_file",
            file_settings
                .signing_key_file
                .map(|p| p.display().to_string()),
        )
        .map(|(value, _)| PathBuf::from(value));

        let encryption_retired_keys = key_list(
            "encryption_retired_keys",
            pick(
                "encryption_retired_keys",
                file_settings.encryption_retired_keys,
            ),
            |key| crate::crypto::FieldCipher::from_base64(key).map(|_| ()),
        )?;
        let signing_retired_public_keys = key_list(
            "signing_retired_public_keys",
            pick(
                "signing_retired_public_keys",
                file_settings.signing_retired_public_keys,
            ),
            |key| crate::reports::signing::parse_public_key(key).map(|_| ()),
        )?;

        let path = |name: &str, from_file: Option<PathBuf>| {
            pick(name, from_file.map(|p| p.display().to_string()))
                .map(|(value, _)| PathBuf::from(value))
        };
        let tls_min_version = match pick("tls_min_version", file_settings.tls_min_version) {
            None => TlsVersion::Tls13,
            Some((value, source)) => match value.as_str() {
                "1.3" => TlsVersion::Tls13,
                "1.2" => TlsVersion::Tls12,
                other => {
                    return Err(ConfigError::new(
                        "tls_min_version",
                        &source,
                        format!("`{other}` is not one of 1.3, 1.2"),
                    ))
                }
            },
        };
        let tls = match (
            path("tls_cert_file", file_settings.tls_cert_file),
            path("tls_key_file", file_settings.tls_key_file),
        ) {
            (Some(cert_file), Some(key_file)) => Some(TlsSettings {
                cert_file,
                key_file,
                min_version: tls_min_version,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "tls_key_file",
                    "value",
                    "tls_cert_file is set, so tls_key_file must name its private key",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "tls_cert_file",
                    "value",
                    "tls_key_file is set, so tls_cert_file must name its certificate chain",
                ))
            }
        };

        let smtp_tls = match pick("smtp_tls", file_settings.smtp_tls) {
            None => SmtpTls::Starttls,
            Some((value, source)) => match value.as_str() {
                "none" => SmtpTls::None,
                "starttls" => SmtpTls::Starttls,
                "tls" => SmtpTls::Tls,
                other => {
                    return Err(ConfigError::new(
                        "smtp_tls",
                        &source,
                        format!("`{other}` is not one of none, starttls, tls"),
                    ))
                }
            },
        };
        let smtp_port = parse_number(
            "smtp_port",
            pick("smtp_port", file_settings.smtp_port.map(|v| v.to_string())),
        )?
        .unwrap_or(match smtp_tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        });
        let mail_from = pick("mail_from", file_settings.mail_from).unwrap_or((
            "hashgate compliance <compliance@localhost>".into(),
            "default".into(),
        ));
        if mail_from.0.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::new(
                "mail_from",
                &mail_from.1,
                format!(
                    "`{}` is not an address like Compliance <compliance@example.com>",
                    mail_from.0
                ),
            ));
        }
        let smtp = SmtpSettings {
            host: pick("smtp_host", file_settings.smtp_host).map(|(value, _)| value),
            port: smtp_port,
            tls: smtp_tls,
            username: pick("smtp_username", file_settings.smtp_username).map(|(value, _)| value),
            password: pick("smtp_password", file_settings.smtp_password).map(|(value, _)| value),
            from: mail_from.0,
        };

        let webhook = WebhookSettings {
            url: pick("webhook_url", file_settings.webhook_url).map(|(value, _)| value),
            secret: pick("webhook_secret", file_settings.webhook_secret).map(|(value, _)| value),
        };
        if let Some(url) = &webhook.url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError::new(
                    "webhook_url",
                    "value",
                    format!("`{url}` is not an http(s) URL"),
                ));
            }
            if webhook
                .secret
                .as_ref()
                .is_none_or(|secret| secret.len() < 32)
            {
                return Err(ConfigError::new(
                    "webhook_secret",
                    "value",
                    "a webhook_url needs a webhook_secret of at least 32 characters to sign with",
                ));
            }
        }

        let reporting_entity = ReportingEntity {
            name: pick("reporting_entity_name", file_settings.reporting_entity_name)
                .map(|(value, _)| value)
                .unwrap_or_else(|| "hashgate demo platform".into()),
            tin: pick("reporting_entity_tin", file_settings.reporting_entity_tin)
                .map(|(value, _)| value),
            country: pick(
                "reporting_entity_country",
                file_settings.reporting_entity_country,
            )
            .map(|(value, _)| value)
            .unwrap_or_else(|| "HK".into()),
            address: pick(
                "reporting_entity_address",
                file_settings.reporting_entity_address,
            )
            .map(|(value, _)| value)
            .unwrap_or_else(|| "1 Harbour Road, Wan Chai, Hong Kong".into()),
        };
        if !crate::jurisdiction::is_country_code(&reporting_entity.country) {
            return Err(ConfigError::new(
                "reporting_entity_country",
                "value",
                format!(
                    "`{}` is not an ISO 3166-1 alpha-2 code",
                    reporting_entity.country
                ),
            ));
        }

        let mut carbon = CarbonSettings::default();
        if let Some((text, _)) = pick("carbon_vintage_months", file_settings.carbon_vintage_months)
        {
            carbon.vintage = crate::carbon::matching::VintageRules::parse(&text)
                .map_err(|message| ConfigError::new("carbon_vintage_months", "value", message))?;
        }
        if let Some((text, _)) = pick("carbon_location_basis", file_settings.carbon_location_basis)
        {
            carbon.location_basis = match crate::carbon::Basis::parse(&text) {
                Some(basis) if basis != crate::carbon::Basis::ResidualMix => basis,
                _ => {
                    return Err(ConfigError::new(
                        "carbon_location_basis",
                        "value",
                        format!("`{text}` is not `lifecycle` or `direct`"),
                    ))
                }
            };
        }

        Ok(Settings {
            bind,
            database_url,
            pool_size,
            encryption_key: encryption_key.map(|(value, _)| value),
            encryption_key_file,
            signing_key: signing_key.map(|(value, _)| value),
            signing_key_file,
            encryption_retired_keys,
            signing_retired_public_keys,
            tls,
            max_body_bytes,
            workers,
            log_format,
            log_level,
            price_staleness_seconds,
            outbox_lease_seconds,
            smtp,
            webhook,
            reporting_entity,
            carbon,
        })
    }

    pub fn backend(&self) -> Backend {
        // Validated at load time.
        Backend::from_url(&self.database_url).unwrap_or(Backend::Sqlite)
    }
}

/// A comma-separated list of base64 keys, each checked by `check`.
fn key_list(
    name: &str,
    value: Option<(String, String)>,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<Vec<String>, ConfigError> {
    let Some((text, source)) = value else {
        return Ok(Vec::new());
    };
    let keys: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(str::to_string)
        .collect();
    for (position, key) in keys.iter().enumerate() {
        check(key).map_err(|message| {
            ConfigError::new(name, &source, format!("key {}: {message}", position + 1))
        })?;
    }
    Ok(keys)
}

fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|error| {
        ConfigError::new(
            "config",
            &path.display().to_string(),
            format!("cannot read the file: {error}"),
        )
    })
}

fn parse_number<T: std::str::FromStr>(
    setting: &str,
    value: Option<(String, String)>,
) -> Result<Option<T>, ConfigError> {
    match value {
        None => Ok(None),
        Some((raw, source)) => raw.trim().parse::<T>().map(Some).map_err(|_| {
            ConfigError::new(setting, &source, format!("`{raw}` is not a whole number"))
        }),
    }
}

/// Extracts the key name from a toml error message such as "unknown field `bnd`, expected …".
fn unknown_or_bad_key(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| "config".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_without_file_or_environment() {
        let settings = Settings::from_layers(None, &[]).unwrap();
        assert_eq!(settings.bind.to_string(), DEFAULT_BIND);
        assert_eq!(settings.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(settings.backend(), Backend::Sqlite);
    }

    #[test]
    fn environment_overrides_file_and_file_overrides_defaults() {
        let file = Some((
            "bind = \"127.0.0.1:9000\"\npool_size = 3\n".to_string(),
            PathBuf::from("hashgate.toml"),
        ));
        let settings = Settings::from_layers(file, &env(&[("HASHGATE_POOL_SIZE", "7")])).unwrap();
        assert_eq!(settings.bind.port(), 9000);
        assert_eq!(settings.pool_size, 7);
    }

    #[test]
    fn hashgate_database_url_wins_over_database_url() {
        let settings = Settings::from_layers(
            None,
            &env(&[
                ("DATABASE_URL", "postgres://a@localhost/x"),
                ("HASHGATE_DATABASE_URL", "sqlite://other.db"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.database_url, "sqlite://other.db");
    }

    #[test]
    fn invalid_values_name_the_setting_and_its_source() {
        let error = Settings::from_layers(None, &env(&[("HASHGATE_BIND", "nowhere")])).unwrap_err();
        assert_eq!(error.setting, "bind");
        assert_eq!(error.source_name, "HASHGATE_BIND");

        let error =
            Settings::from_layers(None, &env(&[("DATABASE_URL", "mysql://x")])).unwrap_err();
        assert_eq!(error.setting, "database_url");

        let file = Some(("bnd = 1".to_string(), PathBuf::from("h.toml")));
        let error = Settings::from_layers(file, &[]).unwrap_err();
        assert_eq!(error.setting, "bnd");

        let error =
            Settings::from_layers(None, &env(&[("HASHGATE_ENCRYPTION_KEY", "short")])).unwrap_err();
        assert_eq!(error.setting, "encryption_key");

        let error = Settings::from_layers(None, &env(&[("HASHGATE_POOL_SIZ", "3")])).unwrap_err();
        assert_eq!(error.setting, "pool_siz");
        assert!(error.to_string().contains("HASHGATE_POOL_SIZ"));
    }

    #[test]
    fn tls_and_retired_key_settings_are_checked() {
        let tls = Settings::from_layers(
            None,
            &env(&[
                ("HASHGATE_TLS_CERT_FILE", "/etc/tls/chain.pem"),
                ("HASHGATE_TLS_KEY_FILE", "/etc/tls/key.pem"),
            ]),
        )
        .unwrap()
        .tls
        .unwrap();
        assert_eq!(
            tls.min_version,
            TlsVersion::Tls13,
            "TLS 1.3 only by default"
        );
        let error =
            Settings::from_layers(None, &env(&[("HASHGATE_TLS_CERT_FILE", "/c.pem")])).unwrap_err();
        assert_eq!(error.setting, "tls_key_file");
        let error =
            Settings::from_layers(None, &env(&[("HASHGATE_TLS_MIN_VERSION", "1.1")])).unwrap_err();
        assert_eq!(error.setting, "tls_min_version");

        let old_key = crate::crypto::FieldCipher::generate_key();
        let settings = Settings::from_layers(
            None,
            &env(&[("HASHGATE_ENCRYPTION_RETIRED_KEYS", &format!(" {old_key} ,"))]),
        )
        .unwrap();
        assert_eq!(settings.encryption_retired_keys, vec![old_key.clone()]);
        let error = Settings::from_layers(
            None,
            &env(&[(
                "HASHGATE_ENCRYPTION_RETIRED_KEYS",
                &format!("{old_key},short"),
            )]),
        )
        .unwrap_err();
        assert_eq!(error.setting, "encryption_retired_keys");
        assert!(error.message.starts_with("key 2:"), "{}", error.message);
        assert!(
            !error.to_string().contains(&old_key),
            "a key is never echoed"
        );
        let error = Settings::from_layers(
            None,
            &env(&[("HASHGATE_SIGNING_RETIRED_PUBLIC_KEYS", "c2hvcnQ=")]),
        )
        .unwrap_err();
        assert_eq!(error.setting, "signing_retired_public_keys");
    }
}
