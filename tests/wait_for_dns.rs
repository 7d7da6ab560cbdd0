//! wait-for-dns against a real DNS server (dnsmasq from Debian) on loopback, with records added
//! and removed while initbox waits, in direct-server mode and in system mode (a test resolv.conf
//! with a search list pointing at dnsmasq on port 53 of its own loopback address).

mod common;
use common::*;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// A dnsmasq instance answering for `*.test` from a hosts directory it watches.
struct Dnsmasq {
    child: Child,
    dir: tempfile::TempDir,
    ip: String,
    port: u16,
}

impl Dnsmasq {
    /// Start dnsmasq on `ip`, port `port` (0: a free one). A port picked by bind-and-release can
    /// be taken by someone else before dnsmasq binds it, so a failed start is retried on another.
    fn start(ip: &str, port: u16) -> Dnsmasq {
        for _ in 0..5 {
            let p = if port == 0 { free_port_udp() } else { port };
            if let Some(d) = Self::try_start(ip, p) {
                return d;
            }
        }
        panic!("dnsmasq did not start on {ip} (port {port}) after 5 tries");
    }

    fn try_start(ip: &str, port: u16) -> Option<Dnsmasq> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("hosts")).unwrap();
        let child = Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--pid-file=",
                "--user=root",
                "--local=/test/",
                "--local-ttl=0",
                "--srv-host=_http._tcp.web.test,web.test,8080",
                "--txt-record=txt.test,v=1 hello",
                "--mx-host=test,mail.test",
                "--cname=alias.test,web.test",
                "--log-facility=-",
            ])
            .arg(format!("--listen-address={ip}"))
            .arg(format!("--port={port}"))
            .arg(format!("--hostsdir={}", dir.path().join("hosts").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (Debian package dnsmasq-base; tests/run-all.sh installs it)");
        let mut d = Dnsmasq {
            child,
            dir,
            ip: ip.to_string(),
            port,
        };
        // Ready when it answers a query for a local name; gone at once if it could not bind.
        for _ in 0..1000 {
            if d.answers() {
                return Some(d);
            }
            if d.child.try_wait().ok().flatten().is_some() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    fn answers(&self) -> bool {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        // A minimal query for "test" type SOA; any answer means it is up.
        let q = [
            0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, b't', b'e', b's', b't', 0, 0, 6, 0, 1,
        ];
        s.send_to(&q, (self.ip.as_str(), self.port)).is_ok() && s.recv(&mut [0u8; 512]).is_ok()
    }

    fn server(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// Replace the hosts file named `file` (dnsmasq notices through inotify).
    fn hosts(&self, file: &str, content: &str) {
        let tmp = self.dir.path().join(format!(".{file}"));
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("hosts").join(file)).unwrap();
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn direct(d: &Dnsmasq) -> Command {
    let mut c = initbox();
    c.args(["wait-for-dns", "--server", &d.server()]);
    c
}

#[test]
fn a_name_added_while_waiting_is_seen_on_the_next_attempt() {
    let d = Dnsmasq::start("127.0.0.1", 0);
    // Asked before it exists: NXDOMAIN must not be cached.
    let child = spawn(direct(&d).args(["-t", "20s", "--progress-interval", "100ms", "late.test"]));
    std::thread::sleep(Duration::from_millis(500));
    d.hosts("late", "127.0.2.1 late.test\n");
    let r = wait_child(child, T);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stderr.contains("NXDOMAIN"),
        "progress told NXDOMAIN apart: {}",
        r.stderr
    );
    assert!(r.stderr.contains("127.0.2.1"), "{}", r.stderr);
}

#[test]
fn min_count_waits_for_every_pod_of_a_headless_service() {
    let d = Dnsmasq::start("127.0.0.1", 0);
    d.hosts("web", "127.0.3.1 pods.test\n");
    let child = spawn(direct(&d).args(["-t", "20s", "--min-count", "3", "pods.test"]));
    std::thread::sleep(Duration::from_millis(300));
    d.hosts("web", "127.0.3.1 pods.test\n127.0.3.2 pods.test\n");
    std::thread::sleep(Duration::from_millis(300));
    d.hosts(
        "web",
        "127.0.3.1 pods.test\n127.0.3.2 pods.test\n127.0.3.3 pods.test\n",
    );
    let r = wait_child(child, T);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("127.0.3.3"), "{}", r.stderr);
    // Not enough: a deadline with the count in the reason.
    let r = run(
        direct(&d).args(["-t", "300ms", "--min-count", "4", "pods.test"]),
        T,
    );
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(r.stderr.contains("3 of 4 values"), "{}", r.stderr);
}

#[test]
fn absent_waits_until_the_name_is_gone() {
    let d = Dnsmasq::start("127.0.0.1", 0);
    d.hosts("old", "127.0.4.1 old.test\n");
    let r = run(direct(&d).args(["-t", "300ms", "--absent", "old.test"]), T);
    assert_eq!(r.code(), 124);
    assert!(
        r.stderr.contains("still resolves to 127.0.4.1"),
        "{}",
        r.stderr
    );
    let child = spawn(direct(&d).args(["-t", "20s", "--invert", "old.test"]));
    std::thread::sleep(Duration::from_millis(300));
    d.hosts("old", "");
    let r = wait_child(child, T);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("absent"), "{}", r.stderr);
}

#[test]
fn record_types_and_expected_values() {
    let d = Dnsmasq::start("127.0.0.1", 0);
    d.hosts("web", "127.0.5.1 web.test\n::1 web.test\n");
    let cases: &[(&str, &str, &str)] = &[
        ("a", "web.test", "127.0.5.1"),
        ("aaaa", "web.test", "::1"),
        ("srv", "_http._tcp.web.test", "web.test:8080"),
        ("txt", "txt.test", "v=1 hello"),
        ("mx", "test", "mail.test"),
        ("cname", "alias.test", "web.test"),
    ];
    for (ty, name, value) in cases {
        let r = run(
            direct(&d).args(["--once", "--type", ty, "--expect", value, name]),
            T,
        );
        assert_eq!(r.code(), 0, "{ty} {name}: {}", r.all());
    }
    let r = run(
        direct(&d).args(["--once", "--expect", "127.0.5.9", "web.test"]),
        T,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("127.0.5.9 not among"), "{}", r.stderr);
}

#[test]
fn nxdomain_refused_and_timeout_are_told_apart() {
    let d = Dnsmasq::start("127.0.0.1", 0);
    let r = run(direct(&d).args(["--once", "missing.test"]), T);
    assert!(r.stderr.contains("NXDOMAIN"), "{}", r.stderr);
    let r = run(direct(&d).args(["--once", "example.org"]), T);
    assert!(r.stderr.contains("REFUSED"), "{}", r.stderr);
    // A server that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let r = run(
        initbox().args([
            "wait-for-dns",
            "--once",
            "--attempt-timeout",
            "300ms",
            "--server",
            &addr,
            "x.test",
        ]),
        T,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(
        r.stderr.contains("timeout") || r.stderr.contains("no answer"),
        "{}",
        r.stderr
    );
}

#[test]
fn servfail_is_reported_as_such_and_is_not_absent() {
    // A one-purpose DNS responder that answers every query with SERVFAIL (RCODE 2).
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            let mut resp = buf[..n].to_vec();
            if resp.len() < 12 {
                continue;
            }
            resp[2] = 0x81 | (resp[2] & 0x01); // QR, RD copied
            resp[3] = 0x82; // RA, RCODE=SERVFAIL
            let _ = sock.send_to(&resp, peer);
        }
    });
    let r = run(
        initbox().args(["wait-for-dns", "--once", "--server", &addr, "svc.test"]),
        T,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("SERVFAIL"), "{}", r.stderr);
    let r = run(
        initbox().args([
            "wait-for-dns",
            "-t",
            "300ms",
            "--absent",
            "--server",
            &addr,
            "svc.test",
        ]),
        T,
    );
    assert_eq!(
        r.code(),
        124,
        "a failing server does not prove absence: {}",
        r.all()
    );
}

