//! End-to-end tests of `initbox wait-for icmp://HOST`: real ICMP echo through the kernel (a ping
//! socket where net.ipv4.ping_group_range allows the caller's group, else a raw socket).

mod common;

use std::time::{Duration, Instant};

use common::{assert_one_line_error, initbox, run};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_reachable_host_answers_and_the_command_runs() {
    let r = run(
        initbox().args([
            "wait-for",
            "-t",
            "10s",
            "icmp://127.0.0.1",
            "--",
            "echo",
            "reachable",
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(r.stdout.trim(), "reachable");
    let r = run(
        initbox().args(["wait-for", "--once", "-v", "icmp://localhost"]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
}

#[test]
fn a_host_that_never_answers_times_out() {
    // In a network namespace of its own (unshare -n: no route, loopback down) no echo can be
    // answered, whatever the host's network does with TEST-NET-1 (RFC 5737).
    let started = Instant::now();
    let mut c = std::process::Command::new("unshare");
    c.arg("-n").arg(env!("CARGO_BIN_EXE_initbox")).args([
        "wait-for",
        "-t",
        "1500ms",
        "icmp://192.0.2.1",
    ]);
    let r = run(&mut c, LIMIT);
    assert_eq!(r.code(), 124, "{}", r.all());
    assert!(r.stderr.contains("icmp://192.0.2.1"), "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[test]
fn bad_icmp_targets_are_usage_errors() {
    for (t, needle) in [
        ("icmp://", "expected icmp://HOST"),
        ("icmp://h/x", "expected icmp://HOST"),
    ] {
        let r = run(initbox().args(["wait-for", t]), LIMIT);
        assert_one_line_error(&r, 2, needle);
    }
}

#[test]
fn without_ping_sockets_or_cap_net_raw_the_reason_is_exit_4() {
    // As nobody, with no capabilities: a raw socket is refused; a ping socket only where
    // net.ipv4.ping_group_range holds group 65534.
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
    let bounds: Vec<u64> = range
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let allowed = bounds[0] <= 65534 && 65534 <= bounds[1];
    let mut c = std::process::Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
    ])
    .arg(env!("CARGO_BIN_EXE_initbox"))
    .args(["wait-for", "-t", "5s", "icmp://127.0.0.1"]);
    let r = run(&mut c, LIMIT);
    if allowed {
        assert_eq!(r.code(), 0, "{}", r.all());
    } else {
        assert_eq!(r.code(), 4, "{}", r.all());
        assert!(
            r.stderr.contains("net.ipv4.ping_group_range"),
            "{}",
            r.stderr
        );
    }
}
