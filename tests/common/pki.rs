//! The one test PKI, made with the real openssl CLI (a CA, leaves, client certificates, an
//! expired leaf, self-signed certificates), and rustls server configurations for
//! [`super::http::HttpServer::start_tls`].

use std::path::{Path, PathBuf};
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

/// A CA (`ca.crt`, `ca.key`, CN `ca_name`, valid 10 years so it outlives every leaf) and a server certificate for 127.0.0.1 and
/// localhost signed by it (`server.pem` = `server.crt`, `server.key`): what [`https_ok`] serves.
/// `ca.crt` is world-readable, so a non-root container can read it through a bind mount.
/// [`leaf`], [`client_cert`] and [`expired_leaf`] sign more certificates with the same CA.
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
            "3650",
            "-subj",
            &format!("/CN={ca_name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    leaf(dir, "server", "IP:127.0.0.1,DNS:localhost");
    std::fs::copy(dir.join("server.pem"), dir.join("server.crt")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("ca.crt"), std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// A key and CSR `NAME.key`, `NAME.csr` (RSA 2048) with CN `cn`, in `dir`.
fn key_and_csr(dir: &Path, name: &str, cn: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
}

/// `NAME.pem` / `NAME.key` with CN `cn`, valid `days` days, signed by the CA
/// [`ca_and_localhost`] made in `dir`, with the extensions `ext` (one per line, as in an openssl
/// extfile).
pub fn signed(dir: &Path, name: &str, cn: &str, days: u32, ext: &str) -> (PathBuf, PathBuf) {
    key_and_csr(dir, name, cn);
    let ext_file = format!("{name}.ext");
    std::fs::write(dir.join(&ext_file), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            &days.to_string(),
            "-extfile",
            &ext_file,
        ],
    );
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}

/// A server certificate for `san` (`IP:127.0.0.1,DNS:localhost`) signed by the CA in `dir`,
/// valid 2 days.
pub fn leaf(dir: &Path, name: &str, san: &str) -> (PathBuf, PathBuf) {
    leaf_for_days(dir, name, san, 2)
}

/// The same, valid `days` days (a certificate close to its expiry).
pub fn leaf_for_days(dir: &Path, name: &str, san: &str, days: u32) -> (PathBuf, PathBuf) {
    signed(
        dir,
        name,
        "127.0.0.1",
        days,
        &format!("subjectAltName={san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"),
    )
}

/// A client certificate with CN `cn`, signed by the CA in `dir`, as `NAME.pem` / `NAME.key`.
pub fn client_cert(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    signed(
        dir,
        name,
        cn,
        2,
        "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
    )
}

/// A server certificate for 127.0.0.1 signed by the CA in `dir` that expired on 2020-01-02
/// (`openssl ca` takes explicit dates, OpenSSL 3.0's x509 does not), as `NAME.pem` / `NAME.key`.
pub fn expired_leaf(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    key_and_csr(dir, name, "127.0.0.1");
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "1000\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nserial=serial\nnew_certs_dir=.\n\
         certificate=ca.crt\nprivate_key=ca.key\ndefault_md=sha256\npolicy=p\n\
         copy_extensions=none\nunique_subject=no\n[p]\ncommonName=supplied\n\
         [x]\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let (csr, pem) = (format!("{name}.csr"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-extensions",
            "x",
            "-in",
            &csr,
            "-out",
            &pem,
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
        ],
    );
    (dir.join(pem), dir.join(format!("{name}.key")))
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
pub fn self_signed_loopback(dir: &Path) -> (PathBuf, PathBuf) {
    self_signed(dir, "loopback", "IP:127.0.0.1")
}

/// The same for `san` (`IP:127.0.0.1,DNS:localhost`, `DNS:other.example`), as `NAME.pem` /
/// `NAME.key` in `dir`.
pub fn self_signed(dir: &Path, name: &str, san: &str) -> (PathBuf, PathBuf) {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
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
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            &format!("subjectAltName={san}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
    );
    (dir.join(pem), dir.join(key))
}
