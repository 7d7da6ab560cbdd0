//! `initbox wait-for-dns`: wait until DNS names resolve (or, with `--absent`, until they no longer
//! do), in one of two explicit modes:
//!
//! - *system* (default): `/etc/resolv.conf` with its search list and ndots, and `/etc/hosts`:
//!   what the pod's application will see when it resolves the same name;
//! - *server* (`--server IP[:PORT]`): a direct query to one server, UDP with TCP fallback, no search
//!   list, no hosts file: what that server answers.
//!
//! Every attempt asks again (nothing cached, negative answers included). NXDOMAIN, NODATA,
//! SERVFAIL and timeouts are told apart in progress lines; only NXDOMAIN/NODATA count as absent.
//! The probe itself is `initbox_probe::dns`.

use std::ffi::OsString;
use std::sync::Arc;

use clap::Parser;
use initbox_probe::dns::{DnsProbe, DnsQuery, QueryType, parse_name};
use initbox_runtime::resolve::{Resolver, ResolverArgs};
use initbox_runtime::wait::{self, Probe, WaitArgs};
use initbox_runtime::{Applet, Failure, LogArgs, Outcome};

#[derive(Debug, Parser)]
#[command(
    name = "wait-for-dns",
    version,
    about = "Wait until DNS names resolve (or stop resolving), then exec a command",
    long_about = "Wait until every NAME resolves (--any: one of them), then exit 0 or exec the \
                  command given after `--`. A failed wait never runs the command.\n\n\
                  System mode (default) reads resolv.conf (search list, ndots) and the hosts file, \
                  as the application will. --server queries one DNS server directly. Nothing is \
                  cached between attempts. NXDOMAIN, NODATA, SERVFAIL and timeouts are reported \
                  apart; only NXDOMAIN/NODATA count as absent.",
    after_help = "Values shown and matched by --expect: A/AAAA an IP, CNAME/MX a name, \
                  SRV TARGET:PORT, TXT the joined strings.\n\n\
                  Examples:\n  initbox wait-for-dns db.prod.svc.cluster.local\n  \
                  initbox wait-for-dns --min-count 3 web-headless   # all 3 pods of a headless Service\n  \
                  initbox wait-for-dns --server 10.96.0.10 --type srv _http._tcp.web\n  \
                  initbox wait-for-dns --absent old-service"
)]
pub struct Args {
    /// DNS names to wait for.
    #[arg(value_name = "NAME", required = true, value_delimiter = ',', value_parser = parse_name,
          env = initbox_runtime::env::DNS_NAMES)]
    pub names: Vec<String>,

    /// Record type to look up.
    #[arg(long = "type", value_enum, default_value_t, env = initbox_runtime::env::DNS_TYPE)]
    pub record_type: QueryType,

    /// Ready only when at least N distinct values are returned.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        env = initbox_runtime::env::DNS_MIN_COUNT
    )]
    pub min_count: usize,

    /// Ready only when this value is among the answers (repeatable: all must be present).
    #[arg(
        long,
        value_name = "VALUE",
        env = initbox_runtime::env::DNS_EXPECT,
        value_delimiter = ','
    )]
    pub expect: Vec<String>,

    /// Wait until the name no longer resolves (NXDOMAIN or NODATA); --invert means the same.
    #[arg(long, env = initbox_runtime::env::DNS_ABSENT, value_parser = clap::builder::BoolishValueParser::new())]
    pub absent: bool,

    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub resolver: ResolverArgs,

    #[command(flatten)]
    pub log: LogArgs,

    /// Command to exec once every name is ready (never after a failure).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }

    async fn run(self) -> Result<Outcome, Failure> {
        if self.min_count == 0 {
            return Err(Failure::usage("--min-count must be at least 1"));
        }
        let resolver = Arc::new(Resolver::new(&self.resolver, self.wait.attempt_timeout)?);
        tracing::debug!(mode = resolver.mode(), "resolver");
        let mut wait_args = self.wait.clone();
        let absent = self.absent || wait_args.invert;
        // Absence is the probe's own condition: a SERVFAIL is not "gone".
        wait_args.invert = false;
        let probes: Vec<Arc<dyn Probe>> = self
            .names
            .into_iter()
            .map(|name| {
                Arc::new(DnsProbe {
                    query: DnsQuery {
                        name,
                        kind: self.record_type,
                        min_count: self.min_count,
                        expect: self.expect.clone(),
                        absent,
                    },
                    resolver: Arc::clone(&resolver),
                }) as Arc<dyn Probe>
            })
            .collect();
        wait::wait(probes, &wait_args, self.command).await
    }
}
