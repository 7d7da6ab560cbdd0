//! Readiness rules, per kind, as `kubectl rollout status`, `kubectl wait` and kstatus define them,
//! on the objects' JSON as the API server returns it.
//!
//! - Job: `Complete=True` is ready; `Failed=True` ends the wait at once (exit 1) with its reason.
//! - Pod: `Ready=True`. With a selector, finished pods (Succeeded/Failed, e.g. evicted) are left
//!   out of the count; a named pod that failed ends the wait.
//! - Deployment: the controller saw the latest generation, every replica is updated, no old
//!   replica is left and the updated ones are available; `ProgressDeadlineExceeded` ends the wait.
//! - StatefulSet: latest generation seen and every replica ready; with `RollingUpdate` also every
//!   pod at the update revision (or, with a partition, the pods above it updated); with `OnDelete`
//!   pods update only when deleted, so ready replicas are enough.
//! - DaemonSet: latest generation, every scheduled pod updated (not with `OnDelete`) and available.
//! - Service: ready endpoints in its EndpointSlices (`conditions.ready` absent counts as ready).
//! - Anything else: its `Ready` condition when it has one, else that it exists; or the
//!   `condition=`/`jsonpath=` asked for. A condition only counts once it describes the current
//!   generation (`observedGeneration`, of the condition or of the status).

use serde_json::Value;

use crate::target::{Count, Kind, KubeTarget};

/// What the target must reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// The kind's own rule.
    Ready,
    Condition {
        kind: String,
        status: String,
    },
    JsonPath(JsonPath),
    Exists,
    Deleted,
}

/// What one look found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ready(String),
    NotYet(String),
    /// Can never become ready (a failed Job, a stalled rollout).
    Failed(String),
}

/// A kubectl-style JSONPath without filters: `{.status.phase}`, `.status.conditions[0].type`,
/// with an optional `=VALUE` to compare with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    pub text: String,
    pub steps: Vec<Step>,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Field(String),
    Index(usize),
}

impl JsonPath {
    pub fn parse(s: &str) -> Result<JsonPath, String> {
        let (path, value) = if let Some(rest) = s.strip_prefix('{') {
            let (p, after) = rest
                .split_once('}')
                .ok_or_else(|| format!("'{s}': unclosed '{{'"))?;
            let value = match after {
                "" => None,
                v => Some(
                    v.strip_prefix('=')
                        .ok_or_else(|| format!("'{s}': expected =VALUE after '}}'"))?
                        .to_string(),
                ),
            };
            (p, value)
        } else {
            match s.split_once('=') {
                Some((p, v)) => (p, Some(v.to_string())),
                None => (s, None),
            }
        };
        let path = path.trim();
        let body = path
            .strip_prefix('.')
            .ok_or_else(|| format!("'{s}': a path starts with '.' (e.g. {{.status.phase}})"))?;
        if body.contains(['?', '*', '@', '$']) || body.contains("..") {
            return Err(format!(
                "'{s}': filters, wildcards and recursive descent are not supported"
            ));
        }
        let mut steps = Vec::new();
        for part in body.split('.') {
            let (field, mut idx) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if field.is_empty() && idx.is_empty() {
                return Err(format!("'{s}': empty path segment"));
            }
            if !field.is_empty() {
                steps.push(Step::Field(field.to_string()));
            }
            while let Some(rest) = idx.strip_prefix('[') {
                let (n, after) = rest
                    .split_once(']')
                    .ok_or_else(|| format!("'{s}': unclosed '['"))?;
                let n = n
                    .parse()
                    .map_err(|_| format!("'{s}': index '{n}' is not a number"))?;
                steps.push(Step::Index(n));
                idx = after;
            }
            if !idx.is_empty() {
                return Err(format!("'{s}': unexpected '{idx}'"));
            }
        }
        Ok(JsonPath {
            text: format!("{{{path}}}"),
            steps,
            value,
        })
    }

    pub fn get<'a>(&self, obj: &'a Value) -> Option<&'a Value> {
        let mut v = obj;
        for s in &self.steps {
            v = match s {
                Step::Field(f) => v.get(f)?,
                Step::Index(i) => v.get(*i)?,
            };
        }
        Some(v)
    }

    fn verdict(&self, obj: &Value) -> Verdict {
        let Some(found) = self.get(obj).filter(|v| !v.is_null()) else {
            return Verdict::NotYet(format!("{} is not set", self.text));
        };
        let text = match found {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match &self.value {
            None => Verdict::Ready(format!("{} = {text}", self.text)),
            Some(want) if *want == text => Verdict::Ready(format!("{} = {text}", self.text)),
            Some(want) => Verdict::NotYet(format!("{} is '{text}', not '{want}'", self.text)),
        }
    }
}

