//! `amqp://[USER:PASSWORD@]HOST[:5672][/VHOST]` and `amqps://` (TLS, port 5671): ready when an
//! AMQP 0-9-1 connection opens (RabbitMQ). A minimal client: protocol header, Start/Start-Ok
//! (PLAIN), Tune/Tune-Ok, Open/Open-Ok, then a polite Close. Credentials default to guest/guest as
//! the AMQP URI spec says. A refused login (403) is exit 5; a virtual host that does not exist
//! is exit 3; a broker that closes the connection while booting is "not yet".

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use initbox_runtime::Failure;
use initbox_runtime::wait::{NotReady, Probe, ProbeFuture};

use crate::net::{Endpoint, Io, UrlParts, io_text};

const FRAME_METHOD: u8 = 1;
const FRAME_HEARTBEAT: u8 = 8;
const FRAME_END: u8 = 0xCE;
const MAX_FRAME: u32 = 1024 * 1024;

pub struct AmqpProbe {
    shown: String,
    endpoint: Endpoint,
    user: String,
    password: String,
    vhost: String,
}

impl AmqpProbe {
    pub fn new(
        shown: String,
        parts: &UrlParts,
        endpoint: Endpoint,
        password: Option<String>,
    ) -> Self {
        AmqpProbe {
            shown,
            endpoint,
            user: parts.user.clone().unwrap_or_else(|| "guest".into()),
            password: password.unwrap_or_else(|| "guest".into()),
            // amqp://host/ and amqp://host are the default vhost "/", as in the URI spec.
            vhost: if parts.path.is_empty() {
                "/".into()
            } else {
                parts.path.clone()
            },
        }
    }

    async fn check(&self) -> Result<String, NotReady> {
        let mut s = self.endpoint.connect().await?;
        s.write_all(b"AMQP\x00\x00\x09\x01").await.map_err(|e| {
            NotReady::retry(format!("sending the protocol header: {}", io_text(&e)))
        })?;

        // Connection.Start
        let start = expect_method(&mut s, (10, 10), "Connection.Start").await?;
        let mut r = Reader(&start);
        let _major = r.u8()?;
        let _minor = r.u8()?;
        r.table()?;
        let mechanisms = String::from_utf8_lossy(r.long_str()?).into_owned();
        if !mechanisms.split_whitespace().any(|m| m == "PLAIN") {
            return Err(NotReady::Fatal(Failure::failed(format!(
                "the broker does not offer PLAIN authentication (offers: {mechanisms})"
            ))));
        }

        // Connection.Start-Ok
        let mut p = method_header(10, 11);
        let mut props = Vec::new();
        table_str(&mut props, "product", "initbox");
        let mut caps = Vec::new();
        table_bool(&mut caps, "authentication_failure_close", true);
        short_str(&mut props, "capabilities");
        props.push(b'F');
        long_bytes(&mut props, &caps);
        long_bytes(&mut p, &props);
        short_str(&mut p, "PLAIN");
        let mut response = vec![0u8];
        response.extend_from_slice(self.user.as_bytes());
        response.push(0);
        response.extend_from_slice(self.password.as_bytes());
        long_bytes(&mut p, &response);
        short_str(&mut p, "en_US");
        send_method(&mut s, &p).await?;

        // Connection.Tune (or Close when the login is refused)
        let tune = expect_method(&mut s, (10, 30), "Connection.Tune").await?;
        let mut r = Reader(&tune);
        let channel_max = r.u16()?;
        let frame_max = r.u32()?;
        let mut p = method_header(10, 31);
        p.extend_from_slice(&channel_max.to_be_bytes());
        p.extend_from_slice(&frame_max.to_be_bytes());
        p.extend_from_slice(&0u16.to_be_bytes()); // no heartbeats
        send_method(&mut s, &p).await?;

        // Connection.Open
        let mut p = method_header(10, 40);
        short_str(&mut p, &self.vhost);
        short_str(&mut p, "");
        p.push(0);
        send_method(&mut s, &p).await?;
        expect_method(&mut s, (10, 41), "Connection.Open-Ok").await?;

        // Connection.Close, politely, so the broker logs no "unexpectedly closed" warning.
        let mut p = method_header(10, 50);
        p.extend_from_slice(&200u16.to_be_bytes());
        short_str(&mut p, "initbox wait-for: ready");
        p.extend_from_slice(&[0, 0, 0, 0]);
        if send_method(&mut s, &p).await.is_ok() {
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(200),
                expect_method(&mut s, (10, 51), "Connection.Close-Ok"),
            )
            .await;
        }
        Ok(format!("AMQP connection opened (vhost {:?})", self.vhost))
    }
}

