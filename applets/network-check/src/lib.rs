//! `initbox network-check`: verify a pod's network before the app starts: DNS, TCP, HTTP(S),
//! TLS expiry, ICMP, UDP request/response, and that a NetworkPolicy blocks what it should.
//!
//! Checks run in parallel, each with its own timeout and retries, so a run takes about as long as
//! its slowest check. Probing is shared with the wait applets: names resolve through
//! `initbox_runtime::resolve`, TCP connects through `initbox_probe::tcp::TcpProbe`.

pub mod goss;
pub mod http;
pub mod icmp;
pub mod local;
pub mod net;
pub mod probe;
pub mod report;
pub mod run;
pub mod spec;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use initbox_runtime::duration::{self, human};
use initbox_runtime::resolve::ResolverArgs;
use initbox_runtime::tls::TlsArgs;
use initbox_runtime::{Applet, Code, Failure, LogArgs, Outcome, redact};
use tokio::time::Instant;

use crate::probe::Status;
use crate::report::Format;
use crate::run::CheckResult;
use crate::spec::{Check, Defaults, Kind, RawCheck};

#[derive(Debug, Parser)]
#[command(
    name = "network-check",
    version,
    about = "Check the network before the app starts: DNS, TCP, HTTP(S), TLS expiry, ICMP, UDP, expected blocks",
    long_about = "Run network checks in parallel and report each one: dns:NAME, tcp:HOST:PORT, \
                  http(s)://URL, tls:HOST[:PORT], icmp:HOST, udp:HOST:PORT, given as arguments or \
                  in a YAML spec file (-f). Per-check options follow the check after commas, e.g. \
                  tcp:1.1.1.1:443,expect=blocked,control=db,timeout=2s.\n\n\
                  Exit codes: 0 all passed (warnings allowed unless --strict), 1 a check failed, \
                  2 usage error, 3 invalid spec file or CA file, 4 the environment forbids a check \
                  (e.g. ICMP not permitted). The failure summary also goes to the termination log.",
    after_help = "Examples:\n  initbox network-check dns:kubernetes.default.svc tcp:db:5432 https://api/healthz\n  \
                  initbox network-check tls:api.example.com:443 --warn-days 21 --fail-days 7\n  \
                  initbox network-check 'tcp:db:5432,name=db' 'tcp:1.1.1.1:443,expect=blocked,control=db'\n  \
                  initbox network-check -f /etc/netcheck/checks.yaml --output junit > report.xml\n  \
                  initbox network-check --watch 30s dns:db tcp:db:5432   # native sidecar"
)]
pub struct Args {
    /// Checks: dns:NAME, tcp:HOST:PORT, tls:HOST[:PORT], icmp:HOST, udp:HOST:PORT, http(s)://URL,
    /// each optionally followed by ,key=value options; white space separates checks (a
    /// header= value may hold spaces: header=Authorization:Bearer TOKEN).
    #[arg(value_name = "CHECK", env = initbox_runtime::env::CHECKS)]
    pub checks: Vec<String>,

