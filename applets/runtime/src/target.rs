//! Target parsing shared by every applet: `host:port`, `[v6addr]:port`, `tcp://host:port`.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// A host and a port, as given by the user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: Host,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl FromStr for HostPort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_host_port(s, None)
    }
}

/// Parse `host:port`, `[v6]:port` or `tcp://host:port[/]`. With `default_port`, the port may be
/// left out.
pub fn parse_host_port(input: &str, default_port: Option<u16>) -> Result<HostPort, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty target (expected HOST:PORT)".into());
    }
    let s = match s.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("tcp") => rest.trim_end_matches('/'),
        Some((scheme, _)) => {
            return Err(format!(
                "'{input}': unsupported scheme '{scheme}://' (expected HOST:PORT or tcp://HOST:PORT)"
            ));
        }
        None => s,
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("'{input}': missing ']' after the IPv6 address"))?;
        let ip = Ipv6Addr::from_str(addr)
            .map_err(|_| format!("'{input}': '{addr}' is not an IPv6 address"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("'{input}': expected ':PORT' after ']'")),
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(format!(
                    "'{input}': IPv6 addresses need brackets, e.g. [::1]:5432"
                ));
            }
            Some((h, p)) => (
                parse_host(h).map_err(|e| format!("'{input}': {e}"))?,
                Some(p),
            ),
            None => (parse_host(s).map_err(|e| format!("'{input}': {e}"))?, None),
        }
    };
    let port = match (port, default_port) {
        (Some(p), _) => parse_port(p).map_err(|e| format!("'{input}': {e}"))?,
        (None, Some(d)) => d,
        (None, None) => return Err(format!("'{input}': missing port (expected HOST:PORT)")),
    };
    Ok(HostPort { host, port })
}

/// A port from 1 to 65535.
pub fn parse_port(p: &str) -> Result<u16, String> {
    if p.is_empty() {
        return Err("missing port after ':'".into());
    }
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port '{p}' is not a number"));
    }
    match p.parse::<u32>() {
        Ok(0) => Err("port 0 is not a port one can connect to (expected 1-65535)".into()),
        Ok(n) if n <= 65535 => Ok(n as u16),
        _ => Err(format!("port {p} is out of range (expected 1-65535)")),
    }
}

/// A host name (RFC 1123 labels, underscores allowed for SRV-style names) or an IP address.
pub fn parse_host(h: &str) -> Result<Host, String> {
    if h.is_empty() {
        return Err("missing host before ':'".into());
    }
    if let Ok(ip) = IpAddr::from_str(h) {
        return Ok(Host::Ip(ip));
    }
    let name = h.strip_suffix('.').unwrap_or(h);
    if name.len() > 253 {
        return Err("host name is longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("host '{h}' has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!("host '{h}' has a label longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "host '{h}' contains a character not allowed in a host name"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "host '{h}' has a label that starts or ends with '-'"
            ));
        }
    }
    Ok(Host::Name(h.to_ascii_lowercase()))
}

/// A URL's host as a resolver or a socket takes it: an IPv6 literal without the brackets a URL
/// keeps around it (`url::Url::host_str`, and database drivers' URL parsers built on it, give
/// `[::1]`; getaddrinfo wants `::1`). Anything else is returned as it is.
pub fn url_host(host: &str) -> &str {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) if inner.parse::<std::net::Ipv6Addr>().is_ok() => inner,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn url_hosts_lose_ipv6_brackets_only() {
        assert_eq!(url_host("[::1]"), "::1");
        assert_eq!(url_host("[fe80::1:2]"), "fe80::1:2");
        assert_eq!(url_host("db.ns.svc"), "db.ns.svc");
        assert_eq!(url_host("127.0.0.1"), "127.0.0.1");
        assert_eq!(url_host("[not-an-ip]"), "[not-an-ip]");
    }

    fn hp(s: &str) -> Result<HostPort, String> {
        s.parse()
    }

    #[test]
    fn forms() {
        assert_eq!(hp("db:5432").unwrap().to_string(), "db:5432");
        assert_eq!(
            hp("tcp://db.ns.svc:80/").unwrap().to_string(),
            "db.ns.svc:80"
        );
        assert_eq!(
            hp("[::1]:8080").unwrap().host,
            Host::Ip("::1".parse().unwrap())
        );
        assert_eq!(hp("127.0.0.1:1").unwrap().port, 1);
        assert_eq!(hp("DB:65535").unwrap().host, Host::Name("db".into()));
        assert_eq!(parse_host_port("db", Some(6379)).unwrap().port, 6379);
    }

    #[test]
    fn bad_inputs_say_what_is_wrong() {
        let cases = [
            ("host:notaport", "not a number"),
            ("host:0", "port 0"),
            ("host:70000", "out of range"),
            ("host", "missing port"),
            ("host:", "missing port"),
            (":80", "missing host"),
            ("::1:80", "brackets"),
            ("[::1", "missing ']'"),
            ("[zz]:1", "not an IPv6"),
            ("http://x:1", "unsupported scheme"),
            ("bad host:1", "not allowed"),
            ("a..b:1", "empty label"),
        ];
        for (input, needle) in cases {
            let e = hp(input).unwrap_err();
            assert!(e.contains(needle), "{input}: {e}");
            assert!(!e.contains('\n'));
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = hp(&s);
        }

        #[test]
        fn valid_ports_round_trip(port in 1u16..=65535, host in "[a-z][a-z0-9-]{0,20}[a-z0-9]") {
            let t = hp(&format!("{host}:{port}")).unwrap();
            prop_assert_eq!(t.port, port);
            prop_assert_eq!(t.to_string(), format!("{host}:{port}"));
        }

        #[test]
        fn ipv6_round_trip(a in any::<u128>(), port in 1u16..=65535) {
            let ip = Ipv6Addr::from(a);
            let t = hp(&format!("[{ip}]:{port}")).unwrap();
            prop_assert_eq!(t.host, Host::Ip(IpAddr::V6(ip)));
        }

        #[test]
        fn out_of_range_ports_are_refused(port in 65536u32..10_000_000) {
            let input = format!("h:{}", port);
            prop_assert!(hp(&input).is_err());
        }
    }
}
