//! End-to-end tests of `initbox network-check` with real parts: network namespaces created here
//! (a reachable host, a host whose packets are dropped by nftables, a port that refuses, routes
//! that prohibit), ICMP with raw and ping sockets and the not-permitted path, dnsmasq, TLS
//! servers (`openssl s_server`) with certificates expiring in 3 days, 20 days and a year and one
//! with the wrong name, and loopback HTTP/UDP servers.
//!
//! Needs root (namespaces, nftables) and `bash tests/run-all.sh`'s set-up
//! (tests/setup/20-network-check.sh).

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::http::{Answer, HttpServer};
use common::netns::{self, Netns, sh};
use common::{assert_one_line_error, free_port, initbox, run};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

fn sh_stdin(args: &[&str], input: &str) {
    let out = common::output_with_stdin(Command::new(args[0]).args(&args[1..]), input.as_bytes());
    assert!(
        out.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two network namespaces joined by a veth pair (the kit's, tests/common/netns.rs): the client
/// (where initbox runs) at 10.213.1.1, the server at 10.213.1.2 (reachable) and 10.213.1.3
/// (every packet to it dropped by nftables). In the client, 10.213.9.9 has a `prohibit` route
/// and 10.213.9.10 an `unreachable` one. Both namespaces (and with them the veth pair) are
/// deleted on drop.
struct Lab {
    /// First, so they are closed before the namespaces go.
    listeners: Vec<TcpListener>,
    client: Netns,
    server: Netns,
}

const REACHABLE: &str = "10.213.1.2";
const DROPPED: &str = "10.213.1.3";
const PROHIBITED: &str = "10.213.9.9";
const UNREACHABLE: &str = "10.213.9.10";

impl Lab {
    fn new() -> Lab {
        let (client, server) = netns::pair(
            "nc",
            &["10.213.1.1/24"],
            &["10.213.1.2/24", "10.213.1.3/24"],
        );
        for (kind, to) in [("prohibit", PROHIBITED), ("unreachable", UNREACHABLE)] {
            sh(&["ip", "-n", &client.name, "route", "add", kind, to]);
        }
        sh_stdin(
            &["ip", "netns", "exec", &server.name, "nft", "-f", "-"],
            &format!(
                "table inet initbox_test {{\n chain input_drop {{\n  type filter hook input priority 0;\n  ip daddr {DROPPED} drop\n }}\n}}\n"
            ),
        );
        Lab {
            listeners: Vec::new(),
            client,
            server,
        }
    }

    /// A listener inside the server namespace.
    fn listen(&mut self, addr: &str) {
        let addr = addr.to_string();
        let l = self
            .server
            .within(move || TcpListener::bind(&addr).unwrap());
        self.listeners.push(l);
    }

    /// `initbox network-check ARGS` run inside the client namespace.
    fn check(&self, args: &[&str]) -> Command {
        let mut cmd = self.client.command(initbox().get_program());
        cmd.arg("network-check").args(args);
        cmd
    }

    fn set_ping_range(&self, range: &str) {
        sh(&[
            "ip",
            "netns",
            "exec",
            &self.client.name,
            "sysctl",
            "-qw",
            &format!("net.ipv4.ping_group_range={range}"),
        ]);
    }

    /// As [`Lab::check`], but as the unprivileged user 65534 (no capabilities).
    fn check_unprivileged(&self, args: &[&str]) -> Command {
        let mut cmd = self.client.command("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(initbox().get_program())
            .arg("network-check")
            .args(args);
        cmd
    }
}

/// A JSON report, its key names checked against the one convention of every report: snake_case
/// ASCII (`duration_ms`, `dns_result`, `days_left`), whatever the check type.
fn json_of(stdout: &str) -> Value {
    let doc = serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    fn keys(v: &Value, at: &str) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let snake = k.starts_with(|c: char| c.is_ascii_lowercase())
                        && k.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                    assert!(snake, "JSON key '{k}' at {at} is not snake_case");
                    keys(v, &format!("{at}.{k}"));
                }
            }
            Value::Array(a) => a.iter().for_each(|v| keys(v, at)),
            _ => {}
        }
    }
    keys(&doc, "$");
    doc
}

fn result<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no result {name} in {doc}"))
}

fn field<'a>(doc: &'a Value, name: &str, key: &str) -> &'a str {
    result(doc, name)[key].as_str().unwrap_or("")
}

