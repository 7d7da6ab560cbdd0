//! End-to-end tests of the rules that keep secret values out of everything initbox prints:
//! help output shows variable names only, and errors about a secret source name the source and
//! the problem, never its content.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::http::{Answer, HttpServer};
use common::{initbox, run};

const LIMIT: Duration = Duration::from_secs(30);
const CANARY: &str = "help-canary-Vq93";

fn applets() -> Vec<String> {
    let r = run(initbox().arg("--list"), LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    r.stdout.lines().map(str::to_string).collect()
}

/// Every `INITBOX_*` name in `text`.
fn env_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("INITBOX_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// 12.1: `--help` and `-h` of every applet and of the front show each variable's name, never
/// its value, with every variable of every applet set to a canary.
#[test]
fn help_shows_variable_names_never_values() {
    let applets = applets();
    assert!(applets.len() >= 10, "{applets:?}");
    let mut names = BTreeSet::new();
    let mut per_applet = Vec::new();
    for a in &applets {
        let r = run(initbox().args([a, "--help"]), LIMIT);
        assert_eq!(r.code(), 0, "{a} --help: {}", r.all());
        let found = env_names(&r.stdout);
        assert!(!found.is_empty(), "{a} --help names no variable");
        names.extend(found.iter().cloned());
        per_applet.push((a.clone(), found));
    }
    let with_canaries = || {
        let mut c = initbox();
        for n in &names {
            c.env(n, CANARY);
        }
        c
    };
    let mut probes = 0;
    for (a, found) in &per_applet {
        for flag in ["--help", "-h"] {
            let r = run(with_canaries().args([a.as_str(), flag]), LIMIT);
            probes += 1;
            assert_eq!(r.code(), 0, "{a} {flag}: {}", r.all());
            assert!(
                !r.all().contains(CANARY),
                "{a} {flag} shows a value:\n{}",
                r.all()
            );
            if flag == "--help" {
                for n in found {
                    assert!(r.stdout.contains(n), "{a} --help lost the name {n}");
                }
            }
        }
    }
    for args in [&["--help"][..], &["-h"], &["help", "wait-for"]] {
        let r = run(with_canaries().args(args), LIMIT);
        probes += 1;
        assert!(!r.all().contains(CANARY), "{args:?}:\n{}", r.all());
    }
    assert!(probes > 20);
}

fn tmpdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("initbox-redaction-{tag}-"))
        .tempdir()
        .unwrap()
}

/// Assert a one-line error with `code` that names `path` and holds none of `secrets`.
fn assert_names_source_not_content(r: &common::Run, code: i32, path: &Path, secrets: &[&str]) {
    assert_eq!(r.code(), code, "{}", r.all());
    let shown = path.display().to_string();
    assert!(
        r.stderr.contains(&shown),
        "should name {shown}: {}",
        r.stderr
    );
    for s in secrets {
        assert!(
            !r.all().contains(s),
            "echoes the content {s:?}: {}",
            r.all()
        );
    }
}

/// 21.5: a `--file` spec that is plain text (here: a database URL with its password) is an
/// invalid spec named by its path; its text is not echoed.
#[test]
fn network_check_spec_errors_never_echo_the_file() {
    let dir = tmpdir("nc-spec");
    let spec = dir.path().join("checks.yaml");
    std::fs::write(&spec, "postgres://app:spec-canary-Hy62@db:5432/app\n").unwrap();
    let r = run(initbox().args(["network-check", "-f"]).arg(&spec), LIMIT);
    assert_names_source_not_content(&r, 3, &spec, &["spec-canary-Hy62", "postgres://"]);
    // A misspelt key is still named: it is a plain word.
    std::fs::write(&spec, "chekcs:\n  - tcp: h:1\n").unwrap();
    let r = run(initbox().args(["network-check", "-f"]).arg(&spec), LIMIT);
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(r.stderr.contains("unknown field `chekcs`"), "{}", r.stderr);
}

/// 21.5: a step whose `args:` is a string (not a list) is an error naming the file and the
/// step, without the string.
#[test]
fn run_steps_errors_never_echo_the_args() {
    let dir = tmpdir("run-args");
    let steps = dir.path().join("steps.yaml");
    std::fs::write(
        &steps,
        "steps:\n  - applet: wait-for\n    args: \"postgres://app:args-canary-Ke55@db:5432/app\"\n",
    )
    .unwrap();
    let r = run(initbox().args(["run", "-f"]).arg(&steps), LIMIT);
    assert_names_source_not_content(&r, 3, &steps, &["args-canary-Ke55", "postgres://"]);
    assert!(r.stderr.contains("step 1"), "{}", r.stderr);
}

