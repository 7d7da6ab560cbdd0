//! `initbox net-setup`: set up the pod's network from an init container, without an iptables
//! binary, a shell or an image to match the node's iptables flavour.
//!
//! Init containers share the pod's network namespace, so what this applet sets stays for the
//! application: traffic redirection for a sidecar proxy (the istio-init / linkerd proxy-init
//! pattern), outbound allow/deny rules, and sysctls. Rules go into one `inet` table of
//! initbox's own, sent to the kernel over netlink in one transaction that replaces the whole
//! table (re-running never duplicates a rule); `--dry-run` prints that table in `nft` syntax,
//! exactly as `nft list table` shows it once applied; `--cleanup` deletes it; `--check` only
//! verifies that the table and the sysctls are as specified (a readiness probe, a CI check).

mod netlink;
mod ruleset;
mod spec;
mod sysctl;

use std::path::PathBuf;

use clap::Parser;
use initbox_runtime::{Applet, Failure, LogArgs, Outcome};
use tracing::{info, warn};

use crate::netlink::{ListedChain, Nft, NftError};
use crate::ruleset::Ruleset;
use crate::spec::{Given, Plan};

#[derive(Debug, Parser)]
#[command(
    name = "net-setup",
    version,
    about = "Set up the pod's network: nftables redirect/filter rules through netlink and sysctls, without iptables",
    after_help = "Examples:\n  \
                  initbox net-setup --redirect-outbound 15001 --exclude-uid 1337 --redirect-inbound 15006 --exclude-inbound-port 15090\n  \
                  initbox net-setup --deny-destination 169.254.169.254 --sysctl net.core.somaxconn=1024\n  \
                  initbox net-setup --redirect-udp 53:15053 --exclude-uid 1337 --exclude-outbound-port 9000-9100 --redirect-outbound 15001\n  \
                  initbox net-setup --file /etc/initbox/net.yaml --dry-run\n  \
                  initbox net-setup --file /etc/initbox/net.yaml --check\n\n\
                  Needs NET_ADMIN (rules, net.* sysctls); node-level sysctls need a privileged \
                  container and --node-sysctls. List flags also take comma-separated values, \
                  their variables too. Exit codes: 0 done (or in place), 1 --check found a \
                  difference, 2 usage, 3 invalid file or sysctl, 4 capability or read-only \
                  /proc/sys."
)]
pub struct Args {
    /// YAML spec file: the flags' names as keys (see the README).
    #[arg(long, value_name = "PATH", env = "INITBOX_NET_SETUP_FILE")]
    pub file: Option<PathBuf>,

    /// Redirect every outbound TCP connection to this local port (a sidecar proxy's outbound listener).
    #[arg(long, value_name = "PORT", env = "INITBOX_NET_SETUP_REDIRECT_OUTBOUND")]
    pub redirect_outbound: Option<u16>,

