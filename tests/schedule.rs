//! `initbox schedule`, end to end with the built binary and real processes: `next` across DST
//! gaps and folds, a daily job on a spring-forward day (the scheduler's clock started just
//! before the gap), each concurrency policy with overlapping runs, a hung job killed at its
//! timeout while the next run still happens, SIGTERM forwarded to a running job (its own exit
//! observed), orphan reaping as PID 1 (`unshare --pid --fork`), an in-process applet as a job,
//! the jobs file and crontab, catch-up from the state file, /healthz and --exit-on-failures.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_one_line_error, free_port, initbox, run, wait_child};

const LIMIT: Duration = Duration::from_secs(60);

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Wait until `cond` holds (polling), failing the test after `limit`.
fn until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn initbox")
}

fn term(child: &Child) {
    // SAFETY: kill(2) on the pid of a child we started and have not waited for.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
}

fn schedule() -> Command {
    let mut c = initbox();
    c.arg("schedule");
    c
}

#[test]
fn next_prints_times_across_dst_gaps_and_folds() {
    // New York springs forward on 2026-03-08 (02:00 EST → 03:00 EDT): 02:30 does not exist;
    // the daily job runs once that day, at 03:00 EDT.
    let r = run(
        schedule().args([
            "next",
            "--at",
            "02:30",
            "--tz",
            "America/New_York",
            "--from",
            "2026-03-07T12:00:00Z",
            "-n",
            "3",
        ]),
        LIMIT,
    );
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(
        r.stdout,
        "2026-03-08T03:00:00-04:00 (EDT)\n2026-03-09T02:30:00-04:00 (EDT)\n2026-03-10T02:30:00-04:00 (EDT)\n"
    );
    // Berlin falls back on 2026-10-25 (03:00 CEST → 02:00 CET): a fixed 02:30 runs once, at
    // the first pass; `*/30 2 * * *` runs in both passes.
    let r = run(
        schedule()
            .args([
                "next",
                "--cron",
                "30 2 * * *",
                "--from",
                "2026-10-24T12:00:00Z",
                "-n",
                "2",
            ])
            .env("CRON_TZ", "Europe/Berlin"),
        LIMIT,
    );
    assert_eq!(
        r.stdout,
        "2026-10-25T02:30:00+02:00 (CEST)\n2026-10-26T02:30:00+01:00 (CET)\n",
        "{}",
        r.all()
    );
    let r = run(
        schedule().args([
            "next",
            "--cron",
            "*/30 2 * * *",
            "--tz",
            "Europe/Berlin",
            "--from",
            "2026-10-24T23:59:00Z",
            "-n",
            "4",
        ]),
        LIMIT,
    );
    assert_eq!(
        r.stdout,
        "2026-10-25T02:00:00+02:00 (CEST)\n2026-10-25T02:30:00+02:00 (CEST)\n\
         2026-10-25T02:00:00+01:00 (CET)\n2026-10-25T02:30:00+01:00 (CET)\n"
    );
    // Month ends: the 31st skips the short months; RUNAT is read as --at.
    let r = run(
        schedule().args([
            "next",
            "--cron",
            "0 0 31 * *",
            "--tz",
            "UTC",
            "--from",
            "2026-01-31T00:00:00Z",
            "-n",
            "2",
        ]),
        LIMIT,
    );
    assert_eq!(
        r.stdout,
        "2026-03-31T00:00:00+00:00 (UTC)\n2026-05-31T00:00:00+00:00 (UTC)\n"
    );
    let r = run(
        schedule()
            .args([
                "next",
                "--tz",
                "UTC",
                "--from",
                "2026-01-01T12:00:00Z",
                "-n",
                "1",
            ])
            .env("RUNAT", "03:30"),
        LIMIT,
    );
    assert_eq!(r.stdout, "2026-01-02T03:30:00+00:00 (UTC)\n", "{}", r.all());
    // @every: on the grid from the start, whatever the zone.
    let r = run(
        schedule().args([
            "next",
            "--cron",
            "@every 90m",
            "--tz",
            "Europe/Berlin",
            "--from",
            "2026-03-29T00:15:00+01:00",
            "-n",
            "2",
        ]),
        LIMIT,
    );
    assert_eq!(
        r.stdout,
        "2026-03-29T01:45:00+01:00 (CET)\n2026-03-29T04:15:00+02:00 (CEST)\n"
    );
}