/// 21.5: a missing key of a `ref+file://` document lists the key names, never the lines of a
/// file that parsed as keys (the hashes of a shadow file).
#[test]
fn fetch_secret_available_keys_never_list_file_lines() {
    let dir = tmpdir("fs-keys");
    let file = dir.path().join("shadow");
    std::fs::write(
        &file,
        "root:$6$shadow-canary-Pa31$Zq0xk3:19000:0:99999:7:::\n\
         daemon:*:19000:0:99999:7:::\n\
         user: plain\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let r = run(
        initbox()
            .args(["fetch-secret", "--dir"])
            .arg(&out)
            .arg(format!("x=ref+file://{}#/nokey", file.display())),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(
        r.stderr.contains("available keys: user, 2 not shown"),
        "{}",
        r.stderr
    );
    for s in ["shadow-canary-Pa31", "19000", "daemon"] {
        assert!(!r.all().contains(s), "lists {s}: {}", r.all());
    }
}

/// The kit's HTTP server (tests/common/http.rs) answering 400 with the request's head in the
/// body, credential headers first (as some services do in their error bodies); it records every
/// request.
fn echo_server() -> HttpServer {
    HttpServer::capture(|_, req| {
        let head = req.text.split("\r\n\r\n").next().unwrap_or_default();
        let mut lines: Vec<&str> = head.lines().map(str::trim_end).collect();
        lines.sort_by_key(|l| !l.to_ascii_lowercase().starts_with("authorization"));
        Answer::bare(400, format!("bad request: {}", lines.join(" | ")))
    })
}

/// 21.4: Basic credentials echoed back by a server are masked whatever the length of the user
/// name (the password's base64 starts at any of the three alignments).
#[test]
fn basic_credentials_echoed_by_a_server_are_masked() {
    use base64::Engine;
    let server = echo_server();
    let port = server.port;
    let pw = "basic-canary-Rt5x9Q";
    for user in ["u", "us", "usr"] {
        let url = format!("json://{user}:{pw}@127.0.0.1:{port}/hook");
        let r = run(
            initbox().args(["notify", "-m", "hello", "--required", &url]),
            LIMIT,
        );
        assert_eq!(r.code(), 1, "{}", r.all());
        assert!(
            r.stderr
                .to_ascii_lowercase()
                .contains("authorization: basic"),
            "the echo is shown: {}",
            r.stderr
        );
        let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        // The password's part of the encoding, less one character on each side.
        let inner = &enc[(user.len() + 1) * 4 / 3 + 1..enc.len() - 3];
        for w in inner.as_bytes().windows(8) {
            let w = std::str::from_utf8(w).unwrap();
            assert!(
                !r.all().contains(w),
                "{user}: shows {w} of {enc}: {}",
                r.all()
            );
        }
        assert!(!r.all().contains(pw));
    }
    assert!(
        server
            .requests()
            .iter()
            .any(|h| h.to_ascii_lowercase().contains("authorization: basic")),
        "Basic auth was sent"
    );
}

/// 21.5: `@Header=` values of a notify URL are secrets: a server that echoes the request
/// headers in its error body shows none of them in initbox's output, at any verbosity.
#[test]
fn notify_header_values_are_secrets() {
    let server = echo_server();
    let port = server.port;
    let url = format!(
        "webhook+http://127.0.0.1:{port}/hook?@X-Api-Key=hdr-canary-Wp48&@Authorization=Bearer+tok-canary-Lm27"
    );
    for verbosity in [
        &[][..],
        &["-v", "-v"],
        &["--log-format", "json", "-v", "-v"],
    ] {
        let r = run(
            initbox()
                .args(["notify", "-m", "hello", "--required"])
                .args(verbosity)
                .arg(&url),
            LIMIT,
        );
        assert_eq!(r.code(), 1, "{}", r.all());
        assert!(r.stderr.contains("bad request"), "{}", r.stderr);
        for s in ["hdr-canary-Wp48", "tok-canary-Lm27"] {
            assert!(!r.all().contains(s), "{verbosity:?} shows {s}: {}", r.all());
        }
    }
    let heads = server.requests();
    assert!(
        heads.iter().any(|h| h
            .to_ascii_lowercase()
            .contains("x-api-key: hdr-canary-wp48")),
        "the header was sent: {heads:?}"
    );
}

/// 21.7: a large repetitive secret (256 KiB of `A`s, read from a file) is registered and every
/// log line scrubbed in linear time: the old scrubber took 6 s to build its matcher for 4 KiB
/// and grew quadratically (hours for this size).
#[test]
fn a_large_repetitive_secret_costs_linear_time() {
    let dir = tmpdir("big");
    let file = dir.path().join("secret");
    let secret = "A".repeat(256 << 10);
    std::fs::write(&file, &secret).unwrap();
    let out = dir.path().join("out");
    let r = run(
        initbox()
            .args(["fetch-secret", "-v", "-v", "--dir"])
            .arg(&out)
            .arg(format!("x=ref+file://{}", file.display())),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", &r.all()[..r.all().len().min(500)]);
    assert!(r.stderr.contains("secrets fetched"), "{}", r.stderr);
    assert!(!r.all().contains("AAAAAAAA"));
    assert_eq!(std::fs::read_to_string(out.join("x")).unwrap(), secret);
}
