//! DNS, TCP, TLS and UDP probes. Name resolution is the runtime's (`initbox_runtime::resolve`,
//! system or direct-server mode); TCP connects through `initbox_probe::tcp::TcpProbe`, the same
//! code `wait-for-tcp` waits with.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use initbox_probe::dns::{DnsProbe, DnsQuery, QueryType};
use initbox_probe::tcp::{TcpFailure, TcpProbe};
use initbox_runtime::duration::human;
use initbox_runtime::resolve::{Lookup, Resolver, ResolverArgs};
use initbox_runtime::target::{Host, HostPort};
use initbox_runtime::tls::TlsArgs;
use rustls::pki_types::ServerName;
use serde_json::json;
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::probe::{Observation, Observed, classify_io};
use crate::spec::{DnsCheck, TlsCheck, UdpCheck, UdpPayload};
use initbox_runtime::Failure;

/// Resolvers and TLS configurations shared by all checks of a run.
pub struct Ctx {
    default_resolver: Arc<Resolver>,
    resolvers: HashMap<SocketAddr, Arc<Resolver>>,
    tls: HashMap<Option<PathBuf>, Arc<rustls::ClientConfig>>,
}

impl Ctx {
    /// Build everything the checks need up front, so a bad CA file or resolv.conf is reported
    /// before any check runs.
    pub fn new(
        resolver_args: &ResolverArgs,
        tls_args: &TlsArgs,
        per_query: Duration,
        servers: impl IntoIterator<Item = SocketAddr>,
        ca_files: impl IntoIterator<Item = Option<PathBuf>>,
    ) -> Result<Ctx, Failure> {
        let default_resolver = Arc::new(Resolver::new(resolver_args, per_query)?);
        let mut resolvers = HashMap::new();
        for s in servers {
            if resolvers.contains_key(&s) {
                continue;
            }
            let args = ResolverArgs {
                server: Some(s),
                ..resolver_args.clone()
            };
            resolvers.insert(s, Arc::new(Resolver::new(&args, per_query)?));
        }
        let mut tls = HashMap::new();
        for ca in ca_files {
            if tls.contains_key(&ca) {
                continue;
            }
            let args = TlsArgs {
                ca_file: ca.clone().or(tls_args.ca_file.clone()),
                ..tls_args.clone()
            };
            let mut config = initbox_runtime::tls::client_config(&args)?;
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            tls.insert(ca, Arc::new(config));
        }
        Ok(Ctx {
            default_resolver,
            resolvers,
            tls,
        })
    }

    pub fn resolver(&self, server: Option<SocketAddr>) -> Arc<Resolver> {
        server
            .and_then(|s| self.resolvers.get(&s).cloned())
            .unwrap_or_else(|| Arc::clone(&self.default_resolver))
    }

    pub fn tls(&self, ca: &Option<PathBuf>) -> Result<Arc<rustls::ClientConfig>, Failure> {
        self.tls
            .get(ca)
            .cloned()
            .ok_or_else(|| Failure::failed("internal: TLS configuration was not prepared"))
    }
}

fn timed_out(what: &str, started: Instant, deadline: Instant) -> Observation {
    Observation::new(
        Observed::Timeout,
        format!(
            "no answer {what} within {}",
            human(deadline.saturating_duration_since(started))
        ),
    )
}

/// Resolve a host (no lookup for an IP). The DNS phase's time is returned.
pub async fn resolve(
    host: &Host,
    resolver: &Resolver,
    started: Instant,
    deadline: Instant,
) -> Result<(Vec<IpAddr>, Option<Duration>), Observation> {
    let name = match host {
        Host::Ip(ip) => return Ok((vec![*ip], None)),
        Host::Name(n) => n,
    };
    let t = Instant::now();
    let found = tokio::time::timeout_at(deadline, resolver.lookup_ip(name)).await;
    let took = t.elapsed();
    match found {
        Err(_) => {
            Err(timed_out(&format!("resolving {name}"), started, deadline).timing("dns", took))
        }
        Ok(Err(e)) => Err(lookup_failure(name, &e).timing("dns", took)),
        Ok(Ok(ips)) if ips.is_empty() => Err(Observation::new(
            Observed::DnsError,
            format!("{name} has no addresses"),
        )
        .timing("dns", took)),
        Ok(Ok(ips)) => Ok((ips, Some(took))),
    }
}

