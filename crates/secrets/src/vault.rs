//! HashiCorp Vault / OpenBao.
//!
//! Every call uses Vault's documented HTTP API on the runtime's one HTTP client (ring-only TLS,
//! redirects only on the origin given and never down to plain http, bodies read up to a cap):
//! logins (`POST /v1/auth/MOUNT/login` for kubernetes, approle with an optionally
//! response-wrapped secret-id, jwt/oidc, userpass, cert), the token check
//! (`GET /v1/auth/token/lookup-self`) and reads: `GET /v1/sys/internal/ui/mounts/PATH`
//! tells the mount and its KV version (cached per mount), then `GET /v1/MOUNT/data/PATH` (KV v2)
//! or `GET /v1/PATH` (KV v1 and every other engine, lease metadata kept).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, ValueEnum};
use initbox_runtime::retry::RetryPolicy;
use initbox_runtime::{Deadline, Failure, redact};
use serde_json::Value;

use crate::http::{self, Tls, short_error};
use crate::reference::Reference;
use crate::value::{Document, Fetched, Lease};

/// Default service-account token of a pod.
pub const SA_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum AuthMethod {
    /// A token from INITBOX_VAULT_TOKEN, VAULT_TOKEN, --vault-token-file or ~/.vault-token.
    #[default]
    Token,
    /// The pod's service-account JWT (--vault-jwt-file) for --vault-role.
    Kubernetes,
    /// --vault-role-id(-file) and --vault-secret-id-file (optionally response-wrapped).
    Approle,
    /// A JWT/OIDC token from --vault-jwt-file (CI OIDC tokens, projected tokens).
    Jwt,
    /// --vault-username and --vault-password-file.
    Userpass,
    /// The TLS client certificate (--vault-client-cert/--vault-client-key).
    Cert,
}

impl AuthMethod {
    fn default_mount(self) -> &'static str {
        match self {
            AuthMethod::Token => "token",
            AuthMethod::Kubernetes => "kubernetes",
            AuthMethod::Approle => "approle",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Userpass => "userpass",
            AuthMethod::Cert => "cert",
        }
    }
}

/// Vault connection and login flags. Vault's own variables (VAULT_ADDR, VAULT_TOKEN,
/// VAULT_NAMESPACE, VAULT_CACERT, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY) are honoured when the
/// INITBOX_ one is not set.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Vault")]
pub struct VaultArgs {
    /// Vault address (falls back to VAULT_ADDR).
    #[arg(long, value_name = "URL", env = initbox_runtime::env::VAULT_ADDR)]
    pub vault_addr: Option<String>,

    /// Login method.
    #[arg(
        long,
        value_enum,
        value_name = "METHOD",
        env = initbox_runtime::env::VAULT_AUTH,
        default_value = "token"
    )]
    pub vault_auth: AuthMethod,

    /// Mount path of the auth method (default: the method's name).
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::VAULT_AUTH_MOUNT)]
    pub vault_auth_mount: Option<String>,

    /// Role for kubernetes and jwt logins.
    #[arg(long, value_name = "ROLE", env = initbox_runtime::env::VAULT_ROLE)]
    pub vault_role: Option<String>,

    /// File holding the token (token auth; default: INITBOX_VAULT_TOKEN, VAULT_TOKEN, then ~/.vault-token).
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::VAULT_TOKEN_FILE)]
    pub vault_token_file: Option<PathBuf>,

    /// JWT file for kubernetes (default: the pod's service-account token) and jwt logins.
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::VAULT_JWT_FILE)]
    pub vault_jwt_file: Option<PathBuf>,

    /// AppRole role_id.
    #[arg(
        long,
        value_name = "ID",
        env = initbox_runtime::env::VAULT_ROLE_ID,
        conflicts_with = "vault_role_id_file"
    )]
    pub vault_role_id: Option<String>,

    /// File holding the AppRole role_id.
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::VAULT_ROLE_ID_FILE)]
    pub vault_role_id_file: Option<PathBuf>,

    /// File holding the AppRole secret_id (or, with --vault-secret-id-wrapped, a wrapping token).
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::VAULT_SECRET_ID_FILE)]
    pub vault_secret_id_file: Option<PathBuf>,

    /// The secret-id file holds a response-wrapping token: unwrap it first (sys/wrapping/unwrap).
    #[arg(long, env = initbox_runtime::env::VAULT_SECRET_ID_WRAPPED, value_parser = clap::builder::BoolishValueParser::new())]
    pub vault_secret_id_wrapped: bool,

    /// Userpass user name.
    #[arg(long, value_name = "NAME", env = initbox_runtime::env::VAULT_USERNAME)]
    pub vault_username: Option<String>,

    /// File holding the userpass password.
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::VAULT_PASSWORD_FILE)]
    pub vault_password_file: Option<PathBuf>,

    /// Certificate role name for cert logins (default: any matching role).
    #[arg(long, value_name = "NAME", env = initbox_runtime::env::VAULT_CERT_ROLE)]
    pub vault_cert_role: Option<String>,

    /// Vault Enterprise / OpenBao namespace (falls back to VAULT_NAMESPACE).
    #[arg(long, value_name = "NS", env = initbox_runtime::env::VAULT_NAMESPACE)]
    pub vault_namespace: Option<String>,

    /// CA bundle (PEM) trusted for Vault in addition to the system roots (falls back to VAULT_CACERT).
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::VAULT_CA_FILE)]
    pub vault_ca_file: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS and cert logins (falls back to VAULT_CLIENT_CERT).
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::VAULT_CLIENT_CERT)]
    pub vault_client_cert: Option<PathBuf>,

    /// Key (PEM) of the client certificate (falls back to VAULT_CLIENT_KEY).
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::VAULT_CLIENT_KEY)]
    pub vault_client_key: Option<PathBuf>,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Read a credential file: trimmed, registered for redaction, non-empty.
