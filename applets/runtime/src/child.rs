//! The one way initbox runs a child process (as opposed to [`crate::exec`], which replaces
//! initbox): `run` steps, `notify run`, `run-migrations --with-lock`, `wait-for --cmd`,
//! `render-config --check-cmd`.
//!
//! - the child starts in its own process group, so stopping it reaches everything it started
//!   (except a child given initbox's terminal as stdin: it stays in initbox's group, where it
//!   may read the terminal, and only it is signalled);
//! - its exit status maps to the toolkit's table: its own code, 128+N when signal N ended it,
//!   127 when the program is not found, 126 when it cannot be executed;
//! - captured output is kept as a bounded [`Tail`] (the last [`TAIL_BYTES`] bytes and
//!   [`TAIL_LINES`] lines), the pipe always drained, so a chatty command costs no memory;
//! - stopping (initbox stopped by a signal, the future dropped at a deadline, [`Running::stop`])
//!   sends SIGTERM to the whole group, waits up to the grace period for every process of the
//!   group to exit, then SIGKILLs the group.
//!
//! A child dropped while running is stopped on a thread of its own, so other work (other steps,
//! other children) is not held up; [`wait_for_stopping`] (called before initbox exits) waits for
//! those stops to finish, so no process of a group outlives initbox.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::exit::{Code, Failure};

pub mod orphans;

/// Default time between SIGTERM and SIGKILL when a child is stopped.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// Grace period for commands run as checks (`wait-for --cmd`, `render-config --check-cmd`):
/// a check that is stopped at its deadline must not hold the run up for long.
pub const PROBE_GRACE: Duration = Duration::from_secs(1);
/// Bytes of captured output kept (the end of the stream).
pub const TAIL_BYTES: usize = 4096;
/// Lines of captured output kept (the end of the stream).
pub const TAIL_LINES: usize = 20;
/// Added to the grace period when asking the signal watchdog to wait for a stop.
const STOP_MARGIN: Duration = Duration::from_secs(2);
/// After the child exited, how long to keep reading its pipes (a grandchild may hold them open).
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

/// What happens to one output stream of the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Shared with initbox (the child writes to initbox's stdout/stderr).
    Inherit,
    /// Discarded.
    Null,
    /// Captured: the last bytes are kept for the error message, the rest dropped.
    Tail,
    /// Passed through to initbox's stderr unchanged, and the tail kept as with `Tail`.
    PassAndTail,
}

/// Which output stream of a child a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Where the lines of a passed-through stream go instead of initbox's stderr (`schedule` logs
/// each line of a job's output with the job's name).
#[derive(Clone)]
pub struct LineSink(Arc<LineFn>);

/// What a [`LineSink`] calls with each line.
type LineFn = dyn Fn(Stream, &str) + Send + Sync;

impl std::fmt::Debug for LineSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LineSink")
    }
}

/// Longest line handed to a [`LineSink`] in one piece; a longer one is cut into pieces.
const MAX_LINE: usize = 16 * 1024;

/// A command to run as a child process.
#[derive(Debug, Clone)]
pub struct Command {
    argv: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    dir: Option<std::path::PathBuf>,
    clear_env: bool,
    stdin_inherit: bool,
    stdin_bytes: Option<Arc<[u8]>>,
    stdout: Output,
    stderr: Output,
    grace: Duration,
    tail_lines: usize,
    tail_bytes: usize,
    stop_blocks: bool,
    lines: Option<LineSink>,
}