fn lookup_failure(name: &str, e: &Lookup) -> Observation {
    let rcode = match e {
        Lookup::NxDomain => "NXDOMAIN",
        Lookup::NoData => "NODATA",
        Lookup::ServFail => "SERVFAIL",
        Lookup::Refused => "REFUSED",
        Lookup::Timeout => "TIMEOUT",
        Lookup::Other(_) => "ERROR",
    };
    let observed = if *e == Lookup::Timeout {
        Observed::Timeout
    } else {
        Observed::DnsError
    };
    Observation::new(observed, format!("lookup {name}: {e}")).data("dns_result", rcode)
}

/// Connect to every address at once (each through `TcpProbe`); the first to accept wins.
/// When none does, a refusal outranks the other errors (something answered).
pub async fn connect(
    target: &HostPort,
    resolver: &Arc<Resolver>,
    started: Instant,
    deadline: Instant,
) -> Result<(SocketAddr, TcpStream, Vec<(&'static str, Duration)>), Observation> {
    let (ips, dns) = resolve(&target.host, resolver, started, deadline).await?;
    let mut timings = Vec::new();
    if let Some(d) = dns {
        timings.push(("dns", d));
    }
    let t = Instant::now();
    let mut set = JoinSet::new();
    for ip in &ips {
        let probe = TcpProbe::new(
            HostPort {
                host: Host::Ip(*ip),
                port: target.port,
            },
            Arc::clone(resolver),
        );
        let addr = SocketAddr::new(*ip, target.port);
        set.spawn(async move { (addr, probe.try_connect().await) });
    }
    let mut errors: Vec<(Observed, String)> = Vec::new();
    let race = async {
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((_, Ok((addr, stream)))) => return Some((addr, stream)),
                Ok((_, Err(TcpFailure::Connect(failed)))) => {
                    for (addr, e) in failed {
                        errors.push((classify_io(&e), format!("{addr}: {}", e.kind())))
                    }
                }
                Ok((addr, Err(TcpFailure::Lookup(why)))) => {
                    errors.push((Observed::Error, format!("{addr}: {why:?}")))
                }
                Err(e) => errors.push((Observed::Error, e.to_string())),
            }
        }
        None
    };
    let won = tokio::time::timeout_at(deadline, race).await;
    let took = t.elapsed();
    timings.push(("connect", took));
    match won {
        Ok(Some((addr, stream))) => Ok((addr, stream, timings)),
        Ok(None) => {
            let rank = |o: Observed| match o {
                Observed::Refused => 0,
                Observed::Denied => 1,
                Observed::Unreachable => 2,
                Observed::Timeout => 3,
                _ => 4,
            };
            errors.sort_by_key(|(o, _)| rank(*o));
            let observed = errors.first().map(|e| e.0).unwrap_or(Observed::Error);
            let text = errors
                .into_iter()
                .map(|(_, t)| t)
                .collect::<Vec<_>>()
                .join(", ");
            Err(Observation::new(observed, text).with_timings(&timings))
        }
        Err(_) => {
            let shown: Vec<String> = ips
                .iter()
                .map(|ip| SocketAddr::new(*ip, target.port).to_string())
                .collect();
            let mut o = timed_out(
                &format!("connecting to {}", shown.join(", ")),
                started,
                deadline,
            );
            o.timings = timings;
            Err(o)
        }
    }
}

pub async fn tcp(target: &HostPort, ctx: &Ctx, deadline: Instant) -> Observation {
    let started = Instant::now();
    match connect(target, &ctx.resolver(None), started, deadline).await {
        Ok((addr, _stream, timings)) => {
            let connect = timings.last().map(|t| t.1).unwrap_or_default();
            Observation::ok(format!("connected to {addr} in {}", human(connect)))
                .with_timings(&timings)
                .data("address", addr.to_string())
        }
        Err(o) => o,
    }
}

