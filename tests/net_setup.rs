//! End-to-end tests of `initbox net-setup` in network namespaces created here (iproute2), read
//! back with Debian's `nft`: outbound connections redirected to a local proxy except for the
//! excluded uid, port and network; inbound connections from a client namespace redirected
//! except for the excluded port; allow/deny; the table replaced, never duplicated, on re-run;
//! `nft list ruleset` equal to what `--dry-run` printed; `--check` and `--cleanup`; sysctls
//! set inside the namespace and not outside; NET_ADMIN missing and a read-only /proc/sys.
//!
//! Needs root and `bash tests/run-all.sh`'s set-up (tests/setup/24-net-setup.sh).

mod common;

use std::time::Duration;

use common::netns::{Netns, pair, sh};
use common::{Run, assert_one_line_error, initbox, run};

const LIMIT: Duration = Duration::from_secs(60);

/// `initbox net-setup ARGS` inside `ns`.
fn net_setup(ns: &Netns, args: &[&str]) -> Run {
    let bin = initbox().get_program().to_owned();
    run(ns.command(bin).arg("net-setup").args(args), LIMIT)
}

fn nft_list(ns: &Netns) -> String {
    let out = sh(&["ip", "netns", "exec", &ns.name, "nft", "list", "ruleset"]);
    String::from_utf8(out.stdout).unwrap()
}

