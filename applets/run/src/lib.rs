//! `initbox run -f steps.yaml`: several steps in one init container (one image pull, one
//! process): applets run in this process one after another, `parallel:` groups at once, each
//! step with its own timeout and optional `continue-on-error`, and a summary table at the end.
//!
//! Applet steps are parsed up front through the runtime's in-process registry (the multi-call
//! front fills it), so a typo in step 5 is reported before step 1 runs. A follow-up command
//! (`-- CMD`) is only allowed in the last step or after `initbox run -f FILE --`.

#[cfg(test)]
mod fuzz_tests;
mod steps;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use initbox_runtime::child::orphans;
use initbox_runtime::duration::{self, human};
use initbox_runtime::exec::Command as ExecCommand;
use initbox_runtime::inprocess::{self, AppletFuture};
use initbox_runtime::logging::LogFormat;
use initbox_runtime::{Applet, Code, Failure, LogArgs, Outcome, child, redact, signals};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{Instrument, error, info, info_span, warn};

pub use steps::{Action, Item, Plan, Step};

#[derive(Debug, Parser)]
#[command(
    name = "run",
    version,
    about = "Run several steps from a steps file in one process: sequential, parallel groups, summary",
    long_about = "Run the steps of a YAML steps file in this one process: initbox applets \
                  (`applet:` + `args:`, parsed exactly as `initbox APPLET ARGS` would, with the \
                  same INITBOX_* environment), external commands (`command:`), `parallel:` groups, \
                  a per-step `timeout:`, `continue-on-error: true` where a step may fail, and \
                  `background: true` commands that run until the last step ends. Every step is \
                  checked before the first one runs. A summary table is printed to stderr at the \
                  end; the exit code is the first failed step's.\n\n\
                  One init container running `initbox run` starts faster than several init \
                  containers (one image pull check and one container start instead of N); use \
                  separate init containers when steps need different security contexts, images, \
                  volumes or credentials.",
    after_help = "Steps file:\n  workdir: .                      # relative to the file (optional)\n  \
                  steps:\n    - name: database\n      applet: wait-for-tcp\n      \
                  args: [db:5432]\n      timeout: 2m\n    - parallel:\n        \
                  - {applet: wait-for-tcp, args: [cache:6379]}\n        \
                  - {name: hello, applet: notify, args: [stdout://], continue-on-error: true}\n    \
                  - name: migrate\n      applet: run-migrations\n      \
                  args: [--database-url, \"sqlite://app.db\", --dir, migrations]\n\n\
                  Examples:\n  initbox run -f /etc/initbox/steps.yaml\n  \
                  initbox run -f steps.yaml --check\n  initbox run -f steps.yaml -- /app/server --port 8080"
)]
pub struct Args {
    /// The steps file (YAML); `-` reads it from standard input.
    #[arg(
        short = 'f',
        long,
        value_name = "FILE",
        env = initbox_runtime::env::RUN_FILE,
        required = true
    )]
    pub file: PathBuf,

    /// Give up after this long (exit 124); bounds the whole run; 0 means none (each step still
    /// has its own).
    #[arg(long, value_name = "DURATION", default_value = "0",
          value_parser = duration::parse, env = initbox_runtime::env::RUN_TIMEOUT)]
    pub timeout: Duration,

    /// Time between SIGTERM and SIGKILL when a command is stopped (SIGTERM/SIGINT of the run, a
    /// step's timeout, the end of the run for background commands): SIGTERM goes to the
    /// command's process group.
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = duration::parse, env = initbox_runtime::env::RUN_STOP_GRACE)]
    pub stop_grace: Duration,

    /// Check the steps file and every step's arguments, print the plan, run nothing.
    #[arg(long, env = initbox_runtime::env::RUN_CHECK, value_parser = clap::builder::BoolishValueParser::new())]
    pub check: bool,

    #[command(flatten)]
    pub log: LogArgs,

    /// Command to exec once every step succeeded (never after a failure).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }

    fn handles_signals() -> bool {
        true
    }

    async fn run(self) -> Result<Outcome, Failure> {
        let plan = load(&self.file)?;
        let prepared = prepare(&plan)?;
        if !self.command.is_empty() && ends_with_exec(&plan) {
            return Err(Failure::usage(
                "both the last step and 'initbox run --' give a follow-up command; keep one",
            ));
        }
        if self.check {
            print_plan(&plan);
            return Ok(Outcome::OK);
        }
        // Signals are watched here (not by the front), so the run ends in order: steps
        // stopped, background commands stopped, the summary printed.
        let mut shutdown = signals::Shutdown::install();
        signals::set_stop_grace(SUMMARY_GRACE);
        if let Some(dir) = &plan.workdir {
            std::env::set_current_dir(dir)
                .map_err(|e| Failure::invalid_input(format!("workdir {}: {e}", dir.display())))?;
        }
        // Orphans of the steps (daemons that left their process group) come back to initbox.
        let subreaper = orphans::become_subreaper();
        let started = Instant::now();
        let (stop_tx, stop_rx) = watch::channel(None);
        let mut runner = Runner {
            grace: self.stop_grace,
            json: self.log.log_format == LogFormat::Json,
            stop: stop_rx,
            results: Vec::new(),
            background: Background::default(),
            pending: Vec::new(),
            order: Vec::new(),
        };
        let deadline_at = (!self.timeout.is_zero()).then(|| started + self.timeout);
        // The running steps and the background commands get SIGTERM at once.
        let background = runner.background.clone();
        let result = {
            let mut work = std::pin::pin!(runner.run_all(prepared));
            loop {
                let stopping = stop_tx.borrow().is_some();
                tokio::select! {
                    r = &mut work => break r,
                    signo = shutdown.received(), if !stopping => {
                        stop_tx.send_replace(Some(Stop::Signal(signo)));
                        background.terminate();
                    }
                    () = tokio::time::sleep_until(deadline_at.unwrap_or(started)),
                        if deadline_at.is_some() && !stopping => {
                        stop_tx.send_replace(Some(Stop::Deadline(self.timeout)));
                        background.terminate();
                    }
                }
            }
        };
        let stop = *stop_tx.borrow();
        // A stop between two steps (or after the last one) still fails the run.
        let result = match (result, stop) {
            (Ok(_), Some(stop)) => Err(stop.failure()),
            (r, _) => r,
        };
        runner.stop_background().await;
        // Children of applets stopped on the way, then whatever escaped its process group.
        let grace = self.stop_grace;
        let _ = tokio::task::spawn_blocking(move || {
            child::wait_for_stopping();
            if subreaper {
                orphans::sweep(None, grace);
            }
        })
        .await;
        let skipped_why = match stop {
            Some(stop) => format!("not started: {}", stop.text()),
            None => "an earlier step failed".to_string(),
        };
        runner.mark_unfinished(&skipped_why);
        runner.sort_results();
        report(
            &runner.results,
            started.elapsed(),
            &self.log,
            result.as_ref().err(),
        );
        let outcome = result?;
        // The follow-up command must not inherit the subreaper role.
        orphans::stop_being_subreaper();
        match outcome {
            Some(exec) => Ok(Outcome::Exec(exec)),
            None if self.command.is_empty() => Ok(Outcome::OK),
            None => Ok(Outcome::Exec(ExecCommand::new(self.command))),
        }
    }
}

