//! The real SMTP server of the end-to-end tests: Python's aiosmtpd
//! (`tests/fixtures/notify/smtp_server.py`, installed by `tests/setup/20-notify.sh`) on a free
//! loopback port, with STARTTLS, implicit TLS or no TLS, and AUTH for one user. Each message it
//! receives is written to `OUT/N.json` (`mail_from`, `rcpt_tos`, `data`, `authenticated`,
//! `starttls`, `mode`); [`wait_for_mail`] reads it. [`https_server`] starts the other Python server
//! of `tests/fixtures/notify` (an OpenSSL HTTPS endpoint, with mutual TLS) the same way.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The one user the SMTP server accepts, and its password (with `/` and `@`, which a URL must
/// percent-encode).
pub const USER: &str = "notify";
pub const PASSWORD: &str = "S3cret/pw@x";

/// A fixture server process, killed when dropped.
pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `tests/fixtures/notify/SCRIPT ARGS` and wait for the line `ready` it prints once it
/// listens.
pub fn fixture_server(script: &str, args: &[&OsStr]) -> Server {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/notify")
        .join(script);
    let mut child = Command::new("python3")
        .arg(&script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server(child);
    assert_eq!(
        line.trim(),
        "ready",
        "{script:?} did not start (tests/setup/20-notify.sh installs aiosmtpd)"
    );
    server
}

/// An SMTP server in `mode` (`starttls`, `implicit` or `plain`) with the certificate `cert` /
/// `key`, writing what it receives to `out`; returns it and its port.
pub fn smtp_server(mode: &str, cert: &Path, key: &Path, out: &Path) -> (Server, u16) {
    let port = super::free_port();
    let port_s = port.to_string();
    let server = fixture_server(
        "smtp_server.py",
        &[
            mode.as_ref(),
            port_s.as_ref(),
            cert.as_os_str(),
            key.as_os_str(),
            out.as_os_str(),
            USER.as_ref(),
            PASSWORD.as_ref(),
        ],
    );
    (server, port)
}

/// The HTTPS endpoint of `tests/fixtures/notify/https_server.py` (Python's ssl: OpenSSL, not
/// rustls like [`super::http::HttpServer`]) with the certificate `cert` / `key`; with
/// `client_ca` it requires a client certificate signed by that CA (mutual TLS). Each request is
/// written to `out/N.json` (`path`, `client_cn`, `body`). Returns it and its port.
pub fn https_server(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    out: &Path,
) -> (Server, u16) {
    let port = super::free_port();
    let port_s = port.to_string();
    let client_ca = client_ca.map_or(OsStr::new("-"), Path::as_os_str);
    let server = fixture_server(
        "https_server.py",
        &[
            port_s.as_ref(),
            cert.as_os_str(),
            key.as_os_str(),
            client_ca,
            out.as_os_str(),
        ],
    );
    (server, port)
}

/// The `n`-th record (from 1) a fixture server wrote to `dir`, waiting up to 10 s for it.
pub fn wait_for_mail(dir: &Path, n: usize) -> serde_json::Value {
    let path = dir.join(format!("{n}.json"));
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no mail {n} received"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