#[test]
fn bad_input_is_one_line_with_the_documented_code() {
    for (args, code, needle) in [
        (
            vec!["--at", "25:00", "--", "true"],
            2,
            "--at: '25:00' is not a time of day",
        ),
        (
            vec!["--cron", "61 * * * *", "--", "true"],
            2,
            "--cron: cron expression '61 * * * *'",
        ),
        (
            vec!["--cron", "0 0 31 2 *", "--", "true"],
            2,
            "never matches",
        ),
        (
            vec!["--at", "03:30", "--tz", "Mars/Olympus", "--", "true"],
            2,
            "unknown time zone 'Mars/Olympus'",
        ),
        (vec!["--at", "03:30"], 2, "no command to schedule"),
        (vec!["--", "true"], 2, "no schedule"),
        (
            vec!["--every", "1h", "--catch-up", "last", "--", "true"],
            2,
            "--state-file",
        ),
        (
            vec!["--every", "1h", "--", "initbox", "notify", "--no-such-flag"],
            2,
            "job 'notify'",
        ),
    ] {
        let r = run(schedule().args(&args), LIMIT);
        assert_one_line_error(&r, code, needle);
    }
    let d = dir();
    let f = d.path().join("jobs.yaml");
    std::fs::write(
        &f,
        "jobs:\n  - name: a\n    every: 1m\n    command: [true]\n    colour: red\n",
    )
    .unwrap();
    let r = run(schedule().arg("-f").arg(&f), LIMIT);
    assert_one_line_error(&r, 3, "unknown field `colour`");
    std::fs::write(
        &f,
        "jobs:\n  - name: a\n    at: \"03:30\"\n    cron: \"* * * * *\"\n    command: [true]\n",
    )
    .unwrap();
    let r = run(schedule().arg("-f").arg(&f), LIMIT);
    assert_one_line_error(&r, 3, "job 1: give only one of 'at', 'cron', 'every'");
}

#[test]
fn a_daily_job_in_the_spring_forward_gap_runs_once_right_after_it() {
    let d = dir();
    let out = d.path().join("ran");
    // The clock starts 2 s before New York's 02:00 EST → 03:00 EDT jump; 02:30 is in the gap.
    let child = spawn(
        schedule()
            .args(["--at", "02:30", "--tz", "America/New_York"])
            .args(["--clock-start", "2026-03-08T01:59:58-05:00", "--"])
            .args(["sh", "-c"])
            .arg(format!("echo ran >> {}", out.display())),
    );
    until(Duration::from_secs(10), "the job to run", || {
        !lines(&out).is_empty()
    });
    std::thread::sleep(Duration::from_millis(1500));
    term(&child);
    let r = wait_child(child, LIMIT);
    assert_eq!(lines(&out), ["ran"], "exactly one run: {}", r.stderr);
    assert!(
        r.stderr.contains("due=\"2026-03-08T03:00:00-04:00 (EDT)\""),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("next=2026-03-08T03:00:00-04:00 (EDT)"),
        "{}",
        r.stderr
    );
    assert_eq!(r.code(), 143);
    // In the second pass of a fold (01:29:58 EST, after 01:30 EDT ran): the next run of a
    // fixed 01:30 job is tomorrow's, never a second one today.
    let r = run(
        schedule().args([
            "next",
            "--at",
            "01:30",
            "--tz",
            "America/New_York",
            "--from",
            "2026-11-01T01:29:58-05:00",
            "-n",
            "1",
        ]),
        LIMIT,
    );
    assert_eq!(r.stdout, "2026-11-02T01:30:00-05:00 (EST)\n", "{}", r.all());
}

/// Start a sidecar running `script` every second with `policy`, for `secs` seconds; returns
/// (stderr, starts, ends, terms) as lines of the marker files.
fn overlap(policy: &str, secs: u64) -> (String, Vec<String>, Vec<String>, Vec<String>) {
    let d = dir();
    let p = |n: &str| d.path().join(n);
    let script = format!(
        "echo $$ >> {s}; trap 'echo $$ >> {t}; exit 0' TERM; sleep 2.5 & wait; echo $$ >> {e}",
        s = p("starts").display(),
        t = p("terms").display(),
        e = p("ends").display()
    );
    let child = spawn(
        schedule()
            .args([
                "--every",
                "1s",
                "--run-on-start",
                "--concurrency-policy",
                policy,
                "--stop-grace",
                "2s",
            ])
            .args(["--name", "overlap", "--", "sh", "-c", &script]),
    );
    std::thread::sleep(Duration::from_secs(secs));
    term(&child);
    let r = wait_child(child, LIMIT);
    (
        r.stderr,
        lines(&p("starts")),
        lines(&p("ends")),
        lines(&p("terms")),
    )
}

