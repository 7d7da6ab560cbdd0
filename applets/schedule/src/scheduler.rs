//! The scheduler loop: wait for the next due job, start its run (by its concurrency policy),
//! record results (state file, heartbeat, health), reap orphans, and stop in order on a signal.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use initbox_cron::{Timestamp, Zoned};
use initbox_runtime::atomic::{self, WriteOptions};
use initbox_runtime::child::{self, Output, Stream, orphans};
use initbox_runtime::duration::human;
use initbox_runtime::retry::RetryPolicy;
use initbox_runtime::{Code, Failure, Outcome, inprocess, memory, signals};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::Args;
use crate::jobs::{Action, CatchUp, Concurrency, Job, Options};

/// Longest the loop sleeps without looking at the clock again (a wall-clock jump, a suspend).
const MAX_SLEEP: Duration = Duration::from_secs(60);

pub fn default_options() -> Options {
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

/// The scheduler's clock: the real time, shifted so that it started at `--clock-start`.
#[derive(Debug, Clone, Copy)]
struct Clock {
    offset_ns: i128,
}

impl Clock {
    fn new(start: Option<Timestamp>) -> Clock {
        let offset_ns = start
            .map(|s| s.as_nanosecond() - Timestamp::now().as_nanosecond())
            .unwrap_or(0);
        Clock { offset_ns }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_nanosecond(Timestamp::now().as_nanosecond() + self.offset_ns)
            .unwrap_or(Timestamp::MAX)
    }

    /// Real time from now until `t` on this clock (zero if past).
    fn until(&self, t: Timestamp) -> Duration {
        let ns = t.as_nanosecond() - self.now().as_nanosecond();
        Duration::from_nanos(u64::try_from(ns.max(0)).unwrap_or(u64::MAX))
    }
}

/// Why a running job is stopped before it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// A new run replaced it (`--concurrency-policy replace`).
    Replaced,
    /// The sidecar is stopping (signal, or --exit-on-failures).
    Shutdown,
}

/// The last runs of each job, kept in the state file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct JobRecord {
    /// The scheduled time of the last run started (RFC 3339).
    last_scheduled: Option<String>,
    last_start: Option<String>,
    last_end: Option<String>,
    last_code: Option<i32>,
    last_success: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    jobs: BTreeMap<String, JobRecord>,
}

fn load_state(path: &Path) -> State {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
            warn!(path = %path.display(), "state file unreadable, starting afresh: {e}");
            State::default()
        }),
        Err(_) => State::default(),
    }
}

fn save_state(path: &Path, state: &State) {
    let text = serde_json::to_vec_pretty(state).unwrap_or_default();
    let opts = WriteOptions {
        mode: 0o600,
        ..WriteOptions::default()
    };
    if let Err(f) = atomic::write(path, &text, &opts) {
        warn!("state file not written: {f}");
    }
}

/// One job and what the loop knows of it.
struct Slot {
    job: Arc<Job>,
    next: Option<Zoned>,
    /// Running runs: their number and the sender that stops them.
    running: Vec<(u64, watch::Sender<Option<Stop>>)>,
    runs: u64,
    failures: u32,
    last_success: Timestamp,
}

/// A run's end, as the run task reports it.
struct RunEnd {
    slot: usize,
    run: u64,
    code: Option<Code>,
    stopped: Option<Stop>,
}

/// The health the heartbeat file and /healthz report.
#[derive(Debug, Clone, Serialize)]
struct Health {
    healthy: bool,
    reason: String,
    time: String,
    jobs: Vec<JobHealth>,
}

#[derive(Debug, Clone, Serialize)]
struct JobHealth {
    name: String,
    schedule: String,
    next: Option<String>,
    consecutive_failures: u32,
    last_success: String,
    running: usize,
}

