//! One contract for every applet: one vocabulary of flag and variable names (one name, one
//! meaning; one meaning, one name), one error style, and a `-h` that fits a screen.
//!
//! The vocabulary is checked on the clap commands themselves, taken from the front's registry
//! (the same commands `initbox APPLET` parses with); error style and help length on the built
//! binary.

mod common;
#[path = "../src/registry.rs"]
#[allow(dead_code)]
mod registry;

use std::collections::BTreeMap;
use std::time::Duration;

use clap::{ArgAction, Command};
use common::*;

const T: Duration = Duration::from_secs(20);

/// What one declaration of a name means: the text a reader judges it by and how it is given.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Meaning {
    /// The gist of the short help (its first clause).
    help: String,
    /// Its first sentence.
    sentence: String,
    /// Flag (`--name`) and variable: the other name of the pair.
    long: Option<String>,
    env: Option<String>,
    /// Switch, value, count, repeatable value.
    takes: String,
}

/// The gist of a help text: its first clause, without what follows a `(`, `;` or the
/// first full stop (the details an applet adds to the shared meaning).
fn gist(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let end = [". ", "; ", " ("]
        .iter()
        .filter_map(|d| s.find(d))
        .min()
        .unwrap_or(s.len());
    s[..end].trim_end_matches('.').to_string()
}

fn takes(a: &clap::Arg) -> String {
    match a.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => "switch".into(),
        ArgAction::Count => "count".into(),
        ArgAction::Append => "values".into(),
        _ if a.get_num_args().is_some_and(|n| n.max_values() > 1) => "values".into(),
        _ => "value".into(),
    }
}

fn first_sentence(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let end = s.find(". ").unwrap_or(s.len());
    s[..end].trim_end_matches('.').to_string()
}

/// `run`'s own settings are `INITBOX_RUN_*` so that the steps it runs do not inherit them: the
/// same word as the shared `INITBOX_*` one.
fn shared_name(at: &str, env: &str) -> String {
    initbox_runtime::env::RUN_SCOPED
        .iter()
        .find(|(own, _)| at == "run" && *own == env)
        .map_or(env, |(_, shared)| shared)
        .to_string()
}

/// Every declared argument of `cmd` and its subcommands: (where, meaning).
fn walk(cmd: &Command, at: &str, out: &mut Vec<(String, Meaning)>) {
    for a in cmd.get_arguments() {
        let id = a.get_id().as_str();
        // clap's own --help/--version; a positional named `version` (run-migrations baseline
        // VERSION) is the applet's.
        let builtin = matches!(id, "help" | "version") && !a.is_positional();
        if builtin || a.is_positional() && a.get_env().is_none() {
            continue;
        }
        let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        out.push((
            at.to_string(),
            Meaning {
                help: gist(&help),
                sentence: first_sentence(&help),
                long: a.get_long().map(|l| format!("--{l}")),
                env: a.get_env().map(|e| shared_name(at, &e.to_string_lossy())),
                takes: takes(a),
            },
        ));
    }
    for sub in cmd.get_subcommands() {
        walk(sub, &format!("{at} {}", sub.get_name()), out);
    }
}

fn every_argument() -> Vec<(String, Meaning)> {
    let mut out = Vec::new();
    for e in registry::all() {
        walk(&(e.command)(), e.name, &mut out);
    }
    assert!(out.len() > 100, "the registry gave {} arguments", out.len());
    out
}

/// A name (flag or variable) declared in several places means one thing: the same help, the
/// same partner name, the same way of being given.
#[test]
fn one_name_carries_one_meaning() {
    let all = every_argument();
    let mut by_name: BTreeMap<String, Vec<(String, Meaning)>> = BTreeMap::new();
    for (at, m) in &all {
        for name in [m.long.clone(), m.env.clone()].into_iter().flatten() {
            by_name
                .entry(name)
                .or_default()
                .push((at.clone(), m.clone()));
        }
    }
    let mut clashes = Vec::new();
    for (name, uses) in &by_name {
        // A flag named for the applet's own thing of a kind (its input file, its output format,
        // its written files' mode) with an applet-scoped variable each.
        if initbox_runtime::env::LOCAL_FLAGS.contains(&name.as_str()) {
            let vars: Vec<_> = uses.iter().filter_map(|(_, m)| m.env.clone()).collect();
            let distinct: std::collections::BTreeSet<_> = vars.iter().collect();
            let applets: std::collections::BTreeSet<_> = uses
                .iter()
                .map(|(at, _)| at.split(' ').next().unwrap_or_default())
                .collect();
            assert_eq!(
                distinct.len(),
                applets.len(),
                "{name}: one variable per applet: {vars:?}"
            );
            continue;
        }
        let (first_at, first) = &uses[0];
        for (at, m) in &uses[1..] {
            // The same gist, partner name and kind: one meaning (the details may differ).
            if (&m.help, &m.long, &m.env, &m.takes)
                == (&first.help, &first.long, &first.env, &first.takes)
            {
                continue;
            }
            let why = if m.help != first.help {
                format!("help {:?} vs {:?}", first.help, m.help)
            } else if m.takes != first.takes {
                format!("{} vs {}", first.takes, m.takes)
            } else if m.long != first.long {
                format!("flag {:?} vs {:?}", first.long, m.long)
            } else {
                format!("variable {:?} vs {:?}", first.env, m.env)
            };
            clashes.push(format!("{name}: {first_at} vs {at}: {why}"));
        }
    }
    assert!(
        clashes.is_empty(),
        "one name, two meanings:\n  {}",
        clashes.join("\n  ")
    );
}

