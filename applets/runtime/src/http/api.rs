//! Requests to a service's API that carry credentials (Vault, Kubernetes, AWS): the one
//! credentialed client, requests retried only on transient errors (connection, timeout, 5xx,
//! 429 honouring Retry-After) within the run's deadline, and errors as one line.
//!
//! Each service says only what differs: the options that add a CA (named in TLS failure
//! reasons), how its error bodies carry a message, and its retry policy ([`Service`]).

use std::error::Error as _;
use std::time::Duration;

use super::{ClientOptions, SECRET_BODY_LIMIT, SMALL_BODY_LIMIT, read_body, read_prefix};
use crate::exit::{Failure, error_chain};
use crate::retry::{Attempt, RetryPolicy, retry};
use crate::tls::{TlsArgs, client_config, explain_chain};
use crate::{Deadline, http};

/// What differs between the services a client talks to.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// The options that add a CA, named in TLS failure reasons (`--vault-ca-file`).
    pub ca_flags: &'static str,
    /// `: message` from an error body (empty when it has none).
    pub short_error: fn(&[u8]) -> String,
}

/// A reqwest client from the runtime's one builder for requests that carry credentials (every
/// API request carries a token, a bearer or a signature): verified TLS (system roots plus the
/// CA file, a client certificate when given), no proxy, and redirects followed only on the
/// origin given, never down to plain http. A connection gets at most 10 s of `timeout`.
pub fn client(
    tls: &TlsArgs,
    user_agent: &str,
    timeout: Duration,
) -> Result<reqwest::Client, Failure> {
    if tls.client_cert.is_some() != tls.client_key.is_some() {
        return Err(Failure::usage(
            "a client certificate needs both the certificate and its key",
        ));
    }
    let config = client_config(&TlsArgs {
        insecure: false,
        ..tls.clone()
    })?;
    let mut opts = ClientOptions::new(config, user_agent, timeout);
    opts.connect_timeout = timeout.min(Duration::from_secs(10));
    opts.proxy_from_env = false;
    opts.credentials = true;
    http::client(opts)
}

/// An error and its causes on one line; a TLS failure anywhere in the chain is its named reason
/// instead (with `ca_flags` as the options that add a CA).
pub fn chain(e: &(dyn std::error::Error + 'static), ca_flags: &str) -> String {
    match explain_chain(e, ca_flags) {
        Some(reason) => format!("TLS: {reason}"),
        None => error_chain(e),
    }
}

/// Whether a transport error is worth retrying: a connection, a timeout, a request that failed
/// underneath. Never a TLS verification failure (retrying cannot make a certificate valid) nor
/// a refused redirect (it stays refused).
pub fn transient_transport(e: &reqwest::Error, ca_flags: &str) -> bool {
    if explain_chain(e, ca_flags).is_some() || e.is_redirect() {
        return false;
    }
    e.is_connect() || e.is_timeout() || e.is_request() && e.source().is_some()
}

/// An answer: status, headers and body (a 2xx body whole up to [`SECRET_BODY_LIMIT`], of any
/// other answer the first [`SMALL_BODY_LIMIT`], for its message).
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

/// Send the request `build` makes, retrying transient failures within the deadline;
/// `also_transient(status, body)` marks more answers as worth retrying (AWS reports throttling
/// as HTTP 400 `ThrottlingException`). Any other status is returned for the caller to
/// interpret.
pub async fn send(
    service: Service,
    policy: &RetryPolicy,
    deadline: &Deadline,
    what: &str,
    build: impl Fn() -> reqwest::RequestBuilder,
    also_transient: impl Fn(u16, &[u8]) -> bool,
) -> Result<Response, Failure> {
    let also_transient = &also_transient;
    retry(policy, deadline, what, |_| {
        let req = build();
        async move {
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) if transient_transport(&e, service.ca_flags) => {
                    return Err(Attempt::transient(chain(&e, service.ca_flags)));
                }
                Err(e) => {
                    return Err(Attempt::Fatal(Failure::failed(format!(
                        "{what}: {}",
                        chain(&e, service.ca_flags)
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
                read_body(resp, SECRET_BODY_LIMIT).await
            } else {
                read_prefix(resp, SMALL_BODY_LIMIT).await
            };
            let body = match body {
                Ok(b) => b,
                // Past the cap: exit 3, not retried.
                Err(e @ super::BodyError::TooLarge { .. }) => {
                    return Err(Attempt::Fatal(e.into_failure(what)));
                }
                Err(e) => return Err(Attempt::transient(e.to_string())),
            };
            if status == 429
                || (500..600).contains(&status) && status != 501
                || also_transient(status, &body)
            {
                return Err(Attempt::Transient {
                    error: format!("HTTP {status}{}", (service.short_error)(&body)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_certificate_needs_its_key() {
        let tls = TlsArgs {
            client_cert: Some("/nonexistent/cert.pem".into()),
            ..TlsArgs::default()
        };
        let e = client(&tls, "t", Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.code, crate::Code::USAGE);
        assert!(
            e.message.contains("both the certificate and its key"),
            "{e}"
        );
    }
}
