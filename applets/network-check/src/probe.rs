//! What one attempt of a check saw, and the verdict drawn from it.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::spec::Expect;

/// The raw observation, kept apart from the verdict so a report can show *how* a block happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Observed {
    /// The target answered as asked (connected, resolved, replied, handshake verified).
    Ok,
    /// Connection refused: a TCP reset or an ICMP port unreachable came back. The target or a
    /// firewall rejecting on the way may have sent it; the check cannot tell which.
    Refused,
    /// No answer within the timeout.
    Timeout,
    /// Host or network unreachable (ICMP unreachable, no route).
    Unreachable,
    /// The local stack refused to send (EACCES/EPERM, e.g. a local firewall or `prohibit` route).
    Denied,
    /// The name did not resolve (NXDOMAIN, SERVFAIL, DNS timeout).
    DnsError,
    /// TLS handshake or certificate problem.
    TlsError,
    /// Something answered, but not what was expected (status, body, record values, loss).
    Mismatch,
    /// The environment does not allow the check (ICMP without ping sockets or CAP_NET_RAW).
    NotPermitted,
    /// Any other error.
    Error,
}

impl Observed {
    pub fn as_str(self) -> &'static str {
        match self {
            Observed::Ok => "ok",
            Observed::Refused => "refused",
            Observed::Timeout => "timeout",
            Observed::Unreachable => "unreachable",
            Observed::Denied => "denied",
            Observed::DnsError => "dns_error",
            Observed::TlsError => "tls_error",
            Observed::Mismatch => "mismatch",
            Observed::NotPermitted => "not_permitted",
            Observed::Error => "error",
        }
    }
}

/// One attempt's result.
#[derive(Debug, Clone)]
pub struct Observation {
    pub observed: Observed,
    pub detail: String,
    /// Phase timings in order (`dns`, `connect`, `tls`, `first_byte`, `rtt_avg`...).
    pub timings: Vec<(&'static str, Duration)>,
    /// Evidence for the JSON report (addresses, certificate, answers...).
    pub data: Map<String, Value>,
    /// A reason to warn while passing (certificate close to expiry).
    pub warning: Option<String>,
}

impl Observation {
    pub fn new(observed: Observed, detail: impl Into<String>) -> Self {
        Observation {
            observed,
            detail: detail.into(),
            timings: Vec::new(),
            data: Map::new(),
            warning: None,
        }
    }
    pub fn ok(detail: impl Into<String>) -> Self {
        Self::new(Observed::Ok, detail)
    }
    pub fn timing(mut self, phase: &'static str, d: Duration) -> Self {
        self.timings.push((phase, d));
        self
    }
    pub fn with_timings(mut self, t: &[(&'static str, Duration)]) -> Self {
        let mut all = t.to_vec();
        all.append(&mut self.timings);
        self.timings = all;
        self
    }
    pub fn data(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.data.insert(key.to_string(), v.into());
        self
    }
}

/// The verdict of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    /// The check could not be performed here (exit 4).
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Error => "ERROR",
        }
    }
    pub fn passed(self) -> bool {
        matches!(self, Status::Pass | Status::Warn)
    }
}

/// Judge an observation against what the check expects; returns the status and the reason shown.
pub fn judge(expect: Expect, o: &Observation) -> (Status, String) {
    if o.observed == Observed::NotPermitted {
        return (Status::Error, o.detail.clone());
    }
    match expect {
        Expect::Fail => match o.observed {
            Observed::Ok => (
                Status::Fail,
                format!("expected no answer, but the target answered ({})", o.detail),
            ),
            other => (
                Status::Pass,
                format!("no answer as expected ({}): {}", other.as_str(), o.detail),
            ),
        },
        Expect::Pass => match (o.observed, &o.warning) {
            (Observed::Ok, None) => (Status::Pass, o.detail.clone()),
            (Observed::Ok, Some(w)) => (Status::Warn, w.clone()),
            _ => (Status::Fail, o.detail.clone()),
        },
        Expect::Blocked => match o.observed {
            Observed::Timeout | Observed::Unreachable | Observed::Denied => (
                Status::Pass,
                format!("blocked ({}): {}", o.observed.as_str(), o.detail),
            ),
            // Only what was seen: a reset or port unreachable comes from a closed port and from a
            // firewall that rejects alike, so it neither proves the path open nor the block.
            Observed::Refused => (
                Status::Fail,
                format!(
                    "not counted as blocked: connection refused (a TCP reset or ICMP port \
                     unreachable came back, from the target or a firewall that rejects; only a \
                     timeout, unreachable or local denial counts) ({})",
                    o.detail
                ),
            ),
            Observed::DnsError => (
                Status::Fail,
                format!(
                    "cannot tell whether blocked: the name did not resolve ({})",
                    o.detail
                ),
            ),
            Observed::Ok | Observed::TlsError | Observed::Mismatch => (
                Status::Fail,
                format!("not blocked: the target answered ({})", o.detail),
            ),
            Observed::NotPermitted | Observed::Error => (
                Status::Fail,
                format!("cannot tell whether blocked: {}", o.detail),
            ),
        },
    }
}

/// How an I/O error of a connect or send is observed.
pub fn classify_io(e: &std::io::Error) -> Observed {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused | ConnectionReset => Observed::Refused,
        TimedOut => Observed::Timeout,
        HostUnreachable | NetworkUnreachable | AddrNotAvailable => Observed::Unreachable,
        PermissionDenied => Observed::Denied,
        _ => match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Observed::Denied,
            Some(libc::EHOSTUNREACH) | Some(libc::ENETUNREACH) => Observed::Unreachable,
            _ => Observed::Error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_semantics() {
        let j = |o: Observed| judge(Expect::Blocked, &Observation::new(o, "x")).0;
        assert_eq!(j(Observed::Timeout), Status::Pass);
        assert_eq!(j(Observed::Unreachable), Status::Pass);
        assert_eq!(j(Observed::Denied), Status::Pass);
        assert_eq!(j(Observed::Ok), Status::Fail);
        assert_eq!(j(Observed::Refused), Status::Fail);
        assert_eq!(j(Observed::DnsError), Status::Fail);
        let (_, why) = judge(Expect::Blocked, &Observation::new(Observed::Refused, "x"));
        assert!(why.contains("connection refused"), "{why}");
        // What was seen, never a guess at why: a rejecting firewall sends the same.
        assert!(!why.contains("path is open"), "{why}");
        assert!(!why.contains("port is closed"), "{why}");
    }

    #[test]
    fn pass_semantics() {
        let j = |o: Observation| judge(Expect::Pass, &o).0;
        assert_eq!(j(Observation::ok("x")), Status::Pass);
        let mut w = Observation::ok("x");
        w.warning = Some("expires soon".into());
        assert_eq!(j(w), Status::Warn);
        assert_eq!(j(Observation::new(Observed::Timeout, "x")), Status::Fail);
        assert_eq!(
            j(Observation::new(Observed::NotPermitted, "x")),
            Status::Error
        );
    }

    #[test]
    fn io_errors_are_classified() {
        use std::io::{Error, ErrorKind};
        assert_eq!(
            classify_io(&Error::from(ErrorKind::ConnectionRefused)),
            Observed::Refused
        );
        assert_eq!(
            classify_io(&Error::from(ErrorKind::HostUnreachable)),
            Observed::Unreachable
        );
        assert_eq!(
            classify_io(&Error::from_raw_os_error(libc::EPERM)),
            Observed::Denied
        );
        assert_eq!(
            classify_io(&Error::from(ErrorKind::TimedOut)),
            Observed::Timeout
        );
    }
}
