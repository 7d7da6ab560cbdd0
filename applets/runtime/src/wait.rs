//! The wait engine every wait applet shares: probes checked in parallel, each with a per-attempt
//! timeout and exponential backoff, `--all`/`--any`, `--invert`, `--once`, progress lines while
//! waiting, one summary line at the end, exit 124 at the deadline, exec of `-- CMD` on success.

use std::ffi::OsString;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{Instrument, info, warn};

use crate::deadline::Deadline;
use crate::duration::{self, human};
use crate::exec::Command;
use crate::exit::{Failure, Outcome};
use crate::retry::RetryPolicy;

/// Why a probe did not find its target ready.
#[derive(Debug)]
pub enum NotReady {
    /// Not ready yet: worth another attempt. The text says why (shown in progress lines).
    Retry(String),
    /// Another attempt cannot help (bad credentials, bad input): the whole wait fails.
    Fatal(Failure),
}

impl NotReady {
    pub fn retry(reason: impl Into<String>) -> Self {
        NotReady::Retry(reason.into())
    }
}

/// One attempt's future: `Ok(detail)` when ready, e.g. the address that answered.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<String, NotReady>> + Send + 'a>>;

/// Something that can be checked for readiness, once per attempt.
pub trait Probe: Send + Sync + 'static {
    /// The target as it may be shown (no secrets).
    fn target(&self) -> String;
    /// One attempt. The engine bounds it with the per-attempt timeout.
    fn probe(&self) -> ProbeFuture<'_>;
}

/// Timing and mode flags shared by every wait applet.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Waiting")]
pub struct WaitArgs {
    /// Give up after this long (exit 124); 0 waits forever.
    #[arg(short = 't', long, value_name = "DURATION", default_value = "60s",
          value_parser = duration::parse, env = crate::env::TIMEOUT)]
    pub timeout: Duration,

    /// Bound on one attempt (connect, query, request).
    #[arg(long, value_name = "DURATION", default_value = "2s",
          value_parser = duration::parse, env = crate::env::ATTEMPT_TIMEOUT)]
    pub attempt_timeout: Duration,

    /// First delay between attempts; it grows by --backoff-factor up to --max-interval.
    #[arg(long, value_name = "DURATION", default_value = "10ms",
          value_parser = duration::parse, env = crate::env::INTERVAL)]
    pub interval: Duration,

    /// Largest delay between attempts (the steady polling rate: 100ms is 10 attempts/s).
    #[arg(long, value_name = "DURATION", default_value = "100ms",
          value_parser = duration::parse, env = crate::env::MAX_INTERVAL)]
    pub max_interval: Duration,

    /// Growth of the delay after each failed attempt.
    #[arg(
        long,
        value_name = "FACTOR",
        default_value_t = 2.0,
        env = crate::env::BACKOFF_FACTOR
    )]
    pub backoff_factor: f32,

    /// Add up to 100% random jitter to each delay (for fleets polling one server).
    #[arg(long, env = crate::env::JITTER, value_parser = clap::builder::BoolishValueParser::new())]
    pub jitter: bool,

    /// Log a progress line per target this often while waiting.
    #[arg(long, value_name = "DURATION", default_value = "5s",
          value_parser = duration::parse, env = crate::env::PROGRESS_INTERVAL)]
    pub progress_interval: Duration,

    /// Succeed when every target is ready (the default).
    #[arg(long, conflicts_with = "any", env = crate::env::ALL, value_parser = clap::builder::BoolishValueParser::new())]
    pub all: bool,

    /// Succeed as soon as one target is ready.
    #[arg(long, env = crate::env::ANY, value_parser = clap::builder::BoolishValueParser::new())]
    pub any: bool,

    /// Wait until the targets are NOT ready (port closed, name gone).
    #[arg(long, env = crate::env::INVERT, value_parser = clap::builder::BoolishValueParser::new())]
    pub invert: bool,

    /// One attempt per target, no waiting: exit 0 if ready, 1 if not (for HEALTHCHECK).
    #[arg(long, env = crate::env::ONCE, value_parser = clap::builder::BoolishValueParser::new())]
    pub once: bool,
}

impl Default for WaitArgs {
    fn default() -> Self {
        WaitArgs {
            timeout: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(2),
            interval: Duration::from_millis(10),
            max_interval: Duration::from_millis(100),
            backoff_factor: 2.0,
            jitter: false,
            progress_interval: Duration::from_secs(5),
            all: false,
            any: false,
            invert: false,
            once: false,
        }
    }
}

