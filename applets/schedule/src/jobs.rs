//! The jobs: from the command line (one job), a YAML jobs file (in the style of `run`'s steps
//! file), or a plain crontab. Everything is checked before the first job is scheduled.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use initbox_cron::{Schedule, TimeZone};
pub use initbox_runtime::step::Action;
use initbox_runtime::{Failure, duration, inprocess, redact, step};
use serde::Deserialize;
use serde_norway::Value;

/// What to do when a run is due while the previous run of the same job still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Concurrency {
    /// Skip the new run (and log it): the default.
    Forbid,
    /// Start the new run beside the old one.
    Allow,
    /// Stop the old run (SIGTERM, grace, SIGKILL) and start the new one.
    Replace,
}

/// Whether a run missed while the sidecar was down is made up for at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CatchUp {
    /// Missed runs are lost (cron's behaviour).
    None,
    /// The last missed run is run once at start, if it is not older than the max-late window.
    Last,
}

/// The per-job settings (flags give the defaults; a jobs file may override each per job).
#[derive(Debug, Clone)]
pub struct Options {
    pub timeout: Option<Duration>,
    pub concurrency: Concurrency,
    pub jitter: Duration,
    pub run_on_start: bool,
    pub retries: u32,
    pub retry_delay: Duration,
    pub catch_up: CatchUp,
    pub max_late: Duration,
    pub stop_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub schedule: Schedule,
    pub action: Action,
    pub opts: Options,
    /// The command line as logs show it, secrets masked.
    pub shown: String,
    /// What the command reads on stdin (a crontab line's text after `%`); else /dev/null.
    pub stdin: Option<String>,
}

/// Flag and option names whose value is a secret on a command line.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "secret",
    "token",
    "key",
    "credential",
    "auth",
    "apikey",
];

fn secret_name(name: &str) -> bool {
    let n = name.trim_start_matches('-').to_ascii_lowercase();
    n.split(['-', '_', '.']).any(|part| {
        SECRET_WORDS
            .iter()
            .any(|w| part == *w || part.strip_suffix('s') == Some(w))
    })
}

/// The command line as it may be logged: URL passwords, values of secret-named flags
/// (`--password X`, `--token=X`) and secret-named assignments (`DB_PASSWORD=X`) are registered
/// with the scrubber and masked, so they are masked in the job's own output too.
pub fn shown_command(argv: &[OsString]) -> String {
    let mut out = Vec::with_capacity(argv.len());
    let mut next_is_secret = false;
    for a in argv {
        let a = a.to_string_lossy();
        if next_is_secret {
            redact::register(&a);
            out.push(redact::MASK.to_string());
            next_is_secret = false;
            continue;
        }
        if let Some((k, v)) = a.split_once('=')
            && secret_name(k)
            && !v.is_empty()
        {
            redact::register(v);
            out.push(format!("{k}={}", redact::MASK));
            continue;
        }
        if a.starts_with('-') && secret_name(&a) {
            next_is_secret = true;
            out.push(a.into_owned());
            continue;
        }
        if a.contains("://") {
            out.push(redact::url_for_display(&a));
            continue;
        }
        out.push(redact::scrub(&a).into_owned());
    }
    out.join(" ")
}

/// The action for a command line: `initbox APPLET ARGS…` (or the path of this binary) runs the
/// applet in this process; anything else is a child process.
pub fn action_for(argv: Vec<OsString>) -> Action {
    if argv.len() >= 2 {
        let program = Path::new(&argv[0]);
        let is_initbox = program.file_name().is_some_and(|n| n == "initbox")
            || std::env::current_exe()
                .ok()
                .is_some_and(|me| program.is_absolute() && me == program);
        let name = argv[1].to_string_lossy().into_owned();
        if is_initbox && inprocess::find(&name).is_some() {
            return Action::Applet {
                name,
                argv: argv[1..].to_vec(),
            };
        }
    }
    // `initbox X` for an applet this build lacks: this binary, when `initbox` is not in PATH
    // (a scratch image with initbox at /initbox).
    let mut argv = argv;
    if argv.first().is_some_and(|p| p == "initbox")
        && !in_path("initbox")
        && let Ok(me) = std::env::current_exe()
    {
        argv[0] = me.into_os_string();
    }
    Action::Command {
        argv,
        env: Vec::new(),
    }
}

fn in_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(name).is_file()))
}

