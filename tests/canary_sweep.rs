//! The canary sweep (issue 12 "done when"; issue 21 items 3-6): every applet, through its
//! success and failure paths, with a canary in every secret-bearing input, at `-v -v` in text
//! and in JSON logs with `--termination-log FILE`, plus `--help` and `-h` with every `INITBOX_*`
//! variable holding a canary. Each run's stdout, stderr and termination log must contain no form
//! of the canary (raw, each 6+ character fragment, base64 standard and URL-safe at the three
//! alignments, percent-encoded, JSON-escaped); the intended destination (the written file, the
//! exec'd command's environment written to a file, the server that was sent it, stdout for
//! render-config to `-`) must contain it, which proves the probe really went down that path.
//!
//! Real servers: PostgreSQL (5432, trust: its password is never checked, so its probes exercise
//! how URLs are shown), MariaDB (3306; a user is created with the canary as password, and root's
//! empty password makes any canary password a rejected credential), RabbitMQ (5672, wrong
//! password), and private Redis, NATS and Mosquitto servers started here with the canary as
//! their password. STAND-INS: a local HTTP server (tests/common/echo.rs) that echoes each
//! request back in its error body, as many real services' error pages do; and the Vault
//! stand-in of tests/fixtures/fetch-secret/standin.py (Vault's documented HTTP API) since no
//! Vault server can be had here.
//!
//! The probes are one table (`probes()`); one loop runs them in a few threads and every failure
//! is collected and printed together, grouped by probe, with the applet, the issue item, the
//! variant, the channel (stdout, stderr, termination log), the form of the canary and an
//! excerpt. On a clean tree the sweep passes; while leaks remain it fails listing each.

mod common;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::canary;
use common::echo::Echo;
use common::git::{Repo, basic, smart_http};
use common::http::HttpServer;
use common::pg::ScramCluster;
use common::pki;

/// Bound on one run (every probe uses `--timeout 2s` or `--once`).
const LIMIT: Duration = Duration::from_secs(30);
/// Runs at once.
const THREADS: usize = 4;
const BIN: &str = env!("CARGO_BIN_EXE_initbox");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fetch-secret");

/// A canary: letters and digits only, distinctive, different per `tag`.
fn canary(tag: &str) -> String {
    format!("Kq{tag}Zx9w3Cnry")
}

/// Where a probe's secret is meant to go.
#[derive(Debug, Clone)]
enum Dest {
    /// Nowhere visible (an auth failure, a usage error): only the leak checks apply.
    None,
    /// Standard output (render-config to `-`): stdout is not checked for leaks.
    Stdout,
    /// A file the run writes (fetch-secret's output, a rendered file, the env of an exec'd
    /// command written by it).
    File(PathBuf),
    /// The echo server received it (a header, a URL path or query, a Basic credential).
    Server,
    /// The git smart HTTP server received it (git-checkout's token, as a Basic credential).
    Git,
}

#[derive(Debug, Clone)]
struct Probe {
    name: String,
    /// The issue item the probe reproduces, if any.
    issue: &'static str,
    /// `""` for the front (`initbox` itself).
    applet: &'static str,
    args: Vec<String>,
    /// Where the logging flags go in `args` (after `run` of `notify run`).
    flag_at: usize,
    env: Vec<(String, String)>,
    /// Secrets; the first is the one the intended destination must hold.
    secrets: Vec<String>,
    dest: Dest,
    /// Exit codes that mean the intended path ran (empty: any).
    codes: Vec<i32>,
    /// `--help`/`-h` probes run once, as given; others in the text and JSON variants.
    help: bool,
    /// Text the output must still hold: a short secret must not shred unrelated words.
    keep: Vec<String>,
}

fn probe(name: &str, applet: &'static str, args: &[&str], secret: &str) -> Probe {
    Probe {
        name: name.to_string(),
        issue: "",
        applet,
        args: args.iter().map(|s| s.to_string()).collect(),
        flag_at: 0,
        env: Vec::new(),
        secrets: vec![secret.to_string()],
        dest: Dest::None,
        codes: Vec::new(),
        help: false,
        keep: Vec::new(),
    }
}

impl Probe {
    fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
    fn also(mut self, secret: &str) -> Self {
        self.secrets.push(secret.to_string());
        self
    }
    fn dest(mut self, d: Dest) -> Self {
        self.dest = d;
        self
    }
    fn codes(mut self, c: &[i32]) -> Self {
        self.codes = c.to_vec();
        self
    }
    fn issue(mut self, i: &'static str) -> Self {
        self.issue = i;
        self
    }
    fn keep(mut self, word: &str) -> Self {
        self.keep.push(word.to_string());
        self
    }
    fn flag_at(mut self, at: usize) -> Self {
        self.flag_at = at;
        self
    }
}

/// Servers and files the probes use; servers started here are stopped on drop.
struct Fixtures {
    /// A private PostgreSQL cluster with scram-sha-256 authentication (the shared server on
    /// 5432 trusts every connection, so a password is never checked there). First, so it is
    /// stopped before `dir`, which holds it, is removed.
    pg: ScramCluster,
    dir: tempfile::TempDir,
    echo: Echo,
    redis_port: u16,
    nats_port: u16,
    mqtt_port: u16,
    vault_port: u16,
    k8s_port: u16,
    /// Kubeconfigs for the Kubernetes API stand-in (tests/fixtures/k8s/apiserver.py): `ok`
    /// with the token it accepts, `bad` with another; both tokens are canaries.
    kube_ok: PathBuf,
    kube_bad: PathBuf,
    /// A real git smart HTTP server (git-http-backend over TLS, tests/common/git.rs) serving
    /// `app.git` to `x-access-token:canary("gittok")` only; its CA is `git/ca.crt`.
    git: HttpServer,
    children: Vec<Child>,
}

impl Drop for Fixtures {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Fixtures {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }
    /// Write a file under the fixture directory; returns its path.
    fn file(&self, name: &str, content: &str) -> String {
        let p = self.path(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p.to_str().unwrap().to_string()
    }
}

fn wait_listening(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "server on port {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(cmd: &mut Command, what: &str) -> Child {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e} (bash tests/run-all.sh installs it)"))
}

/// Start tests/fixtures/fetch-secret/standin.py in `mode` (vault, k8s); returns its port.
fn start_standin(children: &mut Vec<Child>, dir: &Path, mode: &str, config: &Path) -> u16 {
    let port_file = dir.join(format!("{mode}.port"));
    children.push(
        Command::new("python3")
            .arg(format!("{FIXTURES}/standin.py"))
            .arg(mode)
            .arg(config)
            .arg(&port_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the stand-in"),
    );
    common::wait_port_file(&port_file, &format!("the {mode} stand-in"))
}

fn mysql(sql: &str) {
    let o = Command::new("mysql")
        .args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", "-e", sql])
        .output()
        .expect("mysql client");
    assert!(o.status.success(), "mysql {sql}: {}", common::text(&o));
}

fn setup() -> Fixtures {
    common::require_service("PostgreSQL", "127.0.0.1:5432");
    common::require_service("MariaDB", "127.0.0.1:3306");
    common::require_service("RabbitMQ", "127.0.0.1:5672");
    let dir = tempfile::tempdir().unwrap();
    let mut children = Vec::new();

    let redis_port = common::free_port();
    children.push(spawn(
        &mut common::redis_server(redis_port, &["--requirepass", &canary("redisok")]),
        "redis-server",
    ));
    let nats_port = common::free_port();
    children.push(spawn(
        Command::new("nats-server").args([
            "-a",
            "127.0.0.1",
            "-p",
            &nats_port.to_string(),
            "--user",
            "app",
            "--pass",
            &canary("natsok"),
        ]),
        "nats-server",
    ));
    let (mut mosquitto, mqtt_port) =
        common::mosquitto_with_user(dir.path(), "app", &canary("mqttok"));
    children.push(spawn(&mut mosquitto, "mosquitto"));

    // The Vault stand-in: a KV v2 secret holding a canary, and a canary token.
    let vault_cfg = dir.path().join("vault.json");
    std::fs::write(
        &vault_cfg,
        format!(
            r#"{{"mounts": {{"secret/": {{"type": "kv", "version": "2"}}}},
  "kv": {{"secret/": {{"app": [{{"user": "app", "pw": "{}"}}]}}}},
  "tokens": {{"{}": {{"policies": ["root"]}}}},
  "auth": {{"userpass": {{"alice": "{}"}}}}}}"#,
            canary("vval"),
            canary("vtok"),
            canary("vup")
        ),
    )
    .unwrap();
    let vault_port = start_standin(&mut children, dir.path(), "vault", &vault_cfg);
    let k8s_cfg = dir.path().join("k8s.json");
    std::fs::write(
        &k8s_cfg,
        format!(
            r#"{{"token": "{}", "allowed_namespaces": ["app"],
  "secrets": {{"app/db": {{"password": "{}", "username": "app"}}}}}}"#,
            canary("k8stok"),
            canary("k8sval")
        ),
    )
    .unwrap();
    let k8s_port = start_standin(&mut children, dir.path(), "k8s", &k8s_cfg);

    let (kube_ok, kube_bad) = start_kube_api(&mut children, dir.path());

    let git_dir = dir.path().join("git");
    std::fs::create_dir_all(&git_dir).unwrap();
    let repo = Repo::new(&git_dir);
    pki::ca_and_localhost(&git_dir, "git test CA");
    let git = smart_http(
        &repo.root,
        Some(pki::server_config(&git_dir, "server")),
        Some(basic("x-access-token", &canary("gittok"))),
    );

    // MariaDB users whose password is a canary (the success paths).
    for (user, tag) in [("canary_url", "myok"), ("canary_env", "mypwd")] {
        let pw = canary(tag);
        mysql(&format!(
            "CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{pw}'; \
             ALTER USER '{user}'@'%' IDENTIFIED BY '{pw}'; \
             GRANT ALL ON test.* TO '{user}'@'%';"
        ));
    }
    let pg = ScramCluster::init(&dir.path().join("pg"), &canary("pgok"), "");
    pg.pg_ctl(&["-w", "start"]);
    let pg_port = pg.port;
    for port in [
        redis_port, nats_port, mqtt_port, vault_port, k8s_port, pg_port,
    ] {
        wait_listening(port);
    }
    Fixtures {
        dir,
        echo: Echo::start(),
        redis_port,
        nats_port,
        mqtt_port,
        vault_port,
        k8s_port,
        kube_ok,
        kube_bad,
        pg,
        git,
        children,
    }
}

