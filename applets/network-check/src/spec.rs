//! Checks as the user writes them: `tcp:db:5432,expect=blocked,control=dns` on the command line,
//! or entries of a YAML spec file. Both go through [`RawCheck`], so one set of rules (and one set
//! of error messages) covers both.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use initbox_probe::dns::QueryType;
use initbox_runtime::duration;
use initbox_runtime::resolve::parse_server;
use initbox_runtime::target::{Host, HostPort, parse_host, parse_host_port};
use serde::Deserialize;

/// What a check asserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// The target answers as asked.
    Pass,
    /// The path is blocked (timeout or unreachable); a connection or a refusal fails.
    Blocked,
    /// The target does not answer as asked, for any reason (goss's `reachable: false`,
    /// `resolvable: false`): only an answer as asked fails.
    Fail,
}

/// Settings every check falls back to (flags, or the spec file's `defaults`).
#[derive(Debug, Clone)]
pub struct Defaults {
    pub timeout: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
    pub warn_days: u32,
    pub fail_days: u32,
    pub count: u32,
    pub interval: Duration,
    pub max_loss: f64,
    pub server: Option<SocketAddr>,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct DnsCheck {
    pub name: String,
    /// `Address`: A and AAAA (and the hosts file in system mode), as an application would ask.
    pub kind: QueryType,
    /// Every one of these must be among the answers.
    pub values: Vec<String>,
    pub server: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct TlsCheck {
    pub target: HostPort,
    pub sni: Option<String>,
    pub warn_days: u32,
    pub fail_days: u32,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct IcmpCheck {
    pub host: Host,
    pub count: u32,
    pub interval: Duration,
    /// Largest acceptable loss, 0.0-1.0.
    pub max_loss: f64,
}

#[derive(Debug, Clone)]
pub enum UdpPayload {
    /// A DNS query for this name (type A); any well-formed DNS response is a reply.
    Dns(String),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct UdpCheck {
    pub target: HostPort,
    pub payload: UdpPayload,
    /// The reply must contain these bytes.
    pub reply: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct HttpCheck {
    pub url: String,
    pub method: String,
    /// Status set, body regex and JSON matches: wait-for's own expectation type, so a response
    /// is judged the same way by `wait-for` and `network-check`.
    pub expect: initbox_probe::http::Expect,
    pub headers: Vec<(String, String)>,
    pub ca_file: Option<PathBuf>,
    pub warn_days: u32,
    pub fail_days: u32,
    /// Follow 301/302/303/307/308 answers (at most 10 hops), as goss does by default.
    pub follow_redirects: bool,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Dns(DnsCheck),
    Tcp(HostPort),
    Tls(TlsCheck),
    Icmp(IcmpCheck),
    Udp(UdpCheck),
    Http(HttpCheck),
    /// A port bound on this host (goss `port`).
    Port(crate::local::PortCheck),
    /// An interface of this host (goss `interface`).
    Interface(crate::local::InterfaceCheck),
}

impl Kind {
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Dns(_) => "dns",
            Kind::Tcp(_) => "tcp",
            Kind::Tls(_) => "tls",
            Kind::Icmp(_) => "icmp",
            Kind::Udp(_) => "udp",
            Kind::Http(h) if h.url.starts_with("https") => "https",
            Kind::Http(_) => "http",
            Kind::Port(_) => "port",
            Kind::Interface(_) => "interface",
        }
    }
}

/// One check, validated.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    /// The target as shown (e.g. `db:5432`, a URL without credentials).
    pub target: String,
    pub kind: Kind,
    pub expect: Expect,
    pub control: Option<String>,
    pub timeout: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
}

/// A scalar as YAML may give it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(Scalar),
    Many(Vec<Scalar>),
}

impl OneOrMany {
    fn texts(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.text()],
            OneOrMany::Many(v) => v.iter().map(Scalar::text).collect(),
        }
    }
}

/// A check as written, before validation. Field names are the spec file's keys; the command
/// line's `,key=value` options set the same fields.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The whole check in command-line form: `tcp:db:5432`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<Scalar>,
    // dns
    #[serde(rename = "type")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    // tls / https
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn_days: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_days: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    // icmp
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_loss: Option<Scalar>,
    // udp
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    // http
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<HashMap<String, String>>,
    /// `follow` (goss's default: up to 10 hops, credentials kept on the origin) or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirects: Option<String>,
    // this host: a bound port (`tcp:22`, `udp6:53`), an interface
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// port: addresses it must be bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ips: Option<OneOrMany>,
    /// interface: `ADDRESS/PREFIX` entries it must carry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addrs: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<Scalar>,
}

/// Option keys of the command-line form, as `,key=value` after the check.
const OPTION_KEYS: &[&str] = &[
    "name",
    "expect",
    "control",
    "timeout",
    "retries",
    "retry_delay",
    "type",
    "value",
    "server",
    "sni",
    "warn_days",
    "fail_days",
    "ca_file",
    "count",
    "interval",
    "max_loss",
    "send",
    "send_hex",
    "query",
    "reply",
    "method",
    "status",
    "body",
    "json",
    "header",
    "redirects",
    "ip",
    "addr",
    "mtu",
];

