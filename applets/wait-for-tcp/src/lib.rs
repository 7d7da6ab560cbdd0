//! `initbox wait-for-tcp`: wait until TCP ports accept connections (or, with `--invert`, until
//! they are closed), then optionally exec a command.
//!
//! Every attempt resolves the name again (no caching, negative answers included) and connects to
//! every IPv4 and IPv6 address at once; the first that accepts makes the target ready.

use std::ffi::OsString;
use std::sync::Arc;

use clap::Parser;
use initbox_probe::tcp::TcpProbe;
use initbox_runtime::resolve::{Resolver, ResolverArgs};
use initbox_runtime::target::{HostPort, parse_host_port};
use initbox_runtime::wait::{self, Probe, WaitArgs};
use initbox_runtime::{Applet, Failure, LogArgs, Outcome};

/// docker-compose-wait variables accepted as a drop-in, and the INITBOX_ variable each sets
/// (only when that one is not set itself).
pub const COMPOSE_WAIT_VARS: &[(&str, &str, &str)] = &[
    (
        "WAIT_HOSTS",
        initbox_runtime::env::TCP_TARGETS,
        "comma-separated HOST:PORT list",
    ),
    ("WAIT_TIMEOUT", initbox_runtime::env::TIMEOUT, "seconds"),
    (
        "WAIT_HOST_CONNECT_TIMEOUT",
        initbox_runtime::env::ATTEMPT_TIMEOUT,
        "seconds",
    ),
    (
        "WAIT_SLEEP_INTERVAL",
        initbox_runtime::env::INTERVAL,
        "seconds, also the max interval",
    ),
];

#[derive(Debug, Parser)]
#[command(
    name = "wait-for-tcp",
    version,
    about = "Wait until TCP ports accept connections, then exec a command",
    long_about = "Wait until every TCP target accepts a connection (--any: one of them), \
                  then exit 0 or exec the command given after `--` (same PID). \
                  A failed wait never runs the command.\n\n\
                  Every attempt resolves names again and tries all IPv4 and IPv6 addresses. \
                  docker-compose-wait's WAIT_HOSTS, WAIT_TIMEOUT, WAIT_HOST_CONNECT_TIMEOUT and \
                  WAIT_SLEEP_INTERVAL are accepted as a drop-in.",
    after_help = "Examples:\n  initbox wait-for-tcp db:5432 cache:6379 -- /app/server\n  \
                  initbox wait-for-tcp --invert --timeout 30s old-leader:8080\n  \
                  initbox wait-for-tcp --once localhost:8080   # HEALTHCHECK"
)]
pub struct Args {
    /// HOST:PORT, [IPv6]:PORT or tcp://HOST:PORT; several, or comma-separated.
    #[arg(value_name = "TARGET", value_parser = parse_target, value_delimiter = ',',
          env = initbox_runtime::env::TCP_TARGETS, required = true)]
    pub targets: Vec<HostPort>,

    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub resolver: ResolverArgs,

    #[command(flatten)]
    pub log: LogArgs,

    /// Command to exec once every target is ready (never after a failure).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

fn parse_target(s: &str) -> Result<HostPort, String> {
    parse_host_port(s, None)
}

impl Applet for Args {
    fn before_parse() {
        for (compat, ours, unit) in COMPOSE_WAIT_VARS {
            if std::env::var_os(ours).is_some() {
                continue;
            }
            let Ok(value) = std::env::var(compat) else {
                continue;
            };
            let value = if unit.starts_with("seconds") && !value.trim().is_empty() {
                format!("{}s", value.trim())
            } else {
                value
            };
            // SAFETY: called by the front before any other thread exists.
            unsafe {
                std::env::set_var(ours, &value);
                if *compat == "WAIT_SLEEP_INTERVAL"
                    && std::env::var_os(initbox_runtime::env::MAX_INTERVAL).is_none()
                {
                    std::env::set_var(initbox_runtime::env::MAX_INTERVAL, &value);
                }
            }
        }
    }

    fn logging(&self) -> &LogArgs {
        &self.log
    }

    async fn run(self) -> Result<Outcome, Failure> {
        if self.targets.is_empty() {
            return Err(Failure::usage(
                "no targets given (expected HOST:PORT arguments or INITBOX_TCP_TARGETS)",
            ));
        }
        let resolver = Arc::new(Resolver::new(&self.resolver, self.wait.attempt_timeout)?);
        let probes: Vec<Arc<dyn Probe>> = self
            .targets
            .into_iter()
            .map(|t| Arc::new(TcpProbe::new(t, Arc::clone(&resolver))) as Arc<dyn Probe>)
            .collect();
        wait::wait(probes, &self.wait, self.command).await
    }
}
