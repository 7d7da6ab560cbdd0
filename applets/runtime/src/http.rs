//! The one HTTP client of the toolkit: every applet that speaks HTTP (wait-for, notify,
//! fetch-secret's Vault, Kubernetes and AWS backends) builds its reqwest client here, on the
//! runtime's rustls configuration, with the one redirect policy and bounded body reading.
//! (network-check's `http` check is the one exception: it dials the connection itself to time
//! DNS, connect, TLS and first byte, sends one request, follows no redirect and reads at most
//! [`SMALL_BODY_LIMIT`] of the body.)
//!
//! The redirect policy ([`judge`]) is curl's `--location` without `--location-trusted`, made
//! stricter where curl leaks:
//! - at most [`MAX_REDIRECTS`] hops (curl's default is 50; browsers stop near 20);
//! - never from https down to plain http (curl follows that);
//! - to another origin (scheme, host or port) only when the requests carry no credentials: no
//!   `Authorization`, `Proxy-Authorization`, `Cookie`, `X-Vault-Token`, API key or any header the
//!   user gave, no password in the URL. reqwest itself strips only `Authorization`, `Cookie`,
//!   `Proxy-Authorization` and `WWW-Authenticate` on a cross-host hop, so a custom header would
//!   leak; the client is told at build time whether its requests carry credentials
//!   ([`ClientOptions::credentials`]) and then follows same-origin hops only.
//!
//! A refused hop is an error naming the origin it pointed at (never its path or query), not a
//! silent stop: the 3xx is not the answer the user asked for.
//!
//! Bodies are read through [`read_body`] (whole, up to a cap, an error past it) or
//! [`read_prefix`] (the first bytes, for probes and error messages): [`SMALL_BODY_LIMIT`] for
//! probes and error bodies, [`SECRET_BODY_LIMIT`] for secret payloads.

use std::time::Duration;

use reqwest::Url;
use reqwest::redirect::{Attempt, Policy};

use crate::exit::Failure;
use crate::redact;

pub mod api;

/// Most redirects followed in one request.
pub const MAX_REDIRECTS: usize = 10;

/// Cap of a body read for a probe's match or shown in an error message: 1 MiB.
pub const SMALL_BODY_LIMIT: usize = 1024 * 1024;

/// Cap of a secret payload (a Vault, Kubernetes or AWS response): 16 MiB. Kubernetes Secrets
/// are at most 1 MiB, AWS Secrets Manager values 64 KiB, SSM parameters 8 KiB; Vault's own
/// default request limit is 32 MiB, but a response of 16 MiB is far past any secret document.
pub const SECRET_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Whether redirects are followed at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// A 3xx is the answer (notify; wait-for `--no-redirect`).
    Never,
    /// Follow within the policy of [`judge`], at most `max` hops.
    Follow { max: usize },
}

/// What an applet's client needs; everything else is the toolkit's one choice.
pub struct ClientOptions {
    /// From [`crate::tls::client_config`].
    pub tls: rustls::ClientConfig,
    pub user_agent: String,
    /// Per request, connection included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub redirects: Redirects,
    /// The requests carry credentials (a token header, a user-given header, a password in the
    /// URL): redirects then stay on the origin.
    pub credentials: bool,
    /// Proxies from `HTTP(S)_PROXY`/`NO_PROXY` (else none).
    pub proxy_from_env: bool,
    /// Keep idle connections for reuse (a probe wants a fresh connection every attempt).
    pub reuse_connections: bool,
}

impl ClientOptions {
    /// Defaults: follow redirects, credentials assumed (the safe side), proxies from the
    /// environment, connections reused.
    pub fn new(
        tls: rustls::ClientConfig,
        user_agent: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        ClientOptions {
            tls,
            user_agent: user_agent.into(),
            timeout,
            connect_timeout: timeout,
            redirects: Redirects::Follow { max: MAX_REDIRECTS },
            credentials: true,
            proxy_from_env: true,
            reuse_connections: true,
        }
    }
}

