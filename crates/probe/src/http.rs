//! HTTP(S) readiness, shared with `network-check`: what a response must look like
//! ([`StatusSet`], a body regex, [`JsonMatch`] values, gathered in [`Expect`]) and the probe that
//! sends one request per attempt ([`HttpProbe`]).
//!
//! Strict by default: only 2xx is ready (wait4x counts any status as ready unless told), TLS is
//! verified against the system roots plus `--ca-file`, every attempt opens a fresh connection
//! (a pooled keep-alive connection would hide a server that stopped accepting), redirects are
//! followed by the runtime's policy (at most 10, never down to plain http, to another origin only
//! without `--header`s or a URL password) unless `--no-redirect`, proxies come from `HTTP(S)_PROXY`/`NO_PROXY`.
//!
//! ```no_run
//! # use initbox_probe::http::{Expect, StatusSet, JsonMatch};
//! let expect = Expect {
//!     status: "200-299,401".parse::<StatusSet>().unwrap(),
//!     body: None,
//!     json: vec!["status=UP".parse::<JsonMatch>().unwrap()],
//! };
//! assert!(expect.check(200, br#"{"status":"UP"}"#).is_ok());
//! ```

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use initbox_runtime::Failure;
use initbox_runtime::http as rt_http;
use initbox_runtime::redact;
use initbox_runtime::tls::{self, TlsArgs};
use initbox_runtime::wait::{NotReady, Probe, ProbeFuture};
use regex::Regex;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// At most this much of a body is read for matching (a health page is small; a 1 GiB download
/// must not be pulled on every attempt).
pub const BODY_LIMIT: usize = initbox_runtime::http::SMALL_BODY_LIMIT;

// ---------------------------------------------------------------------------------------------
// Status sets
// ---------------------------------------------------------------------------------------------

/// Accepted HTTP status codes: `200`, `200-299`, `2xx`, comma-separated (`200-299,401`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet {
    ranges: Vec<(u16, u16)>,
}

impl StatusSet {
    /// 200-299, the default.
    pub fn success() -> Self {
        StatusSet {
            ranges: vec![(200, 299)],
        }
    }

    pub fn contains(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(lo, hi)| lo <= status && status <= hi)
    }
}

impl Default for StatusSet {
    fn default() -> Self {
        Self::success()
    }
}

fn parse_code(s: &str, whole: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(n) if (100..=599).contains(&n) => Ok(n),
        _ => Err(format!(
            "status set '{whole}': '{s}' is not an HTTP status (expected 100-599)"
        )),
    }
}

impl FromStr for StatusSet {
    type Err = String;
    fn from_str(input: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for part in input.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(format!(
                    "status set '{input}' has an empty item (expected e.g. 200-299,401)"
                ));
            }
            let lower = part.to_ascii_lowercase();
            let range = if let Some(d) = lower.strip_suffix("xx") {
                match d.parse::<u16>() {
                    Ok(c) if (1..=5).contains(&c) && d.len() == 1 => (c * 100, c * 100 + 99),
                    _ => {
                        return Err(format!(
                            "status set '{input}': '{part}' is not a status class (expected 1xx to 5xx)"
                        ));
                    }
                }
            } else if let Some((lo, hi)) = part.split_once('-') {
                let (lo, hi) = (parse_code(lo.trim(), input)?, parse_code(hi.trim(), input)?);
                if lo > hi {
                    return Err(format!("status set '{input}': range '{part}' is reversed"));
                }
                (lo, hi)
            } else {
                let c = parse_code(part, input)?;
                (c, c)
            };
            ranges.push(range);
        }
        Ok(StatusSet { ranges })
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .ranges
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

// ---------------------------------------------------------------------------------------------
// JSON value matches
// ---------------------------------------------------------------------------------------------

