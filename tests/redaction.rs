//! End-to-end tests of the rules that keep secret values out of everything initbox prints:
//! help output shows variable names only, and errors about a secret source name the source and
//! the problem, never its content.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

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