fn int(obj: &Value, path: &[&str]) -> Option<i64> {
    let mut v = obj;
    for p in path {
        v = v.get(p)?;
    }
    v.as_i64()
}

fn text<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = obj;
    for p in path {
        v = v.get(p)?;
    }
    v.as_str()
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj.get("status")?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn condition_is(obj: &Value, kind: &str, status: &str) -> bool {
    condition(obj, kind)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case(status))
}

fn reason_of(c: &Value) -> String {
    let reason = c.get("reason").and_then(Value::as_str).unwrap_or("");
    let message = c.get("message").and_then(Value::as_str).unwrap_or("");
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_string(),
        (true, false) => message.to_string(),
        (true, true) => "no reason given".to_string(),
    }
}

/// The controller has not yet seen the latest spec.
fn stale(obj: &Value) -> Option<Verdict> {
    let generation = int(obj, &["metadata", "generation"])?;
    let observed = int(obj, &["status", "observedGeneration"]).unwrap_or(0);
    (observed < generation).then(|| {
        Verdict::NotYet(format!(
            "waiting for the controller to observe generation {generation} (at {observed})"
        ))
    })
}

pub fn name_of(obj: &Value) -> &str {
    text(obj, &["metadata", "name"]).unwrap_or("?")
}

/// The verdict on one object.
pub fn object(kind: Kind, want: &Want, obj: &Value) -> Verdict {
    // A failed Job is terminal, whatever else was asked (unless its failure is what was asked).
    if kind == Kind::Job
        && !matches!(want, Want::Condition { kind: k, .. } if k == "Failed")
        && !matches!(want, Want::JsonPath(_))
        && condition_is(obj, "Failed", "True")
    {
        let c = condition(obj, "Failed").expect("checked");
        return Verdict::Failed(format!("Job {} failed: {}", name_of(obj), reason_of(c)));
    }
    match want {
        Want::Condition { kind: k, status } => condition_verdict(obj, k, status),
        Want::JsonPath(jp) => jp.verdict(obj),
        Want::Exists => Verdict::Ready("exists".into()),
        Want::Deleted => Verdict::NotYet(format!("{} still exists", name_of(obj))),
        Want::Ready => ready(kind, obj),
    }
}

fn condition_verdict(obj: &Value, kind: &str, status: &str) -> Verdict {
    let Some(c) = condition(obj, kind) else {
        return Verdict::NotYet(format!("no {kind} condition yet"));
    };
    let generation = int(obj, &["metadata", "generation"]);
    let seen = c
        .get("observedGeneration")
        .and_then(Value::as_i64)
        .or_else(|| int(obj, &["status", "observedGeneration"]));
    if let (Some(g), Some(s)) = (generation, seen)
        && s < g
    {
        return Verdict::NotYet(format!(
            "{kind} describes generation {s}, not the current {g}"
        ));
    }
    let is = c.get("status").and_then(Value::as_str).unwrap_or("");
    if is.eq_ignore_ascii_case(status) {
        Verdict::Ready(format!("{kind}={is}"))
    } else {
        Verdict::NotYet(format!("{kind}={is} ({})", reason_of(c)))
    }
}

