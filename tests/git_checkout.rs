//! `initbox git-checkout` end to end against real git servers: Debian's `git-http-backend`
//! (smart HTTP, over TLS with Basic authentication, run as CGI by the test HTTP server) and
//! `git daemon` (git://). Every checkout is compared, file by file (bytes, modes, links), with
//! what `git clone --depth 1` of the same ref makes, and inspected with the real `git`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::git::{Daemon, Repo, basic, git, smart_http, tree};
use common::pki::{self, server_config};
use common::{initbox, run};

const LIMIT: Duration = Duration::from_secs(120);
const TOKEN: &str = "ghp_canaryTOKEN4git0checkout";

fn checkout(url: &str, to: &Path, extra: &[&str]) -> common::Run {
    run(
        initbox()
            .args(["git-checkout", url, "--to", to.to_str().unwrap()])
            .args(extra),
        LIMIT,
    )
}

/// What `git clone --depth 1 [--branch REF] URL` checks out.
fn reference_clone(base: &Path, url: &str, branch: Option<&str>) -> PathBuf {
    let to = base.join(format!("clone-{}", branch.unwrap_or("HEAD")));
    let mut args = vec!["clone", "-q", "--depth", "1"];
    if let Some(b) = branch {
        args.extend(["--branch", b]);
    }
    let file_url = format!("file://{url}");
    args.extend([file_url.as_str(), to.to_str().unwrap()]);
    git(base, &args);
    to
}

/// A self-signed certificate for 127.0.0.1 (`self.pem`, `self.key`) in `dir`: the kit's.
fn self_signed(dir: &Path) {
    pki::self_signed(dir, "self", "IP:127.0.0.1");
}

/// The test repository served over smart HTTPS (a self-signed certificate, `self.pem` in `dir`)
/// to the token [`TOKEN`] only; returns the repository, the server and `https://…/app.git`.
fn token_server(dir: &Path) -> (Repo, common::http::HttpServer, String) {
    let repo = Repo::new(dir);
    self_signed(dir);
    let server = smart_http(
        &repo.root,
        Some(server_config(dir, "self")),
        Some(basic("x-access-token", TOKEN)),
    );
    let url = format!("https://127.0.0.1:{}/app.git", server.port);
    (repo, server, url)
}

/// The `git-upload-pack` POSTs (negotiation and pack) among the requests: none when only the
/// refs were asked for.
fn pack_requests(requests: &[String]) -> usize {
    requests
        .iter()
        .filter(|r| r.starts_with("POST ") && r.contains("command=fetch"))
        .count()
}

