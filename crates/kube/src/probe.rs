//! The probe the wait engine runs for a `k8s://` target. Its first attempt lists the objects and
//! starts a watch from the list's resourceVersion in the background; later attempts judge the
//! objects the watch keeps current, so a change is seen as soon as the API server sends it, with
//! one request open instead of a poll per attempt.
//!
//! The watch follows the API's rules: bookmarks move the resourceVersion on; "410 Gone" (as an
//! HTTP status or an ERROR event) means the version was compacted away, so it lists again; a stream
//! the server ends is resumed. Where RBAC grants list but not watch, it says so once and polls
//! with a list every [`POLL`] instead. A 403 on list, or a 401 after reading the token again, ends
//! the wait with a message naming the verb and the resource.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use initbox_runtime::Failure;
use initbox_runtime::wait::{NotReady, Probe, ProbeFuture};
use serde_json::Value;
use tokio::time::Instant;

use crate::client::{ApiError, Client};
use crate::ready::{self, Verdict};
use crate::target::{KubeTarget, Resource};

/// How often to list when watching is forbidden.
pub const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Watching,
    Polling,
}

struct State {
    resource: Option<Resource>,
    phase: Phase,
    objects: BTreeMap<String, Value>,
    fatal: Option<Failure>,
    last_list: Option<Instant>,
}

pub struct KubeProbe {
    target: KubeTarget,
    client: Arc<Client>,
    namespace: String,
    state: Arc<Mutex<State>>,
    /// Signalled by the watcher on every change it applies.
    changed: Arc<tokio::sync::Notify>,
    /// How long an attempt waits for the watch to bring a change before it reports "not yet".
    hold: Duration,
}

fn key(o: &Value) -> String {
    let ns = o
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    format!("{ns}/{}", ready::name_of(o))
}

fn rv_of(o: &Value) -> Option<&str> {
    o.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
}

impl KubeProbe {
    /// `namespace` is the default for a target that names none.
    pub fn new(target: KubeTarget, client: Arc<Client>, namespace: &str) -> KubeProbe {
        let namespace = target
            .namespace
            .clone()
            .unwrap_or_else(|| namespace.to_string());
        KubeProbe {
            target,
            client,
            namespace,
            state: Arc::new(Mutex::new(State {
                resource: None,
                phase: Phase::Start,
                objects: BTreeMap::new(),
                fatal: None,
                last_list: None,
            })),
            changed: Arc::new(tokio::sync::Notify::new()),
            hold: Duration::ZERO,
        }
    }

    /// Let an attempt wait up to `hold` for the watch to bring the change it waits for, so it is
    /// seen the moment it arrives rather than at the next attempt (keep it below the per-attempt
    /// timeout).
    pub fn with_hold(mut self, hold: Duration) -> Self {
        self.hold = hold;
        self
    }

    /// The resource with its version known (discovery for `PLURAL.GROUP`).
    async fn resource(&self) -> Result<Resource, NotReady> {
        if let Some(r) = self.state.lock().unwrap().resource.clone() {
            return Ok(r);
        }
        let (mut r, _, _) = self.target.watched();
        if r.version.is_none() {
            let v = self
                .client
                .preferred_version(&r.group)
                .await
                .map_err(|e| match e.code() {
                    Some(404) => NotReady::retry(format!(
                        "the API server does not serve group {} (CRD not installed yet?)",
                        r.group
                    )),
                    _ => self.api_failure(&e, "get", &r),
                })?;
            r.version = Some(v);
        }
        self.state.lock().unwrap().resource = Some(r.clone());
        Ok(r)
    }

    /// What an error of `verb` on `r` means for the wait.
    fn api_failure(&self, e: &ApiError, verb: &str, r: &Resource) -> NotReady {
        api_failure(&self.client, &self.namespace, e, verb, r)
    }

    async fn list(&self, r: &Resource) -> Result<String, NotReady> {
        let (_, name, selector) = self.target.watched();
        let (items, rv) = self
            .client
            .list(
                &r.collection(&self.namespace),
                name.as_deref(),
                selector.as_deref(),
            )
            .await
            .map_err(|e| match e.code() {
                Some(404) => NotReady::retry(format!(
                    "the API server does not serve {} (CRD not installed yet?)",
                    r.qualified()
                )),
                _ => self.api_failure(&e, "list", r),
            })?;
        let mut st = self.state.lock().unwrap();
        st.objects = items.into_iter().map(|o| (key(&o), o)).collect();
        st.last_list = Some(Instant::now());
        Ok(rv)
    }

