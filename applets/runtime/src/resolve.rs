//! Name resolution, in two explicit modes:
//! - *system*: `/etc/resolv.conf` (name servers, search list, ndots) and `/etc/hosts`, which is
//!   what a pod's application sees;
//! - *server*: a direct query to one DNS server (`--server IP[:PORT]`), UDP with TCP fallback.
//!
//! Nothing is cached between attempts, negative answers included: a name that appears is seen on
//! the next attempt.
//!
//! In system mode the name is expanded as glibc's `getaddrinfo` does (`res_search` in
//! res_query.c, `res_init.c`): the hosts file first, then the name as given when it has at least
//! `ndots` dots, then each search domain, then the name as given if not tried yet. NXDOMAIN and
//! NODATA move on to the next candidate and so does SERVFAIL; REFUSED, a timeout or any other
//! failure ends the walk (the name as given is still tried); a refused connection ends the lookup.
//! Of `search` and `domain` lines the last one wins. hickory only sends the single queries.
//!
//! UDP sockets are connected to the server, as glibc's are, so an ICMP port-unreachable ends a
//! query at once with "connection refused" instead of waiting for the attempt timeout.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use hickory_resolver::Hosts;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::{DnsUdpSocket, RuntimeProvider, TokioRuntimeProvider};
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::{Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData};

use crate::exit::Failure;

pub use hickory_resolver::proto::rr::RecordType;

/// Where names are resolved.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Name resolution")]
pub struct ResolverArgs {
    /// Query this DNS server directly (IP or IP:PORT, UDP with TCP fallback) instead of the
    /// system resolver; no search list, no hosts file.
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_server, env = crate::env::DNS_SERVER)]
    pub server: Option<SocketAddr>,

    /// resolv.conf read in system mode (name servers, search, ndots).
    #[arg(
        long,
        value_name = "PATH",
        default_value = DEFAULT_RESOLV_CONF,
        env = crate::env::RESOLV_CONF
    )]
    pub resolv_conf: PathBuf,

    /// Hosts file read in system mode.
    #[arg(
        long,
        value_name = "PATH",
        default_value = DEFAULT_HOSTS_FILE,
        env = crate::env::HOSTS_FILE
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

/// Parse resolv.conf's name servers and options: with no `nameserver` line, the local machine's
/// server (127.0.0.1) is used (resolv.conf(5)). The search rules come from [`SearchRules::parse`].
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

/// The largest `ndots` glibc accepts (RES_MAXNDOTS).
const MAX_NDOTS: usize = 15;

/// How a name is expanded into candidates, read from resolv.conf as glibc's res_init.c does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRules {
    /// The search list: of the `search` and `domain` lines, the last one wins.
    pub domains: Vec<String>,
    /// `options ndots:N` (default 1, at most 15).
    pub ndots: usize,
    /// `options no-tld-query`: a name without dots is never tried as given.
    pub no_tld_query: bool,
}

impl Default for SearchRules {
    fn default() -> Self {
        SearchRules {
            domains: Vec::new(),
            ndots: 1,
            no_tld_query: false,
        }
    }
}

impl SearchRules {
    /// No search list: the name is asked as given (server mode).
    pub fn none() -> Self {
        SearchRules {
            ndots: 0,
            ..SearchRules::default()
        }
    }

    /// Read the search rules of a resolv.conf text. A keyword counts only at the start of a line
    /// and followed by a blank, as in glibc; with neither `search` nor `domain`, the domain of
    /// `hostname` (after its first dot) is the search list.
    pub fn parse(text: &str, hostname: Option<&str>) -> Self {
        let mut rules = SearchRules::default();
        let mut have_search = false;
        for line in text.lines() {
            let Some((keyword, value)) = line.split_once([' ', '\t']) else {
                continue;
            };
            let mut words = value.split_whitespace().peekable();
            match keyword {
                "domain" | "search" if words.peek().is_some() => {
                    have_search = true;
                    rules.domains = if keyword == "domain" {
                        words.take(1).map(str::to_string).collect()
                    } else {
                        words.map(str::to_string).collect()
                    };
                }
                "options" => {
                    for opt in words {
                        if let Some(n) = opt.strip_prefix("ndots:") {
                            if let Ok(n) = n.parse::<usize>() {
                                rules.ndots = n.min(MAX_NDOTS);
                            }
                        } else if opt == "no-tld-query" {
                            rules.no_tld_query = true;
                        }
                    }
                }
                _ => {}
            }
        }
        if !have_search
            && let Some((_, domain)) = hostname.and_then(|h| h.trim().split_once('.'))
            && !domain.is_empty()
        {
            rules.domains = vec![domain.to_string()];
        }
        rules
    }
}