fn dry_run(args: &[&str]) -> String {
    let r = run(
        initbox().arg("net-setup").args(args).arg("--dry-run"),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    r.stdout
}

const POD: &str = "10.224.1.1";
const PEER: &str = "10.224.1.2";
const PEER_EXCLUDED: &str = "10.224.1.3";

#[test]
fn outbound_connections_go_to_the_proxy_except_the_excluded_uid_port_and_network() {
    let (pod, peer) = pair(
        "nso",
        &[&format!("{POD}/24")],
        &[&format!("{PEER}/24"), &format!("{PEER_EXCLUDED}/24")],
    );
    peer.serve("0.0.0.0:8080", "server");
    peer.serve("0.0.0.0:9090", "server");
    pod.serve("127.0.0.1:15001", "proxy");
    let target = format!("{PEER}:8080");
    // Before: straight to the server (the test can tell the two apart).
    assert_eq!(pod.fetch(&target).unwrap(), format!("server {target}"));

    let spec = [
        "--redirect-outbound",
        "15001",
        "--exclude-uid",
        "4321",
        "--exclude-outbound-port",
        "9090",
        "--exclude-outbound-cidr",
        &format!("{PEER_EXCLUDED}/32"),
    ];
    let r = net_setup(&pod, &spec);
    assert_eq!(r.code(), 0, "{}", r.all());

    // Root's connection is redirected; the proxy can still tell where it was going.
    assert_eq!(pod.fetch(&target).unwrap(), format!("proxy {target}"));
    // Any uid but the excluded one is redirected too.
    assert_eq!(
        pod.fetch_as(1000, PEER, 8080).as_deref(),
        Some(format!("proxy {target}").as_str())
    );
    // The proxy's own uid goes straight out.
    assert_eq!(
        pod.fetch_as(4321, PEER, 8080).as_deref(),
        Some(format!("server {target}").as_str())
    );
    // So do the excluded port and the excluded network.
    assert_eq!(
        pod.fetch(&format!("{PEER}:9090")).unwrap(),
        format!("server {PEER}:9090")
    );
    assert_eq!(
        pod.fetch(&format!("{PEER_EXCLUDED}:8080")).unwrap(),
        format!("server {PEER_EXCLUDED}:8080")
    );
    // Loopback is never redirected.
    pod.serve("127.0.0.1:7000", "local");
    assert_eq!(pod.fetch("127.0.0.1:7000").unwrap(), "local 127.0.0.1:7000");
}

#[test]
fn inbound_connections_from_a_client_namespace_go_to_the_proxy_except_the_excluded_port() {
    let (pod, client) = pair("nsi", &[&format!("{POD}/24")], &[&format!("{PEER}/24")]);
    pod.serve("0.0.0.0:80", "app");
    pod.serve("0.0.0.0:15090", "health");
    pod.serve("0.0.0.0:15006", "inbound-proxy");
    let app = format!("{POD}:80");
    assert_eq!(client.fetch(&app).unwrap(), format!("app {app}"));

    let r = net_setup(
        &pod,
        &[
            "--redirect-inbound",
            "15006",
            "--exclude-inbound-port",
            "15090",
        ],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(client.fetch(&app).unwrap(), format!("inbound-proxy {app}"));
    let health = format!("{POD}:15090");
    assert_eq!(client.fetch(&health).unwrap(), format!("health {health}"));

    // Only listed ports, with --inbound-port: 80 is redirected, 15090 is not.
    let r = net_setup(
        &pod,
        &["--redirect-inbound", "15006", "--inbound-port", "80"],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(client.fetch(&app).unwrap(), format!("inbound-proxy {app}"));
    assert_eq!(client.fetch(&health).unwrap(), format!("health {health}"));
}

#[test]
fn allow_is_an_exception_to_deny() {
    let (pod, peer) = pair(
        "nsf",
        &[&format!("{POD}/24")],
        &[&format!("{PEER}/24"), &format!("{PEER_EXCLUDED}/24")],
    );
    peer.serve("0.0.0.0:8080", "server");
    peer.serve("0.0.0.0:9090", "server");
    for to in [format!("{PEER}:9090"), format!("{PEER_EXCLUDED}:8080")] {
        assert_eq!(pod.fetch(&to).unwrap(), format!("server {to}"));
    }
    let r = net_setup(
        &pod,
        &[
            "--deny-destination",
            "10.224.0.0/16",
            "--allow-destination",
            &format!("{PEER}:8080"),
        ],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let allowed = format!("{PEER}:8080");
    assert_eq!(pod.fetch(&allowed).unwrap(), format!("server {allowed}"));
    // The same server's other port is dropped (its SYNs never leave), and so is the whole
    // denied network's other address; before the rules both answered.
    assert!(pod.cannot_connect(&format!("{PEER}:9090"), Duration::from_secs(2)));
    assert!(pod.cannot_connect(&format!("{PEER_EXCLUDED}:8080"), Duration::from_secs(2)));
    // --cleanup lifts it.
    let r = net_setup(&pod, &["--cleanup"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let other = format!("{PEER}:9090");
    assert_eq!(pod.fetch(&other).unwrap(), format!("server {other}"));
}

#[test]
fn the_table_is_replaced_on_rerun_and_listed_exactly_as_dry_run_printed() {
    let pod = Netns::new("nsr");
    let first: &[&str] = &[
        "--redirect-outbound",
        "15001",
        "--exclude-uid",
        "1337",
        "--exclude-outbound-cidr",
        "10.16.3.0/12,fd00::/7,192.0.2.1",
        "--redirect-inbound",
        "15006",
        "--exclude-inbound-port",
        "15090,15021",
        "--deny-destination",
        "169.254.169.254,[2001:db8::/32]:53",
        "--allow-destination",
        "169.254.169.254:80",
    ];
    let printed = dry_run(first);
    assert!(printed.starts_with("table inet initbox {\n"), "{printed}");
    // nft's own spelling of what was given: the network normalized, one address without /32.
    assert!(
        printed.contains("\t\tip daddr 10.16.0.0/12 return\n"),
        "{printed}"
    );
    assert!(
        printed.contains("\t\tip6 daddr fc00::/7 return\n"),
        "{printed}"
    );
    assert!(
        printed.contains("\t\tip daddr 192.0.2.1 return\n"),
        "{printed}"
    );

    for _ in 0..2 {
        let r = net_setup(&pod, first);
        assert_eq!(r.code(), 0, "{}", r.all());
        assert_eq!(nft_list(&pod), printed, "nft lists what --dry-run printed");
    }
    let r = net_setup(&pod, &[first, &["--check"]].concat());
    assert_eq!(r.code(), 0, "{}", r.all());

    // Another spec replaces the table: nothing of the first is left.
    let second: &[&str] = &["--redirect-outbound", "15100", "--exclude-uid", "99"];
    let r = net_setup(&pod, second);
    assert_eq!(r.code(), 0, "{}", r.all());
    let listed = nft_list(&pod);
    assert_eq!(listed, dry_run(second));
    assert!(!listed.contains("15001") && !listed.contains("redirect_inbound"));
    // The first spec is no longer in place.
    let r = net_setup(&pod, &[first, &["--check"]].concat());
    assert_one_line_error(&r, 1, "not in place");

    // --check sees a rule added behind its back, and a table deleted.
    sh(&[
        "ip",
        "netns",
        "exec",
        &pod.name,
        "nft",
        "add",
        "rule",
        "inet",
        "initbox",
        "redirect_outbound",
        "tcp",
        "dport",
        "22",
        "return",
    ]);
    let r = net_setup(&pod, &[second, &["--check"]].concat());
    assert_one_line_error(&r, 1, "redirect_outbound has 1 rule(s) more than the spec");
    let r = net_setup(&pod, second);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        nft_list(&pod),
        dry_run(second),
        "re-run removes the extra rule"
    );

    // Another table of the namespace is never touched; --cleanup removes only initbox's.
    sh(&[
        "ip", "netns", "exec", &pod.name, "nft", "add", "table", "ip", "other",
    ]);
    let r = net_setup(&pod, &["--cleanup"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(nft_list(&pod), "table ip other {\n}\n");
    let r = net_setup(&pod, &[second, &["--check"]].concat());
    assert_one_line_error(&r, 1, "no table inet initbox");
    let r = net_setup(&pod, &["--cleanup"]);
    assert_eq!(
        r.code(),
        0,
        "a second cleanup has nothing to do: {}",
        r.all()
    );
}

#[test]
fn a_yaml_spec_and_its_flags_agree_or_are_refused() {
    let pod = Netns::new("nsy");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("net.yaml");
    std::fs::write(
        &file,
        "# the proxy-init pattern\n\
         redirect-outbound: 15001\n\
         exclude-uids: [1337]\n\
         exclude-outbound-ports: [22]\n\
         redirect-inbound: 15006\n\
         inbound-ports: ['*']\n\
         exclude-inbound-ports: [15090]\n\
         deny-destinations: [169.254.169.254]\n\
         sysctls:\n  net.ipv4.ip_local_port_range: 20000 30000\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let flags = dry_run(&[
        "--redirect-outbound",
        "15001",
        "--exclude-uid",
        "1337",
        "--exclude-outbound-port",
        "22",
        "--redirect-inbound",
        "15006",
        "--exclude-inbound-port",
        "15090",
        "--deny-destination",
        "169.254.169.254",
    ]);
    assert_eq!(
        dry_run(&["--file", f]),
        flags,
        "the file and the flags say the same"
    );
    let r = net_setup(&pod, &["--file", f]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(nft_list(&pod), flags);
    let r = net_setup(&pod, &["--file", f, "--check"]);
    assert_eq!(r.code(), 0, "{}", r.all());

    // A flag that contradicts the file is a usage error; an unknown key is invalid input.
    let r = run(
        initbox().args([
            "net-setup",
            "--file",
            f,
            "--redirect-outbound",
            "9",
            "--dry-run",
        ]),
        LIMIT,
    );
    assert_one_line_error(&r, 2, "disagree");
    std::fs::write(&file, "redirect-outbond: 15001\n").unwrap();
    let r = run(
        initbox().args(["net-setup", "--file", f, "--dry-run"]),
        LIMIT,
    );
    assert_one_line_error(&r, 3, "redirect-outbond");
    assert_eq!(r.stdout, "", "nothing printed for a bad file");
}

#[test]
fn sysctls_are_set_inside_the_namespace_and_not_outside() {
    let pod = Netns::new("nss");
    let key = "/proc/sys/net/ipv4/ip_local_port_range";
    let host_before = std::fs::read_to_string(key).unwrap();
    let want = if host_before.split_whitespace().next() == Some("21000") {
        "22000 31000"
    } else {
        "21000 31000"
    };
    let set = format!("net.ipv4.ip_local_port_range={want}");
    let r = net_setup(
        &pod,
        &["--sysctl", &set, "--sysctl", "net.core.somaxconn=1234"],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let inside = |path: &str| {
        let out = sh(&["ip", "netns", "exec", &pod.name, "cat", path]);
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(inside(key), want);
    assert_eq!(inside("/proc/sys/net/core/somaxconn"), "1234");
    assert_eq!(
        std::fs::read_to_string(key).unwrap(),
        host_before,
        "the host's is untouched"
    );
    let r = net_setup(&pod, &["--sysctl", &set, "--check"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    // A re-run changes nothing and says so.
    let r = net_setup(&pod, &["--sysctl", &set]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("1 already in place"), "{}", r.stderr);

    sh(&[
        "ip",
        "netns",
        "exec",
        &pod.name,
        "sysctl",
        "-qw",
        "net.core.somaxconn=999",
    ]);
    let r = net_setup(&pod, &["--sysctl", "net.core.somaxconn=1234", "--check"]);
    assert_one_line_error(&r, 1, "net.core.somaxconn is 999, not 1234");

    // An unknown key is refused with the close names, before anything is changed.
    let r = net_setup(
        &pod,
        &[
            "--sysctl",
            "net.core.somaxconn=1",
            "--sysctl",
            "net.core.somaxcon=1",
        ],
    );
    assert_one_line_error(&r, 3, "close names here: net.core.somaxconn");
    assert_eq!(inside("/proc/sys/net/core/somaxconn"), "999");
    // A node-level key needs --node-sysctls; a value the kernel refuses is invalid input.
    let r = net_setup(&pod, &["--sysctl", "vm.max_map_count=262144"]);
    assert_one_line_error(&r, 2, "--node-sysctls");
    let r = net_setup(&pod, &["--sysctl", "net.ipv4.ip_forward=banana"]);
    assert_one_line_error(&r, 3, "net.ipv4.ip_forward");
}

#[test]
fn without_net_admin_or_with_a_read_only_proc_sys_it_exits_4_and_changes_nothing() {
    let pod = Netns::new("nsc");
    let bin = initbox().get_program().to_owned();
    // Root, as in a container that was not given NET_ADMIN.
    let r = run(
        pod.command("setpriv")
            .args(["--bounding-set=-net_admin", "--inh-caps=-net_admin"])
            .arg(&bin)
            .args(["net-setup", "--redirect-outbound", "15001"]),
        LIMIT,
    );
    assert_one_line_error(&r, 4, "NET_ADMIN");
    assert_eq!(nft_list(&pod), "", "nothing applied");
    let r = run(
        pod.command("setpriv")
            .args(["--bounding-set=-net_admin", "--inh-caps=-net_admin"])
            .arg(&bin)
            .args(["net-setup", "--redirect-outbound", "15001", "--check"]),
        LIMIT,
    );
    assert_one_line_error(&r, 4, "NET_ADMIN");

    // /proc/sys mounted read-only, as container runtimes do for unprivileged containers.
    let r = run(
        pod.command("unshare")
            .args([
                "--mount",
                "sh",
                "-c",
                "mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec \"$0\" net-setup --sysctl net.core.somaxconn=1000",
            ])
            .arg(&bin),
        LIMIT,
    );
    assert_one_line_error(&r, 4, "read-only");
}

#[test]
fn bad_input_gets_one_line_and_the_usage_code() {
    for (args, code, needle) in [
        (&["--deny-destination", "10.0.0.0/33"][..], 2, "10.0.0.0/33"),
        (&["--exclude-uid", "1337"][..], 2, "--redirect-outbound"),
        (&["--redirect-outbound", "0"][..], 2, "0"),
        (
            &["--table", "9lives", "--deny-destination", "10.0.0.1"][..],
            2,
            "9lives",
        ),
        (&["--sysctl", "net.core.somaxconn"][..], 2, "KEY=VALUE"),
        (&["--redirect-udp", "53"][..], 2, "expected PORTS:TO"),
        (&["--redirect-udp", "53:0"][..], 2, "'0' is not a port"),
        (
            &[
                "--redirect-outbound",
                "1",
                "--exclude-outbound-port",
                "9100-9000",
            ][..],
            2,
            "first port is above its last",
        ),
        (
            &["--redirect-inbound", "1", "--inbound-port", "8000-x"][..],
            2,
            "'8000-x' is not a port or a range",
        ),
        (&[][..], 2, "nothing to set up"),
        (
            &["--deny-destination", "10.0.0.1", "--dry-run", "--check"][..],
            2,
            "--check",
        ),
    ] {
        let r = run(initbox().arg("net-setup").args(args), LIMIT);
        assert_one_line_error(&r, code, needle);
    }
}

/// The example pod's init container (examples/kubernetes/net-setup.yaml), its command line as
/// written, run in a pod namespace of its own: what `podman kube play --network host` cannot
/// do without changing this machine's network.
#[test]
fn the_kubernetes_example_sets_up_the_proxy_pattern() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import yaml, json, sys\n\
             docs = list(yaml.safe_load_all(open(sys.argv[1])))\n\
             spec = [d for d in docs if d['kind'] == 'Deployment'][0]['spec']['template']['spec']\n\
             print(json.dumps([c['args'] for c in spec['initContainers'] if c['name'] == 'net-setup'][0]))",
        )
        .arg(root.join("examples/kubernetes/net-setup.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(args[0], "net-setup");
    let args: Vec<&str> = args[1..].iter().map(String::as_str).collect();

    let (pod, peer) = pair("nse", &[&format!("{POD}/24")], &[&format!("{PEER}/24")]);
    peer.serve("0.0.0.0:8080", "server");
    pod.serve("0.0.0.0:15001", "outbound-proxy");
    pod.serve("0.0.0.0:15006", "inbound-proxy");
    pod.serve("0.0.0.0:15021", "proxy-health");
    let r = net_setup(&pod, &args);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(nft_list(&pod), dry_run(&args));
    let r = net_setup(&pod, &[&args[..], &["--check"]].concat());
    assert_eq!(r.code(), 0, "{}", r.all());

    let out = format!("{PEER}:8080");
    // The app (uid 65532) is redirected; the proxy (uid 1337) goes out.
    assert_eq!(
        pod.fetch_as(65532, PEER, 8080).as_deref(),
        Some(format!("outbound-proxy {out}").as_str())
    );
    assert_eq!(
        pod.fetch_as(1337, PEER, 8080).as_deref(),
        Some(format!("server {out}").as_str())
    );
    // From outside: the app's port reaches the inbound proxy, the health port the proxy itself.
    let app = format!("{POD}:8080");
    assert_eq!(peer.fetch(&app).unwrap(), format!("inbound-proxy {app}"));
    let health = format!("{POD}:15021");
    assert_eq!(
        peer.fetch(&health).unwrap(),
        format!("proxy-health {health}")
    );
    let somaxconn = sh(&[
        "ip",
        "netns",
        "exec",
        &pod.name,
        "cat",
        "/proc/sys/net/core/somaxconn",
    ]);
    assert_eq!(String::from_utf8_lossy(&somaxconn.stdout).trim(), "4096");
}

/// DNS capture as istio's `--redirect-dns` does it: outbound UDP to port 53 lands on the local
/// proxy port, except the proxy's own uid; a range of UDP ports too, and a port just outside
/// it goes out as sent. Port ranges in the TCP exclusion and inclusion lists work the same way.
#[test]
fn udp_is_redirected_and_port_ranges_are_honoured() {
    let (pod, peer) = pair("nsu", &[&format!("{POD}/24")], &[&format!("{PEER}/24")]);
    for port in [53, 5005, 5011] {
        peer.serve_udp(&format!("0.0.0.0:{port}"), "server");
    }
    pod.serve_udp("127.0.0.1:15053", "dns-proxy");
    peer.serve("0.0.0.0:8080", "server");
    peer.serve("0.0.0.0:9050", "server");
    pod.serve("127.0.0.1:15001", "proxy");
    let dns = format!("{PEER}:53");
    // Before: straight to the server.
    assert_eq!(pod.ask_udp(&dns, "q1").unwrap(), "server q1");

    let spec = [
        "--redirect-udp",
        "53:15053,5000-5010:15053",
        "--exclude-uid",
        "4321",
        "--redirect-outbound",
        "15001",
        "--exclude-outbound-port",
        "9000-9100",
    ];
    let r = net_setup(&pod, &spec);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(pod.ask_udp(&dns, "q2").unwrap(), "dns-proxy q2");
    assert_eq!(
        pod.ask_udp_as(1000, PEER, 53, "q3").as_deref(),
        Some("dns-proxy q3")
    );
    assert_eq!(
        pod.ask_udp_as(4321, PEER, 53, "q4").as_deref(),
        Some("server q4"),
        "the proxy's own uid goes straight out"
    );
    assert_eq!(
        pod.ask_udp(&format!("{PEER}:5005"), "q5").unwrap(),
        "dns-proxy q5"
    );
    assert_eq!(
        pod.ask_udp(&format!("{PEER}:5011"), "q6").unwrap(),
        "server q6"
    );
    // TCP: a port inside the excluded range goes out, one outside is redirected.
    assert_eq!(
        pod.fetch(&format!("{PEER}:9050")).unwrap(),
        format!("server {PEER}:9050")
    );
    assert_eq!(
        pod.fetch(&format!("{PEER}:8080")).unwrap(),
        format!("proxy {PEER}:8080")
    );

    // What nft lists is what --dry-run printed, with nft's spelling of ranges and UDP.
    let printed = dry_run(&spec);
    assert_eq!(nft_list(&pod), printed);
    for line in [
        "\t\ttcp dport 9000-9100 return\n",
        "\t\tudp dport 53 redirect to :15053\n",
        "\t\tudp dport 5000-5010 redirect to :15053\n",
        "\t\tmeta l4proto tcp redirect to :15001\n",
    ] {
        assert!(printed.contains(line), "no {line:?} in {printed}");
    }
    let r = net_setup(&pod, &[&spec[..], &["--check"]].concat());
    assert_eq!(r.code(), 0, "{}", r.all());
    // --check tells a range from another, and a UDP redirect from a missing one.
    let mut other = spec.to_vec();
    other[1] = "53:15053,5000-5011:15053";
    let r = net_setup(&pod, &[&other[..], &["--check"]].concat());
    assert_one_line_error(
        &r,
        1,
        "chain redirect_outbound rule 5: not 'udp dport 5000-5011 redirect to :15053'",
    );
    let mut other = spec.to_vec();
    other[1] = "53:15053";
    other[7] = "9000-9099";
    let r = net_setup(&pod, &[&other[..], &["--check"]].concat());
    assert_one_line_error(&r, 1, "not 'tcp dport 9000-9099 return'");
    assert!(
        r.stderr.contains("1 rule(s) more than the spec"),
        "{}",
        r.all()
    );

    // UDP alone (no TCP redirect): the chain holds the exclusions and the UDP rules only.
    let r = net_setup(
        &pod,
        &["--redirect-udp", "53:15053", "--exclude-uid", "4321"],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(pod.ask_udp(&dns, "q7").unwrap(), "dns-proxy q7");
    assert_eq!(
        pod.fetch(&format!("{PEER}:8080")).unwrap(),
        format!("server {PEER}:8080")
    );
}

/// An inbound port range is redirected, a port outside it is not; an excluded range wins
/// over the redirect of every port.
#[test]
fn inbound_port_ranges_are_redirected_or_excluded() {
    let (pod, client) = pair("nsw", &[&format!("{POD}/24")], &[&format!("{PEER}/24")]);
    pod.serve("0.0.0.0:80", "app");
    pod.serve("0.0.0.0:8050", "app");
    pod.serve("0.0.0.0:15006", "inbound-proxy");
    let (low, mid) = (format!("{POD}:80"), format!("{POD}:8050"));
    let r = net_setup(
        &pod,
        &["--redirect-inbound", "15006", "--inbound-port", "8000-8100"],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(client.fetch(&mid).unwrap(), format!("inbound-proxy {mid}"));
    assert_eq!(client.fetch(&low).unwrap(), format!("app {low}"));
    let r = net_setup(
        &pod,
        &[
            "--redirect-inbound",
            "15006",
            "--exclude-inbound-port",
            "8000-8100",
        ],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(client.fetch(&mid).unwrap(), format!("app {mid}"));
    assert_eq!(client.fetch(&low).unwrap(), format!("inbound-proxy {low}"));
    assert_eq!(
        nft_list(&pod),
        dry_run(&[
            "--redirect-inbound",
            "15006",
            "--exclude-inbound-port",
            "8000-8100"
        ])
    );
}

/// The file takes the new forms under the flags' names: `redirect-udp`, and ranges (strings)
/// beside plain ports (numbers) in the port lists.
#[test]
fn a_yaml_spec_takes_udp_redirects_and_port_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("net.yaml");
    std::fs::write(
        &file,
        "redirect-outbound: 15001\nredirect-udp: ['53:15053']\nexclude-outbound-ports: [22, '9000-9100']\n\
         redirect-inbound: 15006\ninbound-ports: ['8000-8100', 443]\nexclude-inbound-ports: ['15020-15021']\n",
    )
    .unwrap();
    let flags = dry_run(&[
        "--redirect-outbound",
        "15001",
        "--redirect-udp",
        "53:15053",
        "--exclude-outbound-port",
        "22,9000-9100",
        "--redirect-inbound",
        "15006",
        "--inbound-port",
        "8000-8100,443",
        "--exclude-inbound-port",
        "15020-15021",
    ]);
    assert_eq!(dry_run(&["--file", file.to_str().unwrap()]), flags);
    assert!(
        flags.contains("\t\ttcp dport 15020-15021 return\n"),
        "{flags}"
    );
    assert!(
        flags.contains("\t\ttcp dport 8000-8100 redirect to :15006\n"),
        "{flags}"
    );
}
