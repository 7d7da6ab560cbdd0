//! The retry policy: exponential backoff (backon) between a minimum and a maximum interval,
//! optionally with jitter, always bounded by the run's [`Deadline`].

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::deadline::Deadline;
use crate::duration::human;
use crate::exit::Failure;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// First delay between attempts.
    pub min: Duration,
    /// Largest delay between attempts (before jitter).
    pub max: Duration,
    /// Growth of the delay per attempt.
    pub factor: f32,
    /// Add up to 100% random jitter to every delay (backon's jitter).
    pub jitter: bool,
    /// Give up after this many attempts; `None` = until the deadline.
    pub max_attempts: Option<usize>,
}

impl RetryPolicy {
    /// Defaults for requests to remote services (secrets, notifications): 250ms doubling to 5s,
    /// with jitter so a fleet of pods does not retry in lock-step.
    pub const REQUESTS: RetryPolicy = RetryPolicy {
        min: Duration::from_millis(250),
        max: Duration::from_secs(5),
        factor: 2.0,
        jitter: true,
        max_attempts: None,
    };

    /// The sequence of delays between attempts.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        let mut b = ExponentialBuilder::default()
            .with_min_delay(self.min)
            .with_max_delay(self.max.max(self.min))
            .with_factor(self.factor.max(1.0));
        b = match self.max_attempts {
            Some(n) => b.with_max_times(n.saturating_sub(1)),
            None => b.without_max_times(),
        };
        if self.jitter {
            b = b.with_jitter();
        }
        b.build()
    }
}

/// The result of one attempt of a retried operation.
#[derive(Debug)]
pub enum Attempt {
    /// Worth trying again (connection refused, 5xx, 429); `after` is a server's Retry-After.
    Transient {
        error: String,
        after: Option<Duration>,
    },
    /// Trying again cannot help (bad credentials, bad input).
    Fatal(Failure),
}

impl Attempt {
    pub fn transient(error: impl Into<String>) -> Self {
        Attempt::Transient {
            error: error.into(),
            after: None,
        }
    }
}

impl From<Failure> for Attempt {
    fn from(f: Failure) -> Self {
        Attempt::Fatal(f)
    }
}

/// Run `op` until it succeeds, fails permanently, runs out of attempts or hits the deadline.
/// `op` gets the attempt number (1-based). A server's Retry-After is honoured when it is longer
/// than the policy's delay, but never beyond the deadline.
pub async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    deadline: &Deadline,
    what: &str,
    mut op: F,
) -> Result<T, Failure>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Attempt>>,
{
    let mut delays = policy.delays();
    let mut attempt = 0u32;
    let mut last_error: Option<String> = None;
    loop {
        attempt += 1;
        let result = deadline
            .run(async { Ok(op(attempt).await) }, || match &last_error {
                // The attempt the deadline cut short has no answer yet: the one before it does.
                Some(error) => format!(
                    "{what} (attempt {attempt} still running; attempt {}: {error})",
                    attempt - 1
                ),
                None => format!("{what} (attempt {attempt} still running)"),
            })
            .await?;
        let (error, after) = match result {
            Ok(v) => return Ok(v),
            Err(Attempt::Fatal(f)) => return Err(f),
            Err(Attempt::Transient { error, after }) => (error, after),
        };
        last_error = Some(error.clone());
        let Some(delay) = delays.next() else {
            return Err(Failure::failed(format!(
                "{what}: giving up after {attempt} attempts: {error}"
            )));
        };
        let delay = after.map_or(delay, |a| a.max(delay));
        if let Some(rem) = deadline.remaining()
            && rem <= delay
        {
            // No attempt fits before the deadline any more: the deadline is what ends the
            // run, so it ends at the deadline (not a delay's length before it).
            tokio::time::sleep(rem).await;
            return Err(Failure::deadline(format!(
                "{what}: deadline of {} exceeded after {attempt} attempts: {error}",
                human(deadline.limit().unwrap_or_default())
            )));
        }
        tracing::debug!(attempt, retry_in = %human(delay), %error, "{what}: retrying");
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap() {
        let p = RetryPolicy {
            min: Duration::from_millis(10),
            max: Duration::from_millis(100),
            factor: 2.0,
            jitter: false,
            max_attempts: None,
        };
        // backon multiplies in f32: allow a millisecond of rounding.
        let d: Vec<_> = p
            .delays()
            .take(6)
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        for (got, want) in d.iter().zip([10.0, 20.0, 40.0, 80.0, 100.0, 100.0]) {
            assert!((got - want).abs() <= 1.0, "{d:?}");
        }
    }

    #[test]
    fn jitter_stays_within_one_delay() {
        let p = RetryPolicy {
            jitter: true,
            ..RetryPolicy::REQUESTS
        };
        for d in p.delays().take(50) {
            assert!(
                d >= Duration::from_millis(250) && d < Duration::from_secs(10),
                "{d:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_retry_until_success() {
        let p = RetryPolicy {
            jitter: false,
            ..RetryPolicy::REQUESTS
        };
        let out = retry(&p, &Deadline::never(), "op", |n| async move {
            if n < 3 {
                Err(Attempt::transient("not yet"))
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(out.unwrap(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn fatal_errors_stop_at_once() {
        let mut calls = 0;
        let out: Result<(), _> = retry(&RetryPolicy::REQUESTS, &Deadline::never(), "op", |_| {
            calls += 1;
            async { Err(Attempt::Fatal(Failure::credentials("denied"))) }
        })
        .await;
        assert_eq!(out.unwrap_err().code, crate::Code::CREDENTIALS);
        assert_eq!(calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_cut_by_the_deadline_reports_the_error_before_it() {
        let d = Deadline::after(Some(Duration::from_secs(2)));
        let out: Result<(), _> = retry(&RetryPolicy::REQUESTS, &d, "op", |n| async move {
            if n == 1 {
                Err(Attempt::transient("held by connection 42"))
            } else {
                std::future::pending().await
            }
        })
        .await;
        let f = out.unwrap_err();
        assert_eq!(f.code, crate::Code::DEADLINE);
        assert!(
            f.message.contains("attempt 2 still running"),
            "{}",
            f.message
        );
        assert!(f.message.contains("held by connection 42"), "{}", f.message);
    }

    #[tokio::test(start_paused = true)]
    async fn giving_up_happens_at_the_deadline_not_before() {
        let p = RetryPolicy {
            jitter: false,
            ..RetryPolicy::REQUESTS
        };
        let d = Deadline::after(Some(Duration::from_secs(2)));
        let started = tokio::time::Instant::now();
        let out: Result<(), _> = retry(&p, &d, "op", |_| async {
            Err(Attempt::transient("refused"))
        })
        .await;
        assert_eq!(out.unwrap_err().code, crate::Code::DEADLINE);
        // Attempts at 0, 0.25, 0.75 and 1.75 s; the next delay (2 s) would overrun.
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_bounds_retries() {
        let d = Deadline::after(Some(Duration::from_secs(2)));
        let out: Result<(), _> = retry(&RetryPolicy::REQUESTS, &d, "op", |_| async {
            Err(Attempt::transient("refused"))
        })
        .await;
        let f = out.unwrap_err();
        assert_eq!(f.code, crate::Code::DEADLINE);
        assert!(f.message.contains("refused"), "{}", f.message);
    }
}