/// Time the signal watchdog leaves the run to stop its steps and print the summary after
/// SIGTERM/SIGINT (stopping a command extends it by that command's grace period).
const SUMMARY_GRACE: Duration = Duration::from_secs(2);

/// Why the whole run stops before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// `--timeout` passed.
    Deadline(Duration),
    /// SIGTERM or SIGINT.
    Signal(i32),
}

impl Stop {
    fn text(self) -> String {
        match self {
            Stop::Deadline(d) => format!("the run's --timeout of {} passed", human(d)),
            Stop::Signal(s) => format!("the run was stopped by {}", signals::name(s)),
        }
    }

    fn failure(self) -> Failure {
        match self {
            Stop::Deadline(d) => Failure::deadline(format!(
                "initbox run did not finish within its --timeout of {}",
                human(d)
            )),
            Stop::Signal(s) => {
                Failure::new(Code::signal(s), format!("stopped by {}", signals::name(s)))
            }
        }
    }
}

fn ends_with_exec(plan: &Plan) -> bool {
    match plan.items.last() {
        Some(Item::Step(Step {
            action: Action::Applet { argv, .. },
            ..
        })) => argv.iter().skip(1).any(|a| a == "--"),
        _ => false,
    }
}

/// Read and parse the steps file.
pub fn load(file: &Path) -> Result<Plan, Failure> {
    let (text, source, dir) = if file.as_os_str() == "-" {
        let text = initbox_runtime::input::read_stdin("steps from stdin")?;
        (text, "steps from stdin".to_string(), PathBuf::from("."))
    } else {
        let text =
            initbox_runtime::input::read_string(file, &format!("steps file {}", file.display()))?;
        let dir = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        (text, file.display().to_string(), dir)
    };
    let known: Vec<&str> = inprocess::all().iter().map(|a| a.name).collect();
    steps::parse(&text, &source, &dir, &known)
}

