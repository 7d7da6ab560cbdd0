//! The ruleset initbox owns: one `inet` table of chains and rules, described once and rendered
//! two ways from that one description: as `nft` syntax (exactly as `nft list table` prints it, so
//! `--dry-run` and the kernel's listing can be compared line by line) and as the nf_tables
//! expressions sent over netlink (the same bytecode `nft -f` generates for that text).

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::DefaultNla;
use netlink_packet_netfilter::nftables::{
    Bitwise, Cmp, DataAttribute, ExpressionAttribute, Expressions, Immediate, ListAttribute, Meta,
    MetaKey, Operator, Payload, Register, Verdict, VerdictAttribute,
};

/// A chain's hook and type: the three chains initbox may create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `type nat hook output priority -100`: locally generated connections (redirect outbound).
    NatOutput,
    /// `type nat hook prerouting priority dstnat`: connections coming in (redirect inbound).
    NatPrerouting,
    /// `type filter hook output priority mangle`: outbound filter, before NAT rewrites the
    /// destination, so allow/deny see the address the application asked for.
    FilterOutput,
}

impl Hook {
    pub fn kind(self) -> &'static str {
        match self {
            Hook::NatOutput | Hook::NatPrerouting => "nat",
            Hook::FilterOutput => "filter",
        }
    }
    pub fn hook_name(self) -> &'static str {
        match self {
            Hook::NatOutput | Hook::FilterOutput => "output",
            Hook::NatPrerouting => "prerouting",
        }
    }
    /// NF_INET_* hook number.
    pub fn number(self) -> u32 {
        match self {
            Hook::NatPrerouting => 0,
            Hook::NatOutput | Hook::FilterOutput => 3,
        }
    }
    pub fn priority(self) -> i32 {
        match self {
            Hook::NatOutput | Hook::NatPrerouting => -100,
            Hook::FilterOutput => -150,
        }
    }
    /// The priority as `nft list` prints it: by name where nft knows one for this family,
    /// type and hook (`dstnat` is a prerouting name; in output nft prints the number).
    fn priority_text(self) -> &'static str {
        match self {
            Hook::NatOutput => "-100",
            Hook::NatPrerouting => "dstnat",
            Hook::FilterOutput => "mangle",
        }
    }
}

/// A transport protocol a rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
    fn number(self) -> u8 {
        match self {
            Proto::Tcp => IPPROTO_TCP,
            Proto::Udp => IPPROTO_UDP,
        }
    }
}

/// A port or an inclusive range of ports (`8000-8100`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub first: u16,
    pub last: u16,
}

impl Ports {
    pub fn one(p: u16) -> Ports {
        Ports { first: p, last: p }
    }
}

impl fmt::Display for Ports {
    /// As nft prints it: `53`, `8000-8100`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// `meta skuid N`: the socket's owner.
    SkUid(u32),
    /// `meta skgid N`.
    SkGid(u32),
    /// `oifname "NAME"`.
    OifName(String),
    /// `meta l4proto tcp` (or `udp`).
    L4Proto(Proto),
    /// `tcp dport N` or `udp dport N-M` (implies the protocol).
    Dport(Proto, Ports),
    /// `ip daddr NET` or `ip6 daddr NET` (a normalized network).
    Daddr(IpNet),
}

/// What a rule does when every condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Return,
    Accept,
    Drop,
    /// `redirect to :PORT` (to the primary address of the incoming interface, 127.0.0.1 for
    /// locally generated traffic).
    Redirect(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: &'static str,
    pub hook: Hook,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub table: String,
    pub chains: Vec<Chain>,
}

impl Ruleset {
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::SkUid(u) => write!(f, "meta skuid {u}"),
            Match::SkGid(g) => write!(f, "meta skgid {g}"),
            Match::OifName(n) => write!(f, "oifname \"{n}\""),
            Match::L4Proto(p) => write!(f, "meta l4proto {}", p.name()),
            Match::Dport(proto, p) => write!(f, "{} dport {p}", proto.name()),
            Match::Daddr(net) => {
                let family = if net.addr().is_ipv4() { "ip" } else { "ip6" };
                if net.prefix_len() == net.max_prefix_len() {
                    write!(f, "{family} daddr {}", net.addr())
                } else {
                    write!(f, "{family} daddr {net}")
                }
            }
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Return => f.write_str("return"),
            Action::Accept => f.write_str("accept"),
            Action::Drop => f.write_str("drop"),
            Action::Redirect(p) => write!(f, "redirect to :{p}"),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.matches {
            write!(f, "{m} ")?;
        }
        write!(f, "{}", self.action)
    }
}