    /// Connections of processes running as this uid are not redirected (the proxy's own); repeatable.
    #[arg(
        long = "exclude-uid",
        value_name = "UID",
        value_delimiter = ',',
        env = "INITBOX_NET_SETUP_EXCLUDE_UIDS"
    )]
    pub exclude_uids: Vec<u32>,

    /// Connections of processes with this gid are not redirected; repeatable.
    #[arg(
        long = "exclude-gid",
        value_name = "GID",
        value_delimiter = ',',
        env = "INITBOX_NET_SETUP_EXCLUDE_GIDS"
    )]
    pub exclude_gids: Vec<u32>,

    /// Outbound connections to this destination port are not redirected: PORT or a range FIRST-LAST (TCP); repeatable.
    #[arg(
        long = "exclude-outbound-port",
        value_name = "PORTS",
        value_delimiter = ',',
        env = "INITBOX_NET_SETUP_EXCLUDE_OUTBOUND_PORTS"
    )]
    pub exclude_outbound_ports: Vec<String>,

    /// Outbound connections to this network (ADDR or ADDR/PREFIX) are not redirected; repeatable.
    #[arg(
        long = "exclude-outbound-cidr",
        value_name = "NET",
        value_delimiter = ',',
        env = "INITBOX_NET_SETUP_EXCLUDE_OUTBOUND_CIDRS"
    )]
    pub exclude_outbound_cidrs: Vec<String>,

    /// Redirect outbound UDP to these destination ports to a local port, PORTS:TO (DNS capture: 53:15053; PORTS may be a range FIRST-LAST); repeatable.
    #[arg(
        long = "redirect-udp",
        value_name = "PORTS:TO",
        value_delimiter = ',',
        env = "INITBOX_NET_SETUP_REDIRECT_UDP"
    )]
    pub redirect_udp: Vec<String>,

    /// Redirect inbound TCP connections to this local port (a sidecar proxy's inbound listener).
    #[arg(long, value_name = "PORT", env = "INITBOX_NET_SETUP_REDIRECT_INBOUND")]
    pub redirect_inbound: Option<u16>,

    /// Inbound ports to redirect (default '*': every TCP port): PORT or a range FIRST-LAST; repeatable.
    #[arg(
        long = "inbound-port",
        value_name = "PORTS",
        value_delimiter = ',',
        env = "INITBOX_NET_SETUP_INBOUND_PORTS"
    )]
    pub inbound_ports: Vec<String>,

    /// Inbound connections to this port are not redirected (health and metrics ports): PORT or a range FIRST-LAST; repeatable.
    #[arg(
        long = "exclude-inbound-port",
        value_name = "PORTS",
        value_delimiter = ',',
        env = "INITBOX_NET_SETUP_EXCLUDE_INBOUND_PORTS"
    )]
    pub exclude_inbound_ports: Vec<String>,

    /// Accept outbound traffic to NET, NET:PORT or [NET6]:PORT (TCP port), before any --deny-destination; repeatable.
    #[arg(
        long = "allow-destination",
        value_name = "DEST",
        value_delimiter = ',',
        env = "INITBOX_NET_SETUP_ALLOW_DESTINATIONS"
    )]
    pub allow: Vec<String>,

    /// Drop outbound traffic to NET, NET:PORT or [NET6]:PORT (TCP port); repeatable.
    #[arg(
        long = "deny-destination",
        value_name = "DEST",
        value_delimiter = ',',
        env = "INITBOX_NET_SETUP_DENY_DESTINATIONS"
    )]
    pub deny: Vec<String>,

    /// Set a kernel parameter, KEY=VALUE as sysctl -w takes it (net.* are the pod's own); repeatable.
    #[arg(long = "sysctl", value_name = "KEY=VALUE", value_delimiter = ',', value_parser = sysctl::parse, env = "INITBOX_NET_SETUP_SYSCTLS")]
    pub sysctls: Vec<sysctl::Sysctl>,

    /// Allow node-level sysctls (vm.*, kernel.*, fs.*: they change the whole node; needs a privileged container).
    #[arg(long, env = "INITBOX_NET_SETUP_NODE_SYSCTLS", value_parser = clap::builder::BoolishValueParser::new())]
    pub node_sysctls: bool,

    /// Name of initbox's nftables table (family inet) [default: initbox].
    #[arg(long, value_name = "NAME", env = "INITBOX_NET_SETUP_TABLE")]
    pub table: Option<String>,

    /// Print the table in nft syntax (as `nft list table` will show it) and the sysctls to set; change nothing.
    #[arg(long, env = "INITBOX_NET_SETUP_DRY_RUN", value_parser = clap::builder::BoolishValueParser::new(), conflicts_with_all = ["check", "cleanup"])]
    pub dry_run: bool,

    /// Only verify that the table and the sysctls are as specified (exit 1 when not); change nothing.
    #[arg(long, env = "INITBOX_NET_SETUP_CHECK", value_parser = clap::builder::BoolishValueParser::new(), conflicts_with = "cleanup")]
    pub check: bool,

    /// Delete initbox's table (sysctls are left as they are).
    #[arg(long, env = "INITBOX_NET_SETUP_CLEANUP", value_parser = clap::builder::BoolishValueParser::new())]
    pub cleanup: bool,

    #[command(flatten)]
    pub log: LogArgs,
}

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }

    async fn run(self) -> Result<Outcome, Failure> {
        // Netlink and /proc/sys calls are quick and blocking: run them off the async workers.
        tokio::task::spawn_blocking(move || net_setup(self))
            .await
            .map_err(|e| Failure::failed(format!("net-setup stopped: {e}")))?
            .map(|()| Outcome::OK)
    }
}

