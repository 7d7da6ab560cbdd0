//! HTTP for AWS on the runtime's credentialed API client ([`initbox_runtime::http::api`]):
//! what is AWS's own is the CA option named in TLS failures, the retry policy and how error
//! bodies (JSON `message`, XML `<Message>`) carry their message.

use std::path::PathBuf;
use std::time::Duration;

use initbox_runtime::http::api::{self, Service};
use initbox_runtime::retry::RetryPolicy;
use initbox_runtime::tls::TlsArgs;
use initbox_runtime::{Deadline, Failure};

pub use initbox_runtime::http::api::Response;

/// TLS material for AWS endpoints.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    pub ca_file: Option<PathBuf>,
}

/// The runtime's credentialed client (verified TLS with system roots plus the CA file, no
/// proxy, redirects only on the origin given).
pub fn client(tls: &Tls, timeout: Duration) -> Result<reqwest::Client, Failure> {
    let tls = TlsArgs {
        ca_file: tls.ca_file.clone(),
        ..TlsArgs::default()
    };
    api::client(
        &tls,
        concat!("initbox/", env!("CARGO_PKG_VERSION")),
        timeout,
    )
}

/// AWS as a service of the runtime's API requests.
const AWS: Service = Service {
    ca_flags: "--aws-ca-file",
    short_error,
};

/// An error and its causes on one line; a TLS failure anywhere in the chain is its named reason.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    api::chain(e, AWS.ca_flags)
}

/// Whether a transport error is worth retrying (never a TLS verification failure or a refused
/// redirect).
pub fn transient_transport(e: &reqwest::Error) -> bool {
    api::transient_transport(e, AWS.ca_flags)
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
    api::send(
        AWS,
        &policy(deadline),
        deadline,
        what,
        build,
        also_transient,
    )
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
