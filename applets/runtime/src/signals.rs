//! SIGTERM and SIGINT end any wait at once, also when initbox is PID 1 in a container
//! (where the kernel delivers no default-action signals unless a handler is installed).

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Handlers for the signals that end a run. Create it before the work starts, so a signal
/// that arrives early is not lost.
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

/// How long a stop may take after SIGTERM/SIGINT, in milliseconds (0: no extension asked).
static STOP_GRACE_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Ask for time to stop children after a signal: whatever ends the process after a signal
/// waits at least `d` (the longest request wins). Called by [`crate::child`] when it sends
/// SIGTERM to a child's process group, with the grace period plus a margin.
pub fn set_stop_grace(d: std::time::Duration) {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    STOP_GRACE_MS.fetch_max(ms, std::sync::atomic::Ordering::Relaxed);
}

/// The stop grace asked for with [`set_stop_grace`].
pub fn stop_grace() -> std::time::Duration {
    std::time::Duration::from_millis(STOP_GRACE_MS.load(std::sync::atomic::Ordering::Relaxed))
}