impl Command {
    /// `argv[0]` is looked up in PATH. Defaults: stdin from /dev/null, stdout and stderr
    /// inherited, [`DEFAULT_GRACE`].
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Command {
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            dir: None,
            clear_env: false,
            stdin_inherit: false,
            stdin_bytes: None,
            stdout: Output::Inherit,
            stderr: Output::Inherit,
            grace: DEFAULT_GRACE,
            tail_lines: TAIL_LINES,
            tail_bytes: TAIL_BYTES,
            stop_blocks: false,
            lines: None,
        }
    }

    /// Hand each line of the streams set to [`Output::PassAndTail`] to `sink` (without its line
    /// ending) instead of copying the bytes to initbox's stderr.
    pub fn lines(mut self, sink: impl Fn(Stream, &str) + Send + Sync + 'static) -> Self {
        self.lines = Some(LineSink(Arc::new(sink)));
        self
    }

    /// Add variables to the inherited environment.
    pub fn envs<K: Into<OsString>, V: Into<OsString>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Start from an empty environment (only the variables given with [`Command::envs`]).
    /// Run in `dir` (restore's `--check` runs inside the data it judges).
    pub fn current_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    pub fn env_clear(mut self) -> Self {
        self.clear_env = true;
        self
    }

    /// Let the child read initbox's stdin (default: /dev/null).
    pub fn stdin_inherit(mut self) -> Self {
        self.stdin_inherit = true;
        self
    }

    /// Give the child these bytes on its stdin (then end of file), as cron gives a crontab
    /// line's text after `%`. A child that does not read them is not waited for.
    pub fn stdin_bytes(mut self, bytes: impl Into<Arc<[u8]>>) -> Self {
        self.stdin_bytes = Some(bytes.into());
        self
    }

    pub fn stdout(mut self, o: Output) -> Self {
        self.stdout = o;
        self
    }

    pub fn stderr(mut self, o: Output) -> Self {
        self.stderr = o;
        self
    }

    /// Time between SIGTERM and SIGKILL when the child is stopped.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Size of the kept tail of captured output.
    pub fn tail(mut self, lines: usize, bytes: usize) -> Self {
        self.tail_lines = lines;
        self.tail_bytes = bytes;
        self
    }

    /// When dropped while running, stop the child before the drop returns (blocking the
    /// thread for up to the grace period), for callers that must hold a resource (a lock)
    /// until the child is gone.
    pub fn stop_before_drop_returns(mut self) -> Self {
        self.stop_blocks = true;
        self
    }

    /// The program as shown in messages.
    pub fn shown(&self) -> String {
        self.argv
            .first()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Start the child. Fails with 127 (not found) or 126 (not executable), or 2 without argv.
    pub fn spawn(&self) -> Result<Running, Failure> {
        let Some((program, args)) = self.argv.split_first() else {
            return Err(Failure::usage("no command given"));
        };
        let mut cmd = tokio::process::Command::new(program);
        // A child that shares initbox's terminal stays in initbox's process group: in a group of
        // its own it would be stopped (SIGTTIN) as soon as it read from the terminal.
        let own_group = !(self.stdin_inherit && std::io::IsTerminal::is_terminal(&io::stdin()));
        cmd.args(args).kill_on_drop(false);
        if own_group {
            cmd.process_group(0);
        }
        if self.clear_env {
            cmd.env_clear();
        }
        if let Some(d) = &self.dir {
            cmd.current_dir(d);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(if self.stdin_bytes.is_some() {
            Stdio::piped()
        } else if self.stdin_inherit {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
        cmd.stdout(stdio(self.stdout));
        cmd.stderr(stdio(self.stderr));
        let mut child = cmd.spawn().map_err(|e| spawn_failure(program, &e))?;
        let target = Target {
            id: child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0),
            group: own_group,
        };
        if let (Some(mut pipe), Some(data)) = (child.stdin.take(), self.stdin_bytes.clone()) {
            // Written beside the run (a pipe holds 64 KiB; the child reads at its pace). A child
            // that exits without reading ends the write with EPIPE, which is its business.
            tokio::spawn(async move {
                let _ = pipe.write_all(&data).await;
                let _ = pipe.shutdown().await;
            });
        }
        let (lines, bytes) = (self.tail_lines, self.tail_bytes);
        let stdout = child
            .stdout
            .take()
            .map(|r| drain(r, self.pass(self.stdout, Stream::Stdout), lines, bytes));
        let stderr = child
            .stderr
            .take()
            .map(|r| drain(r, self.pass(self.stderr, Stream::Stderr), lines, bytes));
        Ok(Running {
            child: Some(child),
            target,
            shown: self.shown(),
            grace: self.grace,
            termed: false,
            stop_blocks: self.stop_blocks,
            started: Instant::now(),
            stdout,
            stderr,
        })
    }

    /// Spawn and wait for the child to exit.
    pub async fn run(&self) -> Result<Finished, Failure> {
        self.spawn()?.wait().await
    }
}

/// How a stream is passed on: not at all, as bytes to stderr, or line by line to the sink.
enum Pass {
    No,
    Bytes,
    Lines(Stream, LineSink),
}

impl Command {
    fn pass(&self, o: Output, stream: Stream) -> Pass {
        match (o, &self.lines) {
            (Output::PassAndTail, Some(sink)) => Pass::Lines(stream, sink.clone()),
            (Output::PassAndTail, None) => Pass::Bytes,
            _ => Pass::No,
        }
    }
}

fn stdio(o: Output) -> Stdio {
    match o {
        Output::Inherit => Stdio::inherit(),
        Output::Null => Stdio::null(),
        Output::Tail | Output::PassAndTail => Stdio::piped(),
    }
}

/// Read a pipe to its end, keeping only the tail (and passing it on to stderr if asked).
fn drain<R: AsyncRead + Unpin + Send + 'static>(
    mut r: R,
    pass: Pass,
    lines: usize,
    bytes: usize,
) -> JoinHandle<Tail> {
    tokio::spawn(async move {
        let mut tail = Tail::new(lines, bytes);
        let mut buf = vec![0u8; 64 * 1024];
        let mut line = Vec::new();
        let emit = |line: &mut Vec<u8>| {
            if let Pass::Lines(stream, sink) = &pass {
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                (sink.0)(*stream, &String::from_utf8_lossy(line));
            }
            line.clear();
        };
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    if !line.is_empty() {
                        emit(&mut line);
                    }
                    break;
                }
                Ok(n) => {
                    if let Pass::Lines(..) = pass {
                        for piece in buf[..n].split_inclusive(|b| *b == b'\n') {
                            let ends = piece.last() == Some(&b'\n');
                            line.extend_from_slice(if ends {
                                &piece[..piece.len() - 1]
                            } else {
                                piece
                            });
                            if ends || line.len() >= MAX_LINE {
                                emit(&mut line);
                            }
                        }
                    } else if let Pass::Bytes = pass {
                        // Passed through unchanged, as the command wrote it.
                        let mut err = std::io::stderr().lock();
                        let _ = err.write_all(&buf[..n]);
                        let _ = err.flush();
                    }
                    tail.push(&buf[..n]);
                }
            }
        }
        tail
    })
}

