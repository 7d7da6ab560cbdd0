//! What to set up, from flags and/or a YAML file (the same names, kebab-case), validated into
//! the one [`Plan`]: initbox's ruleset and the sysctls.
//!
//! The rules follow the sidecar-proxy pattern of istio-init and linkerd's proxy-init:
//!
//! - `redirect_outbound` (nat output): the excluded uids and gids return first (the proxy's own
//!   connections), then loopback, the excluded ports and networks; UDP to the `--redirect-udp`
//!   ports is redirected to its local port (DNS capture), and every other TCP connection to the
//!   `--redirect-outbound` port.
//! - `redirect_inbound` (nat prerouting): the excluded ports return; the listed ports (or all
//!   TCP with `*`) are redirected.
//! - `filter_outbound` (filter output, before NAT): allowed destinations are accepted, then
//!   denied ones dropped, so an allow is an exception to a broader deny.

use std::path::Path;

use initbox_runtime::Failure;
use ipnet::IpNet;
use serde::Deserialize;

use crate::ruleset::{Action, Chain, Hook, Match, Ports, Proto, Rule, Ruleset};
use crate::sysctl::{self, Sysctl};

/// The YAML file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct File {
    pub table: Option<String>,
    pub redirect_outbound: Option<u16>,
    #[serde(default)]
    pub exclude_uids: Vec<u32>,
    #[serde(default)]
    pub exclude_gids: Vec<u32>,
    #[serde(default)]
    pub exclude_outbound_ports: Vec<PortOrAll>,
    #[serde(default)]
    pub exclude_outbound_cidrs: Vec<String>,
    pub redirect_inbound: Option<u16>,
    #[serde(default)]
    pub inbound_ports: Vec<PortOrAll>,
    #[serde(default)]
    pub exclude_inbound_ports: Vec<PortOrAll>,
    #[serde(default)]
    pub redirect_udp: Vec<String>,
    #[serde(default)]
    pub allow_destinations: Vec<String>,
    #[serde(default)]
    pub deny_destinations: Vec<String>,
    /// Ordered as written: some keys depend on others (`conf.all` before `conf.eth0`).
    #[serde(default)]
    pub sysctls: serde_norway::Mapping,
    #[serde(default)]
    pub node_sysctls: bool,
}

/// A port, or text: a range (`8000-8100`), `*` for every port.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PortOrAll {
    Port(u16),
    Text(String),
}

impl PortOrAll {
    fn into_text(self) -> String {
        match self {
            PortOrAll::Port(p) => p.to_string(),
            PortOrAll::Text(t) => t,
        }
    }
}

/// Everything given, flags and file merged.
#[derive(Debug, Default)]
pub struct Given {
    pub table: Option<String>,
    pub redirect_outbound: Option<u16>,
    pub exclude_uids: Vec<u32>,
    pub exclude_gids: Vec<u32>,
    pub exclude_outbound_ports: Vec<String>,
    pub exclude_outbound_cidrs: Vec<String>,
    /// `PORTS:TO`: outbound UDP to PORTS redirected to the local port TO.
    pub redirect_udp: Vec<String>,
    pub redirect_inbound: Option<u16>,
    pub inbound_ports: Vec<String>,
    pub exclude_inbound_ports: Vec<String>,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub sysctls: Vec<Sysctl>,
    pub node_sysctls: bool,
}

/// What net-setup will do.
#[derive(Debug)]
pub struct Plan {
    pub ruleset: Ruleset,
    pub sysctls: Vec<Sysctl>,
}