pub(crate) fn read_secret_file(path: &Path, what: &str) -> Result<String, Failure> {
    let text = initbox_runtime::input::read_secret(
        path,
        &format!("{what} file {}", path.display()),
        false,
    )?;
    if text.is_empty() {
        return Err(Failure::invalid_input(format!(
            "the {what} file {} is empty",
            path.display()
        )));
    }
    redact::register(&text);
    Ok(text)
}

#[derive(Debug, Clone)]
struct Mount {
    /// With a trailing slash, as Vault reports it: `secret/`.
    path: String,
    kind: String,
    kv_version: u8,
    namespace: Option<String>,
}

/// A logged-in Vault session: one login per run, mounts cached.
pub struct Vault {
    http: reqwest::Client,
    addr: String,
    namespace: Option<String>,
    token: String,
    deadline: Deadline,
    mounts: Mutex<Vec<Mount>>,
    /// One mount lookup at a time per (namespace, first path segment): concurrent reads of one
    /// mount wait for its first lookup instead of each asking Vault.
    lookups: Mutex<HashMap<NsPath, Arc<tokio::sync::Mutex<()>>>>,
    /// Reads by (namespace, API path): `secret/app` and `secret/data/app` are one read.
    reads: Mutex<HashMap<NsPath, ReadCell>>,
}

/// (namespace, path)
type NsPath = (Option<String>, String);
type ReadCell = Arc<tokio::sync::OnceCell<Result<Fetched, Failure>>>;

