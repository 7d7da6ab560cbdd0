//! Name resolution, in two explicit modes:
//! - *system*: `/etc/resolv.conf` (name servers, search list, ndots) and `/etc/hosts`, which is
//!   what a pod's application sees;
//! - *server*: a direct query to one DNS server (`--server IP[:PORT]`), UDP with TCP fallback.
//!
//! Nothing is cached between attempts, negative answers included: a name that appears is seen on
//! the next attempt.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::{Hosts, TokioResolver};

use crate::exit::Failure;

pub use hickory_resolver::proto::rr::RecordType;

/// Where names are resolved.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Name resolution")]
pub struct ResolverArgs {
    /// Query this DNS server directly (IP or IP:PORT, UDP with TCP fallback) instead of the
    /// system resolver; no search list, no hosts file.
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_server, env = "INITBOX_DNS_SERVER")]
    pub server: Option<SocketAddr>,

    /// resolv.conf read in system mode (name servers, search, ndots).
    #[arg(
        long,
        value_name = "PATH",
        default_value = DEFAULT_RESOLV_CONF,
        env = "INITBOX_RESOLV_CONF"
    )]
    pub resolv_conf: PathBuf,

    /// Hosts file read in system mode.
    #[arg(
        long,
        value_name = "PATH",
        default_value = DEFAULT_HOSTS_FILE,
        env = "INITBOX_HOSTS_FILE"
    )]
    pub hosts_file: PathBuf,
}

impl Default for ResolverArgs {
    fn default() -> Self {
        ResolverArgs {
            server: None,
            resolv_conf: DEFAULT_RESOLV_CONF.into(),
            hosts_file: DEFAULT_HOSTS_FILE.into(),
        }
    }
}

const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";
const DEFAULT_HOSTS_FILE: &str = "/etc/hosts";

/// A resolver file that cannot be read: 4 when permission is refused, 3 otherwise (missing,
/// a directory, unreadable).
fn unreadable(flag: &str, path: &std::path::Path, e: &std::io::Error) -> Failure {
    let msg = format!("{flag} {}: {e}", path.display());
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        Failure::env_refused(msg)
    } else {
        Failure::invalid_input(msg)
    }
}

/// `IP` or `IP:PORT` or `[IPv6]:PORT`.
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    let hp = crate::target::parse_host_port(s, Some(53))?;
    match hp.host {
        crate::target::Host::Ip(ip) => Ok(SocketAddr::new(ip, hp.port)),
        crate::target::Host::Name(n) => Err(format!(
            "DNS server '{n}' must be an IP address (a name would need a resolver itself)"
        )),
    }
}

/// Parse resolv.conf as glibc reads it: with no `nameserver` line, the local machine's server
/// (127.0.0.1) is used (resolv.conf(5)).
fn parse_resolv_conf(data: &[u8]) -> Result<(ResolverConfig, ResolverOpts), NetError> {
    let has_nameserver = String::from_utf8_lossy(data)
        .lines()
        .any(|l| l.trim_start().starts_with("nameserver"));
    if has_nameserver {
        hickory_resolver::system_conf::parse_resolv_conf(data)
    } else {
        let mut with_default = data.to_vec();
        with_default.extend_from_slice(b"\nnameserver 127.0.0.1\n");
        hickory_resolver::system_conf::parse_resolv_conf(with_default)
    }
}

/// A resolver that re-asks on every lookup.
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
    mode: String,
}