/// Read the YAML file into `given` (flags already there; a value given both ways must agree).
pub fn merge_file(path: &Path, given: &mut Given) -> Result<(), Failure> {
    let label = path.display().to_string();
    let text = initbox_runtime::input::read_string(path, &label)?;
    let f: File = serde_norway::from_str(&text)
        .map_err(|e| Failure::invalid_input(format!("{label}: {e}")))?;
    fn one<T: PartialEq + Copy + std::fmt::Display>(
        label: &str,
        name: &str,
        flag: &mut Option<T>,
        file: Option<T>,
    ) -> Result<(), Failure> {
        match (*flag, file) {
            (Some(a), Some(b)) if a != b => Err(Failure::usage(format!(
                "--{name} {a} and {label}'s {name}: {b} disagree"
            ))),
            (None, b) => {
                *flag = b;
                Ok(())
            }
            _ => Ok(()),
        }
    }
    match (&given.table, f.table) {
        (Some(a), Some(b)) if *a != b => {
            return Err(Failure::usage(format!(
                "--table {a} and {label}'s table: {b} disagree"
            )));
        }
        (None, b) => given.table = b,
        _ => {}
    }
    one(
        &label,
        "redirect-outbound",
        &mut given.redirect_outbound,
        f.redirect_outbound,
    )?;
    one(
        &label,
        "redirect-inbound",
        &mut given.redirect_inbound,
        f.redirect_inbound,
    )?;
    given.exclude_uids.extend(f.exclude_uids);
    given.exclude_gids.extend(f.exclude_gids);
    given.exclude_outbound_ports.extend(
        f.exclude_outbound_ports
            .into_iter()
            .map(PortOrAll::into_text),
    );
    given.redirect_udp.extend(f.redirect_udp);
    given
        .exclude_outbound_cidrs
        .extend(f.exclude_outbound_cidrs);
    given
        .inbound_ports
        .extend(f.inbound_ports.into_iter().map(PortOrAll::into_text));
    given.exclude_inbound_ports.extend(
        f.exclude_inbound_ports
            .into_iter()
            .map(PortOrAll::into_text),
    );
    given.allow.extend(f.allow_destinations);
    given.deny.extend(f.deny_destinations);
    given.node_sysctls |= f.node_sysctls;
    for (k, v) in f.sysctls {
        let key = match k {
            serde_norway::Value::String(s) => s,
            other => {
                return Err(Failure::invalid_input(format!(
                    "{label}: sysctls: key {other:?} is not a name"
                )));
            }
        };
        let value = match v {
            serde_norway::Value::String(s) => s,
            serde_norway::Value::Number(n) => n.to_string(),
            serde_norway::Value::Bool(b) => u8::from(b).to_string(),
            _ => {
                return Err(Failure::invalid_input(format!(
                    "{label}: sysctls: {key}: the value must be a string or a number"
                )));
            }
        };
        let s = sysctl::parse(&format!("{key}={value}"))
            .map_err(|e| Failure::invalid_input(format!("{label}: sysctls: {e}")))?;
        given.sysctls.push(s);
    }
    Ok(())
}

/// nft's identifier rule, and the kernel's length limit.
fn check_table(name: &str) -> Result<(), Failure> {
    let ok = !name.is_empty()
        && name.len() < 256
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "--table '{name}': a table name is a letter or '_' followed by letters, digits, '_' or '-'"
        )))
    }
}

/// A network (`10.0.0.0/8`, `fd00::/8`) or one address; host bits are cleared as nft does.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    s.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("'{s}' is not an address or a network (ADDR/PREFIX)"))
}

/// `NET`, `NET:PORT` or `[NET6]:PORT`: a destination of --allow/--deny.
pub fn parse_destination(s: &str) -> Result<(IpNet, Option<u16>), String> {
    let s = s.trim();
    let (net, port) = if let Some(rest) = s.strip_prefix('[') {
        let (net, port) = rest
            .split_once("]:")
            .ok_or_else(|| format!("'{s}': expected [ADDR6]:PORT"))?;
        (net, Some(port))
    } else if s.matches(':').count() == 1 {
        let (net, port) = s.split_once(':').unwrap_or((s, ""));
        (net, Some(port))
    } else {
        (s, None)
    };
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p).map_err(|e| format!("'{s}': {e}"))?),
    };
    Ok((parse_net(net)?, port))
}

/// A port (`53`) or an inclusive range (`8000-8100`).
pub fn parse_ports(s: &str) -> Result<Ports, String> {
    let s = s.trim();
    let bad = || format!("'{s}' is not a port or a range of ports (1-65535, or FIRST-LAST)");
    let (first, last) = s.split_once('-').unwrap_or((s, s));
    let (first, last) = (
        parse_port(first).map_err(|_| bad())?,
        parse_port(last).map_err(|_| bad())?,
    );
    if first > last {
        return Err(format!("'{s}': the range's first port is above its last"));
    }
    Ok(Ports { first, last })
}