/// The Kubernetes API stand-in (HTTPS with a CA of its own, bearer tokens; STAND-IN: no API
/// server can run here) with `canary("kubetok")` as its one valid token. Returns kubeconfigs
/// whose token file holds that token and another canary.
fn start_kube_api(children: &mut Vec<Child>, dir: &Path) -> (PathBuf, PathBuf) {
    let d = dir.join("kube");
    std::fs::create_dir_all(&d).unwrap();
    pki::ca_and_localhost(&d, "kubernetes-ca");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/k8s/apiserver.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(["--token", &canary("kubetok"), "--cert"])
        .arg(d.join("server.pem"))
        .arg("--key")
        .arg(d.join("server.key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs the Kubernetes API stand-in");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("Kubernetes API stand-in: {line:?}"));
    // Its stdin stays open (it serves until stdin ends): the child keeps it.
    children.push(child);
    let config = |name: &str, token: &str| {
        std::fs::write(d.join(format!("{name}.token")), format!("{token}\n")).unwrap();
        let path = d.join(format!("{name}.kubeconfig"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: s\n  cluster:\n    \
                 server: https://127.0.0.1:{port}\n    certificate-authority: {ca}\ncontexts:\n- name: c\n  \
                 context:\n    cluster: s\n    user: u\n    namespace: app\nusers:\n- name: u\n  user:\n    \
                 tokenFile: {tok}\n",
                ca = d.join("ca.crt").display(),
                tok = d.join(format!("{name}.token")).display()
            ),
        )
        .unwrap();
        path
    };
    (
        config("ok", &canary("kubetok")),
        config("bad", &canary("kubebad")),
    )
}

