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
mod moto;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::http::{Answer, HttpServer};
use common::static_bin::static_binary;
use common::{Run, free_port, pki, run};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const IMAGE: &str = "localhost/initbox:containers-test";
const APP_IMAGE: &str = "localhost/initbox-test-app:busybox";
/// The tests in this file: the last one to finish removes the shared store.
const TESTS: usize = 9;
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
}

struct Shared {
    podman: Podman,
    applets: Vec<String>,
}

static SHARED: OnceLock<Shared> = OnceLock::new();
/// Pods are played one at a time: their names, ConfigMaps and podman secrets (`shop-db`) are
/// the manifests' own, shared by the whole store.
static KUBE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn kube_lock() -> std::sync::MutexGuard<'static, ()> {
    KUBE.lock().unwrap_or_else(|e| e.into_inner())
}
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
        // The events log of this store alone: podman's default (under /run/libpod) is shared
        // by every store on the machine, and `events --since` would mix in the containers of
        // another test run's pods of the same name.
        std::fs::write(
            podman.conf(),
            format!(
                "[containers]\ndefault_ulimits = []\n[engine]\nevents_logfile_path = \"{}\"\n",
                dir.join("events.log").display()
            ),
        )
        .unwrap();

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
        Shared { podman, applets }
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
    pki::ca_and_localhost(dir.path(), "initbox containers test CA");
    let server = pki::https_ok(dir.path());
    let url = format!("https://{}/", server.authority());
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
            &format!("{}:/etc/ssl/certs/ca-certificates.crt:ro", bundle.display()),
        ],
        &["wait-for", "--once", &url],
    );
    assert_eq!(
        r.code(),
        0,
        "https through the image's bundle path: {}",
        r.all()
    );
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
    // A name neither knows (no search list here: it would find nowhere.initbox-test under
    // svc.initbox-test, as a resolver must): the check fails, never a silent success.
    let r = run_image(
        p,
        &["--dns", &ip],
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
        status_field(&status, "NSpid:").ends_with("\t1")
            || status_field(&status, "NSpid:").ends_with(" 1"),
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
    assert!(
        stop < Duration::from_secs(5),
        "podman stop took {stop:?} (the grace is 10 s)"
    );
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
    assert!(
        took < Duration::from_millis(600),
        "SIGTERM to exit took {took:?}"
    );
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
    assert!(started.elapsed() < Duration::from_secs(5));
    p.ok(&["rm", &name]);
    drop(listener);
}

// ---- 3. pods: `podman kube play` --------------------------------------------------------------

const KUBE_PLAY: &str = "tests/fixtures/containers/kube_play.py";
const KUBE_OVERRIDES: &str = "tests/fixtures/containers/kube-play.yaml";
/// The PostgreSQL role of the pod and compose tests (databases are per play, dropped after).
const DB_USER: &str = "initbox_ct";

fn psql(sql: &str) -> Run {
    run(
        Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"])
            .args(["-v", "ON_ERROR_STOP=1", "-tAc", sql]),
        Duration::from_secs(60),
    )
}

/// A database of this test, owned by DB_USER, dropped on drop.
struct Database(String);

impl Database {
    fn new(tag: &str) -> Self {
        common::require_service("PostgreSQL", "127.0.0.1:5432");
        let r = psql(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{DB_USER}') \
             THEN CREATE ROLE {DB_USER} LOGIN; END IF; END $$;"
        ));
        assert_eq!(r.code(), 0, "create role: {}", r.all());
        let name = format!("initbox_ct_{}_{tag}", std::process::id());
        let _ = psql(&format!("DROP DATABASE IF EXISTS {name}"));
        let r = psql(&format!("CREATE DATABASE {name} OWNER {DB_USER}"));
        assert_eq!(r.code(), 0, "create database: {}", r.all());
        Database(name)
    }

    fn query(&self, sql: &str) -> Run {
        run(
            Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", DB_USER, "-d", &self.0])
                .args(["-v", "ON_ERROR_STOP=1", "-tAc", sql]),
            Duration::from_secs(60),
        )
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0));
    }
}

/// The kit's test CA (tests/common/pki.rs, `ca.crt`), and a server certificate for
/// vault.vault.svc (and 127.0.0.1) signed by it (`vault.crt`, `vault.key`).
fn make_vault_tls(dir: &Path) {
    pki::ca_and_localhost(dir, "initbox pods test CA");
    let (cert, _key) = pki::leaf(dir, "vault", "DNS:vault.vault.svc,IP:127.0.0.1");
    std::fs::copy(cert, dir.join("vault.crt")).unwrap();
}

