//! wait-for-tcp against real sockets: late listeners, IPv6, invert, unresolvable names, a host
//! that drops packets (a network namespace), signals (also as PID 1), exec after success, the
//! docker-compose-wait drop-in, logs and bad input.

mod common;
use common::*;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

fn spawn(cmd: &mut Command) -> std::process::Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_listener_opened_late_is_noticed_within_tens_of_milliseconds() {
    let port = free_port();
    let child = spawn(initbox().args(["wait-for-tcp", "-t", "20s", &format!("127.0.0.1:{port}")]));
    std::thread::sleep(Duration::from_millis(400));
    let opened = Instant::now();
    let _l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let r = wait_child(child, T);
    let noticed = opened.elapsed();
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("ready"), "{}", r.stderr);
    // Steady polling is at most 100 ms apart; allow generous scheduling slack on a busy machine.
    assert!(
        noticed < Duration::from_secs(2),
        "noticed after {noticed:?}"
    );
}

#[test]
fn ipv6_loopback_and_every_resolved_address_are_tried() {
    let l6 = TcpListener::bind("[::1]:0").unwrap();
    let port = l6.local_addr().unwrap().port();
    let r = run(
        initbox().args(["wait-for-tcp", "--once", &format!("[::1]:{port}")]),
        T,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    // `localhost` resolves to 127.0.0.1 and ::1; only ::1 listens, and that must be enough.
    let hosts = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(hosts.path(), "127.0.0.1 localhost\n::1 localhost\n").unwrap();
    let r = run(
        initbox().args([
            "wait-for-tcp",
            "--once",
            "--hosts-file",
            hosts.path().to_str().unwrap(),
            &format!("localhost:{port}"),
        ]),
        T,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("[::1]"), "{}", r.stderr);
}

#[test]
fn once_reports_closed_ports_with_exit_1() {
    let port = free_port();
    let r = run(
        initbox().args(["wait-for-tcp", "--once", &format!("127.0.0.1:{port}")]),
        T,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("connection refused"), "{}", r.stderr);
}

/// 12.10: the negative answer of `--once` is the answer (exit 1), not an error: an INFO line,
/// nothing at all under `-q`.
#[test]
fn once_negative_answer_is_no_error_and_silent_under_quiet() {
    let target = format!("127.0.0.1:{}", free_port());
    let r = run(initbox().args(["wait-for-tcp", "--once", &target]), T);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(!r.stderr.contains("ERROR"), "{}", r.stderr);
    assert!(
        r.stderr.contains("INFO") && r.stderr.contains(&target),
        "{}",
        r.stderr
    );
    for quiet in [&["-q"][..], &["--quiet"]] {
        let r = run(
            initbox()
                .args(["wait-for-tcp", "--once"])
                .args(quiet)
                .arg(&target),
            T,
        );
        assert_eq!(r.code(), 1, "{}", r.all());
        assert_eq!(r.all(), "", "{quiet:?} printed something");
    }
    // The same engine answers for `wait-for` (HTTP, TCP, databases).
    for url in [format!("http://{target}/"), format!("tcp://{target}")] {
        let r = run(initbox().args(["wait-for", "--once", "-q", &url]), T);
        assert_eq!(r.code(), 1, "{}", r.all());
        assert_eq!(r.all(), "", "wait-for -q printed something");
    }
    // An error that is not the answer still shows under -q.
    let r = run(
        initbox().args(["wait-for-tcp", "--once", "-q", "host:notaport"]),
        T,
    );
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(!r.stderr.is_empty());
}

#[test]
fn any_is_satisfied_by_one_open_target() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = l.local_addr().unwrap().port();
    let closed = free_port();
    let r = run(
        initbox().args([
            "wait-for-tcp",
            "--any",
            "-t",
            "10s",
            &format!("127.0.0.1:{closed}"),
            &format!("127.0.0.1:{open}"),
        ]),
        T,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
}

#[test]
fn invert_waits_until_the_port_closes() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let target = format!("127.0.0.1:{port}");
    // Still open: the deadline passes with 124 and says it is still available.
    let r = run(
        initbox().args(["wait-for-tcp", "--invert", "-t", "300ms", &target]),
        T,
    );
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(r.stderr.contains("still available"), "{}", r.stderr);
    let child = spawn(initbox().args(["wait-for-tcp", "--invert", "-t", "20s", &target]));
    std::thread::sleep(Duration::from_millis(300));
    drop(l);
    let r = wait_child(child, T);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("gone"), "{}", r.stderr);
}