pub async fn run(args: Args) -> Result<Outcome, Failure> {
    let opts = Options {
        timeout: (!args.timeout.is_zero()).then_some(args.timeout),
        concurrency: args.concurrency,
        jitter: args.jitter,
        run_on_start: args.run_on_start,
        retries: args.retries,
        retry_delay: args.retry_delay,
        catch_up: args.catch_up,
        max_late: args.max_late,
        stop_grace: args.stop_grace,
    };
    let jobs = crate::load_jobs(
        &args.when,
        args.file.as_ref(),
        args.crontab.as_ref(),
        &args.command,
        args.name.as_deref(),
        &opts,
    )?;
    if jobs.iter().any(|j| j.opts.catch_up == CatchUp::Last) && args.state_file.is_none() {
        return Err(Failure::usage(
            "--catch-up last needs --state-file PATH (where the last runs are kept)",
        ));
    }
    let clock = Clock::new(
        args.clock_start
            .as_deref()
            .map(|s| initbox_cron::parse_instant(s).map_err(|e| Failure::usage(e.0)))
            .transpose()?,
    );
    // Signals are ours: stop scheduling, forward SIGTERM, wait for the jobs, then exit.
    let mut shutdown = signals::Shutdown::install();
    let max_grace = jobs
        .iter()
        .map(|j| j.opts.stop_grace)
        .max()
        .unwrap_or_default();
    signals::set_stop_grace(max_grace + Duration::from_secs(3));
    let pid1 = std::process::id() == 1;
    let subreaper = pid1 || orphans::become_subreaper();
    let mut sigchld = signal(SignalKind::child()).ok();

    let state_path = args.state_file.clone();
    let mut state = state_path.as_deref().map(load_state).unwrap_or_default();
    let start = clock.now();
    let mut slots: Vec<Slot> = jobs
        .into_iter()
        .map(|job| Slot {
            next: job.schedule.next_after(start, start),
            job: Arc::new(job),
            running: Vec::new(),
            runs: 0,
            failures: 0,
            last_success: start,
        })
        .collect();
    for s in &slots {
        info!(
            job = %s.job.name,
            schedule = %s.job.schedule.text(),
            tz = %initbox_cron::zone_name(s.job.schedule.tz()),
            next = %s.next.as_ref().map(initbox_cron::show).unwrap_or_else(|| "never".into()),
            command = %s.job.shown,
            "job scheduled"
        );
    }

    let mut set: JoinSet<RunEnd> = JoinSet::new();
    // Runs due at start: catch-up of a missed run, then run-on-start.
    for (i, slot) in slots.iter_mut().enumerate() {
        let job = slot.job.clone();
        let mut due: Option<(Zoned, &str)> = None;
        if job.opts.catch_up == CatchUp::Last {
            due = missed_run(&job, &state, start).map(|z| (z, "catch-up"));
        }
        if due.is_none() && job.opts.run_on_start {
            due = Some((start.to_zoned(job.schedule.tz().clone()), "run-on-start"));
        }
        if let Some((at, why)) = due {
            fire(slot, i, at, why, &clock, &mut set, &mut state);
        }
    }
    if let Some(p) = &state_path {
        save_state(p, &state);
    }

    let (health_tx, health_rx) = watch::channel(health(&slots, &clock, &args));
    if let Some(addr) = args.healthz {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Failure::env_refused(format!("--healthz {addr}: cannot listen: {e}")))?;
        info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "serving /healthz");
        tokio::spawn(serve_health(listener, health_rx));
    }
    let mut heartbeat_at = tokio::time::Instant::now();
    let mut reap_at: Option<tokio::time::Instant> = None;
    let mut exit: Option<Failure> = None;
    let mut released = false;
    let mut released_once = false;

    loop {
        // Start what is due.
        let now = clock.now();
        for (i, slot) in slots.iter_mut().enumerate() {
            let Some(due) = slot.next.clone() else {
                continue;
            };
            if due.timestamp() > now {
                continue;
            }
            fire(
                slot,
                i,
                due.clone(),
                "schedule",
                &clock,
                &mut set,
                &mut state,
            );
            // The next time after this one (after now, if the clock jumped past several).
            let after = if now.as_nanosecond() - due.timestamp().as_nanosecond() > 1_000_000_000 {
                now
            } else {
                due.timestamp()
            };
            slot.next = slot.job.schedule.next_after(after, start);
            if let Some(p) = &state_path {
                save_state(p, &state);
            }
        }
        let h = health(&slots, &clock, &args);
        health_tx.send_replace(h.clone());
        if tokio::time::Instant::now() >= heartbeat_at {
            write_heartbeat(args.heartbeat_file.as_deref(), &h);
            heartbeat_at = tokio::time::Instant::now() + args.heartbeat_interval;
        }
        let wake = slots
            .iter()
            .filter_map(|s| s.next.as_ref())
            .map(|z| clock.until(z.timestamp()))
            .min()
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        // Nothing running, and the start-up just over or a long sleep ahead: give back what
        // the start-up (or the last runs) touched and waiting does not need (see
        // initbox_runtime::memory). Once after start in any case: the start-up's pages (every
        // applet's parser) are of no use to a sidecar.
        if !released && (!released_once || wake >= MAX_SLEEP) && running(&slots) == 0 {
            released_once = true;
            let r = memory::release();
            released = true;
            debug!(
                rss_before_kib = r.rss_before_kib,
                rss_after_kib = r.rss_after_kib,
                "idle: memory given back"
            );
        }
        let mut wake_at = tokio::time::Instant::now() + wake;
        if args.heartbeat_file.is_some() {
            wake_at = wake_at.min(heartbeat_at);
        }
        if let Some(r) = reap_at {
            wake_at = wake_at.min(r);
        }
        tokio::select! {
            biased;
            signo = shutdown.received() => {
                warn!(signal = signals::name(signo), running = running(&slots), "stopping: no more runs; running jobs get the signal");
                exit = Some(Failure::new(Code::signal(signo), format!("stopped by {}", signals::name(signo))));
                break;
            }
            Some(joined) = set.join_next() => {
                released = false;
                let Ok(end) = joined else { continue };
                if let Some(f) = record(&mut slots, end, &clock, &mut state, &args) {
                    exit = Some(f);
                }
                if let Some(p) = &state_path {
                    save_state(p, &state);
                }
                let h = health(&slots, &clock, &args);
                write_heartbeat(args.heartbeat_file.as_deref(), &h);
                if exit.is_some() {
                    break;
                }
            }
            Some(()) = async { match sigchld.as_mut() { Some(s) => s.recv().await, None => None } }, if subreaper => {
                // Let the owners of our own children reap them first; then reap orphans.
                reap_at.get_or_insert(tokio::time::Instant::now() + Duration::from_millis(200));
            }
            () = tokio::time::sleep_until(wake_at) => {
                if reap_at.is_some_and(|r| r <= tokio::time::Instant::now()) {
                    reap_at = None;
                    reap_orphans();
                }
            }
        }
    }

    // Stop: every running job gets SIGTERM (its process group), --stop-grace, then SIGKILL.
    for s in &slots {
        for (_, stop) in &s.running {
            stop.send_replace(Some(Stop::Shutdown));
        }
    }
    while let Some(joined) = set.join_next().await {
        if let Ok(end) = joined {
            record(&mut slots, end, &clock, &mut state, &args);
        }
    }
    if let Some(p) = &state_path {
        save_state(p, &state);
    }
    let _ = tokio::task::spawn_blocking(move || {
        child::wait_for_stopping();
        if subreaper {
            orphans::sweep(None, max_grace);
        }
    })
    .await;
    let runs: u64 = slots.iter().map(|s| s.runs).sum();
    match exit {
        Some(f) => {
            info!(runs, "scheduler stopped");
            Err(f)
        }
        None => Ok(Outcome::OK),
    }
}

