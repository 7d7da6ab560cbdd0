//! `initbox copy-self DIR`: the binary (and its links) copied into a shared directory, the way an
//! init container fills an emptyDir for the application container.

mod common;

use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
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

/// The names in `dir`, sorted.
fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_file_of_ours_that_is_not_an_initbox_copy_is_left_alone() {
    // Issue 23 item 6: --help says any other file in the way is left alone; a script of the
    // same owner at DIR/initbox was overwritten.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("initbox");
    std::fs::write(&script, "#!/bin/sh\nexec /app/server\n").unwrap();
    let r = run(initbox().arg("copy-self").arg(dir.path()), LIMIT);
    assert_one_line_error(&r, 1, &script.display().to_string());
    assert!(
        r.stderr
            .contains("is a script, not an initbox copy; not replaced"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&script).unwrap(),
        "#!/bin/sh\nexec /app/server\n"
    );
    // Another program is not a copy either.
    std::fs::copy("/bin/true", &script).unwrap();
    let r = run(initbox().arg("copy-self").arg(dir.path()), LIMIT);
    assert_one_line_error(&r, 1, "is a program that is not initbox");
    assert_eq!(
        std::fs::read(&script).unwrap(),
        std::fs::read("/bin/true").unwrap()
    );
    // An earlier copy (here: the same binary put there by hand) is replaced, as documented.
    std::fs::copy(env!("CARGO_BIN_EXE_initbox"), &script).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let r = run(initbox().arg("copy-self").arg(dir.path()), LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    let mode = std::fs::metadata(&script).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o755, "replaced by a fresh copy");
}

#[test]
fn a_copy_owned_by_another_uid_is_refused_for_its_owner() {
    // Issue 23 item 7: a byte-identical copy owned by another uid was reported as "not an initbox
    // copy or link"; what is wrong is its owner.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("initbox");
    std::fs::copy(env!("CARGO_BIN_EXE_initbox"), &copy).unwrap();
    std::os::unix::fs::chown(&copy, Some(65532), Some(65532)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    assert_ne!(me, 65532, "run this test as another user than 65532");
    let r = run(initbox().arg("copy-self").arg(dir.path()), LIMIT);
    assert_one_line_error(
        &r,
        1,
        &format!("is an initbox copy owned by uid 65532, but initbox runs as uid {me}"),
    );
    assert!(!r.stderr.contains("not an initbox copy"), "{}", r.stderr);
    let meta = std::fs::metadata(&copy).unwrap();
    assert_eq!(meta.uid(), 65532, "left alone");
}

#[test]
fn links_are_all_checked_before_anything_is_written() {
    // Issue 23 item 8: --links stopped at the first conflict after the binary (and the links
    // before it) were written.
    let dir = tempfile::tempdir().unwrap();
    let names = applets();
    let last = names.last().unwrap().clone();
    let first = names.first().unwrap().clone();
    std::fs::write(dir.path().join(&last), "not ours").unwrap();
    std::fs::create_dir(dir.path().join(&first)).unwrap();
    let r = run(
        initbox().args(["copy-self", "--links"]).arg(dir.path()),
        LIMIT,
    );
    assert_one_line_error(&r, 1, "nothing written");
    assert!(
        r.stderr.contains(&format!(
            "{} is a directory; not replaced; also in the way: {last}",
            dir.path().join(&first).display()
        )),
        "{}",
        r.stderr
    );
    let mut want = vec![first, last];
    want.sort();
    assert_eq!(listing(dir.path()), want, "nothing written");
}

#[test]
fn set_id_modes_need_allow_setid_and_are_logged() {
    // Issue 23 item 9: --mode 4755 as root made a setuid-root copy without a word.
    let dir = tempfile::tempdir().unwrap();
    for mode in ["4755", "2755", "6755"] {
        let r = run(
            initbox()
                .args(["copy-self", "--mode", mode])
                .arg(dir.path()),
            LIMIT,
        );
        assert_one_line_error(&r, 2, "--allow-setid");
        assert!(r.stderr.contains("-ID"), "{}", r.stderr);
    }
    let r = run(
        initbox()
            .args(["copy-self", "--mode", "1755"])
            .arg(dir.path()),
        LIMIT,
    );
    assert_one_line_error(&r, 2, "sticky bit");
    assert!(listing(dir.path()).is_empty(), "nothing written");

    // Allowed explicitly (flag, or the variable with a boolish value): done, with a warning.
    for allow in [
        &["--allow-setid"][..],
        &[][..], // from INITBOX_COPY_SELF_ALLOW_SETID below
    ] {
        let mut cmd = initbox();
        cmd.args(["copy-self", "--mode", "4755"])
            .args(allow)
            .arg(dir.path());
        if allow.is_empty() {
            cmd.env("INITBOX_COPY_SELF_ALLOW_SETID", "yes");
        }
        let r = run(&mut cmd, LIMIT);
        assert_eq!(r.code(), 0, "{}", r.all());
        assert!(
            r.stderr
                .lines()
                .any(|l| l.contains("WARN") && l.contains("set-user-ID")),
            "a warning: {}",
            r.stderr
        );
        let mode = std::fs::metadata(dir.path().join("initbox"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o4755);
    }
    let r = run(
        initbox()
            .args(["copy-self", "--mode", "4755"])
            .env("INITBOX_COPY_SELF_ALLOW_SETID", "0")
            .arg(dir.path()),
        LIMIT,
    );
    assert_one_line_error(&r, 2, "--allow-setid");
}
