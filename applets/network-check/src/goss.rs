//! goss files (`goss.yaml`), read as goss reads them: the network resources `addr`, `dns` and
//! `http`, and the host's `port` and `interface` ([`crate::local`]), become initbox checks with goss's units and defaults (a bare integer timeout is
//! milliseconds: 500 for addr and dns, 5000 for http; http follows redirects unless
//! `no-follow-redirects: true`); what initbox cannot check the same way is refused, naming the
//! resource, never approximated. `--print-spec` shows the converted initbox spec.
//!
//! The rules follow goss's documentation (docs/gossfile.md) and its resource code.

use std::collections::HashMap;

use serde_norway::{Mapping, Value};

use crate::spec::{OneOrMany, RawCheck, Scalar};

/// Top-level keys of a goss file (every resource type, the `gossfile` include).
const GOSS_KEYS: &[&str] = &[
    "addr",
    "command",
    "dns",
    "file",
    "gossfile",
    "group",
    "http",
    "interface",
    "kernel-param",
    "matching",
    "mount",
    "package",
    "port",
    "process",
    "service",
    "user",
];

/// A YAML document is a goss file when its top level is a mapping of goss resource types only
/// (an initbox spec has `checks`).
pub fn is_goss(doc: &Value) -> bool {
    let Value::Mapping(m) = doc else {
        return false;
    };
    !m.is_empty()
        && m.keys()
            .all(|k| k.as_str().is_some_and(|k| GOSS_KEYS.contains(&k)))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// goss's timeout: an integer number of milliseconds (`0` or absent: the resource's default).
fn millis(attrs: &Mapping, default: u64) -> Result<Scalar, String> {
    let ms = match attrs.get("timeout") {
        None | Some(Value::Null) => default,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => default,
            Some(ms) => ms,
            None => return Err(format!("timeout {n} is not a whole number of milliseconds")),
        },
        Some(other) => {
            return Err(format!(
                "timeout {} is not a number of milliseconds (goss reads a bare integer)",
                text(other).unwrap_or_else(|| "?".into())
            ));
        }
    };
    Ok(Scalar::Str(format!("{ms}ms")))
}

fn boolean(attrs: &Mapping, key: &str) -> Result<Option<bool>, String> {
    match attrs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("'{key}' must be true or false")),
    }
}

fn strings(attrs: &Mapping, key: &str) -> Result<Vec<String>, String> {
    match attrs.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(s)) => s
            .iter()
            .map(|v| text(v).ok_or_else(|| format!("'{key}' holds a value that is not text")))
            .collect(),
        Some(Value::Mapping(_)) => Err(format!(
            "'{key}' uses an advanced goss matcher; initbox reads only the plain list \
             (every listed value must be present)"
        )),
        Some(v) => text(v)
            .map(|t| vec![t])
            .ok_or_else(|| format!("'{key}' is not a list")),
    }
}

