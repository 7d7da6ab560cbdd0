//! End-to-end tests of `initbox wait-for k8s://…`.
//!
//! No Kubernetes API server can run on the test machine, so these run against a STAND-IN:
//! tests/fixtures/k8s/apiserver.py, which follows the documented REST API (HTTPS with bearer
//! tokens, lists with resourceVersion and paging, watches as chunked newline-delimited JSON event
//! streams with bookmarks, "410 Gone" ERROR events after compaction, 401 and 403 with the real
//! Status bodies, discovery). Every target kind is driven through its states by putting objects
//! the way the controllers would write them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fixture::Fixture;
use common::{assert_one_line_error, initbox, run, wait_child};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);
const NS: &str = "shop";

struct Api {
    server: Fixture,
    port: u16,
    dir: PathBuf,
}

impl Api {
    fn start(tag: &str) -> Api {
        let dir = std::env::temp_dir().join(format!("initbox-k8s-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sa")).unwrap();
        // A cluster CA and a serving certificate it signed, as a real cluster has: the kit's
        // (tests/common/pki.rs).
        common::pki::ca_and_localhost(&dir, "kubernetes-ca");
        let (cert, key) =
            common::pki::leaf(&dir, "apiserver", "IP:127.0.0.1,DNS:kubernetes.default.svc");
        std::fs::copy(dir.join("ca.crt"), dir.join("sa/ca.crt")).unwrap();
        std::fs::write(dir.join("sa/token"), "token-one\n").unwrap();
        std::fs::write(dir.join("sa/namespace"), NS).unwrap();
        let server = Fixture::start(
            "k8s/apiserver.py",
            &[
                "--token".as_ref(),
                "token-one".as_ref(),
                "--cert".as_ref(),
                cert.as_os_str(),
                "--key".as_ref(),
                key.as_os_str(),
            ],
            "the Kubernetes API stand-in",
            |c| {
                c.stderr(Stdio::null());
            },
        );
        let port = server.port;
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: stand-in\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority: sa/ca.crt\ncontexts:\n- name: test\n  context:\n    cluster: stand-in\n    user: waiter\n    namespace: {NS}\nusers:\n- name: waiter\n  user:\n    tokenFile: sa/token\n"
        );
        std::fs::write(dir.join("kubeconfig"), kubeconfig).unwrap();
        Api { server, port, dir }
    }

    fn send(&mut self, line: &str) -> String {
        self.server.send(line)
    }

    fn put(&mut self, obj: Value) {
        self.send(&format!("put {obj}"));
    }

    /// `initbox wait-for` with the kubeconfig (a token file, the stand-in's CA).
    fn wait_for(&self) -> Command {
        let mut c = initbox();
        for v in [
            "KUBECONFIG",
            "KUBERNETES_SERVICE_HOST",
            "KUBERNETES_SERVICE_PORT",
        ] {
            c.env_remove(v);
        }
        common::without_proxies(&mut c);
        c.arg("wait-for")
            .arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"));
        c
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        // The stand-in stops when `server` drops, after this.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": NS, "generation": 1})
}

fn job(name: &str, conditions: Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(name),
           "spec": {"backoffLimit": 2},
           "status": {"active": 1, "conditions": conditions}})
}

