//! initbox run for real: the image under a container runtime, pods with `podman kube play`, the
//! compose example with docker-compose (against `podman system service`).
//!
//! The image is built ONCE per test run by the project's own path (scripts/build-static.sh,
//! scripts/image-rootfs.sh, then the Dockerfile's prebuilt stage with `podman build`) into a
//! podman store of this test process (under $TMPDIR or /var/tmp, removed by the last test, or by
//! the next run if this one was cut short) and shared by every test here.
//!
//! The runtime recipe is ../shared/reference/running-containers.md's: runc with the cgroupfs
//! manager and `default_ulimits = []` (crun cannot start containers on hosts that refuse
//! setrlimit(RLIMIT_NOFILE)); no image can be pulled, so the stand-in application container is a
//! static BusyBox in a FROM scratch image. tests/setup/40-containers.sh installs podman, runc,
//! buildah, docker-compose and extracts that BusyBox; a missing tool fails the test.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Run, free_port, run};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const IMAGE: &str = "localhost/initbox:containers-test";
const APP_IMAGE: &str = "localhost/initbox-test-app:busybox";
/// The tests in this file: the last one to finish removes the shared store.
const TESTS: usize = 5;
const BUSYBOX_DEFAULT: &str = "/var/cache/initbox-tests/busybox-static/bin/busybox";

// ---- the shared podman store and image -----------------------------------------------------

/// podman (and docker-compose) with storage, run directory and configuration of their own.
struct Podman {
    dir: PathBuf,
}

impl Podman {
    fn conf(&self) -> PathBuf {
        self.dir.join("containers.conf")
    }

    fn global_args(&self) -> Vec<String> {
        vec![
            "--root".into(),
            self.dir.join("storage").display().to_string(),
            "--runroot".into(),
            self.dir.join("run").display().to_string(),
            "--storage-driver".into(),
            "vfs".into(),
            "--runtime".into(),
            "runc".into(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "file".into(),
        ]
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.args(self.global_args())
            .env("CONTAINERS_CONF", self.conf())
            .stdin(Stdio::null());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("INITBOX_") {
                c.env_remove(k);
            }
        }
        c
    }

    fn run(&self, args: &[&str], limit: Duration) -> Run {
        run(self.cmd().args(args), limit)
    }

    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args, Duration::from_secs(300));
        assert_eq!(r.code(), 0, "podman {args:?} failed: {}", r.all());
        r.stdout
    }

    /// Remove every pod, container and volume (not the images) of this store.
    fn clean_containers(&self) {
        for args in [
            &["pod", "rm", "--all", "--force"][..],
            &["rm", "--all", "--force"],
            &["volume", "rm", "--all", "--force"],
        ] {
            let _ = self.run(args, Duration::from_secs(120));
        }
    }
}

struct Shared {
    podman: Podman,
    binary: PathBuf,
    applets: Vec<String>,
}

static SHARED: OnceLock<Shared> = OnceLock::new();
static FINISHED: AtomicUsize = AtomicUsize::new(0);

/// Counts finished tests; the last removes the store (a filtered run leaves it to the next run).
struct TestGuard;

impl Drop for TestGuard {
    fn drop(&mut self) {
        if FINISHED.fetch_add(1, Ordering::SeqCst) + 1 == TESTS
            && let Some(s) = SHARED.get()
        {
            remove_store(&s.podman.dir);
        }
    }
}

fn remove_store(dir: &Path) {
    let p = Podman {
        dir: dir.to_path_buf(),
    };
    let _ = p.run(&["system", "reset", "--force"], Duration::from_secs(120));
    // vfs leaves plain directories; a pod's shm mount lives under run/.
    let _ = Command::new("umount")
        .arg("-R")
        .arg(dir.join("run"))
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(dir);
}

fn tmp_base() -> PathBuf {
    std::env::var_os("TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/tmp".into())
}

/// Stores of earlier runs whose process is gone.
fn remove_stale_stores() {
    let Ok(entries) = std::fs::read_dir(tmp_base()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix("initbox-containers-test-") else {
            continue;
        };
        if pid
            .parse::<u32>()
            .is_ok_and(|p| !Path::new(&format!("/proc/{p}")).exists())
        {
            remove_store(&e.path());
        }
    }
}

