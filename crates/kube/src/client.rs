//! The API calls a wait needs: discovery of a group's preferred version, paged lists and watch
//! streams (newline-delimited JSON events), each with the credentials read afresh.

use std::time::Duration;

use initbox_runtime::Failure;
use initbox_runtime::http::{ClientOptions, Redirects};
use serde_json::Value;

use crate::config::{Auth, Config};

/// Server-side bound of one watch request (client-go picks 5 to 10 minutes); the stream then
/// ends and is resumed from the last resourceVersion seen.
pub const WATCH_SECONDS: u64 = 290;

/// An API call that did not succeed.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// The server answered with an error status (its `Status` object's reason and message).
    Status {
        code: u16,
        reason: String,
        message: String,
    },
    /// No answer: connection, TLS or timeout.
    Transport(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Status {
                code,
                reason,
                message,
            } => {
                write!(f, "{code} {reason}")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            ApiError::Transport(t) => f.write_str(t),
        }
    }
}

impl ApiError {
    pub fn code(&self) -> Option<u16> {
        match self {
            ApiError::Status { code, .. } => Some(*code),
            ApiError::Transport(_) => None,
        }
    }
}

/// The client, shared by every `k8s://` target of a run.
pub struct Client {
    http: reqwest::Client,
    server: String,
    auth: Auth,
    /// The default namespace the configuration gives.
    pub namespace: Option<String>,
    /// Where the configuration came from.
    pub source: String,
    list_timeout: Duration,
}

impl Client {
    /// `list_timeout` bounds each list (the wait's per-attempt timeout).
    pub fn new(cfg: Config, list_timeout: Duration) -> Result<Client, Failure> {
        let mut opts = ClientOptions::new(
            cfg.tls,
            concat!("initbox/", env!("CARGO_PKG_VERSION")),
            Duration::from_secs(WATCH_SECONDS + 60),
        );
        opts.connect_timeout = list_timeout;
        opts.redirects = Redirects::Never;
        let http = initbox_runtime::http::client(opts)?;
        tracing::debug!("Kubernetes API {} from {}", cfg.server, cfg.source);
        Ok(Client {
            http,
            server: cfg.server,
            auth: cfg.auth,
            namespace: cfg.namespace,
            source: cfg.source,
            list_timeout,
        })
    }

    async fn get(&self, path: &str, timeout: Duration) -> Result<reqwest::Response, ApiError> {
        // A 401 may be a token that rotated between the read and the request: read it again and
        // try once more before giving up.
        for attempt in 0..2 {
            let mut rb = self
                .http
                .get(format!("{}{path}", self.server))
                .header("accept", "application/json")
                .timeout(timeout);
            match self.auth.header() {
                Ok(Some(h)) => rb = rb.header("authorization", h),
                Ok(None) => {}
                Err(f) => return Err(ApiError::Transport(f.message)),
            }
            let resp = rb.send().await.map_err(|e| {
                ApiError::Transport(initbox_runtime::http::describe(&e, "the cluster CA"))
            })?;
            let code = resp.status().as_u16();
            if resp.status().is_success() {
                return Ok(resp);
            }
            if code == 401 && attempt == 0 {
                tracing::debug!("{path}: 401 Unauthorized; reading the token again");
                continue;
            }
            let body = initbox_runtime::http::read_body(resp, 64 * 1024)
                .await
                .unwrap_or_default();
            return Err(status_error(code, &body));
        }
        unreachable!("the loop returns")
    }

    /// The preferred version of an API group (discovery), for `PLURAL.GROUP` targets.
    pub async fn preferred_version(&self, group: &str) -> Result<String, ApiError> {
        let resp = self
            .get(&format!("/apis/{group}"), self.list_timeout)
            .await?;
        let v: Value = json(resp).await?;
        v.pointer("/preferredVersion/version")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ApiError::Transport(format!("/apis/{group}: no preferredVersion")))
    }

    /// Every object of the collection (paged), and the list's resourceVersion.
    pub async fn list(
        &self,
        collection: &str,
        name: Option<&str>,
        selector: Option<&str>,
    ) -> Result<(Vec<Value>, String), ApiError> {
        let mut items = Vec::new();
        let mut cont: Option<String> = None;
        loop {
            let mut q = query(name, selector);
            q.push(("limit".into(), "500".into()));
            if let Some(c) = &cont {
                q.push(("continue".into(), c.clone()));
            }
            let resp = self
                .get(&format!("{collection}?{}", encode(&q)), self.list_timeout)
                .await?;
            let mut v: Value = json(resp).await?;
            if let Some(Value::Array(page)) = v.get_mut("items").map(Value::take) {
                items.extend(page);
            }
            let rv = v
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            match v.pointer("/metadata/continue").and_then(Value::as_str) {
                Some(c) if !c.is_empty() => cont = Some(c.to_string()),
                _ => return Ok((items, rv)),
            }
        }
    }

    /// A watch stream from `resource_version`, with bookmarks.
    pub async fn watch(
        &self,
        collection: &str,
        name: Option<&str>,
        selector: Option<&str>,
        resource_version: &str,
    ) -> Result<reqwest::Response, ApiError> {
        let mut q = query(name, selector);
        q.push(("watch".into(), "1".into()));
        q.push(("allowWatchBookmarks".into(), "true".into()));
        q.push(("timeoutSeconds".into(), WATCH_SECONDS.to_string()));
        if !resource_version.is_empty() {
            q.push(("resourceVersion".into(), resource_version.into()));
        }
        self.get(
            &format!("{collection}?{}", encode(&q)),
            Duration::from_secs(WATCH_SECONDS + 30),
        )
        .await
    }
}

fn query(name: Option<&str>, selector: Option<&str>) -> Vec<(String, String)> {
    let mut q = Vec::new();
    if let Some(n) = name {
        q.push(("fieldSelector".into(), format!("metadata.name={n}")));
    }
    if let Some(s) = selector {
        q.push(("labelSelector".into(), s.to_string()));
    }
    q
}

fn encode(q: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(q)
        .finish()
}

async fn json(resp: reqwest::Response) -> Result<Value, ApiError> {
    let body = initbox_runtime::http::read_body(resp, 256 * 1024 * 1024)
        .await
        .map_err(|e| ApiError::Transport(format!("reading the answer: {e}")))?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::Transport(format!("the answer is not JSON: {e}")))
}

/// The API server's `Status` object (kind Status, reason, message), or the bare HTTP status.
pub fn status_error(code: u16, body: &[u8]) -> ApiError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let reason = match field("reason") {
        r if r.is_empty() => reqwest::StatusCode::from_u16(code)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("")
            .to_string(),
        r => r,
    };
    let raw = field("message");
    let message = initbox_runtime::redact::scrub(&raw);
    ApiError::Status {
        code,
        reason,
        message: message
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(300)
            .collect(),
    }
}
