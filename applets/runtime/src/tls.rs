//! TLS client configuration shared by every applet that speaks TLS: verified by default against
//! the system roots (honouring `SSL_CERT_FILE`/`SSL_CERT_DIR`, as in the scratch image) plus an
//! optional CA bundle, an optional client certificate, and `--insecure` only when asked.
//! One crypto provider only: ring.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::exit::Failure;

#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// Extra CA certificates (PEM) trusted in addition to the system roots.
    #[arg(long, value_name = "PATH", env = crate::env::CA_FILE)]
    pub ca_file: Option<PathBuf>,

    /// Client certificate chain (PEM) for mutual TLS.
    #[arg(
        long,
        value_name = "PATH",
        env = crate::env::CLIENT_CERT,
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,

    /// Private key (PEM) of the client certificate.
    #[arg(
        long,
        value_name = "PATH",
        env = crate::env::CLIENT_KEY,
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,

    /// Do not verify server certificates (never the default; logged as a warning).
    #[arg(long, env = crate::env::INSECURE, value_parser = clap::builder::BoolishValueParser::new())]
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
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&data)
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
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            Failure::invalid_input(format!("{}: no private key found", path.display()))
        }
        e => Failure::invalid_input(format!("{}: bad PEM: {e}", path.display())),
    })
}

/// The system CA store, read and parsed on first use and then shared by every TLS
/// configuration of the process: an https probe repeated by a wait, several https targets of one
/// notify or network-check run, and each `--ca-file` variant pay for it once (about 15 ms for a
/// Debian bundle), and a run without TLS never reads it.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: std::sync::OnceLock<Arc<RootCertStore>> = std::sync::OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(roots = added, "system CA store loaded");
        Arc::new(roots)
    }))
}

/// System roots plus the CA file.
pub fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore, Failure> {
    let mut roots = RootCertStore::clone(&system_roots());
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
        match &args.ca_file {
            // The system store is read at the first handshake, not here: a run whose targets
            // are all plain http (or that never connects) never reads it.
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SystemRoots::default())),
            // A self-signed certificate given with --ca-file is also accepted as the server's
            // own certificate (what Python's ssl and curl do): see [`PinnedSelfSigned`].
            Some(path) => {
                let roots = Arc::new(root_store(Some(path))?);
                let inner =
                    rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider())
                        .build()
                        .map_err(|e| Failure::invalid_input(format!("{}: {e}", path.display())))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(PinnedSelfSigned {
                        inner,
                        pinned: read_certs(path)?,
                    }))
            }
        }
    };
    match (&args.client_cert, &args.client_key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .map_err(|e| Failure::invalid_input(format!("client certificate: {e}"))),
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// The system roots plus `--ca-file` (webpki), and one more rule: a CA certificate
/// (basicConstraints CA:TRUE, as `openssl req -x509` makes by default) that the server presents
/// as its own certificate is accepted when it is byte for byte one of the certificates given in
/// `--ca-file` (the user pinned it as a trust anchor for this connection), it names the host, and
/// it is valid now. The same certificate reached only through the system roots is still refused
/// (`CaUsedAsEndEntity`). The handshake signatures are checked by webpki as always.
#[derive(Debug)]
struct PinnedSelfSigned {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for PinnedSelfSigned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let err =
            match self
                .inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
        if !is_ca_used_as_end_entity(&err)
            || !self
                .pinned
                .iter()
                .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return Err(err);
        }
        // The name, by rustls' own check (webpki's subjectAltName rules).
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_name(&parsed, server_name)?;
        // Validity: webpki checks it before basicConstraints, but say it here explicitly.
        check_validity(end_entity, now)?;
        // Said once at INFO (a wait loop reconnects every interval), then at debug.
        static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let name = server_name.to_str();
        let sha = fingerprint(end_entity);
        if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::info!(
                "TLS: {name}: accepting the server's self-signed certificate: it is pinned in \
                 the CA file given (sha256 {sha})"
            );
        } else {
            tracing::debug!("TLS: {name}: pinned self-signed certificate (sha256 {sha})");
        }
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn is_ca_used_as_end_entity(err: &rustls::Error) -> bool {
    matches!(
        err,
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(o))
            if matches!(o.0.downcast_ref::<webpki::Error>(), Some(webpki::Error::CaUsedAsEndEntity))
    )
}