fn running(slots: &[Slot]) -> usize {
    slots.iter().map(|s| s.running.len()).sum()
}

/// The last scheduled run missed while the sidecar was down, if it is within max-late.
fn missed_run(job: &Job, state: &State, now: Timestamp) -> Option<Zoned> {
    let rec = state.jobs.get(&job.name)?;
    let last: Timestamp = rec.last_scheduled.as_deref()?.parse().ok()?;
    let missed = match job.schedule.period() {
        Some(p) => {
            let t = last.as_nanosecond() + i128::try_from(p.as_nanos()).ok()?;
            let t = Timestamp::from_nanosecond(t).ok()?;
            (t <= now).then(|| t.to_zoned(job.schedule.tz().clone()))?
        }
        None => job.schedule.last_at_or_before(now)?,
    };
    if missed.timestamp() <= last {
        return None;
    }
    let late = Duration::from_nanos(
        u64::try_from(now.as_nanosecond() - missed.timestamp().as_nanosecond()).unwrap_or(0),
    );
    if late > job.opts.max_late {
        warn!(job = %job.name, missed = %initbox_cron::show(&missed), late = %human(late),
              max_late = %human(job.opts.max_late), "missed run is older than max-late: not caught up");
        return None;
    }
    info!(job = %job.name, missed = %initbox_cron::show(&missed), late = %human(late), "catching up a run missed while the sidecar was down");
    Some(missed)
}