fn method_header(class: u16, method: u16) -> Vec<u8> {
    let mut v = class.to_be_bytes().to_vec();
    v.extend_from_slice(&method.to_be_bytes());
    v
}

fn short_str(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(255)];
    out.push(b.len() as u8);
    out.extend_from_slice(b);
}

fn long_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn table_str(out: &mut Vec<u8>, key: &str, value: &str) {
    short_str(out, key);
    out.push(b'S');
    long_bytes(out, value.as_bytes());
}

fn table_bool(out: &mut Vec<u8>, key: &str, value: bool) {
    short_str(out, key);
    out.push(b't');
    out.push(value as u8);
}

async fn send_method(s: &mut Box<dyn Io>, payload: &[u8]) -> Result<(), NotReady> {
    let mut frame = vec![FRAME_METHOD, 0, 0];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame.push(FRAME_END);
    s.write_all(&frame)
        .await
        .map_err(|e| NotReady::retry(format!("sending to the broker: {}", io_text(&e))))
}

/// Read frames until a method frame; return its arguments if it is `want`. A Connection.Close
/// from the broker is classified.
async fn expect_method(
    s: &mut Box<dyn Io>,
    want: (u16, u16),
    what: &str,
) -> Result<Vec<u8>, NotReady> {
    loop {
        let mut head = [0u8; 7];
        if let Err(e) = s.read_exact(&mut head).await {
            return Err(NotReady::retry(format!(
                "waiting for {what}: {}",
                io_text(&e)
            )));
        }
        if &head[..4] == b"AMQP" {
            return Err(NotReady::Fatal(Failure::failed(format!(
                "the broker does not speak AMQP 0-9-1 (it answered with protocol header {:?})",
                &head[4..]
            ))));
        }
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
        if size > MAX_FRAME {
            return Err(NotReady::retry(format!(
                "waiting for {what}: frame of {size} bytes is too large"
            )));
        }
        let mut body = vec![0u8; size as usize + 1];
        s.read_exact(&mut body)
            .await
            .map_err(|e| NotReady::retry(format!("waiting for {what}: {}", io_text(&e))))?;
        if body.pop() != Some(FRAME_END) {
            return Err(NotReady::retry(format!(
                "waiting for {what}: malformed frame"
            )));
        }
        match head[0] {
            FRAME_HEARTBEAT => continue,
            FRAME_METHOD => {}
            t => {
                return Err(NotReady::retry(format!(
                    "waiting for {what}: unexpected frame type {t}"
                )));
            }
        }
        let mut r = Reader(&body);
        let id = (r.u16()?, r.u16()?);
        if id == want {
            return Ok(r.0.to_vec());
        }
        if id == (10, 50) {
            let code = r.u16()?;
            let text = String::from_utf8_lossy(r.short_str()?).into_owned();
            return Err(close_reason(code, &text));
        }
        return Err(NotReady::retry(format!(
            "waiting for {what}: got method {}.{} instead",
            id.0, id.1
        )));
    }
}

/// What a Connection.Close from the broker means.
pub fn close_reason(code: u16, text: &str) -> NotReady {
    match code {
        403 => NotReady::Fatal(Failure::credentials(format!(
            "the broker refused the login ({code} {text})"
        ))),
        530 if text.contains("not found") => NotReady::Fatal(Failure::invalid_input(format!(
            "the virtual host does not exist ({code} {text})"
        ))),
        530 => NotReady::Fatal(Failure::credentials(format!(
            "access to the virtual host refused ({code} {text})"
        ))),
        _ => NotReady::retry(format!("the broker closed the connection ({code} {text})")),
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], NotReady> {
        if self.0.len() < n {
            return Err(NotReady::retry("truncated AMQP method frame"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, NotReady> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, NotReady> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, NotReady> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn short_str(&mut self) -> Result<&'a [u8], NotReady> {
        let n = self.u8()? as usize;
        self.take(n)
    }
    fn long_str(&mut self) -> Result<&'a [u8], NotReady> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// Skip a field table.
    fn table(&mut self) -> Result<(), NotReady> {
        self.long_str().map(|_| ())
    }
}

impl Probe for AmqpProbe {
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
    fn close_codes() {
        let code = |n: NotReady| match n {
            NotReady::Fatal(f) => f.code.as_i32(),
            NotReady::Retry(_) => 0,
        };
        assert_eq!(
            code(close_reason(403, "ACCESS_REFUSED - Login was refused")),
            5
        );
        assert_eq!(
            code(close_reason(530, "NOT_ALLOWED - vhost nope not found")),
            3
        );
        assert_eq!(
            code(close_reason(
                530,
                "NOT_ALLOWED - access to vhost 'x' refused"
            )),
            5
        );
        assert_eq!(
            code(close_reason(320, "CONNECTION_FORCED - broker forced")),
            0
        );
    }
}