/// Every probe: one table.
fn probes(fx: &Fixtures) -> Vec<Probe> {
    let mut v = Vec::new();
    let e = |path: &str| fx.echo.url(path);
    let ea = fx.echo.authority();
    let out = |name: &str| fx.p(&format!("out/{name}"));
    let file_dest = |name: &str| Dest::File(fx.path(&format!("out/{name}")));
    let write_env = |var: &str, name: &str| format!("printf %s \"${var}\" > {}", out(name));
    std::fs::create_dir_all(fx.path("out")).unwrap();

    // ---- wait-for-tcp, wait-for-dns: no secret flags; a secret in the environment of the
    // follow-up command must reach it and nothing else.
    let c = canary("tcpok");
    v.push(
        probe(
            "wait-for-tcp/follow-up env/ok",
            "wait-for-tcp",
            &[
                "--once",
                &ea,
                "--",
                "sh",
                "-c",
                &write_env("TCP_SECRET", "tcp"),
            ],
            &c,
        )
        .env("TCP_SECRET", &c)
        .dest(file_dest("tcp"))
        .codes(&[0]),
    );
    let c = canary("tcpfail");
    v.push(
        probe(
            "wait-for-tcp/closed port/fail",
            "wait-for-tcp",
            &["--timeout", "2s", "127.0.0.1:1", "--", "sh", "-c", "exit 0"],
            &c,
        )
        .env("TCP_SECRET", &c)
        .env("WAIT_HOSTS", "127.0.0.1:1")
        .codes(&[124]),
    );
    let c = canary("dnsok");
    v.push(
        probe(
            "wait-for-dns/follow-up env/ok",
            "wait-for-dns",
            &[
                "--once",
                "localhost",
                "--",
                "sh",
                "-c",
                &write_env("DNS_SECRET", "dns"),
            ],
            &c,
        )
        .env("DNS_SECRET", &c)
        .dest(file_dest("dns"))
        .codes(&[0]),
    );
    let c = canary("dnsfail");
    v.push(
        probe(
            "wait-for-dns/no server/fail",
            "wait-for-dns",
            &[
                "--once",
                "--server",
                "127.0.0.1:1",
                "--attempt-timeout",
                "1s",
                "nope.invalid",
            ],
            &c,
        )
        .env("DNS_SECRET", &c)
        .codes(&[1]),
    );

    // ---- wait-for: database and broker URLs, files, headers, Basic credentials.
    let c = canary("pgurl");
    v.push(
        probe(
            "wait-for/postgres url password/ok",
            "wait-for",
            &[
                "--once",
                &format!("postgres://postgres:{c}@127.0.0.1:5432/postgres"),
            ],
            &c,
        )
        .codes(&[0]),
    );
    let c = canary("pgfile");
    let pw = fx.file("pgfile.pw", &format!("{c}\n"));
    v.push(
        probe(
            "wait-for/postgres --password-file/ok",
            "wait-for",
            &[
                "--once",
                "--password-file",
                &pw,
                "postgres://postgres@127.0.0.1:5432/postgres",
            ],
            &c,
        )
        .codes(&[0]),
    );
    let c = canary("pgqf");
    let pw = fx.file("pgqf.pw", &format!("{c}\n"));
    v.push(
        probe(
            "wait-for/postgres ?password_file=/ok",
            "wait-for",
            &[
                "--once",
                &format!("postgres://postgres@127.0.0.1:5432/postgres?password_file={pw}"),
            ],
            &c,
        )
        .codes(&[0]),
    );
    let c = canary("myok");
    v.push(
        probe(
            "wait-for/mariadb url password/ok",
            "wait-for",
            &[
                "--once",
                &format!("mysql://canary_url:{c}@127.0.0.1:3306/test"),
            ],
            &c,
        )
        .codes(&[0]),
    );
    let c = canary("mybad");
    v.push(
        probe(
            "wait-for/mariadb wrong password/fail",
            "wait-for",
            &[
                "--timeout",
                "2s",
                &format!("mysql://root:{c}@127.0.0.1:3306/test"),
            ],
            &c,
        )
        .codes(&[5]),
    );
    let c = canary("redisok");
    v.push(
        probe(
            "wait-for/redis url password/ok",
            "wait-for",
            &[
                "--once",
                &format!("redis://:{c}@127.0.0.1:{}", fx.redis_port),
            ],
            &c,
        )
        .codes(&[0]),
    );
    let c = canary("redisbad");
    v.push(
        probe(
            "wait-for/redis wrong password/fail",
            "wait-for",
            &[
                "--timeout",
                "2s",
                &format!("redis://:{c}@127.0.0.1:{}", fx.redis_port),
            ],
            &c,
        )
        .codes(&[5]),
    );
    let c = canary("redisok");
    let f = fx.file(
        "redis.url",
        &format!("redis://:{c}@127.0.0.1:{}\n", fx.redis_port),
    );
    v.push(
        probe(
            "wait-for/@FILE url with password/ok",
            "wait-for",
            &["--once", &format!("@{f}")],
            &c,
        )
        .codes(&[0]),
    );
    let c = canary("amqpbad");
    v.push(
        probe(
            "wait-for/amqp wrong password/fail",
            "wait-for",
            &[
                "--timeout",
                "2s",
                &format!("amqp://guest:{c}@127.0.0.1:5672/"),
            ],
            &c,
        )
        .codes(&[5]),
    );
    let c = canary("natsok");
    v.push(
        probe(
            "wait-for/nats url password/ok",
            "wait-for",
            &[
                "--once",
                &format!("nats://app:{c}@127.0.0.1:{}", fx.nats_port),
            ],
            &c,
        )
        .codes(&[0]),
    );
    let c = canary("natsbad");
    v.push(
        probe(
            "wait-for/nats wrong password/fail",
            "wait-for",
            &[
                "--timeout",
                "2s",
                &format!("nats://app:{c}@127.0.0.1:{}", fx.nats_port),
            ],
            &c,
        )
        .codes(&[5]),
    );
    let c = canary("mqttok");
    v.push(
        probe(
            "wait-for/mqtt url password/ok",
            "wait-for",
            &[
                "--once",
                &format!("mqtt://app:{c}@127.0.0.1:{}", fx.mqtt_port),
            ],
            &c,
        )
        .codes(&[0]),
    );
    let c = canary("mqttbad");
    v.push(
        probe(
            "wait-for/mqtt wrong password/fail",
            "wait-for",
            &[
                "--timeout",
                "2s",
                &format!("mqtt://app:{c}@127.0.0.1:{}", fx.mqtt_port),
            ],
            &c,
        )
        .codes(&[5]),
    );
    let c = canary("hdrok");
    v.push(
        probe(
            "wait-for/http -H X-Api-Key/ok",
            "wait-for",
            &["--once", "-H", &format!("X-Api-Key: {c}"), &e("/ok")],
            &c,
        )
        .dest(Dest::Server)
        .codes(&[0]),
    );
    let c = canary("hdrfail");
    v.push(
        probe(
            "wait-for/http Authorization header echoed in a 401 body/fail",
            "wait-for",
            &[
                "--once",
                "-H",
                &format!("Authorization: Bearer {c}"),
                &e("/fail"),
            ],
            &c,
        )
        .dest(Dest::Server)
        .codes(&[1]),
    );
    let c = canary("hdrenv");
    v.push(
        probe(
            "wait-for/INITBOX_HTTP_HEADERS echoed/fail",
            "wait-for",
            &["--once", &e("/fail")],
            &c,
        )
        .env("INITBOX_HTTP_HEADERS", &format!("X-Api-Key: {c}"))
        .dest(Dest::Server)
        .codes(&[1]),
    );
    let c = canary("basic");
    v.push(
        probe(
            "wait-for/http user:pass Basic echoed in a 401 body/fail",
            "wait-for",
            &["--once", &format!("http://user:{c}@{ea}/fail")],
            &c,
        )
        .issue("21.4")
        .dest(Dest::Server)
        .codes(&[1]),
    );
    let c = canary("basicbody");
    v.push(
        probe(
            "wait-for/http Basic echoed in a 200 body that fails --body-regex/fail",
            "wait-for",
            &[
                "--once",
                "--body-regex",
                "^never$",
                &format!("http://user:{c}@{ea}/okecho"),
            ],
            &c,
        )
        .issue("21.4")
        .dest(Dest::Server)
        .codes(&[1]),
    );
    let c = canary("targetsenv");
    v.push(
        probe(
            "wait-for/INITBOX_WAIT_FOR_TARGETS postgres password/deadline",
            "wait-for",
            &["--timeout", "2s"],
            &c,
        )
        .env(
            "INITBOX_WAIT_FOR_TARGETS",
            &format!("postgres://u:{c}@127.0.0.1:1/db"),
        )
        .codes(&[124]),
    );
    let c = format!("{}@ss/w:rd{}", canary("amb1"), canary("amb2"));
    v.push(
        probe(
            "wait-for/postgres password with unencoded '@ / :' (p@ss/w:rd)",
            "wait-for",
            &["--once", &format!("postgres://app:{c}@127.0.0.1:5432/app")],
            &c,
        )
        .issue("12.2")
        .codes(&[2]),
    );
    let c = format!("{}#1{}", canary("hash1"), canary("hash2"));
    v.push(
        probe(
            "wait-for/postgres password with unencoded '#' (secret#1)",
            "wait-for",
            &["--once", &format!("postgres://app:{c}@127.0.0.1:5432/app")],
            &c,
        )
        .issue("12.2")
        .codes(&[2]),
    );
    let c = format!("{}@{}", canary("redamb1"), canary("redamb2"));
    v.push(
        probe(
            "wait-for/redis password with unencoded '@'",
            "wait-for",
            &[
                "--once",
                &format!("redis://:{c}@127.0.0.1:{}", fx.redis_port),
            ],
            &c,
        )
        .issue("12.2")
        .codes(&[2]),
    );
    // Issue 12 item 2 for every credential-bearing scheme: an unencoded '@' (and '/', ':')
    // in the password makes the userinfo ambiguous: exit 2, no part of it echoed.
    for (scheme, port) in [
        ("mysql", 3306),
        ("amqp", 5672),
        ("nats", fx.nats_port),
        ("mqtt", fx.mqtt_port),
    ] {
        let c = format!(
            "{}@ss/w:rd{}",
            canary(&format!("{scheme}amb1")),
            canary(&format!("{scheme}amb2"))
        );
        v.push(
            probe(
                &format!("wait-for/{scheme} password with unencoded '@ / :'"),
                "wait-for",
                &["--once", &format!("{scheme}://app:{c}@127.0.0.1:{port}/x")],
                &c,
            )
            .issue("12.2")
            .codes(&[2]),
        );
    }
    let c = canary("mypwd");
    v.push(
        probe(
            "wait-for/MYSQL_PWD for a URL without password/ok",
            "wait-for",
            &["--once", "mysql://canary_env@127.0.0.1:3306/test"],
            &c,
        )
        .issue("12.3")
        .env("MYSQL_PWD", &c)
        .codes(&[0]),
    );
    let c = canary("redisok");
    v.push(
        probe(
            "wait-for/REDISCLI_AUTH for a URL without password/ok",
            "wait-for",
            &["--once", &format!("redis://127.0.0.1:{}", fx.redis_port)],
            &c,
        )
        .issue("12.3")
        .env("REDISCLI_AUTH", &c)
        .codes(&[0]),
    );
    let c = canary("pgpass");
    v.push(
        probe(
            "wait-for/PGPASSWORD for a URL without password/ok",
            "wait-for",
            &["--once", "postgres://postgres@127.0.0.1:5432/postgres"],
            &c,
        )
        .issue("12.3")
        .env("PGPASSWORD", &c)
        .codes(&[0]),
    );

    let c = canary("hdrfile");
    let f = fx.file("hdr.token", &format!("{c}\n"));
    v.push(
        probe(
            "wait-for/-H 'X-Api-Key: @FILE' echoed/fail",
            "wait-for",
            &["--once", "-H", &format!("X-Api-Key: @{f}"), &e("/fail/hf")],
            &c,
        )
        .dest(Dest::Server)
        .codes(&[1]),
    );
    let c = canary("redisfile");
    let f = fx.file("redis.pw", &format!("{c}\n"));
    v.push(
        probe(
            "wait-for/redis --password-file wrong password/fail",
            "wait-for",
            &[
                "--timeout",
                "2s",
                "--password-file",
                &f,
                &format!("redis://127.0.0.1:{}", fx.redis_port),
            ],
            &c,
        )
        .codes(&[5]),
    );
    let c = canary("pwenv");
    let f = fx.file("pwenv.pw", &format!("{c}\n"));
    v.push(
        probe(
            "wait-for/INITBOX_PASSWORD_FILE wrong mariadb password/fail",
            "wait-for",
            &["--timeout", "2s", "mysql://root@127.0.0.1:3306/test"],
            &c,
        )
        .env("INITBOX_PASSWORD_FILE", &f)
        .codes(&[5]),
    );

    let pg = fx.pg.port;
    let c = canary("pgok");
    v.push(
        probe(
            "wait-for/postgres (scram) url password/ok",
            "wait-for",
            &[
                "--once",
                &format!("postgres://postgres:{c}@127.0.0.1:{pg}/postgres"),
            ],
            &c,
        )
        .codes(&[0]),
    );
    let c = canary("pgbad");
    v.push(
        probe(
            "wait-for/postgres (scram) wrong password/fail",
            "wait-for",
            &[
                "--timeout",
                "2s",
                &format!("postgres://postgres:{c}@127.0.0.1:{pg}/postgres"),
            ],
            &c,
        )
        .codes(&[5]),
    );
    let c = canary("pgok");
    let f = fx.file("pgok.pw", &format!("{c}\n"));
    v.push(
        probe(
            "wait-for/postgres (scram) --password-file/ok",
            "wait-for",
            &[
                "--once",
                "--password-file",
                &f,
                &format!("postgres://postgres@127.0.0.1:{pg}/postgres"),
            ],
            &c,
        )
        .codes(&[0]),
    );
    v.push(
        probe(
            "wait-for/postgres (scram) PGPASSWORD for a URL without password/ok",
            "wait-for",
            &[
                "--once",
                &format!("postgres://postgres@127.0.0.1:{pg}/postgres"),
            ],
            &c,
        )
        .issue("12.3")
        .env("PGPASSWORD", &c)
        .codes(&[0]),
    );
    let mig0 = fx.file("migrations-pg/1_init.sql", "SELECT 1;\n");
    let mig0 = Path::new(&mig0)
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    v.push(
        probe(
            "run-migrations/postgres (scram) url password status/ok",
            "run-migrations",
            &[
                "--database-url",
                &format!("postgres://postgres:{c}@127.0.0.1:{pg}/postgres"),
                "--dir",
                &mig0,
                "--timeout",
                "2s",
                "status",
            ],
            &c,
        )
        .codes(&[0, 1]),
    );
    v.push(
        probe(
            "run-migrations/postgres (scram) PGPASSWORD/ok",
            "run-migrations",
            &[
                "--database-url",
                &format!("postgres://postgres@127.0.0.1:{pg}/postgres"),
                "--dir",
                &mig0,
                "--timeout",
                "2s",
                "status",
            ],
            &c,
        )
        .issue("12.3")
        .env("PGPASSWORD", &c)
        .codes(&[0, 1]),
    );
    let c = canary("rmpgbad");
    v.push(
        probe(
            "run-migrations/postgres (scram) wrong password/fail",
            "run-migrations",
            &[
                "--database-url",
                &format!("postgres://postgres:{c}@127.0.0.1:{pg}/postgres"),
                "--dir",
                &mig0,
                "--timeout",
                "2s",
            ],
            &c,
        )
        .codes(&[5]),
    );

    // TLS asked of plain servers: the handshake fails, and the error must not show the URL's
    // password.
    let redis_port = fx.redis_port;
    let mqtt_port = fx.mqtt_port;
    for (tag, url) in [
        ("tlsredis", format!("rediss://:{{}}@127.0.0.1:{redis_port}")),
        ("tlsamqp", "amqps://guest:{}@127.0.0.1:5672/".to_string()),
        ("tlsmqtt", format!("mqtts://app:{{}}@127.0.0.1:{mqtt_port}")),
        ("tlshttp", format!("https://user:{{}}@{ea}/ok")),
        (
            "tlspg",
            format!(
                "postgres://postgres:{{}}@127.0.0.1:{}/postgres?sslmode=require",
                fx.pg.port
            ),
        ),
    ] {
        let c = canary(tag);
        let url = url.replace("{}", &c);
        let scheme = url.split(':').next().unwrap().to_string();
        v.push(
            probe(
                &format!("wait-for/{scheme} TLS handshake with a plain server/fail"),
                "wait-for",
                &["--once", "--attempt-timeout", "2s", &url],
                &c,
            )
            .codes(&[1]),
        );
    }
    let c = canary("invert");
    v.push(
        probe(
            "wait-for/--invert on a ready redis with a password/deadline",
            "wait-for",
            &[
                "--invert",
                "--timeout",
                "2s",
                &format!("redis://:{}@127.0.0.1:{}", canary("redisok"), fx.redis_port),
            ],
            &canary("redisok"),
        )
        .also(&c)
        .codes(&[124]),
    );
    let c = canary("anybad");
    v.push(
        probe(
            "wait-for/--any: a wrong mariadb password and a closed port/fail",
            "wait-for",
            &[
                "--any",
                "--timeout",
                "2s",
                &format!("mysql://root:{c}@127.0.0.1:3306/test"),
                "tcp://127.0.0.1:1",
            ],
            &c,
        )
        .codes(&[5, 124]),
    );
    let c = canary("tlsnc");
    v.push(
        probe(
            "network-check/https user:pass to a plain server, JSON report/fail",
            "network-check",
            &[
                "--timeout",
                "2s",
                "--output",
                "json",
                &format!("https://user:{c}@{ea}/ok"),
            ],
            &c,
        )
        .issue("21.3")
        .codes(&[1]),
    );

    // ---- run-migrations.
    let mig = fx.file("migrations/1_init.sql", "SELECT 1;\n");
    let mig = Path::new(&mig)
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let c = canary("rmpg");
    v.push(
        probe(
            "run-migrations/postgres url password status/ok",
            "run-migrations",
            &[
                "--database-url",
                &format!("postgres://postgres:{c}@127.0.0.1:5432/test"),
                "--dir",
                &mig,
                "--timeout",
                "2s",
                "status",
            ],
            &c,
        )
        .codes(&[0, 1]),
    );
    let c = canary("myok");
    v.push(
        probe(
            "run-migrations/mariadb url password status/ok",
            "run-migrations",
            &[
                "--database-url",
                &format!("mysql://canary_url:{c}@127.0.0.1:3306/test"),
                "--dir",
                &mig,
                "--timeout",
                "2s",
                "status",
            ],
            &c,
        )
        .codes(&[0, 1]),
    );
    let c = canary("pgok");
    v.push(
        probe(
            "run-migrations/postgres (scram) plan/ok",
            "run-migrations",
            &[
                "--database-url",
                &format!("postgres://postgres:{c}@127.0.0.1:{}/postgres", fx.pg.port),
                "--dir",
                &mig,
                "--timeout",
                "2s",
                "plan",
            ],
            &c,
        )
        .codes(&[0]),
    );
    let c = canary("rmbad");
    v.push(
        probe(
            "run-migrations/mariadb wrong password/fail",
            "run-migrations",
            &[
                "--database-url",
                &format!("mysql://root:{c}@127.0.0.1:3306/test"),
                "--dir",
                &mig,
                "--timeout",
                "2s",
            ],
            &c,
        )
        .codes(&[5]),
    );
    let c = canary("rmfile");
    let pw = fx.file("rmfile.pw", &format!("{c}\n"));
    v.push(
        probe(
            "run-migrations/--password-file wrong password/fail",
            "run-migrations",
            &[
                "--database-url",
                "mysql://root@127.0.0.1:3306/test",
                "--password-file",
                &pw,
                "--dir",
                &mig,
                "--timeout",
                "2s",
            ],
            &c,
        )
        .codes(&[5]),
    );
    let c = canary("rmenv");
    v.push(
        probe(
            "run-migrations/INITBOX_DATABASE_URL wrong password/fail",
            "run-migrations",
            &["--dir", &mig, "--timeout", "2s"],
            &c,
        )
        .env(
            "INITBOX_DATABASE_URL",
            &format!("mysql://root:{c}@127.0.0.1:3306/test"),
        )
        .codes(&[5]),
    );
    let c = canary("rmdburl");
    v.push(
        probe(
            "run-migrations/DATABASE_URL wrong password/fail",
            "run-migrations",
            &["--dir", &mig, "--timeout", "2s"],
            &c,
        )
        .env(
            "DATABASE_URL",
            &format!("mysql://root:{c}@127.0.0.1:3306/test"),
        )
        .codes(&[5]),
    );
    let c = format!("{}@ss/w:rd{}", canary("rmamb1"), canary("rmamb2"));
    v.push(
        probe(
            "run-migrations/postgres password with unencoded '@ / :' (p@ss/w:rd)",
            "run-migrations",
            &[
                "--database-url",
                &format!("postgres://app:{c}@127.0.0.1:5432/app"),
                "--dir",
                &mig,
                "--timeout",
                "2s",
            ],
            &c,
        )
        .issue("12.2")
        .codes(&[2]),
    );
    let c = canary("mypwd");
    v.push(
        probe(
            "run-migrations/MYSQL_PWD for a URL without password/ok",
            "run-migrations",
            &[
                "--database-url",
                "mysql://canary_env@127.0.0.1:3306/test",
                "--dir",
                &mig,
                "--timeout",
                "2s",
                "status",
            ],
            &c,
        )
        .issue("12.3")
        .env("MYSQL_PWD", &c)
        .codes(&[0, 1]),
    );

    // ---- fetch-secret: ref+file, ref+env, --exec, Vault, errors about secret sources.
    let c = canary("fsfile");
    let f = fx.file("fs.secret", &format!("{c}\n"));
    v.push(
        probe(
            "fetch-secret/ref+file to --dir/ok",
            "fetch-secret",
            &["--dir", &fx.p("out"), &format!("fsfile=ref+file://{f}")],
            &c,
        )
        .dest(file_dest("fsfile"))
        .codes(&[0]),
    );
    let c = canary("fsenv");
    v.push(
        probe(
            "fetch-secret/ref+env to dotenv --out/ok",
            "fetch-secret",
            &[
                "--out",
                &out("fs.env"),
                "--format",
                "dotenv",
                "S=ref+env://FS_SECRET",
            ],
            &c,
        )
        .env("FS_SECRET", &c)
        .dest(file_dest("fs.env"))
        .codes(&[0]),
    );
    let c = canary("fsexec");
    let f = fx.file("fsexec.secret", &format!("{c}\n"));
    v.push(
        probe(
            "fetch-secret/--exec env of the command/ok",
            "fetch-secret",
            &[
                "--exec",
                &format!("S=ref+file://{f}"),
                "--",
                "sh",
                "-c",
                &write_env("S", "fsexec"),
            ],
            &c,
        )
        .dest(file_dest("fsexec"))
        .codes(&[0]),
    );
    let c = canary("shadow");
    let f = fx.file(
        "shadow",
        &format!("root:{c}:19000:0:99999:7:::\napp:!:19000::::::\n"),
    );
    v.push(
        probe(
            "fetch-secret/ref+file#/x of a non-JSON file: 'available keys'/fail",
            "fetch-secret",
            &["--dir", &fx.p("out"), &format!("x=ref+file://{f}#/x")],
            &c,
        )
        .issue("21.5"),
    );
    let c = canary("fsspec");
    let f = fx.file("spec.txt", &format!("this is not yaml {c}: [\n"));
    v.push(
        probe(
            "fetch-secret/--spec plain text/fail",
            "fetch-secret",
            &["--spec", &f, "--dir", &fx.p("out")],
            &c,
        )
        .issue("21.5")
        .codes(&[3]),
    );
    // AWS credential sources (issue 22): the container endpoint's authorization token sent
    // to a server that echoes it back (200 without credentials, and 401), and a
    // credential_process printing a secret key in a document initbox refuses.
    for (tag, path, code) in [("awsctok", "/okecho", 5), ("awsctok401", "/fail", 5)] {
        let c = canary(tag);
        v.push(
            probe(
                &format!("fetch-secret/aws container token echoed by {path}/fail"),
                "fetch-secret",
                &[
                    "--aws-region",
                    "eu-west-1",
                    "--dir",
                    &fx.p("out"),
                    "x=ref+awssm://prod/x",
                ],
                &c,
            )
            .issue("22.1")
            .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &e(path))
            .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", &c)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("HOME", "/nonexistent")
            .dest(Dest::Server)
            .codes(&[code]),
        );
    }
    let c = canary("awsproc");
    let cfg = fx.file(
        "aws-config",
        &format!(
            "[profile p]\ncredential_process = printf '{{\"Version\": 2, \"AccessKeyId\": \"AKID\", \"SecretAccessKey\": \"{c}\"}}'\n"
        ),
    );
    v.push(
        probe(
            "fetch-secret/aws credential_process output refused/fail",
            "fetch-secret",
            &[
                "--aws-region",
                "eu-west-1",
                "--aws-profile",
                "p",
                "--dir",
                &fx.p("out"),
                "x=ref+awssm://prod/x",
            ],
            &c,
        )
        .issue("22.2")
        .env("AWS_CONFIG_FILE", &cfg)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .codes(&[5]),
    );
    // restore and backup (issue 15): AWS keys and a session token against an S3 endpoint that
    // echoes each request back (401 for a listing, 200 with the echo for every object request,
    // so backup reads its own lease and verification back as echoes); the SSE-C key file,
    // valid (its key goes in a header of every object request) and not 32 bytes (refused).
    let s3_env = |p: Probe, tag: &str| {
        p.env("AWS_ACCESS_KEY_ID", "AKIDCANARYPROBE")
            .env("AWS_SECRET_ACCESS_KEY", &canary(&format!("{tag}sk")))
            .env("AWS_SESSION_TOKEN", &canary(&format!("{tag}tok")))
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .also(&canary(&format!("{tag}sk")))
    };
    // Each restore its own directory: probes run at once, and a directory takes one restore.
    let vol = |n: &str| fx.p(&format!("restore-vol-{n}"));
    let data = fx.file("backup-src/data.txt", "data\n");
    let data = Path::new(&data)
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let vol_s3 = vol("s3");
    for (applet, tag, args, code) in [
        (
            "restore",
            "rss3",
            vec!["--from", "s3://fail/app/", "--to", vol_s3.as_str()],
            5,
        ),
        (
            "backup",
            "bks3",
            vec![
                "--from",
                data.as_str(),
                "--to",
                "s3://okecho/app/",
                "--timeout",
                "5s",
            ],
            1,
        ),
    ] {
        let mut a = args.clone();
        let endpoint = e("");
        a.extend(["--s3-endpoint", endpoint.trim_end_matches('/')]);
        v.push(
            s3_env(
                probe(
                    &format!("{applet}/S3 session token and secret key, request echoed/fail"),
                    applet,
                    &a,
                    &canary(&format!("{tag}tok")),
                ),
                tag,
            )
            .issue("15")
            .dest(Dest::Server)
            .codes(&[code]),
        );
    }
    // 32 characters: a raw key (its base64 goes in the header).
    let c = canary("ssec");
    let key = fx.file(
        "sse-c.key",
        &format!("{c}{}", &"0123456789abcdefghijkl"[..32 - c.len()]),
    );
    let bad = fx.file("sse-c-bad.key", &format!("{c} is not a key\n"));
    for (applet, name, file, code) in [
        ("restore", "valid", &key, 124),
        ("backup", "valid", &key, 124),
        ("restore", "not 32 bytes", &bad, 3),
    ] {
        let to_vol = vol(&format!("ssec-{}", name.len()));
        let (from, to) = if applet == "restore" {
            ("s3://bucket/app/", to_vol.as_str())
        } else {
            (data.as_str(), "s3://bucket/app/")
        };
        v.push(
            s3_env(
                probe(
                    &format!("{applet}/SSE-C key file {name}, endpoint unreachable/fail"),
                    applet,
                    &[
                        "--from",
                        from,
                        "--to",
                        to,
                        "--s3-endpoint",
                        "https://127.0.0.1:1",
                        "--s3-sse-c-key-file",
                        file,
                        "--timeout",
                        "2s",
                    ],
                    &c,
                ),
                "ssec",
            )
            .issue("15")
            .codes(&[code]),
        );
    }
    let vault_addr = format!("http://127.0.0.1:{}", fx.vault_port);
    let c = canary("vval");
    v.push(
        probe(
            "fetch-secret/vault read with VAULT_TOKEN/ok",
            "fetch-secret",
            &["--dir", &fx.p("out"), "vault=ref+vault://secret/app#/pw"],
            &c,
        )
        .also(&canary("vtok"))
        .env("VAULT_ADDR", &vault_addr)
        .env("VAULT_TOKEN", &canary("vtok"))
        .dest(file_dest("vault"))
        .codes(&[0]),
    );
    let tokf = fx.file("vault.token", &format!("{}\n", canary("vtok")));
    v.push(
        probe(
            "fetch-secret/vault --vault-token-file/ok",
            "fetch-secret",
            &[
                "--vault-token-file",
                &tokf,
                "--dir",
                &fx.p("out"),
                "vaultf=ref+vault://secret/app#/pw",
            ],
            &c,
        )
        .also(&canary("vtok"))
        .env("VAULT_ADDR", &vault_addr)
        .dest(file_dest("vaultf"))
        .codes(&[0]),
    );
    v.push(
        probe(
            "fetch-secret/vault missing key lists names only/fail",
            "fetch-secret",
            &[
                "--dir",
                &fx.p("out"),
                "nope=ref+vault://secret/app#/passwrod",
            ],
            &c,
        )
        .also(&canary("vtok"))
        .env("VAULT_ADDR", &vault_addr)
        .env("INITBOX_VAULT_TOKEN", &canary("vtok"))
        .codes(&[1]),
    );
    let c = canary("vbad");
    v.push(
        probe(
            "fetch-secret/vault rejected token/fail",
            "fetch-secret",
            &[
                "--timeout",
                "2s",
                "--dir",
                &fx.p("out"),
                "x=ref+vault://secret/app#/pw",
            ],
            &c,
        )
        .env("VAULT_ADDR", &vault_addr)
        .env("VAULT_TOKEN", &c)
        .codes(&[5]),
    );
    let c = canary("nl");
    let f = fx.file("token.nl", &format!("{c}\n"));
    v.push(
        probe(
            "fetch-secret/--exec ref+file token into notify token_env (newline rule)",
            "fetch-secret",
            &[
                "--exec",
                &format!("TOKEN=ref+file://{f}"),
                "--",
                BIN,
                "notify",
                "--message",
                "hello",
                "--required",
                "--timeout",
                "2s",
                &format!("webhook+{}", e("/ok/nl?token_env=TOKEN")),
            ],
            &c,
        )
        .issue("12.9")
        .dest(Dest::Server)
        .codes(&[0]),
    );

    let c = canary("fsdefault");
    v.push(
        probe(
            "fetch-secret/ref+env ?default= value to --dir/ok",
            "fetch-secret",
            &[
                "--dir",
                &fx.p("out"),
                &format!("fsdefault=ref+env://INITBOX_SWEEP_UNSET?default={c}"),
            ],
            &c,
        )
        .dest(file_dest("fsdefault"))
        .codes(&[0]),
    );
    let c = canary("fsdefault2");
    v.push(
        probe(
            "fetch-secret/default= given twice: the usage error",
            "fetch-secret",
            &[
                "--dir",
                &fx.p("out"),
                &format!("x=ref+env://INITBOX_SWEEP_UNSET?default=a&default={c}"),
            ],
            &c,
        )
        .codes(&[2]),
    );
    let c = canary("fsspecok");
    let f = fx.file(
        "spec.yaml",
        "secrets:\n  fsspecok: ref+env://FS_SPEC_SECRET\n",
    );
    v.push(
        probe(
            "fetch-secret/--spec yaml with ref+env, JSON --out/ok",
            "fetch-secret",
            &["--spec", &f, "--out", &out("fs.json"), "--format", "json"],
            &c,
        )
        .env("FS_SPEC_SECRET", &c)
        .dest(file_dest("fs.json"))
        .codes(&[0]),
    );
    v.push(
        probe(
            "fetch-secret/vault --token-out/ok",
            "fetch-secret",
            &[
                "--dir",
                &fx.p("out"),
                "--token-out",
                &out("vault-token"),
                "tv=ref+vault://secret/app#/pw",
            ],
            &canary("vtok"),
        )
        .also(&canary("vval"))
        .env("VAULT_ADDR", &vault_addr)
        .env("VAULT_TOKEN", &canary("vtok"))
        .dest(file_dest("vault-token"))
        .codes(&[0]),
    );

    let c = canary("fscheck");
    v.push(
        probe(
            "fetch-secret/--check prints names only/ok",
            "fetch-secret",
            &["--check", "fscheck=ref+env://FS_CHECK_SECRET"],
            &c,
        )
        .env("FS_CHECK_SECRET", &c)
        .codes(&[0]),
    );
    let c = canary("fsmissing");
    let f = fx.file(
        "fs-missing.json",
        &format!("{{\"user\": \"app\", \"pw\": \"{c}\"}}"),
    );
    v.push(
        probe(
            "fetch-secret/ref+file JSON missing key lists names only/fail",
            "fetch-secret",
            &[
                "--dir",
                &fx.p("out"),
                &format!("x=ref+file://{f}#/passwrod"),
            ],
            &c,
        )
        .codes(&[1]),
    );

    let c = canary("vup");
    let f = fx.file("vault-userpass.pw", &format!("{c}\n"));
    v.push(
        probe(
            "fetch-secret/vault userpass login --vault-password-file/ok",
            "fetch-secret",
            &[
                "--vault-auth",
                "userpass",
                "--vault-username",
                "alice",
                "--vault-password-file",
                &f,
                "--dir",
                &fx.p("out"),
                "vup=ref+vault://secret/app#/pw",
            ],
            &canary("vval"),
        )
        .also(&c)
        .env("VAULT_ADDR", &vault_addr)
        .dest(file_dest("vup"))
        .codes(&[0]),
    );
    let c = canary("vupbad");
    let f = fx.file("vault-userpass-bad.pw", &format!("{c}\n"));
    v.push(
        probe(
            "fetch-secret/vault userpass login rejected password/fail",
            "fetch-secret",
            &[
                "--timeout",
                "2s",
                "--vault-auth",
                "userpass",
                "--vault-username",
                "alice",
                "--vault-password-file",
                &f,
                "--dir",
                &fx.p("out"),
                "x=ref+vault://secret/app#/pw",
            ],
            &c,
        )
        .env("VAULT_ADDR", &vault_addr)
        .codes(&[5]),
    );
    let k8s_api = format!("http://127.0.0.1:{}", fx.k8s_port);
    let tok = fx.file("k8s.token", &format!("{}\n", canary("k8stok")));
    v.push(
        probe(
            "fetch-secret/ref+k8s with a service-account token/ok",
            "fetch-secret",
            &[
                "--k8s-api",
                &k8s_api,
                "--k8s-token-file",
                &tok,
                "--dir",
                &fx.p("out"),
                "k8s=ref+k8s://app/db#password",
            ],
            &canary("k8sval"),
        )
        .also(&canary("k8stok"))
        .dest(file_dest("k8s"))
        .codes(&[0]),
    );
    v.push(
        probe(
            "fetch-secret/ref+k8s missing key lists names only/fail",
            "fetch-secret",
            &[
                "--k8s-api",
                &k8s_api,
                "--k8s-token-file",
                &tok,
                "--dir",
                &fx.p("out"),
                "x=ref+k8s://app/db#nokey",
            ],
            &canary("k8sval"),
        )
        .also(&canary("k8stok"))
        .codes(&[1]),
    );
    let c = canary("k8sbad");
    let bad = fx.file("k8s-bad.token", &format!("{c}\n"));
    v.push(
        probe(
            "fetch-secret/ref+k8s rejected token/fail",
            "fetch-secret",
            &[
                "--timeout",
                "2s",
                "--k8s-api",
                &k8s_api,
                "--k8s-token-file",
                &bad,
                "--dir",
                &fx.p("out"),
                "x=ref+k8s://app/db#password",
            ],
            &c,
        )
        .codes(&[5]),
    );

    // ---- render-config: --secret-data, secret(), filters, --check-cmd output.
    let c = canary("rcdata");
    let data = fx.file("rc/secret.json", &format!("{{\"pw\": \"{c}\"}}"));
    let t = fx.file("rc/ok.j2", "pw={{ s.pw }}\n");
    v.push(
        probe(
            "render-config/--secret-data to a file/ok",
            "render-config",
            &["--secret-data", &format!("s={data}"), &t, &out("rc.conf")],
            &c,
        )
        .dest(file_dest("rc.conf"))
        .codes(&[0]),
    );
    v.push(
        probe(
            "render-config/--secret-data to stdout/ok",
            "render-config",
            &["--secret-data", &format!("s={data}"), &t, "-"],
            &c,
        )
        .dest(Dest::Stdout)
        .codes(&[0]),
    );
    // The filter's error quotes its pattern, which holds the secret (look-behind is refused).
    let t = fx.file(
        "rc/int.j2",
        "port={{ 'x' | regex_replace('(?<=' ~ s.pw ~ ')', '') }}\n",
    );
    v.push(
        probe(
            "render-config/--secret-data value in a filter error/fail",
            "render-config",
            &[
                "--secret-data",
                &format!("s={data}"),
                &t,
                &out("rc-int.conf"),
            ],
            &c,
        )
        .codes(&[3]),
    );
    let t = fx.file("rc/undef.j2", "a={{ s.pw }} b={{ nope.deeper }}\n");
    v.push(
        probe(
            "render-config/--secret-data then an undefined variable/fail",
            "render-config",
            &[
                "--secret-data",
                &format!("s={data}"),
                &t,
                &out("rc-undef.conf"),
            ],
            &c,
        )
        .codes(&[3]),
    );
    let t = fx.file("rc/basic.j2", "auth={{ ('user:' ~ s.pw) | b64encode }}\n");
    v.push(
        probe(
            "render-config/base64('user:'+secret) shown by a failing --check-cmd",
            "render-config",
            &[
                "--secret-data",
                &format!("s={data}"),
                "--check-cmd",
                "sh -c 'cat \"$0\"; exit 1' {}",
                &t,
                &out("rc-basic.conf"),
            ],
            &c,
        )
        .issue("21.4")
        .codes(&[1]),
    );
    let c = canary("rcsecret");
    let f = fx.file("rc/secret.txt", &format!("{c}\n"));
    let t = fx.file(
        "rc/secret.j2",
        &format!("pw={{{{ secret('ref+file://{f}') }}}}\n"),
    );
    v.push(
        probe(
            "render-config/secret(ref+file)/ok",
            "render-config",
            &[&t, &out("rc-secret.conf")],
            &c,
        )
        .dest(file_dest("rc-secret.conf"))
        .codes(&[0]),
    );
    let c = canary("rcjson");
    let f = fx.file(
        "rc/secret2.json",
        &format!("{{\"pw\": \"{c}\", \"user\": \"app\"}}"),
    );
    let t = fx.file(
        "rc/nokey.j2",
        &format!("pw={{{{ secret('ref+file://{f}#/nokey') }}}}\n"),
    );
    v.push(probe(
        "render-config/secret(ref+file#/nokey) missing key/fail",
        "render-config",
        &[&t, &out("rc-nokey.conf")],
        &c,
    ));
    let t = fx.file(
        "rc/vault.j2",
        "pw={{ secret('ref+vault://secret/app#/pw') }}\n",
    );
    v.push(
        probe(
            "render-config/secret(ref+vault)/ok",
            "render-config",
            &[&t, &out("rc-vault.conf")],
            &canary("vval"),
        )
        .also(&canary("vtok"))
        .env("VAULT_ADDR", &vault_addr)
        .env("VAULT_TOKEN", &canary("vtok"))
        .dest(file_dest("rc-vault.conf"))
        .codes(&[0]),
    );

    let c = canary("rcdotenv");
    let data = fx.file(
        "rc/bad.env",
        &format!("PW={c}\nthis line is not dotenv \"{c}\n"),
    );
    let t = fx.file("rc/env.j2", "pw={{ s.PW }}\n");
    v.push(
        probe(
            "render-config/--secret-data .env syntax error/fail",
            "render-config",
            &[
                "--secret-data",
                &format!("s={data}"),
                &t,
                &out("rc-env.conf"),
            ],
            &c,
        )
        .codes(&[3]),
    );
    let c = canary("rcyaml");
    let data = fx.file("rc/bad.yaml", &format!("pw: {c}\n  bad: [indent {c}\n"));
    v.push(
        probe(
            "render-config/--secret-data YAML syntax error/fail",
            "render-config",
            &[
                "--secret-data",
                &format!("s={data}"),
                &t,
                &out("rc-yaml.conf"),
            ],
            &c,
        )
        .codes(&[3]),
    );

    let c = canary("rclint");
    let data = fx.file("rc/lint.json", &format!("{{\"pw\": \"{c}\"}}"));
    let t = fx.file("rc/lint.j2", "pw={{ s.pw }} other={{ missing }}\n");
    v.push(
        probe(
            "render-config/--lint with --secret-data/fail",
            "render-config",
            &["--lint", "--secret-data", &format!("s={data}"), &t],
            &c,
        )
        .codes(&[3]),
    );

    // ---- network-check: URL passwords in every report format, headers, spec files.
    for output in ["human", "json", "junit", "tap"] {
        let c = canary(&format!("nc{output}"));
        v.push(
            probe(
                &format!("network-check/http user:pass failing, --output {output}"),
                "network-check",
                &[
                    "--timeout",
                    "2s",
                    "--output",
                    output,
                    &format!("http://user:{c}@{ea}/fail"),
                ],
                &c,
            )
            .issue("21.3")
            .dest(Dest::Server)
            .codes(&[1]),
        );
    }
    let c = canary("nchdr");
    v.push(
        probe(
            "network-check/http header=X-Api-Key/ok",
            "network-check",
            &[
                "--timeout",
                "2s",
                "--output",
                "json",
                &format!("{},header=X-Api-Key:{c}", e("/ok")),
            ],
            &c,
        )
        .dest(Dest::Server)
        .codes(&[0]),
    );
    let c = canary("nchdrfail");
    v.push(
        probe(
            "network-check/http header=Authorization echoed/fail",
            "network-check",
            &[
                "--timeout",
                "2s",
                "--output",
                "json",
                &format!("{},header=X-Token:{c},body=never", e("/okecho")),
            ],
            &c,
        )
        .dest(Dest::Server)
        .codes(&[1]),
    );
    let c = canary("nchdrspace");
    v.push(
        probe(
            "network-check/header=Authorization:Bearer TOKEN (a space) is one check",
            "network-check",
            &[
                "--timeout",
                "2s",
                &format!("{},header=Authorization:Bearer {c}", e("/ok")),
            ],
            &c,
        )
        .codes(&[0]),
    );
    let c = canary("nchdrbad");
    v.push(
        probe(
            "network-check/header=Authorization:Bearer TOKEN in a usage error",
            "network-check",
            &[
                "--timeout",
                "2s",
                &format!("{},timeout=zz,header=Authorization:Bearer {c}", e("/ok")),
            ],
            &c,
        )
        .codes(&[2]),
    );
    let c = canary("ncplain");
    let f = fx.file("nc-plain.txt", &format!("not a spec {c}\n"));
    v.push(
        probe(
            "network-check/-f plain text/fail",
            "network-check",
            &["-f", &f],
            &c,
        )
        .issue("21.5")
        .codes(&[3]),
    );
    let c = canary("ncspec");
    let f = fx.file(
        "nc-spec.yaml",
        &format!("version: 1\nchecks:\n  - name: api\n    http: http://user:{c}@{ea}/fail\n"),
    );
    v.push(
        probe(
            "network-check/-f spec with a URL password, JSON report/fail",
            "network-check",
            &["--timeout", "2s", "--output", "json", "-f", &f],
            &c,
        )
        .issue("21.3")
        .dest(Dest::Server)
        .codes(&[1]),
    );
    let c = canary("ncenv");
    v.push(
        probe(
            "network-check/INITBOX_CHECKS with a URL password, TAP/fail",
            "network-check",
            &["--timeout", "2s", "--output", "tap"],
            &c,
        )
        .env("INITBOX_CHECKS", &format!("http://user:{c}@{ea}/fail"))
        .issue("21.3")
        .dest(Dest::Server)
        .codes(&[1]),
    );

    // ---- download: --header values (inline and from a file) are refused over plain http,
    // before any request, without showing them (the https path is swept with the git server below).
    let c = canary("dlhdr");
    v.push(
        probe(
            "download/--header Authorization over http/usage",
            "download",
            &[
                &e("/ok"),
                "--to",
                &out("dl.bin"),
                "--sha256",
                &"0".repeat(64),
                "--header",
                &format!("Authorization: Bearer {c}"),
            ],
            &c,
        )
        .codes(&[2]),
    );
    let c = canary("dlhdrfile");
    std::fs::write(fx.path("dl-key"), format!("{c}\n")).unwrap();
    v.push(
        probe(
            "download/--header X-Api-Key: @FILE over http/usage",
            "download",
            &[
                &e("/ok"),
                "--to",
                &out("dl.bin"),
                "--sha256",
                &"0".repeat(64),
                "-H",
                &format!("X-Api-Key: @{}", fx.p("dl-key")),
            ],
            &c,
        )
        .codes(&[2]),
    );

    // ---- notify: webhook paths and queries, headers, Basic, token files, dry runs.
    let c = canary("nfpath");
    v.push(
        probe(
            "notify/webhook secret path echoed in a 401 body/fail",
            "notify",
            &[
                "--required",
                "--timeout",
                "2s",
                &format!("webhook+{}", e(&format!("/fail/{c}"))),
            ],
            &c,
        )
        .issue("12.4")
        .dest(Dest::Server)
        .codes(&[1, 5]),
    );
    let c = canary("nfquery");
    v.push(
        probe(
            "notify/webhook secret query echoed in a 401 body/fail",
            "notify",
            &[
                "--required",
                "--timeout",
                "2s",
                &format!("webhook+{}?sig={c}", e("/fail/q")),
            ],
            &c,
        )
        .issue("12.4")
        .dest(Dest::Server)
        .codes(&[1, 5]),
    );
    let c = canary("nfok");
    v.push(
        probe(
            "notify/webhook secret path/ok",
            "notify",
            &[
                "--required",
                "--timeout",
                "2s",
                &format!("webhook+{}", e(&format!("/ok/{c}"))),
            ],
            &c,
        )
        .issue("12.4")
        .dest(Dest::Server)
        .codes(&[0]),
    );
    let c = canary("nfdry");
    v.push(
        probe(
            "notify/--dry-run webhook secret path and query/ok",
            "notify",
            &[
                "--dry-run",
                &format!("webhook+{}?code={c}", e(&format!("/hook/{c}"))),
            ],
            &c,
        )
        .issue("12.4")
        .codes(&[0]),
    );
    let c = canary("nfslack");
    v.push(
        probe(
            "notify/--dry-run slack:// tokens/ok",
            "notify",
            &["--dry-run", &format!("slack://{c}/{c}/{c}")],
            &c,
        )
        .codes(&[0]),
    );
    let c = canary("nfhdr");
    v.push(
        probe(
            "notify/@Header= in the query echoed/fail",
            "notify",
            &[
                "--required",
                "--timeout",
                "2s",
                &format!("webhook+{}?@X-Api-Key={c}", e("/fail/h")),
            ],
            &c,
        )
        .issue("21.5")
        .dest(Dest::Server)
        .codes(&[1, 5]),
    );
    let c = canary("nftok");
    let f = fx.file("nf.token", &format!("{c}\n"));
    v.push(
        probe(
            "notify/token_file= bearer echoed/fail",
            "notify",
            &[
                "--required",
                "--timeout",
                "2s",
                &format!("webhook+{}?token_file={f}", e("/fail/t")),
            ],
            &c,
        )
        .dest(Dest::Server)
        .codes(&[1, 5]),
    );
    let c = canary("nfjson");
    v.push(
        probe(
            "notify/json:// user:pass Basic echoed/fail",
            "notify",
            &[
                "--required",
                "--timeout",
                "2s",
                &format!("json://user:{c}@{ea}/fail/j"),
            ],
            &c,
        )
        .issue("21.4")
        .dest(Dest::Server)
        .codes(&[1, 5]),
    );
    let c = canary("nfplh");
    v.push(
        probe(
            "notify/${env:VAR} placeholder in the path echoed/fail",
            "notify",
            &[
                "--required",
                "--timeout",
                "2s",
                &format!("webhook+{}", e("/fail/${env:NF_TOKEN}")),
            ],
            &c,
        )
        .env("NF_TOKEN", &c)
        .dest(Dest::Server)
        .codes(&[1, 5]),
    );
    let c = canary("nfenv");
    v.push(
        probe(
            "notify/INITBOX_NOTIFY_URLS secret path echoed/fail",
            "notify",
            &["--required", "--timeout", "2s"],
            &c,
        )
        .env(
            "INITBOX_NOTIFY_URLS",
            &format!("webhook+{}", e(&format!("/fail/{c}"))),
        )
        .issue("12.4")
        .dest(Dest::Server)
        .codes(&[1, 5]),
    );
    let c = format!("{}@{}", canary("pdkey"), canary("pdapi"));
    v.push(
        probe(
            "notify/apprise pagerduty://INTEGRATION_KEY@API_KEY (apprise's form, delivered)",
            "notify",
            &["--required", "--timeout", "2s", &format!("pagerduty://{c}")],
            &c,
        )
        .issue("12.4")
        .codes(&[1]),
    );
    let c = canary("nfrun");
    v.push(
        probe(
            "notify run/failing command, webhook secret path echoed",
            "notify",
            &[
                "run",
                "--required",
                "--timeout",
                "2s",
                &format!("webhook+{}", e(&format!("/fail/{c}"))),
                "--",
                "sh",
                "-c",
                "exit 3",
            ],
            &c,
        )
        .flag_at(1)
        .issue("12.4")
        .dest(Dest::Server)
        .codes(&[3]),
    );

    let c = canary("nfsmtp");
    v.push(
        probe(
            "notify/smtp:// password, server unreachable/fail",
            "notify",
            &[
                "--required",
                "--timeout",
                "2s",
                &format!("smtp://user:{c}@127.0.0.1:1/?from=a@example.com&to=b@example.com"),
            ],
            &c,
        )
        .codes(&[1]),
    );
    let c = canary("nfntfy");
    v.push(
        probe(
            "notify/ntfy:// user:pass Basic echoed/fail",
            "notify",
            &[
                "--required",
                "--timeout",
                "2s",
                &format!("ntfy://user:{c}@{ea}/fail?scheme=http"),
            ],
            &c,
        )
        .issue("21.4")
        .dest(Dest::Server)
        .codes(&[1, 5]),
    );
    let c = canary("nftg");
    v.push(
        probe(
            "notify/telegram bot token in the path echoed (endpoint=)/fail",
            "notify",
            &[
                "--required",
                "--timeout",
                "2s",
                &format!(
                    "telegram://{c}@telegram?chats=12345&endpoint={}",
                    e("/fail/tg")
                ),
            ],
            &c,
        )
        .issue("12.4")
        .dest(Dest::Server)
        .codes(&[1, 5]),
    );
    let c = canary("nfdryjson");
    v.push(
        probe(
            "notify/--dry-run json:// user:pass/ok",
            "notify",
            &["--dry-run", &format!("json://user:{c}@{ea}/hook")],
            &c,
        )
        .codes(&[0]),
    );
    let c = canary("nfdryenv");
    v.push(
        probe(
            "notify/--dry-run INITBOX_NOTIFY_URLS webhook token query/ok",
            "notify",
            &["--dry-run"],
            &c,
        )
        .env(
            "INITBOX_NOTIFY_URLS",
            &format!("webhook+{}?token={c}", e("/hook")),
        )
        .issue("12.4")
        .codes(&[0]),
    );

    let c = format!("{}\"q\\b{}", canary("nfjs1"), canary("nfjs2"));
    let f = fx.file("nf-quote.token", &format!("{c}\n"));
    v.push(
        probe(
            "notify/token_file= with a quote and a backslash echoed (JSON-escaped form)",
            "notify",
            &[
                "--required",
                "--timeout",
                "2s",
                &format!("webhook+{}?token_file={f}", e("/fail/js")),
            ],
            &c,
        )
        .issue("21.4")
        .dest(Dest::Server)
        .codes(&[1, 5]),
    );

    // A short secret ("app") is masked as a whole token ("Bearer app" in the echoed request)
    // but not inside unrelated words ("application/json" in the same echo).
    let f = fx.file("nf-short.token", "app\n");
    v.push(
        probe(
            "notify/short token_file value 'app' vs 'application/json' in the echo",
            "notify",
            &[
                "--required",
                "--timeout",
                "2s",
                &format!("webhook+{}?token_file={f}", e("/fail/short")),
            ],
            "Bearer app",
        )
        .issue("21.6")
        .keep("application/json")
        .dest(Dest::Server)
        .codes(&[1, 5]),
    );

    let c = canary("nfdryfile");
    let f = fx.file("nf-placeholder", &format!("{c}\n"));
    v.push(
        probe(
            "notify/--dry-run ${file:PATH} placeholder in the path/ok",
            "notify",
            &[
                "--dry-run",
                &format!("webhook+{}", e(&format!("/hook/${{file:{f}}}"))),
            ],
            &c,
        )
        .codes(&[0]),
    );
    let c = canary("nfsign");
    let f = fx.file("nf-sign", &format!("{c}\n"));
    v.push(
        probe(
            "notify/--dry-run signed webhook secret_file=/ok",
            "notify",
            &[
                "--dry-run",
                &format!("webhook+{}?sign=github&secret_file={f}", e("/hook")),
            ],
            &c,
        )
        .codes(&[0]),
    );
    let c = canary("nfsignfail");
    let f = fx.file("nf-signfail", &format!("{c}\n"));
    v.push(
        probe(
            "notify/signed webhook secret_file= echoed/fail",
            "notify",
            &[
                "--required",
                "--timeout",
                "2s",
                &format!("webhook+{}?sign=github&secret_file={f}", e("/fail/sign")),
            ],
            &c,
        )
        .codes(&[1, 5]),
    );
    let c = canary("nfdiscord");
    v.push(
        probe(
            "notify/discord:// token echoed (endpoint=)/fail",
            "notify",
            &[
                "--required",
                "--timeout",
                "2s",
                &format!("discord://{c}@123456?endpoint={}", e("/fail/dc")),
            ],
            &c,
        )
        .issue("12.4")
        .dest(Dest::Server)
        .codes(&[1, 5]),
    );
    let c = canary("nfsmtpfile");
    let f = fx.file("nf-smtp.pw", &format!("{c}\n"));
    v.push(
        probe(
            "notify/smtp:// password_file=, server unreachable/fail",
            "notify",
            &[
                "--required",
                "--timeout",
                "2s",
                &format!(
                    "smtp://user@127.0.0.1:1/?from=a@example.com&to=b@example.com&password_file={f}"
                ),
            ],
            &c,
        )
        .codes(&[1]),
    );

    // ---- run: steps env, applet steps, errors about steps files.
    let c = canary("runenv");
    let f = fx.file(
        "run/ok.yaml",
        &format!(
            "steps:\n  - name: write\n    command: [sh, -c, '{}']\n    env: {{TOK: \"{c}\"}}\n",
            write_env("TOK", "runenv")
        ),
    );
    v.push(
        probe("run/command step env/ok", "run", &["-f", &f], &c)
            .dest(file_dest("runenv"))
            .codes(&[0]),
    );
    let c = canary("runfail");
    let f = fx.file("run/fail.yaml", &format!(
        "steps:\n  - name: fails\n    command: [sh, -c, 'echo failing >&2; exit 3']\n    env: {{TOK: \"{c}\"}}\n"
    ));
    v.push(probe("run/command step env, failing/fail", "run", &["-f", &f], &c).codes(&[3]));
    let c = canary("runargs");
    let f = fx.file(
        "run/args.yaml",
        &format!("steps:\n  - name: bad\n    applet: wait-for-tcp\n    args: \"--once {c}\"\n"),
    );
    v.push(
        probe("run/args: as a string/fail", "run", &["-f", &f], &c)
            .issue("21.5")
            .codes(&[3]),
    );
    let c = canary("runfs");
    let f = fx.file("run/fs.yaml", &format!(
        "steps:\n  - name: secret\n    applet: fetch-secret\n    args: [\"runfs=ref+env://RUN_SECRET\", --dir, \"{}\"]\n  - name: db\n    applet: wait-for\n    args: [--timeout, 2s, \"mysql://root:{}@127.0.0.1:3306/test\"]\n",
        fx.p("out"), canary("runmy")
    ));
    v.push(
        probe(
            "run/fetch-secret step then a rejected database password/fail",
            "run",
            &["-f", &f],
            &c,
        )
        .also(&canary("runmy"))
        .env("RUN_SECRET", &c)
        .dest(file_dest("runfs"))
        .codes(&[5]),
    );

    let c = canary("runcheck");
    let f = fx.file("run/check.yaml", &format!(
        "steps:\n  - name: db\n    applet: wait-for\n    args: [--timeout, 2s, \"postgres://u:{c}@127.0.0.1:1/db\"]\n"
    ));
    v.push(
        probe(
            "run/--check prints the plan of a step with a URL password/ok",
            "run",
            &["--check", "-f", &f],
            &c,
        )
        .codes(&[0]),
    );
    let c = canary("runtable");
    let f = fx.file("run/table.yaml", &format!(
        "steps:\n  - name: hook\n    applet: notify\n    args: [--required, --timeout, 2s, -m, hi, \"webhook+{}\"]\n",
        e(&format!("/fail/{c}"))
    ));
    v.push(
        probe(
            "run/notify step with a secret webhook path, summary table/fail",
            "run",
            &["-f", &f],
            &c,
        )
        .issue("12.4")
        .dest(Dest::Server)
        .codes(&[1, 5]),
    );
    let c = canary("runsteppw");
    let f = fx.file("run/steppw.yaml", &format!(
        "steps:\n  - name: db\n    applet: wait-for\n    args: [--timeout, 2s, \"postgres://postgres:{c}@127.0.0.1:{}/postgres\"]\n",
        fx.pg.port
    ));
    v.push(
        probe(
            "run/wait-for step with a rejected postgres password, summary table/fail",
            "run",
            &["-f", &f],
            &c,
        )
        .codes(&[5]),
    );
    let c = canary("pgok");
    v.push(
        probe(
            "run-migrations/--exec failing command under the lock/fail",
            "run-migrations",
            &[
                "--database-url",
                &format!("postgres://postgres:{c}@127.0.0.1:{}/postgres", fx.pg.port),
                "--dir",
                &fx.p("migrations"),
                "--timeout",
                "2s",
                "--exec",
                "--",
                "sh",
                "-c",
                "exit 3",
            ],
            &c,
        )
        .codes(&[3]),
    );

    // ---- wait-for k8s://: the service-account token (a token file named by the kubeconfig)
    // goes to the API server only. Accepted: the Job does not exist, so --once exits 1; rejected:
    // exit 5, and the message names no token.
    let kube_ok = fx.kube_ok.to_str().unwrap().to_string();
    let kube_bad = fx.kube_bad.to_str().unwrap().to_string();
    v.push(
        probe(
            "wait-for/k8s:// with an accepted token file/fail",
            "wait-for",
            &["--kubeconfig", &kube_ok, "--once", "k8s://job/migrate"],
            &canary("kubetok"),
        )
        .codes(&[1]),
    );
    v.push(
        probe(
            "wait-for/k8s:// with a rejected token file/fail",
            "wait-for",
            &[
                "--kubeconfig",
                &kube_bad,
                "--timeout",
                "2s",
                "k8s://job/migrate",
            ],
            &canary("kubebad"),
        )
        .codes(&[5]),
    );

    // ---- schedule: the logged command lines (issue 16: "the logged command line goes through
    // the secret scrubber"), the job's own output, a crontab's and a jobs file's variables, an
    // in-process applet job. Each job fails once and --exit-on-failures 1 ends the sidecar.
    let once = ["--every", "1h", "--run-on-start", "--exit-on-failures", "1"];
    let c = canary("schedargs");
    let script = format!("printf %s \"$2\" > {}; exit 3", out("schedargs"));
    let mut args: Vec<&str> = once.to_vec();
    args.extend(["--", "sh", "-c", &script, "sh", "--password", &c]);
    let url = format!("postgres://app:{}@db.internal/app", canary("schedurl"));
    let assign = format!("DB_PASSWORD={}", canary("schedassign"));
    args.extend([url.as_str(), assign.as_str()]);
    v.push(
        probe(
            "schedule/secret flags, URL and assignment in the command line/fail",
            "schedule",
            &args,
            &c,
        )
        .also(&canary("schedurl"))
        .also(&canary("schedassign"))
        .dest(file_dest("schedargs"))
        .codes(&[1]),
    );
    // (A crontab command's `%` starts its stdin, as in cron: printf's format is written `\%s`.)
    let c = canary("schedtab");
    let tab = fx.file(
        "schedule/crontab",
        &format!(
            "API_TOKEN={c}\n* * * * * echo \"token is $API_TOKEN\"; printf \\%s \"$API_TOKEN\" > {}; exit 3\n",
            out("schedtab")
        ),
    );
    let mut args: Vec<&str> = once[2..].to_vec();
    args.extend(["--crontab", &tab]);
    v.push(
        probe(
            "schedule/crontab variable echoed by its job/fail",
            "schedule",
            &args,
            &c,
        )
        .dest(file_dest("schedtab"))
        .codes(&[1]),
    );
    let c = canary("schedyaml");
    let jobs = fx.file(
        "schedule/jobs.yaml",
        &format!(
            "jobs:\n  - name: dump\n    every: 1h\n    command: [sh, -c, 'echo \"$DB_PASSWORD\" >&2; printf %s \"$DB_PASSWORD\" > {}; exit 3']\n    env: {{DB_PASSWORD: \"{c}\"}}\n",
            out("schedyaml")
        ),
    );
    let mut args: Vec<&str> = once[2..].to_vec();
    args.extend(["-f", &jobs]);
    v.push(
        probe(
            "schedule/jobs file env echoed by its job/fail",
            "schedule",
            &args,
            &c,
        )
        .dest(file_dest("schedyaml"))
        .codes(&[1]),
    );
    let c = canary("schedapplet");
    let url = format!("postgres://u:{c}@127.0.0.1:1/db");
    let mut args: Vec<&str> = once.to_vec();
    args.extend(["--", "initbox", "wait-for", "--timeout", "1s", &url]);
    v.push(
        probe(
            "schedule/in-process applet job with a URL password/fail",
            "schedule",
            &args,
            &c,
        )
        .codes(&[1]),
    );

    // ---- copy-self: no secret inputs; an unrelated secret in the environment stays there.
    let c = canary("copy");
    v.push(
        probe("copy-self/ok", "copy-self", &[&fx.p("copy")], &c)
            .env("COPY_SECRET", &c)
            .codes(&[0]),
    );
    let notdir = fx.file("copy-notdir", "x");
    v.push(
        probe(
            "copy-self/destination is a file/fail",
            "copy-self",
            &[&notdir],
            &c,
        )
        .env("COPY_SECRET", &c)
        .codes(&[1]),
    );

    // ---- git-checkout: the token file, sent as Basic `x-access-token:TOKEN` to a real smart
    // HTTP server (git-http-backend over TLS, tests/common/git.rs): accepted, refused, and named
    // by its variable.
    let git_url = fx.git.url_as("https", "/app.git");
    let git_ca = fx.p("git/ca.crt");
    let c = canary("gittok");
    let ok_token = fx.file("git-ok.token", &format!("{c}\n"));
    v.push(
        probe(
            "git-checkout/--token-file accepted/ok",
            "git-checkout",
            &[
                &git_url,
                "--to",
                &fx.p("git-out/flag"),
                "--token-file",
                &ok_token,
                "--ca-file",
                &git_ca,
            ],
            &c,
        )
        .dest(Dest::Git)
        .codes(&[0]),
    );
    v.push(
        probe(
            "git-checkout/INITBOX_GIT_TOKEN_FILE accepted/ok",
            "git-checkout",
            &[&git_url, "--to", &fx.p("git-out/env"), "--ca-file", &git_ca],
            &c,
        )
        .env("INITBOX_GIT_TOKEN_FILE", &ok_token)
        .dest(Dest::Git)
        .codes(&[0]),
    );
    let c = canary("gitbad");
    let bad_token = fx.file("git-bad.token", &format!("{c}\n"));
    v.push(
        probe(
            "git-checkout/--token-file refused/fail",
            "git-checkout",
            &[
                &git_url,
                "--to",
                &fx.p("git-out/refused"),
                "--token-file",
                &bad_token,
                "--ca-file",
                &git_ca,
            ],
            &c,
        )
        .dest(Dest::Git)
        .codes(&[5]),
    );

    // ---- download: --header values sent over https to the source's origin (the git server
    // above, which refuses anything but its Basic credential: exit 5), inline and from a file.
    let c = canary("dlhdrtls");
    v.push(
        probe(
            "download/--header X-Api-Key over https, refused/fail",
            "download",
            &[
                &format!("{git_url}/info/refs"),
                "--to",
                &out("dl-tls.bin"),
                "--sha256",
                &"0".repeat(64),
                "--ca-file",
                &git_ca,
                "--header",
                &format!("X-Api-Key: {c}"),
            ],
            &c,
        )
        .dest(Dest::Git)
        .codes(&[5]),
    );
    let c = canary("dlhdrtlsfile");
    let bearer = fx.file("dl-bearer", &format!("{c}\n"));
    v.push(
        probe(
            "download/--header Authorization: Bearer @FILE over https, refused/fail",
            "download",
            &[
                &format!("{git_url}/info/refs"),
                "--to",
                &out("dl-tls.bin"),
                "--sha256",
                &"0".repeat(64),
                "--ca-file",
                &git_ca,
                "-H",
                &format!("Authorization: Bearer @{bearer}"),
            ],
            &c,
        )
        .dest(Dest::Git)
        .codes(&[5]),
    );

    // ---- --help and -h with every INITBOX_* variable holding a canary (issue 12 item 1).
    for applet in [
        "wait-for-tcp",
        "wait-for-dns",
        "wait-for",
        "run-migrations",
        "fetch-secret",
        "render-config",
        "network-check",
        "notify",
        "run",
        "copy-self",
        "",
    ] {
        let tag = format!("help{}", applet.replace('-', ""));
        let c = canary(&tag);
        let mut env = help_env(applet, &c);
        if applet.is_empty() {
            // The front: every applet's variables at once, and the usual fallbacks.
            for a in [
                "wait-for",
                "notify",
                "fetch-secret",
                "run-migrations",
                "render-config",
                "network-check",
            ] {
                env.extend(help_env(a, &c));
            }
        }
        for flag in ["--help", "-h"] {
            let mut p = probe(
                &format!(
                    "{}/{flag} with INITBOX_* set",
                    if applet.is_empty() { "initbox" } else { applet }
                ),
                "",
                &[],
                &c,
            )
            .issue("12.1")
            .codes(&[0]);
            p.applet = applet;
            p.args = vec![flag.to_string()];
            p.env = env.clone();
            p.help = true;
            v.push(p);
        }
    }
    let c = canary("helpnfrun");
    for flag in ["--help", "-h"] {
        let mut p = probe(
            &format!("notify run/{flag} with INITBOX_* set"),
            "notify",
            &["run", flag],
            &c,
        )
        .issue("12.1")
        .codes(&[0]);
        p.env = help_env("notify", &c);
        p.help = true;
        v.push(p);
    }
    v
}