/// The default tokio runtime, except that UDP sockets are connected to their server, as glibc's
/// are: the kernel then reports an ICMP port-unreachable as "connection refused" on the next
/// receive, so a query to a port where nothing listens fails at once. The server that refused
/// (ICMP or TCP reset) is noted, because hickory's pool then reports only "no connections".
#[derive(Clone, Default)]
pub struct ConnectedUdp {
    tokio: TokioRuntimeProvider,
    refused: Refused,
}

/// The last server that refused a connection during one lookup.
type Refused = Arc<std::sync::Mutex<Option<SocketAddr>>>;

fn note_refused(refused: &Refused, server: SocketAddr, e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        *refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(server);
    }
}

type IoFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<T>> + Send + 'a>>;

impl RuntimeProvider for ConnectedUdp {
    type Handle = <TokioRuntimeProvider as RuntimeProvider>::Handle;
    type Timer = <TokioRuntimeProvider as RuntimeProvider>::Timer;
    type Udp = ConnectedUdpSocket;
    type Tcp = <TokioRuntimeProvider as RuntimeProvider>::Tcp;

    fn create_handle(&self) -> Self::Handle {
        self.tokio.create_handle()
    }

    fn connect_tcp(
        &self,
        server_addr: SocketAddr,
        bind_addr: Option<SocketAddr>,
        timeout: Option<Duration>,
    ) -> IoFuture<'static, Self::Tcp> {
        let connect = self.tokio.connect_tcp(server_addr, bind_addr, timeout);
        let refused = Arc::clone(&self.refused);
        Box::pin(async move {
            let r = connect.await;
            if let Err(e) = &r {
                note_refused(&refused, server_addr, e);
            }
            r
        })
    }

    fn bind_udp(
        &self,
        local_addr: SocketAddr,
        server_addr: SocketAddr,
    ) -> IoFuture<'static, Self::Udp> {
        let refused = Arc::clone(&self.refused);
        Box::pin(async move {
            let socket = tokio::net::UdpSocket::bind(local_addr).await?;
            socket.connect(server_addr).await?;
            Ok(ConnectedUdpSocket {
                socket,
                server: server_addr,
                refused,
            })
        })
    }
}

/// A UDP socket connected to its DNS server whose receive also wakes on a socket error: tokio
/// wakes a plain receive on data only, so an ICMP error would wait for the attempt timeout.
pub struct ConnectedUdpSocket {
    socket: tokio::net::UdpSocket,
    server: SocketAddr,
    refused: Refused,
}

impl ConnectedUdpSocket {
    /// Wait for a datagram or a socket error, whichever comes first.
    async fn receive(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        use tokio::io::Interest;
        loop {
            let ready = self
                .socket
                .ready(Interest::READABLE | Interest::ERROR)
                .await?;
            if ready.is_error() {
                if let Some(e) = self.socket.take_error()? {
                    return Err(e);
                }
                // Taken already: clear the readiness so the loop waits again.
                let _ = self.socket.try_io(Interest::ERROR, || {
                    Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                });
            }
            match self.socket.try_recv_from(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    tokio::task::yield_now().await;
                }
                other => return other,
            }
        }
    }
}

impl DnsUdpSocket for ConnectedUdpSocket {
    type Time = <tokio::net::UdpSocket as DnsUdpSocket>::Time;

