//! `k8s://` targets: the wiring of `initbox-kube` into wait-for (one client for every target,
//! made at the first one) and `--print-rbac`.

use std::sync::Arc;

use initbox_kube::{Client, KubeArgs, KubeProbe, KubeTarget};
use initbox_runtime::wait::Probe;
use initbox_runtime::{Failure, Outcome};

/// The client and default namespace, once the first `k8s://` target needs them.
pub type Shared = Option<(Arc<Client>, String)>;

pub fn probe(
    url: &str,
    args: &crate::Args,
    shared: &mut Shared,
) -> Result<Arc<dyn Probe>, Failure> {
    let target = KubeTarget::parse(url).map_err(Failure::usage)?;
    if shared.is_none() {
        *shared = Some(args.kube.client(args.wait.attempt_timeout)?);
    }
    let (client, ns) = shared.as_ref().expect("set above");
    // An attempt waits for the watch's next change for up to half the attempt timeout: a change
    // is seen as it arrives, not at the next attempt.
    Ok(Arc::new(
        KubeProbe::new(target, Arc::clone(client), ns).with_hold(args.wait.attempt_timeout / 2),
    ))
}

/// Print the Role and RoleBinding the `k8s://` targets need.
pub fn print_rbac(targets: &[String], kube: &KubeArgs, sa: &str) -> Result<Outcome, Failure> {
    let parsed = targets
        .iter()
        .map(|t| t.trim())
        .filter(|t| initbox_kube::is_target(t))
        .map(|t| KubeTarget::parse(t).map_err(Failure::usage))
        .collect::<Result<Vec<_>, _>>()?;
    if parsed.is_empty() {
        return Err(Failure::usage("--print-rbac needs k8s:// targets"));
    }
    if sa.is_empty()
        || !sa
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err(Failure::usage(format!(
            "--print-rbac: '{sa}' is not a service-account name"
        )));
    }
    let yaml =
        initbox_kube::rbac::manifests(&parsed, &kube.namespace_offline(), sa, "initbox-wait-for");
    use std::io::Write;
    std::io::stdout()
        .write_all(yaml.as_bytes())
        .map_err(|e| Failure::failed(format!("stdout: {e}")))?;
    Ok(Outcome::OK)
}