/// The failure for a program that could not be started: 127 not found, 126 otherwise.
pub fn spawn_failure(program: &std::ffi::OsStr, e: &io::Error) -> Failure {
    let shown = program.to_string_lossy();
    match e.kind() {
        // A name with a slash is not looked up in PATH.
        io::ErrorKind::NotFound if shown.contains('/') => {
            let why = if std::path::Path::new(program).exists() {
                "exists, but its interpreter (#! line) or loader does not"
            } else {
                "does not exist"
            };
            Failure::new(
                Code::NOT_FOUND,
                format!("command '{shown}' not found: {why}"),
            )
        }
        io::ErrorKind::NotFound => Failure::new(
            Code::NOT_FOUND,
            format!("command '{shown}' not found (checked PATH)"),
        ),
        io::ErrorKind::PermissionDenied => Failure::new(
            Code::NOT_EXECUTABLE,
            format!("command '{shown}' is not executable: permission denied"),
        ),
        _ => Failure::new(
            Code::NOT_EXECUTABLE,
            format!("command '{shown}' could not be executed: {e}"),
        ),
    }
}

/// The toolkit's code for a child's exit status: its code, or 128+N for signal N.
pub fn code_of(status: &ExitStatus) -> Code {
    match (status.code(), status.signal()) {
        (Some(c), _) => Code(c),
        (None, Some(sig)) => Code::signal(sig),
        _ => Code::FAILED,
    }
}

/// How an exit status reads in a message: "exited with 3", "was killed by signal 9 (SIGKILL)".
pub fn describe(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with {c}"),
        (None, Some(sig)) => format!("was killed by signal {sig} ({})", crate::signals::name(sig)),
        _ => format!("ended: {status}"),
    }
}

