//! `initbox download` end to end: a local HTTPS server signed by a test CA (tests/common/http.rs,
//! tests/common/pki.rs) that honours `Range` and can cut a transfer mid-way, moto's S3 server
//! (tests/moto, as restore's tests use it), `file://`; checksums written by the real
//! `sha256sum`, archives by the real `tar`/`zstd`/`zip`, signatures by the real `minisign`.

mod common;
mod moto;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::http::{Answer, Body, HttpServer};
use common::{assert_one_line_error, initbox, run};

const LIMIT: Duration = Duration::from_secs(120);

/// `len` bytes that do not compress (an LCG), the same for the same `seed`.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

/// SHA-256 of a file by coreutils' `sha256sum`.
fn sha256sum(path: &Path) -> String {
    let o = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout)[..64].to_string()
}

fn sha256_of(bytes: &[u8]) -> String {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    sha256sum(f.path())
}

/// The `Range: bytes=N-` start of a request, if any.
fn range_of(req: &str) -> Option<usize> {
    req.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("range")
                .then(|| v.trim().to_string())
        })
        .and_then(|v| v.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
}

/// The answer of a server that honours `Range` for `body`.
fn ranged(body: &[u8], req: &str) -> Answer {
    match range_of(req) {
        Some(from) if from < body.len() => {
            Answer::new(206, "application/octet-stream", &body[from..]).header(
                "Content-Range",
                &format!("bytes {from}-{}/{}", body.len() - 1, body.len()),
            )
        }
        Some(_) => Answer::new(416, "text/plain", ""),
        None => Answer::new(200, "application/octet-stream", body),
    }
}

/// The https server of these tests: a test CA in `dir` (`ca.crt`), answering with `handler`.
fn https(
    dir: &Path,
    handler: impl Fn(usize, &str) -> Answer + Send + Sync + 'static,
) -> HttpServer {
    common::pki::ca_and_localhost(dir, "initbox download test CA");
    HttpServer::start_tls(Some(common::pki::server_config(dir, "server")), handler)
}

fn https_url(s: &HttpServer, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", s.port)
}

fn download(args: &[&str]) -> common::Run {
    run(initbox().arg("download").args(args), LIMIT)
}

/// `initbox download URL --to TO --sha256 SUM EXTRA...`: the call most tests make.
fn fetch(url: &str, to: &Path, sum: &str, extra: &[&str]) -> common::Run {
    let to = to.to_str().unwrap();
    download(&[&[url, "--to", to, "--sha256", sum], extra].concat())
}

