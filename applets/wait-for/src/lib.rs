//! `initbox wait-for URL...`: protocol-level readiness. An open port is not a ready service:
//! each scheme asks the service itself (an HTTP status, `SELECT 1`, `PING`, an AMQP connection,
//! a CONNACK...), with the same timing, parallelism, `--any`, `--invert`, `--once`, progress and
//! `-- CMD` behaviour as `wait-for-tcp` (the runtime's wait engine).

pub mod http;

use std::ffi::OsString;
use std::sync::Arc;

use clap::Parser;
use initbox_runtime::resolve::{Resolver, ResolverArgs};
use initbox_runtime::target::parse_host_port;
use initbox_runtime::wait::{self, Probe, WaitArgs};
use initbox_runtime::{Applet, Failure, LogArgs, Outcome, redact};
use initbox_wait_for_tcp::TcpProbe;

/// The schemes `wait-for` understands, for messages and `--help`.
pub const SCHEMES: &str = "tcp, http, https";

#[derive(Debug, Parser)]
#[command(
    name = "wait-for",
    version,
    about = "Wait until services are ready at the protocol level, then exec a command",
    long_about = "Wait until every URL is ready (--any: one of them), asking each service in its \
                  own protocol, then exit 0 or exec the command given after `--` (same PID). \
                  A failed wait never runs the command.",
    after_help = "Examples:\n  \
                  initbox wait-for http://api:8080/healthz --json status=UP -- /app/server\n  \
                  initbox wait-for --once https://localhost:8443/ready   # HEALTHCHECK"
)]
pub struct Args {
    /// Targets: tcp://HOST:PORT, http(s)://...; `@PATH` reads a URL from a file.
    #[arg(
        value_name = "URL",
        env = "INITBOX_WAIT_FOR_TARGETS",
        value_delimiter = '\n'
    )]
    pub targets: Vec<String>,

    #[command(flatten)]
    pub http: http::HttpArgs,

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

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }

    async fn run(self) -> Result<Outcome, Failure> {
        self.wait.validate()?;
        let probes = build_probes(&self)?;
        wait::wait(probes, &self.wait, self.command).await
    }
}

/// What building the probes needs, made once and shared.
struct Shared {
    resolver: Arc<Resolver>,
    http: Option<(reqwest::Client, Arc<http::RequestSpec>, Arc<http::Expect>)>,
}

fn build_probes(args: &Args) -> Result<Vec<Arc<dyn Probe>>, Failure> {
    let targets: Vec<&str> = args
        .targets
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect();
    if targets.is_empty() {
        return Err(Failure::usage(format!(
            "no targets given (expected URL arguments or INITBOX_WAIT_FOR_TARGETS; schemes: {SCHEMES})"
        )));
    }
    let mut shared = Shared {
        resolver: Arc::new(Resolver::new(&args.resolver, args.wait.attempt_timeout)?),
        http: None,
    };
    let mut probes = Vec::with_capacity(targets.len());
    for raw in targets {
        probes.push(build_probe(raw, args, &mut shared)?);
    }
    Ok(probes)
}

fn build_probe(raw: &str, args: &Args, shared: &mut Shared) -> Result<Arc<dyn Probe>, Failure> {
    let url = raw.to_string();
    let shown = redact::url_for_display(&url);
    let Some((scheme, _rest)) = url.split_once("://") else {
        return Err(Failure::usage(format!(
            "'{shown}': not a URL (expected SCHEME://...; schemes: {SCHEMES})"
        )));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "tcp" => {
            let hp = parse_host_port(&url, None).map_err(Failure::usage)?;
            Ok(Arc::new(TcpProbe::new(hp, Arc::clone(&shared.resolver))))
        }
        "http" | "https" => {
            let (client, request, expect) = match &shared.http {
                Some(h) => h.clone(),
                None => {
                    let h = (
                        args.http.client(args.wait.attempt_timeout)?,
                        Arc::new(args.http.request()?),
                        Arc::new(args.http.expect()),
                    );
                    shared.http = Some(h.clone());
                    h
                }
            };
            Ok(Arc::new(http::HttpProbe::new(
                &url, client, request, expect,
            )?))
        }
        other => Err(Failure::usage(format!(
            "'{shown}': unknown scheme '{other}://' (schemes: {SCHEMES})"
        ))),
    }
}
