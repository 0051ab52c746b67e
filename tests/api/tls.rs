//! The service's own TLS listener: HTTPS with the configured certificate, TLS 1.3 only by default.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use hashgate::db::Backend;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::common::{TestApp, TEST_BODY_LIMIT};

/// A self-signed certificate for localhost, written as PEM files into `directory`.
fn certificate(directory: &std::path::Path) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_file = directory.join("cert.pem");
    let key_file = directory.join("key.pem");
    std::fs::write(&cert_file, issued.cert.pem()).unwrap();
    std::fs::write(&key_file, issued.key_pair.serialize_pem()).unwrap();
    (
        vec![
            ("HASHGATE_TLS_CERT_FILE", cert_file.display().to_string()),
            ("HASHGATE_TLS_KEY_FILE", key_file.display().to_string()),
        ],
        issued.cert.der().to_vec(),
    )
}

fn port_of(app: &TestApp) -> u16 {
    app.base.rsplit(':').next().unwrap().parse().unwrap()
}

/// A TLS handshake with only `version` offered, trusting only `root`; the negotiated version.
fn handshake(
    port: u16,
    root: &[u8],
    version: &'static rustls::SupportedProtocolVersion,
) -> Result<rustls::ProtocolVersion, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(root.to_vec())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connection =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, socket);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|error| error.to_string())?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    Ok(stream.conn.protocol_version().unwrap())
}

#[test]
fn the_service_terminates_tls_1_3_with_its_configured_certificate() {
    let directory = tempfile::tempdir().unwrap();
    let (settings, root) = certificate(directory.path());
    let app = TestApp::spawn_with(Backend::Sqlite, TEST_BODY_LIMIT, &settings);
    let port = port_of(&app);

    // A client trusting the certificate reads the API over HTTPS.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![
                    ureq::tls::Certificate::from_der(&root).to_owned(),
                ])))
                .build(),
        )
        .build()
        .into();
    let mut response = agent
        .get(&format!("https://localhost:{port}/healthz"))
        .call()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .body_mut()
        .read_to_string()
        .unwrap()
        .contains("\"ok\""));

    assert_eq!(
        handshake(port, &root, &rustls::version::TLS13).unwrap(),
        rustls::ProtocolVersion::TLSv1_3
    );
    let refused = handshake(port, &root, &rustls::version::TLS12).unwrap_err();
    assert!(refused.contains("ProtocolVersion"), "{refused}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"));

    // A client that does not trust the certificate is refused by its own check.
    let untrusting: ureq::Agent = ureq::Agent::config_builder().build().into();
    assert!(untrusting
        .get(&format!("https://localhost:{port}/healthz"))
        .call()
        .is_err());
}

#[test]
fn tls_1_2_is_accepted_only_when_configured() {
    let directory = tempfile::tempdir().unwrap();
    let (mut settings, root) = certificate(directory.path());
    settings.push(("HASHGATE_TLS_MIN_VERSION", "1.2".to_string()));
    let app = TestApp::spawn_with(Backend::Sqlite, TEST_BODY_LIMIT, &settings);
    assert_eq!(
        handshake(port_of(&app), &root, &rustls::version::TLS12).unwrap(),
        rustls::ProtocolVersion::TLSv1_2
    );
}

#[test]
fn a_tls_setting_without_its_pair_is_refused_at_start() {
    let directory = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hashgate"))
        .args(["serve"])
        .current_dir(directory.path())
        .env("HASHGATE_DATABASE_URL", "sqlite://unused.db")
        .env("HASHGATE_TLS_CERT_FILE", "/nonexistent/cert.pem")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("tls_key_file"), "{message}");
}
