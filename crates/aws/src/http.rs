//! HTTP plumbing for AWS: one rustls (ring) client from the runtime's builder, and requests
//! retried only on transient errors (connection, timeout, 5xx, 429 honouring Retry-After),
//! bounded by the run's deadline.

use std::error::Error as _;
use std::path::PathBuf;
use std::time::Duration;

use initbox_runtime::http as rt_http;
use initbox_runtime::retry::{Attempt, RetryPolicy, retry};
use initbox_runtime::tls::{TlsArgs, client_config, explain_chain};
use initbox_runtime::{Deadline, Failure};

/// TLS material for AWS endpoints.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    pub ca_file: Option<PathBuf>,
}

/// A reqwest client from the runtime's one builder: verified TLS (system roots + CA file), no
/// proxy, and the toolkit's redirect policy for requests that carry credentials.
pub fn client(tls: &Tls, timeout: Duration) -> Result<reqwest::Client, Failure> {
    let config = client_config(&TlsArgs {
        ca_file: tls.ca_file.clone(),
        client_cert: None,
        client_key: None,
        insecure: false,
    })?;
    let mut opts = rt_http::ClientOptions::new(
        config,
        concat!("initbox/", env!("CARGO_PKG_VERSION")),
        timeout,
    );
    opts.connect_timeout = timeout.min(Duration::from_secs(10));
    opts.proxy_from_env = false;
    opts.credentials = true;
    rt_http::client(opts)
}

/// The option that adds a CA, named in TLS failure reasons.
const CA_FLAGS: &str = "--aws-ca-file";

/// An error and its causes on one line; a TLS failure anywhere in the chain is its named reason.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    if let Some(reason) = explain_chain(e, CA_FLAGS) {
        return format!("TLS: {reason}");
    }
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = s.source();
    }
    out
}

/// A response: status, headers and body.
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Whether a transport error is worth retrying (never a TLS verification failure or a refused
/// redirect).
pub fn transient_transport(e: &reqwest::Error) -> bool {
    if explain_chain(e, CA_FLAGS).is_some() || e.is_redirect() {
        return false;
    }
    e.is_connect() || e.is_timeout() || e.is_request() && e.source().is_some()
}

/// The retry policy of AWS requests: the runtime's, at most 8 attempts without a deadline.
pub fn policy(deadline: &Deadline) -> RetryPolicy {
    RetryPolicy {
        max_attempts: deadline.limit().is_none().then_some(8),
        ..RetryPolicy::REQUESTS
    }
}

/// Send the request `build` makes, retrying transient failures within the deadline.
pub async fn send(
    deadline: &Deadline,
    what: &str,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Response, Failure> {
    send_with(deadline, what, build, |_, _| false).await
}

/// [`send`], where `also_transient(status, body)` marks more answers as worth retrying (AWS
/// reports throttling as HTTP 400 `ThrottlingException`).
pub async fn send_with(
    deadline: &Deadline,
    what: &str,
    build: impl Fn() -> reqwest::RequestBuilder,
    also_transient: impl Fn(u16, &[u8]) -> bool,
) -> Result<Response, Failure> {
    let policy = policy(deadline);
    let also_transient = &also_transient;
    retry(&policy, deadline, what, |_| {
        let req = build();
        async move {
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) if transient_transport(&e) => {
                    return Err(Attempt::transient(chain(&e)));
                }
                Err(e) => {
                    return Err(Attempt::Fatal(Failure::failed(format!(
                        "{what}: {}",
                        chain(&e)
                    ))));
                }
            };
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let retry_after = headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = if (200..300).contains(&status) {
                rt_http::read_body(resp, rt_http::SECRET_BODY_LIMIT).await
            } else {
                rt_http::read_prefix(resp, rt_http::SMALL_BODY_LIMIT).await
            };
            let body = match body {
                Ok(b) => b,
                Err(e @ rt_http::BodyError::TooLarge { .. }) => {
                    return Err(Attempt::Fatal(e.into_failure(what)));
                }
                Err(e) => return Err(Attempt::transient(e.to_string())),
            };
            if status == 429
                || (500..600).contains(&status) && status != 501
                || also_transient(status, &body)
            {
                return Err(Attempt::Transient {
                    error: format!("HTTP {status}{}", short_error(&body)),
                    after: retry_after,
                });
            }
            Ok(Response {
                status,
                headers,
                body,
            })
        }
    })
    .await
}

/// `: message` from a JSON (`message`) or XML (`<Message>`) error body.
pub fn short_error(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in ["message", "Message"] {
            if let Some(m) = v.get(key).and_then(|m| m.as_str()) {
                return format!(": {}", m.replace('\n', " "));
            }
        }
        return String::new();
    }
    let text = String::from_utf8_lossy(body);
    match crate::xml_tag(&text, "Message") {
        Some(m) if !m.is_empty() => format!(": {}", m.replace('\n', " ")),
        _ => String::new(),
    }
}
