//! `k8s://` targets:
//!
//! ```text
//! k8s://[NAMESPACE/]RESOURCE/NAME[?PARAMS]          one object
//! k8s://[NAMESPACE/]RESOURCE?selector=LABELS[&…]    every object the label selector matches
//! ```
//!
//! RESOURCE is a kubectl name or short name (`job`, `pods`, `deploy`, `sts`, `ds`, `svc`, …) or,
//! for any other resource (custom resources included), `PLURAL.GROUP` (version by discovery) or
//! `PLURAL.VERSION.GROUP`. PARAMS: `condition=TYPE[=STATUS]`, `jsonpath={.PATH}[=VALUE]`,
//! `exists`, `deleted`, `count=N|all` (with a selector: how many must be ready; default all, at
//! least one), `selector=` (label selector, as in `kubectl -l`).

use std::fmt;

use crate::ready::{JsonPath, Want};

/// An API resource: where its collection lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// "" for the core group.
    pub group: String,
    /// None until discovery found the preferred version.
    pub version: Option<String>,
    pub plural: String,
    /// What the readiness rules call it.
    pub kind: Kind,
}

/// The kinds with readiness rules of their own; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Job,
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    /// A Service: its EndpointSlices are what is watched.
    Service,
    Other,
}

impl Resource {
    fn builtin(group: &str, version: &str, plural: &str, kind: Kind) -> Resource {
        Resource {
            group: group.into(),
            version: Some(version.into()),
            plural: plural.into(),
            kind,
        }
    }

    /// `plural.group` as RBAC and kubectl write it (`jobs.batch`, `pods`).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The collection path in `namespace`.
    pub fn collection(&self, namespace: &str) -> String {
        let version = self.version.as_deref().unwrap_or("v1");
        let ns = percent_encoding::utf8_percent_encode(namespace, PATH_SEGMENT);
        if self.group.is_empty() {
            format!("/api/{version}/namespaces/{ns}/{}", self.plural)
        } else {
            format!(
                "/apis/{}/{version}/namespaces/{ns}/{}",
                self.group, self.plural
            )
        }
    }
}

const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// Resolve a kubectl resource name.
pub fn resource(name: &str) -> Result<Resource, String> {
    let n = name.to_ascii_lowercase();
    let r = match n.as_str() {
        "job" | "jobs" | "jobs.batch" => Resource::builtin("batch", "v1", "jobs", Kind::Job),
        "pod" | "pods" | "po" => Resource::builtin("", "v1", "pods", Kind::Pod),
        "deployment" | "deployments" | "deploy" | "deployments.apps" => {
            Resource::builtin("apps", "v1", "deployments", Kind::Deployment)
        }
        "statefulset" | "statefulsets" | "sts" | "statefulsets.apps" => {
            Resource::builtin("apps", "v1", "statefulsets", Kind::StatefulSet)
        }
        "daemonset" | "daemonsets" | "ds" | "daemonsets.apps" => {
            Resource::builtin("apps", "v1", "daemonsets", Kind::DaemonSet)
        }
        "replicaset" | "replicasets" | "rs" | "replicasets.apps" => {
            Resource::builtin("apps", "v1", "replicasets", Kind::ReplicaSet)
        }
        "service" | "services" | "svc" => Resource::builtin("", "v1", "services", Kind::Service),
        "endpointslice" | "endpointslices" | "endpointslices.discovery.k8s.io" => {
            Resource::builtin("discovery.k8s.io", "v1", "endpointslices", Kind::Other)
        }
        "configmap" | "configmaps" | "cm" => Resource::builtin("", "v1", "configmaps", Kind::Other),
        "secret" | "secrets" => Resource::builtin("", "v1", "secrets", Kind::Other),
        "persistentvolumeclaim" | "persistentvolumeclaims" | "pvc" => {
            Resource::builtin("", "v1", "persistentvolumeclaims", Kind::Other)
        }
        "serviceaccount" | "serviceaccounts" | "sa" => {
            Resource::builtin("", "v1", "serviceaccounts", Kind::Other)
        }
        "cronjob" | "cronjobs" | "cj" => Resource::builtin("batch", "v1", "cronjobs", Kind::Other),
        "ingress" | "ingresses" | "ing" => {
            Resource::builtin("networking.k8s.io", "v1", "ingresses", Kind::Other)
        }
        "poddisruptionbudget" | "poddisruptionbudgets" | "pdb" => {
            Resource::builtin("policy", "v1", "poddisruptionbudgets", Kind::Other)
        }
        other => {
            // PLURAL.GROUP or PLURAL.VERSION.GROUP (custom resources).
            let Some((plural, rest)) = other.split_once('.') else {
                return Err(format!(
                    "unknown resource '{name}' (expected job, pod, deployment, statefulset, \
                     daemonset, replicaset, service, configmap, secret, pvc, … or PLURAL.GROUP \
                     for other resources, e.g. certificates.cert-manager.io)"
                ));
            };
            let (version, group) = match rest.split_once('.') {
                Some((v, g))
                    if v.starts_with('v') && v[1..].starts_with(|c: char| c.is_ascii_digit()) =>
                {
                    (Some(v.to_string()), g.to_string())
                }
                _ => (None, rest.to_string()),
            };
            if !group.contains('.') || !valid_dns(&group) || !valid_dns(plural) {
                return Err(format!(
                    "'{name}' is not PLURAL.GROUP (e.g. certificates.cert-manager.io)"
                ));
            }
            Resource {
                group,
                version,
                plural: plural.into(),
                kind: Kind::Other,
            }
        }
    };
    Ok(r)
}

