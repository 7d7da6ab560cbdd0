//! Checks of this host rather than of the network, as goss makes them (its `port` and
//! `interface` resources), so a goss file that carries them runs unchanged:
//!
//! - `port`: a socket bound to the port, from the kernel's tables as goss reads them
//!   (`/proc/net/{tcp,tcp6,udp,udp6}`): for tcp only LISTEN entries, for udp every entry. `tcp`
//!   is the IPv4 table and `tcp6` the IPv6 one (a dual-stack `[::]` listener is `tcp6`, as in
//!   goss). Addresses are written as goss writes them: IPv4 dotted, IPv6 in upper case
//!   (`::`, `::1`, `FE80::1`), an IPv4-mapped IPv6 address as its IPv4 form.
//! - `interface`: the interface exists (by name); its addresses as `ADDRESS/PREFIX`
//!   (`127.0.0.1/8`, `::1/128`), and its MTU.
//!
//! Listed addresses must all be present (goss's plain-list rule), others may be there too.

use std::ffi::{CStr, CString};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::probe::{Observation, Observed};

/// The kernel table a goss port names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Tcp6,
    Udp,
    Udp6,
}

impl Proto {
    pub fn parse(s: &str) -> Option<Proto> {
        Some(match s {
            "tcp" => Proto::Tcp,
            "tcp6" => Proto::Tcp6,
            "udp" => Proto::Udp,
            "udp6" => Proto::Udp6,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Tcp6 => "tcp6",
            Proto::Udp => "udp",
            Proto::Udp6 => "udp6",
        }
    }

    fn table(self) -> &'static str {
        match self {
            Proto::Tcp => "/proc/net/tcp",
            Proto::Tcp6 => "/proc/net/tcp6",
            Proto::Udp => "/proc/net/udp",
            Proto::Udp6 => "/proc/net/udp6",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PortCheck {
    pub proto: Proto,
    pub port: u16,
    /// Addresses it must be bound to (goss's `ip`).
    pub ips: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct InterfaceCheck {
    pub name: String,
    /// `ADDRESS/PREFIX` entries it must carry.
    pub addrs: Vec<String>,
    pub mtu: Option<u32>,
}

/// `tcp:22`, `udp6:53`, or a bare `22` (tcp), as goss names ports.
pub fn parse_port(s: &str) -> Result<(Proto, u16), String> {
    let (proto, port) = s.split_once(':').unwrap_or(("tcp", s));
    let proto = Proto::parse(proto).ok_or_else(|| {
        format!("port '{s}': '{proto}' is not tcp, tcp6, udp or udp6 (the tables goss reads)")
    })?;
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("port '{s}': '{port}' is not a port number (1-65535)"))?;
    Ok((proto, port))
}

/// The 32-bit words of `/proc/net` addresses are printed in host byte order.
fn word(hex: &str) -> Option<[u8; 4]> {
    u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
}

/// A `/proc/net` address (`0100007F`, 32 hex digits for IPv6) as goss shows it.
pub fn proc_address(hex: &str) -> Option<String> {
    let ip = match hex.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(hex)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(&hex[i * 8..i * 8 + 8])?);
            }
            let v6 = Ipv6Addr::from(bytes);
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some(ip.to_string().to_ascii_uppercase())
}

/// The local addresses bound to `port` in one `/proc/net` table (tcp: listening only).
pub fn bound(table: &str, proto: Proto, port: u16) -> Vec<String> {
    let listen_only = matches!(proto, Proto::Tcp | Proto::Tcp6);
    let mut out = Vec::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
            continue;
        };
        let Some((addr, p)) = local.split_once(':') else {
            continue;
        };
        if u16::from_str_radix(p, 16).ok() != Some(port) || listen_only && *state != "0A" {
            continue;
        }
        if let Some(ip) = proc_address(addr)
            && !out.contains(&ip)
        {
            out.push(ip);
        }
    }
    out
}

fn missing(want: &[String], have: &[String]) -> Vec<String> {
    want.iter().filter(|w| !have.contains(w)).cloned().collect()
}

pub fn port(c: &PortCheck) -> Observation {
    let table = match std::fs::read_to_string(c.proto.table()) {
        Ok(t) => t,
        // goss reads a missing table (no IPv6 in the kernel) as nothing bound.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Observation::new(
                Observed::Error,
                format!("cannot read {}: {e}", c.proto.table()),
            );
        }
    };
    let ips = bound(&table, c.proto, c.port);
    let what = match c.proto {
        Proto::Tcp | Proto::Tcp6 => "listening",
        Proto::Udp | Proto::Udp6 => "bound",
    };
    if ips.is_empty() {
        return Observation::new(
            Observed::Refused,
            format!("nothing {what} on {}:{}", c.proto.as_str(), c.port),
        );
    }
    let shown = ips.join(", ");
    let absent = missing(&c.ips, &ips);
    let o = if absent.is_empty() {
        Observation::ok(format!("{what} on {shown}"))
    } else {
        Observation::new(
            Observed::Mismatch,
            format!("{what} on {shown}, not on {}", absent.join(", ")),
        )
    };
    o.data("ips", ips)
}

