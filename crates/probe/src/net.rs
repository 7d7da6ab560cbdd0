//! What the hand-written protocol probes (Redis, AMQP, NATS, MQTT) share: URL parts, credentials,
//! a TCP connection (every address, resolved again each attempt, as `wait-for-tcp` does) with
//! optional verified TLS, and bounded line/frame reads.

use std::path::Path;
use std::sync::Arc;

use crate::tcp::TcpProbe;
use initbox_runtime::target::{HostPort, parse_host, parse_port};
use initbox_runtime::wait::NotReady;
use initbox_runtime::{Failure, redact};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite};

/// A byte stream: plain TCP or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connected stream.
pub type Stream = Box<dyn Io>;

/// The parts of a `scheme://user:password@host:port/path?query` URL, percent-decoded.
#[derive(Debug, Clone)]
pub struct UrlParts {
    pub scheme: String,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    /// The path without its leading `/`, decoded.
    pub path: String,
    pub query: Vec<(String, String)>,
}

impl UrlParts {
    /// Parse `url` (already shown to the user as `shown`); `default_port` when none is given.
    pub fn parse(url: &str, shown: &str, default_port: u16) -> Result<Self, Failure> {
        let parsed = url::Url::parse(url)
            .map_err(|e| Failure::usage(format!("'{shown}': not a valid URL: {e}")))?;
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Failure::usage(format!("'{shown}': missing host")))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        parse_host(&host).map_err(|e| Failure::usage(format!("'{shown}': {e}")))?;
        // `url` leaves ports of non-special schemes alone; check the range ourselves.
        let port = match parsed.port() {
            Some(p) => {
                parse_port(&p.to_string()).map_err(|e| Failure::usage(format!("'{shown}': {e}")))?
            }
            None => default_port,
        };
        let decode = |s: &str| -> Result<String, Failure> {
            percent_decode(s).ok_or_else(|| {
                Failure::usage(format!("'{shown}': bad percent-encoding in the URL"))
            })
        };
        let user = (!parsed.username().is_empty())
            .then(|| decode(parsed.username()))
            .transpose()?;
        let password = parsed.password().map(decode).transpose()?;
        if let Some(p) = &password {
            redact::register(p);
        }
        let path = decode(parsed.path().trim_start_matches('/'))?;
        let query = parsed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Ok(UrlParts {
            scheme: parsed.scheme().to_ascii_lowercase(),
            host,
            port,
            user,
            password,
            path,
            query,
        })
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn host_port(&self) -> Result<HostPort, Failure> {
        Ok(HostPort {
            host: parse_host(&self.host).map_err(Failure::usage)?,
            port: self.port,
        })
    }
}

/// Decode `%XX` escapes; `None` if an escape is malformed or the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Read a password file: the content without its trailing newline, registered for redaction.
pub fn read_password_file(path: &Path, what: &str) -> Result<String, Failure> {
    let pw =
        initbox_runtime::input::read_secret(path, &format!("{what} {}", path.display()), false)?;
    if pw.is_empty() {
        return Err(Failure::invalid_input(format!(
            "{what} {}: the file is empty",
            path.display()
        )));
    }
    redact::register(&pw);
    Ok(pw)
}

/// Where a probe connects: host and port, with TLS when the scheme asks for it.
pub struct Endpoint {
    tcp: TcpProbe,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

impl Endpoint {
    pub fn new(
        parts: &UrlParts,
        resolver: Arc<initbox_runtime::resolve::Resolver>,
        tls: Option<Arc<ClientConfig>>,
    ) -> Result<Self, Failure> {
        let hp = parts.host_port()?;
        let tls = match tls {
            None => None,
            Some(config) => {
                let name = ServerName::try_from(parts.host.clone()).map_err(|_| {
                    Failure::usage(format!("'{}' is not a valid TLS server name", parts.host))
                })?;
                Some((tokio_rustls::TlsConnector::from(config), name))
            }
        };
        Ok(Endpoint {
            tcp: TcpProbe::new(hp, resolver),
            tls,
        })
    }

    /// Connect (and handshake, with TLS). Every failure is worth another attempt.
    pub async fn connect(&self) -> Result<Stream, NotReady> {
        let (addr, stream) = self.tcp.connect().await?;
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => Ok(Box::new(stream)),
            Some((connector, name)) => {
                let tls = connector.connect(name.clone(), stream).await.map_err(|e| {
                    let why = initbox_runtime::tls::explain_chain(&e, "--ca-file")
                        .unwrap_or_else(|| e.to_string());
                    NotReady::retry(format!("{addr}: TLS handshake: {why}"))
                })?;
                Ok(Box::new(tls))
            }
        }
    }
}

/// Read one line ending in `\n` (at most `limit` bytes), without the line ending.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    limit: usize,
    what: &str,
) -> Result<String, NotReady> {
    let mut buf = Vec::new();
    loop {
        let available = r
            .fill_buf()
            .await
            .map_err(|e| NotReady::retry(format!("{what}: {}", io_text(&e))))?;
        if available.is_empty() {
            return Err(NotReady::retry(format!(
                "{what}: the server closed the connection"
            )));
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        buf.extend_from_slice(chunk);
        let n = chunk.len();
        r.consume(n);
        if done {
            break;
        }
        if buf.len() > limit {
            return Err(NotReady::retry(format!(
                "{what}: reply longer than {limit} bytes"
            )));
        }
    }
    let s = String::from_utf8_lossy(&buf);
    Ok(s.trim_end_matches(['\r', '\n']).to_string())
}

/// An I/O error as a short text.
pub fn io_text(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        UnexpectedEof => "the server closed the connection".into(),
        ConnectionReset => "connection reset".into(),
        BrokenPipe => "broken pipe".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts() {
        let p = UrlParts::parse(
            "amqp://app:s%40cret-x1@mq.ns.svc:5673/my%2Fvhost?heartbeat=5",
            "shown",
            5672,
        )
        .unwrap();
        assert_eq!(p.host, "mq.ns.svc");
        assert_eq!(p.port, 5673);
        assert_eq!(p.user.as_deref(), Some("app"));
        assert_eq!(p.password.as_deref(), Some("s@cret-x1"));
        assert_eq!(p.path, "my/vhost");
        assert_eq!(p.param("heartbeat"), Some("5"));
        let d = UrlParts::parse("redis://[::1]/2", "s", 6379).unwrap();
        assert_eq!(
            (d.host.as_str(), d.port, d.path.as_str()),
            ("::1", 6379, "2")
        );
        for bad in [
            "redis://",
            "redis://:6379",
            "redis://h:0",
            "redis://h:99999",
            "redis://a b:1",
        ] {
            let e = UrlParts::parse(bad, bad, 1).unwrap_err();
            assert_eq!(e.code, initbox_runtime::Code::USAGE, "{bad}: {}", e.message);
        }
    }

    #[tokio::test]
    async fn lines_are_bounded() {
        let mut r: &[u8] = b"+PONG\r\nrest";
        assert_eq!(read_line(&mut r, 64, "x").await.unwrap(), "+PONG");
        let mut long: &[u8] = &[b'a'; 200];
        assert!(read_line(&mut long, 64, "x").await.is_err());
    }
}
