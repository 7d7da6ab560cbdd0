//! The overall deadline of a run (`--timeout`).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::exit::Failure;

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: Instant,
    limit: Option<Duration>,
}

impl Deadline {
    /// A deadline `limit` from now; `None` never expires.
    pub fn after(limit: Option<Duration>) -> Self {
        Deadline {
            start: Instant::now(),
            limit,
        }
    }

    pub fn never() -> Self {
        Self::after(None)
    }

    pub fn started(&self) -> Instant {
        self.start
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn limit(&self) -> Option<Duration> {
        self.limit
    }

    pub fn instant(&self) -> Option<Instant> {
        self.limit.map(|l| self.start + l)
    }

    /// Time left; `None` if there is no deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.instant()
            .map(|i| i.saturating_duration_since(Instant::now()))
    }

    pub fn expired(&self) -> bool {
        self.remaining().is_some_and(|r| r.is_zero())
    }

    /// `d`, shortened so it ends no later than the deadline.
    pub fn cap(&self, d: Duration) -> Duration {
        match self.remaining() {
            Some(r) => d.min(r),
            None => d,
        }
    }

    /// Run `fut` until the deadline; on expiry, fail with exit 124 and `what()` in the message.
    pub async fn run<T>(
        &self,
        fut: impl Future<Output = Result<T, Failure>>,
        what: impl FnOnce() -> String,
    ) -> Result<T, Failure> {
        match self.instant() {
            None => fut.await,
            Some(at) => match tokio::time::timeout_at(at, fut).await {
                Ok(r) => r,
                Err(_) => Err(Failure::deadline(format!(
                    "deadline of {} exceeded: {}",
                    crate::duration::human(self.limit.unwrap_or_default()),
                    what()
                ))),
            },
        }
    }
}