impl WaitArgs {
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            min: self.interval,
            max: self.max_interval,
            factor: self.backoff_factor,
            jitter: self.jitter,
            max_attempts: None,
        }
    }

    pub fn deadline(&self) -> Deadline {
        Deadline::after((!self.timeout.is_zero()).then_some(self.timeout))
    }

    /// Check the flags make sense together.
    pub fn validate(&self) -> Result<(), Failure> {
        if self.attempt_timeout.is_zero() {
            return Err(Failure::usage("--attempt-timeout must be greater than 0"));
        }
        if !(self.backoff_factor >= 1.0 && self.backoff_factor <= 100.0) {
            return Err(Failure::usage(format!(
                "--backoff-factor {} is out of range (expected 1 to 100)",
                self.backoff_factor
            )));
        }
        if self.max_interval < self.interval {
            return Err(Failure::usage(
                "--max-interval must not be shorter than --interval",
            ));
        }
        if self.progress_interval.is_zero() {
            return Err(Failure::usage("--progress-interval must be greater than 0"));
        }
        Ok(())
    }
}

#[derive(Default)]
struct Progress {
    attempts: u64,
    last_error: Option<String>,
    ready: bool,
    /// An attempt is running (the deadline may cut it short: it still counts).
    in_flight: bool,
}

/// Wait for `probes` as `args` says; on success exec `command` if one was given.
pub async fn wait(
    probes: Vec<Arc<dyn Probe>>,
    args: &WaitArgs,
    command: Vec<OsString>,
) -> Result<Outcome, Failure> {
    args.validate()?;
    if probes.is_empty() {
        return Err(Failure::usage("no targets given"));
    }
    let outcome = if command.is_empty() {
        Outcome::OK
    } else {
        Outcome::Exec(Command::new(command))
    };
    if args.once {
        // A negative answer is the answer (exit 1), not an error: logged at INFO, so `-q`
        // prints nothing and a HEALTHCHECK's log holds no ERROR line for it.
        return Ok(match once(probes, args).await? {
            None => outcome,
            Some(answer) => {
                info!(code = crate::Code::FAILED.as_i32(), "{answer}");
                Outcome::Exit(crate::Code::FAILED)
            }
        });
    }
    wait_until_ready(probes, args).await.map(|()| outcome)
}

fn not_ready_text(invert: bool) -> &'static str {
    if invert {
        "still available"
    } else {
        "not ready"
    }
}

/// One attempt of one probe, bounded by the attempt timeout and the deadline. `Ok` = the
/// condition the user asked for holds (ready, or gone with `--invert`).
async fn attempt(
    probe: &dyn Probe,
    args: &WaitArgs,
    deadline: &Deadline,
) -> Result<String, NotReady> {
    let bound = deadline.cap(args.attempt_timeout);
    let result = match tokio::time::timeout(bound, probe.probe()).await {
        Ok(r) => r,
        Err(_) => Err(NotReady::Retry(format!(
            "no answer within {} (attempt timeout)",
            human(bound)
        ))),
    };
    match (result, args.invert) {
        (Ok(detail), false) => Ok(detail),
        (Err(e), false) => Err(e),
        (Ok(detail), true) => Err(NotReady::Retry(format!("still available ({detail})"))),
        (Err(NotReady::Retry(why)), true) => Ok(format!("gone: {why}")),
        (Err(fatal), true) => Err(fatal),
    }
}

/// One attempt per probe: `None` if the condition holds, else the negative answer.
async fn once(probes: Vec<Arc<dyn Probe>>, args: &WaitArgs) -> Result<Option<String>, Failure> {
    let deadline = args.deadline();
    let mut set = JoinSet::new();
    for probe in probes {
        let args = args.clone();
        // In the caller's span: `run` puts the step's name on every line of its applets.
        set.spawn(
            async move {
                let r = attempt(probe.as_ref(), &args, &deadline).await;
                (probe.target(), r)
            }
            .in_current_span(),
        );
    }
    let (mut ok, mut failures) = (Vec::new(), Vec::new());
    while let Some(joined) = set.join_next().await {
        let (target, r) = joined.map_err(|e| Failure::failed(format!("probe task failed: {e}")))?;
        match r {
            Ok(detail) => {
                info!(target = %target, detail = %detail, "ready");
                ok.push(target);
            }
            Err(NotReady::Fatal(f)) => return Err(f.context(&target)),
            Err(NotReady::Retry(why)) => failures.push(format!("{target}: {why}")),
        }
    }
    let enough = if args.any {
        !ok.is_empty()
    } else {
        failures.is_empty()
    };
    if enough {
        Ok(None)
    } else {
        failures.sort();
        Ok(Some(format!(
            "{} {}",
            not_ready_text(args.invert),
            failures.join("; ")
        )))
    }
}