/// A step with its applet already parsed (its future not started).
struct Prepared {
    step: Step,
    group: Option<String>,
    work: Work,
}

enum Work {
    Applet(AppletFuture),
    Command,
}

enum PreparedItem {
    Step(Prepared),
    Parallel(String, Vec<Prepared>),
}

/// Parse every applet step's arguments before anything runs.
fn prepare(plan: &Plan) -> Result<Vec<PreparedItem>, Failure> {
    let one = |step: &Step, group: Option<&str>| -> Result<Prepared, Failure> {
        let work = match &step.action {
            Action::Applet { name, argv } => {
                let applet = inprocess::find(name).ok_or_else(|| {
                    Failure::invalid_input(format!("step '{}': unknown applet '{name}'", step.name))
                })?;
                Work::Applet(
                    (applet.parse)(argv.clone())
                        .map_err(|f| f.context(format!("step '{}'", step.name)))?,
                )
            }
            Action::Command { .. } => Work::Command,
        };
        Ok(Prepared {
            step: step.clone(),
            group: group.map(str::to_string),
            work,
        })
    };
    plan.items
        .iter()
        .map(|item| match item {
            Item::Step(s) => one(s, None).map(PreparedItem::Step),
            Item::Parallel { name, steps } => steps
                .iter()
                .map(|s| one(s, Some(name)))
                .collect::<Result<Vec<_>, _>>()
                .map(|v| PreparedItem::Parallel(name.clone(), v)),
        })
        .collect()
}

fn print_plan(plan: &Plan) {
    let mut out = std::io::stdout().lock();
    let mut n = 0;
    for item in &plan.items {
        match item {
            Item::Step(s) => {
                n += 1;
                let _ = writeln!(out, "{n}. {}", describe(s));
            }
            Item::Parallel { name, steps } => {
                n += 1;
                let _ = writeln!(out, "{n}. {name} (parallel):");
                for s in steps {
                    let _ = writeln!(out, "   - {}", describe(s));
                }
            }
        }
    }
    let _ = writeln!(out, "{} steps checked", plan.step_count());
}

fn describe(s: &Step) -> String {
    let mut d = format!("{}: {}", s.name, s.what());
    if let Some(t) = s.timeout {
        d.push_str(&format!(", timeout {}", human(t)));
    }
    if s.continue_on_error {
        d.push_str(", continue-on-error");
    }
    if s.is_background() {
        d.push_str(", background");
    }
    d
}

/// How a step ended.
#[derive(Debug, Clone)]
pub enum Status {
    Ok,
    Failed(Failure),
    /// Failed, but the step has `continue-on-error: true`.
    Ignored(Failure),
    /// Running when the whole run was stopped (`--timeout`, SIGTERM/SIGINT).
    Interrupted(Failure),
    /// Stopped because another step of its parallel group failed.
    Cancelled,
    /// Not started; why.
    Skipped(String),
    /// A background command: stopped at the end of the run, or ended on its own before
    /// (its exit status).
    Background(Option<ExitStatus>),
}

