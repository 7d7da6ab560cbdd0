//! Delivery: one HTTP client (the runtime's builder: rustls + ring, proxies from the
//! environment, no redirects; error bodies read up to 1 MiB, success bodies not at all),
//! SMTP through lettre, stdout/file; each request retried on transient errors with backoff,
//! honouring Retry-After, inside the run's time box.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use initbox_runtime::exit::error_chain;
use initbox_runtime::http;
use initbox_runtime::retry::{self, Attempt, RetryPolicy};
use initbox_runtime::tls::{self, TlsArgs};
use initbox_runtime::{Deadline, Failure, redact};
use lettre::address::Envelope;
use lettre::message::header::{self, ContentType};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::payload::{Note, Request};
use crate::smtp::{self, SmtpError};
use crate::target::{Smtp, SmtpTls};

pub struct Delivery {
    pub client: Option<reqwest::Client>,
    pub tls: TlsArgs,
    pub attempt_timeout: Duration,
    pub policy: RetryPolicy,
    pub deadline: Deadline,
}

/// The HTTP client every HTTP target shares. Without an https target (or an https proxy) the
/// system roots are not loaded at all: that is most of the start-up cost of a plain-HTTP send.
pub fn http_client(
    tls_args: &TlsArgs,
    attempt_timeout: Duration,
    needs_tls: bool,
) -> Result<reqwest::Client, Failure> {
    let config = if needs_tls {
        tls::client_config(tls_args)?
    } else {
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::failed(format!("TLS set-up: {e}")))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
    };
    // The runtime's one client; webhooks are POSTs whose URL, headers or body carry the
    // credential: a 3xx is reported with its Location, never followed.
    let mut opts = http::ClientOptions::new(
        config,
        concat!("initbox-notify/", env!("CARGO_PKG_VERSION")),
        attempt_timeout,
    );
    opts.redirects = http::Redirects::Never;
    http::client(opts)
}

/// Whether any proxy variable points at an https proxy (then TLS is needed even for http URLs).
pub fn https_proxy_in_env() -> bool {
    [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|p| p.trim_start().starts_with("https://")))
}