/// The short form for probe lines: "exit 3", "killed by signal 9 (SIGKILL)".
pub fn brief(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(sig)) => format!("killed by signal {sig} ({})", crate::signals::name(sig)),
        _ => format!("{status}"),
    }
}

/// A child that ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// [`code_of`] the status.
    pub code: Code,
    /// Tail of captured stdout (empty when not captured).
    pub stdout: String,
    /// Tail of captured stderr (empty when not captured).
    pub stderr: String,
    pub elapsed: Duration,
    shown: String,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// `Err` with the child's code and "command 'x' exited with N" unless it succeeded.
    pub fn check(&self) -> Result<(), Failure> {
        if self.success() {
            return Ok(());
        }
        Err(Failure::new(
            self.code,
            format!("command '{}' {}", self.shown, describe(&self.status)),
        ))
    }
}

/// A running child. Dropped while running, it is stopped (see the module doc).
pub struct Running {
    child: Option<tokio::process::Child>,
    target: Target,
    shown: String,
    grace: Duration,
    termed: bool,
    stop_blocks: bool,
    started: Instant,
    stdout: Option<JoinHandle<Tail>>,
    stderr: Option<JoinHandle<Tail>>,
}

impl Running {
    pub fn id(&self) -> u32 {
        self.target.id as u32
    }

    /// Wait for the child to exit; its output tails are complete when this returns.
    pub async fn wait(mut self) -> Result<Finished, Failure> {
        let child = self.child.as_mut().expect("child until waited");
        let status = child
            .wait()
            .await
            .map_err(|e| Failure::failed(format!("waiting for '{}': {e}", self.shown)))?;
        // Reaped: nothing to stop any more.
        self.child = None;
        let elapsed = self.started.elapsed();
        let stdout = collect(self.stdout.take()).await;
        let stderr = collect(self.stderr.take()).await;
        Ok(Finished {
            code: code_of(&status),
            status,
            stdout,
            stderr,
            elapsed,
            shown: std::mem::take(&mut self.shown),
        })
    }