#[test]
fn concurrency_forbid_skips_runs_while_one_runs() {
    let (log, starts, ends, _) = overlap("forbid", 4);
    // t=0 start, t=1,2 skipped, t=3 start (the first ended at 2.5): never two at once, so at
    // most 2 starts in 4 s of 2.5 s runs (1 on a slow machine).
    assert!((1..=2).contains(&starts.len()), "{starts:?} {log}");
    assert!(!ends.is_empty(), "{log}");
    assert!(
        log.matches("run skipped: the previous run still runs")
            .count()
            >= 2,
        "{log}"
    );
}

#[test]
fn concurrency_allow_overlaps_runs() {
    let (log, starts, ends, terms) = overlap("allow", 4);
    // 2.5 s runs every second: three or more started means they overlapped.
    assert!(starts.len() >= 3, "{starts:?} {log}");
    assert!(!ends.is_empty(), "{log}");
    // The runs still running at SIGTERM got it (forwarded), and ended by their trap.
    assert!(!terms.is_empty(), "{log}");
    assert!(!log.contains("run skipped"), "{log}");
}

#[test]
fn concurrency_replace_stops_the_previous_run() {
    let (log, starts, ends, terms) = overlap("replace", 4);
    assert!(starts.len() >= 3, "{log}");
    // Every run but the last was replaced (SIGTERM → trap) before it could end on its own.
    assert!(ends.is_empty(), "{ends:?} {log}");
    assert!(terms.len() >= 2, "{terms:?} {log}");
    assert!(
        log.contains("stopping the previous run: a new one is due (concurrency replace)"),
        "{log}"
    );
}

#[test]
fn a_hung_job_is_killed_at_its_timeout_and_the_next_run_still_happens() {
    let d = dir();
    let starts = d.path().join("starts");
    // Ignores SIGTERM: killed by SIGKILL after the grace period; its group (the sleep) too.
    let script = format!("echo x >> {}; trap '' TERM; sleep 3171", starts.display());
    let child = spawn(
        schedule()
            .args([
                "--every",
                "2s",
                "--run-on-start",
                "--job-timeout",
                "1s",
                "--stop-grace",
                "300ms",
            ])
            .args(["--name", "hung", "--", "sh", "-c", &script]),
    );
    until(Duration::from_secs(15), "three runs", || {
        lines(&starts).len() >= 3
    });
    term(&child);
    let r = wait_child(child, LIMIT);
    assert!(
        r.stderr
            .matches("did not finish within its timeout of 1.00s")
            .count()
            >= 2,
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("code=124"), "{}", r.stderr);
    assert!(!r.stderr.contains("run skipped"), "{}", r.stderr);
    // No process of any run is left.
    let left = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| c.windows(10).any(|w| w == b"sleep\x003171"))
        .count();
    assert_eq!(left, 0, "a hung job's process survived");
}

#[test]
fn sigterm_is_forwarded_and_the_jobs_exit_is_observed() {
    let d = dir();
    let ready = d.path().join("ready");
    let got = d.path().join("got");
    let script = format!(
        "trap 'echo term > {g}; exit 7' TERM; echo up > {r}; while :; do sleep 0.05; done",
        g = got.display(),
        r = ready.display()
    );
    let child = spawn(
        schedule()
            .args([
                "--every",
                "1h",
                "--run-on-start",
                "--stop-grace",
                "5s",
                "--log-format",
                "json",
            ])
            .args(["--name", "worker", "--", "sh", "-c", &script]),
    );
    until(Duration::from_secs(10), "the job to start", || {
        ready.exists()
    });
    let t = Instant::now();
    term(&child);
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 143, "{}", r.stderr);
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "did not wait the whole grace"
    );
    assert_eq!(lines(&got), ["term"]);
    let stopped = r
        .stderr
        .lines()
        .find(|l| l.contains("job stopped"))
        .unwrap_or_else(|| panic!("no stop line: {}", r.stderr));
    let v: serde_json::Value = serde_json::from_str(stopped).unwrap();
    assert_eq!(v["job"], "worker");
    assert_eq!(v["code"], 7, "the trap's exit code: {stopped}");
}