    /// YAML spec file with `defaults` and `checks` (see the README for the keys).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "PATH",
        env = initbox_runtime::env::CHECKS_FILE
    )]
    pub file: Option<PathBuf>,

    /// Bound on one attempt (of a check: resolve, connect, handshake, request).
    #[arg(long = "attempt-timeout", value_name = "DURATION", default_value = "5s",
          value_parser = duration::parse, env = initbox_runtime::env::ATTEMPT_TIMEOUT)]
    pub timeout: Duration,

    /// Extra attempts for a failing check.
    #[arg(long, value_name = "N", default_value_t = 0, env = initbox_runtime::env::RETRIES)]
    pub retries: u32,

    /// First delay before retrying a failing check (doubling).
    #[arg(long, value_name = "DURATION", default_value = "500ms",
          value_parser = duration::parse, env = initbox_runtime::env::RETRY_DELAY)]
    pub retry_delay: Duration,

    /// Most checks running at the same time.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 64,
        env = initbox_runtime::env::CONCURRENCY
    )]
    pub concurrency: usize,

    /// TLS: warn when a certificate of the chain expires within this many days.
    #[arg(
        long,
        value_name = "DAYS",
        default_value_t = 30,
        env = initbox_runtime::env::WARN_DAYS
    )]
    pub warn_days: u32,

    /// TLS: fail when a certificate of the chain expires within this many days.
    #[arg(
        long,
        value_name = "DAYS",
        default_value_t = 7,
        env = initbox_runtime::env::FAIL_DAYS
    )]
    pub fail_days: u32,

    /// ICMP: echo requests per check.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        env = initbox_runtime::env::ICMP_COUNT
    )]
    pub count: u32,

    /// ICMP: delay between echo requests.
    #[arg(long = "icmp-interval", value_name = "DURATION", default_value = "200ms",
          value_parser = duration::parse, env = initbox_runtime::env::ICMP_INTERVAL)]
    pub interval: Duration,

    /// ICMP: largest acceptable loss (0% = every echo must come back).
    #[arg(long, value_name = "PERCENT", default_value = "0%",
          value_parser = spec::parse_loss, env = initbox_runtime::env::ICMP_MAX_LOSS)]
    pub max_loss: f64,

    /// Report format on stdout.
    #[arg(short = 'o', long, value_enum, default_value_t, env = initbox_runtime::env::OUTPUT)]
    pub output: Format,

    /// JUnit suite name (test classes are SUITE.TYPE, test names the check names).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "network-check",
        env = initbox_runtime::env::JUNIT_SUITE
    )]
    pub suite: String,

    /// Treat warnings (certificate close to expiry) as failures.
    #[arg(long, env = initbox_runtime::env::STRICT, value_parser = clap::builder::BoolishValueParser::new())]
    pub strict: bool,

    /// Keep checking every INTERVAL and log every change (for a native sidecar); never exits on
    /// its own.
    #[arg(long, value_name = "INTERVAL", value_parser = duration::parse, env = initbox_runtime::env::WATCH)]
    pub watch: Option<Duration>,

    /// Print the checks of the goss file given with -f as an initbox spec file, and exit.
    #[arg(long, requires = "file", env = initbox_runtime::env::PRINT_SPEC)]
    pub print_spec: bool,

    #[command(flatten)]
    pub resolver: ResolverArgs,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

impl Args {
    fn defaults(&self) -> Defaults {
        Defaults {
            timeout: self.timeout,
            retries: self.retries,
            retry_delay: self.retry_delay,
            warn_days: self.warn_days,
            fail_days: self.fail_days,
            count: self.count,
            interval: self.interval,
            max_loss: self.max_loss,
            server: self.resolver.server,
            ca_file: None,
        }
    }

    /// Every check, validated: command-line problems are usage errors (2), spec problems invalid
    /// input (3).
    pub fn checks(&self) -> Result<Vec<Check>, Failure> {
        if self.timeout.is_zero() {
            return Err(Failure::usage("--timeout must be more than 0"));
        }
        if self.fail_days > self.warn_days {
            return Err(Failure::usage(format!(
                "--fail-days ({}) is larger than --warn-days ({})",
                self.fail_days, self.warn_days
            )));
        }
        if self.watch.is_some_and(|w| w.is_zero()) {
            return Err(Failure::usage("--watch interval must be more than 0"));
        }
        let d = self.defaults();
        let mut checks = Vec::new();
        if let Some(f) = &self.file {
            checks = spec::read_spec(f, &d).map_err(Failure::invalid_input)?;
        }
        // Checks are separated by white space, in arguments and in INITBOX_CHECKS alike, except
        // inside a header value; a message shows the check with its header values masked.
        for arg in self.checks.iter().flat_map(|a| spec::split_checks(a)) {
            let c = RawCheck::from_arg(arg)
                .and_then(|raw| raw.into_check(&d))
                .map_err(|e| Failure::usage(format!("check '{}': {e}", spec::shown_arg(arg))))?;
            checks.push(c);
        }
        if checks.is_empty() {
            return Err(Failure::usage(
                "no checks given (expected CHECK arguments, INITBOX_CHECKS or -f FILE)",
            ));
        }
        spec::validate_set(&checks).map_err(|e| match &self.file {
            Some(f) => Failure::invalid_input(format!("spec {}: {e}", f.display())),
            None => Failure::usage(e),
        })?;
        Ok(checks)
    }
}

/// `--print-spec`: the goss file's checks, converted and validated, as an initbox spec.
fn print_spec(args: &Args) -> Result<Outcome, Failure> {
    let Some(path) = &args.file else {
        return Err(Failure::usage("--print-spec needs -f GOSS_FILE"));
    };
    let shown = path.display().to_string();
    let text = initbox_runtime::input::read_string(path, &format!("spec {shown}"))?;
    let Some(raws) = spec::goss_checks(&text, &shown).map_err(Failure::invalid_input)? else {
        return Err(Failure::usage(format!(
            "--print-spec: {shown} is not a goss file (it is already an initbox spec)"
        )));
    };
    let d = args.defaults();
    for raw in &raws {
        raw.clone()
            .into_check(&d)
            .map_err(|e| Failure::invalid_input(format!("goss file {shown}: {e}")))?;
    }
    print(&goss::spec_yaml(&raws));
    Ok(Outcome::Exit(Code::OK))
}

