//! ICMP echo without root where the kernel allows it: a ping socket (`SOCK_DGRAM` +
//! `IPPROTO_ICMP`, allowed when the process's group is within `net.ipv4.ping_group_range`), else a
//! raw socket (needs `CAP_NET_RAW`), else a clear "not permitted" with the sysctl to set.
//!
//! Written on socket2 rather than a ping crate so the method used (ping socket or raw) and the
//! exact reason for a refusal can be reported.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

const PAYLOAD: &[u8] = b"initbox-network-check";
const SYSCTL: &str = "/proc/sys/net/ipv4/ping_group_range";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Unprivileged ping socket.
    Dgram,
    /// Raw socket (CAP_NET_RAW).
    Raw,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Dgram => "ping socket",
            Method::Raw => "raw socket",
        }
    }
}

fn is_permission(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EPROTONOSUPPORT)
    )
}

/// Why neither socket could be opened, with what to change.
pub fn not_permitted_message(dgram: &std::io::Error, raw: &std::io::Error) -> String {
    let range = std::fs::read_to_string(SYSCTL)
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unreadable".into());
    // SAFETY: getegid has no preconditions.
    let gid = unsafe { libc::getegid() };
    format!(
        "ICMP not permitted here (exit 4): no ping socket (group {gid} is outside \
         net.ipv4.ping_group_range = \"{range}\": {}) and no raw socket (needs CAP_NET_RAW: {}); \
         set the sysctl net.ipv4.ping_group_range=\"0 2147483647\" (Kubernetes: pod \
         securityContext.sysctls, a safe sysctl) or grant CAP_NET_RAW, or check with tcp:HOST:PORT instead",
        dgram.kind(),
        raw.kind()
    )
}

/// Why no echo could be sent at all.
#[derive(Debug)]
pub enum PingError {
    /// Neither a ping socket nor a raw socket is allowed here; the text says what to change.
    NotPermitted(String),
    /// Another failure; `context` says of what.
    Io {
        context: String,
        error: std::io::Error,
    },
    /// Opening the socket failed otherwise (both errors in the text).
    Open(String),
}

/// What an echo exchange found.
#[derive(Debug)]
pub struct Replies {
    pub ip: IpAddr,
    pub method: Method,
    pub count: usize,
    /// Round-trip times of the replies received.
    pub rtts: Vec<Duration>,
    /// An error that stopped the exchange (an ICMP error for the echo, a refused send).
    pub error: Option<std::io::Error>,
}

fn open(v6: bool) -> Result<(Socket, Method), PingError> {
    let (domain, proto) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let dgram_err = match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => return Ok((s, Method::Dgram)),
        Err(e) => e,
    };
    match Socket::new(domain, Type::RAW, Some(proto)) {
        Ok(s) => Ok((s, Method::Raw)),
        Err(raw_err) if is_permission(&dgram_err) && is_permission(&raw_err) => Err(
            PingError::NotPermitted(not_permitted_message(&dgram_err, &raw_err)),
        ),
        Err(raw_err) => Err(PingError::Open(format!(
            "cannot open an ICMP socket: ping socket: {dgram_err}; raw socket: {raw_err}"
        ))),
    }
}