    /// Wait for the child to exit, or stop it ([`Running::stop`]) when `stop` resolves first
    /// (`None` then). Either way, what is left of its process group once it is gone is stopped
    /// too (SIGTERM, grace period, SIGKILL), so nothing it started in its group outlives it.
    pub async fn wait_or_stop(
        mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<Option<Finished>, Failure> {
        let status = {
            let child = self.child.as_mut().expect("child until waited");
            tokio::select! {
                s = child.wait() => Some(s),
                () = stop => None,
            }
        };
        let Some(status) = status else {
            self.stop().await;
            return Ok(None);
        };
        let status =
            status.map_err(|e| Failure::failed(format!("waiting for '{}': {e}", self.shown)))?;
        self.child = None;
        let elapsed = self.started.elapsed();
        let stdout = collect(self.stdout.take()).await;
        let stderr = collect(self.stderr.take()).await;
        let shown = std::mem::take(&mut self.shown);
        if self.target.group && self.target.alive() {
            self.stop().await;
        }
        Ok(Some(Finished {
            code: code_of(&status),
            status,
            stdout,
            stderr,
            elapsed,
            shown,
        }))
    }

    /// Like [`Running::wait_or_stop`], but a child stopped because `stop` resolved first is
    /// still waited for, so its exit is observed: SIGTERM to its group, up to the grace period
    /// for the child to exit (its trap's exit code), then SIGKILL. `true` with the result when
    /// it was stopped. What is left of its group is stopped as with `wait_or_stop`.
    pub async fn wait_or_stop_observed(
        mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(Finished, bool), Failure> {
        let first = {
            let child = self.child.as_mut().expect("child until waited");
            tokio::select! {
                s = child.wait() => Some(s),
                () = stop => None,
            }
        };
        let (status, stopped) = match first {
            Some(s) => (s, false),
            None => {
                self.terminate();
                let grace = self.grace;
                let child = self.child.as_mut().expect("child until waited");
                match tokio::time::timeout(grace, child.wait()).await {
                    Ok(s) => (s, true),
                    Err(_) => {
                        self.target.signal(libc::SIGKILL);
                        let child = self.child.as_mut().expect("child until waited");
                        (child.wait().await, true)
                    }
                }
            }
        };
        let status =
            status.map_err(|e| Failure::failed(format!("waiting for '{}': {e}", self.shown)))?;
        self.child = None;
        let elapsed = self.started.elapsed();
        let stdout = collect(self.stdout.take()).await;
        let stderr = collect(self.stderr.take()).await;
        let shown = std::mem::take(&mut self.shown);
        if self.target.group && self.target.alive() {
            self.stop().await;
        }
        Ok((
            Finished {
                code: code_of(&status),
                status,
                stdout,
                stderr,
                elapsed,
                shown,
            },
            stopped,
        ))
    }

    /// The exit status if the child has already exited (it is then reaped), `None` if it runs.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(status)
    }

    /// Send SIGTERM to the child's process group now (once), without waiting. After the child
    /// itself was reaped ([`Running::try_wait`]), what is left of its group still gets it.
    pub fn terminate(&mut self) {
        if self.termed || self.target.id <= 0 || (self.child.is_none() && !self.target.group) {
            return;
        }
        self.termed = true;
        crate::signals::set_stop_grace(self.grace + STOP_MARGIN);
        self.target.signal(libc::SIGTERM);
    }

    /// Stop the child: SIGTERM to its group (unless [`Running::terminate`] already sent it),
    /// wait until every process of the group has exited or the grace period passed, then
    /// SIGKILL the group. Returns once the group is gone.
    pub async fn stop(mut self) {
        self.terminate();
        let child = self.child.take();
        if !self.termed {
            return;
        }
        let (target, grace) = (self.target, self.grace);
        // The reaper thread owns the reaping from here; tokio forgets the child. It is
        // registered like a drop's, so a signal that ends initbox meanwhile still waits for it.
        drop(child);
        let (done, finished) = tokio::sync::oneshot::channel();
        let handle = std::thread::spawn(move || {
            target.finish(grace);
            let _ = done.send(());
        });
        if let Ok(mut list) = STOPPING.lock() {
            list.push(handle);
        }
        let _ = finished.await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.is_none() {
            return;
        }
        self.terminate();
        drop(self.child.take());
        let (target, grace) = (self.target, self.grace);
        if target.id <= 0 {
            return;
        }
        let handle = std::thread::spawn(move || target.finish(grace));
        if self.stop_blocks {
            let _ = handle.join();
        } else if let Ok(mut list) = STOPPING.lock() {
            list.push(handle);
        }
    }
}

async fn collect(task: Option<JoinHandle<Tail>>) -> String {
    let Some(mut task) = task else {
        return String::new();
    };
    // A grandchild may still hold the pipe open: read on a little, then keep what we have.
    match tokio::time::timeout(DRAIN_AFTER_EXIT, &mut task).await {
        Ok(Ok(tail)) => tail.finish(),
        _ => {
            task.abort();
            String::new()
        }
    }
}

/// Stops started by dropping a [`Running`], still in progress.
static STOPPING: Mutex<Vec<std::thread::JoinHandle<()>>> = Mutex::new(Vec::new());

/// Wait until every child stopped by a drop is gone (each takes at most its grace period).
/// initbox calls this before it exits or execs.
pub fn wait_for_stopping() {
    let handles = match STOPPING.lock() {
        Ok(mut list) => std::mem::take(&mut *list),
        Err(_) => return,
    };
    for h in handles {
        let _ = h.join();
    }
}

/// What a stop signals: the child's process group, or only the child when it shares
/// initbox's group (a terminal).
#[derive(Debug, Clone, Copy)]
struct Target {
    id: i32,
    group: bool,
}

impl Target {
    fn signal(self, sig: i32) {
        // SAFETY: kill(2)/killpg(2) on a child we started (or its group) and have not reaped.
        unsafe {
            if self.group {
                libc::killpg(self.id, sig);
            } else {
                libc::kill(self.id, sig);
            }
        }
    }

