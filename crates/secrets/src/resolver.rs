//! Resolution of references: one lazily created client per backend (so a run that only reads
//! Kubernetes never needs a Vault address), one Vault login per run, identical reads merged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use futures_util::stream::{self, StreamExt};
use initbox_runtime::{Deadline, Failure};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::aws::{Aws, AwsArgs};
use crate::k8s::{K8sArgs, Kube};
use crate::reference::{Backend, Reference};
use crate::value::{Document, Fetched, SecretValue};
use crate::vault::{Vault, VaultArgs};

/// Per-request timeout unless the caller sets another.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How many reads run at once in a batch.
pub const CONCURRENCY: usize = 16;

/// The backend flags (Vault, AWS, Kubernetes), ready to `#[command(flatten)]` into any applet.
/// Every flag is prefixed with its backend (`--vault-*`, `--aws-*`, `--k8s-*`) and has an
/// `INITBOX_` environment variable.
#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    #[command(flatten)]
    pub vault: VaultArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub k8s: K8sArgs,
    /// Timeout of each HTTP request (set by the embedding applet).
    #[arg(skip = DEFAULT_REQUEST_TIMEOUT)]
    pub request_timeout: Duration,
}

impl Default for BackendArgs {
    fn default() -> Self {
        BackendArgs {
            vault: VaultArgs::default(),
            aws: AwsArgs::default(),
            k8s: K8sArgs::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

type DocKey = (
    Backend,
    String,
    Option<String>,
    Option<String>,
    Option<u8>,
    Option<String>,
    Option<String>,
);
type DocCell = Arc<OnceCell<Result<Arc<Fetched>, Failure>>>;

/// Resolves references against the backends. Cheap to clone (shared state); all clones share
/// one Vault login and one read cache.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

struct Inner {
    args: BackendArgs,
    deadline: Deadline,
    vault: OnceCell<Result<Arc<Vault>, Failure>>,
    aws: OnceCell<Result<Arc<Aws>, Failure>>,
    k8s: OnceCell<Result<Arc<Kube>, Failure>>,
    docs: Mutex<HashMap<DocKey, DocCell>>,
}

impl Resolver {
    /// A resolver; nothing is contacted until the first reference of a backend is resolved.
    /// Every request is bounded by `deadline`.
    pub fn new(args: &BackendArgs, deadline: Deadline) -> Self {
        Resolver {
            inner: Arc::new(Inner {
                args: args.clone(),
                deadline,
                vault: OnceCell::new(),
                aws: OnceCell::new(),
                k8s: OnceCell::new(),
                docs: Mutex::new(HashMap::new()),
            }),
        }
    }

    async fn vault(&self) -> Result<Arc<Vault>, Failure> {
        let i = &self.inner;
        i.vault
            .get_or_init(|| async {
                Vault::connect(&i.args.vault, i.args.request_timeout, i.deadline)
                    .await
                    .map(Arc::new)
            })
            .await
            .clone()
    }

    /// The Vault token of this run, if a Vault login happened (for `--token-out`).
    pub fn vault_token(&self) -> Option<String> {
        match self.inner.vault.get() {
            Some(Ok(v)) => Some(v.token().to_string()),
            _ => None,
        }
    }

    /// Log in to Vault now (e.g. for `--token-out` without any Vault reference).
    pub async fn vault_login(&self) -> Result<String, Failure> {
        Ok(self.vault().await?.token().to_string())
    }

    async fn aws(&self) -> Result<Arc<Aws>, Failure> {
        let i = &self.inner;
        i.aws
            .get_or_init(|| async {
                Aws::new(&i.args.aws, i.args.request_timeout, i.deadline).map(Arc::new)
            })
            .await
            .clone()
    }

    async fn k8s(&self) -> Result<Arc<Kube>, Failure> {
        let i = &self.inner;
        i.k8s
            .get_or_init(|| async {
                Kube::new(&i.args.k8s, i.args.request_timeout, i.deadline).map(Arc::new)
            })
            .await
            .clone()
    }

    async fn fetch_uncached(&self, r: &Reference) -> Result<Fetched, Failure> {
        match r.backend {
            Backend::Vault => self.vault().await?.read(r).await,
            Backend::AwsSecretsManager | Backend::AwsSsm => self.aws().await?.read(r).await,
            Backend::Kubernetes => self.k8s().await?.read(r).await,
            Backend::File => {
                let path = std::path::Path::new(&r.path);
                // Not found is the backend's "no such secret" (exit 1, or optional/default);
                // every other problem is the runtime's one secret-file error.
                if !path.exists() && !path.is_symlink() {
                    return Ok(Fetched::NotFound(format!(
                        "secret not found: no file {}",
                        r.path
                    )));
                }
                let label = r.to_string();
                let (p, raw) = (path.to_path_buf(), r.raw);
                let bytes = tokio::task::spawn_blocking(move || {
                    initbox_runtime::input::read_secret_bytes(&p, &label)
                })
                .await
                .map_err(|e| Failure::failed(format!("{r}: {e}")))??;
                let text = String::from_utf8(bytes).map_err(|_| {
                    Failure::invalid_input(format!("{r}: the file is not UTF-8 text"))
                })?;
                let text = if raw {
                    text
                } else {
                    initbox_runtime::input::strip_one_newline(&text).to_string()
                };
                Ok(Fetched::Found(Document::new(Value::String(text), None)))
            }
            Backend::Env => match std::env::var(&r.path) {
                Ok(v) => Ok(Fetched::Found(Document::new(Value::String(v), None))),
                Err(std::env::VarError::NotPresent) => Ok(Fetched::NotFound(format!(
                    "secret not found: environment variable {} is not set",
                    r.path
                ))),
                Err(std::env::VarError::NotUnicode(_)) => Err(Failure::failed(format!(
                    "{r}: the variable is not UTF-8 text"
                ))),
            },
        }
    }

    /// Fetch the document `r` lives in; concurrent and repeated reads of one document are merged.
    async fn fetch(&self, r: &Reference) -> Result<Arc<Fetched>, Failure> {
        let key: DocKey = (
            r.backend,
            r.path.clone(),
            r.version.clone(),
            r.stage.clone(),
            r.kv,
            r.namespace.clone(),
            r.aws_scope(),
        );
        let cell = {
            let mut docs = self.inner.docs.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(docs.entry(key).or_default())
        };
        cell.get_or_init(|| async { self.fetch_uncached(r).await.map(Arc::new) })
            .await
            .clone()
    }

    /// Resolve one reference. A missing secret or key fails, unless the reference is optional:
    /// then its `default=` (or [`SecretValue::absent`]) is the value.
    pub async fn resolve(&self, r: &Reference) -> Result<SecretValue, Failure> {
        let fetched = self.fetch(r).await?;
        let missing = match &*fetched {
            Fetched::Found(doc) => match doc.try_select(r)? {
                Ok(v) => return Ok(v),
                Err(missing_key) => missing_key,
            },
            Fetched::NotFound(msg) => Failure::failed(format!("{r}: {msg}")),
        };
        if !r.optional {
            return Err(missing);
        }
        tracing::info!(reference = %r, "optional secret missing: {}", missing.message);
        Ok(match &r.default {
            Some(d) => SecretValue::from_text(d),
            None => SecretValue::absent(),
        })
    }

    /// Resolve every reference (up to [`CONCURRENCY`] at once), all or nothing: on any failure
    /// each one is logged and the first (in input order) is returned.
    pub async fn resolve_all(&self, refs: &[Reference]) -> Result<Vec<SecretValue>, Failure> {
        // Futures collected first: a closure inside the stream trips the Send check of callers.
        let futures: Vec<_> = refs.iter().map(|r| self.resolve(r)).collect();
        let results: Vec<Result<SecretValue, Failure>> =
            stream::iter(futures).buffered(CONCURRENCY).collect().await;
        let mut seen: Vec<&Failure> = Vec::new();
        for f in results.iter().filter_map(|r| r.as_ref().err()) {
            if !seen.iter().any(|s| s.message == f.message) {
                seen.push(f);
            }
        }
        if let Some((first, rest)) = seen.split_first() {
            // The runtime reports the first; the others are logged here.
            for f in rest {
                tracing::error!(code = f.code.as_i32(), "{}", f.message);
            }
            let mut f = (*first).clone();
            if !rest.is_empty() {
                f.message = format!("{} (and {} more failures)", f.message, rest.len());
            }
            return Err(f);
        }
        results.into_iter().collect()
    }
}
