//! End-to-end tests of `initbox wait-for grpc://` and `grpcs://` against a real gRPC server:
//! Python's grpcio with the standard health service of grpcio-health-checking
//! (tests/fixtures/grpc/health_server.py, installed by tests/setup/40-k8s.sh), its status flipped
//! while initbox waits.

mod common;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fixture::Fixture;
use common::{assert_one_line_error, initbox, run, wait_child};

const LIMIT: Duration = Duration::from_secs(60);

/// The grpcio health server (tests/fixtures/grpc/health_server.py).
struct Server(Fixture);

impl Server {
    fn start(extra: &[&str]) -> Server {
        let args: Vec<&OsStr> = extra.iter().map(OsStr::new).collect();
        Server(Fixture::start(
            "grpc/health_server.py",
            &args,
            "the health server (grpcio missing? tests/setup/40-k8s.sh installs it)",
            // grpcio's own log lines (rejected handshakes) are expected here.
            |c| {
                c.env("GRPC_VERBOSITY", "NONE");
            },
        ))
    }

    fn set(&mut self, service: &str, status: &str) {
        assert_eq!(self.0.send(&format!("set {service} {status}")), "ok");
    }

    fn url(&self, scheme: &str, service: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{service}", self.0.port)
    }
}

fn cmd() -> Command {
    let mut c = initbox();
    c.arg("wait-for");
    c
}

fn spawn(args: &[&str]) -> Child {
    cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn waits_until_the_server_flips_to_serving_then_execs() {
    let mut s = Server::start(&[]);
    let dir = tmpdir("flip");
    let marker = dir.join("ran");
    let url = s.url("grpc", "");
    let mut child = spawn(&[
        "-t",
        "30s",
        &url,
        "--",
        "sh",
        "-c",
        &format!("echo ran > {}", marker.display()),
    ]);
    common::still_waiting(&mut child, Duration::from_millis(1500));
    assert!(
        !marker.exists(),
        "the command ran before the server was ready"
    );
    let flipped = Instant::now();
    s.set("-", "SERVING");
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(flipped.elapsed() < Duration::from_secs(5));
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");
    assert!(r.stderr.contains("grpc://127.0.0.1"), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_named_service_is_asked_about_by_name() {
    let mut s = Server::start(&[]);
    s.set("-", "SERVING");
    let url = s.url("grpc", "/shop.Orders");
    // Unknown to the server (NOT_FOUND) then NOT_SERVING: both "not yet".
    let mut child = spawn(&["-t", "30s", "--progress-interval", "200ms", &url]);
    common::still_waiting(&mut child, Duration::from_millis(800));
    s.set("shop.Orders", "NOT_SERVING");
    common::still_waiting(&mut child, Duration::from_millis(800));
    s.set("shop.Orders", "SERVING");
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stderr.contains("NOT_FOUND"),
        "progress names the unknown service: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("NOT_SERVING"),
        "progress names the status: {}",
        r.stderr
    );
}

#[test]
fn once_is_a_probe_command() {
    let mut s = Server::start(&[]);
    let url = s.url("grpc", "");
    let r = run(cmd().args(["--once", &url]), LIMIT);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("NOT_SERVING"), "{}", r.stderr);
    s.set("-", "SERVING");
    let r = run(cmd().args(["--once", &url]), LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    s.set("-", "UNKNOWN");
    let r = run(cmd().args(["--once", &url]), LIMIT);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("UNKNOWN"), "{}", r.stderr);
}

#[test]
fn a_server_without_the_health_service_fails_at_once() {
    let s = Server::start(&["--no-health"]);
    let url = s.url("grpc", "");
    let started = Instant::now();
    let r = run(cmd().args(["-t", "30s", &url]), LIMIT);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("UNIMPLEMENTED"), "{}", r.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not at the deadline"
    );
}

#[test]
fn the_deadline_names_the_last_status() {
    let s = Server::start(&[]);
    let url = s.url("grpc", "");
    let r = run(cmd().args(["-t", "1s", &url]), LIMIT);
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(r.stderr.contains("NOT_SERVING"), "{}", r.stderr);
}

#[test]
fn grpcs_verifies_the_server_with_the_toolkit_ca_handling() {
    let dir = tmpdir("tls");
    // A self-signed certificate, as `openssl req -x509` makes it: the kit's.
    let (cert, key) = common::pki::self_signed(&dir, "cert", "DNS:localhost,IP:127.0.0.1");
    let mut s = Server::start(&["--tls", cert.to_str().unwrap(), key.to_str().unwrap()]);
    s.set("-", "SERVING");
    let url = s.url("grpcs", "");
    let r = run(
        cmd().args(["--once", "--ca-file", cert.to_str().unwrap(), &url]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    // Without the CA the certificate is refused: never ready, and the reason says why.
    let r = run(cmd().args(["-t", "1s", &url]), LIMIT);
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(r.stderr.contains("TLS"), "{}", r.stderr);
    // Plain grpc:// to a TLS port is not ready either.
    let r = run(cmd().args(["--once", &s.url("grpc", "")]), LIMIT);
    assert_eq!(r.code(), 1, "{}", r.all());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_grpc_targets_are_usage_errors() {
    for (t, needle) in [
        ("grpc://127.0.0.1", "missing port"),
        ("grpc://127.0.0.1:1/a/b", "no '/'"),
        ("grpcs://:443", "host"),
    ] {
        let r = run(cmd().arg(t), LIMIT);
        assert_one_line_error(&r, 2, needle);
    }
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("initbox-grpc-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