impl Resolver {
    /// Build the resolver for `args`; `per_query` bounds one query to one server.
    pub fn new(args: &ResolverArgs, per_query: Duration) -> Result<Self, Failure> {
        let mut opts = ResolverOpts::default();
        let (config, hosts, mode) = match args.server {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                opts.use_hosts_file = ResolveHosts::Never;
                opts.ndots = 0;
                (
                    ResolverConfig::from_name_servers(vec![ns]),
                    Hosts::default(),
                    format!("server {addr}"),
                )
            }
            None => {
                let (config, sys_opts) = match std::fs::read(&args.resolv_conf) {
                    Ok(data) => parse_resolv_conf(&data).map_err(|e| {
                        Failure::invalid_input(format!(
                            "cannot use {}: {e}",
                            args.resolv_conf.display()
                        ))
                    })?,
                    // Only the default may be missing (images without one): a file the
                    // user named must exist.
                    Err(e)
                        if e.kind() == std::io::ErrorKind::NotFound
                            && args.resolv_conf.as_os_str() == DEFAULT_RESOLV_CONF =>
                    {
                        tracing::debug!(path = %args.resolv_conf.display(), "no resolv.conf: hosts file only");
                        (
                            ResolverConfig::from_name_servers(vec![]),
                            ResolverOpts::default(),
                        )
                    }
                    Err(e) => return Err(unreadable("--resolv-conf", &args.resolv_conf, &e)),
                };
                opts = sys_opts;
                opts.use_hosts_file = ResolveHosts::Always;
                let mut hosts = Hosts::default();
                match std::fs::File::open(&args.hosts_file) {
                    Ok(f) => {
                        let _ = hosts.read_hosts_conf(f);
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::NotFound
                            && args.hosts_file.as_os_str() == DEFAULT_HOSTS_FILE => {}
                    Err(e) => return Err(unreadable("--hosts-file", &args.hosts_file, &e)),
                }
                (
                    config,
                    hosts,
                    format!("system ({})", args.resolv_conf.display()),
                )
            }
        };
        opts.cache_size = 0;
        opts.timeout = per_query;
        opts.attempts = 1;
        opts.try_tcp_on_error = true;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.positive_max_ttl = Some(Duration::ZERO);
        opts.negative_max_ttl = Some(Duration::ZERO);
        let mut builder =
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        *builder.options_mut() = opts;
        let mut inner = builder
            .build()
            .map_err(|e| Failure::invalid_input(format!("cannot set up the resolver: {e}")))?;
        inner.set_hosts(Arc::new(hosts));
        Ok(Resolver { inner, mode })
    }

    /// `system (/etc/resolv.conf)` or `server 10.0.0.10:53`.
    pub fn mode(&self) -> &str {
        &self.mode
    }

    pub fn hickory(&self) -> &TokioResolver {
        &self.inner
    }

    /// Every IPv4 and IPv6 address of `host`.
    pub async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, Lookup> {
        self.inner.clear_cache();
        match self.inner.lookup_ip(host).await {
            Ok(found) => Ok(found.iter().collect()),
            Err(e) => Err(Lookup::from_error(&e)),
        }
    }
}

/// Why a lookup found nothing, told apart as the issue of DNS asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The name does not exist.
    NxDomain,
    /// The name exists but has no record of the asked type.
    NoData,
    /// The server failed (SERVFAIL).
    ServFail,
    /// The server refused the query.
    Refused,
    /// No answer in time.
    Timeout,
    /// Anything else (I/O error, no name servers).
    Other(String),
}

impl Lookup {
    pub fn from_error(e: &NetError) -> Lookup {
        match e {
            NetError::Dns(DnsError::NoRecordsFound(nr)) => match nr.response_code {
                ResponseCode::NXDomain => Lookup::NxDomain,
                ResponseCode::ServFail => Lookup::ServFail,
                ResponseCode::Refused => Lookup::Refused,
                ResponseCode::NoError => Lookup::NoData,
                other => Lookup::Other(format!("response code {other}")),
            },
            NetError::Dns(DnsError::ResponseCode(code)) => match *code {
                ResponseCode::NXDomain => Lookup::NxDomain,
                ResponseCode::ServFail => Lookup::ServFail,
                ResponseCode::Refused => Lookup::Refused,
                other => Lookup::Other(format!("response code {other}")),
            },
            NetError::Timeout => Lookup::Timeout,
            NetError::NoConnections => Lookup::Other("no name servers configured".into()),
            other => {
                let text = other.to_string();
                if text.contains("timed out") || text.contains("timeout") {
                    Lookup::Timeout
                } else {
                    Lookup::Other(text)
                }
            }
        }
    }

    /// The name is known not to exist (or to have no such record).
    pub fn is_absent(&self) -> bool {
        matches!(self, Lookup::NxDomain | Lookup::NoData)
    }
}

impl std::fmt::Display for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lookup::NxDomain => f.write_str("NXDOMAIN (name does not exist)"),
            Lookup::NoData => f.write_str("NODATA (no record of that type)"),
            Lookup::ServFail => f.write_str("SERVFAIL (server failure)"),
            Lookup::Refused => f.write_str("REFUSED (server refused the query)"),
            Lookup::Timeout => f.write_str("timeout (no answer from the DNS server)"),
            Lookup::Other(s) => f.write_str(s),
        }
    }
}