async fn wait_until_ready(probes: Vec<Arc<dyn Probe>>, args: &WaitArgs) -> Result<(), Failure> {
    let deadline = args.deadline();
    let total = probes.len();
    let mut states = Vec::with_capacity(total);
    let mut set = JoinSet::new();
    for probe in probes {
        let state = Arc::new(Mutex::new(Progress::default()));
        states.push((probe.target(), Arc::clone(&state)));
        let args = args.clone();
        set.spawn(async move { poll_one(probe, &args, &deadline, &state).await }.in_current_span());
    }
    info!(
        targets = total,
        timeout = %if args.timeout.is_zero() { "none".to_string() } else { human(args.timeout) },
        mode = if args.any { "any" } else { "all" },
        "{} {}",
        if args.invert { "waiting until gone:" } else { "waiting for" },
        states.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>().join(", ")
    );

    let mut ready = 0usize;
    let needed = if args.any { 1 } else { total };
    let until = deadline.instant();
    while ready < needed {
        let joined = tokio::select! {
            j = set.join_next() => j,
            _ = sleep_until_opt(until) => {
                set.abort_all();
                return Err(timed_out(&states, args, &deadline));
            }
        };
        match joined {
            Some(Ok(Ok(()))) => ready += 1,
            Some(Ok(Err(f))) => {
                set.abort_all();
                return Err(f);
            }
            Some(Err(e)) => return Err(Failure::failed(format!("probe task failed: {e}"))),
            None => break,
        }
    }
    set.abort_all();
    info!(
        elapsed = %human(deadline.elapsed()),
        "{ready} of {total} target{} {} in {}",
        if total == 1 { "" } else { "s" },
        if args.invert { "gone" } else { "ready" },
        human(deadline.elapsed()),
    );
    Ok(())
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn poll_one(
    probe: Arc<dyn Probe>,
    args: &WaitArgs,
    deadline: &Deadline,
    state: &Mutex<Progress>,
) -> Result<(), Failure> {
    let target = probe.target();
    let mut delays = args.policy().delays();
    let mut next_progress = deadline.started() + args.progress_interval;
    loop {
        state.lock().unwrap_or_else(|e| e.into_inner()).in_flight = true;
        let result = attempt(probe.as_ref(), args, deadline).await;
        let attempts = {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            s.attempts += 1;
            s.in_flight = false;
            s.attempts
        };
        match result {
            Ok(detail) => {
                state.lock().unwrap_or_else(|e| e.into_inner()).ready = true;
                info!(
                    target = %target,
                    elapsed = %human(deadline.elapsed()),
                    attempts,
                    detail = %detail,
                    "{}", if args.invert { "gone" } else { "ready" }
                );
                return Ok(());
            }
            Err(NotReady::Fatal(f)) => return Err(f.context(&target)),
            Err(NotReady::Retry(why)) => {
                let now = Instant::now();
                if now >= next_progress {
                    info!(
                        target = %target,
                        elapsed = %human(deadline.elapsed()),
                        attempts,
                        last_error = %why,
                        "{}", if args.invert { "still available" } else { "still waiting" }
                    );
                    while next_progress <= now {
                        next_progress += args.progress_interval;
                    }
                } else {
                    tracing::debug!(target = %target, attempts, error = %why, "not yet");
                }
                state.lock().unwrap_or_else(|e| e.into_inner()).last_error = Some(why);
            }
        }
        let delay = delays.next().unwrap_or(args.max_interval);
        tokio::time::sleep(deadline.cap(delay)).await;
    }
}

fn timed_out(states: &[(String, Arc<Mutex<Progress>>)], args: &WaitArgs, d: &Deadline) -> Failure {
    let pending: Vec<String> = states
        .iter()
        .filter_map(|(target, s)| {
            let s = s.lock().unwrap_or_else(|e| e.into_inner());
            // The attempt the deadline cut short counts, and so does its missing answer.
            let attempts = s.attempts + u64::from(s.in_flight);
            let last_error = match (&s.last_error, s.in_flight) {
                (None, true) => "no answer before the deadline".to_string(),
                (Some(e), true) => {
                    format!("{e}; the last attempt had no answer before the deadline")
                }
                (Some(e), false) => e.clone(),
                (None, false) => "none yet".to_string(),
            };
            (!s.ready).then(|| {
                format!(
                    "{target} {} after {attempts} attempt{} (last error: {last_error})",
                    not_ready_text(args.invert),
                    if attempts == 1 { "" } else { "s" },
                )
            })
        })
        .collect();
    for p in &pending {
        warn!("{p}");
    }
    Failure::deadline(format!(
        "timed out after {}: {}",
        human(d.limit().unwrap_or_default()),
        pending.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Ready from the `n`-th attempt on.
    struct ReadyAfter(u64, AtomicU64);
    impl Probe for ReadyAfter {
        fn target(&self) -> String {
            format!("after-{}", self.0)
        }
        fn probe(&self) -> ProbeFuture<'_> {
            Box::pin(async move {
                let n = self.1.fetch_add(1, Ordering::SeqCst) + 1;
                if n >= self.0 {
                    Ok(format!("attempt {n}"))
                } else {
                    Err(NotReady::retry("refused"))
                }
            })
        }
    }

    fn probe(n: u64) -> Arc<dyn Probe> {
        Arc::new(ReadyAfter(n, AtomicU64::new(0)))
    }

    #[tokio::test(start_paused = true)]
    async fn all_waits_for_every_target() {
        let a = probe(3);
        let b = probe(5);
        let out = wait(vec![a, b], &WaitArgs::default(), vec![]).await;
        assert!(matches!(out, Ok(Outcome::Exit(c)) if c == crate::Code::OK));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_gives_124_and_names_the_target() {
        let args = WaitArgs {
            timeout: Duration::from_secs(1),
            ..Default::default()
        };
        let err = wait(vec![probe(u64::MAX)], &args, vec![])
            .await
            .unwrap_err();
        assert_eq!(err.code, crate::Code::DEADLINE);
        assert!(
            err.message.contains("after-18446744073709551615"),
            "{}",
            err.message
        );
        assert!(err.message.contains("refused"), "{}", err.message);
    }

    #[tokio::test(start_paused = true)]
    async fn any_is_satisfied_by_one() {
        let args = WaitArgs {
            any: true,
            timeout: Duration::from_secs(1),
            ..Default::default()
        };
        assert!(
            wait(vec![probe(u64::MAX), probe(2)], &args, vec![])
                .await
                .is_ok()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn invert_waits_for_not_ready() {
        let args = WaitArgs {
            invert: true,
            timeout: Duration::from_secs(1),
            ..Default::default()
        };
        // Always ready, so never gone.
        let err = wait(vec![probe(1)], &args, vec![]).await.unwrap_err();
        assert_eq!(err.code, crate::Code::DEADLINE);
        assert!(wait(vec![probe(u64::MAX)], &args, vec![]).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn once_does_not_wait() {
        let args = WaitArgs {
            once: true,
            ..Default::default()
        };
        let answer = wait(vec![probe(2)], &args, vec![]).await;
        assert!(matches!(answer, Ok(Outcome::Exit(c)) if c == crate::Code::FAILED));
        let ready = wait(vec![probe(1)], &args, vec![]).await;
        assert!(matches!(ready, Ok(Outcome::Exit(c)) if c == crate::Code::OK));
    }

    #[tokio::test(start_paused = true)]
    async fn a_command_is_returned_for_exec_only_on_success() {
        let out = wait(vec![probe(1)], &WaitArgs::default(), vec!["true".into()]).await;
        assert!(matches!(out, Ok(Outcome::Exec(c)) if c.argv == vec![OsString::from("true")]));
    }

    struct Denied;
    impl Probe for Denied {
        fn target(&self) -> String {
            "db:5432".into()
        }
        fn probe(&self) -> ProbeFuture<'_> {
            Box::pin(async { Err(NotReady::Fatal(Failure::credentials("password rejected"))) })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_name_their_target_waiting_or_once() {
        for once in [false, true] {
            let args = WaitArgs {
                once,
                ..Default::default()
            };
            let err = wait(vec![Arc::new(Denied)], &args, vec![])
                .await
                .unwrap_err();
            assert_eq!(err.code, crate::Code::CREDENTIALS);
            assert_eq!(err.message, "db:5432: password rejected");
        }
    }

    #[test]
    fn bad_flag_combinations_are_usage_errors() {
        let args = WaitArgs {
            interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(1),
            ..Default::default()
        };
        assert_eq!(args.validate().unwrap_err().code, crate::Code::USAGE);
    }
}