#[test]
fn unresolvable_names_are_retried_until_the_deadline() {
    let empty = tempfile::NamedTempFile::new().unwrap();
    let r = run(
        initbox().args([
            "wait-for-tcp",
            "-t",
            "400ms",
            "--resolv-conf",
            empty.path().to_str().unwrap(),
            "--hosts-file",
            empty.path().to_str().unwrap(),
            "no-such-host.invalid:80",
        ]),
        T,
    );
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(
        r.stderr.contains("lookup no-such-host.invalid"),
        "{}",
        r.stderr
    );
    // Retried, not aborted on the first failure.
    assert!(attempts(&r.stderr) > 1, "{}", r.stderr);
}

/// The attempt count in the final "not ready after N attempts" line.
fn attempts(stderr: &str) -> u32 {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains(" attempt"))
        .unwrap_or("");
    let before = line.split(" attempt").next().unwrap_or("");
    before
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A test host in a network namespace of its own: packets routed to `dropped` reach the
/// namespace, which neither owns nor forwards that address, so they vanish without an answer.
struct Blackhole {
    ns: String,
    veth: String,
    dropped: &'static str,
}

impl Blackhole {
    fn new() -> Blackhole {
        let id = std::process::id() % 100_000;
        let ns = format!("ibtcp{id}");
        let veth = format!("ibt{id}a");
        let peer = format!("ibt{id}b");
        let sh = |args: &str| {
            let ok = Command::new("sh")
                .arg("-c")
                .arg(args)
                .status()
                .unwrap()
                .success();
            assert!(
                ok,
                "network set-up failed: {args} (the tests run as root with iproute2)"
            );
        };
        sh(&format!("ip netns add {ns}"));
        let bh = Blackhole {
            ns: ns.clone(),
            veth: veth.clone(),
            dropped: "198.18.200.100",
        };
        sh(&format!("ip link add {veth} type veth peer name {peer}"));
        sh(&format!("ip link set {peer} netns {ns}"));
        sh(&format!(
            "ip addr add 198.18.200.1/30 dev {veth} && ip link set {veth} up"
        ));
        sh(&format!(
            "ip -n {ns} addr add 198.18.200.2/30 dev {peer} && ip -n {ns} link set {peer} up"
        ));
        sh(&format!(
            "ip route replace {}/32 via 198.18.200.2",
            bh.dropped
        ));
        bh
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["route", "del", &format!("{}/32", self.dropped)])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

#[test]
fn the_per_attempt_timeout_bounds_a_host_that_drops_packets() {
    let bh = Blackhole::new();
    let r = run(
        initbox().args([
            "wait-for-tcp",
            "-t",
            "2s",
            "--attempt-timeout",
            "300ms",
            &format!("{}:80", bh.dropped),
        ]),
        T,
    );
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(r.stderr.contains("no answer within 300ms"), "{}", r.stderr);
    // Several attempts fit in the deadline: one dropped SYN does not eat the whole wait.
    assert!(attempts(&r.stderr) >= 3, "{}", r.stderr);
    assert!(r.elapsed < Duration::from_secs(4), "{:?}", r.elapsed);
}

fn signal_mid_wait(sig: i32, expect: i32) {
    let port = free_port();
    let mut child =
        spawn(initbox().args(["wait-for-tcp", "-t", "60s", &format!("127.0.0.1:{port}")]));
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    unsafe { libc::kill(child.id() as i32, sig) };
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "still running after the signal"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(expect));
    // 100 ms is the promise; the slack is for a loaded 2-core CI machine.
    assert!(took < Duration::from_millis(400), "took {took:?}");
}

