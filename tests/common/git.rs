//! Real git servers for the tests: repositories made with Debian's `git`, served by its
//! `git-http-backend` (smart HTTP, run as a CGI program by the one test HTTP server, plain or
//! TLS, optionally behind Basic authentication) and by `git daemon` (git://).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::http::{Answer, HttpServer};

/// Run `git ARGS` in `dir` with a fixed identity and no user configuration; its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        // Checkouts made as 65532 are read by root here.
        .args(["-c", "safe.directory=*"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .env("GIT_AUTHOR_DATE", "2026-12-01T12:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-12-01T12:00:00Z")
        .output()
        .expect("git is installed (tests/setup/20-git-checkout.sh)");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A served repository: `ROOT/app.git` (bare) and the working clone it is pushed from.
pub struct Repo {
    pub root: PathBuf,
    pub work: PathBuf,
}

impl Repo {
    /// A repository the way users have them: files in directories, an executable script, a
    /// symbolic link, a `.gitattributes` asking for CRLF in one file, an annotated tag `v1`
    /// on the first commit, a second commit on `main` (the default branch), a branch `next`.
    pub fn new(base: &Path) -> Repo {
        let root = base.join("srv");
        let work = base.join("work");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(work.join("conf/nested")).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("README.md"), "# app\n").unwrap();
        std::fs::write(work.join("conf/app.ini"), "[app]\nport = 8080\n").unwrap();
        std::fs::write(work.join("conf/nested/deep.txt"), "deep\n").unwrap();
        std::fs::write(work.join("start.sh"), "#!/bin/sh\necho start\n").unwrap();
        std::fs::write(work.join("windows.bat"), "@echo off\necho hi\n").unwrap();
        std::fs::write(work.join(".gitattributes"), "*.bat text eol=crlf\n").unwrap();
        std::fs::write(work.join("only-in-v1.txt"), "old\n").unwrap();
        std::os::unix::fs::symlink("conf/app.ini", work.join("app.ini")).unwrap();
        git(&work, &["add", "-A"]);
        git(&work, &["update-index", "--chmod=+x", "start.sh"]);
        git(&work, &["commit", "-q", "-m", "first"]);
        git(&work, &["tag", "-a", "v1", "-m", "release 1"]);
        std::fs::remove_file(work.join("only-in-v1.txt")).unwrap();
        std::fs::write(work.join("README.md"), "# app\n\nsecond\n").unwrap();
        git(&work, &["commit", "-q", "-am", "second"]);
        git(&work, &["branch", "next"]);
        git(
            &root,
            &["clone", "-q", "--bare", work.to_str().unwrap(), "app.git"],
        );
        Repo { root, work }
    }

    /// The bare repository's path.
    pub fn bare(&self) -> PathBuf {
        self.root.join("app.git")
    }

    /// The commit `rev` names in the served repository.
    pub fn rev(&self, rev: &str) -> String {
        git(&self.bare(), &["rev-parse", &format!("{rev}^{{commit}}")])
    }

    /// A new commit on `main`, pushed; its id.
    pub fn commit(&self, file: &str, text: &str) -> String {
        std::fs::write(self.work.join(file), text).unwrap();
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "-m", file]);
        git(
            &self.work,
            &["push", "-q", self.bare().to_str().unwrap(), "main"],
        );
        self.rev("main")
    }
}

/// `base64("USER:TOKEN")`: the Basic credential git sends for a token.
pub fn basic(user: &str, token: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"))
}

/// Smart HTTP by Debian's `git-http-backend` for every repository under `root`; with
/// `basic`, requests without exactly that `Authorization: Basic` value get a 401.
pub fn smart_http(
    root: &Path,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    basic: Option<String>,
) -> HttpServer {
    let root = root.to_path_buf();
    HttpServer::capture_tls(tls, move |_, request| {
        let (method, target) = (&request.method, &request.target);
        let body = &request.body;
        let header = |name: &str| request.headers.get(name).cloned();
        if let Some(want) = &basic
            && header("authorization").as_deref() != Some(&format!("Basic {want}"))
        {
            return Answer::new(401, "text/plain", "authentication required")
                .header("WWW-Authenticate", "Basic realm=\"git\"");
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut cgi = Command::new("/usr/lib/git-core/git-http-backend");
        cgi.env_clear()
            .env("GIT_PROJECT_ROOT", &root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", method)
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env("REMOTE_ADDR", "127.0.0.1")
            .env("CONTENT_LENGTH", body.len().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(t) = header("content-type") {
            cgi.env("CONTENT_TYPE", t);
        }
        if let Some(p) = header("git-protocol") {
            cgi.env("HTTP_GIT_PROTOCOL", p);
        }
        let mut child = cgi.spawn().expect("git-http-backend");
        child.stdin.take().unwrap().write_all(body).unwrap();
        let out = child.wait_with_output().unwrap();
        let split = out
            .stdout
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| {
                out.stdout
                    .windows(2)
                    .position(|w| w == b"\n\n")
                    .map(|i| (i, 2))
            })
            .unwrap_or((out.stdout.len(), 0));
        let cgi_head = String::from_utf8_lossy(&out.stdout[..split.0]).to_string();
        let cgi_body = out.stdout[split.0 + split.1..].to_vec();
        let mut status = 200;
        let mut answer_headers = Vec::new();
        for l in cgi_head.lines() {
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            if k.eq_ignore_ascii_case("status") {
                status = v.trim()[..3].parse().unwrap_or(500);
            } else {
                answer_headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let mut a = Answer::new(status, "", cgi_body);
        a.headers = answer_headers;
        a
    })
}

/// `git daemon` serving every repository under `root` on a free loopback port.
pub struct Daemon {
    child: Child,
    pub port: u16,
}

impl Daemon {
    pub fn start(root: &Path) -> Daemon {
        let port = super::free_port();
        let child = Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", root.display()),
                root.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "git daemon never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Daemon { child, port }
    }

    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every file under `dir` but `.git` (and initbox's own entries): relative path, what it is
/// (`file 755`/`file 644` with content, `link -> target`), sorted: two checkouts compare equal
/// exactly when they hold the same files, modes, links and bytes.
pub fn tree(dir: &Path) -> Vec<(String, String)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name == ".git" || name.starts_with(".initbox-") {
                continue;
            }
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().to_string();
            let m = p.symlink_metadata().unwrap();
            if m.file_type().is_symlink() {
                out.push((
                    rel,
                    format!("link -> {}", std::fs::read_link(&p).unwrap().display()),
                ));
            } else if m.is_dir() {
                walk(base, &p, out);
            } else {
                use std::os::unix::fs::PermissionsExt;
                let exec = m.permissions().mode() & 0o111 != 0;
                out.push((
                    rel,
                    format!(
                        "file {} {:?}",
                        if exec { "x" } else { "-" },
                        String::from_utf8_lossy(&std::fs::read(&p).unwrap())
                    ),
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
