//! Running checks: all in parallel, each with its timeout and retries; blocked checks judged
//! against their control.

use std::sync::Arc;
use std::time::Duration;

use initbox_runtime::retry::RetryPolicy;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::net::{self, Ctx};
use crate::probe::{Observation, Observed, Status, judge};
use crate::spec::{Check, Expect, Kind};

/// The result of one check, all attempts done.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub check: Check,
    pub status: Status,
    pub reason: String,
    pub observation: Observation,
    pub attempts: u32,
    pub duration: Duration,
}

async fn observe(check: &Check, ctx: &Ctx) -> Observation {
    let deadline = Instant::now() + check.timeout;
    match &check.kind {
        Kind::Dns(d) => net::dns(d, ctx, deadline).await,
        Kind::Tcp(t) => net::tcp(t, ctx, deadline).await,
        Kind::Tls(t) => net::tls(t, ctx, deadline).await,
        Kind::Udp(u) => net::udp(u, ctx, deadline).await,
        Kind::Icmp(i) => crate::icmp::icmp(i, ctx, check.timeout).await,
        Kind::Http(h) => crate::http::http(h, ctx, deadline).await,
        Kind::Port(p) => crate::local::port(p),
        Kind::Interface(i) => crate::local::interface(i),
    }
}

/// One check with its retries (the runtime's retry policy: exponential from `retry_delay`).
pub async fn run_check(check: Check, ctx: Arc<Ctx>) -> CheckResult {
    let started = Instant::now();
    let policy = RetryPolicy {
        min: check.retry_delay,
        max: check.retry_delay.saturating_mul(8),
        factor: 2.0,
        jitter: false,
        max_attempts: Some(check.retries as usize + 1),
    };
    let mut delays = policy.delays();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let observation = observe(&check, &ctx).await;
        let (mut status, mut reason) = judge(check.expect, &observation);
        if check.expect == Expect::Blocked
            && matches!(check.kind, Kind::Dns(_))
            && observation.observed == Observed::DnsError
        {
            // For a DNS check, an NXDOMAIN or SERVFAIL is an answer: the server is reachable.
            status = Status::Fail;
            reason = format!(
                "not blocked: the DNS server answered ({})",
                observation.detail
            );
        }
        let done = status.passed() || status == Status::Error;
        if !done && let Some(delay) = delays.next() {
            tracing::debug!(check = %check.name, attempt = attempts, %reason, "retrying");
            tokio::time::sleep(delay).await;
            continue;
        }
        return CheckResult {
            status,
            reason,
            observation,
            attempts,
            duration: started.elapsed(),
            check,
        };
    }
}

/// Run every check at once (at most `concurrency` at a time), in the given order in the results.
pub async fn run_all(checks: &[Check], ctx: Arc<Ctx>, concurrency: usize) -> Vec<CheckResult> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for (i, c) in checks.iter().cloned().enumerate() {
        let ctx = Arc::clone(&ctx);
        let permits = Arc::clone(&permits);
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (i, run_check(c, ctx).await)
        });
    }
    let mut results: Vec<Option<CheckResult>> = vec![None; checks.len()];
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, r)) => results[i] = Some(r),
            Err(e) => tracing::error!("a check task ended abnormally: {e}"),
        }
    }
    let mut results: Vec<CheckResult> = results
        .into_iter()
        .zip(checks)
        .map(|(r, c)| {
            r.unwrap_or_else(|| CheckResult {
                check: c.clone(),
                status: Status::Fail,
                reason: "the check did not complete".into(),
                observation: Observation::new(Observed::Error, "the check did not complete"),
                attempts: 0,
                duration: Duration::ZERO,
            })
        })
        .collect();
    apply_controls(&mut results);
    results
}

/// `--strict`: a warning (a certificate close to expiry) is a failure. Applied to the results
/// themselves, before any report or the exit code is drawn from them, so they cannot disagree.
pub fn apply_strict(results: &mut [CheckResult]) {
    for r in results.iter_mut().filter(|r| r.status == Status::Warn) {
        r.status = Status::Fail;
        r.reason = format!("{} (a warning fails under --strict)", r.reason);
    }
}

/// A blocked check only counts when its control passed: otherwise a dead network would look like
/// a working policy.
pub fn apply_controls(results: &mut [CheckResult]) {
    let controls: Vec<(usize, Status)> = results
        .iter()
        .map(|r| {
            r.check
                .control
                .as_ref()
                .and_then(|c| results.iter().find(|o| &o.check.name == c))
                .map(|o| o.status)
                .unwrap_or(Status::Pass)
        })
        .enumerate()
        .collect();
    for (i, control_status) in controls {
        let r = &mut results[i];
        if r.check.expect == Expect::Blocked && r.status.passed() && !control_status.passed() {
            r.status = Status::Fail;
            r.reason = format!(
                "inconclusive: control '{}' failed too, so the network may simply be down ({})",
                r.check.control.as_deref().unwrap_or_default(),
                r.reason
            );
        }
    }
}