fn push(list: &mut Option<OneOrMany>, value: &str) {
    let s = Scalar::Str(value.to_string());
    match list {
        None => *list = Some(OneOrMany::Many(vec![s])),
        Some(OneOrMany::Many(v)) => v.push(s),
        Some(OneOrMany::One(one)) => *list = Some(OneOrMany::Many(vec![one.clone(), s])),
    }
}

/// The option a `,`-separated segment of a check starts (`header=...` → `header`), if any.
fn option_key(seg: &str) -> Option<String> {
    seg.split_once('=')
        .map(|(k, _)| k.replace('-', "_"))
        .filter(|k| OPTION_KEYS.contains(&k.as_str()))
}

/// Split a CHECK argument (or `INITBOX_CHECKS`) into checks at white space. A header value may
/// hold spaces (`header=Authorization:Bearer TOKEN`): a word continues the check before it when
/// that check's last option is `header=` and the word does not start a check of its own
/// (`TYPE:...` or an `http(s)://` URL).
pub fn split_checks(arg: &str) -> Vec<&str> {
    let mut checks: Vec<(usize, usize)> = Vec::new();
    for word in arg.split_whitespace() {
        let start = word.as_ptr() as usize - arg.as_ptr() as usize;
        let end = start + word.len();
        match checks.last_mut() {
            Some((s, e)) if ends_in_header(&arg[*s..*e]) && split_kind(word).is_err() => *e = end,
            _ => checks.push((start, end)),
        }
    }
    checks.into_iter().map(|(s, e)| &arg[s..e]).collect()
}

/// Whether the last option of a command-line check is `header=` (its value may go on).
fn ends_in_header(check: &str) -> bool {
    check
        .split(',')
        .skip(1)
        .filter_map(option_key)
        .last()
        .is_some_and(|k| k == "header")
}

/// A command-line check as it may appear in a message: every `header=` value masked (the header
/// name stays), since a header usually carries a credential.
pub fn shown_arg(check: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut in_header = false;
    for (i, seg) in check.split(',').enumerate() {
        let key = if i == 0 { None } else { option_key(seg) };
        match key {
            Some(k) if k == "header" => {
                in_header = true;
                let (_, value) = seg.split_once('=').unwrap_or((seg, ""));
                out.push(match value.split_once(':') {
                    Some((name, _)) => format!("header={name}:…"),
                    None => "header=…".to_string(),
                });
            }
            Some(_) => {
                in_header = false;
                out.push(seg.to_string());
            }
            None if in_header => {}
            None => out.push(seg.to_string()),
        }
    }
    out.join(",")
}

impl RawCheck {
    /// Parse the command-line form `CHECK[,key=value...]`. A segment that does not start with a
    /// known `key=` belongs to the value before it (so `status=200,204` and URLs with commas work).
    /// Header values are registered as secrets before anything can fail.
    pub fn from_arg(arg: &str) -> Result<RawCheck, String> {
        let mut segments: Vec<(Option<String>, String)> = Vec::new();
        for seg in arg.split(',') {
            let key = option_key(seg);
            match key {
                Some(k) if !segments.is_empty() => {
                    let value = seg.split_once('=').map(|(_, v)| v).unwrap_or("");
                    segments.push((Some(k), value.to_string()));
                }
                _ => match segments.last_mut() {
                    Some((_, v)) => {
                        v.push(',');
                        v.push_str(seg);
                    }
                    None => segments.push((None, seg.to_string())),
                },
            }
        }
        for (key, value) in &segments {
            if key.as_deref() == Some("header") {
                let value = value.trim();
                initbox_runtime::redact::register(value);
                let credential = value.split_once(':').map_or(value, |(_, v)| v.trim());
                initbox_runtime::redact::register(credential);
                // `Bearer TOKEN`, `Basic B64`: the credential alone is secret too.
                if let Some((_, c)) = credential.split_once(char::is_whitespace) {
                    initbox_runtime::redact::register(c.trim());
                }
            }
        }
        let mut raw = RawCheck {
            check: Some(segments[0].1.clone()),
            ..RawCheck::default()
        };
        for (key, value) in segments.into_iter().skip(1) {
            let key = key.unwrap_or_default();
            let s = || Some(value.clone());
            let sc = || Some(Scalar::Str(value.clone()));
            match key.as_str() {
                "name" => raw.name = s(),
                "expect" => raw.expect = s(),
                "control" => raw.control = s(),
                "timeout" => raw.timeout = sc(),
                "retries" => raw.retries = sc(),
                "retry_delay" => raw.retry_delay = sc(),
                "type" => raw.record_type = s(),
                "value" => push(&mut raw.values, &value),
                "server" => raw.server = s(),
                "sni" => raw.sni = s(),
                "warn_days" => raw.warn_days = sc(),
                "fail_days" => raw.fail_days = sc(),
                "ca_file" => raw.ca_file = Some(PathBuf::from(&value)),
                "count" => raw.count = sc(),
                "interval" => raw.interval = sc(),
                "max_loss" => raw.max_loss = sc(),
                "send" => raw.send = s(),
                "send_hex" => raw.send_hex = s(),
                "query" => raw.query = s(),
                "reply" => raw.reply = s(),
                "method" => raw.method = s(),
                "status" => raw.status = Some(OneOrMany::One(Scalar::Str(value.clone()))),
                "body" => raw.body = s(),
                "redirects" => raw.redirects = s(),
                "json" => push(&mut raw.json, &value),
                "ip" => push(&mut raw.ips, &value),
                "addr" => push(&mut raw.addrs, &value),
                "mtu" => raw.mtu = sc(),
                "header" => {
                    let (k, v) = value
                        .split_once(':')
                        .ok_or("a header= option is not NAME:VALUE (e.g. header=Authorization:Bearer TOKEN)")?;
                    raw.headers
                        .get_or_insert_with(HashMap::new)
                        .insert(k.trim().to_string(), v.trim().to_string());
                }
                _ => unreachable!("keys are filtered against OPTION_KEYS"),
            }
        }
        Ok(raw)
    }

