//! Where the API server is and how to authenticate, as client-go finds it: `--kubeconfig` (or
//! `$KUBECONFIG`), else the pod's service account (`KUBERNETES_SERVICE_HOST`/`_PORT` and the
//! token, CA and namespace files), else `~/.kube/config`.
//!
//! The service-account token is a bound token the kubelet rotates (about hourly, kubernetes#68164):
//! it is read from its file for every request, never kept, so a rotation is picked up at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use initbox_runtime::{Failure, redact};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::KubeArgs;

/// The service-account directory the kubelet mounts.
pub const SERVICEACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Variable that moves it (a projected token volume mounted elsewhere).
pub const SERVICEACCOUNT_DIR_VAR: &str = "INITBOX_K8S_SERVICEACCOUNT_DIR";

/// How requests authenticate. (No `Debug`: it holds credentials.)
#[derive(Clone)]
pub enum Auth {
    None,
    /// A bearer token given inline (kubeconfig `token`).
    Token(String),
    /// A bearer token read from this file for every request (service account, `tokenFile`).
    TokenFile(PathBuf),
    /// Basic authentication (kubeconfig `username`/`password`).
    Basic(String, String),
}

impl Auth {
    /// The `Authorization` header value for the next request.
    pub fn header(&self) -> Result<Option<String>, Failure> {
        Ok(match self {
            Auth::None => None,
            Auth::Token(t) => Some(format!("Bearer {t}")),
            Auth::TokenFile(path) => {
                let t = std::fs::read_to_string(path).map_err(|e| {
                    Failure::env_refused(format!("service-account token {}: {e}", path.display()))
                })?;
                let t = t.trim();
                redact::register(t);
                Some(format!("Bearer {t}"))
            }
            Auth::Basic(u, p) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )),
        })
    }
}

/// A resolved configuration.
pub struct Config {
    /// `https://host:port` (plus any path prefix), without a trailing slash.
    pub server: String,
    pub tls: rustls::ClientConfig,
    pub auth: Auth,
    /// The default namespace: the pod's own, or the kubeconfig context's.
    pub namespace: Option<String>,
    /// Where it came from, for logs ("service account", "kubeconfig PATH").
    pub source: String,
}

impl Config {
    /// Find the configuration as client-go does.
    pub fn load(args: &KubeArgs) -> Result<Config, Failure> {
        let kubeconfig = args.kubeconfig.clone().or_else(|| {
            std::env::var_os("KUBECONFIG")
                .filter(|v| !v.is_empty())
                .map(|v| {
                    // A list: the first file that exists (merging is not supported).
                    std::env::split_paths(&v)
                        .find(|p| p.exists())
                        .unwrap_or_else(|| std::env::split_paths(&v).next().unwrap_or_default())
                })
        });
        if let Some(path) = kubeconfig {
            return from_kubeconfig(&path, args.k8s_context.as_deref());
        }
        if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            return in_cluster();
        }
        if let Some(home) = std::env::var_os("HOME") {
            let p = Path::new(&home).join(".kube/config");
            if p.exists() {
                return from_kubeconfig(&p, args.k8s_context.as_deref());
            }
        }
        Err(Failure::env_refused(
            "no Kubernetes API to ask: not in a pod (KUBERNETES_SERVICE_HOST is unset) and no \
             kubeconfig (--kubeconfig, KUBECONFIG or ~/.kube/config)",
        ))
    }
}

fn in_cluster() -> Result<Config, Failure> {
    let dir = std::env::var_os(SERVICEACCOUNT_DIR_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SERVICEACCOUNT_DIR));
    let host = std::env::var("KUBERNETES_SERVICE_HOST").unwrap_or_default();
    let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(Failure::env_refused(format!(
            "KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT '{host}:{port}' is not an address"
        )));
    }
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let token = dir.join("token");
    if !token.exists() {
        return Err(Failure::env_refused(format!(
            "in a pod but no service-account token at {} (automountServiceAccountToken: false?)",
            token.display()
        )));
    }
    let ca = read_file(&dir.join("ca.crt"), "service-account CA")?;
    let namespace = std::fs::read_to_string(dir.join("namespace"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    Ok(Config {
        server: format!("https://{host}:{port}"),
        tls: tls_config(Some(&ca), false, None)?,
        auth: Auth::TokenFile(token),
        namespace,
        source: format!("service account ({})", dir.display()),
    })
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path)
        .map_err(|e| Failure::invalid_input(format!("{what} {}: {e}", path.display())))
}