/// The static release binary: `INITBOX_TEST_STATIC_BIN`, else scripts/build-static.sh's.
fn static_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("INITBOX_TEST_STATIC_BIN") {
        return PathBuf::from(p);
    }
    let out = Command::new("bash")
        .arg(Path::new(ROOT).join("scripts/build-static.sh"))
        .current_dir(ROOT)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/build-static.sh");
    assert!(out.status.success(), "scripts/build-static.sh failed");
    let path = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(path.lines().last().expect("the binary's path").trim())
}

fn busybox() -> PathBuf {
    let p = std::env::var_os("INITBOX_TEST_BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| BUSYBOX_DEFAULT.into());
    assert!(
        p.exists(),
        "{} missing: run tests/setup/40-containers.sh (extracts Debian's busybox-static)",
        p.display()
    );
    p
}

fn shared() -> (&'static Shared, TestGuard) {
    let s = SHARED.get_or_init(|| {
        for tool in ["podman", "runc", "docker-compose"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(found, "{tool} missing: run tests/setup/40-containers.sh");
        }
        remove_stale_stores();
        let started = Instant::now();
        let dir = tmp_base().join(format!("initbox-containers-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let podman = Podman { dir: dir.clone() };
        std::fs::write(podman.conf(), "[containers]\ndefault_ulimits = []\n").unwrap();

        // The image, by the project's own path: static binary, rootfs, Dockerfile (prebuilt).
        let binary = static_binary();
        let ctx = dir.join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::copy(Path::new(ROOT).join("Dockerfile"), ctx.join("Dockerfile")).unwrap();
        let r = run(
            Command::new("bash")
                .arg(Path::new(ROOT).join("scripts/image-rootfs.sh"))
                .arg(&binary)
                .arg(ctx.join("dist/rootfs")),
            Duration::from_secs(60),
        );
        assert_eq!(r.code(), 0, "scripts/image-rootfs.sh: {}", r.all());
        let ctx_s = ctx.display().to_string();
        podman.ok(&[
            "build",
            "--quiet",
            "--build-arg",
            "BINARY_SOURCE=prebuilt",
            "--build-arg",
            "REVISION=containers-test",
            "-t",
            IMAGE,
            "-f",
            &format!("{ctx_s}/Dockerfile"),
            &ctx_s,
        ]);

        // The stand-in application: a static BusyBox, FROM scratch.
        let app = dir.join("app-ctx");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::copy(busybox(), app.join("busybox")).unwrap();
        std::fs::write(
            app.join("Containerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n",
        )
        .unwrap();
        let app_s = app.display().to_string();
        podman.ok(&["build", "--quiet", "-t", APP_IMAGE, &app_s]);

        let r = run(
            Command::new(&binary).arg("--list").env_clear(),
            Duration::from_secs(10),
        );
        let applets = r.stdout.lines().map(str::to_string).collect();
        let size = podman.ok(&["image", "inspect", "--format", "{{.Size}}", IMAGE]);
        eprintln!(
            "containers: image {IMAGE} built in {:.1}s, {} bytes uncompressed",
            started.elapsed().as_secs_f64(),
            size.trim()
        );
        Shared {
            podman,
            binary,
            applets,
        }
    });
    (s, TestGuard)
}

/// `podman run --rm` of the image, restricted the way the README tells users to run it: the
/// image's own user (65532), a read-only root filesystem, no capabilities, no privilege gain.
fn run_image(p: &Podman, extra: &[&str], argv: &[&str]) -> Run {
    let mut args = vec![
        "run",
        "--rm",
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "all",
        "--security-opt",
        "no-new-privileges",
    ];
    args.extend_from_slice(extra);
    args.push(IMAGE);
    args.extend_from_slice(argv);
    p.run(&args, Duration::from_secs(120))
}

// ---- helpers: TLS, DNS ------------------------------------------------------------------------

/// A CA and a server certificate for 127.0.0.1, made with openssl.
fn make_tls(dir: &Path) {
    let sh = format!(
        "set -e; cd {d}; \
         openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
           -subj '/CN=initbox containers test CA' -addext basicConstraints=critical,CA:TRUE \
           -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null; \
         openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
           -subj '/CN=127.0.0.1' 2>/dev/null; \
         printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > ext.cnf; \
         openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
           -out server.crt -days 2 -extfile ext.cnf 2>/dev/null; \
         chmod 0644 ca.crt",
        d = dir.display()
    );
    let r = run(
        Command::new("bash").args(["-c", &sh]),
        Duration::from_secs(60),
    );
    assert_eq!(r.code(), 0, "openssl: {}", r.all());
}

/// A process killed (and reaped) on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_listening(child: &mut Child, addr: (&str, u16), what: &str) {
    for _ in 0..400 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{what} does not listen on {addr:?}");
}

/// A real TLS server (Python's ssl + http.server) on 127.0.0.1:port, answering 200.
fn https_server(dir: &Path, port: u16) -> Server {
    let script = format!(
        "import http.server, ssl\n\
         class H(http.server.BaseHTTPRequestHandler):\n\
         \x20   def do_GET(self):\n\
         \x20       self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'ok')\n\
         \x20   def log_message(self, *a): pass\n\
         s = http.server.HTTPServer(('127.0.0.1', {port}), H)\n\
         c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         c.load_cert_chain('{d}/server.crt', '{d}/server.key')\n\
         s.socket = c.wrap_socket(s.socket, server_side=True)\n\
         s.serve_forever()\n",
        d = dir.display()
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    wait_listening(&mut child, ("127.0.0.1", port), "the TLS server");
    Server(child)
}

/// dnsmasq answering `*.svc.initbox-test` with 127.0.0.1 on port 53 of a loopback address of
/// its own (a container's resolv.conf cannot name a port), and nothing else.
fn dns_server(dir: &Path) -> (Server, String) {
    let ip = format!(
        "127.53.{}.{}",
        std::process::id() % 250 + 1,
        free_port() % 250 + 1
    );
    let mut child = Command::new("dnsmasq")
        .args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--port=53",
            "--user=root",
            &format!("--listen-address={ip}"),
            "--address=/svc.initbox-test/127.0.0.1",
            &format!("--pid-file={}/dnsmasq.pid", dir.display()),
            "--log-facility=-",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq (tests/setup/00-packages.sh installs dnsmasq-base)");
    // Ready once it answers: a UDP query for the name, by hand.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut query = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in "db.svc.initbox-test".split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    for _ in 0..100 {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("dnsmasq exited: {status}");
        }
        let _ = sock.send_to(&query, (ip.as_str(), 53));
        let mut buf = [0u8; 512];
        if sock.recv_from(&mut buf).is_ok() {
            return (Server(child), ip);
        }
    }
    panic!("dnsmasq does not answer on {ip}:53");
}

// ---- process inspection (the container's PID 1 seen from the host) ---------------------------

fn container_pid(p: &Podman, name: &str) -> i32 {
    p.ok(&["inspect", "--format", "{{.State.Pid}}", name])
        .trim()
        .parse()
        .expect("State.Pid")
}

fn proc_status(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Until the process handles SIGTERM (its handler is installed): no sleep-and-hope.
fn wait_sigterm_handler(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let caught = status_field(&proc_status(pid), "SigCgt:");
        if u64::from_str_radix(&caught, 16).is_ok_and(|m| m & (1 << (libc::SIGTERM - 1)) != 0) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("pid {pid} never installed a SIGTERM handler");
}

fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Gone or a zombie: the process has exited.
fn exited(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

fn exit_code(p: &Podman, name: &str) -> i32 {
    p.ok(&["wait", name]).trim().parse().expect("podman wait")
}

// ---- 1. the image ----------------------------------------------------------------------------

#[test]
fn the_image_runs_every_applet_as_nonroot_read_only_without_capabilities() {
    let (s, _guard) = shared();
    let p = &s.podman;

    let user = p.ok(&["image", "inspect", "--format", "{{.Config.User}}", IMAGE]);
    assert_eq!(user.trim(), "65532:65532");

    // The front lists exactly the applets of the binary that went in.
    let r = run_image(p, &[], &["--list"]);
    assert_eq!(r.code(), 0, "--list in the container: {}", r.all());
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        s.applets,
        "{}",
        r.all()
    );
    // The default command is --help.
    let r = run_image(p, &[], &[]);
    assert_eq!(r.code(), 0, "the image's CMD: {}", r.all());
    assert!(r.stdout.contains("--list"), "{}", r.all());

    // Every applet, through its link in /bin (the entrypoint a user picks with --entrypoint).
    let version = env!("CARGO_PKG_VERSION");
    for applet in &s.applets {
        let entry = format!("/bin/{applet}");
        let r = run_image(p, &["--entrypoint", &entry], &["--version"]);
        assert_eq!(r.code(), 0, "{applet} --version: {}", r.all());
        assert!(
            r.stdout.contains(version),
            "{applet} --version prints {version}: {}",
            r.all()
        );
    }
}

#[test]
fn tls_in_the_container_trusts_the_image_bundle_plus_an_extra_ca() {
    let (s, _guard) = shared();
    let p = &s.podman;
    let dir = tempfile::tempdir().unwrap();
    make_tls(dir.path());
    let port = free_port();
    let _server = https_server(dir.path(), port);
    let url = format!("https://127.0.0.1:{port}/");
    let ca = dir.path().join("ca.crt").display().to_string();

    // The image's bundle (Debian's) does not know the test CA: refused, and the error says why.
    let r = run_image(p, &[], &["wait-for", "--once", &url]);
    assert_ne!(r.code(), 0, "an unknown CA must be refused: {}", r.all());
    assert!(
        r.all().to_lowercase().contains("certificate"),
        "the error names the certificate problem: {}",
        r.all()
    );
    // The extra CA, mounted read-only and named by INITBOX_CA_FILE, is trusted beside it.
    let r = run_image(
        p,
        &[
            "-v",
            &format!("{ca}:/etc/initbox/extra-ca.crt:ro"),
            "-e",
            "INITBOX_CA_FILE=/etc/initbox/extra-ca.crt",
        ],
        &["wait-for", "--once", &url],
    );
    assert_eq!(r.code(), 0, "https with an extra CA: {}", r.all());
    // The image's own bundle path (SSL_CERT_FILE) is what is read: the same bundle with the
    // test CA appended, mounted over it, is trusted with no flag at all.
    let bundle = dir.path().join("bundle.crt");
    let mut pem = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap();
    pem.extend(std::fs::read(dir.path().join("ca.crt")).unwrap());
    std::fs::write(&bundle, pem).unwrap();
    let r = run_image(
        p,
        &[
            "-v",
            &format!(
                "{}:/etc/ssl/certs/ca-certificates.crt:ro",
                bundle.display()
            ),
        ],
        &["wait-for", "--once", &url],
    );
    assert_eq!(r.code(), 0, "https through the image's bundle path: {}", r.all());
}

#[test]
fn names_resolve_from_the_containers_resolv_conf_and_hosts() {
    let (s, _guard) = shared();
    let p = &s.podman;
    let dir = tempfile::tempdir().unwrap();
    let (_dns, ip) = dns_server(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let net = [
        "--dns",
        &ip,
        "--dns-search",
        "svc.initbox-test",
        "--add-host",
        "cache.hosts.initbox-test:127.0.0.1",
    ];

    // podman wrote them; initbox reads nothing else.
    let name = format!("initbox-ct-dns-{}", std::process::id());
    // (a short-lived container kept for inspection: its resolv.conf and hosts)
    let r = p.run(
        &[
            &["run", "--name", &name, "--network", "host", "--read-only"][..],
            &net,
            &[IMAGE, "wait-for-dns", "--once", "db.svc.initbox-test"],
        ]
        .concat(),
        Duration::from_secs(60),
    );
    assert_eq!(r.code(), 0, "wait-for-dns through resolv.conf: {}", r.all());
    let resolv = std::fs::read_to_string(
        p.ok(&["inspect", "--format", "{{.ResolvConfPath}}", &name])
            .trim(),
    )
    .unwrap();
    assert!(resolv.contains(&format!("nameserver {ip}")), "{resolv}");
    let _ = p.run(&["rm", "--force", &name], Duration::from_secs(60));

    // A name from the DNS server, a short name through the search list, a name from /etc/hosts.
    for target in [
        format!("db.svc.initbox-test:{port}"),
        format!("db:{port}"),
        format!("cache.hosts.initbox-test:{port}"),
    ] {
        let r = run_image(p, &net, &["wait-for-tcp", "--once", &target]);
        assert_eq!(r.code(), 0, "wait-for-tcp {target}: {}", r.all());
    }
    // A name neither knows: the check fails (never a silent success).
    let r = run_image(
        p,
        &net,
        &["wait-for-dns", "--timeout", "2s", "nowhere.initbox-test"],
    );
    assert_ne!(r.code(), 0, "an unknown name: {}", r.all());
    drop(listener);
}

// ---- 2. PID 1 --------------------------------------------------------------------------------

#[test]
fn as_pid_1_a_stop_ends_the_wait_with_143_and_cmd_replaces_initbox() {
    let (s, _guard) = shared();
    let p = &s.podman;
    let tag = std::process::id();
    let closed = free_port();
    let wait = format!("127.0.0.1:{closed}");
    let detached = |name: &str, argv: &[&str]| {
        let mut args = vec![
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "--read-only",
            "--cap-drop",
            "all",
            IMAGE,
        ];
        args.extend_from_slice(argv);
        p.ok(&args);
        let pid = container_pid(p, name);
        assert!(pid > 0, "{name} is running");
        pid
    };

    // `podman stop` during a wait: SIGTERM to PID 1 (which has no default action for it), 143
    // long before the 10 s grace would end in SIGKILL (137).
    let name = format!("initbox-ct-stop-{tag}");
    let pid = detached(&name, &["wait-for-tcp", "--timeout", "5m", &wait]);
    let status = proc_status(pid);
    assert!(
        status_field(&status, "NSpid:").ends_with("\t1") || status_field(&status, "NSpid:").ends_with(" 1"),
        "initbox is PID 1 in its namespace: {status}"
    );
    assert!(
        status_field(&status, "Uid:").starts_with("65532"),
        "runs as 65532: {status}"
    );
    wait_sigterm_handler(pid);
    let started = Instant::now();
    p.ok(&["stop", "--time", "10", &name]);
    let stop = started.elapsed();
    assert_eq!(exit_code(p, &name), 143, "{}", p.ok(&["logs", &name]));
    assert!(stop < Duration::from_secs(3), "podman stop took {stop:?}");
    p.ok(&["rm", &name]);

    // The same signal straight to the container's PID 1, timed from the host: exits within
    // 100 ms plus scheduling slack on a shared 2-core machine.
    let name = format!("initbox-ct-term-{tag}");
    let pid = detached(&name, &["wait-for-tcp", "--timeout", "5m", &wait]);
    wait_sigterm_handler(pid);
    let started = Instant::now();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    while !exited(pid) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "PID 1 ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = started.elapsed();
    eprintln!("containers: PID 1 exited {took:?} after SIGTERM");
    assert!(took < Duration::from_millis(600), "SIGTERM to exit took {took:?}");
    assert_eq!(exit_code(p, &name), 143);
    p.ok(&["rm", &name]);

    // `-- CMD` after success: the same PID 1 becomes CMD (exec, no initbox left above it), and
    // CMD is what the stop signal reaches.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let name = format!("initbox-ct-exec-{tag}");
    let cmd = ["/bin/wait-for-tcp", "--timeout", "5m", wait.as_str()];
    let mut argv = vec!["wait-for-tcp", "--timeout", "30s", open.as_str(), "--"];
    argv.extend_from_slice(&cmd);
    let pid = detached(&name, &argv);
    let deadline = Instant::now() + Duration::from_secs(30);
    while cmdline(pid) != cmd {
        assert!(
            Instant::now() < deadline,
            "PID 1 never became CMD: {:?}; {}",
            cmdline(pid),
            p.ok(&["logs", &name])
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let top = p.ok(&["top", &name, "pid", "args"]);
    assert_eq!(
        top.lines().count(),
        2,
        "one process in the container, CMD itself: {top}"
    );
    wait_sigterm_handler(pid);
    let started = Instant::now();
    p.ok(&["stop", "--time", "10", &name]);
    assert_eq!(exit_code(p, &name), 143, "{}", p.ok(&["logs", &name]));
    assert!(started.elapsed() < Duration::from_secs(3));
    p.ok(&["rm", &name]);
    drop(listener);
}