/// A DNS check through wait-for-dns's probe (the same lookup and value formatting `wait-for-dns`
/// waits with), with NXDOMAIN, NODATA, SERVFAIL, REFUSED and timeouts told apart.
pub async fn dns(c: &DnsCheck, ctx: &Ctx, deadline: Instant) -> Observation {
    let resolver = ctx.resolver(c.server);
    let via = resolver.mode().to_string();
    let probe = DnsProbe::new(
        DnsQuery {
            name: c.name.clone(),
            kind: c.kind,
            min_count: 1,
            expect: c.values.clone(),
            absent: false,
        },
        resolver,
    );
    let started = Instant::now();
    let found = tokio::time::timeout_at(deadline, probe.lookup())
        .await
        .unwrap_or(Err(Lookup::Timeout));
    let took = started.elapsed();
    let rt = match c.kind {
        QueryType::Address => "A/AAAA",
        k => k.label(),
    };
    let values: Vec<String> = match found {
        Ok(v) => v.into_iter().collect(),
        Err(e) => {
            let mut o = lookup_failure(&c.name, &e).timing("dns", took);
            o.detail = format!("{} via {via}", o.detail);
            return o.data("resolver", via);
        }
    };
    let base = |o: Observation| {
        o.timing("dns", took)
            .data("answers", values.clone())
            .data("resolver", via.clone())
            .data("dns_result", "NOERROR")
    };
    // Compared as wait-for-dns compares: IPs canonical, names without the trailing dot.
    let norm = |s: &str| {
        let t = s.trim();
        match t.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => t.trim_end_matches('.').to_ascii_lowercase(),
        }
    };
    let have: Vec<String> = values.iter().map(|a| norm(a)).collect();
    let missing: Vec<&str> = c
        .values
        .iter()
        .filter(|v| !have.contains(&norm(v)))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return base(Observation::new(
            Observed::Mismatch,
            format!(
                "{rt} {}: expected {} not among the answers [{}]",
                c.name,
                missing.join(", "),
                values.join(", ")
            ),
        ));
    }
    base(Observation::ok(format!(
        "{rt} {} = {} via {via} in {}",
        c.name,
        values.join(", "),
        human(took)
    )))
}

/// Certificate facts read with x509-parser.
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub not_after: i64,
}