#[test]
fn job_output_is_logged_with_its_name_and_secrets_are_masked() {
    let r = run(
        schedule()
            .args([
                "--every",
                "1h",
                "--run-on-start",
                "--exit-on-failures",
                "1",
                "--log-format",
                "json",
            ])
            .args([
                "--name",
                "dump",
                "--",
                "sh",
                "-c",
                "echo hello-out; echo \"$0\" >&2; exit 3",
                "--password",
                "pw-Sekr3t-77",
            ]),
        LIMIT,
    );
    assert_eq!(r.code(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains("pw-Sekr3t-77"), "{}", r.stderr);
    let line = |needle: &str| -> serde_json::Value {
        let l = r
            .stderr
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle}: {}", r.stderr));
        serde_json::from_str(l).unwrap()
    };
    let out = line("\"message\":\"hello-out\"");
    assert_eq!(
        (out["job"].as_str(), out["stream"].as_str()),
        (Some("dump"), Some("stdout"))
    );
    let failed = line("job failed");
    assert_eq!(failed["code"], 3);
    assert!(failed["duration"].is_string());
    let started = line("job started");
    assert!(
        started["command"]
            .as_str()
            .unwrap()
            .contains("--password [REDACTED]"),
        "{started}"
    );
    assert!(
        r.stderr
            .contains("failed 1 time in a row (--exit-on-failures 1)"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_in_process_applet_runs_as_a_job() {
    // `initbox notify` runs in this process (no shell, no second binary): its message is
    // written to the file by the applet itself.
    let d = dir();
    let out = d.path().join("notified");
    let child = spawn(
        schedule()
            .args(["--every", "1h", "--run-on-start", "--", "initbox", "notify"])
            .arg(format!("file://{}", out.display()))
            .args(["--message", "backup window"]),
    );
    until(Duration::from_secs(15), "the notification", || out.exists());
    term(&child);
    let r = wait_child(child, LIMIT);
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("backup window")
    );
    assert!(
        r.stderr.contains("job succeeded job=notify"),
        "{}",
        r.stderr
    );
    // In this process: no child process named initbox was started.
    assert!(!r.stderr.contains("pid="), "{}", r.stderr);
}

#[test]
fn jobs_file_crontab_and_catch_up_from_the_state_file() {
    let d = dir();
    let p = |n: &str| d.path().join(n);
    let jobs = p("jobs.yaml");
    std::fs::write(
        &jobs,
        format!(
            "tz: UTC\njobs:\n  - name: tick\n    every: 1s\n    run-on-start: true\n    command: [sh, -c, 'echo t >> {t}']\n  \
             - name: nightly\n    at: \"03:30\"\n    command: [\"true\"]\n  \
             - name: note\n    every: 1h\n    run-on-start: true\n    applet: notify\n    \
             args: [\"file://{n}\", --message, from-yaml]\n",
            t = p("tick").display(),
            n = p("note").display()
        ),
    )
    .unwrap();
    let child = spawn(schedule().arg("-f").arg(&jobs));
    until(Duration::from_secs(10), "two ticks", || {
        lines(&p("tick")).len() >= 2
    });
    // The `applet:` job ran in this process.
    until(Duration::from_secs(5), "the applet job", || {
        p("note").exists()
    });
    term(&child);
    let r = wait_child(child, LIMIT);
    assert!(
        std::fs::read_to_string(p("note"))
            .unwrap()
            .contains("from-yaml")
    );
    assert!(
        r.stderr
            .contains("job scheduled job=nightly schedule=at 03:30 tz=UTC"),
        "{}",
        r.stderr
    );
    let r = run(
        schedule().args(["next", "-f"]).arg(&jobs).args([
            "-n",
            "1",
            "--from",
            "2026-01-01T00:00:00Z",
        ]),
        LIMIT,
    );
    assert_eq!(
        r.stdout,
        "tick (@every 1s):\n2026-01-01T00:00:01+00:00 (UTC)\nnightly (at 03:30):\n2026-01-01T03:30:00+00:00 (UTC)\n\
         note (@every 1h):\n2026-01-01T01:00:00+00:00 (UTC)\n"
    );

    // A crontab as supercronic reads it (seconds first when 6 fields, CRON_TZ, variables).
    let tab = p("crontab");
    std::fs::write(
        &tab,
        format!(
            "# every second\r\nGREETING=hi\n* * * * * * echo $GREETING >> {}\n",
            p("cron").display()
        ),
    )
    .unwrap();
    let child = spawn(schedule().arg("--crontab").arg(&tab));
    until(Duration::from_secs(10), "a crontab run", || {
        !lines(&p("cron")).is_empty()
    });
    term(&child);
    let _ = wait_child(child, LIMIT);
    assert_eq!(lines(&p("cron"))[0], "hi");

    // Catch-up: the state says the 03:30 run of the day before ran; the sidecar comes back at
    // 05:00 (clock started there): today's 03:30 was missed, 1.5 h ago, within max-late 2h.
    let state = p("state.json");
    std::fs::write(
        &state,
        r#"{"jobs":{"backup":{"last_scheduled":"2026-05-01T03:30:00Z"}}}"#,
    )
    .unwrap();
    let ran = p("caught");
    let catch = |max_late: &str| {
        let child = spawn(
            schedule()
                .args([
                    "--at",
                    "03:30",
                    "--tz",
                    "UTC",
                    "--catch-up",
                    "last",
                    "--max-late",
                    max_late,
                ])
                .arg("--state-file")
                .arg(&state)
                .args([
                    "--clock-start",
                    "2026-05-02T05:00:00Z",
                    "--name",
                    "backup",
                    "--",
                ])
                .args(["sh", "-c"])
                .arg(format!("echo caught >> {}", ran.display())),
        );
        std::thread::sleep(Duration::from_millis(1500));
        term(&child);
        let r = wait_child(child, LIMIT);
        r.stderr
    };
    let log = catch("1h");
    assert!(lines(&ran).is_empty(), "older than max-late: {log}");
    assert!(log.contains("missed run is older than max-late"), "{log}");
    let log = catch("2h");
    assert_eq!(lines(&ran), ["caught"], "{log}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(
        saved["jobs"]["backup"]["last_scheduled"],
        "2026-05-02T03:30:00Z"
    );
    assert!(
        saved["jobs"]["backup"]["last_success"].is_string(),
        "{saved}"
    );
    // Caught up once: started again, nothing is missed any more.
    let log = catch("2h");
    assert_eq!(lines(&ran).len(), 1, "{log}");
}

/// GET `path` from the sidecar's health server: (status, whole response); (0, error) when the
/// exchange failed.
fn get(port: u16, path: &str) -> (u16, String) {
    let exchange = || -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)?;
        Ok(resp)
    };
    match exchange() {
        Ok(resp) => {
            let code = resp
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            (code, resp)
        }
        Err(e) => (0, e.to_string()),
    }
}

