//! HTTP of the secret backends on the runtime's credentialed API client
//! ([`initbox_runtime::http::api`]): what is theirs is the CA options named in TLS failures, the
//! retry policy and how error bodies (Vault `errors`, AWS and Kubernetes `message`) carry their
//! message.

use std::path::PathBuf;
use std::time::Duration;

use initbox_runtime::http::api::{self, Service};
use initbox_runtime::tls::TlsArgs;
use initbox_runtime::{Deadline, Failure};

pub use initbox_runtime::http::api::Response;

/// TLS material of one backend.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// The runtime's credentialed client: verified TLS (system roots + CA file), no proxy, and
/// redirects followed only on the origin given, never down to plain http (Vault's own client
/// follows only standby-to-active redirects, over TLS when the origin was TLS).
pub fn client(tls: &Tls, timeout: Duration) -> Result<reqwest::Client, Failure> {
    let tls = TlsArgs {
        ca_file: tls.ca_file.clone(),
        client_cert: tls.client_cert.clone(),
        client_key: tls.client_key.clone(),
        insecure: false,
    };
    api::client(
        &tls,
        concat!("initbox-fetch-secret/", env!("CARGO_PKG_VERSION")),
        timeout,
    )
}

/// The secret backends as a service of the runtime's API requests.
const BACKENDS: Service = Service {
    ca_flags: "--vault-ca-file, --k8s-ca-file or --aws-ca-file",
    short_error,
};

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
    api::send(BACKENDS, &policy, deadline, what, build, also_transient).await
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