fn complete() -> Value {
    json!([{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True", "reason": "CompletionsReached"}])
}

fn pod(name: &str, app: &str, phase: &str, ready: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
           "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
}

#[test]
fn a_job_is_waited_for_from_before_it_exists_to_complete_then_the_command_runs() {
    let mut api = Api::start("job");
    let marker = api.dir.join("ran");
    let mut c = api.wait_for();
    c.args(["-t", "30s", "k8s://job/migrate", "--", "sh", "-c"])
        .arg(format!("echo ran > {}", marker.display()));
    let mut child = spawn(c);
    common::still_waiting(&mut child, Duration::from_millis(1000));
    api.put(job("migrate", json!([])));
    common::still_waiting(&mut child, Duration::from_millis(800));
    assert!(!marker.exists());
    let flipped = Instant::now();
    api.put(job("migrate", complete()));
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        flipped.elapsed() < Duration::from_secs(3),
        "seen through the watch"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");
    // One list, then the watch: no polling.
    let lists: u32 = api.send("count list")[3..].parse().unwrap();
    assert_eq!(lists, 1, "{}", r.all());
}

#[test]
fn a_failed_job_ends_the_wait_at_once_with_its_reason() {
    let mut api = Api::start("jobfail");
    api.put(job("migrate", json!([])));
    let marker = api.dir.join("ran");
    let mut c = api.wait_for();
    c.args(["-t", "60s", "k8s://shop/jobs/migrate", "--", "touch"])
        .arg(&marker);
    let mut child = spawn(c);
    common::still_waiting(&mut child, Duration::from_millis(800));
    let started = Instant::now();
    api.put(job(
        "migrate",
        json!([{"type": "FailureTarget", "status": "True"},
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
         "message": "Job has reached the specified backoff limit"}]),
    ));
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not at the deadline"
    );
    assert!(
        r.stderr
            .contains("BackoffLimitExceeded: Job has reached the specified backoff limit"),
        "{}",
        r.stderr
    );
    assert!(!marker.exists(), "a failed wait never runs the command");
}

#[test]
fn pods_by_selector_with_a_count_or_all() {
    let mut api = Api::start("pods");
    api.put(pod("api-1", "api", "Running", true));
    api.put(pod("api-2", "api", "Running", false));
    api.put(pod("api-3", "api", "Pending", false));
    api.put(pod("db-1", "db", "Running", false));
    let once = |api: &Api, t: &str| run(api.wait_for().args(["--once", t]), LIMIT);
    assert_eq!(
        once(&api, "k8s://pods?selector=app%3Dapi&count=1").code(),
        0
    );
    let r = once(&api, "k8s://pods?selector=app=api&count=2");
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("1 of at least 2 ready"), "{}", r.stderr);
    let r = once(&api, "k8s://pods?selector=app=api");
    assert_eq!(r.code(), 1);
    assert!(r.stderr.contains("1 of 3 ready"), "{}", r.stderr);
    // Set-based selectors select on the server.
    assert_eq!(once(&api, "k8s://pods?selector=app+in+(db)").code(), 1);
    assert_eq!(
        once(&api, "k8s://pods?selector=app+in+(db,api)&count=1").code(),
        0
    );
    assert_eq!(
        once(&api, "k8s://pods?selector=app%20notin%20(api)&count=1").code(),
        1
    );
    assert_eq!(once(&api, "k8s://pod/api-1").code(), 0);

    let mut c = api.wait_for();
    c.args(["-t", "30s", "k8s://pods?selector=app=api"]);
    let mut child = spawn(c);
    api.put(pod("api-2", "api", "Running", true));
    common::still_waiting(&mut child, Duration::from_millis(800));
    // An evicted pod (phase Failed) is not counted; its replacement is, once ready.
    api.put(pod("api-4", "api", "Pending", false));
    api.put(pod("api-3", "api", "Failed", false));
    common::still_waiting(&mut child, Duration::from_millis(800));
    api.put(pod("api-4", "api", "Running", true));
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("all 3 ready"), "{}", r.stderr);
}

fn deployment(
    generation: i64,
    observed: i64,
    updated: i64,
    total: i64,
    available: i64,
    progressing: &str,
) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "api", "namespace": NS, "generation": generation},
           "spec": {"replicas": 3},
           "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": total,
                      "availableReplicas": available, "readyReplicas": available,
                      "conditions": [{"type": "Progressing", "status": if progressing == "ProgressDeadlineExceeded" {"False"} else {"True"},
                                      "reason": progressing, "message": "ReplicaSet \"api-7d9\" has timed out progressing."}]}})
}

