//! `initbox wait-for-tcp`: wait until TCP ports accept connections (or, with `--invert`, until
//! they are closed), then optionally exec a command.
//!
//! Every attempt resolves the name again (no caching, negative answers included) and connects to
//! every IPv4 and IPv6 address at once; the first that accepts makes the target ready.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use clap::Parser;
use initbox_runtime::resolve::{Resolver, ResolverArgs};
use initbox_runtime::target::{Host, HostPort, parse_host_port};
use initbox_runtime::wait::{self, NotReady, Probe, ProbeFuture, WaitArgs};
use initbox_runtime::{Applet, Failure, LogArgs, Outcome};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// docker-compose-wait variables accepted as a drop-in, and the INITBOX_ variable each sets
/// (only when that one is not set itself).
pub const COMPOSE_WAIT_VARS: &[(&str, &str, &str)] = &[
    (
        "WAIT_HOSTS",
        "INITBOX_TCP_TARGETS",
        "comma-separated HOST:PORT list",
    ),
    ("WAIT_TIMEOUT", "INITBOX_TIMEOUT", "seconds"),
    (
        "WAIT_HOST_CONNECT_TIMEOUT",
        "INITBOX_ATTEMPT_TIMEOUT",
        "seconds",
    ),
    (
        "WAIT_SLEEP_INTERVAL",
        "INITBOX_INTERVAL",
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
          env = "INITBOX_TCP_TARGETS", required = true)]
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
                    && std::env::var_os("INITBOX_MAX_INTERVAL").is_none()
                {
                    std::env::set_var("INITBOX_MAX_INTERVAL", &value);
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

/// A TCP connect probe, shared with `wait-for` (`tcp://`) and `network-check` (`tcp:`).
pub struct TcpProbe {
    target: HostPort,
    resolver: Arc<Resolver>,
}

impl TcpProbe {
    pub fn new(target: HostPort, resolver: Arc<Resolver>) -> Self {
        TcpProbe { target, resolver }
    }

    /// The addresses of the target, resolved now.
    pub async fn addresses(&self) -> Result<Vec<SocketAddr>, NotReady> {
        let ips: Vec<IpAddr> = match &self.target.host {
            Host::Ip(ip) => vec![*ip],
            Host::Name(name) => self
                .resolver
                .lookup_ip(name)
                .await
                .map_err(|e| NotReady::retry(format!("lookup {name}: {e}")))?,
        };
        if ips.is_empty() {
            return Err(NotReady::retry(format!(
                "{} has no addresses",
                self.target.host
            )));
        }
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, self.target.port))
            .collect())
    }

    /// Connect to every address at once; the first to accept wins. On failure, what each
    /// address answered, as `io::Error`s (network-check tells refused from unreachable with them).
    pub async fn try_connect(&self) -> Result<(SocketAddr, TcpStream), TcpFailure> {
        let addrs = self.addresses().await.map_err(TcpFailure::Lookup)?;
        let mut set = JoinSet::new();
        for addr in addrs {
            set.spawn(async move { (addr, TcpStream::connect(addr).await) });
        }
        let mut errors = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((addr, Ok(stream))) => return Ok((addr, stream)),
                Ok((addr, Err(e))) => errors.push((addr, e)),
                Err(e) => errors.push((
                    SocketAddr::from(([0, 0, 0, 0], 0)),
                    std::io::Error::other(e.to_string()),
                )),
            }
        }
        errors.sort_by_key(|(a, _)| *a);
        Err(TcpFailure::Connect(errors))
    }

    /// [`TcpProbe::try_connect`], with the failure as a progress-line reason.
    pub async fn connect(&self) -> Result<(SocketAddr, TcpStream), NotReady> {
        self.try_connect().await.map_err(|f| match f {
            TcpFailure::Lookup(not_ready) => not_ready,
            TcpFailure::Connect(errors) => {
                // An IP target has one address, already named by the target itself.
                if let (Host::Ip(_), [(_, only)]) = (&self.target.host, errors.as_slice()) {
                    return NotReady::Retry(describe(only));
                }
                NotReady::Retry(
                    errors
                        .iter()
                        .map(|(a, e)| format!("{a}: {}", describe(e)))
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            }
        })
    }
}

/// Why a TCP connection could not be made.
#[derive(Debug)]
pub enum TcpFailure {
    /// The name did not resolve (the reason tells NXDOMAIN, SERVFAIL and timeouts apart).
    Lookup(NotReady),
    /// Every address failed; what each one answered.
    Connect(Vec<(SocketAddr, std::io::Error)>),
}

fn describe(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused | ConnectionReset | TimedOut | HostUnreachable | NetworkUnreachable
        | AddrNotAvailable | PermissionDenied => e.kind().to_string(),
        _ => e.to_string(),
    }
}

impl Probe for TcpProbe {
    fn target(&self) -> String {
        self.target.to_string()
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let (addr, _stream) = self.connect().await?;
            Ok(format!("connected to {addr}"))
        })
    }
}