/// Refuse any attribute not in `known` (goss would test it; initbox cannot, so it says so).
fn only(attrs: &Mapping, known: &[&str]) -> Result<(), String> {
    for k in attrs.keys() {
        let k = k.as_str().unwrap_or("?");
        if !known.contains(&k) {
            return Err(format!(
                "attribute '{k}' is not supported by initbox (supported: {})",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

/// The expectation of a goss boolean like `reachable`/`resolvable`.
fn expectation(attrs: &Mapping, keys: &[&str]) -> Result<Option<String>, String> {
    for k in keys {
        if let Some(b) = boolean(attrs, k)? {
            return Ok((!b).then(|| "fail".to_string()));
        }
    }
    Err(format!("'{}' is required", keys[0]))
}

fn addr(key: &str, attrs: &Mapping) -> Result<RawCheck, String> {
    only(
        attrs,
        &["reachable", "timeout", "address", "skip", "title", "meta"],
    )?;
    let address = match attrs.get("address").and_then(text) {
        Some(a) => a,
        None => key.to_string(),
    };
    let target = match address.split_once("://") {
        Some(("tcp", rest)) => rest.to_string(),
        Some((proto, _)) => {
            return Err(format!(
                "{proto} addresses are not supported: goss's udp 'reachable' only opens a \
                 socket (it sends nothing); use an initbox udp check with a request"
            ));
        }
        None => address.clone(),
    };
    Ok(RawCheck {
        name: Some(format!("addr:{key}")),
        tcp: Some(target),
        expect: expectation(attrs, &["reachable"])?,
        timeout: Some(millis(attrs, 500)?),
        ..RawCheck::default()
    })
}

fn dns(key: &str, attrs: &Mapping) -> Result<RawCheck, String> {
    only(
        attrs,
        &[
            "resolvable",
            "resolveable",
            "resolve",
            "addrs",
            "server",
            "timeout",
            "skip",
            "title",
            "meta",
        ],
    )?;
    let host = attrs
        .get("resolve")
        .and_then(text)
        .unwrap_or_else(|| key.to_string());
    let (record_type, name) = match host.split_once(':') {
        Some((t, n)) if t.chars().all(|c| c.is_ascii_uppercase()) => (Some(t.to_string()), n),
        _ => (None, host.as_str()),
    };
    let addrs = strings(attrs, "addrs")?;
    if let Some(t) = &record_type {
        match t.as_str() {
            "A" | "AAAA" => {}
            "CNAME" | "MX" | "SRV" | "TXT" if addrs.is_empty() => {}
            "CNAME" | "MX" | "SRV" | "TXT" => {
                return Err(format!(
                    "{t} 'addrs' are written differently by goss (e.g. \"0 5 443 a.example.\") \
                     and initbox; check {t} values with an initbox dns check"
                ));
            }
            _ => return Err(format!("record type {t} is not supported by initbox")),
        }
        if attrs.get("server").is_none() {
            return Err(format!("goss needs 'server' for a {t} lookup"));
        }
    }
    let server = attrs.get("server").and_then(text);
    Ok(RawCheck {
        name: Some(format!("dns:{key}")),
        dns: Some(name.to_string()),
        expect: expectation(attrs, &["resolvable", "resolveable"])?,
        record_type: record_type.map(|t| t.to_ascii_lowercase()),
        values: (!addrs.is_empty())
            .then(|| OneOrMany::Many(addrs.into_iter().map(Scalar::Str).collect())),
        // goss's DNS timeout applies only with a server; the system resolver has none there,
        // initbox bounds it by the same 500 ms.
        timeout: Some(millis(attrs, 500)?),
        server,
        ..RawCheck::default()
    })
}

/// One goss body pattern as an initbox regular expression: `foo` (a line contains it),
/// `/re/` (a line matches); `!` negations are refused.
fn body_pattern(p: &str) -> Result<String, String> {
    if p.starts_with('!') {
        return Err(format!(
            "body pattern '{p}': negated patterns are not supported by initbox"
        ));
    }
    let p = p.strip_prefix('\\').unwrap_or(p);
    Ok(
        match p.strip_prefix('/').and_then(|r| r.strip_suffix('/')) {
            // goss matches line by line: ^ and $ are line anchors.
            Some(re) => format!("(?m){re}"),
            None => regex_escape(p),
        },
    )
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn http(key: &str, attrs: &Mapping) -> Result<RawCheck, String> {
    only(
        attrs,
        &[
            "status",
            "url",
            "allow-insecure",
            "no-follow-redirects",
            "timeout",
            "request-headers",
            "body",
            "username",
            "password",
            "ca-file",
            "method",
            "skip",
            "title",
            "meta",
        ],
    )?;
    let url = attrs
        .get("url")
        .and_then(text)
        .unwrap_or_else(|| key.to_string());
    let status = match attrs.get("status") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Mapping(_)) => {
            return Err("'status' uses an advanced goss matcher; give the code".into());
        }
        _ => return Err("'status' is required (the expected code, e.g. 200)".into()),
    };
    if boolean(attrs, "allow-insecure")? == Some(true) {
        return Err(
            "allow-insecure: true is not supported: initbox verifies TLS; give the \
                    server's CA with ca-file"
                .into(),
        );
    }
    let follow = !boolean(attrs, "no-follow-redirects")?.unwrap_or(false);
    let mut headers = HashMap::new();
    for h in strings(attrs, "request-headers")? {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("request header '{h}' is not 'Name: value'"))?;
        initbox_runtime::redact::register(v.trim());
        headers.insert(k.trim().to_string(), v.trim().to_string());
    }
    let user = attrs.get("username").and_then(text).unwrap_or_default();
    let pass = attrs.get("password").and_then(text).unwrap_or_default();
    if !user.is_empty() || !pass.is_empty() {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        initbox_runtime::redact::register(&pass);
        initbox_runtime::redact::register(&token);
        headers.insert("Authorization".into(), format!("Basic {token}"));
    }
    let body = strings(attrs, "body")?;
    let body = match body.as_slice() {
        [] => None,
        [one] => Some(body_pattern(one)?),
        _ => {
            return Err(
                "several body patterns are not supported by initbox (give one pattern)".into(),
            );
        }
    };
    Ok(RawCheck {
        name: Some(format!("http:{}", initbox_runtime::url::display(key))),
        http: Some(url),
        status: Some(OneOrMany::One(Scalar::Str(status))),
        timeout: Some(millis(attrs, 5000)?),
        redirects: Some(if follow { "follow" } else { "none" }.into()),
        method: attrs.get("method").and_then(text),
        body,
        headers: (!headers.is_empty()).then_some(headers),
        ca_file: attrs.get("ca-file").and_then(text).map(Into::into),
        ..RawCheck::default()
    })
}

/// goss `port`: `tcp:22` (or a bare `22`) with `listening` and the `ip` list.
fn port(key: &str, attrs: &Mapping) -> Result<RawCheck, String> {
    only(attrs, &["listening", "ip", "skip", "title", "meta"])?;
    let ips = strings(attrs, "ip")?;
    let expect = expectation(attrs, &["listening"])?;
    if expect.is_some() && !ips.is_empty() {
        return Err(
            "'ip' with listening: false always fails in goss (nothing listening has \
                    no address); drop one of them"
                .into(),
        );
    }
    crate::local::parse_port(key)?;
    Ok(RawCheck {
        name: Some(format!("port:{key}")),
        port: Some(key.to_string()),
        expect,
        ips: (!ips.is_empty()).then(|| OneOrMany::Many(ips.into_iter().map(Scalar::Str).collect())),
        ..RawCheck::default()
    })
}

/// goss `interface`: `exists`, the `addrs` list (`ADDRESS/PREFIX`) and `mtu`.
fn interface(key: &str, attrs: &Mapping) -> Result<RawCheck, String> {
    only(attrs, &["exists", "addrs", "mtu", "skip", "title", "meta"])?;
    let addrs = strings(attrs, "addrs")?;
    let mtu = match attrs.get("mtu") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some() => {
            Some(Scalar::Int(n.as_i64().unwrap_or_default()))
        }
        Some(Value::Mapping(_)) => {
            return Err("'mtu' uses an advanced goss matcher; give the number".into());
        }
        Some(_) => return Err("'mtu' is not a whole number".into()),
    };
    let expect = expectation(attrs, &["exists"])?;
    if expect.is_some() && (!addrs.is_empty() || mtu.is_some()) {
        return Err(
            "'addrs' or 'mtu' with exists: false always fails in goss; drop one of \
                    them"
                .into(),
        );
    }
    Ok(RawCheck {
        name: Some(format!("interface:{key}")),
        interface: Some(key.to_string()),
        expect,
        addrs: (!addrs.is_empty())
            .then(|| OneOrMany::Many(addrs.into_iter().map(Scalar::Str).collect())),
        mtu,
        ..RawCheck::default()
    })
}

/// The initbox checks of a goss document, in the file's order (`skip: true` entries left out,
/// as goss skips them). `shown` names the file in errors.
pub fn convert(doc: &Value, shown: &str) -> Result<Vec<RawCheck>, String> {
    let Value::Mapping(top) = doc else {
        return Err(format!("goss file {shown}: not a mapping"));
    };
    let mut out = Vec::new();
    for (kind, entries) in top {
        let kind = kind.as_str().unwrap_or_default();
        let convert_one: fn(&str, &Mapping) -> Result<RawCheck, String> = match kind {
            "addr" => addr,
            "dns" => dns,
            "http" => http,
            "port" => port,
            "interface" => interface,
            "gossfile" => {
                return Err(format!(
                    "goss file {shown}: 'gossfile' includes are not supported: render the \
                     file first (goss render)"
                ));
            }
            other => {
                return Err(format!(
                    "goss file {shown}: '{other}' is not a network check (initbox reads addr, \
                     dns, http, port and interface)"
                ));
            }
        };
        let Value::Mapping(entries) = entries else {
            return Err(format!("goss file {shown}: {kind}: not a mapping"));
        };
        for (key, attrs) in entries {
            let key = text(key).unwrap_or_default();
            let empty = Mapping::new();
            let attrs = match attrs {
                Value::Mapping(m) => m,
                Value::Null => &empty,
                _ => return Err(format!("goss file {shown}: {kind}: {key}: not a mapping")),
            };
            if boolean(attrs, "skip")
                .map_err(|e| format!("goss file {shown}: {kind}: {key}: {e}"))?
                == Some(true)
            {
                continue;
            }
            out.push(
                convert_one(&key, attrs)
                    .map_err(|e| format!("goss file {shown}: {kind}: {key}: {e}"))?,
            );
        }
    }
    if out.is_empty() {
        return Err(format!(
            "goss file {shown}: no addr, dns, http, port or interface test"
        ));
    }
    Ok(out)
}

/// The converted checks as an initbox spec file.
pub fn spec_yaml(checks: &[RawCheck]) -> String {
    #[derive(serde::Serialize)]
    struct Spec<'a> {
        version: u32,
        checks: &'a [RawCheck],
    }
    serde_norway::to_string(&Spec { version: 1, checks }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(yaml: &str) -> Result<Vec<RawCheck>, String> {
        convert(&serde_norway::from_str(yaml).unwrap(), "t.yaml")
    }

    #[test]
    fn goss_units_and_defaults() {
        let c = conv(
            "addr:\n  tcp://db:5432:\n    reachable: true\n    timeout: 250\n\
             dns:\n  localhost:\n    resolvable: true\n    addrs: [127.0.0.1]\n\
             http:\n  http://api/health:\n    status: 200\n    body: [ok]\n",
        )
        .unwrap();
        assert_eq!(c[0].tcp.as_deref(), Some("db:5432"));
        assert!(matches!(&c[0].timeout, Some(Scalar::Str(t)) if t == "250ms"));
        assert!(matches!(&c[1].timeout, Some(Scalar::Str(t)) if t == "500ms"));
        assert!(matches!(&c[2].timeout, Some(Scalar::Str(t)) if t == "5000ms"));
        assert_eq!(c[2].redirects.as_deref(), Some("follow"));
        assert_eq!(c[2].body.as_deref(), Some("ok"));
        assert!(spec_yaml(&c).contains("tcp: db:5432"));
        let c = conv(
            "port:\n  tcp:22:\n    listening: true\n    ip: [0.0.0.0]\n  '8080':\n    listening: false\n\
             interface:\n  lo:\n    exists: true\n    addrs: [127.0.0.1/8]\n    mtu: 65536\n",
        )
        .unwrap();
        assert_eq!(c[0].port.as_deref(), Some("tcp:22"));
        assert_eq!(c[1].port.as_deref(), Some("8080"));
        assert_eq!(c[1].expect.as_deref(), Some("fail"));
        assert_eq!(c[2].interface.as_deref(), Some("lo"));
        let spec = spec_yaml(&c);
        assert!(
            spec.contains("port: tcp:22") && spec.contains("mtu: 65536"),
            "{spec}"
        );
    }

    #[test]
    fn what_initbox_cannot_check_is_refused() {
        for (yaml, says) in [
            ("port:\n  sctp:22:\n    listening: true\n", "not tcp"),
            (
                "port:\n  tcp:22:\n    listening: false\n    ip: [0.0.0.0]\n",
                "always fails",
            ),
            (
                "interface:\n  eth0:\n    mtu: 1500\n",
                "'exists' is required",
            ),
            (
                "addr:\n  udp://x:53:\n    reachable: true\n",
                "udp addresses",
            ),
            (
                "http:\n  http://x:\n    status: 200\n    body: ['!err']\n",
                "negated",
            ),
            (
                "http:\n  http://x:\n    status: 200\n    headers: [a]\n",
                "'headers'",
            ),
            (
                "dns:\n  PTR:8.8.8.8:\n    resolvable: true\n    server: 1.1.1.1\n",
                "PTR",
            ),
            (
                "addr:\n  tcp://x:1:\n    reachable: true\n    timeout: 1s\n",
                "milliseconds",
            ),
        ] {
            let e = conv(yaml).unwrap_err();
            assert!(e.contains(says), "{yaml}: {e}");
        }
    }

    #[test]
    fn body_patterns() {
        assert_eq!(body_pattern("a.b").unwrap(), "a\\.b");
        assert_eq!(body_pattern("/^UP$/").unwrap(), "(?m)^UP$");
        assert_eq!(body_pattern("\\!x").unwrap(), "!x");
    }
}
