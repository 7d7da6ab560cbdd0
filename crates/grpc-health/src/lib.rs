//! The standard gRPC health check, `grpc.health.v1.Health/Check`, as `grpc-health-probe` and the
//! kubelet's gRPC probe ask it: one unary call over HTTP/2 (h2c for `grpc://`, TLS with ALPN
//! `h2` for `grpcs://`).
//!
//! Written on `h2` with the two one-field protobuf messages encoded by hand rather than on tonic:
//! the request is `{1: service}` and the answer `{1: status}`, a dozen bytes each, and tonic with
//! prost, tower and hyper's server half would add far more to the binary than this whole file.
//!
//! SERVING is ready; NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN and a service the server does not know
//! (NOT_FOUND) are "not yet"; a server without the health service (UNIMPLEMENTED) ends the wait
//! with exit 1, since waiting cannot make it appear.

mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use initbox_runtime::Failure;
use initbox_runtime::resolve::Resolver;
use initbox_runtime::target::{Host, HostPort, parse_host, parse_port};
use initbox_runtime::wait::{NotReady, Probe, ProbeFuture};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

pub use wire::{ServingStatus, decode_response, encode_request};

/// A parsed `grpc://HOST:PORT[/SERVICE]` or `grpcs://…` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub tls: bool,
    pub addr: HostPort,
    /// The service name asked about; empty means the server as a whole.
    pub service: String,
    /// `?authority=`: the `:authority` (and TLS server name) when it differs from the host.
    pub authority: Option<String>,
}

impl Target {
    /// Parse a target; errors are one-line usage messages naming the target.
    pub fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("'{url}': expected grpc://HOST:PORT[/SERVICE]"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "grpc" => false,
            "grpcs" => true,
            other => return Err(format!("'{url}': not a gRPC scheme '{other}://'")),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (hostport, service) = match rest.split_once('/') {
            Some((h, s)) => (h, s.trim_end_matches('/')),
            None => (rest, ""),
        };
        if hostport.is_empty() {
            return Err(format!("'{url}': missing host"));
        }
        let (host, port) = split_host_port(hostport).map_err(|e| format!("'{url}': {e}"))?;
        let host = parse_host(host).map_err(|e| format!("'{url}': {e}"))?;
        let port = match port {
            Some(p) => parse_port(p).map_err(|e| format!("'{url}': {e}"))?,
            None => return Err(format!("'{url}': missing port (gRPC has no default port)")),
        };
        if service.contains('/') {
            return Err(format!(
                "'{url}': a service name has no '/' (expected grpc://HOST:PORT/package.Service)"
            ));
        }
        let mut authority = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("authority", v)) if !v.is_empty() => authority = Some(v.to_string()),
                _ => {
                    return Err(format!(
                        "'{url}': unknown parameter '{pair}' (expected authority=NAME)"
                    ));
                }
            }
        }
        Ok(Target {
            tls,
            addr: HostPort { host, port },
            service: service.to_string(),
            authority,
        })
    }

    /// As shown in logs.
    pub fn shown(&self) -> String {
        let scheme = if self.tls { "grpcs" } else { "grpc" };
        if self.service.is_empty() {
            format!("{scheme}://{}", self.addr)
        } else {
            format!("{scheme}://{}/{}", self.addr, self.service)
        }
    }
}

fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed '[' in the host".to_string())?;
        return Ok((h, after.strip_prefix(':')));
    }
    Ok(match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    })
}

/// What one health call found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Status(ServingStatus),
    /// A gRPC error status (code, message), e.g. 5 NOT_FOUND for an unknown service.
    Error(u32, String),
}

/// The probe the wait engine runs.
pub struct GrpcHealthProbe {
    target: Target,
    shown: String,
    resolver: Arc<Resolver>,
    tls: Option<Arc<ClientConfig>>,
}

impl GrpcHealthProbe {
    /// `tls` is the toolkit's client configuration (used for `grpcs://` only); ALPN `h2` is set
    /// here.
    pub fn new(target: Target, resolver: Arc<Resolver>, tls: Option<Arc<ClientConfig>>) -> Self {
        let tls = tls.map(|t| {
            let mut c = (*t).clone();
            c.alpn_protocols = vec![b"h2".to_vec()];
            Arc::new(c)
        });
        GrpcHealthProbe {
            shown: target.shown(),
            target,
            resolver,
            tls,
        }
    }