fn ready(kind: Kind, o: &Value) -> Verdict {
    let spec_replicas = || int(o, &["spec", "replicas"]).unwrap_or(1);
    let st = |f: &str| int(o, &["status", f]).unwrap_or(0);
    match kind {
        Kind::Job => {
            if condition_is(o, "Complete", "True") {
                Verdict::Ready(format!("Complete ({} succeeded)", st("succeeded")))
            } else {
                Verdict::NotYet(format!(
                    "not complete: {} active, {} succeeded, {} failed",
                    st("active"),
                    st("succeeded"),
                    st("failed")
                ))
            }
        }
        Kind::Pod => {
            let phase = text(o, &["status", "phase"]).unwrap_or("Pending");
            if phase == "Failed" {
                let why = text(o, &["status", "reason"]).unwrap_or("a container failed");
                return Verdict::Failed(format!("Pod {} failed: {why}", name_of(o)));
            }
            if condition_is(o, "Ready", "True") {
                return Verdict::Ready("Ready".into());
            }
            // The first waiting container's reason (CrashLoopBackOff, ImagePullBackOff…).
            let waiting = o
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str))
                });
            Verdict::NotYet(match waiting {
                Some(w) => format!("not Ready ({phase}, {w})"),
                None => format!("not Ready ({phase})"),
            })
        }
        Kind::Deployment => {
            if let Some(v) = stale(o) {
                return v;
            }
            if let Some(c) = condition(o, "Progressing")
                && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
            {
                return Verdict::Failed(format!(
                    "Deployment {} rollout stalled: {}",
                    name_of(o),
                    reason_of(c)
                ));
            }
            let want = spec_replicas();
            let (updated, total, available) = (
                st("updatedReplicas"),
                st("replicas"),
                st("availableReplicas"),
            );
            if updated < want {
                Verdict::NotYet(format!("{updated} of {want} replicas updated"))
            } else if total > updated {
                Verdict::NotYet(format!(
                    "{} old replicas pending termination",
                    total - updated
                ))
            } else if available < updated {
                Verdict::NotYet(format!(
                    "{available} of {updated} updated replicas available"
                ))
            } else {
                Verdict::Ready(format!("{updated} replicas rolled out"))
            }
        }
        Kind::StatefulSet => {
            if let Some(v) = stale(o) {
                return v;
            }
            let want = spec_replicas();
            let ready = st("readyReplicas");
            if ready < want {
                return Verdict::NotYet(format!("{ready} of {want} replicas ready"));
            }
            let strategy = text(o, &["spec", "updateStrategy", "type"]).unwrap_or("RollingUpdate");
            if strategy == "OnDelete" {
                return Verdict::Ready(format!("{ready} replicas ready (OnDelete)"));
            }
            let updated = st("updatedReplicas");
            if let Some(partition) =
                int(o, &["spec", "updateStrategy", "rollingUpdate", "partition"])
                && partition > 0
            {
                let need = (want - partition).max(0);
                return if updated < need {
                    Verdict::NotYet(format!(
                        "{updated} of {need} pods above partition {partition} updated"
                    ))
                } else {
                    Verdict::Ready(format!("partitioned roll out: {updated} updated"))
                };
            }
            let (cur, upd) = (
                text(o, &["status", "currentRevision"]).unwrap_or(""),
                text(o, &["status", "updateRevision"]).unwrap_or(""),
            );
            if cur != upd {
                Verdict::NotYet(format!(
                    "rolling update: {updated} of {want} pods at revision {upd}"
                ))
            } else {
                Verdict::Ready(format!("{ready} replicas ready at revision {upd}"))
            }
        }
        Kind::DaemonSet => {
            if let Some(v) = stale(o) {
                return v;
            }
            let desired = st("desiredNumberScheduled");
            let strategy = text(o, &["spec", "updateStrategy", "type"]).unwrap_or("RollingUpdate");
            let updated = st("updatedNumberScheduled");
            if strategy != "OnDelete" && updated < desired {
                return Verdict::NotYet(format!("{updated} of {desired} pods updated"));
            }
            let available = st("numberAvailable");
            if available < desired {
                Verdict::NotYet(format!("{available} of {desired} pods available"))
            } else {
                Verdict::Ready(format!("{available} pods available"))
            }
        }
        Kind::ReplicaSet => {
            if let Some(v) = stale(o) {
                return v;
            }
            let want = spec_replicas();
            let available = st("availableReplicas");
            if available < want {
                Verdict::NotYet(format!("{available} of {want} replicas available"))
            } else {
                Verdict::Ready(format!("{available} replicas available"))
            }
        }
        Kind::Service | Kind::Other => {
            if condition(o, "Ready").is_some() {
                condition_verdict(o, "Ready", "True")
            } else if let Some(v) = stale(o) {
                v
            } else {
                Verdict::Ready("exists".into())
            }
        }
    }
}

/// Ready endpoints across a Service's EndpointSlices.
fn endpoints(slices: &[&Value]) -> (usize, usize) {
    let (mut ready, mut total) = (0, 0);
    for s in slices {
        for e in s
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            total += 1;
            if e.pointer("/conditions/ready").and_then(Value::as_bool) != Some(false) {
                ready += 1;
            }
        }
    }
    (ready, total)
}