/// The rustls configuration: only the cluster's CA when one is given (as client-go does), else
/// the system roots; the client certificate when given. Built here from memory (kubeconfigs carry
/// `*-data`), so no key is ever written to a file.
pub fn tls_config(
    ca_pem: Option<&[u8]>,
    insecure: bool,
    client: Option<(Vec<u8>, Vec<u8>)>,
) -> Result<rustls::ClientConfig, Failure> {
    if insecure {
        if client.is_some() {
            return Err(Failure::invalid_input(
                "insecure-skip-tls-verify with a client certificate is not supported",
            ));
        }
        return initbox_runtime::tls::client_config(&initbox_runtime::tls::TlsArgs {
            insecure: true,
            ..Default::default()
        });
    }
    let roots = match ca_pem {
        Some(ca) => {
            let mut store = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca) {
                let cert = cert.map_err(|e| {
                    Failure::invalid_input(format!("cluster CA: not PEM certificates: {e}"))
                })?;
                store
                    .add(cert)
                    .map_err(|e| Failure::invalid_input(format!("cluster CA: {e}")))?;
            }
            if store.is_empty() {
                return Err(Failure::invalid_input(
                    "cluster CA: no PEM certificate in it",
                ));
            }
            store
        }
        None => initbox_runtime::tls::root_store(None)?,
    };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Failure::failed(format!("TLS set-up: {e}")))?
    .with_root_certificates(roots);
    match client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
                .collect::<Result<_, _>>()
                .map_err(|e| Failure::invalid_input(format!("client certificate: {e}")))?;
            let key = PrivateKeyDer::from_pem_slice(&key)
                .map_err(|e| Failure::invalid_input(format!("client key: {e}")))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| Failure::invalid_input(format!("client certificate: {e}")))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig {
    #[serde(default)]
    current_context: Option<String>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    users: Vec<Named<User>>,
}

#[derive(Debug, Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "context", alias = "cluster", alias = "user")]
    value: Option<T>,
}

