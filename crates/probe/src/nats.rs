//! `nats://[USER:PASSWORD@|TOKEN@]HOST[:4222]`: ready when the server sends its `INFO`, accepts
//! `CONNECT` and answers `PING` with `PONG`. An authorization violation is exit 5. Servers that
//! require TLS (`tls_required` in INFO) are reported as such: connect to a plain listener.

use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, BufReader};

use initbox_runtime::Failure;
use initbox_runtime::wait::{NotReady, Probe, ProbeFuture};

use crate::net::{Endpoint, UrlParts, io_text, read_line};

pub struct NatsProbe {
    shown: String,
    endpoint: Endpoint,
    user: Option<String>,
    password: Option<String>,
}

impl NatsProbe {
    pub fn new(
        shown: String,
        parts: &UrlParts,
        endpoint: Endpoint,
        password: Option<String>,
    ) -> Self {
        if password.is_none() {
            // nats://TOKEN@host: a user name without a password is a token.
            if let Some(u) = &parts.user {
                initbox_runtime::redact::register(u);
            }
        }
        NatsProbe {
            shown,
            endpoint,
            user: parts.user.clone(),
            password,
        }
    }

    async fn check(&self) -> Result<String, NotReady> {
        let stream = self.endpoint.connect().await?;
        let mut conn = BufReader::new(stream);
        let info = read_line(&mut conn, 64 * 1024, "waiting for INFO").await?;
        let Some(json_text) = info.strip_prefix("INFO ") else {
            return Err(NotReady::retry(format!(
                "expected INFO from a NATS server, got {:?}",
                info.chars().take(40).collect::<String>()
            )));
        };
        let info: Value = serde_json::from_str(json_text)
            .map_err(|e| NotReady::retry(format!("INFO is not JSON: {e}")))?;
        if info["tls_required"].as_bool() == Some(true) {
            return Err(NotReady::Fatal(Failure::failed(
                "the server requires TLS, which nats:// probes do not speak yet",
            )));
        }
        let mut connect = json!({
            "verbose": false,
            "pedantic": false,
            "tls_required": false,
            "name": "initbox wait-for",
            "lang": "rust",
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": 1,
        });
        match (&self.user, &self.password) {
            (Some(u), Some(p)) => {
                connect["user"] = json!(u);
                connect["pass"] = json!(p);
            }
            (Some(token), None) => connect["auth_token"] = json!(token),
            _ => {}
        }
        let msg = format!("CONNECT {connect}\r\nPING\r\n");
        conn.get_mut()
            .write_all(msg.as_bytes())
            .await
            .map_err(|e| NotReady::retry(format!("sending CONNECT: {}", io_text(&e))))?;
        loop {
            let line = read_line(&mut conn, 64 * 1024, "waiting for PONG").await?;
            let upper = line.to_ascii_uppercase();
            if upper == "PONG" {
                break;
            } else if upper == "PING" {
                let _ = conn.get_mut().write_all(b"PONG\r\n").await;
            } else if upper == "+OK" || upper.starts_with("INFO ") {
                continue;
            } else if let Some(err) = line.strip_prefix("-ERR") {
                let err = err.trim().trim_matches('\'');
                let lower = err.to_ascii_lowercase();
                if lower.contains("authorization") || lower.contains("authentication") {
                    return Err(NotReady::Fatal(Failure::credentials(format!(
                        "the server refused the credentials ({err})"
                    ))));
                }
                return Err(NotReady::retry(format!("server error: {err}")));
            } else {
                return Err(NotReady::retry(format!(
                    "unexpected reply {:?}",
                    line.chars().take(40).collect::<String>()
                )));
            }
        }
        let _ = conn.get_mut().shutdown().await;
        let version = info["version"].as_str().unwrap_or("?");
        Ok(format!("PING answered PONG (nats-server {version})"))
    }
}

impl Probe for NatsProbe {
    fn target(&self) -> String {
        self.shown.clone()
    }
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.check())
    }
}
