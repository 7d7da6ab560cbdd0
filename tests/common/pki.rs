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

/// A CA (`ca.crt`, `ca.key`, CN `ca_name`) and a server certificate for 127.0.0.1 signed by it
/// (`server.pem` = `server.crt`, `server.key`): what [`https_ok`] serves. `ca.crt` is
/// world-readable, so a non-root container can read it through a bind mount.
pub fn ca_and_localhost(dir: &Path, ca_name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca_name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    std::fs::copy(dir.join("server.crt"), dir.join("server.pem")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("ca.crt"), std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// An HTTPS server on 127.0.0.1 with the certificate [`ca_and_localhost`] made in `dir`,
/// answering every request with 200 `ok`.
pub fn https_ok(dir: &Path) -> super::http::HttpServer {
    super::http::HttpServer::start_tls(Some(server_config(dir, "server")), |_, _| {
        super::http::Answer::new(200, "text/plain", "ok")
    })
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