/// Statuses worth another attempt (curl's transient set plus 425).
fn transient_status(s: u16) -> bool {
    matches!(s, 408 | 425 | 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After`: seconds or an HTTP date.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// Telegram and Discord also say how long to wait in the JSON body of a 429.
fn body_retry_after(body: &str) -> Option<Duration> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let secs = v
        .pointer("/parameters/retry_after")
        .or_else(|| v.get("retry_after"))?
        .as_f64()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

fn snippet(body: &str) -> String {
    redact::excerpt(body.trim(), 200)
}

impl Delivery {
    /// Send one HTTP request, retried. `what` names the target (already redacted).
    pub async fn http(&self, what: &str, req: &Request) -> Result<u16, Failure> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| Failure::failed("no HTTP client"))?;
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| Failure::usage(format!("{what}: bad method {}", req.method)))?;
        let mut headers = HeaderMap::new();
        for (k, v) in &req.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| Failure::usage(format!("{what}: bad header name '{k}'")))?;
            let mut value = HeaderValue::from_str(v)
                .map_err(|_| Failure::usage(format!("{what}: bad value for header '{k}'")))?;
            if k.eq_ignore_ascii_case("authorization") || k.to_ascii_lowercase().contains("token") {
                value.set_sensitive(true);
            }
            headers.insert(name, value);
        }
        let what = match &req.label {
            Some(l) => format!("{what} ({l})"),
            None => what.to_string(),
        };
        retry::retry(&self.policy, &self.deadline, &what, |attempt| {
            let rb = client
                .request(method.clone(), req.url.clone())
                .headers(headers.clone())
                .body(req.body.clone());
            let what = what.clone();
            let expect_ok = req.expect_ok;
            async move {
                let resp = http::send(rb, http::Show::Origin).await.map_err(|e| {
                    // Without the URL (its path and query are secret), TLS failures named.
                    let msg = http::describe(&e, "--ca-file");
                    if e.is_builder() {
                        Attempt::Fatal(Failure::usage(format!("{what}: {msg}")))
                    } else {
                        tracing::debug!(attempt, "{what}: {msg}");
                        Attempt::transient(msg)
                    }
                })?;
                let status = resp.status().as_u16();
                let after = retry_after(resp.headers());
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .map(|l| redact::scrub(l).into_owned());
                if (200..300).contains(&status) && expect_ok {
                    // Slack's Web API answers 200 {"ok": false, "error": "channel_not_found"}.
                    let body = http::read_prefix(resp, http::SMALL_BODY_LIMIT)
                        .await
                        .unwrap_or_default();
                    let v: serde_json::Value =
                        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    if v.get("ok").and_then(serde_json::Value::as_bool) == Some(true) {
                        return Ok(status);
                    }
                    let error = v
                        .get("error")
                        .and_then(serde_json::Value::as_str)
                        .map(|e| redact::scrub(e).into_owned())
                        .unwrap_or_else(|| "an answer without \"ok\": true".into());
                    return Err(Attempt::Fatal(match error.as_str() {
                        "invalid_auth" | "not_authed" | "account_inactive" | "token_revoked" => {
                            Failure::credentials(format!("{what}: credentials rejected: {error}"))
                        }
                        _ => Failure::failed(format!("{what}: HTTP {status}: {error}")),
                    }));
                }
                if (200..300).contains(&status) {
                    // Nothing in a success body is needed: it is not read at all.
                    return Ok(status);
                }
                // An error body is read for its first bytes only (the excerpt and a JSON
                // retry_after), however long the server keeps sending.
                let body = http::read_prefix(resp, http::SMALL_BODY_LIMIT)
                    .await
                    .unwrap_or_default();
                let body = String::from_utf8_lossy(&body).into_owned();
                let detail = snippet(&body);
                let msg = if detail.is_empty() {
                    format!("HTTP {status}")
                } else {
                    format!("HTTP {status}: {detail}")
                };
                tracing::debug!(attempt, "{what}: {msg}");
                if transient_status(status) {
                    let after = after.or_else(|| body_retry_after(&body));
                    return Err(Attempt::Transient { error: msg, after });
                }
                Err(Attempt::Fatal(match status {
                    300..=399 => Failure::failed(format!(
                        "{what}: {msg}: redirects are not followed{}",
                        location
                            .map(|l| format!(" (Location: {l})"))
                            .unwrap_or_default()
                    )),
                    401 | 403 => {
                        Failure::credentials(format!("{what}: credentials rejected: {msg}"))
                    }
                    410 => Failure::failed(format!(
                        "{what}: {msg}: the endpoint is gone, not retrying"
                    )),
                    _ => Failure::failed(format!("{what}: {msg}")),
                }))
            }
        })
        .await
    }

    /// Send an e-mail through `s`, retried on transient SMTP errors. Each attempt (connect,
    /// greeting, TLS, every command) is bounded by `--attempt-timeout`.
    pub async fn smtp(&self, what: &str, s: &Smtp, n: &Note) -> Result<(), Failure> {
        let params = self.smtp_params(s)?;
        let (envelope, message) = build_mail(what, s, n)?;
        let attempt_timeout = self.attempt_timeout;
        let params = &params;
        let envelope = &envelope;
        let message = &message;
        retry::retry(&self.policy, &self.deadline, what, |attempt| async move {
            let e =
                match tokio::time::timeout(attempt_timeout, smtp::send(params, envelope, message))
                    .await
                {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(e)) => e,
                    Err(_) => {
                        let msg =
                            format!("no answer within the attempt timeout ({attempt_timeout:?})");
                        tracing::debug!(attempt, "{what}: {msg}");
                        return Err(Attempt::transient(msg));
                    }
                };
            const HINT: &str =
                " (hint: port 465 = implicit TLS, tls=implicit; 587 = STARTTLS, tls=starttls)";
            match e {
                SmtpError::Network(e) => {
                    let msg = redact::scrub(&error_chain(&e)).into_owned();
                    tracing::debug!(attempt, "{what}: {msg}");
                    Err(Attempt::transient(msg))
                }
                SmtpError::Tls(e) => {
                    let msg = match tls::explain_chain(&e, "--ca-file") {
                        Some(reason) => format!("TLS: {reason}{HINT}"),
                        None => format!("TLS: {}{HINT}", redact::scrub(&error_chain(&e))),
                    };
                    tracing::debug!(attempt, "{what}: {msg}");
                    Err(Attempt::Fatal(Failure::failed(format!("{what}: {msg}"))))
                }
                SmtpError::Refused(msg) => {
                    Err(Attempt::Fatal(Failure::failed(format!("{what}: {msg}"))))
                }
                SmtpError::Smtp(e) => {
                    let mut msg = redact::scrub(&error_chain(&e)).into_owned();
                    if msg.contains("wrong version number")
                        || msg.contains("InvalidContentType")
                        || msg.contains("corrupt message")
                    {
                        msg.push_str(HINT);
                    }
                    tracing::debug!(attempt, "{what}: {msg}");
                    let code = e.status().map(|c| c.to_string());
                    if e.is_permanent() {
                        let f = if code.as_deref().is_some_and(|c| {
                            c.starts_with("535") || c.starts_with("534") || c.starts_with("530")
                        }) {
                            Failure::credentials(format!("{what}: credentials rejected: {msg}"))
                        } else {
                            Failure::failed(format!("{what}: {msg}"))
                        };
                        Err(Attempt::Fatal(f))
                    } else {
                        Err(Attempt::transient(msg))
                    }
                }
            }
        })
        .await
    }

    fn smtp_params(&self, s: &Smtp) -> Result<smtp::Params, Failure> {
        // The runtime's configuration (it warns about --insecure itself).
        let tls_config = if s.tls == SmtpTls::None {
            None
        } else {
            Some(std::sync::Arc::new(tls::client_config(&self.tls)?))
        };
        let hello = match &s.helo {
            Some(h) => ClientId::Domain(h.clone()),
            None => ClientId::default(),
        };
        Ok(smtp::Params {
            // An IPv6 literal comes bracketed from the URL.
            host: s
                .host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: s.port,
            tls: s.tls,
            tls_config,
            hello,
            credentials: s
                .user
                .as_ref()
                .map(|user| Credentials::new(user.clone(), s.password.clone().unwrap_or_default())),
        })
    }
}

/// The Message-ID of a notification: `<HEX@initbox>` where HEX is the first 128 bits of the
/// SHA-256 of the idempotency key, so any key (spaces, `@`, `<>`, non-ASCII) gives a valid
/// RFC 5322 msg-id, and the same key always gives the same Message-ID.
pub fn message_id(key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    format!("<{}@initbox>", hex::encode(&digest[..16]))
}

/// An address-list header value folded (RFC 5322 §2.2.3) after a comma so that no line is
/// longer than 78 characters where the addresses allow it.
fn fold_addresses(name: &str, list: &[Mailbox]) -> String {
    let mut out = String::new();
    let mut line_len = name.len() + 2;
    for (i, mb) in list.iter().enumerate() {
        // Each mailbox encoded by lettre itself (RFC 2047 for a non-ASCII display name).
        let mut h = lettre::message::header::Headers::new();
        h.set(lettre::message::header::To::from(
            lettre::message::Mailboxes::from(mb.clone()),
        ));
        let line = h.to_string();
        let encoded = line
            .strip_prefix("To: ")
            .unwrap_or(&line)
            .trim_end_matches("\r\n");
        let first_len = encoded.find("\r\n").unwrap_or(encoded.len());
        if i > 0 {
            out.push(',');
            line_len += 1;
            if line_len + 1 + first_len > 78 {
                out.push_str("\r\n");
                line_len = 0;
            }
            out.push(' ');
            line_len += 1;
        }
        out.push_str(encoded);
        line_len = match encoded.rfind("\r\n") {
            Some(at) => encoded.len() - at - 2,
            None => line_len + encoded.len(),
        };
    }
    out
}

fn build_mail(what: &str, s: &Smtp, n: &Note) -> Result<(Envelope, Vec<u8>), Failure> {
    let parse = |a: &str| {
        a.parse::<Mailbox>()
            .map_err(|e| Failure::usage(format!("{what}: bad address '{a}': {e}")))
    };
    let to =
        s.to.iter()
            .map(|a| parse(a))
            .collect::<Result<Vec<_>, _>>()?;
    let mut b = Message::builder()
        .from(parse(&s.from)?)
        .subject(if n.title.is_empty() {
            "initbox notification"
        } else {
            n.title.as_str()
        })
        .message_id(Some(message_id(&n.id)))
        .header(header::MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN);
    for t in &to {
        b = b.to(t.clone());
    }
    let mut message = b
        .body(n.message.clone())
        .map_err(|e| Failure::failed(format!("{what}: cannot build the message: {e}")))?;
    // lettre writes an address list on one line (30 recipients: over 1000 characters, "500 Line
    // too long"): the To header is written folded instead.
    let raw = to
        .iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let headers = message.headers_mut();
    headers.remove_raw("To");
    headers.insert_raw(header::HeaderValue::dangerous_new_pre_encoded(
        header::HeaderName::new_from_ascii_str("To"),
        raw,
        fold_addresses("To", &to),
    ));
    Ok((message.envelope().clone(), message.formatted()))
}

/// A line for the stdout/file targets: one JSON object.
pub fn log_line(n: &Note) -> String {
    let mut v = serde_json::json!({
        "title": n.title,
        "message": n.message,
        "event": n.event,
        "id": n.id,
        "key": n.key,
        "time": n.time,
    });
    if n.resolves {
        v["resolves"] = serde_json::Value::Bool(true);
    }
    let mut s = serde_json::to_string(&v).unwrap_or_default();
    s.push('\n');
    s
}

pub fn to_stdout(n: &Note) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(log_line(n).as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Failure::failed(format!("stdout: {e}")))
}

/// Append one line (a single write on an O_APPEND file, mode 0600 when created).
pub fn to_file(path: &std::path::Path, n: &Note) -> Result<(), Failure> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            let msg = format!("file {}: {e}", path.display());
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                Failure::env_refused(msg)
            } else {
                Failure::failed(msg)
            }
        })?;
    f.write_all(log_line(n).as_bytes())
        .map_err(|e| Failure::failed(format!("file {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        let future =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(90));
        h.insert("retry-after", future.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(80) && d <= Duration::from_secs(90),
            "{d:?}"
        );
        assert_eq!(
            body_retry_after(r#"{"ok":false,"parameters":{"retry_after":7}}"#),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn message_ids_are_valid_and_stable() {
        let a = message_id("deploy 42 <a@b> été");
        assert_eq!(a, message_id("deploy 42 <a@b> été"));
        assert_ne!(a, message_id("deploy 43"));
        let inner = a
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix("@initbox>"));
        assert!(inner.is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit())));
    }

    #[test]
    fn address_lists_fold_at_78() {
        let list: Vec<Mailbox> = (0..30)
            .map(|i| {
                format!("recipient-{i:02}@operations.example.com")
                    .parse()
                    .unwrap()
            })
            .collect();
        let v = fold_addresses("To", &list);
        let text = format!("To: {v}");
        assert!(text.split("\r\n").all(|l| l.len() <= 78), "{text}");
        assert!(text.split("\r\n").skip(1).all(|l| l.starts_with(' ')));
        assert_eq!(text.replace("\r\n", "").matches('@').count(), 30);
        let one: Vec<Mailbox> = vec!["a@example.com".parse().unwrap()];
        assert_eq!(fold_addresses("To", &one), "a@example.com");
    }

    #[test]
    fn transient_set() {
        for s in [408, 425, 429, 500, 502, 503, 504] {
            assert!(transient_status(s));
        }
        for s in [400, 401, 403, 404, 410, 422, 501] {
            assert!(!transient_status(s));
        }
    }
}