/// One step of a JSON path: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// `PATH=VALUE` (the value at PATH equals VALUE) or `PATH` (the value exists and is not null).
///
/// PATH is dot-separated keys with `[N]` indexes: `status`, `checks[0].status`,
/// `components.db.status`; a leading `$.` or `.` is allowed; `\.` is a literal dot in a key.
/// VALUE is compared as JSON when it parses as JSON (`true`, `3`, `"UP"`, `null`), else as a
/// string; numbers compare by value (`1` equals `1.0`).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonMatch {
    pub path: Vec<Step>,
    /// `None`: the path only has to exist (and not be null).
    pub expected: Option<Value>,
    /// The expected value as the user wrote it.
    pub raw: Option<String>,
    shown_path: String,
}

impl JsonMatch {
    /// The value at the path, if any.
    pub fn lookup<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        let mut cur = doc;
        for step in &self.path {
            cur = match (step, cur) {
                (Step::Key(k), Value::Object(m)) => m.get(k)?,
                (Step::Index(i), Value::Array(a)) => a.get(*i)?,
                (Step::Key(k), Value::Array(a)) => a.get(k.parse::<usize>().ok()?)?,
                (Step::Index(i), Value::Object(m)) => m.get(&i.to_string())?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Check `doc`; the error says what was found instead.
    pub fn check(&self, doc: &Value) -> Result<(), String> {
        let found = self.lookup(doc);
        match (&self.expected, found) {
            (_, None) => Err(format!("JSON has no value at '{}'", self.shown_path)),
            (None, Some(Value::Null)) => Err(format!("JSON '{}' is null", self.shown_path)),
            (None, Some(_)) => Ok(()),
            (Some(want), Some(got)) => {
                if json_equal(want, got, self.raw.as_deref().unwrap_or_default()) {
                    Ok(())
                } else {
                    Err(format!(
                        "JSON '{}' is {}, expected {}",
                        self.shown_path,
                        redact::excerpt(&got.to_string(), 80),
                        redact::excerpt(&want.to_string(), 80)
                    ))
                }
            }
        }
    }
}

fn json_equal(want: &Value, got: &Value, raw: &str) -> bool {
    match (want, got) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (w, g) if w == g => true,
        // `--json version=1` against {"version":"1"}: the string as written.
        (_, Value::String(s)) => s == raw,
        _ => false,
    }
}

fn parse_path(p: &str, whole: &str) -> Result<Vec<Step>, String> {
    let p = p.trim();
    let p = p
        .strip_prefix("$.")
        .or_else(|| p.strip_prefix('.'))
        .unwrap_or(p);
    let p = if p == "$" { "" } else { p };
    let mut steps = Vec::new();
    let mut key = String::new();
    let mut chars = p.chars().peekable();
    let bad =
        |why: &str| format!("JSON match '{whole}': {why} (expected e.g. checks[0].status=UP)");
    let mut just_closed = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => key.push(n),
                None => return Err(bad("trailing '\\'")),
            },
            '.' => {
                if key.is_empty() && !just_closed {
                    return Err(bad("empty key in the path"));
                }
                if !key.is_empty() {
                    steps.push(Step::Key(std::mem::take(&mut key)));
                }
                just_closed = false;
                continue;
            }
            '[' => {
                if !key.is_empty() {
                    steps.push(Step::Key(std::mem::take(&mut key)));
                }
                let mut idx = String::new();
                loop {
                    match chars.next() {
                        Some(']') => break,
                        Some(d) => idx.push(d),
                        None => return Err(bad("missing ']'")),
                    }
                }
                let i = idx
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| bad(&format!("'[{idx}]' is not an array index")))?;
                steps.push(Step::Index(i));
                just_closed = true;
                continue;
            }
            c => {
                if just_closed {
                    return Err(bad("expected '.' or '[' after ']'"));
                }
                key.push(c);
            }
        }
        just_closed = false;
    }
    if !key.is_empty() {
        steps.push(Step::Key(key));
    } else if p.ends_with('.') {
        return Err(bad("empty key in the path"));
    }
    if steps.is_empty() {
        return Err(bad("empty path"));
    }
    Ok(steps)
}

