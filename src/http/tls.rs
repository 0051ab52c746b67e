//! The service's own TLS listener (rustls): TLS 1.3 only unless `tls_min_version = "1.2"`.

use std::sync::Arc;

use anyhow::Context as _;
use rustls::crypto::ring::default_provider;
use rustls::version::{TLS12, TLS13};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{TlsSettings, TlsVersion};

/// The rustls configuration for `settings`: the certificate chain and key read once at start, so
/// a bad file stops the service at start-up rather than at the first handshake.
pub fn server_config(settings: &TlsSettings) -> anyhow::Result<ServerConfig> {
    let chain = CertificateDer::pem_file_iter(&settings.cert_file)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "setting `tls_cert_file`: cannot read a PEM certificate chain from {}",
                settings.cert_file.display()
            )
        })?;
    if chain.is_empty() {
        anyhow::bail!(
            "setting `tls_cert_file`: {} holds no certificate",
            settings.cert_file.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(&settings.key_file).with_context(|| {
        format!(
            "setting `tls_key_file`: cannot read a PEM private key from {}",
            settings.key_file.display()
        )
    })?;
    let versions: &[&'static rustls::SupportedProtocolVersion] = match settings.min_version {
        TlsVersion::Tls13 => &[&TLS13],
        TlsVersion::Tls12 => &[&TLS13, &TLS12],
    };
    let mut config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_protocol_versions(versions)
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context(
            "settings `tls_cert_file` and `tls_key_file`: the key does not fit the certificate",
        )?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(
        directory: &std::path::Path,
        name: &str,
    ) -> (std::path::PathBuf, std::path::PathBuf) {
        let issued = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        let cert = directory.join(format!("{name}.crt"));
        let key = directory.join(format!("{name}.key"));
        std::fs::write(&cert, issued.cert.pem()).unwrap();
        std::fs::write(&key, issued.key_pair.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn a_matching_pair_loads_and_a_mismatched_or_missing_one_names_the_setting() {
        let directory = tempfile::tempdir().unwrap();
        let (cert_file, key_file) = write_pair(directory.path(), "a.example");
        let (_, other_key) = write_pair(directory.path(), "b.example");
        let settings = |cert_file: &std::path::Path, key_file: &std::path::Path| TlsSettings {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            min_version: TlsVersion::Tls13,
        };
        assert!(server_config(&settings(&cert_file, &key_file)).is_ok());

        let mismatched = server_config(&settings(&cert_file, &other_key)).unwrap_err();
        assert!(
            format!("{mismatched:#}").contains("does not fit"),
            "{mismatched:#}"
        );
        let missing =
            server_config(&settings(&directory.path().join("none.crt"), &key_file)).unwrap_err();
        assert!(
            format!("{missing:#}").contains("tls_cert_file"),
            "{missing:#}"
        );
        let not_a_key = server_config(&settings(&cert_file, &cert_file)).unwrap_err();
        assert!(
            format!("{not_a_key:#}").contains("tls_key_file"),
            "{not_a_key:#}"
        );
    }
}
