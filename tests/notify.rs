//! End-to-end tests of `initbox notify` against real parts:
//! - the kit's HTTP capture server (tests/common/http.rs) stands in for each service's endpoint: there is no
//!   Slack, Teams, Discord, Telegram, ntfy, PagerDuty... on loopback, so it records the exact
//!   request each service would get and the tests check it against the service's documented API;
//! - a real SMTP server (Python's aiosmtpd, started by tests/common/smtp.rs) with STARTTLS,
//!   implicit TLS and AUTH, behind the kit's test CA (tests/common/pki.rs, the openssl CLI).

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::http::{Answer, HttpServer, Request};
use common::pki;
use common::smtp::{self, https_server, smtp_server};
use common::{Run, assert_one_line_error, initbox, run};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// JSON payloads, read with serde_json and addressed by dotted paths (`blocks.0.text.type`).

struct J(Value);

impl J {
    fn parse(text: &str) -> J {
        J(serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
    }
    fn at(&self, path: &str) -> &Value {
        let pointer = format!("/{}", path.replace('.', "/"));
        self.0
            .pointer(&pointer)
            .unwrap_or_else(|| panic!("no {path} in {}", self.0))
    }
    fn has(&self, path: &str) -> bool {
        self.0
            .pointer(&format!("/{}", path.replace('.', "/")))
            .is_some()
    }
    fn s(&self, path: &str) -> &str {
        self.at(path)
            .as_str()
            .unwrap_or_else(|| panic!("{path} is not a string in {}", self.0))
    }
    fn n(&self, path: &str) -> f64 {
        self.at(path)
            .as_f64()
            .unwrap_or_else(|| panic!("{path} is not a number in {}", self.0))
    }
    fn len(&self, path: &str) -> usize {
        match self.at(path) {
            Value::Array(a) => a.len(),
            Value::Object(m) => m.len(),
            other => panic!("{path} has no length: {other}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The HTTP capture server is the kit's (tests/common/http.rs): `HttpServer::capture` records
// each request as a `Request` (method, target, headers, body, arrival time).

/// A captured request's body as JSON.
trait JsonBody {
    fn json(&self) -> J;
}

impl JsonBody for Request {
    fn json(&self) -> J {
        J::parse(std::str::from_utf8(&self.body).unwrap())
    }
}

/// 200 `ok`, no Content-Type.
fn ok() -> Answer {
    Answer::bare(200, "ok")
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn notify() -> Command {
    let mut c = initbox();
    c.arg("notify");
    for v in [
        "POD_NAME",
        "POD_NAMESPACE",
        "NODE_NAME",
        "POD_IP",
        "POD_UID",
    ] {
        c.env_remove(v);
    }
    common::without_proxies(&mut c);
    c
}

/// A required notification with a short time box: the arguments of attempts that must fail.
const MUST_FAIL: [&str; 5] = ["--required", "-m", "x", "--timeout", "3s"];

fn go(c: &mut Command) -> Run {
    run(c, Duration::from_secs(60))
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn hmac_sha256_hex(key: &str, body: &[u8], dir: &Path) -> String {
    let f = dir.join("signed-body");
    std::fs::write(&f, body).unwrap();
    common::python(
        "import hmac,hashlib,sys;print(hmac.new(sys.argv[1].encode(),open(sys.argv[2],'rb').read(),hashlib.sha256).hexdigest())",
        &[key, f.to_str().unwrap()],
    )
}

fn assert_uuid(s: &str) {
    assert_eq!(s.len(), 36, "uuid: {s}");
    assert_eq!(s.matches('-').count(), 4, "uuid: {s}");
}

fn assert_rfc3339(s: &str) {
    let b = s.as_bytes();
    assert!(
        s.len() == 20 && b[4] == b'-' && b[10] == b'T' && s.ends_with('Z'),
        "RFC 3339 time: {s}"
    );
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn each_service_gets_its_documented_request() {
    let cap = HttpServer::capture(|_, _| ok());
    let dir = tempdir();
    let data = dir.path().join("release.json");
    std::fs::write(&data, r#"{"version": "v1.2.3", "owners": ["a", "b"]}"#).unwrap();
    let podinfo = dir.path().join("podinfo");
    std::fs::create_dir(&podinfo).unwrap();
    std::fs::write(podinfo.join("labels"), "app=\"web\"\ntier=\"front\"\n").unwrap();
    let p = cap.port;
    let r = go(notify()
        .env("POD_NAME", "web-0")
        .env("POD_NAMESPACE", "prod")
        .env("NODE_NAME", "node-1")
        .args([
            &cap.url_as("slack+http", "/services/T0/B0/SLACKTOKEN123"),
            &format!("mattermost://bot@127.0.0.1:{p}/mmtoken123?scheme=http"),
            &cap.url_as(
                "teams+http",
                "/workflows/wf1/triggers/manual/paths/invoke?api-version=2016-06-01&sig=SIGVALUE99",
            ),
            &format!("discord://dtoken12345@424242?endpoint=http://127.0.0.1:{p}"),
            &cap.url_as("googlechat+http", "/v1/spaces/AAA/messages?key=k1&token=t1"),
            &format!(
                "telegram://123456:TGSECRET99@telegram?chats=@chan,42&endpoint=http://127.0.0.1:{p}"
            ),
            &format!(
                "ntfy://alice:ntfypw99@127.0.0.1:{p}/alerts?scheme=http&priority=high&tags=rocket"
            ),
            &format!(
                "pagerduty:///PDROUTINGKEY0123?endpoint=http://127.0.0.1:{p}&severity=critical"
            ),
            &cap.url_as("webhook+http", "/generic"),
        ])
        .args(["--event", "failure", "--data"])
        .arg(format!("release={}", data.display()))
        .arg("--downward-api")
        .arg(&podinfo)
        .args([
            "--title",
            "Deploy {{ pod.name }} <{{ pod.labels.app }}>",
            "--message",
            "{{ data.release.version }} on {{ pod.node }}: a & b",
        ]));
    assert_eq!(r.code(), 0, "{}", r.all());
    let title = "Deploy web-0 <web>";
    let message = "v1.2.3 on node-1: a & b";

    // Slack incoming webhook: text fallback + Block Kit header and mrkdwn section.
    let s = cap.one("/services/T0/B0/SLACKTOKEN123");
    assert_eq!(s.method, "POST");
    assert!(s.header("content-type").starts_with("application/json"));
    let j = s.json();
    assert_eq!(j.s("text"), format!("*{title}*\n{message}"));
    assert_eq!(j.len("blocks"), 2);
    assert_eq!(j.s("blocks.0.type"), "header");
    assert_eq!(j.s("blocks.0.text.type"), "plain_text");
    assert_eq!(j.s("blocks.0.text.text"), title);
    assert_eq!(j.s("blocks.1.type"), "section");
    assert_eq!(j.s("blocks.1.text.type"), "mrkdwn");
    assert_eq!(j.s("blocks.1.text.text"), message);

    // Mattermost incoming webhook: POST /hooks/TOKEN, markdown text, username.
    let j = cap.one("/hooks/mmtoken123").json();
    assert_eq!(j.s("text"), format!("**{title}**\n{message}"));
    assert_eq!(j.s("username"), "bot");
    assert!(!j.has("blocks"));

    // Teams Workflows: the full trigger URL untouched, an Adaptive Card attachment.
    let t = cap.one("/workflows/wf1/");
    assert_eq!(
        t.target,
        "/workflows/wf1/triggers/manual/paths/invoke?api-version=2016-06-01&sig=SIGVALUE99"
    );
    let j = t.json();
    assert_eq!(j.s("type"), "message");
    assert_eq!(
        j.s("attachments.0.contentType"),
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(j.s("attachments.0.content.type"), "AdaptiveCard");
    assert_eq!(j.s("attachments.0.content.version"), "1.4");
    assert_eq!(j.s("attachments.0.content.body.0.type"), "TextBlock");
    assert_eq!(j.s("attachments.0.content.body.0.text"), title);
    assert_eq!(j.s("attachments.0.content.body.1.text"), message);

    // Discord webhook: /api/webhooks/ID/TOKEN?wait=true with an embed, red for a failure.
    let d = cap.one("/api/webhooks/");
    assert_eq!(d.target, "/api/webhooks/424242/dtoken12345?wait=true");
    let j = d.json();
    assert_eq!(j.s("embeds.0.title"), title);
    assert_eq!(j.s("embeds.0.description"), message);
    assert_eq!(j.n("embeds.0.color"), f64::from(0xE01E5A));

    // Google Chat: the space URL with key and token, a text message.
    let g = cap.one("/v1/spaces/AAA/messages");
    assert_eq!(g.target, "/v1/spaces/AAA/messages?key=k1&token=t1");
    assert_eq!(g.json().s("text"), format!("*{title}*\n{message}"));

    // Telegram Bot API: sendMessage once per chat, HTML-escaped.
    let tg = cap.to("/bot123456:TGSECRET99/sendMessage");
    assert_eq!(tg.len(), 2, "{tg:?}");
    let mut chats: Vec<String> = tg
        .iter()
        .map(|r| r.json().s("chat_id").to_string())
        .collect();
    chats.sort();
    assert_eq!(chats, ["42", "@chan"]);
    let j = tg[0].json();
    assert_eq!(j.s("parse_mode"), "HTML");
    assert_eq!(
        j.s("text"),
        "<b>Deploy web-0 &lt;web&gt;</b>\nv1.2.3 on node-1: a &amp; b"
    );

    // ntfy JSON publishing: POST / with topic, Basic auth.
    let n = cap
        .received()
        .into_iter()
        .find(|r| r.target == "/")
        .expect("ntfy request");
    assert_eq!(n.header("authorization"), "Basic YWxpY2U6bnRmeXB3OTk="); // alice:ntfypw99
    let j = n.json();
    assert_eq!(j.s("topic"), "alerts");
    assert_eq!(j.s("title"), title);
    assert_eq!(j.s("message"), message);
    assert_eq!(j.n("priority"), 4.0);
    assert_eq!(j.s("tags.0"), "rocket");

    // PagerDuty Events v2: trigger with the dedup key, summary, source, severity.
    let j = cap.one("/v2/enqueue").json();
    assert_eq!(j.s("routing_key"), "PDROUTINGKEY0123");
    assert_eq!(j.s("event_action"), "trigger");
    assert_eq!(j.s("dedup_key"), "prod/web-0");
    assert_eq!(j.s("payload.summary"), title);
    assert_eq!(j.s("payload.severity"), "critical");
    assert_eq!(j.s("payload.source"), "/namespaces/prod/pods/web-0");
    assert_eq!(j.s("payload.custom_details.message"), message);
    assert_rfc3339(j.s("payload.timestamp"));

    // Generic webhook default body.
    let w = cap.one("/generic");
    let j = w.json();
    assert_eq!(j.s("title"), title);
    assert_eq!(j.s("message"), message);
    assert_eq!(j.s("event"), "failure");
    assert_eq!(j.s("pod.name"), "web-0");
    assert_eq!(j.s("pod.labels.tier"), "front");
    assert_eq!(j.s("id"), w.header("idempotency-key"));
    assert_uuid(j.s("id"));

    assert_eq!(cap.received().len(), 10, "{:?}", cap.received());
    // Tokens in URLs never reach the log.
    for secret in [
        "SLACKTOKEN123",
        "mmtoken123",
        "SIGVALUE99",
        "dtoken12345",
        "TGSECRET99",
        "ntfypw99",
        "PDROUTINGKEY0123",
    ] {
        assert!(!r.stderr.contains(secret), "{secret} leaked: {}", r.stderr);
    }
}

#[test]
fn webhook_signs_the_exact_body_and_renders_nested_templates() {
    let cap = HttpServer::capture(|_, _| ok());
    let dir = tempdir();
    let secret = dir.path().join("hook-secret");
    std::fs::write(&secret, "It's a Secret to Everybody\n").unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "bearer-tok-77\n").unwrap();
    let std_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = r#"{"pod": {"name": "{{ pod.name }}", "labels": {"team": "{{ env.TEAM }}"}},
                   "text": "{{ message }}", "count": 3, "ok": true, "list": ["{{ event }}", null]}"#;
    let r = go(notify()
        .env("POD_NAME", "api-1")
        .env("TEAM", "pay\"ments")
        .env("STD_SECRET", std_secret)
        .arg(format!(
            "{}?method=PUT&@X-Env=prod&sign=github&secret_file={}&token_file={}&keep=1",
            cap.url_as("webhook+http", "/hook"),
            secret.display(),
            token.display()
        ))
        .arg(format!(
            "{}?sign=standard-webhooks&secret_env=STD_SECRET",
            cap.url_as("webhook+http", "/std")
        ))
        .args([
            "-vv",
            "--body",
            body,
            "-m",
            "line \"one\"\nline two",
            "--event",
            "start",
        ]));
    assert_eq!(r.code(), 0, "{}", r.all());

    let h = cap.one("/hook");
    assert_eq!(h.method, "PUT");
    assert_eq!(
        h.target, "/hook?keep=1",
        "our options are not forwarded, others are"
    );
    assert_eq!(h.header("authorization"), "Bearer bearer-tok-77");
    assert_eq!(h.header("x-env"), "prod");
    assert_eq!(h.header("content-type"), "application/json");
    assert_uuid(h.header("idempotency-key"));
    let want = hmac_sha256_hex("It's a Secret to Everybody", &h.body, dir.path());
    assert_eq!(h.header("x-hub-signature-256"), format!("sha256={want}"));
    let j = h.json();
    assert_eq!(j.s("pod.name"), "api-1");
    assert_eq!(j.s("pod.labels.team"), "pay\"ments");
    assert_eq!(j.s("text"), "line \"one\"\nline two");
    assert_eq!(j.n("count"), 3.0);
    assert_eq!(*j.at("ok"), Value::Bool(true));
    assert_eq!(j.s("list.0"), "start");
    assert_eq!(*j.at("list.1"), Value::Null);

    // Standard Webhooks: webhook-id/timestamp/signature over "id.timestamp.body".
    let s = cap.one("/std");
    let id = s.header("webhook-id").to_string();
    let ts = s.header("webhook-timestamp").to_string();
    assert_eq!(id, s.header("idempotency-key"));
    let f = dir.path().join("std-body");
    std::fs::write(&f, &s.body).unwrap();
    let want = common::python(
        "import hmac,hashlib,base64,sys;k=base64.b64decode(sys.argv[1][6:]);m=(sys.argv[2]+'.'+sys.argv[3]+'.').encode()+open(sys.argv[4],'rb').read();print('v1,'+base64.b64encode(hmac.new(k,m,hashlib.sha256).digest()).decode())",
        &[std_secret, &id, &ts, f.to_str().unwrap()],
    );
    assert_eq!(s.header("webhook-signature"), want);

    for leaked in [
        "It's a Secret",
        "bearer-tok-77",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ] {
        assert!(!r.stderr.contains(leaked), "{leaked} leaked: {}", r.stderr);
    }
}

#[test]
fn cloudevents_structured_and_binary() {
    let cap = HttpServer::capture(|_, _| Answer::bare(202, ""));
    let r = go(notify()
        .env("POD_NAME", "web-0")
        .env("POD_NAMESPACE", "prod")
        .arg(cap.url_as("cloudevents+http", "/structured"))
        .arg(cap.url_as(
            "cloudevents+http",
            "/binary?mode=binary&type=com.example.init",
        ))
        .args([
            "--event",
            "start",
            "--title",
            "Starting",
            "-m",
            "web-0 is starting",
        ]));
    assert_eq!(r.code(), 0, "{}", r.all());

    let s = cap.one("/structured");
    assert_eq!(
        s.header("content-type"),
        "application/cloudevents+json; charset=utf-8"
    );
    let j = s.json();
    assert_eq!(j.s("specversion"), "1.0");
    assert_eq!(j.s("type"), "dev.initbox.notify.start");
    assert_eq!(j.s("source"), "/namespaces/prod/pods/web-0");
    assert_eq!(j.s("id"), s.header("idempotency-key"));
    assert_eq!(j.s("datacontenttype"), "application/json");
    assert_eq!(j.s("subject"), "Starting");
    assert_rfc3339(j.s("time"));
    assert_eq!(j.s("data.message"), "web-0 is starting");
    assert_eq!(j.s("data.event"), "start");

    let b = cap.one("/binary");
    assert_eq!(b.target, "/binary", "CloudEvents options are not forwarded");
    assert_eq!(b.header("ce-specversion"), "1.0");
    assert_eq!(b.header("ce-type"), "com.example.init");
    assert_eq!(b.header("ce-source"), "/namespaces/prod/pods/web-0");
    assert_eq!(b.header("ce-id"), b.header("idempotency-key"));
    assert_rfc3339(b.header("ce-time"));
    assert_eq!(b.header("content-type"), "application/json");
    assert!(!b.headers.contains_key("ce-datacontenttype"));
    let j = b.json();
    assert_eq!(j.s("message"), "web-0 is starting");
    assert!(
        !j.has("specversion"),
        "binary mode: the body is the data only"
    );
    // Same notification, same id: both targets share it.
    assert_eq!(b.header("ce-id"), s.json().s("id"));
}

#[test]
fn retry_after_on_429_is_honoured_then_delivered() {
    let cap = HttpServer::capture(|n, _| {
        if n == 1 {
            Answer::bare(429, "slow down").header("Retry-After", "1")
        } else {
            ok()
        }
    });
    let r = go(notify().arg(cap.url_as("webhook+http", "/rate")).args([
        "-m",
        "hello",
        "--required",
        "--timeout",
        "10s",
    ]));
    assert_eq!(r.code(), 0, "{}", r.all());
    let reqs = cap.to("/rate");
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let gap = reqs[1].at - reqs[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "waited {gap:?}, Retry-After said 1s"
    );
    assert_eq!(
        reqs[0].header("idempotency-key"),
        reqs[1].header("idempotency-key"),
        "the idempotency key is stable across retries"
    );
}

#[test]
fn server_errors_forever_best_effort_exits_0_required_exits_1_within_the_time_box() {
    let cap = HttpServer::capture(|_, _| Answer::bare(500, "boom"));
    let url = cap.url_as("webhook+http", "/down");
    let r = go(notify().arg(&url).args(["-m", "x", "--timeout", "2s"]));
    assert_eq!(r.code(), 0, "best effort: {}", r.all());
    assert!(r.stderr.contains("not delivered"), "{}", r.stderr);
    assert!(r.stderr.contains("HTTP 500"), "{}", r.stderr);
    assert!(
        r.elapsed < Duration::from_secs(5),
        "time box: {:?}",
        r.elapsed
    );
    let first = cap.to("/down").len();
    assert!(first >= 2, "retried: {first}");

    let r = go(notify()
        .arg(&url)
        .args(["-m", "x", "--timeout", "2s", "--required"]));
    assert_eq!(r.code(), 1, "required: {}", r.all());
    assert!(r.stderr.contains("HTTP 500"), "{}", r.stderr);
    assert!(
        r.elapsed < Duration::from_secs(5),
        "time box: {:?}",
        r.elapsed
    );
    assert!(cap.to("/down").len() >= first + 2);

    // 4xx other than 408/425/429 is not retried.
    let cap = HttpServer::capture(|_, _| Answer::bare(400, "invalid_payload"));
    let r = go(notify()
        .arg(cap.url_as("webhook+http", "/bad"))
        .args(["-m", "x", "--required"]));
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("invalid_payload"), "{}", r.stderr);
    assert_eq!(cap.to("/bad").len(), 1);
}

#[test]
fn dedupe_across_three_runs_sends_once_then_resolves() {
    let cap = HttpServer::capture(|_, _| ok());
    let dir = tempdir();
    let state = dir.path().join("state/notify.json");
    let marker = dir.path().join("fixed");
    let cmd = format!(
        "test -f {} || {{ echo 'db not ready' >&2; exit 3; }}",
        marker.display()
    );
    let p = cap.port;
    let step = || {
        let mut c = notify();
        c.env("POD_NAME", "web-0")
            .env("POD_NAMESPACE", "prod")
            .arg("run")
            .arg(cap.url_as("webhook+http", "/hook"))
            .arg(format!(
                "pagerduty:///PDKEY123456?endpoint=http://127.0.0.1:{p}"
            ))
            .arg("--dedupe-file")
            .arg(&state)
            .args(["--cooldown", "10m", "--", "sh", "-c", &cmd]);
        go(&mut c)
    };
    let r1 = step();
    assert_eq!(r1.code(), 3, "{}", r1.all());
    let hooks = cap.to("/hook");
    assert_eq!(hooks.len(), 1);
    let j = hooks[0].json();
    assert_eq!(j.s("event"), "failure");
    assert_eq!(j.n("details.exit_code"), 3.0);
    assert_eq!(j.s("details.stderr_tail"), "db not ready");
    let pd = cap.one("/v2/enqueue").json();
    assert_eq!(pd.s("event_action"), "trigger");
    let dedup = pd.s("dedup_key").to_string();
    assert!(dedup.starts_with("prod/web-0:"), "{dedup}");

    let r2 = step();
    assert_eq!(r2.code(), 3, "{}", r2.all());
    assert_eq!(cap.received().len(), 2, "the crash loop sends nothing new");
    assert!(r2.stderr.contains("not sent"), "{}", r2.stderr);

    std::fs::write(&marker, "").unwrap();
    let r3 = step();
    assert_eq!(r3.code(), 0, "{}", r3.all());
    let hooks = cap.to("/hook");
    assert_eq!(hooks.len(), 2);
    let j = hooks[1].json();
    assert_eq!(j.s("event"), "success");
    assert_eq!(*j.at("resolves"), Value::Bool(true));
    assert!(
        j.s("message").contains("resolves the earlier failure"),
        "{}",
        j.s("message")
    );
    let pds = cap.to("/v2/enqueue");
    assert_eq!(pds.len(), 2);
    let j = pds[1].json();
    assert_eq!(j.s("event_action"), "resolve");
    assert_eq!(j.s("dedup_key"), dedup);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn run_passes_the_exit_code_through() {
    let last_line = |r: &Run| J::parse(r.stdout.lines().last().unwrap_or("{}"));
    let r = go(notify().args([
        "run",
        "stdout://",
        "--",
        "sh",
        "-c",
        "echo out; echo e1 >&2; echo e2 >&2; exit 7",
    ]));
    assert_eq!(r.code(), 7, "{}", r.all());
    assert!(
        r.stdout.starts_with("out\n"),
        "the command's stdout passes through"
    );
    assert!(
        r.stderr.contains("e1\ne2\n"),
        "the command's stderr passes through"
    );
    let j = last_line(&r);
    assert_eq!(j.s("event"), "failure");
    assert_eq!(
        j.s("title"),
        format!("sh failed (exit 7) on {}", hostname())
    );
    assert!(
        j.s("message").ends_with("Last lines of stderr:\ne1\ne2"),
        "{}",
        j.s("message")
    );

    let r = go(notify().args(["run", "stdout://", "--", "sh", "-c", "kill -KILL $$"]));
    assert_eq!(r.code(), 137, "128 + SIGKILL: {}", r.all());

    let r = go(notify().args(["run", "stdout://", "--", "/nonexistent/command"]));
    assert_eq!(r.code(), 127, "{}", r.all());
    assert_eq!(last_line(&r).s("event"), "failure");

    let r = go(notify().args(["run", "stdout://", "--on", "start,success", "--", "true"]));
    assert_eq!(r.code(), 0, "{}", r.all());
    let events: Vec<String> = r
        .stdout
        .lines()
        .map(|l| J::parse(l).s("event").to_string())
        .collect();
    assert_eq!(events, ["start", "success"]);

    let r = go(notify().args(["run", "stdout://", "--on", "failure", "--", "true"]));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert_eq!(r.stdout, "", "success not in --on: nothing sent");

    // A failed notification never changes the command's code; --required fails a success.
    let cap = HttpServer::capture(|_, _| Answer::bare(500, ""));
    let url = cap.url_as("webhook+http", "/x");
    let r = go(notify().args(["run", &url, "--timeout", "1s", "--", "sh", "-c", "exit 4"]));
    assert_eq!(r.code(), 4, "{}", r.all());
    let r = go(notify().args(["run", &url, "--timeout", "1s", "--required", "--", "true"]));
    assert_eq!(r.code(), 1, "{}", r.all());
    let r = go(notify().args(["run", &url, "--timeout", "1s", "--", "true"]));
    assert_eq!(r.code(), 0, "{}", r.all());
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn malformed_urls_and_unknown_schemes_exit_2_with_secrets_redacted() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "bogus://user:Passw0rdBogus@host/x",
            "Passw0rdBogus",
            "unknown scheme 'bogus'",
        ),
        (
            "smtp://me:Sm7pSecretPw@mail.example.com:99999/?to=a@b.c",
            "Sm7pSecretPw",
            "malformed URL",
        ),
        (
            "telegram://123456:TgBotSecret77@telegram",
            "TgBotSecret77",
            "no chats",
        ),
        (
            "slack://only-two/SlackTok3nZ",
            "SlackTok3nZ",
            "expected slack://",
        ),
        ("webhook+https://u:HookPw55@[::1/x", "HookPw55", "malformed"),
        ("discord://DiscordTok9@", "DiscordTok9", "URL #1"),
        (
            "ntfy://u:NtfyPw88@ntfy.example.com/t?colour=red",
            "NtfyPw88",
            "unknown option 'colour'",
        ),
        (
            "no-scheme-Secr3tT0kenValue",
            "Secr3tT0kenValue",
            "not a URL",
        ),
    ];
    for (url, secret, why) in cases {
        let r = go(notify().args([url, "-m", "x"]));
        assert_one_line_error(&r, 2, why);
        assert!(r.stderr.contains("URL #1"), "{}", r.stderr);
        assert!(!r.all().contains(secret), "{secret} leaked: {}", r.all());
    }
    // A placeholder for a variable that is not set.
    let r = go(notify().args(["webhook+https://h/x?token=${NOTIFY_NOT_SET}", "-m", "x"]));
    assert_one_line_error(&r, 2, "NOTIFY_NOT_SET");
    // A template error is invalid input.
    let r = go(notify().args(["stdout://", "-m", "{{ nope }}"]));
    assert_one_line_error(&r, 3, "--message");
    // In `run`, a broken template stops before the command runs.
    let dir = tempdir();
    let marker = dir.path().join("ran");
    let r = go(notify()
        .args([
            "run",
            "stdout://",
            "--title",
            "{{ pod.nmae }}",
            "--",
            "touch",
        ])
        .arg(&marker));
    assert_one_line_error(&r, 3, "--title");
    assert!(!marker.exists(), "the command must not run");
    // No targets at all.
    let r = go(notify().args(["-m", "x"]));
    assert_one_line_error(&r, 2, "no target URLs");
}

// ---------------------------------------------------------------------------------------------
// SMTP against aiosmtpd.

/// The kit's test CA (tests/common/pki.rs) with a server certificate for 127.0.0.1 and
/// localhost: (CA, server certificate, server key).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    pki::ca_and_localhost(dir, "initbox notify test CA");
    (
        dir.join("ca.crt"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// The n-th message (from 1) the SMTP server (or the HTTPS fixture) wrote to `dir`.
fn wait_for_mail(dir: &Path, n: usize) -> J {
    J(smtp::wait_for_mail(dir, n))
}

#[test]
fn https_with_a_private_ca_and_a_client_certificate() {
    let dir = tempdir();
    let (ca, cert, key) = make_certs(dir.path());
    let (client_cert, client_key) = pki::client_cert(dir.path(), "client", "initbox-client");
    let out = dir.path().join("https");
    std::fs::create_dir(&out).unwrap();
    let (_server, port) = https_server(&cert, &key, Some(&ca), &out);
    let url = format!("webhook+https://127.0.0.1:{port}/secure");

    let r = go(notify()
        .arg(&url)
        .arg("--ca-file")
        .arg(&ca)
        .arg("--client-cert")
        .arg(&client_cert)
        .arg("--client-key")
        .arg(&client_key)
        .args(["--required", "-m", "over mTLS"]));
    assert_eq!(r.code(), 0, "{}", r.all());
    let got = wait_for_mail(&out, 1);
    assert_eq!(got.s("path"), "/secure");
    assert_eq!(got.s("client_cn"), "initbox-client");
    assert!(got.s("body").contains("over mTLS"));

    // Verified by default: without the private CA the server is not trusted.
    let r = go(notify().arg(&url).args(MUST_FAIL));
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(
        r.stderr.to_lowercase().contains("certificate"),
        "{}",
        r.stderr
    );
    // The server refuses a client without a certificate.
    let r = go(notify().arg(&url).arg("--ca-file").arg(&ca).args(MUST_FAIL));
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(!out.join("2.json").exists());
}

#[test]
fn smtp_starttls_and_implicit_tls_with_auth_and_a_private_ca() {
    let dir = tempdir();
    let (ca, cert, key) = make_certs(dir.path());
    let starttls_out = dir.path().join("starttls");
    let implicit_out = dir.path().join("implicit");
    std::fs::create_dir(&starttls_out).unwrap();
    std::fs::create_dir(&implicit_out).unwrap();
    let (_s1, p1) = smtp_server("starttls", &cert, &key, &starttls_out);
    let (_s2, p2) = smtp_server("implicit", &cert, &key, &implicit_out);

    // STARTTLS (the default on any port but 465), password from the environment.
    let url = format!(
        "smtp://notify:${{SMTP_PW}}@127.0.0.1:{p1}/?from=init@example.com&to=ops@example.com,dev@example.com"
    );
    let r = go(notify()
        .env("SMTP_PW", "S3cret/pw@x")
        .env("POD_NAME", "web-0")
        .arg(&url)
        .arg("--ca-file")
        .arg(&ca)
        .args([
            "--required",
            "-vv",
            "--title",
            "{{ pod.name }} failed",
            "-m",
            "see logs\nline 2",
        ]));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(!r.stderr.contains("S3cret/pw@x"), "{}", r.stderr);
    let m = wait_for_mail(&starttls_out, 1);
    assert_eq!(m.s("mail_from"), "init@example.com");
    assert_eq!(m.s("rcpt_tos.0"), "ops@example.com");
    assert_eq!(m.s("rcpt_tos.1"), "dev@example.com");
    assert_eq!(*m.at("authenticated"), Value::Bool(true));
    assert_eq!(*m.at("starttls"), Value::Bool(true));
    let data = m.s("data");
    assert!(data.contains("Subject: web-0 failed"), "{data}");
    assert!(
        data.contains("see logs\r\nline 2") || data.contains("see logs\nline 2"),
        "{data}"
    );
    assert!(
        data.contains("@initbox>"),
        "Message-ID from the idempotency key: {data}"
    );

    // Implicit TLS (smtps://, as on port 465).
    let url = format!(
        "smtps://notify:S3cret%2Fpw%40x@127.0.0.1:{p2}/?from=init@example.com&to=ops@example.com"
    );
    let r = go(notify()
        .arg(&url)
        .arg("--ca-file")
        .arg(&ca)
        .args(["--required", "-m", "implicit"]));
    assert_eq!(r.code(), 0, "{}", r.all());
    let m = wait_for_mail(&implicit_out, 1);
    assert_eq!(m.s("mode"), "implicit");
    assert_eq!(*m.at("authenticated"), Value::Bool(true));
    assert!(m.s("data").contains("implicit"));

    // Without the private CA the server is not trusted: verified by default.
    let r = go(notify()
        .arg(&url)
        .args(["--required", "-m", "x", "--timeout", "5s"]));
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(!implicit_out.join("2.json").exists());

    // A wrong password is rejected: exit 5 with --required, never retried forever.
    let bad = format!(
        "smtp://notify:wrong-pass-1@127.0.0.1:{p1}/?from=init@example.com&to=ops@example.com"
    );
    let r = go(notify()
        .arg(&bad)
        .arg("--ca-file")
        .arg(&ca)
        .args(["--required", "-m", "x"]));
    assert_eq!(r.code(), 5, "{}", r.all());
    assert!(!r.all().contains("wrong-pass-1"), "{}", r.all());
    // Best effort: logged, exit 0.
    let r = go(notify()
        .arg(&bad)
        .arg("--ca-file")
        .arg(&ca)
        .args(["-m", "x"]));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(!starttls_out.join("2.json").exists());
}

#[test]
fn proxies_from_the_environment_with_no_proxy() {
    // The capture server plays an HTTP proxy: it receives the absolute-form request.
    let proxy = HttpServer::capture(|_, _| ok());
    let direct = HttpServer::capture(|_, _| ok());
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let r = go(notify()
        .env("HTTP_PROXY", &proxy_url)
        .env("NO_PROXY", "127.0.0.1,.cluster.local")
        .args([
            "webhook+http://hooks.example.invalid/via-proxy",
            &direct.url_as("webhook+http", "/direct"),
        ])
        .args(["-m", "x", "--required"]));
    assert_eq!(r.code(), 0, "{}", r.all());
    let p = proxy.received();
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].target, "http://hooks.example.invalid/via-proxy");
    assert_eq!(
        direct.one("/direct").method,
        "POST",
        "NO_PROXY bypasses the proxy"
    );
}

// ---------------------------------------------------------------------------------------------
// URL forms notify does not understand, and webhook credentials in paths and queries
// (issue 12, item 4).

/// apprise's `pagerduty://INTEGRATION_KEY@API_KEY` is refused (exit 2) without showing either
/// key; before, the API key became the host name, was looked up in DNS and sent the alert.
/// A webhook's path and query are its credential: never in logs, errors or --dry-run, also when
/// the server's error body echoes the URL back; the target is shown as scheme://host:port.
#[test]
fn webhook_path_and_query_are_secret_everywhere() {
    let cap = HttpServer::capture(|_, req| {
        Answer::bare(
            400,
            format!(
                "invalid payload for webhook http://127.0.0.1{} (path {})",
                req.target,
                req.target.split('?').next().unwrap_or_default()
            ),
        )
    });
    let secrets = [
        "lowercasepathtokenvalue",
        "querycanaryvalue42",
        "B0BBBBcanary",
    ];
    let targets = [
        cap.url_as(
            "webhook+http",
            "/hooks/lowercasepathtokenvalue?apikey2=querycanaryvalue42",
        ),
        cap.url_as("slack+http", "/services/T0AAAAAA/B0BBBBcanary/xyzzy"),
    ];
    let r = go(notify()
        .args(["-vv", "--required", "-m", "x"])
        .args(&targets));
    assert_ne!(r.code(), 0, "{}", r.all());
    assert!(r.stderr.contains("HTTP 400"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("127.0.0.1:{}", cap.port)),
        "{}",
        r.stderr
    );
    for s in secrets {
        assert!(!r.all().contains(s), "{s} leaked: {}", r.all());
    }
    let sent = cap.received();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().any(|q| q.target.contains("querycanaryvalue42")));

    let r = go(notify().args(["--dry-run", "-m", "x"]).args(&targets));
    assert_eq!(r.code(), 0, "{}", r.all());
    for s in secrets {
        assert!(!r.all().contains(s), "{s} leaked in --dry-run: {}", r.all());
    }
    assert!(
        r.stdout.contains(&format!("http://127.0.0.1:{}", cap.port)),
        "{}",
        r.stdout
    );
}

#[test]
fn run_forwards_sigterm_to_the_commands_process_group() {
    let dir = tempdir();
    let marker = dir.path().join("trapped");
    let pids = dir.path().join("pids");
    let script = format!(
        "trap 'echo yes > {m}; exit 0' TERM; sleep 60 & echo $! > {p}; wait",
        m = marker.display(),
        p = pids.display()
    );
    let child = notify()
        .args([
            "run",
            "stdout://",
            "--on",
            "failure",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let grandchild: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pids)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "command did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // SAFETY: signalling a child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let r = common::wait_child(child, Duration::from_secs(30));
    assert_eq!(r.code(), 143, "{}", r.all());
    assert_eq!(
        std::fs::read_to_string(&marker).ok().as_deref(),
        Some("yes\n"),
        "{}",
        r.all()
    );
    // The grandchild got SIGTERM too (it was in the command's group), and is gone.
    let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty()
            || stat
                .rsplit_once(')')
                .is_some_and(|(_, s)| s.trim_start().starts_with('Z')),
        "grandchild {grandchild} survived: {stat}"
    );
}

// ---------------------------------------------------------------------------------------------
// E-mail: RFC 5322/2045 messages, attempt timeout, clear-text AUTH, pinned self-signed
// certificates, protocol traces (issue 22, items 9-14 and 16).

/// Python's `email` package as the RFC checker: parses the received message with the strict
/// policy and prints `{"mime", "message_id", "msgid_ok", "to": [...], "longest": N, "defects"}`.
fn check_mail(data: &str) -> J {
    let code = r#"
import email, email.policy, json, re, sys
raw = sys.stdin.buffer.read()
head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
msg = email.message_from_bytes(raw, policy=email.policy.strict)
atext = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
dot_atom = atext + r"(?:\." + atext + r")*"
mid = str(msg["Message-ID"])
print(json.dumps({
    "mime": str(msg["MIME-Version"]) if msg["MIME-Version"] is not None else None,
    "message_id": mid,
    "msgid_ok": re.fullmatch("<" + dot_atom + "@" + dot_atom + ">", mid) is not None,
    "to": [a.addr_spec for a in msg["To"].addresses],
    "longest": max(len(l) for l in head.split(b"\n")),
    "defects": len(msg.defects),
}))
"#;
    let out =
        common::output_with_stdin(Command::new("python3").args(["-c", code]), data.as_bytes());
    assert!(out.status.success(), "{}", common::text(&out));
    J::parse(&String::from_utf8(out.stdout).unwrap())
}

#[test]
fn smtp_mail_is_rfc_clean_with_30_recipients_and_any_idempotency_key() {
    let dir = tempdir();
    let (ca, cert, key) = make_certs(dir.path());
    let out = dir.path().join("mail");
    std::fs::create_dir(&out).unwrap();
    let (_s, port) = smtp_server("starttls", &cert, &key, &out);
    let to: Vec<String> = (0..30)
        .map(|i| format!("recipient-number-{i:02}@operations.example.com"))
        .collect();
    let url = format!(
        "smtp://notify:S3cret%2Fpw%40x@127.0.0.1:{port}/?from=init@example.com&to={}",
        to.join(",")
    );
    let send = |key: &str| {
        let r = go(notify().arg(&url).arg("--ca-file").arg(&ca).args([
            "--required",
            "-m",
            "body",
            "--idempotency-key",
            key,
        ]));
        assert_eq!(r.code(), 0, "{}", r.all());
    };
    // A key with a space, '@', '<>' and non-ASCII: not a msg-id as is.
    send("deploy 42 <a@b> été");
    let m = wait_for_mail(&out, 1);
    let data = m.s("data");
    let c = check_mail(data);
    // RFC 2045 §4.
    assert_eq!(c.s("mime"), "1.0", "{data}");
    // RFC 5322 §2.1.1: the 30 addresses folded, no header line over 78 characters.
    assert!(c.n("longest") <= 78.0, "a header line is too long: {data}");
    assert_eq!(c.len("to"), 30, "{data}");
    assert_eq!(c.s("to.29"), "recipient-number-29@operations.example.com");
    assert_eq!(c.n("defects"), 0.0, "{data}");
    // RFC 5322 §3.6.4 msg-id, from the key: the same key gives the same Message-ID.
    assert_eq!(
        *c.at("msgid_ok"),
        Value::Bool(true),
        "{}",
        c.s("message_id")
    );
    let first = c.s("message_id").to_string();
    send("deploy 42 <a@b> été");
    assert_eq!(
        check_mail(wait_for_mail(&out, 2).s("data")).s("message_id"),
        first
    );
    send("deploy 43");
    let other = check_mail(wait_for_mail(&out, 3).s("data"));
    assert_eq!(*other.at("msgid_ok"), Value::Bool(true));
    assert_ne!(other.s("message_id"), first);
}

#[test]
fn smtp_attempt_timeout_bounds_a_server_that_never_greets() {
    // A TCP server that accepts and never says a word (no SMTP server is needed to be silent).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let held = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            held.lock().unwrap().push(s);
        }
    });
    let started = Instant::now();
    let r = go(notify()
        .arg(format!(
            "smtp://127.0.0.1:{port}/?from=init@example.com&to=ops@example.com&tls=none"
        ))
        .args([
            "--required",
            "-m",
            "x",
            "--attempt-timeout",
            "1s",
            "--timeout",
            "5s",
        ]));
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(r.stderr.contains("attempt timeout"), "{}", r.stderr);
    // Each attempt gave up after 1 s and tried again: several connections inside the 5 s box
    // (before the fix the first attempt held the whole box).
    let n = accepted.lock().unwrap().len();
    assert!(n >= 2, "only {n} connection(s): {}", r.all());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn smtp_refuses_clear_text_auth_unless_loopback_or_allowed() {
    // To another host: a usage error naming the fix, before anything is sent.
    let r = go(notify()
        .arg("smtp://notify:Cl3arPw-canary@mail.example.com/?from=a@example.com&to=b@example.com&tls=none")
        .args(["--required", "-m", "x"]));
    assert_one_line_error(&r, 2, "allow_plain_auth=true");
    assert!(r.stderr.contains("tls=starttls"), "{}", r.stderr);
    assert!(!r.all().contains("Cl3arPw-canary"), "{}", r.all());
    // Asked for explicitly: accepted (dry run: nothing sent).
    let r = go(notify()
        .arg("smtp://notify:Cl3arPw-canary@mail.example.com/?from=a@example.com&to=b@example.com&tls=none&allow_plain_auth=true")
        .args(["--required", "-m", "x", "--dry-run"]));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(!r.all().contains("Cl3arPw-canary"), "{}", r.all());
    // To a loopback address the password never leaves the machine: allowed, and delivered.
    let dir = tempdir();
    let (_ca, cert, key) = make_certs(dir.path());
    let out = dir.path().join("plain");
    std::fs::create_dir(&out).unwrap();
    let (_s, port) = smtp_server("plain", &cert, &key, &out);
    let r = go(notify()
        .arg(format!(
            "smtp://notify:S3cret%2Fpw%40x@127.0.0.1:{port}/?from=a@example.com&to=b@example.com&tls=none"
        ))
        .args(["--required", "-m", "over loopback"]));
    assert_eq!(r.code(), 0, "{}", r.all());
    let m = wait_for_mail(&out, 1);
    assert_eq!(*m.at("authenticated"), Value::Bool(true));
    assert_eq!(*m.at("starttls"), Value::Bool(false));
}

#[test]
fn a_self_signed_certificate_pinned_with_ca_file_is_accepted_for_smtp_and_https() {
    let dir = tempdir();
    let (cert, key) = pki::self_signed(dir.path(), "self", "IP:127.0.0.1,DNS:localhost");
    let starttls_out = dir.path().join("starttls");
    let implicit_out = dir.path().join("implicit");
    let https_out = dir.path().join("https");
    for d in [&starttls_out, &implicit_out, &https_out] {
        std::fs::create_dir(d).unwrap();
    }
    let (_s1, p1) = smtp_server("starttls", &cert, &key, &starttls_out);
    let (_s2, p2) = smtp_server("implicit", &cert, &key, &implicit_out);
    let (_h, hport) = https_server(&cert, &key, None, &https_out);
    let mail = |scheme: &str, port: u16| {
        format!(
            "{scheme}://notify:S3cret%2Fpw%40x@127.0.0.1:{port}/?from=init@example.com&to=ops@example.com"
        )
    };
    let https = format!("webhook+https://127.0.0.1:{hport}/hook");
    for (url, out) in [
        (mail("smtp", p1), &starttls_out),
        (mail("smtps", p2), &implicit_out),
        (https.clone(), &https_out),
    ] {
        let r =
            go(notify()
                .arg(&url)
                .arg("--ca-file")
                .arg(&cert)
                .args(["--required", "-m", "pinned"]));
        assert_eq!(r.code(), 0, "{url}: {}", r.all());
        assert!(
            r.stderr.contains("INFO") && r.stderr.contains("pinned in the CA file given"),
            "{url}: {}",
            r.stderr
        );
        wait_for_mail(out, 1);
    }
    assert_eq!(
        *wait_for_mail(&starttls_out, 1).at("starttls"),
        Value::Bool(true)
    );

    // Trusted only through the system roots (SSL_CERT_FILE), it is still a CA used as a server
    // certificate: refused, with the named reason.
    let r = go(notify()
        .arg(&https)
        .env("SSL_CERT_FILE", &cert)
        .args(MUST_FAIL));
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(
        r.stderr.contains("presents a CA certificate"),
        "{}",
        r.stderr
    );
    // Pinned, but for another name: refused (name mismatch).
    let (other, _) = pki::self_signed(dir.path(), "other", "DNS:other.example");
    let r = go(notify()
        .arg(&https)
        .arg("--ca-file")
        .arg(&other)
        .args(MUST_FAIL));
    assert_eq!(r.code(), 1, "{}", r.all());
    assert!(!https_out.join("2.json").exists());
}

#[test]
fn vv_traces_http_request_lines_and_the_smtp_dialogue_without_secrets() {
    let cap = HttpServer::capture(|_, _| ok());
    let url = cap.url_as("webhook+http", "/hooks/Tr4cePathSecret");
    let r = go(notify()
        .arg(&url)
        .args(["--required", "-vv", "-m", "traced"]));
    assert_eq!(r.code(), 0, "{}", r.all());
    let origin = format!("http://127.0.0.1:{}", cap.port);
    assert!(
        r.stderr.contains(&format!("http > POST {origin}")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("http < 200 OK"), "{}", r.stderr);
    assert!(!r.stderr.contains("Tr4cePathSecret"), "{}", r.stderr);

    let dir = tempdir();
    let (ca, cert, key) = make_certs(dir.path());
    let out = dir.path().join("mail");
    std::fs::create_dir(&out).unwrap();
    let (_s, port) = smtp_server("starttls", &cert, &key, &out);
    let r = go(notify()
        .arg(format!(
            "smtp://notify:S3cret%2Fpw%40x@127.0.0.1:{port}/?from=init@example.com&to=ops@example.com"
        ))
        .arg("--ca-file")
        .arg(&ca)
        .args(["--required", "-vv", "-m", "B0dyCanary text"]));
    assert_eq!(r.code(), 0, "{}", r.all());
    for needle in [
        "smtp S: 220",
        "smtp C: EHLO",
        "smtp C: STARTTLS",
        "smtp C: AUTH PLAIN [hidden]",
        "smtp S: 235",
        "smtp C: MAIL FROM:<init@example.com>",
        "smtp C: RCPT TO:<ops@example.com>",
        "smtp C: [message:",
        "smtp S: 250",
    ] {
        assert!(r.stderr.contains(needle), "{needle}: {}", r.stderr);
    }
    // No AUTH payload (base64 of "\0notify\0S3cret/pw@x") and no body text.
    let payload = common::python(
        "import base64,sys; print(base64.b64encode(b'\\0notify\\0S3cret/pw@x').decode())",
        &[],
    );
    for secret in ["S3cret/pw@x", payload.as_str(), "B0dyCanary"] {
        assert!(!r.stderr.contains(secret), "{secret}: {}", r.stderr);
    }
    wait_for_mail(&out, 1);
}

// ---------------------------------------------------------------------------------------------
// Drop-in URLs: shoutrrr's and apprise's forms, pasted as they are.

/// Run the real apprise (PyPI) on `url`, its requests redirected to `cap` (the host apprise
/// meant is in the `x-apprise-host` header).
fn apprise(cap: &HttpServer, url: &str, title: &str, body: &str, kind: &str) {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notify/apprise_send.py");
    let out = Command::new("python3")
        .arg(script)
        .args([&cap.port.to_string(), url, title, body, kind])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "apprise refused or failed {url}: {}",
        common::text(&out)
    );
}

const TITLE: &str = "Deploy <web> & \"api\"";
const MESSAGE: &str = "line 1\nline 2: ü 100%";

/// initbox sends `urls` with the same note apprise is given.
fn initbox_sends(urls: &[String]) -> Run {
    go(notify()
        .args(urls)
        .args(["--event", "failure", "--title", TITLE, "--message", MESSAGE]))
}

/// Slack's answers: "ok" from a webhook, `{"ok": true}` from the Web API (and JSON elsewhere).
fn slack_ok(req: &Request) -> Answer {
    if req.target.starts_with("/services/") {
        return ok();
    }
    Answer::bare(200, r#"{"ok":true,"channel":"C1","ts":"1.2"}"#)
        .header("Content-Type", "application/json")
}

/// apprise's json://, form:// and xml:// bodies are what the receiver parses: initbox sends
/// the same bytes (JSON: the same document), path, query and Content-Type as real apprise.
#[test]
fn apprise_json_form_xml_bodies_match_real_apprise() {
    let a = HttpServer::capture(|_, _| ok());
    let b = HttpServer::capture(|_, _| ok());
    let paths = [
        "json://127.0.0.1:{p}/j/hook?:message=text&:team=ops&-room=blue&method=PUT",
        "json://127.0.0.1:{p}/j/plain",
        "form://127.0.0.1:{p}/f/form?:title=&:env=prod",
        "xml://127.0.0.1:{p}/x/plain",
        "xml://127.0.0.1:{p}/x/custom?:Subject=Headline&:env=prod%20%26%20more",
    ];
    for u in paths {
        apprise(
            &a,
            &u.replace("{p}", &a.port.to_string()),
            TITLE,
            MESSAGE,
            "failure",
        );
    }
    let ours: Vec<String> = paths
        .iter()
        .map(|u| u.replace("{p}", &b.port.to_string()))
        .collect();
    let r = initbox_sends(&ours);
    assert_eq!(r.code(), 0, "{}", r.all());
    for prefix in ["/j/hook", "/j/plain", "/f/form", "/x/plain", "/x/custom"] {
        let (theirs, mine) = (a.one(prefix), b.one(prefix));
        assert_eq!(mine.method, theirs.method, "{prefix}");
        assert_eq!(mine.target, theirs.target, "{prefix}");
        assert_eq!(
            mine.header("content-type"),
            theirs.header("content-type"),
            "{prefix}"
        );
        if prefix.starts_with("/j/") {
            assert_eq!(mine.json().0, theirs.json().0, "{prefix}");
        } else {
            assert_eq!(
                String::from_utf8_lossy(&mine.body),
                String::from_utf8_lossy(&theirs.body),
                "{prefix}"
            );
        }
    }
    // The documented shapes, not only agreement.
    let j = b.one("/j/hook");
    assert_eq!(j.method, "PUT");
    assert_eq!(j.target, "/j/hook?room=blue");
    let j = j.json();
    assert_eq!(j.s("text"), MESSAGE);
    assert_eq!(j.s("type"), "failure");
    assert_eq!(j.s("team"), "ops");
    assert!(!j.has("message"));
    let f = String::from_utf8(b.one("/f/form").body).unwrap();
    assert!(f.starts_with("version=1.0&message=line+1%0Aline+2"), "{f}");
    assert!(!f.contains("title="), "{f}");
    let x = String::from_utf8(b.one("/x/plain").body).unwrap();
    assert!(
        x.contains("<Subject>Deploy &lt;web&gt; &amp; &quot;api&quot;</Subject>"),
        "{x}"
    );
    assert!(x.contains("NotifyXML-1.1.xsd"), "{x}");
}

/// shoutrrr's generic:// sends the message alone (template unset) or its title/message JSON
/// (template=json, titlekey/messagekey, $extra); webhook+ picks any of the bodies by template=.
#[test]
fn generic_webhook_sends_shoutrrr_and_apprise_bodies() {
    let cap = HttpServer::capture(|_, _| ok());
    let p = cap.port;
    let r = initbox_sends(&[
        format!("generic://127.0.0.1:{p}/plain?disabletls=yes"),
        format!(
            "generic+http://127.0.0.1:{p}/json?template=json&titlekey=subject&$env=prod&keep=1"
        ),
        format!("webhook+http://127.0.0.1:{p}/apprise?template=apprise-json"),
        format!("webhook+http://127.0.0.1:{p}/native"),
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let plain = cap.one("/plain");
    assert_eq!(String::from_utf8(plain.body.clone()).unwrap(), MESSAGE);
    assert_eq!(plain.header("content-type"), "application/json"); // shoutrrr's default
    assert_eq!(plain.header("accept"), "application/json");
    let j = cap.one("/json");
    assert_eq!(j.target, "/json?keep=1"); // unknown keys go to the endpoint, as in shoutrrr
    let j = j.json();
    assert_eq!(j.0.as_object().map(|m| m.len()), Some(3), "{}", j.0);
    assert_eq!(j.s("subject"), TITLE);
    assert_eq!(j.s("message"), MESSAGE);
    assert_eq!(j.s("env"), "prod");
    let j = cap.one("/apprise").json();
    assert_eq!(j.s("version"), "1.0");
    assert_eq!(j.s("type"), "failure");
    let j = cap.one("/native").json();
    assert_eq!(j.s("event"), "failure");
    assert_uuid(j.s("id"));
    let r = go(notify().args([
        &format!("webhook+http://127.0.0.1:{p}/x?template=jsn"),
        "-m",
        "x",
    ]));
    assert_one_line_error(&r, 2, "option 'template' must be json");
}

/// Chat and paging URLs as apprise writes them reach the endpoint apprise reaches, with the
/// same channel, routing and credential; shoutrrr's forms (ported from its token and URL rules)
/// reach the same endpoints.
#[test]
fn shoutrrr_and_apprise_chat_and_paging_urls_reach_the_same_endpoints() {
    let a = HttpServer::capture(|_, req| slack_ok(req));
    let b = HttpServer::capture(|_, req| slack_ok(req));
    let ep = format!("endpoint=http://127.0.0.1:{}", b.port);
    let (ap, bp) = (a.port, b.port);
    let hook = "T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ";
    for url in [
        format!("slack://{hook}/#general/@bob"),
        "slack://xoxb-1234-1234-abc124/#chan".to_string(),
        "discord://bot@123456/DiscordTok3n".to_string(),
        "ntfy://mytopic".to_string(),
        format!("ntfy://tk_NtfyTok3n@127.0.0.1:{ap}/t2"),
        format!("mmost://bot@127.0.0.1:{ap}/sub/MmTok3n?channel=dev"),
        format!("rocket://RcA/RcB@127.0.0.1:{ap}/#room/@bob"),
        "pagerduty://IntegKey123@ApiKey456/src/comp".to_string(),
    ] {
        apprise(&a, &url, TITLE, MESSAGE, "failure");
    }
    let r = initbox_sends(&[
        format!("slack://{hook}/#general/@bob?{ep}"),
        format!("slack://xoxb-1234-1234-abc124/#chan?{ep}"),
        format!("discord://bot@123456/DiscordTok3n?{ep}"),
        format!("ntfy://mytopic?{ep}/"),
        format!("ntfy://tk_NtfyTok3n@127.0.0.1:{bp}/t2?scheme=http"),
        format!("mmost://bot@127.0.0.1:{bp}/sub/MmTok3n?channel=dev"),
        format!("rocket://RcA/RcB@127.0.0.1:{bp}/#room/@bob"),
        format!("pagerduty://IntegKey123@ApiKey456/src/comp?{ep}"),
        // shoutrrr's current Slack forms: a webhook token, a bot token with its channel.
        format!("slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook?{ep}"),
        format!(
            "slack://xoxb:123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N@C001CH4NN3L?{ep}&botname=ci"
        ),
        // shoutrrr's discord://TOKEN@ID, the same webhook as apprise's ID/TOKEN.
        format!("discord://DiscordTok3n@123456?{ep}"),
    ]);
    assert_eq!(r.code(), 0, "{}", r.all());
    let channels = |c: &HttpServer, prefix: &str| -> Vec<String> {
        let mut v: Vec<String> = c
            .to(prefix)
            .iter()
            .map(|r| r.json().s("channel").to_string())
            .collect();
        v.sort();
        v
    };
    // Slack webhook with apprise's targets: one post per channel.
    let path = format!("/services/{hook}");
    assert_eq!(channels(&a, &path), ["#general", "@bob"]);
    assert_eq!(channels(&b, &path), ["#general", "@bob"]);
    assert_eq!(a.to(&path)[0].header("x-apprise-host"), "hooks.slack.com");
    // Slack bot token: the Web API with a bearer token. initbox also posts the shoutrrr bot
    // form to the same path, concurrently: pick the request by its token, not by its order.
    for c in [&a, &b] {
        let posts = c.to("/api/chat.postMessage");
        let r = posts
            .iter()
            .find(|r| r.header("authorization") == "Bearer xoxb-1234-1234-abc124")
            .unwrap_or_else(|| panic!("no post with the apprise bot token among {}", posts.len()));
        assert_eq!(r.json().s("channel"), "#chan");
    }
    // Discord: both forms, the same webhook; apprise's botname is the username.
    let d = a.one("/api/webhooks/123456/DiscordTok3n");
    assert_eq!(d.header("x-apprise-host"), "discord.com");
    assert_eq!(d.json().s("username"), "bot");
    let d = b.to("/api/webhooks/123456/DiscordTok3n?wait=true");
    assert_eq!(d.len(), 2);
    assert!(
        d.iter()
            .any(|r| r.json().has("username") && r.json().s("username") == "bot")
    );
    // ntfy://TOPIC is the topic on ntfy.sh; tk_ user information is an access token.
    let n: Vec<Request> = a
        .to("/")
        .into_iter()
        .filter(|r| {
            r.headers
                .get("x-apprise-host")
                .is_some_and(|h| h == "ntfy.sh")
        })
        .collect();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].json().s("topic"), "mytopic");
    let topic = |r: &Request| -> String {
        serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|v| v.get("topic").and_then(Value::as_str).map(String::from))
            .unwrap_or_default()
    };
    assert!(b.to("/").iter().any(|r| topic(r) == "mytopic"));
    for c in [&a, &b] {
        let t2 = c
            .received()
            .into_iter()
            .find(|r| topic(r) == "t2")
            .expect("t2");
        assert_eq!(t2.header("authorization"), "Bearer tk_NtfyTok3n");
    }
    // Mattermost (mmost://, http) and Rocket.Chat webhooks (rocket://A/B@HOST).
    for c in [&a, &b] {
        let m = c.one("/sub/hooks/MmTok3n").json();
        assert_eq!((m.s("channel"), m.s("username")), ("dev", "bot"));
    }
    assert_eq!(channels(&a, "/hooks/RcA/RcB"), ["#room", "@bob"]);
    assert_eq!(channels(&b, "/hooks/RcA/RcB"), ["#room", "@bob"]);
    // apprise's PagerDuty: the integration key routes, the API key authorises.
    for c in [&a, &b] {
        let p = c.one("/v2/enqueue");
        assert_eq!(p.header("authorization"), "Token token=ApiKey456");
        let j = p.json();
        assert_eq!(j.s("routing_key"), "IntegKey123");
        assert_eq!(j.s("event_action"), "trigger");
        assert_eq!(
            (j.s("payload.source"), j.s("payload.component")),
            ("src", "comp")
        );
    }
    assert_eq!(
        a.one("/v2/enqueue").header("x-apprise-host"),
        "events.pagerduty.com"
    );
    // shoutrrr's Slack tokens.
    let h = b.one("/services/WNA3PBYV6/F20DUQND3RQ/Webc4MAvoacrpPakR8phF0zi");
    assert!(!h.json().has("channel"));
    let api: Vec<Request> = b.to("/api/chat.postMessage");
    let bot = api
        .iter()
        .find(|r| r.json().s("channel") == "C001CH4NN3L")
        .expect("bot-token post");
    assert_eq!(
        bot.header("authorization"),
        "Bearer xoxb-123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N"
    );
    assert_eq!(bot.json().s("username"), "ci");
    // No secret of any URL in initbox's output.
    for secret in [
        "DiscordTok3n",
        "NtfyTok3n",
        "MmTok3n",
        "ApiKey456",
        "4mt0t4l1YL3g1T5L4cK70k3N",
    ] {
        assert!(!r.all().contains(secret), "{secret} leaked: {}", r.all());
    }
}

/// Slack's Web API answers 200 with ok=false: that is a failure (exit 1, its error named), and
/// a rejected token is exit 5.
#[test]
fn slack_web_api_ok_false_is_a_failure() {
    let cap = HttpServer::capture(|_, req| {
        Answer::bare(
            200,
            if req.header("authorization").contains("BAD") {
                r#"{"ok":false,"error":"invalid_auth"}"#
            } else {
                r#"{"ok":false,"error":"channel_not_found"}"#
            },
        )
        .header("Content-Type", "application/json")
    });
    let ep = format!("endpoint=http://127.0.0.1:{}", cap.port);
    let r = go(notify().args([
        &format!("slack://xoxb-1234-1234-abc124/#nope?{ep}"),
        "-m",
        "x",
        "--required",
    ]));
    assert_one_line_error(&r, 1, "channel_not_found");
    let r = go(notify().args([
        &format!("slack://xoxb-BAD-1234-abc124/#c?{ep}"),
        "-m",
        "x",
        "--required",
    ]));
    assert_eq!(r.code(), 5, "{}", r.all());
    assert!(r.stderr.contains("invalid_auth"), "{}", r.stderr);
}

/// apprise's mailto:// knows the big providers from the sender's domain, mails the sender when
/// no recipient is given, and is plain SMTP on 25 otherwise, where a password is refused.
#[test]
fn apprise_mailto_forms() {
    let r = go(notify().args([
        "mailto://me:pw@gmail.com",
        "mailto://me:pw@yahoo.com?to=ops@example.com",
        "-m",
        "hi",
        "--dry-run",
    ]));
    assert_eq!(r.code(), 0, "{}", r.all());
    assert!(
        r.stdout
            .contains("SMTP smtp.gmail.com:587 (StartTls) from me@gmail.com to me@gmail.com"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "SMTP smtp.mail.yahoo.com:465 (Implicit) from me@yahoo.com to ops@example.com"
        ),
        "{}",
        r.stdout
    );
    let r = go(notify().args(["mailto://me:SmtpPw77@example.com", "-m", "hi", "--dry-run"]));
    assert_one_line_error(&r, 2, "plain SMTP on port 25");
    assert!(!r.all().contains("SmtpPw77"));
    // Delivered end to end: the sender is the recipient, over plain SMTP to loopback.
    let dir = tempdir();
    let (_, cert, key) = make_certs(dir.path());
    let out = dir.path().join("mail");
    std::fs::create_dir(&out).unwrap();
    let (_server, port) = smtp_server("plain", &cert, &key, &out);
    let r = go(notify().args([
        &format!("mailto://notify:S3cret%2Fpw%40x@localhost:{port}"),
        "--title",
        "T",
        "-m",
        "hi",
        "--required",
    ]));
    assert_eq!(r.code(), 0, "{}", r.all());
    let mail = wait_for_mail(&out, 1);
    assert_eq!(mail.s("rcpt_tos.0"), "notify@localhost");
    assert_eq!(mail.s("mail_from"), "notify@localhost");
    assert!(mail.at("authenticated").as_bool().unwrap());
    assert_eq!(check_mail(mail.s("data")).s("mime"), "1.0");
}

/// A form that means different things to shoutrrr and apprise, or that notify cannot honour,
/// is a usage error naming the initbox form, never a guess.
#[test]
fn ambiguous_or_unsupported_drop_in_forms_are_usage_errors() {
    for (url, says) in [
        ("ntfy://ntfy.example.com/prefix/topic", "one URL per topic"),
        (
            "rocket://user:RocketPw1@chat.example.com/room",
            "rocket://TOKEN-A/TOKEN-B@HOST",
        ),
        ("slack://xoxb:short@C001", "slack://hook:TOKEN@webhook"),
        ("slack://A1/B2", "three webhook tokens"),
        (
            "discord://123/abc/def",
            "discord://[BOTNAME@]WEBHOOK_ID/TOKEN",
        ),
        ("json://example.com/x?verify=no", "unknown option 'verify'"),
    ] {
        let r = go(notify().args([url, "-m", "x", "--dry-run"]));
        assert_one_line_error(&r, 2, says);
        assert!(!r.all().contains("RocketPw1"), "{}", r.all());
    }
}