#[test]
fn healthz_and_heartbeat_follow_failures() {
    let d = dir();
    let beat = d.path().join("beat");
    let flag = d.path().join("fail");
    let port = free_port();
    // The job fails while the flag file exists.
    let script = format!("test ! -e {}", flag.display());
    let child = spawn(
        schedule()
            .args(["--every", "1s", "--run-on-start", "--unhealthy-after", "2"])
            .arg("--healthz")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--heartbeat-file")
            .arg(&beat)
            .args(["--name", "probe", "--", "sh", "-c", &script]),
    );
    until(Duration::from_secs(10), "the heartbeat", || beat.exists());
    until(Duration::from_secs(10), "healthz up", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let (code, body) = get(port, "/healthz");
    assert_eq!(code, 200, "{body}");
    let hb: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&beat).unwrap()).unwrap();
    assert_eq!(hb["healthy"], true);
    std::fs::write(&flag, "").unwrap();
    until(Duration::from_secs(10), "503 after two failures", || {
        get(port, "/healthz").0 == 503
    });
    let (_, body) = get(port, "/healthz");
    assert!(body.contains("job 'probe' failed"), "{body}");
    std::fs::remove_file(&flag).unwrap();
    until(Duration::from_secs(10), "healthy again", || {
        get(port, "/healthz").0 == 200
    });
    assert_eq!(get(port, "/nope").0, 404);
    term(&child);
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 143);
}