pub fn cert_info(der: &[u8]) -> Option<CertInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let sans = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .map(|g| match g {
                    x509_parser::extensions::GeneralName::DNSName(d) => d.to_string(),
                    x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                        4 => IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default()).to_string(),
                        16 => {
                            IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default()).to_string()
                        }
                        _ => format!("{g}"),
                    },
                    other => format!("{other}"),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        not_after: cert.validity().not_after.timestamp(),
    })
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// `2026-11-25` (UTC) for a Unix time.
pub fn date(secs: i64) -> String {
    // Civil-from-days (proleptic Gregorian).
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Judge the presented chain's expiry against the thresholds; the earliest `notAfter` in the
/// chain counts (an intermediate that expires first breaks the site just the same).
pub fn expiry(
    mut o: Observation,
    certs: &[rustls::pki_types::CertificateDer<'_>],
    warn_days: u32,
    fail_days: u32,
) -> Observation {
    let infos: Vec<CertInfo> = certs.iter().filter_map(|c| cert_info(c)).collect();
    let Some(leaf) = infos.first() else {
        return o;
    };
    let now = now_secs();
    let (which, earliest) = infos
        .iter()
        .enumerate()
        .min_by_key(|(_, c)| c.not_after)
        .map(|(i, c)| (i, c.not_after))
        .unwrap_or((0, leaf.not_after));
    let left = earliest - now;
    let days = left.div_euclid(86_400);
    o = o.data(
        "certificate",
        json!({
            "subject": leaf.subject,
            "issuer": leaf.issuer,
            "sans": leaf.sans,
            "not_after": date(leaf.not_after),
            "days_left": (leaf.not_after - now).div_euclid(86_400),
            "chain_length": certs.len(),
            "earliest_not_after": date(earliest),
        }),
    );
    let who = if which == 0 {
        "certificate".to_string()
    } else {
        format!("intermediate certificate '{}'", infos[which].subject)
    };
    let when = format!("{} ({days} days)", date(earliest));
    if days < i64::from(fail_days) {
        o.observed = Observed::TlsError;
        o.detail = format!("{who} expires {when}: within --fail-days {fail_days}");
    } else if days < i64::from(warn_days) {
        o.warning = Some(format!(
            "{who} expires {when}: within --warn-days {warn_days}"
        ));
        o.detail = format!("{}; {who} expires {when}", o.detail);
    } else {
        o.detail = format!("{}; {who} valid until {when}", o.detail);
    }
    o
}

/// A TLS failure as a person reads it: the runtime's named reason, which says what to do.
pub fn tls_error_text(e: &std::io::Error, _name: &str) -> String {
    match initbox_runtime::tls::explain_chain(e, "the check's ca_file (or --ca-file)") {
        Some(reason) => reason,
        None => format!("TLS handshake: {e}"),
    }
}

/// The TLS server name for a host (`sni` overrides).
pub fn server_name(host: &Host, sni: Option<&str>) -> Result<ServerName<'static>, String> {
    match (sni, host) {
        (Some(s), _) => ServerName::try_from(s.to_string()).map_err(|e| format!("sni {s}: {e}")),
        (None, Host::Ip(ip)) => Ok(ServerName::IpAddress((*ip).into())),
        (None, Host::Name(n)) => {
            ServerName::try_from(n.clone()).map_err(|e| format!("server name {n}: {e}"))
        }
    }
}

pub async fn tls(c: &TlsCheck, ctx: &Ctx, deadline: Instant) -> Observation {
    let started = Instant::now();
    let config = match ctx.tls(&c.ca_file) {
        Ok(cfg) => cfg,
        Err(f) => return Observation::new(Observed::Error, f.message),
    };
    let name = match server_name(&c.target.host, c.sni.as_deref()) {
        Ok(n) => n,
        Err(e) => return Observation::new(Observed::Error, e),
    };
    let shown_name = c.sni.clone().unwrap_or_else(|| {
        c.target
            .host
            .to_string()
            .trim_matches(['[', ']'])
            .to_string()
    });
    let (addr, stream, mut timings) =
        match connect(&c.target, &ctx.resolver(None), started, deadline).await {
            Ok(x) => x,
            Err(o) => return o,
        };
    let t = Instant::now();
    let connector = tokio_rustls::TlsConnector::from(config);
    let hs = tokio::time::timeout_at(deadline, connector.connect(name, stream)).await;
    timings.push(("tls", t.elapsed()));
    let tls = match hs {
        Err(_) => {
            return timed_out(
                &format!("to the TLS handshake with {addr}"),
                started,
                deadline,
            )
            .with_timings(&timings);
        }
        Ok(Err(e)) => {
            return Observation::new(Observed::TlsError, tls_error_text(&e, &shown_name))
                .with_timings(&timings)
                .data("address", addr.to_string());
        }
        Ok(Ok(s)) => s,
    };
    let (_, conn) = tls.get_ref();
    let version = conn
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_default();
    let suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    let certs = conn.peer_certificates().unwrap_or_default().to_vec();
    let o = Observation::ok(format!(
        "{} verified for {shown_name} at {addr}",
        version.replace("TLSv1_", "TLS 1.")
    ))
    .with_timings(&timings)
    .data("address", addr.to_string())
    .data("protocol", version)
    .data("cipher_suite", suite);
    expiry(o, &certs, c.warn_days, c.fail_days)
}

/// A DNS query for `name` (type A, or NS for the root), recursion desired.
pub fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    let qtype: u16 = if name == "." { 2 } else { 1 };
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

fn rcode_name(r: u8) -> &'static str {
    match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "other rcode",
    }
}