#[derive(Debug, Clone)]
pub struct StepResult {
    pub name: String,
    pub what: String,
    pub status: Status,
    pub elapsed: Duration,
}

struct Runner {
    results: Vec<StepResult>,
    /// Shared with the run's driver, which sends SIGTERM to them the moment the run stops.
    background: Background,
    /// Time between SIGTERM and SIGKILL when a command is stopped (a step's `stop-grace`
    /// overrides it).
    grace: Duration,
    /// JSON logs (the step span's field is `step` there: `name` is the span's own key).
    json: bool,
    /// Set when the whole run stops early.
    stop: watch::Receiver<Option<Stop>>,
    /// Steps not yet finished, in order, for the summary (skipped if the run stops early).
    pending: Vec<(String, String)>,
    /// Declaration order of the steps, so the summary follows the file.
    order: Vec<String>,
}

/// How a step's work ended.
enum StepEnd {
    Done(Result<Option<ExecCommand>, Failure>),
    /// The whole run stopped while it ran.
    Interrupted(Stop),
    /// Another step of its group failed.
    Cancelled,
}

/// What stops a running step early: the whole run stopping, or its group failing.
#[derive(Clone)]
struct Stops {
    run: watch::Receiver<Option<Stop>>,
    group: Option<watch::Receiver<bool>>,
}

impl Stops {
    async fn wait(mut self) -> StepEnd {
        let run = async {
            let stop = match self.run.wait_for(Option::is_some).await {
                Ok(stop) => *stop,
                Err(_) => None,
            };
            match stop {
                Some(s) => StepEnd::Interrupted(s),
                None => std::future::pending().await,
            }
        };
        let group = async {
            if let Some(g) = &mut self.group
                && g.wait_for(|c| *c).await.is_ok()
            {
                return StepEnd::Cancelled;
            }
            std::future::pending().await
        };
        tokio::select! {
            biased;
            end = run => end,
            end = group => end,
        }
    }
}

/// What a step needs besides itself.
#[derive(Clone)]
struct StepCtx {
    grace: Duration,
    json: bool,
    stops: Stops,
}

impl Runner {
    async fn run_all(&mut self, items: Vec<PreparedItem>) -> Result<Option<ExecCommand>, Failure> {
        for item in &items {
            match item {
                PreparedItem::Step(p) => self.pending.push((p.step.name.clone(), p.step.what())),
                PreparedItem::Parallel(_, ps) => self
                    .pending
                    .extend(ps.iter().map(|p| (p.step.name.clone(), p.step.what()))),
            }
        }
        self.order = self.pending.iter().map(|(n, _)| n.clone()).collect();
        let total = items.len();
        let mut final_exec = None;
        for (i, item) in items.into_iter().enumerate() {
            if self.stop.borrow().is_some() {
                break;
            }
            let last = i + 1 == total;
            match item {
                PreparedItem::Step(p) if p.step.is_background() => {
                    self.start_background(p.step)?;
                }
                PreparedItem::Step(p) => {
                    let step = p.step.clone();
                    let (end, elapsed) = run_step(p, self.ctx(None)).await;
                    let exec = self.record(&step, end, elapsed, last)?;
                    if exec.is_some() {
                        final_exec = exec;
                    }
                }
                PreparedItem::Parallel(name, members) => {
                    self.run_group(&name, members).await?;
                }
            }
        }
        Ok(final_exec)
    }

    fn ctx(&self, group: Option<watch::Receiver<bool>>) -> StepCtx {
        StepCtx {
            grace: self.grace,
            json: self.json,
            stops: Stops {
                run: self.stop.clone(),
                group,
            },
        }
    }