    fn poll_recv_from(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<(usize, SocketAddr)>> {
        if let Ok(Some(e)) = self.socket.take_error() {
            note_refused(&self.refused, self.server, &e);
            return std::task::Poll::Ready(Err(e));
        }
        DnsUdpSocket::poll_recv_from(&self.socket, cx, buf)
    }

    fn recv_from<'a, 'b, 'f>(&'a self, buf: &'b mut [u8]) -> IoFuture<'f, (usize, SocketAddr)>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            let r = self.receive(buf).await;
            if let Err(e) = &r {
                note_refused(&self.refused, self.server, e);
            }
            r
        })
    }

    fn poll_send_to(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> std::task::Poll<std::io::Result<usize>> {
        DnsUdpSocket::poll_send_to(&self.socket, cx, buf, target)
    }
}

/// A resolver that re-asks on every lookup.
#[derive(Clone)]
pub struct Resolver {
    config: ResolverConfig,
    opts: ResolverOpts,
    hosts: Arc<Hosts>,
    rules: SearchRules,
    mode: String,
}

/// One lookup's hickory resolver and the server that refused a connection, if one did.
struct Client {
    inner: hickory_resolver::Resolver<ConnectedUdp>,
    refused: Refused,
}

/// What one candidate name answered.
enum Answer {
    Found(Vec<RData>),
    Failed(Lookup),
}