impl Vault {
    /// Build the client and log in (once).
    pub async fn connect(
        args: &VaultArgs,
        timeout: Duration,
        deadline: Deadline,
    ) -> Result<Vault, Failure> {
        let addr = args
            .vault_addr
            .clone()
            .or_else(|| env_nonempty("VAULT_ADDR"))
            .ok_or_else(|| {
                Failure::usage(
                    "no Vault address: set --vault-addr, INITBOX_VAULT_ADDR or VAULT_ADDR",
                )
            })?;
        let shown = initbox_runtime::url::display(&addr);
        let url = reqwest::Url::parse(addr.trim())
            .map_err(|e| Failure::usage(format!("--vault-addr '{shown}' is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Failure::usage(format!(
                "--vault-addr '{shown}' must be an http:// or https:// URL with a host"
            )));
        }
        let addr = url.as_str().trim_end_matches('/').to_string();
        let tls = Tls {
            ca_file: args
                .vault_ca_file
                .clone()
                .or_else(|| env_nonempty("VAULT_CACERT").map(PathBuf::from)),
            client_cert: args
                .vault_client_cert
                .clone()
                .or_else(|| env_nonempty("VAULT_CLIENT_CERT").map(PathBuf::from)),
            client_key: args
                .vault_client_key
                .clone()
                .or_else(|| env_nonempty("VAULT_CLIENT_KEY").map(PathBuf::from)),
        };
        let http = http::client(&tls, timeout)?;
        let namespace = args
            .vault_namespace
            .clone()
            .or_else(|| env_nonempty("VAULT_NAMESPACE"));
        let mut vault = Vault {
            http,
            addr,
            namespace,
            token: String::new(),
            deadline,
            mounts: Mutex::new(Vec::new()),
            lookups: Mutex::new(HashMap::new()),
            reads: Mutex::new(HashMap::new()),
        };
        vault.token = vault.login(args).await?;
        Ok(vault)
    }

    /// The token of this session (for `--token-out`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A request to Vault's API at `/v1/PATH`, with the token (if any) and the namespace.
    fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        namespace: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Request", "true");
        if !token.is_empty() {
            req = req.header("X-Vault-Token", token);
        }
        if let Some(ns) = namespace.or(self.namespace.as_deref()) {
            req = req.header("X-Vault-Namespace", ns);
        }
        req
    }

    /// POST `body` to `path` (a login, an unwrap) and return the JSON answer of a 2xx; a
    /// refusal (400/401/403) is rejected credentials with Vault's reason.
    async fn post(
        &self,
        what: &str,
        path: &str,
        token: &str,
        body: &Value,
    ) -> Result<Value, Failure> {
        let body = serde_json::to_vec(body)
            .map_err(|e| Failure::failed(format!("{what}: cannot encode the request: {e}")))?;
        let resp = http::send(&self.deadline, what, || {
            self.api(reqwest::Method::POST, path, token, None)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await?;
        answer(what, resp)
    }

    async fn login(&self, args: &VaultArgs) -> Result<String, Failure> {
        let method = args.vault_auth;
        let mount = args
            .vault_auth_mount
            .clone()
            .unwrap_or_else(|| method.default_mount().to_string());
        let mount = mount.trim_matches('/').to_string();
        let what = format!("vault {} login (auth/{mount})", method.default_mount());
        let role = || {
            args.vault_role.clone().ok_or_else(|| {
                Failure::usage(format!(
                    "--vault-auth {} needs --vault-role",
                    method.default_mount()
                ))
            })
        };
        let login = format!("auth/{mount}/login");
        let answer = match method {
            AuthMethod::Token => return self.check_token(args).await,
            AuthMethod::Kubernetes => {
                let jwt_path = args
                    .vault_jwt_file
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(SA_TOKEN));
                let jwt = read_secret_file(&jwt_path, "service-account token")?;
                let body = serde_json::json!({"role": role()?, "jwt": jwt});
                self.post(&what, &login, "", &body).await?
            }
            AuthMethod::Jwt => {
                let jwt_path = args
                    .vault_jwt_file
                    .clone()
                    .ok_or_else(|| Failure::usage("--vault-auth jwt needs --vault-jwt-file"))?;
                let jwt = read_secret_file(&jwt_path, "JWT")?;
                let mut body = serde_json::json!({"jwt": jwt});
                if let Some(role) = &args.vault_role {
                    body["role"] = Value::String(role.clone());
                }
                self.post(&what, &login, "", &body).await?
            }
            AuthMethod::Approle => {
                let role_id = match (&args.vault_role_id, &args.vault_role_id_file) {
                    (Some(id), _) => id.clone(),
                    (None, Some(p)) => read_secret_file(p, "role-id")?,
                    (None, None) => {
                        return Err(Failure::usage(
                            "--vault-auth approle needs --vault-role-id or --vault-role-id-file",
                        ));
                    }
                };
                let secret_path = args.vault_secret_id_file.clone().ok_or_else(|| {
                    Failure::usage("--vault-auth approle needs --vault-secret-id-file")
                })?;
                let mut secret_id = read_secret_file(&secret_path, "secret-id")?;
                if args.vault_secret_id_wrapped {
                    secret_id = self.unwrap_secret_id(&secret_id).await?;
                }
                let body = serde_json::json!({"role_id": role_id, "secret_id": secret_id});
                self.post(&what, &login, "", &body).await?
            }
            AuthMethod::Userpass => {
                let user = args.vault_username.clone().ok_or_else(|| {
                    Failure::usage("--vault-auth userpass needs --vault-username")
                })?;
                let pw_path = args.vault_password_file.clone().ok_or_else(|| {
                    Failure::usage("--vault-auth userpass needs --vault-password-file")
                })?;
                let password = read_secret_file(&pw_path, "password")?;
                let path = format!(
                    "{login}/{}",
                    percent_encoding::utf8_percent_encode(
                        &user,
                        percent_encoding::NON_ALPHANUMERIC
                    )
                );
                let body = serde_json::json!({"password": password});
                self.post(&what, &path, "", &body).await?
            }
            AuthMethod::Cert => {
                let name = args.vault_cert_role.clone().unwrap_or_default();
                let body = serde_json::json!({"name": name});
                self.post(&what, &login, "", &body).await?
            }
        };
        let auth = &answer["auth"];
        let Some(token) = auth["client_token"].as_str().filter(|t| !t.is_empty()) else {
            return Err(Failure::failed(format!(
                "{what}: the answer has no auth.client_token"
            )));
        };
        let token = token.to_string();
        redact::register(&token);
        if let Some(accessor) = auth["accessor"].as_str() {
            redact::register(accessor);
        }
        tracing::info!(
            method = method.default_mount(),
            mount = %mount,
            ttl = auth["lease_duration"].as_u64().unwrap_or(0),
            policies = %strings(&auth["policies"]),
            "vault: logged in"
        );
        Ok(token)
    }

    async fn check_token(&self, args: &VaultArgs) -> Result<String, Failure> {
        let token = if let Some(p) = &args.vault_token_file {
            read_secret_file(p, "Vault token")?
        } else if let Some(t) =
            env_nonempty(initbox_runtime::env::VAULT_TOKEN).or_else(|| env_nonempty("VAULT_TOKEN"))
        {
            let t = t.trim().to_string();
            redact::register(&t);
            t
        } else {
            let home = std::env::var_os("HOME").map(PathBuf::from);
            match home.map(|h| h.join(".vault-token")).filter(|p| p.exists()) {
                Some(p) => read_secret_file(&p, "Vault token")?,
                None => {
                    return Err(Failure::usage(
                        "no Vault token: set VAULT_TOKEN, --vault-token-file or --vault-auth",
                    ));
                }
            }
        };
        let what = "vault token lookup-self";
        let resp = http::send(&self.deadline, what, || {
            self.api(reqwest::Method::GET, "auth/token/lookup-self", &token, None)
        })
        .await?;
        let info = &answer(what, resp)?["data"];
        for field in ["id", "accessor"] {
            if let Some(v) = info[field].as_str() {
                redact::register(v);
            }
        }
        tracing::info!(
            ttl = info["ttl"].as_u64().unwrap_or(0),
            policies = %strings(&info["policies"]),
            "vault: token accepted"
        );
        Ok(token)
    }

    async fn unwrap_secret_id(&self, wrapping_token: &str) -> Result<String, Failure> {
        let what = "vault unwrap of the wrapped secret-id";
        let answer = self
            .post(
                what,
                "sys/wrapping/unwrap",
                wrapping_token,
                &Value::Object(Default::default()),
            )
            .await?;
        let Some(secret_id) = answer["data"]["secret_id"].as_str() else {
            return Err(Failure::failed(format!(
                "{what}: the answer has no data.secret_id"
            )));
        };
        redact::register(secret_id);
        Ok(secret_id.to_string())
    }

    fn request(&self, path: &str, namespace: Option<&str>) -> reqwest::RequestBuilder {
        self.api(reqwest::Method::GET, path, &self.token, namespace)
    }

    /// The mount `path` lives in, from the cache or `sys/internal/ui/mounts`.
    async fn mount_of(
        &self,
        path: &str,
        namespace: Option<&str>,
    ) -> Result<Option<Mount>, Failure> {
        let ns = namespace.or(self.namespace.as_deref()).map(str::to_string);
        let cached = || {
            let cache = self.mounts.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .iter()
                .find(|m| m.namespace == ns && format!("{path}/").starts_with(&m.path))
                .cloned()
        };
        if let Some(m) = cached() {
            return Ok(Some(m));
        }
        let first = path.split('/').next().unwrap_or_default().to_string();
        let gate = {
            let mut l = self.lookups.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(l.entry((ns.clone(), first)).or_default())
        };
        let _turn = gate.lock().await;
        if let Some(m) = cached() {
            return Ok(Some(m));
        }
        let what = format!("vault mount lookup for {path}");
        let resp = http::send(&self.deadline, &what, || {
            self.request(&format!("sys/internal/ui/mounts/{path}"), namespace)
        })
        .await?;
        if resp.status != 200 {
            // No permission to look it up (or an old Vault): read the path as given.
            tracing::debug!(
                path,
                status = resp.status,
                "vault: mount lookup not available, reading the path as given"
            );
            return Ok(None);
        }
        let v = resp.json().unwrap_or(Value::Null);
        let data = &v["data"];
        let Some(mpath) = data["path"].as_str() else {
            return Ok(None);
        };
        let kind = data["type"].as_str().unwrap_or_default().to_string();
        let kv_version = match (kind.as_str(), data["options"]["version"].as_str()) {
            ("kv" | "generic", Some("2")) => 2,
            ("kv" | "generic", _) => 1,
            _ => 0,
        };
        let mount = Mount {
            path: if mpath.ends_with('/') {
                mpath.to_string()
            } else {
                format!("{mpath}/")
            },
            kind,
            kv_version,
            namespace: ns,
        };
        tracing::debug!(mount = %mount.path, kind = %mount.kind, kv = mount.kv_version, "vault: mount");
        self.mounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(mount.clone());
        Ok(Some(mount))
    }

    /// Read what `r` points at.
    pub async fn read(&self, r: &Reference) -> Result<Fetched, Failure> {
        let ns = r.namespace.as_deref();
        let mount = match r.kv {
            Some(_) => None,
            None => self.mount_of(&r.path, ns).await?,
        };
        let kv = r.kv.or(mount.as_ref().map(|m| m.kv_version)).unwrap_or(0);
        let (api_path, label) = if kv == 2 {
            let (mpath, rel) = match &mount {
                Some(m) => (
                    m.path.clone(),
                    r.path
                        .strip_prefix(m.path.as_str())
                        .unwrap_or("")
                        .to_string(),
                ),
                None => match r.path.split_once('/') {
                    Some((m, rel)) => (format!("{m}/"), rel.to_string()),
                    None => (format!("{}/", r.path), String::new()),
                },
            };
            if rel.is_empty() {
                return Err(Failure::invalid_input(format!(
                    "{r}: names the KV v2 mount {mpath} itself, not a secret in it"
                )));
            }
            // `secret/data/app` and `secret/app` both mean the secret `app` of mount `secret/`.
            let rel = rel.strip_prefix("data/").unwrap_or(&rel).to_string();
            let mut p = format!("{mpath}data/{rel}");
            if let Some(v) = &r.version {
                if !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Failure::invalid_input(format!(
                        "{r}: version={v} is not a number"
                    )));
                }
                p.push_str(&format!("?version={v}"));
            }
            (p, format!("kv v2 mount={mpath} path={rel}"))
        } else {
            if r.version.is_some() {
                return Err(Failure::invalid_input(format!(
                    "{r}: version= needs a KV v2 mount"
                )));
            }
            let label = match (&mount, kv) {
                (Some(m), 1) => format!("kv v1 mount={}", m.path),
                (Some(m), _) => format!("{} mount={}", m.kind, m.path),
                (None, _) => "path".to_string(),
            };
            (r.path.clone(), format!("{label} path={}", r.path))
        };
        let key = (
            ns.or(self.namespace.as_deref()).map(str::to_string),
            api_path.clone(),
        );
        let cell = {
            let mut reads = self.reads.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(reads.entry(key).or_default())
        };
        cell.get_or_init(|| self.read_api(r, api_path, label, kv))
            .await
            .clone()
    }

    async fn read_api(
        &self,
        r: &Reference,
        api_path: String,
        label: String,
        kv: u8,
    ) -> Result<Fetched, Failure> {
        let ns = r.namespace.as_deref();
        let what = format!("vault read {}", r.path);
        let resp = http::send(&self.deadline, &what, || self.request(&api_path, ns)).await?;
        match resp.status {
            200 => {}
            404 => {
                let detail = match resp.json() {
                    Some(v)
                        if v["data"]["metadata"]["deletion_time"]
                            .as_str()
                            .is_some_and(|t| !t.is_empty()) =>
                    {
                        " (the version is deleted)".to_string()
                    }
                    Some(v) if v["data"]["metadata"]["destroyed"].as_bool() == Some(true) => {
                        " (the version is destroyed)".to_string()
                    }
                    _ => String::new(),
                };
                return Ok(Fetched::NotFound(format!(
                    "secret not found: vault {label} (HTTP 404){detail}"
                )));
            }
            401 | 403 => {
                return Err(Failure::credentials(format!(
                    "vault read of {} refused (HTTP {}{}): check the token's policies",
                    r.path,
                    resp.status,
                    short_error(&resp.body)
                )));
            }
            s => {
                return Err(Failure::failed(format!(
                    "vault read of {} failed (HTTP {s}{})",
                    r.path,
                    short_error(&resp.body)
                )));
            }
        }
        let v: Value = serde_json::from_slice(&resp.body).map_err(|e| {
            Failure::failed(format!(
                "vault read of {}: the response is not JSON: {e}",
                r.path
            ))
        })?;
        let (data, lease) = if kv == 2 {
            let data = v["data"]["data"].clone();
            if data.is_null() {
                return Ok(Fetched::NotFound(format!(
                    "secret not found: vault {label} (no data: deleted or destroyed version)"
                )));
            }
            (data, None)
        } else {
            let lease_id = v["lease_id"].as_str().unwrap_or_default();
            let lease = (!lease_id.is_empty()).then(|| Lease {
                lease_id: lease_id.to_string(),
                lease_duration: v["lease_duration"].as_u64().unwrap_or(0),
                renewable: v["renewable"].as_bool().unwrap_or(false),
            });
            (v["data"].clone(), lease)
        };
        if data.is_null() {
            return Ok(Fetched::NotFound(format!(
                "secret not found: vault {label} (the response has no data)"
            )));
        }
        tracing::debug!(path = %r.path, source = %label, leased = lease.is_some(), "vault: read");
        Ok(Fetched::Found(Document::new(data, lease)))
    }
}