/// The verdict on a target, from the objects the list/watch currently holds for it.
pub fn evaluate(t: &KubeTarget, objects: &[&Value]) -> Verdict {
    match &t.want {
        Want::Exists => {
            return match objects.len() {
                0 => Verdict::NotYet("not found (yet)".into()),
                1 => Verdict::Ready(format!("{} exists", name_of(objects[0]))),
                n => Verdict::Ready(format!("{n} exist")),
            };
        }
        Want::Deleted => {
            return match objects {
                [] => Verdict::Ready("gone".into()),
                [o] => Verdict::NotYet(format!("{} still exists", name_of(o))),
                many => Verdict::NotYet(format!("{} still exist", many.len())),
            };
        }
        _ => {}
    }
    if t.resource.kind == Kind::Service {
        let (ready, total) = endpoints(objects);
        let need = match t.count {
            Count::AtLeast(n) => n,
            Count::All => total.max(1),
        };
        return if objects.is_empty() {
            Verdict::NotYet("no EndpointSlice yet".into())
        } else if ready >= need {
            Verdict::Ready(format!("{ready} ready endpoints"))
        } else {
            Verdict::NotYet(format!(
                "{ready} of {need} endpoints ready ({total} in all)"
            ))
        };
    }
    if t.name.is_some() {
        return match objects.first() {
            None => Verdict::NotYet("not found (yet)".into()),
            Some(o) => object(t.resource.kind, &t.want, o),
        };
    }
    // A selector: finished pods are not counted.
    let live: Vec<&&Value> = objects
        .iter()
        .filter(|o| {
            t.resource.kind != Kind::Pod
                || !matches!(text(o, &["status", "phase"]), Some("Succeeded" | "Failed"))
        })
        .collect();
    let mut ready = 0;
    let mut first_not = None;
    for o in &live {
        match object(t.resource.kind, &t.want, o) {
            Verdict::Ready(_) => ready += 1,
            Verdict::Failed(why) if t.count == Count::All => return Verdict::Failed(why),
            Verdict::Failed(why) | Verdict::NotYet(why) => {
                if first_not.is_none() {
                    first_not = Some(format!("{}: {why}", name_of(o)));
                }
            }
        }
    }
    let sel = t.selector.as_deref().unwrap_or("");
    match t.count {
        Count::All if live.is_empty() => Verdict::NotYet(format!("nothing matches '{sel}' yet")),
        Count::All if ready == live.len() => Verdict::Ready(format!("all {ready} ready")),
        Count::All => Verdict::NotYet(format!(
            "{ready} of {} ready; {}",
            live.len(),
            first_not.unwrap_or_default()
        )),
        Count::AtLeast(n) if ready >= n => Verdict::Ready(format!("{ready} ready (at least {n})")),
        Count::AtLeast(n) => Verdict::NotYet(format!(
            "{ready} of at least {n} ready ({} match '{sel}')",
            live.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> KubeTarget {
        KubeTarget::parse(s).unwrap()
    }

    #[test]
    fn jsonpath() {
        let jp = JsonPath::parse("{.status.conditions[1].type}=B").unwrap();
        let o = json!({"status": {"conditions": [{"type": "A"}, {"type": "B"}]}});
        assert_eq!(
            jp.verdict(&o),
            Verdict::Ready("{.status.conditions[1].type} = B".into())
        );
        let jp = JsonPath::parse(".status.replicas=3").unwrap();
        assert!(matches!(
            jp.verdict(&json!({"status": {"replicas": 2}})),
            Verdict::NotYet(_)
        ));
        assert!(matches!(
            jp.verdict(&json!({"status": {"replicas": 3}})),
            Verdict::Ready(_)
        ));
        assert!(JsonPath::parse("{.items[?(@.x)]}").is_err());
        assert!(JsonPath::parse("status").is_err());
    }

    #[test]
    fn job_failed_is_terminal() {
        let o = json!({"metadata": {"name": "m"}, "status": {"conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}});
        let v = evaluate(&t("k8s://job/m"), &[&o]);
        assert_eq!(
            v,
            Verdict::Failed(
                "Job m failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
                    .into()
            )
        );
        assert!(matches!(
            evaluate(&t("k8s://job/m?condition=Failed"), &[&o]),
            Verdict::Ready(_)
        ));
    }

    #[test]
    fn statefulset_on_delete() {
        let o = json!({"metadata": {"name": "s", "generation": 2},
            "spec": {"replicas": 2, "updateStrategy": {"type": "OnDelete"}},
            "status": {"observedGeneration": 2, "readyReplicas": 2, "currentRevision": "a", "updateRevision": "b"}});
        assert!(matches!(
            evaluate(&t("k8s://sts/s"), &[&o]),
            Verdict::Ready(_)
        ));
        let mut r = o.clone();
        r["spec"]["updateStrategy"] = json!({"type": "RollingUpdate"});
        assert!(matches!(
            evaluate(&t("k8s://sts/s"), &[&r]),
            Verdict::NotYet(_)
        ));
    }

    #[test]
    fn stale_conditions_do_not_count() {
        let o = json!({"metadata": {"name": "c", "generation": 3},
            "status": {"conditions": [{"type": "Ready", "status": "True", "observedGeneration": 2}]}});
        assert!(matches!(
            evaluate(&t("k8s://widgets.example.com/c?condition=Ready"), &[&o]),
            Verdict::NotYet(_)
        ));
    }
}
