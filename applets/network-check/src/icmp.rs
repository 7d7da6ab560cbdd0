//! `icmp:` checks: the echo exchange of `initbox-icmp`, judged and reported as an observation.

use std::time::Duration;

use initbox_icmp::PingError;
use initbox_runtime::duration::human;
use serde_json::json;
use tokio::time::Instant;

use crate::probe::{Observation, Observed, classify_io};
use crate::spec::IcmpCheck;

pub async fn icmp(c: &IcmpCheck, ctx: &crate::net::Ctx, timeout: Duration) -> Observation {
    let started = Instant::now();
    let deadline = started + timeout;
    let (ips, dns) =
        match crate::net::resolve(&c.host, &ctx.resolver(None), started, deadline).await {
            Ok(x) => x,
            Err(o) => return o,
        };
    let ip = ips.iter().find(|i| i.is_ipv4()).copied().unwrap_or(ips[0]);
    let mut o = ping(ip, c, timeout).await;
    if let Some(d) = dns {
        o = o.with_timings(&[("dns", d)]);
    }
    o
}

async fn ping(ip: std::net::IpAddr, c: &IcmpCheck, timeout: Duration) -> Observation {
    let r = match initbox_icmp::ping(ip, c.count, c.interval, timeout).await {
        Ok(r) => r,
        Err(PingError::NotPermitted(m)) => return Observation::new(Observed::NotPermitted, m),
        Err(PingError::Open(m)) => return Observation::new(Observed::Error, m),
        Err(PingError::Io { context, error }) => {
            let kind = if context == "icmp socket" {
                Observed::Error
            } else {
                classify_io(&error)
            };
            return Observation::new(kind, format!("{context}: {error}"));
        }
    };
    let (count, method) = (r.count, r.method);
    let got = r.rtts;
    let loss = 1.0 - got.len() as f64 / count as f64;
    let elapsed = |o: Observation| {
        o.data("method", method.as_str())
            .data("address", ip.to_string())
    };
    if got.is_empty() {
        if let Some(e) = r.error {
            return elapsed(Observation::new(
                classify_io(&e),
                format!("icmp {ip} via {}: {e}", method.as_str()),
            ));
        }
        return elapsed(Observation::new(
            Observed::Timeout,
            format!(
                "no echo reply from {ip} ({count} sent, 100% loss, waited {} after the last)",
                human(timeout)
            ),
        ))
        .data("sent", count)
        .data("received", 0);
    }
    let min = got.iter().min().copied().unwrap_or_default();
    let max = got.iter().max().copied().unwrap_or_default();
    let avg = got.iter().sum::<Duration>() / got.len() as u32;
    let summary = format!(
        "{}/{count} replies from {ip}, {:.0}% loss, rtt min/avg/max {}/{}/{} via {}",
        got.len(),
        loss * 100.0,
        human(min),
        human(avg),
        human(max),
        method.as_str()
    );
    let o = if loss > c.max_loss + 1e-9 {
        Observation::new(
            Observed::Mismatch,
            format!("{summary}: loss above max_loss {:.0}%", c.max_loss * 100.0),
        )
    } else {
        Observation::ok(summary)
    };
    elapsed(o)
        .timing("rtt_avg", avg)
        .data("sent", count)
        .data("received", got.len())
        .data("loss", loss)
        .data(
            "rtt_ms",
            json!({"min": ms(min), "avg": ms(avg), "max": ms(max)}),
        )
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