    /// Record a finished step; `Err` stops the run.
    fn record(
        &mut self,
        step: &Step,
        end: StepEnd,
        elapsed: Duration,
        may_exec: bool,
    ) -> Result<Option<ExecCommand>, Failure> {
        self.pending.retain(|(n, _)| n != &step.name);
        let result = match end {
            StepEnd::Done(Ok(Some(_))) if !may_exec => Err(Failure::usage(format!(
                "step '{}' asked to exec a command, which only the last step may do",
                step.name
            ))),
            StepEnd::Done(r) => r,
            StepEnd::Interrupted(stop) => {
                let f = stop.failure();
                warn!(step = %step.name, "step interrupted: {}", stop.text());
                self.push(step, Status::Interrupted(f.clone()), elapsed);
                return Err(f);
            }
            StepEnd::Cancelled => {
                self.push(step, Status::Cancelled, elapsed);
                return Ok(None);
            }
        };
        let (status, outcome) = match result {
            Ok(exec) => {
                info!(step = %step.name, elapsed = %human(elapsed), "step done");
                (Status::Ok, Ok(exec))
            }
            Err(f) if step.continue_on_error => {
                warn!(step = %step.name, code = f.code.as_i32(), "step failed, continuing (continue-on-error): {f}");
                (Status::Ignored(f), Ok(None))
            }
            Err(f) => {
                let f = f.context(format!("step '{}'", step.name));
                (Status::Failed(f.clone()), Err(f))
            }
        };
        self.push(step, status, elapsed);
        outcome
    }

    fn push(&mut self, step: &Step, status: Status, elapsed: Duration) {
        self.results.push(StepResult {
            name: step.name.clone(),
            what: step.what(),
            status,
            elapsed,
        });
    }

    async fn run_group(&mut self, name: &str, members: Vec<Prepared>) -> Result<(), Failure> {
        info!(group = %name, steps = members.len(), "starting parallel group");
        let steps: Vec<Step> = members.iter().map(|p| p.step.clone()).collect();
        let (cancel, cancelled) = watch::channel(false);
        let mut set = JoinSet::new();
        for (idx, p) in members.into_iter().enumerate() {
            let ctx = self.ctx(Some(cancelled.clone()));
            set.spawn(async move { (idx, run_step(p, ctx).await) });
        }
        let mut first_failure = None;
        // Every member ends by itself (a cancelled command is stopped and waited for).
        while let Some(joined) = set.join_next().await {
            let (idx, (end, elapsed)) = joined
                .map_err(|e| Failure::failed(format!("group '{name}': a step task failed: {e}")))?;
            if let Err(f) = self.record(&steps[idx], end, elapsed, false)
                && first_failure.is_none()
            {
                first_failure = Some(f);
                // Fail fast: the group cannot succeed any more.
                cancel.send_replace(true);
            }
        }
        match first_failure {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }

    fn start_background(&mut self, step: Step) -> Result<(), Failure> {
        let Action::Command { argv, env, .. } = &step.action else {
            return Ok(());
        };
        self.pending.retain(|(n, _)| n != &step.name);
        let grace = step.stop_grace.unwrap_or(self.grace);
        let child = match command(argv, env, grace, &tag(&step)).spawn() {
            Ok(child) => child,
            Err(f) => {
                let f = f.context(format!("step '{}'", step.name));
                self.push(&step, Status::Failed(f.clone()), Duration::ZERO);
                return Err(f);
            }
        };
        info!(step = %step.name, pid = child.id(), "background command started");
        self.push(&step, Status::Background(None), Duration::ZERO);
        self.background.add(step.name, child);
        Ok(())
    }

    /// SIGTERM every background command's process group at once, then wait for each group
    /// (SIGKILL what is left after the grace period). A command that already ended on its
    /// own keeps its exit status in the summary.
    async fn stop_background(&mut self) {
        self.background.terminate();
        for Bg {
            name,
            child,
            exited,
            ..
        } in self.background.take()
        {
            if let Some(status) = exited {
                warn!(step = %name, status = %child::describe(&status), "background command had already exited");
                if let Some(r) = self.results.iter_mut().find(|r| r.name == name) {
                    r.status = Status::Background(Some(status));
                }
            }
            child.stop().await;
            info!(step = %name, "background command stopped");
        }
    }

    fn sort_results(&mut self) {
        let order = &self.order;
        let rank = |n: &str| order.iter().position(|o| o == n).unwrap_or(usize::MAX);
        self.results.sort_by_key(|r| rank(&r.name));
    }

    fn mark_unfinished(&mut self, why: &str) {
        for (name, what) in std::mem::take(&mut self.pending) {
            self.results.push(StepResult {
                name,
                what,
                status: Status::Skipped(why.to_string()),
                elapsed: Duration::ZERO,
            });
        }
    }
}

/// The background commands.
#[derive(Clone, Default)]
struct Background(Arc<Mutex<Vec<Bg>>>);

struct Bg {
    name: String,
    child: child::Running,
    /// Its exit status if it ended on its own, before it was sent SIGTERM.
    exited: Option<ExitStatus>,
    termed: bool,
}

impl Background {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Bg>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, name: String, child: child::Running) {
        self.lock().push(Bg {
            name,
            child,
            exited: None,
            termed: false,
        });
    }

