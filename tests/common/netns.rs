//! Network namespaces made by a test (root only): named namespaces joined by veth pairs, TCP
//! servers bound inside them, commands and connections run inside them. Every namespace (and
//! with it its veth ends, listeners and nftables tables) is deleted on drop, so only addresses
//! inside namespaces the test created are ever used.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static COUNT: AtomicU32 = AtomicU32::new(0);

/// Run a command, panicking with its stderr when it fails.
pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "these tests create network namespaces and need root"
    );
}

/// One named network namespace (`ip netns add`), loopback up.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A new namespace named `PREFIX<pid>x<n>` (short: interface names are ≤ 15 bytes).
    pub fn new(prefix: &str) -> Netns {
        require_root();
        let name = format!(
            "{prefix}{}x{}",
            std::process::id() % 100_000,
            COUNT.fetch_add(1, Ordering::SeqCst)
        );
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    /// `ip netns exec NAME PROGRAM`, with no INITBOX_* variable from the test's environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("INITBOX_") {
                cmd.env_remove(k);
            }
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Run `f` on a thread that has joined this namespace (sockets it makes live here).
    pub fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let ns = File::open(&path).unwrap();
            // SAFETY: setns on this thread only; the fd is valid for the call.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}");
            f()
        })
        .join()
        .unwrap()
    }

    /// A TCP server bound to `addr` in this namespace that answers every connection with
    /// `banner` followed by the connection's original destination (SO_ORIGINAL_DST: where the
    /// client meant to go before a redirect; its own address when not redirected), then closes.
    pub fn serve(&self, addr: &str, banner: &'static str) -> SocketAddr {
        let addr = addr.to_string();
        let listener = self.within(move || TcpListener::bind(&addr).unwrap());
        let local = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { return };
                let dst =
                    original_destination(&s).map_or_else(|| "?".to_string(), |a| a.to_string());
                let _ = s.write_all(format!("{banner} {dst}\n").as_bytes());
            }
        });
        local
    }

    /// A UDP server bound to `addr` in this namespace that answers every datagram with
    /// `banner` followed by the datagram's text, to its sender.
    pub fn serve_udp(&self, addr: &str, banner: &'static str) -> SocketAddr {
        let addr = addr.to_string();
        let socket = self.within(move || UdpSocket::bind(&addr).unwrap());
        let local = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                let reply = format!("{banner} {}\n", String::from_utf8_lossy(&buf[..n]));
                let _ = socket.send_to(reply.as_bytes(), from);
            }
        });
        local
    }

    /// Send `text` in one datagram from this namespace (as root) to `to` and read the one
    /// datagram answering it; `Err` with the error kind when none comes.
    pub fn ask_udp(&self, to: &str, text: &str) -> Result<String, std::io::ErrorKind> {
        let to: SocketAddr = to.parse().unwrap();
        let text = text.to_string();
        self.within(move || {
            let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.kind())?;
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.send_to(text.as_bytes(), to).map_err(|e| e.kind())?;
            let mut buf = [0u8; 512];
            let (n, _) = s.recv_from(&mut buf).map_err(|e| e.kind())?;
            Ok(String::from_utf8_lossy(&buf[..n]).trim().to_string())
        })
    }

    /// `ask_udp` as `uid` (a separate process: bash's /dev/udp, one datagram read by dd);
    /// `None` when no answer comes.
    pub fn ask_udp_as(&self, uid: u32, host: &str, port: u16, text: &str) -> Option<String> {
        self.bash_as(
            uid,
            "exec 3<>/dev/udp/$0/$1 && printf %s \"$2\" >&3 && dd bs=512 count=1 status=none <&3",
            &[host, &port.to_string(), text],
        )
    }

    /// Connect from this namespace (as root) and read the answer; `Err` with the error kind
    /// when the connection fails.
    pub fn fetch(&self, to: &str) -> Result<String, std::io::ErrorKind> {
        let to: SocketAddr = to.parse().unwrap();
        self.within(move || {
            let mut s =
                TcpStream::connect_timeout(&to, Duration::from_secs(5)).map_err(|e| e.kind())?;
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).map_err(|e| e.kind())?;
            Ok(text.trim().to_string())
        })
    }

    /// `true` when a connection from this namespace to `to` fails (refused, dropped: no answer
    /// within `within`).
    pub fn cannot_connect(&self, to: &str, within: Duration) -> bool {
        let to: SocketAddr = to.parse().unwrap();
        self.within(move || TcpStream::connect_timeout(&to, within).is_err())
    }

    /// Connect from this namespace as `uid` (a separate process, bash's /dev/tcp) and read the
    /// answer; `None` when the connection fails.
    pub fn fetch_as(&self, uid: u32, host: &str, port: u16) -> Option<String> {
        self.bash_as(
            uid,
            "exec 3<>/dev/tcp/$0/$1 && cat <&3",
            &[host, &port.to_string()],
        )
    }

    /// `script` run by bash in this namespace as `uid` (its gid the same, no supplementary
    /// groups), with `args` as `$0…`, bounded by 5 s; its trimmed output, `None` when it fails.
    fn bash_as(&self, uid: u32, script: &str, args: &[&str]) -> Option<String> {
        let out = self
            .command("setpriv")
            .args([
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                "--clear-groups",
                "timeout",
                "5",
                "bash",
                "-c",
                script,
            ])
            .args(args)
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// The destination a NAT redirect rewrote (SO_ORIGINAL_DST), IPv4.
fn original_destination(s: &TcpStream) -> Option<SocketAddr> {
    // SAFETY: a zeroed sockaddr_in is valid; the length is its size.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a valid socket fd, a buffer of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_IP,
            libc::SO_ORIGINAL_DST,
            (&mut sa as *mut libc::sockaddr_in).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return s.local_addr().ok();
    }
    let ip = std::net::Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr));
    Some(SocketAddr::from((ip, u16::from_be(sa.sin_port))))
}

/// Two namespaces joined by a veth pair: `a` with `a_addrs`, `b` with `b_addrs` (CIDR form).
pub fn pair(prefix: &str, a_addrs: &[&str], b_addrs: &[&str]) -> (Netns, Netns) {
    let a = Netns::new(&format!("{prefix}a"));
    let b = Netns::new(&format!("{prefix}b"));
    let n = COUNT.fetch_add(1, Ordering::SeqCst);
    let (da, db) = (
        format!("v{}a{n}", std::process::id() % 100_000),
        format!("v{}b{n}", std::process::id() % 100_000),
    );
    sh(&[
        "ip", "link", "add", &da, "netns", &a.name, "type", "veth", "peer", "name", &db, "netns",
        &b.name,
    ]);
    for (ns, dev, addrs) in [(&a, &da, a_addrs), (&b, &db, b_addrs)] {
        for addr in addrs {
            sh(&["ip", "-n", &ns.name, "addr", "add", addr, "dev", dev]);
        }
        sh(&["ip", "-n", &ns.name, "link", "set", dev, "up"]);
    }
    (a, b)
}