#[test]
fn sigterm_ends_a_wait_at_once_with_143() {
    signal_mid_wait(libc::SIGTERM, 143);
}

#[test]
fn sigint_ends_a_wait_at_once_with_130() {
    signal_mid_wait(libc::SIGINT, 130);
}

#[test]
fn sigterm_works_when_initbox_is_pid_1() {
    // A new PID namespace makes initbox PID 1, where signals without a handler are ignored.
    let port = free_port();
    let mut child = spawn(
        Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "--"])
            .arg(env!("CARGO_BIN_EXE_initbox"))
            .args(["wait-for-tcp", "-t", "60s", &format!("127.0.0.1:{port}")]),
    );
    // Find initbox: the child of unshare.
    let inner = (0..200)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(10));
            let kids = std::fs::read_to_string(format!(
                "/proc/{}/task/{}/children",
                child.id(),
                child.id()
            ))
            .ok()?;
            kids.split_whitespace().next()?.parse::<i32>().ok()
        })
        .expect("initbox started under unshare");
    let status = std::fs::read_to_string(format!("/proc/{inner}/status")).unwrap();
    assert!(
        status.contains("NSpid:")
            && status
                .lines()
                .any(|l| l.starts_with("NSpid:") && l.trim_end().ends_with("\t1")),
        "initbox is PID 1 in its namespace: {status}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    unsafe { libc::kill(inner, libc::SIGTERM) };
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "PID 1 ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    assert!(
        sent.elapsed() < Duration::from_millis(400),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(code, Some(143));
}

#[test]
fn after_success_the_command_replaces_initbox() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let child = spawn(initbox().args([
        "wait-for-tcp",
        &format!("127.0.0.1:{port}"),
        "--",
        "sh",
        "-c",
        "echo pid=$$; exit 7",
    ]));
    let pid = child.id();
    let r = wait_child(child, T);
    assert_eq!(
        r.code(),
        7,
        "the command's exit code comes back: {}",
        r.all()
    );
    assert_eq!(
        r.stdout.trim(),
        format!("pid={pid}"),
        "same PID (execve, not a child)"
    );
}

#[test]
fn after_a_failed_wait_the_command_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let r = run(
        initbox().args([
            "wait-for-tcp",
            "-t",
            "200ms",
            &format!("127.0.0.1:{}", free_port()),
            "--",
            "touch",
            marker.to_str().unwrap(),
        ]),
        T,
    );
    assert_eq!(r.code(), 124);
    assert!(
        !marker.exists(),
        "the follow-up command ran after a failed wait"
    );
}

#[test]
fn a_missing_or_unexecutable_command_gives_127_or_126() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
    let r = run(
        initbox().args(["wait-for-tcp", &target, "--", "/no/such/program"]),
        T,
    );
    assert_eq!(r.code(), 127, "{}", r.all());
    assert!(r.stderr.contains("not found"));
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("x.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let r = run(
        initbox().args(["wait-for-tcp", &target, "--", script.to_str().unwrap()]),
        T,
    );
    assert_eq!(r.code(), 126, "{}", r.all());
}

#[test]
fn docker_compose_wait_variables_are_a_drop_in() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = l.local_addr().unwrap().port();
    let r = run(
        initbox()
            .arg("wait-for-tcp")
            .env("WAIT_HOSTS", format!("127.0.0.1:{open}, localhost:{open}"))
            .env("WAIT_TIMEOUT", "5"),
        T,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let r = run(
        initbox()
            .arg("wait-for-tcp")
            .env("WAIT_HOSTS", format!("127.0.0.1:{}", free_port()))
            .env("WAIT_TIMEOUT", "1")
            .env("WAIT_HOST_CONNECT_TIMEOUT", "1")
            .env("WAIT_SLEEP_INTERVAL", "1"),
        T,
    );
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(r.stderr.contains("timed out after 1.00s"), "{}", r.stderr);
    // One attempt per second: the sleep interval was honoured (about 2 attempts in 1 s).
    assert!(
        r.stderr.contains("after 1 attempt") || r.stderr.contains("after 2 attempts"),
        "{}",
        r.stderr
    );
}

