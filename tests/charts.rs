//! The Helm library chart and the Kubernetes/compose/CI examples.
//!
//! Charts are rendered and linted with real Helm (v4, the Go SDK embedded in PyPI's
//! helm-python-sdk: no helm binary can be installed here) and every manifest is validated
//! against the Kubernetes 1.33 schemas with PyPI's kubernetes-validate, strictly (unknown fields
//! are errors). tests/setup/30-ship.sh installs both. Steps files embedded in the examples are
//! checked with `initbox run --check` (every applet parses its arguments).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn python(args: &[&str]) -> Value {
    let r = common::run(
        Command::new("python3")
            .arg(Path::new(ROOT).join("tests/fixtures/ship/k8s_check.py"))
            .args(args)
            .current_dir(ROOT),
        Duration::from_secs(150),
    );
    assert_eq!(
        r.code(),
        0,
        "k8s_check.py failed (run tests/setup/30-ship.sh): {}",
        r.stderr
    );
    serde_json::from_str(&r.stdout).expect("k8s_check.py JSON")
}

fn render(value_sets: &[Value]) -> Value {
    let mut args = vec![
        "chart".to_string(),
        "charts/example-app".into(),
        "charts/initbox".into(),
    ];
    args.extend(value_sets.iter().map(|v| v.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    python(&refs)
}

fn assert_valid(validation: &Value, context: &str) {
    let v = validation.as_array().expect("validation list");
    assert!(!v.is_empty(), "{context}: no manifests");
    for entry in v {
        assert!(
            entry["error"].is_null(),
            "{context}: {} {} is invalid: {}",
            entry["kind"],
            entry["name"],
            entry["error"]
        );
    }
}

/// Kubernetes quantity to millicores / bytes.
fn cpu_milli(q: &str) -> f64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse().unwrap(),
        None => q.parse::<f64>().unwrap() * 1000.0,
    }
}

fn bytes(q: &str) -> f64 {
    for (suffix, mult) in [("Ki", 1024.0), ("Mi", 1048576.0), ("Gi", 1073741824.0)] {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().unwrap() * mult;
        }
    }
    q.parse().unwrap()
}

fn is_initbox(c: &Value) -> bool {
    c["image"]
        .as_str()
        .unwrap_or("")
        .contains("initbox/initbox")
}

/// The restricted-profile fields and small requests every initbox container must have.
fn assert_restricted(c: &Value, pod_sc: &Value, context: &str) {
    let name = &c["name"];
    let sc = &c["securityContext"];
    let either = |k: &str| {
        if sc[k].is_null() {
            pod_sc[k].clone()
        } else {
            sc[k].clone()
        }
    };
    assert_eq!(
        either("runAsNonRoot"),
        json!(true),
        "{context} {name}: runAsNonRoot"
    );
    assert_eq!(
        sc["readOnlyRootFilesystem"],
        json!(true),
        "{context} {name}: readOnlyRootFilesystem"
    );
    assert_eq!(
        sc["allowPrivilegeEscalation"],
        json!(false),
        "{context} {name}: allowPrivilegeEscalation"
    );
    assert_eq!(
        sc["capabilities"]["drop"],
        json!(["ALL"]),
        "{context} {name}: drop ALL"
    );
    assert_eq!(
        either("seccompProfile")["type"],
        json!("RuntimeDefault"),
        "{context} {name}: seccomp"
    );
    if is_initbox(c) {
        let req = &c["resources"]["requests"];
        let cpu = cpu_milli(req["cpu"].as_str().expect("cpu request"));
        let mem = bytes(req["memory"].as_str().expect("memory request"));
        assert!(
            cpu <= 50.0,
            "{context} {name}: cpu request {cpu}m is not small"
        );
        assert!(
            mem <= 32.0 * 1048576.0,
            "{context} {name}: memory request {mem} is not small"
        );
        assert!(
            c["resources"]["limits"]["memory"].is_string(),
            "{context} {name}: memory limit"
        );
        let uid = if sc["runAsUser"].is_null() {
            &pod_sc["runAsUser"]
        } else {
            &sc["runAsUser"]
        };
        assert!(
            uid.is_null() || *uid == json!(65532),
            "{context} {name}: runs as 65532 (the image's user), not {uid}"
        );
    }
}

