//! End-to-end tests of `initbox wait-for` against real servers: the PostgreSQL, MariaDB, Redis,
//! RabbitMQ, NATS and Mosquitto servers tests/setup starts, throwaway instances of them where a
//! test must see one start late or demand a password, local HTTP servers written here (503 then
//! 200, wrong bodies, slow answers) and `openssl s_server` with a test CA for TLS.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::http::{Answer, HttpServer};
use common::pg::{ScramCluster, postgres_uid};
use common::pki;
use common::{assert_one_line_error, free_port, initbox, require_service, run, wait_child};

const LIMIT: Duration = Duration::from_secs(60);

/// `initbox wait-for`, with no proxy from the caller's environment (tests talk to 127.0.0.1).
fn cmd() -> Command {
    let mut c = initbox();
    // Neither proxies nor the services' password variables from the caller's environment.
    for v in common::PROXY_VARS
        .iter()
        .chain(&["PGPASSWORD", "MYSQL_PWD", "REDISCLI_AUTH"])
    {
        c.env_remove(v);
    }
    c.arg("wait-for");
    c
}

fn wait_for(args: &[&str]) -> common::Run {
    run(cmd().args(args), LIMIT)
}

fn spawn_wait_for(args: &[&str]) -> Child {
    cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn initbox")
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "initbox-wait-for-{tag}-{}-{}",
        std::process::id(),
        free_port()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Kills a spawned server when the test ends, whatever happens.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_listening(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "nothing listens on {port}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// A small HTTP/1.1 server: the handler sees the request count and the request text and returns
// (status, body, delay before answering).
// ---------------------------------------------------------------------------------------------

type Http = HttpServer;

fn http_server<F>(handler: F) -> Http
where
    F: Fn(usize, &str) -> (u16, String, Duration) + Send + Sync + 'static,
{
    HttpServer::start(move |n, text| {
        let (status, body, delay) = handler(n, text);
        Answer::json(status, body).after(delay)
    })
}

fn url(h: &Http, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", h.port)
}

#[test]
fn http_503_then_200_is_ready_only_after_the_200() {
    let h = http_server(|n, _| {
        if n <= 3 {
            (503, "warming up".into(), Duration::ZERO)
        } else {
            (200, "ok".into(), Duration::ZERO)
        }
    });
    let r = wait_for(&["--timeout", "20s", &url(&h, "/healthz")]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(h.hits() >= 4);
    assert!(r.stderr.contains("HTTP 200"), "{}", r.stderr);
    assert!(h.requests()[0].starts_with("GET /healthz HTTP/1.1"));
}

#[test]
fn http_status_outside_the_set_is_not_ready_and_the_set_is_configurable() {
    let h = http_server(|_, _| (401, "auth".into(), Duration::ZERO));
    let r = wait_for(&["--timeout", "1s", &url(&h, "/")]);
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(
        r.stderr
            .contains("HTTP 401 Unauthorized (expected 200-299)"),
        "{}",
        r.stderr
    );
    let r = wait_for(&["--timeout", "5s", "--status", "200-299,401", &url(&h, "/")]);
    assert_eq!(r.code(), 0, "{}", r.all());
    // A 500 is never ready by default (wait4x counts it as ready unless told).
    let e = http_server(|_, _| (500, "boom".into(), Duration::ZERO));
    let r = wait_for(&["--once", &url(&e, "/")]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("HTTP 500"), "{}", r.stderr);
}

#[test]
fn http_body_regex_and_json_value() {
    let h = http_server(|n, _| {
        let status = if n <= 2 { "DOWN" } else { "UP" };
        (
            200,
            format!(
                r#"{{"status":"{status}","checks":[{{"name":"db","ok":{}}}]}}"#,
                n > 2
            ),
            Duration::ZERO,
        )
    });
    let r = wait_for(&[
        "--timeout",
        "20s",
        "--json",
        "status=UP",
        "--json",
        "checks[0].ok=true",
        &url(&h, "/health"),
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(h.hits() >= 3);

    let wrong = http_server(|_, _| (200, r#"{"status":"DOWN"}"#.into(), Duration::ZERO));
    let r = wait_for(&["--timeout", "1s", "--json", "status=UP", &url(&wrong, "/")]);
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(
        r.stderr
            .contains(r#"JSON 'status' is "DOWN", expected "UP""#),
        "{}",
        r.stderr
    );

    let r = wait_for(&["--once", "--body-regex", "^ready$", &url(&wrong, "/")]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(
        r.stderr.contains("does not match /^ready$/"),
        "{}",
        r.stderr
    );
    let r = wait_for(&[
        "--once",
        "--body-regex",
        "\"status\":\"DOWN\"",
        &url(&wrong, "/"),
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
}

#[test]
fn http_slow_answers_hit_the_attempt_timeout() {
    let h = http_server(|_, _| (200, "late".into(), Duration::from_secs(3)));
    let r = wait_for(&[
        "--timeout",
        "1500ms",
        "--attempt-timeout",
        "300ms",
        &url(&h, "/"),
    ]);
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(
        r.stderr.contains("attempt timeout") || r.stderr.contains("timed out"),
        "{}",
        r.stderr
    );
    assert!(r.elapsed < Duration::from_secs(3), "{:?}", r.elapsed);
    assert!(h.hits() >= 2, "one request per attempt");
}

#[test]
fn http_method_headers_and_body_with_a_secret_from_a_file() {
    let dir = tmpdir("http-hdr");
    let token = dir.join("token");
    std::fs::write(&token, "tok-canary-5521\n").unwrap();
    let h = http_server(|_, req| {
        let ok = req.starts_with("POST /ready ")
            && req.contains("authorization: Bearer tok-canary-5521")
            && req.ends_with("{\"probe\":1}");
        if ok {
            (204, String::new(), Duration::ZERO)
        } else {
            (403, "no".into(), Duration::ZERO)
        }
    });
    let r = wait_for(&[
        "-vv",
        "--once",
        "--method",
        "post",
        "-H",
        &format!("Authorization: Bearer @{}", token.display()),
        "--data",
        "{\"probe\":1}",
        &url(&h, "/ready"),
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        !r.all().contains("tok-canary-5521"),
        "secret leaked: {}",
        r.all()
    );
    // Without the header the server refuses: 403 is not ready.
    let r = wait_for(&["--once", "--method", "POST", &url(&h, "/ready")]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn http_goes_through_the_proxy_from_the_environment() {
    // The "proxy" answers 200 to absolute-form requests; the target name does not resolve, so
    // only a proxied request can be ready.
    let proxy = http_server(|_, req| {
        if req.starts_with("GET http://backend.invalid:8080/health HTTP/1.1") {
            (200, "via proxy".into(), Duration::ZERO)
        } else {
            (400, "not a proxy request".into(), Duration::ZERO)
        }
    });
    let r = run(
        cmd()
            .env("HTTP_PROXY", format!("http://127.0.0.1:{}", proxy.port))
            .args(["--once", "http://backend.invalid:8080/health"]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(proxy.hits(), 1);
    // NO_PROXY is honoured.
    let r = run(
        cmd()
            .env("HTTP_PROXY", format!("http://127.0.0.1:{}", proxy.port))
            .env("NO_PROXY", "backend.invalid")
            .args(["--once", "http://backend.invalid:8080/health"]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert_eq!(proxy.hits(), 1);
}

#[test]
fn http_password_in_the_url_never_shows() {
    let h = http_server(|_, req| {
        // Basic auth from the URL's user info.
        if req.contains("authorization: Basic ") {
            (503, "nope".into(), Duration::ZERO)
        } else {
            (500, "no auth".into(), Duration::ZERO)
        }
    });
    let u = format!("http://admin:url-canary-9931@127.0.0.1:{}/", h.port);
    let r = wait_for(&["-vv", "--timeout", "1s", &u]);
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(r.stderr.contains("HTTP 503"), "{}", r.stderr);
    assert!(
        !r.all().contains("url-canary-9931"),
        "secret leaked: {}",
        r.all()
    );
    assert!(r.all().contains("[REDACTED]"));
}

#[test]
fn vv_traces_the_request_line_and_status_without_secrets() {
    let h = http_server(|_, _| (200, "ok".into(), Duration::ZERO));
    let u = format!(
        "http://admin:trace-canary-5521@127.0.0.1:{}/ready?token=tok-canary-7781",
        h.port
    );
    let r = wait_for(&["-vv", "--timeout", "5s", &u]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("http > GET http://"))
        .unwrap_or_else(|| panic!("no request line: {}", r.stderr));
    assert!(
        line.contains(&format!("127.0.0.1:{}/ready", h.port)),
        "{line}"
    );
    assert!(r.stderr.contains("http < 200"), "{}", r.stderr);
    for secret in ["trace-canary-5521", "tok-canary-7781"] {
        assert!(!r.all().contains(secret), "{secret}: {}", r.all());
    }
}

// ---------------------------------------------------------------------------------------------
// TLS with a test CA: openssl makes the CA and the certificates, openssl s_server serves.
// ---------------------------------------------------------------------------------------------

/// A CA (`ca.crt`), a server certificate for 127.0.0.1/localhost (`server.pem`) and a client
/// certificate (`client.pem`) signed by it: the kit's PKI (tests/common/pki.rs).
fn test_pki(dir: &Path) {
    pki::ca_and_localhost(dir, "initbox test CA");
    pki::client_cert(dir, "client", "client");
}

fn s_server(dir: &Path, port: u16, extra: &[&str]) -> Server {
    std::fs::write(dir.join("ready"), "ready\n").unwrap();
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-accept",
            &port.to_string(),
            "-cert",
            "server.pem",
            "-key",
            "server.key",
            "-WWW",
        ])
        .args(extra)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    wait_listening(port);
    Server(child)
}

#[test]
fn https_is_verified_against_system_roots_plus_the_ca_file() {
    let dir = tmpdir("tls");
    test_pki(&dir);
    let port = free_port();
    let _srv = s_server(&dir, port, &[]);
    let u = format!("https://127.0.0.1:{port}/ready");
    let ca = dir.join("ca.crt");

    let r = wait_for(&["--once", &u]);
    assert_eq!(
        r.code(),
        1,
        "an unknown CA must not be trusted: {}",
        r.all()
    );
    assert!(
        r.stderr.to_lowercase().contains("certificate"),
        "{}",
        r.stderr
    );

    let r = wait_for(&[
        "--once",
        "--ca-file",
        ca.to_str().unwrap(),
        "--body-regex",
        "^ready",
        &u,
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());

    let r = wait_for(&["--once", "--insecure", &u]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stderr.contains("NOT verified"),
        "--insecure is logged: {}",
        r.stderr
    );

    let r = wait_for(&["--once", "--ca-file", "/nonexistent/ca.pem", &u]);
    assert_one_line_error(&r, 3, "/nonexistent/ca.pem");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn https_with_a_client_certificate() {
    let dir = tmpdir("mtls");
    test_pki(&dir);
    let port = free_port();
    let _srv = s_server(&dir, port, &["-Verify", "1", "-CAfile", "ca.crt"]);
    let u = format!("https://localhost:{port}/ready");
    let ca = dir.join("ca.crt");
    let r = wait_for(&["--once", "--ca-file", ca.to_str().unwrap(), &u]);
    assert_eq!(r.code(), 1, "no client certificate, no answer: {}", r.all());
    let r = wait_for(&[
        "--once",
        "--ca-file",
        ca.to_str().unwrap(),
        "--client-cert",
        dir.join("client.pem").to_str().unwrap(),
        "--client-key",
        dir.join("client.key").to_str().unwrap(),
        &u,
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: the shared server for the plain cases, a throwaway cluster (password auth, started
// as a standby with hot_standby off, so "not accepting connections" 57P03 is seen for as long as
// the test wants, then promoted) for the rest.
// ---------------------------------------------------------------------------------------------

/// The kit's private scram-sha-256 cluster (tests/common/pg.rs), hot_standby off.
fn pg_cluster(password: &str) -> ScramCluster {
    ScramCluster::init(&tmpdir("pg"), password, "hot_standby = off")
}

/// Start `pg` as a standby that refuses connections (57P03) until promoted.
fn start_as_standby(pg: &ScramCluster) {
    let signal = pg.data().join("standby.signal");
    std::fs::write(&signal, "").unwrap();
    let uid = postgres_uid();
    std::os::unix::fs::chown(&signal, Some(uid), Some(uid)).unwrap();
    pg.pg_ctl(&["-W", "start"]);
    wait_listening(pg.port);
}

#[test]
fn postgres_starting_up_is_not_ready_then_promotion_makes_it_ready() {
    let password = "pg-canary-Zx81";
    let pg = pg_cluster(password);
    let u = format!(
        "postgres://postgres:{password}@127.0.0.1:{}/postgres",
        pg.port
    );

    // Waiting starts before the server does: refused, then 57P03, then ready.
    let child = spawn_wait_for(&[
        "-vv",
        "--timeout",
        "60s",
        &u,
        "--",
        "sh",
        "-c",
        "echo follow-up ran",
    ]);
    thread::sleep(Duration::from_millis(500));
    start_as_standby(&pg);

    // While it is a standby with hot_standby off, a one-shot check says "not ready", with why.
    let r = wait_for(&["--once", &u]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("57P03"), "{}", r.stderr);
    thread::sleep(Duration::from_secs(1));
    pg.pg_ctl(&["-w", "promote"]);
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stderr.contains("57P03"),
        "the wait saw the server refuse: {}",
        r.stderr
    );
    assert!(r.stdout.contains("follow-up ran"), "{}", r.all());
    assert!(!r.all().contains(password), "secret leaked: {}", r.all());

    // A wrong password is permanent: exit 5 at once, not a wait until the deadline.
    let bad = format!(
        "postgres://postgres:wrong-pw-canary@127.0.0.1:{}/postgres",
        pg.port
    );
    let r = wait_for(&[
        "--timeout",
        "30s",
        &bad,
        "--",
        "sh",
        "-c",
        "echo must-not-run",
    ]);
    assert_eq!(r.code(), 5, "{}", r.all());
    assert!(r.elapsed < Duration::from_secs(10), "{:?}", r.elapsed);
    assert!(!r.stdout.contains("must-not-run"));
    assert!(!r.all().contains("wrong-pw-canary"), "{}", r.all());

    // The password from a file, for a URL without one.
    let dir = tmpdir("pgpw");
    let pw = dir.join("pw");
    std::fs::write(&pw, format!("{password}\n")).unwrap();
    let plain = format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port);
    let r = wait_for(&[
        "-vv",
        "--once",
        "--password-file",
        pw.to_str().unwrap(),
        &plain,
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(!r.all().contains(password), "{}", r.all());
    // ... or the whole URL from a file (a mounted Secret).
    let urlfile = dir.join("database-url");
    std::fs::write(&urlfile, format!("{u}\n")).unwrap();
    let r = wait_for(&["-vv", "--once", &format!("@{}", urlfile.display())]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(!r.all().contains(password), "{}", r.all());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn postgres_shared_server_missing_database_and_query() {
    require_service("PostgreSQL", "127.0.0.1:5432");
    let r = wait_for(&["--once", "postgres://root@127.0.0.1:5432/test"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let r = wait_for(&[
        "--timeout",
        "30s",
        "postgresql://root@127.0.0.1:5432/no_such_db_initbox",
    ]);
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(r.stderr.contains("no_such_db_initbox"), "{}", r.stderr);

    // --query: not ready while the table is missing or has no ready row.
    let table = format!("initbox_wf_{}", std::process::id());
    let psql = |sql: &str| {
        let o = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "root",
                "-d",
                "test",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "psql {sql}: {}", common::text(&o));
    };
    let q = format!("SELECT ready FROM {table} LIMIT 1");
    let u = "postgres://root@127.0.0.1:5432/test";
    let r = wait_for(&["--once", "--query", &q, u]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    let child = spawn_wait_for(&["--timeout", "30s", "--query", &q, u]);
    psql(&format!("CREATE TABLE {table} (ready boolean)"));
    thread::sleep(Duration::from_millis(300));
    psql(&format!("INSERT INTO {table} VALUES (false)"));
    let r2 = wait_for(&["--once", "--query", &q, u]);
    assert_eq!(r2.code(), 1, "false is not ready: {}", r2.all());
    assert!(r2.stderr.contains("returned false"), "{}", r2.stderr);
    psql(&format!("UPDATE {table} SET ready = true"));
    let r = wait_child(child, LIMIT);
    psql(&format!("DROP TABLE {table}"));
    assert_eq!(r.code(), 0, "{}", r.all());
}

// ---------------------------------------------------------------------------------------------
// MariaDB
// ---------------------------------------------------------------------------------------------

#[test]
fn mysql_and_mariadb_contract() {
    require_service("MariaDB", "127.0.0.1:3306");
    let r = wait_for(&[
        "--once",
        "mysql://root@127.0.0.1:3306/test",
        "mariadb://root@127.0.0.1/test",
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let r = wait_for(&[
        "--timeout",
        "30s",
        "mysql://root:my-canary-pw-31@127.0.0.1:3306/test",
    ]);
    assert_eq!(r.code(), 5, "{}", r.all());
    assert!(!r.all().contains("my-canary-pw-31"), "{}", r.all());
    let r = wait_for(&[
        "--timeout",
        "30s",
        "mariadb://root@127.0.0.1:3306/no_such_db_initbox",
    ]);
    assert_eq!(r.code(), 3, "{}", r.all());
    let r = wait_for(&[
        "--once",
        "--query",
        "SELECT 0",
        "mysql://root@127.0.0.1:3306/test",
    ]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let r = wait_for(&[
        "--once",
        "--query",
        "SELECT COUNT(*) FROM information_schema.tables",
        "mysql://root@127.0.0.1:3306/test",
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
}

/// A byte relay from `[::1]:PORT` to `to`, for as long as the test runs: this machine's
/// PostgreSQL and MariaDB listen on 127.0.0.1 only (tests/setup/10-services.sh), so this is how
/// a URL with an IPv6 literal reaches the real servers. It forwards bytes, nothing more.
fn ipv6_relay(to: &'static str) -> u16 {
    use std::net::{Shutdown, TcpStream};
    let l = TcpListener::bind("[::1]:0").expect("::1 is configured (Redis listens there too)");
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for client in l.incoming().flatten() {
            let Ok(server) = TcpStream::connect(to) else {
                continue;
            };
            let (mut c, mut s) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            thread::spawn(move || {
                let _ = std::io::copy(&mut c, &mut s);
                let _ = s.shutdown(Shutdown::Write);
            });
            let (mut c, mut s) = (client, server);
            thread::spawn(move || {
                let _ = std::io::copy(&mut s, &mut c);
                let _ = c.shutdown(Shutdown::Write);
            });
        }
    });
    port
}

#[test]
fn postgres_and_mysql_urls_with_an_ipv6_literal() {
    require_service("PostgreSQL", "127.0.0.1:5432");
    require_service("MariaDB", "127.0.0.1:3306");
    // Nobody listens: the connection to ::1 is refused; "[::1]" is never looked up as a name.
    let port = free_port();
    for u in [
        format!("postgres://postgres@[::1]:{port}/postgres"),
        format!("mysql://root@[::1]:{port}/test"),
    ] {
        let r = wait_for(&["--once", &u]);
        assert_eq!(r.code(), 1, "{u}: {}", r.all());
        assert!(r.stderr.contains("refused"), "{u}: {}", r.stderr);
        assert!(!r.stderr.contains("lookup"), "{u}: {}", r.stderr);
    }
    // Through ::1, the real servers answer: ready.
    let pg = ipv6_relay("127.0.0.1:5432");
    let my = ipv6_relay("127.0.0.1:3306");
    let r = wait_for(&[
        "--once",
        &format!("postgres://postgres@[::1]:{pg}/postgres"),
        &format!("postgresql://root@[::1]:{pg}/test"),
        &format!("mysql://root@[::1]:{my}/test"),
        &format!("mariadb://root@[::1]:{my}/test"),
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
}

// ---------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------

#[test]
fn redis_ping_auth_and_late_start() {
    require_service("Redis", "127.0.0.1:6379");
    let r = wait_for(&["--once", "redis://127.0.0.1:6379/0"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("PONG"), "{}", r.stderr);
    let r = wait_for(&["--once", "redis://127.0.0.1:6379/99999"]);
    assert_eq!(r.code(), 3, "{}", r.all());

    // A password-protected server that starts after the wait began.
    let port = free_port();
    let pw = "redis-canary-Qw7";
    let u = format!("redis://:{pw}@127.0.0.1:{port}");
    let child = spawn_wait_for(&["-vv", "--timeout", "30s", &u]);
    thread::sleep(Duration::from_millis(500));
    let _srv = Server(
        common::redis_server(port, &["--requirepass", pw])
            .spawn()
            .expect("redis-server"),
    );
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(!r.all().contains(pw), "{}", r.all());
    let r = wait_for(&["--timeout", "30s", &format!("redis://127.0.0.1:{port}")]);
    assert_eq!(r.code(), 5, "no password: {}", r.all());
    assert!(r.stderr.contains("NOAUTH"), "{}", r.stderr);
    let r = wait_for(&[
        "--timeout",
        "30s",
        &format!("redis://:wrong-redis-pw@127.0.0.1:{port}"),
    ]);
    assert_eq!(r.code(), 5, "{}", r.all());
    assert!(!r.all().contains("wrong-redis-pw"), "{}", r.all());
}

// ---------------------------------------------------------------------------------------------
// RabbitMQ, NATS, Mosquitto
// ---------------------------------------------------------------------------------------------

#[test]
fn amqp_connection_opens_and_refusals_are_permanent() {
    require_service("RabbitMQ", "127.0.0.1:5672");
    let r = wait_for(&[
        "--once",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        "amqp://127.0.0.1",
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let r = wait_for(&[
        "--timeout",
        "30s",
        "amqp://guest:amqp-canary-pw@127.0.0.1:5672/",
    ]);
    assert_eq!(r.code(), 5, "{}", r.all());
    assert!(r.stderr.contains("ACCESS_REFUSED"), "{}", r.stderr);
    assert!(!r.all().contains("amqp-canary-pw"), "{}", r.all());
    let r = wait_for(&[
        "--timeout",
        "30s",
        "amqp://guest:guest@127.0.0.1:5672/no-such-vhost",
    ]);
    assert_eq!(r.code(), 3, "{}", r.all());
}

#[test]
fn nats_info_ping_pong_and_credentials() {
    require_service("NATS", "127.0.0.1:4222");
    let r = wait_for(&["--once", "nats://127.0.0.1:4222"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let port = free_port();
    let _srv = Server(
        Command::new("nats-server")
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "--user",
                "app",
                "--pass",
                "nats-canary-pw",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server"),
    );
    wait_listening(port);
    let r = wait_for(&[
        "-vv",
        "--once",
        &format!("nats://app:nats-canary-pw@127.0.0.1:{port}"),
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(!r.all().contains("nats-canary-pw"), "{}", r.all());
    let r = wait_for(&[
        "--timeout",
        "30s",
        &format!("nats://app:wrong@127.0.0.1:{port}"),
    ]);
    assert_eq!(r.code(), 5, "{}", r.all());
}

#[test]
fn mqtt_connack_and_credentials() {
    require_service("Mosquitto", "127.0.0.1:1883");
    let r = wait_for(&["--once", "mqtt://127.0.0.1:1883"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("CONNACK accepted"), "{}", r.stderr);

    let dir = tmpdir("mqtt");
    let (mut mosquitto, port) = common::mosquitto_with_user(&dir, "app", "mqtt-canary-pw");
    let _srv = Server(mosquitto.spawn().expect("mosquitto"));
    wait_listening(port);
    let pw = dir.join("pw");
    std::fs::write(&pw, "mqtt-canary-pw").unwrap();
    let r = wait_for(&[
        "-vv",
        "--once",
        "--password-file",
        pw.to_str().unwrap(),
        &format!("mqtt://app@127.0.0.1:{port}"),
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(!r.all().contains("mqtt-canary-pw"), "{}", r.all());
    let r = wait_for(&[
        "--timeout",
        "30s",
        &format!("mqtt://app:wrong@127.0.0.1:{port}"),
    ]);
    assert_eq!(r.code(), 5, "{}", r.all());
    let r = wait_for(&["--timeout", "30s", &format!("mqtt://127.0.0.1:{port}")]);
    assert_eq!(r.code(), 5, "anonymous refused: {}", r.all());
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------------
// Files, sockets, commands, tcp, dns; engine behaviour through wait-for
// ---------------------------------------------------------------------------------------------

#[test]
fn file_unix_and_commands() {
    let dir = tmpdir("local");
    let flag = dir.join("flag");
    let sock = dir.join("app.sock");
    let child = spawn_wait_for(&[
        "--timeout",
        "30s",
        &format!("file://{}?contains=^ready", flag.display()),
        &format!("unix://{}", sock.display()),
        "--cmd",
        &format!("test -d '{}/sub'", dir.display()),
    ]);
    thread::sleep(Duration::from_millis(300));
    std::fs::write(&flag, "starting\n").unwrap();
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    thread::sleep(Duration::from_millis(300));
    std::fs::write(&flag, "ready\n").unwrap();
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());

    let empty = dir.join("empty");
    std::fs::write(&empty, "").unwrap();
    let r = wait_for(&["--once", &format!("file://{}?nonempty", empty.display())]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("empty"), "{}", r.stderr);

    // No shell unless asked: `&&` is an argument to `test`, which then fails.
    let r = wait_for(&["--once", "exec:test -d / && false"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    let r = wait_for(&["--once", "--shell", "exec:test -d / && true"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let r = wait_for(&["--once", "exec:false"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("exit 1"), "{}", r.stderr);
    let r = wait_for(&["--timeout", "10s", "exec:no-such-command-initbox"]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr.contains("not found"), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn tcp_dns_any_invert_and_the_follow_up_command() {
    let h = http_server(|_, _| (200, "ok".into(), Duration::ZERO));
    let closed = free_port();
    let r = wait_for(&[
        "--once",
        &format!("tcp://127.0.0.1:{}", h.port),
        "dns://localhost",
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
    // --any: one ready target is enough.
    let r = wait_for(&[
        "--any",
        "--timeout",
        "5s",
        &format!("tcp://127.0.0.1:{closed}"),
        &url(&h, "/"),
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
    // --invert: nothing listens on `closed`.
    let r = wait_for(&[
        "--invert",
        "--timeout",
        "5s",
        &format!("http://127.0.0.1:{closed}/"),
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let r = wait_for(&["--invert", "--timeout", "1s", &url(&h, "/")]);
    assert_eq!(r.code(), 124, "{}", r.all());
    // The follow-up command runs after success only.
    let dir = tmpdir("cmd");
    let marker = dir.join("ran");
    let m = marker.to_str().unwrap();
    let r = wait_for(&[
        "--timeout",
        "1s",
        &format!("tcp://127.0.0.1:{closed}"),
        "--",
        "touch",
        m,
    ]);
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(!marker.exists(), "a failed wait must not run the command");
    let r = wait_for(&[&url(&h, "/"), "--", "touch", m]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(marker.exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_input_is_a_one_line_error() {
    for (args, code, needle) in [
        (vec!["gopher://host:70"], 2, "unknown scheme 'gopher://'"),
        (vec!["localhost:5432"], 2, "not a URL"),
        (vec!["redis://host:99999"], 2, "99999"),
        (vec!["postgres://"], 2, "missing host"),
        (vec!["tcp://host"], 2, "missing port"),
        (vec!["dns://x?type=bogus"], 2, "bogus"),
        (vec!["--status", "200-abc", "http://x/"], 2, "abc"),
        (vec!["--json", "a..b=1", "http://x/"], 2, "a..b"),
        (
            vec!["--body-regex", "(", "http://x/"],
            2,
            "regular expression",
        ),
        (
            vec![
                "--password-file",
                "/nonexistent/initbox-pw",
                "postgres://u@h/db",
            ],
            3,
            "/nonexistent/initbox-pw",
        ),
        (
            vec!["@/nonexistent/initbox-url"],
            3,
            "/nonexistent/initbox-url",
        ),
        (vec!["--query", "SELECT 1", "redis://h"], 2, "--query"),
        (vec![], 2, "no targets"),
    ] {
        let r = wait_for(&args);
        assert_one_line_error(&r, code, needle);
    }
    // A password in a bad URL is still masked.
    let r = wait_for(&["gopher://u:bad-url-canary@h/"]);
    assert_one_line_error(&r, 2, "gopher");
    assert!(!r.all().contains("bad-url-canary"), "{}", r.all());
}

/// Redis answers `-LOADING` while it reads its dataset: a throwaway server is filled, saved,
/// and restarted with a per-key load delay so the loading phase lasts a few seconds.
#[test]
fn redis_loading_is_not_ready() {
    let dir = tmpdir("redis-loading");
    let port = free_port();
    let p = port.to_string();
    let d = dir.to_str().unwrap();
    let cli = |args: &[&str]| {
        let o = Command::new("redis-cli")
            .args(["-p", &p])
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "redis-cli {args:?}: {}",
            common::text(&o)
        );
    };
    {
        let _first = Server(
            Command::new("redis-server")
                .args([
                    "--port",
                    &p,
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    d,
                    "--enable-debug-command",
                    "yes",
                ])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server"),
        );
        wait_listening(port);
        cli(&["DEBUG", "POPULATE", "20000"]);
        cli(&["SAVE"]);
    }
    let _srv = Server(
        Command::new("redis-server")
            .args([
                "--port",
                &p,
                "--bind",
                "127.0.0.1",
                "--dir",
                d,
                "--key-load-delay",
                "100",
                "--loading-process-events-interval-bytes",
                "1024",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server"),
    );
    wait_listening(port);
    let u = format!("redis://127.0.0.1:{port}");
    let r = wait_for(&["--once", &u]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("LOADING"), "{}", r.stderr);
    let r = wait_for(&["--timeout", "40s", "--progress-interval", "500ms", &u]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stderr.contains("LOADING"),
        "progress lines say why: {}",
        r.stderr
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `rediss://`: TLS through the same verified rustls configuration as https (and amqps, mqtts).
#[test]
fn rediss_is_verified_with_the_ca_file() {
    let dir = tmpdir("rediss");
    test_pki(&dir);
    let port = free_port();
    let file = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let _srv = Server(
        Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--tls-cert-file",
                &file("server.pem"),
                "--tls-key-file",
                &file("server.key"),
                "--tls-ca-cert-file",
                &file("ca.crt"),
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server"),
    );
    wait_listening(port);
    let u = format!("rediss://127.0.0.1:{port}");
    let r = wait_for(&["--once", &u]);
    assert_eq!(r.code(), 1, "unknown CA: {}", r.all());
    assert!(r.stderr.contains("TLS handshake"), "{}", r.stderr);
    let r = wait_for(&["--once", "--ca-file", &file("ca.crt"), &u]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("PONG"), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

/// A throwaway MariaDB that starts (and is even created) after the wait began.
#[test]
fn mariadb_started_late() {
    let dir = tmpdir("mariadb");
    let data = dir.join("data");
    let port = free_port();
    let u = format!("mariadb://root@127.0.0.1:{port}/mysql");
    let child = spawn_wait_for(&["--timeout", "120s", "--progress-interval", "1s", &u]);
    // Down for longer than one progress interval, however fast the server is created.
    std::thread::sleep(Duration::from_millis(1500));
    let o = Command::new("mariadb-install-db")
        .args([
            "--no-defaults",
            &format!("--datadir={}", data.display()),
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--user=root",
        ])
        .output()
        .expect("mariadb-install-db");
    assert!(o.status.success(), "{}", common::text(&o));
    let srv = Server(
        Command::new("mariadbd")
            .args([
                "--no-defaults",
                &format!("--datadir={}", data.display()),
                &format!("--port={port}"),
                "--bind-address=127.0.0.1",
                &format!("--socket={}", dir.join("sock").display()),
                "--user=root",
                "--skip-log-bin",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd"),
    );
    let r = wait_child(child, Duration::from_secs(150));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stderr.contains("still waiting"),
        "progress lines while it was down: {}",
        r.stderr
    );
    drop(srv);
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------------
// Passwords with reserved characters, and passwords from variables (issue 12, items 2 and 3)
// ---------------------------------------------------------------------------------------------

/// Every fragment of a password that must never be printed.
fn assert_no_fragment(r: &common::Run, fragments: &[&str]) {
    for f in fragments {
        assert!(!r.all().contains(f), "{f:?} leaked: {}", r.all());
    }
}

/// A password-checking PostgreSQL (throwaway cluster, scram-sha-256) with a role whose password
/// holds `@`, `/` and `:`: the raw URL is refused (exit 2) without echoing any of it, the
/// percent-encoded URL connects, and so do PGPASSWORD and INITBOX_PASSWORD.
#[test]
fn postgres_password_with_reserved_characters_and_from_variables() {
    let admin = "pg-admin-canary-41";
    let pg = pg_cluster(admin);
    pg.pg_ctl(&["-w", "start"]);
    wait_listening(pg.port);
    let port = pg.port.to_string();
    let password = "p@ss/w:rd-canary";
    let o = Command::new("psql")
        .env("PGPASSWORD", admin)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("CREATE ROLE app LOGIN PASSWORD '{password}'"))
        .output()
        .unwrap();
    assert!(o.status.success(), "psql: {}", common::text(&o));
    let fragments = ["p@ss", "ss/w", "w:rd", "rd-canary", "/w:rd@"];

    // What compose makes of postgres://app:${DB_PASSWORD}@db:5432/app.
    let raw = format!("postgres://app:{password}@127.0.0.1:{port}/postgres");
    let r = wait_for(&["-vv", "--timeout", "5s", &raw]);
    assert_one_line_error(&r, 2, "percent-encode");
    assert!(r.stderr.contains("PGPASSWORD"), "{}", r.stderr);
    assert_no_fragment(&r, &fragments);
    // `#` ends the authority: the old parse printed the whole URL.
    let r = wait_for(&["--once", "postgres://app:secret#1@127.0.0.1/postgres"]);
    assert_one_line_error(&r, 2, "ambiguous");
    assert_no_fragment(&r, &["secret", "#1"]);

    let encoded = format!("postgres://app:p%40ss%2Fw%3Ard-canary@127.0.0.1:{port}/postgres");
    let r = wait_for(&["-vv", "--once", &encoded]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stderr.contains(&format!("postgres://127.0.0.1:{port}")),
        "{}",
        r.stderr
    );
    assert_no_fragment(&r, &fragments);
    assert_no_fragment(&r, &["p%40ss", "app:"]);

    // No password in the URL: PGPASSWORD (libpq's variable), INITBOX_PASSWORD before it.
    let plain = format!("postgres://app@127.0.0.1:{port}/postgres");
    let r = run(
        cmd()
            .env("PGPASSWORD", password)
            .args(["-vv", "--once", &plain]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_no_fragment(&r, &fragments);
    let r = run(
        cmd()
            .env("PGPASSWORD", "wrong-pgpassword")
            .env("INITBOX_PASSWORD", password)
            .args(["-vv", "--once", &plain]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "INITBOX_PASSWORD comes first: {}", r.all());
    assert_no_fragment(&r, &fragments);
    // A password written in the URL wins over the variables (as with libpq).
    let wrong = format!("postgres://app:wrong-in-url@127.0.0.1:{port}/postgres");
    let r = run(
        cmd()
            .env("INITBOX_PASSWORD", password)
            .args(["--timeout", "20s", &wrong]),
        LIMIT,
    );
    assert_eq!(r.code(), 5, "{}", r.all());
    assert_no_fragment(&r, &["wrong-in-url"]);
}

/// MariaDB checks passwords: a user created here with `@`, `/`, `:` in its password connects
/// with MYSQL_PWD and with the percent-encoded URL; the raw URL is exit 2.
#[test]
fn mysql_password_from_mysql_pwd_and_reserved_characters() {
    require_service("MariaDB", "127.0.0.1:3306");
    let user = format!("initbox_pw_{}", std::process::id());
    let password = "my@pw/x:y-canary";
    let sql = |q: &str| {
        let o = Command::new("mysql")
            .args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", "-e", q])
            .output()
            .unwrap();
        assert!(o.status.success(), "mysql {q}: {}", common::text(&o));
    };
    for host in ["%", "localhost"] {
        sql(&format!("DROP USER IF EXISTS '{user}'@'{host}'"));
        sql(&format!(
            "CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'"
        ));
    }
    let fragments = ["my@pw", "pw/x", "x:y", "y-canary"];
    let plain = format!("mysql://{user}@127.0.0.1:3306/");
    let r = run(
        cmd()
            .env("MYSQL_PWD", password)
            .args(["-vv", "--once", &plain]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_no_fragment(&r, &fragments);
    let r = run(cmd().args(["--timeout", "20s", &plain]), LIMIT);
    assert_eq!(r.code(), 5, "no password: {}", r.all());
    let encoded = format!("mariadb://{user}:my%40pw%2Fx%3Ay-canary@127.0.0.1:3306/");
    let r = wait_for(&["-vv", "--once", &encoded]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_no_fragment(&r, &fragments);
    let raw = format!("mariadb://{user}:{password}@127.0.0.1:3306/");
    let r = wait_for(&["--once", &raw]);
    assert_one_line_error(&r, 2, "MYSQL_PWD");
    assert_no_fragment(&r, &fragments);
    assert!(!r.all().contains(&user), "{}", r.all());
    for host in ["%", "localhost"] {
        sql(&format!("DROP USER IF EXISTS '{user}'@'{host}'"));
    }
}

/// A throwaway redis-server (never the shared one) that requires a password: REDISCLI_AUTH
/// gives it; AMQP, NATS and MQTT URLs with an ambiguous user information are exit 2.
#[test]
fn redis_password_from_rediscli_auth_and_ambiguous_service_urls() {
    let port = free_port();
    let password = "redis@auth/canary";
    let _srv = Server(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                password,
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server"),
    );
    wait_listening(port);
    let plain = format!("redis://127.0.0.1:{port}/0");
    let r = run(
        cmd()
            .env("REDISCLI_AUTH", password)
            .args(["-vv", "--once", &plain]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_no_fragment(&r, &["redis@auth", "auth/canary"]);
    let r = wait_for(&["--timeout", "20s", &plain]);
    assert_eq!(r.code(), 5, "no password: {}", r.all());

    for raw in [
        format!("redis://:{password}@127.0.0.1:{port}/0"),
        "amqp://guest:gu@st/x@127.0.0.1:5672/%2f".to_string(),
        "nats://u:n@ts?pw@127.0.0.1:4222".to_string(),
        "mqtt://u:mq#tt@127.0.0.1:1883".to_string(),
    ] {
        let r = wait_for(&["--once", &raw]);
        assert_one_line_error(&r, 2, "percent-encode");
        assert_no_fragment(
            &r,
            &[
                "redis@auth",
                "auth/canary",
                "gu@st",
                "st/x",
                "n@ts",
                "ts?pw",
                "mq#tt",
            ],
        );
    }
}

#[test]
fn a_chatty_command_costs_no_memory_only_its_tail_is_kept() {
    // `yes >&2` writes gigabytes in seconds: only the tail of its stderr is kept, the rest is
    // drained and dropped. Under a 512 MiB address-space cap, buffering it all aborts.
    let mut c = cmd();
    c.args(["--timeout", "3s", "--shell", "--cmd", "yes >&2"]);
    common::cap_address_space(&mut c, 512 << 20);
    let r = run(&mut c, Duration::from_secs(30));
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(r.stderr.contains("exec:yes"), "{}", r.stderr);
}

#[test]
fn the_deadline_is_kept_to_within_a_generous_bound() {
    // Nothing listens: each wait ends with 124 at its deadline, never before it.
    let port = free_port();
    let targets = [
        format!("tcp://127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}/"),
        format!("postgres://postgres@127.0.0.1:{port}/x"),
    ];
    let started = Instant::now();
    let children: Vec<Child> = targets
        .iter()
        .map(|t| spawn_wait_for(&["--timeout", "3s", t]))
        .collect();
    for (t, c) in targets.iter().zip(children) {
        let r = wait_child(c, LIMIT);
        let took = started.elapsed();
        assert_eq!(r.code(), 124, "{t}: {}", r.all());
        assert!(
            took >= Duration::from_secs(3) && took <= Duration::from_millis(3500),
            "{t}: exit 124 after {took:?} for a deadline of 3s"
        );
    }
}