/// Two names never carry one meaning: the same help under two flags or two variables is one
/// thing spelled twice.
#[test]
fn one_meaning_has_one_name() {
    let all = every_argument();
    let mut by_help: BTreeMap<&str, Vec<(&str, &Meaning)>> = BTreeMap::new();
    for (at, m) in &all {
        if !m.sentence.is_empty() {
            by_help.entry(&m.sentence).or_default().push((at, m));
        }
    }
    let mut twice = Vec::new();
    for (help, uses) in &by_help {
        let names: std::collections::BTreeSet<_> =
            uses.iter().map(|(_, m)| (&m.long, &m.env)).collect();
        if names.len() > 1 {
            let at: Vec<String> = uses
                .iter()
                .map(|(at, m)| format!("{at}: {:?}/{:?}", m.long, m.env))
                .collect();
            twice.push(format!("{help:?}: {}", at.join(", ")));
        }
    }
    assert!(
        twice.is_empty(),
        "one meaning, two names:\n  {}",
        twice.join("\n  ")
    );
}

/// Every variable an applet reads through clap is in the runtime's vocabulary
/// (`initbox_runtime::env`), and every name there is declared by some applet.
#[test]
fn every_variable_is_in_the_vocabulary() {
    let all = every_argument();
    let mut declared: std::collections::BTreeSet<&str> =
        all.iter().filter_map(|(_, m)| m.env.as_deref()).collect();
    declared.extend(initbox_runtime::env::RUN_SCOPED.iter().map(|(own, _)| *own));
    let vocabulary: std::collections::BTreeSet<&str> = initbox_runtime::env::VOCABULARY
        .iter()
        .map(|v| v.name)
        .collect();
    let missing: Vec<_> = declared.difference(&vocabulary).collect();
    assert!(missing.is_empty(), "not in runtime::env: {missing:?}");
    for v in initbox_runtime::env::VOCABULARY {
        assert!(
            declared.contains(v.name) || v.read_directly,
            "{} is in runtime::env but no applet declares it",
            v.name
        );
    }
    // A renamed name is no longer declared, and its new name is.
    for r in initbox_runtime::env::RENAMED {
        if r.old.starts_with("INITBOX_") {
            let direct = initbox_runtime::env::VOCABULARY
                .iter()
                .any(|v| v.name == r.new && v.read_directly);
            assert!(
                declared.contains(r.new) || direct,
                "{} renamed to an undeclared {}",
                r.old,
                r.new
            );
            // Unless it keeps its (one) meaning in other applets (INITBOX_STRICT).
            let kept = initbox_runtime::env::VOCABULARY
                .iter()
                .any(|v| v.name == r.old);
            assert!(
                kept || !declared.contains(r.old),
                "{} is renamed but still declared",
                r.old
            );
        }
    }
}

