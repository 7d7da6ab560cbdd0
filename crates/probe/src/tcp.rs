//! The TCP connect probe of `wait-for-tcp`, `wait-for` (`tcp://`) and `network-check` (`tcp:`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use initbox_runtime::resolve::Resolver;
use initbox_runtime::target::{Host, HostPort};
use initbox_runtime::wait::{NotReady, Probe, ProbeFuture};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// A TCP connect probe: every address of the target at once, the first to accept wins.
pub struct TcpProbe {
    target: HostPort,
    resolver: Arc<Resolver>,
}

impl TcpProbe {
    pub fn new(target: HostPort, resolver: Arc<Resolver>) -> Self {
        TcpProbe { target, resolver }
    }

    /// The addresses of the target, resolved now.
    pub async fn addresses(&self) -> Result<Vec<SocketAddr>, NotReady> {
        let ips: Vec<IpAddr> = match &self.target.host {
            Host::Ip(ip) => vec![*ip],
            Host::Name(name) => self
                .resolver
                .lookup_ip(name)
                .await
                .map_err(|e| NotReady::retry(format!("lookup {name}: {e}")))?,
        };
        if ips.is_empty() {
            return Err(NotReady::retry(format!(
                "{} has no addresses",
                self.target.host
            )));
        }
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, self.target.port))
            .collect())
    }

    /// Connect to every address at once; the first to accept wins. On failure, what each
    /// address answered, as `io::Error`s (network-check tells refused from unreachable with them).
    pub async fn try_connect(&self) -> Result<(SocketAddr, TcpStream), TcpFailure> {
        let addrs = self.addresses().await.map_err(TcpFailure::Lookup)?;
        let mut set = JoinSet::new();
        for addr in addrs {
            set.spawn(async move { (addr, TcpStream::connect(addr).await) });
        }
        let mut errors = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((addr, Ok(stream))) => return Ok((addr, stream)),
                Ok((addr, Err(e))) => errors.push((addr, e)),
                Err(e) => errors.push((
                    SocketAddr::from(([0, 0, 0, 0], 0)),
                    std::io::Error::other(e.to_string()),
                )),
            }
        }
        errors.sort_by_key(|(a, _)| *a);
        Err(TcpFailure::Connect(errors))
    }

    /// [`TcpProbe::try_connect`], with the failure as a progress-line reason.
    pub async fn connect(&self) -> Result<(SocketAddr, TcpStream), NotReady> {
        self.try_connect().await.map_err(|f| match f {
            TcpFailure::Lookup(not_ready) => not_ready,
            TcpFailure::Connect(errors) => {
                // An IP target has one address, already named by the target itself.
                if let (Host::Ip(_), [(_, only)]) = (&self.target.host, errors.as_slice()) {
                    return NotReady::Retry(describe(only));
                }
                NotReady::Retry(
                    errors
                        .iter()
                        .map(|(a, e)| format!("{a}: {}", describe(e)))
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            }
        })
    }
}

/// Why a TCP connection could not be made.
#[derive(Debug)]
pub enum TcpFailure {
    /// The name did not resolve (the reason tells NXDOMAIN, SERVFAIL and timeouts apart).
    Lookup(NotReady),
    /// Every address failed; what each one answered.
    Connect(Vec<(SocketAddr, std::io::Error)>),
}

fn describe(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused | ConnectionReset | TimedOut | HostUnreachable | NetworkUnreachable
        | AddrNotAvailable | PermissionDenied => e.kind().to_string(),
        _ => e.to_string(),
    }
}

impl Probe for TcpProbe {
    fn target(&self) -> String {
        self.target.to_string()
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let (addr, _stream) = self.connect().await?;
            Ok(format!("connected to {addr}"))
        })
    }
}