fn given(args: Args) -> Result<(Given, Mode), Failure> {
    let mode = if args.dry_run {
        Mode::DryRun
    } else if args.check {
        Mode::Check
    } else if args.cleanup {
        Mode::Cleanup
    } else {
        Mode::Apply
    };
    let mut g = Given {
        table: args.table,
        redirect_outbound: args.redirect_outbound,
        exclude_uids: args.exclude_uids,
        exclude_gids: args.exclude_gids,
        exclude_outbound_ports: args.exclude_outbound_ports,
        exclude_outbound_cidrs: args.exclude_outbound_cidrs,
        redirect_udp: args.redirect_udp,
        redirect_inbound: args.redirect_inbound,
        inbound_ports: args.inbound_ports,
        exclude_inbound_ports: args.exclude_inbound_ports,
        allow: args.allow,
        deny: args.deny,
        sysctls: args.sysctls,
        node_sysctls: args.node_sysctls,
    };
    if let Some(path) = &args.file {
        spec::merge_file(path, &mut g)?;
    }
    Ok((g, mode))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Apply,
    DryRun,
    Check,
    Cleanup,
}

fn net_setup(args: Args) -> Result<(), Failure> {
    let (given, mode) = given(args)?;
    let plan = spec::plan(given)?;
    let Plan { ruleset, sysctls } = &plan;
    if mode != Mode::Cleanup && ruleset.chains.is_empty() && sysctls.is_empty() {
        return Err(Failure::usage(
            "nothing to set up: give rules (--redirect-outbound, --redirect-udp, --redirect-inbound, --allow-destination, --deny-destination), --sysctl or --file",
        ));
    }
    // Every key must exist before anything is changed.
    let located = sysctls
        .iter()
        .map(|s| sysctl::locate(std::path::Path::new(sysctl::ROOT), &s.key).map(|p| (s, p)))
        .collect::<Result<Vec<_>, _>>()?;

    match mode {
        Mode::DryRun => {
            if !ruleset.chains.is_empty() {
                print!("{ruleset}");
            }
            for (s, path) in &located {
                let now = sysctl::read(path, &s.key).unwrap_or_else(|e| format!("unreadable: {e}"));
                info!(
                    "would set sysctl {} = {} (now {now})",
                    s.key,
                    sysctl::normalize(&s.value)
                );
            }
            Ok(())
        }
        Mode::Cleanup => {
            let mut nft = open()?;
            let t = &ruleset.table;
            if nft.delete(t).map_err(|e| nft_failure(&e))? {
                info!("deleted table inet {t}");
            } else {
                info!("no table inet {t}: nothing to delete");
            }
            if !sysctls.is_empty() {
                warn!(
                    "sysctls are left as they are (the kernel keeps no earlier value to go back to)"
                );
            }
            Ok(())
        }
        Mode::Check => check(ruleset, &located),
        Mode::Apply => {
            if !ruleset.chains.is_empty() {
                let mut nft = open()?;
                nft.replace(ruleset).map_err(|e| nft_failure(&e))?;
                info!(
                    "table inet {}: {} chains, {} rules in place (one transaction, the table replaced)",
                    ruleset.table,
                    ruleset.chains.len(),
                    ruleset.rule_count()
                );
            }
            let (mut set, mut kept) = (0, 0);
            for (s, path) in &located {
                match sysctl::apply(path, s)? {
                    sysctl::Change::Unchanged => {
                        kept += 1;
                        info!("sysctl {} = {} already", s.key, sysctl::normalize(&s.value));
                    }
                    sysctl::Change::Set { was } => {
                        set += 1;
                        info!(
                            "sysctl {} = {} (was {was})",
                            s.key,
                            sysctl::normalize(&s.value)
                        );
                    }
                }
            }
            if !located.is_empty() {
                info!("sysctls: {set} set, {kept} already in place");
            }
            Ok(())
        }
    }
}