#[derive(Debug, Default, Deserialize)]
struct Context {
    cluster: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: String,
    #[serde(default)]
    certificate_authority: Option<PathBuf>,
    #[serde(default)]
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct User {
    #[serde(default)]
    token: Option<String>,
    #[serde(default, rename = "tokenFile")]
    token_file: Option<PathBuf>,
    #[serde(default)]
    client_certificate: Option<PathBuf>,
    #[serde(default)]
    client_certificate_data: Option<String>,
    #[serde(default)]
    client_key: Option<PathBuf>,
    #[serde(default)]
    client_key_data: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    exec: Option<serde_norway::Value>,
    #[serde(default, rename = "auth-provider")]
    auth_provider: Option<serde_norway::Value>,
}

fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<Config, Failure> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::invalid_input(format!("kubeconfig {shown}: {e}")))?;
    let kc: Kubeconfig = serde_norway::from_str(&text).map_err(|e| {
        Failure::invalid_input(format!(
            "kubeconfig {shown}: {}",
            redact::scrub(&e.to_string()).lines().next().unwrap_or("")
        ))
    })?;
    let bad = |m: String| Failure::invalid_input(format!("kubeconfig {shown}: {m}"));
    let ctx_name = context
        .map(str::to_string)
        .or(kc.current_context.clone())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("no current-context (give --k8s-context)".into()))?;
    let ctx = kc
        .contexts
        .iter()
        .find(|c| c.name == ctx_name)
        .and_then(|c| c.value.as_ref())
        .ok_or_else(|| bad(format!("no context named '{ctx_name}'")))?;
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.value.as_ref())
        .ok_or_else(|| bad(format!("no cluster named '{}'", ctx.cluster)))?;
    let empty = User::default();
    let user = match &ctx.user {
        Some(u) if !u.is_empty() => kc
            .users
            .iter()
            .find(|x| &x.name == u)
            .and_then(|x| x.value.as_ref())
            .ok_or_else(|| bad(format!("no user named '{u}'")))?,
        _ => &empty,
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let rel = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let b64 = |s: &str, what: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| bad(format!("{what}: not base64: {e}")))
    };
    if user.exec.is_some() || user.auth_provider.is_some() {
        return Err(bad(format!(
            "user of context '{ctx_name}' uses an exec or auth-provider plugin, which initbox does \
             not run; use a token, tokenFile or client certificate"
        )));
    }
    let ca = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(d), _) => Some(b64(d, "certificate-authority-data")?),
        (None, Some(p)) => Some(read_file(&rel(p), "certificate-authority")?),
        _ => None,
    };
    let cert = match (&user.client_certificate_data, &user.client_certificate) {
        (Some(d), _) => Some(b64(d, "client-certificate-data")?),
        (None, Some(p)) => Some(read_file(&rel(p), "client-certificate")?),
        _ => None,
    };
    let key = match (&user.client_key_data, &user.client_key) {
        (Some(d), _) => Some(b64(d, "client-key-data")?),
        (None, Some(p)) => Some(read_file(&rel(p), "client-key")?),
        _ => None,
    };
    let client = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            return Err(bad(
                "a client certificate needs both certificate and key".into()
            ));
        }
    };
    let auth = if let Some(t) = &user.token {
        redact::register(t);
        Auth::Token(t.clone())
    } else if let Some(f) = &user.token_file {
        Auth::TokenFile(rel(f))
    } else if let (Some(u), Some(p)) = (&user.username, &user.password) {
        redact::register(p);
        Auth::Basic(u.clone(), p.clone())
    } else {
        Auth::None
    };
    let server = cluster.server.trim_end_matches('/').to_string();
    let parsed = url::Url::parse(&server).map_err(|e| bad(format!("server '{server}': {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(bad(format!("server '{server}': expected https://")));
    }
    Ok(Config {
        server,
        tls: tls_config(ca.as_deref(), cluster.insecure_skip_tls_verify, client)?,
        auth,
        namespace: ctx.namespace.clone().filter(|n| !n.is_empty()),
        source: format!("kubeconfig {shown} (context {ctx_name})"),
    })
}

/// Keep the configuration's parts shareable.
pub type Shared = Arc<Config>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_with_a_token_file_relative_to_the_file() {
        let dir = std::env::temp_dir().join(format!("initbox-kubeconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: b\n\
             clusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443/\n    insecure-skip-tls-verify: true\n\
             contexts:\n- name: a\n  context: {cluster: c, user: nobody}\n- name: b\n  context:\n    cluster: c\n    user: u\n    namespace: shop\n\
             users:\n- name: u\n  user:\n    tokenFile: token\n",
        )
        .unwrap();
        let cfg = from_kubeconfig(&path, None).unwrap();
        assert_eq!(cfg.server, "https://10.0.0.1:6443");
        assert_eq!(cfg.namespace.as_deref(), Some("shop"));
        assert!(matches!(&cfg.auth, Auth::TokenFile(p) if *p == dir.join("token")));
        std::fs::write(dir.join("token"), "tok-canary-1\n").unwrap();
        assert_eq!(
            cfg.auth.header().unwrap().as_deref(),
            Some("Bearer tok-canary-1")
        );
        let e = from_kubeconfig(&path, Some("a")).err().expect("refused");
        assert!(
            e.message.contains("no user named 'nobody'"),
            "{}",
            e.message
        );
        let e = from_kubeconfig(&path, Some("zz")).err().expect("refused");
        assert!(e.message.contains("no context named 'zz'"), "{}", e.message);
        std::fs::write(
            &path,
            "current-context: x\nclusters: [{name: c, cluster: {server: https://h}}]\n\
             contexts: [{name: x, context: {cluster: c, user: e}}]\n\
             users: [{name: e, user: {exec: {command: aws}}}]\n",
        )
        .unwrap();
        let e = from_kubeconfig(&path, None).err().expect("refused");
        assert!(
            e.message.contains("exec or auth-provider plugin"),
            "{}",
            e.message
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