#[test]
fn json_logs_are_one_object_per_line_with_fields() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
    let r = run(
        initbox().args(["wait-for-tcp", "--log-format", "json", &target]),
        T,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let mut saw_ready = false;
    for line in r.stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON object per line");
        if v["message"] == "ready" {
            assert_eq!(v["target"], target.as_str());
            assert_eq!(v["level"], "INFO");
            saw_ready = true;
        }
    }
    assert!(saw_ready, "{}", r.stderr);
}

#[test]
fn progress_lines_appear_during_long_waits_and_quiet_hides_them() {
    let target = format!("127.0.0.1:{}", free_port());
    let r = run(
        initbox().args([
            "wait-for-tcp",
            "-t",
            "1s",
            "--progress-interval",
            "200ms",
            &target,
        ]),
        T,
    );
    assert_eq!(r.code(), 124);
    let progress = r
        .stderr
        .lines()
        .filter(|l| l.contains("still waiting"))
        .count();
    assert!(progress >= 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("attempts=")
            && r.stderr.contains("elapsed=")
            && r.stderr.contains("last_error=")
    );
    let r = run(
        initbox().args([
            "wait-for-tcp",
            "-q",
            "-t",
            "1s",
            "--progress-interval",
            "200ms",
            &target,
        ]),
        T,
    );
    assert!(!r.stderr.contains("still waiting"), "{}", r.stderr);
    assert!(
        r.stderr.contains("timed out"),
        "errors still show with -q: {}",
        r.stderr
    );
}

#[test]
fn the_failure_reason_goes_to_the_termination_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let target = format!("127.0.0.1:{}", free_port());
    let r = run(
        initbox()
            .args(["wait-for-tcp", "-t", "200ms", &target])
            .env("INITBOX_TERMINATION_LOG", &log),
        T,
    );
    assert_eq!(r.code(), 124);
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(
        written.contains("timed out") && written.contains(&target),
        "{written}"
    );
}

#[test]
fn bad_input_gets_one_line_and_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "<TARGET>"),
        (&["host:notaport"], "not a number"),
        (&["host:0"], "port 0"),
        (&["host:70000"], "out of range"),
        (&["::1:80"], "brackets"),
        (&["-t", "soon", "h:1"], "'soon' is not a duration"),
        (&["--attempt-timeout=-5s", "h:1"], "--attempt-timeout"),
        (&["--frobnicate", "h:1"], "--frobnicate"),
        (
            &["--interval", "1s", "--max-interval", "10ms", "h:1"],
            "--max-interval",
        ),
    ];
    for (args, needle) in cases {
        let r = run(initbox().arg("wait-for-tcp").args(*args), T);
        assert_one_line_error(&r, 2, needle);
    }
}

#[test]
fn boolean_variables_accept_the_usual_spellings() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
    let closed = format!("127.0.0.1:{}", free_port());
    for yes in ["1", "yes", "true", "on"] {
        let r = run(
            initbox()
                .args(["wait-for-tcp", &closed, &open])
                .env("INITBOX_ANY", yes)
                .env("INITBOX_ONCE", yes),
            T,
        );
        assert_eq!(r.code(), 0, "INITBOX_ANY={yes}: {}", r.all());
    }
    let r = run(
        initbox()
            .args(["wait-for-tcp", &closed, &open])
            .env("INITBOX_ANY", "0")
            .env("INITBOX_ONCE", "yes"),
        T,
    );
    assert_eq!(r.code(), 1, "INITBOX_ANY=0 means all: {}", r.all());
}