/// The reqwest client for `opts`.
pub fn client(opts: ClientOptions) -> Result<reqwest::Client, Failure> {
    let policy = match opts.redirects {
        Redirects::Never => Policy::none(),
        Redirects::Follow { max } => policy(max, opts.credentials),
    };
    let mut b = reqwest::Client::builder()
        .tls_backend_preconfigured(opts.tls)
        .user_agent(opts.user_agent)
        .timeout(opts.timeout)
        .connect_timeout(opts.connect_timeout)
        .redirect(policy);
    if !opts.proxy_from_env {
        b = b.no_proxy();
    }
    if !opts.reuse_connections {
        b = b.pool_max_idle_per_host(0);
    }
    b.build().map_err(|e| {
        Failure::failed(format!(
            "cannot set up the HTTP client: {}",
            describe(&e, "--ca-file")
        ))
    })
}

/// How a request line shows its URL at trace level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// Through [`crate::url::DisplaySafeUrl`]: password and secret query values masked.
    Url,
    /// `scheme://host[:port]` only (notify targets: the path and query are the credential).
    Origin,
}

fn shown(u: &Url, show: Show) -> String {
    match show {
        Show::Url => crate::url::DisplaySafeUrl::new(u.clone()).to_string(),
        Show::Origin => crate::url::DisplaySafeUrl::origin_only(u.clone()).to_string(),
    }
}

/// Send one request with the protocol trace that `-v -v` promises: `http > METHOD URL` before,
/// `http < STATUS REASON` (with the final URL when redirects were followed) or the error after,
/// at trace level. URLs are shown as `show` says; headers and bodies never.
pub async fn send(
    rb: reqwest::RequestBuilder,
    show: Show,
) -> Result<reqwest::Response, reqwest::Error> {
    let (client, req) = rb.build_split();
    let req = req?;
    if !tracing::enabled!(tracing::Level::TRACE) {
        return client.execute(req).await;
    }
    let method = req.method().clone();
    let url = req.url().clone();
    tracing::trace!("http > {method} {}", shown(&url, show));
    let started = std::time::Instant::now();
    let r = client.execute(req).await;
    match &r {
        Ok(resp) => {
            let status = resp.status();
            let moved = if resp.url() != &url {
                format!(" (after redirects: {})", shown(resp.url(), show))
            } else {
                String::new()
            };
            tracing::trace!(
                "http < {} {} in {} ms{moved}",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                started.elapsed().as_millis()
            );
        }
        Err(e) => tracing::trace!("http < {}", describe(e, "--ca-file")),
    }
    r
}

/// The toolkit's redirect policy as a reqwest policy.
pub fn policy(max: usize, credentials: bool) -> Policy {
    Policy::custom(move |attempt: Attempt| {
        match judge(attempt.previous(), attempt.url(), max, credentials) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    })
}

/// Why a redirect was not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRefused(String);

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedirectRefused {}

/// `scheme://host:port` of a URL: what a refusal may show (no userinfo, path or query).
fn origin(u: &Url) -> String {
    u.origin().ascii_serialization()
}

/// Decide one hop: `previous` are the URLs requested so far (the first is the one the user
/// gave), `next` the Location.
pub fn judge(
    previous: &[Url],
    next: &Url,
    max: usize,
    credentials: bool,
) -> Result<(), RedirectRefused> {
    if previous.len() > max {
        return Err(RedirectRefused(format!(
            "more than {max} redirects (last to {})",
            origin(next)
        )));
    }
    if !matches!(next.scheme(), "http" | "https") {
        return Err(RedirectRefused(format!(
            "redirect to a {}: URL not followed",
            next.scheme()
        )));
    }
    if next.scheme() == "http" && previous.iter().any(|u| u.scheme() == "https") {
        return Err(RedirectRefused(format!(
            "redirect from https down to plain http ({}) refused: it would send the request unencrypted",
            origin(next)
        )));
    }
    if credentials
        && let Some(first) = previous.first()
        && first.origin() != next.origin()
    {
        return Err(RedirectRefused(format!(
            "redirect from {} to another origin ({}) refused: the request carries credentials, \
             which are sent only to the origin given",
            origin(first),
            origin(next)
        )));
    }
    Ok(())
}