fn context(args: &Args, checks: &[Check]) -> Result<net::Ctx, Failure> {
    let servers = checks.iter().filter_map(|c| match &c.kind {
        Kind::Dns(d) => d.server,
        _ => None,
    });
    let mut cas: Vec<Option<PathBuf>> = checks
        .iter()
        .filter_map(|c| match &c.kind {
            Kind::Tls(t) => Some(t.ca_file.clone()),
            Kind::Http(h) if h.url.starts_with("https") => Some(h.ca_file.clone()),
            _ => None,
        })
        .collect();
    cas.dedup();
    let per_query = checks
        .iter()
        .map(|c| c.timeout)
        .max()
        .unwrap_or(args.timeout);
    net::Ctx::new(&args.resolver, &args.tls, per_query, servers, cas)
}

/// The run's exit: failures first (the network is wrong), then checks the environment refused.
/// Drawn from the same statuses the reports show (`--strict` already applied to them), so the
/// exit code and every report always agree.
fn verdict(results: &[CheckResult], wall: Duration) -> Result<Outcome, Failure> {
    let failed = results.iter().any(|r| r.status == Status::Fail);
    let refused = results.iter().any(|r| r.status == Status::Error);
    let line = report::failure_line(results, wall, 1024);
    if failed {
        Err(Failure::failed(line))
    } else if refused {
        Err(Failure::env_refused(line))
    } else {
        tracing::info!("{}", report::summary(results, wall));
        Ok(Outcome::Exit(Code::OK))
    }
}

/// Reports go to stdout through the scrubber, as every log line goes to stderr: a check name or
/// a detail that holds a registered secret (a URL's password) shows `[REDACTED]`.
fn print(out: &str) {
    let out = redact::scrub(out);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

async fn watch(
    args: &Args,
    checks: &[Check],
    ctx: Arc<net::Ctx>,
    every: Duration,
) -> Result<Outcome, Failure> {
    let mut last: HashMap<String, (Status, String)> = HashMap::new();
    let mut round = 0u64;
    loop {
        round += 1;
        let started = Instant::now();
        let mut results = run::run_all(checks, Arc::clone(&ctx), args.concurrency).await;
        if args.strict {
            run::apply_strict(&mut results);
        }
        let mut changed = false;
        for r in &results {
            let now = (r.status, r.observation.observed.as_str().to_string());
            let before = last.insert(r.check.name.clone(), now.clone());
            if before.as_ref() == Some(&now) {
                continue;
            }
            changed = true;
            let from = before
                .map(|b| b.0.as_str().to_string())
                .unwrap_or_else(|| "new".into());
            if r.status.passed() {
                tracing::info!(check = %r.check.name, from = %from, status = %r.status.as_str(), "{}", r.reason);
            } else {
                tracing::warn!(check = %r.check.name, from = %from, status = %r.status.as_str(), "{}", r.reason);
            }
        }
        if changed {
            let wall = started.elapsed();
            if round > 1 || args.output != Format::Human {
                print(&report::render(args.output, &results, &args.suite, wall));
            } else {
                print(&report::render(Format::Human, &results, &args.suite, wall));
            }
            tracing::info!(round, "{}", report::summary(&results, wall));
        }
        tokio::time::sleep(every).await;
    }
}

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }

    async fn run(self) -> Result<Outcome, Failure> {
        if self.print_spec {
            return print_spec(&self);
        }
        let checks = self.checks()?;
        let ctx = Arc::new(context(&self, &checks)?);
        if let Some(every) = self.watch {
            tracing::info!(
                checks = checks.len(),
                interval = %human(every),
                "watching: logging every change"
            );
            return watch(&self, &checks, ctx, every).await;
        }
        let started = Instant::now();
        let mut results = run::run_all(&checks, ctx, self.concurrency).await;
        if self.strict {
            run::apply_strict(&mut results);
        }
        let wall = started.elapsed();
        print(&report::render(self.output, &results, &self.suite, wall));
        verdict(&results, wall)
    }
}