#[test]
fn tcp_reachable_refused_dropped_and_prohibited_hosts() {
    let mut lab = Lab::new();
    lab.listen(&format!("{REACHABLE}:8080"));
    let r = run(
        &mut lab.check(&[
            "--timeout",
            "1s",
            "-o",
            "json",
            &format!("tcp:{REACHABLE}:8080,name=open"),
            &format!("tcp:{REACHABLE}:8081,name=closed"),
            &format!("tcp:{DROPPED}:8080,name=dropped"),
            &format!("tcp:{PROHIBITED}:80,name=prohibited"),
            &format!("tcp:{UNREACHABLE}:80,name=unreachable"),
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    let doc = json_of(&r.stdout);
    assert_eq!(field(&doc, "open", "status"), "pass");
    assert!(field(&doc, "open", "detail").contains("connected to 10.213.1.2:8080"));
    assert!(result(&doc, "open")["timings"]["connect_ms"].is_number());
    assert_eq!(field(&doc, "closed", "observed"), "refused");
    assert_eq!(field(&doc, "closed", "status"), "fail");
    assert_eq!(field(&doc, "dropped", "observed"), "timeout");
    assert!(field(&doc, "dropped", "detail").contains("no answer connecting to 10.213.1.3:8080"));
    assert_eq!(field(&doc, "prohibited", "observed"), "denied");
    assert_eq!(field(&doc, "unreachable", "observed"), "unreachable");
    assert_eq!(doc["summary"]["failed_count"], 4);
    // Parallel: four failing checks, one of them waiting out its 1s timeout, take about 1s.
    assert!(r.elapsed < Duration::from_secs(10), "{:?}", r.elapsed);
}

#[test]
fn expect_blocked_needs_a_timeout_or_unreachable_and_a_passing_control() {
    let mut lab = Lab::new();
    lab.listen(&format!("{REACHABLE}:8080"));
    let control = format!("tcp:{REACHABLE}:8080,name=control");
    let blocked = |target: &str, name: &str| {
        format!("tcp:{target},expect=blocked,control=control,name={name},timeout=700ms")
    };
    let r = run(
        &mut lab.check(&[
            "-o",
            "json",
            &control,
            &blocked(&format!("{DROPPED}:443"), "dropped"),
            &blocked(&format!("{PROHIBITED}:443"), "prohibited"),
            &format!("udp:{DROPPED}:53,expect=blocked,control=control,name=udp,timeout=700ms"),
            &format!(
                "dns:db.test,server={DROPPED},expect=blocked,control=control,name=dns,timeout=700ms"
            ),
            &format!(
                "icmp:{DROPPED},expect=blocked,control=control,name=icmp,timeout=500ms,count=1"
            ),
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let doc = json_of(&r.stdout);
    for name in ["udp", "dns", "icmp"] {
        assert_eq!(field(&doc, name, "status"), "pass", "{doc}");
        assert_eq!(field(&doc, name, "observed"), "timeout", "{doc}");
    }
    assert_eq!(field(&doc, "dropped", "status"), "pass");
    assert_eq!(field(&doc, "dropped", "observed"), "timeout");
    assert_eq!(field(&doc, "dropped", "expect"), "blocked");
    assert_eq!(field(&doc, "prohibited", "status"), "pass");
    assert_eq!(field(&doc, "prohibited", "observed"), "denied");

    // Refused is reported apart, as what came back (a reset), not as a guess at its cause.
    let r = run(
        &mut lab.check(&[
            "-o",
            "json",
            &control,
            &blocked(&format!("{REACHABLE}:8081"), "refused"),
            &blocked(&format!("{REACHABLE}:8080"), "open"),
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    let doc = json_of(&r.stdout);
    assert_eq!(field(&doc, "refused", "status"), "fail");
    assert_eq!(field(&doc, "refused", "observed"), "refused");
    assert!(
        field(&doc, "refused", "detail").starts_with("not counted as blocked: connection refused"),
        "{doc}"
    );
    assert_eq!(field(&doc, "open", "status"), "fail");
    assert_eq!(field(&doc, "open", "observed"), "ok");
    assert!(field(&doc, "open", "detail").starts_with("not blocked"));

    // A dead network must not look like a working policy: the control fails, so does the check.
    let r = run(
        &mut lab.check(&[
            "-o",
            "json",
            &format!("tcp:{DROPPED}:8080,name=control,timeout=500ms"),
            &blocked(&format!("{DROPPED}:443"), "dropped"),
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    let doc = json_of(&r.stdout);
    assert_eq!(field(&doc, "dropped", "status"), "fail");
    assert!(field(&doc, "dropped", "detail").contains("inconclusive: control 'control' failed"));

    // No control at all is a usage error.
    let r = run(
        &mut lab.check(&[&format!("tcp:{DROPPED}:443,expect=blocked")]),
        LIMIT,
    );
    assert_one_line_error(&r, 2, "names no control");
}

#[test]
fn a_rejecting_firewall_in_front_of_a_listener_is_reported_as_what_came_back() {
    // Issue 23 item 10: a port that a firewall REJECTs (tcp reset, icmp port unreachable) while
    // a listener runs behind it was reported "the path is open and only the port is closed".
    let mut lab = Lab::new();
    for port in [8080, 8082, 8083] {
        lab.listen(&format!("{REACHABLE}:{port}"));
    }
    let _udp = lab
        .server
        .within(|| UdpSocket::bind(format!("{REACHABLE}:5300")).unwrap());
    sh_stdin(
        &["ip", "netns", "exec", &lab.server.name, "nft", "-f", "-"],
        &format!(
            "table inet initbox_reject {{\n chain input {{\n  type filter hook input priority -10;\n  \
             ip daddr {REACHABLE} tcp dport 8082 reject with tcp reset\n  \
             ip daddr {REACHABLE} tcp dport 8083 reject with icmpx type port-unreachable\n  \
             ip daddr {REACHABLE} udp dport 5300 reject with icmpx type port-unreachable\n }}\n}}\n"
        ),
    );
    let blocked = |target: String, name: &str| {
        format!("{target},expect=blocked,control=control,name={name},timeout=700ms")
    };
    let r = run(
        &mut lab.check(&[
            "-o",
            "json",
            &format!("tcp:{REACHABLE}:8080,name=control"),
            &blocked(format!("tcp:{REACHABLE}:8082"), "reset"),
            &blocked(format!("tcp:{REACHABLE}:8083"), "icmp"),
            &blocked(format!("udp:{REACHABLE}:5300,send=ping"), "udp"),
        ]),
        LIMIT,
    );
    // The documented rule stands: refused is not counted as blocked.
    assert_eq!(r.code(), 1, "{}", r.all());
    let doc = json_of(&r.stdout);
    assert_eq!(field(&doc, "control", "status"), "pass", "{doc}");
    for name in ["reset", "icmp", "udp"] {
        assert_eq!(field(&doc, name, "status"), "fail", "{doc}");
        assert_eq!(field(&doc, name, "observed"), "refused", "{doc}");
        let detail = field(&doc, name, "detail");
        assert!(
            detail.starts_with("not counted as blocked: connection refused (a TCP reset or ICMP port unreachable came back"),
            "{detail}"
        );
        // A listener runs behind each rule: nothing here may claim otherwise.
        for guess in ["path is open", "port is closed", "nothing listens"] {
            assert!(!detail.contains(guess), "{name}: {detail}");
        }
    }
    assert!(
        field(&doc, "udp", "detail").contains("port unreachable (ICMP)"),
        "{doc}"
    );
}

#[test]
fn icmp_with_raw_and_ping_sockets_and_the_not_permitted_path() {
    let lab = Lab::new();
    // Root: a raw socket (the new namespace's ping_group_range is "1 0").
    lab.set_ping_range("1 0");
    let r = run(
        &mut lab.check(&[
            "-o",
            "json",
            "--count",
            "3",
            "--interval",
            "50ms",
            "--timeout",
            "700ms",
            &format!("icmp:{REACHABLE}"),
            &format!("icmp:{DROPPED},name=dropped"),
        ]),
        LIMIT,
    );
    let doc = json_of(&r.stdout);
    let ok = result(&doc, &format!("icmp:{REACHABLE}"));
    assert_eq!(ok["status"], "pass", "{doc}");
    assert_eq!(ok["method"], "raw socket");
    assert_eq!(ok["received"], 3);
    assert!(ok["rtt_ms"]["avg"].as_f64().unwrap() >= 0.0);
    assert_eq!(field(&doc, "dropped", "observed"), "timeout");
    assert!(field(&doc, "dropped", "detail").contains("100% loss"));
    assert_eq!(r.code(), 1);

    // Unprivileged user, ping sockets allowed: the ping socket is used.
    lab.set_ping_range("0 2147483647");
    let r = run(
        &mut lab.check_unprivileged(&[
            "-o",
            "json",
            &format!("icmp:{REACHABLE},count=2"),
            "icmp:::1,count=2,name=v6",
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let doc = json_of(&r.stdout);
    assert_eq!(
        result(&doc, &format!("icmp:{REACHABLE}"))["method"],
        "ping socket"
    );
    // ICMPv6 through a ping socket too.
    assert_eq!(result(&doc, "v6")["method"], "ping socket");
    assert_eq!(result(&doc, "v6")["received"], 2);

    // Unprivileged user, no ping sockets, no CAP_NET_RAW: exit 4 with the sysctl to set.
    lab.set_ping_range("1 0");
    let r = run(
        &mut lab.check_unprivileged(&[
            "--termination-log",
            "/dev/null",
            &format!("icmp:{REACHABLE}"),
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 4, "{}", r.all());
    assert!(
        r.stdout.contains("ICMP not permitted here (exit 4)"),
        "{}",
        r.stdout
    );
    assert!(
        r.all()
            .contains("net.ipv4.ping_group_range=\"0 2147483647\""),
        "{}",
        r.all()
    );
    assert!(r.all().contains("CAP_NET_RAW"));
}

/// The kit's test CA (tests/common/pki.rs, `ca.crt`) and leaves for localhost/127.0.0.1 signed
/// by it that expire in 3 days, 20 days and a year, and one for the wrong name.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        common::pki::ca_and_localhost(d, "initbox test CA");
        for (name, days, san) in [
            ("d3", 3, "DNS:localhost,IP:127.0.0.1"),
            ("d20", 20, "DNS:localhost,IP:127.0.0.1"),
            ("d365", 365, "DNS:localhost,IP:127.0.0.1"),
            ("wrong", 365, "DNS:other.example"),
        ] {
            common::pki::leaf_for_days(d, name, san, days);
        }
        Certs { dir }
    }
    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }
}

/// `openssl s_server -www` on a loopback port; killed on drop.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start(certs: &Certs, name: &str) -> TlsServer {
        let port = free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(certs.path(&format!("{name}.pem")))
            .arg("-key")
            .arg(certs.path(&format!("{name}.key")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let server = TlsServer { child, port };
        wait_tcp(port);
        server
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_tcp(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nothing on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tls_expiry_thresholds_and_name_mismatch() {
    let certs = Certs::new();
    let d3 = TlsServer::start(&certs, "d3");
    let d20 = TlsServer::start(&certs, "d20");
    let d365 = TlsServer::start(&certs, "d365");
    let wrong = TlsServer::start(&certs, "wrong");
    let ca = certs.path("ca.crt");
    let r = run(
        initbox()
            .args(["network-check", "-o", "json", "--ca-file"])
            .arg(&ca)
            .args([
                format!("tls:localhost:{},name=d3", d3.port),
                format!("tls:localhost:{},name=d20", d20.port),
                format!("tls:localhost:{},name=d365", d365.port),
                format!("tls:127.0.0.1:{},name=ip", d365.port),
                format!("tls:localhost:{},name=wrong", wrong.port),
            ]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    let doc = json_of(&r.stdout);
    assert_eq!(field(&doc, "d3", "status"), "fail");
    assert!(
        field(&doc, "d3", "detail").contains("within --fail-days 7"),
        "{doc}"
    );
    assert_eq!(field(&doc, "d20", "status"), "warn");
    assert!(
        field(&doc, "d20", "detail").contains("within --warn-days 30"),
        "{doc}"
    );
    assert_eq!(field(&doc, "d365", "status"), "pass");
    let days = result(&doc, "d365")["certificate"]["days_left"]
        .as_i64()
        .unwrap();
    assert!((363..=365).contains(&days), "{days}");
    assert_eq!(field(&doc, "ip", "status"), "pass");
    assert_eq!(field(&doc, "wrong", "status"), "fail");
    assert_eq!(field(&doc, "wrong", "observed"), "tls_error");
    assert!(
        field(&doc, "wrong", "detail")
            .contains("name mismatch: the certificate is for [other.example], not localhost"),
        "{doc}"
    );
    assert!(result(&doc, "d365")["timings"]["tls_ms"].is_number());

    // Warnings alone pass (exit 0), unless --strict; thresholds are flags.
    let warn_only = format!("tls:localhost:{}", d20.port);
    let r = run(
        initbox()
            .args(["network-check", "--ca-file"])
            .arg(&ca)
            .arg(&warn_only),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout.contains("warn"), "{}", r.stdout);
    let r = run(
        initbox()
            .args(["network-check", "--strict", "--ca-file"])
            .arg(&ca)
            .arg(&warn_only),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    let r = run(
        initbox()
            .args([
                "network-check",
                "--warn-days",
                "10",
                "--fail-days",
                "2",
                "--ca-file",
            ])
            .arg(&ca)
            .arg(format!("tls:localhost:{}", d3.port)),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());

    // Without the CA file the chain is not trusted: verified by default.
    let r = run(
        initbox()
            .args(["network-check", "-o", "json"])
            .arg(format!("tls:localhost:{}", d365.port)),
        LIMIT,
    );
    assert_eq!(r.code(), 1);
    assert!(r.stdout.contains("unknown issuer"), "{}", r.stdout);
}

/// The kit's HTTP server (tests/common/http.rs) on loopback (root namespace), answering by path.
fn http_server() -> u16 {
    HttpServer::capture(|_, req| {
        let auth = req
            .headers
            .get("authorization")
            .map(|v| v.to_ascii_lowercase())
            .unwrap_or_default();
        match req.target.as_str() {
            "/health" => Answer::json(200, r#"{"status":"UP","checks":[{"db":true}]}"#),
            "/down" => Answer::json(503, r#"{"status":"DOWN"}"#),
            "/slow" => Answer::json(200, "late").after(Duration::from_secs(3)),
            "/auth" if auth == "basic dxnlcjpzm2nyzxq=" => Answer::json(200, "welcome"),
            "/auth" => Answer::json(401, "no"),
            "/bearer" if auth == format!("bearer {}", BEARER.to_ascii_lowercase()) => {
                Answer::json(200, "welcome")
            }
            "/bearer" => Answer::json(401, "no"),
            // Redirects (goss follows them by default): relative, and a loop.
            "/old" | "/moved" => Answer::json(301, "").header("Location", "/health"),
            "/loop" => Answer::json(302, "").header("Location", "loop"),
            _ => Answer::json(404, "nothing here"),
        }
    })
    .port
}

#[test]
fn http_status_body_json_and_phase_timings() {
    let port = http_server();
    let u = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let r = run(
        initbox()
            .args(["network-check", "-o", "json", "--timeout", "1s"])
            .args([
                format!(
                    "{},name=health,json=$.status=UP,json=.checks[0].db=true,body=UP",
                    u("/health")
                ),
                format!("{},name=down", u("/down")),
                format!("{},name=down-ok,status=503", u("/down")),
                format!("{},name=wrong-json,json=$.status=DOWN", u("/health")),
                format!("{},name=wrong-body,body=^nope$", u("/health")),
                format!("{},name=slow", u("/slow")),
                format!("http://user:s3cret@127.0.0.1:{port}/auth,name=auth"),
            ]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    let doc = json_of(&r.stdout);
    assert_eq!(field(&doc, "health", "status"), "pass", "{doc}");
    let t = &result(&doc, "health")["timings"];
    assert!(
        t["connect_ms"].is_number() && t["first_byte_ms"].is_number(),
        "{t}"
    );
    assert_eq!(result(&doc, "health")["http_status"], 200);
    assert_eq!(field(&doc, "down", "status"), "fail");
    assert!(
        field(&doc, "down", "detail").contains("HTTP 503 Service Unavailable (expected 200-299)"),
        "{doc}"
    );
    assert_eq!(field(&doc, "down-ok", "status"), "pass");
    assert!(
        field(&doc, "wrong-json", "detail").contains(r#"JSON '$.status' is "UP", expected "DOWN""#),
        "{doc}"
    );
    assert!(field(&doc, "wrong-body", "detail").contains("body does not match"));
    assert_eq!(field(&doc, "slow", "observed"), "timeout");
    assert_eq!(field(&doc, "auth", "status"), "pass", "{doc}");
    // The password never shows.
    assert!(!r.all().contains("s3cret"), "{}", r.all());
}

const BEARER: &str = "Tok-7f3a9c-Bearer";

#[test]
fn a_bearer_header_with_a_space_works_and_never_shows() {
    let port = http_server();
    let check = |path: &str, token: &str, extra: &str| {
        format!("http://127.0.0.1:{port}{path},header=Authorization:Bearer {token}{extra}")
    };
    let leaks = |r: &common::Run| r.all().contains(BEARER) || r.all().contains("Tok-7f3a9c");
    // One argument, one check: the server gets the whole header.
    let r = run(
        initbox().args([
            "network-check",
            "-v",
            "-o",
            "json",
            &check("/bearer", BEARER, ",name=api"),
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let doc = json_of(&r.stdout);
    assert_eq!(field(&doc, "api", "status"), "pass", "{doc}");
    assert!(!leaks(&r), "{}", r.all());
    // INITBOX_CHECKS: white space still separates the next check.
    let r = run(
        initbox().args(["network-check", "-o", "json"]).env(
            "INITBOX_CHECKS",
            format!(
                "{} tcp:127.0.0.1:{port}",
                check("/bearer", BEARER, ",name=api")
            ),
        ),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let doc = json_of(&r.stdout);
    assert_eq!(doc["results"].as_array().unwrap().len(), 2, "{doc}");
    assert!(!leaks(&r), "{}", r.all());
    // A wrong token is refused by the server: the check fails, the token is not shown.
    let r = run(
        initbox().args([
            "network-check",
            &check("/bearer", "Tok-7f3a9c-Wrong", ",name=api"),
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stdout.contains("401"), "{}", r.stdout);
    assert!(!leaks(&r), "{}", r.all());
    // A malformed check carrying a header: one usage line, the header value masked.
    for bad in [
        check("/bearer", BEARER, ",status=99"),
        check("/bearer", BEARER, ",count=3"),
        format!("{},header=Tok-7f3a9c-NoColon", check("/bearer", BEARER, "")),
    ] {
        let r = run(initbox().args(["network-check", &bad]), LIMIT);
        assert_eq!(r.code(), 2, "{bad}: {}", r.all());
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains("header=Authorization:…"), "{}", r.stderr);
        assert!(!leaks(&r), "{}", r.all());
    }
}

#[test]
fn https_is_verified_and_timed_per_phase() {
    let certs = Certs::new();
    let good = TlsServer::start(&certs, "d365");
    let soon = TlsServer::start(&certs, "d3");
    let r = run(
        initbox()
            .args(["network-check", "-o", "json", "--ca-file"])
            .arg(certs.path("ca.crt"))
            .args([
                format!("https://localhost:{}/,name=good", good.port),
                format!("https://localhost:{}/,name=soon", soon.port),
            ]),
        LIMIT,
    );
    let doc = json_of(&r.stdout);
    assert_eq!(field(&doc, "good", "status"), "pass", "{doc}");
    let t = &result(&doc, "good")["timings"];
    for phase in ["dns_ms", "connect_ms", "tls_ms", "first_byte_ms"] {
        assert!(t[phase].is_number(), "{phase} in {t}");
    }
    assert_eq!(field(&doc, "soon", "status"), "fail");
    assert!(field(&doc, "soon", "detail").contains("within --fail-days"));
    assert_eq!(r.code(), 1);
}

/// dnsmasq on a loopback high port with a generated configuration; killed on drop.
struct Dnsmasq {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    fn start() -> Dnsmasq {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("dnsmasq.conf");
        std::fs::write(
            &conf,
            format!(
                "port={port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n\
                 local=/test/\naddress=/api.test/10.20.30.40\nhost-record=db.test,10.0.0.5\n\
                 txt-record=txt.test,\"v=ok\"\n"
            ),
        )
        .unwrap();
        let child = Command::new("dnsmasq")
            .arg("--keep-in-foreground")
            .arg(format!("--conf-file={}", conf.display()))
            .arg("--pid-file=")
            .arg("--user=root")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (bash tests/run-all.sh installs it)");
        wait_tcp(port);
        Dnsmasq {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stand-in DNS server that answers every query with SERVFAIL (dnsmasq cannot be made to
/// return SERVFAIL on purpose): it echoes the query with QR set and RCODE 2, as RFC 1035 frames it.
fn servfail_server() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            let mut r = buf[..n].to_vec();
            r[2] |= 0x80;
            r[3] = (r[3] & 0xf0) | 2;
            let _ = s.send_to(&r, from);
        }
    });
    port
}

#[test]
fn dns_answers_expected_values_nxdomain_servfail_and_timeout() {
    let dns = Dnsmasq::start();
    let server = format!("127.0.0.1:{}", dns.port);
    let servfail = servfail_server();
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let r = run(
        initbox()
            .args([
                "network-check",
                "-o",
                "json",
                "--timeout",
                "1s",
                "--server",
                &server,
            ])
            .args([
                "dns:db.test,name=db,value=10.0.0.5".to_string(),
                "dns:api.test,type=A,value=10.20.30.40".to_string(),
                "dns:txt.test,type=TXT,value=v=ok,name=txt".to_string(),
                "dns:db.test,value=10.0.0.6,name=wrong-value".to_string(),
                "dns:nope.test,name=nx".to_string(),
                "dns:nope.test,name=nx-blocked,expect=blocked,control=db".to_string(),
                format!("dns:x.example,server=127.0.0.1:{servfail},name=servfail"),
                format!("dns:x.example,server=127.0.0.1:{silent_port},name=silent"),
            ]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    let doc = json_of(&r.stdout);
    assert_eq!(field(&doc, "db", "status"), "pass", "{doc}");
    assert_eq!(result(&doc, "db")["answers"][0], "10.0.0.5");
    assert_eq!(field(&doc, "dns:api.test", "status"), "pass", "{doc}");
    assert_eq!(field(&doc, "txt", "status"), "pass", "{doc}");
    assert_eq!(field(&doc, "wrong-value", "observed"), "mismatch");
    assert!(field(&doc, "wrong-value", "detail").contains("expected 10.0.0.6 not among"));
    assert_eq!(field(&doc, "nx", "dns_result"), "NXDOMAIN");
    assert!(field(&doc, "nx", "detail").contains("NXDOMAIN"));
    // An NXDOMAIN is an answer: the DNS server is reachable, not blocked.
    assert_eq!(field(&doc, "nx-blocked", "status"), "fail");
    assert!(
        field(&doc, "nx-blocked", "detail").starts_with("not blocked: the DNS server answered")
    );
    assert_eq!(field(&doc, "servfail", "dns_result"), "SERVFAIL", "{doc}");
    assert_eq!(field(&doc, "silent", "observed"), "timeout", "{doc}");
    drop(silent);
}

#[test]
fn udp_request_response_only() {
    let dns = Dnsmasq::start();
    let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = echo.recv_from(&mut buf) {
            let mut r = b"pong:".to_vec();
            r.extend_from_slice(&buf[..n]);
            let _ = echo.send_to(&r, from);
        }
    });
    let closed = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let r = run(
        initbox()
            .args(["network-check", "-o", "json", "--timeout", "1s"])
            .args([
                format!("udp:127.0.0.1:{},query=db.test,name=dns", dns.port),
                format!("udp:127.0.0.1:{echo_port},send=ping,reply=pong:ping,name=echo"),
                format!("udp:127.0.0.1:{echo_port},send=ping,reply=other,name=echo-wrong"),
                format!("udp:127.0.0.1:{closed},send=ping,name=closed"),
            ]),
        LIMIT,
    );
    let doc = json_of(&r.stdout);
    assert_eq!(field(&doc, "dns", "status"), "pass", "{doc}");
    assert_eq!(field(&doc, "dns", "dns_result"), "NOERROR");
    assert_eq!(field(&doc, "echo", "status"), "pass", "{doc}");
    assert_eq!(field(&doc, "echo-wrong", "observed"), "mismatch");
    assert_eq!(field(&doc, "closed", "observed"), "refused");
    assert_eq!(r.code(), 1);

    // Without a request, a UDP check is refused: silence proves nothing.
    let r = run(
        initbox().args(["network-check", &format!("udp:127.0.0.1:{echo_port}")]),
        LIMIT,
    );
    assert_one_line_error(&r, 2, "silence proves nothing");
}

#[test]
fn reports_junit_tap_and_the_termination_log() {
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port();
    let closed = free_port();
    let checks = [
        format!("tcp:127.0.0.1:{port},name=db"),
        format!("tcp:127.0.0.1:{closed},name=cache&<queue>"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let tlog = dir.path().join("termination-log");
    let r = run(
        initbox()
            .args([
                "network-check",
                "-o",
                "junit",
                "--suite",
                "pod-net",
                "--termination-log",
            ])
            .arg(&tlog)
            .args(&checks),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    let x = &r.stdout;
    assert!(x.starts_with("<?xml"), "{x}");
    assert!(
        x.contains(r#"<testcase name="db" classname="pod-net.tcp""#),
        "{x}"
    );
    assert!(
        x.contains(r#"<testcase name="cache&amp;&lt;queue&gt;" classname="pod-net.tcp""#),
        "{x}"
    );
    assert!(x.contains(r#"tests="2" failures="1" errors="0""#), "{x}");
    assert!(
        x.contains(r#"<failure message=""#) && x.contains(r#"type="refused""#),
        "{x}"
    );
    // What strict JUnit schemas (Ant, Jenkins) require of a <testsuite>: a timestamp without
    // zone, near now, and the host name; checked with Python's own parsers.
    let checked = Command::new("python3")
        .args([
            "-c",
            r#"
import datetime, socket, sys, xml.etree.ElementTree as ET
suite = ET.fromstring(sys.stdin.read()).find("testsuite")
ts = datetime.datetime.strptime(suite.get("timestamp"), "%Y-%m-%dT%H:%M:%S")
age = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - ts
assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=5), age
assert suite.get("hostname") == socket.gethostname(), suite.get("hostname")
assert suite.get("id") == "0" and suite.get("package") == "pod-net"
print("ok")
"#,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(x.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&checked.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let term = std::fs::read_to_string(&tlog).unwrap();
    assert!(term.contains("2 checks: 1 ok, 1 failed"), "{term}");
    assert!(
        term.contains("cache&<queue>") && term.contains("connection refused"),
        "{term}"
    );
    assert_eq!(term.trim_end().lines().count(), 1, "{term}");

    let r = run(
        initbox().args(["network-check", "-o", "tap"]).args(&checks),
        LIMIT,
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "TAP version 13");
    assert_eq!(lines[1], "1..2");
    assert!(r.stdout.contains("\nok 1 - db\n"), "{}", r.stdout);
    assert!(
        r.stdout.contains("\nnot ok 2 - cache&<queue>\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("  observed: refused"), "{}", r.stdout);

    let r = run(initbox().args(["network-check"]).args(&checks[..1]), LIMIT);
    assert_eq!(r.code(), 0);
    let head: Vec<&str> = r
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(head, ["STATUS", "CHECK", "TIME", "DETAIL"]);
    assert!(r.stdout.contains("1 check: 1 ok in"), "{}", r.stdout);
    drop(open);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn spec_file_runs_checks_and_rejects_bad_files_with_one_line() {
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let spec = write(
        dir.path(),
        "checks.yaml",
        &format!(
            "version: 1\ndefaults:\n  timeout: 2s\n  retries: 1\nchecks:\n  - name: db\n    tcp: 127.0.0.1:{port}\n  \
             - name: hosts\n    dns: localhost\n  - check: tcp:127.0.0.1:{port}\n    name: again\n"
        ),
    );
    let r = run(
        initbox()
            .args(["network-check", "-o", "json", "-f"])
            .arg(&spec),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let doc = json_of(&r.stdout);
    assert_eq!(doc["summary"]["passed_count"], 3);
    assert_eq!(field(&doc, "hosts", "status"), "pass");

    let bad = [
        ("checks: [\n", "spec"),
        (
            "checks:\n  - name: x\n    tcp: h:1\n    cont: y\n",
            "unknown field `cont`",
        ),
        (
            "checks:\n  - name: x\n    tcp: h\n",
            "checks[0] (x): 'h': missing port",
        ),
        (
            "checks:\n  - name: x\n    tcp: h:1\n    dns: h\n",
            "more than one check",
        ),
        ("checks:\n  - name: x\n", "no check given"),
        ("checks: []\n", "'checks' is empty"),
        ("version: 2\nchecks:\n  - tcp: h:1\n", "version 2"),
        (
            "checks:\n  - tcp: h:1\n    count: 3\n",
            "'count' does not apply to a tcp check",
        ),
        (
            "checks:\n  - tcp: h:1\n    expect: blocked\n",
            "names no control",
        ),
        (
            "checks:\n  - tcp: h:1\n    name: a\n  - tcp: h:2\n    name: a\n",
            "two checks are named 'a'",
        ),
        (
            "defaults:\n  timeout: soon\nchecks:\n  - tcp: h:1\n",
            "defaults: timeout",
        ),
        ("chekcs:\n  - tcp: h:1\n", "unknown field `chekcs`"),
    ];
    for (i, (text, needle)) in bad.iter().enumerate() {
        let f = write(dir.path(), &format!("bad{i}.yaml"), text);
        let r = run(initbox().args(["network-check", "-f"]).arg(&f), LIMIT);
        assert_one_line_error(&r, 3, needle);
        assert!(r.all().contains(&format!("bad{i}.yaml")), "{}", r.all());
    }
    let r = run(
        initbox().args(["network-check", "-f", "/nonexistent/checks.yaml"]),
        LIMIT,
    );
    assert_one_line_error(&r, 3, "spec /nonexistent/checks.yaml: cannot read");
    drop(open);
}

#[test]
fn malformed_checks_get_one_line_usage_errors() {
    let cases = [
        ("db:5432", "unknown check type 'db'"),
        ("tcp:db", "missing port"),
        ("tcp:db:0", "port 0"),
        ("tcp:[::1:80", "missing ']'"),
        ("dns:-bad-.x", "starts or ends with '-'"),
        ("dns:x,type=ZZZ", "record type 'ZZZ'"),
        ("icmp:h,count=0", "count 0"),
        ("icmp:h,max_loss=2", "between 0% and 100%"),
        ("tls:h:443,fail_days=40", "larger than warn_days"),
        ("tcp:h:1,expect=sometimes", "expect 'sometimes'"),
        ("tcp:h:1,sni=x", "'sni' does not apply to a tcp check"),
        ("udp:h:9,send_hex=zz", "non-hex"),
        ("http://h/,status=99", "'99' is not an HTTP status"),
        ("http://h/,body=(", "'(' is not a valid regular expression"),
        ("http://h/,json=a[x]=1", "not an array index"),
        ("http://h/,header=Bad(Name:x", "header name 'Bad(Name'"),
        ("gopher://h/", "unknown check type 'gopher'"),
    ];
    for (check, needle) in cases {
        let r = run(initbox().args(["network-check", check]), LIMIT);
        assert_one_line_error(&r, 2, needle);
        if !check.contains("header=") {
            assert!(r.stderr.contains(check), "{check}: {}", r.stderr);
        }
    }
    let r = run(initbox().args(["network-check"]), LIMIT);
    assert_one_line_error(&r, 2, "no checks given");
    let r = run(
        initbox().args(["network-check", "--timeout", "soon", "tcp:h:1"]),
        LIMIT,
    );
    assert_one_line_error(&r, 2, "soon");
    let r = run(
        initbox().args([
            "network-check",
            "--ca-file",
            "/nonexistent/ca.pem",
            "tls:h:443",
        ]),
        LIMIT,
    );
    assert_one_line_error(&r, 3, "/nonexistent/ca.pem");
}

#[test]
fn retries_wait_for_a_target_that_comes_up() {
    let port = free_port();
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        TcpListener::bind(("127.0.0.1", port)).unwrap()
    });
    let r = run(
        initbox().args([
            "network-check",
            "-o",
            "json",
            "--retries",
            "8",
            "--retry-delay",
            "100ms",
            &format!("tcp:127.0.0.1:{port}"),
        ]),
        LIMIT,
    );
    let _l = starter.join().unwrap();
    assert_eq!(r.code(), 0, "{}", r.all());
    let doc = json_of(&r.stdout);
    assert!(doc["results"][0]["attempts"].as_u64().unwrap() > 1, "{doc}");
}

#[test]
fn checks_run_in_parallel_env_fallback_works() {
    // Ten checks that each wait out a 1s timeout on a silent UDP port finish together.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let checks: Vec<String> = (0..10)
        .map(|i| format!("udp:127.0.0.1:{port},send=x,name=c{i}"))
        .collect();
    let r = run(
        initbox()
            .args(["network-check", "-o", "json"])
            .env("INITBOX_CHECK_TIMEOUT", "1s")
            .env("INITBOX_CHECKS", checks.join(" ")),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    let doc = json_of(&r.stdout);
    assert_eq!(doc["summary"]["failed_count"], 10);
    assert!(
        field(&doc, "c3", "detail").contains("UDP silence cannot tell blocked"),
        "{doc}"
    );
    // Sequential would be 10s; generous bound for a loaded machine.
    assert!(r.elapsed < Duration::from_secs(6), "{:?}", r.elapsed);
    drop(silent);
}

#[test]
fn watch_keeps_checking_and_logs_changes() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut child = initbox()
        .args([
            "network-check",
            "--watch",
            "150ms",
            &format!("tcp:127.0.0.1:{port},name=db"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    drop(l);
    std::thread::sleep(Duration::from_millis(900));
    // Still running: watch never exits on its own.
    assert!(child.try_wait().unwrap().is_none(), "watch exited");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let r = common::wait_child(child, LIMIT);
    assert_eq!(r.code(), 143, "{}", r.all());
    let changes: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("check=db"))
        .collect();
    assert_eq!(changes.len(), 2, "one line per change: {changes:?}");
    assert!(changes[0].contains("from=new") && changes[0].contains("status=ok"));
    assert!(changes[1].contains("from=ok") && changes[1].contains("status=FAIL"));
    assert!(changes[1].contains("connection refused"), "{}", changes[1]);
}

/// `--strict` (issue 12, item 5): a certificate within the warning window fails the run, and
/// every report says so (JSON `ok: false`, JUnit `failures="1"`, TAP `not ok`), and the last
/// line (the termination message) names the check and why.
#[test]
fn strict_warnings_fail_in_every_report_and_the_exit_code() {
    let certs = Certs::new();
    let d20 = TlsServer::start(&certs, "d20");
    let ca = certs.path("ca.crt");
    let check = format!("tls:localhost:{},name=soon", d20.port);
    let dir = tempfile::tempdir().unwrap();
    let strict = |format: &str| {
        let tlog = dir.path().join(format!("tlog-{format}"));
        let r = run(
            initbox()
                .args(["network-check", "--strict", "-o", format, "--ca-file"])
                .arg(&ca)
                .arg("--termination-log")
                .arg(&tlog)
                .arg(&check),
            LIMIT,
        );
        assert_eq!(r.code(), 1, "{}", r.all());
        let term = std::fs::read_to_string(&tlog).unwrap();
        assert!(
            term.contains("soon: ") && term.contains("within --warn-days 30"),
            "{term}"
        );
        let last = r.stderr.lines().last().unwrap_or_default();
        assert!(last.contains("within --warn-days 30"), "{}", r.stderr);
        r.stdout
    };
    let doc = json_of(&strict("json"));
    assert_eq!(doc["summary"]["ok"], false, "{doc}");
    assert_eq!(doc["summary"]["failed_count"], 1, "{doc}");
    assert_eq!(field(&doc, "soon", "status"), "fail", "{doc}");
    let x = strict("junit");
    assert!(x.contains(r#"tests="1" failures="1""#), "{x}");
    assert!(x.contains("<failure message="), "{x}");
    let t = strict("tap");
    assert!(t.contains("\nnot ok 1 - soon\n"), "{t}");
    let h = strict("human");
    assert!(h.contains("FAIL") && h.contains("1 failed"), "{h}");
    // Without --strict the same check is a passing warning, in the report and the exit code.
    let r = run(
        initbox()
            .args(["network-check", "-o", "json", "--ca-file"])
            .arg(&ca)
            .arg(&check),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(json_of(&r.stdout)["summary"]["ok"], true);
}

/// TAP names (issue 12, item 6): a newline in a name stays on its line, a `#` cannot start a
/// directive (`# TODO` would hide the failure), and a backslash cannot unescape it.
#[test]
fn tap_names_are_escaped() {
    let closed = free_port();
    let dir = tempfile::tempdir().unwrap();
    let spec = write(
        dir.path(),
        "checks.yaml",
        &format!(
            "checks:\n  - name: \"line one\\nnot ok 9 - injected\"\n    tcp: 127.0.0.1:{closed}\n  \
             - name: 'cache # TODO later'\n    tcp: 127.0.0.1:{closed}\n  \
             - name: 'back\\# SKIP slash'\n    tcp: 127.0.0.1:{closed}\n"
        ),
    );
    let r = run(
        initbox()
            .args(["network-check", "-o", "tap", "--timeout", "2s", "-f"])
            .arg(&spec),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    let t = &r.stdout;
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(&lines[..2], ["TAP version 13", "1..3"], "{t}");
    // Every line is a result, or indented YAML diagnostics.
    for l in &lines[2..] {
        assert!(
            l.starts_with("not ok ") || l.starts_with("  "),
            "stray line {l:?} in\n{t}"
        );
    }
    assert!(
        lines.contains(&"not ok 1 - line one not ok 9 - injected"),
        "{t}"
    );
    assert!(lines.contains(&r"not ok 2 - cache \# TODO later"), "{t}");
    assert!(lines.contains(&r"not ok 3 - back\\\# SKIP slash"), "{t}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("not ok")).count(), 3);
}

/// Reports carry no URL password (issue 21, item 3): the default name of an http check is the
/// URL as shown, and every report passes through the scrubber, like stderr.
#[test]
fn reports_never_show_url_passwords() {
    let port = http_server();
    let pw = "rep0rt-pw-canary";
    let checks = [
        format!("http://user:{pw}@127.0.0.1:{port}/health"),
        format!("http://user:{pw}@127.0.0.1:{port}/down"),
    ];
    for format in ["human", "json", "junit", "tap"] {
        let r = run(
            initbox()
                .args(["network-check", "-o", format, "--timeout", "2s"])
                .args(&checks),
            LIMIT,
        );
        assert_eq!(r.code(), 1, "{}", r.all());
        assert!(!r.all().contains(pw), "{format}: {}", r.all());
        assert!(
            r.stdout.contains(&format!("127.0.0.1:{port}/down")),
            "{format}: {}",
            r.stdout
        );
        if format == "json" {
            let doc = json_of(&r.stdout);
            let name = doc["results"][1]["name"].as_str().unwrap();
            assert_eq!(
                name,
                format!("http://user:[REDACTED]@127.0.0.1:{port}/down"),
                "{doc}"
            );
        }
    }
}

/// A goss file as users have it (goss's own syntax, comments, its old `resolveable` spelling,
/// `skip`) runs unchanged: goss's units (a bare integer timeout is milliseconds), its redirect
/// default (followed), `reachable: false`; `--print-spec` shows the initbox spec it becomes, and
/// what initbox cannot check the same way is refused (exit 3) naming the resource.
#[test]
fn goss_files_run_unchanged() {
    let port = http_server();
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed = free_port();
    let dir = tempfile::tempdir().unwrap();
    let goss = write(
        dir.path(),
        "goss.yaml",
        &format!(
            r#"# written for goss validate
addr:
  tcp://127.0.0.1:{open_port}:
    reachable: true
    timeout: 500
  tcp://127.0.0.1:{closed}:
    reachable: false
dns:
  localhost:
    resolveable: true
    addrs:
    - 127.0.0.1
  no-such-name.invalid:
    resolvable: false
http:
  http://127.0.0.1:{port}/old:
    status: 200
    body:
    - '/"status": *"UP"/'
  http://127.0.0.1:{port}/moved:
    status: 301
    no-follow-redirects: true
  http://127.0.0.1:{port}/slow:
    status: 200
    timeout: 300
  http://127.0.0.1:{port}/down:
    status: 200
    skip: true
"#
        ),
    );
    let started = Instant::now();
    let r = run(
        initbox()
            .args(["network-check", "-o", "json", "-f"])
            .arg(&goss),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    // goss's 300 ms, not 300 s: the slow endpoint (3 s) fails fast.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let doc = json_of(&r.stdout);
    let status = |name: &str| field(&doc, name, "status").to_string();
    assert_eq!(
        doc["results"].as_array().unwrap().len(),
        7,
        "skip: true is left out"
    );
    assert_eq!(status(&format!("addr:tcp://127.0.0.1:{open_port}")), "pass");
    assert_eq!(status(&format!("addr:tcp://127.0.0.1:{closed}")), "pass");
    assert_eq!(status("dns:localhost"), "pass");
    assert_eq!(status("dns:no-such-name.invalid"), "pass");
    let old = format!("http:http://127.0.0.1:{port}/old");
    assert_eq!(status(&old), "pass", "{doc}");
    assert_eq!(result(&doc, &old)["redirects"], 1);
    assert_eq!(
        status(&format!("http:http://127.0.0.1:{port}/moved")),
        "pass"
    );
    let slow = format!("http:http://127.0.0.1:{port}/slow");
    assert_eq!(status(&slow), "fail");
    assert_eq!(field(&doc, &slow, "observed"), "timeout");

    // The same file, converted: an initbox spec that runs the same way.
    let r = run(
        initbox()
            .args(["network-check", "--print-spec", "-f"])
            .arg(&goss),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout.contains("timeout: 300ms"), "{}", r.stdout);
    assert!(r.stdout.contains("redirects: follow"), "{}", r.stdout);
    assert!(r.stdout.contains("expect: fail"), "{}", r.stdout);
    let spec = write(dir.path(), "initbox.yaml", &r.stdout);
    let r2 = run(
        initbox()
            .args(["network-check", "-o", "json", "-f"])
            .arg(&spec),
        LIMIT,
    );
    assert_eq!(r2.code(), 1, "{}", r2.all());
    let doc2 = json_of(&r2.stdout);
    for entry in doc["results"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        assert_eq!(field(&doc2, name, "status"), entry["status"], "{name}");
    }

    // A redirect loop ends after 10 hops; a goss port test is refused, naming it.
    let loops = write(
        dir.path(),
        "loop.yaml",
        &format!("http:\n  http://127.0.0.1:{port}/loop:\n    status: 200\n"),
    );
    let r = run(
        initbox()
            .args(["network-check", "-o", "json", "-f"])
            .arg(&loops),
        LIMIT,
    );
    assert!(r.stdout.contains("more than 10 redirects"), "{}", r.all());
    // What goss would only read wrongly is refused before anything runs, naming it.
    let sctp = write(
        dir.path(),
        "sctp.yaml",
        "port:\n  sctp:22:\n    listening: true\n",
    );
    let r = run(initbox().args(["network-check", "-f"]).arg(&sctp), LIMIT);
    assert_one_line_error(&r, 3, "port: sctp:22: port 'sctp:22': 'sctp' is not tcp");
    drop(open);
}

/// goss's host resources run unchanged, with goss's rules (its system/port.go and
/// system/interface.go, ported; goss itself does not install here): a port is `tcp` (the IPv4
/// table, LISTEN entries), `tcp6` (the IPv6 table: a dual-stack `[::]` listener is tcp6 and
/// *not* tcp, as goss reports it), `udp` (any bound socket), a bare number is tcp; `ip` lists
/// addresses as goss writes them; an interface by name, with its `ADDRESS/PREFIX` addresses and
/// MTU. Each expectation is checked against the kernel's own view (`ip`-style facts from sysfs).
#[test]
fn goss_port_and_interface_run_unchanged() {
    let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let v4_port = v4.local_addr().unwrap().port();
    let dual = TcpListener::bind("[::]:0").unwrap();
    let dual_port = dual.local_addr().unwrap().port();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let closed = free_port();
    let mtu = std::fs::read_to_string("/sys/class/net/lo/mtu").unwrap();
    let mtu = mtu.trim();
    let dir = tempfile::tempdir().unwrap();
    let goss = write(
        dir.path(),
        "goss.yaml",
        &format!(
            r#"# goss add port / goss add interface, then trimmed by hand
port:
  tcp:{v4_port}:
    listening: true
    ip:
    - 127.0.0.1
  "{v4_port}":
    listening: true
  tcp6:{v4_port}:
    listening: false
  tcp6:{dual_port}:
    listening: true
    ip:
    - '::'
  tcp:{dual_port}:
    listening: false
  udp:{udp_port}:
    listening: true
  tcp:{closed}:
    listening: false
interface:
  lo:
    exists: true
    addrs:
    - 127.0.0.1/8
    mtu: {mtu}
  initbox-none0:
    exists: false
"#
        ),
    );
    let r = run(
        initbox()
            .args(["network-check", "-o", "json", "-f"])
            .arg(&goss),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let doc = json_of(&r.stdout);
    assert_eq!(doc["results"].as_array().unwrap().len(), 9, "{doc}");
    for entry in doc["results"].as_array().unwrap() {
        assert_eq!(entry["status"], "pass", "{entry}");
    }
    let lo = result(&doc, "interface:lo");
    assert_eq!(lo["mtu"].to_string(), mtu, "{lo}");
    assert_eq!(
        result(&doc, &format!("port:tcp6:{dual_port}"))["ips"],
        serde_json::json!(["::"])
    );

    // The converted spec runs the same way, and the command-line form says the same.
    let r = run(
        initbox()
            .args(["network-check", "--print-spec", "-f"])
            .arg(&goss),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stdout.contains(&format!("port: tcp6:{dual_port}")),
        "{}",
        r.stdout
    );
    let spec = write(dir.path(), "initbox.yaml", &r.stdout);
    let r = run(initbox().args(["network-check", "-f"]).arg(&spec), LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    let r = run(
        initbox().args([
            "network-check",
            &format!("port:tcp:{v4_port},ip=127.0.0.1"),
            &format!("interface:lo,addr=127.0.0.1/8,mtu={mtu}"),
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());

    // Each wrong expectation fails on its own, saying what the host has instead.
    let wrong = write(
        dir.path(),
        "wrong.yaml",
        &format!(
            "port:\n  tcp:{v4_port}:\n    listening: true\n    ip: ['0.0.0.0']\n\
             \x20 tcp:{closed}:\n    listening: true\n\
             \x20 udp:{udp_port}:\n    listening: false\n\
             interface:\n  lo:\n    exists: true\n    mtu: 1280\n    addrs: [10.99.99.1/24]\n\
             \x20 initbox-none0:\n    exists: true\n"
        ),
    );
    let r = run(
        initbox()
            .args(["network-check", "-o", "json", "-f"])
            .arg(&wrong),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    let doc = json_of(&r.stdout);
    for entry in doc["results"].as_array().unwrap() {
        assert_eq!(entry["status"], "fail", "{entry}");
    }
    let reason = |name: &str| field(&doc, name, "detail").to_string();
    assert!(
        reason(&format!("port:tcp:{v4_port}")).contains("not on 0.0.0.0"),
        "{doc}"
    );
    assert!(
        reason(&format!("port:tcp:{closed}")).contains("nothing listening"),
        "{doc}"
    );
    let lo = reason("interface:lo");
    assert!(
        lo.contains("without 10.99.99.1/24") && lo.contains("MTU"),
        "{lo}"
    );
    assert!(
        reason("interface:initbox-none0").contains("no interface"),
        "{doc}"
    );
    drop((v4, dual, udp));
}