/// The stand-in Vault (tests/fixtures/fetch-secret/standin.py: Vault's documented HTTP API,
/// since no Vault server can be had here) over TLS, with Kubernetes auth for `role` accepting
/// `jwt`, and a KV v2 mount `secret/` holding `kv`.
fn vault_standin(dir: &Path, vault: &serde_json::Value, jwt: &str) -> (Server, u16) {
    let mut kv = serde_json::Map::new();
    for (path, data) in vault["kv"].as_object().expect("vault.kv") {
        kv.insert(path.clone(), serde_json::json!([data]));
    }
    let config = serde_json::json!({
        "mounts": {"secret/": {"type": "kv", "version": "2"}},
        "kv": {"secret/": kv},
        "auth": {"kubernetes": {"role": vault["role"], "jwt": jwt}},
    });
    let conf = dir.join("vault.json");
    std::fs::write(&conf, config.to_string()).unwrap();
    let portfile = dir.join("vault.port");
    let _ = std::fs::remove_file(&portfile);
    let mut child = Command::new("python3")
        .arg(Path::new(ROOT).join("tests/fixtures/fetch-secret/standin.py"))
        .arg("vault")
        .arg(&conf)
        .arg(&portfile)
        .arg("--tls")
        .arg(dir.join("vault.crt"))
        .arg(dir.join("vault.key"))
        .arg(dir.join("ca.crt"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    for _ in 0..400 {
        if let Ok(port) = std::fs::read_to_string(&portfile) {
            let port: u16 = port.trim().parse().unwrap();
            return (Server(child), port);
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the stand-in Vault exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the stand-in Vault did not start");
}

/// The kit's capture server (tests/common/http.rs) as the webhook receiver: each POST body is
/// appended to `out` as one line (newlines in it made spaces); answers 200.
fn webhook_receiver(out: &Path) -> HttpServer {
    let out = out.to_path_buf();
    HttpServer::capture(move |_, req| {
        if req.method == "POST" {
            let mut line: Vec<u8> = req
                .body
                .iter()
                .map(|&b| if b == b'\n' { b' ' } else { b })
                .collect();
            line.push(b'\n');
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&out)
                .unwrap();
            f.write_all(&line).unwrap();
        }
        Answer::bare(200, "")
    })
}

/// An HTTPS file server (the test CA's certificate for 127.0.0.1) serving `files` (path ->
/// content) from `dir/www`.
fn https_file_server(
    dir: &Path,
    files: &serde_json::Map<String, serde_json::Value>,
) -> (Server, u16) {
    let www = dir.join("www");
    for (path, content) in files {
        let f = www.join(path);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, content.as_str().expect("file content")).unwrap();
    }
    let port = free_port();
    let script = format!(
        "import functools, http.server, ssl\n\
         class H(http.server.SimpleHTTPRequestHandler):\n\
         \x20   def log_message(self, *a): pass\n\
         srv = http.server.ThreadingHTTPServer(('127.0.0.1', {port}), functools.partial(H, directory='{www}'))\n\
         ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         ctx.load_cert_chain('{d}/vault.crt', '{d}/vault.key')\n\
         srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n\
         srv.serve_forever()\n",
        www = www.display(),
        d = dir.display()
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    wait_listening(&mut child, ("127.0.0.1", port), "the HTTPS file server");
    (Server(child), port)
}

/// `git daemon` on 127.0.0.1 serving bare repositories made from `repos` (name -> {files, tag,
/// message}): one commit each on `main`, with fixed names and dates, so the commit id is fixed
/// by the content and a manifest can pin it.
fn git_daemon(dir: &Path, repos: &serde_json::Map<String, serde_json::Value>) -> (Server, u16) {
    let base = dir.join("git");
    for (name, repo) in repos {
        let work = dir.join(format!("git-work-{name}"));
        for (path, content) in repo["files"].as_object().expect("repository files") {
            let f = work.join(path);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(&f, content.as_str().expect("file content")).unwrap();
        }
        let git = |args: &[&str], cwd: &Path| {
            let r = run(
                Command::new("git")
                    .args(args)
                    .current_dir(cwd)
                    .env("GIT_CONFIG_GLOBAL", "/dev/null")
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .env("GIT_AUTHOR_NAME", "Shop Web")
                    .env("GIT_AUTHOR_EMAIL", "web@shop.example")
                    .env("GIT_AUTHOR_DATE", "2026-11-30T12:00:00Z")
                    .env("GIT_COMMITTER_NAME", "Shop Web")
                    .env("GIT_COMMITTER_EMAIL", "web@shop.example")
                    .env("GIT_COMMITTER_DATE", "2026-11-30T12:00:00Z"),
                Duration::from_secs(60),
            );
            assert_eq!(r.code(), 0, "git {args:?}: {}", r.all());
        };
        git(&["init", "-q", "-b", "main", "."], &work);
        git(&["add", "-A"], &work);
        let message = repo["message"].as_str().expect("commit message");
        git(&["commit", "-q", "-m", message], &work);
        if let Some(tag) = repo["tag"].as_str() {
            git(&["tag", tag], &work);
        }
        std::fs::create_dir_all(&base).unwrap();
        let bare = base.join(name).display().to_string();
        git(&["clone", "-q", "--bare", ".", &bare], &work);
    }
    let port = free_port();
    let mut child = Command::new("git")
        .arg("daemon")
        .arg("--reuseaddr")
        .arg("--export-all")
        .arg(format!("--base-path={}", base.display()))
        .arg("--listen=127.0.0.1")
        .arg(format!("--port={port}"))
        .arg(&base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("git daemon");
    wait_listening(&mut child, ("127.0.0.1", port), "git daemon");
    (Server(child), port)
}

fn python_json(args: &[&str]) -> serde_json::Value {
    let r = run(
        Command::new("python3")
            .arg(Path::new(ROOT).join(KUBE_PLAY))
            .args(args)
            .current_dir(ROOT),
        Duration::from_secs(150),
    );
    assert_eq!(r.code(), 0, "kube_play.py {args:?}: {}", r.stderr);
    serde_json::from_str(&r.stdout).expect("kube_play.py JSON")
}

/// What a manifest needs from the cluster around it, stood up on this machine.
struct Cluster {
    dir: tempfile::TempDir,
    db: Database,
    notify_log: PathBuf,
    /// The webhook receiver notify posts to.
    _notify: HttpServer,
    _servers: Vec<Server>,
    vars: serde_json::Value,
    s3: Option<S3Bucket>,
}

/// An entry's `s3:` (kube_play.py): a bucket on moto's S3 server (tests/moto: no S3-compatible
/// server is packaged here), seeded before the play with one backup, made by the host's initbox,
/// of SQLite databases each holding one note.
struct S3Bucket {
    moto: moto::Moto,
    bucket: String,
    region: String,
    prefix: String,
    /// The seeded databases: file name -> its bytes.
    seed: Vec<(String, Vec<u8>)>,
    /// The backup the test put there (its manifest's key).
    seeded_manifest: String,
}

impl S3Bucket {
    fn start(conf: &serde_json::Value, dir: &Path) -> Self {
        let moto = moto::Moto::start(None);
        let bucket = conf["bucket"].as_str().expect("s3.bucket").to_string();
        let region = conf["region"].as_str().unwrap_or("us-east-1").to_string();
        let prefix = conf["prefix"].as_str().unwrap_or("").to_string();
        moto.py(&format!(
            "s3.create_bucket(Bucket='{bucket}', CreateBucketConfiguration={{'LocationConstraint': '{region}'}})"
        ));
        let src = dir.join("s3-seed");
        std::fs::create_dir_all(&src).unwrap();
        let mut seed = Vec::new();
        for (name, note) in conf["seed_sqlite"].as_object().expect("s3.seed_sqlite") {
            let db = src.join(name);
            let r = run(
                Command::new("python3").args([
                    "-c",
                    "import sqlite3, sys\n\
                     c = sqlite3.connect(sys.argv[1])\n\
                     c.execute('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)')\n\
                     c.execute('INSERT INTO notes (body) VALUES (?)', (sys.argv[2],))\n\
                     c.commit()\n",
                    &db.display().to_string(),
                    note.as_str().unwrap(),
                ]),
                Duration::from_secs(30),
            );
            assert_eq!(r.code(), 0, "sqlite3 seed: {}", r.all());
            seed.push((name.clone(), std::fs::read(&db).unwrap()));
        }
        let s3 = S3Bucket {
            moto,
            bucket,
            region,
            prefix,
            seed,
            seeded_manifest: String::new(),
        };
        let url = s3.url();
        let r = s3.initbox(&["backup", "--from", &src.display().to_string(), "--to", &url]);
        assert_eq!(r.code(), 0, "seed backup: {}", r.all());
        let manifests = s3.manifests();
        assert_eq!(manifests.len(), 1, "the seeded backup: {manifests:?}");
        S3Bucket {
            seeded_manifest: manifests[0].clone(),
            ..s3
        }
    }

    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// The host's initbox (the image's static binary) with moto's endpoint and test keys.
    fn initbox(&self, args: &[&str]) -> Run {
        let mut cmd = moto::with_s3(Command::new(static_binary()), &self.moto);
        cmd.env("AWS_REGION", &self.region).args(args);
        run(&mut cmd, Duration::from_secs(120))
    }

    /// The manifests in the bucket (one per backup), sorted (oldest first: ids are times).
    fn manifests(&self) -> Vec<String> {
        self.moto
            .keys(&self.bucket, &self.prefix)
            .into_iter()
            .filter(|k| k.ends_with(".manifest.json"))
            .collect()
    }
}

impl Cluster {
    /// `key`: the overrides entry (a manifest's file name, `chart`, or a variant).
    fn new(key: &str, tag: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        make_vault_tls(dir.path());
        let jwt = format!("initbox-test-sa-token-{}-{tag}", std::process::id());
        let mut servers = Vec::new();
        let vault = python_json(&["vault", KUBE_OVERRIDES, key]);
        let mut vault_port = 0;
        if !vault.is_null() {
            let (server, port) = vault_standin(dir.path(), &vault, &jwt);
            servers.push(server);
            vault_port = port;
        }
        let serve = python_json(&["serve", KUBE_OVERRIDES, key]);
        let (mut files_port, mut git_port) = (0, 0);
        if let Some(files) = serve["https"].as_object() {
            let (server, port) = https_file_server(dir.path(), files);
            servers.push(server);
            files_port = port;
        }
        if let Some(repos) = serve["git"].as_object() {
            let (server, port) = git_daemon(dir.path(), repos);
            servers.push(server);
            git_port = port;
        }
        let notify_log = dir.path().join("notify.log");
        let notify = webhook_receiver(&notify_log);
        let notify_port = notify.port;
        let db = Database::new(tag);
        let s3 = python_json(&["s3", KUBE_OVERRIDES, key]);
        let s3 = (!s3.is_null()).then(|| S3Bucket::start(&s3, dir.path()));
        let vars = serde_json::json!({
            "S3_ENDPOINT": s3.as_ref().map(|s| s.moto.endpoint()).unwrap_or_default(),
            "IMAGE": IMAGE,
            "APP_IMAGE": APP_IMAGE,
            "DB": db.0,
            "DB_USER": DB_USER,
            "VAULT_PORT": vault_port,
            "FILES_PORT": files_port,
            "GIT_PORT": git_port,
            "CLOSED_PORT": free_port(),
            "NOTIFY_URL": format!("generic://127.0.0.1:{notify_port}/hook?disabletls=yes"),
            "SERVICE_ACCOUNT": {
                "token": jwt,
                "ca.crt": std::fs::read_to_string(dir.path().join("ca.crt")).unwrap(),
                "namespace": "shop",
            },
        });
        Cluster {
            dir,
            db,
            notify_log,
            _notify: notify,
            _servers: servers,
            vars,
            s3,
        }
    }
}

/// One manifest played: its adapted YAML, the pods in it, the `kube play` result.
struct Played {
    file: PathBuf,
    adapted: serde_json::Value,
    play: Run,
    since: String,
}

fn play(p: &Podman, cluster: &Cluster, adapt_args: &[&str]) -> Option<Played> {
    let vars = cluster.vars.to_string();
    let mut args = adapt_args.to_vec();
    args.push(&vars);
    let adapted = python_json(&args);
    if let Some(reason) = adapted["skip"].as_str() {
        eprintln!("containers: {adapt_args:?} not played: {reason}");
        return None;
    }
    for note in adapted["notes"].as_array().unwrap() {
        eprintln!("containers: {}: {}", adapt_args[1], note.as_str().unwrap());
    }
    for (name, data) in adapted["secrets"].as_object().unwrap() {
        let f = cluster.dir.path().join(format!("secret-{name}.json"));
        std::fs::write(&f, data.as_str().unwrap()).unwrap();
        let _ = p.run(&["secret", "rm", name], Duration::from_secs(30));
        p.ok(&["secret", "create", name, &f.display().to_string()]);
    }
    let file = cluster.dir.path().join("pod.yaml");
    std::fs::write(&file, adapted["yaml"].as_str().unwrap()).unwrap();
    let since = now_utc();
    let play = p.run(
        &[
            "kube",
            "play",
            "--network",
            "host",
            &file.display().to_string(),
        ],
        Duration::from_secs(300),
    );
    Some(Played {
        file,
        adapted,
        play,
        since,
    })
}

/// Now, for `podman events --since`.
/// A manifest's variant (`key`, `FILE.yaml#variant` in the overrides) played in a cluster of
/// its own.
fn play_variant(p: &Podman, manifest: &str, key: &str, tag: &str) -> (Cluster, Played) {
    let cluster = Cluster::new(key, tag);
    let played = play(p, &cluster, &["manifest", manifest, KUBE_OVERRIDES, key])
        .unwrap_or_else(|| panic!("the variant {key} is played"));
    (cluster, played)
}

/// The containers named `prefix*` that started since `played` began, in order, and all the
/// events (for failure messages).
fn started(p: &Podman, played: &Played, prefix: &str) -> (Vec<String>, Vec<(String, String)>) {
    let ev = events(p, &played.since);
    let started = ev
        .iter()
        .filter(|(n, st)| st == "start" && n.starts_with(prefix))
        .map(|(n, _)| n.clone())
        .collect();
    (started, ev)
}

/// The application container `name` is not running.
fn assert_app_down(p: &Podman, name: &str, context: &str) {
    let state = p.ok(&["inspect", "--format", "{{.State.Status}}", name]);
    assert_ne!(state.trim(), "running", "the app stays down: {context}");
}

/// The last line of container `name`'s log, and the whole `podman logs` run.
fn last_log_line(p: &Podman, name: &str) -> (String, Run) {
    let logs = p.run(&["logs", name], Duration::from_secs(30));
    let last = logs.all().lines().last().unwrap_or("").to_string();
    (last, logs)
}

fn now_utc() -> String {
    let r = run(
        Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%S.%NZ"]),
        Duration::from_secs(5),
    );
    r.stdout.trim().to_string()
}

/// Container events of the play, in order: (container name, status).
fn events(p: &Podman, since: &str) -> Vec<(String, String)> {
    let out = p.ok(&[
        "events",
        "--stream=false",
        "--since",
        since,
        "--filter",
        "type=container",
        "--format",
        "{{.Name}} {{.Status}}",
    ]);
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect()
}

fn kube_down(p: &Podman, played: &Played) {
    let _ = p.run(
        &["kube", "down", &played.file.display().to_string()],
        Duration::from_secs(120),
    );
    for name in played.adapted["secrets"].as_object().unwrap().keys() {
        let _ = p.run(&["secret", "rm", name], Duration::from_secs(30));
    }
}

/// The pod ran as Kubernetes would: init containers one after another in manifest order, each
/// finished before the next started, the app after the last; then what the app found.
fn check_pod(p: &Podman, cluster: &Cluster, played: &Played, what: &str) {
    assert_eq!(
        played.play.code(),
        0,
        "{what}: kube play failed: {}\n{}",
        played.play.all(),
        pod_logs(p)
    );
    let yaml = played.adapted["yaml"].as_str().unwrap();
    for pod in played.adapted["pods"].as_array().unwrap() {
        let pod = pod.as_str().unwrap();
        let inits = init_names(yaml, pod);
        let app = format!("{pod}-app");
        // The app container's output, once it has printed its findings.
        let deadline = Instant::now() + Duration::from_secs(60);
        let logs = loop {
            let r = p.run(&["logs", &app], Duration::from_secs(30));
            if r.all().contains("app:") || Instant::now() > deadline {
                break r.all();
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let ev = events(p, &played.since);
        // Native sidecars stood in for by regular containers (kube_play.py `sidecars:
        // container`) start with the app: not part of the init-container order.
        let sidecars: Vec<&str> = played.adapted["sidecar_containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str())
            .collect();
        for s in &sidecars {
            eprintln!("containers: {what}: native sidecar {s} played as a regular container");
        }
        let mut order = Vec::new();
        for (name, status) in &ev {
            if sidecars.contains(&name.as_str()) {
                continue;
            }
            if let Some(c) = name.strip_prefix(&format!("{pod}-"))
                && (status == "start" || status == "died")
                && order.last() != Some(&(c.to_string(), status.clone()))
            {
                order.push((c.to_string(), status.clone()));
            }
        }
        let mut expected: Vec<(String, String)> = Vec::new();
        for i in &inits {
            expected.push((i.clone(), "start".into()));
            expected.push((i.clone(), "died".into()));
        }
        expected.push(("app".into(), "start".into()));
        assert_eq!(
            order
                .iter()
                .take(expected.len())
                .cloned()
                .collect::<Vec<_>>(),
            expected,
            "{what}: container starts and exits, in order (events: {ev:?}); app: {logs}"
        );
        let state = p.ok(&["inspect", "--format", "{{.State.Status}}", &app]);
        assert_eq!(state.trim(), "running", "{what}: the app runs: {logs}");
        let expect = &played.adapted["expect"];
        for line in expect["app_logs"].as_array().into_iter().flatten() {
            let line = line.as_str().unwrap();
            assert!(
                logs.lines().any(|l| l.trim_end() == line),
                "{what}: the app sees {line:?}: {logs}"
            );
        }
        for table in expect["tables"].as_array().into_iter().flatten() {
            let r = cluster
                .db
                .query(&format!("SELECT count(*) FROM {}", table.as_str().unwrap()));
            assert_eq!(r.code(), 0, "{what}: migrated table {table}: {}", r.all());
        }
        if expect["new_backup"].as_bool() == Some(true) {
            check_new_backup(p, cluster, played, what);
        }
        if expect["notified"].as_bool() == Some(true) {
            let sent = std::fs::read_to_string(&cluster.notify_log).unwrap_or_default();
            assert!(
                sent.contains("is starting"),
                "{what}: the notification arrived: {sent:?}"
            );
        }
    }
}

/// The pod's backup reached the bucket: a manifest beyond the seeded one appears (the schedule's
/// stand-in interval is seconds), and that version, restored by the host's initbox, holds the
/// seeded databases byte for byte (the app's data, snapshotted by the sidecar's `--pre`).
fn check_new_backup(p: &Podman, cluster: &Cluster, played: &Played, what: &str) {
    let s3 = cluster
        .s3
        .as_ref()
        .expect("new_backup needs an `s3:` entry");
    let deadline = Instant::now() + Duration::from_secs(90);
    let newest = loop {
        let manifests = s3.manifests();
        if let Some(new) = manifests.iter().rfind(|m| **m != s3.seeded_manifest) {
            break new.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no backup beyond the seeded one reached the bucket: {manifests:?}\n{}",
            pod_logs(p)
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    // The sidecars stopped first: their next runs' retention (keep-last 3 at the stand-in
    // interval) must not prune the version being read.
    for side in played.adapted["sidecar_containers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        p.ok(&["stop", "--time", "30", side.as_str().unwrap()]);
    }
    assert!(
        s3.manifests().contains(&newest),
        "{what}: the pod's backup {newest} was pruned before it could be read"
    );
    let id = newest
        .strip_prefix(&s3.prefix)
        .and_then(|k| k.strip_suffix(".manifest.json"))
        .expect("a manifest key");
    let out = cluster.dir.path().join("restored-from-pod-backup");
    let r = s3.initbox(&[
        "restore",
        "--from",
        &s3.url(),
        "--to",
        &out.display().to_string(),
        "--version-id",
        id,
    ]);
    assert_eq!(
        r.code(),
        0,
        "{what}: restore of the pod's backup {id}: {}",
        r.all()
    );
    for (name, bytes) in &s3.seed {
        let got = std::fs::read(out.join(name)).unwrap_or_default();
        assert!(
            got == *bytes,
            "{what}: {name} in the pod's backup {id} is not the restored data ({} bytes, want {})",
            got.len(),
            bytes.len()
        );
    }
}

/// Every container of the store with its state and last log lines (for failure messages).
fn pod_logs(p: &Podman) -> String {
    let mut out = String::new();
    let names = p.run(
        &["ps", "-a", "--format", "{{.Names}} {{.Status}}"],
        Duration::from_secs(30),
    );
    for line in names.stdout.lines() {
        let name = line.split(' ').next().unwrap_or("");
        let logs = p.run(&["logs", "--tail", "5", name], Duration::from_secs(30));
        out.push_str(&format!("== {line}\n{}", logs.all()));
    }
    out
}

/// `podman kube down` when dropped: a failed check leaves no pod behind for the next play.
struct Down<'a>(&'a Podman, &'a Played);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        kube_down(self.0, self.1);
    }
}

/// The init container names of `pod` in the adapted YAML, in order (podman names them POD-NAME).
fn init_names(yaml: &str, pod: &str) -> Vec<String> {
    let mut py = Command::new("python3");
    py.args([
            "-c",
            "import sys, yaml, json\n\
             for d in yaml.safe_load_all(sys.stdin):\n\
             \x20   if d and d.get('kind') == 'Pod' and d['metadata']['name'] == sys.argv[1]:\n\
             \x20       print(json.dumps([c['name'] for c in d['spec'].get('initContainers', [])]))\n",
            pod,
        ]);
    let out = common::output_with_stdin(&mut py, yaml.as_bytes());
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("init container names ({e}): {}", common::text(&out)))
}

#[test]
fn every_kubernetes_example_plays_with_real_init_container_semantics() {
    let (s, _guard) = shared();
    let _kube = kube_lock();
    let p = &s.podman;
    let dir = Path::new(ROOT).join("examples/kubernetes");
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    manifests.sort();
    assert!(!manifests.is_empty());
    for (i, manifest) in manifests.iter().enumerate() {
        let key = manifest.file_name().unwrap().to_string_lossy().to_string();
        let cluster = Cluster::new(&key, &format!("k{i}"));
        let rel = manifest.strip_prefix(ROOT).unwrap().display().to_string();
        let Some(played) = play(p, &cluster, &["manifest", &rel, KUBE_OVERRIDES]) else {
            continue;
        };
        let _down = Down(p, &played);
        check_pod(p, &cluster, &played, &key);
    }
}

#[test]
fn a_download_that_does_not_verify_keeps_the_checkout_and_the_app_from_starting() {
    let (s, _guard) = shared();
    let _kube = kube_lock();
    let p = &s.podman;
    let (_cluster, played) = play_variant(
        p,
        "examples/kubernetes/prepare-volume.yaml",
        "prepare-volume.yaml#tampered",
        "tampered",
    );
    let _down = Down(p, &played);
    let context = format!("kube play: {}", played.play.all());
    // The verification failure is exit 1, reported by kube play for the download container.
    assert_ne!(played.play.code(), 0, "{context}");
    assert!(
        played.play.all().contains("exited with code 1"),
        "{context}"
    );
    let (started, ev) = started(p, &played, "site-");
    assert_eq!(
        started,
        ["site-prepare-volume", "site-download"],
        "{context}; {ev:?}"
    );
    // (podman removes an init container that succeeded: the download starting says it did.)
    assert_eq!(exit_code(p, "site-download"), 1);
    assert_app_down(p, "site-app", &context);
    // The last line names the expected digest (the manifest's) and what arrived.
    let (last, logs) = last_log_line(p, "site-download");
    assert!(
        last.contains("ERROR")
            && last.contains("ef2be9ca2c963b3a78df5029167f9233faca5cb9cb51834bae80a1a2f3e11115"),
        "the last line names the expected digest: {}",
        logs.all()
    );
}

#[test]
fn the_example_chart_rendered_by_helm_plays() {
    let (s, _guard) = shared();
    let _kube = kube_lock();
    let p = &s.podman;
    let (repo, tag) = IMAGE.rsplit_once(':').unwrap();
    for (i, mode) in ["separate", "run"].iter().enumerate() {
        let cluster = Cluster::new("chart", &format!("c{i}"));
        let values = serde_json::json!({
            "initMode": mode,
            "initbox": {"image": {"repository": repo, "tag": tag}},
        })
        .to_string();
        let played = play(
            p,
            &cluster,
            &[
                "chart",
                "charts/example-app",
                "charts/initbox",
                &values,
                KUBE_OVERRIDES,
            ],
        )
        .expect("the chart is played");
        assert!(
            played.adapted["yaml"]
                .as_str()
                .unwrap()
                .contains(&format!("image: {IMAGE}")),
            "the chart's values point initbox at the local image"
        );
        let _down = Down(p, &played);
        check_pod(p, &cluster, &played, &format!("chart ({mode})"));
    }
}

#[test]
fn a_failing_init_container_keeps_the_app_from_starting() {
    let (s, _guard) = shared();
    let _kube = kube_lock();
    let p = &s.podman;
    let (cluster, played) = play_variant(
        p,
        "examples/kubernetes/init-containers.yaml",
        "init-containers.yaml#fails",
        "fail",
    );
    let _down = Down(p, &played);
    let context = format!("kube play: {}", played.play.all());
    let closed = cluster.vars["CLOSED_PORT"].as_u64().unwrap();
    // kube play reports the init container that failed, with its exit code (124: deadline).
    assert_ne!(played.play.code(), 0, "{context}");
    assert!(
        played.play.all().contains("exited with code 124"),
        "{context}"
    );
    // Nothing after it started: not the later init containers, not the app.
    let (started, ev) = started(p, &played, "shop-");
    assert_eq!(started, ["shop-wait-for-database"], "{context}; {ev:?}");
    assert_app_down(p, "shop-app", &context);
    assert_eq!(exit_code(p, "shop-wait-for-database"), 124);
    // The reason. podman has no terminationMessagePath (/dev/termination-log is not mounted, so
    // initbox writes none): the closest equivalent, what `kubectl logs` shows with
    // terminationMessagePolicy: FallbackToLogsOnError, is the container's last log line.
    let (last, logs) = last_log_line(p, "shop-wait-for-database");
    assert!(
        last.contains("ERROR") && last.contains(&format!("127.0.0.1:{closed}")),
        "the last line names the target and the failure: {}",
        logs.all()
    );
}

// ---- 4. compose: docker-compose against `podman system service` --------------------------------

/// `podman system service` on a socket of this test: the Docker API docker-compose speaks.
struct DockerApi {
    _service: Server,
    socket: PathBuf,
}

impl DockerApi {
    fn start(p: &Podman) -> Self {
        let socket = p.dir.join("podman.sock");
        let _ = std::fs::remove_file(&socket);
        let mut child = p
            .cmd()
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman system service");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("podman system service exited: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "podman system service: no socket"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        DockerApi {
            _service: Server(child),
            socket,
        }
    }

    /// docker-compose with the example and the override for this machine, in project `project`.
    fn compose(&self, project: &str, vars: &[(&str, &str)], args: &[&str]) -> Run {
        let dir = Path::new(ROOT).join("examples/compose");
        let mut c = Command::new("docker-compose");
        c.current_dir(&dir)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            .envs(vars.iter().copied())
            .args(["--ansi", "never", "-p", project, "-f", "compose.yaml", "-f"])
            .arg(Path::new(ROOT).join("tests/fixtures/containers/compose.override.yaml"))
            .args(args)
            .stdin(Stdio::null());
        run(&mut c, Duration::from_secs(300))
    }
}

#[test]
fn the_compose_example_runs_its_steps_in_order_and_a_failed_step_keeps_the_app_down() {
    let (s, _guard) = shared();
    let p = &s.podman;
    common::require_service("Redis", "127.0.0.1:6379");
    let api = DockerApi::start(p);
    // What the example mounts exists beside it, with real content.
    let example = Path::new(ROOT).join("examples/compose");
    assert!(example.join("migrations").read_dir().unwrap().count() > 0);
    assert!(example.join("templates/app.conf.j2").is_file());

    for (i, failing) in [false, true].into_iter().enumerate() {
        let db = Database::new(&format!("compose{i}"));
        let project = format!("initbox-ct-{}-{i}", std::process::id());
        let closed = free_port().to_string();
        let vars = [
            ("INITBOX_IMAGE", IMAGE),
            ("APP_IMAGE", APP_IMAGE),
            ("DB_PASSWORD", "not-in-any-url"),
            ("DB", db.0.as_str()),
            ("DB_USER", DB_USER),
            ("DB_PORT", if failing { closed.as_str() } else { "5432" }),
            ("WAIT_TIMEOUT", if failing { "2s" } else { "2m" }),
        ];
        let up = api.compose(&project, &vars, &["up", "-d", "app"]);
        let ps = api.compose(&project, &vars, &["ps", "-a"]);
        let logs = api.compose(&project, &vars, &["logs", "--no-color"]);
        let app_state = p.run(
            &[
                "inspect",
                "--format",
                "{{.State.Status}}",
                &format!("{project}_app_1"),
            ],
            Duration::from_secs(30),
        );
        let _ = api.compose(&project, &vars, &["down", "-v", "--timeout", "1"]);
        let context = format!("up: {}\nps: {}\nlogs: {}", up.all(), ps.all(), logs.all());
        assert!(
            !logs.all().contains("not-in-any-url") && !ps.all().contains("not-in-any-url"),
            "the password shows nowhere: {context}"
        );
        if failing {
            assert_ne!(up.code(), 0, "a failed step fails `up`: {context}");
            assert!(
                up.all().contains("exited with code 124"),
                "`up` names the step's exit code: {context}"
            );
            assert!(
                logs.all().lines().any(|l| l.contains("wait_1")
                    && l.contains("ERROR initbox wait-for: timed out")
                    && l.contains(&format!("postgres://postgres:{closed}"))),
                "the step's one-line reason is in the logs: {context}"
            );
            assert_ne!(
                app_state.stdout.trim(),
                "running",
                "the app stays down: {context}"
            );
            let r = db.query("SELECT to_regclass('orders') IS NULL");
            assert_eq!(r.stdout.trim(), "t", "nothing migrated: {context}");
        } else {
            assert_eq!(up.code(), 0, "compose up: {context}");
            assert_eq!(app_state.stdout.trim(), "running", "{context}");
            assert!(
                logs.all().contains("environment = \"development\"")
                    && logs.all().contains("cache_url = \"redis://redis:6379/0\""),
                "the app found the rendered config: {context}"
            );
            let r = db.query("SELECT count(*) FROM orders");
            assert_eq!(r.code(), 0, "migrated: {context}");
        }
    }
}
