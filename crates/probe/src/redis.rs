//! `redis://[[USER]:PASSWORD@]HOST[:6379][/DB]` and `rediss://` (TLS): ready when `PING`
//! answers `PONG`. `LOADING` (the dataset is still being read from disk), `BUSY` and
//! `MASTERDOWN` are "not yet"; a rejected password or a password the server requires but was not
//! given is a permanent failure (exit 5); a database index the server does not have is exit 3.
//! A small RESP2 client: three commands need no library.

use tokio::io::{AsyncWriteExt, BufReader};

use initbox_runtime::Failure;
use initbox_runtime::wait::{NotReady, Probe, ProbeFuture};

use crate::net::{Endpoint, UrlParts, read_line};

pub struct RedisProbe {
    shown: String,
    endpoint: Endpoint,
    user: Option<String>,
    password: Option<String>,
    db: Option<u32>,
}

impl RedisProbe {
    pub fn new(
        shown: String,
        parts: &UrlParts,
        endpoint: Endpoint,
        password: Option<String>,
    ) -> Result<Self, Failure> {
        let db = match parts.path.trim_end_matches('/') {
            "" => None,
            d => Some(d.parse::<u32>().map_err(|_| {
                Failure::usage(format!(
                    "'{shown}': '{d}' is not a database number (expected redis://HOST:PORT/0)"
                ))
            })?),
        };
        Ok(RedisProbe {
            shown,
            endpoint,
            user: parts.user.clone(),
            password,
            db,
        })
    }

    async fn check(&self) -> Result<String, NotReady> {
        let stream = self.endpoint.connect().await?;
        let mut conn = BufReader::new(stream);
        if let Some(pw) = &self.password {
            let mut args = vec!["AUTH"];
            if let Some(u) = &self.user {
                args.push(u);
            }
            args.push(pw);
            let reply = command(&mut conn, &args).await?;
            if let Some(err) = reply.strip_prefix('-') {
                return Err(classify(err, "AUTH"));
            }
        }
        if let Some(db) = self.db {
            let n = db.to_string();
            let reply = command(&mut conn, &["SELECT", &n]).await?;
            if let Some(err) = reply.strip_prefix('-') {
                if err.contains("out of range") || err.contains("invalid DB index") {
                    return Err(NotReady::Fatal(Failure::invalid_input(format!(
                        "database {db} does not exist on this server: {err}"
                    ))));
                }
                return Err(classify(err, "SELECT"));
            }
        }
        let reply = command(&mut conn, &["PING"]).await?;
        let _ = conn.get_mut().shutdown().await;
        match reply.as_str() {
            "+PONG" => Ok("PING answered PONG".into()),
            r => match r.strip_prefix('-') {
                Some(err) => Err(classify(err, "PING")),
                None => Err(NotReady::retry(format!(
                    "PING answered {:?}, expected PONG",
                    r.chars().take(60).collect::<String>()
                ))),
            },
        }
    }
}

/// Send one command as a RESP array and read a one-line reply.
async fn command<S: crate::net::Io>(
    conn: &mut BufReader<S>,
    args: &[&str],
) -> Result<String, NotReady> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    conn.get_mut().write_all(&out).await.map_err(|e| {
        NotReady::retry(format!("sending {}: {}", args[0], crate::net::io_text(&e)))
    })?;
    read_line(conn, 64 * 1024, args[0]).await
}

/// What a Redis error reply means for the wait.
pub fn classify(err: &str, cmd: &str) -> NotReady {
    let word = err.split_whitespace().next().unwrap_or_default();
    match word {
        "LOADING" => NotReady::retry("loading the dataset into memory (LOADING)"),
        "BUSY" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN" => {
            NotReady::retry(format!("{cmd}: {err}"))
        }
        "NOAUTH" => NotReady::Fatal(Failure::credentials(
            "the server requires a password (NOAUTH): give one in the URL or --password-file",
        )),
        "WRONGPASS" | "NOPERM" => {
            NotReady::Fatal(Failure::credentials(format!("credentials rejected: {err}")))
        }
        _ if cmd == "AUTH" => {
            NotReady::Fatal(Failure::credentials(format!("credentials rejected: {err}")))
        }
        _ => NotReady::retry(format!("{cmd}: {err}")),
    }
}

impl Probe for RedisProbe {
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
    fn error_replies() {
        assert!(matches!(
            classify("LOADING Redis is loading the dataset in memory", "PING"),
            NotReady::Retry(m) if m.contains("LOADING")
        ));
        for (err, cmd) in [
            ("NOAUTH Authentication required.", "PING"),
            ("WRONGPASS invalid username-password pair", "AUTH"),
            (
                "ERR AUTH <password> called without any password configured",
                "AUTH",
            ),
        ] {
            match classify(err, cmd) {
                NotReady::Fatal(f) => assert_eq!(f.code, initbox_runtime::Code::CREDENTIALS),
                other => panic!("{err}: {other:?}"),
            }
        }
        assert!(matches!(
            classify("MASTERDOWN Link down", "PING"),
            NotReady::Retry(_)
        ));
    }
}