/// Start a run of slot `i` due at `at`, by the job's concurrency policy.
#[allow(clippy::too_many_arguments)]
fn fire(
    slot: &mut Slot,
    i: usize,
    at: Zoned,
    why: &str,
    clock: &Clock,
    set: &mut JoinSet<RunEnd>,
    state: &mut State,
) {
    let job = slot.job.clone();
    if !slot.running.is_empty() {
        match job.opts.concurrency {
            Concurrency::Forbid => {
                warn!(job = %job.name, due = %initbox_cron::show(&at), running_run = slot.running[0].0,
                      "run skipped: the previous run still runs (concurrency forbid)");
                return;
            }
            Concurrency::Replace => {
                for (run, stop) in &slot.running {
                    warn!(job = %job.name, run = *run, "stopping the previous run: a new one is due (concurrency replace)");
                    stop.send_replace(Some(Stop::Replaced));
                }
            }
            Concurrency::Allow => {}
        }
    }
    slot.runs += 1;
    let run = slot.runs;
    let (stop_tx, stop_rx) = watch::channel(None);
    slot.running.push((run, stop_tx));
    let rec = state.jobs.entry(job.name.clone()).or_default();
    rec.last_scheduled = Some(at.timestamp().to_string());
    rec.last_start = Some(clock.now().to_string());
    let jitter = if job.opts.jitter.is_zero() {
        Duration::ZERO
    } else {
        rand::rng().random_range(Duration::ZERO..=job.opts.jitter)
    };
    let due = initbox_cron::show(&at);
    let why = why.to_string();
    set.spawn(async move {
        let (code, stopped) = run_job(&job, run, &due, &why, jitter, stop_rx).await;
        RunEnd {
            slot: i,
            run,
            code,
            stopped,
        }
    });
}

/// Record a run's end; `Some` when --exit-on-failures says to stop.
fn record(
    slots: &mut [Slot],
    end: RunEnd,
    clock: &Clock,
    state: &mut State,
    args: &Args,
) -> Option<Failure> {
    let slot = &mut slots[end.slot];
    slot.running.retain(|(r, _)| *r != end.run);
    let rec = state.jobs.entry(slot.job.name.clone()).or_default();
    rec.last_end = Some(clock.now().to_string());
    rec.last_code = end.code.map(|c| c.as_i32());
    match (end.code, end.stopped) {
        (_, Some(_)) => None,
        (Some(Code::OK), None) => {
            slot.failures = 0;
            slot.last_success = clock.now();
            rec.last_success = Some(slot.last_success.to_string());
            None
        }
        (_, None) => {
            slot.failures += 1;
            if args.exit_on_failures > 0 && slot.failures >= args.exit_on_failures {
                let msg = format!(
                    "job '{}' failed {} time{} in a row (--exit-on-failures {})",
                    slot.job.name,
                    slot.failures,
                    if slot.failures == 1 { "" } else { "s" },
                    args.exit_on_failures
                );
                error!("{msg}");
                return Some(Failure::failed(msg));
            }
            None
        }
    }
}

fn health(slots: &[Slot], clock: &Clock, args: &Args) -> Health {
    let now = clock.now();
    let mut reasons = Vec::new();
    let jobs = slots
        .iter()
        .map(|s| {
            if args.unhealthy_after > 0 && s.failures >= args.unhealthy_after {
                reasons.push(format!(
                    "job '{}' failed {} time(s) in a row",
                    s.job.name, s.failures
                ));
            }
            if let Some(max) = (!args.max_success_age.is_zero()).then_some(args.max_success_age) {
                let age = now.as_nanosecond() - s.last_success.as_nanosecond();
                if age > i128::try_from(max.as_nanos()).unwrap_or(i128::MAX) {
                    reasons.push(format!(
                        "job '{}' has not succeeded for more than {}",
                        s.job.name,
                        human(max)
                    ));
                }
            }
            JobHealth {
                name: s.job.name.clone(),
                schedule: s.job.schedule.text().to_string(),
                next: s.next.as_ref().map(|z| z.timestamp().to_string()),
                consecutive_failures: s.failures,
                last_success: s.last_success.to_string(),
                running: s.running.len(),
            }
        })
        .collect();
    Health {
        healthy: reasons.is_empty(),
        reason: reasons.join("; "),
        time: now.to_string(),
        jobs,
    }
}

