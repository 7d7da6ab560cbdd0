//! `http(s)://` checks with a time for every phase: DNS, connect (through `TcpProbe`), TLS
//! (tokio-rustls with the runtime's TLS configuration) and first byte (hyper over the stream we
//! connected ourselves). Status, body and JSON expectations are `initbox_probe::http::Expect`,
//! the matching `wait-for` uses.

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use initbox_runtime::duration::human;
use initbox_runtime::redact;
use initbox_runtime::target::{HostPort, parse_host};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::net::{self, Ctx};
use crate::probe::{Observation, Observed};
use crate::spec::HttpCheck;

use initbox_probe::http::BODY_LIMIT;

/// Check a URL's form: scheme, host, port. Credentials in it are registered as secrets (by the
/// runtime's URL display, which every message here uses).
pub fn validate_url(s: &str) -> Result<String, String> {
    let shown = initbox_runtime::url::display(s);
    let uri: hyper::Uri = s
        .parse()
        .map_err(|e| format!("URL '{shown}' is not valid: {e}"))?;
    let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!("URL '{shown}': scheme must be http or https"));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("URL '{shown}' has no host"))?;
    let host = authority.host().trim_matches(['[', ']']);
    if host.is_empty() {
        return Err(format!("URL '{shown}' has no host"));
    }
    parse_host(host).map_err(|e| format!("URL '{shown}': {e}"))?;
    Ok(s.to_string())
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Redirect hops followed at most (as Go's client, hence goss).
const MAX_REDIRECTS: usize = 10;

/// The origin of a URI: scheme, host and port.
fn origin(u: &hyper::Uri) -> (Option<String>, Option<String>, Option<u16>) {
    let https = u.scheme_str() == Some("https");
    (
        u.scheme_str().map(str::to_ascii_lowercase),
        u.host().map(str::to_ascii_lowercase),
        u.port_u16().or(Some(if https { 443 } else { 80 })),
    )
}

/// `Location` resolved against the URL it answered.
fn resolve_location(base: &hyper::Uri, location: &str) -> Option<String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Some(location.to_string());
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str().rsplit('@').next()?.to_string();
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{rest}"));
    }
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{location}")
    };
    Some(format!("{scheme}://{authority}{path}"))
}

/// One HTTP(S) check: the request, and with `follow_redirects` each redirect after it (at most
/// 10; headers and URL credentials only to the first URL's origin, as Go's client does).
pub async fn http(c: &HttpCheck, ctx: &Ctx, deadline: Instant) -> Observation {
    let first: Option<hyper::Uri> = c.url.parse().ok();
    let mut url = c.url.clone();
    let mut method = c.method.clone();
    for hop in 0..=MAX_REDIRECTS {
        let same_origin = match (&first, url.parse::<hyper::Uri>()) {
            (Some(a), Ok(b)) => origin(a) == origin(&b),
            _ => false,
        };
        let follow = c.follow_redirects;
        match http_once(c, &url, &method, same_origin, follow, ctx, deadline).await {
            Hop::Done(o) => {
                return if hop == 0 {
                    o
                } else {
                    o.data("redirects", hop)
                };
            }
            Hop::Redirect(status, next) => {
                tracing::debug!(
                    "{} answered {status}: following to {}",
                    redact::url_for_display(&url),
                    redact::url_for_display(&next)
                );
                if status == 303 {
                    method = "GET".into();
                }
                url = next;
            }
        }
    }
    Observation::new(
        Observed::Mismatch,
        format!(
            "{}: more than {MAX_REDIRECTS} redirects",
            redact::url_for_display(&c.url)
        ),
    )
    .data("redirects", MAX_REDIRECTS)
}

enum Hop {
    Done(Observation),
    Redirect(u16, String),
}