/// Every `INITBOX_*` variable `initbox APPLET --help` names, set to a value holding `c`; the
/// three of issue 12 item 1 with its exact shapes; and the fallbacks applets read.
fn help_env(applet: &str, c: &str) -> Vec<(String, String)> {
    let mut cmd = common::initbox();
    if !applet.is_empty() {
        cmd.arg(applet);
    }
    let r = common::run(cmd.arg("--help"), LIMIT);
    let mut names: Vec<String> = Vec::new();
    let text = r.all();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("INITBOX_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || *ch == '_')
            .collect();
        if !names.contains(&name) {
            names.push(name.clone());
        }
        rest = &rest[i + name.len()..];
    }
    let mut env: Vec<(String, String)> = names.into_iter().map(|n| (n, c.to_string())).collect();
    for (k, v) in [
        ("INITBOX_HTTP_HEADERS", format!("Authorization: Bearer {c}")),
        ("INITBOX_NOTIFY_URLS", format!("slack://{c}/{c}/token")),
        (
            "INITBOX_WAIT_FOR_TARGETS",
            format!("postgres://u:{c}@db:5432/app"),
        ),
        (
            "INITBOX_DATABASE_URL",
            format!("postgres://u:{c}@db:5432/app"),
        ),
        ("DATABASE_URL", format!("postgres://u:{c}@db:5432/app")),
        ("VAULT_TOKEN", c.to_string()),
        ("WAIT_HOSTS", format!("{c}:1")),
    ] {
        env.retain(|(n, _)| n != k);
        env.push((k.to_string(), v));
    }
    env
}