/// `.initbox-*` leftovers in `dir` (partial files, staging directories).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".initbox-") && n != ".initbox-download.json")
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn https_download_is_verified_installed_and_not_fetched_again() {
    let tmp = tempfile::tempdir().unwrap();
    let body = Arc::new(data(3 << 20, 1));
    let b = Arc::clone(&body);
    let server = https(tmp.path(), move |_, req| ranged(&b, req));
    let url = https_url(&server, "/files/model.bin");
    let sum = sha256_of(&body);
    let ca = tmp.path().join("ca.crt");
    let to = tmp.path().join("vol/models/model.bin");

    // TLS is verified by default: the test CA is not trusted without --ca-file.
    let r = fetch(&url, &to, &sum, &[]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("certificate"), "{}", r.stderr);
    assert!(!to.exists());

    let r = fetch(
        &url,
        &to,
        &format!("sha256:{sum}"),
        &["--ca-file", ca.to_str().unwrap()],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(std::fs::read(&to).unwrap(), *body);
    assert_eq!(std::fs::metadata(&to).unwrap().mode() & 0o777, 0o644);
    assert!(leftovers(to.parent().unwrap()).is_empty());
    assert!(
        r.stderr.contains("verified against --sha256"),
        "{}",
        r.stderr
    );

    // A restarted pod: the file is there and verifies, nothing is requested.
    let hits = server.hits();
    let r = fetch(&url, &to, &sum, &["--ca-file", ca.to_str().unwrap()]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        server.hits(),
        hits,
        "no request for a file already in place"
    );
    assert!(r.stderr.contains("nothing to do"), "{}", r.stderr);
    // A directory as --to: the file lands there under its own name (as with curl -O).
    let dir = format!("{}/", to.parent().unwrap().display());
    let r = fetch(
        &url,
        Path::new(&dir),
        &sum,
        &["--ca-file", ca.to_str().unwrap()],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        server.hits(),
        hits,
        "model.bin is already there: {}",
        r.all()
    );
}

#[test]
fn checksums_files_as_sha256sum_writes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let pub_dir = tmp.path().join("release");
    std::fs::create_dir(&pub_dir).unwrap();
    std::fs::write(pub_dir.join("tool-1.2-linux.tar.gz"), data(100_000, 2)).unwrap();
    std::fs::write(pub_dir.join("tool-1.2-darwin.tar.gz"), data(100_000, 3)).unwrap();
    // What release pages publish: `sha256sum * > SHA256SUMS`, and the BSD form of --tag.
    for (file, tag) in [("SHA256SUMS", false), ("SHA256SUMS.tag", true)] {
        let mut c = Command::new("sh");
        c.current_dir(&pub_dir).arg("-c").arg(format!(
            "sha256sum {} tool-1.2-darwin.tar.gz tool-1.2-linux.tar.gz > {file}",
            if tag { "--tag" } else { "" }
        ));
        assert!(c.status().unwrap().success());
    }
    let dir = pub_dir.clone();
    let server = https(tmp.path(), move |_, req| {
        let path = req.split_whitespace().nth(1).unwrap_or("/");
        match std::fs::read(dir.join(path.trim_start_matches('/'))) {
            Ok(b) => ranged(&b, req),
            Err(_) => Answer::new(404, "text/plain", "no"),
        }
    });
    let ca = tmp.path().join("ca.crt");
    for sums in ["SHA256SUMS", "SHA256SUMS.tag"] {
        let to = tmp.path().join(format!("out-{sums}/tool.tar.gz"));
        let r = download(&[
            &https_url(&server, "/tool-1.2-linux.tar.gz"),
            "--sha256sums",
            &https_url(&server, &format!("/{sums}")),
            "--to",
            to.to_str().unwrap(),
            "--ca-file",
            ca.to_str().unwrap(),
        ]);
        assert_eq!(r.code(), 0, "{sums}: {}", r.all());
        assert_eq!(
            std::fs::read(&to).unwrap(),
            std::fs::read(pub_dir.join("tool-1.2-linux.tar.gz")).unwrap()
        );
    }
    // A checksums file (here a local path) without a line for the file: invalid input (3).
    let to = tmp.path().join("out-none/x");
    std::fs::write(
        tmp.path().join("OTHER"),
        format!("{}  other.bin\n", "a".repeat(64)),
    )
    .unwrap();
    let r = download(&[
        &https_url(&server, "/tool-1.2-linux.tar.gz"),
        "--sha256sums",
        tmp.path().join("OTHER").to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
        "--ca-file",
        ca.to_str().unwrap(),
    ]);
    assert_one_line_error(&r, 3, "has no line for tool-1.2-linux.tar.gz");
    assert!(!to.exists());
}