impl FromStr for JsonMatch {
    type Err = String;
    fn from_str(input: &str) -> Result<Self, String> {
        let (path, raw) = match input.split_once('=') {
            Some((p, v)) => (p, Some(v.to_string())),
            None => (input, None),
        };
        let steps = parse_path(path, input)?;
        let expected = raw.as_deref().map(|v| {
            serde_json::from_str::<Value>(v.trim()).unwrap_or_else(|_| Value::String(v.into()))
        });
        Ok(JsonMatch {
            path: steps,
            expected,
            raw,
            shown_path: path.trim().to_string(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------------

/// Everything a response must satisfy to count as ready.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub status: StatusSet,
    /// The body must contain a match of this regex.
    pub body: Option<Regex>,
    /// The body must be JSON and every match must hold.
    pub json: Vec<JsonMatch>,
}

impl Expect {
    /// Whether the body has to be read at all.
    pub fn needs_body(&self) -> bool {
        self.body.is_some() || !self.json.is_empty()
    }

    /// Check a response; `Err` says, in one line, what differs.
    pub fn check(&self, status: u16, body: &[u8]) -> Result<(), String> {
        if !self.status.contains(status) {
            return Err(format!(
                "HTTP {}{} (expected {})",
                status,
                reason(status).map(|r| format!(" {r}")).unwrap_or_default(),
                self.status
            ));
        }
        if let Some(re) = &self.body {
            let text = String::from_utf8_lossy(body);
            if !re.is_match(&text) {
                return Err(format!(
                    "HTTP {status} but the body does not match /{}/ (body starts: {})",
                    re.as_str(),
                    snippet(&text, 60)
                ));
            }
        }
        if !self.json.is_empty() {
            let doc: Value = serde_json::from_slice(body).map_err(|e| {
                format!(
                    "HTTP {status} but the body is not JSON ({e}; starts: {})",
                    snippet(&String::from_utf8_lossy(body), 60)
                )
            })?;
            for m in &self.json {
                m.check(&doc)
                    .map_err(|e| format!("HTTP {status} but {e}"))?;
            }
        }
        Ok(())
    }
}

fn reason(status: u16) -> Option<&'static str> {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
}

/// At most `max` characters of `s` on one line.
fn snippet(s: &str, max: usize) -> String {
    format!("{:?}", redact::excerpt(s, max))
}

// ---------------------------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------------------------

/// The HTTP flags (request and expectations) plus TLS, for `#[command(flatten)]`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "HTTP")]
pub struct HttpArgs {
    /// Accepted status codes: codes, ranges and classes, comma-separated.
    #[arg(long, value_name = "SET", default_value = "200-299", value_parser = StatusSet::from_str,
          env = initbox_runtime::env::HTTP_STATUS)]
    pub status: StatusSet,

    /// The response body must contain a match of this regular expression.
    #[arg(long, value_name = "REGEX", value_parser = parse_regex, env = initbox_runtime::env::HTTP_BODY_REGEX)]
    pub body_regex: Option<Regex>,

    /// The body must be JSON with this value at PATH (PATH alone: exists, not null);
    /// repeatable, all must hold. E.g. `status=UP`, `checks[0].healthy=true`.
    #[arg(long = "json", value_name = "PATH[=VALUE]", value_parser = JsonMatch::from_str,
          env = initbox_runtime::env::HTTP_JSON)]
    pub json: Vec<JsonMatch>,

    /// Request method.
    #[arg(long, value_name = "METHOD", default_value = "GET", value_parser = parse_method,
          env = initbox_runtime::env::HTTP_METHOD)]
    pub method: Method,

    #[command(flatten)]
    pub headers: rt_http::HeaderArgs,

    /// Request body (sent with the method given; `@PATH` reads it from a file).
    #[arg(long, value_name = "BODY", env = initbox_runtime::env::HTTP_DATA)]
    pub data: Option<String>,

    /// Do not follow redirects: a 3xx is the answer (match it with --status).
    #[arg(long, env = initbox_runtime::env::HTTP_NO_REDIRECT, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_redirect: bool,

    #[command(flatten)]
    pub tls: TlsArgs,
}

