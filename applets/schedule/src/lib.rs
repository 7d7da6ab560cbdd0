//! `initbox schedule`: the maintenance sidecar. Waits for each job's time, runs it (a command in
//! its own process group, or an initbox applet in this process), logs one line per run, and
//! waits for the next; as PID 1 it reaps zombies, and on SIGTERM it forwards the signal to the
//! running jobs and exits within their grace period.
//!
//! `initbox schedule next` prints a schedule's next times (time zones and DST included).

mod jobs;
mod scheduler;

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use initbox_cron::{Schedule, TimeZone, Timestamp};
use initbox_runtime::duration;
use initbox_runtime::{Applet, Failure, LogArgs, Outcome};

pub use jobs::{Action, CatchUp, Concurrency, Job, Options};

#[derive(Debug, Parser)]
#[command(
    name = "schedule",
    version,
    disable_help_subcommand = true,
    about = "Run jobs on a schedule (cron, daily at HH:MM, every D): the maintenance sidecar",
    long_about = "Run jobs on a schedule in a sidecar: `--at HH:MM` (daily; the RUNAT variable \
                  works too), `--cron EXPR` (5 fields, 6 with seconds first, @hourly/@daily/…, \
                  @every D) or `--every D`, for the command after `--`; or several jobs from a \
                  YAML jobs file (-f) or a crontab (--crontab). `-- initbox APPLET ARGS` runs the \
                  applet in this process (no shell needed in the image).\n\n\
                  Per job: --job-timeout (SIGTERM to the job's process group, --stop-grace, SIGKILL), \
                  --concurrency-policy forbid|allow|replace, --random-delay, --run-on-start, --retries, \
                  --catch-up last with --state-file. Times are wall-clock times in --tz (else \
                  CRON_TZ, else TZ): a daily job inside a DST gap runs once, right after the gap; \
                  in a fold it runs once, at the first pass.\n\n\
                  On SIGTERM/SIGINT scheduling stops, running jobs get the signal and --stop-grace \
                  to end (then SIGKILL), and initbox exits 128+N (143 for SIGTERM). Health: \
                  --heartbeat-file, --healthz ADDR, --exit-on-failures N.",
    after_help = "Examples:\n  initbox schedule --at 03:30 -- initbox backup --to s3://bucket/db\n  \
                  initbox schedule --cron '*/15 * * * *' --job-timeout 10m -- /app/cleanup\n  \
                  initbox schedule --every 10m --run-on-start -- initbox notify stdout:// -m tick\n  \
                  initbox schedule -f /etc/initbox/jobs.yaml --healthz :8080\n  \
                  initbox schedule next --cron '30 2 * * *' --tz Europe/Berlin -n 10\n\n\
                  Jobs file:\n  tz: Europe/Berlin\n  jobs:\n    - name: backup\n      \
                  at: \"03:30\"\n      applet: backup\n      args: [--to, s3://bucket/db]\n      \
                  timeout: 1h\n      catch-up: last\n    - name: cleanup\n      \
                  cron: \"*/15 * * * *\"\n      command: [/app/cleanup, --older-than, 7d]\n      \
                  concurrency: replace"
)]
pub struct Args {
    #[command(subcommand)]
    pub sub: Option<Sub>,

    #[command(flatten)]
    pub when: When,

    /// Jobs file (YAML: a `jobs:` list, each with at/cron/every and applet+args or command).
    #[arg(short = 'f', long, value_name = "FILE", env = initbox_runtime::env::SCHEDULE_FILE)]
    pub file: Option<PathBuf>,

    /// A crontab (5 or 6 fields or a macro, then a command run with /bin/sh -c; CRON_TZ= lines).
    #[arg(long, value_name = "FILE", env = initbox_runtime::env::SCHEDULE_CRONTAB)]
    pub crontab: Option<PathBuf>,

    /// Name of the job given on the command line (in logs, the state file, /healthz).
    #[arg(long, value_name = "NAME", env = initbox_runtime::env::SCHEDULE_NAME)]
    pub name: Option<String>,

