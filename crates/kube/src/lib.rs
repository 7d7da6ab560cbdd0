//! What `initbox wait-for k8s://…` needs from Kubernetes, without kubectl: credentials
//! ([`config`]: the pod's service account, re-read as the token rotates, or a kubeconfig), an API
//! client ([`client`]: list, then watch from the list's resourceVersion with bookmarks, re-list on
//! "410 Gone", polling where RBAC forbids watch, 403s that name the verb and resource), the
//! targets ([`target`]), the readiness rules of each kind ([`ready`]), the probe the wait engine
//! runs ([`probe`]) and the RBAC the targets need ([`rbac`]).

pub mod client;
pub mod config;
pub mod probe;
pub mod rbac;
pub mod ready;
pub mod target;

use std::path::PathBuf;

use clap::Args;

pub use client::Client;
pub use probe::KubeProbe;
pub use target::KubeTarget;

/// The `k8s://` options of `wait-for`.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Kubernetes (k8s:// targets)")]
pub struct KubeArgs {
    /// Kubeconfig to use instead of the pod's service account (else $KUBECONFIG, then
    /// ~/.kube/config when not running in a pod).
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::KUBECONFIG)]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context (default: its current-context).
    #[arg(long, value_name = "NAME", env = initbox_runtime::env::K8S_CONTEXT)]
    pub k8s_context: Option<String>,

    /// Kubernetes namespace of what names none (k8s:// targets here; default: the pod's own
    /// namespace, or the kubeconfig context's).
    #[arg(
        long = "k8s-namespace",
        value_name = "NS",
        env = initbox_runtime::env::K8S_NAMESPACE
    )]
    pub namespace: Option<String>,

    /// Print the Role and RoleBinding (for this service account) that the k8s:// targets need,
    /// and exit.
    #[arg(long, value_name = "SERVICEACCOUNT", num_args = 0..=1, default_missing_value = "default",
          env = initbox_runtime::env::PRINT_RBAC)]
    pub print_rbac: Option<String>,
}

impl KubeArgs {
    /// The namespace of targets that name none, without asking any server: `--k8s-namespace`, else
    /// the pod's namespace file, else "default". (Waiting uses the loaded configuration's.)
    pub fn namespace_offline(&self) -> String {
        if let Some(n) = &self.namespace {
            return n.clone();
        }
        let dir = std::env::var_os(config::SERVICEACCOUNT_DIR_VAR)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(config::SERVICEACCOUNT_DIR));
        std::fs::read_to_string(dir.join("namespace"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into())
    }

    /// The client for this run.
    pub fn client(
        &self,
        list_timeout: std::time::Duration,
    ) -> Result<(std::sync::Arc<Client>, String), initbox_runtime::Failure> {
        let cfg = config::Config::load(self)?;
        let ns = self
            .namespace
            .clone()
            .or_else(|| cfg.namespace.clone())
            .unwrap_or_else(|| "default".into());
        Ok((std::sync::Arc::new(Client::new(cfg, list_timeout)?), ns))
    }
}

/// Is `url` a Kubernetes target?
pub fn is_target(url: &str) -> bool {
    url.split_once("://")
        .is_some_and(|(s, _)| s.eq_ignore_ascii_case("k8s") || s.eq_ignore_ascii_case("kubernetes"))
}