/// One run of a probe: `text` or `json` logs (or `help`).
fn run_one(fx: &Fixtures, p: &Probe, variant: &str, slot: usize) -> Vec<String> {
    let mut failures = Vec::new();
    let tl = fx.path(&format!("termlog-{slot}"));
    let _ = std::fs::remove_file(&tl);
    if let Dest::File(f) = &p.dest {
        let _ = std::fs::remove_file(f);
    }
    let mut cmd = common::initbox();
    cmd.env("HOME", fx.dir.path()).current_dir(fx.dir.path());
    if !p.applet.is_empty() {
        cmd.arg(p.applet);
    }
    let mut args = p.args.clone();
    if !p.help {
        let mut flags: Vec<String> = vec!["-v".into(), "-v".into()];
        if variant == "json" {
            flags.extend(["--log-format".into(), "json".into()]);
        }
        flags.extend(["--termination-log".into(), tl.to_str().unwrap().into()]);
        if p.applet == "notify" {
            // Every notification needs a message; none of the probes is about it.
            flags.extend(["--message".into(), "hello".into()]);
        }
        args.splice(p.flag_at..p.flag_at, flags);
    }
    cmd.args(&args);
    for (k, v) in &p.env {
        cmd.env(k, v);
    }
    let r = common::run(&mut cmd, LIMIT);
    let termlog = std::fs::read_to_string(&tl).unwrap_or_default();
    let mut channels = vec![
        ("stderr", r.stderr.as_str()),
        ("termination log", termlog.as_str()),
    ];
    if !matches!(p.dest, Dest::Stdout) {
        channels.push(("stdout", r.stdout.as_str()));
    }
    for secret in &p.secrets {
        for (channel, text) in &channels {
            for (form, excerpt) in canary::find(secret, text) {
                failures.push(format!("LEAK in {channel}, as {form}: {excerpt}"));
            }
        }
    }
    if r.all().contains("panicked") || r.all().contains("internal error") {
        failures.push(format!("PANIC: {}", last_line(&r.all())));
    }
    if !p.codes.is_empty() && !p.codes.contains(&r.code()) {
        failures.push(format!(
            "EXIT {} (expected {:?}): {}",
            r.code(),
            p.codes,
            last_line(&r.stderr)
        ));
    }
    for word in &p.keep {
        if !r.stderr.contains(word.as_str()) {
            failures.push(format!(
                "OVER-REDACTED: stderr lacks {word:?} (a short secret shredded an unrelated word); last line: {}",
                last_line(&r.stderr)
            ));
        }
    }
    let primary = &p.secrets[0];
    match &p.dest {
        Dest::None => {}
        Dest::Stdout => {
            if !r.stdout.contains(primary.as_str()) {
                failures.push("NOT EXERCISED: stdout lacks the secret".into());
            }
        }
        Dest::File(f) => {
            let got = std::fs::read_to_string(f).unwrap_or_default();
            if !got.contains(primary.as_str()) {
                failures.push(format!(
                    "NOT EXERCISED: {} lacks the secret (holds {:?}); last line: {}",
                    f.display(),
                    got.chars().take(80).collect::<String>(),
                    last_line(&r.stderr)
                ));
            }
        }
        Dest::Server | Dest::Git => {
            let server = if matches!(p.dest, Dest::Git) {
                &fx.git
            } else {
                fx.echo.server()
            };
            if !server
                .requests()
                .iter()
                .any(|req| !canary::find(primary, req).is_empty())
            {
                failures.push(format!(
                    "NOT EXERCISED: the server never received the secret; last line: {}",
                    last_line(&r.stderr)
                ));
            }
        }
    }
    failures
}