    /// Validate into a [`Check`].
    pub fn into_check(self, d: &Defaults) -> Result<Check, String> {
        let mut forms: Vec<(&str, String)> = Vec::new();
        if let Some(c) = &self.check {
            let c = c.trim();
            let (kind, rest) = split_kind(c)?;
            forms.push((kind, rest.to_string()));
        }
        for (kind, v) in [
            ("dns", &self.dns),
            ("tcp", &self.tcp),
            ("tls", &self.tls),
            ("icmp", &self.icmp),
            ("udp", &self.udp),
            ("http", &self.http),
            ("port", &self.port),
            ("interface", &self.interface),
        ] {
            if let Some(v) = v {
                forms.push((kind, v.trim().to_string()));
            }
        }
        let (kind_name, target) = match forms.len() {
            1 => forms.remove(0),
            0 => {
                return Err(
                    "no check given (expected one of check, dns, tcp, tls, icmp, udp, http, port, interface)".into(),
                );
            }
            _ => {
                return Err(format!(
                    "more than one check in one entry ({}); give each its own entry",
                    forms.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                ));
            }
        };
        let default_name = match kind_name {
            // The URL as it may be shown: a password in it never becomes the check's name.
            "http" => initbox_runtime::url::display(&target),
            k => format!("{k}:{target}"),
        };
        let name = self.name.clone().unwrap_or_else(|| default_name.clone());
        if name.trim().is_empty() {
            return Err("empty name".into());
        }

        let expect = match self.expect.as_deref().map(str::trim) {
            None | Some("pass") | Some("ok") | Some("success") => Expect::Pass,
            Some("blocked") => Expect::Blocked,
            Some("fail") => Expect::Fail,
            Some(other) => {
                return Err(format!(
                    "expect '{other}' is not known (expected pass, blocked or fail)"
                ));
            }
        };
        let timeout = opt_duration("timeout", &self.timeout)?.unwrap_or(d.timeout);
        if timeout.is_zero() {
            return Err("timeout must be more than 0".into());
        }
        let retries = opt_uint("retries", &self.retries)?.unwrap_or(d.retries);
        let retry_delay = opt_duration("retry_delay", &self.retry_delay)?.unwrap_or(d.retry_delay);

        let kind = match kind_name {
            "dns" => {
                let host = parse_host(&target).map_err(|e| format!("dns name: {e}"))?;
                let Host::Name(name) = host else {
                    return Err(format!(
                        "dns:{target}: an IP address needs no lookup (expected a name)"
                    ));
                };
                let kind = match &self.record_type {
                    None => QueryType::Address,
                    Some(t) => parse_record_type(t)?,
                };
                let values = self
                    .values
                    .as_ref()
                    .map(OneOrMany::texts)
                    .unwrap_or_default();
                let server = match &self.server {
                    Some(s) => Some(parse_server(s)?),
                    None => d.server,
                };
                Kind::Dns(DnsCheck {
                    name,
                    kind,
                    values,
                    server,
                })
            }
            "tcp" => Kind::Tcp(parse_host_port(&target, None)?),
            "tls" => {
                let target = parse_host_port(&target, Some(443))?;
                let (warn_days, fail_days) = days(
                    opt_uint("warn_days", &self.warn_days)?.unwrap_or(d.warn_days),
                    opt_uint("fail_days", &self.fail_days)?.unwrap_or(d.fail_days),
                )?;
                let sni = self.sni.clone();
                if let Some(s) = &sni {
                    parse_host(s).map_err(|e| format!("sni: {e}"))?;
                }
                Kind::Tls(TlsCheck {
                    target,
                    sni,
                    warn_days,
                    fail_days,
                    ca_file: self.ca_file.clone().or(d.ca_file.clone()),
                })
            }
            "icmp" => {
                let host = parse_host(&target)?;
                let count = opt_uint("count", &self.count)?.unwrap_or(d.count);
                if count == 0 || count > 1000 {
                    return Err(format!("count {count} is out of range (expected 1-1000)"));
                }
                let interval = opt_duration("interval", &self.interval)?.unwrap_or(d.interval);
                let max_loss = match &self.max_loss {
                    Some(s) => parse_loss(&s.text())?,
                    None => d.max_loss,
                };
                Kind::Icmp(IcmpCheck {
                    host,
                    count,
                    interval,
                    max_loss,
                })
            }
            "udp" => {
                let target = parse_host_port(&target, None)?;
                let given = [
                    self.send.is_some(),
                    self.send_hex.is_some(),
                    self.query.is_some(),
                ];
                let payload = match given.iter().filter(|g| **g).count() {
                    0 if target.port == 53 => UdpPayload::Dns(".".into()),
                    0 => {
                        return Err(format!(
                            "udp:{target} needs a request (send=TEXT, send_hex=HEX or query=DNSNAME): \
                             without a reply, silence proves nothing"
                        ));
                    }
                    1 => {
                        if let Some(s) = &self.send {
                            UdpPayload::Bytes(unescape(s)?)
                        } else if let Some(h) = &self.send_hex {
                            UdpPayload::Bytes(parse_hex(h)?)
                        } else {
                            let q = self.query.clone().unwrap_or_default();
                            if q != "." {
                                parse_host(&q).map_err(|e| format!("query: {e}"))?;
                            }
                            UdpPayload::Dns(q)
                        }
                    }
                    _ => return Err("give only one of send, send_hex, query".into()),
                };
                let reply = match &self.reply {
                    Some(r) => Some(unescape(r)?),
                    None => None,
                };
                if reply.is_some() && matches!(payload, UdpPayload::Dns(_)) {
                    return Err(
                        "reply= applies to send/send_hex payloads (a DNS query checks the answer itself)"
                            .into(),
                    );
                }
                Kind::Udp(UdpCheck {
                    target,
                    payload,
                    reply,
                })
            }
            "http" => {
                let url = crate::http::validate_url(&target)?;
                let (warn_days, fail_days) = days(
                    opt_uint("warn_days", &self.warn_days)?.unwrap_or(d.warn_days),
                    opt_uint("fail_days", &self.fail_days)?.unwrap_or(d.fail_days),
                )?;
                let method = self
                    .method
                    .clone()
                    .unwrap_or_else(|| "GET".into())
                    .to_ascii_uppercase();
                if !["GET", "HEAD", "POST", "PUT", "OPTIONS", "DELETE", "PATCH"]
                    .contains(&method.as_str())
                {
                    return Err(format!("method '{method}' is not known"));
                }
                use initbox_probe::http::{JsonMatch, StatusSet, parse_regex};
                let status_texts = self
                    .status
                    .as_ref()
                    .map(OneOrMany::texts)
                    .unwrap_or_default();
                let status = if status_texts.is_empty() {
                    StatusSet::success()
                } else {
                    status_texts.join(",").parse::<StatusSet>()?
                };
                let body = match &self.body {
                    Some(b) => Some(parse_regex(b).map_err(|e| format!("body: {e}"))?),
                    None => None,
                };
                let json = self
                    .json
                    .as_ref()
                    .map(OneOrMany::texts)
                    .unwrap_or_default()
                    .iter()
                    .map(|j| j.parse::<JsonMatch>())
                    .collect::<Result<Vec<_>, _>>()?;
                let mut headers: Vec<(String, String)> = self
                    .headers
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                headers.sort();
                for (k, v) in &headers {
                    hyper::header::HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| format!("header name '{k}' is not valid"))?;
                    hyper::header::HeaderValue::from_str(v)
                        .map_err(|_| format!("header '{k}' has a value that is not valid"))?;
                    let n = k.to_ascii_lowercase();
                    if [
                        "authorization",
                        "cookie",
                        "token",
                        "secret",
                        "key",
                        "password",
                        "auth",
                    ]
                    .iter()
                    .any(|w| n.contains(w))
                    {
                        initbox_runtime::redact::register(v);
                    }
                }
                let follow_redirects = match self.redirects.as_deref() {
                    None | Some("none") | Some("no") => false,
                    Some("follow") | Some("yes") => true,
                    Some(r) => {
                        return Err(format!(
                            "redirects '{r}' is not known (expected follow or none)"
                        ));
                    }
                };
                Kind::Http(HttpCheck {
                    follow_redirects,
                    url,
                    method,
                    expect: initbox_probe::http::Expect { status, body, json },
                    headers,
                    ca_file: self.ca_file.clone().or(d.ca_file.clone()),
                    warn_days,
                    fail_days,
                })
            }
            "port" => {
                let (proto, port) = crate::local::parse_port(&target)?;
                Kind::Port(crate::local::PortCheck {
                    proto,
                    port,
                    ips: self.ips.as_ref().map(OneOrMany::texts).unwrap_or_default(),
                })
            }
            "interface" => {
                if target.is_empty() || target.len() > 15 || target.contains(['/', '\0']) {
                    return Err(format!("interface '{target}' is not an interface name"));
                }
                let mtu = match &self.mtu {
                    Some(m) => Some(
                        m.text()
                            .parse::<u32>()
                            .map_err(|_| format!("mtu '{}' is not a whole number", m.text()))?,
                    ),
                    None => None,
                };
                Kind::Interface(crate::local::InterfaceCheck {
                    name: target.clone(),
                    addrs: self
                        .addrs
                        .as_ref()
                        .map(OneOrMany::texts)
                        .unwrap_or_default(),
                    mtu,
                })
            }
            _ => unreachable!(),
        };
        if matches!(kind, Kind::Port(_) | Kind::Interface(_)) {
            if expect == Expect::Blocked {
                return Err(format!(
                    "expect 'blocked' applies to the network, not to a {} of this host",
                    kind.type_name()
                ));
            }
            // goss would test these and always fail: nothing bound has no address.
            if expect == Expect::Fail
                && (self.ips.is_some() || self.addrs.is_some() || self.mtu.is_some())
            {
                return Err(format!(
                    "a {} expected absent has no addresses or MTU to check",
                    kind.type_name()
                ));
            }
        }
        // Options that do not apply to this type are an error, not silently ignored.
        let allowed: &[&str] = match &kind {
            Kind::Dns(_) => &["type", "values", "server"],
            Kind::Tcp(_) => &[],
            Kind::Tls(_) => &["sni", "warn_days", "fail_days", "ca_file"],
            Kind::Icmp(_) => &["count", "interval", "max_loss"],
            Kind::Udp(_) => &["send", "send_hex", "query", "reply"],
            Kind::Http(_) => &[
                "warn_days",
                "fail_days",
                "method",
                "status",
                "body",
                "json",
                "headers",
                "ca_file",
                "redirects",
            ],
            Kind::Port(_) => &["ips"],
            Kind::Interface(_) => &["addrs", "mtu"],
        };
        let all_specific = [
            ("type", self.record_type.is_some()),
            ("values", self.values.is_some()),
            ("server", self.server.is_some()),
            ("sni", self.sni.is_some()),
            ("warn_days", self.warn_days.is_some()),
            ("fail_days", self.fail_days.is_some()),
            ("ca_file", self.ca_file.is_some()),
            ("count", self.count.is_some()),
            ("interval", self.interval.is_some()),
            ("max_loss", self.max_loss.is_some()),
            ("send", self.send.is_some()),
            ("send_hex", self.send_hex.is_some()),
            ("query", self.query.is_some()),
            ("reply", self.reply.is_some()),
            ("method", self.method.is_some()),
            ("status", self.status.is_some()),
            ("body", self.body.is_some()),
            ("json", self.json.is_some()),
            ("headers", self.headers.is_some()),
            ("redirects", self.redirects.is_some()),
            ("ips", self.ips.is_some()),
            ("addrs", self.addrs.is_some()),
            ("mtu", self.mtu.is_some()),
        ];
        for (key, set) in all_specific {
            if set && !allowed.contains(&key) {
                return Err(format!(
                    "option '{key}' does not apply to a {} check",
                    kind.type_name()
                ));
            }
        }
        let shown = match &kind {
            Kind::Dns(dns) => dns.name.clone(),
            Kind::Tcp(t) => t.to_string(),
            Kind::Tls(t) => t.target.to_string(),
            Kind::Icmp(i) => i.host.to_string(),
            Kind::Udp(u) => u.target.to_string(),
            Kind::Http(h) => initbox_runtime::url::display(&h.url),
            Kind::Port(p) => format!("{}:{}", p.proto.as_str(), p.port),
            Kind::Interface(i) => i.name.clone(),
        };
        Ok(Check {
            name,
            target: shown,
            kind,
            expect,
            control: self.control.clone(),
            timeout,
            retries,
            retry_delay,
        })
    }
}

