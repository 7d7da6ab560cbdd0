//! `icmp://HOST`: the host answers an ICMP echo (the "wait until the host is reachable" init
//! container), through `initbox-icmp`: an unprivileged ping socket where
//! `net.ipv4.ping_group_range` allows it, else a raw socket (CAP_NET_RAW); neither is exit 4.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use initbox_icmp::PingError;
use initbox_runtime::Failure;
use initbox_runtime::resolve::Resolver;
use initbox_runtime::target::{Host, parse_host};
use initbox_runtime::wait::{NotReady, Probe, ProbeFuture};

pub struct IcmpProbe {
    host: Host,
    shown: String,
    resolver: Arc<Resolver>,
    /// How long to wait for the reply (the engine bounds the attempt as well).
    reply_timeout: Duration,
}

impl IcmpProbe {
    pub fn new(
        url: &str,
        resolver: Arc<Resolver>,
        attempt_timeout: Duration,
    ) -> Result<Self, Failure> {
        let rest = &url["icmp://".len()..];
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains(['/', '?', '@']) {
            return Err(Failure::usage(format!("'{url}': expected icmp://HOST")));
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let host = parse_host(bare).map_err(|e| Failure::usage(format!("'{url}': {e}")))?;
        Ok(IcmpProbe {
            shown: format!("icmp://{host}"),
            host,
            resolver,
            reply_timeout: attempt_timeout
                .saturating_sub(Duration::from_millis(50))
                .max(Duration::from_millis(50)),
        })
    }

    async fn address(&self) -> Result<IpAddr, NotReady> {
        match &self.host {
            Host::Ip(ip) => Ok(*ip),
            Host::Name(n) => {
                let ips = self
                    .resolver
                    .lookup_ip(n)
                    .await
                    .map_err(|e| NotReady::retry(format!("{n}: {e}")))?;
                ips.iter()
                    .find(|i| i.is_ipv4())
                    .or(ips.first())
                    .copied()
                    .ok_or_else(|| NotReady::retry(format!("{n}: no address")))
            }
        }
    }
}

impl Probe for IcmpProbe {
    fn target(&self) -> String {
        self.shown.clone()
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let ip = self.address().await?;
            match initbox_icmp::ping(ip, 1, Duration::ZERO, self.reply_timeout).await {
                Ok(r) => match (r.rtts.first(), r.error) {
                    (Some(rtt), _) => Ok(format!(
                        "echo reply from {ip} in {} via {}",
                        initbox_runtime::duration::human(*rtt),
                        r.method.as_str()
                    )),
                    (None, Some(e)) => Err(NotReady::retry(format!("{ip}: {e}"))),
                    (None, None) => Err(NotReady::retry(format!("no echo reply from {ip}"))),
                },
                Err(PingError::NotPermitted(m)) => Err(NotReady::Fatal(Failure::env_refused(m))),
                Err(PingError::Open(m)) => Err(NotReady::Fatal(Failure::env_refused(m))),
                Err(PingError::Io { context, error }) => {
                    Err(NotReady::retry(format!("{context}: {error}")))
                }
            }
        })
    }
}