#[test]
fn a_transfer_cut_mid_way_is_resumed_with_range() {
    let tmp = tempfile::tempdir().unwrap();
    let body = Arc::new(data(2 << 20, 4));
    let half = body.len() / 2 + 123;
    let b = Arc::clone(&body);
    // The first answer announces the whole length and stops after `half` bytes.
    let server = https(tmp.path(), move |n, req| {
        if n == 1 {
            Answer {
                body: Body::Cut(b.to_vec(), half, Duration::ZERO),
                ..Answer::new(200, "application/octet-stream", "")
            }
        } else {
            ranged(&b, req)
        }
    });
    let to = tmp.path().join("out/data.bin");
    let r = fetch(
        &https_url(&server, "/data.bin"),
        &to,
        &sha256_of(&body),
        &["--ca-file", tmp.path().join("ca.crt").to_str().unwrap()],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(std::fs::read(&to).unwrap(), *body);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(range_of(&reqs[0]), None);
    assert_eq!(range_of(&reqs[1]), Some(half), "{}", reqs[1]);
    assert!(r.stderr.contains("resuming"), "{}", r.stderr);
    assert!(leftovers(to.parent().unwrap()).is_empty());
}

#[test]
fn a_killed_run_leaves_a_partial_file_the_next_run_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let body = Arc::new(data(4 << 20, 5));
    let half = body.len() / 2;
    let b = Arc::clone(&body);
    // The first transfer stalls after half the file; the run is killed there (SIGKILL).
    let server = https(tmp.path(), move |n, req| {
        if n == 1 {
            Answer {
                body: Body::Cut(b.to_vec(), half, Duration::from_secs(60)),
                ..Answer::new(200, "application/octet-stream", "")
            }
        } else {
            ranged(&b, req)
        }
    });
    let out = tmp.path().join("out");
    let to = out.join("data.bin");
    let sum = sha256_of(&body);
    let ca = tmp.path().join("ca.crt");
    let args = [
        https_url(&server, "/data.bin"),
        "--to".into(),
        to.to_str().unwrap().into(),
        "--sha256".into(),
        sum.clone(),
        "--ca-file".into(),
        ca.to_str().unwrap().into(),
    ];
    let mut child = initbox()
        .arg("download")
        .args(&args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let part = out.join(format!(".initbox-download-{}.part", &sum[..16]));
    let started = std::time::Instant::now();
    // Most of the first half is on disk (the last chunks may still be in flight).
    while std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) < (half / 2) as u64 {
        assert!(started.elapsed() < LIMIT, "the first half never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!to.exists(), "nothing installed by the killed run");
    let kept = std::fs::metadata(&part).unwrap().len() as usize;
    assert!(kept >= half / 2 && kept <= half, "{kept}");

    let r = run(initbox().arg("download").args(&args), LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(std::fs::read(&to).unwrap(), *body);
    let reqs = server.requests();
    assert_eq!(range_of(reqs.last().unwrap()), Some(kept), "{reqs:?}");
    assert!(
        r.stderr.contains("resuming a partial download"),
        "{}",
        r.stderr
    );
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
}

#[test]
fn a_partial_file_from_another_version_is_started_over() {
    let tmp = tempfile::tempdir().unwrap();
    let body = Arc::new(data(1 << 20, 6));
    let sum = sha256_of(&body);
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // Left by an earlier run against a server that has since changed the file.
    std::fs::write(
        out.join(format!(".initbox-download-{}.part", &sum[..16])),
        data(300_000, 99),
    )
    .unwrap();
    let b = Arc::clone(&body);
    let server = HttpServer::start(move |_, req| ranged(&b, req));
    let to = out.join("data.bin");
    let r = fetch(&server.url("/data.bin"), &to, &sum, &[]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(std::fs::read(&to).unwrap(), *body);
    assert!(r.stderr.contains("starting over"), "{}", r.stderr);
    let reqs = server.requests();
    assert_eq!(range_of(&reqs[0]), Some(300_000));
    assert_eq!(range_of(reqs.last().unwrap()), None);
}

#[test]
fn a_bad_checksum_fails_with_exit_1_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let body = Arc::new(data(1 << 20, 7));
    let b = Arc::clone(&body);
    let server = HttpServer::start(move |_, req| ranged(&b, req));
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // The version in place stays as it is.
    std::fs::write(out.join("data.bin"), b"the old version").unwrap();
    let wrong = sha256_of(b"something else");
    let r = fetch(&server.url("/data.bin"), &out.join("data.bin"), &wrong, &[]);
    assert_one_line_error(&r, 1, "does not match --sha256");
    assert!(r.stderr.contains(&wrong), "{}", r.stderr);
    assert_eq!(
        std::fs::read(out.join("data.bin")).unwrap(),
        b"the old version"
    );
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));

    // Unpacking: nothing unpacked either.
    let dir = tmp.path().join("unpacked");
    let r = download(&[
        &server.url("/data.tar"),
        "--to",
        dir.to_str().unwrap(),
        "--unpack",
        "--sha256",
        &wrong,
    ]);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn usage_errors_are_one_line() {
    // No checksum: refused before anything is fetched.
    let r = download(&["https://127.0.0.1:1/x", "--to", "/tmp/never"]);
    assert_one_line_error(&r, 2, "a checksum is required");
    let r = download(&[
        "https://127.0.0.1:1/x",
        "--to",
        "/tmp/never",
        "--sha256",
        "abc",
    ]);
    assert_eq!(r.code(), 2, "{}", r.all());
    assert!(r.stderr.contains("not a SHA-256 digest"), "{}", r.stderr);
    let r = download(&[
        "ftp://h/x",
        "--to",
        "/tmp/never",
        "--sha256",
        &"a".repeat(64),
    ]);
    assert_one_line_error(&r, 2, "not an http://, https://, s3:// or file:// URL");
}

#[test]
fn s3_objects_download_and_resume_from_moto() {
    let moto = moto::Moto::start(None);
    moto.make_bucket("dl-models");
    let tmp = tempfile::tempdir().unwrap();
    let body = data(3 << 20, 8);
    let src = tmp.path().join("weights.bin");
    std::fs::write(&src, &body).unwrap();
    moto.py(&format!(
        "s3.put_object(Bucket='dl-models', Key='llm/weights.bin', Body=open('{}', 'rb').read())",
        src.display()
    ));
    let sum = sha256sum(&src);
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // Half the object from an earlier run: only the rest is fetched (a ranged GET).
    std::fs::write(
        out.join(format!(".initbox-download-{}.part", &sum[..16])),
        &body[..body.len() / 2],
    )
    .unwrap();
    let to = out.join("weights.bin");
    let r = run(
        moto::with_s3(initbox(), &moto).args([
            "download",
            "s3://dl-models/llm/weights.bin",
            "--to",
            to.to_str().unwrap(),
            "--sha256",
            &sum,
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(std::fs::read(&to).unwrap(), body);
    assert!(
        r.stderr.contains("resuming a partial download"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains(&format!("received={}", body.len() - body.len() / 2)),
        "only the second half is received: {}",
        r.stderr
    );
    // A missing object is a failure naming it.
    let r = run(
        moto::with_s3(initbox(), &moto).args([
            "download",
            "s3://dl-models/llm/missing.bin",
            "--to",
            out.join("m").to_str().unwrap(),
            "--sha256",
            &sum,
        ]),
        LIMIT,
    );
    assert_one_line_error(&r, 1, "s3://dl-models/llm/missing.bin: no such object");
}

/// A tree to archive: files in subdirectories, a relative symlink.
fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("app/conf")).unwrap();
    std::fs::write(root.join("app/conf/app.yaml"), "port: 8080\n").unwrap();
    std::fs::write(root.join("app/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(
        root.join("app/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("conf/app.yaml", root.join("app/current.yaml")).unwrap();
}

fn sh(dir: &Path, script: &str) {
    let o = Command::new("sh")
        .current_dir(dir)
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(o.status.success(), "{script}: {}", common::text(&o));
}

/// A plain HTTP server of the files in `dir`, honouring `Range`.
fn serve_dir(dir: &Path) -> HttpServer {
    let dir = dir.to_path_buf();
    HttpServer::start(move |_, req| {
        let path = req.split_whitespace().nth(1).unwrap_or("/");
        match std::fs::read(dir.join(path.trim_start_matches('/'))) {
            Ok(b) => ranged(&b, req),
            Err(_) => Answer::new(404, "text/plain", "no"),
        }
    })
}

#[test]
fn archives_are_unpacked_into_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tree(&src);
    // Made by the real tools, as a release pipeline makes them.
    sh(
        &src,
        "tar --zstd -cf ../app.tar.zst app && tar czf ../app.tgz app && zip -qry ../app.zip app",
    );
    let server = serve_dir(tmp.path());
    for archive in ["app.tar.zst", "app.tgz", "app.zip"] {
        let dir = tmp.path().join(format!("vol-{archive}"));
        let sum = sha256sum(&tmp.path().join(archive));
        let args = [
            server.url(&format!("/{archive}")),
            "--to".into(),
            dir.to_str().unwrap().into(),
            "--unpack".into(),
            "--sha256".into(),
            sum,
        ];
        let r = download(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(r.code(), 0, "{archive}: {}", r.all());
        assert_eq!(
            std::fs::read_to_string(dir.join("app/current.yaml")).unwrap(),
            "port: 8080\n",
            "{archive}"
        );
        assert_eq!(
            std::fs::metadata(dir.join("app/run.sh")).unwrap().mode() & 0o777,
            0o755,
            "{archive}"
        );
        assert!(
            leftovers(&dir).is_empty(),
            "{archive}: {:?}",
            leftovers(&dir)
        );
        assert!(dir.join(".initbox-download.json").exists());
        // Again: already unpacked, nothing fetched.
        let hits = server.hits();
        let r = download(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(r.code(), 0, "{}", r.all());
        assert_eq!(server.hits(), hits, "{archive}: fetched again");
    }
    // A new version replaces the old one: its entries in, the old version's entries gone.
    let v2 = tmp.path().join("v2");
    std::fs::create_dir_all(v2.join("app2")).unwrap();
    std::fs::write(v2.join("app2/new.txt"), "v2\n").unwrap();
    sh(&v2, "tar --zstd -cf ../app2.tar.zst app2");
    let dir = tmp.path().join("vol-app.tar.zst");
    let r = download(&[
        &server.url("/app2.tar.zst"),
        "--to",
        dir.to_str().unwrap(),
        "--unpack",
        "--sha256",
        &sha256sum(&tmp.path().join("app2.tar.zst")),
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        std::fs::read_to_string(dir.join("app2/new.txt")).unwrap(),
        "v2\n"
    );
    assert!(
        !dir.join("app").exists(),
        "the old version's entries are removed"
    );
}

#[test]
fn archives_with_escaping_paths_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // Hostile archives, written with Python's tarfile and zipfile (tar and zip refuse to).
    let py = format!(
        "import tarfile, zipfile, io\n\
         t = tarfile.open('{d}/evil.tar.gz', 'w:gz')\n\
         i = tarfile.TarInfo('ok.txt'); i.size = 2; t.addfile(i, io.BytesIO(b'ok'))\n\
         i = tarfile.TarInfo('../escaped.txt'); i.size = 4; t.addfile(i, io.BytesIO(b'evil'))\n\
         t.close()\n\
         t = tarfile.open('{d}/link.tar', 'w')\n\
         i = tarfile.TarInfo('etc'); i.type = tarfile.SYMTYPE; i.linkname = '/etc'; t.addfile(i)\n\
         t.close()\n\
         z = zipfile.ZipFile('{d}/evil.zip', 'w')\n\
         z.writestr('ok.txt', 'ok'); z.writestr('../escaped.txt', 'evil')\n\
         z.close()\n",
        d = tmp.path().display()
    );
    common::python(&py, &[]);
    for (archive, why) in [
        ("evil.tar.gz", "contains '..'"),
        ("link.tar", "leaves the target"),
        ("evil.zip", "contains '..'"),
    ] {
        let vol = tmp.path().join(format!("vol-{archive}"));
        let dir = vol.join("data");
        let r = download(&[
            &format!("file://{}/{archive}", tmp.path().display()),
            "--to",
            dir.to_str().unwrap(),
            "--unpack",
            "--sha256",
            &sha256sum(&tmp.path().join(archive)),
        ]);
        assert_eq!(r.code(), 3, "{archive}: {}", r.all());
        let errors: Vec<&str> = r.stderr.lines().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(errors.len(), 1, "{}", r.stderr);
        assert!(
            errors[0].contains(archive) && errors[0].contains(why),
            "{}",
            errors[0]
        );
        assert!(errors[0].contains("nothing was installed"), "{}", errors[0]);
        assert!(!vol.join("escaped.txt").exists() && !tmp.path().join("escaped.txt").exists());
        // Nothing installed, not even the entries before the bad one; no staging left.
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{archive}: {left:?}");
    }
}

#[test]
fn minisign_signatures_are_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("tool.bin"), data(500_000, 9)).unwrap();
    // A key pair without a password, and a signature, by the real minisign.
    sh(
        d,
        "minisign -G -W -p key.pub -s key.sec >/dev/null && minisign -S -s key.sec -m tool.bin >/dev/null",
    );
    std::fs::write(d.join("other.bin"), data(500_000, 10)).unwrap();
    std::fs::copy(d.join("tool.bin.minisig"), d.join("other.bin.minisig")).unwrap();
    let key = d.join("key.pub");
    let r = download(&[
        &format!("file://{}/tool.bin", d.display()),
        "--to",
        d.join("out/tool.bin").to_str().unwrap(),
        "--minisign-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        std::fs::read(d.join("out/tool.bin")).unwrap(),
        std::fs::read(d.join("tool.bin")).unwrap()
    );
    // A file the signature is not for: exit 1, nothing installed.
    let r = download(&[
        &format!("file://{}/other.bin", d.display()),
        "--to",
        d.join("out/other.bin").to_str().unwrap(),
        "--minisign-key",
        key.to_str().unwrap(),
    ]);
    assert_one_line_error(&r, 1, "signature does not verify");
    assert!(!d.join("out/other.bin").exists());
    assert!(leftovers(&d.join("out")).is_empty());
}

#[test]
fn works_as_65532_in_a_volume_it_owns() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to start a process as 65532");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let vol = tmp.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::os::unix::fs::chown(&vol, Some(65532), Some(65532)).unwrap();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let src = tmp.path().join("blob");
    std::fs::write(&src, data(200_000, 11)).unwrap();
    let src_url = format!("file://{}", src.display());
    let sum = sha256sum(&src);
    let mut cmd = initbox();
    use std::os::unix::process::CommandExt;
    cmd.uid(65532).gid(65532).args([
        "download",
        &src_url,
        "--to",
        vol.join("sub/blob").to_str().unwrap(),
        "--sha256",
        &sum,
        "--mode",
        "0640",
    ]);
    let r = run(&mut cmd, LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    let m = std::fs::metadata(vol.join("sub/blob")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (65532, 65532, 0o640));
    // A directory it may not write: exit 4, named.
    let mut cmd = initbox();
    cmd.uid(65532).gid(65532).args([
        "download",
        &src_url,
        "--to",
        tmp.path().join("blob2").to_str().unwrap(),
        "--sha256",
        &sum,
    ]);
    let r = run(&mut cmd, LIMIT);
    assert_eq!(r.code(), 4, "{}", r.all());
    assert!(r.stderr.contains("Permission denied"), "{}", r.stderr);
}

#[test]
fn composes_in_run_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("seed.sql");
    std::fs::write(&src, "create table t(x int);\n").unwrap();
    let sum = sha256sum(&src);
    let to: PathBuf = tmp.path().join("vol/seed.sql");
    let copy = tmp.path().join("copied");
    let steps = tmp.path().join("steps.yaml");
    let write_steps = |sha: &str| {
        std::fs::write(
            &steps,
            format!(
                "steps:\n\
                 - name: fetch\n  applet: download\n  args: [\"file://{src}\", --to, \"{to}\", --sha256, \"{sha}\"]\n\
                 - name: use\n  command: [cp, \"{to}\", \"{copy}\"]\n",
                src = src.display(),
                to = to.display(),
                copy = copy.display()
            ),
        )
        .unwrap();
    };
    write_steps(&sum);
    let r = run(initbox().arg("run").arg("-f").arg(&steps), LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        std::fs::read_to_string(&copy).unwrap(),
        "create table t(x int);\n"
    );
    assert!(r.stderr.contains("step{name=fetch}"), "{}", r.stderr);
    // A download that does not verify stops the steps: the next one never runs.
    std::fs::remove_file(&copy).unwrap();
    std::fs::remove_file(&to).unwrap();
    write_steps(&sha256_of(b"not it"));
    let r = run(initbox().arg("run").arg("-f").arg(&steps), LIMIT);
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(!copy.exists() && !to.exists());
}

#[test]
fn server_errors_are_retried_and_refusals_are_not() {
    let tmp = tempfile::tempdir().unwrap();
    let body = Arc::new(data(100_000, 12));
    let sum = sha256_of(&body);
    let b = Arc::clone(&body);
    let server = HttpServer::start(move |n, req| {
        let path = req.split_whitespace().nth(1).unwrap_or("/");
        match path {
            "/flaky.bin" if n <= 2 => Answer::new(503, "text/plain", "busy"),
            "/flaky.bin" => ranged(&b, req),
            "/private.bin" => Answer::new(403, "text/plain", "no"),
            _ => Answer::new(404, "text/plain", "no"),
        }
    });
    let to = tmp.path().join("out/f.bin");
    let r = fetch(&server.url("/flaky.bin"), &to, &sum, &[]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(std::fs::read(&to).unwrap(), *body);
    assert_eq!(server.hits(), 3);
    // 404 and 403 are answers, not accidents: no retry; 403 is exit 5.
    let hits = server.hits();
    let other = tmp.path().join("out/other.bin");
    let r = fetch(&server.url("/gone.bin"), &other, &sum, &[]);
    assert_one_line_error(&r, 1, "HTTP 404");
    let r = fetch(&server.url("/private.bin"), &other, &sum, &[]);
    assert_one_line_error(&r, 5, "HTTP 403");
    assert_eq!(server.hits(), hits + 2);
    assert!(!other.exists());
}

/// Every entry below `root` as `path type detail` (file: mode and content digest; link: its
/// target), sorted; initbox's own `.initbox-*` entries left out.
fn describe_tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if rel.starts_with(".initbox-") {
                continue;
            }
            let m = std::fs::symlink_metadata(&path).unwrap();
            if m.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push(format!("{rel} link {}", target.display()));
            } else if m.is_dir() {
                out.push(format!("{rel} dir"));
                walk(root, &path, out);
            } else {
                out.push(format!(
                    "{rel} file {:o} {}",
                    m.mode() & 0o777,
                    sha256sum(&path)
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[test]
fn strip_components_unpacks_what_gnu_tar_does() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    // A release archive: one top directory, nested files, a relative symlink, a hard link, and
    // a top-level file with too few components for N = 1.
    tree(&src.join("tool-1.2"));
    std::fs::create_dir_all(src.join("tool-1.2/bin")).unwrap();
    std::fs::write(src.join("tool-1.2/bin/tool"), "#!/bin/sh\n").unwrap();
    std::fs::hard_link(
        src.join("tool-1.2/bin/tool"),
        src.join("tool-1.2/bin/tool-alias"),
    )
    .unwrap();
    std::fs::write(src.join("README"), "top\n").unwrap();
    sh(
        &src,
        "tar czf ../rel.tgz ./tool-1.2 README && tar cf ../rel.tar tool-1.2 README && zip -qry ../rel.zip tool-1.2 README",
    );
    let server = serve_dir(tmp.path());
    for n in ["1", "2", "3"] {
        for archive in ["rel.tgz", "rel.tar", "rel.zip"] {
            // What GNU tar itself unpacks with the option (from the tar of the same tree for
            // the zip; rel.tgz names its entries ./tool-1.2/…, where `.` is a component too).
            let reference = tmp.path().join(format!("ref-{n}-{archive}"));
            std::fs::create_dir_all(&reference).unwrap();
            let tar_of = if archive == "rel.zip" {
                "rel.tar"
            } else {
                archive
            };
            sh(
                &reference,
                &format!("tar xf ../{tar_of} --strip-components {n}"),
            );
            let want = describe_tree(&reference);
            assert!(!want.is_empty(), "{n} {archive}: GNU tar unpacked nothing");
            let dir = tmp.path().join(format!("vol-{n}-{archive}"));
            let r = download(&[
                &server.url(&format!("/{archive}")),
                "--to",
                dir.to_str().unwrap(),
                "--unpack",
                "--strip-components",
                n,
                "--sha256",
                &sha256sum(&tmp.path().join(archive)),
            ]);
            assert_eq!(r.code(), 0, "{n} {archive}: {}", r.all());
            // zip has no hard links: there the alias is a copy, the same content and mode.
            assert_eq!(
                describe_tree(&dir),
                want,
                "{archive} --strip-components {n}"
            );
        }
    }
    // The variable says the same.
    let dir = tmp.path().join("vol-env");
    let r = run(
        initbox()
            .env("INITBOX_DOWNLOAD_STRIP_COMPONENTS", "1")
            .args(["download", &server.url("/rel.tar"), "--to"])
            .arg(&dir)
            .args([
                "--unpack",
                "--sha256",
                &sha256sum(&tmp.path().join("rel.tar")),
            ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(dir.join("bin/tool").exists() && !dir.join("README").exists());
}

#[test]
fn strip_components_keeps_the_escape_rules() {
    let tmp = tempfile::tempdir().unwrap();
    // `top/../../x` is harmless-looking before stripping one component, `../x` after;
    // `top/sub/../../../y` the same at two.
    let py = format!(
        "import tarfile, io\n\
         t = tarfile.open('{d}/sneaky.tar', 'w')\n\
         i = tarfile.TarInfo('top/ok.txt'); i.size = 2; t.addfile(i, io.BytesIO(b'ok'))\n\
         i = tarfile.TarInfo('top/../../escaped.txt'); i.size = 4; t.addfile(i, io.BytesIO(b'evil'))\n\
         t.close()\n\
         t = tarfile.open('{d}/link.tar', 'w')\n\
         i = tarfile.TarInfo('top/out'); i.type = tarfile.SYMTYPE; i.linkname = '../..'; t.addfile(i)\n\
         t.close()\n",
        d = tmp.path().display()
    );
    common::python(&py, &[]);
    for (archive, needle) in [
        ("sneaky.tar", "entry ../../escaped.txt: contains '..'"),
        (
            "link.tar",
            "entry out: a symbolic link to ../.. leaves the target",
        ),
    ] {
        let path = tmp.path().join(archive);
        let dir = tmp.path().join(format!("vol-{archive}"));
        let r = download(&[
            &format!("file://{}", path.display()),
            "--to",
            dir.to_str().unwrap(),
            "--unpack",
            "tar",
            "--strip-components",
            "1",
            "--sha256",
            &sha256sum(&path),
        ]);
        assert_eq!(r.code(), 3, "{archive}: {}", r.all());
        let errors: Vec<&str> = r.stderr.lines().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(errors.len(), 1, "{}", r.stderr);
        assert!(errors[0].contains(needle), "{}", errors[0]);
        assert!(!tmp.path().join("escaped.txt").exists());
        assert!(
            describe_tree(&dir).is_empty(),
            "{archive}: {:?}",
            describe_tree(&dir)
        );
    }
    // Without --unpack the option is a usage error.
    let r = download(&[
        "file:///nonexistent",
        "--to",
        tmp.path().join("f").to_str().unwrap(),
        "--strip-components",
        "1",
        "--sha256",
        &"0".repeat(64),
    ]);
    assert_eq!(r.code(), 2, "{}", r.all());
}

/// The value of request header `name` (case-insensitive) in a recorded request.
fn header_of(req: &str, name: &str) -> Option<String> {
    req.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

#[test]
fn private_sources_get_the_headers_on_their_origin_only() {
    let tmp = tempfile::tempdir().unwrap();
    let body = Arc::new(data(200_000, 31));
    let sum = sha256_of(&body);
    const TOKEN: &str = "tok-Canary-7f3a9c1e5b";
    const KEY: &str = "key-Canary-2d8e4b6a0c";
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    // Another origin (another port) that a redirect leads to, like a release's CDN.
    common::pki::ca_and_localhost(tmp.path(), "initbox download test CA");
    let b = Arc::clone(&body);
    let cdn = HttpServer::start_tls(
        Some(common::pki::server_config(tmp.path(), "server")),
        move |_, req| ranged(&b, req),
    );
    let cdn_url = https_url(&cdn, "/blob/f.bin");
    let b = Arc::clone(&body);
    let origin = HttpServer::start_tls(
        Some(common::pki::server_config(tmp.path(), "server")),
        move |_, req| {
            let path = req.split_whitespace().nth(1).unwrap_or("/");
            let authorized = header_of(req, "authorization") == Some(format!("Bearer {TOKEN}"))
                && header_of(req, "x-api-key").as_deref() == Some(KEY);
            match path {
                _ if !authorized => Answer::new(401, "text/plain", "who are you"),
                "/private.bin" => ranged(&b, req),
                "/same-origin.bin" => Answer::redirect("/private.bin"),
                "/release.bin" => Answer::redirect(&cdn_url),
                _ => Answer::new(404, "text/plain", "no"),
            }
        },
    );
    let ca = tmp.path().join("ca.crt");
    let token_header = format!("Authorization: Bearer @{}", token_file.display());
    let key_header = format!("X-Api-Key: {KEY}");
    // At -v -v (every request line logged) unless `quiet`: the one-line error check.
    let get_as = |quiet: bool, path: &str, to: &str, headers: &[&str]| {
        let mut args = vec![
            https_url(&origin, path),
            "--to".into(),
            tmp.path().join(to).display().to_string(),
            "--sha256".into(),
            sum.clone(),
            "--ca-file".into(),
            ca.display().to_string(),
        ];
        if !quiet {
            args.extend(["-v".into(), "-v".into()]);
        }
        for h in headers {
            args.push("--header".into());
            args.push(h.to_string());
        }
        download(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let get = |path: &str, to: &str, headers: &[&str]| get_as(false, path, to, headers);
    let leaks = |r: &common::Run| {
        for secret in [TOKEN, KEY, &TOKEN[4..16], &KEY[4..16]] {
            assert!(!r.all().contains(secret), "{secret} leaked: {}", r.all());
        }
    };

    // The headers arrive (one read from a file), and the file is installed.
    let r = get("/private.bin", "a.bin", &[&token_header, &key_header]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(std::fs::read(tmp.path().join("a.bin")).unwrap(), *body);
    leaks(&r);

    // A redirect on the same origin keeps them.
    let r = get("/same-origin.bin", "b.bin", &[&token_header, &key_header]);
    assert_eq!(r.code(), 0, "{}", r.all());
    leaks(&r);

    // A redirect to another origin is followed without them, as curl does.
    let r = get("/release.bin", "c.bin", &[&token_header, &key_header]);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(std::fs::read(tmp.path().join("c.bin")).unwrap(), *body);
    let at_cdn = cdn.requests();
    assert_eq!(at_cdn.len(), 1, "{at_cdn:?}");
    assert_eq!(
        header_of(&at_cdn[0], "authorization"),
        None,
        "{}",
        at_cdn[0]
    );
    assert_eq!(header_of(&at_cdn[0], "x-api-key"), None, "{}", at_cdn[0]);
    leaks(&r);

    // A wrong token is refused by the server: exit 5, one line, no value in it.
    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, "tok-Wrong-Canary-99\n").unwrap();
    let wrong_header = format!("Authorization: Bearer @{}", wrong.display());
    let r = get_as(true, "/private.bin", "d.bin", &[&wrong_header, &key_header]);
    assert_one_line_error(&r, 5, "HTTP 401");
    assert!(!r.all().contains("tok-Wrong-Canary-99"), "{}", r.all());
    leaks(&r);
    let r = get("/private.bin", "d.bin", &[&wrong_header, &key_header]);
    assert_eq!(r.code(), 5, "{}", r.all());
    assert!(!r.all().contains("tok-Wrong-Canary-99"), "{}", r.all());
    leaks(&r);
    assert!(!tmp.path().join("d.bin").exists());

    // Headers are never sent over plain http: a usage error before any request.
    let plain = HttpServer::start(|_, _| Answer::new(200, "text/plain", "x"));
    let r = download(&[
        &plain.url("/f"),
        "--to",
        tmp.path().join("e.bin").to_str().unwrap(),
        "--sha256",
        &sum,
        "--header",
        &token_header,
    ]);
    assert_one_line_error(&r, 2, "--header is sent over https only");
    assert_eq!(plain.hits(), 0);
    leaks(&r);
}
