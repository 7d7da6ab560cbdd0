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

#[test]
fn a_resolver_file_that_is_not_there_is_named_with_exit_3() {
    let missing = "/nonexistent/initbox-resolv.conf";
    for args in [
        &["wait-for-dns", "--resolv-conf", missing, "example.com"][..],
        &["wait-for-dns", "--hosts-file", missing, "example.com"],
        &["wait-for-tcp", "--resolv-conf", missing, "example.com:80"],
        &["network-check", "--resolv-conf", missing, "dns:example.com"],
    ] {
        // network-check's per-attempt bound is --attempt-timeout (its --timeout is deprecated).
        let bound = if args[0] == "network-check" {
            "--attempt-timeout"
        } else {
            "--timeout"
        };
        let r = common::run(
            common::initbox().args(args).args([bound, "5s"]),
            std::time::Duration::from_secs(20),
        );
        common::assert_one_line_error(&r, 3, missing);
    }
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

#[test]
fn the_attempt_cut_short_by_the_deadline_is_counted() {
    // Issue 23.14: a silent server and a deadline shorter than the attempt timeout: the summary
    // said "after 0 attempts (last error: none yet)".
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let r = run(
        initbox().args(["wait-for-dns", "-t", "1s", "--server", &addr, "x.test"]),
        T,
    );
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(
        r.stderr
            .contains("after 1 attempt (last error: no answer before the deadline)"),
        "{}",
        r.stderr
    );
}

/// The zone every comparison case is resolved against (see zone-server.py for the format).
const COMPARISON_ZONE: &str = "\
db.a.test 10.1.0.1
db.b.test 10.1.0.2
web.b.test 10.1.0.3
web.b.test fd00::3
v6.a.test fd00::4
nd.a.test NODATA
nd.b.test 10.1.0.5
sf.a.test SERVFAIL
sf.b.test 10.1.0.6
sfgone.a.test SERVFAIL
rf.a.test REFUSED
rf.b.test 10.1.0.7
rf2.a.test REFUSED
rf2.b.test 10.1.0.8
rf2 10.1.0.9
x.y 10.1.0.10
x.y.a.test 10.1.0.11
one 10.1.0.12
one.a.test 10.1.0.13
a.b.c.d 10.1.0.14
a.b.c.d.a.test 10.1.0.15
only.c.test 10.1.0.16
hosted.a.test 10.1.0.17
nodata NODATA
d.e.a.test SERVFAIL
";

/// What glibc and initbox said about one name in one namespace.
#[derive(Debug, Default)]
struct Verdicts {
    /// getent ahosts: the addresses, empty when it did not resolve.
    glibc: Vec<String>,
    /// getaddrinfo's error code (0 when resolved): -2 EAI_NONAME, -3 EAI_AGAIN, -5 EAI_NODATA.
    gai: i32,
    initbox_code: i32,
    initbox_detail: String,
    initbox_absent_code: i32,
}

/// Run getent (glibc), getaddrinfo (through Python, for the error code) and initbox on `name` in
/// a new network + mount namespace where the zone server listens on 127.0.0.1:53 and the case's
/// resolv.conf, hosts and an nsswitch.conf of "hosts: files dns" are bind-mounted over /etc.
fn in_namespace(dir: &std::path::Path, name: &str) -> Verdicts {
    const SCRIPT: &str = r#"
set -e
D=$1; BIN=$2; SRV=$3; N=$4
ip link set lo up
python3 "$SRV" "$D/zone" 127.0.0.1 53 > "$D/ready" 2>/dev/null &
for i in $(seq 200); do grep -q ready "$D/ready" 2>/dev/null && break; sleep 0.02; done
printf 'hosts: files dns\n' > "$D/nsswitch.conf"
mount --bind "$D/resolv.conf" /etc/resolv.conf
mount --bind "$D/hosts" /etc/hosts
mount --bind "$D/nsswitch.conf" /etc/nsswitch.conf
set +e
echo "GETENT $(getent ahosts "$N" | awk '{print $1}' | sort -u | tr '\n' ' ')"
python3 -c 'import socket,sys
try: socket.getaddrinfo(sys.argv[1], None); print("GAI 0")
except socket.gaierror as e: print("GAI", e.errno)' "$N"
"$BIN" wait-for-dns --once --attempt-timeout 5s "$N" 2> "$D/initbox.err"
echo "INITBOX $?"
echo "DETAIL $(grep -o 'detail=.*' "$D/initbox.err")"
"$BIN" wait-for-dns --once --attempt-timeout 5s --absent "$N" 2>/dev/null
echo "ABSENT $?"
kill %1
"#;
    let r = run(
        Command::new("unshare")
            .args(["-n", "-m", "sh", "-c", SCRIPT, "sh"])
            .arg(dir)
            .arg(env!("CARGO_BIN_EXE_initbox"))
            .arg(zone_server_script())
            .arg(name),
        T,
    );
    let mut v = Verdicts::default();
    for line in r.stdout.lines() {
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "GETENT" => v.glibc = rest.split_whitespace().map(str::to_string).collect(),
            "GAI" => v.gai = rest.trim().parse().unwrap_or(99),
            "INITBOX" => v.initbox_code = rest.trim().parse().unwrap_or(99),
            "DETAIL" => v.initbox_detail = rest.trim().to_string(),
            "ABSENT" => v.initbox_absent_code = rest.trim().parse().unwrap_or(99),
            _ => {}
        }
    }
    assert!(
        r.stdout.contains("ABSENT"),
        "the namespace script ran to its end: {}",
        r.all()
    );
    v
}