    /// Bound on each run; at the end the job gets SIGTERM, then SIGKILL after --stop-grace
    /// (exit 124). 0 means none.
    #[arg(long = "job-timeout", value_name = "DURATION", default_value = "0",
          value_parser = duration::parse, env = initbox_runtime::env::SCHEDULE_JOB_TIMEOUT)]
    pub timeout: Duration,

    /// A run due while the previous one still runs: forbid (skip it), allow, or replace (stop
    /// the old one).
    #[arg(
        long = "concurrency-policy",
        value_enum,
        default_value = "forbid",
        env = initbox_runtime::env::SCHEDULE_CONCURRENCY_POLICY
    )]
    pub concurrency: Concurrency,

    /// Start each run up to this much later, at random (spreads a fleet's load).
    #[arg(long = "random-delay", value_name = "DURATION", default_value = "0",
          value_parser = duration::parse, env = initbox_runtime::env::SCHEDULE_RANDOM_DELAY)]
    pub jitter: Duration,

    /// Also run every job once at start.
    #[arg(long, env = initbox_runtime::env::SCHEDULE_RUN_ON_START,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub run_on_start: bool,

    /// Try a failed run again up to N times (delay doubling from --retry-delay).
    #[arg(
        long,
        value_name = "N",
        default_value = "0",
        env = initbox_runtime::env::SCHEDULE_RETRIES
    )]
    pub retries: u32,

    /// First delay between the attempts of a failed run.
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = duration::parse, env = initbox_runtime::env::SCHEDULE_RETRY_DELAY)]
    pub retry_delay: Duration,

    /// A run missed while the sidecar was down: none (lost), or last (run it once at start,
    /// if not older than --max-late). Needs --state-file.
    #[arg(
        long,
        value_enum,
        default_value = "none",
        env = initbox_runtime::env::SCHEDULE_CATCH_UP
    )]
    pub catch_up: CatchUp,

    /// With --catch-up last: the oldest missed run still made up for.
    #[arg(long, value_name = "DURATION", default_value = "1h",
          value_parser = duration::parse, env = initbox_runtime::env::SCHEDULE_MAX_LATE)]
    pub max_late: Duration,

    /// Where each job's last run is kept (JSON, written atomically), for --catch-up.
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::SCHEDULE_STATE_FILE)]
    pub state_file: Option<PathBuf>,

    /// Time between SIGTERM and SIGKILL when a command is stopped (a job's timeout, replace,
    /// shutdown): keep it below the pod's terminationGracePeriodSeconds.
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = duration::parse, env = initbox_runtime::env::SCHEDULE_STOP_GRACE)]
    pub stop_grace: Duration,

    /// File rewritten (JSON status) every --heartbeat-interval and after each run while the
    /// sidecar is healthy; it goes stale when it is not.
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::SCHEDULE_HEARTBEAT_FILE)]
    pub heartbeat_file: Option<PathBuf>,

    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = duration::parse, env = initbox_runtime::env::SCHEDULE_HEARTBEAT_INTERVAL)]
    /// How often the heartbeat file is rewritten.
    pub heartbeat_interval: Duration,

    /// Serve GET /healthz on this address (`:8080`, `127.0.0.1:8080`): 200 while healthy, 503
    /// with the reason when not.
    #[arg(long, value_name = "ADDR", value_parser = parse_addr, env = initbox_runtime::env::SCHEDULE_HEALTHZ)]
    pub healthz: Option<SocketAddr>,

    /// Unhealthy after this many consecutive failed runs of a job.
    #[arg(
        long,
        value_name = "N",
        default_value = "1",
        env = initbox_runtime::env::SCHEDULE_UNHEALTHY_AFTER
    )]
    pub unhealthy_after: u32,

    /// Unhealthy when a job's last success (or the start) is older than this; 0: no limit.
    #[arg(long, value_name = "DURATION", default_value = "0",
          value_parser = duration::parse, env = initbox_runtime::env::SCHEDULE_MAX_SUCCESS_AGE)]
    pub max_success_age: Duration,

    /// Stop (exit 1) after N consecutive failed runs of a job; 0: never.
    #[arg(
        long,
        value_name = "N",
        default_value = "0",
        env = initbox_runtime::env::SCHEDULE_EXIT_ON_FAILURES
    )]
    pub exit_on_failures: u32,

    /// Start the scheduler's clock at this instant (RFC 3339) instead of now; it then runs at
    /// real speed. For tests and dry runs of DST days.
    #[arg(
        long,
        value_name = "INSTANT",
        hide = true,
        env = initbox_runtime::env::SCHEDULE_CLOCK_START
    )]
    pub clock_start: Option<String>,

    #[command(flatten)]
    pub log: LogArgs,

    /// The job's command (`initbox APPLET ARGS` runs the applet in this process).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// When the command-line job runs.
