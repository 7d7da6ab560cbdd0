//! nf_tables over netlink, without `nft` or libnftnl: one batch (one kernel transaction) that
//! replaces initbox's table, one that deletes it, and the dumps `--check` compares with.
//!
//! Messages are built and parsed with rust-netlink's `netlink-packet-netfilter`; the socket is
//! `netlink-sys`. Every message of a batch asks for an acknowledgement, so each gets exactly
//! one answer (an ack or its error) and a failure names the message that caused it.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_netfilter::nftables::{
    ChainAttribute, ChainMessage, ExpressionAttribute, Hook as HookAttr, HookNumber, ListAttribute,
    NfTablesMessage, RuleAttribute, RuleMessage, TableAttribute, TableFlags, TableMessage,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};
use netlink_sys::{Socket, protocols::NETLINK_NETFILTER};

use crate::ruleset::Ruleset;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NF_ACCEPT: u32 = 1;
/// How long the kernel may take to answer (it answers at once; this only guards a hang).
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

pub type Expr = ListAttribute<ExpressionAttribute>;

/// A netlink failure: what was being done and the kernel's errno.
#[derive(Debug)]
pub struct NftError {
    pub doing: String,
    pub error: io::Error,
}

impl NftError {
    fn new(doing: impl Into<String>, error: io::Error) -> Self {
        NftError {
            doing: doing.into(),
            error,
        }
    }
    pub fn errno(&self) -> Option<i32> {
        self.error.raw_os_error()
    }
}

/// A chain of initbox's table as the kernel has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedChain {
    pub name: String,
    pub kind: Option<String>,
    pub hook: Option<u32>,
    pub priority: Option<i32>,
    pub policy: Option<u32>,
    pub rules: Vec<Vec<Expr>>,
}

pub struct Nft {
    socket: Socket,
    seq: u32,
}

type Message = NetlinkMessage<NetfilterMessage>;

fn nft_message(inner: NfTablesMessage, flags: u16) -> Message {
    let mut m = NetlinkMessage::from(NetfilterMessage::new(
        NetfilterHeader::new(NetfilterProtoFamily::Inet, 0, 0),
        inner,
    ));
    m.header.flags = NLM_F_REQUEST | flags;
    m
}

fn batch_marker(end: bool) -> Message {
    let control = if end {
        ControlMessage::BatchEnd
    } else {
        ControlMessage::BatchBegin
    };
    let mut m = NetlinkMessage::from(NetfilterMessage::new(
        NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, NFNL_SUBSYS_NFTABLES),
        control,
    ));
    m.header.flags = NLM_F_REQUEST;
    m
}

fn table_message(table: &str) -> TableMessage {
    TableMessage {
        attributes: vec![
            TableAttribute::Name(table.to_string()),
            TableAttribute::Flags(TableFlags::default()),
        ],
    }
}