/// Retry policy: REQUESTS, with a bounded number of attempts when there is no deadline.
pub(crate) fn policy(deadline: &Deadline) -> RetryPolicy {
    RetryPolicy {
        max_attempts: deadline.limit().is_none().then_some(8),
        ..RetryPolicy::REQUESTS
    }
}

/// The JSON of a 2xx answer; a refusal (400, 401, 403) is rejected credentials, anything else
/// a failure, each with Vault's `errors`. (429 and 5xx were retried by [`http::send`].)
fn answer(what: &str, resp: http::Response) -> Result<Value, Failure> {
    let detail = short_error(&resp.body);
    match resp.status {
        200..=299 => serde_json::from_slice(&resp.body)
            .map_err(|e| Failure::failed(format!("{what}: the answer is not JSON: {e}"))),
        code @ (400 | 401 | 403) => Err(Failure::credentials(format!(
            "{what}: rejected (HTTP {code}{detail})"
        ))),
        code => Err(Failure::failed(format!(
            "{what}: failed (HTTP {code}{detail})"
        ))),
    }
}

/// A JSON array of strings as `a,b`.
fn strings(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        let r = |status, body: &str| http::Response {
            status,
            headers: Default::default(),
            body: body.as_bytes().to_vec(),
        };
        let f = answer("login", r(403, r#"{"errors":["permission denied"]}"#)).unwrap_err();
        assert_eq!(f.code, initbox_runtime::Code::CREDENTIALS);
        assert!(
            f.message.contains("rejected (HTTP 403: permission denied)"),
            "{}",
            f.message
        );
        let f = answer("login", r(404, "{}")).unwrap_err();
        assert_eq!(f.code, initbox_runtime::Code::FAILED);
        assert_eq!(
            answer("x", r(200, r#"{"auth":{}}"#)).unwrap()["auth"],
            serde_json::json!({})
        );
        assert_eq!(strings(&serde_json::json!(["a", "b"])), "a,b");
    }
}