impl Default for HttpArgs {
    fn default() -> Self {
        HttpArgs {
            status: StatusSet::success(),
            body_regex: None,
            json: Vec::new(),
            method: Method::GET,
            headers: rt_http::HeaderArgs::default(),
            data: None,
            no_redirect: false,
            tls: TlsArgs::default(),
        }
    }
}

/// A regular expression for a clap `value_parser`, with a one-line error.
pub fn parse_regex(s: &str) -> Result<Regex, String> {
    Regex::new(s).map_err(|e| {
        let first = e.to_string();
        let last = first.lines().last().unwrap_or_default().trim().to_string();
        format!("'{s}' is not a valid regular expression: {last}")
    })
}

fn parse_method(s: &str) -> Result<Method, String> {
    let up = s.trim().to_ascii_uppercase();
    if up.is_empty() || !up.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!("'{s}' is not an HTTP method"));
    }
    Method::from_bytes(up.as_bytes()).map_err(|_| format!("'{s}' is not an HTTP method"))
}

/// `@PATH` → the file's content (one trailing newline dropped, the toolkit's secret-file
/// rule); anything else as is. Header values are read as secret files (1 MiB); `--data`
/// bodies as inputs (16 MiB by default).
pub fn value_or_file(v: &str, what: &str) -> Result<String, Failure> {
    use initbox_runtime::input;
    match v.strip_prefix('@') {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            let label = format!("{what} {}", path.display());
            if what == "--data" {
                let text = input::read_string(&path, &label)?;
                Ok(input::strip_one_newline(&text).to_string())
            } else {
                input::read_secret(&path, &label, false)
            }
        }
        _ => Ok(v.to_string()),
    }
}

/// The request part of [`HttpArgs`], resolved (files read, headers parsed).
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Option<String>,
}

impl HttpArgs {
    /// The expectations.
    pub fn expect(&self) -> Expect {
        Expect {
            status: self.status.clone(),
            body: self.body_regex.clone(),
            json: self.json.clone(),
        }
    }

    /// Method, headers (values from files read and credentials registered) and body.
    pub fn request(&self) -> Result<RequestSpec, Failure> {
        let headers = self.headers.parse()?;
        let body = self
            .data
            .as_deref()
            .map(|d| value_or_file(d, "--data"))
            .transpose()?;
        Ok(RequestSpec {
            method: self.method.clone(),
            headers,
            body,
        })
    }

    /// One client for every target: the TLS configuration is read once. `url_credentials`: a
    /// target URL holds a user name or password.
    pub fn client(
        &self,
        attempt_timeout: Duration,
        url_credentials: bool,
    ) -> Result<reqwest::Client, Failure> {
        let credentials = url_credentials || self.headers.any();
        client(&self.tls, !self.no_redirect, credentials, attempt_timeout)
    }
}

/// An HTTP client from the runtime's one builder: verified rustls (ring), no connection reuse,
/// proxies from the environment, the toolkit's redirect policy (at most 10 hops, never down to
/// plain http, another origin only when the request carries no header given with `--header`
/// and no password in the URL), or no redirects.
pub fn client(
    tls_args: &TlsArgs,
    follow_redirects: bool,
    credentials: bool,
    timeout: Duration,
) -> Result<reqwest::Client, Failure> {
    let mut opts = rt_http::ClientOptions::new(
        tls::client_config(tls_args)?,
        concat!("initbox/", env!("CARGO_PKG_VERSION")),
        timeout,
    );
    opts.reuse_connections = false;
    opts.credentials = credentials;
    if !follow_redirects {
        opts.redirects = rt_http::Redirects::Never;
    }
    rt_http::client(opts)
}

/// A reqwest error as one line: the innermost causes, without the URL (which may hold a
/// password; it is shown separately through the redactor); TLS failures as named reasons.
pub fn describe(e: &reqwest::Error) -> String {
    rt_http::describe(e, "--ca-file")
}

