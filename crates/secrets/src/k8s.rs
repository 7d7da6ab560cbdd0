//! Kubernetes Secrets, read from the API server with the pod's service account
//! (`GET /api/v1/namespaces/NS/secrets/NAME`, bearer token, cluster CA).

use std::path::PathBuf;

use base64::Engine;
use clap::Args;
use initbox_runtime::{Deadline, Failure, redact};
use serde_json::{Map, Value};

use crate::http::{self, Tls, short_error};
use crate::reference::Reference;
use crate::value::{Document, Fetched};
use crate::vault::read_secret_file;

/// Where a pod's service-account credentials are mounted.
pub const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Kubernetes API flags (defaults: the in-cluster service account).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Kubernetes")]
pub struct K8sArgs {
    /// API server URL (default: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT).
    #[arg(long, value_name = "URL", env = initbox_runtime::env::K8S_API)]
    pub k8s_api: Option<String>,

    /// Bearer token file (default: the pod's service-account token).
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::K8S_TOKEN_FILE)]
    pub k8s_token_file: Option<PathBuf>,

    /// CA bundle of the API server (default: the service account's ca.crt).
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::K8S_CA_FILE)]
    pub k8s_ca_file: Option<PathBuf>,

    /// Kubernetes namespace of what names none (ref+k8s://SECRET references here; default: the
    /// pod's namespace).
    #[arg(long, value_name = "NS", env = initbox_runtime::env::K8S_NAMESPACE)]
    pub k8s_namespace: Option<String>,
}

pub struct Kube {
    http: reqwest::Client,
    api: String,
    token: String,
    namespace: Option<String>,
    deadline: Deadline,
}

impl Kube {
    pub fn new(
        args: &K8sArgs,
        timeout: std::time::Duration,
        deadline: Deadline,
    ) -> Result<Kube, Failure> {
        let api = match &args.k8s_api {
            Some(a) => a.trim_end_matches('/').to_string(),
            None => {
                let host = std::env::var("KUBERNETES_SERVICE_HOST").map_err(|_| {
                    Failure::usage(
                        "not inside a Kubernetes pod (KUBERNETES_SERVICE_HOST unset): set --k8s-api",
                    )
                })?;
                let port =
                    std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host
                };
                format!("https://{host}:{port}")
            }
        };
        let sa = PathBuf::from(SA_DIR);
        let ca = args.k8s_ca_file.clone().or_else(|| {
            let p = sa.join("ca.crt");
            p.exists().then_some(p)
        });
        let token_file = args
            .k8s_token_file
            .clone()
            .unwrap_or_else(|| sa.join("token"));
        let token = read_secret_file(&token_file, "Kubernetes service-account token")?;
        let namespace = args.k8s_namespace.clone().or_else(|| {
            initbox_runtime::input::read_secret_bytes(&sa.join("namespace"), "namespace")
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        });
        let tls = Tls {
            ca_file: ca,
            ..Tls::default()
        };
        Ok(Kube {
            http: http::client(&tls, timeout)?,
            api,
            token,
            namespace,
            deadline,
        })
    }

    pub async fn read(&self, r: &Reference) -> Result<Fetched, Failure> {
        let (ns, name) = match r.path.split_once('/') {
            Some((ns, name)) => (ns.to_string(), name.to_string()),
            None => (
                self.namespace.clone().ok_or_else(|| {
                    Failure::usage(format!(
                        "{r}: no namespace given and the pod's namespace is unknown (set --k8s-namespace)"
                    ))
                })?,
                r.path.clone(),
            ),
        };
        let url = format!("{}/api/v1/namespaces/{ns}/secrets/{name}", self.api);
        let what = format!("kubernetes secret {ns}/{name}");
        let resp = http::send(&self.deadline, &what, || {
            self.http
                .get(&url)
                .bearer_auth(&self.token)
                .header("accept", "application/json")
        })
        .await?;
        match resp.status {
            200 => {}
            404 => {
                return Ok(Fetched::NotFound(format!(
                    "secret not found: kubernetes secret {ns}/{name} (HTTP 404)"
                )));
            }
            401 | 403 => {
                return Err(Failure::credentials(format!(
                    "{what}: the service-account token was refused (HTTP {}{})",
                    resp.status,
                    short_error(&resp.body)
                )));
            }
            s => {
                return Err(Failure::failed(format!(
                    "{what}: HTTP {s}{}",
                    short_error(&resp.body)
                )));
            }
        }
        let v: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| Failure::failed(format!("{what}: the answer is not JSON: {e}")))?;
        let mut out = Map::new();
        if let Some(data) = v["data"].as_object() {
            for (k, b64) in data {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_str().unwrap_or_default())
                    .map_err(|_| Failure::failed(format!("{what}: key '{k}' is not base64")))?;
                let text = String::from_utf8(raw).map_err(|_| {
                    Failure::failed(format!("{what}: key '{k}' is binary, not UTF-8 text"))
                })?;
                redact::register(&text);
                out.insert(k.clone(), Value::String(text));
            }
        }
        Ok(Fetched::Found(Document::new(Value::Object(out), None)))
    }
}