/// `PORTS:TO` of `--redirect-udp`: UDP to PORTS goes to the local port TO.
pub fn parse_udp_redirect(s: &str) -> Result<(Ports, u16), String> {
    let s = s.trim();
    let (ports, to) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}': expected PORTS:TO, e.g. 53:15053"))?;
    let ports = parse_ports(ports).map_err(|e| format!("'{s}': {e}"))?;
    let to = parse_port(to).map_err(|e| format!("'{s}': {e}"))?;
    Ok((ports, to))
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{p}' is not a port (1-65535)")),
    }
}

fn ports_ok(what: &str, p: &str) -> Result<Ports, Failure> {
    parse_ports(p).map_err(|e| Failure::usage(format!("{what}: {e}")))
}

fn port_ok(what: &str, p: u16) -> Result<u16, Failure> {
    if p == 0 {
        Err(Failure::usage(format!("{what}: 0 is not a port (1-65535)")))
    } else {
        Ok(p)
    }
}

/// Validate what was given into the plan.
pub fn plan(given: Given) -> Result<Plan, Failure> {
    let table = given.table.unwrap_or_else(|| "initbox".to_string());
    check_table(&table)?;
    let mut chains = Vec::new();

    let outbound_extras = !given.exclude_uids.is_empty()
        || !given.exclude_gids.is_empty()
        || !given.exclude_outbound_ports.is_empty()
        || !given.exclude_outbound_cidrs.is_empty();
    let udp = given
        .redirect_udp
        .iter()
        .map(|s| parse_udp_redirect(s).map_err(|e| Failure::usage(format!("--redirect-udp: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    match (given.redirect_outbound, udp.is_empty()) {
        (None, true) if outbound_extras => {
            return Err(Failure::usage(
                "--exclude-uid/--exclude-gid/--exclude-outbound-port/--exclude-outbound-cidr need --redirect-outbound or --redirect-udp",
            ));
        }
        (None, true) => {}
        (tcp_to, _) => {
            let tcp_to = tcp_to
                .map(|to| port_ok("--redirect-outbound", to))
                .transpose()?;
            let mut rules = Vec::new();
            let ret = |m| Rule {
                matches: vec![m],
                action: Action::Return,
            };
            rules.extend(given.exclude_uids.iter().map(|u| ret(Match::SkUid(*u))));
            rules.extend(given.exclude_gids.iter().map(|g| ret(Match::SkGid(*g))));
            rules.push(ret(Match::OifName("lo".into())));
            for p in &given.exclude_outbound_ports {
                let p = ports_ok("--exclude-outbound-port", p)?;
                rules.push(ret(Match::Dport(Proto::Tcp, p)));
            }
            for c in &given.exclude_outbound_cidrs {
                let net = parse_net(c)
                    .map_err(|e| Failure::usage(format!("--exclude-outbound-cidr: {e}")))?;
                rules.push(ret(Match::Daddr(net)));
            }
            for (ports, to) in &udp {
                rules.push(Rule {
                    matches: vec![Match::Dport(Proto::Udp, *ports)],
                    action: Action::Redirect(*to),
                });
            }
            if let Some(to) = tcp_to {
                rules.push(Rule {
                    matches: vec![Match::L4Proto(Proto::Tcp)],
                    action: Action::Redirect(to),
                });
            }
            chains.push(Chain {
                name: "redirect_outbound",
                hook: Hook::NatOutput,
                rules,
            });
        }
    }

    match given.redirect_inbound {
        None if !given.inbound_ports.is_empty() || !given.exclude_inbound_ports.is_empty() => {
            return Err(Failure::usage(
                "--inbound-port/--exclude-inbound-port need --redirect-inbound",
            ));
        }
        None => {}
        Some(to) => {
            let to = port_ok("--redirect-inbound", to)?;
            let mut rules = Vec::new();
            for p in &given.exclude_inbound_ports {
                rules.push(Rule {
                    matches: vec![Match::Dport(
                        Proto::Tcp,
                        ports_ok("--exclude-inbound-port", p)?,
                    )],
                    action: Action::Return,
                });
            }
            let all =
                given.inbound_ports.is_empty() || given.inbound_ports.iter().any(|p| p == "*");
            if all && given.inbound_ports.len() > 1 {
                return Err(Failure::usage(
                    "--inbound-port: '*' (every port) cannot be listed with single ports",
                ));
            }
            if all {
                rules.push(Rule {
                    matches: vec![Match::L4Proto(Proto::Tcp)],
                    action: Action::Redirect(to),
                });
            } else {
                for p in &given.inbound_ports {
                    let p = ports_ok("--inbound-port", p)?;
                    rules.push(Rule {
                        matches: vec![Match::Dport(Proto::Tcp, p)],
                        action: Action::Redirect(to),
                    });
                }
            }
            chains.push(Chain {
                name: "redirect_inbound",
                hook: Hook::NatPrerouting,
                rules,
            });
        }
    }

    let mut rules = Vec::new();
    for (list, action, flag) in [
        (&given.allow, Action::Accept, "--allow-destination"),
        (&given.deny, Action::Drop, "--deny-destination"),
    ] {
        for d in list {
            let (net, port) =
                parse_destination(d).map_err(|e| Failure::usage(format!("{flag}: {e}")))?;
            let mut matches = vec![Match::Daddr(net)];
            matches.extend(port.map(|p| Match::Dport(Proto::Tcp, Ports::one(p))));
            rules.push(Rule { matches, action });
        }
    }
    if !rules.is_empty() {
        chains.push(Chain {
            name: "filter_outbound",
            hook: Hook::FilterOutput,
            rules,
        });
    }

    for s in &given.sysctls {
        if !sysctl::is_namespaced(&s.key) && !given.node_sysctls {
            return Err(Failure::usage(format!(
                "sysctl {}: a node-level parameter (it changes the whole node, not the pod): pass --node-sysctls to mean it",
                s.key
            )));
        }
    }
    Ok(Plan {
        ruleset: Ruleset { table, chains },
        sysctls: given.sysctls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        assert_eq!(
            parse_destination("10.1.2.3/8").unwrap(),
            ("10.0.0.0/8".parse().unwrap(), None)
        );
        assert_eq!(
            parse_destination("10.1.2.3:443").unwrap(),
            ("10.1.2.3/32".parse().unwrap(), Some(443))
        );
        assert_eq!(
            parse_destination("[fd00::/8]:53").unwrap(),
            ("fd00::/8".parse().unwrap(), Some(53))
        );
        assert_eq!(
            parse_destination("fd00::1").unwrap(),
            ("fd00::1/128".parse().unwrap(), None)
        );
        for bad in [
            "10.0.0.0/33",
            "example.com",
            "10.0.0.1:0",
            "10.0.0.1:http",
            "[fd00::1]",
        ] {
            assert!(parse_destination(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_and_ranges() {
        assert_eq!(parse_ports("53").unwrap(), Ports::one(53));
        assert_eq!(
            parse_ports("8000-8100").unwrap(),
            Ports {
                first: 8000,
                last: 8100
            }
        );
        assert_eq!(
            parse_udp_redirect("53:15053").unwrap(),
            (Ports::one(53), 15053)
        );
        for bad in ["0", "8100-8000", "1-", "-5", "65536", "1-2-3", "http", ""] {
            assert!(parse_ports(bad).is_err(), "{bad}");
        }
        for bad in ["53", "53:", ":15053", "53:0", "53:x"] {
            assert!(parse_udp_redirect(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn excludes_without_a_redirect_are_refused() {
        let e = plan(Given {
            exclude_uids: vec![1337],
            ..Given::default()
        })
        .unwrap_err();
        assert_eq!(e.code, initbox_runtime::Code::USAGE);
        assert!(e.message.contains("--redirect-outbound"), "{e}");
        let e = plan(Given {
            sysctls: vec![sysctl::parse("vm.max_map_count=262144").unwrap()],
            ..Given::default()
        })
        .unwrap_err();
        assert!(e.message.contains("--node-sysctls"), "{e}");
        assert!(
            plan(Given {
                table: Some("1bad".into()),
                ..Given::default()
            })
            .is_err()
        );
    }
}