fn days(warn: u32, fail: u32) -> Result<(u32, u32), String> {
    if fail > warn {
        return Err(format!(
            "fail_days ({fail}) is larger than warn_days ({warn}); a certificate would fail before it warns"
        ));
    }
    Ok((warn, fail))
}

/// `dns:NAME` → ("dns", "NAME"); URLs keep their scheme.
pub fn split_kind(c: &str) -> Result<(&'static str, &str), String> {
    let lower = c.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(("http", c));
    }
    let Some((kind, rest)) = c.split_once(':') else {
        return Err(format!(
            "'{c}' has no check type (expected dns:NAME, tcp:HOST:PORT, tls:HOST[:PORT], icmp:HOST, \
             udp:HOST:PORT or an http(s):// URL)"
        ));
    };
    let kind = match kind.to_ascii_lowercase().as_str() {
        "dns" => "dns",
        "tcp" => "tcp",
        "tls" => "tls",
        "icmp" | "ping" => "icmp",
        "udp" => "udp",
        "port" => "port",
        "interface" => "interface",
        other => {
            return Err(format!(
                "unknown check type '{other}' in '{c}' (expected dns, tcp, tls, icmp, udp, port, interface, http://, https://)"
            ));
        }
    };
    if rest.is_empty() {
        return Err(format!("'{c}': missing target after '{kind}:'"));
    }
    Ok((kind, rest))
}

