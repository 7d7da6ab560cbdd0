//! Test PKI with the real openssl CLI (CAs, leaves, client certificates), and rustls server
//! configurations for [`super::http::HttpServer::start_tls`].

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Run `openssl ARGS` in `dir`; a failure fails the test (openssl is required, never skipped).
pub fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(o.status.success(), "openssl {args:?}: {}", super::text(&o));
}

/// A rustls server configuration from `dir/NAME.pem` (chain) and `dir/NAME.key`.
pub fn server_config(dir: &Path, name: &str) -> Arc<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join(format!("{name}.pem")))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join(format!("{name}.key"))).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    Arc::new(cfg)
}

/// What a user makes with one `openssl req -x509`: a self-signed CA:TRUE certificate for
/// 127.0.0.1 (P-256), in `dir`; returns (certificate, key) paths.
pub fn self_signed_loopback(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "loopback.key",
            "-out",
            "loopback.pem",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
    );
    (dir.join("loopback.pem"), dir.join("loopback.key"))
}