#[derive(Debug, Clone, clap::Args)]
pub struct When {
    /// Daily at HH:MM (or HH:MM:SS), 24-hour clock, in --tz. The RUNAT variable is read too.
    #[arg(long, value_name = "HH:MM", env = initbox_runtime::env::SCHEDULE_AT, conflicts_with_all = ["cron", "every"])]
    pub at: Option<String>,

    /// A cron expression: 5 fields, 6 with seconds first, @hourly/@daily/@weekly/@monthly/
    /// @yearly, or @every DURATION.
    #[arg(
        long,
        value_name = "EXPR",
        env = initbox_runtime::env::SCHEDULE_CRON,
        conflicts_with = "every"
    )]
    pub cron: Option<String>,

    /// Every DURATION of real time, from the start (no drift).
    #[arg(long, value_name = "DURATION", value_parser = duration::parse, env = initbox_runtime::env::SCHEDULE_EVERY)]
    pub every: Option<Duration>,

    /// Time zone of the schedule (tz database name, e.g. Europe/Berlin). Else CRON_TZ, else
    /// TZ, else /etc/localtime, else UTC.
    #[arg(long, value_name = "ZONE", env = initbox_runtime::env::SCHEDULE_TZ)]
    pub tz: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Print the next times of a schedule (or of every job of a jobs file or crontab).
    Next(NextArgs),
}

#[derive(Debug, clap::Args)]
pub struct NextArgs {
    #[command(flatten)]
    pub when: When,

    /// Jobs file (YAML: a `jobs:` list, each with at/cron/every and applet+args or command).
    #[arg(short = 'f', long, value_name = "FILE", env = initbox_runtime::env::SCHEDULE_FILE)]
    pub file: Option<PathBuf>,

    /// A crontab (5 or 6 fields or a macro, then a command run with /bin/sh -c; CRON_TZ= lines).
    #[arg(long, value_name = "FILE", env = initbox_runtime::env::SCHEDULE_CRONTAB)]
    pub crontab: Option<PathBuf>,

    /// How many next times to print.
    #[arg(
        short = 'n',
        long = "times",
        value_name = "N",
        default_value = "5",
        env = initbox_runtime::env::SCHEDULE_TIMES
    )]
    pub count: usize,

    /// Start after this instant (RFC 3339) instead of now.
    #[arg(long, value_name = "INSTANT", env = initbox_runtime::env::SCHEDULE_FROM)]
    pub from: Option<String>,
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse()
        .map_err(|_| format!("'{s}' is not an address (expected :PORT or HOST:PORT)"))
}

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }

    fn handles_signals() -> bool {
        true
    }

    async fn run(self) -> Result<Outcome, Failure> {
        match &self.sub {
            Some(Sub::Next(n)) => next(n),
            None => scheduler::run(self).await,
        }
    }
}

/// The time zone: --tz, else CRON_TZ, else the system's (TZ, /etc/localtime), else UTC.
fn time_zone(flag: Option<&str>) -> Result<TimeZone, Failure> {
    let name = flag
        .map(str::to_string)
        .or_else(|| std::env::var("CRON_TZ").ok().filter(|v| !v.is_empty()));
    initbox_cron::zone(name.as_deref()).map_err(|e| Failure::usage(e.0))
}

/// The schedule of the command-line job, `None` when none was given (RUNAT is read here).
fn flag_schedule(
    when: &When,
    tz: &TimeZone,
    read_runat: bool,
) -> Result<Option<Schedule>, Failure> {
    let usage = |m: String| Failure::usage(m);
    let runat = std::env::var("RUNAT")
        .ok()
        .filter(|v| read_runat && !v.trim().is_empty());
    Ok(match (&when.at, &when.cron, when.every) {
        (Some(at), _, _) => {
            Some(Schedule::daily_at(at, tz.clone()).map_err(|e| usage(format!("--at: {}", e.0)))?)
        }
        (None, Some(c), _) => Some(
            jobs::schedule_from_expr(c, tz.clone()).map_err(|e| usage(format!("--cron: {e}")))?,
        ),
        (None, None, Some(d)) => {
            Some(Schedule::every(d, tz.clone()).map_err(|e| usage(format!("--every: {}", e.0)))?)
        }
        (None, None, None) => match runat {
            Some(at) => Some(
                Schedule::daily_at(&at, tz.clone())
                    .map_err(|e| usage(format!("RUNAT: {}", e.0)))?,
            ),
            None => None,
        },
    })
}