    /// SIGTERM to every group now (once), noting first which commands had ended on their own.
    /// Also when one exited: what it started in its group is stopped with it.
    fn terminate(&self) {
        for bg in self.lock().iter_mut().filter(|bg| !bg.termed) {
            bg.exited = bg.child.try_wait();
            bg.termed = true;
            bg.child.terminate();
        }
    }

    fn take(&self) -> Vec<Bg> {
        std::mem::take(&mut *self.lock())
    }
}

/// The tag a command step passes to everything it starts (see [`orphans`]).
fn tag(step: &Step) -> String {
    format!("{}:{}", std::process::id(), step.name)
}

/// Run one step (applet in-process or a command), bounded by its timeout and stopped when
/// the run stops or its group fails, inside a span that puts the step's name on every log
/// line it writes.
async fn run_step(p: Prepared, ctx: StepCtx) -> (StepEnd, Duration) {
    let Prepared { step, group, work } = p;
    let span = match (&group, ctx.json) {
        (Some(g), false) => info_span!("step", name = %step.name, group = %g),
        (None, false) => info_span!("step", name = %step.name),
        (Some(g), true) => info_span!("step", step = %step.name, group = %g),
        (None, true) => info_span!("step", step = %step.name),
    };
    let started = Instant::now();
    let body = async move {
        info!(what = %step.what(), "starting");
        let timeout = step.timeout;
        let timed_out = || {
            Failure::deadline(format!(
                "did not finish within its timeout of {}",
                human(timeout.unwrap_or_default())
            ))
        };
        let limit = async move {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        match (work, &step.action) {
            (Work::Applet(fut), _) => {
                let fut = inprocess::run_to_end(fut);
                // Dropped when stopped: its children are stopped by the runtime.
                tokio::select! {
                    r = fut => StepEnd::Done(r),
                    () = limit => StepEnd::Done(Err(timed_out())),
                    end = ctx.stops.wait() => end,
                }
            }
            (Work::Command, Action::Command { argv, env, .. }) => {
                let grace = step.stop_grace.unwrap_or(ctx.grace);
                let tag = tag(&step);
                let running = match command(argv, env, grace, &tag).spawn() {
                    Ok(r) => r,
                    Err(f) => return StepEnd::Done(Err(f)),
                };
                let mut cut = None;
                let stopper = async {
                    cut = Some(tokio::select! {
                        () = limit => StepEnd::Done(Err(timed_out())),
                        end = ctx.stops.wait() => end,
                    });
                };
                let finished = running.wait_or_stop(stopper).await;
                // Whatever it started outside its process group goes with it.
                let _ =
                    tokio::task::spawn_blocking(move || orphans::sweep(Some(&tag), grace)).await;
                match (finished, cut) {
                    (Err(f), _) => StepEnd::Done(Err(f)),
                    (Ok(Some(done)), _) => StepEnd::Done(done.check().map(|()| None)),
                    (Ok(None), Some(end)) => end,
                    (Ok(None), None) => StepEnd::Done(Err(timed_out())),
                }
            }
            (Work::Command, Action::Applet { .. }) => StepEnd::Done(Err(Failure::failed(
                "internal: applet step without parsed arguments",
            ))),
        }
    };
    let end = body.instrument(span).await;
    (end, started.elapsed())
}

/// A step's command: its own process group, stopped with `grace` between SIGTERM and SIGKILL,
/// tagged so that what it starts can be found after it left the group.
fn command(
    argv: &[OsString],
    env: &[(String, String)],
    grace: Duration,
    tag: &str,
) -> child::Command {
    child::Command::new(argv.iter().cloned())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs([(orphans::TAG_VAR, tag)])
        .grace(grace)
}

fn status_text(s: &Status) -> (&'static str, i32, String) {
    match s {
        Status::Ok => ("ok", 0, String::new()),
        Status::Failed(f) => ("FAILED", f.code.as_i32(), f.to_string()),
        Status::Ignored(f) => ("failed, ignored", f.code.as_i32(), f.to_string()),
        Status::Interrupted(f) => ("interrupted", f.code.as_i32(), f.to_string()),
        Status::Cancelled => ("cancelled", 0, "another step of its group failed".into()),
        Status::Skipped(why) => ("skipped", 0, why.clone()),
        Status::Background(None) => ("background", 0, "stopped at the end of the run".into()),
        Status::Background(Some(st)) => (
            "exited",
            child::code_of(st).as_i32(),
            format!(
                "{} on its own, before the end of the run",
                child::describe(st)
            ),
        ),
    }
}

/// The summary: a table on stderr (text logs) or one JSON log line per step; then one line,
/// at the level of the run's end (INFO ok, WARN stopped by a signal, ERROR failed).
fn report(results: &[StepResult], total: Duration, log: &LogArgs, failure: Option<&Failure>) {
    let count = |f: fn(&Status) -> bool| results.iter().filter(|r| f(&r.status)).count();
    let ok = count(|s| matches!(s, Status::Ok));
    let failed = count(|s| matches!(s, Status::Failed(_) | Status::Interrupted(_)));
    let ignored = count(|s| matches!(s, Status::Ignored(_)));
    let not_run = count(|s| matches!(s, Status::Skipped(_) | Status::Cancelled));
    let background = count(|s| matches!(s, Status::Background(_)));
    match log.log_format {
        LogFormat::Json => {
            for r in results {
                let (result, code, detail) = status_text(&r.status);
                info!(step = %r.name, what = %r.what, result, code, elapsed = %human(r.elapsed), detail = %detail, "step summary");
            }
        }
        LogFormat::Text if !log.quiet => {
            let _ = std::io::stderr().write_all(table(results).as_bytes());
        }
        LogFormat::Text => {}
    }
    let line = format!(
        "{} step{}: {ok} ok, {failed} failed, {ignored} failed but ignored, {not_run} not run, \
         {background} background, in {}",
        results.len(),
        if results.len() == 1 { "" } else { "s" },
        human(total)
    );
    match failure.map(|f| f.code.as_i32()) {
        None => info!("{line}"),
        Some(c) if c > 128 && c < 160 => warn!("{line}"),
        Some(_) => error!("{line}"),
    }
}

/// The summary table, scrubbed of registered secrets.
pub fn table(results: &[StepResult]) -> String {
    let mut rows = vec![[
        "STEP".to_string(),
        "WHAT".to_string(),
        "RESULT".to_string(),
        "CODE".to_string(),
        "TIME".to_string(),
        "DETAIL".to_string(),
    ]];
    for r in results {
        let (result, code, detail) = status_text(&r.status);
        let time = if matches!(
            r.status,
            Status::Skipped(_) | Status::Cancelled | Status::Background(_)
        ) {
            "-".to_string()
        } else {
            human(r.elapsed)
        };
        rows.push([
            r.name.clone(),
            r.what.clone(),
            result.to_string(),
            code.to_string(),
            time,
            detail,
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (c, w) in widths.iter().enumerate() {
            let cell = &row[c];
            let pad = w - cell.chars().count();
            if c == 3 {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        line.push_str(&row[5]);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    redact::scrub(&out).into_owned()
}