    fn judge(&self) -> Result<String, NotReady> {
        let st = self.state.lock().unwrap();
        let objects: Vec<&Value> = st.objects.values().collect();
        match ready::evaluate(&self.target, &objects) {
            Verdict::Ready(d) => Ok(d),
            Verdict::NotYet(why) => Err(NotReady::Retry(why)),
            // The engine names the target before the message.
            Verdict::Failed(why) => Err(NotReady::Fatal(Failure::failed(why))),
        }
    }

    async fn attempt(&self) -> Result<String, NotReady> {
        let r = self.resource().await?;
        let phase = {
            let mut st = self.state.lock().unwrap();
            if let Some(f) = st.fatal.take() {
                return Err(NotReady::Fatal(f));
            }
            st.phase
        };
        match phase {
            Phase::Start => {
                let rv = self.list(&r).await?;
                self.state.lock().unwrap().phase = Phase::Watching;
                let watcher = Watcher {
                    target: self.target.clone(),
                    client: Arc::clone(&self.client),
                    namespace: self.namespace.clone(),
                    state: Arc::clone(&self.state),
                    changed: Arc::clone(&self.changed),
                    resource: r,
                };
                tokio::spawn(watcher.run(rv));
            }
            Phase::Polling => {
                let due = self
                    .state
                    .lock()
                    .unwrap()
                    .last_list
                    .is_none_or(|t| t.elapsed() >= POLL);
                if due {
                    self.list(&r).await?;
                }
            }
            Phase::Watching => return self.hold_for_change().await,
        }
        self.judge()
    }

    /// Judge the watched objects; while not ready, wait for the next change up to `hold`.
    async fn hold_for_change(&self) -> Result<String, NotReady> {
        let until = Instant::now() + self.hold;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut st = self.state.lock().unwrap();
                if let Some(f) = st.fatal.take() {
                    return Err(NotReady::Fatal(f));
                }
                if st.phase != Phase::Watching {
                    drop(st);
                    return self.judge();
                }
            }
            match self.judge() {
                Err(NotReady::Retry(why)) if Instant::now() < until => {
                    if tokio::time::timeout_at(until, changed).await.is_err() {
                        return Err(NotReady::Retry(why));
                    }
                }
                other => return other,
            }
        }
    }
}

fn api_failure(client: &Client, ns: &str, e: &ApiError, verb: &str, r: &Resource) -> NotReady {
    match e {
        ApiError::Status { code: 401, .. } => NotReady::Fatal(Failure::credentials(format!(
            "the API server rejected the credentials of the {} ({e})",
            client.source
        ))),
        ApiError::Status {
            code: 403, message, ..
        } => NotReady::Fatal(Failure::env_refused(format!(
            "forbidden to {verb} {} in namespace '{ns}': the Role needs verbs get, list, \
             watch on resource '{}' in apiGroup '{}' (print it with --print-rbac){}",
            r.qualified(),
            r.plural,
            r.group,
            if message.is_empty() {
                String::new()
            } else {
                format!("; server: {message}")
            }
        ))),
        other => NotReady::retry(format!("{verb} {}: {other}", r.qualified())),
    }
}

impl Probe for KubeProbe {
    fn target(&self) -> String {
        self.target.raw.clone()
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.attempt())
    }
}

/// The background watch of one target.
struct Watcher {
    target: KubeTarget,
    client: Arc<Client>,
    namespace: String,
    state: Arc<Mutex<State>>,
    changed: Arc<tokio::sync::Notify>,
    resource: Resource,
}

/// Wake a waiting attempt when the watcher ends, whatever the path.
impl Drop for Watcher {
    fn drop(&mut self) {
        self.changed.notify_waiters();
    }
}

enum StreamEnd {
    /// The server ended the stream (timeoutSeconds): resume from the last version.
    Closed,
    /// 410 Gone: list again.
    Gone,
    Broken(String),
    /// An error that ends the wait (recorded in the state).
    Fatal,
}

impl Watcher {
    fn fail(&self, e: &ApiError, verb: &str) -> bool {
        if let NotReady::Fatal(f) =
            api_failure(&self.client, &self.namespace, e, verb, &self.resource)
        {
            self.state.lock().unwrap().fatal = Some(f);
            return true;
        }
        false
    }