#[test]
fn a_deployment_rolls_out_through_its_states_or_stalls() {
    let mut api = Api::start("deploy");
    // Each state of a rollout, as the controller writes it, and what the wait says about it.
    for (state, says) in [
        (
            deployment(2, 1, 3, 3, 3, "NewReplicaSetAvailable"),
            "observe generation 2",
        ),
        (
            deployment(2, 2, 1, 4, 3, "ReplicaSetUpdated"),
            "1 of 3 replicas updated",
        ),
        (
            deployment(2, 2, 3, 4, 3, "ReplicaSetUpdated"),
            "1 old replicas pending termination",
        ),
        (
            deployment(2, 2, 3, 3, 2, "ReplicaSetUpdated"),
            "2 of 3 updated replicas available",
        ),
    ] {
        api.put(state);
        let r = run(api.wait_for().args(["--once", "k8s://deploy/api"]), LIMIT);
        assert_eq!(r.code(), 1, "{}", r.all());
        assert!(r.stderr.contains(says), "'{says}': {}", r.stderr);
    }
    let mut c = api.wait_for();
    c.args(["-t", "30s", "k8s://deploy/api"]);
    let mut child = spawn(c);
    common::still_waiting(&mut child, Duration::from_millis(700));
    api.put(deployment(2, 2, 3, 3, 3, "NewReplicaSetAvailable"));
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("3 replicas rolled out"), "{}", r.stderr);
    // A rollout past its progress deadline ends the wait (as `kubectl rollout status`).
    api.put(deployment(3, 3, 1, 4, 3, "ProgressDeadlineExceeded"));
    let r = run(
        api.wait_for().args(["-t", "30s", "k8s://deployment/api"]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(
        r.stderr
            .contains("rollout stalled: ProgressDeadlineExceeded"),
        "{}",
        r.stderr
    );
}

#[test]
fn statefulsets_with_rolling_update_and_on_delete_and_daemonsets() {
    let mut api = Api::start("sts");
    let sts = |name: &str, strategy: &str, ready: i64, cur: &str, upd: &str| {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
               "metadata": {"name": name, "namespace": NS, "generation": 4},
               "spec": {"replicas": 2, "updateStrategy": {"type": strategy}},
               "status": {"observedGeneration": 4, "replicas": 2, "readyReplicas": ready, "updatedReplicas": 1,
                          "currentRevision": cur, "updateRevision": upd}})
    };
    let once = |api: &Api, t: &str| run(api.wait_for().args(["--once", t]), LIMIT);
    api.put(sts("db", "RollingUpdate", 2, "db-1", "db-2"));
    api.put(sts("cache", "OnDelete", 2, "cache-1", "cache-2"));
    api.put(sts("queue", "OnDelete", 1, "q-1", "q-1"));
    let r = once(&api, "k8s://sts/db");
    assert_eq!(r.code(), 1);
    assert!(
        r.stderr.contains("1 of 2 pods at revision db-2"),
        "{}",
        r.stderr
    );
    // OnDelete: pods change only when deleted, so ready replicas are the rollout.
    assert_eq!(once(&api, "k8s://statefulset/cache").code(), 0);
    assert_eq!(once(&api, "k8s://statefulsets/queue").code(), 1);
    api.put(sts("db", "RollingUpdate", 2, "db-2", "db-2"));
    assert_eq!(once(&api, "k8s://sts/db").code(), 0);

    let ds = |updated: i64, available: i64| {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
               "metadata": {"name": "agent", "namespace": NS, "generation": 2},
               "status": {"observedGeneration": 2, "desiredNumberScheduled": 3,
                          "updatedNumberScheduled": updated, "numberAvailable": available}})
    };
    api.put(ds(2, 3));
    let r = once(&api, "k8s://ds/agent");
    assert_eq!(r.code(), 1);
    assert!(r.stderr.contains("2 of 3 pods updated"), "{}", r.stderr);
    api.put(ds(3, 3));
    assert_eq!(once(&api, "k8s://daemonset/agent").code(), 0);
}