    /// Reap every exited process of the target that is our child (the leader; orphans too
    /// when initbox is PID 1).
    fn reap(self) {
        let pid = if self.group { -self.id } else { self.id };
        loop {
            let mut st = 0;
            // SAFETY: waitpid(2) with WNOHANG on our own child or process group.
            let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
            if r <= 0 {
                return;
            }
        }
    }

    /// Whether a process of the target still runs. Zombies do not count: an orphaned
    /// grandchild's zombie waits for another reaper (PID 1), which may take its time.
    fn alive(self) -> bool {
        // SAFETY: signal 0 only checks that the process or group exists.
        let r = unsafe {
            if self.group {
                libc::killpg(self.id, 0)
            } else {
                libc::kill(self.id, 0)
            }
        };
        if r != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
            return false;
        }
        self.running_in_proc().unwrap_or(true)
    }

    /// From /proc: whether a process of the target is in a state other than zombie/dead;
    /// `None` when /proc cannot be read.
    fn running_in_proc(self) -> Option<bool> {
        // After the command: state, ppid, pgrp.
        let live = |stat: &str, want_pgrp: bool| -> bool {
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut f = rest.split_whitespace();
            let state = f.next().unwrap_or("Z");
            let pgrp = f.nth(1).and_then(|p| p.parse::<i32>().ok());
            (!want_pgrp || pgrp == Some(self.id)) && !matches!(state, "Z" | "X" | "x")
        };
        if !self.group {
            return std::fs::read_to_string(format!("/proc/{}/stat", self.id))
                .ok()
                .map(|s| live(&s, false));
        }
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let name = entry.file_name();
            if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
                && live(&stat, true)
            {
                return Some(true);
            }
        }
        Some(false)
    }

    /// After SIGTERM: reap processes as they exit; once none is left, return; at the end of
    /// the grace period, SIGKILL whatever is left and reap it.
    fn finish(self, grace: Duration) {
        let until = Instant::now() + grace;
        loop {
            self.reap();
            if !self.alive() {
                // What died since the reap above may be our own zombie: reap it too.
                self.reap();
                return;
            }
            if Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.signal(libc::SIGKILL);
        let until = Instant::now() + Duration::from_secs(2);
        while self.alive() && Instant::now() < until {
            self.reap();
            std::thread::sleep(Duration::from_millis(5));
        }
        self.reap();
    }
}

/// The end of a stream: at most `max_lines` lines and `max_bytes` bytes, the rest dropped as
/// it arrives (memory stays within about twice `max_bytes`, whatever the stream's size).
#[derive(Debug, Clone)]
pub struct Tail {
    buf: Vec<u8>,
    cut: bool,
    max_lines: usize,
    max_bytes: usize,
}