/// Check an action before anything runs: an applet's arguments are parsed as `initbox APPLET`
/// would parse them; a command must name a program.
pub fn check(action: &Action, job: &str) -> Result<(), Failure> {
    match action {
        Action::Applet { name, argv } => {
            let applet = inprocess::find(name).ok_or_else(|| {
                Failure::invalid_input(format!("job '{job}': unknown applet '{name}'"))
            })?;
            drop((applet.parse)(argv.clone()).map_err(|f| f.context(format!("job '{job}'")))?);
            Ok(())
        }
        Action::Command { argv, .. } if argv.is_empty() || argv[0].is_empty() => {
            Err(Failure::usage(format!(
                "job '{job}': no command given (expected -- CMD ARGS…)"
            )))
        }
        Action::Command { .. } => Ok(()),
    }
}

pub fn describe_action(action: &Action) -> String {
    match action {
        Action::Applet { argv, .. } => format!("initbox {}", shown_command(argv)),
        Action::Command { argv, .. } => shown_command(argv),
    }
}

/// A default job name: the applet, or the program's base name.
pub fn default_name(action: &Action) -> String {
    match action {
        Action::Applet { name, .. } => name.clone(),
        Action::Command { argv, .. } => argv
            .first()
            .map(|p| {
                Path::new(p)
                    .file_name()
                    .unwrap_or(p)
                    .to_string_lossy()
                    .into_owned()
            })
            .unwrap_or_else(|| "job".into()),
    }
}

/// `@every D` with the toolkit's durations, else a cron expression or macro.
pub fn schedule_from_expr(expr: &str, tz: TimeZone) -> Result<Schedule, String> {
    let t = expr.trim();
    if t.len() >= 6 && t[..6].eq_ignore_ascii_case("@every") {
        let d = duration::parse(t[6..].trim()).map_err(|e| format!("'{t}': {e}"))?;
        return Schedule::every(d, tz).map_err(|e| e.0);
    }
    Schedule::cron(t, tz).map_err(|e| e.0)
}

// ---------------------------------------------------------------------------------------------
// YAML jobs file

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    tz: Option<String>,
    jobs: Vec<RawJob>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawJob {
    name: Option<String>,
    at: Option<String>,
    cron: Option<String>,
    every: Option<Value>,
    tz: Option<String>,
    applet: Option<String>,
    #[serde(default)]
    args: Vec<Value>,
    command: Option<Vec<Value>>,
    #[serde(default)]
    env: BTreeMap<String, Value>,
    timeout: Option<Value>,
    concurrency: Option<Concurrency>,
    jitter: Option<Value>,
    run_on_start: Option<bool>,
    retries: Option<u32>,
    retry_delay: Option<Value>,
    catch_up: Option<CatchUp>,
    max_late: Option<Value>,
    stop_grace: Option<Value>,
}

fn dur(value: &Option<Value>, what: &str) -> Result<Option<Duration>, String> {
    value
        .as_ref()
        .map(|v| {
            step::word(v.clone(), "", what)
                .and_then(|w| duration::parse(&w).map_err(|e| format!("{what}: {e}")))
        })
        .transpose()
}

/// Parse a YAML jobs file. `defaults` are the flags' settings; `tz` the default time zone.
pub fn parse_file(
    text: &str,
    source: &str,
    defaults: &Options,
    tz: &TimeZone,
) -> Result<Vec<Job>, Failure> {
    let bad = |msg: String| Failure::invalid_input(format!("{source}: {msg}"));
    let raw: RawFile = serde_norway::from_str(text)
        .map_err(|e| bad(redact::without_input_values(&e.to_string())))?;
    if raw.jobs.is_empty() {
        return Err(bad("no jobs (expected a list under 'jobs:')".into()));
    }
    let file_tz = match &raw.tz {
        Some(z) => initbox_cron::zone(Some(z)).map_err(|e| bad(e.0))?,
        None => tz.clone(),
    };
    let mut jobs = Vec::new();
    let mut names = HashSet::new();
    for (i, r) in raw.jobs.into_iter().enumerate() {
        let at = format!("job {}", i + 1);
        let job = one_job(r, &at, defaults, &file_tz).map_err(|m| bad(format!("{at}: {m}")))?;
        if !names.insert(job.name.clone()) {
            return Err(bad(format!("{at}: duplicate job name '{}'", job.name)));
        }
        check(&job.action, &job.name)?;
        jobs.push(job);
    }
    Ok(jobs)
}

