//! `mqtt://[USER:PASSWORD@]HOST[:1883]` and `mqtts://` (TLS, port 8883): ready when the broker
//! answers an MQTT 3.1.1 CONNECT with CONNACK "accepted". Bad user name or password and
//! "not authorized" are exit 5; "server unavailable" is "not yet". A clean session is asked for
//! and ended with DISCONNECT, so nothing is left behind on the broker.

use std::sync::atomic::{AtomicU32, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use initbox_runtime::Failure;
use initbox_runtime::wait::{NotReady, Probe, ProbeFuture};

use crate::net::{Endpoint, UrlParts, io_text};

pub struct MqttProbe {
    shown: String,
    endpoint: Endpoint,
    user: Option<String>,
    password: Option<String>,
    attempt: AtomicU32,
}

impl MqttProbe {
    pub fn new(
        shown: String,
        parts: &UrlParts,
        endpoint: Endpoint,
        password: Option<String>,
    ) -> Self {
        MqttProbe {
            shown,
            endpoint,
            user: parts.user.clone(),
            password,
            attempt: AtomicU32::new(0),
        }
    }

    /// The CONNECT packet.
    fn connect_packet(&self, client_id: &str) -> Vec<u8> {
        let mut var = Vec::new();
        put_str(&mut var, b"MQTT");
        var.push(4); // protocol level 3.1.1
        let mut flags = 0x02; // clean session
        if self.user.is_some() {
            flags |= 0x80;
        }
        if self.password.is_some() {
            flags |= 0x40;
        }
        var.push(flags);
        var.extend_from_slice(&30u16.to_be_bytes()); // keep alive
        put_str(&mut var, client_id.as_bytes());
        if let Some(u) = &self.user {
            put_str(&mut var, u.as_bytes());
        }
        if let Some(p) = &self.password {
            put_str(&mut var, p.as_bytes());
        }
        let mut packet = vec![0x10];
        put_len(&mut packet, var.len());
        packet.extend_from_slice(&var);
        packet
    }

    async fn check(&self) -> Result<String, NotReady> {
        let mut s = self.endpoint.connect().await?;
        let n = self.attempt.fetch_add(1, Ordering::Relaxed);
        let client_id = format!("initbox-{}-{n}", std::process::id());
        s.write_all(&self.connect_packet(&client_id))
            .await
            .map_err(|e| NotReady::retry(format!("sending CONNECT: {}", io_text(&e))))?;
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack)
            .await
            .map_err(|e| NotReady::retry(format!("waiting for CONNACK: {}", io_text(&e))))?;
        if ack[0] != 0x20 || ack[1] != 2 {
            return Err(NotReady::retry(format!(
                "expected CONNACK, got bytes {:02x} {:02x}",
                ack[0], ack[1]
            )));
        }
        let verdict = connack(ack[3]);
        if verdict.is_ok() {
            let _ = s.write_all(&[0xE0, 0x00]).await;
            let _ = s.shutdown().await;
        }
        verdict
    }
}

/// What a CONNACK return code means.
pub fn connack(code: u8) -> Result<String, NotReady> {
    match code {
        0 => Ok("CONNACK accepted".into()),
        1 => Err(NotReady::Fatal(Failure::failed(
            "the broker refused MQTT 3.1.1 (CONNACK 1: unacceptable protocol version)",
        ))),
        2 => Err(NotReady::Fatal(Failure::failed(
            "the broker rejected the client identifier (CONNACK 2)",
        ))),
        3 => Err(NotReady::retry("server unavailable (CONNACK 3)")),
        4 => Err(NotReady::Fatal(Failure::credentials(
            "the broker rejected the user name or password (CONNACK 4)",
        ))),
        5 => Err(NotReady::Fatal(Failure::credentials(
            "not authorized (CONNACK 5)",
        ))),
        c => Err(NotReady::retry(format!("CONNACK with unknown code {c}"))),
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len().min(u16::MAX as usize);
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&s[..n]);
}

/// MQTT's variable-length "remaining length".
fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

impl Probe for MqttProbe {
    fn target(&self) -> String {
        self.shown.clone()
    }
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.check())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length() {
        let enc = |n| {
            let mut v = Vec::new();
            put_len(&mut v, n);
            v
        };
        assert_eq!(enc(0), vec![0]);
        assert_eq!(enc(127), vec![0x7f]);
        assert_eq!(enc(128), vec![0x80, 0x01]);
        assert_eq!(enc(16_383), vec![0xff, 0x7f]);
    }

    #[test]
    fn connack_codes() {
        assert!(connack(0).is_ok());
        assert!(matches!(connack(3), Err(NotReady::Retry(_))));
        for c in [4, 5] {
            assert!(
                matches!(connack(c), Err(NotReady::Fatal(f)) if f.code == initbox_runtime::Code::CREDENTIALS)
            );
        }
    }
}
