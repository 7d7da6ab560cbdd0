//! Signals always win: SIGTERM/SIGINT end initbox with 128+N within about 100 ms even while the
//! applet's only thread is stuck in synchronous work. The stuck work here is reading an input
//! file that is a FIFO nobody writes to: `open` blocks in the kernel and is restarted after
//! the signal handler, so only the runtime's signal watchdog can end the process.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::initbox;

fn fifo(tag: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("initbox-signals-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("input");
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    (dir, path)
}

fn spawn(args: &[&str], termination_log: &Path) -> Child {
    initbox()
        .args(args)
        .arg("--termination-log")
        .arg(termination_log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn initbox")
}

/// Send `sig` once the applet is blocked, and return (exit code, time to exit, stderr).
fn signal_while_busy(tag: &str, applet_args: &[&str], sig: i32) -> (i32, Duration, String, String) {
    let (dir, input) = fifo(tag);
    let args: Vec<&str> = applet_args
        .iter()
        .map(|a| {
            if *a == "INPUT" {
                input.to_str().unwrap()
            } else {
                a
            }
        })
        .collect();
    let tlog = dir.join("termination-log");
    let mut child = spawn(&args, &tlog);
    // Long enough to be blocked in the read (start-up takes a few ms).
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited before the signal"
    );
    let sent = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{tag}: still running 5 s after the signal");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = sent.elapsed();
    let mut stderr = String::new();
    use std::io::Read;
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    let tl = std::fs::read_to_string(&tlog).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    (status.code().unwrap_or(-1), took, stderr, tl)
}

fn assert_stopped(tag: &str, applet_args: &[&str], sig: i32, code: i32, name: &str) {
    let (got, took, stderr, tl) = signal_while_busy(tag, applet_args, sig);
    assert_eq!(got, code, "{tag}: {stderr}");
    // 100 ms is the promise (50 ms of grace); the slack is for a loaded 2-core CI machine.
    assert!(took < Duration::from_millis(600), "{tag}: took {took:?}");
    assert_eq!(
        stderr.matches(&format!("stopped by {name}")).count(),
        1,
        "{tag}: {stderr}"
    );
    assert_eq!(tl.trim(), format!("stopped by {name}"), "{tag}");
}

#[test]
fn sigterm_ends_a_run_blocked_reading_a_spec_file() {
    assert_stopped(
        "nc-term",
        &["network-check", "-f", "INPUT"],
        libc::SIGTERM,
        143,
        "SIGTERM",
    );
}

#[test]
fn sigint_ends_a_run_blocked_reading_a_steps_file() {
    assert_stopped(
        "run-int",
        &["run", "-f", "INPUT"],
        libc::SIGINT,
        130,
        "SIGINT",
    );
}