fn opt_duration(key: &str, v: &Option<Scalar>) -> Result<Option<Duration>, String> {
    match v {
        None => Ok(None),
        Some(s) => duration::parse(&s.text())
            .map(Some)
            .map_err(|e| format!("{key}: {e}")),
    }
}

fn opt_uint(key: &str, v: &Option<Scalar>) -> Result<Option<u32>, String> {
    match v {
        None => Ok(None),
        Some(s) => {
            let t = s.text();
            t.trim()
                .parse::<u32>()
                .map(Some)
                .map_err(|_| format!("{key}: '{t}' is not a whole number ≥ 0"))
        }
    }
}

/// `10%`, `0.1` or `0`.
pub fn parse_loss(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("max_loss '{t}' is not a percentage (e.g. 0%, 34%)"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("max_loss '{t}' is not between 0% and 100%"));
    }
    Ok(v)
}

/// The record types wait-for-dns knows (its probe does the lookup).
fn parse_record_type(t: &str) -> Result<QueryType, String> {
    use clap::ValueEnum;
    QueryType::from_str(t.trim(), true).map_err(|_| {
        format!(
            "record type '{t}' is not supported (expected address, A, AAAA, CNAME, SRV, TXT or MX)"
        )
    })
}

/// Text with `\n`, `\r`, `\t`, `\0`, `\\` and `\xHH` escapes.
fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let next = *b
            .get(i + 1)
            .ok_or_else(|| format!("'{s}' ends with a lone backslash"))?;
        match next {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'0' => out.push(0),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex = s
                    .get(i + 2..i + 4)
                    .ok_or_else(|| format!("'{s}': \\x needs two hex digits"))?;
                out.push(
                    u8::from_str_radix(hex, 16)
                        .map_err(|_| format!("'{s}': \\x{hex} is not a hex byte"))?,
                );
                i += 2;
            }
            other => {
                return Err(format!(
                    "'{s}': unknown escape '\\{}' (known: \\n \\r \\t \\0 \\\\ \\xHH)",
                    other as char
                ));
            }
        }
        i += 2;
    }
    Ok(out)
}

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if t.is_empty() || !t.len().is_multiple_of(2) {
        return Err(format!(
            "send_hex '{s}' is not an even number of hex digits"
        ));
    }
    (0..t.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&t[i..i + 2], 16)
                .map_err(|_| format!("send_hex '{s}' contains a non-hex digit"))
        })
        .collect()
}