#[test]
fn a_service_is_ready_with_ready_endpoints_in_its_endpointslices() {
    let mut api = Api::start("svc");
    let slice = |name: &str, ready: &[Option<bool>]| {
        let eps: Vec<Value> = ready
            .iter()
            .enumerate()
            .map(|(i, r)| match r {
                Some(r) => {
                    json!({"addresses": [format!("10.0.0.{i}")], "conditions": {"ready": r}})
                }
                None => json!({"addresses": [format!("10.0.0.{i}")]}),
            })
            .collect();
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": name, "namespace": NS, "labels": {"kubernetes.io/service-name": "api"}},
               "addressType": "IPv4", "endpoints": eps})
    };
    let mut c = api.wait_for();
    c.args(["-t", "30s", "k8s://svc/api"]);
    let mut child = spawn(c);
    common::still_waiting(&mut child, Duration::from_millis(700));
    api.put(slice("api-abc", &[Some(false)]));
    common::still_waiting(&mut child, Duration::from_millis(700));
    // An endpoint without conditions.ready counts as ready (the API's documented default).
    api.put(slice("api-def", &[None]));
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    let r = run(
        api.wait_for().args(["--once", "k8s://svc/api?count=2"]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
}

#[test]
fn custom_resources_conditions_jsonpath_exists_and_deleted() {
    let mut api = Api::start("cr");
    api.send("crd example.com v1 widgets Widget");
    let widget = |generation: i64, seen: i64, ready: &str, phase: &str| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
               "metadata": {"name": "w1", "namespace": NS, "generation": generation},
               "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready, "observedGeneration": seen, "reason": "Reconciling"}]}})
    };
    api.put(widget(2, 1, "True", "Up"));
    let once = |api: &Api, t: &str| run(api.wait_for().args(["--once", t]), LIMIT);
    // The Ready condition describes generation 1, not the current 2: not yet.
    let r = once(&api, "k8s://widgets.example.com/w1?condition=Ready");
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("generation 1"), "{}", r.stderr);
    api.put(widget(2, 2, "True", "Up"));
    assert_eq!(
        once(&api, "k8s://widgets.example.com/w1?condition=Ready").code(),
        0
    );
    assert_eq!(
        once(
            &api,
            "k8s://widgets.v1.example.com/w1?condition=Ready=False"
        )
        .code(),
        1
    );
    assert_eq!(
        once(
            &api,
            "k8s://widgets.example.com/w1?jsonpath=%7B.status.phase%7D=Up"
        )
        .code(),
        0
    );
    assert_eq!(
        once(
            &api,
            "k8s://widgets.example.com/w1?jsonpath={.status.phase}=Down"
        )
        .code(),
        1
    );
    // A group the server does not serve is "not yet" (the CRD may come), not an error.
    assert_eq!(
        once(&api, "k8s://gadgets.nowhere.example/g?exists").code(),
        1
    );

    api.put(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("settings"), "data": {}}),
    );
    assert_eq!(once(&api, "k8s://cm/settings?exists").code(), 0);
    assert_eq!(once(&api, "k8s://cm/other?exists").code(), 1);
    let mut c = api.wait_for();
    c.args(["-t", "30s", "k8s://configmap/settings?deleted"]);
    let mut child = spawn(c);
    common::still_waiting(&mut child, Duration::from_millis(700));
    api.send(&format!("delete v1 ConfigMap {NS} settings"));
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
}

