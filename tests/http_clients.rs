//! End-to-end tests of the runtime's one HTTP client, run through every applet that speaks HTTP
//! (wait-for, notify, fetch-secret's Vault and Kubernetes backends, network-check):
//! - the redirect policy: a redirecting origin (plain HTTP or TLS, served here with rustls and
//!   certificates the openssl CLI makes) and a second listener on another port that records the
//!   headers that reach it: a credential never arrives there, and https never goes down to http;
//! - body caps: a server that streams an endless body, the applet under an address-space cap
//!   (setrlimit RLIMIT_AS in pre_exec) so a regression fails fast instead of eating the machine;
//! - TLS failures: each one a named one-line reason that says what to do.
//!
//! Vault and the Kubernetes API are stand-ins here (no real ones on this machine): they answer
//! the documented paths (`/v1/auth/token/lookup-self`, `/v1/sys/internal/ui/mounts/...`,
//! `/api/v1/namespaces/NS/secrets/NAME`) with the documented JSON shapes, or with the redirect
//! or endless body under test.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::http::{Answer, HttpServer};
use common::pki::{self, server_config};
use common::{Run, initbox, run};

const LIMIT: Duration = Duration::from_secs(60);
const CANARY: &str = "Canary-http-5e1d7a-SECRET";

/// `initbox APPLET` without proxies or Vault settings from the caller's environment.
fn applet(name: &str) -> Command {
    let mut c = initbox();
    for v in common::PROXY_VARS {
        c.env_remove(v);
    }
    for v in [
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "VAULT_CACERT",
        "VAULT_NAMESPACE",
    ] {
        c.env_remove(v);
    }
    c.env("HOME", "/nonexistent");
    c.arg(name);
    c
}

// ---------------------------------------------------------------------------------------------
// Servers: one request per connection, answered by a handler; every request's text recorded.
// ---------------------------------------------------------------------------------------------

enum Reply {
    /// 307 to this URL.
    Redirect(String),
    /// Status and a JSON body.
    Json(u16, String),
    /// Status, then a body that never ends (no Content-Length, zeros until the peer goes).
    Endless(u16),
}

type Handler = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// The shared test server (tests/common/http.rs), answering with a [`Reply`].
struct Server {
    port: u16,
    inner: HttpServer,
}

impl Server {
    fn start(tls: Option<Arc<rustls::ServerConfig>>, handler: Handler) -> Server {
        let inner = HttpServer::start_tls(tls, move |_, text| match handler(text) {
            Reply::Redirect(to) => Answer::redirect(&to),
            Reply::Json(status, body) => Answer::json(status, body),
            Reply::Endless(status) => Answer::endless(status),
        });
        Server {
            port: inner.port,
            inner,
        }
    }