/// The addresses of interface `name` as `ADDRESS/PREFIX`, in the kernel's order.
fn addresses(name: &CStr) -> std::io::Result<Vec<String>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list freed below by freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is an element of the list getifaddrs returned, not yet freed; its
        // address and netmask point at sockaddrs of the family they announce.
        let entry = unsafe { &*cur };
        cur = entry.ifa_next;
        if entry.ifa_addr.is_null() || unsafe { CStr::from_ptr(entry.ifa_name) } != name {
            continue;
        }
        let family = i32::from(unsafe { (*entry.ifa_addr).sa_family });
        let prefix = |mask: &[u8]| -> u32 { mask.iter().map(|b| b.count_ones()).sum() };
        match family {
            libc::AF_INET => {
                let sin = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                let bits = if entry.ifa_netmask.is_null() {
                    32
                } else {
                    let m = unsafe { &*(entry.ifa_netmask as *const libc::sockaddr_in) };
                    prefix(&m.sin_addr.s_addr.to_ne_bytes())
                };
                out.push(format!("{ip}/{bits}"));
            }
            libc::AF_INET6 => {
                let sin6 = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in6) };
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                let bits = if entry.ifa_netmask.is_null() {
                    128
                } else {
                    let m = unsafe { &*(entry.ifa_netmask as *const libc::sockaddr_in6) };
                    prefix(&m.sin6_addr.s6_addr)
                };
                out.push(format!("{ip}/{bits}"));
            }
            _ => {}
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// The MTU of interface `name` (SIOCGIFMTU), as the kernel reports it.
fn mtu(name: &CStr) -> std::io::Result<u32> {
    // SAFETY: a datagram socket used only for the ioctl, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.to_bytes()) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFMTU reads ifr_name and writes ifr_ifru.ifru_mtu of `req`.
    let r = unsafe { libc::ioctl(fd, libc::SIOCGIFMTU, &mut req) };
    let result = if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        // SAFETY: the ioctl succeeded, so the union holds the MTU.
        Ok(unsafe { req.ifr_ifru.ifru_mtu } as u32)
    };
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    result
}

pub fn interface(c: &InterfaceCheck) -> Observation {
    let Ok(name) = CString::new(c.name.as_str()) else {
        return Observation::new(Observed::Mismatch, format!("no interface {}", c.name));
    };
    // SAFETY: a NUL-terminated name; 0 means there is no such interface.
    if unsafe { libc::if_nametoindex(name.as_ptr()) } == 0 {
        return Observation::new(Observed::Mismatch, format!("no interface {}", c.name));
    }
    let addrs = match addresses(&name) {
        Ok(a) => a,
        Err(e) => {
            return Observation::new(Observed::Error, format!("cannot list addresses: {e}"));
        }
    };
    let mtu = match mtu(&name) {
        Ok(m) => m,
        Err(e) => return Observation::new(Observed::Error, format!("cannot read the MTU: {e}")),
    };
    let mut wrong = Vec::new();
    let absent = missing(&c.addrs, &addrs);
    if !absent.is_empty() {
        wrong.push(format!(
            "without {} (has {})",
            absent.join(", "),
            if addrs.is_empty() {
                "no address".to_string()
            } else {
                addrs.join(", ")
            }
        ));
    }
    if let Some(want) = c.mtu
        && want != mtu
    {
        wrong.push(format!("MTU {mtu}, not {want}"));
    }
    let o = if wrong.is_empty() {
        Observation::ok(format!("{} exists (MTU {mtu})", c.name))
    } else {
        Observation::new(
            Observed::Mismatch,
            format!("{} exists, {}", c.name, wrong.join("; ")),
        )
    };
    o.data("addrs", addrs).data("mtu", mtu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_named_as_goss_names_them() {
        assert_eq!(parse_port("tcp:22").unwrap(), (Proto::Tcp, 22));
        assert_eq!(parse_port("22").unwrap(), (Proto::Tcp, 22));
        assert_eq!(parse_port("udp6:53").unwrap(), (Proto::Udp6, 53));
        assert!(parse_port("sctp:22").unwrap_err().contains("not tcp"));
        assert!(parse_port("tcp:http").unwrap_err().contains("port number"));
    }

    #[test]
    fn kernel_tables_read_as_goss_reads_them() {
        // Lines as the kernel prints them (little-endian words on this machine's kind).
        let le = cfg!(target_endian = "little");
        let (lo4, any6, lo6, mapped) = if le {
            (
                "0100007F",
                "00000000000000000000000000000000",
                "00000000000000000000000001000000",
                "0000000000000000FFFF00000100007F",
            )
        } else {
            (
                "7F000001",
                "00000000000000000000000000000000",
                "00000000000000000000000000000001",
                "00000000000000000000FFFF7F000001",
            )
        };
        assert_eq!(proc_address(lo4).unwrap(), "127.0.0.1");
        assert_eq!(proc_address(any6).unwrap(), "::");
        assert_eq!(proc_address(lo6).unwrap(), "::1");
        if le {
            assert_eq!(proc_address(mapped).unwrap(), "127.0.0.1");
        }
        let table = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             \x20  0: {lo4}:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0\n\
             \x20  1: {lo4}:1F91 {lo4}:D431 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0\n"
        );
        assert_eq!(bound(&table, Proto::Tcp, 8080), ["127.0.0.1"]);
        // An established connection from port 8081 is not a listener; udp counts any entry.
        assert!(bound(&table, Proto::Tcp, 8081).is_empty());
        assert_eq!(bound(&table, Proto::Udp, 8081), ["127.0.0.1"]);
    }
}