/// Usage errors (found by clap or by the applet) and run-time failures end the same way: one
/// line naming the applet and what is wrong, with the exit code, and that exit code.
#[test]
fn usage_errors_and_failures_look_alike() {
    let cases: &[(&[&str], i32, &str)] = &[
        // clap: unknown flag, bad value, missing value.
        (
            &["wait-for-tcp", "--bogus"],
            2,
            "unexpected argument '--bogus'",
        ),
        (
            &["wait-for", "--timeout", "soon", "tcp://127.0.0.1:1"],
            2,
            "soon",
        ),
        (&["notify", "--on"], 2, "--on"),
        // The applet: a missing required input, an unreadable file.
        (
            &["run-migrations", "--dir", "/nonexistent"],
            2,
            "--database-url",
        ),
        (&["network-check", "bogus-check"], 2, "bogus-check"),
        (
            &[
                "render-config",
                "/nonexistent/in.tmpl",
                "/tmp/never-written",
            ],
            3,
            "/nonexistent/in.tmpl",
        ),
    ];
    for (args, code, needle) in cases {
        let r = run(
            initbox()
                .args(*args)
                .env_remove("DATABASE_URL")
                .env_remove("INITBOX_DATABASE_URL"),
            T,
        );
        assert_one_line_error(&r, *code, needle);
        let line = r.stderr.trim();
        let applet = args[0];
        assert!(
            line.contains(&format!(" ERROR initbox {applet}: ")),
            "{args:?}: names the applet: {line}"
        );
        assert!(line.ends_with(&format!("code={code}")), "{args:?}: {line}");
    }
    // The front's own errors have the same shape.
    let r = run(initbox().arg("frobnicate"), T);
    assert_one_line_error(&r, 2, " ERROR initbox: unknown applet 'frobnicate'");
    assert!(r.stderr.trim().ends_with("code=2"), "{}", r.stderr);
    // JSON logs: the usage error is a JSON line too, like any failure.
    let r = run(
        initbox().args(["wait-for-tcp", "--log-format", "json", "--bogus"]),
        T,
    );
    assert_eq!(r.code(), 2, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(r.stderr.trim()).expect("one JSON line");
    assert_eq!(v["level"], "ERROR");
    assert_eq!(v["code"], 2);
    assert_eq!(v["applet"], "wait-for-tcp");
}

/// `-h` fits a screen (≤ 40 lines) with usage, the most used flags and examples; `--help` keeps
/// every flag; the follow-up command is an argument, not a logging flag.
#[test]
fn short_help_fits_a_screen_and_long_help_has_everything() {
    for e in registry::all() {
        let short = run(initbox().args([e.name, "-h"]), T);
        assert_eq!(short.code(), 0, "{}", short.all());
        let lines = short.stdout.lines().count();
        assert!(
            lines <= 40,
            "{} -h: {lines} lines:\n{}",
            e.name,
            short.stdout
        );
        assert!(short.stdout.contains("Usage: initbox "), "{}", short.stdout);
        assert!(
            short.stdout.contains("--help"),
            "{} -h points at --help",
            e.name
        );
        let long = run(initbox().args([e.name, "--help"]), T);
        assert_eq!(long.code(), 0);
        let cmd = (e.command)();
        for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(l) = a.get_long() {
                assert!(
                    long.stdout.contains(&format!("--{l}")),
                    "{} --help lacks --{l}",
                    e.name
                );
            }
        }
        for text in [&short.stdout, &long.stdout] {
            if let Some(i) = text.find("\nLogging:") {
                let section = &text[i..];
                let section =
                    &section[..section[1..].find("\n\n").map_or(section.len(), |j| j + 1)];
                assert!(
                    !section.contains("[CMD]") && !section.contains("<CMD>"),
                    "{}: the command is listed under Logging:\n{section}",
                    e.name
                );
            }
        }
    }
    // wait-for -h does not point at a scheme list it does not show.
    let short = run(initbox().args(["wait-for", "-h"]), T).stdout;
    assert!(
        !short.contains("schemes above") || short.contains("postgres://"),
        "{short}"
    );
}

/// A renamed name keeps working, with one warning naming the new name and never the value.
#[test]
fn renamed_names_keep_working_with_a_warning() {
    // network-check's per-check timeout was --timeout (INITBOX_CHECK_TIMEOUT).
    let port = free_port();
    let target = format!("tcp:127.0.0.1:{port}");
    for (flag, var) in [
        (Some(["--timeout", "1ms"]), None),
        (None, Some(("INITBOX_CHECK_TIMEOUT", "1ms"))),
    ] {
        let mut cmd = initbox();
        cmd.args(["network-check", &target]);
        if let Some(f) = flag {
            cmd.args(f);
        }
        if let Some((k, v)) = var {
            cmd.env(k, v);
        }
        let r = run(&mut cmd, T);
        assert_eq!(r.code(), 1, "the closed port fails the check: {}", r.all());
        let warnings: Vec<&str> = r.stderr.lines().filter(|l| l.contains(" WARN ")).collect();
        let deprecations: Vec<&&str> = warnings
            .iter()
            .filter(|l| l.contains("deprecated"))
            .collect();
        assert_eq!(deprecations.len(), 1, "one warning: {}", r.stderr);
        let w = deprecations[0];
        assert!(
            w.contains("--attempt-timeout") || w.contains("INITBOX_ATTEMPT_TIMEOUT"),
            "names the new name: {w}"
        );
        assert!(!w.contains("1ms"), "never the value: {w}");
    }
    // The new names take effect (a 0-length attempt is refused as a usage error would be, a
    // 1ms one runs): --attempt-timeout parses in network-check.
    let r = run(
        initbox().args(["network-check", &target, "--attempt-timeout", "200ms"]),
        T,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(!r.stderr.contains("deprecated"), "{}", r.stderr);

    // run-migrations' password file was INITBOX_DATABASE_PASSWORD_FILE.
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3cr3t-value\n").unwrap();
    let r = run(
        initbox()
            .args([
                "run-migrations",
                "--database-url",
                "postgres://nobody@127.0.0.1:1/none",
                "--dir",
                dir.path().to_str().unwrap(),
                "--timeout",
                "1s",
            ])
            .env("INITBOX_DATABASE_PASSWORD_FILE", &pw),
        T,
    );
    let w: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("deprecated"))
        .collect();
    assert_eq!(w.len(), 1, "{}", r.stderr);
    assert!(w[0].contains("INITBOX_PASSWORD_FILE"), "{}", w[0]);
    assert!(!r.all().contains("s3cr3t-value"), "{}", r.all());
    assert!(
        !w[0].contains(pw.to_str().unwrap()),
        "never the value: {}",
        w[0]
    );
}

