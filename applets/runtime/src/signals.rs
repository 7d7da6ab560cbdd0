//! SIGTERM and SIGINT end any run, also when initbox is PID 1 in a container (where the kernel
//! delivers no default-action signals unless a handler is installed), and also while the
//! applet's only thread is busy in synchronous work (scrubbing, reading a file, a tight loop).
//!
//! Two paths see a signal:
//! - the async path: [`Shutdown::received`] in the applet's runtime, which drops the applet's
//!   work and reports "stopped by SIGTERM" through the usual exit path;
//! - the [`watchdog`] thread, which has its own handlers and its own small runtime. After a
//!   signal it gives the async path the stop grace ([`set_stop_grace`], default
//!   [`DEFAULT_STOP_GRACE`]) to finish cleanly, then ends the process itself with 128+N. A
//!   second signal during the grace ends it at once.
//!
//! Whichever path reports first claims the exit ([`claim_exit`]), so the termination message
//! is written once. Before the watchdog ends the process it removes the temporary files that
//! are still [`Tracked`] (the staged files of atomic writes), so a signal never leaves one
//! behind; an [`ExitHold`] keeps it from doing so in the middle of creating or renaming one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// How long the async path has to stop after SIGTERM/SIGINT before the watchdog exits anyway.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_millis(50);

static STOP_GRACE_MS: AtomicU64 = AtomicU64::new(DEFAULT_STOP_GRACE.as_millis() as u64);
static EXIT_CLAIMED: AtomicBool = AtomicBool::new(false);
/// Temporary files to remove if the watchdog ends the process.
static TRACKED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn tracked() -> MutexGuard<'static, Vec<PathBuf>> {
    TRACKED.lock().unwrap_or_else(|e| e.into_inner())
}

/// While held, the watchdog cannot remove tracked files and end the process: hold it while
/// creating a temporary file and tracking it, and while renaming it into place.
pub struct ExitHold(MutexGuard<'static, Vec<PathBuf>>);

/// Take an [`ExitHold`] (blocks, for good, if the watchdog is ending the process).
pub fn hold_exit() -> ExitHold {
    ExitHold(tracked())
}

impl ExitHold {
    /// Remove `path` if the watchdog ends the process before the returned value is dropped.
    pub fn track(&mut self, path: &Path) -> Tracked {
        self.0.push(path.to_path_buf());
        Tracked(path.to_path_buf())
    }
}

/// A temporary file the watchdog removes before it ends the process; untracked on drop.
#[derive(Debug)]
pub struct Tracked(PathBuf);

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut list = tracked();
        if let Some(i) = list.iter().rposition(|p| *p == self.0) {
            list.swap_remove(i);
        }
    }
}

/// Give the async path at least `grace` to finish after a signal before the process is ended
/// with 128+N: for applets that stop child processes gracefully (forward SIGTERM, wait, then
/// SIGKILL; [`crate::child`] calls it when it stops a child). Read again while the grace runs,
/// so a stop that starts after the signal extends it; the longest request wins.
pub fn set_stop_grace(grace: Duration) {
    let ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    STOP_GRACE_MS.fetch_max(ms, Ordering::Relaxed);
}

/// The current stop grace.
pub fn stop_grace() -> Duration {
    Duration::from_millis(STOP_GRACE_MS.load(Ordering::Relaxed))
}

/// Claim the right to report the run's end and exit; `false` if another path already did.
pub fn claim_exit() -> bool {
    !EXIT_CLAIMED.swap(true, Ordering::SeqCst)
}

/// Handlers for the signals that end a run. Create it before the work starts, so a signal
/// that arrives early is not lost. Must be created inside a tokio runtime with I/O enabled.
pub struct Shutdown {
    term: Option<Signal>,
    int: Option<Signal>,
}

impl Shutdown {
    pub fn install() -> Self {
        Shutdown {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    /// Resolves with the signal number when SIGTERM or SIGINT arrives.
    pub async fn received(&mut self) -> i32 {
        async fn next(s: &mut Option<Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = next(&mut self.term) => libc::SIGTERM,
            _ = next(&mut self.int) => libc::SIGINT,
        }
    }
}

/// Start the watchdog thread. Its handlers are installed before this returns, so a signal that
/// arrives from then on is seen even if the calling thread never yields again.
///
/// After a signal and the stop grace, if no other path has claimed the exit, `on_expiry(signo)`
/// runs on the watchdog thread (to write the one termination line); then the process ends with
/// 128+N without running destructors or waiting for the busy thread. If the exit was claimed
/// (the async path is reporting), the watchdog waits one more second for it before ending the
/// process the same way.
pub fn watchdog(on_expiry: impl FnOnce(i32) + Send + 'static) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let mut shutdown = {
        let _entered = rt.enter();
        Shutdown::install()
    };
    std::thread::Builder::new()
        .name("initbox-signals".into())
        .spawn(move || {
            let signo = rt.block_on(async {
                let signo = shutdown.received().await;
                let since = tokio::time::Instant::now();
                // The grace is read again as it runs: a child stopped after the signal extends it
                // (`set_stop_grace`). A second signal cuts it short.
                loop {
                    let left = stop_grace().saturating_sub(since.elapsed());
                    if left.is_zero() {
                        break;
                    }
                    let tick = left.min(Duration::from_millis(20));
                    if tokio::time::timeout(tick, shutdown.received())
                        .await
                        .is_ok()
                    {
                        break;
                    }
                }
                signo
            });
            // Remove the temporary files in flight, and keep the lock so no new one is made.
            let in_flight = tracked();
            for path in in_flight.iter() {
                let _ = std::fs::remove_file(path);
            }
            if claim_exit() {
                on_expiry(signo);
            } else {
                std::thread::sleep(Duration::from_secs(1));
            }
            hard_exit(128 + signo)
        })?;
    Ok(())
}

/// End the process now with `code`, from any thread, without the exit handlers a busy or
/// exiting main thread might be running.
fn hard_exit(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` takes no pointers and never returns; it is safe to call from any thread.
    unsafe { libc::_exit(code) }
}

/// The name of a signal number, for log lines.
pub fn name(signo: i32) -> &'static str {
    match signo {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGHUP => "SIGHUP",
        libc::SIGQUIT => "SIGQUIT",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_grace_is_settable() {
        // Other tests of this process stop children, which asks for their grace: only the
        // order is certain here.
        assert!(stop_grace() >= DEFAULT_STOP_GRACE);
        set_stop_grace(Duration::from_secs(3600));
        assert_eq!(stop_grace(), Duration::from_secs(3600));
        set_stop_grace(Duration::from_secs(1));
        assert_eq!(
            stop_grace(),
            Duration::from_secs(3600),
            "the longest request wins"
        );
    }
}