#[test]
fn system_mode_uses_the_search_list_and_the_hosts_file() {
    // dnsmasq on port 53 of a loopback address of its own, as resolv.conf cannot name a port.
    let ip = format!("127.0.{}.{}", 100 + (std::process::id() % 100), 53);
    let d = Dnsmasq::start(&ip, 53);
    d.hosts("svc", "127.0.6.1 db.svc.test\n");
    let dir = tempfile::tempdir().unwrap();
    let resolv: PathBuf = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {ip}\nsearch svc.test\noptions ndots:5\n"),
    )
    .unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.7.7 static-entry\n").unwrap();
    let sys = |name: &str| {
        let mut c = initbox();
        c.args(["wait-for-dns", "--once"])
            .arg("--resolv-conf")
            .arg(&resolv)
            .arg("--hosts-file")
            .arg(&hosts)
            .arg(name);
        run(&mut c, T)
    };
    // The short name resolves through the search list, as the application's getaddrinfo would.
    let r = sys("db");
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("127.0.6.1"), "{}", r.stderr);
    // The hosts file is consulted.
    let r = sys("static-entry");
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("127.0.7.7"), "{}", r.stderr);
    // Direct mode does neither.
    let r = run(
        initbox().args(["wait-for-dns", "--once", "--server", &d.server(), "db"]),
        T,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
}