/// notBefore <= now <= notAfter, as rustls' named errors.
fn check_validity(der: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
    use rustls::CertificateError as C;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(C::BadEncoding))?;
    let secs = now.as_secs() as i64;
    let v = cert.validity();
    if secs < v.not_before.timestamp() {
        return Err(rustls::Error::InvalidCertificate(C::NotValidYetContext {
            time: now,
            not_before: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                v.not_before.timestamp().max(0) as u64,
            )),
        }));
    }
    if secs > v.not_after.timestamp() {
        return Err(rustls::Error::InvalidCertificate(C::ExpiredContext {
            time: now,
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                v.not_after.timestamp().max(0) as u64,
            )),
        }));
    }
    Ok(())
}

/// The SHA-256 fingerprint of a certificate, as `openssl x509 -fingerprint -sha256` shows it.
fn fingerprint(der: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Verification against the system roots (webpki, exactly as `with_root_certificates`), the
/// roots read and the verifier built on the first certificate to verify.
#[derive(Debug, Default)]
struct SystemRoots(std::sync::OnceLock<Option<Arc<rustls::client::WebPkiServerVerifier>>>);

impl SystemRoots {
    fn inner(&self) -> Result<&Arc<rustls::client::WebPkiServerVerifier>, rustls::Error> {
        self.0
            .get_or_init(|| {
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    system_roots(),
                    provider(),
                )
                .build()
                .ok()
            })
            .as_ref()
            // No system roots at all: nothing can be trusted, as webpki says of an empty store.
            .ok_or(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
    }
}

impl ServerCertVerifier for SystemRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner()?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
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
            &provider().signature_verification_algorithms,
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
            &provider().signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
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

// ---------------------------------------------------------------------------------------------
// TLS failures as named, one-line reasons that say what to do
// ---------------------------------------------------------------------------------------------

/// A TLS failure as one line: what is wrong and what to do about it. `ca_flag` names the option
/// that adds a CA for this connection (`--ca-file`, `--vault-ca-file`, ...).
pub fn explain(err: &rustls::Error, ca_flag: &str) -> String {
    use rustls::CertificateError as C;
    use rustls::Error as E;
    match err {
        E::InvalidCertificate(c) => match c {
            C::UnknownIssuer => format!(
                "certificate not trusted (unknown issuer): it is not signed by a system root or a CA \
                 in {ca_flag}; pass the CA certificate that signed it with {ca_flag}"
            ),
            C::ExpiredContext { not_after, .. } => format!(
                "certificate expired on {}: renew the server's certificate (or check this machine's clock)",
                date(not_after.as_secs())
            ),
            C::Expired => "certificate expired: renew the server's certificate (or check this machine's clock)".into(),
            C::NotValidYetContext { not_before, .. } => format!(
                "certificate not valid before {}: check this machine's clock, or the certificate's start date",
                date(not_before.as_secs())
            ),
            C::NotValidYet => "certificate not valid yet: check this machine's clock, or the certificate's start date".into(),
            C::NotValidForNameContext { expected, presented } => format!(
                "name mismatch: the certificate is for [{}], not {}: connect with a name it lists, \
                 or re-issue it with this name in subjectAltName",
                presented.iter().map(|p| presented_name(p)).collect::<Vec<_>>().join(", "),
                expected.to_str()
            ),
            C::NotValidForName => "name mismatch: the certificate is not for this host: connect with a name it lists, \
                 or re-issue it with this name in subjectAltName".into(),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => "certificate not valid for a TLS server \
                 (its extendedKeyUsage lacks serverAuth): re-issue it with extendedKeyUsage=serverAuth".into(),
            C::BadSignature => "certificate signature invalid: the chain is corrupt or was not signed by the key of the CA it names".into(),
            C::BadEncoding => "certificate malformed (bad DER encoding): re-issue it".into(),
            C::Revoked => "certificate revoked by its CA: install a new one on the server".into(),
            C::UnhandledCriticalExtension => "certificate has a critical extension this client does not \
                 understand: re-issue it without that extension".into(),
            C::UnsupportedSignatureAlgorithmContext { .. }
            | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => "certificate signed with an algorithm \
                 this client does not accept (SHA-1, or a weak key?): re-issue it with ECDSA or RSA and SHA-256".into(),
            C::Other(o) => match o.0.downcast_ref::<webpki::Error>() {
                Some(webpki::Error::CaUsedAsEndEntity) => format!(
                    "the server presents a CA certificate (basicConstraints CA:TRUE, which `openssl req -x509` \
                     makes by default) as its own certificate: issue the server a leaf certificate \
                     (CA:FALSE, with subjectAltName) signed by that CA, and pass the CA with {ca_flag}; \
                     or pass this exact self-signed certificate with {ca_flag} to pin it"
                ),
                Some(webpki::Error::EndEntityUsedAsCa) => "certificate chain invalid: a certificate that signs \
                     another is not a CA (CA:FALSE): fix the chain the server sends".into(),
                Some(webpki::Error::PathLenConstraintViolated) => "certificate chain invalid: longer than a \
                     CA's pathlen constraint allows: fix the chain the server sends".into(),
                Some(webpki::Error::MaximumPathDepthExceeded) => "certificate chain too long: fix the chain the server sends".into(),
                Some(webpki::Error::NameConstraintViolation) => "certificate outside its CA's name constraints: \
                     re-issue it under a CA allowed to sign this name".into(),
                Some(other) => format!("certificate rejected: {other}"),
                None => format!("certificate rejected: {o}"),
            },
            other => format!("certificate rejected: {other}"),
        },
        E::AlertReceived(alert) => {
            use rustls::AlertDescription as A;
            match alert {
                A::CertificateRequired | A::BadCertificate | A::UnknownCA | A::CertificateUnknown
                | A::HandshakeFailure => format!(
                    "the server refused the TLS handshake ({alert:?}): it may require a client certificate \
                     (--client-cert/--client-key) or not trust the one given"
                ),
                A::ProtocolVersion | A::InsufficientSecurity => format!(
                    "the server refused the TLS handshake ({alert:?}): no TLS version or cipher in common \
                     (this client speaks TLS 1.2 and 1.3)"
                ),
                other => format!("the server refused the TLS handshake ({other:?})"),
            }
        }
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "the server does not answer in TLS (plain HTTP or another protocol on this port?): \
             check the port, or use a plain scheme"
                .into()
        }
        E::PeerIncompatible(p) => format!(
            "no TLS version or cipher in common with the server ({p:?}): this client speaks TLS 1.2 and 1.3"
        ),
        E::NoCertificatesPresented => "the server presented no certificate".into(),
        other => format!("TLS handshake failed: {other}"),
    }
}

