//! TLS client configuration shared by every applet that speaks TLS: verified by default against
//! the system roots (honouring `SSL_CERT_FILE`/`SSL_CERT_DIR`, as in the scratch image) plus an
//! optional CA bundle, an optional client certificate, and `--insecure` only when asked.
//! One crypto provider only: ring.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::exit::Failure;

#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// Extra CA certificates (PEM) trusted in addition to the system roots.
    #[arg(long, value_name = "PATH", env = "INITBOX_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// Client certificate chain (PEM) for mutual TLS.
    #[arg(
        long,
        value_name = "PATH",
        env = "INITBOX_CLIENT_CERT",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,

    /// Private key (PEM) of the client certificate.
    #[arg(
        long,
        value_name = "PATH",
        env = "INITBOX_CLIENT_KEY",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,

    /// Do not verify server certificates (never the default; logged as a warning).
    #[arg(long, env = "INITBOX_INSECURE", value_parser = clap::builder::BoolishValueParser::new())]
    pub insecure: bool,
}

/// Make ring the process-wide rustls provider (for libraries that build their own configs).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read PEM certificates from `path`.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Failure> {
    let data = std::fs::read(path)
        .map_err(|e| Failure::invalid_input(format!("cannot read {}: {e}", path.display())))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::invalid_input(format!("{}: bad PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Failure::invalid_input(format!(
            "{}: no PEM certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, Failure> {
    let data = std::fs::read(path)
        .map_err(|e| Failure::invalid_input(format!("cannot read {}: {e}", path.display())))?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(|e| Failure::invalid_input(format!("{}: bad PEM: {e}", path.display())))?
        .ok_or_else(|| Failure::invalid_input(format!("{}: no private key found", path.display())))
}

/// System roots plus the CA file.
pub fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore, Failure> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        for cert in read_certs(path)? {
            roots.add(cert).map_err(|e| {
                Failure::invalid_input(format!("{}: unusable CA certificate: {e}", path.display()))
            })?;
        }
    }
    Ok(roots)
}

/// A rustls client configuration for `args`.
pub fn client_config(args: &TlsArgs) -> Result<ClientConfig, Failure> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::failed(format!("TLS set-up: {e}")))?;
    let builder = if args.insecure {
        tracing::warn!("--insecure: server certificates are NOT verified");
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
    } else {
        builder.with_root_certificates(root_store(args.ca_file.as_deref())?)
    };
    match (&args.client_cert, &args.client_key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .map_err(|e| Failure::invalid_input(format!("client certificate: {e}"))),
        _ => Ok(builder.with_no_client_auth()),
    }
}

#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
