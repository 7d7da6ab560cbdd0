//! Bounded inputs and the toolkit's one secret-file rule, end to end.
//!
//! Every input an applet reads (files, `@file`, stdin) is fed /dev/zero or a 20 MB file under
//! an address-space cap (`prlimit --as`), so a regression fails fast instead of eating the
//! machine: the run must end with exit 3 and one line naming the input.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::http::{Answer, HttpServer};
use common::{Run, assert_one_line_error, initbox, run};

/// 1 GiB of address space: plenty for initbox, far below what an unbounded read reaches.
const AS_CAP: &str = "--as=1073741824";
const LIMIT: Duration = Duration::from_secs(30);

/// `initbox ARGS` under the address-space cap, with a clean INITBOX_* environment.
fn capped(args: &[&str]) -> Command {
    capped_at(AS_CAP, args)
}

/// `initbox ARGS` under address-space cap `cap` (a `prlimit` option).
fn capped_at(cap: &str, args: &[&str]) -> Command {
    let mut c = Command::new("prlimit");
    c.arg(cap).arg("--").arg(env!("CARGO_BIN_EXE_initbox"));
    c.args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("INITBOX_") {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A sparse 20 MB file (the size a `stat` sees is what matters for the shortcut; the read
/// limit catches the rest).
fn big_file(path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(20_000_000).unwrap();
}

fn assert_too_large(r: &Run, needle: &str) {
    assert_one_line_error(r, 3, needle);
    assert!(
        r.stderr.contains("larger than"),
        "the reason is the size: {}",
        r.stderr
    );
}

#[test]
fn every_input_from_dev_zero_stops_at_its_limit_with_exit_3() {
    let pg = "postgres://app@127.0.0.1:1/test";
    let cases: &[(&[&str], &str)] = &[
        (&["wait-for", "--once", "@/dev/zero"], "URL file @/dev/zero"),
        (
            &["wait-for", "--once", "--password-file", "/dev/zero", pg],
            "--password-file /dev/zero",
        ),
        (
            &[
                "run-migrations",
                "--password-file",
                "/dev/zero",
                "--database-url",
                pg,
            ],
            "--password-file /dev/zero",
        ),
        (&["run", "-f", "/dev/zero"], "steps file /dev/zero"),
        (
            &[
                "notify",
                "--message-file",
                "/dev/zero",
                "json://127.0.0.1:1/",
            ],
            "--message-file /dev/zero",
        ),
        (
            &[
                "notify",
                "-m",
                "x",
                "webhook+http://127.0.0.1:1/h?token_file=/dev/zero",
            ],
            "token_file",
        ),
        (
            &[
                "notify",
                "-m",
                "x",
                "--body-file",
                "/dev/zero",
                "json://127.0.0.1:1/",
            ],
            "--body-file /dev/zero",
        ),
        (&["network-check", "-f", "/dev/zero"], "spec /dev/zero"),
        (
            &["fetch-secret", "--spec", "/dev/zero"],
            "spec file /dev/zero",
        ),
        (
            &["fetch-secret", "X=ref+file:///dev/zero"],
            "ref+file:///dev/zero",
        ),
        (&["render-config", "/dev/zero", "-"], "/dev/zero"),
        (
            &["render-config", "--engine", "envsubst", "/dev/zero", "-"],
            "/dev/zero",
        ),
    ];
    for (args, needle) in cases {
        let r = run(&mut capped(args), LIMIT);
        assert_too_large(&r, needle);
    }
}

#[test]
fn stdin_is_bounded_too() {
    for args in [
        &["run", "-f", "-"][..],
        &["notify", "-m", "-", "json://127.0.0.1:1/"],
    ] {
        let mut c = capped(args);
        c.stdin(std::fs::File::open("/dev/zero").unwrap());
        let r = run(&mut c, LIMIT);
        assert_too_large(&r, "stdin");
    }
}

#[test]
fn large_data_files_templates_and_migrations_are_refused_and_the_flag_raises_the_limit() {
    let dir = tempdir();
    let data = dir.path().join("values.json");
    big_file(&data);
    let tpl = dir.path().join("t.j2");
    std::fs::write(&tpl, "x\n").unwrap();
    let data_s = data.to_str().unwrap();
    let tpl_s = tpl.to_str().unwrap();
    let r = run(
        &mut capped(&["render-config", tpl_s, "-", "--data", data_s]),
        LIMIT,
    );
    assert_too_large(&r, "data file");
    assert!(r.stderr.contains("values.json"), "{}", r.stderr);
    assert!(r.stderr.contains("--max-input-size"), "{}", r.stderr);

    // A template of 20 MB: refused at 16 MiB, accepted with the flag (a big template is
    // legitimate), and through the variable.
    let big_tpl = dir.path().join("big.tmpl");
    std::fs::write(&big_tpl, "a".repeat(20_000_000)).unwrap();
    let out = dir.path().join("out.conf");
    let (b, o) = (big_tpl.to_str().unwrap(), out.to_str().unwrap());
    let r = run(&mut capped(&["render-config", b, o]), LIMIT);
    assert_too_large(&r, "big.tmpl");
    assert!(!out.exists(), "nothing written");
    let r = run(
        &mut capped(&["render-config", "--max-input-size", "32M", b, o]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 20_000_000);
    std::fs::remove_file(&out).unwrap();
    let r = run(
        capped(&["render-config", b, o]).env("INITBOX_MAX_INPUT_SIZE", "32M"),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());

    // A 20 MB migration file.
    let mig = dir.path().join("migrations");
    std::fs::create_dir(&mig).unwrap();
    big_file(&mig.join("001_big.sql"));
    let r = run(
        &mut capped(&[
            "run-migrations",
            "--database-url",
            "sqlite::memory:",
            "--dir",
            mig.to_str().unwrap(),
        ]),
        LIMIT,
    );
    assert_too_large(&r, "001_big.sql");
}

/// issue 12.9: a token file written with a trailing newline (as Kubernetes and Docker secrets
/// are) works through `fetch-secret --exec` into notify's `token_env`.
#[test]
fn a_secret_file_loses_one_newline_from_fetch_secret_to_notify() {
    let cap = HttpServer::capture(|_, _| Answer::bare(200, "ok"));
    let port = cap.port;
    let dir = tempdir();
    let token = dir.path().join("token");
    std::fs::write(&token, "tok-Zq81-value\n").unwrap();
    let r = run(
        initbox().args([
            "fetch-secret",
            "--exec",
            &format!("TOKEN=ref+file://{}", token.display()),
            "--",
            env!("CARGO_BIN_EXE_initbox"),
            "notify",
            "-m",
            "deployed",
            &format!("webhook+http://127.0.0.1:{port}/hook?token_env=TOKEN"),
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    let received = cap.received();
    assert!(
        received.iter().any(|q| q
            .headers
            .get("authorization")
            .is_some_and(|v| v.eq_ignore_ascii_case("Bearer tok-Zq81-value"))),
        "{received:?}"
    );
}

#[test]
fn raw_true_keeps_the_file_byte_for_byte_and_only_one_newline_goes() {
    let dir = tempdir();
    let f = dir.path().join("v");
    std::fs::write(&f, "two-newlines\r\n\n").unwrap();
    let show = |reference: String| {
        run(
            initbox().args([
                "fetch-secret",
                "--exec",
                &format!("V={reference}"),
                "--",
                "/bin/sh",
                "-c",
                "printf '[%s]' \"$V\"",
            ]),
            LIMIT,
        )
    };
    let r = show(format!("ref+file://{}", f.display()));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(r.stdout, "[two-newlines\r\n]");
    let r = show(format!("ref+file://{}?raw=true", f.display()));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(r.stdout, "[two-newlines\r\n\n]");
}

/// A missing secret file is exit 3 (invalid input) in every applet that reads one.
#[test]
fn a_missing_secret_file_is_exit_3_everywhere() {
    let missing = "/nonexistent/secret";
    let pg = "postgres://app@127.0.0.1:1/test";
    let cases: &[&[&str]] = &[
        &["wait-for", "--once", "--password-file", missing, pg],
        &[
            "run-migrations",
            "--password-file",
            missing,
            "--database-url",
            pg,
        ],
        &[
            "notify",
            "-m",
            "x",
            "webhook+http://127.0.0.1:1/h?token_file=/nonexistent/secret",
        ],
        &[
            "fetch-secret",
            "--vault-addr",
            "http://127.0.0.1:1",
            "--vault-token-file",
            missing,
            "X=ref+vault://secret/app#/x",
        ],
    ];
    for args in cases {
        let r = run(initbox().args(*args), LIMIT);
        assert_one_line_error(&r, 3, missing);
        assert!(r.stderr.contains("no such file"), "{}", r.stderr);
    }
}

// ---------------------------------------------------------------------------------------------
// Files: stale temporaries, directory modes.

fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".initbox-"))
        .collect()
}

/// issue 21.12: runs SIGKILLed while their staged file waits for --check-cmd leave
/// `.initbox-*` files; the next successful run removes them (their writers are gone), and
/// keeps a recent one it cannot attribute (another container may be writing it).
#[test]
fn a_successful_run_removes_the_temporaries_of_killed_runs() {
    let dir = tempdir();
    let tpl = dir.path().join("app.conf.j2");
    std::fs::write(&tpl, "x={{ env.HOME }}\n").unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let dest = out.join("app.conf");
    let flag = dir.path().join("staged");
    let check = format!("/bin/sh -c 'touch {}; sleep 5' {{}}", flag.display());
    for _ in 0..3 {
        let _ = std::fs::remove_file(&flag);
        let mut child = initbox()
            .args(["render-config", "--check-cmd", &check])
            .arg(&tpl)
            .arg(&dest)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while !flag.exists() && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(flag.exists(), "--check-cmd never ran");
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert_eq!(
        temporaries(&out).len(),
        3,
        "the kills left their temporaries"
    );
    // One we cannot attribute, written just now: kept.
    std::fs::write(out.join(".initbox-foreign"), "x").unwrap();
    let r = run(initbox().arg("render-config").arg(&tpl).arg(&dest), LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(temporaries(&out), vec![".initbox-foreign".to_string()]);
}

fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// issue 21.14: created directories get their documented mode (0755) whatever the umask.
#[test]
fn created_directories_have_their_mode_under_any_umask() {
    for umask in ["077", "777", "022"] {
        let dir = tempdir();
        let tpl = dir.path().join("t.j2");
        std::fs::write(&tpl, "x\n").unwrap();
        let dest = dir.path().join("cfg/a/b/app.conf");
        let bin = env!("CARGO_BIN_EXE_initbox");
        let script = format!(
            "umask {umask}; exec {bin} render-config {} {}",
            tpl.display(),
            dest.display()
        );
        let r = run(Command::new("/bin/sh").args(["-c", &script]), LIMIT);
        assert_eq!(r.code(), 0, "umask {umask}: {}", r.all());
        for d in ["cfg", "cfg/a", "cfg/a/b"] {
            assert_eq!(
                mode_of(&dir.path().join(d)),
                0o755,
                "{d} under umask {umask}"
            );
        }
        assert_eq!(mode_of(&dest), 0o644, "the file under umask {umask}");

        let shared = dir.path().join("shared/bin");
        let script = format!("umask {umask}; exec {bin} copy-self {}", shared.display());
        let r = run(Command::new("/bin/sh").args(["-c", &script]), LIMIT);
        assert_eq!(r.code(), 0, "umask {umask}: {}", r.all());
        for d in ["shared", "shared/bin"] {
            assert_eq!(
                mode_of(&dir.path().join(d)),
                0o755,
                "{d} under umask {umask}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Templates: bounded work and output (issue 21.9).

fn render_capped(template: &str, extra: &[&str]) -> (Run, String) {
    let dir = tempdir();
    let tpl = dir.path().join("bomb.j2");
    std::fs::write(&tpl, template).unwrap();
    let tpl = tpl.to_str().unwrap().to_string();
    let mut args = vec!["render-config"];
    args.extend_from_slice(extra);
    args.extend([tpl.as_str(), "-"]);
    (run(&mut capped(&args), LIMIT), tpl)
}

#[test]
fn template_bombs_end_with_exit_3_naming_the_template_and_line() {
    let cases = [
        ("a\n{{ 'x' | center(99999999999) }}\n", ":2:"),
        ("{{ ('x' * 1000) | indent(99999999) }}", ":1:"),
        ("{{ ('x' * 10000000) | replace('x', 'xxxxxxxxxx') }}", ":1:"),
        ("{{ (['xxxxxxxxxx'] * 10000000) | join }}", ":1:"),
        ("{{ [[1]] | tojson(indent=999999999) }}", ":1:"),
        (
            "x\ny\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            ":3:",
        ),
        (
            "{% for i in range(20) %}{{ 'x' * 1000000 }}{% endfor %}",
            ":1:",
        ),
    ];
    for (template, line) in cases {
        let (r, tpl) = render_capped(template, &[]);
        assert_eq!(r.code(), 3, "{template}: {}", r.all());
        let last = r.stderr.lines().last().unwrap_or_default();
        assert!(
            last.contains(&format!("{tpl}{line}")),
            "{template}: names {tpl}{line}: {}",
            r.stderr
        );
        assert!(!r.all().contains("panicked"), "{}", r.all());
    }
    // Literal text repeated past the limit: caught by the output buffer.
    let (r, tpl) = render_capped(
        &format!(
            "{{% for i in range(100000) %}}{}{{% endfor %}}",
            "a".repeat(400)
        ),
        &[],
    );
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(
        r.stderr.contains(&tpl) && r.stderr.contains("larger than 16 MiB"),
        "{}",
        r.stderr
    );
    // The limit is the one flag.
    let (r, _) = render_capped(
        "{{ 'x' | center(20000000) | length }}",
        &["--max-input-size", "32M"],
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(r.stdout, "20000000");
}

#[test]
fn notify_templates_share_the_bounds() {
    let r = run(
        &mut capped(&[
            "notify",
            "--dry-run",
            "-m",
            "{{ 'x' | center(99999999999) }}",
            "json://127.0.0.1:1/",
        ]),
        LIMIT,
    );
    assert_one_line_error(&r, 3, "--message:1:");
    assert!(r.stderr.contains("INITBOX_MAX_INPUT_SIZE"), "{}", r.stderr);
}

#[test]
fn envsubst_output_is_bounded_with_the_position() {
    let dir = tempdir();
    let tpl = dir.path().join("bomb.tmpl");
    std::fs::write(&tpl, format!("first\n{}", "$X".repeat(200_000))).unwrap();
    let r = run(
        capped(&[
            "render-config",
            "--engine",
            "envsubst",
            tpl.to_str().unwrap(),
            "-",
        ])
        .env("X", "y".repeat(100)),
        LIMIT,
    );
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(
        r.stderr.contains(&format!("{}:2:", tpl.display())),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("larger than 16 MiB"), "{}", r.stderr);
}

/// 2 GiB of address space for the concatenation bombs: above what a legal render needs, far
/// below what doubling reaches (before the allocation section they aborted with 134 here).
const AS_CAP_TEMPLATES: &str = "--as=2147483648";

/// Render `template` (file `bomb.j2`) under [`AS_CAP_TEMPLATES`], with a termination log in the
/// same directory; returns the run, the template path and the termination log's content.
fn render_concat(template: &str, extra: &[&str]) -> (Run, String, String) {
    let dir = tempdir();
    let tpl = dir.path().join("bomb.j2");
    std::fs::write(&tpl, template).unwrap();
    let term = dir.path().join("termination-log");
    let log_flag = format!("--termination-log={}", term.display());
    let mut args = vec!["render-config", log_flag.as_str()];
    args.extend_from_slice(extra);
    args.extend([tpl.to_str().unwrap(), "-"]);
    let r = run(&mut capped_at(AS_CAP_TEMPLATES, &args), LIMIT);
    let log = std::fs::read_to_string(&term).unwrap_or_default();
    (r, tpl.to_str().unwrap().to_string(), log)
}

#[test]
fn concatenation_bombs_end_with_exit_3_not_an_abort() {
    let cases = [
        // `~` doubling in a loop (issue 21.9's known gap).
        r#"{% set s = namespace(v="xxxxxxxxxxxxxxxx") %}{% for i in range(60) %}{% set s.v = s.v ~ s.v %}{% endfor %}{{ s.v }}"#,
        // `~` doubling through a recursive macro.
        r#"{% macro d(s, n) %}{% if n > 0 %}{{ d(s ~ s, n - 1) }}{% else %}{{ s | length }}{% endif %}{% endmacro %}{{ d("a", 60) }}"#,
        // List `+` doubling, materialised each round.
        r#"{% set ns = namespace(l=["xxxxxxxx"]) %}{% for i in range(60) %}{% set ns.l = (ns.l + ns.l) | list %}{% endfor %}{{ ns.l | length }}"#,
        // Many values, each under the single limit, together past the total one.
        r#"{% set ns = namespace(l=[]) %}{% set big = "x" * 20000000 %}{% for i in range(20) %}{% set ns.l = ns.l + [big ~ i] %}{% endfor %}{{ ns.l | length }}"#,
    ];
    for template in cases {
        let (r, tpl, log) = render_concat(template, &[]);
        assert_eq!(
            r.status.signal(),
            None,
            "{template}: killed (abort): {}",
            r.all()
        );
        assert_one_line_error(&r, 3, &format!("initbox render-config: error: {tpl}: "));
        assert!(
            r.stderr.contains("larger than 64 MiB") && r.stderr.contains("--max-input-size"),
            "{template}: {}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "nothing printed: {}", r.stdout.len());
        assert!(
            log.starts_with(&format!(
                "{tpl}: a value the template builds would be larger than"
            )),
            "termination log: {log:?}"
        );
        assert_eq!(log.lines().count(), 1, "{log:?}");
    }
    // JSON logs get a JSON line.
    let (r, tpl, _) = render_concat(cases[0], &["--log-format", "json"]);
    assert_eq!(r.code(), 3, "{}", r.all());
    let line: serde_json::Value = serde_json::from_str(r.stderr.trim()).expect("one JSON line");
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["code"], 3);
    assert!(
        line["message"].as_str().unwrap().starts_with(&tpl),
        "{line}"
    );
    // The one flag raises these limits too (4 x 32M).
    let (r, _, _) = render_concat(cases[0], &["--max-input-size", "32M"]);
    assert_eq!(r.code(), 3, "{}", r.all());
    assert!(r.stderr.contains("larger than 128 MiB"), "{}", r.stderr);
}

#[test]
fn large_legal_renders_still_succeed_in_the_section() {
    let cases = [
        // 8 MiB built by concatenation, then printed.
        r#"{% set s = "z" * 1048576 %}{% set ns = namespace(v="") %}{% for i in range(8) %}{% set ns.v = ns.v ~ s %}{% endfor %}{{ ns.v }}"#,
        // 8 MiB of loop output.
        "{% for i in range(8192) %}{{ 'y' * 1023 }}\n{% endfor %}",
        // A 2-million-item list.
        "{{ ((['a'] * 1000000) + (['b'] * 1000000)) | list | join | length }}",
    ];
    for template in cases {
        let (r, _, log) = render_concat(template, &[]);
        assert_eq!(r.code(), 0, "{template}: {}", r.stderr);
        assert!(
            r.stdout.len() == 8 << 20 || r.stdout == "2000000",
            "{template}: {} bytes",
            r.stdout.len()
        );
        assert!(log.is_empty(), "{log}");
    }
    // envsubst renders run in the same section.
    let dir = tempdir();
    let tpl = dir.path().join("big.tmpl");
    std::fs::write(&tpl, "$X".repeat(84)).unwrap(); // 8.4 MB from a 100 kB variable
    let r = run(
        capped(&[
            "render-config",
            "--engine",
            "envsubst",
            tpl.to_str().unwrap(),
            "-",
        ])
        .env("X", "e".repeat(100_000)),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(r.stdout.len(), 8_400_000);
}

// ---------------------------------------------------------------------------------------------
// render-config: a file holding a transformed secret is still a secret file (issue 21.13).

#[test]
fn secret_data_taint_survives_filters() {
    let dir = tempdir();
    let secrets = dir.path().join("secrets.json");
    std::fs::write(
        &secrets,
        r#"{"db": {"password": "Hunter2-Zq81-pass"}, "pin": "4711"}"#,
    )
    .unwrap();
    let data = dir.path().join("values.json");
    std::fs::write(&data, r#"{"host": "db.internal"}"#).unwrap();
    let src = dir.path().join("t");
    std::fs::create_dir(&src).unwrap();
    let templates = [
        ("b64.j2", "{{ s.db.password | b64encode }}\n", true),
        ("upper.j2", "{{ s.db.password | upper }}\n", true),
        ("slice.j2", "{{ s.db.password[2:9] }}\n", true),
        ("sha.j2", "{{ s.db.password | sha256 }}\n", true),
        ("reverse.j2", "{{ s.db.password | reverse }}\n", true),
        ("short.j2", "pin={{ pin ~ '' }}\n", true),
        ("plain.j2", "host={{ host }}\n", false),
    ];
    for (name, body, _) in templates {
        std::fs::write(src.join(name), body).unwrap();
    }
    let out = dir.path().join("out");
    let r = run(
        initbox()
            .arg("render-config")
            .arg(&src)
            .arg(&out)
            .arg("--data")
            .arg(&data)
            .arg("--secret-data")
            .arg(format!("s={}", secrets.display()))
            .arg("--secret-data")
            .arg(&secrets),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    for (name, _, secret) in templates {
        let f = out.join(name.trim_end_matches(".j2"));
        let want = if secret { 0o400 } else { 0o644 };
        assert_eq!(mode_of(&f), want, "{name}");
    }

    // envsubst: a short secret value, substituted as is.
    let tpl = dir.path().join("pin.tmpl");
    std::fs::write(&tpl, "pin=${pin}\n").unwrap();
    let dest = dir.path().join("pin.conf");
    let r = run(
        initbox()
            .args(["render-config", "--engine", "envsubst"])
            .arg(&tpl)
            .arg(&dest)
            .arg("--secret-data")
            .arg(&secrets),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(mode_of(&dest), 0o400);
}