/// `net-setup` changes the pod's network namespace: root with NET_ADMIN and nothing more (the
/// one exception to the restricted profile, as for istio-init and linkerd's proxy-init).
fn assert_net_admin_only(c: &Value, context: &str) {
    let name = &c["name"];
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsUser"], json!(0), "{context} {name}: root");
    assert_eq!(sc["runAsNonRoot"], json!(false), "{context} {name}");
    assert_eq!(
        sc["capabilities"],
        json!({"drop": ["ALL"], "add": ["NET_ADMIN"]}),
        "{context} {name}: NET_ADMIN only"
    );
    assert_eq!(
        sc["allowPrivilegeEscalation"],
        json!(false),
        "{context} {name}"
    );
    assert_eq!(
        sc["readOnlyRootFilesystem"],
        json!(true),
        "{context} {name}"
    );
    assert!(
        sc["privileged"].is_null(),
        "{context} {name}: not privileged"
    );
    assert_eq!(
        sc["seccompProfile"]["type"],
        json!("RuntimeDefault"),
        "{context} {name}"
    );
}

fn pod_spec(docs: &Value) -> &Value {
    docs.as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .map(|d| &d["spec"]["template"]["spec"])
        .expect("a Deployment")
}

fn init_names(spec: &Value) -> Vec<String> {
    spec["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn all_containers(spec: &Value) -> Vec<&Value> {
    let mut v: Vec<&Value> = spec["initContainers"].as_array().unwrap().iter().collect();
    v.extend(spec["containers"].as_array().unwrap().iter());
    v
}

/// `initbox run -f FILE --check` on `yaml`, unless an applet it uses is still a placeholder in
/// this build (then say so: the check becomes real once the applet lands).
fn check_steps(yaml: &str, context: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("steps.yaml");
    std::fs::write(&file, yaml).unwrap();
    let r = common::run(
        common::initbox()
            .args(["run", "--check", "-f"])
            .arg(&file)
            .current_dir(ROOT),
        Duration::from_secs(30),
    );
    if r.code() == 2 && placeholder_named(&r.stderr) {
        eprintln!(
            "{context}: an applet is still a placeholder; steps --check skipped: {}",
            r.stderr.trim()
        );
        return;
    }
    assert_eq!(r.code(), 0, "{context}: steps file check: {}", r.all());
}

fn placeholder_named(stderr: &str) -> bool {
    [
        "run-migrations",
        "fetch-secret",
        "render-config",
        "notify",
        "wait-for",
        "network-check",
    ]
    .iter()
    .any(|a| {
        stderr.contains(&format!("initbox {a}: error"))
            && common::run(
                common::initbox().args([a, "--help"]),
                Duration::from_secs(10),
            )
            .stdout
            .contains("(not built yet)")
    })
}

#[test]
fn the_example_chart_renders_lints_and_validates_with_restricted_initbox_containers() {
    let out = render(&[
        json!({}),
        json!({"initMode": "run", "dbProxy": {"enabled": true}}),
        json!({"initbox": {"image": {"digest": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
                           "securityContext": {"runAsUser": 65533, "runAsGroup": 65533}},
               "notify": {"enabled": false}}),
    ]);
    assert!(
        out["helm_sdk_version"].as_str().unwrap().starts_with("v4."),
        "{}",
        out["helm_sdk_version"]
    );
    for (i, lint) in out["lint"].as_array().unwrap().iter().enumerate() {
        assert_eq!(lint["errors"], json!([]), "lint {i}: {lint}");
        let bad: Vec<&Value> = lint["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["severity"].as_i64().unwrap_or(0) >= 2)
            .collect();
        assert!(bad.is_empty(), "helm lint --strict findings {i}: {bad:?}");
    }
    let renders = out["renders"].as_array().unwrap();

    // 1. One init container per step, in order, each restricted, secrets only by reference.
    let docs = &renders[0]["docs"];
    assert_valid(&renders[0]["validation"], "default values");
    let spec = pod_spec(docs);
    assert_eq!(
        init_names(spec),
        [
            "wait-for-database",
            "run-migrations",
            "fetch-secret",
            "render-config",
            "notify"
        ]
    );
    for c in all_containers(spec) {
        assert_restricted(c, &spec["securityContext"], "default");
    }
    let init = spec["initContainers"].as_array().unwrap();
    for (c, applet) in init.iter().zip([
        "wait-for-tcp",
        "run-migrations",
        "fetch-secret",
        "render-config",
        "notify",
    ]) {
        assert_eq!(c["args"][0], applet);
        assert_eq!(c["image"], "ghcr.io/initbox/initbox:0.1.0");
        assert_eq!(c["terminationMessagePolicy"], "FallbackToLogsOnError");
    }
    let migrate_env = &init[1]["env"];
    assert!(
        migrate_env
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "INITBOX_DATABASE_URL"
                && e["valueFrom"]["secretKeyRef"]["name"] == "shop-db"),
        "database URL from the Secret: {migrate_env}"
    );
    assert!(
        !docs.to_string().contains("postgres://"),
        "no credentials in the rendered manifests"
    );

    // 2. `initbox run` mode with a native sidecar gated by initbox's startup probe.
    let docs = &renders[1]["docs"];
    assert_valid(&renders[1]["validation"], "run mode");
    let spec = pod_spec(docs);
    assert_eq!(init_names(spec), ["copy-self", "db-proxy", "initbox-run"]);
    for c in all_containers(spec) {
        assert_restricted(c, &spec["securityContext"], "run mode");
    }
    let proxy = &spec["initContainers"][1];
    assert_eq!(proxy["restartPolicy"], "Always", "a native sidecar");
    assert_eq!(
        proxy["startupProbe"]["exec"]["command"],
        json!([
            "/initbox-bin/initbox",
            "wait-for-tcp",
            "--once",
            "127.0.0.1:5432"
        ])
    );
    assert_eq!(
        spec["initContainers"][0]["args"],
        json!(["copy-self", "/initbox-bin"])
    );
    let steps = docs
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["metadata"]["name"] == "shop-initbox-steps")
        .expect("steps ConfigMap");
    check_steps(
        steps["data"]["steps.yaml"].as_str().unwrap(),
        "chart steps ConfigMap",
    );

    // 3. Values override the library's defaults: digest pinning, merged security context.
    assert_valid(&renders[2]["validation"], "overrides");
    let spec = pod_spec(&renders[2]["docs"]);
    let c = &spec["initContainers"][0];
    assert_eq!(
        c["image"],
        "ghcr.io/initbox/initbox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    assert_eq!(c["securityContext"]["runAsUser"], 65533);
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"], true,
        "merged, not replaced"
    );
    assert!(!init_names(spec).contains(&"notify".to_string()));

    // The library chart renders nothing by itself (type: library).
    assert_eq!(
        out["library_manifests"],
        json!(0),
        "{}",
        out["library_manifests"]
    );
    assert_eq!(
        out["library_lint"]["errors"],
        json!([]),
        "{}",
        out["library_lint"]
    );
    let chart = std::fs::read_to_string(Path::new(ROOT).join("charts/initbox/Chart.yaml")).unwrap();
    assert!(chart.contains("type: library"));
}

#[test]
fn the_validator_rejects_what_kubernetes_would() {
    // The schema check is real: a misspelled field and a wrong type are both refused.
    let dir = tempfile::tempdir().unwrap();
    let misspelled = dir.path().join("misspelled.yaml");
    std::fs::write(
        &misspelled,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  initContainers:\n  \
         - {name: w, image: ghcr.io/initbox/initbox:0.1.0, argz: [wait-for-tcp]}\n  \
         containers: [{name: a, image: x}]\n",
    )
    .unwrap();
    let wrong_type = dir.path().join("wrong-type.yaml");
    std::fs::write(
        &wrong_type,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  \
         containers: [{name: a, image: x, ports: [{containerPort: http}]}]\n",
    )
    .unwrap();
    let out = python(&[
        "files",
        misspelled.to_str().unwrap(),
        wrong_type.to_str().unwrap(),
    ]);
    let err = |i: usize| {
        out["files"][i]["validation"][0]["error"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(err(0).contains("argz"), "{out}");
    assert!(err(1).contains("not of type 'integer'"), "{out}");
}

#[test]
fn the_kubernetes_examples_validate_and_are_restricted() {
    let dir = Path::new(ROOT).join("examples/kubernetes");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let mut args = vec!["files"];
    args.extend(files.iter().map(String::as_str));
    let out = python(&args);
    let mut saw_sidecar = false;
    let mut saw_run = false;
    let mut saw_ground = Vec::new();
    for f in out["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        assert_valid(&f["validation"], path);
        let spec = pod_spec(&f["docs"]);
        for c in all_containers(spec) {
            if c["args"][0] == "net-setup" {
                assert_net_admin_only(c, path);
            } else {
                assert_restricted(c, &spec["securityContext"], path);
            }
        }
        for c in spec["initContainers"].as_array().unwrap() {
            if c["restartPolicy"] == "Always" {
                saw_sidecar = true;
                assert!(
                    c["startupProbe"]["exec"]["command"][0]
                        .as_str()
                        .unwrap()
                        .ends_with("/initbox"),
                    "{path}: the sidecar is gated by initbox"
                );
            }
            if c["args"][0] == "run" {
                saw_run = true;
            }
            // Laying the ground: a download is verified, a checkout pinned to its commit.
            let args: Vec<&str> = c["args"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match args.first().copied() {
                Some("download") => assert!(
                    args.iter()
                        .any(|a| ["--sha256", "--sha256sums", "--minisign-key"].contains(a)),
                    "{path}: {args:?} verifies what it downloads"
                ),
                Some("git-checkout") => assert!(
                    args.windows(2).any(|w| w[0] == "--commit"
                        && w[1].len() == 40
                        && w[1].bytes().all(|b| b.is_ascii_hexdigit())),
                    "{path}: {args:?} pins the commit"
                ),
                _ => {}
            }
            if let Some(applet @ ("prepare-volume" | "download" | "git-checkout")) =
                args.first().copied()
            {
                saw_ground.push(applet);
            }
        }
        for d in f["docs"].as_array().unwrap() {
            if let Some(steps) = d["data"]["steps.yaml"].as_str() {
                check_steps(steps, path);
            }
        }
    }
    assert!(saw_sidecar, "a native sidecar example");
    assert!(saw_run, "an `initbox run` example");
    saw_ground.sort_unstable();
    saw_ground.dedup();
    assert_eq!(
        saw_ground,
        ["download", "git-checkout", "prepare-volume"],
        "an example lays the ground with each applet"
    );
}

#[test]
fn the_compose_and_ci_examples_have_the_documented_structure() {
    let out = python(&[
        "yaml",
        "examples/compose/compose.yaml",
        "examples/ci/github-actions.yml",
        "examples/ci/gitlab-ci.yml",
    ]);
    let files = out["files"].as_array().unwrap();

    // Compose: initbox steps are one-shot services the app depends on by successful completion.
    let compose = &files[0]["docs"][0];
    let services = compose["services"].as_object().unwrap();
    let app = &services["app"];
    let deps = app["depends_on"].as_object().unwrap();
    assert!(!deps.is_empty());
    for (name, cond) in deps {
        assert_eq!(
            cond["condition"], "service_completed_successfully",
            "app waits for {name} to finish"
        );
        let step = &services[name];
        assert!(
            step["image"].as_str().unwrap().contains("initbox/initbox"),
            "{name} is an initbox step"
        );
        assert_eq!(step["restart"], "no", "{name} is one-shot");
        assert_eq!(step["read_only"], true, "{name}");
        assert_eq!(step["user"], "65532:65532", "{name}");
        assert_eq!(step["cap_drop"], json!(["ALL"]), "{name}");
    }
    assert_eq!(
        services["migrate"]["depends_on"]["wait"]["condition"],
        "service_completed_successfully"
    );

    // GitHub Actions: service containers, then an initbox wait before the tests.
    let gha = &files[1]["docs"][0];
    let job = &gha["jobs"]["test"];
    assert!(job["services"]["postgres"]["image"].is_string());
    let steps: Vec<String> = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str().map(str::to_string))
        .collect();
    let wait = steps
        .iter()
        .position(|s| s.contains("initbox wait-for"))
        .expect("a wait step");
    let test = steps
        .iter()
        .position(|s| s.contains("cargo test"))
        .expect("a test step");
    assert!(wait < test);

    // GitLab CI: services by alias and an initbox wait before the script.
    let gl = &files[2]["docs"][0]["test"];
    assert!(gl["services"].as_array().unwrap().len() >= 2);
    assert!(
        gl["before_script"][0]
            .as_str()
            .unwrap()
            .starts_with("initbox wait-for")
    );

    // The shell snippet waits and only then runs the command (exec after `--`).
    let sh =
        std::fs::read_to_string(Path::new(ROOT).join("examples/ci/wait-for-services.sh")).unwrap();
    assert!(sh.contains("initbox wait-for") && sh.contains("-- \"$@\""));
    let r = common::run(
        Command::new("sh")
            .arg("-n")
            .arg(Path::new(ROOT).join("examples/ci/wait-for-services.sh")),
        Duration::from_secs(10),
    );
    assert_eq!(r.code(), 0, "shell syntax: {}", r.all());
}

#[test]
fn the_demo_steps_file_checks() {
    let yaml = std::fs::read_to_string(Path::new(ROOT).join("examples/demo/steps.yaml")).unwrap();
    check_steps(&yaml, "examples/demo/steps.yaml");
}