/// `-- CMD`: every applet that can run a follow-up command runs it after success and never
/// after failure; the others refuse it the same way (a usage error naming `-- CMD`).
#[test]
fn a_follow_up_command_runs_after_success_or_is_refused_alike() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let touch = [
        "--",
        "/bin/sh",
        "-c",
        "echo ran > \"$0\"",
        marker.to_str().unwrap(),
    ];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().to_string();
    let refused: &[&[&str]] = &[&["network-check", &format!("tcp:{open}")]];
    for args in refused {
        let r = run(initbox().args(*args).args(touch), T);
        assert_one_line_error(&r, 2, "-- CMD");
        assert!(!marker.exists(), "{args:?} ran the command");
    }
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("db.sqlite").display()
    );
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::write(
        migrations.join("1_init.sql"),
        "CREATE TABLE t (id integer);\n",
    )
    .unwrap();
    let migrations = migrations.to_str().unwrap();
    let runs: &[&[&str]] = &[
        &["wait-for-tcp", &open],
        &["wait-for", &format!("tcp://{open}")],
        // run-migrations execs after migrating up, as every applet does (no --with-lock).
        &["run-migrations", "--database-url", &db, "--dir", migrations],
        // notify run: the command is the one watched, not a follow-up, but `--` is its own.
        &["notify", "run", "stdout://"],
    ];
    for args in runs {
        let _ = std::fs::remove_file(&marker);
        let r = run(initbox().args(*args).args(touch), T);
        assert_eq!(r.code(), 0, "{args:?}: {}", r.all());
        assert!(marker.exists(), "{args:?} did not run the command");
    }
    // A failed migration never runs it.
    let _ = std::fs::remove_file(&marker);
    std::fs::write(
        std::path::Path::new(migrations).join("2_bad.sql"),
        "INSERT INTO no_such_table VALUES (1);\n",
    )
    .unwrap();
    let r = run(
        initbox()
            .args(["run-migrations", "--database-url", &db, "--dir", migrations])
            .args(touch),
        T,
    );
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(!marker.exists(), "ran after a failed migration");
    // After another action than `up`, -- CMD is refused (clap: the subcommand takes none).
    let r = run(
        initbox()
            .args([
                "run-migrations",
                "--database-url",
                &db,
                "--dir",
                migrations,
                "status",
            ])
            .args(touch),
        T,
    );
    assert_one_line_error(&r, 2, "unexpected argument '/bin/sh'");
}

/// Applets depend on the runtime and on library crates under `crates/`, never on each other:
/// a build with one applet's feature pulls in no other applet.
#[test]
fn applets_depend_on_crates_not_on_applets() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let applets: Vec<String> = std::fs::read_dir(root.join("applets"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "runtime")
        .collect();
    assert!(applets.len() >= 10, "{applets:?}");
    let mut wrong = Vec::new();
    for applet in &applets {
        let manifest =
            std::fs::read_to_string(root.join("applets").join(applet).join("Cargo.toml")).unwrap();
        let deps = manifest
            .split("\n[")
            .filter(|s| s.starts_with("dependencies]") || s.starts_with("build-dependencies]"))
            .collect::<String>();
        for other in &applets {
            let package = format!("initbox-{other}");
            let depends = deps
                .lines()
                .any(|l| l.split(['=', ' ', '.']).next() == Some(package.as_str()));
            if other != applet && depends {
                wrong.push(format!("{applet} depends on the applet {other}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
    for lib in ["probe", "secrets", "template", "database", "aws", "archive"] {
        assert!(
            root.join("crates").join(lib).join("Cargo.toml").exists(),
            "crates/{lib}"
        );
    }
}