/// The spec file: `defaults` and `checks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    defaults: Option<SpecDefaults>,
    checks: Vec<RawCheck>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecDefaults {
    timeout: Option<Scalar>,
    retries: Option<Scalar>,
    retry_delay: Option<Scalar>,
    warn_days: Option<Scalar>,
    fail_days: Option<Scalar>,
    count: Option<Scalar>,
    interval: Option<Scalar>,
    max_loss: Option<Scalar>,
    server: Option<String>,
    ca_file: Option<PathBuf>,
}

/// Read a spec file; every error names the file and the entry.
pub fn read_spec(path: &Path, defaults: &Defaults) -> Result<Vec<Check>, String> {
    let shown = path.display();
    let text = initbox_runtime::input::read_string(path, &format!("spec {shown}"))
        .map_err(|f| f.message)?;
    if let Some(raws) = goss_checks(&text, &shown.to_string())? {
        return raws
            .into_iter()
            .map(|raw| {
                let label = raw.name.clone().unwrap_or_default();
                raw.into_check(defaults)
                    .map_err(|e| format!("goss file {shown}: {label}: {e}"))
            })
            .collect();
    }
    let spec: SpecFile = serde_norway::from_str(&text).map_err(|e| {
        // The file may hold passwords: the message names the problem, never the text.
        let msg = initbox_runtime::redact::without_input_values(&e.to_string());
        format!("spec {shown}: {msg}")
    })?;
    if let Some(v) = spec.version.filter(|v| *v != 1) {
        return Err(format!(
            "spec {shown}: version {v} is not supported (expected 1)"
        ));
    }
    let mut d = defaults.clone();
    if let Some(sd) = spec.defaults {
        let ctx = |e: String| format!("spec {shown}: defaults: {e}");
        if let Some(t) = opt_duration("timeout", &sd.timeout).map_err(ctx)? {
            d.timeout = t;
        }
        if let Some(r) = opt_uint("retries", &sd.retries).map_err(ctx)? {
            d.retries = r;
        }
        if let Some(r) = opt_duration("retry_delay", &sd.retry_delay).map_err(ctx)? {
            d.retry_delay = r;
        }
        if let Some(w) = opt_uint("warn_days", &sd.warn_days).map_err(ctx)? {
            d.warn_days = w;
        }
        if let Some(f) = opt_uint("fail_days", &sd.fail_days).map_err(ctx)? {
            d.fail_days = f;
        }
        if let Some(c) = opt_uint("count", &sd.count).map_err(ctx)? {
            d.count = c;
        }
        if let Some(i) = opt_duration("interval", &sd.interval).map_err(ctx)? {
            d.interval = i;
        }
        if let Some(l) = &sd.max_loss {
            d.max_loss = parse_loss(&l.text()).map_err(ctx)?;
        }
        if let Some(s) = &sd.server {
            d.server = Some(parse_server(s).map_err(ctx)?);
        }
        if sd.ca_file.is_some() {
            d.ca_file = sd.ca_file;
        }
    }
    if spec.checks.is_empty() {
        return Err(format!("spec {shown}: 'checks' is empty"));
    }
    spec.checks
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let label = match &raw.name {
                Some(n) => format!("checks[{i}] ({n})"),
                None => format!("checks[{i}]"),
            };
            raw.into_check(&d)
                .map_err(|e| format!("spec {shown}: {label}: {e}"))
        })
        .collect()
}

