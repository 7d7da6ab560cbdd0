//! The multi-call front: dispatch by first argument and by argv[0], --list, --install, --version,
//! help, and unknown applets.

mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[test]
fn list_names_every_applet_once() {
    let r = run(initbox().arg("--list"), T);
    assert_eq!(r.code(), 0);
    let names: Vec<&str> = r.stdout.lines().collect();
    for want in ["wait-for-tcp", "wait-for-dns"] {
        assert_eq!(names.iter().filter(|n| **n == want).count(), 1, "{names:?}");
    }
}

#[test]
fn help_lists_applets_with_a_summary() {
    let r = run(initbox().arg("--help"), T);
    assert_eq!(r.code(), 0);
    assert!(r.stdout.contains("wait-for-tcp") && r.stdout.contains("Wait until TCP ports"));
    // Every applet's --help shows the environment fallbacks of its flags.
    let r = run(initbox().args(["wait-for-tcp", "--help"]), T);
    assert_eq!(r.code(), 0);
    for var in [
        "INITBOX_TIMEOUT",
        "INITBOX_ATTEMPT_TIMEOUT",
        "INITBOX_LOG_FORMAT",
        "INITBOX_TCP_TARGETS",
    ] {
        assert!(r.stdout.contains(var), "{var} missing from --help");
    }
}

#[test]
fn version_prints_the_package_version() {
    let r = run(initbox().arg("--version"), T);
    assert_eq!(r.code(), 0);
    assert!(r.stdout.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn an_unknown_applet_exits_2_and_suggests_the_closest() {
    let r = run(initbox().arg("wait-for-tpc"), T);
    assert_one_line_error(&r, 2, "did you mean 'wait-for-tcp'");
    let r = run(initbox().arg("frobnicate"), T);
    assert_one_line_error(&r, 2, "unknown applet 'frobnicate'");
}

#[test]
fn install_creates_links_that_dispatch_by_argv0() {
    for symlink in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = initbox();
        cmd.args(["--install", dir.path().to_str().unwrap()]);
        if symlink {
            cmd.arg("--symlink");
        }
        let r = run(&mut cmd, T);
        assert_eq!(r.code(), 0, "{}", r.all());
        let link = dir.path().join("wait-for-tcp");
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert_eq!(meta.file_type().is_symlink(), symlink);
        // The link runs the applet named by argv[0].
        let port = free_port();
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let r = run(
            std::process::Command::new(&link).args(["--once", &format!("127.0.0.1:{port}")]),
            T,
        );
        assert_eq!(r.code(), 0, "{}", r.all());
        drop(l);
        // Installing again is idempotent.
        let r = run(&mut cmd, T);
        assert_eq!(r.code(), 0, "{}", r.all());
    }
}

#[test]
fn install_refuses_to_replace_a_foreign_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wait-for-dns"), "not initbox").unwrap();
    let r = run(
        initbox().args(["--install", dir.path().to_str().unwrap()]),
        T,
    );
    assert_ne!(r.code(), 0);
    assert!(r.stderr.contains("not replaced"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("wait-for-dns")).unwrap(),
        "not initbox"
    );
}

#[test]
fn a_renamed_binary_behaves_as_initbox() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("initbox-x86_64");
    std::fs::copy(env!("CARGO_BIN_EXE_initbox"), &copy).unwrap();
    let r = run(std::process::Command::new(&copy).arg("--list"), T);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stdout.contains("wait-for-tcp"));
}

#[test]
fn a_closed_stdout_ends_the_listing_quietly() {
    // `initbox --list | head -1`: the reader is gone, so every write fails with EPIPE.
    use std::os::fd::FromRawFd;
    let mut fds = [0i32; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    unsafe { libc::close(fds[0]) };
    let write_end = unsafe { std::process::Stdio::from_raw_fd(fds[1]) };
    let out = initbox()
        .arg("--list")
        .stdout(write_end)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn an_unknown_front_flag_names_initbox_once() {
    let r = run(initbox().arg("--bogus"), Duration::from_secs(10));
    assert_one_line_error(&r, 2, "initbox: unexpected argument '--bogus'");
    assert!(!r.stderr.contains("initbox initbox"), "{}", r.stderr);
}

#[test]
fn negative_durations_are_refused_by_name_everywhere() {
    for args in [
        &["wait-for-tcp", "--timeout", "-5s", "db:5432"][..],
        &["wait-for", "--attempt-timeout=-1", "tcp://db:5432"],
        &["notify", "--timeout", "-3s", "stdout://"],
        &["run-migrations", "--timeout", "-2m", "status"],
        &["run", "-f", "x.yaml", "--stop-grace", "-1s"],
        &["fetch-secret", "--timeout", "-5s", "A=ref+env://HOME"],
    ] {
        let r = run(initbox().args(args), Duration::from_secs(10));
        assert_one_line_error(&r, 2, "negative durations are not allowed");
        assert!(
            !r.stderr.contains("unexpected argument"),
            "{args:?}: {}",
            r.stderr
        );
    }
}