/// Rewrite the heartbeat file while healthy (it goes stale when not).
fn write_heartbeat(path: Option<&Path>, h: &Health) {
    let Some(path) = path else { return };
    if !h.healthy {
        return;
    }
    let text = serde_json::to_vec(h).unwrap_or_default();
    if let Err(f) = atomic::write(path, &text, &WriteOptions::default()) {
        warn!("heartbeat file not written: {f}");
    }
}

/// A tiny HTTP server: `GET /healthz` (also `/livez`, `/readyz`, `/`) answers 200 while healthy,
/// 503 when not; the body is the status JSON (with the reason) either way. Anything else: 404.
async fn serve_health(listener: tokio::net::TcpListener, health: watch::Receiver<Health>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let health = health.clone();
        tokio::spawn(async move {
            // Read the request head (to its blank line, at most 4 KiB, within 2 s): closing
            // with request bytes unread would reset the connection under the client.
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            let head = async {
                while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                }
            };
            if tokio::time::timeout(Duration::from_secs(2), head)
                .await
                .is_err()
            {
                return;
            }
            let req = String::from_utf8_lossy(&buf[..n]);
            let path = req.split_whitespace().nth(1).unwrap_or("/");
            let path = path.split('?').next().unwrap_or(path);
            let (status, body) = if matches!(path, "/healthz" | "/livez" | "/readyz" | "/") {
                let h = health.borrow().clone();
                let body = serde_json::to_string(&h).unwrap_or_default() + "\n";
                if h.healthy {
                    ("200 OK", body)
                } else {
                    ("503 Service Unavailable", body)
                }
            } else {
                ("404 Not Found", "not found\n".to_string())
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

/// Reap zombies re-parented to initbox (as PID 1 or subreaper) that no run waits for.
fn reap_orphans() {
    for pid in orphans::find(&[], None) {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            == Some("Z");
        // Our own children (runs, applets' commands) were reaped by their owners at SIGCHLD,
        // before this pass: a zombie left is an orphan nobody waits for.
        if zombie {
            let mut st = 0;
            // SAFETY: waitpid(2) with WNOHANG on one pid that is our child.
            if unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) } == pid {
                info!(pid, "reaped an orphaned process");
            }
        }
    }
}

/// One run of a job, with its retries: its start and end logged as one line each.
async fn run_job(
    job: &Job,
    run: u64,
    due: &str,
    why: &str,
    jitter: Duration,
    mut stop: watch::Receiver<Option<Stop>>,
) -> (Option<Code>, Option<Stop>) {
    if !jitter.is_zero() {
        let delay_ms = u64::try_from(jitter.as_millis()).unwrap_or(u64::MAX);
        info!(job = %job.name, run, due, delay_ms, "run delayed at random (--random-delay)");
        tokio::select! {
            () = tokio::time::sleep(jitter) => {}
            s = stopped(&mut stop) => return (None, Some(s)),
        }
    }
    let policy = RetryPolicy {
        min: job.opts.retry_delay,
        max: job.opts.retry_delay * 32,
        factor: 2.0,
        jitter: false,
        max_attempts: Some(job.opts.retries as usize + 1),
    };
    let mut delays = policy.delays();
    let mut attempt = 1;
    loop {
        info!(job = %job.name, run, attempt, due, trigger = why, command = %job.shown, "job started");
        let started = tokio::time::Instant::now();
        let result = attempt_once(job, run, &mut stop).await;
        let took = human(started.elapsed());
        let code = match result {
            Ok(()) => {
                info!(job = %job.name, run, attempt, code = 0, duration = %took, "job succeeded");
                return (Some(Code::OK), None);
            }
            Err(End::Stopped(s, code)) => {
                warn!(job = %job.name, run, attempt, code = code.as_i32(), duration = %took,
                      "job stopped ({})", match s { Stop::Replaced => "replaced by a new run", Stop::Shutdown => "the sidecar is stopping" });
                return (Some(code), Some(s));
            }
            Err(End::Failed(f)) => {
                error!(job = %job.name, run, attempt, code = f.code.as_i32(), duration = %took, "job failed: {}", f.message);
                f.code
            }
        };
        let Some(delay) = delays.next() else {
            return (Some(code), None);
        };
        info!(job = %job.name, run, next_attempt = attempt + 1, delay = %human(delay), "retrying");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            s = stopped(&mut stop) => return (Some(code), Some(s)),
        }
        attempt += 1;
    }
}

