//! HTTP plumbing shared by the backends: one rustls (ring) client per backend, and requests
//! retried only on transient errors (connection, timeout, 5xx, 429 honouring Retry-After),
//! bounded by the run's deadline.

use std::error::Error as _;
use std::path::PathBuf;
use std::time::Duration;

use initbox_runtime::http as rt_http;
use initbox_runtime::retry::{Attempt, retry};
use initbox_runtime::tls::{TlsArgs, client_config, explain_chain};
use initbox_runtime::{Deadline, Failure};

/// TLS material of one backend.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// A reqwest client from the runtime's one builder: verified TLS (system roots + CA file), no
/// proxy, and the toolkit's redirect policy with credentials (every backend request carries a
/// token, a bearer or a signature): redirects are followed only on the origin given, never down
/// to plain http (Vault's own client follows only standby-to-active redirects, over TLS when the
/// origin was TLS).
pub fn client(tls: &Tls, timeout: Duration) -> Result<reqwest::Client, Failure> {
    if tls.client_cert.is_some() != tls.client_key.is_some() {
        return Err(Failure::usage(
            "a client certificate needs both the certificate and its key",
        ));
    }
    let config = client_config(&TlsArgs {
        ca_file: tls.ca_file.clone(),
        client_cert: tls.client_cert.clone(),
        client_key: tls.client_key.clone(),
        insecure: false,
    })?;
    let mut opts = rt_http::ClientOptions::new(
        config,
        concat!("initbox-fetch-secret/", env!("CARGO_PKG_VERSION")),
        timeout,
    );
    opts.connect_timeout = timeout.min(Duration::from_secs(10));
    opts.proxy_from_env = false;
    opts.credentials = true;
    rt_http::client(opts)
}

/// The options that add a CA, named in TLS failure reasons.
const CA_FLAGS: &str = "--vault-ca-file, --k8s-ca-file or --aws-ca-file";

/// An error and its causes on one line.
/// A TLS failure anywhere in the chain is its named reason instead.
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

/// A response: status and body.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Whether a transport error is worth retrying.
/// A TLS verification failure is not transient: retrying cannot make a certificate valid.
pub fn transient_transport(e: &reqwest::Error) -> bool {
    if explain_chain(e, CA_FLAGS).is_some() {
        return false;
    }
    // A refused redirect stays refused.
    if e.is_redirect() {
        return false;
    }
    e.is_connect() || e.is_timeout() || e.is_request() && e.source().is_some()
}

/// Send the request `build` makes, retrying transient failures within the deadline.
/// Any other status is returned for the caller to interpret.
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
    let policy = crate::vault::policy(deadline);
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
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            // A secret payload up to 16 MiB (past it: exit 3, not retried); of an error
            // answer only the first 1 MiB, for its message.
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
            Ok(Response { status, body })
        }
    })
    .await
}

/// `: message` from a JSON error body (Vault `errors`, AWS `message`, Kubernetes `message`).
pub fn short_error(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    if let Some(errs) = v.get("errors").and_then(|e| e.as_array()) {
        let list: Vec<String> = errs
            .iter()
            .filter_map(|e| e.as_str())
            .map(|s| s.replace('\n', " ").trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if !list.is_empty() {
            return format!(": {}", list.join("; "));
        }
        return String::new();
    }
    for key in ["message", "Message"] {
        if let Some(m) = v.get(key).and_then(|m| m.as_str()) {
            return format!(": {}", m.replace('\n', " "));
        }
    }
    String::new()
}