impl fmt::Display for Ruleset {
    /// The table exactly as `nft list table inet NAME` prints it (tabs, blank line between
    /// chains); also valid input for `nft -f`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        writeln!(out, "table inet {} {{", self.table)?;
        for (i, c) in self.chains.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            writeln!(out, "\tchain {} {{", c.name)?;
            writeln!(
                out,
                "\t\ttype {} hook {} priority {}; policy accept;",
                c.hook.kind(),
                c.hook.hook_name(),
                c.hook.priority_text()
            )?;
            for r in &c.rules {
                writeln!(out, "\t\t{r}")?;
            }
            writeln!(out, "\t}}")?;
        }
        writeln!(out, "}}")?;
        f.write_str(&out)
    }
}

// nf_tables constants (include/uapi/linux/netfilter/nf_tables.h, netfilter.h).
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_BITWISE_BOOL: u32 = 0;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
const NFTA_REDIR_REG_PROTO_MIN: u16 = 1;
const NFTA_REDIR_REG_PROTO_MAX: u16 = 2;
const NFTA_REDIR_FLAGS: u16 = 3;
/// NF_NAT_RANGE_PROTO_SPECIFIED: the redirect names a port.
const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 2;
const IFNAMSIZ: usize = 16;

type Expr = ListAttribute<ExpressionAttribute>;

fn meta(key: MetaKey) -> Expr {
    Expressions::Meta(vec![
        Meta::Key(key),
        Meta::DestinationRegister(Register::Reg1),
    ])
    .into()
}

fn cmp_eq(value: Vec<u8>) -> Expr {
    Expressions::Cmp(vec![
        Cmp::SourceRegister(Register::Reg1),
        Cmp::Op(Operator::Equal),
        Cmp::Data(DataAttribute::Value(value)),
    ])
    .into()
}

fn cmp(op: Operator, value: Vec<u8>) -> Expr {
    Expressions::Cmp(vec![
        Cmp::SourceRegister(Register::Reg1),
        Cmp::Op(op),
        Cmp::Data(DataAttribute::Value(value)),
    ])
    .into()
}

fn payload(base: u32, offset: u32, len: u32) -> Expr {
    Expressions::Payload(vec![
        Payload::DestinationRegister(Register::Reg1),
        Payload::Base(base),
        Payload::Offset(offset),
        Payload::Len(len),
    ])
    .into()
}

fn verdict(code: Verdict) -> Expr {
    Expressions::Immediate(vec![
        Immediate::DestinationRegister(Register::Verdict),
        Immediate::Data(DataAttribute::Verdict(vec![VerdictAttribute::Code(code)])),
    ])
    .into()
}

/// The expressions of one match, as nft generates them (with the protocol dependency nft adds
/// implicitly and hides again when it lists the rule).
fn match_exprs(m: &Match, out: &mut Vec<Expr>) {
    match m {
        Match::SkUid(u) => {
            out.push(meta(MetaKey::SocketUserId));
            out.push(cmp_eq(u.to_ne_bytes().to_vec()));
        }
        Match::SkGid(g) => {
            out.push(meta(MetaKey::SocketGroupId));
            out.push(cmp_eq(g.to_ne_bytes().to_vec()));
        }
        Match::OifName(n) => {
            let mut name = n.as_bytes().to_vec();
            name.resize(IFNAMSIZ, 0);
            out.push(meta(MetaKey::Oifname));
            out.push(cmp_eq(name));
        }
        Match::L4Proto(p) => {
            out.push(meta(MetaKey::L4Proto));
            out.push(cmp_eq(vec![p.number()]));
        }
        Match::Dport(proto, p) => {
            out.push(meta(MetaKey::L4Proto));
            out.push(cmp_eq(vec![proto.number()]));
            out.push(payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2));
            if p.first == p.last {
                out.push(cmp_eq(p.first.to_be_bytes().to_vec()));
            } else {
                // A range, as nft compiles `dport A-B`: two comparisons of the loaded port.
                out.push(cmp(
                    Operator::GreatherThanEqual,
                    p.first.to_be_bytes().to_vec(),
                ));
                out.push(cmp(Operator::LessThanEqual, p.last.to_be_bytes().to_vec()));
            }
        }
        Match::Daddr(net) => {
            let (proto, offset, addr) = match net.addr() {
                IpAddr::V4(a) => (NFPROTO_IPV4, 16, a.octets().to_vec()),
                IpAddr::V6(a) => (NFPROTO_IPV6, 24, a.octets().to_vec()),
            };
            out.push(meta(MetaKey::Nfproto));
            out.push(cmp_eq(vec![proto]));
            let bits = usize::from(net.prefix_len());
            if bits % 8 == 0 && bits > 0 {
                // A byte-aligned prefix: compare only its bytes.
                let n = bits / 8;
                out.push(payload(NFT_PAYLOAD_NETWORK_HEADER, offset, n as u32));
                out.push(cmp_eq(addr[..n].to_vec()));
            } else {
                // Otherwise the whole address, masked.
                let len = addr.len();
                let mut mask = vec![0u8; len];
                for (i, b) in mask.iter_mut().enumerate() {
                    let have = bits.saturating_sub(i * 8).min(8);
                    *b = if have == 0 { 0 } else { 0xffu8 << (8 - have) };
                }
                out.push(payload(NFT_PAYLOAD_NETWORK_HEADER, offset, len as u32));
                out.push(
                    Expressions::Bitwise(vec![
                        Bitwise::SourceRegister(Register::Reg1),
                        Bitwise::DestinationRegister(Register::Reg1),
                        Bitwise::Length(len as u32),
                        Bitwise::Op(NFT_BITWISE_BOOL),
                        Bitwise::Mask(DataAttribute::Value(mask)),
                        Bitwise::Xor(DataAttribute::Value(vec![0; len])),
                    ])
                    .into(),
                );
                // The spec normalizes networks (host bits cleared), so `addr` is the network.
                out.push(cmp_eq(addr));
            }
        }
    }
}

