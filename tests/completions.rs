//! `initbox completions SHELL` and `initbox man DIR`: generated from the front's clap tree, so
//! every applet and flag is in them.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{assert_one_line_error, initbox, run};

const LIMIT: Duration = Duration::from_secs(30);

fn applets() -> Vec<String> {
    run(initbox().arg("--list"), LIMIT)
        .stdout
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_is_valid_shell_and_knows_every_applet_and_flag() {
    let r = run(initbox().args(["completions", "bash"]), LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    for a in applets() {
        assert!(
            r.stdout.contains(&a),
            "applet {a} missing from the bash completion"
        );
    }
    assert!(
        r.stdout.contains("--attempt-timeout"),
        "wait flags are completed"
    );
    assert!(r.stdout.contains("--check"), "run's flags are completed");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("initbox.bash");
    std::fs::write(&script, &r.stdout).unwrap();
    let check = run(Command::new("bash").arg("-n").arg(&script), LIMIT);
    assert_eq!(check.code(), 0, "bash -n: {}", check.all());
    // Sourcing it registers the completion function.
    let sourced = run(
        Command::new("bash").arg("-c").arg(format!(
            "source {} && complete -p initbox",
            script.display()
        )),
        LIMIT,
    );
    assert_eq!(sourced.code(), 0, "{}", sourced.all());
    assert!(sourced.stdout.contains("initbox"), "{}", sourced.stdout);

    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let r = run(initbox().args(["completions", shell]), LIMIT);
        assert_eq!(r.code(), 0, "{shell}: {}", r.all());
        assert!(r.stdout.contains("wait-for-tcp"), "{shell}");
    }
    let r = run(initbox().args(["completions", "tcsh"]), LIMIT);
    assert_one_line_error(&r, 2, "tcsh");
}

#[test]
fn man_pages_are_written_for_the_front_and_every_applet() {
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("share/man/man1");
    let r = run(initbox().arg("man").arg(&man), LIMIT);
    assert_eq!(r.code(), 0, "{}", r.all());
    let front = std::fs::read_to_string(man.join("initbox.1")).unwrap();
    assert!(
        front.starts_with(".ie") || front.contains(".TH initbox 1"),
        "{front}"
    );
    for a in applets() {
        let page = std::fs::read_to_string(man.join(format!("initbox-{a}.1")))
            .unwrap_or_else(|e| panic!("initbox-{a}.1: {e}"));
        assert!(page.contains(&format!(".TH initbox-{a} 1")), "{a}: {page}");
        assert!(
            page.contains("INITBOX_"),
            "{a}: env fallbacks are documented"
        );
    }
    let wait = std::fs::read_to_string(man.join("initbox-wait-for-tcp.1")).unwrap();
    assert!(wait.contains("INITBOX_TIMEOUT"), "{wait}");
    // Rendered by man(1) when it is installed.
    if Command::new("man").arg("--version").output().is_ok() {
        let out = Command::new("man")
            .arg("-l")
            .arg(man.join("initbox-run.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("steps file"));
    }
}