/// The toolkit's one `--header` flag (wait-for's HTTP probes, download), for
/// `#[command(flatten)]`; [`HeaderArgs::parse`] reads it into headers.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HeaderArgs {
    /// Request header `Name: value`, repeatable; `Name: @PATH` reads the value from a file
    /// (a mounted Secret), `Authorization: Bearer @PATH` the token. Values of credential headers are redacted from every log line.
    #[arg(
        short = 'H',
        long = "header",
        value_name = "NAME: VALUE",
        env = crate::env::HTTP_HEADERS,
        value_delimiter = '\n'
    )]
    pub headers: Vec<String>,
}

impl HeaderArgs {
    /// The headers (see [`parse_headers`]).
    pub fn parse(&self) -> Result<reqwest::header::HeaderMap, Failure> {
        parse_headers(&self.headers)
    }

    /// Whether any header is given (the requests then carry credentials, for the redirect
    /// policy).
    pub fn any(&self) -> bool {
        self.headers.iter().any(|h| !h.trim().is_empty())
    }
}

/// The `--header` values of wait-for's HTTP probes and download (`Name: value`, repeatable;
/// blank ones ignored) as a header map. `Name: @PATH` reads the value from a file (a mounted
/// Secret) and `Name: Scheme @PATH` the token after the scheme (`Authorization: Bearer @PATH`);
/// a value read from a file, and every value of a credential header
/// ([`is_credential_header`]), is registered with the scrubber and marked sensitive. A
/// malformed header is a usage error (exit 2) that never shows its value.
pub fn parse_headers(lines: &[String]) -> Result<reqwest::header::HeaderMap, Failure> {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let mut headers = HeaderMap::new();
    for h in lines.iter().filter(|h| !h.trim().is_empty()) {
        let Some((name, value)) = h.split_once(':') else {
            return Err(Failure::usage(format!(
                "--header '{}': expected 'Name: value'",
                redact::scrub(h)
            )));
        };
        let name = name.trim();
        let hn = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Failure::usage(format!("--header: '{name}' is not a header name")))?;
        let what = format!("--header {name}");
        let value = value.trim();
        let from_file = |v: &str| -> Result<String, Failure> {
            let path = std::path::Path::new(v.trim_start_matches('@'));
            crate::input::read_secret(path, &format!("{what} {}", path.display()), false)
        };
        // `Name: @PATH` (the whole value) or `Name: Bearer @PATH` (a scheme, then the token).
        let (value, secret) = match value.split_once(' ') {
            Some((scheme, file))
                if !value.starts_with('@')
                    && file.trim().len() > 1
                    && file.trim().starts_with('@') =>
            {
                (format!("{scheme} {}", from_file(file.trim())?), true)
            }
            _ if value.len() > 1 && value.starts_with('@') => (from_file(value)?, true),
            _ => (value.to_string(), false),
        };
        let secret = secret || is_credential_header(name);
        if secret {
            redact::register(&value);
            // `Bearer xyz`, `Basic xyz`: the token alone too.
            if let Some((_, token)) = value.split_once(' ') {
                redact::register(token.trim());
            }
        }
        let mut hv = HeaderValue::from_str(&value).map_err(|_| {
            Failure::usage(format!(
                "--header {name}: the value contains characters not allowed in a header"
            ))
        })?;
        hv.set_sensitive(secret);
        headers.append(hn, hv);
    }
    Ok(headers)
}

/// Header names whose values are credentials (case-insensitive, by part of the name): they are
/// redacted, and a client whose requests carry one follows same-origin redirects only.
pub fn is_credential_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "secret",
        "key",
        "password",
        "auth",
        "session",
        "signature",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Longer than the cap.
    TooLarge { limit: usize },
    /// The transfer failed (reset, timeout).
    Transfer(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge { limit } => write!(
                f,
                "the response body is larger than the limit of {}",
                human_bytes(*limit)
            ),
            BodyError::Transfer(e) => write!(f, "error reading the response body: {e}"),
        }
    }
}

impl BodyError {
    /// As a [`Failure`]: past the cap, invalid input (exit 3, never retried); a failed transfer,
    /// a failed operation (exit 1).
    pub fn into_failure(self, what: &str) -> Failure {
        match self {
            BodyError::TooLarge { .. } => Failure::invalid_input(format!("{what}: {self}")),
            BodyError::Transfer(_) => Failure::failed(format!("{what}: {self}")),
        }
    }
}