// ---------------------------------------------------------------------------------------------
// The probe
// ---------------------------------------------------------------------------------------------

/// One request per attempt; ready when the response meets the [`Expect`]ations.
pub struct HttpProbe {
    url: reqwest::Url,
    shown: String,
    client: reqwest::Client,
    request: Arc<RequestSpec>,
    expect: Arc<Expect>,
}

impl HttpProbe {
    /// `url` must be `http://` or `https://`; a password in it is registered for redaction.
    pub fn new(
        url: &str,
        client: reqwest::Client,
        request: Arc<RequestSpec>,
        expect: Arc<Expect>,
    ) -> Result<Self, Failure> {
        let shown = redact::url_for_display(url);
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| Failure::usage(format!("'{shown}': not a valid URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Failure::usage(format!(
                "'{shown}': not an http:// or https:// URL"
            )));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(Failure::usage(format!("'{shown}': missing host")));
        }
        if let Some(p) = parsed.password() {
            redact::register(p);
        }
        Ok(HttpProbe {
            url: parsed,
            shown,
            client,
            request,
            expect,
        })
    }

    /// One request: `Ok` with the status line when ready.
    pub async fn check(&self) -> Result<String, NotReady> {
        let mut req = self
            .client
            .request(self.request.method.clone(), self.url.clone())
            .headers(self.request.headers.clone());
        if let Some(body) = &self.request.body {
            req = req.body(body.clone());
        }
        let resp = rt_http::send(req, rt_http::Show::Url)
            .await
            .map_err(|e| NotReady::Retry(describe(&e)))?;
        let status = resp.status().as_u16();
        let body = if self.expect.needs_body() {
            rt_http::read_prefix(resp, BODY_LIMIT)
                .await
                .map_err(|e| NotReady::Retry(format!("HTTP {status}, then {e}")))?
        } else {
            Vec::new()
        };
        self.expect.check(status, &body).map_err(NotReady::Retry)?;
        Ok(format!(
            "HTTP {status}{}",
            reason(status).map(|r| format!(" {r}")).unwrap_or_default()
        ))
    }
}

impl Probe for HttpProbe {
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
    use proptest::prelude::*;

    #[test]
    fn status_sets() {
        let s: StatusSet = "200-299,401".parse().unwrap();
        assert!(s.contains(200) && s.contains(299) && s.contains(401));
        assert!(!s.contains(300) && !s.contains(400) && !s.contains(503));
        assert_eq!(s.to_string(), "200-299,401");
        let c: StatusSet = "2xx, 3XX".parse().unwrap();
        assert!(c.contains(204) && c.contains(302) && !c.contains(404));
        assert!(StatusSet::default().contains(204));
        assert!(!StatusSet::default().contains(500));
    }

    #[test]
    fn bad_status_sets_name_the_item() {
        for (bad, needle) in [
            ("", "empty item"),
            ("200,,300", "empty item"),
            ("abc", "'abc'"),
            ("99", "'99'"),
            ("600", "'600'"),
            ("299-200", "reversed"),
            ("6xx", "status class"),
            ("20x", "'20x'"),
        ] {
            let e = bad.parse::<StatusSet>().unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
            assert!(!e.contains('\n'));
        }
    }

    fn doc() -> Value {
        serde_json::json!({
            "status": "UP",
            "version": "1",
            "count": 3,
            "ratio": 1.0,
            "ok": true,
            "nothing": null,
            "checks": [{"name": "db", "status": "UP"}, {"name": "cache", "status": "DOWN"}],
            "a.b": {"c": 1}
        })
    }

    fn m(s: &str) -> JsonMatch {
        s.parse().unwrap()
    }

