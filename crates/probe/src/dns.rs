//! The DNS readiness probe of `wait-for-dns`, `wait-for` (`dns://`) and `network-check`
//! (`dns:`), in one of two explicit modes:
//!
//! - *system* (default): `/etc/resolv.conf` with its search list and ndots, and `/etc/hosts`:
//!   what the pod's application will see when it resolves the same name;
//! - *server* (`--server IP[:PORT]`): a direct query to one server, UDP with TCP fallback, no search
//!   list, no hosts file: what that server answers.
//!
//! Every attempt asks again (nothing cached, negative answers included). NXDOMAIN, NODATA,
//! SERVFAIL and timeouts are told apart in progress lines; only NXDOMAIN/NODATA count as absent.

use std::collections::BTreeSet;
use std::sync::Arc;

use clap::ValueEnum;
use hickory_resolver::proto::rr::RData;
use initbox_runtime::resolve::{Lookup, RecordType, Resolver};
use initbox_runtime::wait::{NotReady, Probe, ProbeFuture};

/// What to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum QueryType {
    /// IPv4 and IPv6 addresses (A + AAAA, and the hosts file in system mode).
    #[default]
    Address,
    A,
    Aaaa,
    Cname,
    Srv,
    Txt,
    Mx,
}

impl QueryType {
    fn record_type(self) -> Option<RecordType> {
        match self {
            QueryType::Address => None,
            QueryType::A => Some(RecordType::A),
            QueryType::Aaaa => Some(RecordType::AAAA),
            QueryType::Cname => Some(RecordType::CNAME),
            QueryType::Srv => Some(RecordType::SRV),
            QueryType::Txt => Some(RecordType::TXT),
            QueryType::Mx => Some(RecordType::MX),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            QueryType::Address => "address",
            QueryType::A => "A",
            QueryType::Aaaa => "AAAA",
            QueryType::Cname => "CNAME",
            QueryType::Srv => "SRV",
            QueryType::Txt => "TXT",
            QueryType::Mx => "MX",
        }
    }
}

/// A DNS name as given: validated, kept as typed (a trailing dot makes it fully qualified).
pub fn parse_name(s: &str) -> Result<String, String> {
    let name = s.trim();
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!("'{name}' is an IP address, not a DNS name"));
    }
    initbox_runtime::target::parse_host(name)?;
    Ok(name.to_ascii_lowercase())
}

/// What one DNS check asks for.
#[derive(Debug, Clone)]
pub struct DnsQuery {
    pub name: String,
    pub kind: QueryType,
    pub min_count: usize,
    pub expect: Vec<String>,
    pub absent: bool,
}

/// A DNS readiness probe, shared with `wait-for` (`dns://`) and `network-check` (`dns:`).
pub struct DnsProbe {
    pub query: DnsQuery,
    pub resolver: Arc<Resolver>,
}

impl DnsProbe {
    pub fn new(query: DnsQuery, resolver: Arc<Resolver>) -> Self {
        DnsProbe { query, resolver }
    }

    /// The distinct values the name resolves to now.
    pub async fn lookup(&self) -> Result<BTreeSet<String>, Lookup> {
        let q = &self.query;
        let values: BTreeSet<String> = match q.kind.record_type() {
            None => self
                .resolver
                .lookup_ip(&q.name)
                .await?
                .into_iter()
                .map(|ip| ip.to_string())
                .collect(),
            Some(rt) => self
                .resolver
                .lookup(&q.name, rt)
                .await?
                .iter()
                .filter_map(format_rdata)
                .collect(),
        };
        if values.is_empty() {
            return Err(Lookup::NoData);
        }
        Ok(values)
    }