    async fn addresses(&self) -> Result<Vec<SocketAddr>, NotReady> {
        let port = self.target.addr.port;
        match &self.target.addr.host {
            Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, port)]),
            Host::Name(name) => self
                .resolver
                .lookup_ip(name)
                .await
                .map(|ips| {
                    ips.into_iter()
                        .map(|ip| SocketAddr::new(ip, port))
                        .collect()
                })
                .map_err(|e| NotReady::retry(format!("{name}: {e}"))),
        }
    }

    /// One `Check` call: the answer, or why none came.
    pub async fn check(&self) -> Result<Answer, NotReady> {
        let mut last = String::from("no address");
        for addr in self.addresses().await? {
            let tcp = match TcpStream::connect(addr).await {
                Ok(s) => s,
                Err(e) => {
                    last = format!("{addr}: {e}");
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            return match &self.tls {
                None => self.call(tcp).await,
                Some(cfg) => {
                    let name = self
                        .target
                        .authority
                        .as_deref()
                        .map(|a| a.rsplit_once(':').map_or(a, |(h, _)| h).to_string())
                        .unwrap_or_else(|| {
                            initbox_runtime::target::url_host(&self.target.addr.host.to_string())
                                .to_string()
                        });
                    let server = ServerName::try_from(name.clone()).map_err(|e| {
                        NotReady::Fatal(Failure::usage(format!(
                            "{}: server name '{name}': {e}",
                            self.shown
                        )))
                    })?;
                    let conn = tokio_rustls::TlsConnector::from(Arc::clone(cfg))
                        .connect(server, tcp)
                        .await
                        .map_err(|e| {
                            let why = initbox_runtime::tls::explain_chain(&e, "--ca-file")
                                .unwrap_or_else(|| e.to_string());
                            NotReady::retry(format!("TLS: {why}"))
                        })?;
                    self.call(conn).await
                }
            };
        }
        Err(NotReady::retry(last))
    }

    async fn call<T>(&self, io: T) -> Result<Answer, NotReady>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let h2err = |e: h2::Error| NotReady::retry(format!("HTTP/2: {e}"));
        let (client, conn) = h2::client::handshake(io).await.map_err(h2err)?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let result = async {
            let mut client = client.ready().await.map_err(h2err)?;
            let authority = self
                .target
                .authority
                .clone()
                .unwrap_or_else(|| self.target.addr.to_string());
            let scheme = if self.target.tls { "https" } else { "http" };
            let req = http::Request::post(format!(
                "{scheme}://{authority}/grpc.health.v1.Health/Check"
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("user-agent", concat!("initbox/", env!("CARGO_PKG_VERSION")))
            .body(())
            .map_err(|e| NotReady::Fatal(Failure::usage(format!("{}: {e}", self.shown))))?;
            let (resp, mut send) = client.send_request(req, false).map_err(h2err)?;
            send.send_data(Bytes::from(encode_request(&self.target.service)), true)
                .map_err(h2err)?;
            let resp = resp.await.map_err(h2err)?;
            let (parts, mut body) = resp.into_parts();
            if parts.status != http::StatusCode::OK {
                return Err(NotReady::retry(format!(
                    "HTTP status {} (not a gRPC server?)",
                    parts.status
                )));
            }
            // Trailers-only answer: the status is in the headers.
            if let Some(code) = grpc_status(&parts.headers)
                && code != 0
            {
                return Ok(Answer::Error(code, grpc_message(&parts.headers)));
            }
            let mut data = Vec::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.map_err(h2err)?;
                let _ = body.flow_control().release_capacity(chunk.len());
                data.extend_from_slice(&chunk);
                if data.len() > 64 * 1024 {
                    return Err(NotReady::retry("health answer larger than 64 KiB"));
                }
            }
            let trailers = body.trailers().await.map_err(h2err)?;
            if let Some(t) = &trailers
                && let Some(code) = grpc_status(t)
                && code != 0
            {
                return Ok(Answer::Error(code, grpc_message(t)));
            }
            decode_response(&data)
                .map(Answer::Status)
                .map_err(|e| NotReady::retry(format!("bad health answer: {e}")))
        }
        .await;
        driver.abort();
        result
    }
}

fn grpc_status(h: &http::HeaderMap) -> Option<u32> {
    h.get("grpc-status")?.to_str().ok()?.trim().parse().ok()
}

fn grpc_message(h: &http::HeaderMap) -> String {
    let raw = h
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Percent-encoded per the gRPC HTTP/2 spec.
    url::form_urlencoded::parse(format!("m={}", raw.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The name of a gRPC status code, for messages.
pub fn code_name(code: u32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "unknown code",
    }
}

impl Probe for GrpcHealthProbe {
    fn target(&self) -> String {
        self.shown.clone()
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let service = if self.target.service.is_empty() {
                "the server".to_string()
            } else {
                format!("service '{}'", self.target.service)
            };
            match self.check().await? {
                Answer::Status(ServingStatus::Serving) => Ok("SERVING".into()),
                Answer::Status(s) => Err(NotReady::retry(format!("{service} is {}", s.name()))),
                Answer::Error(12, _) => Err(NotReady::Fatal(Failure::failed(
                    "the server does not implement grpc.health.v1.Health (UNIMPLEMENTED); \
                     register the standard health service or wait with tcp:// instead",
                ))),
                Answer::Error(16, m) => Err(NotReady::Fatal(Failure::credentials(format!(
                    "UNAUTHENTICATED: {m}"
                )))),
                Answer::Error(5, _) => Err(NotReady::retry(format!(
                    "{service} is unknown to the server (NOT_FOUND)"
                ))),
                Answer::Error(code, m) => Err(NotReady::retry(format!(
                    "gRPC status {code} {}{}",
                    code_name(code),
                    if m.is_empty() {
                        String::new()
                    } else {
                        format!(": {m}")
                    }
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("grpc://127.0.0.1:50051").unwrap();
        assert!(!t.tls);
        assert_eq!(t.service, "");
        assert_eq!(t.shown(), "grpc://127.0.0.1:50051");
        let t = Target::parse("grpcs://api.example:443/pkg.Greeter?authority=x.example").unwrap();
        assert!(t.tls);
        assert_eq!(t.service, "pkg.Greeter");
        assert_eq!(t.authority.as_deref(), Some("x.example"));
        let t = Target::parse("grpc://[::1]:9/").unwrap();
        assert_eq!(t.addr.to_string(), "[::1]:9");
        for (bad, needle) in [
            ("grpc://h", "missing port"),
            ("grpc://:1", "host"),
            ("grpc://h:0", "0"),
            ("grpc://h:1/a/b", "no '/'"),
            ("grpc://h:1?x=y", "unknown parameter"),
            ("grpc://", "missing host"),
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