fn valid_dns(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// How many objects of a selector must be ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Every matching object (and at least one).
    All,
    AtLeast(usize),
}

/// One parsed target.
#[derive(Debug, Clone)]
pub struct KubeTarget {
    /// As the user wrote it (no secrets in a k8s:// target).
    pub raw: String,
    pub namespace: Option<String>,
    pub resource: Resource,
    pub name: Option<String>,
    pub selector: Option<String>,
    pub want: Want,
    pub count: Count,
}

impl fmt::Display for KubeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl KubeTarget {
    /// Parse a `k8s://` target; errors are one-line usage messages.
    pub fn parse(url: &str) -> Result<KubeTarget, String> {
        let rest = url
            .split_once("://")
            .filter(|(s, _)| s.eq_ignore_ascii_case("k8s") || s.eq_ignore_ascii_case("kubernetes"))
            .map(|(_, r)| r)
            .ok_or_else(|| format!("'{url}': expected k8s://[NAMESPACE/]RESOURCE/NAME"))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, q),
            None => (rest, ""),
        };
        let mut want = None;
        let mut selector = None;
        let mut count = None;
        let set = |want: &mut Option<Want>, w: Want| -> Result<(), String> {
            if want.replace(w).is_some() {
                return Err(format!(
                    "'{url}': give one of condition=, jsonpath=, exists, deleted"
                ));
            }
            Ok(())
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            // Query-string rules: '+' is a space (`selector=app+in+(a,b)`).
            let v = v.replace('+', " ");
            let v = percent_encoding::percent_decode_str(&v)
                .decode_utf8()
                .map_err(|_| format!("'{url}': bad percent-encoding in {k}="))?
                .into_owned();
            match k {
                "condition" => {
                    let (t, s) = match v.split_once('=') {
                        Some((t, s)) => (t.to_string(), s.to_string()),
                        None => (v.clone(), "True".to_string()),
                    };
                    if t.is_empty() || s.is_empty() {
                        return Err(format!("'{url}': condition= needs TYPE[=STATUS]"));
                    }
                    set(&mut want, Want::Condition { kind: t, status: s })?;
                }
                "jsonpath" => {
                    let jp = JsonPath::parse(&v).map_err(|e| format!("'{url}': jsonpath: {e}"))?;
                    set(&mut want, Want::JsonPath(jp))?;
                }
                "exists" | "created" if v.is_empty() => set(&mut want, Want::Exists)?,
                "deleted" | "delete" if v.is_empty() => set(&mut want, Want::Deleted)?,
                "selector" | "l" if !v.is_empty() => selector = Some(v),
                "count" => {
                    count = Some(match v.as_str() {
                        "all" => Count::All,
                        n => {
                            Count::AtLeast(n.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                                format!(
                                    "'{url}': count '{n}' is not 'all' or a number of at least 1"
                                )
                            })?)
                        }
                    })
                }
                other => {
                    return Err(format!(
                        "'{url}': unknown parameter '{other}' (expected selector, count, \
                         condition, jsonpath, exists, deleted)"
                    ));
                }
            }
        }
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "'{url}': expected k8s://[NAMESPACE/]RESOURCE/NAME or k8s://[NAMESPACE/]RESOURCE?selector=…"
            ));
        }
        let (namespace, res, name) = match (selector.is_some(), parts.as_slice()) {
            (false, [r, n]) => (None, *r, Some(*n)),
            (false, [ns, r, n]) => (Some(*ns), *r, Some(*n)),
            (true, [r]) => (None, *r, None),
            (true, [ns, r]) => (Some(*ns), *r, None),
            (true, _) => {
                return Err(format!(
                    "'{url}': with selector= give no name: k8s://[NAMESPACE/]RESOURCE?selector=…"
                ));
            }
            (false, _) => {
                return Err(format!(
                    "'{url}': missing name (k8s://[NAMESPACE/]RESOURCE/NAME, or ?selector=LABELS)"
                ));
            }
        };
        for (what, v) in [("namespace", namespace), ("name", name)] {
            if let Some(v) = v
                && !valid_dns(v)
            {
                return Err(format!("'{url}': {what} '{v}' is not a lowercase DNS name"));
            }
        }
        let resource = resource(res).map_err(|e| format!("'{url}': {e}"))?;
        if count.is_some() && selector.is_none() && resource.kind != Kind::Service {
            return Err(format!("'{url}': count= needs selector= (or a service)"));
        }
        let want = want.unwrap_or(Want::Ready);
        if resource.kind == Kind::Service
            && want != Want::Ready
            && want != Want::Exists
            && want != Want::Deleted
        {
            return Err(format!(
                "'{url}': a service waits for ready endpoints; use services/NAME?exists or a \
                 condition on another resource"
            ));
        }
        Ok(KubeTarget {
            raw: url.to_string(),
            namespace: namespace.map(str::to_string),
            resource,
            name: name.map(str::to_string),
            selector,
            want,
            count: count.unwrap_or(if resource_kind_counts_endpoints(res) {
                Count::AtLeast(1)
            } else {
                Count::All
            }),
        })
    }

    /// What is listed and watched: the object itself, or a Service's EndpointSlices.
    pub fn watched(&self) -> (Resource, Option<String>, Option<String>) {
        if self.resource.kind == Kind::Service && self.want == Want::Ready {
            let name = self.name.clone().unwrap_or_default();
            let mut r = resource("endpointslices").expect("builtin");
            r.kind = Kind::Service;
            return (r, None, Some(format!("kubernetes.io/service-name={name}")));
        }
        (
            self.resource.clone(),
            self.name.clone(),
            self.selector.clone(),
        )
    }
}