    /// Ready (or absent, with `absent`) per the query; the detail lists the values.
    pub async fn check(&self) -> Result<String, NotReady> {
        let q = &self.query;
        let result = self.lookup().await;
        if q.absent {
            return match result {
                Err(e) if e.is_absent() => Ok(format!("absent: {e}")),
                Err(e) => Err(NotReady::Retry(e.to_string())),
                Ok(values) => Err(NotReady::Retry(format!(
                    "still resolves to {}",
                    join(&values)
                ))),
            };
        }
        let values = result.map_err(|e| NotReady::Retry(e.to_string()))?;
        let missing: Vec<&String> = q
            .expect
            .iter()
            .filter(|want| {
                !expected_forms(want, &self.resolver.search_rules().domains)
                    .iter()
                    .any(|form| values.contains(form))
            })
            .collect();
        if !missing.is_empty() {
            return Err(NotReady::Retry(format!(
                "{} not among {}",
                missing
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                join(&values)
            )));
        }
        if values.len() < q.min_count {
            return Err(NotReady::Retry(format!(
                "{} of {} values ({})",
                values.len(),
                q.min_count,
                join(&values)
            )));
        }
        Ok(join(&values))
    }
}

fn join(values: &BTreeSet<String>) -> String {
    values.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// How a value is compared: names without the trailing dot, lower case (also the target of an
/// SRV `TARGET:PORT`); IPs canonical.
fn normalize(v: &str) -> String {
    let v = v.trim();
    if let Ok(ip) = v.parse::<std::net::IpAddr>() {
        return ip.to_string();
    }
    if let Some((target, port)) = v.rsplit_once(':')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
    {
        return format!("{}:{port}", normalize(target));
    }
    v.trim_end_matches('.').to_ascii_lowercase()
}

/// The answers an expected value matches: itself normalized and, for a relative name (no
/// trailing dot; an SRV value's target), the name in each search domain, as the application
/// would expand it: `web-0.web:8080` matches `web-0.web.ns.svc.cluster.local.:8080`.
fn expected_forms(want: &str, search: &[String]) -> Vec<String> {
    let want = want.trim();
    let mut forms = vec![normalize(want)];
    if want.parse::<std::net::IpAddr>().is_ok() {
        return forms;
    }
    let (name, port) = match want.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (name, Some(port))
        }
        _ => (want, None),
    };
    if name.ends_with('.') {
        return forms;
    }
    for domain in search {
        let domain = domain.trim_matches('.');
        if domain.is_empty() {
            continue;
        }
        let full = normalize(&format!("{name}.{domain}"));
        forms.push(match port {
            Some(port) => format!("{full}:{port}"),
            None => full,
        });
    }
    forms
}

fn name_text(n: &hickory_resolver::proto::rr::Name) -> String {
    n.to_string().trim_end_matches('.').to_ascii_lowercase()
}

fn format_rdata(data: &RData) -> Option<String> {
    Some(match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(c) => name_text(&c.0),
        RData::MX(mx) => name_text(&mx.exchange),
        RData::SRV(srv) => format!("{}:{}", name_text(&srv.target), srv.port),
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<String>(),
        _ => return None,
    })
}

impl Probe for DnsProbe {
    fn target(&self) -> String {
        match self.query.kind {
            QueryType::Address => self.query.name.clone(),
            k => format!("{} {}", self.query.name, k.label()),
        }
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.check())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert_eq!(
            parse_name("DB.svc.cluster.local.").unwrap(),
            "db.svc.cluster.local."
        );
        assert!(parse_name("10.0.0.1").unwrap_err().contains("IP address"));
        assert!(parse_name("bad name").is_err());
        assert!(parse_name("").is_err());
        assert_eq!(parse_name("_http._tcp.web").unwrap(), "_http._tcp.web");
    }

    #[test]
    fn values_compare_normalized() {
        assert_eq!(normalize("Web.Example."), "web.example");
        assert_eq!(normalize("::0001"), "::1");
        assert_eq!(normalize("Web-0.Web.NS.svc.:8080"), "web-0.web.ns.svc:8080");
        assert_eq!(normalize("web-0.web:8080"), "web-0.web:8080");
        let search = ["ns.svc.cluster.local".to_string()];
        assert!(
            expected_forms("web-0.web:8080", &search)
                .contains(&"web-0.web.ns.svc.cluster.local:8080".to_string())
        );
        assert_eq!(expected_forms("web-0.web.:8080", &search).len(), 1);
        assert_eq!(expected_forms("10.0.0.1", &search), ["10.0.0.1"]);
    }
}