#[test]
fn https_with_a_token_checks_out_what_git_clone_does_then_is_a_no_op_then_follows_the_branch() {
    let t = tempfile::tempdir().unwrap();
    let (repo, server, url) = token_server(t.path());
    let token_file = t.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let ca = t.path().join("self.pem");
    let auth = [
        "--token-file",
        token_file.to_str().unwrap(),
        "--ca-file",
        ca.to_str().unwrap(),
    ];
    let dir = t.path().join("volume");

    let r = checkout(&url, &dir, &auth);
    assert_eq!(r.code(), 0, "{}", r.all());
    let main = repo.rev("main");
    assert!(r.stderr.contains(&main[..12]), "{}", r.stderr);
    assert!(
        !r.all().contains(TOKEN),
        "the token was printed: {}",
        r.all()
    );
    assert!(
        !r.all().contains(&basic("x-access-token", TOKEN)),
        "{}",
        r.all()
    );
    // The same files, modes, links and bytes (CRLF from .gitattributes) as git clone.
    let clone = reference_clone(t.path(), repo.bare().to_str().unwrap(), None);
    assert_eq!(tree(&dir), tree(&clone));
    assert!(
        tree(&dir)
            .iter()
            .any(|(p, what)| p == "windows.bat" && what.contains("\\r\\n")),
        "{:?}",
        tree(&dir)
    );
    // A real shallow repository at the commit, clean in git's eyes.
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), main);
    assert_eq!(git(&dir, &["rev-parse", "--is-shallow-repository"]), "true");
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
    assert_eq!(git(&dir, &["remote", "get-url", "origin"]), url);
    assert!(pack_requests(&server.requests()) >= 1);

    // A restart: the refs are asked for, nothing is fetched or written.
    let inode = std::fs::metadata(dir.join("README.md")).map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.ino()
    });
    let before = server.requests().len();
    let r = checkout(&url, &dir, &auth);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("nothing to do"), "{}", r.stderr);
    assert_eq!(pack_requests(&server.requests()[before..]), 0);
    let inode_after = std::fs::metadata(dir.join("README.md")).map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.ino()
    });
    assert_eq!(inode.unwrap(), inode_after.unwrap());

    // The branch moves: the next run replaces the checkout with the new commit.
    let next = repo.commit("added.txt", "added\n");
    let r = checkout(&url, &dir, &auth);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), next);
    assert_eq!(
        std::fs::read_to_string(dir.join("added.txt")).unwrap(),
        "added\n"
    );
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".initbox-") && n != ".initbox-git-lock")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_missing_or_wrong_token_is_exit_5_and_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (_repo, _server, url) = token_server(t.path());
    let ca = t.path().join("self.pem");
    let wrong = t.path().join("wrong");
    std::fs::write(&wrong, "ghp_wrongTOKENvalue42\n").unwrap();
    let dir = t.path().join("volume");

    let r = checkout(&url, &dir, &["--ca-file", ca.to_str().unwrap()]);
    assert_eq!(r.code(), 5, "{}", r.all());
    assert!(r.stderr.contains("--token-file"), "{}", r.stderr);

    let r = checkout(
        &url,
        &dir,
        &[
            "--ca-file",
            ca.to_str().unwrap(),
            "--token-file",
            wrong.to_str().unwrap(),
            "-v",
            "-v",
            "--log-format",
            "json",
        ],
    );
    assert_eq!(r.code(), 5, "{}", r.all());
    assert!(
        !r.all()
            .contains(&basic("x-access-token", "ghp_wrongTOKENvalue42")),
        "{}",
        r.all()
    );
    assert!(r.stderr.contains("refused the token"), "{}", r.stderr);
    assert!(!r.all().contains("ghp_wrongTOKENvalue42"), "{}", r.all());
    assert_eq!(tree(&dir), Vec::<(String, String)>::new());
    assert!(!dir.join(".git").exists());

    // Without --ca-file the self-signed server is refused: TLS is verified by default.
    let r = checkout(&url, &dir, &["--token-file", wrong.to_str().unwrap()]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(!dir.join(".git").exists());
}

#[test]
fn git_daemon_tags_branches_and_a_verified_commit() {
    let t = tempfile::tempdir().unwrap();
    let repo = Repo::new(t.path());
    let daemon = Daemon::start(&repo.root);
    let url = daemon.url("app.git");
    let v1 = repo.rev("v1");

    // An annotated tag, pinned to its commit.
    let dir = t.path().join("v1");
    let r = checkout(&url, &dir, &["--ref", "v1", "--commit", &v1]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), v1);
    let clone = reference_clone(t.path(), repo.bare().to_str().unwrap(), Some("v1"));
    assert_eq!(tree(&dir), tree(&clone));
    assert!(dir.join("only-in-v1.txt").exists());

    // A pinned checkout restarts without the network: the daemon is gone.
    drop(daemon);
    let r = checkout(&url, &dir, &["--ref", "v1", "--commit", &v1]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("already at"), "{}", r.stderr);

    let daemon = Daemon::start(&repo.root);
    let url = daemon.url("app.git");
    // The ref is not at the expected commit: exit 1, the checkout untouched.
    let r = checkout(&url, &dir, &["--ref", "next", "--commit", &v1]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(
        r.stderr.contains("not at the expected commit"),
        "{}",
        r.stderr
    );
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), v1);

    // A branch by name, and a ref that does not exist.
    let dir = t.path().join("next");
    let r = checkout(&url, &dir, &["--ref", "next"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), repo.rev("next"));
    let r = checkout(&url, &t.path().join("none"), &["--ref", "no-such-branch"]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("no-such-branch"), "{}", r.stderr);
}