#[test]
fn as_pid_1_it_reaps_orphaned_zombies() {
    let unshare = which("unshare").expect("unshare (util-linux) is installed by tests/setup");
    let d = dir();
    let pids = d.path().join("pids");
    // Each run leaves a grandchild that exits on its own after its parent: re-parented to
    // PID 1 (initbox), it must be reaped, not left a zombie.
    let script = format!("(sleep 0.2; exit 0) & echo $! >> {}", pids.display());
    let mut cmd = Command::new(unshare);
    cmd.args(["--pid", "--fork", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_initbox"))
        .args([
            "schedule",
            "--every",
            "1s",
            "--run-on-start",
            "--name",
            "orphans",
            "--",
            "sh",
            "-c",
            &script,
        ]);
    let child = spawn(&mut cmd);
    until(Duration::from_secs(15), "three runs", || {
        lines(&pids).len() >= 3
    });
    std::thread::sleep(Duration::from_millis(800));
    // Inside the namespace initbox is PID 1: count zombies among its children from outside.
    let host_pid =
        std::fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id()))
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .map(str::to_string)
            .expect("initbox under unshare");
    let zombies = std::fs::read_to_string(format!("/proc/{host_pid}/task/{host_pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .map(|s| {
                    s.rsplit_once(')')
                        .map(|(_, r)| r.trim_start().starts_with('Z'))
                        .unwrap_or(false)
                })
                .unwrap_or(false)
        })
        .count();
    assert_eq!(zombies, 0, "zombies left under PID 1");
    // SAFETY: kill(2) on initbox inside the namespace (a pid we read from /proc).
    unsafe { libc::kill(host_pid.parse().unwrap(), libc::SIGTERM) };
    let r = wait_child(child, LIMIT);
    assert!(
        r.stderr.contains("reaped an orphaned process"),
        "{}",
        r.stderr
    );
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

#[test]
fn a_failed_run_is_retried_with_backoff() {
    let d = dir();
    let count = d.path().join("count");
    // Fails on its first two attempts, succeeds on the third.
    let script = format!(
        "echo x >> {c}; test $(wc -l < {c}) -ge 3",
        c = count.display()
    );
    let child = spawn(
        schedule()
            .args([
                "--every",
                "1h",
                "--run-on-start",
                "--retries",
                "3",
                "--retry-delay",
                "200ms",
            ])
            .args(["--name", "flaky", "--", "sh", "-c", &script]),
    );
    until(Duration::from_secs(10), "three attempts", || {
        lines(&count).len() >= 3
    });
    std::thread::sleep(Duration::from_millis(300));
    term(&child);
    let r = wait_child(child, LIMIT);
    assert_eq!(
        lines(&count).len(),
        3,
        "no fourth attempt after a success: {}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("retrying job=flaky run=1 next_attempt=2 delay=200ms"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("next_attempt=3 delay=400ms"),
        "backoff doubles: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("job succeeded job=flaky run=1 attempt=3"),
        "{}",
        r.stderr
    );
}