#[test]
fn one_deadline_for_every_target() {
    let mut api = Api::start("deadline");
    api.put(job("a", json!([])));
    api.put(job("b", json!([])));
    let started = Instant::now();
    let r = run(
        api.wait_for().args([
            "-t",
            "1500ms",
            "k8s://job/a",
            "k8s://job/b",
            "k8s://pods?selector=x=y",
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "not 1.5 s per object"
    );
    assert!(
        r.stderr.contains("k8s://job/b") && r.stderr.contains("not complete"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_forbidden_watch_falls_back_to_polling() {
    let mut api = Api::start("nowatch");
    api.send("forbid watch jobs");
    api.put(job("migrate", json!([])));
    let mut c = api.wait_for();
    c.args(["-t", "30s", "k8s://job/migrate"]);
    let mut child = spawn(c);
    common::still_waiting(&mut child, Duration::from_millis(2500));
    api.put(job("migrate", complete()));
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stderr.contains("watching jobs.batch is forbidden"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("polling"), "{}", r.stderr);
    let lists: u32 = api.send("count list")[3..].parse().unwrap();
    assert!(
        (2..=8).contains(&lists),
        "about one list a second, got {lists}"
    );
}

#[test]
fn a_forbidden_list_names_the_verb_and_resource_and_prints_the_role() {
    let mut api = Api::start("nolist");
    api.send("forbid list jobs");
    let r = run(
        api.wait_for().args(["-t", "30s", "k8s://job/migrate"]),
        LIMIT,
    );
    assert_eq!(r.code(), 4, "{}", r.all());
    assert!(
        r.stderr
            .contains("k8s://job/migrate: forbidden to list jobs.batch in namespace 'shop'"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("apiGroup 'batch'") && r.stderr.contains("--print-rbac"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("cannot list resource \\\"jobs\\\"")
            || r.stderr.contains("cannot list resource \"jobs\""),
        "the server's Status message: {}",
        r.stderr
    );

    let r = run(
        initbox().args([
            "wait-for",
            "--k8s-namespace",
            "shop",
            "--print-rbac=app",
            "k8s://job/migrate",
            "k8s://deploy/api",
            "k8s://svc/db",
            "tcp://db:5432",
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stdout
            .contains("kind: Role\nmetadata:\n  name: initbox-wait-for\n  namespace: shop\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("  - apiGroups: [\"batch\"]\n    resources: [\"jobs\"]\n    verbs: [\"get\", \"list\", \"watch\"]"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("apiGroups: [\"discovery.k8s.io\"]\n    resources: [\"endpointslices\"]"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("subjects:\n  - kind: ServiceAccount\n    name: app\n    namespace: shop"),
        "{}",
        r.stdout
    );
    // The YAML is well-formed: Python's yaml reads it as two documents.
    let mut py = Command::new("python3");
    py.args(["-c", "import sys, yaml; d = list(yaml.safe_load_all(sys.stdin)); d = [x for x in d if x]; assert [x['kind'] for x in d] == ['Role', 'RoleBinding'], d"]);
    let out = common::output_with_stdin(&mut py, r.stdout.as_bytes());
    assert!(out.status.success(), "{}", common::text(&out));
}

#[test]
fn in_cluster_the_token_is_read_again_as_it_rotates() {
    let mut api = Api::start("rotate");
    api.put(job("migrate", json!([])));
    let sa = api.dir.join("sa");
    let in_cluster = |api: &Api| {
        let mut c = initbox();
        c.env_remove("KUBECONFIG")
            .env("HOME", &api.dir)
            .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", api.port.to_string())
            .env("INITBOX_K8S_SERVICEACCOUNT_DIR", &sa)
            .arg("wait-for");
        c
    };
    let mut c = in_cluster(&api);
    c.args(["-t", "30s", "k8s://job/migrate"]);
    let mut child = spawn(c);
    common::still_waiting(&mut child, Duration::from_millis(800));
    // The kubelet writes the new token; the server stops accepting the old one and ends the
    // watch, so the next request must carry the new token.
    std::fs::write(sa.join("token"), "token-two\n").unwrap();
    api.send("rotate token-two");
    common::still_waiting(&mut child, Duration::from_millis(800));
    api.put(job("migrate", complete()));
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    // A token the server no longer accepts: credentials rejected (exit 5), token not shown.
    api.send("rotate token-three");
    let r = run(
        in_cluster(&api).args(["-t", "30s", "k8s://job/migrate"]),
        LIMIT,
    );
    assert_eq!(r.code(), 5, "{}", r.all());
    assert!(
        r.stderr.contains("401") && r.stderr.contains("service account"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("token-two"), "{}", r.all());
}

#[test]
fn a_compacted_resource_version_is_listed_again() {
    let mut api = Api::start("gone");
    api.put(job("migrate", json!([])));
    let mut c = api.wait_for();
    c.args(["-t", "30s", "-v", "k8s://job/migrate"]);
    let mut child = spawn(c);
    common::still_waiting(&mut child, Duration::from_millis(800));
    // History is compacted and the watch ended; the change happens before the client is back,
    // so only a re-list after "410 Gone" can see it.
    api.send("compact");
    api.put(job("migrate", complete()));
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    let lists: u32 = api.send("count list")[3..].parse().unwrap();
    assert_eq!(lists, 2, "the first list and the re-list: {}", r.stderr);
}

#[test]
fn bad_targets_and_missing_configuration() {
    for (t, needle) in [
        ("k8s://job", "missing name"),
        ("k8s://gizmo/x", "unknown resource 'gizmo'"),
        ("k8s://pods?selector=a=b&count=0", "count '0'"),
    ] {
        let r = run(initbox().args(["wait-for", t]), LIMIT);
        assert_one_line_error(&r, 2, needle);
    }
    let r = run(
        initbox()
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("HOME", "/nonexistent")
            .args(["wait-for", "k8s://job/x"]),
        LIMIT,
    );
    assert_one_line_error(&r, 4, "no Kubernetes API");
}

/// tests/fixtures/ship/k8s_check.py (real Helm from helm-python-sdk, kubernetes-validate).
fn k8s_check(args: &[&str]) -> Value {
    let root = env!("CARGO_MANIFEST_DIR");
    let r = run(
        Command::new("python3")
            .arg(Path::new(root).join("tests/fixtures/ship/k8s_check.py"))
            .args(args)
            .current_dir(root),
        Duration::from_secs(150),
    );
    assert_eq!(
        r.code(),
        0,
        "k8s_check.py (tests/setup/30-ship.sh installs it): {}",
        r.stderr
    );
    serde_json::from_str(&r.stdout).unwrap()
}

#[test]
fn the_chart_helper_emits_the_rbac_that_print_rbac_prints() {
    // A chart using the library's initbox.waitFor with k8s:// targets and
    // initbox.waitForKubernetesRbac, rendered and linted by Helm, validated against the schemas.
    let out = k8s_check(&["chart", "tests/fixtures/k8s/chart", "charts/initbox"]);
    let render = &out["renders"][0];
    for v in render["validation"].as_array().unwrap() {
        assert!(
            v["error"].is_null(),
            "{} {}: {}",
            v["kind"],
            v["name"],
            v["error"]
        );
    }
    assert!(
        out["lint"][0]["errors"].as_array().unwrap().is_empty(),
        "{}",
        out["lint"]
    );
    let docs = render["docs"].as_array().unwrap();
    let find = |kind: &str| docs.iter().find(|d| d["kind"] == kind).unwrap();
    let init = &find("Deployment")["spec"]["template"]["spec"]["initContainers"][0];
    let targets: Vec<&str> = init["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|a| a.starts_with("k8s://"))
        .collect();
    assert_eq!(
        targets,
        [
            "k8s://job/shop-migrate",
            "k8s://deploy/api",
            "k8s://svc/api"
        ]
    );
    let r = run(
        initbox()
            .args(["wait-for", "--k8s-namespace", "shop", "--print-rbac=web"])
            .args(&targets),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let dir = std::env::temp_dir().join(format!("initbox-k8s-rbac-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rbac.yaml");
    std::fs::write(&file, &r.stdout).unwrap();
    let printed = k8s_check(&["files", file.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    let printed = &printed["files"][0];
    for v in printed["validation"].as_array().unwrap() {
        assert!(
            v["error"].is_null(),
            "--print-rbac {}: {}",
            v["kind"],
            v["error"]
        );
    }
    let pdocs = printed["docs"].as_array().unwrap();
    let role = pdocs.iter().find(|d| d["kind"] == "Role").unwrap();
    assert_eq!(
        role["rules"],
        find("Role")["rules"],
        "the helper and --print-rbac agree"
    );
    let binding = pdocs.iter().find(|d| d["kind"] == "RoleBinding").unwrap();
    assert_eq!(binding["subjects"], find("RoleBinding")["subjects"]);
}

#[test]
fn the_example_role_is_what_print_rbac_prints_for_its_targets() {
    let example = "examples/kubernetes/wait-for-kubernetes.yaml";
    let out = k8s_check(&["files", example]);
    let f = &out["files"][0];
    for v in f["validation"].as_array().unwrap() {
        assert!(
            v["error"].is_null(),
            "{example} {}: {}",
            v["kind"],
            v["error"]
        );
    }
    let docs = f["docs"].as_array().unwrap();
    let deploy = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let init = &deploy["spec"]["template"]["spec"]["initContainers"][0];
    let targets: Vec<&str> = init["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|a| a.starts_with("k8s://"))
        .collect();
    let r = run(
        initbox()
            .args(["wait-for", "--k8s-namespace", "shop", "--print-rbac=web"])
            .args(&targets),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let role = docs.iter().find(|d| d["kind"] == "Role").unwrap();
    let rules: Vec<String> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "  - apiGroups: [\"{}\"]\n    resources: [\"{}\"]\n",
                r["apiGroups"][0].as_str().unwrap(),
                r["resources"][0].as_str().unwrap()
            )
        })
        .collect();
    for rule in &rules {
        assert!(r.stdout.contains(rule.as_str()), "{rule} in {}", r.stdout);
    }
    assert_eq!(
        r.stdout.matches("apiGroups").count(),
        rules.len(),
        "{}",
        r.stdout
    );
}

#[test]
fn bookmarks_carry_the_resource_version_past_a_compaction() {
    let mut api = Api::start("bookmark");
    api.put(job("migrate", json!([])));
    let mut c = api.wait_for();
    c.args(["-t", "30s", "k8s://job/migrate"]);
    let mut child = spawn(c);
    common::still_waiting(&mut child, Duration::from_millis(500));
    // Other Jobs move the resourceVersion on; the watch (by name) gets no event for them, only
    // a BOOKMARK (every second from the stand-in) with the newer version.
    for i in 0..3 {
        api.put(job(&format!("other-{i}"), json!([])));
    }
    common::still_waiting(&mut child, Duration::from_millis(2500));
    // Compacted up to now and the watch ended: resuming from the bookmark's version works
    // without a re-list; from the version of the last event it would get 410 and list again.
    api.send("compact-to-now");
    common::still_waiting(&mut child, Duration::from_millis(500));
    api.put(job("migrate", complete()));
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    let lists: u32 = api.send("count list")[3..].parse().unwrap();
    assert_eq!(lists, 1, "no re-list: the bookmark's version was used");
}
