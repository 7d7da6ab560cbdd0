//! End-to-end tests of `initbox fetch-secret`.
//!
//! Vault: no HashiCorp Vault server can be had on this machine, so these tests run a
//! protocol-faithful STAND-IN (tests/fixtures/fetch-secret/standin.py) that follows Vault's
//! documented HTTP API: KV v1/v2 mounts, sys/internal/ui/mounts, token lookup-self, the
//! kubernetes/approle/jwt/userpass/cert logins, sys/wrapping/unwrap, namespaces, and Vault's
//! `{"errors":[...]}` error shape. Kubernetes: a stand-in API server (same file) that checks the
//! bearer token. AWS: the real `moto` emulator in server mode on loopback
//! (tests/setup/20-fetch-secret.sh installs it).

mod common;
mod moto;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_one_line_error, free_port, initbox, run};
use moto::Moto;

const LIMIT: Duration = Duration::from_secs(60);
const CANARY: &str = "Canary-7f3a9c-SECRET-value";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fetch-secret");

/// A stand-in server (Vault or Kubernetes API), killed on drop.
struct StandIn {
    child: Child,
    port: u16,
    scheme: &'static str,
    _dir: tempfile::TempDir,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StandIn {
    fn start(mode: &str, config: &str, tls: Option<&Certs>) -> StandIn {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.json");
        std::fs::write(&cfg, config).unwrap();
        let port_file = dir.path().join("port");
        let mut cmd = Command::new("python3");
        cmd.arg(format!("{FIXTURES}/standin.py"))
            .arg(mode)
            .arg(&cfg)
            .arg(&port_file)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(c) = tls {
            cmd.arg("--tls")
                .arg(c.dir.path().join("server.pem"))
                .arg(c.dir.path().join("server.key"))
                .arg(c.dir.path().join("ca.crt"));
        }
        let child = cmd.spawn().expect("python3 runs the stand-in");
        let port = common::wait_port_file(&port_file, "the stand-in");
        StandIn {
            child,
            port,
            scheme: if tls.is_some() { "https" } else { "http" },
            _dir: dir,
        }
    }

    fn addr(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// Request counts the stand-in recorded (its non-Vault `/__stats` endpoint).
    fn stats(&self) -> String {
        if self.scheme == "https" {
            let o = Command::new("curl")
                .args(["-sk", &format!("{}/__stats", self.addr())])
                .output()
                .unwrap();
            return String::from_utf8_lossy(&o.stdout).into_owned();
        }
        http_get(self.port, "/__stats")
    }

    /// How often `key` ("GET secret/data/app/db") was requested.
    fn count(&self, key: &str) -> u32 {
        let stats = self.stats();
        let needle = format!("\"{key}\": ");
        stats
            .find(&needle)
            .map(|i| {
                stats[i + needle.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect::<String>()
                    .parse()
                    .unwrap()
            })
            .unwrap_or(0)
    }
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// A run-time failure: exit `code`, exactly one ERROR line, naming `needle`, no panic.
/// (Progress lines at INFO may precede it; a usage or input error is checked with
/// `assert_one_line_error`, which allows nothing else on stderr.)
fn assert_error(r: &common::Run, code: i32, needle: &str) {
    assert_eq!(r.code(), code, "exit code; output: {}", r.all());
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert_eq!(errors.len(), 1, "one error line expected: {}", r.stderr);
    assert!(
        errors[0].contains(needle),
        "{:?} should name {needle:?}",
        errors[0]
    );
    assert!(!r.all().contains("panicked"), "{}", r.all());
}

fn vault_config(extra: &str) -> String {
    format!(
        r#"{{
  "mounts": {{"secret/": {{"type": "kv", "version": "2"}}, "kv/": {{"type": "kv", "version": "1"}},
             "database/": {{"type": "database"}}, "team-a/secret/": {{"type": "kv", "version": "2"}}}},
  "kv": {{
    "secret/": {{"app/db": [{{"username": "dbuser-v1", "password": "old-password-v1"}},
                           {{"username": "dbuser", "password": "{CANARY}", "port": 5432}}],
                "app/other": [{{"token": "other-token-value"}}]}},
    "kv/": {{"legacy": {{"api_key": "legacy-api-key-1"}}}},
    "team-a/secret/": {{"app": [{{"key": "team-a-value"}}]}}
  }},
  "dynamic": {{"database/creds/app": {{"data": {{"username": "v-app-xyz", "password": "dyn-password-9"}}, "ttl": 600}}}},
  "tokens": {{"root-token-1": {{"policies": ["root"]}}}},
  "auth": {{
    "kubernetes": {{"role": "app", "jwt": "k8s-sa-jwt-abc"}},
    "approle": {{"role_id": "role-id-1", "secret_ids": ["secret-id-1"], "wrapped": {{"wrap-token-1": "secret-id-1"}}}},
    "jwt": {{"role": "ci", "jwt": "ci-oidc-jwt-xyz"}},
    "userpass": {{"alice": "alice-password"}}
  }}{extra}
}}"#
    )
}

fn vault() -> StandIn {
    StandIn::start("vault", &vault_config(""), None)
}

/// initbox fetch-secret with the stand-in Vault's address.
fn fetch(v: &StandIn) -> Command {
    let mut c = initbox();
    c.arg("fetch-secret")
        .env("VAULT_ADDR", v.addr())
        .env_remove("VAULT_TOKEN")
        .env("HOME", "/nonexistent")
        .env("INITBOX_TIMEOUT", "20s");
    c
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn token_auth_detects_kv_versions_merges_reads_and_keeps_leases() {
    let v = vault();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("all.json");
    let r = run(
        fetch(&v)
            .env("VAULT_TOKEN", "root-token-1")
            .args(["--out", out.to_str().unwrap(), "--format", "json"])
            .args([
                "pw=ref+vault://secret/app/db#/password",
                "user=ref+vault://secret/app/db#username",
                "port=ref+vault://secret/data/app/db#/port",
                "old=ref+vault://secret/app/db?version=1#/password",
                "legacy=ref+vault://kv/legacy#/api_key",
                "db=ref+vault://database/creds/app",
            ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let json = read(&out);
    assert!(json.contains(&format!("\"pw\": \"{CANARY}\"")), "{json}");
    assert!(json.contains("\"user\": \"dbuser\""), "{json}");
    assert!(json.contains("\"port\": 5432"), "{json}");
    assert!(json.contains("\"old\": \"old-password-v1\""), "{json}");
    assert!(json.contains("\"legacy\": \"legacy-api-key-1\""), "{json}");
    assert!(json.contains("\"username\": \"v-app-xyz\""), "{json}");
    assert_eq!(mode(&out), 0o400);
    // KV v2 read at secret/data/app/db, KV v1 at kv/legacy: detection worked.
    // Three references into secret/app/db (latest) cost one read; version 1 is another.
    assert_eq!(v.count("GET secret/data/app/db"), 2, "{}", v.stats());
    assert_eq!(v.count("GET kv/legacy"), 1, "{}", v.stats());
    assert_eq!(v.count("GET auth/token/lookup-self"), 1, "{}", v.stats());
    // One mount lookup per mount, not per reference.
    let lookups: u32 = [
        "secret/app/db",
        "secret/data/app/db",
        "kv/legacy",
        "database/creds/app",
    ]
    .iter()
    .map(|p| v.count(&format!("GET sys/internal/ui/mounts/{p}")))
    .sum();
    assert_eq!(lookups, 3, "{}", v.stats());
    assert!(!r.all().contains(CANARY));
}

#[test]
fn kv_version_can_be_pinned_and_namespaces_are_sent() {
    let v = vault();
    let dir = tempfile::tempdir().unwrap();
    // VAULT_NAMESPACE for every read.
    let r = run(
        fetch(&v)
            .env("VAULT_TOKEN", "root-token-1")
            .env("VAULT_NAMESPACE", "team-a")
            .args([
                "--dir",
                dir.path().to_str().unwrap(),
                "a=ref+vault://secret/app#/key",
            ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(read(&dir.path().join("a")), "team-a-value");
    // namespace= for one read; kv=1 pins the version.
    let r = run(
        fetch(&v)
            .env("VAULT_TOKEN", "root-token-1")
            .args(["--dir", dir.path().to_str().unwrap()])
            .args([
                "c=ref+vault://secret/app?namespace=team-a#/key",
                "b=ref+vault://kv/legacy?kv=1#/api_key",
            ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(read(&dir.path().join("c")), "team-a-value");
    assert_eq!(read(&dir.path().join("b")), "legacy-api-key-1");
    // kv=1 skipped the mount lookup.
    assert_eq!(
        v.count("GET sys/internal/ui/mounts/kv/legacy"),
        0,
        "{}",
        v.stats()
    );
}

#[test]
fn every_login_method_logs_in_once_and_hands_the_token_on() {
    let v = vault();
    let dir = tempfile::tempdir().unwrap();
    let f = |name: &str, content: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.to_str().unwrap().to_string()
    };
    let jwt = f("sa-jwt", "k8s-sa-jwt-abc\n");
    let ci = f("ci-jwt", "ci-oidc-jwt-xyz");
    let secret_id = f("secret-id", "secret-id-1");
    let wrapped = f("wrapped", "wrap-token-1");
    let password = f("password", "alice-password\n");
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "kubernetes",
            vec![
                "--vault-auth=kubernetes".into(),
                "--vault-role=app".into(),
                format!("--vault-jwt-file={jwt}"),
            ],
            "POST auth/kubernetes/login",
        ),
        (
            "approle",
            vec![
                "--vault-auth=approle".into(),
                "--vault-role-id=role-id-1".into(),
                format!("--vault-secret-id-file={secret_id}"),
            ],
            "POST auth/approle/login",
        ),
        (
            "approle-wrapped",
            vec![
                "--vault-auth=approle".into(),
                "--vault-role-id=role-id-1".into(),
                format!("--vault-secret-id-file={wrapped}"),
                "--vault-secret-id-wrapped".into(),
            ],
            "POST sys/wrapping/unwrap",
        ),
        (
            "jwt",
            vec![
                "--vault-auth=jwt".into(),
                "--vault-role=ci".into(),
                format!("--vault-jwt-file={ci}"),
            ],
            "POST auth/jwt/login",
        ),
        (
            "userpass",
            vec![
                "--vault-auth=userpass".into(),
                "--vault-username=alice".into(),
                format!("--vault-password-file={password}"),
            ],
            "POST auth/userpass/login/alice",
        ),
    ];
    for (name, flags, endpoint) in cases {
        let before = v.count(endpoint);
        let out = dir.path().join(format!("out-{name}"));
        let token_out = dir.path().join(format!("token-{name}"));
        let r = run(
            fetch(&v)
                .args(&flags)
                .args([
                    "--dir",
                    out.to_str().unwrap(),
                    "--token-out",
                    token_out.to_str().unwrap(),
                ])
                .args([
                    "pw=ref+vault://secret/app/db#/password",
                    "user=ref+vault://secret/app/db#/username",
                    "t=ref+vault://secret/app/other#/token",
                ]),
            LIMIT,
        );
        assert_eq!(r.code(), 0, "{name}: {}", r.all());
        assert_eq!(read(&out.join("pw")), CANARY, "{name}");
        assert_eq!(
            v.count(endpoint),
            before + 1,
            "{name}: one login per run; {}",
            v.stats()
        );
        let token = read(&token_out);
        assert!(token.starts_with("hvs."), "{name}: {token}");
        assert_eq!(mode(&token_out), 0o400);
        assert!(!r.all().contains(&token), "{name}: the token was printed");
        assert!(!r.all().contains(CANARY));
    }
    // The wrapping token is single-use: a second unwrap is refused (exit 5).
    let r = run(
        fetch(&v)
            .args(["--vault-auth=approle", "--vault-role-id=role-id-1"])
            .arg(format!("--vault-secret-id-file={wrapped}"))
            .args([
                "--vault-secret-id-wrapped",
                "--dir",
                dir.path().to_str().unwrap(),
                "x=ref+vault://secret/app/db#/password",
            ]),
        LIMIT,
    );
    assert_eq!(r.code(), 5, "{}", r.all());
    assert!(
        r.stderr.contains("wrapping token is not valid"),
        "{}",
        r.stderr
    );
}

#[test]
fn rejected_credentials_exit_5_with_vaults_reason() {
    let v = vault();
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "wrong-password").unwrap();
    let target = dir.path().join("out");
    for (flags, reason) in [
        (vec!["--vault-auth=token".to_string()], "permission denied"),
        (
            vec![
                "--vault-auth=userpass".into(),
                "--vault-username=alice".into(),
                format!("--vault-password-file={}", pw.display()),
            ],
            "invalid username or password",
        ),
        (
            vec![
                "--vault-auth=approle".into(),
                "--vault-role-id=role-id-1".into(),
                format!("--vault-secret-id-file={}", pw.display()),
            ],
            "invalid role or secret ID",
        ),
    ] {
        let r = run(
            fetch(&v)
                .env("VAULT_TOKEN", "not-a-valid-token")
                .args(&flags)
                .args([
                    "--dir",
                    target.to_str().unwrap(),
                    "pw=ref+vault://secret/app/db#/password",
                ]),
            LIMIT,
        );
        assert_one_line_error(&r, 5, reason);
        assert!(!r.all().contains("wrong-password") && !r.all().contains("not-a-valid-token"));
        assert!(!target.exists(), "nothing may be written");
    }
}

#[test]
fn cert_login_over_tls_with_custom_ca_and_client_certificate() {
    let certs = Certs::new();
    let v = StandIn::start("vault", &vault_config(""), Some(&certs));
    let dir = tempfile::tempdir().unwrap();
    let c = |n: &str| certs.dir.path().join(n).to_str().unwrap().to_string();
    let r = run(
        fetch(&v)
            .args(["--vault-auth=cert", "--vault-ca-file", &c("ca.crt")])
            .args([
                "--vault-client-cert",
                &c("client.pem"),
                "--vault-client-key",
                &c("client.key"),
            ])
            .args([
                "--dir",
                dir.path().to_str().unwrap(),
                "pw=ref+vault://secret/app/db#/password",
            ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(read(&dir.path().join("pw")), CANARY);
    assert_eq!(v.count("POST auth/cert/login"), 1);
    // Without the CA the server is not trusted: a fast failure, no retry until the deadline.
    let r = run(
        fetch(&v).env("VAULT_TOKEN", "root-token-1").args([
            "--timeout",
            "30s",
            "--dir",
            dir.path().to_str().unwrap(),
            "x=ref+vault://secret/app/db#/password",
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("certificate"), "{}", r.stderr);
    assert!(
        r.elapsed < Duration::from_secs(20),
        "TLS errors are not retried"
    );
}

#[test]
fn missing_key_lists_names_only_and_nothing_is_written_or_run() {
    let v = vault();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let term = dir.path().join("termination-log");
    let r = run(
        fetch(&v)
            .env("VAULT_TOKEN", "root-token-1")
            .args(["--dir", dir.path().join("s").to_str().unwrap()])
            .args(["--termination-log", term.to_str().unwrap()])
            .args([
                "good=ref+vault://secret/app/other#/token",
                "pw=ref+vault://secret/app/db#/passwrod",
            ])
            .args(["--", "touch", marker.to_str().unwrap()]),
        LIMIT,
    );
    assert_error(&r, 1, "key 'passwrod' not found");
    assert!(
        r.stderr
            .contains("available keys: password, port, username"),
        "{}",
        r.stderr
    );
    assert!(
        !r.all().contains(CANARY) && !r.all().contains("dbuser"),
        "{}",
        r.all()
    );
    assert!(!dir.path().join("s").exists(), "nothing may be written");
    assert!(!marker.exists(), "the command must not run");
    let t = read(&term);
    assert!(t.contains("passwrod") && !t.contains(CANARY), "{t}");

    // A missing secret: exit 1, fail closed; optional or default make it non-fatal.
    let r = run(
        fetch(&v).env("VAULT_TOKEN", "root-token-1").args([
            "--dir",
            dir.path().join("s").to_str().unwrap(),
            "a=ref+vault://secret/app/nope#/k",
        ]),
        LIMIT,
    );
    assert_error(
        &r,
        1,
        "secret not found: vault kv v2 mount=secret/ path=app/nope",
    );
    let s = dir.path().join("s2");
    let r = run(
        fetch(&v)
            .env("VAULT_TOKEN", "root-token-1")
            .args(["--dir", s.to_str().unwrap()])
            .args([
                "a=ref+vault://secret/app/nope?optional=true#/k",
                "b=ref+vault://secret/app/db?default=fallback-v#/nokey",
                "c=ref+vault://secret/app/db#/username",
            ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(!s.join("a").exists());
    assert_eq!(read(&s.join("b")), "fallback-v");
    assert_eq!(read(&s.join("c")), "dbuser");
}

#[test]
fn the_canary_never_appears_in_output_at_any_verbosity() {
    let v = vault();
    let dir = tempfile::tempdir().unwrap();
    let term = dir.path().join("termination-log");
    let b64 = "Q2FuYXJ5LTdmM2E5Yy1TRUNSRVQtdmFsdWU="; // base64 of CANARY
    let runs: Vec<Vec<&str>> = vec![
        vec!["-v", "-v", "pw=ref+vault://secret/app/db#/password"],
        vec![
            "-vv",
            "--log-format",
            "json",
            "pw=ref+vault://secret/app/db#/password",
        ],
        // Failures after the canary was fetched: a missing key, a bad decode, a key lookup
        // into a plain string, a command that does not exist.
        vec![
            "-vv",
            "pw=ref+vault://secret/app/db#/password",
            "x=ref+vault://secret/app/db#/nope",
        ],
        vec![
            "-vv",
            "pw=ref+vault://secret/app/db?decode=base64#/password",
        ],
        vec!["-vv", "pw=ref+vault://secret/app/db#/password/deeper"],
        vec![
            "-vv",
            "--exec",
            "PW=ref+vault://secret/app/db#/password",
            "--",
            "/nonexistent/cmd",
        ],
        vec![
            "-vv",
            "--exec",
            "PW=ref+vault://secret/app/db#/password",
            "--",
            "sh",
            "-c",
            "exit 0",
        ],
    ];
    for args in runs {
        let _ = std::fs::remove_file(&term);
        let r = run(
            fetch(&v)
                .env("VAULT_TOKEN", "root-token-1")
                .args(["--dir", dir.path().join("o").to_str().unwrap()])
                .args(["--termination-log", term.to_str().unwrap()])
                .args(&args),
            LIMIT,
        );
        let all = r.all();
        assert!(
            !all.contains(CANARY) && !all.contains(b64),
            "{args:?} leaked: {all}"
        );
        assert!(!all.contains("root-token-1"), "{args:?} leaked the token");
        if let Ok(t) = std::fs::read_to_string(&term) {
            assert!(!t.contains(CANARY) && !t.contains(b64), "{args:?}: {t}");
        }
        assert!(
            all.contains("DEBUG") || all.contains("\"level\""),
            "{args:?}: -vv shows debug lines"
        );
        assert!(!all.contains("panicked"), "{all}");
    }
}

#[test]
fn files_get_tight_modes_private_dirs_and_owners() {
    let v = vault();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("secrets");
    let abs = dir.path().join("elsewhere/abs-file");
    let r = run(
        fetch(&v)
            .env("VAULT_TOKEN", "root-token-1")
            .args(["--dir", base.to_str().unwrap()])
            .arg("db/password=ref+vault://secret/app/db#/password")
            .arg(format!(
                "{}=ref+vault://secret/app/db#/username",
                abs.display()
            )),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(mode(&base.join("db/password")), 0o400);
    assert_eq!(mode(&base.join("db")), 0o700);
    assert_eq!(mode(&base), 0o700);
    assert_eq!(read(&abs), "dbuser");

    let r = run(
        fetch(&v)
            .env("VAULT_TOKEN", "root-token-1")
            .args(["--dir", base.to_str().unwrap(), "--mode", "0440"])
            .arg("db/password=ref+vault://secret/app/db#/password"),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        mode(&base.join("db/password")),
        0o440,
        "an existing file is replaced with the new mode"
    );
    assert_eq!(read(&base.join("db/password")), CANARY);

    let euid = unsafe { libc::geteuid() };
    let r = run(
        fetch(&v)
            .env("VAULT_TOKEN", "root-token-1")
            .args(["--dir", base.to_str().unwrap(), "--owner", "4321:8765"])
            .arg("owned=ref+vault://secret/app/db#/password"),
        LIMIT,
    );
    if euid == 0 {
        assert_eq!(r.code(), 0, "{}", r.all());
        let m = std::fs::metadata(base.join("owned")).unwrap();
        assert_eq!((m.uid(), m.gid()), (4321, 8765));
    } else {
        assert_one_line_error(&r, 4, "--owner 4321:8765 needs root");
    }
    // A relative name may not climb out of --dir.
    let r = run(
        fetch(&v).env("VAULT_TOKEN", "root-token-1").args([
            "--dir",
            base.to_str().unwrap(),
            "../x=ref+vault://secret/app/db#/password",
        ]),
        LIMIT,
    );
    assert_one_line_error(&r, 2, "may not contain '..'");
}

#[test]
fn a_killed_run_never_leaves_a_partial_file() {
    // 200 files of 4 KiB (one secret, read once), each staged with fsync then renamed: a
    // complete run is timed first, then runs are killed (SIGKILL and SIGTERM alternately) at
    // delays spread over that time, so kills land while files are written and renamed.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("secret");
    let content: String = (0..512).map(|i| format!("{i:07}\n")).collect();
    std::fs::write(&src, &content).unwrap();
    let args: Vec<String> = (0..200)
        .map(|i| format!("f{i}=ref+file://{}", src.display()))
        .collect();
    let out = dir.path().join("out");
    let spawn = || {
        initbox()
            .args(["fetch-secret", "-q", "--dir", out.to_str().unwrap()])
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let start = Instant::now();
    assert!(spawn().wait().unwrap().success());
    let full = start.elapsed();
    let mut during_writes = 0;
    for n in 0..10u32 {
        let signal = if n % 2 == 0 {
            libc::SIGKILL
        } else {
            libc::SIGTERM
        };
        let _ = std::fs::remove_dir_all(&out);
        let mut child = spawn();
        std::thread::sleep(full.mul_f64((f64::from(n) + 0.5) / 10.0));
        unsafe { libc::kill(child.id() as i32, signal) };
        let _ = child.wait();
        let Ok(entries) = std::fs::read_dir(&out) else {
            continue;
        };
        let (mut finals, mut temps) = (0, 0);
        for e in entries {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".initbox-") {
                // Only SIGKILL can leave a temporary file; never under a final name.
                assert_eq!(signal, libc::SIGKILL, "SIGTERM left {name}");
                temps += 1;
                continue;
            }
            assert!(
                // The value is the file less one trailing newline (the secret-file rule).
                read(&e.path()) == content[..content.len() - 1],
                "{name} is partial after signal {signal}"
            );
            assert_eq!(mode(&e.path()), 0o400);
            finals += 1;
        }
        if temps > 0 || (finals > 0 && finals < 200) {
            during_writes += 1;
        }
    }
    assert!(
        during_writes > 0,
        "no kill landed while files were written (full run: {full:?})"
    );
}

#[test]
fn exec_gets_the_secrets_without_initbox_config_or_credentials() {
    let v = vault();
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env");
    let r = run(
        fetch(&v)
            .env("VAULT_TOKEN", "root-token-1")
            .env("INITBOX_VAULT_ROLE", "ignored")
            .env("AWS_SECRET_ACCESS_KEY", "aws-secret-should-go")
            .env("KEEP_ME", "kept-value")
            .env("DUMP_TO", &dump)
            .args([
                "--exec",
                "DB_PASSWORD=ref+vault://secret/app/db#/password",
                "DB_USER=ref+vault://secret/app/db#/username",
            ])
            .args(["--", "sh", "-c", "env > \"$DUMP_TO\""]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let env = read(&dump);
    let has = |line: &str| env.lines().any(|l| l == line);
    assert!(has(&format!("DB_PASSWORD={CANARY}")), "{env}");
    assert!(has("DB_USER=dbuser"));
    assert!(has("KEEP_ME=kept-value"));
    assert!(has(&format!("VAULT_ADDR={}", v.addr())));
    assert!(
        !env.contains("VAULT_TOKEN") && !env.contains("root-token-1"),
        "{env}"
    );
    assert!(!env.contains("INITBOX_"), "{env}");
    assert!(!env.contains("AWS_SECRET_ACCESS_KEY"), "{env}");
    // --exec without a command is a usage error.
    let r = run(
        fetch(&v)
            .env("VAULT_TOKEN", "root-token-1")
            .args(["--exec", "A=ref+env://HOME"]),
        LIMIT,
    );
    assert_one_line_error(&r, 2, "--exec needs a command");
}

#[test]
fn malformed_references_exit_3_with_one_line() {
    for (arg, needle) in [
        ("a=vault://secret/x", "must start with 'ref+'"),
        ("a=ref+nosuch://x", "unknown backend 'nosuch'"),
        ("a=ref+vault://secret//x", "empty, '.' or '..' segment"),
        (
            "a=ref+vault://secret/x?bogus=1",
            "unknown parameter 'bogus'",
        ),
        ("a=ref+k8s://NS/Name", "not a valid Kubernetes name"),
        ("a=ref+env://1BAD", "not an environment variable name"),
        (
            "a=ref+vault://x?default=hidden-default&kv=9",
            "kv=9 must be 1 or 2",
        ),
    ] {
        let r = run(initbox().args(["fetch-secret", arg]), LIMIT);
        assert_one_line_error(&r, 3, needle);
        assert!(r.stderr.contains("secret 'a'"), "{}", r.stderr);
        assert!(!r.stderr.contains("hidden-default"), "{}", r.stderr);
    }
    let r = run(initbox().args(["fetch-secret", "ref+vault://x"]), LIMIT);
    assert_one_line_error(&r, 2, "not NAME=REF");
    let r = run(
        initbox().args([
            "fetch-secret",
            "--exec",
            "bad-name=ref+env://HOME",
            "--",
            "true",
        ]),
        LIMIT,
    );
    assert_one_line_error(&r, 2, "'bad-name' is not a valid environment variable name");
}

#[test]
fn a_repeated_default_is_a_usage_error_that_never_echoes_a_value() {
    for arg in [
        "x=ref+env://NOPE?default=a&default=SECRET",
        "x=ref+env://NOPE?default=SECRET&default=a",
    ] {
        let r = run(initbox().args(["fetch-secret", arg]), LIMIT);
        assert_one_line_error(&r, 2, "parameter 'default' is given more than once");
        assert!(r.stderr.contains("secret 'x'"), "{}", r.stderr);
        assert!(!r.all().contains("SECRET"), "{}", r.all());
        assert!(!r.all().contains("default=a"), "{}", r.all());
    }
}

#[test]
fn transient_errors_are_retried_within_the_deadline() {
    let flaky = r#", "flaky": {"secret/data/app/db": {"n": 2, "status": 503},
                              "secret/data/app/other": {"n": 1, "status": 429, "retry_after": 1},
                              "kv/legacy": {"n": 1000, "status": 503}}"#;
    let v = StandIn::start("vault", &vault_config(flaky), None);
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        fetch(&v).env("VAULT_TOKEN", "root-token-1").args([
            "--dir",
            dir.path().to_str().unwrap(),
            "a=ref+vault://secret/app/db#/username",
            "b=ref+vault://secret/app/other#/token",
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        v.count("GET secret/data/app/db"),
        3,
        "two 503s, then success"
    );
    assert_eq!(
        v.count("GET secret/data/app/other"),
        2,
        "one 429, then success"
    );
    assert!(
        r.elapsed >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    let r = run(
        fetch(&v).env("VAULT_TOKEN", "root-token-1").args([
            "--timeout",
            "2s",
            "--dir",
            dir.path().to_str().unwrap(),
            "c=ref+vault://kv/legacy#/api_key",
        ]),
        LIMIT,
    );
    assert_error(&r, 124, "Vault is sealed");
}

/// Issue 22 item 15: a server that always fails ends the run at its deadline, not a backoff's
/// length before it (it exited 124 after 2.1-3.1 s of a 5 s --timeout).
#[test]
fn the_deadline_is_kept_against_a_server_that_always_fails() {
    let flaky = r#", "flaky": {"kv/legacy": {"n": 100000, "status": 503}}"#;
    let v = StandIn::start("vault", &vault_config(flaky), None);
    let dir = tempfile::tempdir().unwrap();
    for secs in [3u64, 5] {
        let r = run(
            fetch(&v).env("VAULT_TOKEN", "root-token-1").args([
                "--timeout",
                &format!("{secs}s"),
                "--dir",
                dir.path().to_str().unwrap(),
                "c=ref+vault://kv/legacy#/api_key",
            ]),
            LIMIT,
        );
        assert_error(&r, 124, "Vault is sealed");
        let limit = Duration::from_secs(secs);
        assert!(
            r.elapsed >= limit && r.elapsed < limit + Duration::from_millis(900),
            "exit 124 after {:?} for a {secs} s deadline",
            r.elapsed
        );
    }
}

#[test]
fn spec_files_and_formats() {
    let v = vault();
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("spec.yaml");
    std::fs::write(
        &yaml,
        "secrets:\n  DB_PASSWORD: ref+vault://secret/app/db#/password\n  API_KEY:\n    ref: ref+vault://kv/legacy#/api_key\n",
    )
    .unwrap();
    let toml = dir.path().join("spec.toml");
    std::fs::write(
        &toml,
        "[secrets]\nDB_USER = \"ref+vault://secret/app/db#/username\"\n",
    )
    .unwrap();
    for (format, spec, expect) in [
        (
            "dotenv",
            &yaml,
            format!("API_KEY='legacy-api-key-1'\nDB_PASSWORD='{CANARY}'\n"),
        ),
        ("shell", &toml, "export DB_USER='dbuser'\n".to_string()),
        ("yaml", &toml, "DB_USER: dbuser\n".to_string()),
    ] {
        let out = dir.path().join(format!("out.{format}"));
        let r = run(
            fetch(&v).env("VAULT_TOKEN", "root-token-1").args([
                "--spec",
                spec.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--format",
                format,
            ]),
            LIMIT,
        );
        assert_eq!(r.code(), 0, "{format}: {}", r.all());
        assert_eq!(read(&out), expect, "{format}");
        assert_eq!(mode(&out), 0o400);
    }
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "secret:\n  A: ref+env://HOME\n").unwrap();
    let r = run(fetch(&v).args(["--spec", bad.to_str().unwrap()]), LIMIT);
    assert_one_line_error(&r, 3, "bad.yaml");
    // --check resolves and prints names only.
    let r = run(
        fetch(&v).env("VAULT_TOKEN", "root-token-1").args([
            "--check",
            "--spec",
            yaml.to_str().unwrap(),
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stdout.contains("DB_PASSWORD: ok") && !r.all().contains(CANARY),
        "{}",
        r.all()
    );
}

#[test]
fn kubernetes_secrets_through_the_api_server() {
    let config = format!(
        r#"{{"token": "sa-token-k8s-1", "allowed_namespaces": ["app", "other"],
            "secrets": {{"app/db-creds": {{"password": "{CANARY}", "username": "k8s-user"}}}}}}"#
    );
    let k = StandIn::start("k8s", &config, None);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "sa-token-k8s-1\n").unwrap();
    let kube = |extra: &[&str]| {
        let mut c = initbox();
        c.args([
            "fetch-secret",
            "--k8s-api",
            &format!("http://127.0.0.1:{}", k.port),
        ])
        .args([
            "--k8s-token-file",
            token.to_str().unwrap(),
            "--dir",
            dir.path().join("o").to_str().unwrap(),
        ])
        .args(extra);
        c
    };
    let r = run(
        &mut kube(&[
            "--k8s-namespace",
            "app",
            "pw=ref+k8s://db-creds#password",
            "u=ref+k8s://app/db-creds#/username",
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(read(&dir.path().join("o/pw")), CANARY);
    assert_eq!(read(&dir.path().join("o/u")), "k8s-user");
    assert!(!r.all().contains(CANARY));
    let r = run(&mut kube(&["x=ref+k8s://other/nope#k"]), LIMIT);
    assert_one_line_error(&r, 1, "secret not found: kubernetes secret other/nope");
    let r = run(&mut kube(&["x=ref+k8s://kube-system/admin#k"]), LIMIT);
    assert_one_line_error(&r, 5, "forbidden");
    let r = run(&mut kube(&["x=ref+k8s://app/db-creds#nokey"]), LIMIT);
    assert_one_line_error(&r, 1, "available keys: password, username");
    std::fs::write(&token, "wrong-token").unwrap();
    let r = run(&mut kube(&["x=ref+k8s://app/db-creds#password"]), LIMIT);
    assert_one_line_error(&r, 5, "service-account token was refused (HTTP 401");
}

/// The secrets moto (the kit's server, tests/moto) holds for these tests.
fn seed(moto: &Moto) {
    let script = format!(
        r#"
import base64, boto3, json
kw = dict(endpoint_url="{ep}", region_name="eu-west-1", aws_access_key_id="AKIDSEED", aws_secret_access_key="seed")
sm = boto3.client("secretsmanager", **kw)
sm.create_secret(Name="prod/db", SecretString=json.dumps({{"password": "{CANARY}", "user": "aws-user"}}))
sm.create_secret(Name="prod/plain", SecretString="plain-aws-value")
ssm = boto3.client("ssm", **kw)
ssm.put_parameter(Name="/prod/api_key", Value="ssm-api-key-1", Type="SecureString")
ssm.put_parameter(Name="flat", Value="ssm-flat-1", Type="String")
# issue 22: a binary secret (not UTF-8), a base64 JSON document, a hierarchy of parameters
# larger than one GetParametersByPath page.
sm.create_secret(Name="prod/keystore", SecretBinary=bytes([0xFF, 0xD8, 0x00, 0x01, 0x80]))
sm.create_secret(Name="prod/b64json", SecretString=base64.b64encode(json.dumps({{"key": "decoded-first"}}).encode()).decode())
ssm.put_parameter(Name="/app/db/password", Value="ssm-db-pw", Type="SecureString")
ssm.put_parameter(Name="/app/db/user", Value="ssm-db-user", Type="String")
for i in range(12):
    ssm.put_parameter(Name=f"/app/flags/f{{i}}", Value=f"on{{i}}", Type="String")
"#,
        ep = moto.endpoint()
    );
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(o.status.success(), "seeding moto: {}", common::text(&o));
}

#[test]
fn aws_secrets_manager_and_ssm_with_every_credential_source() {
    let moto = Moto::start(None);
    seed(&moto);
    let dir = tempfile::tempdir().unwrap();
    let aws = |out: &str| {
        let mut c = initbox();
        c.args([
            "fetch-secret",
            "--aws-endpoint",
            &moto.endpoint(),
            "--aws-region",
            "eu-west-1",
        ])
        .args(["--dir", dir.path().join(out).to_str().unwrap()])
        .env("HOME", "/nonexistent")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE");
        c
    };
    let refs = [
        "pw=ref+awssm://prod/db#/password",
        "user=ref+awssecrets://prod/db#user",
        "plain=ref+awssm://prod/plain",
        "api=ref+awsssm:///prod/api_key",
        "flat=ref+awsssm://flat",
    ];
    let check = |out: &str, r: &common::Run| {
        assert_eq!(r.code(), 0, "{out}: {}", r.all());
        let o = dir.path().join(out);
        assert_eq!(read(&o.join("pw")), CANARY);
        assert_eq!(read(&o.join("user")), "aws-user");
        assert_eq!(read(&o.join("plain")), "plain-aws-value");
        assert_eq!(read(&o.join("api")), "ssm-api-key-1");
        assert_eq!(read(&o.join("flat")), "ssm-flat-1");
        assert!(!r.all().contains(CANARY));
    };
    // 1. The standard environment.
    let r = run(
        aws("env")
            .env("AWS_ACCESS_KEY_ID", "AKIDENV")
            .env("AWS_SECRET_ACCESS_KEY", "env-secret-key")
            .args(refs),
        LIMIT,
    );
    check("env", &r);
    // 2. A web identity token file (IRSA), exchanged through STS.
    let wi = dir.path().join("web-identity");
    std::fs::write(&wi, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhcHAifQ.sig").unwrap();
    let r = run(
        aws("irsa")
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", &wi)
            .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app")
            .args(["-v"])
            .args(refs),
        LIMIT,
    );
    check("irsa", &r);
    assert!(
        r.stderr.contains("assumed role with web identity"),
        "{}",
        r.stderr
    );
    // 3. A profile in the shared credentials file.
    let creds = dir.path().join("credentials");
    std::fs::write(&creds, "[default]\naws_access_key_id = AKIDDEF\naws_secret_access_key = def\n[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = dev-secret\n").unwrap();
    let r = run(
        aws("profile")
            .env("AWS_SHARED_CREDENTIALS_FILE", &creds)
            .args(["--aws-profile", "dev"])
            .args(refs),
        LIMIT,
    );
    check("profile", &r);
    // Missing secret / parameter: exit 1, fail closed; optional is fine.
    let r = run(
        aws("missing")
            .env("AWS_ACCESS_KEY_ID", "A")
            .env("AWS_SECRET_ACCESS_KEY", "B")
            .args(["a=ref+awssm://prod/none"]),
        LIMIT,
    );
    assert_one_line_error(&r, 1, "secret not found: aws secretsmanager prod/none");
    let r = run(
        aws("missing")
            .env("AWS_ACCESS_KEY_ID", "A")
            .env("AWS_SECRET_ACCESS_KEY", "B")
            .args([
                "a=ref+awsssm:///none?optional=true",
                "b=ref+awssm://prod/db#/nokey",
            ]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(
        r.stderr.contains("available keys: password, user"),
        "{}",
        r.stderr
    );
    // No credentials at all: a usage error naming the sources.
    let r = run(aws("none").args(["a=ref+awssm://prod/db"]), LIMIT);
    assert_one_line_error(&r, 2, "no AWS credentials");
}

/// Every AWS variable a developer's shell may hold, removed so each case sees only its own.
const AWS_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_ENDPOINT_URL",
];

/// `initbox fetch-secret` against moto with a clean AWS environment, writing under `dir`.
fn aws_fetch(moto: &Moto, dir: &Path) -> Command {
    let mut c = initbox();
    c.args(["fetch-secret", "--aws-endpoint", &moto.endpoint()])
        .args(["--dir", dir.to_str().unwrap()])
        .env("HOME", "/nonexistent");
    for v in AWS_VARS {
        c.env_remove(v);
    }
    c
}

/// The stand-in for the credential endpoints that exist only inside AWS (container endpoint,
/// IMDSv2): tests/fixtures/fetch-secret/aws_metadata.py, following AWS's documented APIs.
struct AwsMeta {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for AwsMeta {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AwsMeta {
    fn start(config: &str) -> AwsMeta {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.json");
        std::fs::write(&cfg, config).unwrap();
        let port_file = dir.path().join("port");
        let child = Command::new("python3")
            .arg(format!("{FIXTURES}/aws_metadata.py"))
            .arg(&cfg)
            .arg(&port_file)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the stand-in");
        let port = common::wait_port_file(&port_file, "the stand-in");
        AwsMeta {
            child,
            port,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn count(&self, key: &str) -> u64 {
        let stats: serde_json::Value =
            serde_json::from_str(&http_get(self.port, "/__stats")).unwrap();
        stats[key].as_u64().unwrap_or(0)
    }
}

/// Issue 22 item 1: EKS Pod Identity (FULL_URI + a token file re-read on each refresh), the
/// token from the environment, the SDKs' host rule for FULL_URI, and IMDSv2.
#[test]
fn aws_container_endpoint_and_imds_credentials() {
    let moto = Moto::start(None);
    seed(&moto);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("eks-pod-identity-token");
    std::fs::write(&token_file, "pod-token-1\n").unwrap();
    // Credentials that expire in 2 minutes: fetched again before the second read, with the
    // token the agent has rotated into the file meanwhile.
    let meta = AwsMeta::start(
        &serde_json::json!({
            "token": "pod-token-1",
            "token_file": token_file,
            "next_token": "pod-token-2",
            "expires_in": 120,
        })
        .to_string(),
    );
    let r = run(
        aws_fetch(&moto, &dir.path().join("eks"))
            .args(["--aws-region", "eu-west-1", "-v"])
            .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", meta.url("/creds"))
            .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args([
                "pw=ref+awssm://prod/db#/password",
                "api=ref+awsssm:///prod/api_key",
            ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(read(&dir.path().join("eks/pw")), CANARY);
    assert_eq!(read(&dir.path().join("eks/api")), "ssm-api-key-1");
    assert_eq!(meta.count("GET /creds"), 2, "one fetch, one refresh");
    assert_eq!(
        meta.count("rejected"),
        0,
        "the rotated token was read again"
    );
    assert!(
        !r.all().contains("pod-token") && !r.all().contains(CANARY),
        "{}",
        r.all()
    );

    // AWS_CONTAINER_AUTHORIZATION_TOKEN: the token itself; a wrong one is rejected, exit 5.
    let with_token = |token: &str| {
        let mut c = aws_fetch(&moto, &dir.path().join("tok"));
        c.args(["--aws-region", "eu-west-1"])
            .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", meta.url("/creds"))
            .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", token)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .arg("plain=ref+awssm://prod/plain");
        c
    };
    let r = run(&mut with_token("pod-token-2"), LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(read(&dir.path().join("tok/plain")), "plain-aws-value");
    let r = run(&mut with_token("wrong-token-xyz"), LIMIT);
    assert_error(&r, 5, "container credentials endpoint http://127.0.0.1");
    assert!(!r.all().contains("wrong-token-xyz"), "{}", r.all());

    // Plain http to any host but loopback or the ECS/EKS hosts is refused, nothing contacted.
    let r = run(
        aws_fetch(&moto, &dir.path().join("bad"))
            .args(["--aws-region", "eu-west-1"])
            .env(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://10.1.2.3/creds",
            )
            .arg("plain=ref+awssm://prod/plain"),
        LIMIT,
    );
    assert_one_line_error(&r, 2, "only a loopback address");

    // IMDSv2: a session token first, then the role and its credentials.
    let imds = |out: &str| {
        let mut c = aws_fetch(&moto, &dir.path().join(out));
        c.args(["--aws-region", "eu-west-1"])
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", meta.url(""))
            .arg("plain=ref+awssm://prod/plain");
        c
    };
    let r = run(&mut imds("imds"), LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(read(&dir.path().join("imds/plain")), "plain-aws-value");
    assert_eq!(meta.count("PUT /latest/api/token"), 1);
    assert_eq!(
        meta.count("GET /latest/meta-data/iam/security-credentials/app-role"),
        1
    );
    // Disabled: not contacted.
    let r = run(imds("off").env("AWS_EC2_METADATA_DISABLED", "true"), LIMIT);
    assert_one_line_error(&r, 2, "disabled by AWS_EC2_METADATA_DISABLED");
    assert_eq!(meta.count("PUT /latest/api/token"), 1);
    // Off AWS (nothing listening): the chain ends at once with the reason.
    let closed = free_port();
    let started = Instant::now();
    let r = run(
        imds("offaws").env(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            format!("http://127.0.0.1:{closed}"),
        ),
        LIMIT,
    );
    assert_one_line_error(&r, 2, "not reachable");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "IMDS is one short attempt"
    );

    // The SDKs' order: env, web identity and a profile each come before the container
    // endpoint and IMDS, which are then never contacted.
    let before = (
        meta.count("GET /creds"),
        meta.count("PUT /latest/api/token"),
    );
    let wi = dir.path().join("web-identity");
    std::fs::write(&wi, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhcHAifQ.sig").unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        "[default]\naws_access_key_id = AKIDCFG\naws_secret_access_key = cfg-secret\n",
    )
    .unwrap();
    for source in ["env", "web identity", "profile"] {
        let mut c = imds(&format!("order-{}", source.replace(' ', "-")));
        c.env("AWS_CONTAINER_CREDENTIALS_FULL_URI", meta.url("/creds"))
            .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "pod-token-2");
        match source {
            "env" => c
                .env("AWS_ACCESS_KEY_ID", "AKIDENV")
                .env("AWS_SECRET_ACCESS_KEY", "env-secret-key"),
            "web identity" => c
                .env("AWS_WEB_IDENTITY_TOKEN_FILE", &wi)
                .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app"),
            _ => c.env("AWS_CONFIG_FILE", &config),
        };
        let r = run(&mut c, LIMIT);
        assert_eq!(r.code(), 0, "{source}: {}", r.all());
    }
    assert_eq!(
        (
            meta.count("GET /creds"),
            meta.count("PUT /latest/api/token")
        ),
        before,
        "the container endpoint and IMDS come after env, web identity and profiles"
    );
}

/// Issue 22 item 2: shared config profiles the SDKs accept: keys in the config file only,
/// credential_process, role_arn + source_profile chains (STS AssumeRole, moto's real STS) and
/// web_identity_token_file; plus the region of the profile (item 3).
#[test]
fn aws_shared_config_profiles() {
    let moto = Moto::start(None);
    seed(&moto);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let process = d.join("creds.sh");
    std::fs::write(
        &process,
        "#!/bin/sh\nprintf '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", \"SecretAccessKey\": \"proc-secret-key\", \"Expiration\": \"2099-01-01T00:00:00Z\"}'\n",
    )
    .unwrap();
    let bad_process = d.join("bad.sh");
    std::fs::write(
        &bad_process,
        "#!/bin/sh\nprintf '{\"Version\": 2, \"AccessKeyId\": \"A\", \"SecretAccessKey\": \"bad-secret\"}'\n",
    )
    .unwrap();
    for p in [&process, &bad_process] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let wi = d.join("web-identity");
    std::fs::write(&wi, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhcHAifQ.sig").unwrap();
    let config = d.join("config");
    std::fs::write(
        &config,
        format!(
            "[profile cfg]\naws_access_key_id = AKIDCFG\naws_secret_access_key = cfg-secret\nregion = eu-west-1\n\n\
             [profile proc]\ncredential_process = {}\n\n\
             [profile badproc]\ncredential_process = {}\n\n\
             [profile first]\nrole_arn = arn:aws:iam::123456789012:role/first\nsource_profile = cfg\n\n\
             [profile second]\nrole_arn = arn:aws:iam::123456789012:role/second\nsource_profile = first\n\n\
             [profile wi]\nrole_arn = arn:aws:iam::123456789012:role/wi\nweb_identity_token_file = {}\n\n\
             [profile loop1]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = loop2\n\
             [profile loop2]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = loop1\n",
            process.display(),
            bad_process.display(),
            wi.display()
        ),
    )
    .unwrap();
    let with = |profile: &str, region: bool| {
        let mut c = aws_fetch(&moto, &d.join(profile));
        c.env("AWS_CONFIG_FILE", &config)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(["--aws-profile", profile, "-v"])
            .arg("pw=ref+awssm://prod/db#/password");
        if region {
            c.args(["--aws-region", "eu-west-1"]);
        }
        c
    };
    // Keys in ~/.aws/config only, and the region of that profile.
    for (profile, region) in [
        ("cfg", false),
        ("proc", true),
        ("second", true),
        ("wi", true),
    ] {
        let r = run(&mut with(profile, region), LIMIT);
        assert_eq!(r.code(), 0, "{profile}: {}", r.all());
        assert_eq!(read(&d.join(profile).join("pw")), CANARY, "{profile}");
        assert!(!r.all().contains(CANARY), "{}", r.all());
        assert!(!r.all().contains("proc-secret-key"), "{}", r.all());
        if profile == "second" {
            // The chain: cfg's keys assume role/first, whose credentials assume role/second.
            let first = r.stderr.find("role/first").expect("role/first assumed");
            let second = r.stderr.find("role/second").expect("role/second assumed");
            assert!(first < second, "{}", r.stderr);
        }
        if profile == "wi" {
            assert!(
                r.stderr.contains("assumed role with web identity"),
                "{}",
                r.stderr
            );
        }
    }
    let r = run(&mut with("badproc", true), LIMIT);
    assert_error(&r, 5, "Version is not 1");
    assert!(!r.all().contains("bad-secret"), "{}", r.all());
    // Without -v: the error is the one line (debug lines, such as the CA store's, would add more).
    let mut c = aws_fetch(&moto, &d.join("loop1"));
    c.env("AWS_CONFIG_FILE", &config)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["--aws-profile", "loop1", "--aws-region", "eu-west-1"])
        .arg("pw=ref+awssm://prod/db#/password");
    let r = run(&mut c, LIMIT);
    assert_one_line_error(&r, 2, "source_profile loop: loop1 -> loop2 -> loop1");
}

/// Issue 22 item 3: half-set keys name the missing one; the no-region error lists every
/// source, and AWS_DEFAULT_REGION works.
#[test]
fn aws_missing_secret_key_and_region_are_named() {
    let moto = Moto::start(None);
    seed(&moto);
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        aws_fetch(&moto, dir.path())
            .args(["--aws-region", "eu-west-1"])
            .env("AWS_ACCESS_KEY_ID", "AKIDONLY")
            .arg("a=ref+awssm://prod/plain"),
        LIMIT,
    );
    assert_one_line_error(&r, 2, "AWS_SECRET_ACCESS_KEY is missing");
    // A profile asked for by name that no file has: named, not a silent fall-through.
    let r = run(
        aws_fetch(&moto, dir.path())
            .args(["--aws-region", "eu-west-1", "--aws-profile", "nope"])
            .arg("a=ref+awssm://prod/plain"),
        LIMIT,
    );
    assert_one_line_error(&r, 2, "AWS profile 'nope'");
    let keys = |c: &mut Command| {
        c.env("AWS_ACCESS_KEY_ID", "AKIDENV")
            .env("AWS_SECRET_ACCESS_KEY", "env-secret-key")
            .arg("a=ref+awssm://prod/plain");
    };
    let mut c = aws_fetch(&moto, dir.path());
    keys(&mut c);
    let r = run(&mut c, LIMIT);
    assert_one_line_error(&r, 2, "AWS_DEFAULT_REGION, or region in profile 'default'");
    assert!(r.stderr.contains("AWS_REGION"), "{}", r.stderr);
    let mut c = aws_fetch(&moto, dir.path());
    keys(&mut c);
    let r = run(c.env("AWS_DEFAULT_REGION", "eu-west-1"), LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(read(&dir.path().join("a")), "plain-aws-value");
}

/// Issue 22 items 4-6: a binary SecretBinary is written as bytes to files and refused, naming
/// the reference as written, by --exec and dotenv; `?decode=base64#/key` decodes first, then
/// selects; SSM parameter ARNs; SSM paths as a map (recursive, decrypted, every page).
#[test]
fn aws_binary_secrets_decode_then_select_ssm_arns_and_paths() {
    let moto = Moto::start(None);
    seed(&moto);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let aws = |out: &str| {
        let mut c = aws_fetch(&moto, &d.join(out));
        c.args(["--aws-region", "eu-west-1"])
            .env("AWS_ACCESS_KEY_ID", "AKIDENV")
            .env("AWS_SECRET_ACCESS_KEY", "env-secret-key");
        c
    };
    let r = run(
        aws("files").args([
            "ks=ref+awssm://prod/keystore?decode=base64",
            "j=ref+awssm://prod/b64json?decode=base64#/key",
            "arn=ref+awsssm://arn:aws:ssm:eu-west-1:123456789012:parameter/prod/api_key",
            "dbpw=ref+awsssm:///app/#/db/password",
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let f = d.join("files");
    assert_eq!(
        std::fs::read(f.join("ks")).unwrap(),
        [0xFF, 0xD8, 0x00, 0x01, 0x80]
    );
    assert_eq!(read(&f.join("j")), "decoded-first");
    assert_eq!(read(&f.join("arn")), "ssm-api-key-1");
    assert_eq!(read(&f.join("dbpw")), "ssm-db-pw");

    // The path as a whole: every parameter below it, nested by path segments.
    let out = d.join("app.json");
    let r = run(
        aws("json")
            .args(["--format", "json", "--out"])
            .arg(&out)
            .arg("APP=ref+awsssm:///app/"),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&read(&out)).unwrap();
    assert_eq!(v["APP"]["db"]["password"], "ssm-db-pw");
    assert_eq!(v["APP"]["db"]["user"], "ssm-db-user");
    let flags = v["APP"]["flags"].as_object().unwrap();
    assert_eq!(flags.len(), 12, "every page read: {v}");
    assert_eq!(flags["f11"], "on11");

    // Binary values cannot be environment variables or dotenv text: exit 3, the reference as
    // written, nothing run, nothing written.
    let marker = d.join("ran");
    let r = run(
        aws("exec")
            .args(["--exec", "KS=ref+awssm://prod/keystore?decode=base64", "--"])
            .args(["touch", marker.to_str().unwrap()]),
        LIMIT,
    );
    assert_error(
        &r,
        3,
        "ref+awssm://prod/keystore?decode=base64: the value of KS is binary",
    );
    assert!(!marker.exists());
    let env = d.join("ks.env");
    let r = run(
        aws("dotenv")
            .args(["--format", "dotenv", "--out"])
            .arg(&env)
            .arg("KS=ref+awssm://prod/keystore?decode=base64"),
        LIMIT,
    );
    assert_error(
        &r,
        3,
        "binary (not UTF-8 text), which --format dotenv cannot hold",
    );
    assert!(!env.exists());
}

/// Issue 22 item 7: vals' parameters region, profile, role_arn, version_stage, version_id and
/// mode=singleparam are accepted with vals' meaning; other modes are refused with the reason.
#[test]
fn aws_vals_parameters() {
    let moto = Moto::start(None);
    seed(&moto);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = d.join("config");
    std::fs::write(
        &config,
        "[profile team]\naws_access_key_id = AKIDTEAM\naws_secret_access_key = team-secret\n",
    )
    .unwrap();
    let env_keys = |c: &mut Command| {
        c.env("AWS_ACCESS_KEY_ID", "AKIDENV")
            .env("AWS_SECRET_ACCESS_KEY", "env-secret-key");
    };
    // No --aws-region anywhere: each reference names its region.
    let mut c = aws_fetch(&moto, &d.join("a"));
    env_keys(&mut c);
    let r = run(
        c.arg("-v").args([
            "plain=ref+awssm://prod/plain?region=eu-west-1",
            "pw=ref+awssm://prod/db?region=eu-west-1&version_stage=AWSCURRENT#/password",
            "api=ref+awsssm:///prod/api_key?region=eu-west-1&mode=singleparam",
            "role=ref+awssm://prod/plain?region=eu-west-1&role_arn=arn:aws:iam::123456789012:role/reader",
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(read(&d.join("a/plain")), "plain-aws-value");
    assert_eq!(read(&d.join("a/pw")), CANARY);
    assert_eq!(read(&d.join("a/api")), "ssm-api-key-1");
    assert_eq!(read(&d.join("a/role")), "plain-aws-value");
    assert!(r.stderr.contains("role/reader"), "{}", r.stderr);
    // profile=: that profile's credentials, with no other source configured.
    let r = run(
        aws_fetch(&moto, &d.join("b"))
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .arg("plain=ref+awssm://prod/plain?region=eu-west-1&profile=team"),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(read(&d.join("b/plain")), "plain-aws-value");
    // Another mode is refused with the reason.
    let r = run(
        aws_fetch(&moto, &d.join("c")).arg("x=ref+awsssm:///prod/?mode=recursive"),
        LIMIT,
    );
    assert_one_line_error(&r, 3, "mode=recursive is not supported");
}

/// The kit's test PKI (tests/common/pki.rs): a CA (`ca.crt`), a server certificate for
/// 127.0.0.1 and localhost (`server.pem`) and a client certificate with CN `app` (`client.pem`).
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        common::pki::ca_and_localhost(dir.path(), "test-ca");
        common::pki::client_cert(dir.path(), "client", "app");
        Certs { dir }
    }
}

/// render-config's `secret()` resolves through fetch-secret's backends: one reference syntax,
/// one Vault client, the same redaction.
#[test]
fn render_config_secret_function_reads_vault_through_fetch_secret() {
    let v = vault();
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("app.conf.j2");
    std::fs::write(
        &template,
        "user={{ secret(\"ref+vault://secret/app/db#/username\") }}\n\
         password={{ secret(\"ref+vault://secret/app/db#/password\") }}\n",
    )
    .unwrap();
    let dest = dir.path().join("out/app.conf");
    let render = |tpl: &Path, dest: &Path| {
        let mut c = initbox();
        c.args(["render-config", "-v", "-v"])
            .arg(tpl)
            .arg(dest)
            .env("VAULT_ADDR", v.addr())
            .env("VAULT_TOKEN", "root-token-1")
            .env("HOME", "/nonexistent");
        run(&mut c, LIMIT)
    };
    let r = render(&template, &dest);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(read(&dest), format!("user=dbuser\npassword={CANARY}\n"));
    assert_eq!(mode(&dest), 0o400, "a file holding a secret is 0400");
    assert!(!r.all().contains(CANARY), "the value leaked: {}", r.all());
    // Both references point into one secret: one read.
    assert_eq!(v.count("GET secret/data/app/db"), 1, "{}", v.stats());

    // A missing key fails closed: exit 1, key names listed, no value, nothing written.
    let bad = dir.path().join("bad.j2");
    std::fs::write(
        &bad,
        "x={{ secret(\"ref+vault://secret/app/db#/nope\") }}\n",
    )
    .unwrap();
    let bad_dest = dir.path().join("out/bad.conf");
    let r = render(&bad, &bad_dest);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(
        r.stderr.contains("username") && r.stderr.contains("password"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains(CANARY), "{}", r.all());
    assert!(!bad_dest.exists());
}

/// `NAME=` then one quoted value (which may span lines), per line of `text`, decoded by
/// `unquote(quote, chars)`; the forms initbox writes only.
fn quoted_assignments(
    text: &str,
    unquote: impl Fn(char, &mut std::iter::Peekable<std::str::Chars>) -> String,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.trim().is_empty() {
        rest = rest.trim_start_matches('\n');
        let (k, v) = rest.split_once('=').expect("NAME=VALUE");
        let mut chars = v.chars().peekable();
        let quote = chars.next().expect("a quoted value");
        assert!(quote == '\'' || quote == '"', "unquoted value: {v}");
        let value = unquote(quote, &mut chars);
        let after: String = chars.collect();
        let (line_rest, next) = after.split_once('\n').unwrap_or((&after, ""));
        assert_eq!(line_rest.trim(), "", "text after the value of {k}");
        out.push((k.to_string(), value));
        rest = &v[v.len() - next.len()..];
        if next.is_empty() {
            break;
        }
    }
    out
}

/// docker compose's documented `env_file` rules for the forms initbox writes: `'…'` literal
/// except `\'`; `"…"` with `\n`, `\r`, `\t`, `\\`, `\"` decoded and `$` interpolated (which
/// initbox never writes there); both may span lines.
fn compose_env_file(text: &str) -> Vec<(String, String)> {
    quoted_assignments(text, |quote, chars| {
        let mut val = String::new();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (_, c) if c == quote => break,
                ('\'', '\\') if chars.peek() == Some(&'\'') => val.push(chars.next().unwrap()),
                ('"', '\\') => match chars.next().expect("escape") {
                    'n' => val.push('\n'),
                    'r' => val.push('\r'),
                    't' => val.push('\t'),
                    c @ ('\\' | '"') => val.push(c),
                    c => panic!("escape \\{c}"),
                },
                ('"', '$') => panic!("a '$' compose would interpolate"),
                (_, c) => val.push(c),
            }
        }
        val
    })
}

/// systemd's `EnvironmentFile=` rules (systemd.exec(5)): `'…'` may span lines and holds every
/// character but `'` verbatim, no escapes; in `"…"` a backslash before `"`, `\`, `` ` `` or `$`
/// keeps that character, before a newline continues the line (both dropped), before anything
/// else is kept with it.
fn systemd_env_file(text: &str) -> Vec<(String, String)> {
    quoted_assignments(text, |quote, chars| {
        let mut val = String::new();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (_, c) if c == quote => break,
                ('"', '\\') => match chars.next().expect("escape") {
                    c @ ('"' | '\\' | '`' | '$') => val.push(c),
                    '\n' => {}
                    c => {
                        val.push('\\');
                        val.push(c);
                    }
                },
                (_, c) => val.push(c),
            }
        }
        val
    })
}

/// Issue 22 item 8: one dotenv file that docker compose, python-dotenv, systemd and bash
/// (`set -a; . FILE`) all read back to the same bytes; values no quoting keeps intact for all
/// four are refused.
#[test]
fn dotenv_output_reads_the_same_in_compose_python_dotenv_systemd_and_bash() {
    let dir = tempfile::tempdir().unwrap();
    let values = [
        ("SPACES", "two words"),
        ("QUOTES", r#"say "hi" and it's"#),
        ("HASH", "a#b # not a comment"),
        ("DOLLAR", "pa$word $HOME $"),
        ("BACKTICK", "run `id` and $(id) now"),
        ("BACKSLASH", r"C:\path\\share\x \'"),
        ("NEWLINES", "line 1\nline 2\n"),
        ("DOLLAR_NEWLINE", "a $x\nb"),
        ("EQUALS", "k=v=w"),
        ("PADDED", "  padded \t "),
        ("ESCAPES", r"tab\t nl\n"),
        ("EMPTY", ""),
    ];
    let out = dir.path().join("secrets.env");
    let mut c = initbox();
    c.args(["fetch-secret", "--format", "dotenv", "--out"])
        .arg(&out);
    for (k, v) in values {
        c.env(format!("T_{k}"), v)
            .arg(format!("{k}=ref+env://T_{k}"));
    }
    let r = run(&mut c, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    let text = read(&out);
    let mut want: Vec<(String, String)> = values
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    want.sort();
    let mut compose = compose_env_file(&text);
    compose.sort();
    assert_eq!(compose, want, "docker compose rules:\n{text}");
    let mut systemd = systemd_env_file(&text);
    systemd.sort();
    assert_eq!(systemd, want, "systemd EnvironmentFile rules:\n{text}");
    let py = Command::new("python3")
        .arg("-c")
        .arg(
            "import json,sys,dotenv; \
             print(json.dumps(sorted(dotenv.dotenv_values(sys.argv[1]).items())))",
        )
        .arg(&out)
        .output()
        .expect("python3");
    assert!(py.status.success(), "python-dotenv: {}", common::text(&py));
    let py: Vec<(String, String)> = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(py, want, "python-dotenv:\n{text}");
    // bash: `set -a; . FILE`, then each variable printed NUL-terminated.
    let names: Vec<&str> = values.iter().map(|(k, _)| *k).collect();
    let sh = Command::new("env")
        .args(["-i", "PATH=/usr/bin:/bin", "bash", "-c"])
        .arg(r#"set -a; . "$1" || exit 9; shift; for n in "$@"; do printf '%s\0%s\0' "$n" "${!n}"; done"#)
        .arg("bash")
        .arg(&out)
        .args(&names)
        .output()
        .expect("bash");
    assert!(sh.status.success(), "bash: {}", common::text(&sh));
    let parts: Vec<String> = String::from_utf8(sh.stdout)
        .unwrap()
        .split('\0')
        .map(str::to_string)
        .collect();
    let mut bash: Vec<(String, String)> = parts
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect();
    bash.sort();
    assert_eq!(bash, want, "bash set -a; . file:\n{text}");

    // A value no quoting keeps intact for all four is refused, named, never echoed.
    let refused = dir.path().join("refused.env");
    for (value, why) in [
        ("tok${en}Canary", "value of X"),
        ("it's $5 Canary", "together with '$' or '`'"),
        ("it's `id` Canary", "together with '$' or '`'"),
        ("Canary\r\n", "carriage return"),
        (r"C:\dir\", "ends with a backslash"),
    ] {
        let r = run(
            initbox()
                .args(["fetch-secret", "--format", "dotenv", "--out"])
                .arg(&refused)
                .env("T_X", value)
                .arg("X=ref+env://T_X"),
            LIMIT,
        );
        assert_one_line_error(&r, 3, why);
        assert!(!r.all().contains("Canary"), "{}", r.all());
        assert!(!refused.exists());
    }
}

#[test]
fn a_name_that_is_no_file_name_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for name in [".", "sub/.", ".."] {
        let r = run(
            initbox()
                .arg("fetch-secret")
                .arg("--dir")
                .arg(dir.path())
                .arg(format!("{name}=ref+env://HOME")),
            LIMIT,
        );
        assert_one_line_error(&r, 2, &format!("'{name}'"));
    }
}