async fn http_once(
    c: &HttpCheck,
    url: &str,
    method: &str,
    credentials: bool,
    follow: bool,
    ctx: &Ctx,
    deadline: Instant,
) -> Hop {
    let started = Instant::now();
    let shown = redact::url_for_display(url).to_string();
    let uri: hyper::Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => return Hop::Done(Observation::new(Observed::Error, format!("{shown}: {e}"))),
    };
    let https = uri.scheme_str() == Some("https");
    let Some(authority) = uri.authority().cloned() else {
        return Hop::Done(Observation::new(
            Observed::Error,
            format!("{shown}: no host"),
        ));
    };
    let host = match parse_host(authority.host().trim_matches(['[', ']'])) {
        Ok(h) => h,
        Err(e) => return Hop::Done(Observation::new(Observed::Error, format!("{shown}: {e}"))),
    };
    let target = HostPort {
        host: host.clone(),
        port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
    };
    let (addr, tcp, mut timings) =
        match net::connect(&target, &ctx.resolver(None), started, deadline).await {
            Ok(x) => x,
            Err(o) => return Hop::Done(o),
        };
    let mut certs = Vec::new();
    let stream: Box<dyn Stream> = if https {
        let config = match ctx.tls(&c.ca_file) {
            Ok(cfg) => cfg,
            Err(f) => return Hop::Done(Observation::new(Observed::Error, f.message)),
        };
        let name = match net::server_name(&host, None) {
            Ok(n) => n,
            Err(e) => return Hop::Done(Observation::new(Observed::Error, e)),
        };
        let t = Instant::now();
        let hs = tokio::time::timeout_at(
            deadline,
            tokio_rustls::TlsConnector::from(config).connect(name, tcp),
        )
        .await;
        timings.push(("tls", t.elapsed()));
        match hs {
            Err(_) => {
                return Hop::Done(
                    Observation::new(
                        Observed::Timeout,
                        format!("no TLS handshake with {addr} within the timeout"),
                    )
                    .with_timings(&timings),
                );
            }
            Ok(Err(e)) => {
                let host_shown = host.to_string().trim_matches(['[', ']']).to_string();
                return Hop::Done(
                    Observation::new(Observed::TlsError, net::tls_error_text(&e, &host_shown))
                        .with_timings(&timings)
                        .data("address", addr.to_string()),
                );
            }
            Ok(Ok(s)) => {
                certs = s
                    .get_ref()
                    .1
                    .peer_certificates()
                    .unwrap_or_default()
                    .to_vec();
                Box::new(s)
            }
        }
    } else {
        Box::new(tcp)
    };

    let t = Instant::now();
    let exchange = async {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(
                hyper::header::HOST,
                authority.as_str().rsplit('@').next().unwrap_or_default(),
            )
            .header(hyper::header::USER_AGENT, "initbox-network-check")
            .header(hyper::header::ACCEPT, "*/*");
        if let Some((userinfo, _)) = authority.as_str().rsplit_once('@').filter(|_| credentials) {
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD.encode(userinfo);
            redact::register(&token);
            req = req.header(hyper::header::AUTHORIZATION, format!("Basic {token}"));
        }
        for (k, v) in c.headers.iter().filter(|_| credentials) {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let first_byte = t.elapsed();
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(String::from);
        let mut body = Vec::new();
        let mut incoming = resp.into_body();
        let redirect =
            follow && matches!(status, 301 | 302 | 303 | 307 | 308) && location.is_some();
        if method != "HEAD" && c.expect.needs_body() && !redirect {
            while let Some(frame) = incoming.frame().await {
                let frame = frame.map_err(|e| format!("reading the body: {e}"))?;
                if let Some(data) = frame.data_ref() {
                    body.extend_from_slice(data);
                    if body.len() >= BODY_LIMIT {
                        break;
                    }
                }
            }
        }
        Ok::<_, String>((status, first_byte, body, location.filter(|_| redirect)))
    };
    let got = tokio::time::timeout_at(deadline, exchange).await;
    let (status, first_byte, body, location) = match got {
        Err(_) => {
            return Hop::Done(
                Observation::new(
                    Observed::Timeout,
                    format!(
                        "no response from {shown} ({addr}) within {}",
                        human(deadline.saturating_duration_since(started))
                    ),
                )
                .with_timings(&timings),
            );
        }
        Ok(Err(e)) => {
            return Hop::Done(
                Observation::new(Observed::Error, format!("{shown}: {e}")).with_timings(&timings),
            );
        }
        Ok(Ok(x)) => x,
    };
    if let Some(next) = location.and_then(|l| resolve_location(&uri, &l)) {
        return Hop::Redirect(status, next);
    }
    timings.push(("first_byte", first_byte));
    timings.push(("total", started.elapsed()));
    let o = match c.expect.check(status, &body) {
        Ok(()) => Observation::ok(format!(
            "{status} from {addr} in {} (first byte {})",
            human(started.elapsed()),
            human(first_byte)
        )),
        Err(why) => Observation::new(Observed::Mismatch, why),
    }
    .with_timings(&timings)
    .data("address", addr.to_string())
    .data("http_status", status)
    .data("body_bytes", body.len());
    Hop::Done(if https && o.observed == Observed::Ok {
        net::expiry(o, &certs, c.warn_days, c.fail_days)
    } else {
        o
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(validate_url("https://api.example:8443/healthz").is_ok());
        assert!(validate_url("http://").is_err());
        assert!(validate_url("http://bad host/").is_err());
    }
}