    fn plain(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Server {
        Server::start(None, Arc::new(handler))
    }

    fn requests(&self) -> Vec<String> {
        self.inner.requests()
    }
}

/// The second listener: answers 200 to anything and records what reached it.
fn capture() -> Server {
    Server::plain(|_| Reply::Json(200, r#"{"status":"UP"}"#.into()))
}

/// Nothing that reached `c` holds the canary (or the listener got no request at all when
/// `none` is set).
fn assert_no_credential(c: &Server, what: &str) {
    for r in c.requests() {
        assert!(
            !r.contains(CANARY) && !r.to_ascii_lowercase().contains("authorization"),
            "{what}: a credential reached the other origin: {r}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// PKI (the kit's, tests/common/pki.rs): a CA and leaves signed by it (127.0.0.1/localhost, another
// name, an expired one), and a self-signed CA:TRUE certificate (as `openssl req -x509` makes).
// ---------------------------------------------------------------------------------------------

/// `ca.crt`, `server` (127.0.0.1, localhost), `other` (other.example), `expired` and `self`.
fn pki(dir: &Path) {
    pki::ca_and_localhost(dir, "initbox http test CA");
    pki::leaf(dir, "other", "DNS:other.example");
    pki::expired_leaf(dir, "expired");
    pki::self_signed(dir, "self", "IP:127.0.0.1");
}

fn tls_server(
    dir: &Path,
    name: &str,
    handler: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> Server {
    Server::start(Some(server_config(dir, name)), Arc::new(handler))
}

// ---------------------------------------------------------------------------------------------
// Redirects (issue 21.1, 21.2)
// ---------------------------------------------------------------------------------------------

#[test]
fn wait_for_sends_no_credential_to_another_origin_or_down_to_http() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let ca = dir.path().join("ca.crt");
    let c = capture();
    let other = format!("http://127.0.0.1:{}/health", c.port);
    let to = other.clone();
    let https = tls_server(dir.path(), "server", move |_| Reply::Redirect(to.clone()));
    let to = other.clone();
    let http = Server::plain(move |_| Reply::Redirect(to.clone()));
    let key = format!("X-Api-Key: {CANARY}");
    let wait = |args: &[&str]| run(applet("wait-for").args(["--once"]).args(args), LIMIT);

    // https -> http, with a credential header: refused, nothing reaches the other listener.
    let r = wait(&[
        "--ca-file",
        ca.to_str().unwrap(),
        "-H",
        &key,
        &format!("https://127.0.0.1:{}/health", https.port),
    ]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("down to plain http"), "{}", r.stderr);
    assert!(c.requests().is_empty(), "{:?}", c.requests());
    // https -> http without credentials: still refused (no downgrade at all).
    let r = wait(&[
        "--ca-file",
        ca.to_str().unwrap(),
        &format!("https://127.0.0.1:{}/health", https.port),
    ]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(c.requests().is_empty(), "{:?}", c.requests());

    // http -> another port, with a custom credential header or a bearer: refused.
    for header in [key.clone(), format!("Authorization: Bearer {CANARY}")] {
        let r = wait(&["-H", &header, &format!("http://127.0.0.1:{}/h", http.port)]);
        assert_eq!(r.code(), 1, "{}", r.all());
        assert!(r.stderr.contains("carries credentials"), "{}", r.stderr);
        assert!(!r.all().contains(CANARY), "{}", r.all());
    }
    // A password in the URL counts as a credential too.
    let r = wait(&[&format!("http://u:{CANARY}@127.0.0.1:{}/h", http.port)]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert_no_credential(&c, "wait-for");
    assert!(c.requests().is_empty(), "{:?}", c.requests());

    // Without credentials, another origin is followed (curl --location).
    let r = wait(&[&format!("http://127.0.0.1:{}/h", http.port)]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(c.requests().len(), 1);

    // The same origin is followed with credentials, which arrive there.
    let same = Server::plain(|req| {
        if req.starts_with("GET /start ") {
            Reply::Redirect("/ready".into())
        } else {
            Reply::Json(200, "{}".into())
        }
    });
    let r = wait(&["-H", &key, &format!("http://127.0.0.1:{}/start", same.port)]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let seen = same.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[1].starts_with("GET /ready ") && seen[1].contains(CANARY));
}

/// A stand-in Vault address that answers every request with a redirect to `to`.
#[test]
fn vault_token_never_follows_a_redirect_off_origin_or_down_to_http() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let c = capture();
    let to = format!("http://127.0.0.1:{}/v1/auth/token/lookup-self", c.port);
    let t = to.clone();
    let https = tls_server(dir.path(), "server", move |_| Reply::Redirect(t.clone()));
    let t = to.clone();
    let http = Server::plain(move |_| Reply::Redirect(t.clone()));
    for (addr, needle) in [
        (
            format!("https://127.0.0.1:{}", https.port),
            "down to plain http",
        ),
        (
            format!("http://127.0.0.1:{}", http.port),
            "carries credentials",
        ),
    ] {
        let r = run(
            applet("fetch-secret")
                .env("VAULT_ADDR", &addr)
                .env("VAULT_TOKEN", CANARY)
                .env("VAULT_CACERT", dir.path().join("ca.crt"))
                .env("INITBOX_TIMEOUT", "10s")
                .args([
                    "--out",
                    "/nonexistent/initbox-never-written.json",
                    "x=ref+vault://secret/app#/password",
                ]),
            LIMIT,
        );
        assert_eq!(r.code(), 1, "{addr}: {}", r.all());
        assert!(r.stderr.contains(needle), "{addr}: {}", r.stderr);
        assert!(!r.all().contains(CANARY), "{}", r.all());
        assert_no_credential(&c, "vault");
        assert!(c.requests().is_empty(), "{:?}", c.requests());
    }
}

#[test]
fn notify_and_network_check_never_carry_credentials_across_a_redirect() {
    let c = capture();
    let to = format!("http://127.0.0.1:{}/hook", c.port);
    let origin = Server::plain(move |_| Reply::Redirect(to.clone()));
    let r = run(
        applet("notify").args([
            "--required",
            "--message",
            "hello",
            &format!(
                "webhook+http://127.0.0.1:{}/hook?@X-Api-Key={CANARY}",
                origin.port
            ),
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(
        r.stderr.contains("redirects are not followed"),
        "{}",
        r.stderr
    );
    assert_eq!(origin.requests().len(), 1);
    assert!(origin.requests()[0].contains(CANARY));

    let r = run(
        applet("network-check").args([
            "--timeout",
            "5s",
            &format!(
                "http://127.0.0.1:{}/h,name=redirected,header=X-Api-Key:{CANARY}",
                origin.port
            ),
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(!r.all().contains(CANARY), "{}", r.all());
    assert_eq!(origin.requests().len(), 2);
    assert_no_credential(&c, "notify/network-check");
    assert!(c.requests().is_empty(), "{:?}", c.requests());
}

// ---------------------------------------------------------------------------------------------
// Body caps (issue 21.10)
// ---------------------------------------------------------------------------------------------

/// Under a 1 GiB address-space cap: a body read whole would fail fast, not eat the machine.
fn capped(mut c: Command) -> Run {
    const AS: libc::rlim_t = 1 << 30;
    // SAFETY: setrlimit is async-signal-safe; it only lowers this child's own limit.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: AS,
                rlim_max: AS,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    run(&mut c, LIMIT)
}

/// `fetch-secret` of one Vault secret from `vault` with a token, never writing its output.
fn vault_fetch(vault: &Server) -> Command {
    let mut c = applet("fetch-secret");
    c.env("VAULT_ADDR", format!("http://127.0.0.1:{}", vault.port))
        .env("VAULT_TOKEN", "root-token")
        .args([
            "--timeout",
            "30s",
            "--out",
            "/nonexistent/initbox-never-written.json",
            "x=ref+vault://secret/app#/password",
        ]);
    c
}

fn one_error_line(r: &Run, code: i32, needle: &str) {
    assert_eq!(r.code(), code, "exit code; output: {}", r.all());
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one error line expected: {}", r.stderr);
    assert!(
        errors[0].contains(needle),
        "{:?} should name {needle:?}",
        errors[0]
    );
    assert!(!r.all().contains("panicked") && !r.all().contains("memory allocation"));
}

#[test]
fn endless_bodies_are_cut_at_their_documented_caps() {
    // Kubernetes: a secret body past 16 MiB is exit 3, at once, not a retry.
    let k8s = Server::plain(|_| Reply::Endless(200));
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "sa-token\n").unwrap();
    let mut c = applet("fetch-secret");
    c.args([
        "--k8s-api",
        &format!("http://127.0.0.1:{}", k8s.port),
        "--k8s-token-file",
        token.to_str().unwrap(),
        "--timeout",
        "30s",
        "--out",
        "/nonexistent/initbox-never-written.json",
        "x=ref+k8s://app/db#password",
    ]);
    let r = capped(c);
    one_error_line(&r, 3, "larger than the limit of 16 MiB");
    assert!(r.elapsed < Duration::from_secs(20), "{:?}", r.elapsed);
    assert_eq!(k8s.requests().len(), 1, "not retried");

    // Vault: the token is accepted, then the mount lookup answers forever.
    let vault = Server::plain(|req| {
        if req.starts_with("GET /v1/auth/token/lookup-self ") {
            Reply::Json(200, LOOKUP_SELF.into())
        } else {
            Reply::Endless(200)
        }
    });
    let r = capped(vault_fetch(&vault));
    one_error_line(&r, 3, "larger than the limit of 16 MiB");
    // ... and a login answer that never ends is cut the same way.
    let vault = Server::plain(|_| Reply::Endless(200));
    let r = capped(vault_fetch(&vault));
    one_error_line(
        &r,
        3,
        "vault token lookup-self: the response body is larger than the limit",
    );

    // notify: an endless error body is read for its excerpt only; an endless success body is
    // not read at all.
    for (status, code) in [(400, 1), (200, 0)] {
        let hook = Server::plain(move |_| Reply::Endless(status));
        let mut c = applet("notify");
        c.args([
            "--required",
            "--timeout",
            "20s",
            "--message",
            "hello",
            &format!("webhook+http://127.0.0.1:{}/hook", hook.port),
        ]);
        let r = capped(c);
        if code == 0 {
            assert_eq!(r.code(), 0, "{}", r.all());
        } else {
            one_error_line(&r, 1, "HTTP 400");
        }
        assert!(r.elapsed < Duration::from_secs(15), "{:?}", r.elapsed);
    }

    // wait-for matches the first 1 MiB of a body, however long.
    let h = Server::plain(|_| Reply::Endless(200));
    let mut c = applet("wait-for");
    c.args([
        "--once",
        "--body-regex",
        "^0+$",
        &format!("http://127.0.0.1:{}/", h.port),
    ]);
    let r = capped(c);
    assert_eq!(r.code(), 0, "{}", r.all());
}

/// `GET /v1/auth/token/lookup-self` as Vault answers it.
const LOOKUP_SELF: &str = r#"{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,
"data":{"accessor":"acc-1","creation_time":1700000000,"creation_ttl":3600,"display_name":"token",
"entity_id":"","expire_time":null,"explicit_max_ttl":0,"id":"root-token","identity_policies":null,
"issue_time":null,"meta":null,"num_uses":0,"orphan":false,"path":"auth/token/create",
"policies":["root"],"renewable":false,"role":null,"ttl":3600,"type":"service"},
"wrap_info":null,"warnings":null,"auth":null}"#;

// ---------------------------------------------------------------------------------------------
// TLS failures (issue 12.7)
// ---------------------------------------------------------------------------------------------

#[test]
fn every_tls_failure_is_a_named_reason_that_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    pki(d);
    let ok = |_: &str| Reply::Json(200, "{}".into());
    let self_signed = tls_server(d, "self", ok);
    let leaf = tls_server(d, "server", ok);
    let other = tls_server(d, "other", ok);
    let expired = tls_server(d, "expired", ok);
    let ca = d.join("ca.crt");
    let selfpem = d.join("self.pem");
    let wait = |port: u16, ca: &Path| {
        run(
            applet("wait-for").args([
                "--once",
                "--ca-file",
                ca.to_str().unwrap(),
                &format!("https://127.0.0.1:{port}/"),
            ]),
            LIMIT,
        )
    };
    // The self-signed certificate trusted only through the system roots is a CA used as a
    // server certificate: refused. (Pinned with --ca-file it is accepted: below.)
    let cases = [
        (
            run(
                applet("wait-for").env("SSL_CERT_FILE", &selfpem).args([
                    "--once",
                    &format!("https://127.0.0.1:{}/", self_signed.port),
                ]),
                LIMIT,
            ),
            "presents a CA certificate (basicConstraints CA:TRUE",
        ),
        (
            run(
                applet("wait-for").args(["--once", &format!("https://127.0.0.1:{}/", leaf.port)]),
                LIMIT,
            ),
            "pass the CA certificate that signed it with --ca-file",
        ),
        (
            wait(other.port, &ca),
            "name mismatch: the certificate is for [other.example], not 127.0.0.1",
        ),
        (wait(expired.port, &ca), "certificate expired on 2020-01-02"),
    ];
    for (r, needle) in &cases {
        assert_eq!(r.code(), 1, "{}", r.all());
        let line = r
            .stderr
            .lines()
            .find(|l| l.contains("TLS"))
            .unwrap_or_default();
        assert!(line.contains(needle), "{needle:?} in {}", r.stderr);
        assert!(!r.stderr.contains("Other("), "{}", r.stderr);
    }
    // The same certificate trusted properly passes.
    let r = wait(leaf.port, &ca);
    assert_eq!(r.code(), 0, "{}", r.all());
    // The self-signed one given with --ca-file is pinned: accepted, and said so (issue 22.14).
    let r = wait(self_signed.port, &selfpem);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stderr.contains("pinned in the CA file given"),
        "{}",
        r.stderr
    );

    // fetch-secret names its own CA option; network-check and notify the same reasons.
    let r = run(
        applet("fetch-secret")
            .env(
                "VAULT_ADDR",
                format!("https://127.0.0.1:{}", self_signed.port),
            )
            .env("VAULT_TOKEN", "t")
            .env("SSL_CERT_FILE", &selfpem)
            .args([
                "--out",
                "/nonexistent/initbox-never-written.json",
                "x=ref+vault://secret/app#/password",
            ]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(
        r.stderr.contains("leaf certificate") && r.stderr.contains("--vault-ca-file"),
        "{}",
        r.stderr
    );
    let r = run(
        applet("network-check")
            .env("SSL_CERT_FILE", &selfpem)
            .args([&format!(
                "https://127.0.0.1:{}/,name=self",
                self_signed.port
            )]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.all().contains("leaf certificate"), "{}", r.all());
    let r = run(
        applet("notify").args([
            "--required",
            "--timeout",
            "3s",
            "--ca-file",
            ca.to_str().unwrap(),
            "--message",
            "x",
            &format!("webhook+https://127.0.0.1:{}/hook", expired.port),
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(
        r.stderr.contains("certificate expired on 2020-01-02"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_server_that_is_not_tls_is_named() {
    // A plain HTTP server on the port: it answers the TLS hello with an HTTP error, as nginx does.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let r = run(
        applet("wait-for").args(["--once", &format!("https://127.0.0.1:{port}/")]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("does not answer in TLS"), "{}", r.stderr);
}