fn one_job(r: RawJob, at: &str, d: &Options, tz: &TimeZone) -> Result<Job, String> {
    let tz = match &r.tz {
        Some(z) => initbox_cron::zone(Some(z)).map_err(|e| e.0)?,
        None => tz.clone(),
    };
    let schedule = match (&r.at, &r.cron, &r.every) {
        (Some(t), None, None) => Schedule::daily_at(t, tz).map_err(|e| e.0)?,
        (None, Some(c), None) => schedule_from_expr(c, tz)?,
        (None, None, Some(e)) => {
            let e = step::word(e.clone(), "", "every")?;
            let p = duration::parse(&e).map_err(|m| format!("every: {m}"))?;
            Schedule::every(p, tz).map_err(|e| e.0)?
        }
        (None, None, None) => return Err("no schedule (give one of 'at', 'cron', 'every')".into()),
        _ => return Err("give only one of 'at', 'cron', 'every'".into()),
    };
    let action = step::action(
        step::RawAction {
            applet: r.applet,
            args: r.args,
            command: r.command,
            env: r.env,
        },
        "",
    )?;
    if let Action::Command { env, .. } = &action {
        for (k, v) in env {
            if secret_name(k) {
                redact::register(v);
            }
        }
    }
    let opts = Options {
        timeout: match dur(&r.timeout, "timeout")? {
            Some(t) if t.is_zero() => None,
            Some(t) => Some(t),
            None => d.timeout,
        },
        concurrency: r.concurrency.unwrap_or(d.concurrency),
        jitter: dur(&r.jitter, "jitter")?.unwrap_or(d.jitter),
        run_on_start: r.run_on_start.unwrap_or(d.run_on_start),
        retries: r.retries.unwrap_or(d.retries),
        retry_delay: dur(&r.retry_delay, "retry-delay")?.unwrap_or(d.retry_delay),
        catch_up: r.catch_up.unwrap_or(d.catch_up),
        max_late: dur(&r.max_late, "max-late")?.unwrap_or(d.max_late),
        stop_grace: dur(&r.stop_grace, "stop-grace")?.unwrap_or(d.stop_grace),
    };
    let name = r.name.unwrap_or_else(|| default_name(&action));
    if name.is_empty() || !redact::is_plain_name(&name) {
        return Err(format!(
            "{at}: job name must be 1 to 64 letters, digits, '_', '-' or '.'"
        ));
    }
    Ok(Job {
        shown: describe_action(&action),
        name,
        schedule,
        action,
        opts,
        stdin: None,
    })
}

// ---------------------------------------------------------------------------------------------
// crontab

/// Whether a crontab word can be a cron field (so `*/5 * * * * * cmd` has seconds).
fn is_field(w: &str) -> bool {
    !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "*,-/?#".contains(c))
        && w.chars()
            .any(|c| c.is_ascii_digit() || c == '*' || c == '?')
        && !w.contains("//")
}