/// RFC 1071 Internet checksum.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request. For IPv6 the kernel fills in the checksum; for a ping socket it also sets
/// the identifier.
pub fn echo_request(v6: bool, ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(PAYLOAD);
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// The sequence number of an echo reply meant for us, if `packet` is one.
pub fn parse_reply(packet: &[u8], v6: bool, method: Method, ident: u16) -> Option<u16> {
    let icmp = if !v6 && method == Method::Raw {
        // A raw IPv4 socket hands over the IP header too.
        let ihl = usize::from(packet.first()? & 0x0f) * 4;
        packet.get(ihl..)?
    } else {
        packet
    };
    if icmp.len() < 8 || icmp[0] != if v6 { 129 } else { 0 } || icmp[1] != 0 {
        return None;
    }
    // The kernel rewrites the identifier of a ping socket and matches replies itself.
    if method == Method::Raw && icmp[4..6] != ident.to_be_bytes() {
        return None;
    }
    if icmp.get(8..8 + PAYLOAD.len()) != Some(PAYLOAD) {
        return None;
    }
    Some(u16::from_be_bytes([icmp[6], icmp[7]]))
}

/// Send `count` echo requests to `ip`, `interval` apart, and wait up to `timeout` after the last
/// for the replies.
pub async fn ping(
    ip: IpAddr,
    count: u32,
    interval: Duration,
    timeout: Duration,
) -> Result<Replies, PingError> {
    let v6 = ip.is_ipv6();
    let (sock, method) = open(v6)?;
    let target = SockAddr::from(SocketAddr::new(ip, 0));
    if let Err(e) = sock
        .set_nonblocking(true)
        .and_then(|_| sock.connect(&target))
    {
        return Err(PingError::Io {
            context: format!("icmp {ip}"),
            error: e,
        });
    }
    // SAFETY: the socket is moved into the AsyncFd, which owns it (and its one descriptor) until
    // it is dropped.
    let fd = match unsafe { AsyncFd::register(sock) }.map_err(std::io::Error::from) {
        Ok(fd) => fd,
        Err(e) => {
            return Err(PingError::Io {
                context: "icmp socket".into(),
                error: e,
            });
        }
    };
    let ident: u16 = rand_ident();
    let count = count as usize;
    let mut sent_at: Vec<Option<Instant>> = vec![None; count];
    let mut rtts: Vec<Option<Duration>> = vec![None; count];
    let mut send_error: Option<std::io::Error> = None;
    let mut next_send = Instant::now();
    let mut sent = 0usize;
    // Replies may come until `timeout` after the last request.
    let mut last_deadline = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    loop {
        let received = rtts.iter().filter(|r| r.is_some()).count();
        if received == count || (sent == count && Instant::now() >= last_deadline) {
            break;
        }
        if sent < count && Instant::now() >= next_send {
            let packet = echo_request(v6, ident, sent as u16);
            match fd.get_ref().send(&packet) {
                Ok(_) => {
                    sent_at[sent] = Some(Instant::now());
                }
                Err(e) => {
                    send_error = Some(e);
                }
            }
            sent += 1;
            next_send = Instant::now() + interval;
            last_deadline = Instant::now() + timeout;
            if send_error.is_some() {
                break;
            }
            continue;
        }
        let wake = if sent < count {
            next_send
        } else {
            last_deadline
        };
        let readable = tokio::time::timeout_at(wake, fd.readable()).await;
        let Ok(Ok(mut guard)) = readable else {
            continue;
        };
        match guard.try_io(|inner| {
            let mut s: &Socket = inner.get_ref();
            s.read(&mut buf)
        }) {
            Ok(Ok(n)) => {
                if let Some(seq) = parse_reply(&buf[..n], v6, method, ident) {
                    let seq = usize::from(seq);
                    if let (Some(Some(at)), Some(slot @ None)) =
                        (sent_at.get(seq), rtts.get_mut(seq))
                    {
                        *slot = Some(at.elapsed());
                    }
                }
            }
            Ok(Err(e)) => {
                // An ICMP error for our echo (host unreachable, admin prohibited) on a
                // connected socket.
                send_error = Some(e);
                break;
            }
            Err(_would_block) => continue,
        }
    }
    Ok(Replies {
        ip,
        method,
        count,
        rtts: rtts.iter().flatten().copied().collect(),
        error: send_error,
    })
}

fn rand_ident() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    (t as u16) ^ (std::process::id() as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_an_echo_request_verifies() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(checksum(&p), 0);
    }

    #[test]
    fn replies_are_matched_by_identifier_and_payload() {
        let mut reply = echo_request(false, 0x1234, 7);
        reply[0] = 0;
        assert_eq!(parse_reply(&reply, false, Method::Dgram, 0), Some(7));
        assert_eq!(parse_reply(&reply, false, Method::Dgram, 99), Some(7));
        let mut ip = vec![0x45u8; 1];
        ip.extend_from_slice(&[0; 19]);
        ip.extend_from_slice(&reply);
        assert_eq!(parse_reply(&ip, false, Method::Raw, 0x1234), Some(7));
        assert_eq!(parse_reply(&ip, false, Method::Raw, 0x9999), None);
        // Our own request seen on a raw socket is not a reply.
        let req = echo_request(false, 0x1234, 7);
        assert_eq!(parse_reply(&req, false, Method::Dgram, 0), None);
    }
}
