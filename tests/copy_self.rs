//! `initbox copy-self DIR`: the binary (and its links) copied into a shared directory, the way an
//! init container fills an emptyDir for the application container.

mod common;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{assert_one_line_error, initbox, run};

const LIMIT: Duration = Duration::from_secs(60);

fn applets() -> Vec<String> {
    let r = run(initbox().arg("--list"), LIMIT);
    r.stdout.lines().map(str::to_string).collect()
}

#[test]
fn copies_the_binary_and_links_that_the_app_container_can_run() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared/bin");
    let r = run(initbox().args(["copy-self", "--links"]).arg(&shared), LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("copied initbox"), "{}", r.stderr);

    let copy = shared.join("initbox");
    let meta = std::fs::metadata(&copy).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_initbox")).unwrap(),
        "the copy is byte-identical"
    );
    for a in applets() {
        assert_eq!(
            std::fs::read_link(shared.join(&a)).unwrap(),
            PathBuf::from("initbox"),
            "relative link for {a}"
        );
    }
    // The "application container": run the copy, through a link, as its entrypoint.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let out = Command::new(shared.join("wait-for-tcp"))
        .arg(format!("127.0.0.1:{port}"))
        .args(["--", "sh", "-c", "echo app started"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "app started\n");
    // The links still work after the volume is "mounted" elsewhere (relative targets).
    let moved = dir.path().join("elsewhere");
    std::fs::rename(dir.path().join("shared"), &moved).unwrap();
    let out = Command::new(moved.join("bin/wait-for-tcp"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
}

#[test]
fn concurrent_copies_all_succeed_and_leave_one_whole_binary() {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..6)
        .map(|_| {
            initbox()
                .args(["copy-self", "--links", "-q"])
                .arg(dir.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let r = common::wait_child(c, LIMIT);
        assert_eq!(r.code(), 0, "{}", r.all());
    }
    assert_eq!(
        std::fs::read(dir.path().join("initbox")).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_initbox")).unwrap()
    );
    let temps: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}

#[test]
fn name_env_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    // Directory and name from the environment.
    let r = run(
        initbox()
            .arg("copy-self")
            .env("INITBOX_COPY_SELF_DIR", dir.path())
            .env("INITBOX_COPY_SELF_NAME", "ib"),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(dir.path().join("ib").is_file());
    assert!(
        !dir.path().join("wait-for-tcp").exists(),
        "no links unless asked"
    );

    // A file of someone else's in a link's place is left alone: exit 1, one line.
    std::fs::write(dir.path().join("notify"), "not ours").unwrap();
    let r = run(
        initbox().args(["copy-self", "--links"]).arg(dir.path()),
        LIMIT,
    );
    assert_one_line_error(&r, 1, "not replaced");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notify")).unwrap(),
        "not ours"
    );

    // DIR is a file: exit 1; a name with a slash or a mode without x: usage, exit 2.
    let file = dir.path().join("ib");
    let r = run(initbox().arg("copy-self").arg(&file), LIMIT);
    assert_one_line_error(&r, 1, "not a directory");
    let r = run(
        initbox()
            .args(["copy-self", "--name", "../x"])
            .arg(dir.path()),
        LIMIT,
    );
    assert_one_line_error(&r, 2, "../x");
    let r = run(
        initbox()
            .args(["copy-self", "--mode", "0644"])
            .arg(dir.path()),
        LIMIT,
    );
    assert_one_line_error(&r, 2, "not executable");
}

#[test]
fn a_directory_the_user_cannot_write_is_refused_with_4() {
    // As uid 65532 (like the image), into a root-owned 0755 directory.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A copy of the binary 65532 can reach (the build tree may sit under a 0700 home).
    let bin_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = bin_dir.path().join("initbox");
    std::fs::copy(env!("CARGO_BIN_EXE_initbox"), &exe).unwrap();
    let r = run(
        Command::new("setpriv")
            .args(["--reuid=65532", "--regid=65532", "--clear-groups"])
            .arg(&exe)
            .arg("copy-self")
            .arg(dir.path()),
        LIMIT,
    );
    if r.all().contains("Permission denied") && r.code() == 126 {
        panic!("the test binary is not readable by 65532: {}", r.all());
    }
    assert_one_line_error(&r, 4, &dir.path().display().to_string());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