/// Parse a crontab as supercronic and Vixie cron read it: `# comments`, blank lines,
/// `NAME=value` variables (for the commands after them; `CRON_TZ=` sets the zone of the lines
/// after it), and `FIELDS COMMAND` lines: 5 fields, 6 with seconds first, or a macro. Commands
/// run with `$SHELL -c` (SHELL from the crontab, else `/bin/sh`), and a `%` in a command
/// starts its standard input, as in Vixie cron ([`split_percent`]).
pub fn parse_crontab(
    text: &str,
    source: &str,
    defaults: &Options,
    tz: &TimeZone,
) -> Result<Vec<Job>, Failure> {
    let mut jobs = Vec::new();
    let mut env: Vec<(String, String)> = Vec::new();
    let mut tz = tz.clone();
    // cron runs each command with `$SHELL -c`, SHELL from the crontab, else /bin/sh.
    let mut shell = "/bin/sh".to_string();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r').trim();
        let bad = |m: String| Failure::invalid_input(format!("{source}, line {}: {m}", i + 1));
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or_default();
        if let Some((k, _)) = first.split_once('=').filter(|(k, _)| {
            !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }) {
            // A variable: the rest of the line is the value, quotes removed.
            let v = line[k.len() + 1..].trim();
            let v = v
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                .unwrap_or(v);
            if k == "CRON_TZ" {
                tz = initbox_cron::zone(Some(v)).map_err(|e| bad(e.0))?;
            } else {
                if k == "SHELL" && !v.is_empty() {
                    shell = v.to_string();
                }
                if secret_name(k) {
                    redact::register(v);
                }
                env.push((k.to_string(), v.to_string()));
            }
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let (expr, rest_at) = if first.starts_with('@') {
            if first.eq_ignore_ascii_case("@every") {
                (words[..2.min(words.len())].join(" "), 2)
            } else {
                (first.to_string(), 1)
            }
        } else if words.len() >= 7 && words[..6].iter().all(|w| is_field(w)) {
            (words[..6].join(" "), 6)
        } else if words.len() >= 6 {
            (words[..5].join(" "), 5)
        } else {
            return Err(bad(format!(
                "expected 5 time fields and a command, found {} words",
                words.len()
            )));
        };
        let schedule = schedule_from_expr(&expr, tz.clone()).map_err(bad)?;
        // The command: the line after the fields, as written (spacing kept; trailing spaces
        // too, since they may belong to the text after a `%`).
        let mut rest = raw.trim_end_matches('\r');
        for _ in 0..rest_at {
            rest = rest.trim_start();
            rest = &rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..];
        }
        let (command, stdin) = split_percent(rest.trim_start());
        let command = match stdin {
            Some(_) => command,
            None => command.trim_end().to_string(),
        };
        if command.trim().is_empty() {
            return Err(bad("no command after the schedule".into()));
        }
        let argv: Vec<OsString> = vec![shell.as_str().into(), "-c".into(), command.clone().into()];
        let name = format!("line-{}", i + 1);
        jobs.push(Job {
            shown: shown_command(&[command.into()]),
            name,
            schedule,
            action: Action::Command {
                argv,
                env: env.clone(),
            },
            opts: defaults.clone(),
            stdin,
        });
    }
    if jobs.is_empty() {
        return Err(Failure::invalid_input(format!("{source}: no jobs")));
    }
    Ok(jobs)
}