impl Resolver {
    /// Build the resolver for `args`; `per_query` bounds one query to one server.
    pub fn new(args: &ResolverArgs, per_query: Duration) -> Result<Self, Failure> {
        let (config, mut opts, hosts, rules, mode) = match args.server {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                (
                    ResolverConfig::from_name_servers(vec![ns]),
                    ResolverOpts::default(),
                    Hosts::default(),
                    SearchRules::none(),
                    format!("server {addr}"),
                )
            }
            None => {
                let (config, opts, rules) = match std::fs::read(&args.resolv_conf) {
                    Ok(data) => {
                        let (config, opts) = parse_resolv_conf(&data).map_err(|e| {
                            Failure::invalid_input(format!(
                                "cannot use {}: {e}",
                                args.resolv_conf.display()
                            ))
                        })?;
                        let rules = SearchRules::parse(
                            &String::from_utf8_lossy(&data),
                            crate::host::name().as_deref(),
                        );
                        (config, opts, rules)
                    }
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
                            SearchRules::parse("", crate::host::name().as_deref()),
                        )
                    }
                    Err(e) => return Err(unreadable("--resolv-conf", &args.resolv_conf, &e)),
                };
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
                // The search list is walked here, not by hickory: it gets fully qualified names.
                let (_, _, servers) = config.into_parts();
                (
                    ResolverConfig::from_name_servers(servers),
                    opts,
                    hosts,
                    rules,
                    format!("system ({})", args.resolv_conf.display()),
                )
            }
        };
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = 0;
        opts.cache_size = 0;
        opts.timeout = per_query;
        opts.attempts = 1;
        opts.try_tcp_on_error = true;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.positive_max_ttl = Some(Duration::ZERO);
        opts.negative_max_ttl = Some(Duration::ZERO);
        let resolver = Resolver {
            config,
            opts,
            hosts: Arc::new(hosts),
            rules,
            mode,
        };
        resolver
            .client()
            .map_err(|e| Failure::invalid_input(format!("cannot set up the resolver: {e}")))?;
        Ok(resolver)
    }

    /// A fresh hickory client per lookup: no cache and no server state (a server marked failed
    /// by one attempt) carries over to the next attempt.
    fn client(&self) -> Result<Client, NetError> {
        let provider = ConnectedUdp::default();
        let refused = Arc::clone(&provider.refused);
        let mut builder =
            hickory_resolver::Resolver::builder_with_config(self.config.clone(), provider);
        *builder.options_mut() = self.opts.clone();
        Ok(Client {
            inner: builder.build()?,
            refused,
        })
    }
    /// `system (/etc/resolv.conf)` or `server 10.0.0.10:53`.
    pub fn mode(&self) -> &str {
        &self.mode
    }

    /// The search rules in use (empty search list in server mode).
    pub fn search_rules(&self) -> &SearchRules {
        &self.rules
    }

    /// Every IPv4 and IPv6 address of `host`.
    pub async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, Lookup> {
        let found = self
            .lookup_types(host, &[RecordType::A, RecordType::AAAA])
            .await?;
        Ok(found.iter().filter_map(RData::ip_addr).collect())
    }

    /// The records of type `rt` of `host` (A and AAAA also from the hosts file).
    pub async fn lookup(&self, host: &str, rt: RecordType) -> Result<Vec<RData>, Lookup> {
        self.lookup_types(host, &[rt]).await
    }

    async fn lookup_types(&self, host: &str, types: &[RecordType]) -> Result<Vec<RData>, Lookup> {
        // glibc's "files" source: the name exactly as given (a trailing dot never matches).
        if !host.ends_with('.')
            && let Ok(name) = Name::from_utf8(host)
        {
            let from_file: Vec<RData> = types
                .iter()
                .filter_map(|rt| {
                    self.hosts
                        .lookup_static_host(&Query::query(name.clone(), *rt))
                })
                .flat_map(|l| {
                    l.answers()
                        .iter()
                        .map(|r| r.data.clone())
                        .collect::<Vec<_>>()
                })
                .collect();
            if !from_file.is_empty() {
                return Ok(from_file);
            }
        }
        let client = self
            .client()
            .map_err(|e| Lookup::Other(format!("cannot set up the resolver: {e}")))?;
        self.search(&client, host, types).await
    }

    /// Ask one fully qualified name for one type.
    async fn ask_one(c: &Client, name: Name, rt: RecordType) -> Result<Vec<RData>, Lookup> {
        let found = c.inner.lookup(name, rt).await.map_err(|e| {
            let refused = *c.refused.lock().unwrap_or_else(|p| p.into_inner());
            match (&e, refused) {
                (NetError::NoConnections | NetError::Io(_), Some(server)) => Lookup::Other(
                    format!("{CONNECTION_REFUSED} by {server} (nothing listens on that port)"),
                ),
                _ => Lookup::from_error(&e),
            }
        })?;
        let rdata: Vec<RData> = found
            .answers()
            .iter()
            .filter(|r| r.record_type() == rt)
            .map(|r| r.data.clone())
            .collect();
        if rdata.is_empty() {
            return Err(Lookup::NoData);
        }
        Ok(rdata)
    }

    /// Ask one fully qualified name for `types` (A and AAAA in parallel, as glibc does): found if
    /// any type has records, else the gravest of the answers.
    async fn ask(c: &Client, name: Name, types: &[RecordType]) -> Answer {
        let results = match types {
            [a, b] => {
                let (x, y) = tokio::join!(
                    Self::ask_one(c, name.clone(), *a),
                    Self::ask_one(c, name, *b)
                );
                vec![x, y]
            }
            _ => {
                let mut all = Vec::with_capacity(types.len());
                for rt in types {
                    all.push(Self::ask_one(c, name.clone(), *rt).await);
                }
                all
            }
        };
        let mut found = Vec::new();
        let mut worst: Option<Lookup> = None;
        for r in results {
            match r {
                Ok(mut rdata) => found.append(&mut rdata),
                Err(e) => {
                    if worst.as_ref().is_none_or(|w| e.rank() > w.rank()) {
                        worst = Some(e);
                    }
                }
            }
        }
        match worst {
            _ if !found.is_empty() => Answer::Found(found),
            Some(e) => Answer::Failed(e),
            None => Answer::Failed(Lookup::NoData),
        }
    }

    /// glibc's `res_search`: the candidates in order, stopping where glibc stops. A name that
    /// glibc would report as missing although a candidate failed (SERVFAIL, REFUSED, timeout) is
    /// reported with that failure: a failing server does not prove absence.
    async fn search(
        &self,
        c: &Client,
        host: &str,
        types: &[RecordType],
    ) -> Result<Vec<RData>, Lookup> {
        let bare = host.trim_end_matches('.');
        let trailing_dot = bare.len() != host.len();
        let as_is = fqdn(bare)?;
        let dots = bare.matches('.').count();
        let rules = &self.rules;

        if trailing_dot {
            return match Self::ask(c, as_is, types).await {
                Answer::Found(rdata) => Ok(rdata),
                Answer::Failed(e) => Err(e),
            };
        }
        let mut first_failure: Option<Lookup> = None;
        let mut note = |e: &Lookup| {
            if !e.is_absent() && first_failure.is_none() {
                first_failure = Some(e.clone());
            }
        };
        let mut saved: Option<Lookup> = None;
        let mut last: Option<Lookup> = None;
        if dots >= rules.ndots {
            match Self::ask(c, as_is.clone(), types).await {
                Answer::Found(rdata) => return Ok(rdata),
                Answer::Failed(e) => {
                    note(&e);
                    saved = Some(e);
                }
            }
        }
        let (mut searched, mut root_on_list) = (false, false);
        let (mut got_nodata, mut got_servfail) = (false, false);
        for domain in &rules.domains {
            searched = true;
            let domain = domain.trim_start_matches('.');
            let candidate = if domain.is_empty() {
                root_on_list = true;
                as_is.clone()
            } else {
                match fqdn(&format!("{bare}.{}", domain.trim_end_matches('.'))) {
                    Ok(name) => name,
                    // Too long a name: glibc skips it as well.
                    Err(_) => continue,
                }
            };
            match Self::ask(c, candidate, types).await {
                Answer::Found(rdata) => return Ok(rdata),
                Answer::Failed(e) => {
                    note(&e);
                    let stop = match &e {
                        // glibc gives up at once when no server is listening.
                        Lookup::Other(text) if text.starts_with(CONNECTION_REFUSED) => {
                            return Err(e);
                        }
                        Lookup::NxDomain => false,
                        Lookup::NoData => {
                            got_nodata = true;
                            false
                        }
                        Lookup::ServFail => {
                            got_servfail = true;
                            false
                        }
                        // REFUSED, a timeout, anything else: the search list is abandoned.
                        _ => true,
                    };
                    last = Some(e);
                    if stop {
                        break;
                    }
                }
            }
        }
        let tried_as_is = saved.is_some();
        if (dots > 0 || !searched || !rules.no_tld_query) && !tried_as_is && !root_on_list {
            match Self::ask(c, as_is, types).await {
                Answer::Found(rdata) => return Ok(rdata),
                Answer::Failed(e) => {
                    note(&e);
                    last = Some(e);
                }
            }
        }
        let glibc = saved
            .or_else(|| got_nodata.then_some(Lookup::NoData))
            .or_else(|| got_servfail.then_some(Lookup::ServFail))
            .or(last)
            .unwrap_or(Lookup::NxDomain);
        Err(match first_failure {
            Some(failure) if glibc.is_absent() => failure,
            _ => glibc,
        })
    }
}

/// `name` made fully qualified, or NXDOMAIN-like "invalid name" text.
fn fqdn(name: &str) -> Result<Name, Lookup> {
    let mut n = Name::from_utf8(name).map_err(|e| Lookup::Other(format!("invalid name: {e}")))?;
    n.set_fqdn(true);
    Ok(n)
}

/// How a refused connection starts its text (glibc: ECONNREFUSED).
const CONNECTION_REFUSED: &str = "connection refused";

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
            NetError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                Lookup::Other(format!(
                    "{CONNECTION_REFUSED} (nothing listens on that port)"
                ))
            }
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

    /// How grave an answer is, when A and AAAA answer differently: a failure outweighs NODATA,
    /// which outweighs NXDOMAIN.
    fn rank(&self) -> u8 {
        match self {
            Lookup::NxDomain => 0,
            Lookup::NoData => 1,
            Lookup::ServFail => 2,
            Lookup::Refused => 3,
            Lookup::Timeout => 4,
            Lookup::Other(text) if text.starts_with(CONNECTION_REFUSED) => 6,
            Lookup::Other(_) => 5,
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