impl Tail {
    pub fn new(max_lines: usize, max_bytes: usize) -> Self {
        Tail {
            buf: Vec::new(),
            cut: false,
            max_lines,
            max_bytes,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        // Keep one byte more than needed, to know where a line began.
        let keep = self.max_bytes + 1;
        if chunk.len() >= keep {
            self.cut |= !self.buf.is_empty() || chunk.len() > keep;
            self.buf.clear();
            self.buf.extend_from_slice(&chunk[chunk.len() - keep..]);
            return;
        }
        self.buf.extend_from_slice(chunk);
        if self.buf.len() > 2 * keep {
            let excess = self.buf.len() - keep;
            self.buf.drain(..excess);
            self.cut = true;
        }
    }

    /// The kept text: the last lines (trailing blank lines dropped), "…" first when cut.
    pub fn finish(self) -> String {
        if self.max_lines == 0 || self.max_bytes == 0 {
            return String::new();
        }
        let mut end = self.buf.len();
        while end > 0 && matches!(self.buf[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        let mut start = end.saturating_sub(self.max_bytes);
        let mut cut = self.cut || start > 0;
        // Lines: keep the last max_lines.
        let mut seen = 0;
        for i in (start..end).rev() {
            if self.buf[i] == b'\n' {
                seen += 1;
                if seen == self.max_lines {
                    start = i + 1;
                    cut = true;
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&self.buf[start..end]);
        let text: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
        let text = text.join("\n");
        // A byte cut may split a character: drop the replacement at the very start.
        let text = text.trim_start_matches('\u{FFFD}');
        if cut {
            format!("…{text}")
        } else {
            text.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let mut t = Tail::new(2, 1024);
        t.push(b"one\ntwo\nthr");
        t.push(b"ee\nfour\n");
        assert_eq!(t.finish(), "…three\nfour");
        let mut t = Tail::new(5, 1024);
        t.push(b"oops\n");
        assert_eq!(t.finish(), "oops");
    }

    #[test]
    fn tail_caps_bytes_keeping_the_end() {
        let mut t = Tail::new(10, 8);
        t.push(b"abcdefgh\nij\n");
        assert_eq!(t.finish(), "…defgh\nij");
    }

    #[test]
    fn tail_stays_bounded_for_any_stream() {
        let mut t = Tail::new(3, 64);
        for _ in 0..100_000 {
            t.push(b"y\ny\ny\ny\n");
            assert!(t.buf.len() <= 2 * 65);
        }
        let mut big = Tail::new(3, 64);
        big.push(&vec![b'x'; 1 << 20]);
        assert!(big.buf.len() <= 65);
        assert_eq!(t.finish(), "…y\ny\ny");
    }

    fn sh(script: &str) -> Command {
        Command::new(["sh", "-c", script])
    }

    #[tokio::test]
    async fn exit_statuses_follow_the_table() {
        let f = sh("echo oops >&2; exit 7")
            .stderr(Output::Tail)
            .run()
            .await
            .unwrap();
        assert_eq!(f.code, Code(7));
        assert_eq!(f.stderr, "oops");
        let f = sh("kill -TERM $$").run().await.unwrap();
        assert_eq!(f.code, Code(143));
        assert!(f.check().unwrap_err().message.contains("SIGTERM"));
        let e = Command::new(["/nonexistent/cmd"]).spawn().err().unwrap();
        assert_eq!(e.code, Code::NOT_FOUND);
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "not a program").unwrap();
        let e = Command::new([&plain]).spawn().err().unwrap();
        assert_eq!(e.code, Code::NOT_EXECUTABLE);
    }

    #[tokio::test]
    async fn a_line_sink_gets_each_line_of_each_stream() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let f = sh("printf 'one\\r\\ntwo\\n'; echo err >&2; printf 'no-newline'")
            .stdout(Output::PassAndTail)
            .stderr(Output::PassAndTail)
            .lines(move |s, l| sink.lock().unwrap().push((s, l.to_string())))
            .run()
            .await
            .unwrap();
        assert!(f.success());
        let mut got = got.lock().unwrap().clone();
        got.sort_by_key(|(s, _)| *s == Stream::Stderr);
        assert_eq!(
            got,
            [
                (Stream::Stdout, "one".to_string()),
                (Stream::Stdout, "two".to_string()),
                (Stream::Stdout, "no-newline".to_string()),
                (Stream::Stderr, "err".to_string()),
            ]
        );
        assert_eq!(f.stdout, "one\ntwo\nno-newline");
    }

    #[tokio::test]
    async fn dropping_a_child_stops_its_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("trapped");
        let pids = dir.path().join("pids");
        let script = format!(
            "trap 'echo yes > {m}; exit 0' TERM; sleep 60 & echo $! > {p}; wait",
            m = marker.display(),
            p = pids.display()
        );
        let running = sh(&script).grace(Duration::from_secs(5)).spawn().unwrap();
        let target = running.target;
        for _ in 0..200 {
            if std::fs::read_to_string(&pids).is_ok_and(|s| s.ends_with('\n')) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(running);
        wait_for_stopping();
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "yes\n");
        assert!(
            target.group && !target.alive(),
            "a process of the group survived"
        );
    }

    #[tokio::test]
    async fn a_child_ignoring_sigterm_is_killed_after_the_grace_period() {
        let running = sh("trap '' TERM; sleep 60 & sleep 60")
            .grace(Duration::from_millis(300))
            .spawn()
            .unwrap();
        let target = running.target;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        running.stop().await;
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert!(!target.alive());
    }
}