/// The addresses initbox printed in its "ready" line (`detail=10.0.0.1, fd00::1`).
fn detail_addresses(detail: &str) -> Vec<String> {
    let mut v: Vec<String> = detail
        .trim_start_matches("detail=")
        .split(", ")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    v.sort();
    v
}

#[test]
fn system_mode_agrees_with_glibc_getaddrinfo() {
    // glibc itself is the reference: getent ahosts and getaddrinfo under the same resolv.conf and
    // hosts file, in a namespace of their own because resolv.conf cannot name a port (glibc always
    // asks port 53). The zone server is a stand-in (tests/fixtures/dns/zone-server.py): dnsmasq
    // cannot answer SERVFAIL or REFUSED for chosen names.
    if unsafe { libc_geteuid() } != 0 || Command::new("unshare").arg("--help").output().is_err() {
        eprintln!("SKIPPED system_mode_agrees_with_glibc_getaddrinfo: needs root and unshare(1)");
        return;
    }
    let search = "nameserver 127.0.0.1\nsearch a.test b.test\n";
    let ndots0 = "nameserver 127.0.0.1\nsearch a.test b.test\noptions ndots:0\n";
    let ndots5 = "nameserver 127.0.0.1\nsearch a.test b.test\noptions ndots:5\n";
    let repeated = "nameserver 127.0.0.1\nsearch c.test\nsearch a.test b.test\n";
    let domain_last = "nameserver 127.0.0.1\nsearch c.test b.test\ndomain a.test\n";
    let search_last = "nameserver 127.0.0.1\ndomain c.test\nsearch b.test\n";
    let hosts = "10.2.0.1 hostsonly\n10.2.0.2 hosted\n";
    // (resolv.conf, hosts, name, initbox stricter than glibc about absence)
    let cases: &[(&str, &str, &str, bool)] = &[
        (search, "", "db", false),     // first search domain
        (search, "", "web", false),    // second search domain, A + AAAA
        (search, "", "v6", false),     // AAAA only
        (search, "", "nd", false),     // NODATA on a.test: glibc goes on
        (search, "", "gone", false),   // NXDOMAIN everywhere
        (search, "", "sf", false),     // SERVFAIL on a.test: glibc goes on
        (search, "", "sfgone", false), // SERVFAIL, then NXDOMAIN: EAI_AGAIN (23.11)
        // REFUSED ends the search list (23.12); glibc's answer is then the name as given
        // (NXDOMAIN), but a refusing server proves nothing: initbox does not call it absence.
        (search, "", "rf", true),
        (search, "", "rf2", false), // ... and the name as given is tried
        (search, "", "x.y", false), // ndots 1: as given first
        (ndots5, "", "x.y", false), // ndots 5: search list first
        (ndots0, "", "one", false), // ndots 0: a single label as given first
        (search, "", "one", false), // ndots 1: search list first
        (ndots5, "", "a.b.c.d", false), // 3 dots < 5
        (search, "", "a.b.c.d", false), // 3 dots >= 1
        (search, "", "db.a.test.", false), // trailing dot: no search
        (search, "", "db.", false), // trailing dot: no search, NXDOMAIN
        (search, hosts, "hostsonly", false), // hosts file
        (search, hosts, "hosted", false), // hosts file before DNS
        (search, hosts, "hostsonly.", false), // a trailing dot never matches the hosts file
        (search, "", "nodata", false), // NODATA for the name as given
        (repeated, "", "only", false), // the last search line wins
        (domain_last, "", "db", false), // a later domain line replaces search
        (search_last, "", "db", false), // a later search line replaces domain
        // glibc: d.e as given NXDOMAIN first, so EAI_NONAME although d.e.a.test SERVFAILs;
        // initbox does not call that absence (a failing server proves nothing).
        (search, "", "d.e", true),
    ];
    let mut disagreements = Vec::new();
    for (resolv, hosts_file, name, stricter) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("resolv.conf"), resolv).unwrap();
        std::fs::write(dir.path().join("hosts"), hosts_file).unwrap();
        std::fs::write(dir.path().join("zone"), COMPARISON_ZONE).unwrap();
        let v = in_namespace(dir.path(), name);
        let mut glibc = v.glibc.clone();
        glibc.sort();
        let glibc_resolved = !glibc.is_empty();
        let initbox_resolved = v.initbox_code == 0;
        let glibc_absent = v.gai == -2 || v.gai == -5;
        let initbox_absent = v.initbox_absent_code == 0;
        let case = format!("{name} under {resolv:?} hosts {hosts_file:?}");
        if glibc_resolved != initbox_resolved
            || (glibc_resolved && detail_addresses(&v.initbox_detail) != glibc)
        {
            disagreements.push(format!("{case}: glibc {glibc:?}, initbox {v:?}"));
        }
        let expected_absent = glibc_absent && !stricter;
        if initbox_absent != expected_absent {
            disagreements.push(format!(
                "{case}: --absent {initbox_absent}, glibc getaddrinfo error {} ({v:?})",
                v.gai
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "initbox and glibc disagree:\n{}",
        disagreements.join("\n")
    );
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