/// `1 MiB`, `16 MiB`, `512 KiB`, `100 bytes`.
pub fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// The whole body, at most `limit` bytes: past it (by `Content-Length` or while streaming) an
/// error, with nothing more read. Memory stays within `limit` plus one chunk.
pub async fn read_body(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| BodyError::Transfer(describe(&e, "--ca-file")))?
    {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The first `limit` bytes of the body (the rest is not read): for matching a probe's answer
/// and for the excerpt an error message shows.
pub async fn read_prefix(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while body.len() < limit {
        let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| BodyError::Transfer(describe(&e, "--ca-file")))?
        else {
            break;
        };
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(body)
}

/// A reqwest error as one line, without the URL (it may hold a password; callers show it
/// through the redactor): a TLS failure as its named reason ([`crate::tls::explain`], with
/// `ca_flag` as the option that adds a CA), a refused redirect as its reason, else the
/// innermost causes.
pub fn describe(e: &reqwest::Error, ca_flag: &str) -> String {
    if let Some(tls) = crate::tls::explain_chain(e, ca_flag) {
        return redact::scrub(&format!("TLS: {tls}")).replace('\n', " ");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<RedirectRefused>() {
            return redact::scrub(&r.to_string()).replace('\n', " ");
        }
        source = s.source();
    }
    let head = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_redirect() {
        "redirect not followed"
    } else if e.is_body() || e.is_decode() {
        "error reading the body"
    } else {
        "request failed"
    };
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.retain(|p| !text.contains(p.as_str()));
            parts.push(text);
        }
        source = s.source();
    }
    let tail = parts.last().cloned().unwrap_or_else(|| {
        let mut e2 = e.to_string();
        if let Some(i) = e2.find(" for url (") {
            e2.truncate(i);
        }
        e2
    });
    redact::scrub(&format!("{head}: {tail}")).replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn the_redirect_policy() {
        let https = [u("https://vault.example:8200/v1/x")];
        // Same origin: followed, with or without credentials.
        assert!(judge(&https, &u("https://vault.example:8200/v1/y"), 10, true).is_ok());
        // Down to plain http: never, even the same host, even without credentials.
        let e = judge(&https, &u("http://vault.example:8200/v1/x"), 10, false).unwrap_err();
        assert!(e.0.contains("down to plain http"), "{e}");
        // Another host, port or scheme with credentials: refused, naming the origin only.
        for next in [
            "https://evil.example:8200/v1/x?token=abc",
            "https://vault.example:8201/v1/x",
        ] {
            let e = judge(&https, &u(next), 10, true).unwrap_err();
            assert!(e.0.contains("carries credentials"), "{e}");
            assert!(!e.0.contains("/v1") && !e.0.contains("token"), "{e}");
        }
        let http = [u("http://a.example/")];
        assert!(judge(&http, &u("https://a.example/"), 10, true).is_err());
        // Without credentials, another origin is fine (curl --location).
        assert!(judge(&http, &u("https://b.example/"), 10, false).is_ok());
        assert!(judge(&http, &u("http://b.example:81/"), 10, false).is_ok());
        // The first URL counts: a.example -> a.example -> b.example with credentials is refused.
        let two = [u("http://a.example/"), u("http://a.example/next")];
        assert!(judge(&two, &u("http://b.example/"), 10, true).is_err());
        // Hops and schemes.
        assert!(judge(&two, &u("http://a.example/x"), 1, false).is_err());
        assert!(judge(&http, &u("file:///etc/passwd"), 10, false).is_err());
    }

    #[test]
    fn credential_headers() {
        for h in [
            "Authorization",
            "X-Vault-Token",
            "X-Api-Key",
            "Cookie",
            "Proxy-Authorization",
        ] {
            assert!(is_credential_header(h), "{h}");
        }
        assert!(!is_credential_header("Accept"));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(SMALL_BODY_LIMIT), "1 MiB");
        assert_eq!(human_bytes(SECRET_BODY_LIMIT), "16 MiB");
        assert_eq!(human_bytes(1536), "1536 bytes");
    }
}