/// The TLS reason for the first rustls error in `e`'s source chain (reqwest, hyper and io errors
/// wrap it), or `None` when the failure is not about TLS.
pub fn explain_chain(e: &(dyn std::error::Error + 'static), ca_flag: &str) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(explain(r, ca_flag));
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::UnexpectedEof
            && io.to_string().contains("tls handshake eof")
        {
            return Some(
                "the server closed the connection during the TLS handshake: it does not speak TLS on \
                 this port, or refused this client (a client certificate needed?)"
                    .into(),
            );
        }
        // An io::Error keeps its inner error (often another io::Error) behind get_ref, which
        // source() skips.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            cur = Some(inner as &(dyn std::error::Error + 'static));
            continue;
        }
        cur = err.source();
    }
    None
}

/// rustls shows presented names as `DnsName("a.example")` / `IpAddress(10.0.0.1)`: keep the name.
fn presented_name(p: &str) -> String {
    match (p.find('('), p.rfind(')')) {
        (Some(a), Some(b)) if a < b => p[a + 1..b].trim_matches('"').to_string(),
        _ => p.to_string(),
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time.
fn date(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    let mut s = humantime::format_rfc3339_seconds(t).to_string();
    s.truncate(10);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::CertificateError as C;
    use rustls::pki_types::UnixTime;

    /// `openssl req -x509` (ECDSA P-256, basicConstraints critical CA:TRUE, SAN DNS:pinned.test),
    /// valid 2026-12-01 07:55:59 to 2126-11-07 07:55:59 UTC. Only its public part is here.
    const PINNED: &str = "-----BEGIN CERTIFICATE-----\nMIIBmzCCAUGgAwIBAgIUQYmHyxqIvzH82QiVy4DJLB0gtIAwCgYIKoZIzj0EAwIw\nFjEUMBIGA1UEAwwLcGlubmVkLnRlc3QwIBcNMjYxMjAxMDc1NTU5WhgPMjEyNjEx\nMDcwNzU1NTlaMBYxFDASBgNVBAMMC3Bpbm5lZC50ZXN0MFkwEwYHKoZIzj0CAQYI\nKoZIzj0DAQcDQgAEZVFJQoUBjA/+bOj5Ixzql0cle8uB6GenBfojkjWiDfIoRhe6\nGPGrnsjUQHWDJZ+IiIMG55NFnEyR8iw3YYt6kqNrMGkwHQYDVR0OBBYEFFH8hDl7\nDvUUPXy/uHUuSDKicRexMB8GA1UdIwQYMBaAFFH8hDl7DvUUPXy/uHUuSDKicRex\nMA8GA1UdEwEB/wQFMAMBAf8wFgYDVR0RBA8wDYILcGlubmVkLnRlc3QwCgYIKoZI\nzj0EAwIDSAAwRQIgRyujnvlbv4htNPNTjpSuuzhsZnCrlpJ1egkns4bM/OACIQD5\noM8fHI0t06rXdgmmcUf265O2rf4K0FYTgfuwdSASbg==\n-----END CERTIFICATE-----";

    fn pinned_verifier(
        pinned: Vec<CertificateDer<'static>>,
        anchors: &[CertificateDer<'static>],
    ) -> PinnedSelfSigned {
        let mut roots = RootCertStore::empty();
        for a in anchors {
            roots.add(a.clone()).unwrap();
        }
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .unwrap();
        PinnedSelfSigned { inner, pinned }
    }

    #[test]
    fn a_pinned_self_signed_certificate_is_accepted_only_for_its_name_and_dates() {
        let cert = CertificateDer::from_pem_slice(PINNED.as_bytes()).unwrap();
        let at = |secs: u64| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        let during = at(1_796_371_200); // 2026-12-04
        let name = ServerName::try_from("pinned.test").unwrap();
        let pinned = pinned_verifier(vec![cert.clone()], std::slice::from_ref(&cert));
        assert!(
            pinned
                .verify_server_cert(&cert, &[], &name, &[], during)
                .is_ok()
        );
        // Another name, or after notAfter, or before notBefore: refused, with a named reason.
        let other = ServerName::try_from("other.test").unwrap();
        let e = pinned
            .verify_server_cert(&cert, &[], &other, &[], during)
            .unwrap_err();
        assert!(explain(&e, "--ca-file").contains("name mismatch"), "{e}");
        let e = pinned
            .verify_server_cert(&cert, &[], &name, &[], at(5_000_000_000))
            .unwrap_err();
        assert!(explain(&e, "--ca-file").contains("expired"), "{e}");
        let e = pinned
            .verify_server_cert(&cert, &[], &name, &[], at(1_700_000_000))
            .unwrap_err();
        assert!(explain(&e, "--ca-file").contains("not valid before"), "{e}");
        // A trust anchor (as from the system roots) but not pinned: still a CA used as a
        // server certificate.
        let roots_only = pinned_verifier(Vec::new(), std::slice::from_ref(&cert));
        let e = roots_only
            .verify_server_cert(&cert, &[], &name, &[], during)
            .unwrap_err();
        assert!(is_ca_used_as_end_entity(&e), "{e}");
        assert!(explain(&e, "--ca-file").contains("pin it"), "{e}");
    }

    #[test]
    fn every_reason_is_one_named_line_that_says_what_to_do() {
        let ca_as_leaf = rustls::Error::InvalidCertificate(C::Other(rustls::OtherError(Arc::new(
            webpki::Error::CaUsedAsEndEntity,
        ))));
        let t = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_700_000_000));
        for (err, needle) in [
            (
                rustls::Error::InvalidCertificate(C::UnknownIssuer),
                "pass the CA certificate that signed it with --ca-file",
            ),
            (ca_as_leaf, "leaf certificate"),
            (
                rustls::Error::InvalidCertificate(C::ExpiredContext {
                    time: t,
                    not_after: t,
                }),
                "expired on 2023-11-14",
            ),
            (
                rustls::Error::InvalidCertificate(C::NotValidForNameContext {
                    expected: ServerName::try_from("db.example").unwrap(),
                    presented: vec!["DnsName(\"other.example\")".into()],
                }),
                "the certificate is for [other.example], not db.example",
            ),
            (
                rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
                "--client-cert",
            ),
        ] {
            let text = explain(&err, "--ca-file");
            assert!(text.contains(needle), "{text}");
            assert!(!text.contains('\n'));
            assert!(!text.contains("Other("), "{text}");
        }
        // As hyper-rustls reports it: io::Error(Other) around io::Error(InvalidData) around it.
        let io = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(C::UnknownIssuer),
        ));
        assert!(
            explain_chain(&io, "--vault-ca-file")
                .unwrap()
                .contains("--vault-ca-file")
        );
        assert!(explain_chain(&std::io::Error::other("refused"), "--ca-file").is_none());
    }
}