impl Rule {
    /// The rule's nf_tables expressions.
    pub fn expressions(&self) -> Vec<Expr> {
        let mut out = Vec::new();
        for m in &self.matches {
            match_exprs(m, &mut out);
        }
        match self.action {
            Action::Return => out.push(verdict(Verdict::Return)),
            Action::Accept => out.push(verdict(Verdict::Other(NF_ACCEPT))),
            Action::Drop => out.push(verdict(Verdict::Other(NF_DROP))),
            Action::Redirect(port) => {
                out.push(
                    Expressions::Immediate(vec![
                        Immediate::DestinationRegister(Register::Reg1),
                        Immediate::Data(DataAttribute::Value(port.to_be_bytes().to_vec())),
                    ])
                    .into(),
                );
                let reg = u32::from(Register::Reg1).to_be_bytes().to_vec();
                out.push(
                    Expressions::Other {
                        expression_type: "redir".into(),
                        attributes: vec![
                            DefaultNla::new(NFTA_REDIR_REG_PROTO_MIN, reg.clone()),
                            DefaultNla::new(NFTA_REDIR_REG_PROTO_MAX, reg),
                            DefaultNla::new(
                                NFTA_REDIR_FLAGS,
                                NF_NAT_RANGE_PROTO_SPECIFIED.to_be_bytes().to_vec(),
                            ),
                        ],
                    }
                    .into(),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_what_nft_lists() {
        let rs = Ruleset {
            table: "initbox".into(),
            chains: vec![
                Chain {
                    name: "redirect_outbound",
                    hook: Hook::NatOutput,
                    rules: vec![
                        Rule {
                            matches: vec![Match::SkUid(1337)],
                            action: Action::Return,
                        },
                        Rule {
                            matches: vec![Match::Daddr("10.16.0.0/12".parse().unwrap())],
                            action: Action::Return,
                        },
                        Rule {
                            matches: vec![Match::Daddr("fd00::1/128".parse().unwrap())],
                            action: Action::Return,
                        },
                        Rule {
                            matches: vec![Match::Dport(
                                Proto::Tcp,
                                Ports {
                                    first: 8000,
                                    last: 8100,
                                },
                            )],
                            action: Action::Return,
                        },
                        Rule {
                            matches: vec![Match::Dport(Proto::Udp, Ports::one(53))],
                            action: Action::Redirect(15053),
                        },
                        Rule {
                            matches: vec![Match::L4Proto(Proto::Tcp)],
                            action: Action::Redirect(15001),
                        },
                    ],
                },
                Chain {
                    name: "filter_outbound",
                    hook: Hook::FilterOutput,
                    rules: vec![Rule {
                        matches: vec![
                            Match::Daddr("10.1.0.0/16".parse().unwrap()),
                            Match::Dport(Proto::Tcp, Ports::one(443)),
                        ],
                        action: Action::Drop,
                    }],
                },
            ],
        };
        assert_eq!(
            rs.to_string(),
            "table inet initbox {\n\
             \tchain redirect_outbound {\n\
             \t\ttype nat hook output priority -100; policy accept;\n\
             \t\tmeta skuid 1337 return\n\
             \t\tip daddr 10.16.0.0/12 return\n\
             \t\tip6 daddr fd00::1 return\n\
             \t\ttcp dport 8000-8100 return\n\
             \t\tudp dport 53 redirect to :15053\n\
             \t\tmeta l4proto tcp redirect to :15001\n\
             \t}\n\
             \n\
             \tchain filter_outbound {\n\
             \t\ttype filter hook output priority mangle; policy accept;\n\
             \t\tip daddr 10.1.0.0/16 tcp dport 443 drop\n\
             \t}\n\
             }\n"
        );
    }
}
