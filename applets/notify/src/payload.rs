//! The request each service gets, per its documented API.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use url::Url;

use crate::bodies::{self, BodyStyle};
use crate::target::{CeMode, Http, Kind, PdAction, Sign, SignScheme};

/// What a notification says, shared by every target of one run.
#[derive(Debug, Clone)]
pub struct Note {
    pub title: String,
    pub message: String,
    /// start | success | failure | info
    pub event: String,
    /// The idempotency key: the same across retries and targets of this notification.
    pub id: String,
    /// The dedupe key (PagerDuty's dedup_key unless the URL sets one).
    pub key: String,
    /// This success resolves an earlier failure alert.
    pub resolves: bool,
    /// The webhook/CloudEvents data from the rendered --body template (else the default body).
    pub body: Option<Value>,
    /// What `notify run` adds to the default webhook body (command, exit code, stderr tail).
    pub details: Value,
    pub pod: Map<String, Value>,
    pub hostname: String,
    pub time: String,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Extra label for messages when a service sends several requests (a Telegram chat).
    pub label: Option<String>,
    /// The service answers 200 with `{"ok": false, "error": …}` on failure (Slack's Web API):
    /// a success body is read and its `ok` checked.
    pub expect_ok: bool,
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn join_title(bold: &str, title: &str, message: &str) -> String {
    if title.is_empty() {
        message.to_string()
    } else {
        format!("{bold}{title}{bold}\n{message}")
    }
}

fn with_extra(mut v: Value, extra: &[(String, String)]) -> Value {
    if let Value::Object(m) = &mut v {
        for (k, val) in extra {
            m.insert(k.clone(), Value::String(val.clone()));
        }
    }
    v
}

/// The default JSON body of generic webhooks.
pub fn default_body(n: &Note, title_key: &str, message_key: &str, details: &Value) -> Value {
    let mut m = Map::new();
    m.insert(title_key.into(), Value::String(n.title.clone()));
    m.insert(message_key.into(), Value::String(n.message.clone()));
    m.insert("event".into(), Value::String(n.event.clone()));
    m.insert("id".into(), Value::String(n.id.clone()));
    m.insert("time".into(), Value::String(n.time.clone()));
    m.insert("host".into(), Value::String(n.hostname.clone()));
    if !n.pod.is_empty() {
        m.insert("pod".into(), Value::Object(n.pod.clone()));
    }
    if n.resolves {
        m.insert("resolves".into(), Value::Bool(true));
    }
    if let Value::Object(d) = details
        && !d.is_empty()
    {
        m.insert("details".into(), details.clone());
    }
    Value::Object(m)
}

fn ce_source(n: &Note) -> String {
    match (n.pod.get("namespace"), n.pod.get("name")) {
        (Some(Value::String(ns)), Some(Value::String(name))) => {
            format!("/namespaces/{ns}/pods/{name}")
        }
        _ => format!("/hosts/{}", n.hostname),
    }
}

fn json_request(url: &Url, body: &Value) -> Request {
    Request {
        method: "POST".into(),
        url: url.clone(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: serde_json::to_vec(body).unwrap_or_default(),
        label: None,
        expect_ok: false,
    }
}

/// HMAC-SHA256 of `data` with `secret`.
pub fn hmac_sha256(secret: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The signature headers for `body`.
pub fn signature_headers(sign: &Sign, id: &str, unix: u64, body: &[u8]) -> Vec<(String, String)> {
    match sign.scheme {
        SignScheme::Github => vec![(
            sign.header.clone(),
            format!("sha256={}", hex::encode(hmac_sha256(&sign.secret, body))),
        )],
        SignScheme::StandardWebhooks => {
            let mut signed = format!("{id}.{unix}.").into_bytes();
            signed.extend_from_slice(body);
            let sig = base64::engine::general_purpose::STANDARD
                .encode(hmac_sha256(&sign.secret, &signed));
            vec![
                ("webhook-id".into(), id.to_string()),
                ("webhook-timestamp".into(), unix.to_string()),
                (sign.header.clone(), format!("v1,{sig}")),
            ]
        }
    }
}

/// The requests `h` needs for `n`.
pub fn requests(h: &Http, n: &Note, unix: u64) -> Vec<Request> {
    let mut reqs = match &h.kind {
        Kind::Webhook {
            method,
            content_type,
            title_key,
            message_key,
            extra,
            cloudevents,
            style,
        } => {
            let data = match &n.body {
                Some(b) => b.clone(),
                None => with_extra(default_body(n, title_key, message_key, &n.details), extra),
            };
            let mut headers = vec![("Idempotency-Key".to_string(), n.id.clone())];
            let body = match cloudevents {
                // Another tool's body, as that tool sends it (a --body template still wins).
                None if n.body.is_none() && *style != BodyStyle::Initbox => {
                    headers.push(("Content-Type".into(), content_type.clone()));
                    if matches!(style, BodyStyle::ShoutrrrPlain | BodyStyle::ShoutrrrJson) {
                        headers.push(("Accept".into(), content_type.clone()));
                    }
                    bodies::render(*style, n, title_key, message_key, extra)
                }
                None => {
                    headers.push(("Content-Type".into(), content_type.clone()));
                    match &data {
                        Value::String(s) if !content_type.contains("json") => {
                            s.clone().into_bytes()
                        }
                        v => serde_json::to_vec(v).unwrap_or_default(),
                    }
                }
                Some(ce) => {
                    let ce_type = ce
                        .event_type
                        .clone()
                        .unwrap_or_else(|| format!("dev.initbox.notify.{}", n.event));
                    let source = ce.source.clone().unwrap_or_else(|| ce_source(n));
                    match ce.mode {
                        CeMode::Structured => {
                            headers.push((
                                "Content-Type".into(),
                                "application/cloudevents+json; charset=utf-8".into(),
                            ));
                            let mut ev = json!({
                                "specversion": "1.0",
                                "id": n.id,
                                "source": source,
                                "type": ce_type,
                                "time": n.time,
                                "datacontenttype": content_type,
                                "data": data,
                            });
                            if !n.title.is_empty() {
                                ev["subject"] = Value::String(n.title.clone());
                            }
                            serde_json::to_vec(&ev).unwrap_or_default()
                        }
                        CeMode::Binary => {
                            headers.push(("Content-Type".into(), content_type.clone()));
                            headers.push(("ce-specversion".into(), "1.0".into()));
                            headers.push(("ce-id".into(), n.id.clone()));
                            headers.push(("ce-source".into(), source));
                            headers.push(("ce-type".into(), ce_type));
                            headers.push(("ce-time".into(), n.time.clone()));
                            if !n.title.is_empty() && n.title.is_ascii() {
                                headers.push(("ce-subject".into(), n.title.clone()));
                            }
                            serde_json::to_vec(&data).unwrap_or_default()
                        }
                    }
                }
            };
            vec![Request {
                method: method.clone(),
                url: h.url.clone(),
                headers,
                body,
                label: None,
                expect_ok: false,
            }]
        }
        Kind::Slack {
            markdown_bold,
            extra,
            blocks,
            channels,
            api,
        } => {
            let text = join_title(markdown_bold, &n.title, &n.message);
            let mut body = json!({ "text": truncate(&text, 40_000) });
            if *blocks {
                let mut b = Vec::new();
                if !n.title.is_empty() {
                    b.push(json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&n.title, 150), "emoji": true}}));
                }
                if !n.message.is_empty() {
                    b.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&n.message, 3000)}}));
                }
                body["blocks"] = Value::Array(b);
            }
            let body = with_extra(body, extra);
            if channels.is_empty() {
                vec![json_request(&h.url, &body)]
            } else {
                // One message per channel (a webhook posts to one; the Web API names one).
                channels
                    .iter()
                    .map(|channel| {
                        let mut body = body.clone();
                        body["channel"] = Value::String(channel.clone());
                        let mut r = json_request(&h.url, &body);
                        r.label = Some(format!("channel {channel}"));
                        r.expect_ok = *api;
                        r
                    })
                    .collect()
            }
        }
        Kind::Teams => {
            let mut blocks = Vec::new();
            if !n.title.is_empty() {
                blocks.push(json!({"type": "TextBlock", "text": n.title, "weight": "Bolder", "size": "Medium", "wrap": true}));
            }
            blocks.push(json!({"type": "TextBlock", "text": n.message, "wrap": true}));
            let body = json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": blocks,
                    }
                }]
            });
            vec![json_request(&h.url, &body)]
        }
        Kind::Discord { extra } => {
            let color = match n.event.as_str() {
                "failure" => 0xE0_1E_5A,
                "success" => 0x2E_B6_7D,
                "start" => 0x36_C5_F0,
                _ => 0x9E_9E_9E,
            };
            let mut embed = json!({
                "description": truncate(&n.message, 4096),
                "color": color,
                "timestamp": n.time,
            });
            if !n.title.is_empty() {
                embed["title"] = Value::String(truncate(&n.title, 256));
            }
            let body = json!({ "embeds": [embed] });
            vec![json_request(&h.url, &with_extra(body, extra))]
        }
        Kind::GoogleChat => {
            let body = json!({ "text": truncate(&join_title("*", &n.title, &n.message), 4096) });
            vec![json_request(&h.url, &body)]
        }
        Kind::Telegram {
            token,
            chats,
            silent,
        } => {
            let text = if n.title.is_empty() {
                html_escape(&n.message)
            } else {
                format!(
                    "<b>{}</b>\n{}",
                    html_escape(&n.title),
                    html_escape(&n.message)
                )
            };
            let mut url = h.url.clone();
            let base = url.path().trim_end_matches('/').to_string();
            url.set_path(&format!("{base}/bot{token}/sendMessage"));
            chats
                .iter()
                .map(|chat| {
                    let body = json!({
                        "chat_id": chat,
                        "text": truncate(&text, 4096),
                        "parse_mode": "HTML",
                        "disable_notification": silent,
                    });
                    let mut r = json_request(&url, &body);
                    r.label = Some(format!("chat {chat}"));
                    r
                })
                .collect()
        }
        Kind::Ntfy {
            topic,
            priority,
            tags,
            click,
            icon,
            markdown,
        } => {
            let priority = priority.unwrap_or(match n.event.as_str() {
                "failure" => 4,
                _ => 3,
            });
            let tags: Vec<String> = if tags.is_empty() {
                match n.event.as_str() {
                    "failure" => vec!["rotating_light".into()],
                    "success" => vec!["white_check_mark".into()],
                    _ => vec![],
                }
            } else {
                tags.clone()
            };
            let mut body = json!({
                "topic": topic,
                "message": truncate_bytes(&n.message, 4096),
                "priority": priority,
            });
            if !n.title.is_empty() {
                body["title"] = Value::String(n.title.clone());
            }
            if !tags.is_empty() {
                body["tags"] = json!(tags);
            }
            if let Some(c) = click {
                body["click"] = json!(c);
            }
            if let Some(i) = icon {
                body["icon"] = json!(i);
            }
            if *markdown {
                body["markdown"] = json!(true);
            }
            vec![json_request(&h.url, &body)]
        }
        Kind::PagerDuty {
            routing_key,
            severity,
            source,
            component,
            group,
            class,
            action,
            dedup_key,
        } => {
            let resolve = match action {
                PdAction::Resolve => true,
                PdAction::Trigger => false,
                PdAction::Auto => n.event == "success",
            };
            let dedup = dedup_key.clone().unwrap_or_else(|| n.key.clone());
            let body = if resolve {
                json!({"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup})
            } else {
                let summary = if n.title.is_empty() {
                    &n.message
                } else {
                    &n.title
                };
                let severity = if n.event == "failure" || severity != "error" {
                    severity.clone()
                } else {
                    "info".to_string()
                };
                let mut payload = json!({
                    "summary": truncate(summary, 1024),
                    "source": source.clone().unwrap_or_else(|| ce_source(n)),
                    "severity": severity,
                    "timestamp": n.time,
                    "custom_details": {"message": n.message, "event": n.event},
                });
                if !n.pod.is_empty() {
                    payload["custom_details"]["pod"] = Value::Object(n.pod.clone());
                }
                for (k, v) in [("component", component), ("group", group), ("class", class)] {
                    if let Some(v) = v {
                        payload[k] = json!(v);
                    }
                }
                json!({
                    "routing_key": routing_key,
                    "event_action": "trigger",
                    "dedup_key": dedup,
                    "payload": payload,
                    "client": "initbox notify",
                })
            };
            vec![json_request(&h.url, &body)]
        }
    };
    let auth = match (&h.bearer, &h.basic) {
        (Some(token), _) => Some(format!("Bearer {token}")),
        (None, Some((user, pass))) => Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )),
        (None, None) => None,
    };
    for r in &mut reqs {
        let mut headers = h.headers.clone();
        if let Some(a) = &auth {
            headers.push(("Authorization".into(), a.clone()));
        }
        headers.append(&mut r.headers);
        if let Some(sign) = &h.sign {
            headers.extend(signature_headers(sign, &n.id, unix, &r.body));
        }
        r.headers = headers;
    }
    reqs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_signature_matches_the_published_vector() {
        let sign = Sign {
            scheme: SignScheme::Github,
            secret: b"It's a Secret to Everybody".to_vec(),
            header: "X-Hub-Signature-256".into(),
        };
        let h = signature_headers(&sign, "id", 0, b"Hello, World!");
        assert_eq!(
            h,
            vec![(
                "X-Hub-Signature-256".to_string(),
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
                    .to_string()
            )]
        );
    }

    #[test]
    fn standard_webhooks_signature_matches_the_spec_example() {
        // Example from the Standard Webhooks specification.
        let secret = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let sign = Sign {
            scheme: SignScheme::StandardWebhooks,
            secret,
            header: "webhook-signature".into(),
        };
        let h = signature_headers(
            &sign,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(h[2].1, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(truncate_bytes("ééé", 5), "é…");
    }
}