#[test]
fn a_commit_alone_is_fetched_by_its_id_with_full_history_on_request() {
    let t = tempfile::tempdir().unwrap();
    let repo = Repo::new(t.path());
    let server = smart_http(&repo.root, None, None);
    let url = server.url("/app.git");
    let v1 = repo.rev("v1");
    let dir = t.path().join("pinned");
    let r = checkout(&url, &dir, &["--commit", &v1]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), v1);
    assert!(dir.join("only-in-v1.txt").exists());

    let full = t.path().join("full");
    let r = checkout(&url, &full, &["--depth", "0"]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        git(&full, &["rev-parse", "--is-shallow-repository"]),
        "false"
    );
    assert_eq!(git(&full, &["rev-list", "--count", "HEAD"]), "2");
}

#[test]
fn foreign_data_and_bad_input_are_refused_before_anything_is_written() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("precious.db"), "keep me").unwrap();
    let daemon_root = t.path().join("empty");
    std::fs::create_dir_all(&daemon_root).unwrap();
    let r = checkout("git://127.0.0.1:9/app.git", &dir, &[]);
    assert_eq!(r.code(), 4, "{}", r.all());
    assert!(r.stderr.contains("not empty"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.join("precious.db")).unwrap(),
        "keep me"
    );

    let out = t.path().join("out");
    let token = t.path().join("token");
    std::fs::write(&token, "tok\n").unwrap();
    let token = token.to_str().unwrap();
    for (url, extra, code, says) in [
        (
            "https://h.invalid/r.git",
            &["--commit", "abc123"][..],
            2,
            "40 hexadecimal",
        ),
        ("ssh://git@h.invalid/r.git", &[][..], 2, "not supported"),
        (
            "https://u:secretpw@h.invalid/r.git",
            &[][..],
            2,
            "--token-file",
        ),
        (
            "http://h.invalid/r.git",
            &["--token-file", token][..],
            2,
            "plain http",
        ),
    ] {
        let r = checkout(url, &out, extra);
        assert_eq!(r.code(), code, "{url}: {}", r.all());
        assert!(r.stderr.contains(says), "{url}: {}", r.stderr);
        assert!(!r.all().contains("secretpw"), "{}", r.all());
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    }
    assert!(!out.exists());
}

#[test]
fn works_as_65532_and_as_a_step_of_run() {
    let t = tempfile::tempdir().unwrap();
    let repo = Repo::new(t.path());
    let daemon = Daemon::start(&repo.root);
    let url = daemon.url("app.git");
    let dir = t.path().join("as-nonroot");

    // Two steps in one process: the checkout, then a step that reads it.
    let steps = t.path().join("steps.yaml");
    std::fs::write(
        &steps,
        format!(
            "steps:\n\
             - name: source\n  applet: git-checkout\n  args: [\"{url}\", --to, \"{d}\", --ref, v1]\n\
             - name: check\n  command: [test, -x, \"{d}/start.sh\"]\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let mut cmd = initbox();
    cmd.args(["run", "-f", steps.to_str().unwrap()]);
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        // As the scratch image runs it: uid and gid 65532, the volume writable by its group.
        std::fs::create_dir_all(&dir).unwrap();
        let chown = |p: &Path| {
            let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::chown(c.as_ptr(), 65532, 65532) }, 0);
        };
        chown(&dir);
        chown(&steps);
        use std::os::unix::fs::PermissionsExt;
        for p in [t.path(), &steps] {
            let mut perm = std::fs::metadata(p).unwrap().permissions();
            perm.set_mode(perm.mode() | 0o755);
            std::fs::set_permissions(p, perm).unwrap();
        }
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65532", "--regid=65532", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_initbox"))
            .args(["run", "-f", steps.to_str().unwrap()])
            .env_clear()
            .env("PATH", "/usr/bin:/bin");
        cmd = c;
    }
    let r = run(&mut cmd, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("2 steps: 2 ok"), "{}", r.stderr);
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), repo.rev("v1"));
    use std::os::unix::fs::MetadataExt;
    if unsafe { libc::getuid() } == 0 {
        assert_eq!(
            std::fs::metadata(dir.join("README.md")).unwrap().uid(),
            65532
        );
    }
}