    async fn run(self, mut rv: String) {
        let (_, name, selector) = self.target.watched();
        let collection = self.resource.collection(&self.namespace);
        let mut relist = false;
        loop {
            if relist {
                match self
                    .client
                    .list(&collection, name.as_deref(), selector.as_deref())
                    .await
                {
                    Ok((items, new_rv)) => {
                        tracing::debug!(
                            "{}: listed again at resourceVersion {new_rv}",
                            self.target.raw
                        );
                        let mut st = self.state.lock().unwrap();
                        st.objects = items.into_iter().map(|o| (key(&o), o)).collect();
                        rv = new_rv;
                        relist = false;
                        drop(st);
                        self.changed.notify_waiters();
                    }
                    Err(e) => {
                        if self.fail(&e, "list") {
                            return;
                        }
                        tracing::debug!("{}: list: {e}", self.target.raw);
                        tokio::time::sleep(POLL).await;
                        continue;
                    }
                }
            }
            let resp = match self
                .client
                .watch(&collection, name.as_deref(), selector.as_deref(), &rv)
                .await
            {
                Ok(r) => r,
                Err(ApiError::Status {
                    code: 403, message, ..
                }) => {
                    tracing::warn!(
                        "{}: watching {} is forbidden ({message}); polling with list every {} \
                         instead (grant the 'watch' verb to see changes at once)",
                        self.target.raw,
                        self.resource.qualified(),
                        initbox_runtime::duration::human(POLL)
                    );
                    self.state.lock().unwrap().phase = Phase::Polling;
                    return;
                }
                Err(ApiError::Status { code: 410, .. }) => {
                    relist = true;
                    continue;
                }
                Err(e) => {
                    if self.fail(&e, "watch") {
                        return;
                    }
                    tracing::debug!("{}: watch: {e}", self.target.raw);
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            match self.stream(resp, &mut rv).await {
                StreamEnd::Closed => {}
                StreamEnd::Fatal => return,
                StreamEnd::Gone => {
                    tracing::debug!("{}: resourceVersion {rv} is gone (410)", self.target.raw);
                    relist = true;
                }
                StreamEnd::Broken(why) => {
                    tracing::debug!("{}: watch stream: {why}", self.target.raw);
                    tokio::time::sleep(POLL / 4).await;
                }
            }
        }
    }

    async fn stream(&self, mut resp: reqwest::Response, rv: &mut String) -> StreamEnd {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => return StreamEnd::Closed,
                Err(e) => return StreamEnd::Broken(e.to_string()),
            };
            buf.extend_from_slice(&chunk);
            if buf.len() > 64 * 1024 * 1024 {
                return StreamEnd::Broken("event larger than 64 MiB".into());
            }
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let ev: Value = match serde_json::from_slice(&line) {
                    Ok(v) => v,
                    Err(e) => return StreamEnd::Broken(format!("event is not JSON: {e}")),
                };
                let kind = ev.get("type").and_then(Value::as_str).unwrap_or("");
                let obj = ev.get("object").cloned().unwrap_or(Value::Null);
                match kind {
                    "ADDED" | "MODIFIED" => {
                        if let Some(v) = rv_of(&obj) {
                            *rv = v.to_string();
                        }
                        self.state.lock().unwrap().objects.insert(key(&obj), obj);
                        self.changed.notify_waiters();
                    }
                    "DELETED" => {
                        if let Some(v) = rv_of(&obj) {
                            *rv = v.to_string();
                        }
                        self.state.lock().unwrap().objects.remove(&key(&obj));
                        self.changed.notify_waiters();
                    }
                    "BOOKMARK" => {
                        if let Some(v) = rv_of(&obj) {
                            *rv = v.to_string();
                        }
                    }
                    "ERROR" => {
                        let code = obj.get("code").and_then(Value::as_u64).unwrap_or(0);
                        if code == 410 {
                            return StreamEnd::Gone;
                        }
                        let e = crate::client::status_error(
                            code as u16,
                            &serde_json::to_vec(&obj).unwrap_or_default(),
                        );
                        if self.fail(&e, "watch") {
                            return StreamEnd::Fatal;
                        }
                        return StreamEnd::Broken(e.to_string());
                    }
                    other => return StreamEnd::Broken(format!("unknown event type '{other}'")),
                }
            }
        }
    }
}
