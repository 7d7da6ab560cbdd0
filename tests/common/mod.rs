//! Shared helpers of the end-to-end tests: run the built `initbox` binary with a time bound,
//! find free ports, check that the real servers the tests need are up, start the throwaway ones
//! several suites share (Redis, Mosquitto with a user) and wait for fixtures that report their
//! port in a file. The servers and the PKI live in the modules below: one of each, used by every
//! test file instead of a copy of its own.
#![allow(dead_code)]

pub mod canary;
pub mod data;
pub mod db;
pub mod echo;
pub mod files;
pub mod fixture;
pub mod git;
pub mod http;
pub mod netns;
pub mod pg;
pub mod pki;
pub mod smtp;
pub mod static_bin;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The `initbox` binary cargo built for these tests.
pub fn initbox() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_initbox"));
    // Tests must not inherit a developer's or CI's INITBOX_* settings.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("INITBOX_") || k.to_string_lossy().starts_with("WAIT_") {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

/// The proxy variables HTTP clients read. The tests talk to 127.0.0.1: a developer's or CI's
/// proxy must not reach them ([`without_proxies`]); a test about proxies sets its own.
pub const PROXY_VARS: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
];

/// `cmd` without the caller's [`PROXY_VARS`].
pub fn without_proxies(cmd: &mut Command) -> &mut Command {
    for v in PROXY_VARS {
        cmd.env_remove(v);
    }
    cmd
}

/// The result of a bounded run.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
    /// Everything the process printed.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Run `cmd` to completion, killing it (and failing the test) after `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Run {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn initbox");
    wait_child(child, limit)
}

/// Wait for a spawned child with piped output, bounded by `limit`.
pub fn wait_child(mut child: Child, limit: Duration) -> Run {
    let start = Instant::now();
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let elapsed = start.elapsed();
            return Run {
                status,
                stdout: t_out.join().unwrap(),
                stderr: t_err.join().unwrap(),
                elapsed,
            };
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "process did not finish within {limit:?}; stderr: {}",
                t_err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// After `d`, the spawned waiter `child` is still running: it did not take the target for
/// ready before the test made it so.
pub fn still_waiting(child: &mut Child, d: Duration) {
    std::thread::sleep(d);
    assert!(
        child.try_wait().unwrap().is_none(),
        "wait-for ended before the target was ready"
    );
}

/// `python3 -c CODE ARGS…`, which must succeed; its standard output, trimmed.
pub fn python(code: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Output of a plain `Command::output()`, as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run `cmd` with `input` on its standard input; its output (stdout and stderr captured).
pub fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{:?}: {e}", cmd.get_program()));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// A TCP port nobody listens on right now (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A throwaway `redis-server` on 127.0.0.1:`port` that keeps nothing on disk (no RDB saves, no
/// AOF), with `extra` arguments (`--requirepass PW`...), output discarded; the caller spawns it.
pub fn redis_server(port: u16, extra: &[&str]) -> Command {
    let mut c = Command::new("redis-server");
    c.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(extra)
        .stdout(Stdio::null());
    c
}

/// A `mosquitto` on a free port of 127.0.0.1 that admits only `user` with `password` (a
/// password file and a configuration written to `dir`), output discarded; the caller spawns
/// the command. Returns it and the port.
pub fn mosquitto_with_user(dir: &std::path::Path, user: &str, password: &str) -> (Command, u16) {
    let pwfile = dir.join("mosquitto.passwd");
    let o = Command::new("mosquitto_passwd")
        .args(["-b", "-c", pwfile.to_str().unwrap(), user, password])
        .output()
        .expect("mosquitto_passwd");
    assert!(o.status.success(), "{}", text(&o));
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
            pwfile.display()
        ),
    )
    .unwrap();
    let mut c = Command::new("mosquitto");
    c.args(["-c", conf.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    (c, port)
}

/// The port a fixture server wrote to `port_file` once it listens (within 20 s).
pub fn wait_port_file(port_file: &std::path::Path, what: &str) -> u16 {
    let start = Instant::now();
    loop {
        if let Ok(p) = std::fs::read_to_string(port_file)
            && let Ok(p) = p.trim().parse()
        {
            return p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fail the test with a clear message if a real server the test needs is not reachable.
/// (`bash tests/run-all.sh` installs and starts them.)
pub fn require_service(name: &str, addr: &str) {
    let ok = addr
        .parse()
        .ok()
        .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
        .is_some();
    assert!(
        ok,
        "{name} is not reachable at {addr}: run `bash tests/run-all.sh`, which starts it"
    );
}

/// Assert that a usage or input error is one line naming `needle`, with `code`.
pub fn assert_one_line_error(r: &Run, code: i32, needle: &str) {
    assert_eq!(r.code(), code, "exit code; output: {}", r.all());
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {:?}", lines);
    assert!(
        lines[0].contains(needle),
        "{:?} should name {needle:?}",
        lines[0]
    );
    assert!(!r.all().contains("panicked"), "no panic: {}", r.all());
}

/// Cap the address space of the process `cmd` starts (RLIMIT_AS, like `prlimit --as`), so a
/// regression that buffers without bound fails fast with an allocation failure instead of
/// exhausting the machine.
pub fn cap_address_space(cmd: &mut Command, bytes: u64) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: only setrlimit(2), async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: bytes as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}