pub async fn udp(c: &UdpCheck, ctx: &Ctx, deadline: Instant) -> Observation {
    let started = Instant::now();
    let (ips, dns) = match resolve(&c.target.host, &ctx.resolver(None), started, deadline).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    let mut timings = Vec::new();
    if let Some(d) = dns {
        timings.push(("dns", d));
    }
    let addr = SocketAddr::new(ips[0], c.target.port);
    let bind: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => return Observation::new(classify_io(&e), format!("udp socket: {e}")),
    };
    if let Err(e) = sock.connect(addr).await {
        return Observation::new(classify_io(&e), format!("udp {addr}: {e}"))
            .with_timings(&timings);
    }
    let id: u16 = (std::process::id() as u16) ^ (now_secs() as u16).rotate_left(7);
    let payload = match &c.payload {
        UdpPayload::Dns(name) => dns_query(id, name),
        UdpPayload::Bytes(b) => b.clone(),
    };
    let t = Instant::now();
    let mut buf = vec![0u8; 65_536];
    // UDP may lose a datagram: send again every 500ms until a reply or the deadline.
    let exchange = async {
        loop {
            sock.send(&payload).await?;
            match tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await {
                Ok(Ok(n)) => {
                    if let UdpPayload::Dns(_) = c.payload {
                        // Only a response to our query counts.
                        if n < 12 || buf[0..2] != id.to_be_bytes() || buf[2] & 0x80 == 0 {
                            continue;
                        }
                    }
                    return Ok(n);
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => continue,
            }
        }
    };
    let got = tokio::time::timeout_at(deadline, exchange).await;
    timings.push(("reply", t.elapsed()));
    match got {
        Err(_) => Observation::new(
            Observed::Timeout,
            format!(
                "no reply from {addr} within {} (UDP silence cannot tell blocked from a silent server)",
                human(deadline.saturating_duration_since(started))
            ),
        )
        .with_timings(&timings),
        Ok(Err(e)) => {
            let observed = classify_io(&e);
            let what = if observed == Observed::Refused {
                "port unreachable (ICMP)".to_string()
            } else {
                e.to_string()
            };
            Observation::new(observed, format!("udp {addr}: {what}")).with_timings(&timings)
        }
        Ok(Ok(n)) => {
            let reply = &buf[..n];
            let rtt = timings.last().map(|t| t.1).unwrap_or_default();
            match (&c.payload, &c.reply) {
                (UdpPayload::Dns(_), _) => {
                    let rcode = rcode_name(reply[3] & 0x0f);
                    Observation::ok(format!(
                        "DNS reply from {addr} ({rcode}) in {}",
                        human(rtt)
                    ))
                    .data("dns_result", rcode)
                }
                (UdpPayload::Bytes(_), Some(want))
                    if !reply.windows(want.len().max(1)).any(|w| w == want.as_slice()) =>
                {
                    Observation::new(
                        Observed::Mismatch,
                        format!(
                            "reply from {addr} ({n} bytes) does not contain {:?}",
                            String::from_utf8_lossy(want)
                        ),
                    )
                }
                _ => Observation::ok(format!("{n}-byte reply from {addr} in {}", human(rtt))),
            }
            .with_timings(&timings)
            .data("address", addr.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_700_000_000), "2023-11-14");
        assert_eq!(date(951_782_400), "2000-02-29");
    }

    #[test]
    fn dns_queries_are_well_formed() {
        let q = dns_query(0x1234, "a.bc");
        assert_eq!(&q[..2], &[0x12, 0x34]);
        assert_eq!(&q[12..], &[1, b'a', 2, b'b', b'c', 0, 0, 1, 0, 1]);
        let root = dns_query(1, ".");
        assert_eq!(&root[12..], &[0, 0, 2, 0, 1]);
    }
}