#[test]
fn bad_input_gets_one_line_and_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "<NAME>"),
        (&["10.0.0.1"], "IP address"),
        (&["bad name"], "not allowed"),
        (&["--type", "ptr", "x.test"], "ptr"),
        (
            &["--server", "dns.google", "x.test"],
            "must be an IP address",
        ),
        (&["--server", "127.0.0.1:0", "x.test"], "port 0"),
        (&["--min-count", "0", "x.test"], "--min-count"),
    ];
    for (args, needle) in cases {
        let r = run(initbox().arg("wait-for-dns").args(*args), T);
        assert_one_line_error(&r, 2, needle);
    }
}

fn free_port_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The stand-in DNS server of tests/fixtures/dns/zone-server.py (SERVFAIL and REFUSED for chosen
/// names, which dnsmasq cannot be told to give), answering from a zone file.
struct ZoneServer {
    child: Child,
    _dir: tempfile::TempDir,
}

impl ZoneServer {
    fn start(ip: &str, port: u16, zone: &str) -> ZoneServer {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("zone"), zone).unwrap();
        let mut child = Command::new("python3")
            .arg(zone_server_script())
            .arg(dir.path().join("zone"))
            .args([ip, &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "zone server did not start on {ip}:{port}"
        );
        ZoneServer { child, _dir: dir }
    }
}

impl Drop for ZoneServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn zone_server_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dns/zone-server.py")
}

/// A zone server on port 53 of a loopback address of its own (resolv.conf cannot name a port)
/// and a resolv.conf + hosts file pointing at it.
struct SystemSetup {
    _server: ZoneServer,
    dir: tempfile::TempDir,
}

impl SystemSetup {
    fn new(third_octet: u32, resolv_rest: &str, zone: &str) -> SystemSetup {
        let ip = format!("127.{}.{}.53", 200 + third_octet, std::process::id() % 250);
        let server = ZoneServer::start(&ip, 53, zone);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("resolv.conf"),
            format!("nameserver {ip}\n{resolv_rest}"),
        )
        .unwrap();
        std::fs::write(dir.path().join("hosts"), "").unwrap();
        SystemSetup {
            _server: server,
            dir,
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut c = initbox();
        c.args(["wait-for-dns", "--once"])
            .arg("--resolv-conf")
            .arg(self.dir.path().join("resolv.conf"))
            .arg("--hosts-file")
            .arg(self.dir.path().join("hosts"))
            .args(args);
        run(&mut c, T)
    }
}