    #[test]
    fn json_matches() {
        let d = doc();
        for ok in [
            "status=UP",
            "status=\"UP\"",
            "$.status=UP",
            ".status",
            "version=1",
            "count=3",
            "count=3.0",
            "ratio=1",
            "ok=true",
            "checks[0].status=UP",
            "checks.1.name=cache",
            "checks[1]",
            "a\\.b.c=1",
        ] {
            assert!(m(ok).check(&d).is_ok(), "{ok}: {:?}", m(ok).check(&d));
        }
        for (bad, needle) in [
            ("status=DOWN", "is \"UP\", expected \"DOWN\""),
            ("ok=false", "is true"),
            ("count=4", "is 3"),
            ("nothing", "is null"),
            ("missing", "no value at 'missing'"),
            ("checks[5].status=UP", "no value"),
            ("status.deeper", "no value"),
        ] {
            let e = m(bad).check(&d).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_json_paths() {
        for bad in ["=x", "a..b=1", "a[x]=1", "a[1=1", "a.=1", "a[0]b=1"] {
            let e = bad.parse::<JsonMatch>().unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn expectations() {
        let e = Expect {
            status: "200,401".parse().unwrap(),
            body: Some(Regex::new("ready|ok").unwrap()),
            json: vec![],
        };
        assert!(e.check(200, b"all ok").is_ok());
        assert!(e.check(401, b"ready").is_ok());
        let err = e.check(503, b"ok").unwrap_err();
        assert!(
            err.contains("HTTP 503 Service Unavailable (expected 200,401)"),
            "{err}"
        );
        let err = e.check(200, b"warming up").unwrap_err();
        assert!(err.contains("does not match /ready|ok/"), "{err}");
        let j = Expect {
            json: vec![m("status=UP")],
            ..Default::default()
        };
        assert!(j.check(200, br#"{"status":"UP"}"#).is_ok());
        assert!(j.check(200, b"<html>").unwrap_err().contains("not JSON"));
        assert!(!Expect::default().needs_body());
    }

    #[test]
    fn headers_and_files() {
        let dir = std::env::temp_dir().join(format!("initbox-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        std::fs::write(&f, "tok-canary-8812\n").unwrap();
        let args = HttpArgs {
            headers: rt_http::HeaderArgs {
                headers: vec![
                    format!("Authorization: Bearer @{}", f.display()),
                    format!("X-Api-Key: @{}", f.display()),
                    "Accept: application/json".into(),
                ],
            },
            ..Default::default()
        };
        let spec = args.request().unwrap();
        assert_eq!(spec.headers["x-api-key"], "tok-canary-8812");
        assert_eq!(spec.headers["authorization"], "Bearer tok-canary-8812");
        assert_eq!(spec.headers["accept"], "application/json");
        assert!(!redact::scrub("tok-canary-8812").contains("canary"));
        let bad = HttpArgs {
            headers: rt_http::HeaderArgs {
                headers: vec!["NoColon".into()],
            },
            ..Default::default()
        };
        assert_eq!(
            bad.request().unwrap_err().code,
            initbox_runtime::Code::USAGE
        );
        let missing = HttpArgs {
            headers: rt_http::HeaderArgs {
                headers: vec!["X-Token: @/nonexistent/initbox/token".into()],
            },
            ..Default::default()
        };
        let e = missing.request().unwrap_err();
        assert_eq!(e.code, initbox_runtime::Code::INVALID_INPUT);
        assert!(
            e.message.contains("/nonexistent/initbox/token"),
            "{}",
            e.message
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    proptest! {
        #[test]
        fn status_parser_never_panics(s in "\\PC{0,20}") {
            let _ = s.parse::<StatusSet>();
        }

        #[test]
        fn json_parser_never_panics(s in "\\PC{0,30}") {
            if let Ok(m) = s.parse::<JsonMatch>() {
                let _ = m.check(&doc());
            }
        }

        #[test]
        fn single_codes_round_trip(c in 100u16..=599) {
            let s: StatusSet = c.to_string().parse().unwrap();
            prop_assert!(s.contains(c));
            prop_assert!(!s.contains(c + 1));
        }
    }
}