/// Resolves when the run is told to stop (never, if its sender is gone).
async fn stopped(stop: &mut watch::Receiver<Option<Stop>>) -> Stop {
    let got = stop
        .wait_for(Option::is_some)
        .await
        .map(|s| s.unwrap_or(Stop::Shutdown));
    match got {
        Ok(s) => s,
        Err(_) => std::future::pending().await,
    }
}

enum End {
    Failed(Failure),
    Stopped(Stop, Code),
}

/// One attempt: the applet in-process or the command as a child, bounded by the timeout.
async fn attempt_once(
    job: &Job,
    run: u64,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Result<(), End> {
    let timeout = job.opts.timeout;
    let limit = async move {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let timed_out = || {
        End::Failed(Failure::deadline(format!(
            "did not finish within its timeout of {}",
            human(timeout.unwrap_or_default())
        )))
    };
    match &job.action {
        Action::Applet { name, argv } => {
            let applet = inprocess::find(name)
                .ok_or_else(|| End::Failed(Failure::failed(format!("unknown applet '{name}'"))))?;
            let fut = (applet.parse)(argv.clone()).map_err(End::Failed)?;
            // Dropped when stopped: the runtime stops the applet's children (SIGTERM, grace).
            let outcome = tokio::select! {
                r = fut => r,
                () = limit => return Err(timed_out()),
                s = stopped(stop) => return Err(End::Stopped(s, Code::signal(libc::SIGTERM))),
            };
            match inprocess::settle(outcome) {
                Ok(None) => Ok(()),
                // The applet's follow-up command (`initbox X … -- CMD`) runs as a child.
                Ok(Some(cmd)) => run_command(job, run, &cmd.argv, &[], None, stop, timeout).await,
                Err(f) => Err(End::Failed(f)),
            }
        }
        Action::Command { argv, env } => {
            let stdin = job.stdin.as_deref();
            run_command(job, run, argv, env, stdin, stop, timeout).await
        }
    }
}

async fn run_command(
    job: &Job,
    run: u64,
    argv: &[std::ffi::OsString],
    env: &[(String, String)],
    stdin: Option<&str>,
    stop: &mut watch::Receiver<Option<Stop>>,
    timeout: Option<Duration>,
) -> Result<(), End> {
    let tag = format!("{}:{}:{run}", std::process::id(), job.name);
    let name = job.name.clone();
    let mut command = child::Command::new(argv.iter().cloned())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs([(orphans::TAG_VAR, tag.as_str())])
        .grace(job.opts.stop_grace)
        .stdout(Output::PassAndTail)
        .stderr(Output::PassAndTail)
        .lines(move |stream, line| {
            let stream = match stream {
                Stream::Stdout => "stdout",
                Stream::Stderr => "stderr",
            };
            info!(job = %name, run, stream, "{line}");
        });
    if let Some(text) = stdin {
        command = command.stdin_bytes(text.as_bytes());
    }
    let running = command.spawn().map_err(End::Failed)?;
    let mut why: Option<End> = None;
    let stopper = async {
        why = Some(tokio::select! {
            () = async { match timeout { Some(t) => tokio::time::sleep(t).await, None => std::future::pending().await } } => {
                End::Failed(Failure::deadline(format!("did not finish within its timeout of {}", human(timeout.unwrap_or_default()))))
            }
            s = stopped(stop) => End::Stopped(s, Code::OK),
        });
    };
    let finished = running.wait_or_stop_observed(stopper).await;
    let grace = job.opts.stop_grace;
    let tag2 = tag.clone();
    let _ = tokio::task::spawn_blocking(move || orphans::sweep(Some(&tag2), grace)).await;
    let (done, was_stopped) = finished.map_err(End::Failed)?;
    if was_stopped {
        // The child's own exit, observed after the signal (its trap's code, or 128+N).
        let how = child::describe(&done.status);
        return Err(match why {
            Some(End::Stopped(s, _)) => End::Stopped(s, done.code),
            Some(End::Failed(f)) => End::Failed(Failure::new(
                f.code,
                format!("{}; it {how} when stopped", f.message),
            )),
            None => End::Stopped(Stop::Shutdown, done.code),
        });
    }
    done.check().map_err(|f| {
        let tail = done.stderr.lines().last().unwrap_or_default().to_string();
        if tail.is_empty() {
            End::Failed(f)
        } else {
            End::Failed(Failure::new(f.code, format!("{}: {tail}", f.message)))
        }
    })
}