impl Nft {
    pub fn open() -> Result<Nft, NftError> {
        let mut socket = Socket::new(NETLINK_NETFILTER)
            .map_err(|e| NftError::new("open a netlink socket", e))?;
        socket
            .bind_auto()
            .map_err(|e| NftError::new("bind the netlink socket", e))?;
        let tv = libc::timeval {
            tv_sec: ANSWER_WITHIN.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        // SAFETY: a valid socket and a timeval of the size given.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(NftError::new(
                "set the netlink receive timeout",
                io::Error::last_os_error(),
            ));
        }
        // Large batches and dumps: room for them in the receive buffer.
        let _ = socket.set_rx_buf_sz(1 << 20);
        Ok(Nft {
            socket,
            seq: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs() as u32),
        })
    }

    /// Send `messages` (each with its description) as one transaction between batch markers,
    /// and wait for every acknowledgement.
    fn transaction(&mut self, messages: Vec<(Message, String)>) -> Result<(), NftError> {
        let mut buf = Vec::new();
        let mut pending = Vec::new();
        let first = self.seq.wrapping_add(1);
        let all = std::iter::once((batch_marker(false), String::new()))
            .chain(messages)
            .chain(std::iter::once((batch_marker(true), String::new())));
        for (mut m, what) in all {
            self.seq = self.seq.wrapping_add(1);
            m.header.sequence_number = self.seq;
            m.finalize();
            if m.header.flags & NLM_F_ACK != 0 {
                pending.push((self.seq, what));
            }
            let start = buf.len();
            buf.resize(start + m.buffer_len(), 0);
            m.serialize(&mut buf[start..]);
        }
        self.socket
            .send(&buf, 0)
            .map_err(|e| NftError::new("send the nftables transaction", e))?;
        let mut first_error: Option<NftError> = None;
        while !pending.is_empty() {
            for m in self.receive("read the transaction's answers")? {
                if let NetlinkPayload::Error(e) = m.payload {
                    let seq = m.header.sequence_number;
                    let Some(i) = pending.iter().position(|(s, _)| *s == seq) else {
                        // A batch refused as a whole (no NET_ADMIN, a bad batch header) is
                        // answered once, at its first message, which asked for no answer.
                        if e.code.is_some() && (first..=self.seq).contains(&seq) {
                            return Err(NftError::new("send the nftables transaction", e.to_io()));
                        }
                        continue;
                    };
                    let (_, what) = pending.remove(i);
                    if e.code.is_some() && first_error.is_none() {
                        first_error = Some(NftError::new(what, e.to_io()));
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// One datagram of answers, parsed.
    fn receive(&mut self, doing: &str) -> Result<Vec<Message>, NftError> {
        let (data, _) = self.socket.recv_from_full().map_err(|e| {
            let e = if e.kind() == io::ErrorKind::WouldBlock {
                io::Error::new(io::ErrorKind::TimedOut, "no answer from the kernel")
            } else {
                e
            };
            NftError::new(doing, e)
        })?;
        let mut out = Vec::new();
        let mut at = 0;
        while at + 16 <= data.len() {
            let len = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap_or([0; 4])) as usize;
            if len < 16 || at + len > data.len() {
                break;
            }
            let m = Message::deserialize(&data[at..at + len]).map_err(|e| {
                NftError::new(
                    doing,
                    io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
                )
            })?;
            out.push(m);
            at += (len + 3) & !3;
        }
        Ok(out)
    }

    /// Replace initbox's table with `rs` in one transaction: create it (so the delete that
    /// follows always finds it), delete it with everything in it, create it anew.
    pub fn replace(&mut self, rs: &Ruleset) -> Result<(), NftError> {
        let t = &rs.table;
        let mut msgs = vec![
            (
                nft_message(
                    NfTablesMessage::NewTable(table_message(t)),
                    NLM_F_CREATE | NLM_F_ACK,
                ),
                format!("create table inet {t}"),
            ),
            (
                nft_message(
                    NfTablesMessage::DeleteTable(TableMessage {
                        attributes: vec![TableAttribute::Name(t.clone())],
                    }),
                    NLM_F_ACK,
                ),
                format!("delete the old table inet {t}"),
            ),
            (
                nft_message(
                    NfTablesMessage::NewTable(table_message(t)),
                    NLM_F_CREATE | NLM_F_ACK,
                ),
                format!("create table inet {t}"),
            ),
        ];
        for c in &rs.chains {
            msgs.push((
                nft_message(
                    NfTablesMessage::NewChain(ChainMessage {
                        attributes: vec![
                            ChainAttribute::Table(t.clone()),
                            ChainAttribute::Name(c.name.to_string()),
                            ChainAttribute::Hook(vec![
                                HookAttr::Number(HookNumber::Other(c.hook.number())),
                                HookAttr::Priority(c.hook.priority() as u32),
                            ]),
                            ChainAttribute::Policy(NF_ACCEPT),
                            ChainAttribute::Type(c.hook.kind().to_string()),
                        ],
                    }),
                    NLM_F_CREATE | NLM_F_ACK,
                ),
                format!(
                    "create chain {} (type {} hook {})",
                    c.name,
                    c.hook.kind(),
                    c.hook.hook_name()
                ),
            ));
            for r in &c.rules {
                msgs.push((
                    nft_message(
                        NfTablesMessage::NewRule(RuleMessage {
                            attributes: vec![
                                RuleAttribute::Table(t.clone()),
                                RuleAttribute::Chain(c.name.to_string()),
                                RuleAttribute::Expressions(r.expressions()),
                            ],
                        }),
                        NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK,
                    ),
                    format!("add rule '{r}' to chain {}", c.name),
                ));
            }
        }
        self.transaction(msgs)
    }

    /// Delete the table; `Ok(false)` when there was none.
    pub fn delete(&mut self, table: &str) -> Result<bool, NftError> {
        let msg = nft_message(
            NfTablesMessage::DeleteTable(TableMessage {
                attributes: vec![TableAttribute::Name(table.to_string())],
            }),
            NLM_F_ACK,
        );
        match self.transaction(vec![(msg, format!("delete table inet {table}"))]) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Send one request and collect its answers up to the acknowledgement or the end of the
    /// dump.
    fn request(&mut self, mut m: Message, doing: &str) -> Result<Vec<NfTablesMessage>, NftError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        m.header.sequence_number = seq;
        m.finalize();
        let mut buf = vec![0; m.buffer_len()];
        m.serialize(&mut buf);
        self.socket
            .send(&buf, 0)
            .map_err(|e| NftError::new(doing, e))?;
        let mut out = Vec::new();
        loop {
            for m in self.receive(doing)? {
                if m.header.sequence_number != seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(_) => Err(NftError::new(doing, e.to_io())),
                        };
                    }
                    NetlinkPayload::InnerMessage(NetfilterMessage {
                        inner: NetfilterMessageInner::NfTables(n),
                        ..
                    }) => out.push(n),
                    _ => {}
                }
            }
        }
    }

    /// The table's chains and their rules as the kernel has them; `None` when there is no table.
    pub fn list(&mut self, table: &str) -> Result<Option<Vec<ListedChain>>, NftError> {
        let get = nft_message(
            NfTablesMessage::GetTable(TableMessage {
                attributes: vec![TableAttribute::Name(table.to_string())],
            }),
            NLM_F_ACK,
        );
        match self.request(get, &format!("read table inet {table}")) {
            Ok(_) => {}
            Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e),
        }
        let dump = nft_message(
            NfTablesMessage::GetChain(ChainMessage { attributes: vec![] }),
            NLM_F_DUMP,
        );
        let mut chains = Vec::new();
        for m in self.request(dump, "list the chains")? {
            let NfTablesMessage::NewChain(c) = m else {
                continue;
            };
            let mut ours = false;
            let mut chain = ListedChain {
                name: String::new(),
                kind: None,
                hook: None,
                priority: None,
                policy: None,
                rules: Vec::new(),
            };
            for a in c.attributes {
                match a {
                    ChainAttribute::Table(t) => ours = t == table,
                    ChainAttribute::Name(n) => chain.name = n,
                    ChainAttribute::Type(k) => chain.kind = Some(k),
                    ChainAttribute::Policy(p) => chain.policy = Some(p),
                    ChainAttribute::Hook(h) => {
                        for h in h {
                            match h {
                                HookAttr::Number(n) => chain.hook = Some(u32::from(n)),
                                HookAttr::Priority(p) => chain.priority = Some(p as i32),
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            if ours {
                chains.push(chain);
            }
        }
        let dump = nft_message(
            NfTablesMessage::GetRule(RuleMessage {
                attributes: vec![RuleAttribute::Table(table.to_string())],
            }),
            NLM_F_DUMP,
        );
        for m in self.request(dump, "list the rules")? {
            let NfTablesMessage::NewRule(r) = m else {
                continue;
            };
            let (mut t, mut c, mut exprs) = (String::new(), String::new(), Vec::new());
            for a in r.attributes {
                match a {
                    RuleAttribute::Table(x) => t = x,
                    RuleAttribute::Chain(x) => c = x,
                    RuleAttribute::Expressions(e) => exprs = e,
                    _ => {}
                }
            }
            if t == table
                && let Some(chain) = chains.iter_mut().find(|ch| ch.name == c)
            {
                chain.rules.push(exprs);
            }
        }
        Ok(Some(chains))
    }
}

/// `exprs` as the kernel would list them: emitted and parsed back, so a comparison with a
/// dump is between two parses of the same wire format.
pub fn normalized(exprs: Vec<Expr>) -> Vec<Expr> {
    let m = nft_message(
        NfTablesMessage::NewRule(RuleMessage {
            attributes: vec![RuleAttribute::Expressions(exprs.clone())],
        }),
        0,
    );
    let mut m = m;
    m.finalize();
    let mut buf = vec![0; m.buffer_len()];
    m.serialize(&mut buf);
    match Message::deserialize(&buf) {
        Ok(NetlinkMessage {
            payload:
                NetlinkPayload::InnerMessage(NetfilterMessage {
                    inner: NetfilterMessageInner::NfTables(NfTablesMessage::NewRule(r)),
                    ..
                }),
            ..
        }) => r
            .attributes
            .into_iter()
            .find_map(|a| match a {
                RuleAttribute::Expressions(e) => Some(e),
                _ => None,
            })
            .unwrap_or_default(),
        _ => exprs,
    }
}