fn last_line(s: &str) -> String {
    let line = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.chars().take(300).collect()
}

#[test]
fn canary_forms_cover_base64_at_every_alignment() {
    let value = canary("forms");
    let encode = |s: &str| {
        let mut out = String::new();
        for chunk in s.as_bytes().chunks(3) {
            let mut g = [0u8; 3];
            g[..chunk.len()].copy_from_slice(chunk);
            let n = (g[0] as u32) << 16 | (g[1] as u32) << 8 | g[2] as u32;
            for k in 0..=chunk.len() {
                out.push(canary::STANDARD[((n >> (18 - 6 * k)) & 63) as usize] as char);
            }
        }
        out
    };
    for prefix in ["", "u:", "us:", "user:"] {
        let encoded = encode(&format!("{prefix}{value}!"));
        assert!(
            !canary::find(&value, &encoded).is_empty(),
            "{prefix}: {encoded}"
        );
    }
    assert!(canary::find(&value, "nothing here").is_empty());
    assert!(!canary::find("a\"b\\cdefg", "x a\\\"b\\\\cdefg y").is_empty());
    assert!(!canary::find("Head1234567@ss/w:rdTail345678", "host rdTail345678 port").is_empty());
}

#[test]
fn canary_sweep() {
    let started = Instant::now();
    let fx = setup();
    let probes = probes(&fx);
    // One queue entry per probe: its variants run one after the other (they share its files).
    let queue: VecDeque<usize> = (0..probes.len()).collect();
    let runs: usize = probes.iter().map(|p| if p.help { 1 } else { 2 }).sum();
    let queue = Mutex::new(queue);
    let failures: Mutex<Vec<(usize, &'static str, String)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for slot in 0..THREADS {
            let (fx, probes, queue, failures) = (&fx, &probes, &queue, &failures);
            s.spawn(move || {
                loop {
                    let next = queue.lock().unwrap().pop_front();
                    let Some(i) = next else { break };
                    let variants: &[&'static str] = if probes[i].help {
                        &["help"]
                    } else {
                        &["text", "json"]
                    };
                    for variant in variants {
                        // A run that hangs (common::run kills it and panics) is one more
                        // failure of its probe, not the end of the sweep.
                        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            run_one(fx, &probes[i], variant, slot)
                        }))
                        .unwrap_or_else(|e| {
                            let why = e
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default();
                            vec![format!("HARNESS: {}", last_line(&why))]
                        });
                        for f in found {
                            failures.lock().unwrap().push((i, variant, f));
                        }
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let failed_probes: std::collections::BTreeSet<usize> = failures.iter().map(|f| f.0).collect();
    let mut report = String::new();
    for i in &failed_probes {
        let p = &probes[*i];
        let issue = if p.issue.is_empty() {
            String::new()
        } else {
            format!(" (issue {})", p.issue)
        };
        report.push_str(&format!(
            "\n✗ {}{issue}\n    initbox {} {}\n",
            p.name,
            p.applet,
            p.args.join(" ")
        ));
        for (_, variant, f) in failures.iter().filter(|f| f.0 == *i) {
            report.push_str(&format!("    [{variant}] {f}\n"));
        }
    }
    let mut by_issue: std::collections::BTreeMap<&str, usize> = Default::default();
    for i in &failed_probes {
        let issue = probes[*i].issue;
        *by_issue
            .entry(if issue.is_empty() {
                "no issue item"
            } else {
                issue
            })
            .or_default() += 1;
    }
    let by_issue: Vec<String> = by_issue.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    let summary = format!(
        "canary sweep: {} probes, {runs} runs, {} probes failed ({}), in {:.1}s",
        probes.len(),
        failed_probes.len(),
        by_issue.join(", "),
        started.elapsed().as_secs_f64()
    );
    println!("{summary}");
    let _ = std::io::stdout().flush();
    assert!(failures.is_empty(), "{summary}\n{report}");
}