/// The checks of `text` when it is a goss file (see [`crate::goss`]), else `None`.
pub fn goss_checks(text: &str, shown: &str) -> Result<Option<Vec<RawCheck>>, String> {
    let Ok(doc) = serde_norway::from_str::<serde_norway::Value>(text) else {
        return Ok(None);
    };
    if !crate::goss::is_goss(&doc) {
        return Ok(None);
    }
    if text.contains("{{") {
        return Err(format!(
            "goss file {shown}: goss templates ({{{{ ... }}}}) are not supported: render the file first (goss render)"
        ));
    }
    crate::goss::convert(&doc, shown).map(Some)
}

/// Names must be unique; a blocked check needs a control that exists and is expected to pass.
pub fn validate_set(checks: &[Check]) -> Result<(), String> {
    let mut seen = HashSet::new();
    for c in checks {
        if !seen.insert(c.name.as_str()) {
            return Err(format!(
                "two checks are named '{}' (names must be unique: give one name=...)",
                c.name
            ));
        }
    }
    for c in checks {
        match (&c.control, c.expect) {
            (None, Expect::Blocked) => {
                return Err(format!(
                    "check '{}' expects blocked but names no control (control=NAME of a check that must pass, \
                     so a dead network does not look like a working policy)",
                    c.name
                ));
            }
            (Some(ctl), _) => {
                let Some(target) = checks.iter().find(|o| &o.name == ctl) else {
                    return Err(format!(
                        "check '{}': control '{ctl}' is not the name of a check",
                        c.name
                    ));
                };
                if target.expect != Expect::Pass || target.name == c.name {
                    return Err(format!(
                        "check '{}': control '{ctl}' must be another check expected to pass",
                        c.name
                    ));
                }
            }
            (None, Expect::Pass | Expect::Fail) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn defaults() -> Defaults {
        Defaults {
            timeout: Duration::from_secs(5),
            retries: 0,
            retry_delay: Duration::from_millis(500),
            warn_days: 30,
            fail_days: 7,
            count: 3,
            interval: Duration::from_millis(200),
            max_loss: 0.0,
            server: None,
            ca_file: None,
        }
    }

    fn check(s: &str) -> Result<Check, String> {
        RawCheck::from_arg(s)?.into_check(&defaults())
    }

    #[test]
    fn forms() {
        let c = check("tcp:db:5432").unwrap();
        assert_eq!(c.name, "tcp:db:5432");
        assert!(matches!(c.kind, Kind::Tcp(ref hp) if hp.port == 5432));
        let c = check("tcp:10.0.0.1:443,expect=blocked,control=db,timeout=1s").unwrap();
        assert_eq!(c.expect, Expect::Blocked);
        assert_eq!(c.control.as_deref(), Some("db"));
        assert_eq!(c.timeout, Duration::from_secs(1));
        let c = check("tls:api.example").unwrap();
        assert!(matches!(c.kind, Kind::Tls(ref t) if t.target.port == 443));
        let c = check("dns:db.ns.svc,type=A,value=10.0.0.1,value=10.0.0.2").unwrap();
        let Kind::Dns(d) = c.kind else { panic!() };
        assert_eq!(d.values, vec!["10.0.0.1", "10.0.0.2"]);
        let c = check("icmp:10.0.0.1,count=5,max-loss=20%").unwrap();
        let Kind::Icmp(i) = c.kind else { panic!() };
        assert_eq!((i.count, i.max_loss), (5, 0.2));
        let c = check("udp:10.0.0.10:53").unwrap();
        assert!(matches!(c.kind, Kind::Udp(ref u) if matches!(u.payload, UdpPayload::Dns(_))));
        let c = check("udp:h:7,send=ping\\n,reply=pong").unwrap();
        let Kind::Udp(u) = c.kind else { panic!() };
        assert!(matches!(u.payload, UdpPayload::Bytes(ref b) if b == b"ping\n"));
        let c = check("https://api/x?a=1,2,status=200,204,body=ok").unwrap();
        let Kind::Http(h) = c.kind else { panic!() };
        assert_eq!(h.url, "https://api/x?a=1,2");
        assert!(h.expect.status.contains(204) && !h.expect.status.contains(201));
        assert_eq!(c.name, "https://api/x?a=1,2");
    }

    #[test]
    fn malformed_checks_say_what_is_wrong() {
        let cases = [
            ("db:5432", "unknown check type 'db'"),
            ("tcp", "no check type"),
            ("tcp:", "missing target"),
            ("tcp:db", "missing port"),
            ("tcp:db:99999", "out of range"),
            ("dns:bad name", "not allowed"),
            ("dns:10.0.0.1", "needs no lookup"),
            ("dns:x,type=BOGUS", "record type 'BOGUS'"),
            ("tcp:db:1,expect=maybe", "expect 'maybe'"),
            ("tcp:db:1,count=3", "'count' does not apply to a tcp"),
            ("icmp:h,count=0", "count 0"),
            ("icmp:h,max_loss=150%", "between 0% and 100%"),
            ("udp:h:7", "silence proves nothing"),
            ("udp:h:7,send_hex=abc", "even number"),
            ("udp:h:7,send=\\q", "unknown escape"),
            ("tls:h:443,warn_days=3,fail_days=7", "larger than warn_days"),
            ("tcp:db:1,timeout=soon", "timeout"),
            ("tcp:db:1,retries=-1", "retries"),
            ("http://", "URL"),
            ("https://h/,status=700", "'700' is not an HTTP status"),
            (
                "https://h/,body=(",
                "body: '(' is not a valid regular expression",
            ),
            ("https://h/,json=a[x]=1", "not an array index"),
            ("ftp://h/", "unknown check type 'ftp'"),
        ];
        for (input, needle) in cases {
            let e = check(input).unwrap_err();
            assert!(e.contains(needle), "{input}: {e}");
            assert!(!e.contains('\n'), "{input}: {e}");
        }
    }

    #[test]
    fn header_values_may_hold_spaces_and_are_never_shown() {
        let arg = "http://h/ok,header=Authorization:Bearer  tok-1 x,name=api tcp:db:5432 \
                   https://h/b,header=X-A:1 2,header=X-B:b c  dns:x";
        assert_eq!(
            split_checks(arg),
            vec![
                "http://h/ok,header=Authorization:Bearer  tok-1 x,name=api",
                "tcp:db:5432",
                "https://h/b,header=X-A:1 2,header=X-B:b c",
                "dns:x",
            ]
        );
        // Outside a header value, white space still separates (and a stray word is its own check).
        assert_eq!(
            split_checks(" tcp:a:1,name=x y\tdns:b "),
            vec!["tcp:a:1,name=x", "y", "dns:b"]
        );
        let c = check("http://h/ok,header=Authorization:Bearer tok-1,status=200").unwrap();
        let Kind::Http(h) = c.kind else { panic!() };
        assert_eq!(
            h.headers,
            vec![("Authorization".into(), "Bearer tok-1".into())]
        );
        assert_eq!(
            shown_arg("http://h/,header=Authorization:Bearer a,b,status=200,header=X-K,header=Y:z"),
            "http://h/,header=Authorization:…,status=200,header=…,header=Y:…"
        );
        let e = check("http://h/,header=Bearer-s3cr3t-only").unwrap_err();
        assert!(e.contains("not NAME:VALUE") && !e.contains("s3cr3t"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(s in "\\PC{0,60}") {
            if let Ok(raw) = RawCheck::from_arg(&s) {
                let _ = raw.into_check(&defaults());
            }
        }

        #[test]
        fn tcp_targets_round_trip(host in "[a-z][a-z0-9-]{0,20}[a-z0-9]", port in 1u16..=65535) {
            let c = check(&format!("tcp:{host}:{port},timeout=2s")).unwrap();
            proptest::prop_assert_eq!(c.target, format!("{host}:{port}"));
            proptest::prop_assert_eq!(c.timeout, Duration::from_secs(2));
        }
    }

    #[test]
    fn sets_need_unique_names_and_controls() {
        let c = |s: &str| check(s).unwrap();
        let e = validate_set(&[c("tcp:a:1"), c("tcp:a:1")]).unwrap_err();
        assert!(e.contains("two checks are named"), "{e}");
        let e = validate_set(&[c("tcp:a:1,expect=blocked")]).unwrap_err();
        assert!(e.contains("names no control"), "{e}");
        let e = validate_set(&[c("tcp:a:1,expect=blocked,control=x")]).unwrap_err();
        assert!(e.contains("not the name of a check"), "{e}");
        validate_set(&[c("tcp:a:1,expect=blocked,control=ok"), c("tcp:b:1,name=ok")]).unwrap();
    }

    #[test]
    fn spec_files_are_validated_with_the_entry_named() {
        let dir = std::env::temp_dir().join(format!("nc-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("s.yaml");
        std::fs::write(
            &f,
            "defaults: {timeout: 2s, retries: 1}\nchecks:\n  - name: db\n    tcp: db:5432\n  - dns: db\n    type: A\n    values: [10.0.0.1]\n",
        )
        .unwrap();
        let checks = read_spec(&f, &defaults()).unwrap();
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].timeout, Duration::from_secs(2));
        assert_eq!(checks[1].retries, 1);
        std::fs::write(&f, "checks:\n  - name: db\n    tcp: db:5432\n    cont: x\n").unwrap();
        let e = read_spec(&f, &defaults()).unwrap_err();
        assert!(e.contains("unknown field `cont`"), "{e}");
        std::fs::write(&f, "checks:\n  - name: db\n    tcp: db\n").unwrap();
        let e = read_spec(&f, &defaults()).unwrap_err();
        assert!(
            e.contains("checks[0] (db)") && e.contains("missing port"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
