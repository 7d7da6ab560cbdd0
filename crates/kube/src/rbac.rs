//! `--print-rbac`: the Role and RoleBinding the `k8s://` targets need, one pair per namespace:
//! get, list and watch on each resource (watch is optional: without it the wait polls).

use std::collections::BTreeMap;

use crate::target::KubeTarget;

/// The YAML documents, ready for `kubectl apply -f -`.
pub fn manifests(
    targets: &[KubeTarget],
    default_ns: &str,
    service_account: &str,
    name: &str,
) -> String {
    // namespace -> apiGroup -> resources
    let mut need: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for t in targets {
        let ns = t
            .namespace
            .clone()
            .unwrap_or_else(|| default_ns.to_string());
        let (r, _, _) = t.watched();
        let list = need
            .entry(ns)
            .or_default()
            .entry(r.group.clone())
            .or_default();
        if !list.contains(&r.plural) {
            list.push(r.plural.clone());
            list.sort();
        }
    }
    let mut out = String::new();
    for (ns, groups) in &need {
        out.push_str(&format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {name}\n  namespace: {ns}\nrules:\n"
        ));
        for (group, resources) in groups {
            out.push_str(&format!(
                "  - apiGroups: [\"{group}\"]\n    resources: [{}]\n    verbs: [\"get\", \"list\", \"watch\"]\n",
                resources
                    .iter()
                    .map(|r| format!("\"{r}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out.push_str(&format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {name}\n  namespace: {ns}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: {name}\nsubjects:\n  - kind: ServiceAccount\n    name: {service_account}\n    namespace: {sa_ns}\n",
            sa_ns = default_ns
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_role_per_namespace() {
        let t: Vec<KubeTarget> = [
            "k8s://job/migrate",
            "k8s://deploy/api",
            "k8s://svc/db",
            "k8s://other/pods?selector=a=b",
            "k8s://job/seed",
        ]
        .iter()
        .map(|s| KubeTarget::parse(s).unwrap())
        .collect();
        let y = manifests(&t, "shop", "app", "initbox-wait");
        assert!(y.contains("namespace: shop\nrules:\n  - apiGroups: [\"apps\"]\n    resources: [\"deployments\"]"), "{y}");
        assert!(
            y.contains("apiGroups: [\"batch\"]\n    resources: [\"jobs\"]\n"),
            "{y}"
        );
        assert!(
            y.contains("apiGroups: [\"discovery.k8s.io\"]\n    resources: [\"endpointslices\"]"),
            "{y}"
        );
        assert!(
            y.contains(
                "namespace: other\nrules:\n  - apiGroups: [\"\"]\n    resources: [\"pods\"]"
            ),
            "{y}"
        );
        assert_eq!(y.matches("kind: RoleBinding").count(), 2);
        assert!(y.contains("  - kind: ServiceAccount\n    name: app\n    namespace: shop\n"));
    }
}