fn resource_kind_counts_endpoints(res: &str) -> bool {
    matches!(
        res.to_ascii_lowercase().as_str(),
        "service" | "services" | "svc"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let t = KubeTarget::parse("k8s://job/migrate").unwrap();
        assert_eq!(t.resource.qualified(), "jobs.batch");
        assert_eq!(t.name.as_deref(), Some("migrate"));
        assert_eq!(t.namespace, None);
        let t = KubeTarget::parse("k8s://shop/deploy/api").unwrap();
        assert_eq!(t.namespace.as_deref(), Some("shop"));
        assert_eq!(
            t.resource.collection("shop"),
            "/apis/apps/v1/namespaces/shop/deployments"
        );
        let t = KubeTarget::parse("k8s://pods?selector=app%3Dapi,tier!%3Ddb&count=2").unwrap();
        assert_eq!(t.selector.as_deref(), Some("app=api,tier!=db"));
        assert_eq!(t.count, Count::AtLeast(2));
        let t = KubeTarget::parse("k8s://pods?selector=app+in+(a,b)").unwrap();
        assert_eq!(t.selector.as_deref(), Some("app in (a,b)"));
        let t = KubeTarget::parse("k8s://ns/pods?selector=app=api").unwrap();
        assert_eq!(t.namespace.as_deref(), Some("ns"));
        assert_eq!(t.count, Count::All);
        let t =
            KubeTarget::parse("k8s://certificates.cert-manager.io/web?condition=Ready").unwrap();
        assert_eq!(t.resource.version, None);
        assert_eq!(t.resource.group, "cert-manager.io");
        let t =
            KubeTarget::parse("k8s://widgets.v1beta1.example.com/w?jsonpath={.status.phase}=Up")
                .unwrap();
        assert_eq!(t.resource.version.as_deref(), Some("v1beta1"));
        assert_eq!(
            t.resource.collection("d"),
            "/apis/example.com/v1beta1/namespaces/d/widgets"
        );
        let t = KubeTarget::parse("k8s://svc/api").unwrap();
        let (r, name, sel) = t.watched();
        assert_eq!(r.plural, "endpointslices");
        assert_eq!(name, None);
        assert_eq!(sel.as_deref(), Some("kubernetes.io/service-name=api"));
        assert_eq!(t.count, Count::AtLeast(1));
        assert_eq!(
            KubeTarget::parse("k8s://cm/x?deleted").unwrap().want,
            Want::Deleted
        );
    }

    #[test]
    fn refusals() {
        for (bad, needle) in [
            ("k8s://job", "missing name"),
            ("k8s://gizmo/x", "unknown resource 'gizmo'"),
            ("k8s://job/x?condition=", "TYPE"),
            ("k8s://job/x?exists&deleted", "one of"),
            ("k8s://job/x?count=2", "needs selector"),
            ("k8s://pods?selector=a=b&count=0", "count '0'"),
            ("k8s://a/b/c/d", "missing name"),
            ("k8s://job/Bad_Name", "lowercase"),
            ("k8s://job/x?foo=1", "unknown parameter 'foo'"),
            ("k8s://job//x", "expected"),
            ("k8s://svc/x?condition=Ready", "endpoints"),
        ] {
            let e = KubeTarget::parse(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