fn open() -> Result<Nft, Failure> {
    Nft::open().map_err(|e| nft_failure(&e))
}

/// A netlink failure as the toolkit's error: a missing capability is exit 4, naming NET_ADMIN.
fn nft_failure(e: &NftError) -> Failure {
    match e.errno() {
        Some(libc::EPERM) | Some(libc::EACCES) => Failure::env_refused(format!(
            "{}: operation not permitted (needs the NET_ADMIN capability: securityContext.capabilities.add: [NET_ADMIN])",
            e.doing
        )),
        Some(libc::EPROTONOSUPPORT) | Some(libc::EAFNOSUPPORT) => Failure::env_refused(format!(
            "{}: the kernel has no nf_tables support ({})",
            e.doing, e.error
        )),
        _ => Failure::failed(format!("{}: {}", e.doing, e.error)),
    }
}

/// `--check`: the table as planned, chain by chain and rule by rule, and every sysctl's value.
fn check(ruleset: &Ruleset, sysctls: &[(&sysctl::Sysctl, PathBuf)]) -> Result<(), Failure> {
    let mut wrong: Vec<String> = Vec::new();
    if !ruleset.chains.is_empty() {
        let mut nft = open()?;
        match nft.list(&ruleset.table).map_err(|e| nft_failure(&e))? {
            None => wrong.push(format!("no table inet {}", ruleset.table)),
            Some(listed) => compare(ruleset, &listed, &mut wrong),
        }
    }
    for (s, path) in sysctls {
        let now = sysctl::read(path, &s.key)?;
        let want = sysctl::normalize(&s.value);
        if now != want {
            wrong.push(format!("sysctl {} is {now}, not {want}", s.key));
        }
    }
    match wrong.first() {
        None => {
            info!(
                "in place: table inet {} ({} rules), {} sysctls",
                ruleset.table,
                ruleset.rule_count(),
                sysctls.len()
            );
            Ok(())
        }
        // Every difference, on the one line of the error (a probe's or CI's whole report).
        Some(_) => Err(Failure::failed(format!(
            "not in place ({} difference(s) from the spec): {}",
            wrong.len(),
            wrong.join("; ")
        ))),
    }
}

fn compare(ruleset: &Ruleset, listed: &[ListedChain], wrong: &mut Vec<String>) {
    for c in &ruleset.chains {
        let Some(l) = listed.iter().find(|l| l.name == c.name) else {
            wrong.push(format!("chain {} is missing", c.name));
            continue;
        };
        if l.kind.as_deref() != Some(c.hook.kind())
            || l.hook != Some(c.hook.number())
            || l.priority != Some(c.hook.priority())
            || l.policy != Some(1)
        {
            wrong.push(format!(
                "chain {} is not 'type {} hook {} priority {}; policy accept'",
                c.name,
                c.hook.kind(),
                c.hook.hook_name(),
                c.hook.priority()
            ));
        }
        for (i, r) in c.rules.iter().enumerate() {
            let want = netlink::normalized(r.expressions());
            match l.rules.get(i) {
                Some(have) if *have == want => {}
                Some(_) => wrong.push(format!("chain {} rule {}: not '{r}'", c.name, i + 1)),
                None => wrong.push(format!("chain {} rule {}: '{r}' is missing", c.name, i + 1)),
            }
        }
        if l.rules.len() > c.rules.len() {
            wrong.push(format!(
                "chain {} has {} rule(s) more than the spec",
                c.name,
                l.rules.len() - c.rules.len()
            ));
        }
    }
    for l in listed {
        if !ruleset.chains.iter().any(|c| c.name == l.name) {
            wrong.push(format!("chain {} is not in the spec", l.name));
        }
    }
}