#[test]
fn servfail_on_a_search_candidate_is_not_absence() {
    // Issue 23.11: glibc's getaddrinfo answers EAI_AGAIN here (gone.a.test SERVFAIL, the other
    // candidates NXDOMAIN); the application cannot tell the name is gone, nor can initbox.
    let s = SystemSetup::new(
        1,
        "search a.test b.test\n",
        "gone.a.test SERVFAIL\nhere.b.test 10.3.0.1\n",
    );
    let r = s.run(&["--absent", "gone"]);
    assert_eq!(r.code(), 1, "a SERVFAIL is not absence: {}", r.all());
    assert!(r.stderr.contains("SERVFAIL"), "{}", r.stderr);
    // A plain NXDOMAIN on every candidate is absence.
    let r = s.run(&["--absent", "never"]);
    assert_eq!(r.code(), 0, "{}", r.all());
}

#[test]
fn a_refused_search_candidate_ends_the_search_as_glibc_does() {
    // Issue 23.12: glibc's res_search stops the search list at a REFUSED answer and tries the
    // name as given (checked with getent under this resolv.conf: see the comparison test).
    let s = SystemSetup::new(
        2,
        "search a.test b.test\n",
        "rf.a.test REFUSED\nrf.b.test 10.3.0.2\nrf2.a.test REFUSED\nrf2.b.test 10.3.0.3\nrf2 10.3.0.4\n",
    );
    let r = s.run(&["rf"]);
    assert_eq!(r.code(), 1, "glibc never reaches rf.b.test: {}", r.all());
    assert!(!r.stderr.contains("10.3.0.2"), "{}", r.stderr);
    let r = s.run(&["rf2"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stderr.contains("10.3.0.4") && !r.stderr.contains("10.3.0.3"),
        "the name as given, not the next search domain: {}",
        r.stderr
    );
}

#[test]
fn srv_expect_matches_fully_qualified_targets() {
    // Issue 23.13: SRV targets come back fully qualified (web.test.); an expected value with or
    // without the trailing dot matches, and a relative one through the search list, as the
    // README's example does for a headless Service (web-0.web -> web-0.web.ns.svc.cluster.local.).
    let d = Dnsmasq::start("127.0.0.1", 0);
    for want in ["web.test:8080", "web.test.:8080", "WEB.test.:8080"] {
        let r = run(
            direct(&d).args([
                "--once",
                "--type",
                "srv",
                "--expect",
                want,
                "_http._tcp.web.test",
            ]),
            T,
        );
        assert_eq!(r.code(), 0, "{want}: {}", r.all());
    }
    let r = run(
        direct(&d).args([
            "--once",
            "--type",
            "srv",
            "--expect",
            "web.test.:8081",
            "_http._tcp.web.test",
        ]),
        T,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    // System mode: the README's example, a relative target expanded through the search list.
    let ip = format!("127.{}.{}.53", 199, std::process::id() % 250);
    let d = Dnsmasq::start(&ip, 53);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("resolv.conf"),
        format!("nameserver {ip}\nsearch test\n"),
    )
    .unwrap();
    let mut c = initbox();
    c.args([
        "wait-for-dns",
        "--once",
        "--type",
        "srv",
        "--expect",
        "web:8080",
    ])
    .arg("--resolv-conf")
    .arg(dir.path().join("resolv.conf"))
    .arg("_http._tcp.web");
    let r = run(&mut c, T);
    assert_eq!(r.code(), 0, "{}", r.all());
    drop(d);
}

#[test]
fn a_closed_server_port_fails_each_attempt_at_once() {
    // Issue 23.14: nothing listens on the port, the kernel answers ICMP port unreachable: each
    // attempt ends at once with "connection refused", and the summary counts the attempts.
    let port = free_port_udp();
    let server = format!("127.0.0.1:{port}");
    let r = run(
        initbox().args([
            "wait-for-dns",
            "--once",
            "--attempt-timeout",
            "30s",
            "--server",
            &server,
            "x.test",
        ]),
        T,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("connection refused"), "{}", r.stderr);
    assert!(
        r.elapsed < Duration::from_secs(15),
        "not the 30 s attempt timeout: {:?}",
        r.elapsed
    );
    let r = run(
        initbox().args(["wait-for-dns", "-t", "1s", "--server", &server, "x.test"]),
        T,
    );
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(r.stderr.contains("connection refused"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("after 0 attempts") && !r.stderr.contains("none yet"),
        "{}",
        r.stderr
    );
}