/// Unix time of a `due` field in UTC ("2026-05-02T03:30:00+00:00 (UTC)"), by date(1).
fn unix_of(due: &str) -> f64 {
    let instant = due.split(" (").next().unwrap();
    let out = Command::new("date")
        .args(["-u", "-d", instant, "+%s"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn random_delay_postpones_each_run_within_its_bound() {
    let d = dir();
    let out = d.path().join("started");
    // The job writes its run's tag (pid:name:run) and the time it really started.
    let child = spawn(
        schedule()
            .args([
                "--cron",
                "* * * * * *",
                "--tz",
                "UTC",
                "--random-delay",
                "800ms",
                "--log-format",
                "json",
                "--name",
                "spread",
                "--",
                "sh",
                "-c",
            ])
            .arg(format!(
                "echo \"$INITBOX_RUN_STEP $(date +%s.%N)\" >> {}",
                out.display()
            )),
    );
    until(Duration::from_secs(20), "four delayed runs", || {
        lines(&out).len() >= 4
    });
    term(&child);
    let r = wait_child(child, LIMIT);
    let mut delays = Vec::new();
    for line in lines(&out) {
        let (tag, started) = line.split_once(' ').unwrap();
        let run: u64 = tag.rsplit(':').next().unwrap().parse().unwrap();
        let started: f64 = started.parse().unwrap();
        let delayed = r
            .stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["message"] == "run delayed at random (--random-delay)" && v["run"] == run)
            .unwrap_or_else(|| panic!("no delay line for run {run}: {}", r.stderr));
        let delay_ms = delayed["delay_ms"].as_u64().unwrap();
        assert!(delay_ms <= 800, "delay within --random-delay: {delayed}");
        let due = unix_of(delayed["due"].as_str().unwrap());
        // The job cannot have started before its due second plus its delay.
        assert!(
            started + 0.002 >= due + delay_ms as f64 / 1000.0,
            "run {run} started at {started}, due {due} + {delay_ms} ms"
        );
        delays.push(delay_ms);
    }
    assert!(delays.len() >= 4);
    delays.sort_unstable();
    delays.dedup();
    assert!(
        delays.len() >= 2,
        "the delays are drawn at random: {delays:?}"
    );

    // SIGTERM while a run waits out its delay: the job never starts, the sidecar exits 143.
    let ran = d.path().join("ran");
    let beat = d.path().join("heartbeat");
    let child = spawn(
        schedule()
            .args([
                "--every",
                "1h",
                "--run-on-start",
                "--random-delay",
                "1h",
                "--heartbeat-file",
            ])
            .arg(&beat)
            .args(["--", "touch"])
            .arg(&ran),
    );
    // The first heartbeat comes after the run-on-start run began (its delay, that is).
    until(Duration::from_secs(10), "the delayed run", || {
        std::fs::read_to_string(&beat).is_ok_and(|t| t.contains("\"running\":1"))
    });
    term(&child);
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 143, "{}", r.stderr);
    assert!(r.stderr.contains("run delayed at random"), "{}", r.stderr);
    assert!(!r.stderr.contains("job started"), "{}", r.stderr);
    assert!(!ran.exists());
}

#[test]
fn crontab_percent_signs_are_the_commands_standard_input() {
    let d = dir();
    let p = |n: &str| d.path().join(n);
    // As cron(5) says: text after the first unescaped % is the command's stdin, each further
    // % a newline; \% is a literal % (here date's format, the case users hit most).
    std::fs::write(
        p("crontab"),
        format!(
            "SHELL=/bin/sh\n* * * * * * cat >> {o}%line one%50\\% off\n\
             * * * * * * date -u +\\%Y >> {y}\n",
            o = p("out").display(),
            y = p("year").display()
        ),
    )
    .unwrap();
    let child = spawn(schedule().arg("--crontab").arg(p("crontab")));
    until(Duration::from_secs(10), "both jobs", || {
        lines(&p("out")).len() >= 2 && !lines(&p("year")).is_empty()
    });
    term(&child);
    let r = wait_child(child, LIMIT);
    assert_eq!(
        lines(&p("out"))[..2],
        ["line one", "50% off"],
        "{}",
        r.stderr
    );
    let year = Command::new("date").args(["-u", "+%Y"]).output().unwrap();
    let year = String::from_utf8_lossy(&year.stdout).trim().to_string();
    assert_eq!(lines(&p("year"))[0], year);
    // The logged command is the part before the %.
    assert!(
        !r.stderr.contains("line one"),
        "stdin text logged: {}",
        r.stderr
    );
}

#[test]
fn an_idle_sidecar_gives_back_start_up_memory_and_keeps_working() {
    // Nothing due for hours: before its first long wait the sidecar drops the binary's clean
    // pages the start-up touched and trims the heap; it must go on serving and stop cleanly.
    let port = free_port();
    let child = spawn(
        schedule()
            .args([
                "--at",
                "03:30",
                "--tz",
                "UTC",
                "-v",
                "-v",
                "--log-format",
                "json",
            ])
            .arg("--clock-start")
            .arg("2026-05-02T04:00:00Z")
            .arg("--healthz")
            .arg(format!("127.0.0.1:{port}"))
            .args(["--", "true"]),
    );
    until(Duration::from_secs(10), "healthz up", || {
        get(port, "/healthz").0 == 200
    });
    // Served again after the pages were dropped (they come back from the page cache).
    let (code, body) = get(port, "/healthz");
    assert_eq!(code, 200, "{body}");
    term(&child);
    let r = wait_child(child, LIMIT);
    assert_eq!(r.code(), 143, "{}", r.stderr);
    let line = r
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "idle: memory given back")
        .unwrap_or_else(|| panic!("no release line: {}", r.stderr));
    let (before, after) = (
        line["rss_before_kib"].as_u64().unwrap(),
        line["rss_after_kib"].as_u64().unwrap(),
    );
    assert!(after < before, "RSS {before} KiB -> {after} KiB");
}