/// Read the jobs: the command-line job, a jobs file, or a crontab (one of them).
pub fn load_jobs(
    when: &When,
    file: Option<&PathBuf>,
    crontab: Option<&PathBuf>,
    command: &[OsString],
    name: Option<&str>,
    opts: &Options,
) -> Result<Vec<Job>, Failure> {
    let tz = time_zone(when.tz.as_deref())?;
    // RUNAT schedules the command after `--`; a jobs file or crontab has its own schedules.
    let schedule = flag_schedule(when, &tz, file.is_none() && crontab.is_none())?;
    let read = |p: &PathBuf, what: &str| {
        initbox_runtime::input::read_string(p, &format!("{what} {}", p.display()))
    };
    match (file, crontab, schedule) {
        (Some(_), Some(_), _) => Err(Failure::usage("give -f FILE or --crontab FILE, not both")),
        (Some(_) | None, Some(_) | None, Some(_)) if file.is_some() || crontab.is_some() => {
            Err(Failure::usage(
                "--at/--cron/--every schedule the command after --; a jobs file or crontab has its own schedules",
            ))
        }
        (Some(f), None, None) => {
            if !command.is_empty() {
                return Err(Failure::usage(
                    "a jobs file names its own commands; drop the one after --",
                ));
            }
            jobs::parse_file(&read(f, "jobs file")?, &f.display().to_string(), opts, &tz)
        }
        (None, Some(c), None) => {
            if !command.is_empty() {
                return Err(Failure::usage(
                    "a crontab names its own commands; drop the one after --",
                ));
            }
            jobs::parse_crontab(&read(c, "crontab")?, &c.display().to_string(), opts, &tz)
        }
        (None, None, Some(schedule)) => {
            if command.is_empty() {
                return Err(Failure::usage(
                    "no command to schedule (expected -- CMD ARGS…)",
                ));
            }
            let action = jobs::action_for(command.to_vec());
            let name = name
                .map(str::to_string)
                .unwrap_or_else(|| jobs::default_name(&action));
            jobs::check(&action, &name)?;
            Ok(vec![Job {
                shown: jobs::describe_action(&action),
                name,
                schedule,
                action,
                opts: opts.clone(),
                stdin: None,
            }])
        }
        _ => Err(Failure::usage(
            "no schedule: give --at HH:MM, --cron EXPR, --every DURATION (or RUNAT), -f FILE or --crontab FILE",
        )),
    }
}

fn next(n: &NextArgs) -> Result<Outcome, Failure> {
    let from = match &n.from {
        Some(f) => initbox_cron::parse_instant(f).map_err(|e| Failure::usage(e.0))?,
        None => Timestamp::now(),
    };
    let opts = scheduler::default_options();
    let jobs = if n.file.is_none() && n.crontab.is_none() {
        let tz = time_zone(n.when.tz.as_deref())?;
        let s = flag_schedule(&n.when, &tz, true)?.ok_or_else(|| {
            Failure::usage("no schedule: give --at, --cron, --every, -f FILE or --crontab FILE")
        })?;
        vec![(String::new(), s)]
    } else {
        load_jobs(
            &n.when,
            n.file.as_ref(),
            n.crontab.as_ref(),
            &[],
            None,
            &opts,
        )?
        .into_iter()
        .map(|j| (j.name, j.schedule))
        .collect()
    };
    let mut out = std::io::stdout().lock();
    for (name, s) in &jobs {
        if !name.is_empty() {
            let _ = writeln!(out, "{name} ({}):", s.text());
        }
        for z in s.upcoming(from, from, n.count) {
            let _ = writeln!(out, "{}", initbox_cron::show(&z));
        }
    }
    Ok(Outcome::OK)
}