/// A crontab command split as cron(5) says and Vixie cron (cronie, Debian's cron) does it: the
/// command ends at the first `%` not preceded by a backslash, and `\%` in it is a literal `%`
/// (the backslash removed; any other backslash stays for the shell). The text after that `%`
/// is the command's standard input: each further `%` a newline, `\%` a literal `%`, other
/// backslashes kept, and a newline added at the end when the text does not end with one.
/// `None`: nothing after the `%` (or no `%`), so the command reads end-of-file at once.
pub fn split_percent(line: &str) -> (String, Option<String>) {
    let mut command = String::with_capacity(line.len());
    let mut rest = None;
    let mut escaped = false;
    for (i, ch) in line.char_indices() {
        if escaped {
            if ch == '%' {
                command.pop();
            }
            command.push(ch);
            escaped = false;
            continue;
        }
        if ch == '%' {
            rest = Some(&line[i + 1..]);
            break;
        }
        escaped = ch == '\\';
        command.push(ch);
    }
    let input = rest.filter(|r| !r.is_empty()).map(|rest| {
        let mut input = String::with_capacity(rest.len() + 1);
        let (mut escaped, mut need_newline) = (false, false);
        for ch in rest.chars() {
            let ch = match (escaped, ch) {
                (true, '%') => '%',
                (true, c) => {
                    input.push('\\');
                    c
                }
                (false, '%') => '\n',
                (false, c) => c,
            };
            escaped = ch == '\\';
            if !escaped {
                input.push(ch);
                need_newline = ch != '\n';
            }
        }
        if escaped {
            input.push('\\');
        }
        if need_newline {
            input.push('\n');
        }
        input
    });
    (command, input)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options {
            timeout: None,
            concurrency: Concurrency::Forbid,
            jitter: Duration::ZERO,
            run_on_start: false,
            retries: 0,
            retry_delay: Duration::from_secs(10),
            catch_up: CatchUp::None,
            max_late: Duration::from_secs(3600),
            stop_grace: Duration::from_secs(10),
        }
    }

    #[test]
    fn crontab_lines() {
        let text = "# backups\r\nSHELL=/bin/sh\nCRON_TZ=Europe/Berlin\n\n*/5 * * * * echo  hi # not a comment\n0 */10 * * * * date\n@daily   /bin/true\n@every 90s echo x\n";
        let jobs = parse_crontab(text, "crontab", &opts(), &TimeZone::UTC).unwrap();
        assert_eq!(jobs.len(), 4);
        assert_eq!(jobs[0].schedule.text(), "*/5 * * * *");
        assert_eq!(jobs[0].shown, "echo  hi # not a comment");
        assert_eq!(jobs[1].schedule.text(), "0 */10 * * * *");
        assert_eq!(jobs[2].schedule.text(), "@daily");
        assert_eq!(jobs[3].schedule.text(), "@every 1m30s");
        assert_eq!(
            initbox_cron::zone_name(jobs[0].schedule.tz()),
            "Europe/Berlin"
        );
        let Action::Command { env, .. } = &jobs[0].action else {
            panic!()
        };
        assert_eq!(env, &[("SHELL".to_string(), "/bin/sh".to_string())]);
        for (bad, want) in [
            ("* * * * *\n", "line 1: expected 5 time fields"),
            ("61 * * * * x\n", "line 1: cron expression"),
            ("CRON_TZ=Nowhere/Land\n* * * * * x", "unknown time zone"),
            ("# nothing\n", "no jobs"),
        ] {
            let e = parse_crontab(bad, "crontab", &opts(), &TimeZone::UTC).unwrap_err();
            assert!(e.message.contains(want), "{bad:?}: {e}");
        }
    }

    /// cron(5): "Percent-signs (%) in the command, unless escaped with backslash (\\), will
    /// be changed into newline characters, and all data after the first % will be sent to the
    /// command as standard input." The cases follow Vixie cron's own loops (cronie's
    /// do_command.c): `\%` loses its backslash on both sides of the first `%`, other
    /// backslashes stay, and the input ends with a newline.
    #[test]
    fn percent_signs_split_command_and_standard_input() {
        let none = |c: &str| (c.to_string(), None);
        let some = |c: &str, i: &str| (c.to_string(), Some(i.to_string()));
        for (line, want) in [
            ("echo hi", none("echo hi")),
            (r"date +\%Y-\%m-\%d", none("date +%Y-%m-%d")),
            ("cat%line one%line two", some("cat", "line one\nline two\n")),
            (
                "mail -s 'x' root%Hi%there%",
                some("mail -s 'x' root", "Hi\nthere\n"),
            ),
            ("cat%", none("cat")),
            (r"cat%50\% off", some("cat", "50% off\n")),
            (r"cat%a\b\\c", some("cat", "a\\b\\\\c\n")),
            (r"cat%x\", some("cat", "x\\\n")),
            (r"echo \\%x", some(r"echo \\", "x\n")),
            (
                r"printf '%s\n' a\%b%in",
                some(r"printf '", "s\\n' a%b\nin\n"),
            ),
            (r"echo a\b", none(r"echo a\b")),
            ("cat%%", some("cat", "\n")),
        ] {
            assert_eq!(split_percent(line), want, "{line}");
        }
        // In a crontab: the command part is what runs (and is shown); the rest is stdin.
        let text = "SHELL=/bin/bash\n* * * * * cat > /tmp/x%hello \\% world%bye  \n";
        let jobs = parse_crontab(text, "crontab", &opts(), &TimeZone::UTC).unwrap();
        let Action::Command { argv, .. } = &jobs[0].action else {
            panic!()
        };
        assert_eq!(
            argv,
            &["/bin/bash", "-c", "cat > /tmp/x"].map(OsString::from)
        );
        assert_eq!(jobs[0].shown, "cat > /tmp/x");
        assert_eq!(jobs[0].stdin.as_deref(), Some("hello % world\nbye  \n"));
    }

    #[test]
    fn secrets_are_masked_in_shown_commands() {
        let argv: Vec<OsString> = [
            "pg_dump",
            "--password",
            "hunter2-xyz",
            "--token=abc123456",
            "postgres://u:s3cr3t-pw@db/app",
            "DB_PASSWORD=pw-0987",
            "--verbose",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let shown = shown_command(&argv);
        for s in ["hunter2-xyz", "abc123456", "s3cr3t-pw", "pw-0987"] {
            assert!(!shown.contains(s), "{shown}");
        }
        assert!(shown.contains("--verbose") && shown.contains("pg_dump"));
        assert!(!redact::scrub("echo hunter2-xyz").contains("hunter2"));
    }
}
